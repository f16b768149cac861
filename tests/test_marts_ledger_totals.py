"""The ledger's totals reconciled with Polymarket's profile card (/v2/user-stats): the card read
strictly and landed as received, its after-fee realised PnL, fees, maker rebates and rewards
compared with the ledger's as of the card's time, a totals drift a drift, no card unavailable."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from ingest.models import IngestDeadLetter, LandingRecord, RunStatus
from ingest.registry import ingest_job_execute
from ingest.sources.data_api.accounts import user_stats_land
from ingest.sources.data_api.parsing import parse_user_stats_v2
from ingest.sources.values import MalformedRow
from marts import ledger_services
from marts.ledger import activities_parse, wallet_ledger_compute
from marts.models import WalletLedgerSummary
from tests.test_marts_ledger import T0, WALLET, YES_A, binary, row, trade

D = Decimal
CARD = Path("/work/shared/fixtures/polymarket/v2/py-sdk/user-stats.json")


def recorded_card() -> dict:
    return json.loads(CARD.read_text())


def test_the_recorded_card_parses_to_its_totals_and_its_parts_add_up():
    stats = parse_user_stats_v2(recorded_card())
    totals = stats.totals
    assert stats.wallet == "0x7c3db723f1d4d8cb9c550095203b686cb11e5c6b" and stats.trades == 8610
    assert totals.observed_at.timestamp() == 1788886825
    assert totals.trading_realized == totals.realized_pnl == D("1497376.864965")
    assert (totals.fees, totals.fees_paid, totals.maker_rebate, totals.reward_income) == (
        D("-32669.709131"), D("-9365.404723"), D("2423.7697"), D("82057.219325"))
    # The basis: realised after fees, so trading before fees is the positions' PnL with the net fees put back.
    assert totals.realized_pnl + totals.unrealized_pnl - totals.fees_paid == D("1502445.596155")


@pytest.mark.parametrize(("change", "field"), [
    ({"proxy_wallet": "0x12"}, "proxy_wallet"),
    ({"all_time_pnl": [1]}, "all_time_pnl"),
])
def test_a_malformed_card_names_its_field(change, field):
    with pytest.raises(MalformedRow, match=field):
        parse_user_stats_v2({**recorded_card(), **change})


@pytest.mark.parametrize("missing", ["fees", "maker_rebate", "reward_income", "realized_market_pnl", "timestamp"])
def test_a_card_missing_a_compared_total_is_malformed_not_zero(missing):
    card = recorded_card()
    del card["all_time_pnl"][missing]
    with pytest.raises(MalformedRow, match=f"all_time_pnl.{missing}"):
        parse_user_stats_v2(card)


def test_a_card_without_a_pnl_observation_has_no_totals():
    assert parse_user_stats_v2({**recorded_card(), "all_time_pnl": None}).totals is None


def _card_for(*, realized, fees, rebates=0, rewards=0, at=T0 + 100):
    card = recorded_card()
    card["proxy_wallet"] = WALLET
    card["all_time_pnl"].update(timestamp=at, realized_market_pnl=realized, realized_lp_pnl=0, realized_combo_pnl=0,
                                realized_pnl=realized, fees=f"-{fees}", fees_paid=f"-{fees}", fees_refunded=0,
                                maker_rebate=rebates, reward_income=rewards)
    return parse_user_stats_v2(card)


HAND_ROWS = [
    # Buy 100 at 0.40 for 41 (fee 1), sell 50 at 0.60 for 29 (fee 1): after fees the sale realises
    # 29 − 50 × 0.41 = 8.5 (pre-fee 10); a reward of 2 comes after the card.
    trade("BUY", YES_A, at=T0, size=100, price="0.40", usdc="41"),
    trade("SELL", YES_A, at=T0 + 10, size=50, price="0.60", usdc="29"),
    row("REWARD", at=T0 + 200, size=0, usdc="2"),
]


def test_hand_computed_totals_agree_with_a_card_of_the_same_moment_and_a_later_reward_is_not_drift():
    card = _card_for(realized="8.5", fees="2")
    ledger = wallet_ledger_compute(activities=activities_parse(HAND_ROWS), markets=binary(),
                                   totals_at=card.totals.observed_at)
    assert ledger.totals.realized_after_fees == D("8.5") and ledger.totals.fees_paid == D("2")
    assert ledger.totals.rewards == 0 and ledger.rewards == D("2"), "as of the card: the reward came after it"
    check = ledger_services.totals_reconciliation_of(ledger=ledger, user_stats=card)
    assert check.status == "reconciled" and check.realized_difference == 0


def test_a_card_counting_a_reward_the_ledger_never_saw_is_drift_by_that_reward():
    card = _card_for(realized="8.5", fees="2", rewards="5")
    ledger = wallet_ledger_compute(activities=activities_parse(HAND_ROWS), markets=binary(),
                                   totals_at=card.totals.observed_at)
    check = ledger_services.totals_reconciliation_of(ledger=ledger, user_stats=card)
    assert check.status == "drift" and check.rewards_difference == D("-5") and check.realized_difference == 0
    assert ledger_services.reconciliation_status_with_totals("reconciled", check) == "drift"
    # Within 1 % or one cent is agreement.
    close = _card_for(realized="8.505", fees="2.001")
    assert ledger_services.totals_reconciliation_of(ledger=ledger, user_stats=close).status == "reconciled"
    unavailable = ledger_services.totals_reconciliation_of(ledger=ledger, user_stats=None)
    assert unavailable.status == "unavailable"
    assert ledger_services.reconciliation_status_with_totals("reconciled", unavailable) == "reconciled"


def _land_world(upstream) -> None:
    ingest_job_execute(job_name="gamma.markets")
    for _ in range(4):
        upstream.advance(300)
        for job in ("gamma.markets", "data_api.trades", "data_api.resolutions"):
            run = ingest_job_execute(job_name=job)
            assert run.status == RunStatus.SUCCEEDED, (job, run.error_text)
    # Polymarket's positions and card count movements the activity feed serves minutes later.
    for job in ("data_api.positions", "data_api.user_stats"):
        run = ingest_job_execute(job_name=job)
        assert run.status == RunStatus.SUCCEEDED, (job, run.error_text)
    upstream.advance(300)
    run = ingest_job_execute(job_name="data_api.activity")
    assert run.status == RunStatus.SUCCEEDED, run.error_text


@pytest.mark.django_db(transaction=True)
def test_on_the_emulator_cards_land_as_received_and_agreeing_totals_reconcile_a_planted_one_drifts(
    emulator, settings,
):
    settings.INGEST_ACTIVITY_WALLETS_PER_RUN = 1000
    with emulator(seed=33, scenario="steady,multi_fill,resolutions", history_seconds=1200) as upstream:
        _land_world(upstream)
    cards = LandingRecord.objects.filter(source="data_api", stream="user_stats")
    assert cards.exists()
    assert all(set(card.payload) == set(recorded_card()) for card in cards[:20]), "the data object as received"
    ledger_services.ledgers_refresh(rows_per_stream=100_000)
    summaries = WalletLedgerSummary.objects.exclude(totals_status="unavailable")
    assert summaries.count() > 10
    agreeing = summaries.filter(totals_status="reconciled")
    share = agreeing.count() / summaries.count()
    drifting = list(summaries.filter(totals_status="drift").values_list(
        "wallet_id", "totals_realized_difference", "totals_fees_difference", "totals_rewards_difference")[:5])
    assert share >= 0.99, (share, drifting)
    paid = agreeing.filter(fees_paid__gt=0).select_related("wallet").order_by("-fees_paid").first()
    assert paid is not None, "a fee-paying wallet reconciles: the after-fee basis is exercised"

    # Plant a reward the ledger never saw in that wallet's newest card, landed as received.
    newest = [card.payload for card in cards.order_by("id") if card.payload["proxy_wallet"] == paid.wallet.address][-1]
    newest["all_time_pnl"]["reward_income"] = float(D(str(newest["all_time_pnl"]["reward_income"])) + D("5"))
    assert user_stats_land(run=None, body={"data": newest}).inserted == 1
    ledger_services.ledgers_refresh(rows_per_stream=100_000)
    planted = WalletLedgerSummary.objects.get(pk=paid.pk)
    assert (planted.totals_status, planted.reconciliation_status) == ("drift", "drift")
    assert planted.totals_rewards_difference == D("-5")
    assert planted.totals_realized_difference == paid.totals_realized_difference


@pytest.mark.django_db
def test_a_null_card_lands_nothing_and_leaves_the_totals_unavailable_a_malformed_one_is_a_dead_letter():
    assert user_stats_land(run=None, body={"data": None}).fetched == 0
    assert not LandingRecord.objects.filter(stream="user_stats").exists()
    card = recorded_card()
    del card["all_time_pnl"]["fees"]
    result = user_stats_land(run=None, body={"data": card})
    assert (result.inserted, result.dead_lettered) == (0, 1)
    assert IngestDeadLetter.objects.filter(stream="user_stats").count() == 1
