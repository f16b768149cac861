"""The one HTTP client every source adapter pages its upstream through (ARCHITECTURE §4 step 3).

Per request: a token from the route's rate-limit bucket, a per-source concurrency slot, timeouts,
retries with exponential backoff and full jitter (honouring Retry-After), and a per-source circuit
breaker. Buckets, slots and breaker live in Redis, so every worker shares one budget per source.

Nothing here imports Django: the caller passes settings in as constructor arguments.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from ingest.ratelimit import (
    CircuitBreaker,
    ConcurrencyTimeout,
    RateLimitTimeout,
    RedisConcurrencyLimiter,
    RedisTokenBucket,
)

logger = logging.getLogger(__name__)

RateLimits = Mapping[str, tuple[int, float]]

# For a source without published limits (e.g. an RSS feed): polite rather than fast.
DEFAULT_SOURCE_LIMIT: tuple[int, float] = (100, 10.0)

DEFAULT_USER_AGENT = "arbitra-ingest/0.1"

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Polymarket sits behind Cloudflare, whose 52x codes mean "origin unreachable / timed out" —
# the same transient trouble as 502/504.
CLOUDFLARE_TRANSIENT_STATUSES = frozenset({520, 521, 522, 523, 524})
RETRY_AFTER_STATUSES = frozenset({429, 503})
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)

_BODY_SNIPPET_CHARS = 500
_OFFSET_CAP_MESSAGE = re.compile(r"max\s+historical\s+activity\s+offset.*exceeded", re.IGNORECASE | re.DOTALL)


# --- Errors ------------------------------------------------------------------------------------


class SourceError(Exception):
    """Base of every error SourceClient raises; a task catches this to decide whether to retry."""


class CircuitOpen(SourceError):
    def __init__(self, source: str) -> None:
        super().__init__(f"{source}: circuit breaker is open, call refused without contacting the upstream")
        self.source = source


class ThrottleTimeout(SourceError):
    """Our own limiter (rate bucket or concurrency slot) did not admit the request in time."""


class UpstreamUnavailable(SourceError):
    """Transport errors or 5xx/408/429 persisted through every attempt."""

    def __init__(self, *, url: str, status: int | None, attempts: int, body_snippet: str, reason: str = "") -> None:
        what = f"HTTP {status}" if status is not None else (reason or "transport error")
        super().__init__(f"{url}: {what} after {attempts} attempt(s): {body_snippet[:200]}")
        self.url = url
        self.status = status
        self.attempts = attempts
        self.body_snippet = body_snippet
        self.reason = reason


class UpstreamRejected(SourceError):
    """A 4xx the upstream will answer the same way however often it is asked."""

    def __init__(self, status: int, body_text: str, json_body: Any, *, url: str = "", trace_id: str = "") -> None:
        trace = f"[trace {trace_id}] " if trace_id else ""
        super().__init__(f"{url}: HTTP {status}: {trace}{body_text[:_BODY_SNIPPET_CHARS]}")
        self.trace_id = trace_id
        self.status = status
        self.body_text = body_text
        self.json_body = json_body
        self.url = url


class UpstreamBadPayload(SourceError):
    """A successful status whose body is not the JSON it should be."""

    def __init__(self, *, url: str, status: int, body_snippet: str, reason: str) -> None:
        super().__init__(f"{url}: HTTP {status}: {reason}: {body_snippet[:200]}")
        self.url = url
        self.status = status
        self.body_snippet = body_snippet
        self.reason = reason


def json_body_decode(content: bytes) -> Any:
    """Decode a JSON response body; raises ValueError.

    The standard library on purpose: it detects UTF-8/16/32 from the bytes (no charset guessing
    by requests) and keeps integers of any size exact, where orjson turns those beyond 64 bits
    into floats without a word.
    """
    return json.loads(content)


def is_offset_cap_error(exc: BaseException) -> bool:
    """Is this the Data API's 400 "max historical activity offset … exceeded"?

    Adapters treat it as the end of what offset paging can reach, not as a failure.
    """
    return (
        isinstance(exc, UpstreamRejected)
        and exc.status == 400
        and _OFFSET_CAP_MESSAGE.search(exc.body_text) is not None
    )


def _is_transient(response: requests.Response) -> bool:
    """Will asking again help? A v2 error body says so itself (`retryable`); a CDN's HTML page in
    front of the API (a Cloudflare 403 "Access denied", a proxy error) is the edge's trouble, not
    an answer of the API; otherwise the status decides."""
    status = response.status_code
    if status < 400:
        return False
    retryable = _v2_retryable_flag(response)
    if retryable is not None:
        return retryable
    if status in RETRYABLE_STATUSES or status in CLOUDFLARE_TRANSIENT_STATUSES:
        return True
    return status == 403 and _looks_like_html(response)


class _RetryableStatus(Exception):
    """Internal: carries a retryable response out of one attempt into tenacity."""

    def __init__(self, response: requests.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


# --- Helpers -----------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None if unusable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def window_safe_bucket(requests_allowed: int, per_seconds: float) -> tuple[int, float]:
    """(capacity, refill per second) of a bucket that never admits more than the published limit.

    A bucket of capacity N refilled at N/W admits up to 2N in some W-second window (a full burst,
    then a window's worth of refill), which a sliding-window upstream answers with 429s. Any window
    admits at most capacity + refill × W, so a burst of a tenth of the limit and a refill of the
    rest keeps every window within the limit at 90 % sustained throughput. (A limit below 2 per
    window cannot be held exactly by a token bucket; it may see 2.)
    """
    if requests_allowed < 1 or per_seconds <= 0:
        raise ValueError("a rate limit needs at least 1 request over a positive period")
    capacity = max(1, requests_allowed // 10)
    refill_per_second = max(requests_allowed - capacity, 1) / per_seconds
    return capacity, refill_per_second


def scale_limits(limits: RateLimits, factor: float) -> dict[str, tuple[int, float]]:
    """The same limits with every request count multiplied by `factor` (at least 1 request)."""
    return {prefix: (max(1, int(count * factor)), per) for prefix, (count, per) in limits.items()}


def trace_id_of(response: requests.Response) -> str:
    """The upstream's trace id for this response: the `x-trace-id` header, else a v2 error body's
    `trace_id`. Kept in run errors and dead letters so an incident can be quoted to Polymarket."""
    header = response.headers.get("x-trace-id", "")
    if header:
        return header.strip()[:100]
    body = SourceClient._json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("trace_id"), str):
        return body["trace_id"][:100]
    return ""


def _body_snippet(response: requests.Response) -> str:
    trace_id = trace_id_of(response)
    prefix = f"[trace {trace_id}] " if trace_id else ""
    return prefix + response.text[:_BODY_SNIPPET_CHARS]


def _looks_like_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    return "text/html" in content_type or response.content[:100].lstrip()[:1] == b"<"


def _v2_retryable_flag(response: requests.Response) -> bool | None:
    """The `retryable` member of a Data API v2 error body, when the body is one."""
    body = SourceClient._json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("retryable"), bool) and "code" in body:
        return bool(body["retryable"])
    return None


def _normalise_prefix(prefix: str) -> str:
    return "/" + prefix.strip().strip("/")


def _prefix_matches(prefix: str, path: str) -> bool:
    # Whole segments only: "/trades" covers "/trades" and "/trades/…", not "/tradesummary".
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class _Route:
    prefix: str
    bucket: RedisTokenBucket


# --- Client ------------------------------------------------------------------------------------


class SourceClient:
    """HTTP access to one upstream source, shared limits included. Safe to use from several threads."""

    def __init__(
        self,
        *,
        source: str,
        base_url: str,
        redis_client: redis.Redis,
        rate_limits: RateLimits | None = None,
        timeout: tuple[float, float] = (5.0, 15.0),
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        concurrency: int = 4,
        breaker_threshold: int = 5,
        breaker_reset_seconds: float = 60.0,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        throttle_timeout: float = 60.0,
        key_namespace: str = "arbitra:http",
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.throttle_timeout = throttle_timeout

        key_root = f"{key_namespace}:{source}"
        limits = {_normalise_prefix(prefix): limit for prefix, limit in (rate_limits or {}).items()}
        limits.setdefault("/", DEFAULT_SOURCE_LIMIT)
        routes = []
        for prefix, (requests_allowed, per_seconds) in limits.items():
            capacity, refill_per_second = window_safe_bucket(requests_allowed, per_seconds)
            bucket = RedisTokenBucket(
                redis_client, key=f"{key_root}:bucket:{prefix}", capacity=capacity, refill_per_second=refill_per_second
            )
            routes.append(_Route(prefix=prefix, bucket=bucket))
        # Longest prefix first, so the first match is the most specific.
        self._routes = sorted(routes, key=lambda route: len(route.prefix), reverse=True)

        # A lease must outlive a legitimate request (connect + read, a slow body) or a second
        # worker could take the slot while the first is still talking to the upstream.
        connect_timeout, read_timeout = timeout
        self._slots = RedisConcurrencyLimiter(
            redis_client,
            key=f"{key_root}:inflight",
            limit=concurrency,
            lease_seconds=max(30.0, 2 * (connect_timeout + read_timeout)),
        )
        self.breaker = CircuitBreaker(
            redis_client,
            key=f"{key_root}:breaker",
            failure_threshold=breaker_threshold,
            reset_after_seconds=breaker_reset_seconds,
        )

        self._owns_session = session is None
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = user_agent

        self._stats_lock = threading.Lock()
        # The upstream's trace id of the last answer, so rows dead-lettered from it can quote it.
        self.last_trace_id = ""
        self.reset_stats()

    # --- public API ----------------------------------------------------------------------------

    def get_json(
        self, path: str, *, params: Mapping[str, Any] | None = None, decode: Callable[[bytes], Any] = json_body_decode
    ) -> Any:
        """GET `path` and return its decoded JSON body: `decode` of the body's bytes.

        A 2xx whose body is not JSON — an HTML page from the CDN, a body cut short — is a transient
        fault of the path to the upstream, never data: it is asked again (same back-off as a 503)
        and, if it persists, raised as UpstreamBadPayload for the caller to stop without moving
        anything. A `decode` of its own (one that also parses the rows, say) says so by raising
        ValueError, as json_body_decode does.
        """
        for attempt in range(1, self.max_attempts + 1):
            url, response = self._get(path, params=params, headers={"Accept": "application/json"})
            failure = ""
            if not 200 <= response.status_code < 300:
                failure = "expected a 2xx JSON response"
            else:
                try:
                    return decode(response.content)
                except ValueError as exc:
                    failure = f"invalid JSON: {exc}"
            with self._stats_lock:
                self._bad_bodies += 1
            if attempt == self.max_attempts:
                break
            delay = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
            logger.warning("%s %s: %s on attempt %d of %d, asking again in %.2fs", self.source, path, failure,
                           attempt, self.max_attempts, delay)
            time.sleep(delay)
        raise UpstreamBadPayload(
            url=url, status=response.status_code, body_snippet=_body_snippet(response), reason=failure
        )

    def get_text(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], str]:
        """GET `path` and return (status, headers, text); a 304 is returned, not raised.

        Meant for feeds read with conditional GET: pass If-None-Match / If-Modified-Since in
        `headers`. `path` may be an absolute URL (feeds live on many hosts); it is still limited
        by this source's buckets, routed on its path.
        """
        _url, response = self._get(path, params=params, headers=dict(headers or {}))
        if response.status_code == 304:
            return response.status_code, response.headers, ""
        if "charset" not in response.headers.get("Content-Type", "").lower():
            # requests assumes ISO-8859-1 for text/* without a charset, which garbles the UTF-8
            # most feeds are written in.
            try:
                return response.status_code, response.headers, response.content.decode("utf-8")
            except UnicodeDecodeError:
                response.encoding = response.apparent_encoding
        return response.status_code, response.headers, response.text

    @property
    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot of this client's counters since construction or reset_stats()."""
        with self._stats_lock:
            return {
                "requests": self._requests,
                "retries": self._retries,
                "transport_errors": self._transport_errors,
                "bad_bodies": self._bad_bodies,
                "circuit_open": self._circuit_open,
                "throttled_waits_seconds": round(self._throttled_waits_seconds, 3),
                "slot_waits_seconds": round(self._slot_waits_seconds, 3),
                "statuses": {str(status): count for status, count in sorted(self._statuses.items())},
            }

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._requests = 0
            self._retries = 0
            self._transport_errors = 0
            self._bad_bodies = 0
            self._circuit_open = 0
            self._throttled_waits_seconds = 0.0
            self._slot_waits_seconds = 0.0
            self._statuses: Counter[int] = Counter()

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one call: breaker, retries, classification ------------------------------------------

    def _get(
        self, path: str, *, params: Mapping[str, Any] | None, headers: dict[str, str]
    ) -> tuple[str, requests.Response]:
        url = self._url_for(path)
        # Routed on the caller's path, not the full URL, so a base_url with a path of its own
        # does not hide every route.
        route_path = _normalise_prefix(urlsplit(path).path)

        # Checked once per call, not per attempt: in half-open the call that claimed the probe
        # must be allowed to finish its retries and report the outcome itself.
        if not self.breaker.allow():
            with self._stats_lock:
                self._circuit_open += 1
            raise CircuitOpen(self.source)

        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            return self._attempt(url, route_path, params=params, headers=headers)

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait_before_retry,
            retry=retry_if_exception_type((_RetryableStatus, *TRANSPORT_ERRORS)),
            before_sleep=lambda state: self._log_retry(state, route_path),
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except _RetryableStatus as exc:
            self.breaker.record_failure()
            raise UpstreamUnavailable(
                url=url, status=exc.response.status_code, attempts=attempts, body_snippet=_body_snippet(exc.response)
            ) from None
        except TRANSPORT_ERRORS as exc:
            self.breaker.record_failure()
            raise UpstreamUnavailable(
                url=url, status=None, attempts=attempts, body_snippet="", reason=f"{type(exc).__name__}: {exc}"
            ) from exc
        # ThrottleTimeout passes through untouched: our own limiter said no, which tells the
        # breaker nothing about the upstream (a claimed probe simply expires).

        status = response.status_code
        if status >= 500:
            # A 5xx we do not retry (501, 505, …): the upstream is not serving this.
            self.breaker.record_failure()
            raise UpstreamUnavailable(url=url, status=status, attempts=attempts, body_snippet=_body_snippet(response))
        # The upstream answered; whatever it said, it is up.
        self.breaker.record_success()
        self.last_trace_id = trace_id_of(response)
        if status >= 400:
            raise UpstreamRejected(status, response.text, self._json_or_none(response), url=url,
                                   trace_id=trace_id_of(response))
        return url, response

    def _attempt(
        self, url: str, route_path: str, *, params: Mapping[str, Any] | None, headers: dict[str, str]
    ) -> requests.Response:
        bucket = self._bucket_for(route_path)
        try:
            throttled_seconds = bucket.acquire(timeout=self.throttle_timeout)
        except RateLimitTimeout as exc:
            raise ThrottleTimeout(f"{self.source} {route_path}: {exc}") from exc
        with self._stats_lock:
            self._throttled_waits_seconds += throttled_seconds

        try:
            with self._slots.slot(timeout=self.throttle_timeout) as slot_wait_seconds:
                with self._stats_lock:
                    self._slot_waits_seconds += slot_wait_seconds
                    self._requests += 1
                try:
                    response = self._session.get(url, params=params, headers=headers, timeout=self.timeout)
                except TRANSPORT_ERRORS:
                    with self._stats_lock:
                        self._transport_errors += 1
                    raise
        except ConcurrencyTimeout as exc:
            raise ThrottleTimeout(f"{self.source} {route_path}: {exc}") from exc

        status = response.status_code
        with self._stats_lock:
            self._statuses[status] += 1
        if _is_transient(response):
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After")) if status in RETRY_AFTER_STATUSES else None
            )
            raise _RetryableStatus(response, retry_after)
        return response

    def _wait_before_retry(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, _RetryableStatus) and failure.retry_after is not None:
            # The upstream named its price; capped so one header cannot park a worker for hours.
            return min(failure.retry_after, self.backoff_max)
        # Full jitter: uniform over [0, min(max, base × 2^(n-1))], so workers that failed together
        # do not come back together.
        return wait_random_exponential(multiplier=self.backoff_base, max=self.backoff_max)(retry_state)

    def _log_retry(self, retry_state: RetryCallState, route_path: str) -> None:
        with self._stats_lock:
            self._retries += 1
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        status: int | None = failure.response.status_code if isinstance(failure, _RetryableStatus) else None
        what = f"HTTP {status}" if status is not None else type(failure).__name__
        wait_seconds = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
        logger.warning(
            "%s %s: %s on attempt %d of %d, retrying in %.2fs",
            self.source,
            route_path,
            what,
            retry_state.attempt_number,
            self.max_attempts,
            wait_seconds,
            extra={
                "http_source": self.source,
                "http_path": route_path,
                "http_status": status,
                "http_attempt": retry_state.attempt_number,
                "http_wait_seconds": wait_seconds,
            },
        )

    # --- small pieces ----------------------------------------------------------------------------

    def _url_for(self, path: str) -> str:
        if urlsplit(path).scheme in ("http", "https"):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _bucket_for(self, route_path: str) -> RedisTokenBucket:
        for route in self._routes:
            if _prefix_matches(route.prefix, route_path):
                return route.bucket
        raise AssertionError("the '/' route matches every path")  # pragma: no cover

    @staticmethod
    def _json_or_none(response: requests.Response) -> Any:
        try:
            return json_body_decode(response.content)
        except ValueError:
            return None
