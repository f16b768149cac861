"""The v2 live trades job against a scripted upstream: every page, fault and cursor is chosen by
the test, so each silent-loss mode of the v1 code (issue 11 §3) is proven absent by construction.

The emulator-driven completeness runs live in test_ingest_live_trades.py; here the upstream says
exactly what the real Data API can say — the envelope, signed cursors, an empty page in mid-walk,
an HTML page, a truncated body, a 400 for a stale cursor — and the test reads what was stored.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from ingest.models import IngestCursor, IngestDeadLetter, IngestGap, RunStatus, TradeFill
from ingest.registry import ingest_job_execute
from tests.landing import landed_trade_records
from tests.test_http_client import Reply, ScriptedUpstream

pytestmark = pytest.mark.django_db(transaction=True)

HEAD = 1_790_000_000
WALLET = "0x00000000000000000000000000000000000000aa"
CONDITION = "0x" + "cd" * 32
TOKEN = "25070934348813416902477876984955073880416401960631253331845590271167412497744"


def trade_row(second: int, *, tx: int, size: float = 10.0, price: float = 0.5, wallet: str = WALLET,
              side: str = "BUY") -> dict:
    """A /v2/trades row with the 19 keys the real API serves (sentinels of the bare feed included)."""
    return {
        "proxy_wallet": wallet, "side": side, "token_id": TOKEN, "condition_id": CONDITION, "size": size,
        "price": price, "timestamp": second, "title": "Will it rain?", "slug": "will-it-rain", "icon": "",
        "event_slug": "", "outcome": "", "outcome_index": 999, "name": "", "pseudonym": "", "bio": "",
        "profile_image": "", "profile_image_optimized": "", "transaction_hash": "0x" + f"{tx:064x}",
    }


def page(rows: list[dict], *, next_cursor: str | None, limit: int = 1000) -> Reply:
    return Reply(200, {"data": rows, "pagination": {"limit": limit, "offset": 0, "has_more": next_cursor is not None,
                                                     "next_cursor": next_cursor}})


def status(lag: float) -> Reply:
    return Reply(200, {"computed_at": "2026-09-22T12:00:00Z", "age_seconds": 0,
                       "serving": {"lag_seconds": lag, "worst": "trades_feed"}, "ingestion": {}})


@pytest.fixture
def upstream(settings, fast_http):
    server = ScriptedUpstream()
    settings.POLYMARKET_DATA_API_URL = server.url
    settings.INGEST_TRADES_INITIAL_SECONDS = 3600
    settings.INGEST_SERVING_LAG_FLOOR_SECONDS = 10
    settings.INGEST_SERVING_LAG_CEILING_SECONDS = 300
    settings.INGEST_OVERLAP_MARGIN_SECONDS = 30
    yield server
    server.stop()


def trade_requests(server: ScriptedUpstream) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(hit.path).query) for hit in server.hits if urlsplit(hit.path).path == "/v2/trades"]


def live_cursor() -> IngestCursor:
    return IngestCursor.objects.get(source="data_api", stream="trades")


def test_an_empty_page_in_mid_walk_does_not_end_the_walk(upstream):
    upstream.script(
        status(5),
        page([trade_row(HEAD, tx=1)], next_cursor="c1"),
        page([], next_cursor="c2"),
        page([trade_row(HEAD - 10, tx=2)], next_cursor=None),
    )
    run = ingest_job_execute(job_name="data_api.trades")

    assert run.status == RunStatus.SUCCEEDED, run.error_text
    assert TradeFill.objects.count() == 2
    assert run.stats_json["pages"] == 3


def test_it_never_sends_offset_sends_limit_on_the_first_page_only_and_re_sends_the_filters(upstream):
    upstream.script(status(5), page([trade_row(HEAD, tx=1)], next_cursor="c1"), page([], next_cursor=None))
    ingest_job_execute(job_name="data_api.trades")

    first, second = trade_requests(upstream)
    assert "offset" not in first and "offset" not in second
    assert first["limit"] == ["1000"] and "limit" not in second
    assert first["taker_only"] == second["taker_only"] == ["false"]
    assert second["cursor"] == ["c1"]


@pytest.mark.parametrize(
    "bad_body",
    [
        Reply(200, "<html><body>Just a moment…</body></html>", headers={"Content-Type": "text/html"}),
        Reply(403, "<html><title>Access denied</title></html>", headers={"Content-Type": "text/html"}),
        Reply(200, b'{"data": [{"proxy_wallet": "0x'),
    ],
    ids=["html-200", "cdn-html-403", "truncated-json"],
)
def test_a_bad_body_stops_the_walk_without_moving_anything_and_the_next_run_resumes_from_its_cursor(
    upstream, settings, bad_body
):
    settings.HTTP_MAX_ATTEMPTS = 1  # the client's own re-asking is tested with the HTTP client
    upstream.script(status(5), page([trade_row(HEAD, tx=1)], next_cursor="c1"), bad_body)
    interrupted = ingest_job_execute(job_name="data_api.trades")

    assert interrupted.status == RunStatus.PARTIAL
    assert interrupted.stats_json["walk_in_progress"] is True
    assert live_cursor().cursor_value == "", "the high-water mark waits until the walk has reached its floor"
    assert live_cursor().state["walk"]["cursor"] == "c1"

    upstream.script(status(5), page([trade_row(HEAD - 20, tx=2)], next_cursor=None))
    resumed = ingest_job_execute(job_name="data_api.trades")

    assert resumed.status == RunStatus.SUCCEEDED, resumed.error_text
    assert resumed.stats_json["resumed_walk"] is True
    assert trade_requests(upstream)[-1]["cursor"] == ["c1"], "resumed from the stored cursor, not the head"
    assert live_cursor().cursor_value == str(HEAD)
    assert TradeFill.objects.count() == 2


def test_identical_fills_of_one_transaction_are_two_fills_even_across_a_page_boundary_and_an_interruption(
    upstream, settings
):
    settings.HTTP_MAX_ATTEMPTS = 1
    twin = trade_row(HEAD - 5, tx=7)
    upstream.script(
        status(5),
        page([trade_row(HEAD, tx=6), dict(twin)], next_cursor="c1"),
        Reply(503, {"error": "busy", "code": "dependency_unavailable", "retryable": True, "trace_id": "t1"},
              headers={"Retry-After": "0"}),
    )
    ingest_job_execute(job_name="data_api.trades")
    upstream.script(status(5), page([dict(twin), trade_row(HEAD - 100, tx=8)], next_cursor=None))
    ingest_job_execute(job_name="data_api.trades")

    twins = TradeFill.objects.filter(transaction_hash=twin["transaction_hash"]).order_by("occurrence")
    assert [fill.occurrence for fill in twins] == [0, 1]
    assert len({fill.idempotency_key for fill in twins}) == 2

    # Read again from the head: the same multiset, nothing new.
    upstream.script(
        status(5),
        page([trade_row(HEAD, tx=6), dict(twin), dict(twin), trade_row(HEAD - 100, tx=8)], next_cursor=None),
    )
    again = ingest_job_execute(job_name="data_api.trades")
    assert again.stats_json["inserted"] == 0
    assert TradeFill.objects.count() == 4


def test_identical_fills_split_by_page_boundaries_of_one_walk_are_numbered_on_as_the_pages_are_read_ahead(upstream):
    # Each page is numbered on the reader thread while the page before is written: the counter it
    # starts from must be the one the page before ended with, on every page of the walk.
    twin = trade_row(HEAD - 5, tx=7)
    upstream.script(
        status(5),
        page([trade_row(HEAD, tx=6), dict(twin)], next_cursor="c1"),
        page([dict(twin)], next_cursor="c2"),
        page([dict(twin), trade_row(HEAD - 100, tx=8)], next_cursor=None),
    )
    run = ingest_job_execute(job_name="data_api.trades")

    assert run.status == RunStatus.SUCCEEDED
    twins = TradeFill.objects.filter(transaction_hash=twin["transaction_hash"]).order_by("occurrence")
    assert [fill.occurrence for fill in twins] == [0, 1, 2]
    assert run.stats_json["inserted"] == TradeFill.objects.count() == 5


def test_the_overlap_covers_the_served_lag_plus_the_age_of_its_snapshot(upstream):
    upstream.script(status(5), page([trade_row(HEAD, tx=1)], next_cursor=None))
    ingest_job_execute(job_name="data_api.trades")
    aged = status(100)
    aged.body["age_seconds"] = 20
    upstream.script(aged, page([trade_row(HEAD + 60, tx=2)], next_cursor=None))
    run = ingest_job_execute(job_name="data_api.trades")

    assert run.stats_json["serving_lag_seconds"] == 120
    assert run.stats_json["overlap_seconds"] == 150


def test_the_overlap_comes_from_the_served_lag_and_the_floor_follows_it(upstream):
    upstream.script(status(5), page([trade_row(HEAD, tx=1)], next_cursor=None))
    ingest_job_execute(job_name="data_api.trades")
    upstream.script(status(120), page([trade_row(HEAD + 60, tx=2)], next_cursor=None))
    run = ingest_job_execute(job_name="data_api.trades")

    assert run.stats_json["serving_lag_seconds"] == 120
    assert run.stats_json["overlap_seconds"] == 150, "lag 120 s + margin 30 s"
    assert run.stats_json["floor"] == HEAD - 150
    assert run.stats_json["continuity_proven"] is True


def test_a_lag_beyond_what_the_overlap_may_cover_is_a_recorded_gap_never_a_silent_success(upstream):
    upstream.script(status(5), page([trade_row(HEAD, tx=1)], next_cursor=None))
    ingest_job_execute(job_name="data_api.trades")
    upstream.script(status(3600), page([trade_row(HEAD + 60, tx=2)], next_cursor=None))
    run = ingest_job_execute(job_name="data_api.trades")

    assert run.status == RunStatus.PARTIAL
    assert run.stats_json["continuity_proven"] is False
    gap = IngestGap.objects.get()
    assert gap.detail["reason"] == "serving_lag_beyond_overlap"
    assert gap.window_start.timestamp() == HEAD - 3600 - 30
    assert gap.window_end.timestamp() == HEAD - 330, "up to the floor the ceiling allowed"


def test_an_unmeasured_lag_takes_the_ceiling(upstream):
    upstream.script(
        Reply(503, {"error": "not measured yet", "code": "dependency_unavailable", "retryable": True, "trace_id": "s"},
              headers={"Retry-After": "0"}),
        Reply(503, {"error": "not measured yet", "code": "dependency_unavailable", "retryable": True, "trace_id": "s"},
              headers={"Retry-After": "0"}),
        Reply(503, {"error": "not measured yet", "code": "dependency_unavailable", "retryable": True, "trace_id": "s"},
              headers={"Retry-After": "0"}),
        Reply(503, {"error": "not measured yet", "code": "dependency_unavailable", "retryable": True, "trace_id": "s"},
              headers={"Retry-After": "0"}),
        page([trade_row(HEAD, tx=1)], next_cursor=None),
    )
    run = ingest_job_execute(job_name="data_api.trades")

    assert run.status == RunStatus.SUCCEEDED, run.error_text
    assert run.stats_json["serving_lag_seconds"] is None
    assert run.stats_json["overlap_seconds"] == 330
    assert run.stats_json["lag_source"].startswith("ceiling")


def test_a_rejected_cursor_restarts_the_walk_from_the_head_without_moving_the_mark(upstream, settings):
    settings.INGEST_MAX_PAGES_PER_RUN = 1
    upstream.script(status(5), page([trade_row(HEAD, tx=1)], next_cursor="stale"))
    ingest_job_execute(job_name="data_api.trades")
    upstream.script(
        status(5),
        Reply(400, {"error": "cursor expired", "code": "invalid_request", "parameter": "cursor", "retryable": False,
                    "trace_id": "x"}),
    )
    rejected = ingest_job_execute(job_name="data_api.trades")

    assert rejected.status == RunStatus.PARTIAL
    assert "walk" not in live_cursor().state
    assert live_cursor().cursor_value == ""
    assert "[trace x]" in rejected.error_text


def test_a_malformed_row_is_one_dead_letter_whichever_stream_serves_it(upstream):
    bad = trade_row(HEAD, tx=9) | {"price": "abc"}
    served = page([bad, trade_row(HEAD - 1, tx=10)], next_cursor=None)
    served.headers["x-trace-id"] = "trace-of-the-page"
    upstream.script(status(5), served)
    ingest_job_execute(job_name="data_api.trades")
    # The same fill from a user-scoped read: sentinels filled in, otherwise the same row.
    enriched = bad | {"outcome_index": 0, "outcome": "Yes", "event_slug": "rain"}
    from ingest.sources.data_api.parsing import OccurrenceCounter
    from ingest.sources.data_api.writing import trade_page_v2_ingest

    trade_page_v2_ingest(run=None, rows=[enriched], counter=OccurrenceCounter(), stream="wallet_history")

    letter = IngestDeadLetter.objects.get()
    assert "price" in letter.error
    assert "[trace trace-of-the-page]" in letter.error, "the letter quotes the upstream's trace id"
    assert TradeFill.objects.count() == 1, "the rest of the page landed"


def test_the_landing_keeps_each_record_as_received_with_the_fill_it_stored(upstream):
    row = trade_row(HEAD, tx=11)
    upstream.script(status(5), page([row], next_cursor=None))
    ingest_job_execute(job_name="data_api.trades")

    [(stream, key, payload)] = landed_trade_records()
    assert (stream, payload) == ("trades", row)
    assert key == TradeFill.objects.get().idempotency_key
    assert json.loads(json.dumps(payload))["outcome_index"] == 999


def test_an_unreachable_upstream_is_retried_a_bounded_number_of_times_then_the_circuit_opens_and_is_named(
    settings, fast_http
):
    from ingest.selectors import upstream_outages
    from tests.test_http_client import a_closed_port

    settings.POLYMARKET_DATA_API_URL = f"http://127.0.0.1:{a_closed_port()}"
    settings.HTTP_MAX_ATTEMPTS = 2
    settings.CIRCUIT_BREAKER_THRESHOLD = 3
    runs = [ingest_job_execute(job_name="data_api.trades") for _ in range(4)]

    assert runs[0].status == RunStatus.FAILED
    assert "Connection refused" in runs[0].error_text or "ConnectionError" in runs[0].error_text
    assert [run.status for run in runs[-2:]] == [RunStatus.CIRCUIT_OPEN, RunStatus.CIRCUIT_OPEN], (
        "three failed calls open the breaker: later runs do not contact the upstream at all"
    )
    assert runs[-1].stats_json.get("http", {}).get("requests", 0) == 0
    outage = upstream_outages()[0]
    assert outage.host == "127.0.0.1"
    assert outage.cause in {"Connection refused", "circuit breaker is open"}
    assert "data_api.trades" in outage.jobs
