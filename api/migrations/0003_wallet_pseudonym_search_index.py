from django.db import migrations

# `q` on /wallets matches pseudonyms by case-insensitive prefix and, unless another sort is asked
# for, lists the hits in that order: one range of this index answers both, however many wallets
# match. (With `ORDER BY id` PostgreSQL walked the primary key and filtered — over a second when
# the hits sit at high ids.) The "C" collation makes the btree usable for LIKE 'PREFIX%' and for
# the ordering alike. Built concurrently: the wallet table takes writes while it builds.


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("api", "0002_counters_acknowledgement_audit")]

    operations = [
        migrations.RunSQL(
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS wallet_pseudonym_search ON wallet ((upper(pseudonym::text) COLLATE "C"), id)',
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS wallet_pseudonym_search",
        ),
    ]
