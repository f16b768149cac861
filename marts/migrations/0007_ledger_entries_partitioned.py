"""wallet_ledger_entry becomes range-partitioned by month on occurred_at (issue 16), the way
ingest 0013 made trade_fill partitioned: online on a database holding entries (a trigger mirrors
the writes while the rows are copied in batches, then one short lock swaps the tables). The
entry key gains occurred_at, which every unique key of a partitioned table must hold."""

from django.db import migrations, models


def partition(apps, schema_editor):
    from ingest.partitions import table_partition_online
    from marts.partitions import LEDGER_ENTRY

    table_partition_online(LEDGER_ENTRY)


def unpartition(apps, schema_editor):
    from ingest.partitions import table_unpartition
    from marts.partitions import LEDGER_ENTRY

    table_unpartition(LEDGER_ENTRY)


class Migration(migrations.Migration):
    atomic = False  # each step of the conversion commits

    dependencies = [
        ("marts", "0006_ledger_user_stats_totals"),
        ("ingest", "0015_landing_pages_partitioned"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="walletledgerentry", name="wallet_ledger_entry_key"),
                migrations.AddConstraint(
                    model_name="walletledgerentry",
                    constraint=models.UniqueConstraint(
                        fields=("wallet", "sequence", "leg", "occurred_at"), name="wallet_ledger_entry_key"
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(partition, unpartition, atomic=False)],
        ),
    ]
