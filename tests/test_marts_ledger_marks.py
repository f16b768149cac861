"""A market's price move re-marks every holder within one drain cycle, idle holders included:
the Gamma write that moves a token's latest price queues the market's holders, and the drain
that recomputes them re-marks their ledger positions as well as their marts."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.changes import changed_wallets_depth, changed_wallets_push
from ingest.models import OutcomeToken
from ingest.sources.data_api.accounts import activity_page_land
from ingest.sources.data_api.parsing import OccurrenceCounter
from ingest.sources.gamma.writing import market_page_ingest
from marts import ledger_services
from marts.models import WalletLedgerEntry, WalletLedgerPosition, WalletLedgerSummary
from marts.services import changed_wallets_drain
from marts.testing import compute_redis, fill_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import WalletSnapshot
from tests.test_parsers import load_fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]


def _gamma_row(prices: list[str]) -> dict:
    row = dict(load_fixture("prediction-market-vol/gamma_markets.json")[0])
    row.update(closed=False, active=True, outcomePrices=json.dumps(prices), umaResolutionStatus=None)
    return row


def _gamma_write(prices: list[str], django_capture_on_commit_callbacks) -> None:
    # The holders are queued when the page's transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        market_page_ingest(run=None, rows=[_gamma_row(prices)])


def activity_land(wallet, token: OutcomeToken, *, at, size, price="0", side="BUY", kind="TRADE", usdc=None) -> None:
    """Land one /v2/activity row of the wallet as the activity walk would (TRADE or REDEEM)."""
    usdc = Decimal(price) * Decimal(size) if usdc is None else Decimal(str(usdc))
    trade = kind == "TRADE"
    row = {
        "proxy_wallet": wallet.address, "timestamp": int(at.timestamp()), "condition_id": token.market.condition_id,
        "type": kind, "size": float(size), "usdc_size": float(usdc),
        "transaction_hash": "0x" + hashlib.sha256(f"{wallet.address}{token.token_id}{kind}{at}".encode()).hexdigest(),
        "price": float(price), "token_id": token.token_id if trade else "", "side": side if trade else "",
        "outcome_index": token.outcome_index if trade else 999, "title": "t", "slug": "s", "event_slug": "",
        "outcome": "",
    }
    activity_page_land(run=None, rows=[row], counter=OccurrenceCounter())


def test_an_idle_holder_marked_at_030_is_marked_at_080_after_the_price_moves_and_one_drain(
    django_capture_on_commit_callbacks,
):
    _gamma_write(["0.30", "0.70"], django_capture_on_commit_callbacks)
    yes = OutcomeToken.objects.select_related("market").get(outcome_index=0)
    assert yes.latest_price == Decimal("0.30")
    assert changed_wallets_depth() == 0, "a market seen for the first time has no holders to re-mark"

    # The holder bought 100 Yes at 0.20 a day ago and has not traded since.
    holder = wallet_make()
    bought_at = timezone.now() - timedelta(days=1)
    fill_make(wallet=holder, token=yes, side="BUY", size=100, price="0.20", at=bought_at)
    activity_land(holder, yes, at=bought_at, size=100, price="0.20")
    ledger_services.wallet_ledgers_compute(wallet_ids=[holder.pk])
    changed_wallets_push(wallet_ids=[holder.pk])
    changed_wallets_drain()
    position = WalletLedgerPosition.objects.get(wallet=holder, token_id=yes.token_id)
    assert (position.mark_price, position.unrealized_pnl) == (Decimal("0.30"), Decimal("10"))  # 100 × (0.30 − 0.20)
    first_marked_at = position.marked_at
    assert WalletSnapshot.objects.get(wallet=holder).unrealized_pnl == Decimal("10")

    _gamma_write(["0.80", "0.20"], django_capture_on_commit_callbacks)
    assert changed_wallets_depth() == 1, "the price move queued the market's holder"
    changed_wallets_drain()

    position.refresh_from_db()
    assert (position.mark_price, position.unrealized_pnl) == (Decimal("0.80"), Decimal("60"))  # 100 × (0.80 − 0.20)
    assert position.marked_at > first_marked_at
    assert WalletLedgerSummary.objects.get(wallet=holder).unrealized_pnl == Decimal("60")
    assert WalletSnapshot.objects.get(wallet=holder).unrealized_pnl == Decimal("60")
    assert changed_wallets_depth() == 0

    _gamma_write(["0.80", "0.20"], django_capture_on_commit_callbacks)
    assert changed_wallets_depth() == 0, "prices that did not move queue nobody"


def _stored_ledger(wallet) -> tuple[list[tuple], list[tuple]]:
    """The wallet's entries and positions by value (no surrogate id, no mark read time)."""
    entries = list(WalletLedgerEntry.objects.filter(wallet=wallet).order_by("sequence", "leg").values_list(
        "sequence", "leg", "occurred_at", "kind", "source_key", "token_id", "shares", "cash", "fee", "price"))
    positions = list(WalletLedgerPosition.objects.filter(wallet=wallet).order_by("token_id").values_list(
        "token_id", "status", "shares", "avg_price", "realized_pnl", "cash_realized_pnl", "fees_paid", "mark_price",
        "unrealized_pnl", "cost_basis_known", "movements", "first_at", "last_at"))
    return entries, positions


def test_a_recompute_rewrites_only_the_rows_that_changed_and_stores_what_a_full_rewrite_would(
    django_capture_on_commit_callbacks,
):
    _gamma_write(["0.30", "0.70"], django_capture_on_commit_callbacks)
    yes = OutcomeToken.objects.select_related("market").get(outcome_index=0)
    no = OutcomeToken.objects.select_related("market").get(outcome_index=1)
    holder = wallet_make()
    now = timezone.now()
    activity_land(holder, yes, at=now - timedelta(days=3), size=100, price="0.20")
    activity_land(holder, no, at=now - timedelta(days=2), size=50, price="0.60")
    activity_land(holder, yes, at=now - timedelta(days=1), size=40, price="0.50", side="SELL")
    ledger_services.wallet_ledgers_compute(wallet_ids=[holder.pk])
    entry_ids = dict(WalletLedgerEntry.objects.filter(wallet=holder).values_list("sequence", "id"))
    position_ids = dict(WalletLedgerPosition.objects.filter(wallet=holder).values_list("token_id", "id"))
    yes_marked_at = WalletLedgerPosition.objects.get(wallet=holder, token_id=yes.token_id).marked_at

    # A newer fill of No: the earlier entries and the Yes position come out as stored and stay.
    activity_land(holder, no, at=now - timedelta(hours=1), size=10, price="0.65")
    ledger_services.wallet_ledgers_compute(wallet_ids=[holder.pk])
    after = dict(WalletLedgerEntry.objects.filter(wallet=holder).values_list("sequence", "id"))
    assert {sequence: after[sequence] for sequence in entry_ids} == entry_ids, "unchanged entries not rewritten"
    assert set(after) == {0, 1, 2, 3}
    yes_position = WalletLedgerPosition.objects.get(wallet=holder, token_id=yes.token_id)
    assert (yes_position.id, yes_position.marked_at) == (position_ids[yes.token_id], yes_marked_at)
    no_position = WalletLedgerPosition.objects.get(wallet=holder, token_id=no.token_id)
    assert no_position.id != position_ids[no.token_id]
    assert (no_position.shares, no_position.movements) == (Decimal(60), 2)

    # An older fill arriving late shifts every sequence: what is stored is what a rewrite from
    # nothing stores, no stale row left behind.
    activity_land(holder, yes, at=now - timedelta(days=4), size=10, price="0.10")
    ledger_services.wallet_ledgers_compute(wallet_ids=[holder.pk])
    diffed = _stored_ledger(holder)
    assert [entry[0] for entry in diffed[0]] == [0, 1, 2, 3, 4]
    WalletLedgerEntry.objects.filter(wallet=holder).delete()
    WalletLedgerPosition.objects.filter(wallet=holder).delete()
    ledger_services.wallet_ledgers_compute(wallet_ids=[holder.pk])
    assert _stored_ledger(holder) == diffed
