"""Position accounting checked against hand-computed numbers.

Wallet W, all amounts in USDC:
  market A (open, YES latest price 0.55):
    BUY 100 YES @ 0.40 (40)          shares 100, cost 40
    BUY 100 YES @ 0.60 (60)          shares 200, cost 100, average 0.50
    SELL 50 YES @ 0.70 (35)          realised 35 − 25 = +10, shares 150, cost 75
    SELL 150 YES @ 0.30 (45)         realised 45 − 75 = −30, shares 0 (closed)
    BUY 10 YES @ 0.50 (5)            re-buy: shares 10, cost 5 → unrealised 10 × 0.55 − 5 = +0.50
  market B (YES wins later), both outcomes held:
    BUY 100 YES @ 0.30 (30)          settles 100 × 1 − 30 = +70 (won)
    BUY 50 NO @ 0.60 (30)            never redeemed loser: 0 − 30 = −30 (lost)
  market C (void):
    BUY 40 YES @ 0.25 (10)           refunded at 0.5: 20 − 10 = +10
  market D (no latest price), with a fee:
    BUY 10 YES @ 0.50 paying 5.10    fee 0.10, cost 5.10; marked at another wallet's last fill 0.60:
                                     unrealised 6 − 5.10 = +0.90
Totals: realised −20 + 70 − 30 + 10 = 30; unrealised 1.40; trading PnL 31.40; fees 0.10;
resolved positions 3 (B YES, B NO, C YES), 2 winning → win rate 2/3; bought 180.10; volume 260.10.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.changes import changed_wallets_depth, changed_wallets_push
from marts.models import WalletPosition, WalletTradeAgg1h, WalletTradeAgg5m
from marts.services import changed_wallets_drain, market_resolution_requeue, wallet_batch_compute
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import WalletSnapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]

D = Decimal


def _position(wallet, token) -> WalletPosition:
    return WalletPosition.objects.get(wallet=wallet, token_id=token.token_id)


@pytest.fixture
def book():
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(days=3)
    wallet, other = wallet_make(), wallet_make()
    _a, (a_yes, _a_no) = market_make(latest_prices=["0.55", "0.45"])
    market_b, (b_yes, b_no) = market_make()
    _c, (c_yes, _c_no) = market_make(is_void=True, resolved_at=start + timedelta(hours=20))
    _d, (d_yes, _d_no) = market_make()
    steps = [
        (a_yes, "BUY", 100, "0.40", None), (a_yes, "BUY", 100, "0.60", None), (a_yes, "SELL", 50, "0.70", None),
        (a_yes, "SELL", 150, "0.30", None), (a_yes, "BUY", 10, "0.50", None),
        (b_yes, "BUY", 100, "0.30", None), (b_no, "BUY", 50, "0.60", None),
        (c_yes, "BUY", 40, "0.25", None), (d_yes, "BUY", 10, "0.50", "5.10"),
    ]
    for minute, (token, side, size, price, usdc) in enumerate(steps):
        fill_make(wallet=wallet, token=token, side=side, size=size, price=price, usdc=usdc,
                  at=start + timedelta(minutes=10 * minute))
    fill_make(wallet=other, token=d_yes, side="BUY", size=1, price="0.60", at=start + timedelta(hours=5))
    return {"now": now, "wallet": wallet, "market_b": market_b, "a_yes": a_yes, "b_yes": b_yes, "b_no": b_no,
            "c_yes": c_yes, "d_yes": d_yes}


def test_partial_sells_and_a_rebuy_use_the_average_cost(book):
    wallet_batch_compute(wallet_ids=[book["wallet"].pk], now=book["now"])
    position = _position(book["wallet"], book["a_yes"])
    assert position.realized_pnl == D("-20")
    assert position.shares == D(10)
    assert position.avg_cost == D("0.5")
    assert position.mark_price == D("0.55")
    assert position.unrealized_pnl == D("0.5")
    assert position.status == "open"
    assert (position.bought_usdc, position.sold_usdc, position.trades) == (D(105), D(80), 5)


def test_the_fee_is_what_usdc_size_pays_beyond_the_price_and_the_mark_falls_back_to_the_last_fill(book):
    wallet_batch_compute(wallet_ids=[book["wallet"].pk], now=book["now"])
    position = _position(book["wallet"], book["d_yes"])
    assert position.fees == D("0.1")
    assert position.cost_basis == D("5.1")
    assert position.mark_price == D("0.6")
    assert position.unrealized_pnl == D("0.9")


def test_a_resolution_after_the_trades_settles_both_outcomes_and_counts_the_unredeemed_loser(book):
    wallet = book["wallet"]
    wallet_batch_compute(wallet_ids=[wallet.pk], now=book["now"])
    assert _position(wallet, book["b_yes"]).status == "open"
    before = WalletSnapshot.objects.get(wallet=wallet)
    assert before.resolved_positions == 1  # only the void market so far
    assert before.realized_pnl == D(-10)

    market = book["market_b"]
    market.winner_index = 0
    market.closed = True
    market.resolved_at = book["now"] - timedelta(hours=1)
    market.save()
    assert market_resolution_requeue(market_ids=[market.pk]) == 1
    assert changed_wallets_depth() == 1
    changed_wallets_drain()

    won, lost = _position(wallet, book["b_yes"]), _position(wallet, book["b_no"])
    assert (won.status, won.realized_pnl, won.settlement_price, won.shares) == ("won", D(70), D(1), D(0))
    assert (lost.status, lost.realized_pnl, lost.settlement_price, lost.settled_shares) == ("lost", D(-30), D(0), D(50))
    assert won.settled_at == market.resolved_at
    void = _position(wallet, book["c_yes"])
    assert (void.status, void.realized_pnl, void.settlement_price) == ("void", D(10), D("0.5"))

    snapshot = WalletSnapshot.objects.get(wallet=wallet)
    assert snapshot.realized_pnl == D(30)
    assert snapshot.unrealized_pnl == D("1.4")
    assert snapshot.trading_pnl == D("31.4")
    assert snapshot.total_pnl == D("31.4")
    assert snapshot.maker_rebates == D(0)
    assert snapshot.fees_paid == D("0.1")
    assert (snapshot.resolved_positions, snapshot.winning_positions) == (3, 2)
    assert snapshot.win_rate.quantize(D("0.0001")) == D("0.6667")
    assert snapshot.total_trades == 9
    assert snapshot.markets_traded == 4
    assert snapshot.volume_total == D("260.1")
    assert snapshot.roi.quantize(D("0.000001")) == (D("31.4") / D("180.1")).quantize(D("0.000001"))
    assert snapshot.open_positions == 2


def test_buckets_hold_trades_volumes_fees_and_sell_side_realised_pnl(book):
    wallet = book["wallet"]
    wallet_batch_compute(wallet_ids=[wallet.pk], now=book["now"])
    buckets = list(WalletTradeAgg5m.objects.filter(wallet=wallet).order_by("bucket_start"))
    assert sum(b.trades for b in buckets) == 9
    assert sum(b.realized_pnl for b in buckets) == D(-20)  # sells only; settlements are not trades
    assert sum(b.fees for b in buckets) == D("0.1")
    assert sum(b.buy_volume for b in buckets) == D("180.1")
    assert sum(b.sell_volume for b in buckets) == D(80)
    assert all(b.bucket_start.minute % 5 == 0 and b.bucket_start.second == 0 for b in buckets)
    hours = WalletTradeAgg1h.objects.filter(wallet=wallet)
    assert sum(h.trades for h in hours) == 9
    assert sum(h.buy_shares for h in hours) == sum(b.buy_shares for b in buckets) == D(410)


def test_recomputing_the_same_facts_replaces_rows_instead_of_adding(book):
    wallet = book["wallet"]
    for _ in range(3):
        wallet_batch_compute(wallet_ids=[wallet.pk], now=book["now"])
        changed_wallets_push(wallet_ids=[wallet.pk])
        changed_wallets_drain()
    assert sum(b.trades for b in WalletTradeAgg5m.objects.filter(wallet=wallet)) == 9
    assert WalletPosition.objects.filter(wallet=wallet).count() == 5
    assert WalletSnapshot.objects.get(wallet=wallet).total_trades == 9
