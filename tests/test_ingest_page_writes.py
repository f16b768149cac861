"""The page write path against real recorded payloads: each fill and each raw record stored once,
and the fill table carrying no more per-insert cost than its readers need."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from ingest.models import LandingPage, LandingRecord, Market, TradeFill, Wallet
from ingest.sources.data_api.writing import trade_page_ingest
from tests.landing import landed_trade_records
from tests.test_parsers import SHARED_FILL_TX, load_fixture, trade_rows_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_fill_table_has_no_foreign_key_checks_and_no_like_twin_indexes():
    with connection.cursor() as cursor:
        # PostgreSQL 18 lists NOT NULL as constraints of kind 'n'; they cost no lookup per insert.
        cursor.execute(
            "SELECT contype FROM pg_constraint WHERE conrelid = 'trade_fill'::regclass AND contype <> 'n' ORDER BY contype"
        )
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
    fills, landed, wallets = TradeFill.objects.count(), len(landed_trade_records()), Wallet.objects.count()

    again = trade_page_ingest(run=None, rows=rows, queue_changes=False)

    assert first.inserted == fills == landed > 0
    assert LandingPage.objects.count() == 1, "a page lands as one row"
    assert again.inserted == 0 and again.duplicates == len(rows) - first.skipped - first.dead_lettered
    assert (TradeFill.objects.count(), len(landed_trade_records()), Wallet.objects.count()) == (fills, landed, wallets)
    assert LandingPage.objects.count() == 1, "a page that stored nothing lands nothing"


def test_free_text_with_copy_format_and_array_literal_characters_is_stored_as_sent():
    # The page reaches PostgreSQL as COPY text and array literals built by us: tab, newline,
    # carriage return and backslash mean something in the one, double quotes, braces, commas and
    # NULL in the other, and a text reading \N is not a NULL.
    row = dict(load_fixture("insiderwatch/trades.json")[0])
    row.update(title='Rain?\tYes\nor no\r\\N "{a,b}"', slug="NULL", pseudonym="\\N", name='back\\slash\t"}',
               outcome='Yes, "or" {no}')

    trade_page_ingest(run=None, rows=[row], queue_changes=False)

    fill = TradeFill.objects.select_related("market", "wallet").get()
    assert (fill.market.question, fill.market.slug) == ('Rain?\tYes\nor no\r\\N "{a,b}"', "NULL")
    assert (fill.wallet.pseudonym, fill.wallet.name) == ("\\N", 'back\\slash\t"}')
    assert fill.outcome == 'Yes, "or" {no}'


def test_a_wallet_first_seen_takes_the_profile_of_its_newest_fill_on_the_page():
    rows = sorted(trade_rows_of("insiderwatch/activity.json"), key=lambda row: row["timestamp"])
    older, newer = dict(rows[0]), dict(rows[-1])
    assert older["timestamp"] < newer["timestamp"] and older["proxyWallet"] == newer["proxyWallet"]
    older.update(name="old name", pseudonym="Only-Older-Says", profileImage="https://example.com/old.png")
    newer.update(name="new name", pseudonym="", profileImage="")

    # Newest first, as the live feed serves: the order on the page does not decide.
    trade_page_ingest(run=None, rows=[newer, older], stream="wallet_history", queue_changes=False)

    wallet = Wallet.objects.get(address=older["proxyWallet"].lower())
    assert wallet.name == "new name", "the newer fill's name"
    assert (wallet.pseudonym, wallet.profile_image) == ("Only-Older-Says", "https://example.com/old.png"), (
        "a field the newer fill left empty comes from the older one"
    )
    assert int(wallet.first_trade_at.timestamp()) == older["timestamp"]
    assert int(wallet.last_trade_at.timestamp()) == newer["timestamp"]


def test_the_page_statements_are_prepared_once_per_connection():
    rows = load_fixture("insiderwatch/trades.json")
    trade_page_ingest(run=None, rows=rows[:5], queue_changes=False)
    trade_page_ingest(run=None, rows=rows[5:], queue_changes=False)

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("INSERT INTO trade_fill" in statement for statement in prepared), (
        "prepare=True is honoured (Django turns psycopg's preparation off unless prepare_threshold is set)"
    )
    assert len([statement for statement in prepared if "INSERT INTO trade_fill" in statement]) == 1
    assert not any("django_" in statement for statement in prepared), "other queries stay unprepared"


def test_landed_bodies_are_zstandard_and_bodies_landed_with_zlib_stay_readable():
    import json
    import zlib

    from ingest.frame import landing_page_records

    rows = load_fixture("insiderwatch/trades.json")
    trade_page_ingest(run=None, rows=rows, queue_changes=False)
    page = LandingPage.objects.get()
    body = bytes(page.body)
    assert body[:4] == b"\x28\xb5\x2f\xfd", "a Zstandard frame"

    records = landing_page_records(body)
    assert sorted(key for key, _ in records) == sorted(TradeFill.objects.values_list("idempotency_key", flat=True))
    assert all(payload in rows for _, payload in records), "each record as received"
    older_body = zlib.compress(json.dumps([[key, payload] for key, payload in records]).encode(), 1)
    assert landing_page_records(older_body) == records


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
    landed = landed_trade_records()
    assert landed == [("trades", stored.idempotency_key, global_row), ("wallet_history", stored.idempotency_key, owner_row)]


def test_wallet_trade_times_come_from_the_fills_of_every_page_in_any_order():
    from marts.services import wallet_batch_compute

    rows = sorted(trade_rows_of("insiderwatch/activity.json"), key=lambda row: row["timestamp"])
    owner = rows[0]["proxyWallet"]
    middle, early_and_late = rows[1:-1], [rows[0], rows[-1]]

    trade_page_ingest(run=None, rows=middle, stream="wallet_history", queue_changes=False)
    trade_page_ingest(run=None, rows=early_and_late, stream="wallet_history", queue_changes=False)

    # The first trade moves back with the page that holds it; the newest is the drain's to keep.
    wallet = Wallet.objects.get(address=owner.lower())
    assert int(wallet.first_trade_at.timestamp()) == rows[0]["timestamp"]
    assert int(wallet.last_trade_at.timestamp()) == rows[-2]["timestamp"], "as its first page said"
    wallet_batch_compute(wallet_ids=[wallet.pk])
    wallet.refresh_from_db()
    assert int(wallet.first_trade_at.timestamp()) == rows[0]["timestamp"]
    assert int(wallet.last_trade_at.timestamp()) == rows[-1]["timestamp"]


def test_a_landed_trade_record_is_found_by_its_key_and_market_records_stay_unique():
    from ingest.selectors import landing_pages_matching
    from ingest.sources.gamma.writing import market_page_ingest

    rows = load_fixture("insiderwatch/trades.json")
    trade_page_ingest(run=None, rows=rows[:5], queue_changes=False)
    trade_page_ingest(run=None, rows=rows[5:], queue_changes=False)
    fill = TradeFill.objects.order_by("idempotency_key").last()

    found = list(landing_pages_matching(pages=LandingPage.objects.all(), term=f"  {fill.idempotency_key} "))
    assert len(found) == 1
    assert fill.idempotency_key in [key for _, key, _ in landed_trade_records(id=found[0].pk)]
    assert not landing_pages_matching(pages=LandingPage.objects.all(), term=fill.idempotency_key[:-1] + "x")

    markets = load_fixture("prediction-market-vol/gamma_markets.json")[:3]
    market_page_ingest(run=None, rows=markets)
    market_page_ingest(run=None, rows=markets)
    assert LandingRecord.objects.filter(source="gamma").count() == len(markets), "market records land once"


def test_a_page_chosen_as_a_deadlock_victim_runs_again_and_stores_each_fill_once():
    """The cycle seen in the demo: the Gamma crawl holds a stored fill's row lock (setting its
    outcome) and then inserts a market that a trade page has just inserted, while that page waits
    for the fill's lock to absorb its duplicate. PostgreSQL aborts one of them; the page must not
    fail its run for it."""
    rows = load_fixture("insiderwatch/trades.json")
    known = rows[0]
    fresh = next(row for row in rows if row["conditionId"] != known["conditionId"])
    trade_page_ingest(run=None, rows=[known], queue_changes=False)
    known_key = TradeFill.objects.get().idempotency_key
    fill_locked, crawl_done = threading.Event(), threading.Event()
    crawl_errors: list[BaseException] = []

    def crawl_holding_the_fill_then_inserting_the_market():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # The page (1 s, the server default) detects the cycle first: it is the victim.
                cursor.execute("SET LOCAL deadlock_timeout = '20s'")
                cursor.execute("UPDATE trade_fill SET outcome = outcome WHERE idempotency_key = %s", [known_key])
                fill_locked.set()
                time.sleep(0.3)  # the page has inserted the market and waits for the fill by now
                Market.objects.create(condition_id=fresh["conditionId"], question="from the crawl")
        except BaseException as exc:  # reported to the test thread
            crawl_errors.append(exc)
        finally:
            connection.close()
            crawl_done.set()

    crawl = threading.Thread(target=crawl_holding_the_fill_then_inserting_the_market)
    crawl.start()
    assert fill_locked.wait(10)
    page = trade_page_ingest(run=None, rows=[known, fresh], queue_changes=False)
    crawl.join(30)

    assert crawl_errors == []
    assert (page.inserted, page.duplicates) == (1, 1)
    assert TradeFill.objects.count() == len(landed_trade_records()) == 2
    assert Market.objects.filter(condition_id=fresh["conditionId"]).count() == 1


def test_the_newest_fill_time_moves_only_forward_with_the_pages_that_store_fills():
    from datetime import UTC, datetime

    from ingest.models import IngestCursor

    rows = [row for row in load_fixture("insiderwatch/trades.json") if isinstance(row.get("timestamp"), int)]

    def shifted(seconds: int) -> list[dict]:
        return [{**row, "timestamp": row["timestamp"] + seconds} for row in rows]

    def newest_recorded() -> datetime:
        value = IngestCursor.objects.get(source="data_api", stream="newest_fill").cursor_value
        return datetime.fromisoformat(value)

    def newest_of(page: list[dict]) -> datetime:
        return datetime.fromtimestamp(max(row["timestamp"] for row in page), tz=UTC)

    assert rows
    trade_page_ingest(run=None, rows=shifted(1000), queue_changes=False)
    assert newest_recorded() == newest_of(shifted(1000))
    trade_page_ingest(run=None, rows=rows, queue_changes=False)  # older fills: the time stays
    assert newest_recorded() == newest_of(shifted(1000))
    trade_page_ingest(run=None, rows=shifted(2000), queue_changes=False)
    assert newest_recorded() == newest_of(shifted(2000))
