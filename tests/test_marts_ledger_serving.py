"""The wallet ledger served: the profile's layer-1 facts carry its bases and its reconciliation
(numbers, never null), and /metrics the share of wallets reconciled."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from api.testing import api_world_seed, throttle_rates_set
from ingest.metrics import metrics_render
from marts.metrics import ledger_metric_families
from marts.models import WalletLedgerSummary

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
    assert facts["reconciliation"] == {"status": "unknown", "difference": 0.0, "checked_at": None}
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
