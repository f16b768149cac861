"""The changed-wallet queue: a Redis sorted set of wallet ids whose facts changed.

Ingest pushes after its transaction commits; the compute drain pops batches. A sorted set makes
duplicates coalesce (a wallet touched by ten pages is recomputed once) and ZADD NX keeps the
earliest enqueue time as the score, so the oldest changes are drained first and none starves.
Losing the set (flush, restart without AOF) costs latency only: the reconciler re-queues every
wallet whose newest fact is newer than its last computation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis
from django.conf import settings

CHANGED_WALLETS_KEY = "arbitra:changed_wallets"

_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """One connection pool per Redis URL per process (tests switch the URL)."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
        _clients[url] = client
    return client


def changed_wallets_push(*, wallet_ids: Iterable[int], client: redis.Redis | None = None) -> int:
    ids = list({int(wallet_id) for wallet_id in wallet_ids})
    if not ids:
        return 0
    now = time.time()
    target = client or redis_client()
    pipeline = target.pipeline(transaction=False)
    for start in range(0, len(ids), 5000):
        pipeline.zadd(CHANGED_WALLETS_KEY, {str(wallet_id): now for wallet_id in ids[start : start + 5000]}, nx=True)
    return sum(pipeline.execute())


def changed_wallets_pop(*, batch_size: int, client: redis.Redis | None = None) -> list[int]:
    """Take up to batch_size wallet ids, oldest change first. Atomic: two drains never share an id."""
    popped = (client or redis_client()).zpopmin(CHANGED_WALLETS_KEY, batch_size)
    return [int(member) for member, _score in popped]


def changed_wallets_depth(*, client: redis.Redis | None = None) -> int:
    return int((client or redis_client()).zcard(CHANGED_WALLETS_KEY))
