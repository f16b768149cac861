"""Rate limits shared by every web process: token buckets in Redis, taken atomically by one script.

Who a client is (`client_identity`): its network address, never a header it can invent. The
socket's peer is the client unless it is one of TRUSTED_PROXIES, in which case the right-most
X-Forwarded-For entry that is not a trusted proxy is. IPv6 clients are counted per /64, the block
one subscriber gets, so walking through its own addresses buys nothing. The watchlist fingerprint
names a watchlist; it never opens an allowance of its own.

Service clients (the frontend's server-side renderer: a token of API_SERVICE_TOKENS or an address
of API_SERVICE_ADDRESSES) draw from their own, larger bucket. Each one is also trusted to pass the
visitor's address in X-Forwarded-For; the visitor is then limited like any client, so one busy
visitor cannot spend the renderer's whole budget.

Both buckets of a request are checked and taken in one Lua script, so concurrent requests cannot
pass more than the limit between a read and a write. When Redis cannot be reached the limiter
fails over to per-process buckets with the same rates (logged, and counted in
`limiter_fallbacks`): reads keep being served, still bounded per process.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

SERVICE_TOKEN_HEADER = "X-Service-Token"  # noqa: S105 - a header name, not a secret
KEY_PREFIX = "arbitra:ratelimit"

# Refill continuously at `rate` tokens a second up to `burst`; take one per request, or refuse and
# say how long until a token is back. Time is Redis's own clock, the same for every web process.
BUCKETS_TAKE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens = {}
local wait = 0
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local level = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  level = math.min(burst, level + math.max(0, now - at) * rate)
  tokens[i] = level
  if level < 1 and (1 - level) / rate > wait then
    wait = (1 - level) / rate
  end
end
if wait > 0 then
  return tostring(wait)
end
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 'tokens', tokens[i] - 1, 'at', now)
  redis.call('EXPIRE', KEYS[i], math.ceil(burst / rate) + 1)
end
return '0'
"""


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # tokens per second
    burst: float


@dataclass(frozen=True)
class ClientIdentity:
    address: str  # the client's address, or its /64 for IPv6; "" when unknown
    service: str  # the service client's name ("" for a visitor)

    @property
    def key(self) -> str:
        """What per-client allowances are counted against (rate limit, acknowledge, AI quota)."""
        if self.service and not self.address:
            return f"service:{self.service}"
        return "address:" + (self.address or "unknown")


@lru_cache(maxsize=16)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _parsed(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _within(address, entries) -> bool:
    return address is not None and any(address in network for network in _networks(tuple(entries)))


def _counted(address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _service_name(request, peer) -> str:
    presented = request.headers.get(SERVICE_TOKEN_HEADER, "")
    authorization = request.headers.get("Authorization", "")
    if not presented and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if presented:
        for number, token in enumerate(settings.API_SERVICE_TOKENS, start=1):
            if hmac.compare_digest(presented.encode(), token.encode()):
                return f"token-{number}"
    if _within(peer, settings.API_SERVICE_ADDRESSES):
        return f"address-{peer}"
    return ""


def client_identity(request) -> ClientIdentity:
    """The client's address behind trusted proxies, and whether it is a service client."""
    cached = getattr(request, "_arbitra_client_identity", None)
    if cached is not None:
        return cached
    peer = _parsed(request.META.get("REMOTE_ADDR", ""))
    service = _service_name(request, peer)
    forwarded = [part for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    client = peer
    if forwarded and (service or _within(peer, settings.TRUSTED_PROXIES)):
        # Right to left: each trusted hop vouches for the address before it; the first address
        # no trusted proxy owns is the client. An unparsable entry stops the walk at the hop
        # that appended it.
        client = None
        for entry in reversed(forwarded):
            address = _parsed(entry)
            if address is None:
                break
            client = address
            if not _within(address, settings.TRUSTED_PROXIES):
                break
        if client is None:
            client = peer
    if service and (client == peer or _within(client, settings.TRUSTED_PROXIES)):
        address = ""  # a renderer that passed no visitor address is limited as itself only
    else:
        address = _counted(client) if client is not None else ""
    identity = ClientIdentity(address=address, service=service)
    request._arbitra_client_identity = identity
    return identity


def hashed(ident: str) -> str:
    # Bounded key length, and no raw addresses or token names in Redis.
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def buckets_for(identity: ClientIdentity, *, scope: str = "requests") -> list[Bucket]:
    buckets = []
    if identity.service:
        buckets.append(
            Bucket(
                f"{KEY_PREFIX}:{scope}:service:{hashed(identity.service)}",
                settings.API_SERVICE_RATE_PER_SECOND,
                settings.API_SERVICE_RATE_BURST,
            )
        )
    if identity.address or not identity.service:
        ident = hashed(identity.address or "unknown")
        buckets.append(Bucket(f"{KEY_PREFIX}:{scope}:address:{ident}", settings.API_RATE_PER_SECOND, settings.API_RATE_BURST))
        hourly = settings.API_RATE_PER_HOUR
        if hourly > 0:
            buckets.append(Bucket(f"{KEY_PREFIX}:{scope}:hourly:{ident}", hourly / 3600, hourly))
    return buckets


# --- Redis, with a per-process fallback ---------------------------------------------------------

_clients: dict[str, redis.Redis] = {}
_scripts: dict[str, object] = {}
_lock = threading.Lock()


def _script(url: str):
    with _lock:
        if url not in _scripts:
            client = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.5)
            _clients[url] = client
            _scripts[url] = client.register_script(BUCKETS_TAKE_SCRIPT)
        return _scripts[url]


class LocalBuckets:
    """Token buckets in this process, used only while Redis is unreachable (bounded in size)."""

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, buckets: list[Bucket]) -> float:
        now = time.monotonic()
        with self._lock:
            levels = []
            wait = 0.0
            for bucket in buckets:
                level, at = self._state.get(bucket.key, (bucket.burst, now))
                level = min(bucket.burst, level + max(0.0, now - at) * bucket.rate)
                levels.append(level)
                if level < 1:
                    wait = max(wait, (1 - level) / bucket.rate)
            if wait > 0:
                return wait
            for bucket, level in zip(buckets, levels, strict=True):
                self._state[bucket.key] = (level - 1, now)
                self._state.move_to_end(bucket.key)
            while len(self._state) > self.MAX_KEYS:
                self._state.popitem(last=False)
            return 0.0


local_buckets = LocalBuckets()
limiter_fallbacks = {"count": 0, "last_warning": 0.0}
WARNING_INTERVAL_SECONDS = 30.0


def _note_fallback(error: Exception) -> None:
    limiter_fallbacks["count"] += 1
    now = time.monotonic()
    if now - limiter_fallbacks["last_warning"] >= WARNING_INTERVAL_SECONDS:
        limiter_fallbacks["last_warning"] = now
        logger.warning(
            "rate limiter: Redis unreachable (%s); limiting per process instead (%d requests so far)",
            type(error).__name__,
            limiter_fallbacks["count"],
        )


def buckets_take(buckets: list[Bucket]) -> float:
    """Take one token from every bucket, or none: 0 when allowed, else seconds until allowed."""
    if not buckets:
        return 0.0
    keys = [bucket.key for bucket in buckets]
    args = [value for bucket in buckets for value in (repr(float(bucket.rate)), repr(float(bucket.burst)))]
    try:
        return float(_script(settings.REDIS_URL)(keys=keys, args=args))
    except (redis.RedisError, OSError) as error:
        _note_fallback(error)
        return local_buckets.take(buckets)


class ClientRateThrottle(BaseThrottle):
    """The API's request limit: per client address, plus the service bucket for service clients."""

    def allow_request(self, request, view) -> bool:
        self._wait = buckets_take(buckets_for(client_identity(request)))
        return self._wait <= 0

    def wait(self) -> float | None:
        return math.ceil(self._wait) if self._wait > 0 else None
