"""Feed events for the watchlist: before/after/reason, potential by trade time, unique ids."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from marts.services import wallet_batch_compute
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import FeedEvent, WalletSnapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]


def test_potential_reached_is_stamped_with_the_trade_that_crossed_the_threshold_once(settings):
    settings.POTENTIAL_MIN_TRADES = 3
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    times = [now - timedelta(days=3, hours=h) for h in (5, 4, 3, 2)]
    fill_make(wallet=wallet, token=yes, side="BUY", size=100, price="0.2", at=times[0])
    fill_make(wallet=wallet, token=yes, side="BUY", size=100, price="0.2", at=times[1])
    fill_make(wallet=wallet, token=yes, side="SELL", size=10, price="0.1", at=times[2])  # 3 trades, PnL −1
    fill_make(wallet=wallet, token=yes, side="SELL", size=50, price="0.6", at=times[3])  # PnL +19: crosses
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=1))
    snapshot = WalletSnapshot.objects.get(wallet=wallet)
    assert snapshot.potential_reached_at == times[3]
    event = FeedEvent.objects.get(wallet=wallet, event_type="potential_reached")
    assert event.event_time == times[3]
    assert event.payload["before"] == {"potential": False}
    assert event.payload["after"]["potential"] is True
    assert event.payload["reason_code"] == "crossed_potential_threshold"
    assert event.suggestion and event.suggestion_zh


def test_a_strategy_change_carries_before_after_and_a_reason_and_a_first_label_is_not_one():
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.2", "0.8"])
    wallet = wallet_make()
    for minute in range(4):
        fill_make(wallet=wallet, token=yes, side="BUY", size=1000, price="0.05", at=now - timedelta(hours=5, minutes=minute))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert WalletSnapshot.objects.get(wallet=wallet).strategy_type == "unknown"
    # The fifth trade gives the wallet its first label: shown on it, not pushed as a reclassification.
    fill_make(wallet=wallet, token=yes, side="BUY", size=1000, price="0.05", at=now - timedelta(hours=2))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=1))
    assert WalletSnapshot.objects.get(wallet=wallet).strategy_type == "noise"
    assert not FeedEvent.objects.filter(wallet=wallet, event_type="strategy_change").exists()
    # Selling 1,000 shares bought at 0.05 for 0.75 realises 700 USDC; chance pays 1,000 such shares
    # within 218 (1,000 * sqrt(0.05 * 0.95)), the lucky floor is two of that, 436: a clear win by 0.6.
    fill_make(wallet=wallet, token=yes, side="SELL", size=1000, price="0.75", at=now - timedelta(hours=1))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=2))
    event = FeedEvent.objects.get(wallet=wallet, event_type="strategy_change")
    assert WalletSnapshot.objects.get(wallet=wallet).strategy_type == "lucky"
    assert event.payload == {"before": "noise", "after": "lucky", "reason_code": "strategy_reclassified"}
    assert event.event_time == now + timedelta(minutes=2)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=3))
    assert FeedEvent.objects.filter(wallet=wallet, event_type="strategy_change").count() == 1


def test_a_risk_level_change_says_which_way_it_moved_once_it_has_held(settings):
    settings.SCORING_HOLD_SECONDS = 3600
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(hours=5))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    WalletSnapshot.objects.filter(wallet=wallet).update(risk_level="low")  # as an earlier computation left it
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=1))
    assert WalletSnapshot.objects.get(wallet=wallet).risk_level == "low"  # computed high, not settled yet
    assert not FeedEvent.objects.filter(wallet=wallet, event_type="risk_level_change").exists()
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=61))
    event = FeedEvent.objects.get(wallet=wallet, event_type="risk_level_change")
    assert (event.payload["before"], event.payload["after"], event.reason_code) == ("low", "high", "risk_up")
    assert event.action_required is True


def test_event_ids_are_unique_across_kinds(settings):
    settings.SCORING_HOLD_SECONDS = 0
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    fill_make(wallet=wallet, token=yes, side="BUY", size=30000, price="0.5", at=now - timedelta(hours=1),
              ingested_at=now - timedelta(minutes=59))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    WalletSnapshot.objects.filter(wallet=wallet).update(risk_level="low", strategy_type="quant")
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=1))
    events = list(FeedEvent.objects.filter(wallet=wallet))
    assert {e.event_type for e in events} == {"anomaly", "risk_level_change", "strategy_change"}
    assert len({e.pk for e in events}) == len(events) == 3


def test_the_label_change_a_backfilled_history_brings_is_not_announced():
    now = timezone.now().replace(microsecond=0)
    _m, (yes, no) = market_make(latest_prices=["0.2", "0.8"])
    wallet = wallet_make()
    for minute in range(5):
        fill_make(wallet=wallet, token=yes, side="BUY", size=1000, price="0.2", at=now - timedelta(hours=1, minutes=minute))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert WalletSnapshot.objects.get(wallet=wallet).strategy_type == "noise"
    # The history fetch brings an older winning sale of the other outcome; the wallet is marked backfilled after that computation.
    fill_make(wallet=wallet, token=no, side="BUY", size=1000, price="0.05", at=now - timedelta(days=20))
    fill_make(wallet=wallet, token=no, side="SELL", size=1000, price="0.75", at=now - timedelta(days=19))
    type(wallet).objects.filter(pk=wallet.pk).update(history_backfilled_at=now + timedelta(seconds=30))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=1))
    assert WalletSnapshot.objects.get(wallet=wallet).strategy_type == "lucky"
    assert not FeedEvent.objects.filter(wallet=wallet, event_type="strategy_change").exists()
    # From then on its label stands on the whole record: a later change is announced.
    fill_make(wallet=wallet, token=yes, side="SELL", size=5000, price="0.01", at=now + timedelta(minutes=2))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(hours=3))
    assert WalletSnapshot.objects.get(wallet=wallet).strategy_type == "noise"
    event = FeedEvent.objects.get(wallet=wallet, event_type="strategy_change")
    assert (event.payload["before"], event.payload["after"]) == ("lucky", "noise")
