"""The wallet ledger stored and reconciled: recomputed from landed /v2/activity rows for the
wallets whose rows landed, idempotent, and reconciled with the emulator's /v2/positions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest.models import LandingRecord, RunStatus
from ingest.registry import ingest_job_execute
from marts import ledger_services
from marts import tasks as marts_tasks
from marts.models import LedgerCursor, WalletLedgerEntry, WalletLedgerSummary
from marts.services import changed_wallets_drain
from marts.testing import compute_redis  # noqa: F401 - a fixture
from scoring.models import WalletSnapshot

pytestmark = pytest.mark.django_db(transaction=True)


def _land_world(upstream, *, rounds: int) -> None:
    ingest_job_execute(job_name="gamma.markets")
    for _ in range(rounds):
        upstream.advance(300)
        for job in ("gamma.markets", "data_api.trades", "data_api.resolutions"):
            run = ingest_job_execute(job_name=job)
            assert run.status == RunStatus.SUCCEEDED, (job, run.error_text)
    # Polymarket's positions count movements its activity feed serves up to minutes later (late
    # rows): read the positions, then the activity once that lag has passed.
    run = ingest_job_execute(job_name="data_api.positions")
    assert run.status == RunStatus.SUCCEEDED, run.error_text
    upstream.advance(300)
    for job in ("data_api.activity",):
        run = ingest_job_execute(job_name=job)
        assert run.status == RunStatus.SUCCEEDED, (job, run.error_text)


def test_the_ledger_of_every_wallet_whose_activity_landed_is_computed_once_and_replaced_not_added(emulator, settings):
    settings.INGEST_ACTIVITY_WALLETS_PER_RUN = 1000
    with emulator(seed=31, scenario="steady,multi_fill,resolutions", history_seconds=900) as upstream:
        _land_world(upstream, rounds=2)
    first = ledger_services.ledgers_refresh(rows_per_stream=10_000)
    rest = ledger_services.ledgers_refresh(rows_per_stream=10_000)
    while rest.landed_rows:
        rest = ledger_services.ledgers_refresh(rows_per_stream=10_000)
    assert first.wallets > 0
    assert LedgerCursor.objects.get(stream="activity").landing_id == LandingRecord.objects.filter(
        source="data_api", stream="activity").order_by("-id").values_list("id", flat=True)[0]
    entries = list(WalletLedgerEntry.objects.order_by("wallet_id", "sequence", "leg").values_list(
        "wallet_id", "sequence", "leg", "shares", "cash", "fee"))
    assert entries
    assert ledger_services.ledgers_refresh().wallets == 0, "nothing landed since: nothing recomputed"
    ledger_services.wallet_ledgers_compute(wallet_ids=list(WalletLedgerSummary.objects.values_list("pk", flat=True)))
    again = list(WalletLedgerEntry.objects.order_by("wallet_id", "sequence", "leg").values_list(
        "wallet_id", "sequence", "leg", "shares", "cash", "fee"))
    assert again == entries
    assert LedgerCursor.objects.get(stream="activity").landing_id > 0
    fees = WalletLedgerEntry.objects.filter(kind="trade", fee__gt=0)
    assert fees.exists(), "taker fees are read per fill"


def _share(wallet_ids) -> Decimal:
    summaries = WalletLedgerSummary.objects.filter(wallet_id__in=wallet_ids)
    assert summaries.exists()
    return Decimal(summaries.filter(reconciliation_status="reconciled").count()) / summaries.count()


def test_after_30_simulated_minutes_99_percent_of_scored_wallets_reconcile_with_the_emulators_positions(
    emulator, settings, compute_redis,  # noqa: F811 - compute_redis is a fixture
):
    """The emulator computes /v2/positions with its own code under Polymarket's rule (a SPLIT buys,
    a MERGE sells, every outcome at 0.50); our ledger, fed only what the real jobs landed
    (activity, positions, resolutions), must agree on realised PnL and sizes for ≥ 99 % of the
    wallets the drain scored."""
    settings.INGEST_ACTIVITY_WALLETS_PER_RUN = 1000
    with emulator(seed=32, scenario="steady,multi_fill,resolutions", history_seconds=1800) as upstream:
        _land_world(upstream, rounds=6)  # 6 × 300 s = 30 simulated minutes
        first = marts_tasks.ledgers_refresh()
        assert first["wallets"] > 0
        # A wallet that drifted or lacks history asks for it once; the next activity run re-walks it.
        run = ingest_job_execute(job_name="data_api.activity")
        assert run.status == RunStatus.SUCCEEDED, run.error_text
    marts_tasks.ledgers_refresh()
    changed_wallets_drain()
    scored = list(WalletSnapshot.objects.values_list("wallet_id", flat=True))
    ledgers = set(WalletLedgerSummary.objects.values_list("wallet_id", flat=True))
    scored_with_ledger = [wallet_id for wallet_id in scored if wallet_id in ledgers]
    assert len(scored_with_ledger) >= 0.99 * len(scored) > 0, "every scored wallet has a ledger"
    share = _share(scored_with_ledger)
    sizes_agree = WalletLedgerSummary.objects.filter(
        wallet_id__in=scored_with_ledger, reconciliation_size_difference__lte=Decimal("0.01")).count()
    drifting = [(s.wallet_id, s.reconciliation_status, s.reconciliation_difference, s.reconciliation_size_difference)
                for s in WalletLedgerSummary.objects.filter(wallet_id__in=scored_with_ledger)
                .exclude(reconciliation_status="reconciled")[:10]]
    print(f"scored wallets {len(scored)}, with a ledger {len(scored_with_ledger)}: reconciled {share:.4f}; "
          f"sizes agree on {sizes_agree}; splits {WalletLedgerEntry.objects.filter(kind='split').count()}, "
          f"merges {WalletLedgerEntry.objects.filter(kind='merge').count()} ledger legs")
    assert share >= Decimal("0.99"), (share, drifting)
    assert WalletLedgerEntry.objects.filter(kind__in=["split", "merge"]).exists(), "the rule was exercised"
