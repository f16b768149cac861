"""Ingest under the upstream's quirks and failures: every record still stored exactly once."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime

import pytest
import requests
from django.core.management import CommandError, call_command

from ingest.models import IngestCursor, IngestDeadLetter, IngestRun, RunKind, RunStatus, TradeFill
from ingest.registry import INGEST_JOBS, ingest_job_execute
from ingest.replay import replay_window
from ingest.services import dead_letters_retry
from ingest.sources.data_api.client import data_api_client
from ingest.verify import fills_completeness_check

pytestmark = pytest.mark.django_db(transaction=True)


def _live_cursor() -> str:
    return IngestCursor.objects.get(source="data_api", stream="trades").cursor_value


def test_many_fills_of_one_transaction_and_second_across_a_page_boundary_are_all_kept(emulator, settings):
    settings.INGEST_TRADES_PAGE_SIZE = 25
    settings.INGEST_TRADES_OFFSET_CAP = 100_000
    settings.INGEST_MAX_PAGES_PER_RUN = 10_000
    upstream = emulator(seed=21, scenario="steady,multi_fill", history_seconds=120)
    run = ingest_job_execute(job_name="data_api.trades")
    assert run.status == RunStatus.SUCCEEDED, run.stats_json
    report = fills_completeness_check(upstream_url=upstream.url)
    assert report.complete, report.as_dict()
    shared = (
        TradeFill.objects.values("transaction_hash", "traded_at").annotate(n=__import__("django").db.models.Count("id"))
        .filter(n__gt=25)
    )
    assert shared.exists(), "the scenario should put more fills in one transaction-second than a page holds"


def test_rows_published_while_paging_shift_offsets_without_losing_any(emulator, monkeypatch, settings):
    """Offset drift: the clock moves between our page requests, pushing new fills in at the head."""
    settings.INGEST_TRADES_PAGE_SIZE = 50
    upstream = emulator(seed=8, scenario="steady", history_seconds=120)
    job = INGEST_JOBS["data_api.trades"]

    def drifting_client():
        client = data_api_client()
        original = client.get_json

        def get_json(path, *, params=None):
            body = original(path, params=params)
            upstream.advance(3)
            return body

        client.get_json = get_json
        return client

    monkeypatch.setitem(INGEST_JOBS, "data_api.trades", dataclasses.replace(job, client_factory=drifting_client))
    ingest_job_execute(job_name="data_api.trades")
    for _ in range(3):
        ingest_job_execute(job_name="data_api.trades")
    # Everything published up to the newest second the cursor covers must be stored.
    report = fills_completeness_check(upstream_url=upstream.url, until=int(_live_cursor()) - 1)
    assert report.missing == 0, report.as_dict()
    assert report.duplicate_rows_published == 0


def test_a_429_storm_ends_the_run_partial_keeps_the_cursor_and_the_next_run_completes(emulator, settings):
    settings.HTTP_MAX_ATTEMPTS = 2
    settings.INGEST_TRADES_PAGE_SIZE = 100
    # While the storm scenario is on, every request answers 429 (Retry-After) for 2 s.
    upstream = emulator(seed=4, scenario="steady", history_seconds=60, storm_first_request=0, storm_every_requests=1)
    ingest_job_execute(job_name="data_api.trades")
    cursor_before = _live_cursor()
    upstream.advance(120)
    requests.post(f"{upstream.url}/_control/scenario", params={"name": "steady,rate_limit"}, timeout=5)
    stormy = ingest_job_execute(job_name="data_api.trades")
    assert stormy.status in {RunStatus.PARTIAL, RunStatus.FAILED}
    assert stormy.stats_json["http"]["retries"] > 0
    assert _live_cursor() == cursor_before
    requests.post(f"{upstream.url}/_control/scenario", params={"name": "steady"}, timeout=5)
    calm = ingest_job_execute(job_name="data_api.trades")
    assert calm.status == RunStatus.SUCCEEDED, calm.stats_json
    assert int(_live_cursor()) > int(cursor_before)
    assert fills_completeness_check(upstream_url=upstream.url, since=int(cursor_before) - 60).missing == 0


def test_malformed_rows_are_dead_lettered_once_and_the_rest_of_the_page_lands(emulator):
    upstream = emulator(seed=6, scenario="steady,malformed", history_seconds=300)
    settings_pages = ingest_job_execute(job_name="data_api.trades")
    ingest_job_execute(job_name="data_api.gaps")
    # A second poll re-reads the lookback window: the same malformed rows must not pile up.
    again = ingest_job_execute(job_name="data_api.trades")
    truth = requests.get(f"{upstream.url}/_truth/trades", timeout=30).json()
    letters = IngestDeadLetter.objects.filter(resolved_at__isnull=True)
    assert settings_pages.stats_json["dead_lettered"] > 0
    assert again.stats_json["dead_lettered"] == 0
    assert letters.count() == len(truth["malformed"])
    assert all(letter.error.split(":")[0] in {"proxyWallet", "price", "timestamp"} for letter in letters)
    assert fills_completeness_check(upstream_url=upstream.url).complete


def test_retrying_a_dead_letter_resolves_it_once_its_payload_is_fixed(emulator):
    emulator(seed=6, scenario="steady,malformed", history_seconds=120)
    ingest_job_execute(job_name="data_api.trades")
    letter = IngestDeadLetter.objects.order_by("pk").first()
    assert letter is not None
    assert dead_letters_retry(dead_letter_ids=[letter.pk]) == {"resolved": 0, "still_failing": 1}
    # The emulator's defects: a missing wallet, a non-numeric price or a missing timestamp.
    fixed = {**letter.payload, "proxyWallet": "0x" + "ab" * 20, "price": 0.42, "timestamp": 1767225000}
    IngestDeadLetter.objects.filter(pk=letter.pk).update(payload=fixed)
    before = TradeFill.objects.count()
    assert dead_letters_retry(dead_letter_ids=[letter.pk]) == {"resolved": 1, "still_failing": 0}
    letter.refresh_from_db()
    assert letter.resolved_at is not None and letter.retry_count == 2
    assert TradeFill.objects.count() == before + 1


def test_a_crash_between_the_upsert_and_the_cursor_write_loses_and_duplicates_nothing(emulator, monkeypatch):
    upstream = emulator(seed=9, scenario="steady,multi_fill", history_seconds=60)
    ingest_job_execute(job_name="data_api.trades")
    cursor_before = _live_cursor()
    upstream.advance(60)

    from ingest.sources.data_api import jobs as data_api

    def crash(*args, **kwargs):
        raise RuntimeError("worker died before moving the cursor")

    with monkeypatch.context() as patch:
        patch.setattr(data_api.IngestCursor.objects, "filter", crash)
        crashed = ingest_job_execute(job_name="data_api.trades")
    assert crashed.status == RunStatus.FAILED
    assert crashed.stats_json == {} or "inserted" not in crashed.stats_json
    assert _live_cursor() == cursor_before
    stored_after_crash = TradeFill.objects.count()
    recovered = ingest_job_execute(job_name="data_api.trades")
    assert recovered.status == RunStatus.SUCCEEDED
    assert recovered.stats_json["inserted"] == 0, "the crashed run's rows were already stored"
    assert TradeFill.objects.count() == stored_after_crash
    assert fills_completeness_check(upstream_url=upstream.url).complete


def test_replaying_an_ingested_window_changes_nothing_and_leaves_the_cursor(emulator):
    upstream = emulator(seed=12, scenario="steady,duplicates", history_seconds=120)
    ingest_job_execute(job_name="gamma.markets")
    ingest_job_execute(job_name="data_api.trades")
    cursor = _live_cursor()
    stored = TradeFill.objects.count()
    state = requests.get(f"{upstream.url}/_control/state", timeout=5).json()
    since = datetime.fromtimestamp(state["history_start"], tz=UTC)
    until = datetime.fromtimestamp(int(cursor), tz=UTC)
    for from_landing in (False, True):
        run = replay_window(target="trades", since=since, until=until, from_landing=from_landing)
        assert run.status == RunStatus.SUCCEEDED, run.error_text
        assert run.kind == RunKind.REPLAY
        assert run.stats_json["inserted"] == 0
        assert run.stats_json["wallets_requeued"] > 0
    assert TradeFill.objects.count() == stored
    assert _live_cursor() == cursor


def test_replay_from_the_upstream_restores_fills_deleted_from_the_window(emulator):
    upstream = emulator(seed=13, scenario="steady", history_seconds=120)
    ingest_job_execute(job_name="gamma.markets")
    ingest_job_execute(job_name="data_api.trades")
    state = requests.get(f"{upstream.url}/_control/state", timeout=5).json()
    since = datetime.fromtimestamp(state["history_start"] + 30, tz=UTC)
    until = datetime.fromtimestamp(state["history_start"] + 60, tz=UTC)
    lost = TradeFill.objects.filter(traded_at__gte=since, traded_at__lt=until)
    lost_count = lost.count()
    assert lost_count > 0
    lost.delete()
    preview = replay_window(target="trades", since=since, until=until, dry_run=True)
    assert preview.stats_json["inserted"] == lost_count
    assert TradeFill.objects.filter(traded_at__gte=since, traded_at__lt=until).count() == 0
    replay = replay_window(target="trades", since=since, until=until)
    assert replay.stats_json["inserted"] == lost_count
    assert fills_completeness_check(upstream_url=upstream.url).complete


def test_a_run_left_running_by_a_killed_worker_is_marked_abandoned_by_the_next_run(emulator):
    emulator(seed=2, scenario="steady", history_seconds=30)
    stale = IngestRun.objects.create(job_name="ingest.data_api.trades", status=RunStatus.RUNNING)
    run = ingest_job_execute(job_name="data_api.trades")
    stale.refresh_from_db()
    assert stale.status == RunStatus.ABANDONED
    assert run.stats_json["abandoned_runs"] == 1


def test_an_open_circuit_is_recorded_as_circuit_open(emulator, settings):
    settings.CIRCUIT_BREAKER_THRESHOLD = 1
    settings.HTTP_MAX_ATTEMPTS = 1
    settings.POLYMARKET_DATA_API_URL = "http://127.0.0.1:9"  # nothing listens there
    failed = ingest_job_execute(job_name="data_api.trades")
    assert failed.status == RunStatus.FAILED
    blocked = ingest_job_execute(job_name="data_api.trades")
    assert blocked.status == RunStatus.CIRCUIT_OPEN


def test_verify_upstream_judges_what_the_live_cursor_covers_unless_asked_for_everything(emulator):
    upstream = emulator(seed=9, scenario="steady", history_seconds=120)
    ingest_job_execute(job_name="data_api.trades")
    upstream.advance(30)  # published since the last poll: not missing yet

    out = io.StringIO()
    call_command("verify_upstream", upstream=upstream.url, stdout=out, stderr=io.StringIO())
    assert json.loads(out.getvalue())["missing"] == 0

    with pytest.raises(CommandError, match="fills missing"):
        call_command("verify_upstream", upstream=upstream.url, everything=True, stdout=io.StringIO())
