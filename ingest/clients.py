"""Building a source's HTTP client from settings: one shared limiter, breaker and retry policy per source.

Each source package names its own base URL and published rate limits (its `client.py`); what
every client shares — timeouts, retries, the Redis-held budget and breaker — is set here once.
"""

from __future__ import annotations

from django.conf import settings

from ingest.changes import redis_client
from ingest.http import RateLimits, SourceClient, scale_limits


def source_client_build(*, source: str, base_url: str, limits: RateLimits) -> SourceClient:
    return SourceClient(
        source=source,
        base_url=base_url,
        redis_client=redis_client(),
        rate_limits=scale_limits(limits, settings.RATE_LIMIT_FACTOR),
        timeout=(min(5.0, settings.HTTP_TIMEOUT_SECONDS), settings.HTTP_TIMEOUT_SECONDS),
        max_attempts=settings.HTTP_MAX_ATTEMPTS,
        backoff_base=settings.HTTP_BACKOFF_BASE_SECONDS,
        backoff_max=settings.HTTP_BACKOFF_MAX_SECONDS,
        concurrency=settings.SOURCE_CONCURRENCY,
        breaker_threshold=settings.CIRCUIT_BREAKER_THRESHOLD,
        breaker_reset_seconds=settings.CIRCUIT_BREAKER_RESET_SECONDS,
    )


def host_of(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url
