"""Win rate and ROI in scoring come from the wallet ledger where the wallet has one: resolved
positions of known cost (a loser never redeemed included), and the ROI over positions of known
cost — a position whose shares came from before the known history is left out, not a loss."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.changes import changed_wallets_push
from marts import ledger_services
from marts.models import WalletLedgerSummary
from marts.services import changed_wallets_drain
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.formulas import wilson_lower_bound
from scoring.models import WalletSnapshot
from tests.test_marts_ledger_marks import activity_land

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]
D = Decimal


def _trade(wallet, token, *, at, side, size, price):
    fill_make(wallet=wallet, token=token, side=side, size=size, price=price, at=at)
    activity_land(wallet, token, at=at, size=size, price=price, side=side)


def hand_computed_wallet_make():
    """The wallet below, with its fills, its landed activity rows and its ledger computed."""
    now = timezone.now()
    day = now - timedelta(days=2)
    wallet = wallet_make()
    # A: Yes won; the wallet held 100 No bought at 0.40 and never redeemed them: a loss of 40.
    _a, (_a_yes, a_no) = market_make(winner_index=0, resolved_at=now - timedelta(days=1))
    _trade(wallet, a_no, at=day, side="BUY", size=100, price="0.40")
    # B: it buys 10 Yes at 0.60 and sells 50 at 0.70: 40 came from before the known history, so
    # the position's cost basis is unknown and it is left out (the fills alone count +1 on 6).
    _b, (b_yes, _b_no) = market_make(latest_prices=["0.70", "0.30"])
    _trade(wallet, b_yes, at=day + timedelta(minutes=1), side="BUY", size=10, price="0.60")
    _trade(wallet, b_yes, at=day + timedelta(minutes=2), side="SELL", size=50, price="0.70")
    # C: Yes won; 100 Yes bought at 0.50, redeemed for 100: a win of 50.
    _c, (c_yes, _c_no) = market_make(winner_index=0, resolved_at=now - timedelta(days=1))
    _trade(wallet, c_yes, at=day + timedelta(minutes=3), side="BUY", size=100, price="0.50")
    activity_land(wallet, c_yes, kind="REDEEM", at=now - timedelta(hours=20), size=100, usdc=100)
    # D: open; 10 Yes bought at 0.20, marked at 0.30: +1 unrealised.
    _d, (d_yes, _d_no) = market_make(latest_prices=["0.30", "0.70"])
    _trade(wallet, d_yes, at=day + timedelta(minutes=4), side="BUY", size=10, price="0.20")
    # E: Yes won; a SPLIT of 100 (each side at 0.50), 100 Yes sold at 0.70 (+20, sold out before
    # it paid: not a resolved position), 100 No kept and never redeemed: a loser of −50 that the
    # fills never show (they see only a sale of shares never bought).
    _e, (e_yes, _e_no) = market_make(winner_index=0, resolved_at=now - timedelta(days=1))
    activity_land(wallet, e_yes, kind="SPLIT", at=day + timedelta(minutes=5), size=100, usdc=100)
    _trade(wallet, e_yes, at=day + timedelta(minutes=5, seconds=1), side="SELL", size=100, price="0.70")

    ledger_services.wallet_ledgers_compute(wallet_ids=[wallet.pk])
    return wallet


def test_a_hand_computed_wallet_scores_on_its_ledgers_win_rate_and_roi():
    wallet = hand_computed_wallet_make()
    summary = WalletLedgerSummary.objects.get(wallet=wallet)
    # Resolved with known cost: A (lost), C (won), E's No (lost). Known-cost PnL
    # −40 + 50 + 1 + 20 − 50 = −19 on a pre-fee cost of 40 + 50 + 2 + 50 + 50 = 192.
    assert (summary.resolved_positions, summary.winning_positions, summary.unknown_cost_positions) == (3, 1, 1)
    assert (summary.known_cost_pnl, summary.invested) == (D(-19), D(192))

    changed_wallets_push(wallet_ids=[wallet.pk])
    changed_wallets_drain()
    snapshot = WalletSnapshot.objects.get(wallet=wallet)
    # From the fills alone the ROI would be (−40 + 1 + 50 + 1) / (40 + 6 + 50 + 2) = 12 / 98.
    assert (snapshot.resolved_positions, snapshot.winning_positions) == (3, 1)
    assert snapshot.win_rate == (D(1) / D(3)).quantize(D("1e-12"))
    assert snapshot.roi == (D(-19) / D(192)).quantize(D("1e-12"))

    # The score by hand (scoring.formulas): L = Wilson(1 of 3), r = −19 / (192 + 1000), E = 0.5
    # (no news), S = stability / 100, evidence = 3 resolved + 0.1 · 6 trades.
    lower = wilson_lower_bound(1, 3)
    roi_term = 0.5 + 0.5 * math.tanh((-19 / 1192) / 0.2)
    raw = 0.40 * lower + 0.35 * roi_term + 0.15 * 0.5 + 0.10 * float(snapshot.stability_score) / 100
    evidence = 3 + 0.1 * 6
    confidence = evidence / (evidence + 20)
    expected = round(100 * (confidence * raw + (1 - confidence) * 0.25), 2)
    assert float(snapshot.smart_score) == pytest.approx(expected, abs=0.011)


def test_a_wallet_without_a_ledger_keeps_the_win_rate_and_roi_of_its_fills():
    now = timezone.now()
    wallet = wallet_make()
    _m, (yes, _no) = market_make(winner_index=0, resolved_at=now - timedelta(hours=1))
    fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.40", at=now - timedelta(hours=3))
    changed_wallets_push(wallet_ids=[wallet.pk])
    changed_wallets_drain()
    snapshot = WalletSnapshot.objects.get(wallet=wallet)
    assert (snapshot.resolved_positions, snapshot.winning_positions, snapshot.win_rate) == (1, 1, D(1))
    assert snapshot.roi == D("1.5")  # 10 × (1 − 0.40) / 4
