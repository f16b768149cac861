"""ingest_landing_page becomes range-partitioned by month on received_at (issue 16), the way 0013
made trade_fill partitioned, so retention can drop whole months of landed pages. A separate
migration from the table's creation: 0014's indexes are created when that migration ends."""

from django.db import migrations


def partition(apps, schema_editor):
    from ingest.partitions import LANDING_PAGE, table_partition_online

    table_partition_online(LANDING_PAGE)


def unpartition(apps, schema_editor):
    from ingest.partitions import LANDING_PAGE, table_unpartition

    table_unpartition(LANDING_PAGE)


class Migration(migrations.Migration):
    atomic = False  # each step of the conversion commits

    dependencies = [
        ("ingest", "0014_landing_pages"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition),
        # The twin is built LIKE the table, which does not carry column storage: the body stays
        # out of line uncompressed (the writer compresses it); partitions inherit the setting.
        migrations.RunSQL(
            "ALTER TABLE ingest_landing_page ALTER COLUMN body SET STORAGE EXTERNAL",
            reverse_sql="ALTER TABLE ingest_landing_page ALTER COLUMN body SET STORAGE EXTERNAL",
        ),
    ]
