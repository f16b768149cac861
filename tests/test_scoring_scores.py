"""Smart score with sample-size shrinkage, labels, tiers; history only when a value changes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marts.compute import Position
from marts.services import wallet_batch_compute
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.formulas import ScoreInputs, realized_pnl_sigma, score_compute, wilson_lower_bound
from scoring.models import WalletScoreHistory, WalletSnapshot

D = Decimal


def _inputs(**overrides) -> ScoreInputs:
    base = {
        "total_trades": 0, "markets_traded": 0, "resolved_positions": 0, "winning_positions": 0,
        "trading_pnl": D(0), "realized_pnl": D(0), "realized_pnl_sigma": 0.0, "bought_usdc": D(0), "buy_volume": D(0),
        "sell_volume": D(0),
        "volume_30d": D(0),
        "trades_7d": 0, "trades_30d": 0, "pnl_7d": D(0), "pnl_30d": D(0), "max_drawdown_7d": D(0),
        "stability_score": D(50), "open_concentration": D(0), "top_gain_share": D(0), "info_edge_label": "no_edge",
    }
    return ScoreInputs(**(base | overrides))


def test_wilson_lower_bound_is_small_for_small_samples():
    assert wilson_lower_bound(3, 3) == pytest.approx(0.526, abs=0.001)
    assert wilson_lower_bound(180, 300) == pytest.approx(0.553, abs=0.002)
    assert wilson_lower_bound(0, 0) == 0.0


def test_three_lucky_trades_rank_below_a_broad_profitable_record():
    lucky = score_compute(_inputs(
        total_trades=5, markets_traded=3, resolved_positions=3, winning_positions=3, trading_pnl=D(5000),
        realized_pnl=D(5000), bought_usdc=D(1000), buy_volume=D(1000), volume_30d=D(1000), stability_score=D(80),
        top_gain_share=D("0.9"),
    ))
    skilled = score_compute(_inputs(
        total_trades=600, markets_traded=150, resolved_positions=300, winning_positions=210, trading_pnl=D(12500),
        bought_usdc=D(50000), buy_volume=D(50000), sell_volume=D(20000), volume_30d=D(30000), trades_7d=40,
        trades_30d=160, pnl_7d=D(800), pnl_30d=D(3200), max_drawdown_7d=D(500), stability_score=D(70),
        top_gain_share=D("0.05"),
    ))
    assert lucky.smart_score < D(35)
    assert lucky.strategy_type == "lucky"
    assert lucky.pool_tier == "observation"
    assert (lucky.suitable_for, lucky.suggested_position) == ("watch_only", "0%")
    assert skilled.smart_score > D(70)
    assert skilled.strategy_type == "quant"
    assert skilled.pool_tier == "star"
    assert skilled.risk_level == "low"
    assert skilled.suggested_position == "5-10%"


def test_a_paper_gain_is_not_luck_until_it_is_realised():
    wallet = {"total_trades": 8, "markets_traded": 2, "bought_usdc": D(1000), "buy_volume": D(1000),
              "volume_30d": D(1000), "top_gain_share": D(1)}
    # Open positions marked 4,000 up: the mark moves with the market, the label does not follow it.
    assert score_compute(_inputs(**wallet, trading_pnl=D(4000), realized_pnl=D(0))).strategy_type == "noise"
    # The same gain sold or settled is realised: now it is luck (one position, little evidence).
    assert score_compute(_inputs(**wallet, trading_pnl=D(4000), realized_pnl=D(4000))).strategy_type == "lucky"
    # A realised gain below the floor (max(50, 5 % of what it bought)) is not.
    assert score_compute(_inputs(**wallet, trading_pnl=D(4000), realized_pnl=D(49))).strategy_type == "noise"
    # Nor one that chance pays often: within two standard deviations of its realised shares' payout.
    assert score_compute(_inputs(**wallet, trading_pnl=D(300), realized_pnl=D(300),
                                 realized_pnl_sigma=200.0)).strategy_type == "noise"
    assert score_compute(_inputs(**wallet, trading_pnl=D(300), realized_pnl=D(300),
                                 realized_pnl_sigma=100.0)).strategy_type == "lucky"


def test_the_chance_term_is_the_payout_spread_of_the_realised_shares_at_their_buy_price():
    at = timezone.now()

    def position(*, bought: str, usdc: str, sold: str = "0", settled: str = "0") -> Position:
        return Position(token_id="t", market_id=1, outcome_index=0, first_trade_at=at, last_trade_at=at,
                        last_price=D("0.5"), bought_shares=D(bought), bought_usdc=D(usdc), sold_shares=D(sold),
                        settled_shares=D(settled))

    # 1,000 shares bought at 0.2 and settled: 1,000 * sqrt(0.2 * 0.8) = 400.
    assert realized_pnl_sigma([position(bought="1000", usdc="200", settled="1000")]) == pytest.approx(400)
    # Two positions add in variance: 300 sold of shares bought at 0.5 (150) beside them: 427.2.
    both = [position(bought="1000", usdc="200", settled="1000"), position(bought="600", usdc="300", sold="300")]
    assert realized_pnl_sigma(both) == pytest.approx((400 ** 2 + 150 ** 2) ** 0.5)
    # Open shares risk nothing yet; shares sold beyond those bought (a split's) count as bought ones.
    assert realized_pnl_sigma([position(bought="1000", usdc="200")]) == 0.0
    assert realized_pnl_sigma([position(bought="100", usdc="50", sold="400")]) == pytest.approx(50)
    assert realized_pnl_sigma([position(bought="0", usdc="0", sold="400")]) == 0.0


def test_no_evidence_scores_the_prior_and_is_unknown():
    score = score_compute(_inputs())
    assert score.smart_score == D("25.00")
    assert score.strategy_type == "unknown"
    assert score.risk_level == "high"
    assert score.momentum == "stable"
    assert score.status_7d == "inactive"


def test_a_two_sided_high_turnover_book_is_a_market_maker():
    book = {"total_trades": 900, "markets_traded": 10, "buy_volume": D(40000), "sell_volume": D(39000),
            "bought_usdc": D(40000), "trading_pnl": D(300), "resolved_positions": 10, "winning_positions": 6}
    assert score_compute(_inputs(**book, two_sided_share=0.9)).strategy_type == "market_maker"
    # Stricter than before: one side of the book in most of its markets, or a directional profit, is not making a market.
    assert score_compute(_inputs(**book, two_sided_share=0.5)).strategy_type != "market_maker"
    assert score_compute(_inputs(**{**book, "trading_pnl": D(4000)}, two_sided_share=0.9)).strategy_type != "market_maker"


def test_momentum_compares_this_week_with_the_pace_before_it():
    base = {"trades_7d": 10, "trades_30d": 40}
    assert score_compute(_inputs(**base, pnl_7d=D(1000), pnl_30d=D(1230))).momentum == "heating"
    assert score_compute(_inputs(**base, pnl_7d=D(-500), pnl_30d=D(1800))).momentum == "cooling"
    assert score_compute(_inputs(**base, pnl_7d=D(300), pnl_30d=D(1290))).momentum == "stable"
    assert score_compute(_inputs(trades_7d=0, trades_30d=5)).momentum == "cooling"


@pytest.mark.django_db
@pytest.mark.usefixtures("compute_redis")
def test_score_history_gains_a_row_only_when_a_scored_value_changes():
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    for minutes in range(4):
        fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(hours=2, minutes=minutes))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=1))
    assert WalletScoreHistory.objects.filter(wallet=wallet).count() == 1
    snapshot = WalletSnapshot.objects.get(wallet=wallet)
    assert snapshot.scored_at == now
    assert snapshot.last_analyzed_at == now + timedelta(minutes=1)

    fill_make(wallet=wallet, token=yes, side="SELL", size=20, price="0.9", at=now - timedelta(minutes=30))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=2))
    assert WalletScoreHistory.objects.filter(wallet=wallet).count() == 2
    snapshot.refresh_from_db()
    assert snapshot.scored_at == now + timedelta(minutes=2)
    assert snapshot.strategy_type != "unknown"
