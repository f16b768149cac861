"""Strategy labels that mean something (arbitrage, a strict market maker) and stay put (hysteresis)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marts.services import wallet_batch_compute
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.formulas import ScoreInputs, score_compute
from scoring.models import FeedEvent, WalletScoreHistory, WalletSnapshot
from scoring.services import label_settle


def test_a_label_computed_back_and_forth_near_a_threshold_does_not_flap():
    start = timezone.now().replace(microsecond=0)
    hold = timedelta(hours=2)
    settled, pending, changes = "quant", None, 0
    # Every 10 minutes for 6 hours the computation lands on either side of a threshold.
    for step in range(36):
        computed = "lucky" if step % 3 == 0 else "quant"
        value, pending = label_settle(old=settled, computed=computed, pending=pending,
                                      now=start + timedelta(minutes=10 * step), hold=hold, initial="unknown")
        changes += value != settled
        settled = value
    assert (settled, changes) == ("quant", 0)
    # A change that holds for the whole hold time settles, once.
    for step in range(36, 36 + 13):
        value, pending = label_settle(old=settled, computed="lucky", pending=pending,
                                      now=start + timedelta(minutes=10 * step), hold=hold, initial="unknown")
        changes += value != settled
        settled = value
    assert (settled, changes, pending) == ("lucky", 1, None)


def test_a_change_by_a_clear_margin_applies_at_once_and_a_marginal_one_waits():
    now = timezone.now().replace(microsecond=0)
    hold = timedelta(hours=2)
    common = {"old": "noise", "computed": "arbitrage", "pending": None, "now": now, "hold": hold, "initial": "unknown"}
    assert label_settle(**common, margin=1.0, clear_margin=0.5) == ("arbitrage", None)
    value, pending = label_settle(**common, margin=0.1, clear_margin=0.5)
    assert (value, pending) == ("noise", ["arbitrage", now.isoformat()])
    # The marginal change still settles once it has held.
    assert label_settle(**{**common, "now": now + hold, "pending": pending}, margin=0.1, clear_margin=0.5)[0] == "arbitrage"
    # Without a clear margin configured (other labels), only the hold counts.
    assert label_settle(**common, margin=5.0, clear_margin=None)[0] == "noise"


def _book(paired_share: float, pair_cost: float, *, paired_markets: int = 8) -> ScoreInputs:
    zero = Decimal(0)
    return ScoreInputs(
        total_trades=40, markets_traded=8, resolved_positions=0, winning_positions=0, trading_pnl=zero,
        realized_pnl=zero, realized_pnl_sigma=0.0,
        bought_usdc=Decimal(1000), buy_volume=Decimal(1000), sell_volume=zero, volume_30d=Decimal(1000), trades_7d=40,
        trades_30d=40, pnl_7d=zero, pnl_30d=zero, max_drawdown_7d=zero, stability_score=Decimal(50),
        open_concentration=Decimal("0.1"), top_gain_share=zero, info_edge_label="no_edge", paired_share=paired_share,
        pair_cost=pair_cost, paired_markets=paired_markets,
    )


def test_the_margin_is_measured_on_the_thresholds_of_the_rule_that_decides_the_label():
    wide, narrow = score_compute(_book(1.0, 0.96)), score_compute(_book(0.55, 0.96))
    assert (wide.strategy_type, narrow.strategy_type) == ("arbitrage", "arbitrage")
    assert wide.strategy_margin == pytest.approx(1.0)  # paired 1.0 against the 0.5 threshold (8 markets: 1.67)
    assert narrow.strategy_margin == pytest.approx(0.1)  # 0.55 against 0.5
    # Pairs in only three markets: the rule fits, by no margin.
    assert score_compute(_book(1.0, 0.96, paired_markets=3)).strategy_margin == pytest.approx(0.0)
    assert score_compute(_book(1.0, 0.96, paired_markets=2)).strategy_type == "noise"
    # Noise wins by how far the nearest other rule is from fitting.
    noise = score_compute(_book(0.1, 0.96))
    assert noise.strategy_type == "noise" and noise.strategy_margin == pytest.approx(0.8)


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_a_wallet_that_becomes_an_arbitrageur_by_a_wide_margin_is_relabelled_in_the_same_drain(settings):
    settings.SCORING_HOLD_SECONDS = 7200
    now = timezone.now().replace(microsecond=0)
    wallet = wallet_make()
    markets = [market_make(latest_prices=["0.5", "0.5"])[1] for _ in range(5)]  # 5 paired markets: 3 is the rule
    for number, (yes, _no) in enumerate(markets):
        for step in range(3):
            fill_make(wallet=wallet, token=yes, side="BUY", size=100, price="0.5",
                      at=now - timedelta(hours=10, minutes=5 * (3 * number + step)))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now - timedelta(hours=1))
    assert WalletSnapshot.objects.get(wallet=wallet).strategy_type == "noise"
    for number, (_yes, no) in enumerate(markets):  # the other outcome of each, for less than 1 a pair
        fill_make(wallet=wallet, token=no, side="BUY", size=300, price="0.45", at=now - timedelta(minutes=30 + number))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    snapshot = WalletSnapshot.objects.get(wallet=wallet)
    assert snapshot.strategy_type == "arbitrage"  # at once, well inside the two-hour hold
    assert FeedEvent.objects.filter(wallet=wallet, event_type="strategy_change").count() == 1



@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_a_settled_change_gives_one_feed_event_and_one_history_row(settings):
    settings.SCORING_HOLD_SECONDS = 3600
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(hours=5))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    WalletSnapshot.objects.filter(wallet=wallet).update(risk_level="low")
    rows_before = WalletScoreHistory.objects.filter(wallet=wallet).count()
    for minutes in range(5, 60, 5):  # computed "high" again and again, not held long enough yet
        wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=minutes))
    assert WalletScoreHistory.objects.filter(wallet=wallet).count() == rows_before
    for minutes in range(65, 120, 5):
        wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=minutes))
    assert FeedEvent.objects.filter(wallet=wallet, event_type="risk_level_change").count() == 1
    assert WalletScoreHistory.objects.filter(wallet=wallet).count() == rows_before + 1


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_buying_both_outcomes_for_less_than_one_is_arbitrage_and_never_a_potential_wallet(settings, client):
    settings.POTENTIAL_MIN_TRADES = 1
    now = timezone.now().replace(microsecond=0)
    arbitrageur, bettor = wallet_make(), wallet_make()
    for number in range(3):
        _m, (yes, no) = market_make(winner_index=0, resolved_at=now - timedelta(days=1))
        at = now - timedelta(days=2, hours=number)
        fill_make(wallet=arbitrageur, token=yes, side="BUY", size=1000, price="0.47", at=at)
        fill_make(wallet=arbitrageur, token=no, side="BUY", size=1000, price="0.49", at=at + timedelta(seconds=30))
        fill_make(wallet=bettor, token=yes, side="BUY", size=100, price="0.47", at=at)
    wallet_batch_compute(wallet_ids=[arbitrageur.pk, bettor.pk], now=now)
    snapshot = WalletSnapshot.objects.get(wallet=arbitrageur)
    assert snapshot.strategy_type == "arbitrage"
    assert snapshot.potential_reached_at is not None  # 1 − 0.96 a pair: profitable…
    assert not FeedEvent.objects.filter(wallet=arbitrageur, event_type="potential_reached").exists()
    listed = client.get("/api/v1/wallets/potential?min_trades=0&min_realized_pnl=-1000000").json()["data"]
    listed_ids = {item["wallet"]["id"] for item in listed["items"]}
    assert bettor.pk in listed_ids
    assert arbitrageur.pk not in listed_ids  # …but not a bet on a side


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_quoting_both_sides_of_many_markets_for_a_thin_margin_is_a_market_maker():
    now = timezone.now().replace(microsecond=0)
    maker, directional = wallet_make(), wallet_make()
    for number in range(10):
        _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
        for step in range(10):
            at = now - timedelta(days=3, minutes=number * 60 + step * 5)
            fill_make(wallet=maker, token=yes, side="BUY", size=100, price="0.50", at=at)
            fill_make(wallet=maker, token=yes, side="SELL", size=100, price="0.51", at=at + timedelta(minutes=1))
            fill_make(wallet=directional, token=yes, side="BUY", size=100, price="0.50", at=at)
            fill_make(wallet=directional, token=yes, side="BUY", size=100, price="0.50", at=at + timedelta(minutes=1))
    wallet_batch_compute(wallet_ids=[maker.pk, directional.pk], now=now)
    assert WalletSnapshot.objects.get(wallet=maker).strategy_type == "market_maker"
    assert WalletSnapshot.objects.get(wallet=directional).strategy_type != "market_maker"
