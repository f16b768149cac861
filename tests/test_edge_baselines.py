"""Edge baselines from sealed days (scoring.baselines) equal the baselines read from every fill of
the window — after sealing, with news arriving for sealed days, and with a late fill into a sealed
day, which the drain marks due and the seal job recomputes."""

from __future__ import annotations

import random
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from ingest.metrics import metrics_render
from ingest.models import OffchainEvent, OffchainEventMarket, TradeFill
from marts.services import wallet_batch_compute
from marts.testing import compute_redis, fill_build, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.baselines import (
    day_start,
    edge_days_mark_due,
    edge_days_seal,
    market_baselines,
    news_counts_by_day,
    news_for_day,
    sealed_through,
)
from scoring.metrics import edge_seal_metric_families
from scoring.models import EdgeSealedDay, MarketEdgeDay, MarketEdgeDayDue
from scoring.selectors import market_baselines_compute
from scoring.services import edge_baselines

DAYS = 6


@pytest.fixture(autouse=True)
def _short_window(settings):
    settings.EDGE_BASELINE_DAYS = DAYS
    edge_baselines.clear()
    yield
    edge_baselines.clear()


def _news(market, moment, *, kind=OffchainEvent.Kind.FEED):
    event = OffchainEvent.objects.create(
        source="test:feed", source_event_id=f"{market.pk}:{moment.isoformat()}:{random.random()}", kind=kind,
        event_time=moment, title="News",
    )
    OffchainEventMarket.objects.create(event=event, market=market, event_time=moment)


def _world(now, rng, *, at_midnight=True):
    """Markets with random traders over DAYS + 1 days: orders split into several fills, fills on
    both sides of midnight and at its exact instant, news at random and at day edges."""
    markets = [market_make(latest_prices=["0.5", "0.5"]) for _ in range(5)]
    wallets = [wallet_make() for _ in range(10)]
    fills = []
    for _ in range(400):
        market, tokens = rng.choice(markets)
        at = now - timedelta(minutes=rng.uniform(0, (DAYS + 1) * 24 * 60))
        if at_midnight and rng.random() < 0.15:  # at midnight, or just before it
            at = day_start(at) + (timedelta(0) if rng.random() < 0.5 else -timedelta(microseconds=1))
        elif not at_midnight and day_start(at) + timedelta(days=1) - at < timedelta(minutes=2):
            at -= timedelta(minutes=5)  # ingested (seconds later) before its day's last minute
        wallet, token, side = rng.choice(wallets), rng.choice(tokens), rng.choice(["BUY", "SELL"])
        for seconds in range(rng.choice([1, 1, 3])):  # one order in several fills
            fills.append(fill_build(wallet=wallet, token=token, side=side, size=5, price="0.5",
                                    at=at + timedelta(seconds=seconds), ingested_at=at + timedelta(seconds=seconds + 2)))
    TradeFill.objects.bulk_create(fills)
    for market, _tokens in markets:
        for _ in range(8):
            _news(market, now - timedelta(minutes=rng.uniform(0, (DAYS + 1) * 24 * 60)))
        _news(market, day_start(now - timedelta(days=2)))  # at midnight exactly
        _news(market, day_start(now - timedelta(days=3)) + timedelta(minutes=30))  # hits the day before too
        _news(market, now - timedelta(days=2), kind=OffchainEvent.Kind.MARKET_LIFECYCLE)  # never news
    return markets, wallets


def _both(market_ids, now):
    args = {"market_ids": market_ids, "since": now - timedelta(days=DAYS), "until": now,
            "decision_window": timedelta(minutes=5), "window": timedelta(minutes=60)}
    return market_baselines(**args), market_baselines_compute(**args)


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_sealed_days_give_the_baselines_of_every_fill_through_news_and_late_fills():
    now = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    rng = random.Random(7)
    markets, _wallets = _world(now, rng)
    ids = [market.pk for market, _ in markets]

    result = edge_days_seal(now=now, time_budget_seconds=600)
    assert result["days_sealed"] == DAYS - 1 and result["rows"] > 0
    assert sealed_through() == (day_start(now) - timedelta(days=1)).date()
    sealed, scanned = _both(ids, now)
    assert sealed == scanned and sum(b.decisions for b in scanned.values()) > 100
    assert sum(b.hits for b in scanned.values()) > 0

    # News for a sealed day after it was sealed: the reader sees the count change and reads it live.
    target_market, target_tokens = markets[0]
    sealed_day = day_start(now) - timedelta(days=3)
    _news(target_market, sealed_day + timedelta(hours=12))
    sealed, scanned = _both(ids, now)
    assert sealed == scanned

    # A backfilled fill in a sealed day, of a wallet new to Arbitra: not in the stored counts...
    newcomer = wallet_make()
    late_at = sealed_day - timedelta(days=1) + timedelta(hours=11, minutes=50)  # another sealed day
    TradeFill.objects.bulk_create([fill_build(wallet=newcomer, token=target_tokens[0], side="BUY", size=5,
                                              price="0.5", at=late_at, ingested_at=timezone.now())])
    sealed, scanned = _both(ids, now)
    assert sealed[target_market.pk].decisions == scanned[target_market.pk].decisions - 1  # stale until marked
    # ...until the drain computes the wallet: it marks the day due, and readers read it live.
    wallet_batch_compute(wallet_ids=[newcomer.pk], now=now)
    assert list(MarketEdgeDayDue.objects.values_list("market_id", "day")) == [(target_market.pk, late_at.date())]
    sealed, scanned = _both(ids, now)
    assert sealed == scanned

    # The next seal pass recomputes the due day and the day the news changed, and clears the mark.
    result = edge_days_seal(now=now + timedelta(minutes=10), time_budget_seconds=600)
    assert result["days_sealed"] == 0 and result["due_recomputed"] >= 1 and result["news_due"] >= 1
    assert not MarketEdgeDayDue.objects.exists()
    row = MarketEdgeDay.objects.get(market=target_market, day=late_at.date())
    assert row.computed_at == now + timedelta(minutes=10)
    sealed, scanned = _both(ids, now)
    assert sealed == scanned


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_a_wallet_computed_again_marks_nothing_and_live_fills_are_never_due():
    now = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    markets, wallets = _world(now, random.Random(11), at_midnight=False)
    edge_days_seal(now=now, time_budget_seconds=600)
    wallet_batch_compute(wallet_ids=[w.pk for w in wallets], now=now)
    # Every fill was ingested seconds after it traded, long before its day ended and was sealed
    # (one ingested after its day's last minute would be marked: it may have missed the seal).
    assert not MarketEdgeDayDue.objects.exists()
    _market, tokens = markets[1]
    TradeFill.objects.bulk_create([fill_build(wallet=wallets[0], token=tokens[0], side="SELL", size=1, price="0.5",
                                              at=now - timedelta(minutes=3), ingested_at=now)])
    wallet_batch_compute(wallet_ids=[wallets[0].pk], now=now + timedelta(seconds=5))
    assert not MarketEdgeDayDue.objects.exists()
    sealed, scanned = _both([m.pk for m, _ in markets], now)
    assert sealed == scanned


@pytest.mark.django_db
def test_a_decision_window_that_does_not_divide_a_day_reads_every_fill(settings):
    now = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    markets, _wallets = _world(now, random.Random(3))
    settings.EDGE_DECISION_WINDOW_SECONDS = 7 * 60  # a slot can straddle midnight
    result = edge_days_seal(now=now)
    assert result["days_sealed"] == 0 and "does not divide a day" in result["skipped"]
    args = {"market_ids": [m.pk for m, _ in markets], "since": now - timedelta(days=DAYS), "until": now,
            "decision_window": timedelta(minutes=7), "window": timedelta(minutes=60)}
    assert market_baselines(**args) == market_baselines_compute(**args)


@pytest.mark.parametrize("window_minutes", [60, 1440, 2000])
def test_news_counts_of_every_day_at_once_equal_the_count_of_each_day(window_minutes):
    rng = random.Random(window_minutes)
    start = day_start(timezone.now()) - timedelta(days=10)
    times = sorted([start + timedelta(minutes=rng.uniform(0, 9 * 24 * 60)) for _ in range(60)]
                   + [start + timedelta(days=3), start + timedelta(days=4, microseconds=1)])
    window = timedelta(minutes=window_minutes)
    counts = news_counts_by_day(times, window)
    for offset in range(-2, 12):
        day = (start + timedelta(days=offset)).date()
        assert counts.get(day, 0) == news_for_day(times, day, window), day


@pytest.mark.django_db
def test_a_day_never_sealed_inside_the_sealed_ones_is_read_from_the_fills():
    now = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    markets, _wallets = _world(now, random.Random(5))
    edge_days_seal(now=now, time_budget_seconds=600)
    hole = (day_start(now) - timedelta(days=3)).date()
    # The day's seal record is gone but its rows are not (a day sealed under other settings is
    # the same): the rows must not count beside the day read from the fills.
    EdgeSealedDay.objects.filter(day=hole).delete()
    assert MarketEdgeDay.objects.filter(day=hole).exists()
    sealed, scanned = _both([m.pk for m, _ in markets], now)
    assert sealed == scanned
    assert edge_days_seal(now=now, time_budget_seconds=600)["days_sealed"] == 1  # the next pass fills the hole
    assert MarketEdgeDay.objects.filter(day=hole).exists()


@pytest.mark.django_db
def test_metrics_report_the_sealed_days_the_seal_lag_and_the_days_due():
    text = metrics_render(edge_seal_metric_families())
    assert "arbitra_edge_sealed_days 0" in text and "arbitra_edge_seal_lag_seconds -1" in text
    now = timezone.now()
    markets, _wallets = _world(now, random.Random(2))
    edge_days_seal(now=now, time_budget_seconds=600)
    edge_days_mark_due(days=[(markets[0][0].pk, (day_start(now) - timedelta(days=2)).date())])
    text = metrics_render(edge_seal_metric_families())
    assert f"arbitra_edge_sealed_days {DAYS - 1}" in text and "arbitra_edge_days_due 1" in text
    lag = float(next(line for line in text.splitlines() if line.startswith("arbitra_edge_seal_lag_seconds ")).split()[1])
    assert 0 <= lag <= 86_400 + 60


@pytest.mark.django_db
def test_days_sealed_under_other_settings_are_read_from_the_fills_and_sealed_again(settings):
    now = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    markets, _wallets = _world(now, random.Random(9))
    edge_days_seal(now=now, time_budget_seconds=600)
    settings.EDGE_DECISION_WINDOW_SECONDS = 600  # another slot: every stored count is for 5-minute slots
    settings.EDGE_WINDOW_MINUTES = 30
    args = {"market_ids": [m.pk for m, _ in markets], "since": now - timedelta(days=DAYS), "until": now,
            "decision_window": timedelta(minutes=10), "window": timedelta(minutes=30)}
    assert market_baselines(**args) == market_baselines_compute(**args)
    # Half-way through sealing again: days under the new rules beside days still holding the old rows.
    assert edge_days_seal(now=now, time_budget_seconds=600, max_days=2)["days_sealed"] == 2
    assert market_baselines(**args) == market_baselines_compute(**args)
    assert edge_days_seal(now=now, time_budget_seconds=600)["days_sealed"] == DAYS - 3
    assert set(EdgeSealedDay.objects.values_list("rules", flat=True)) == {"slot=600s window=1800s news=feed,manual"}
    assert market_baselines(**args) == market_baselines_compute(**args)
