"""The explanations endpoint says where each wallet-ledger number comes from: the ledger rows it
adds up, the resolution payout of each settled position, the price and time of each mark."""

from __future__ import annotations

import pytest

from api.testing import throttle_rates_set
from ingest.changes import changed_wallets_push
from marts.models import WalletLedgerPosition, WalletLedgerSummary
from marts.services import changed_wallets_drain
from marts.testing import compute_redis, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import WalletSnapshot
from tests.test_marts_ledger_scoring import hand_computed_wallet_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]


@pytest.fixture(autouse=True)
def _unthrottled(settings):
    throttle_rates_set(settings)


def _explanations(client, wallet_id) -> dict:
    response = client.get(f"/api/v1/wallets/{wallet_id}/explanations")
    assert response.status_code == 200, response.content
    return response.json()["data"]["layer1"]


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
