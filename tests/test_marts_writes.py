"""The drain's writes: only rows whose stored values change are written, and what is written
is what a rebuild from nothing would store."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from ingest.models import TradeFill
from marts.bulk import copy_rows, stored_money
from marts.models import WalletComputeState, WalletDailyFeature, WalletPosition, WalletTradeAgg5m
from marts.selectors import marts_checksum
from marts.services import wallet_batch_compute
from marts.testing import (  # noqa: F401 - compute_redis is a fixture
    compute_redis,
    fill_build,
    fill_make,
    market_make,
    wallet_make,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]


def _versions(model, wallet) -> dict:
    """Row version (xmin) per natural key: it changes whenever PostgreSQL writes the row."""
    key = {"WalletPosition": "token_id", "WalletDailyFeature": "day", "WalletTradeAgg5m": "bucket_start"}[model.__name__]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key}, id, xmin::text FROM {model._meta.db_table} WHERE wallet_id = %s",  # noqa: S608
            [wallet.pk],
        )
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def test_a_new_fill_writes_only_the_rows_it_changes_and_matches_a_rebuild():
    now = timezone.now().replace(microsecond=0)
    _a, (a_yes, _a_no) = market_make(latest_prices=["0.5", "0.5"])
    _b, (b_yes, _b_no) = market_make(latest_prices=["0.3", "0.7"])
    wallet = wallet_make()
    fill_make(wallet=wallet, token=a_yes, side="BUY", size=10, price="0.4", at=now - timedelta(days=5))
    fill_make(wallet=wallet, token=b_yes, side="BUY", size=20, price="0.2", at=now - timedelta(days=4))
    fill_make(wallet=wallet, token=a_yes, side="SELL", size=4, price="0.6", at=now - timedelta(days=3))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    positions = _versions(WalletPosition, wallet)
    days = _versions(WalletDailyFeature, wallet)
    buckets = _versions(WalletTradeAgg5m, wallet)

    # Another buy of token A today: A's position, today's row and a new bucket change; B and the
    # earlier days and buckets do not.
    fill_make(wallet=wallet, token=a_yes, side="BUY", size=5, price="0.5", at=now - timedelta(minutes=2),
              ingested_at=timezone.now() + timedelta(seconds=1))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)

    after_positions = _versions(WalletPosition, wallet)
    assert after_positions[b_yes.token_id] == positions[b_yes.token_id]
    assert after_positions[a_yes.token_id][0] == positions[a_yes.token_id][0]  # updated in place, same row
    assert after_positions[a_yes.token_id][1] != positions[a_yes.token_id][1]
    after_days = _versions(WalletDailyFeature, wallet)
    assert {day: version for day, version in after_days.items() if day in days} == days
    assert len(after_days) == len(days) + 1
    after_buckets = _versions(WalletTradeAgg5m, wallet)
    assert {start: version for start, version in after_buckets.items() if start in buckets} == buckets
    assert len(after_buckets) == len(buckets) + 1
    assert WalletPosition.objects.get(wallet=wallet, token_id=a_yes.token_id).shares == Decimal(11)

    incremental = marts_checksum(wallet_ids=[wallet.pk])
    for model in (WalletPosition, WalletDailyFeature, WalletTradeAgg5m, WalletComputeState):
        model.objects.filter(wallet=wallet).delete()
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert marts_checksum(wallet_ids=[wallet.pk]) == incremental


def test_recomputing_unchanged_facts_writes_no_mart_row():
    now = timezone.now().replace(microsecond=0)
    _m, (yes, no) = market_make(latest_prices=["0.45", "0.55"])
    wallet = wallet_make()
    TradeFill.objects.bulk_create([
        fill_build(wallet=wallet, token=yes, side="BUY", size=3, price="0.3", at=now - timedelta(days=2, hours=1)),
        fill_build(wallet=wallet, token=yes, side="BUY", size=4, price="0.25", at=now - timedelta(days=2)),
        fill_build(wallet=wallet, token=yes, side="SELL", size=1, price="0.7", at=now - timedelta(days=1)),
        fill_build(wallet=wallet, token=no, side="BUY", size=7, price="0.61", usdc="4.2771", at=now - timedelta(hours=3)),
    ])
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    # 1.9 USDC over 7 shares has more than 12 decimals: compared as the column stores it.
    assert WalletPosition.objects.get(wallet=wallet, token_id=yes.token_id).avg_cost == Decimal("0.271428571429")
    before = {model: _versions(model, wallet) for model in (WalletPosition, WalletDailyFeature, WalletTradeAgg5m)}
    WalletComputeState.objects.filter(wallet=wallet).delete()  # forces every bucket into scope too
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=1))
    assert {model: _versions(model, wallet) for model in before} == before


@pytest.mark.parametrize(
    "value",
    ["1.0000000000005", "-1.0000000000005", "1.0000000000025", "-2.0000000000035", "0.00000000000049999",
     "123456789.123456789012345678", "-0.0000000000004", "7"],
)
def test_money_is_compared_rounded_as_postgresql_stores_it(value):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::numeric(30, 12)", [value])
        assert stored_money(Decimal(value)) == cursor.fetchone()[0]


def test_copy_escapes_text_that_would_break_the_row_format():
    wallet = wallet_make()
    market, _tokens = market_make()
    awkward = "tab\there\\back\nnew\rline"
    with connection.cursor() as cursor:
        copy_rows(cursor, "wallet_position", [
            "wallet_id", "token_id", "market_id", "status", "trades", "shares", "avg_cost", "cost_basis",
            "bought_shares", "bought_usdc", "sold_shares", "sold_usdc", "fees", "realized_pnl", "settled_shares",
            "unrealized_pnl", "first_trade_at", "last_trade_at",
        ], [(wallet.pk, awkward, market.pk, "open", 1, *[Decimal(0)] * 11, timezone.now(), timezone.now())])
    assert WalletPosition.objects.get(wallet=wallet).token_id == awkward
