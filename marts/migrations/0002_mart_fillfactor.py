"""Leave room on each heap page of the mart tables the drain updates in place.

A wallet's window rows change on every computation, and a changed position or daily row is updated
in place too. When the new row version fits on the same page and no indexed column changes,
PostgreSQL makes it a heap-only tuple: no new index entries, and the old version is pruned with
the page. Tables loaded at the default fillfactor (100) have no such room, so every first update
moved the row and added entries to every index. Applies to pages written from now on.
"""

from django.db import migrations

TABLES = {"wallet_window": 70, "wallet_position": 85, "wallet_daily_feature": 90}


class Migration(migrations.Migration):
    dependencies = [("marts", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=f"ALTER TABLE {table} SET (fillfactor = {fillfactor})",
            reverse_sql=f"ALTER TABLE {table} RESET (fillfactor)",
        )
        for table, fillfactor in TABLES.items()
    ]
