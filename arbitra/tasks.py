"""Service-set housekeeping tasks."""

from __future__ import annotations

import time

import redis
from celery import shared_task
from django.conf import settings

HEARTBEAT_KEY = "arbitra:heartbeat:{queue}"


@shared_task(name="arbitra.heartbeat", bind=True, ignore_result=False)
def heartbeat(self) -> dict:
    """Proves a queue is consumed end to end: beat → broker → worker → Redis."""
    queue = (self.request.delivery_info or {}).get("routing_key") or "unknown"
    record = {"queue": queue, "worker": self.request.hostname or "", "at": time.time()}
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.hset(HEARTBEAT_KEY.format(queue=queue), mapping=record)
    return record
