"""The wallet ledger served: the profile's layer-1 facts carry its bases and its reconciliation
(numbers, never null), /metrics the share of wallets reconciled, and the explanations endpoint
says where each ledger number comes from (the ledger rows it adds up, the resolution payout of
each settled position, the price and time of each mark)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from api.testing import api_world_seed, throttle_rates_set
from ingest.changes import changed_wallets_push
from ingest.metrics import metrics_render
from marts.metrics import ledger_metric_families
from marts.models import WalletLedgerPosition, WalletLedgerSummary
from marts.services import changed_wallets_drain
from marts.testing import compute_redis, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import WalletSnapshot
from tests.test_marts_ledger_scoring import hand_computed_wallet_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _unthrottled(settings):
    throttle_rates_set(settings)


def _facts(client, wallet_id) -> dict:
    response = client.get(f"/api/v1/wallets/{wallet_id}/profile")
    assert response.status_code == 200, response.content
    return response.json()["data"]["layer1_facts"]


def test_a_wallet_without_a_ledger_shows_zero_income_and_an_unknown_reconciliation_as_numbers(client):
    world = api_world_seed()
    facts = _facts(client, world.star.id)
    assert facts["cash_pnl"] == 0.0 and facts["rewards"] == 0.0
    totals = facts["reconciliation"].pop("totals")
    assert facts["reconciliation"] == {"status": "unknown", "difference": 0.0, "checked_at": None}
    assert totals == {"status": "unavailable", "realized_pnl_difference": 0.0, "fees_difference": 0.0,
                      "maker_rebates_difference": 0.0, "rewards_difference": 0.0, "observed_at": None}
    assert isinstance(facts["fees_paid"], float) and isinstance(facts["maker_rebates"], float)


def test_the_profile_serves_the_ledgers_fees_income_cash_pnl_and_reconciliation(client):
    world = api_world_seed()
    checked = timezone.now().replace(microsecond=0)
    WalletLedgerSummary.objects.create(
        wallet=world.star, computed_at=checked, fees_paid=Decimal("4.34944"), maker_rebates=Decimal("1.5"),
        rewards=Decimal("3"), cash_pnl=Decimal("-162.3"), realized_pnl=Decimal("-166.66785"),
        reconciliation_status="drift", reconciliation_difference=Decimal("-166.66785"),
        reconciliation_checked_at=checked,
    )
    facts = _facts(client, world.star.id)
    assert (facts["fees_paid"], facts["maker_rebates"], facts["rewards"], facts["cash_pnl"]) == (
        4.34944, 1.5, 3.0, -162.3)
    assert facts["realized_pnl"] == 18000.0, "realized_pnl stays the snapshot's Polymarket-basis figure"
    assert facts["reconciliation"]["status"] == "drift" and facts["reconciliation"]["difference"] == -166.66785
    assert facts["reconciliation"]["checked_at"].startswith(checked.strftime("%Y-%m-%dT%H:%M:%S"))
    assert facts["reconciliation"]["totals"]["status"] == "unavailable", "no profile card landed"


def test_metrics_report_wallet_ledgers_by_status_and_the_share_reconciled():
    world = api_world_seed()
    now = timezone.now()
    WalletLedgerSummary.objects.create(wallet=world.star, computed_at=now, reconciliation_status="reconciled")
    other = type(world.star).objects.exclude(pk=world.star.pk).first()
    WalletLedgerSummary.objects.create(wallet=other, computed_at=now, reconciliation_status="drift")
    text = metrics_render(ledger_metric_families())
    assert 'arbitra_ledger_wallets{status="reconciled"} 1' in text
    assert 'arbitra_ledger_wallets{status="drift"} 1' in text
    assert "arbitra_ledger_reconciled_ratio 0.5" in text


def _explanations(client, wallet_id) -> dict:
    response = client.get(f"/api/v1/wallets/{wallet_id}/explanations")
    assert response.status_code == 200, response.content
    return response.json()["data"]["layer1"]


@pytest.mark.usefixtures("compute_redis")
def test_ledger_numbers_are_explained_by_their_rows_payouts_and_marks(client):
    wallet = hand_computed_wallet_make()  # tests/test_marts_ledger_scoring.py: markets A-E by hand
    changed_wallets_push(wallet_ids=[wallet.pk])
    changed_wallets_drain()
    layer1 = _explanations(client, wallet.pk)

    # 6 TRADE rows, one SPLIT, one REDEEM landed: the ledger counts each once.
    assert layer1["cash_pnl"]["sources"]["ledger_rows"] == {"trade": 6, "split": 1, "redeem": 1}
    assert layer1["fees_paid"]["sources"] == {"ledger_rows": {"trade": 6}}
    assert "From 6 TRADE rows" in layer1["fees_paid"]["explanation"]
    assert layer1["cash_pnl"]["value"] == float(WalletLedgerSummary.objects.get(wallet=wallet).cash_pnl)

    # Settled at their resolution payout: A's 100 No and E's 100 No paid 0 (never redeemed), C's
    # Yes paid 1 (redeemed, nothing left to settle); E's Yes was sold out before it paid.
    settled = {(p["status"], p["payout"], p["shares"], p["settlement_pnl"])
               for p in layer1["realized_pnl"]["sources"]["settled"]}
    assert settled == {("lost", 0.0, 100.0, -40.0), ("lost", 0.0, 100.0, -50.0), ("won", 1.0, 0.0, 0.0)}
    assert layer1["realized_pnl"]["sources"]["ledger_settlement_pnl"] == -90.0
    assert "settled on 3 positions at their resolution payout" in layer1["realized_pnl"]["explanation"]

    # D's 10 Yes marked at the latest price, with the time it was read.
    held = WalletLedgerPosition.objects.get(wallet=wallet, status="open", shares__gt=0)
    (mark,) = layer1["unrealized_pnl"]["sources"]["marked"]
    assert (mark["token_id"], mark["shares"], mark["mark_price"], mark["unrealized_pnl"]) == (
        held.token_id, 10.0, 0.3, 1.0)
    assert mark["marked_at"] == held.marked_at.isoformat()
    assert f"10 shares at 0.3 (latest price read {held.marked_at.isoformat()})" in layer1["unrealized_pnl"]["explanation"]

    win = layer1["win_rate"]
    assert win["value"] == pytest.approx(1 / 3)
    assert {key: win["sources"][key] for key in ("resolved_positions", "winning_positions", "unredeemed_losers",
                                                 "unknown_cost_positions")} == {
        "resolved_positions": 3, "winning_positions": 1, "unredeemed_losers": 2, "unknown_cost_positions": 1}
    assert layer1["reconciliation"]["value"] == "unknown"  # no Polymarket positions landed for it
    assert layer1["total_trades"]["sources"] is None, "numbers the ledger does not feed have no sources"


def test_a_wallet_without_a_ledger_says_so_and_has_no_sources(client):
    wallet = wallet_make()
    WalletSnapshot.objects.create(wallet=wallet)
    layer1 = _explanations(client, wallet.pk)
    assert layer1["cash_pnl"]["value"] == 0.0 and layer1["cash_pnl"]["sources"] is None
    assert "No wallet ledger yet" in layer1["cash_pnl"]["explanation"]
    assert layer1["realized_pnl"]["sources"] is None and layer1["reconciliation"]["value"] == "unknown"
