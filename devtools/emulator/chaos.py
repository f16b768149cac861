"""Transport faults: 429 storms, 5xx errors, slow responses, CDN pages, cut bodies, connection resets,
and the published per-10-second limits.

Faults only decide how (or whether) a response is delivered; they never touch the world, so the
ground truth is the same with or without chaos. Decisions are keyed by (seed, request number),
which makes a given sequence of requests meet the same faults on every run. Storms are the one
exception that also looks at the real clock: a storm starts at a fixed request number and lasts a
fixed number of real seconds, so a client that honours Retry-After gets through afterwards.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .catalog import derive_seed
from .scenarios import EmulatorConfig

_TOO_MANY = b'{"error": "Too Many Requests"}'
_ERROR_BODIES: dict[int, tuple[str, bytes]] = {
    500: ("application/json", b'{"error": "internal server error"}'),
    502: ("text/html", b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                       b"</h1></center><hr><center>cloudflare</center></body></html>"),
    503: ("text/html", b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
                       b"<h1>503 Service Temporarily Unavailable</h1></center></body></html>"),
}


# What a CDN in front of the API answers when it blocks a client (Cloudflare-like).
CDN_ACCESS_DENIED = (
    b"<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>Access denied | data-api.polymarket.com used "
    b"Cloudflare to restrict access</title><meta charset=\"UTF-8\" /></head><body><div id=\"cf-wrapper\">"
    b"<h1><span class=\"cf-error-type\">Error</span> <span class=\"cf-error-code\">1020</span></h1>"
    b"<h2 class=\"cf-subheadline\">Access denied</h2><p>The site owner may have set restrictions that prevent "
    b"you from accessing the site.</p><p>Cloudflare Ray ID: <strong>8f3a1c2b4d5e6f70</strong></p></div>"
    b"</body></html>\n"
)


@dataclass(frozen=True)
class Fault:
    """What to do to one response: delay it, replace it with an error, or damage it in transit.

    ``kind`` names the fault so each API family can answer in its own error shape (Data API v2
    bodies for /v2 routes, the legacy bodies elsewhere): "rate_limited", "internal", "bad_gateway",
    "unavailable", "request_timeout", "cdn_block", or, for faults applied to the real response, "truncated" (the body
    cut at ``fraction`` with a matching Content-Length) and "reset" (the connection reset mid-body).
    """

    delay_seconds: float = 0.0
    status: int | None = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    kind: str | None = None
    fraction: float = 0.5

    @property
    def damages_response(self) -> bool:
        return self.kind in ("truncated", "reset")


def _unit_interval(seed: int, concern: str, request_number: int) -> float:
    return derive_seed(seed, concern, request_number) / 2**64


class Chaos:
    """Decides the fault, if any, for each public request."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self.request_count = 0
        self._storm_until = 0.0
        self._windows: dict[str, deque[float]] = {}

    def decide(self, *, scenarios: frozenset[str], rate_limit_keys: tuple[str, ...]) -> Fault | None:
        config = self.config
        now = time.monotonic()
        with self._lock:
            self.request_count += 1
            number = self.request_count
            if config.enforce_rate_limits:
                throttled = self._over_published_limit(rate_limit_keys, now)
                if throttled is not None:
                    return throttled
            if "rate_limit" in scenarios:
                since_first = number - config.storm_first_request
                if since_first >= 0 and since_first % config.storm_every_requests == 0 and now >= self._storm_until:
                    self._storm_until = now + config.storm_seconds
                if now < self._storm_until:
                    return _too_many(self._storm_until - now)
        delay = 0.0
        if "slow" in scenarios and _unit_interval(config.seed, "slow", number) < config.slow_rate:
            spread = config.slow_max_seconds - config.slow_min_seconds
            delay = config.slow_min_seconds + spread * _unit_interval(config.seed, "slow-length", number)
        if "errors" in scenarios and _unit_interval(config.seed, "error", number) < config.error_rate:
            status = (500, 502, 503)[int(_unit_interval(config.seed, "error-kind", number) * 3)]
            content_type, body = _ERROR_BODIES[status]
            kind = {500: "internal", 502: "bad_gateway", 503: "unavailable"}[status]
            headers = {"Retry-After": str(config.unavailable_retry_after_seconds)} if status == 503 else {}
            return Fault(delay_seconds=delay, status=status, body=body, content_type=content_type, kind=kind,
                         headers=headers)
        if "unavailable" in scenarios and _unit_interval(config.seed, "unavailable", number) < config.unavailable_rate:
            content_type, body = _ERROR_BODIES[503]
            return Fault(delay_seconds=delay, status=503, body=body, content_type=content_type, kind="unavailable",
                         headers={"Retry-After": str(config.unavailable_retry_after_seconds)})
        if "timeouts" in scenarios and _unit_interval(config.seed, "timeout", number) < config.timeout_rate:
            content_type, body = _ERROR_BODIES[503]
            return Fault(delay_seconds=delay + config.request_timeout_seconds, status=503, body=body,
                         content_type=content_type, kind="request_timeout",
                         headers={"Retry-After": str(config.unavailable_retry_after_seconds)})
        if "cdn_block" in scenarios and _unit_interval(config.seed, "cdn_block", number) < config.cdn_block_rate:
            return Fault(delay_seconds=delay, status=403, body=CDN_ACCESS_DENIED, content_type="text/html; charset=UTF-8",
                         kind="cdn_block")
        fraction = 0.1 + 0.8 * _unit_interval(config.seed, "damage-at", number)
        if "truncated" in scenarios and _unit_interval(config.seed, "truncated", number) < config.truncated_rate:
            return Fault(delay_seconds=delay, kind="truncated", fraction=fraction)
        if "resets" in scenarios and _unit_interval(config.seed, "reset", number) < config.reset_rate:
            return Fault(delay_seconds=delay, kind="reset", fraction=fraction)
        return Fault(delay_seconds=delay) if delay else None

    def _over_published_limit(self, keys: tuple[str, ...], now: float) -> Fault | None:
        limits = self.config.rate_limits_per_10s
        for key in keys:
            limit = limits.get(key)
            if limit is None:
                continue
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - 10:
                window.popleft()
            if len(window) >= limit:
                return _too_many(window[0] + 10 - now)
        for key in keys:
            if key in limits:
                self._windows[key].append(now)
        return None


def _too_many(wait_seconds: float) -> Fault:
    return Fault(status=429, body=_TOO_MANY, headers={"Retry-After": str(max(1, math.ceil(wait_seconds)))},
                 kind="rate_limited")
