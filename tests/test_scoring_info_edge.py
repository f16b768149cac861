"""Information edge: each fill paired with the first event after it; signs, statistics, labels."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from ingest.models import OffchainEvent, OffchainEventMarket
from marts.services import wallet_batch_compute
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.formulas import info_edge_compute
from scoring.models import WalletSnapshot


def _spread(mean: float, half_width: float) -> list[float]:
    return [mean - half_width, mean - half_width / 2, mean, mean + half_width / 2, mean + half_width]


def test_fewer_than_five_samples_is_insufficient_data_even_when_striking():
    edge = info_edge_compute([-120.0, -121.0, -119.0, -120.5])
    assert edge.samples == 4
    assert edge.label == "insufficient_data"


def test_a_significant_mean_of_thirty_minutes_before_the_news_is_a_processing_edge():
    edge = info_edge_compute(_spread(-30.0, 10.0))
    assert edge.p < 0.05
    assert edge.label == "processing_edge"


def test_a_significant_mean_just_short_of_thirty_minutes_is_only_a_mild_edge():
    edge = info_edge_compute(_spread(-29.0, 10.0))
    assert edge.p < 0.05
    assert edge.label == "mild_edge"


def test_a_mean_well_before_the_news_with_p_between_five_and_ten_percent_is_a_mild_edge():
    # z = mean · √n / s = −40 · √5 / (0.7906 · 62.85) ≈ −1.80 → p ≈ 0.072
    edge = info_edge_compute(_spread(-40.0, 62.85))
    assert 0.05 < edge.p < 0.10
    assert edge.z == pytest.approx(-1.8, abs=0.01)
    assert edge.p == pytest.approx(math.erfc(1.8 / math.sqrt(2)), abs=1e-3)
    assert edge.label == "mild_edge"


def test_a_noisy_mean_is_no_edge():
    edge = info_edge_compute(_spread(-40.0, 200.0))
    assert edge.p > 0.10
    assert edge.label == "no_edge"


def test_trading_at_the_moment_of_the_news_is_no_edge():
    edge = info_edge_compute([0.0] * 6)
    assert (edge.mean_minutes, edge.p, edge.z, edge.label) == (0.0, 1.0, None, "no_edge")


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_a_fill_pairs_with_the_first_event_after_it_so_trading_before_the_news_is_negative(settings):
    settings.INFO_EDGE_HORIZON_MINUTES = 240
    now = timezone.now().replace(second=0, microsecond=0)
    market, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    news = [now - timedelta(hours=10), now - timedelta(hours=9, minutes=30)]
    for number, moment in enumerate(news):
        event = OffchainEvent.objects.create(source="feed", source_event_id=f"n{number}", event_time=moment, title="News")
        OffchainEventMarket.objects.create(event=event, market=market, event_time=moment)
    # 60 and 45 minutes before the first item, 20 before the second, one after both (unpaired),
    # one more than the horizon before (unpaired).
    for at in [news[0] - timedelta(minutes=60), news[0] - timedelta(minutes=45), news[1] - timedelta(minutes=20),
               news[1] + timedelta(minutes=5), news[0] - timedelta(minutes=300)]:
        fill_make(wallet=wallet, token=yes, side="BUY", size=1, price="0.5", at=at)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    snapshot = WalletSnapshot.objects.get(wallet=wallet)
    assert snapshot.info_edge_samples == 3
    assert snapshot.info_edge_mean_minutes == pytest.approx(-125 / 3, abs=1e-4)
    assert snapshot.info_edge_level == "insufficient_data"
    expected = info_edge_compute([-60.0, -45.0, -20.0])
    assert snapshot.info_edge_stddev_minutes == pytest.approx(expected.stddev_minutes)
