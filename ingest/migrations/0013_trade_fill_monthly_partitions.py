"""trade_fill becomes range-partitioned by month on traded_at (issue 16).

Online on a database holding fills: writes are mirrored by a trigger while existing rows are
copied in batches, then one short lock swaps the tables (ingest.partitions.table_partition_online).
Not atomic for that reason: each batch commits. The unique fill key gains traded_at, which every
unique key of a partitioned table must hold.
"""

from django.db import migrations, models


def partition(apps, schema_editor):
    from ingest.partitions import TRADE_FILL, table_partition_online

    # Progress goes to the ingest logger: a database with millions of fills copies for minutes.
    table_partition_online(TRADE_FILL)


def unpartition(apps, schema_editor):
    from ingest.partitions import TRADE_FILL, table_unpartition

    table_unpartition(TRADE_FILL)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ingest", "0012_v2_sources"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="tradefill", name="trade_fill_idempotency_key_key"),
                migrations.AddConstraint(
                    model_name="tradefill",
                    constraint=models.UniqueConstraint(
                        fields=("idempotency_key", "traded_at"), name="trade_fill_idempotency_key_key"
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(partition, unpartition, atomic=False)],
        ),
    ]
