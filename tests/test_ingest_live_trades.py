"""The v2 live trades feed against the emulator over real HTTP: every published fill stored exactly
once, a mark that only moves forward, walks that resume across runs, and gaps closed by
condition-scoped sweeps only after a market crawl newer than the gap."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from ingest.frame import JobOutcome, JobRequest, job_lock, job_run
from ingest.models import IngestCursor, IngestGap, IngestRun, RunStatus
from ingest.registry import ingest_job_execute
from ingest.verify import CompletenessReport, fills_completeness_check

pytestmark = pytest.mark.django_db(transaction=True)


def served_until(upstream) -> int:
    """The newest second all of whose fills /v2/trades serves at the emulator's now: younger fills
    may still wait for the upstream's indexer, so they are not published yet."""
    config = upstream.config
    delay = config.visibility_base_max_seconds
    if "late_rows" in upstream.world.scenarios:
        delay = max(delay, config.late_row_max_seconds)
    return int(upstream.world.now()) - delay - 1


def completeness(upstream, **window) -> CompletenessReport:
    """Stored fills against everything the emulator has published on /v2/trades by now."""
    window.setdefault("until", served_until(upstream))
    return fills_completeness_check(upstream_url=upstream.url, feed="v2", **window)


def live_mark() -> int:
    return int(IngestCursor.objects.get(source="data_api", stream="trades").cursor_value)


def test_it_stores_every_published_fill_exactly_once(settings, emulator):
    settings.INGEST_TRADES_INITIAL_SECONDS = 3600
    with emulator(seed=3, scenario="steady,multi_fill,duplicates,identical_fills") as upstream:
        ingest_job_execute(job_name="gamma.markets")
        runs = [ingest_job_execute(job_name="data_api.trades")]
        for _ in range(6):
            upstream.advance(20)
            runs.append(ingest_job_execute(job_name="data_api.trades"))
        report = completeness(upstream)
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 7, [(r.stats_json, r.error_text) for r in runs]
    assert all(run.stats_json["continuity_proven"] and run.stats_json["gaps"] == 0 for run in runs)
    assert report.truth_fills > 1000
    assert report.repeated_identical_fills > 0, "the scenario publishes identical fills of one transaction"
    assert report.duplicate_rows_published > 0
    assert (report.complete, report.missing, report.duplicated, report.unexpected) == (True, 0, 0, 0), report.as_dict()
    assert report.stored_fills == report.truth_fills


def test_it_moves_the_mark_only_forward_and_a_second_poll_inserts_nothing_new(emulator):
    with emulator(seed=5, scenario="steady", history_seconds=60) as upstream:
        upstream.advance(30)
        first = ingest_job_execute(job_name="data_api.trades")
        mark_after_first = live_mark()
        second = ingest_job_execute(job_name="data_api.trades")
        mark_after_second = live_mark()
        upstream.advance(30)
        third = ingest_job_execute(job_name="data_api.trades")
    assert first.stats_json["inserted"] > 0
    assert first.stats_json["mark_before"] is None and first.stats_json["mark_after"] == mark_after_first
    assert second.stats_json["inserted"] == 0
    assert second.stats_json["duplicates"] > 0, "the overlap below the mark is read again"
    assert mark_after_second == mark_after_first
    assert third.stats_json["inserted"] > 0
    assert third.stats_json["mark_before"] == mark_after_first < live_mark() == third.stats_json["mark_after"]


def test_a_burst_beyond_one_runs_page_budget_is_resumed_by_the_next_runs_with_nothing_missing(emulator, settings):
    settings.INGEST_TRADES_PAGE_SIZE = 300
    settings.INGEST_MAX_PAGES_PER_RUN = 3
    with emulator(seed=11, scenario="steady,burst", history_seconds=60) as upstream:
        ingest_job_execute(job_name="gamma.markets")
        upstream.advance(5)
        first = ingest_job_execute(job_name="data_api.trades")
        assert first.status == RunStatus.SUCCEEDED, first.stats_json
        mark_before_burst = live_mark()
        # One long poll interval holding a burst: far more rows than three pages.
        upstream.advance(600)
        runs = []
        while len(runs) < 40:
            runs.append(ingest_job_execute(job_name="data_api.trades"))
            if runs[-1].status == RunStatus.SUCCEEDED:
                break
            # The mark waits for the walk to reach it; rows keep arriving meanwhile.
            assert live_mark() == mark_before_burst
            upstream.advance(2)
        interrupted, finished = runs[:-1], runs[-1]
        assert len(interrupted) >= 2
        assert all(run.status == RunStatus.PARTIAL for run in interrupted)
        assert all(run.stats_json["walk_in_progress"] and run.stats_json["stop_reason"] == "page_cap"
                   for run in interrupted)
        assert [run.stats_json["resumed_walk"] for run in runs] == [False] + [True] * (len(runs) - 1)
        assert finished.status == RunStatus.SUCCEEDED and not finished.stats_json["walk_in_progress"]
        assert live_mark() > mark_before_burst
        # Rows published while the walk was resumed are read by the next walk from the head.
        later = []
        for _ in range(3):
            upstream.advance(10)
            later.append(ingest_job_execute(job_name="data_api.trades"))
        report = completeness(upstream)
    assert [run.status for run in later] == [RunStatus.SUCCEEDED] * 3, [(len(runs), r.stats_json) for r in later]
    assert not IngestGap.objects.exists(), "a walk that resumes proves its continuity: no gap"
    assert report.truth_fills > 3 * 300 * 3
    assert report.complete, report.as_dict()


def test_a_second_runner_records_skipped_locked():
    results = []

    def other_worker():
        try:
            results.append(job_run(JobRequest(job_name="ingest.data_api.trades"), lambda run: JobOutcome()))
        finally:
            connection.close()

    with job_lock("ingest.data_api.trades") as held:
        assert held
        # Another connection (another worker) tries the same job.
        thread = threading.Thread(target=other_worker)
        thread.start()
        thread.join()
    assert results[0].status == RunStatus.SKIPPED_LOCKED
    assert IngestRun.objects.filter(status=RunStatus.SKIPPED_LOCKED).count() == 1


def test_gaps_the_serving_lag_leaves_are_closed_by_one_sweep_only_after_a_market_crawl_newer_than_them(
    emulator, settings
):
    # An overlap of 5 s against rows that surface 20-40 s late: each poll records a gap.
    settings.INGEST_TRADES_PAGE_SIZE = 20  # pages of a few seconds: the floor, not the page, ends a walk
    settings.INGEST_SERVING_LAG_FLOOR_SECONDS = 0
    settings.INGEST_SERVING_LAG_CEILING_SECONDS = 5
    settings.INGEST_OVERLAP_MARGIN_SECONDS = 0
    with emulator(seed=19, scenario="steady,late_rows", history_seconds=120, late_row_rate=0.3,
                  late_row_min_seconds=20, late_row_max_seconds=40) as upstream:
        upstream.advance(10)
        assert ingest_job_execute(job_name="data_api.trades").status == RunStatus.SUCCEEDED
        lagging = []
        for _ in range(2):
            upstream.advance(30)
            lagging.append(ingest_job_execute(job_name="data_api.trades"))
        assert [run.status for run in lagging] == [RunStatus.PARTIAL] * 2
        assert all(not run.stats_json["continuity_proven"] and run.stats_json["gaps"] == 1 for run in lagging)
        gaps = list(IngestGap.objects.order_by("id"))
        assert len(gaps) == 2 and {gap.detail["reason"] for gap in gaps} == {"serving_lag_beyond_overlap"}
        assert completeness(upstream).missing > 0, "late rows below the floor were never read by the live feed"

        # No market crawl at all: the sweep would not know markets created since.
        waiting = ingest_job_execute(job_name="data_api.gaps")
        assert waiting.status == RunStatus.PARTIAL and waiting.stats_json["waiting_for_market_crawl"]
        # A crawl that started before the gaps were recorded does not count either (both times by
        # our clock: the gaps' windows are upstream time, which here runs in January 2026).
        early = ingest_job_execute(job_name="gamma.markets")
        assert early.status == RunStatus.SUCCEEDED
        newest_gap_recorded = max(gap.created_at for gap in gaps)
        IngestRun.objects.filter(pk=early.pk).update(started_at=newest_gap_recorded - timedelta(seconds=1))
        still_waiting = ingest_job_execute(job_name="data_api.gaps")
        assert still_waiting.stats_json.get("waiting_for_market_crawl"), still_waiting.stats_json
        assert IngestGap.objects.filter(status=IngestGap.Status.OPEN).count() == 2
        assert all("waiting_for" in gap.detail for gap in IngestGap.objects.all())

        crawl = ingest_job_execute(job_name="gamma.markets")
        sweep = ingest_job_execute(job_name="data_api.gaps")
        report = completeness(upstream)
    assert sweep.status == RunStatus.SUCCEEDED, (sweep.stats_json, sweep.error_text)
    assert sweep.stats_json["gaps_closed"] == 2 and sweep.stats_json["inserted"] > 0
    for gap in IngestGap.objects.all():
        assert gap.status == IngestGap.Status.CLOSED
        assert gap.closed_by_run_id == sweep.pk
        assert gap.detail["market_crawl_run"] == crawl.pk
    assert not IngestCursor.objects.get(source="data_api", stream="gaps").state, "the finished sweep is cleared"
    assert report.complete, report.as_dict()
