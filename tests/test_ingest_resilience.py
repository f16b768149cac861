"""Data API v2 ingest under the upstream's quirks and failures: every published fill still stored exactly once."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db.models import Count

from ingest.models import IngestCursor, IngestDeadLetter, IngestRun, LandingPage, LandingRecord, RunKind, RunStatus, TradeFill
from ingest.registry import INGEST_JOBS, ingest_job_execute
from ingest.replay import replay_window
from ingest.services import dead_letters_retry
from ingest.sources.data_api import jobs as data_api_jobs
from ingest.sources.data_api.replay import LANDING_BATCH, LANDING_PAGES_PER_BATCH
from ingest.sources.data_api.writing import fill_row_identity
from tests.test_ingest_live_trades import completeness, live_mark, served_until

pytestmark = pytest.mark.django_db(transaction=True)


def _with_client(monkeypatch, job_name: str, wrap) -> None:
    """Run `job_name` with its source's client passed through `wrap` (for this test only)."""
    registered = INGEST_JOBS[job_name]
    source = registered.source
    wrapped_source = dataclasses.replace(source, client=lambda: wrap(source.client()))
    monkeypatch.setitem(INGEST_JOBS, job_name, dataclasses.replace(registered, source=wrapped_source))


def _after_each_request(client, action):
    """The client, calling action(path, request_number) after every answered request."""
    original = client.get_json
    answered = []

    def get_json(path, *, params=None, **decoding):
        body = original(path, params=params, **decoding)
        answered.append(path)
        action(path, len(answered))
        return body

    client.get_json = get_json
    return client


def _switch_scenario(upstream, name: str) -> None:
    requests.post(f"{upstream.url}/_control/scenario", params={"name": name}, timeout=5).raise_for_status()


def test_many_fills_of_one_transaction_and_second_across_a_page_boundary_are_all_kept(emulator, settings):
    settings.INGEST_TRADES_PAGE_SIZE = 25
    settings.INGEST_MAX_PAGES_PER_RUN = 10_000
    upstream = emulator(seed=21, scenario="steady,multi_fill,identical_fills", history_seconds=120)
    run = ingest_job_execute(job_name="data_api.trades")
    assert run.status == RunStatus.SUCCEEDED, run.stats_json
    assert run.stats_json["pages"] > 10
    report = completeness(upstream)
    assert report.complete, report.as_dict()
    assert report.repeated_identical_fills > 0
    shared = (
        TradeFill.objects.values("transaction_hash", "traded_at").annotate(n=Count("id")).filter(n__gt=25)
    )
    assert shared.exists(), "the scenario should put more fills in one transaction-second than a page holds"


def test_rows_published_while_paging_are_not_lost(emulator, monkeypatch, settings):
    """The clock moves between our page requests, pushing new fills in at the head of the feed."""
    settings.INGEST_TRADES_PAGE_SIZE = 50
    upstream = emulator(seed=8, scenario="steady,late_rows", history_seconds=120)
    _with_client(monkeypatch, "data_api.trades",
                 lambda client: _after_each_request(client, lambda path, number: upstream.advance(3)))
    runs = [ingest_job_execute(job_name="data_api.trades") for _ in range(4)]
    monkeypatch.undo()
    # The clock stops; the next poll reads what arrived during the last walk.
    upstream.advance(upstream.config.late_row_max_seconds)
    runs.append(ingest_job_execute(job_name="data_api.trades"))
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 5, [run.stats_json for run in runs]
    report = completeness(upstream)
    assert report.truth_fills > 1000
    assert report.complete, report.as_dict()


@pytest.mark.parametrize(
    ("storm", "knobs", "status_code"),
    [
        # While the storm scenario is on, every request answers 429 with Retry-After for 2 s.
        ("rate_limit", {"storm_first_request": 0, "storm_every_requests": 1}, 429),
        ("unavailable", {"unavailable_rate": 1.0}, 503),
    ],
)
def test_a_storm_of_429_or_503_ends_the_run_partial_keeps_the_walk_and_the_next_run_completes_it(
    emulator, monkeypatch, settings, storm, knobs, status_code
):
    settings.HTTP_MAX_ATTEMPTS = 2
    settings.INGEST_TRADES_PAGE_SIZE = 50
    upstream = emulator(seed=4, scenario="steady", history_seconds=60, **knobs)
    assert ingest_job_execute(job_name="data_api.trades").status == RunStatus.SUCCEEDED
    mark_before = live_mark()
    upstream.advance(120)

    def storm_after_two_pages(path: str, number: int) -> None:
        if path == "/v2/trades" and number == 3:  # /v2/status, then two pages
            _switch_scenario(upstream, f"steady,{storm}")

    with monkeypatch.context() as patch:
        _with_client(patch, "data_api.trades", lambda client: _after_each_request(client, storm_after_two_pages))
        stormy = ingest_job_execute(job_name="data_api.trades")
    assert stormy.status == RunStatus.PARTIAL, (stormy.stats_json, stormy.error_text)
    assert stormy.stats_json["pages"] == 2 and stormy.stats_json["inserted"] > 0
    assert stormy.stats_json["walk_in_progress"] and stormy.stats_json["stop_reason"] == "upstream_error"
    assert stormy.stats_json["http"]["retries"] > 0
    assert str(status_code) in stormy.error_text
    assert live_mark() == mark_before
    walk = IngestCursor.objects.get(source="data_api", stream="trades").state["walk"]
    assert walk["cursor"] and walk["pages"] == 2

    _switch_scenario(upstream, "steady")
    calm = ingest_job_execute(job_name="data_api.trades")
    assert calm.status == RunStatus.SUCCEEDED, (calm.stats_json, calm.error_text)
    assert calm.stats_json["resumed_walk"]
    assert live_mark() > mark_before
    report = completeness(upstream, since=mark_before - 60)
    assert report.complete, report.as_dict()


def _served_malformed_rows(upstream) -> list[dict]:
    """The malformed rows /v2/trades has served by now (v2 skips fills under its size floor)."""
    truth = requests.get(f"{upstream.url}/_truth/trades", params={"until": served_until(upstream)}, timeout=30).json()
    return [entry["row"] for entry in truth["malformed"]
            if float(entry["row"]["size"]) >= upstream.config.v2_min_filter_amount]


def test_malformed_rows_are_dead_lettered_once_whichever_stream_meets_them_and_the_rest_of_the_page_lands(
    emulator, settings
):
    settings.INGEST_BACKFILL_WALLETS_PER_RUN = 1000
    settings.INGEST_WALLET_PAGES_PER_RUN = 1000
    upstream = emulator(seed=6, scenario="steady,malformed", history_seconds=300)
    first = ingest_job_execute(job_name="data_api.trades")
    # A second poll re-reads the overlap, and the wallets' histories serve the same bad rows
    # again (with the outcome the global feed blanks): neither may add a letter.
    again = ingest_job_execute(job_name="data_api.trades")
    histories = ingest_job_execute(job_name="data_api.wallet_history")
    letters = IngestDeadLetter.objects.filter(resolved_at__isnull=True)
    published = {fill_row_identity(row) for row in _served_malformed_rows(upstream)}
    assert first.stats_json["dead_lettered"] > 0
    assert again.stats_json["dead_lettered"] == 0
    assert histories.status == RunStatus.SUCCEEDED and histories.stats_json["dead_lettered"] == 0
    assert letters.count() == len(published) == first.stats_json["dead_lettered"]
    assert set(letters.values_list("payload_key", flat=True)) == published
    assert all(letter.error.split(":")[0] in {"proxy_wallet", "price", "timestamp"} for letter in letters), [
        letter.error for letter in letters
    ]
    assert completeness(upstream).complete


def test_retrying_a_dead_letter_resolves_it_once_its_payload_is_fixed(emulator):
    emulator(seed=6, scenario="steady,malformed", history_seconds=120)
    ingest_job_execute(job_name="data_api.trades")
    letter = IngestDeadLetter.objects.order_by("pk").first()
    assert letter is not None
    assert dead_letters_retry(dead_letter_ids=[letter.pk]) == {"resolved": 0, "still_failing": 1}
    # The emulator's defects: a missing wallet, a non-numeric price or a missing timestamp.
    fixed = {**letter.payload, "proxy_wallet": "0x" + "ab" * 20, "price": 0.42, "timestamp": 1767225000}
    IngestDeadLetter.objects.filter(pk=letter.pk).update(payload=fixed)
    before = TradeFill.objects.count()
    assert dead_letters_retry(dead_letter_ids=[letter.pk]) == {"resolved": 1, "still_failing": 0}
    letter.refresh_from_db()
    assert letter.resolved_at is not None and letter.retry_count == 2
    assert TradeFill.objects.count() == before + 1


@pytest.mark.parametrize("crash_at_save", [1, 3])
def test_a_crash_between_a_page_commit_and_the_walk_state_save_loses_and_duplicates_nothing(
    emulator, monkeypatch, settings, crash_at_save
):
    settings.INGEST_TRADES_PAGE_SIZE = 50
    upstream = emulator(seed=9, scenario="steady,multi_fill,identical_fills", history_seconds=60)
    ingest_job_execute(job_name="data_api.trades")
    mark_before = live_mark()
    upstream.advance(120)
    save_walk = data_api_jobs.cursor_advance
    walk_saves = []

    def crash_once(*, cursor, to=None, state=None):
        if state and "walk" in state:
            walk_saves.append(state["walk"])
            if len(walk_saves) == crash_at_save:
                raise RuntimeError("worker died after the page committed, before its walk state was saved")
        save_walk(cursor=cursor, to=to, state=state)

    with monkeypatch.context() as patch:
        patch.setattr(data_api_jobs, "cursor_advance", crash_once)
        crashed = ingest_job_execute(job_name="data_api.trades")
    assert crashed.status == RunStatus.FAILED
    assert "worker died" in crashed.error_text
    assert "inserted" not in crashed.stats_json
    assert live_mark() == mark_before
    recovered = ingest_job_execute(job_name="data_api.trades")
    assert recovered.status == RunStatus.SUCCEEDED, recovered.stats_json
    # From the last saved page on (or the head, when none was saved): the crashed run's last page
    # is read again, and absorbed.
    assert recovered.stats_json["resumed_walk"] is (crash_at_save > 1)
    assert recovered.stats_json["duplicates"] > 0
    assert live_mark() > mark_before
    report = completeness(upstream)
    assert report.repeated_identical_fills > 0
    assert report.complete, report.as_dict()


@pytest.mark.parametrize("from_landing", [False, True], ids=["from_upstream", "from_landing"])
def test_replaying_an_ingested_window_changes_nothing_and_leaves_the_mark(emulator, from_landing):
    upstream = emulator(seed=12, scenario="steady,duplicates,identical_fills", history_seconds=120)
    ingest_job_execute(job_name="gamma.markets")
    ingest_job_execute(job_name="data_api.trades")
    mark = live_mark()
    stored = TradeFill.objects.count()
    since = datetime.fromtimestamp(upstream.world.history_start, tz=UTC)
    until = datetime.fromtimestamp(mark, tz=UTC)
    run = replay_window(target="trades", since=since, until=until, from_landing=from_landing,
                        progress=_replay_reading_each_landing_record_once(from_landing))
    assert run.status == RunStatus.SUCCEEDED, run.error_text
    assert run.kind == RunKind.REPLAY
    assert run.stats_json["inserted"] == 0
    assert run.stats_json["duplicates"] > 0
    assert run.stats_json["wallets_requeued"] > 0
    assert TradeFill.objects.count() == stored
    assert live_mark() == mark
    assert completeness(upstream).complete


def _replay_reading_each_landing_record_once(from_landing: bool = True) -> Callable[[str], None]:
    """A replay progress callback that stops a replay from landing reading more batches than the
    landing held when it started (records the replay itself lands must not be read back)."""
    if not from_landing:
        return lambda message: None
    batches = -(-LandingRecord.objects.count() // LANDING_BATCH) + -(-LandingPage.objects.count() // LANDING_PAGES_PER_BATCH)
    seen = []

    def progress(message: str) -> None:
        seen.append(message)
        if len(seen) > batches:
            raise RuntimeError(f"replay read {len(seen)} landing batches, the landing held {batches}: {message}")

    return progress


@pytest.mark.parametrize(
    "from_landing",
    [False, True],
    ids=["from_upstream", "from_landing"],
)
def test_replay_restores_fills_deleted_from_the_window(emulator, from_landing):
    upstream = emulator(seed=13, scenario="steady,identical_fills", history_seconds=120)
    ingest_job_execute(job_name="gamma.markets")
    ingest_job_execute(job_name="data_api.trades")
    since = datetime.fromtimestamp(upstream.world.history_start + 30, tz=UTC)
    until = datetime.fromtimestamp(upstream.world.history_start + 60, tz=UTC)
    lost = TradeFill.objects.filter(traded_at__gte=since, traded_at__lt=until)
    lost_count = lost.count()
    assert lost_count > 0
    lost.delete()
    preview = replay_window(target="trades", since=since, until=until, from_landing=from_landing, dry_run=True)
    assert preview.stats_json["inserted"] == lost_count
    assert TradeFill.objects.filter(traded_at__gte=since, traded_at__lt=until).count() == 0
    replay = replay_window(target="trades", since=since, until=until, from_landing=from_landing,
                           progress=_replay_reading_each_landing_record_once(from_landing))
    assert replay.status == RunStatus.SUCCEEDED, replay.error_text
    assert replay.stats_json["inserted"] == lost_count
    assert completeness(upstream).complete


def test_a_replay_from_landing_after_wallet_histories_enriched_the_fills_inserts_nothing(emulator, settings):
    """Without a market crawl the global feed cannot tell a fill's outcome; the wallet's history
    can, and the enriched fill lands once more. The landing then holds two records of one fill,
    which are one fill, not two identical ones."""
    settings.INGEST_BACKFILL_WALLETS_PER_RUN = 1000
    upstream = emulator(seed=14, scenario="steady", history_seconds=120)
    ingest_job_execute(job_name="data_api.trades")
    histories = ingest_job_execute(job_name="data_api.wallet_history")
    assert histories.stats_json["enriched"] > 0
    stored = TradeFill.objects.count()
    since = datetime.fromtimestamp(upstream.world.history_start, tz=UTC)
    until = datetime.fromtimestamp(live_mark(), tz=UTC)
    run = replay_window(target="trades", since=since, until=until, from_landing=True,
                        progress=_replay_reading_each_landing_record_once())
    assert run.status == RunStatus.SUCCEEDED, run.error_text
    assert run.stats_json["inserted"] == 0
    assert TradeFill.objects.count() == stored
    assert completeness(upstream).complete


def test_a_run_left_running_by_a_killed_worker_is_marked_abandoned_by_the_next_run(emulator):
    emulator(seed=2, scenario="steady", history_seconds=30)
    stale = IngestRun.objects.create(job_name="ingest.data_api.trades", status=RunStatus.RUNNING)
    run = ingest_job_execute(job_name="data_api.trades")
    stale.refresh_from_db()
    assert stale.status == RunStatus.ABANDONED
    assert run.stats_json["abandoned_runs"] == 1


def test_an_open_circuit_is_recorded_as_circuit_open(emulator, settings):
    # Two failed requests open it: the run's /v2/status poll, then its first page.
    settings.CIRCUIT_BREAKER_THRESHOLD = 2
    settings.HTTP_MAX_ATTEMPTS = 1
    settings.POLYMARKET_DATA_API_URL = "http://127.0.0.1:9"  # nothing listens there
    failed = ingest_job_execute(job_name="data_api.trades")
    assert failed.status == RunStatus.FAILED, failed.stats_json
    assert failed.stats_json["serving_lag_seconds"] is None and failed.stats_json["pages"] == 0
    blocked = ingest_job_execute(job_name="data_api.trades")
    assert blocked.status == RunStatus.CIRCUIT_OPEN
    assert not IngestCursor.objects.get(source="data_api", stream="trades").cursor_value


def test_verify_upstream_judges_what_the_live_mark_covers_unless_asked_for_everything(emulator):
    upstream = emulator(seed=9, scenario="steady", history_seconds=120)
    ingest_job_execute(job_name="data_api.trades")
    upstream.advance(30)  # published since the last poll: not missing yet

    out = io.StringIO()
    call_command("verify_upstream", upstream=upstream.url, feed="v2", stdout=out, stderr=io.StringIO())
    assert json.loads(out.getvalue())["missing"] == 0

    with pytest.raises(CommandError, match="fills missing"):
        call_command("verify_upstream", upstream=upstream.url, feed="v2", everything=True, stdout=io.StringIO())
