"""Prometheus families of the scoring layer, contributed to /metrics from ScoringConfig.ready."""

from __future__ import annotations

from django.utils import timezone

from ingest.metrics import MetricFamily
from marts.bulk import fast_rows
from scoring.baselines import DAY, current_seal_rules, day_start_of


def edge_seal_metric_families() -> list[MetricFamily]:
    """The edge baselines' sealed days (scoring.baselines): how far behind the seal job is and how
    many sealed market days wait to be recomputed. A lag past a day and the job's interval means
    every baseline reads more days from the fills than it needs."""
    sealed = MetricFamily(
        "arbitra_edge_sealed_days", "gauge", "UTC days the edge baselines hold sealed under the current settings."
    )
    lag = MetricFamily(
        "arbitra_edge_seal_lag_seconds", "gauge",
        "Seconds from the end of the latest sealed day to now (-1 before the first seal).",
    )
    due = MetricFamily("arbitra_edge_days_due", "gauge", "Sealed market days a late or backfilled fill made stale.")
    (days, latest), = fast_rows("SELECT count(*), max(day) FROM edge_sealed_day WHERE rules = %s",
                                [current_seal_rules()])
    (waiting,), = fast_rows("SELECT count(*) FROM market_edge_day_due", [])
    sealed.add(days)
    lag.add(-1 if latest is None else round((timezone.now() - (day_start_of(latest) + DAY)).total_seconds(), 3))
    due.add(waiting)
    return [sealed, lag, due]
