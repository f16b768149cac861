"""Point-in-time scores and the scorecard: every signal is a prediction, judged by what followed."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from ingest.models import Market
from marts.compute import Fill
from marts.services import wallet_batch_compute
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import SignalPrediction, WalletScoreHistory, WalletSnapshot
from scoring.selectors import score_as_of, signal_scorecard
from scoring.signals import predictions_record, signals_follow

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]
D = Decimal


def _history(wallet, at, strategy):
    return WalletScoreHistory.objects.create(
        wallet=wallet, smart_score=D(40), confidence=D("0.5"), strategy_type=strategy, pool_tier="observation",
        risk_level="medium", momentum="stable", info_edge_level="no_edge", scored_at=at, computed_at=at, valid_as_of=at,
    )


def test_the_score_as_of_a_moment_is_the_newest_computed_at_or_before_it():
    now = timezone.now().replace(microsecond=0)
    wallet = wallet_make()
    _history(wallet, now - timedelta(hours=5), "noise")
    _history(wallet, now - timedelta(hours=1), "quant")
    assert score_as_of(wallet_id=wallet.pk, at=now - timedelta(hours=6)) is None
    assert score_as_of(wallet_id=wallet.pk, at=now - timedelta(hours=3)).strategy_type == "noise"
    assert score_as_of(wallet_id=wallet.pk, at=now - timedelta(hours=1)).strategy_type == "quant"


def test_a_prediction_is_labelled_with_the_score_before_its_trade_never_one_computed_after():
    now = timezone.now().replace(microsecond=0)
    market, (yes, no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    _history(wallet, now - timedelta(hours=5), "noise")
    WalletSnapshot.objects.create(wallet=wallet, strategy_type="quant")  # what it is labelled now
    _history(wallet, now - timedelta(hours=1), "quant")
    at = now - timedelta(hours=3)
    sold_no = Fill(wallet.pk, market.pk, no.token_id, "SELL", D(20), D("0.5"), D(10), at, "k", 1, at)
    mart = SimpleNamespace(fills=[sold_no], cash=[D(10)])
    anomaly = {"id": 1, "wallet_id": wallet.pk, "market_id": market.pk, "alert_type": "large_position",
               "observed_at": at, "fill_key": None}
    recorded = predictions_record(anomalies=[anomaly], events=[], marts={wallet.pk: mart}, decision_window=timedelta(minutes=5))
    assert recorded == 1
    prediction = SignalPrediction.objects.get()
    assert prediction.label == "noise"  # as scored at the signal, not "quant" computed two hours later
    assert (prediction.token_id, prediction.reverse_token_id) == (yes.token_id, no.token_id)  # selling No backs Yes


def test_the_drain_records_an_alert_as_a_prediction_unscored_when_the_wallet_had_no_score_before_the_trade():
    now = timezone.now().replace(microsecond=0)
    _market, (yes, no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    at = now - timedelta(hours=1)
    fill_make(wallet=wallet, token=yes, side="BUY", size=30000, price="0.5", at=at, ingested_at=at + timedelta(seconds=5))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    prediction = SignalPrediction.objects.get(kind="anomaly:fresh_wallet_large_trade")
    assert (prediction.token_id, prediction.reverse_token_id, prediction.signal_at) == (yes.token_id, no.token_id, at)
    # The drain scored the wallet after the trade; that score must not judge the trade.
    assert WalletScoreHistory.objects.filter(wallet=wallet, computed_at=now).exists()
    assert prediction.label == "unscored"


def test_following_a_prediction_reads_the_price_at_each_checkpoint_and_the_settlement():
    now = timezone.now().replace(microsecond=0)
    market, (yes, no) = market_make(latest_prices=["0.5", "0.5"])
    trader = wallet_make()
    signal_at = now - timedelta(hours=30)
    for minutes, price in ((0, "0.4"), (30, "0.45"), (120, "0.6"), (25 * 60, "0.7")):
        fill_make(wallet=trader, token=yes, side="BUY", size=1, price=price, at=signal_at + timedelta(minutes=minutes))
    prediction = SignalPrediction.objects.create(
        kind="potential", source_id=1, wallet=trader, market=market, token_id=yes.token_id, reverse_token_id=no.token_id,
        signal_at=signal_at, label="quant",
    )
    signals_follow(now=now)
    prediction.refresh_from_db()
    assert (prediction.price_at_signal, prediction.price_1h, prediction.price_24h) == (D("0.4"), D("0.45"), D("0.6"))
    assert prediction.reverse_price_at_signal == D("0.6")  # no fill of No: 1 − Yes
    assert prediction.settlement_value is None and not prediction.followed_through
    Market.objects.filter(pk=market.pk).update(winner_index=0, closed=True)
    signals_follow(now=now)
    prediction.refresh_from_db()
    assert (prediction.settlement_value, prediction.reverse_settlement_value) == (D(1), D(0))
    assert prediction.followed_through


def test_the_scorecard_on_a_hand_computed_set(client):
    now = timezone.now().replace(microsecond=0)
    wallet = wallet_make()
    markets = {name: market_make()[0] for name in "ABC"}
    # (market, price of the implied side at the signal, its settlement value)
    settled = [("A", "0.4", 1), ("A", "0.5", 1), ("B", "0.3", 0), ("C", "0.6", 1)]
    for number, (name, price, value) in enumerate(settled):
        SignalPrediction.objects.create(
            kind="anomaly:large_position", source_id=number, wallet=wallet, market=markets[name], token_id="x",
            reverse_token_id="y", signal_at=now, label="quant", price_at_signal=D(price),
            reverse_price_at_signal=1 - D(price), settlement_value=D(value), reverse_settlement_value=D(1 - value),
            price_1h=D(price) + D("0.1"),
        )
    SignalPrediction.objects.create(kind="anomaly:large_position", source_id=99, wallet=wallet, market=markets["C"],
                                    token_id="x", signal_at=now, label="quant", price_at_signal=D("0.5"))
    # Edges 0.6, 0.5, −0.3, 0.4: mean 0.3. Residuals summed per market: A 0.5, B −0.6, C 0.1;
    # se² = 3/2 · (0.25 + 0.36 + 0.01) / 4² = 0.058125.
    half = 1.959963984540054 * math.sqrt(0.058125)
    [row] = signal_scorecard()
    assert (row["kind"], row["label"]) == ("anomaly:large_position", "quant")
    assert (row["count"], row["settled"], row["markets"]) == (5, 4, 3)
    assert row["hit_rate"] == 0.75
    assert row["mean_edge"] == pytest.approx(0.3)
    assert (row["edge_ci_low"], row["edge_ci_high"]) == (pytest.approx(0.3 - half, abs=1e-6), pytest.approx(0.3 + half, abs=1e-6))
    assert row["mean_move_1h"] == pytest.approx(0.1)
    assert row["reverse"]["hit_rate"] == 0.25
    assert row["reverse"]["mean_edge"] == pytest.approx(-0.3)

    body = client.get("/api/v1/signals/scorecard").json()
    assert body["data"]["rows"][0]["mean_edge"] == pytest.approx(0.3)
    assert body["data"]["rows"][0]["reverse"]["settled"] == 4


def test_the_admin_prediction_list_opens_with_the_scorecard(admin_client):
    now = timezone.now().replace(microsecond=0)
    market, _tokens = market_make()
    SignalPrediction.objects.create(kind="feed:strategy_change", source_id=7, wallet=wallet_make(), market=market,
                                    token_id="x", signal_at=now, label="event_trader")
    page = admin_client.get("/admin/scoring/signalprediction/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Scorecard" in text and "feed:strategy_change" in text and "event_trader" in text


def test_an_ai_report_is_recorded_as_a_prediction_on_the_side_of_the_latest_decision_before_it():
    from scoring.services import ai_report_generate

    now = timezone.now().replace(microsecond=0)
    market, (yes, no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.4", at=now - timedelta(hours=3))
    fill_make(wallet=wallet, token=yes, side="SELL", size=10, price="0.6", at=now - timedelta(hours=1))  # backs No
    fill_make(wallet=wallet, token=no, side="BUY", size=10, price="0.3", at=now + timedelta(hours=1))  # after: ignored
    _history(wallet, now - timedelta(hours=2), "quant")
    WalletSnapshot.objects.create(wallet=wallet, total_trades=50, strategy_type="lucky", pool_tier="strategy",
                                  risk_level="medium")  # what it is labelled later
    report, created = ai_report_generate(wallet_id=wallet.pk, now=now)
    assert created
    prediction = SignalPrediction.objects.get(kind="ai_report")
    assert (prediction.source_id, prediction.wallet_id, prediction.market_id, prediction.signal_at) == (
        report.pk, wallet.pk, market.pk, now)
    assert (prediction.token_id, prediction.reverse_token_id) == (no.token_id, yes.token_id)
    assert prediction.label == "quant"  # the score as of the report, not the snapshot's later label
    # The report's feed event relays the report: one prediction, not two.
    assert SignalPrediction.objects.count() == 1
    assert [row["kind"] for row in signal_scorecard()] == ["ai_report"]


def test_an_ai_report_on_a_wallet_without_a_fill_before_it_predicts_nothing():
    from scoring.services import ai_report_generate

    now = timezone.now().replace(microsecond=0)
    _market, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.4", at=now + timedelta(minutes=5))
    WalletSnapshot.objects.create(wallet=wallet, total_trades=50, strategy_type="quant", pool_tier="strategy",
                                  risk_level="medium")
    ai_report_generate(wallet_id=wallet.pk, now=now)
    assert not SignalPrediction.objects.exists()
