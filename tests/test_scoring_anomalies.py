"""Anomalies against the wallet's own baseline and the market, with evidence and cooldowns.

Fills that trigger an alert here are live (stored within ANOMALY_LIVE_WINDOW_SECONDS of their trade
time, `live_fill`); the wallet's norm may come from history fetched at any time."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.models import OffchainEvent, OffchainEventMarket, OutcomeToken
from marts.services import wallet_batch_compute
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import Anomaly, FeedEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]


def live_fill(**kwargs):
    """A fill stored a few seconds after it traded: news when it arrived."""
    return fill_make(ingested_at=kwargs["at"] + timedelta(seconds=5), **kwargs)


@pytest.fixture
def regular():
    """A wallet with a 30-day norm of 10 USDC fills, trading a market with 50,000 USDC liquidity."""
    now = timezone.now().replace(microsecond=0)
    market, (yes, no) = market_make(latest_prices=["0.5", "0.5"], liquidity=50000)
    wallet = wallet_make()
    for day in range(2, 12):
        fill_make(wallet=wallet, token=no, side="BUY", size=20, price="0.5", at=now - timedelta(days=day))
    return {"now": now, "wallet": wallet, "market": market, "yes": yes}


def test_a_fill_far_above_the_wallets_norm_and_a_share_of_liquidity_is_a_large_position(regular):
    now, wallet = regular["now"], regular["wallet"]
    fill = live_fill(wallet=wallet, token=regular["yes"], side="BUY", size=4000, price="0.5", at=now - timedelta(hours=3))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    alert = Anomaly.objects.get(wallet=wallet, alert_type="large_position")
    assert alert.market_id == regular["market"].pk
    assert alert.severity == "high"  # 200× the median
    assert alert.evidence["fill"] == fill.idempotency_key
    assert alert.evidence["usdc"] == "2000.00"
    assert alert.evidence["wallet_median_30d_usdc"] == "10.00"
    assert alert.evidence["share_of_liquidity"] == "0.0400"
    assert alert.observed_at == fill.traded_at
    event = FeedEvent.objects.get(wallet=wallet, event_type="anomaly")
    assert event.payload["after"] == {"alert_type": "large_position", "severity": "high"}
    assert event.payload["reason_code"] == "large_position"
    assert event.action_required is True


def test_a_large_fill_that_is_small_for_the_market_is_not_an_anomaly(regular):
    now, wallet = regular["now"], regular["wallet"]
    regular["market"].liquidity = Decimal(10_000_000)
    regular["market"].save()
    live_fill(wallet=wallet, token=regular["yes"], side="BUY", size=4000, price="0.5", at=now - timedelta(hours=3))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert not Anomaly.objects.filter(wallet=wallet).exists()


def test_the_same_type_does_not_fire_again_within_the_cooldown_but_does_after_it(regular, settings):
    settings.ANOMALY_COOLDOWN_SECONDS = 6 * 3600
    now, wallet, yes = regular["now"], regular["wallet"], regular["yes"]
    live_fill(wallet=wallet, token=yes, side="BUY", size=4000, price="0.5", at=now - timedelta(hours=20))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now - timedelta(hours=19))
    live_fill(wallet=wallet, token=yes, side="BUY", size=5000, price="0.5", at=now - timedelta(hours=18))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now - timedelta(hours=17))
    assert Anomaly.objects.filter(wallet=wallet, alert_type="large_position").count() == 1

    live_fill(wallet=wallet, token=yes, side="BUY", size=6000, price="0.5", at=now - timedelta(hours=10))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)  # redelivered: nothing new
    times = list(Anomaly.objects.filter(wallet=wallet, alert_type="large_position").order_by("observed_at")
                 .values_list("observed_at", flat=True))
    assert times == [now - timedelta(hours=20), now - timedelta(hours=10)]
    assert FeedEvent.objects.filter(wallet=wallet, event_type="anomaly").count() == 2


def test_a_burst_of_trades_against_a_quiet_history_is_a_rate_spike(regular):
    now, wallet, yes = regular["now"], regular["wallet"], regular["yes"]
    for minute in range(25):
        live_fill(wallet=wallet, token=yes, side="BUY", size=20, price="0.5", at=now - timedelta(hours=2, minutes=minute))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    alert = Anomaly.objects.get(wallet=wallet, alert_type="trading_rate_spike")
    assert alert.evidence["trades_in_lookback"] == 25
    assert alert.evidence["baseline_trades_per_day"] == "0.33"
    assert alert.severity == "high"  # 25 trades against a floor of 1 a day


def test_a_new_wallet_opening_with_a_large_trade_is_flagged():
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    live_fill(wallet=wallet, token=yes, side="BUY", size=30000, price="0.5", at=now - timedelta(hours=1))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    alert = Anomaly.objects.get(wallet=wallet, alert_type="fresh_wallet_large_trade")
    assert alert.severity == "medium"  # 15,000 is 3× the 5,000 floor
    assert alert.evidence["fill_number"] == 1


def test_a_large_fill_shortly_before_the_news_is_pre_event_timing():
    now = timezone.now().replace(microsecond=0)
    market, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    live_fill(wallet=wallet, token=yes, side="BUY", size=2000, price="0.5", at=now - timedelta(hours=3))
    event = OffchainEvent.objects.create(source="feed", source_event_id="x", title="News",
                                         event_time=now - timedelta(hours=2, minutes=52))
    OffchainEventMarket.objects.create(event=event, market=market, event_time=event.event_time)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    alert = Anomaly.objects.get(wallet=wallet, alert_type="pre_event_timing")
    assert alert.severity == "high"  # 8 minutes before
    assert alert.evidence["minutes_before_event"] == 8.0


def test_a_pnl_jump_is_realised_pnl_over_the_window_never_a_mark_against_a_stored_level(regular):
    now, wallet, yes = regular["now"], regular["wallet"], regular["yes"]
    fill_make(wallet=wallet, token=yes, side="BUY", size=10000, price="0.1", at=now - timedelta(days=3))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)  # marked at 0.5: +4,000 unrealised
    OutcomeToken.objects.filter(pk=yes.pk).update(latest_price=Decimal("0.9"))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=5))  # +4,000 more, still a mark
    assert not Anomaly.objects.filter(alert_type="pnl_jump").exists()

    live_fill(wallet=wallet, token=yes, side="SELL", size=10000, price="0.5", at=now - timedelta(minutes=30))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=10))
    alert = Anomaly.objects.get(wallet=wallet, alert_type="pnl_jump")
    assert alert.evidence["change"] == "4000.00"  # (0.5 − 0.1) × 10,000 realised in the window
    assert alert.evidence["baseline_daily_abs_usdc"] == "0.00"
    jump = FeedEvent.objects.get(wallet=wallet, event_type="pnl_jump")
    assert (jump.payload["before"], jump.payload["after"], jump.payload["reason_code"]) == (0.0, 4000.0, "pnl_up")
    assert not FeedEvent.objects.filter(wallet=wallet, event_type="anomaly", reason_code="pnl_jump").exists()  # its own kind


def test_a_sell_fetched_by_a_backfill_moves_pnl_but_raises_no_jump(regular):
    now, wallet, yes = regular["now"], regular["wallet"], regular["yes"]
    fill_make(wallet=wallet, token=yes, side="BUY", size=10000, price="0.1", at=now - timedelta(days=3))
    fill_make(wallet=wallet, token=yes, side="SELL", size=10000, price="0.5", at=now - timedelta(hours=5), ingested_at=now)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert not Anomaly.objects.filter(wallet=wallet).exists()


def test_a_backfilled_large_first_trade_raises_no_alert():
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    # Traded an hour ago, stored now by a history fetch: the same fill live would be flagged.
    fill_make(wallet=wallet, token=yes, side="BUY", size=30000, price="0.5", at=now - timedelta(hours=1), ingested_at=now)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert not Anomaly.objects.filter(wallet=wallet).exists()
    assert not FeedEvent.objects.filter(wallet=wallet, event_type="anomaly").exists()


def test_the_cooldown_is_per_market(regular):
    now, wallet, yes = regular["now"], regular["wallet"], regular["yes"]
    other, (other_yes, _no) = market_make(latest_prices=["0.5", "0.5"], liquidity=50000)
    live_fill(wallet=wallet, token=yes, side="BUY", size=4000, price="0.5", at=now - timedelta(hours=3))
    live_fill(wallet=wallet, token=other_yes, side="BUY", size=4000, price="0.5", at=now - timedelta(hours=2))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    markets = set(Anomaly.objects.filter(wallet=wallet, alert_type="large_position").values_list("market_id", flat=True))
    assert markets == {regular["market"].pk, other.pk}
