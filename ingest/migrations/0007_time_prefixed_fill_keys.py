"""Fill keys become `<seconds>-<sha256 prefix>` (see parsers._fill_key_from_canonical).

Stored fills and landed trade rows are re-keyed from their own fields, so a fill read again after
the upgrade is recognised as the same fill, never stored twice.
"""

from django.db import migrations

BATCH = 5000


def rekey(apps, schema_editor):
    from ingest.sources.data_api.parsing import NotATrade, fill_idempotency_key, parse_trade
    from ingest.sources.values import MalformedRow

    TradeFill = apps.get_model("ingest", "TradeFill")
    LandingRecord = apps.get_model("ingest", "LandingRecord")
    last = 0
    while True:
        fills = list(TradeFill.objects.filter(pk__gt=last).select_related("wallet").order_by("pk")[:BATCH])
        if not fills:
            break
        for fill in fills:
            fill.idempotency_key = fill_idempotency_key(
                transaction_hash=fill.transaction_hash, asset=fill.token_id, wallet=fill.wallet.address,
                side=fill.side, size=fill.size, price=fill.price, timestamp=fill.traded_at,
            )
        TradeFill.objects.bulk_update(fills, ["idempotency_key"])
        last = fills[-1].pk
    last = 0
    while True:
        records = list(LandingRecord.objects.filter(pk__gt=last, source="data_api").order_by("pk")[:BATCH])
        if not records:
            break
        changed = []
        for record in records:
            try:
                record.idempotency_key = parse_trade(record.payload).idempotency_key
            except (MalformedRow, NotATrade):
                continue
            changed.append(record)
        LandingRecord.objects.bulk_update(changed, ["idempotency_key"])
        last = records[-1].pk


class Migration(migrations.Migration):
    dependencies = [("ingest", "0006_landing_verbatim_json_market_fees_sort_indexes")]

    operations = [migrations.RunPython(rekey, migrations.RunPython.noop, elidable=True)]
