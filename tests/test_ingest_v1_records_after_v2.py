"""A database that ingested Data API v1 keeps every fill through the v2 move: the migration gives
each stored fill its multiset key (occurrence 0 is the key it already had), the same fills read
again from v2 are recognised, and v1 landing records still replay."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from ingest.models import LandingRecord, TradeFill
from ingest.replay import replay_window
from ingest.sources.data_api.parsing import OccurrenceCounter, parse_trade
from ingest.sources.data_api.writing import trade_page_v2_ingest

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURES = Path(
    os.environ.get("ARBITRA_FIXTURES_DIR") or Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "polymarket"
)
V1_TRADES = FIXTURES / "polymarket-smart-money" / "trades.json"
BEFORE_V2 = "0011_landing_trade_records_unique_by_fill"

# v1 camelCase → v2 snake_case, field by field (ARCHITECTURE §7).
V1_TO_V2 = {
    "proxyWallet": "proxy_wallet", "asset": "token_id", "conditionId": "condition_id", "eventSlug": "event_slug",
    "outcomeIndex": "outcome_index", "transactionHash": "transaction_hash", "profileImage": "profile_image",
    "profileImageOptimized": "profile_image_optimized",
}


def v1_rows() -> list[dict]:
    if not V1_TRADES.exists():
        pytest.fail(f"fixture missing: {V1_TRADES} (the suite needs ../shared/fixtures)")
    rows = json.loads(V1_TRADES.read_text())
    return [row for row in rows if isinstance(row, dict)]


def as_v2(row: dict) -> dict:
    translated = {V1_TO_V2.get(key, key): value for key, value in row.items()}
    for key in ("bio", "profile_image", "profile_image_optimized", "name", "pseudonym", "icon", "title", "slug",
                "event_slug", "outcome"):
        translated.setdefault(key, "")
    translated.setdefault("outcome_index", 999)
    return translated


def _store_v1_fills_with_the_schema_before_v2(rows: list[dict]) -> int:
    """What a v1-era Arbitra wrote: market, wallet, fill and landing rows, in the 0011 schema."""
    fills = [parse_trade(row) for row in rows]
    with connection.cursor() as cursor:
        for fill, row in zip(fills, rows, strict=True):
            cursor.execute(
                """INSERT INTO market (condition_id, gamma_id, question, slug, description, category, tags, event_slug,
                       event_title, outcomes, outcome_prices, volume, liquidity, active, closed, archived,
                       uma_resolution_status, is_void, metadata_status, created_at, updated_at)
                   VALUES (%s, '', '', '', '', '', '[]', '', '', '[]', '[]', 0, 0, true, false, false, '', false,
                           'pending', now(), now()) ON CONFLICT DO NOTHING""",
                [fill.condition_id],
            )
            cursor.execute(
                """INSERT INTO wallet (address, pseudonym, name, profile_image, tracked, created_at, updated_at)
                   VALUES (%s, '', '', '', false, now(), now()) ON CONFLICT DO NOTHING""",
                [fill.wallet],
            )
            cursor.execute(
                """INSERT INTO trade_fill (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id,
                       side, size, price, usdc_size, traded_at, outcome, outcome_index, ingested_at)
                   SELECT %s, 'data_api', %s, %s, m.id, w.id, %s, %s, %s, %s, %s, '', NULL, now()
                   FROM market m, wallet w WHERE m.condition_id = %s AND w.address = %s
                   ON CONFLICT DO NOTHING""",
                [fill.idempotency_key, fill.transaction_hash, fill.asset, fill.side, fill.size, fill.price,
                 fill.usdc_size, fill.traded_at, fill.condition_id, fill.wallet],
            )
            cursor.execute(
                """INSERT INTO ingest_landing (source, stream, idempotency_key, payload, upstream_time, received_at)
                   VALUES ('data_api', 'trades', %s, %s::json, %s, now())""",
                [fill.idempotency_key, json.dumps(row), fill.traded_at],
            )
    return len({fill.idempotency_key for fill in fills})


def test_fills_stored_from_v1_keep_their_keys_through_the_migration_and_are_recognised_when_read_from_v2():
    rows = v1_rows()
    call_command("migrate", "ingest", BEFORE_V2, verbosity=0)
    try:
        stored = _store_v1_fills_with_the_schema_before_v2(rows)
    finally:
        call_command("migrate", verbosity=0)  # every app: migrating ingest back may unapply dependants

    keys_before = set(TradeFill.objects.values_list("idempotency_key", flat=True))
    assert len(keys_before) == stored > 0
    assert set(TradeFill.objects.values_list("occurrence", flat=True)) == {0}

    # The same fills served by v2 (sorted newest first, as the feed serves them).
    v2_rows = sorted((as_v2(row) for row in rows), key=lambda row: -int(row["timestamp"]))
    result = trade_page_v2_ingest(run=None, rows=v2_rows, counter=OccurrenceCounter(), stream="trades")

    assert result.inserted == 0, "every v2 row is a fill already stored from v1"
    assert set(TradeFill.objects.values_list("idempotency_key", flat=True)) == keys_before


def test_v1_landing_records_still_replay_and_restore_a_deleted_fill():
    rows = v1_rows()
    call_command("migrate", "ingest", BEFORE_V2, verbosity=0)
    try:
        _store_v1_fills_with_the_schema_before_v2(rows)
    finally:
        call_command("migrate", verbosity=0)  # every app: migrating ingest back may unapply dependants
    times = sorted(TradeFill.objects.values_list("traded_at", flat=True))
    since, until = times[0], times[-1] + timedelta(seconds=1)
    total = TradeFill.objects.count()
    assert LandingRecord.objects.filter(source="data_api").count() == len(rows)

    complete = replay_window(target="trades", since=since, until=until, from_landing=True)
    assert complete.stats_json["inserted"] == 0, complete.error_text

    TradeFill.objects.filter(pk=TradeFill.objects.order_by("pk").first().pk).delete()
    restored = replay_window(target="trades", since=since, until=until, from_landing=True)
    assert restored.stats_json["inserted"] == 1, restored.error_text
    assert TradeFill.objects.count() == total
