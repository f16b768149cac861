"""Beat jobs of the compute path; `arbitra.schedules.periodic_jobs` includes them."""

from __future__ import annotations

from django.conf import settings

from arbitra.periodic import PeriodicJob


def periodic_jobs() -> list[PeriodicJob]:
    return [
        PeriodicJob("marts.drain", "marts.drain", settings.COMPUTE_DRAIN_INTERVAL_SECONDS, "compute"),
        PeriodicJob(
            "marts.ledgers_refresh", "marts.ledgers_refresh", settings.COMPUTE_LEDGER_INTERVAL_SECONDS, "compute"
        ),
        PeriodicJob("marts.reconcile", "marts.reconcile", settings.COMPUTE_RECONCILE_INTERVAL_SECONDS, "compute"),
        PeriodicJob(
            "marts.windows_slide", "marts.windows_slide", settings.COMPUTE_SLIDE_INTERVAL_SECONDS, "compute"
        ),
        PeriodicJob("scoring.edge_fdr_refresh", "scoring.edge_fdr_refresh", settings.EDGE_FDR_INTERVAL_SECONDS, "compute"),
        PeriodicJob("scoring.edge_days_seal", "scoring.edge_days_seal", settings.EDGE_SEAL_INTERVAL_SECONDS, "compute"),
        PeriodicJob("scoring.signals_follow", "scoring.signals_follow", settings.SIGNALS_FOLLOW_INTERVAL_SECONDS, "compute"),
        PeriodicJob(
            "scoring.ai_reports_batch",
            "scoring.ai_reports_batch",
            settings.AI_BATCH_INTERVAL_SECONDS,
            "compute",
        ),
    ]
