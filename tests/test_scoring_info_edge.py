"""Information edge: decisions against the markets' own baseline, news only, two-sided, FDR-controlled."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.changes import changed_wallets_pop
from ingest.models import OffchainEvent, OffchainEventMarket
from marts.compute import Fill
from marts.services import wallet_batch_compute
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.edge import binomial_two_sided, decisions_group, edge_level_from
from scoring.fdr import edge_fdr_refresh, q_estimate
from scoring.models import EdgeFdrState, FeedEvent, WalletSnapshot
from scoring.selectors import info_edge_payload
from scoring.services import edge_baselines, edge_rules

NEWS_KINDS = {"feed": OffchainEvent.Kind.FEED, "lifecycle": OffchainEvent.Kind.MARKET_LIFECYCLE}


@pytest.fixture(autouse=True)
def _fresh_baselines():
    edge_baselines.clear()
    yield
    edge_baselines.clear()


def _news(market, moment, *, kind="feed"):
    event = OffchainEvent.objects.create(
        source=f"test:{kind}", source_event_id=f"{market.pk}:{moment.isoformat()}", kind=NEWS_KINDS[kind],
        event_time=moment, title="News",
    )
    OffchainEventMarket.objects.create(event=event, market=market, event_time=moment)


def _fill(index, at, *, market_id=1, asset="t1", side="BUY"):
    return Fill(1, market_id, asset, side, Decimal(1), Decimal("0.5"), Decimal("0.5"), at, f"k{index}", 0, at)


def test_one_order_in_five_fills_is_one_decision():
    start = timezone.now().replace(microsecond=0)
    fills = [_fill(i, start + timedelta(seconds=2 * i)) for i in range(5)]
    fills.append(_fill(5, start + timedelta(seconds=3), side="SELL"))  # the other side: its own decision
    fills.append(_fill(6, start + timedelta(hours=2)))  # much later: a new decision
    fills.sort(key=lambda f: f.traded_at)
    decisions = decisions_group(fills, [Decimal("0.5")] * len(fills), window=timedelta(minutes=5))
    assert [(d.side, d.fills) for d in decisions] == [("BUY", 5), ("SELL", 1), ("BUY", 1)]
    assert decisions[0].at == start and decisions[0].usdc == Decimal("2.5")


def test_the_exact_binomial_test_is_two_sided_and_can_fail():
    assert binomial_two_sided(8, 8, 0.1) == pytest.approx(1e-8, rel=1e-6)
    assert binomial_two_sided(1, 10, 0.1) == pytest.approx(1.0)
    # Never before news where a third of the market is: significant, but that is no edge.
    assert binomial_two_sided(0, 30, 1 / 3) < 0.001
    assert edge_level_from(q=0.0001, effect=-0.33, min_effect=0.2) == "no_edge"


def _market_with_news(now, *, news_hours, others, rng):
    market, (yes, no) = market_make(latest_prices=["0.5", "0.5"])
    for hours in news_hours:
        _news(market, now - timedelta(hours=hours))
    for wallet in others:  # the market's other traders, at random moments over 24 hours
        for _ in range(6):
            at = now - timedelta(hours=30) + timedelta(minutes=rng.uniform(0, 24 * 60))
            fill_make(wallet=wallet, token=rng.choice([yes, no]), side="BUY", size=10, price="0.5", at=at)
    return market, yes


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_an_insider_ten_minutes_before_each_news_has_a_processing_edge_and_random_timing_has_none(settings):
    settings.INFO_EDGE_HORIZON_MINUTES = 24 * 60
    now = timezone.now().replace(second=0, microsecond=0)
    rng = random.Random(13)
    others = [wallet_make() for _ in range(5)]
    insider, random_trader = wallet_make(), wallet_make()
    for _ in range(4):
        news_hours = (26, 14)
        _market, yes = _market_with_news(now, news_hours=news_hours, others=others, rng=rng)
        for hours in news_hours:
            news_at = now - timedelta(hours=hours)
            # One decision of three fills (one order), ten minutes before the news.
            for seconds in (0, 5, 9):
                fill_make(wallet=insider, token=yes, side="BUY", size=100, price="0.4",
                          at=news_at - timedelta(minutes=10) + timedelta(seconds=seconds))
        for _ in range(3):
            at = now - timedelta(hours=30) + timedelta(minutes=rng.uniform(0, 24 * 60))
            fill_make(wallet=random_trader, token=yes, side="BUY", size=100, price="0.5", at=at)

    wallet_batch_compute(wallet_ids=[insider.pk, random_trader.pk, *[w.pk for w in others]], now=now)
    edge = WalletSnapshot.objects.get(wallet=insider)
    assert (edge.info_edge_decisions, edge.info_edge_markets, edge.info_edge_samples) == (8, 4, 8)
    assert edge.info_edge_wallet_rate == 1.0
    assert 0 < edge.info_edge_baseline_rate < 0.3
    assert edge.info_edge_mean_minutes == pytest.approx(-10.0)
    assert edge.info_edge_p < 1e-4 and edge.info_edge_z > 3
    assert edge.info_edge_level == "processing_edge"
    # Its q comes from this batch alone (no FDR pass over the population yet): shown, but no label.
    assert edge.strategy_type != "event_trader"
    edge_fdr_refresh(now=now)  # the pass queues the wallets it relabels; the drain recomputes them
    changed_wallets_pop(batch_size=100)
    everyone = [insider.pk, random_trader.pk, *[w.pk for w in others]]
    wallet_batch_compute(wallet_ids=everyone, now=now)
    edge = WalletSnapshot.objects.get(wallet=insider)
    assert edge.info_edge_level == "processing_edge"
    # An edge label never settles by margin: it waits for SCORING_EDGE_HOLD_SECONDS (two passes).
    hold = timedelta(seconds=settings.SCORING_EDGE_HOLD_SECONDS)
    assert (edge.strategy_type, edge.pending_changes["strategy_type"][0]) == ("noise", "event_trader")
    edge_fdr_refresh(now=now + hold / 2)
    assert insider.pk not in changed_wallets_pop(batch_size=100)  # not due yet
    # Held through the next pass: the pass queues it although it traded no more, and it settles.
    edge_fdr_refresh(now=now + hold)
    assert insider.pk in changed_wallets_pop(batch_size=100)
    wallet_batch_compute(wallet_ids=everyone, now=now + hold)
    assert WalletSnapshot.objects.get(wallet=insider).strategy_type == "event_trader"
    assert FeedEvent.objects.get(wallet=insider, event_type="strategy_change").payload["after"] == "event_trader"

    randomly = WalletSnapshot.objects.get(wallet=random_trader)
    assert randomly.info_edge_decisions == 12
    assert randomly.info_edge_p > 0.05
    assert randomly.info_edge_level == "no_edge"
    assert not WalletSnapshot.objects.filter(wallet__in=others, info_edge_level__in=["processing_edge", "mild_edge"]).exists()

    # Across every tested wallet at once (Benjamini–Hochberg), the insider still stands out.
    result = edge_fdr_refresh(now=now)
    assert result["tested"] == WalletSnapshot.objects.filter(info_edge_tested=True).count() >= 2
    edge.refresh_from_db()
    assert edge.info_edge_q < 0.05 and edge.info_edge_level == "processing_edge"


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_market_lifecycle_events_are_not_news(settings):
    settings.INFO_EDGE_HORIZON_MINUTES = 24 * 60
    now = timezone.now().replace(second=0, microsecond=0)
    wallet = wallet_make()
    for _ in range(4):
        market, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
        for hours in (20, 10):
            _news(market, now - timedelta(hours=hours), kind="lifecycle")  # "closed", "resolved": outcomes
            fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.5",
                      at=now - timedelta(hours=hours, minutes=10))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    snapshot = WalletSnapshot.objects.get(wallet=wallet)
    assert (snapshot.info_edge_decisions, snapshot.info_edge_samples) == (0, 0)
    assert snapshot.info_edge_level == "insufficient_data"
    # Numbers, never null, without evidence.
    assert (snapshot.info_edge_mean_minutes, snapshot.info_edge_stddev_minutes, snapshot.info_edge_z) == (0.0, 0.0, 0.0)
    assert (snapshot.info_edge_p, snapshot.info_edge_q, snapshot.info_edge_baseline_rate) == (1.0, 1.0, 0.0)
    payload = info_edge_payload(snapshot)
    assert payload == info_edge_payload(None)  # a computed wallet without evidence reads like an uncomputed one
    assert all(isinstance(value, int | float) for key, value in payload.items() if key != "classification")


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_the_fdr_pass_computes_benjamini_hochberg_q_values_and_queues_relabelled_wallets():
    wallets = [wallet_make() for _ in range(4)]
    for wallet, p in zip(wallets, [0.01, 0.02, 0.03, 0.5], strict=True):
        WalletSnapshot.objects.create(wallet=wallet, info_edge_tested=True, info_edge_p=p, info_edge_effect=0.3,
                                      info_edge_level="no_edge")
    WalletSnapshot.objects.create(wallet=wallet_make(), info_edge_p=0.0001)  # not tested: not counted
    result = edge_fdr_refresh()
    # q_(i) = min over j ≥ i of p_(j)·m/j: 0.01·4/1 = 0.02·4/2 = 0.03·4/3 = 0.04; 0.5·4/4 = 0.5.
    rows = dict(WalletSnapshot.objects.filter(wallet__in=wallets).values_list("wallet_id", "info_edge_q"))
    assert [round(rows[w.pk], 9) for w in wallets] == [0.04, 0.04, 0.04, 0.5]
    levels = dict(WalletSnapshot.objects.filter(wallet__in=wallets).values_list("wallet_id", "info_edge_level"))
    assert [levels[w.pk] for w in wallets] == ["processing_edge"] * 3 + ["no_edge"]
    assert (result["tested"], result["relabelled"]) == (4, 3)
    state = EdgeFdrState.objects.get(pk=1)
    assert state.tested == 4
    # The drain's estimate for a new p between the stored ones follows the same rule.
    assert q_estimate(0.02, tested=state.tested, knots=state.knots) == pytest.approx(0.04)
    assert q_estimate(0.9, tested=state.tested, knots=state.knots) == pytest.approx(0.9)



@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_among_many_random_traders_few_are_flagged_and_the_planted_insiders_rank_first(settings):
    settings.INFO_EDGE_HORIZON_MINUTES = 24 * 60
    now = timezone.now().replace(second=0, microsecond=0)
    rng = random.Random(2026)
    markets = []
    for _ in range(6):
        market, tokens = market_make(latest_prices=["0.5", "0.5"])
        news = sorted(now - timedelta(hours=30) + timedelta(minutes=rng.uniform(60, 23 * 60)) for _ in range(3))
        for moment in news:
            _news(market, moment)
        markets.append((tokens, news))
    randoms = [wallet_make() for _ in range(60)]
    for wallet in randoms:  # a dozen decisions each, at random moments of the same day
        for _ in range(12):
            tokens, _news_times = rng.choice(markets)
            at = now - timedelta(hours=30) + timedelta(minutes=rng.uniform(0, 24 * 60))
            fill_make(wallet=wallet, token=rng.choice(tokens), side="BUY", size=10, price="0.5", at=at)
    insiders = [wallet_make() for _ in range(2)]
    for wallet in insiders:  # 10–60 minutes before every news item of four markets
        for tokens, news in markets[:4]:
            for moment in news:
                at = moment - timedelta(minutes=rng.uniform(10, 60))
                fill_make(wallet=wallet, token=tokens[0], side="BUY", size=50, price="0.45", at=at)
    wallet_batch_compute(wallet_ids=[w.pk for w in randoms + insiders], now=now)
    edge_fdr_refresh(now=now)

    flagged = WalletSnapshot.objects.filter(
        wallet__in=randoms, info_edge_level__in=["processing_edge", "mild_edge"]
    ).count()
    assert flagged <= 3  # ≤ 5 % of 60
    assert WalletSnapshot.objects.filter(wallet__in=randoms, info_edge_tested=True).count() >= 50
    ranking = list(WalletSnapshot.objects.filter(info_edge_tested=True)
                   .order_by("info_edge_q", "-info_edge_effect").values_list("wallet_id", flat=True)[:2])
    assert set(ranking) == {w.pk for w in insiders}
    assert set(WalletSnapshot.objects.filter(wallet__in=insiders).values_list("info_edge_level", flat=True)) == {
        "processing_edge"
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_a_cached_market_baseline_ages_on_the_batches_clock_not_the_processs(settings):
    settings.EDGE_BASELINE_TTL_SECONDS = 900
    now = timezone.now().replace(microsecond=0)
    market, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    news = now - timedelta(hours=1)
    _news(market, news)
    trader = wallet_make()
    fill_make(wallet=trader, token=yes, side="BUY", size=10, price="0.5", at=news - timedelta(minutes=30))
    rules = edge_rules()
    first = edge_baselines.get(news={market.pk: [news]}, now=now, rules=rules)[market.pk]
    fill_make(wallet=wallet_make(), token=yes, side="BUY", size=10, price="0.5", at=news - timedelta(minutes=20))
    # Within the TTL of the batches' clock: the same entry, however little real time passed.
    assert edge_baselines.get(news={market.pk: [news]}, now=now + timedelta(minutes=10), rules=rules)[market.pk] == first
    # Fifteen minutes later on that clock (a replay, a simulated run): read again.
    later = edge_baselines.get(news={market.pk: [news]}, now=now + timedelta(minutes=16), rules=rules)[market.pk]
    assert (first.decisions, later.decisions) == (1, 2)


@pytest.mark.django_db
def test_the_edge_ranking_puts_wallets_ahead_of_news_first_and_a_significant_laggard_last():
    from scoring.selectors import edge_ranking

    ahead, weakly_ahead, behind, untested = (wallet_make() for _ in range(4))
    for wallet, q, effect in ((ahead, 0.01, 0.4), (weakly_ahead, 0.6, 0.05), (behind, 0.001, -0.3)):
        WalletSnapshot.objects.create(wallet=wallet, info_edge_tested=True, info_edge_q=q, info_edge_effect=effect)
    WalletSnapshot.objects.create(wallet=untested, info_edge_q=0.0001, info_edge_effect=0.9)
    assert edge_ranking() == [ahead.pk, weakly_ahead.pk, behind.pk]
