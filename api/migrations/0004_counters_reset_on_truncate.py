from django.db import migrations

# TRUNCATE fires no row or statement triggers of INSERT/UPDATE/DELETE, so the counters of a
# truncated table would keep counting rows that are gone (bulk loaders and test fixtures truncate).
# A TRUNCATE trigger drops that table's counters: an empty table counts 0.
COUNTERS_BY_TABLE = {
    "wallet": ["wallets", "tracked_wallets"],
    "market": ["markets"],
    "wallet_snapshot": ["scored_wallets", "trades", "potential_wallets"],
    "anomaly": ["anomalies"],
}


def _truncate_sql(table: str, names: list[str]) -> tuple[str, str]:
    quoted = ", ".join(f"'{name}'" for name in names)
    function = f"api_counters_{table}_truncate"
    create = (
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"DELETE FROM api_counter_delta WHERE name IN ({quoted}); RETURN NULL; END $$;\n"
        f"CREATE TRIGGER {function} AFTER TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {function}();"
    )
    drop = f"DROP TRIGGER IF EXISTS {function} ON {table};\nDROP FUNCTION IF EXISTS {function}();"
    return create, drop


class Migration(migrations.Migration):
    dependencies = [("api", "0003_wallet_pseudonym_search_index")]

    operations = [migrations.RunSQL(*_truncate_sql(table, names)) for table, names in COUNTERS_BY_TABLE.items()]
