"""Compute tasks (queue `compute`): thin wrappers that call one service each.

Every task is safe to run twice and on several workers at once (see `marts.services`).
"""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from marts import services


@shared_task(name="marts.drain", ignore_result=False)
def drain(batch_size: int | None = None, time_budget_seconds: float | None = None) -> dict:
    return asdict(services.changed_wallets_drain(batch_size=batch_size, time_budget_seconds=time_budget_seconds))


@shared_task(name="marts.wallets_compute", ignore_result=False)
def wallets_compute(wallet_ids: list[int]) -> dict:
    """Recompute named wallets now (replay, admin); wallets held by a running drain are queued."""
    from ingest.changes import changed_wallets_push

    result = services.wallet_batch_compute(wallet_ids=wallet_ids)
    if result.skipped:
        changed_wallets_push(wallet_ids=result.skipped)
    return {"computed": len(result.computed), "skipped": len(result.skipped)}


@shared_task(name="marts.windows_slide", ignore_result=False)
def windows_slide() -> dict:
    return {"queued": services.wallet_windows_slide()}


@shared_task(name="marts.reconcile", ignore_result=False)
def reconcile() -> dict:
    return services.wallets_reconcile()


@shared_task(name="marts.market_resolution_requeue", ignore_result=False)
def market_resolution_requeue(market_ids: list[int]) -> dict:
    return {"queued": services.market_resolution_requeue(market_ids=market_ids)}


@shared_task(name="marts.ledgers_refresh", ignore_result=False)
def ledgers_refresh() -> dict:
    from marts import ledger_services

    return asdict(ledger_services.ledgers_refresh())
