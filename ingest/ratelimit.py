"""Limits shared by every worker process through Redis: a token bucket, a concurrency cap, a breaker.

Each piece keeps its whole state in Redis and changes it inside one Lua script, so any number of
workers on any number of machines see one budget. Time is always read from the Redis server
(`TIME`), never from the worker, so skewed worker clocks cannot mint extra tokens, expire a lease
early or close a breaker too soon.

Nothing here imports Django: configuration arrives as constructor arguments.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

import redis

# Waiters that were told the same refill time would all wake at once and collide; a few
# milliseconds of spread lets them arrive one after another instead.
_WAKE_SPREAD_SECONDS = 0.005
# A concurrency slot frees when another holder finishes, which cannot be predicted, so waiters
# poll: quickly at first, then at this interval at most.
_SLOT_POLL_MAX_SECONDS = 0.05


class LimiterTimeout(TimeoutError):
    """A limit could not be satisfied within the caller's timeout."""


class RateLimitTimeout(LimiterTimeout):
    """The token bucket would not hold enough tokens before the timeout."""


class ConcurrencyTimeout(LimiterTimeout):
    """No concurrency slot came free before the timeout."""


_SERVER_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# KEYS[1] bucket hash; ARGV capacity, refill per second, tokens requested.
# Returns {granted (0/1), seconds until the request could be granted (string: Lua numbers
# returned to Redis are truncated to integers)}.
_TAKE_TOKENS_LUA = (
    _SERVER_NOW
    + """
local capacity = tonumber(ARGV[1])
local refill_per_second = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at')
local tokens = tonumber(stored[1])
local updated_at = tonumber(stored[2])
if tokens == nil or updated_at == nil then
  tokens = capacity
  updated_at = now
end
-- TIME can step back after a failover to a replica; a negative interval must not refill.
local elapsed = math.max(0, now - updated_at)
tokens = math.min(capacity, tokens + elapsed * refill_per_second)
local granted = 0
local wait_seconds = 0
if tokens >= requested then
  tokens = tokens - requested
  granted = 1
else
  wait_seconds = (requested - tokens) / refill_per_second
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated_at', tostring(math.max(now, updated_at)))
-- Once idle for a full refill the bucket is full again, which is what a missing key means.
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / refill_per_second * 1000) + 1000)
return {granted, tostring(wait_seconds)}
"""
)

# KEYS[1] sorted set of leases (member = holder id, score = expiry); ARGV limit, lease seconds,
# holder id. Expired leases are dropped first: that is how a crashed holder's slot comes back.
_TAKE_SLOT_LUA = (
    _SERVER_NOW
    + """
local limit = tonumber(ARGV[1])
local lease_seconds = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + lease_seconds, ARGV[3])
  return 1
end
return 0
"""
)

# KEYS[1] breaker hash (failures, opened_at), KEYS[2] half-open probe key.
_BREAKER_STATE_LUA = (
    _SERVER_NOW
    + """
local reset_after = tonumber(ARGV[1])
local function current_state()
  local opened_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at'))
  if opened_at == nil then return 'closed' end
  if now - opened_at < reset_after then return 'open' end
  return 'half_open'
end
"""
)

_BREAKER_READ_LUA = _BREAKER_STATE_LUA + "return current_state()\n"

# ARGV reset seconds, probe lease milliseconds. Half-open lets exactly one caller through (the
# probe); its key expires so a probe lost with its worker does not wedge the breaker half-open.
_BREAKER_ALLOW_LUA = (
    _BREAKER_STATE_LUA
    + """
local state = current_state()
if state == 'closed' then return 1 end
if state == 'open' then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[2])) then return 1 end
return 0
"""
)

# ARGV reset seconds, failure threshold.
_BREAKER_FAILURE_LUA = (
    _BREAKER_STATE_LUA
    + """
local threshold = tonumber(ARGV[2])
local state = current_state()
if state == 'half_open' then
  -- The probe failed: stay away for another full reset period.
  redis.call('HSET', KEYS[1], 'opened_at', tostring(now))
  redis.call('DEL', KEYS[2])
elseif state == 'closed' then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= threshold then
    redis.call('HSET', KEYS[1], 'opened_at', tostring(now))
  end
end
-- A failure reported while open belongs to a call that started before the breaker opened; it
-- must not push the reopening further out.
return state
"""
)


def _as_text(value: bytes | str) -> str:
    # The caller's client may or may not decode responses.
    return value.decode() if isinstance(value, bytes) else value


class RedisTokenBucket:
    """A token bucket of `capacity` tokens refilled at `refill_per_second`, shared through Redis."""

    def __init__(self, redis_client: redis.Redis, *, key: str, capacity: int, refill_per_second: float) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if refill_per_second <= 0:
            raise ValueError("refill_per_second must be positive")
        self.key = key
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._take_tokens = redis_client.register_script(_TAKE_TOKENS_LUA)

    def try_acquire(self, *, tokens: int = 1) -> tuple[bool, float]:
        """Take `tokens` now if the bucket holds them; otherwise say how long until it would."""
        granted, wait_seconds = self._take_tokens(keys=[self.key], args=[self.capacity, self.refill_per_second, tokens])
        return bool(granted), float(wait_seconds)

    def acquire(self, *, tokens: int = 1, timeout: float) -> float:
        """Block until `tokens` are granted and return the seconds spent waiting.

        Raises RateLimitTimeout as soon as the refill time alone would run past the timeout: the
        wait Redis reports is a lower bound (others can only take tokens away), so sleeping on
        would be wasted.
        """
        if tokens > self.capacity:
            raise ValueError(f"{tokens} tokens can never fit a bucket of {self.capacity}")
        started = time.monotonic()
        deadline = started + timeout
        while True:
            granted, wait_seconds = self.try_acquire(tokens=tokens)
            now = time.monotonic()
            if granted:
                return now - started
            if now + wait_seconds > deadline:
                raise RateLimitTimeout(
                    f"{self.key}: {tokens} token(s) not available within {timeout:.2f}s "
                    f"(next refill in {wait_seconds:.2f}s)"
                )
            time.sleep(wait_seconds + random.uniform(0, _WAKE_SPREAD_SECONDS))


class RedisConcurrencyLimiter:
    """At most `limit` holders at a time across all workers; each holds a lease, not a lock.

    A holder that dies without releasing only blocks its slot until `lease_seconds` pass, so the
    lease must outlast the longest legitimate hold (a request with its read timeout).
    """

    def __init__(self, redis_client: redis.Redis, *, key: str, limit: int, lease_seconds: float) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.key = key
        self.limit = limit
        self.lease_seconds = lease_seconds
        self._redis = redis_client
        self._take_slot = redis_client.register_script(_TAKE_SLOT_LUA)

    def try_acquire(self) -> str | None:
        """Take a slot now and return its holder id, or None when all slots are held."""
        holder = uuid.uuid4().hex
        taken = self._take_slot(keys=[self.key], args=[self.limit, self.lease_seconds, holder])
        return holder if taken else None

    def release(self, holder: str) -> None:
        # Removing by holder id never frees someone else's slot, even after our lease expired.
        self._redis.zrem(self.key, holder)

    def in_use(self) -> int:
        """Slots held right now, counting leases not yet purged (an upper bound)."""
        return int(self._redis.zcard(self.key))

    @contextmanager
    def slot(self, timeout: float) -> Iterator[float]:
        """Hold one slot for the `with` block; yields the seconds spent waiting for it."""
        started = time.monotonic()
        deadline = started + timeout
        poll_seconds = 0.005
        while (holder := self.try_acquire()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConcurrencyTimeout(f"{self.key}: no slot of {self.limit} free within {timeout:.2f}s")
            time.sleep(min(remaining, poll_seconds * random.uniform(0.5, 1.5)))
            poll_seconds = min(poll_seconds * 2, _SLOT_POLL_MAX_SECONDS)
        try:
            yield time.monotonic() - started
        finally:
            self.release(holder)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """A consecutive-failure circuit breaker whose state every worker shares.

    closed: calls pass; `failure_threshold` failures in a row open it.
    open: calls are refused until `reset_after_seconds` have passed since it opened.
    half_open: one probe call is let through; its success closes the breaker, its failure reopens
    it. The probe's claim expires after `probe_lease_seconds` in case its worker dies.

    The breaker only reports; callers decide what to raise.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        key: str,
        failure_threshold: int,
        reset_after_seconds: float,
        probe_lease_seconds: float = 30.0,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.key = key
        self.probe_key = f"{key}:probe"
        self.failure_threshold = failure_threshold
        self.reset_after_seconds = reset_after_seconds
        self.probe_lease_seconds = probe_lease_seconds
        self._redis = redis_client
        self._read_state = redis_client.register_script(_BREAKER_READ_LUA)
        self._allow = redis_client.register_script(_BREAKER_ALLOW_LUA)
        self._record_failure = redis_client.register_script(_BREAKER_FAILURE_LUA)

    @property
    def _keys(self) -> list[str]:
        return [self.key, self.probe_key]

    def state(self) -> BreakerState:
        return BreakerState(_as_text(self._read_state(keys=self._keys, args=[self.reset_after_seconds])))

    def allow(self) -> bool:
        """May a call go out now? In half-open only the caller that claims the probe gets True."""
        probe_lease_ms = max(1, int(self.probe_lease_seconds * 1000))
        return bool(self._allow(keys=self._keys, args=[self.reset_after_seconds, probe_lease_ms]))

    def record_success(self) -> None:
        self._redis.delete(self.key, self.probe_key)

    def record_failure(self) -> None:
        self._record_failure(keys=self._keys, args=[self.reset_after_seconds, self.failure_threshold])
