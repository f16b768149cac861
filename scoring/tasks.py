"""Scoring tasks (queue `compute`). Scores themselves are written by the marts drain."""

from __future__ import annotations

from celery import shared_task

from scoring import services


@shared_task(name="scoring.ai_reports_batch", ignore_result=False)
def ai_reports_batch(limit: int | None = None) -> dict:
    return services.ai_reports_batch(limit=limit)


@shared_task(name="scoring.ai_report_generate", ignore_result=False)
def ai_report_generate(wallet_id: int, force: bool = False) -> dict:
    report, created = services.ai_report_generate(wallet_id=wallet_id, force=force)
    return {"report_id": report.pk, "created": created, "model_id": report.model_id}


@shared_task(name="scoring.edge_fdr_refresh", ignore_result=False)
def edge_fdr_refresh() -> dict:
    from scoring.fdr import edge_fdr_refresh as refresh

    return refresh()


@shared_task(name="scoring.edge_days_seal", ignore_result=False)
def edge_days_seal() -> dict:
    from scoring.baselines import edge_days_seal as seal

    return seal()


@shared_task(name="scoring.signals_follow", ignore_result=False)
def signals_follow() -> dict:
    from scoring.signals import signals_follow as follow

    return follow()
