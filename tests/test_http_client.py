"""The shared HTTP client against a real local HTTP server and a real Redis (ARCHITECTURE §4.3, §7).

Each test scripts the upstream's replies, then checks what the client did with them: retries,
Retry-After, immediate rejections, the breaker, and limits shared between clients.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from ingest.http import (
    CircuitOpen,
    SourceClient,
    ThrottleTimeout,
    UpstreamBadPayload,
    UpstreamRejected,
    UpstreamUnavailable,
    is_offset_cap_error,
    parse_retry_after,
    window_safe_bucket,
)
from ingest.ratelimit import (
    BreakerState,
    CircuitBreaker,
    ConcurrencyTimeout,
    RedisConcurrencyLimiter,
    RedisTokenBucket,
)
from ingest.sources.data_api.client import DATA_API_LIMITS
from ingest.sources.gamma.client import GAMMA_LIMITS
from tests.services_plugin import _with_redis_db

# A database of its own on the test run's Redis (see services_plugin), flushed around every test.
LIMITER_REDIS_URL = os.environ.get("ARBITRA_HTTP_TEST_REDIS_URL") or _with_redis_db(os.environ["REDIS_URL"], 13)

OFFSET_CAP_BODY = {"error": "max historical activity offset of 3000 exceeded"}


# --- A scripted upstream -------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = b""  # bytes and str go out as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    arrived_at: float  # time.monotonic()


class ScriptedUpstream:
    """A real HTTP server that answers with the next scripted reply, then with `fallback`."""

    def __init__(self) -> None:
        self.fallback = Reply(200, {"ok": True})
        self.hits: list[Hit] = []
        self.max_in_flight = 0
        self._script: deque[Reply] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()

        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream._answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest output to the client's own logs

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the loop's next poll, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.hits.append(Hit(request.path, dict(request.headers), time.monotonic()))
            reply = self._script.popleft() if self._script else self.fallback
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            time.sleep(reply.delay_seconds)
        finally:
            # Counted down before the reply is written: once the client has its response it may
            # release its slot and send again, and that must not look like an overlap.
            with self._lock:
                self._in_flight -= 1
        if isinstance(reply.body, bytes):
            body = reply.body
        elif isinstance(reply.body, str):
            body = reply.body.encode()
        else:
            body = json.dumps(reply.body).encode()
        request.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers}
        for name, value in headers.items():
            request.send_header(name, value)
        if reply.status != 304:
            request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if reply.status != 304:
            request.wfile.write(body)


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_in_threads(*targets: Callable[[], None]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)


# --- Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def limiter_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(LIMITER_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def another_redis_connection(limiter_redis: redis.Redis) -> Iterator[redis.Redis]:
    """A second, independent connection: what a second worker process would hold."""
    client = redis.Redis.from_url(LIMITER_REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream()
    yield server
    server.stop()


@pytest.fixture
def make_client(limiter_redis: redis.Redis, upstream: ScriptedUpstream) -> Iterator[Callable[..., SourceClient]]:
    built: list[SourceClient] = []

    def build(**overrides: Any) -> SourceClient:
        options: dict[str, Any] = {
            "source": "test-source",
            "base_url": upstream.url,
            "redis_client": limiter_redis,
            "rate_limits": {"/": (10_000, 10.0)},
            "timeout": (1.0, 2.0),
            "max_attempts": 3,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "concurrency": 8,
            "breaker_threshold": 5,
            "breaker_reset_seconds": 60.0,
            "throttle_timeout": 5.0,
        }
        options.update(overrides)
        client = SourceClient(**options)
        built.append(client)
        return client

    yield build
    for client in built:
        client.close()


# --- Retries ------------------------------------------------------------------------------------


def test_it_retries_a_503_and_returns_the_json_that_follows(make_client, upstream, caplog):
    upstream.script(Reply(503, "busy"), Reply(503, "busy"), Reply(200, [{"id": 1}]))
    client = make_client()

    with caplog.at_level(logging.WARNING, logger="ingest.http"):
        result = client.get_json("/trades", params={"limit": 5})

    assert result == [{"id": 1}]
    assert [hit.path for hit in upstream.hits] == ["/trades?limit=5"] * 3
    assert client.stats["requests"] == 3
    assert client.stats["retries"] == 2
    assert client.stats["statuses"] == {"200": 1, "503": 2}
    retry_messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(retry_messages) == 2
    assert retry_messages[0].startswith("test-source /trades: HTTP 503 on attempt 1 of 3, retrying in ")


def test_it_waits_as_long_as_retry_after_asks_on_a_429(make_client, upstream):
    upstream.script(Reply(429, "slow down", headers={"Retry-After": "1"}), Reply(200, {"ok": True}))
    client = make_client(backoff_max=2.0)

    started = time.monotonic()
    assert client.get_json("/trades") == {"ok": True}

    assert time.monotonic() - started >= 0.95
    assert upstream.hits[1].arrived_at - upstream.hits[0].arrived_at >= 0.95


def test_a_long_retry_after_is_capped_by_backoff_max(make_client, upstream):
    upstream.script(Reply(503, "maintenance", headers={"Retry-After": "3600"}), Reply(200, {"ok": True}))
    client = make_client(backoff_max=0.1)

    started = time.monotonic()
    assert client.get_json("/markets") == {"ok": True}

    assert time.monotonic() - started < 1.0


def test_it_gives_up_after_max_attempts_with_the_last_status_and_body(make_client, upstream):
    upstream.fallback = Reply(502, "bad gateway")
    client = make_client(max_attempts=3)

    with pytest.raises(UpstreamUnavailable) as raised:
        client.get_json("/trades")

    assert raised.value.status == 502
    assert raised.value.attempts == 3
    assert raised.value.body_snippet == "bad gateway"
    assert len(upstream.hits) == 3


def test_it_retries_transport_errors_then_reports_the_source_unavailable(make_client):
    client = make_client(base_url=f"http://127.0.0.1:{a_closed_port()}", max_attempts=3)

    with pytest.raises(UpstreamUnavailable) as raised:
        client.get_json("/trades")

    assert raised.value.status is None
    assert raised.value.attempts == 3
    assert "ConnectionError" in raised.value.reason
    assert client.stats["transport_errors"] == 3
    assert client.stats["retries"] == 2


# --- Answers that must not be retried ------------------------------------------------------------


def test_the_offset_cap_400_is_rejected_at_once_and_recognised(make_client, upstream):
    upstream.script(Reply(400, OFFSET_CAP_BODY))
    client = make_client()

    with pytest.raises(UpstreamRejected) as raised:
        client.get_json("/trades", params={"offset": 3500})

    assert raised.value.status == 400
    assert raised.value.json_body == OFFSET_CAP_BODY
    assert is_offset_cap_error(raised.value)
    assert len(upstream.hits) == 1
    assert client.stats["retries"] == 0
    # The upstream answered, so it is healthy as far as the breaker is concerned.
    assert client.breaker.state() == BreakerState.CLOSED


@pytest.mark.parametrize(
    "error",
    [
        UpstreamRejected(400, '{"error": "invalid limit"}', {"error": "invalid limit"}),
        UpstreamRejected(404, '{"error": "max historical activity offset exceeded"}', None),
        ValueError("max historical activity offset exceeded"),
    ],
)
def test_other_errors_are_not_mistaken_for_the_offset_cap(error):
    assert not is_offset_cap_error(error)


def test_the_offset_cap_message_is_matched_whatever_its_case():
    assert is_offset_cap_error(UpstreamRejected(400, "Max Historical Activity Offset of 1500 EXCEEDED", None))


def test_an_html_page_in_a_200_is_asked_again_and_raised_as_a_bad_payload_when_it_persists(make_client, upstream):
    upstream.fallback = Reply(200, "<html>not json</html>", headers={"Content-Type": "text/html"})
    client = make_client(max_attempts=3)

    with pytest.raises(UpstreamBadPayload) as raised:
        client.get_json("/markets")

    assert raised.value.status == 200
    assert raised.value.body_snippet == "<html>not json</html>"
    assert len(upstream.hits) == 3
    assert client.stats["bad_bodies"] == 3


def test_a_body_cut_short_is_asked_again_and_the_good_answer_is_returned(make_client, upstream):
    upstream.script(Reply(200, b'{"data": [{"size": 1'), Reply(200, {"data": [{"size": 1}]}))
    client = make_client(max_attempts=3)

    assert client.get_json("/v2/trades") == {"data": [{"size": 1}]}
    assert len(upstream.hits) == 2


def test_a_cdn_html_403_is_transient_but_an_api_403_is_not(make_client, upstream):
    upstream.script(
        Reply(403, "<html><title>Access denied</title></html>", headers={"Content-Type": "text/html"}),
        Reply(200, {"data": []}),
    )
    client = make_client(max_attempts=3)
    assert client.get_json("/v2/trades") == {"data": []}

    upstream.script(Reply(403, {"error": "forbidden", "code": "forbidden", "retryable": False, "trace_id": "t-403"}))
    with pytest.raises(UpstreamRejected) as raised:
        client.get_json("/v2/trades")
    assert raised.value.status == 403


def test_a_v2_error_body_decides_whether_to_retry_and_its_trace_id_is_kept(make_client, upstream):
    upstream.script(Reply(500, {"error": "boom", "code": "internal", "retryable": False, "trace_id": "abc123"}))
    client = make_client(max_attempts=3)

    with pytest.raises(UpstreamUnavailable) as raised:
        client.get_json("/v2/trades")

    assert len(upstream.hits) == 1, "retryable: false is not asked again"
    assert "[trace abc123]" in str(raised.value)

    upstream.script(
        Reply(503, {"error": "busy", "code": "dependency_unavailable", "retryable": True, "trace_id": "x"},
              headers={"Retry-After": "0", "x-trace-id": "hdr-1"}),
        Reply(200, {"data": []}),
    )
    assert client.get_json("/v2/trades") == {"data": []}


# --- Circuit breaker ------------------------------------------------------------------------------


def test_the_breaker_opens_after_repeated_failures_and_half_opens_after_the_reset(make_client, upstream):
    upstream.fallback = Reply(500, "down")
    client = make_client(max_attempts=1, breaker_threshold=2, breaker_reset_seconds=0.5)

    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            client.get_json("/markets")
    assert client.breaker.state() == BreakerState.OPEN

    with pytest.raises(CircuitOpen):
        client.get_json("/markets")
    assert len(upstream.hits) == 2  # refused without contacting the upstream
    assert client.stats["circuit_open"] == 1

    time.sleep(0.6)
    assert client.breaker.state() == BreakerState.HALF_OPEN
    upstream.fallback = Reply(200, {"ok": True})
    assert client.get_json("/markets") == {"ok": True}
    assert client.breaker.state() == BreakerState.CLOSED


def test_the_breaker_is_shared_by_clients_of_the_same_source(make_client, upstream, another_redis_connection):
    upstream.fallback = Reply(500, "down")
    failing_worker = make_client(max_attempts=1, breaker_threshold=1)
    other_worker = make_client(redis_client=another_redis_connection, breaker_threshold=1)

    with pytest.raises(UpstreamUnavailable):
        failing_worker.get_json("/markets")

    with pytest.raises(CircuitOpen):
        other_worker.get_json("/markets")
    assert len(upstream.hits) == 1


def test_a_half_open_breaker_lets_one_probe_through_and_reopens_when_it_fails(limiter_redis):
    breaker = CircuitBreaker(limiter_redis, key="breaker:test", failure_threshold=1, reset_after_seconds=0.3)
    assert breaker.state() == BreakerState.CLOSED

    breaker.record_failure()
    assert breaker.state() == BreakerState.OPEN
    assert not breaker.allow()

    time.sleep(0.35)
    assert breaker.state() == BreakerState.HALF_OPEN
    assert breaker.allow()  # this caller is the probe
    assert not breaker.allow()  # everyone else waits for its outcome

    breaker.record_failure()
    assert breaker.state() == BreakerState.OPEN

    time.sleep(0.35)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state() == BreakerState.CLOSED
    assert breaker.allow()


# --- Limits shared through Redis ------------------------------------------------------------------


def test_the_token_bucket_never_grants_more_than_capacity_plus_refill_over_a_window(
    limiter_redis, another_redis_connection
):
    capacity, refill_per_second = 5, 20.0
    buckets = [
        RedisTokenBucket(connection, key="bucket:test", capacity=capacity, refill_per_second=refill_per_second)
        for connection in (limiter_redis, another_redis_connection)
    ]
    granted = [0, 0]
    run_seconds = 0.75
    started = time.monotonic()

    def take_tokens(worker: int) -> None:
        while time.monotonic() - started < run_seconds:
            buckets[worker].acquire(timeout=1.0)
            granted[worker] += 1

    run_in_threads(lambda: take_tokens(0), lambda: take_tokens(1))
    window = time.monotonic() - started

    assert sum(granted) <= capacity + refill_per_second * window
    assert min(granted) > 0  # both workers were served from the one bucket
    assert sum(granted) >= refill_per_second * run_seconds * 0.5  # and it did not just starve them


def test_two_clients_in_two_threads_share_one_rate_limit(make_client, upstream, another_redis_connection):
    limit, per_seconds = 10, 1.0
    clients = [
        make_client(rate_limits={"/": (limit, per_seconds)}),
        make_client(rate_limits={"/": (limit, per_seconds)}, redis_client=another_redis_connection),
    ]
    run_seconds = 1.2
    started = time.monotonic()

    def keep_calling(client: SourceClient) -> None:
        while time.monotonic() - started < run_seconds:
            client.get_json("/trades")

    run_in_threads(*(lambda client=client: keep_calling(client) for client in clients))

    arrivals = sorted(hit.arrived_at for hit in upstream.hits)
    busiest_window = max(sum(1 for other in arrivals if start <= other < start + per_seconds) for start in arrivals)
    assert busiest_window <= limit
    assert all(client.stats["requests"] > 0 for client in clients)
    assert sum(client.stats["throttled_waits_seconds"] for client in clients) > 0


def test_the_most_specific_route_limit_applies(make_client, upstream):
    client = make_client(rate_limits={"/": (10_000, 10.0), "/trades": (1, 60.0)}, throttle_timeout=0.2)

    client.get_json("/trades")
    with pytest.raises(ThrottleTimeout):
        client.get_json("/trades", params={"offset": 500})
    # Only whole path segments match, and other routes keep their own budget.
    client.get_json("/tradesummary")
    client.get_json("/markets")

    assert [hit.path for hit in upstream.hits] == ["/trades", "/tradesummary", "/markets"]


def test_the_concurrency_limit_caps_simultaneous_requests_across_clients(
    make_client, upstream, another_redis_connection
):
    upstream.fallback = Reply(200, {"ok": True}, delay_seconds=0.15)
    clients = [make_client(concurrency=2), make_client(concurrency=2, redis_client=another_redis_connection)]

    def two_calls(client: SourceClient) -> None:
        for _ in range(2):
            client.get_json("/markets")

    run_in_threads(*(lambda client=client: two_calls(client) for client in clients for _ in range(3)))

    assert len(upstream.hits) == 12
    assert upstream.max_in_flight == 2
    assert sum(client.stats["slot_waits_seconds"] for client in clients) > 0


def test_a_crashed_holder_gives_its_slot_back_when_its_lease_expires(limiter_redis):
    limiter = RedisConcurrencyLimiter(limiter_redis, key="slots:test", limit=1, lease_seconds=0.3)
    assert limiter.try_acquire() is not None  # taken and never released: the holder "crashed"
    assert limiter.try_acquire() is None

    with pytest.raises(ConcurrencyTimeout), limiter.slot(timeout=0.05):
        pass

    with limiter.slot(timeout=1.0) as waited_seconds:
        assert waited_seconds >= 0.15
        assert limiter.in_use() == 1
    assert limiter.in_use() == 0


# --- Conditional GET for feeds ---------------------------------------------------------------------


def test_get_text_passes_a_304_through_for_conditional_gets(make_client, upstream):
    upstream.script(
        Reply(200, "<rss>café</rss>", headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'}),
        Reply(304, headers={"ETag": '"v1"'}),
    )
    client = make_client()

    status, headers, text = client.get_text("/feed.xml")
    assert (status, headers["ETag"], text) == (200, '"v1"', "<rss>café</rss>")

    status, _headers, text = client.get_text("/feed.xml", headers={"If-None-Match": headers["ETag"]})
    assert (status, text) == (304, "")
    assert upstream.hits[1].headers["If-None-Match"] == '"v1"'
    assert client.breaker.state() == BreakerState.CLOSED


# --- Small pieces ----------------------------------------------------------------------------------


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=5), usegmt=True), now=now) == 5.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_published_limits_become_buckets_that_never_exceed_them_in_any_window():
    for limits in (DATA_API_LIMITS, GAMMA_LIMITS):
        for requests_allowed, per_seconds in limits.values():
            capacity, refill_per_second = window_safe_bucket(requests_allowed, per_seconds)
            assert capacity + refill_per_second * per_seconds <= requests_allowed + 1e-9
    assert window_safe_bucket(200, 10.0) == (20, 18.0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'[{"price": 0.52, "size": 10}]', [{"price": 0.52, "size": 10}]),
        ('{"title": "Élection — 2028"}'.encode("utf-16"), {"title": "Élection — 2028"}),
        (b'{"big": 123456789012345678901234567890}', {"big": 123456789012345678901234567890}),
        (b'{"x": NaN}', "nan"),
    ],
    ids=["utf8", "utf16", "beyond-64-bit-int", "nan"],
)
def test_json_bodies_decode_exactly(body, expected):
    from ingest.http import json_body_decode

    decoded = json_body_decode(body)
    if expected == "nan":
        assert decoded["x"] != decoded["x"]
    else:
        assert decoded == expected == json.loads(body)


def test_json_body_decode_refuses_what_is_not_json():
    from ingest.http import json_body_decode

    with pytest.raises(ValueError):
        json_body_decode(b"<html>busy</html>")


def test_landing_payload_text_round_trips_what_orjson_cannot_encode():
    from ingest.frame import payload_text

    for payload in ({"size": 1.5, "name": "Zoë"}, {"big": 2**70}, [1, "two", None, True]):
        assert json.loads(payload_text(payload)) == payload
