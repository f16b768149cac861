"""Transport faults: 429 storms, 5xx errors, slow responses, and the published per-10-second limits.

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


@dataclass(frozen=True)
class Fault:
    """What to do to one response: delay it, and/or replace it with an error."""

    delay_seconds: float = 0.0
    status: int | None = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


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
            return Fault(delay_seconds=delay, status=status, body=body, content_type=content_type)
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
    return Fault(status=429, body=_TOO_MANY, headers={"Retry-After": str(max(1, math.ceil(wait_seconds)))})
