from django.db import migrations


class Migration(migrations.Migration):
    """Statistics of the wallet expression the ledger reads the account streams by. PostgreSQL
    ignores the statistics of a partial expression index (ingest_landing_account_wallet), so
    without these it takes `payload->>'proxy_wallet' = ANY(…)` to match a share of the whole
    table and scans it; ANALYZE (autovacuum) fills them in."""

    dependencies = [
        ("marts", "0004_ledger_marks_and_roi"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE STATISTICS IF NOT EXISTS ingest_landing_proxy_wallet ON ((payload->>'proxy_wallet')) "
            "FROM ingest_landing",
            reverse_sql="DROP STATISTICS IF EXISTS ingest_landing_proxy_wallet",
        ),
    ]
