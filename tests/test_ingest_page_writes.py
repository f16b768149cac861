"""The page write path against real recorded payloads: each fill and each raw record stored once,
and the fill table carrying no more per-insert cost than its readers need."""

from __future__ import annotations

import pytest
from django.db import connection

from ingest.models import LandingRecord, TradeFill, Wallet
from ingest.services import trade_page_ingest
from tests.test_parsers import SHARED_FILL_TX, load_fixture, trade_rows_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_fill_table_has_no_foreign_key_checks_and_no_like_twin_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT contype FROM pg_constraint WHERE conrelid = 'trade_fill'::regclass ORDER BY contype")
        kinds = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            SELECT i.relname, o.opcname FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_opclass o ON o.oid = x.indclass[0]
            WHERE x.indrelid = 'trade_fill'::regclass ORDER BY i.relname
            """
        )
        indexes = cursor.fetchall()
    assert kinds == ["p", "u"], "primary key and the idempotency key only: no FK check per inserted fill"
    assert [name for name, _ in indexes] == [
        "trade_fill_idempotency_key_key", "trade_fill_ingested", "trade_fill_market_time", "trade_fill_pkey",
        "trade_fill_time", "trade_fill_tx_hash", "trade_fill_wallet_time",
    ]
    assert not [name for name, opclass in indexes if opclass.endswith("_pattern_ops")]


def test_a_page_read_again_stores_and_lands_nothing_twice():
    rows = load_fixture("insiderwatch/trades.json")
    first = trade_page_ingest(run=None, rows=rows, queue_changes=False)
    fills, landed, wallets = TradeFill.objects.count(), LandingRecord.objects.count(), Wallet.objects.count()

    again = trade_page_ingest(run=None, rows=rows, queue_changes=False)

    assert first.inserted == fills == landed > 0
    assert again.inserted == 0 and again.duplicates == len(rows) - first.skipped - first.dead_lettered
    assert (TradeFill.objects.count(), LandingRecord.objects.count(), Wallet.objects.count()) == (fills, landed, wallets)


def test_the_user_scoped_copy_of_a_global_fill_enriches_it_and_lands_as_the_record_that_did():
    global_row = next(row for row in load_fixture("insiderwatch/trades.json") if row["transactionHash"] == SHARED_FILL_TX)
    owner_row = next(row for row in trade_rows_of("insiderwatch/activity.json") if row["transactionHash"] == SHARED_FILL_TX)

    trade_page_ingest(run=None, rows=[global_row], queue_changes=False)
    stored = TradeFill.objects.get(transaction_hash=SHARED_FILL_TX)
    assert stored.outcome_index is None, "the global feed blanks the outcome (999)"

    enriched = trade_page_ingest(run=None, rows=[owner_row], stream="wallet_history", queue_changes=False)
    trade_page_ingest(run=None, rows=[owner_row], stream="wallet_history", queue_changes=False)

    assert (enriched.inserted, enriched.enriched) == (0, 1)
    stored.refresh_from_db()
    assert TradeFill.objects.filter(transaction_hash=SHARED_FILL_TX).count() == 1
    assert stored.outcome_index == owner_row["outcomeIndex"]
    landed = {(item.stream, item.idempotency_key): item.payload for item in LandingRecord.objects.all()}
    assert landed == {("trades", stored.idempotency_key): global_row, ("wallet_history", stored.idempotency_key): owner_row}


def test_wallet_trade_times_come_from_the_fills_of_every_page_in_any_order():
    rows = sorted(trade_rows_of("insiderwatch/activity.json"), key=lambda row: row["timestamp"])
    owner = rows[0]["proxyWallet"]
    middle, early_and_late = rows[1:-1], [rows[0], rows[-1]]

    trade_page_ingest(run=None, rows=middle, stream="wallet_history", queue_changes=False)
    trade_page_ingest(run=None, rows=early_and_late, stream="wallet_history", queue_changes=False)

    wallet = Wallet.objects.get(address=owner.lower())
    assert int(wallet.first_trade_at.timestamp()) == rows[0]["timestamp"]
    assert int(wallet.last_trade_at.timestamp()) == rows[-1]["timestamp"]


def test_a_landed_trade_record_is_found_by_its_key_and_market_records_stay_unique():
    from ingest.selectors import landing_records_matching
    from ingest.services import market_page_ingest

    rows = load_fixture("insiderwatch/trades.json")
    trade_page_ingest(run=None, rows=rows, queue_changes=False)
    fill = TradeFill.objects.order_by("idempotency_key").last()

    found = landing_records_matching(records=LandingRecord.objects.all(), term=f"  {fill.idempotency_key} ")
    assert [record.idempotency_key for record in found] == [fill.idempotency_key]
    assert not landing_records_matching(records=LandingRecord.objects.all(), term=fill.idempotency_key[:-1] + "x")

    markets = load_fixture("prediction-market-vol/gamma_markets.json")[:3]
    market_page_ingest(run=None, rows=markets)
    market_page_ingest(run=None, rows=markets)
    assert LandingRecord.objects.filter(source="gamma").count() == len(markets), "market records land once"
