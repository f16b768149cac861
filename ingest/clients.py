"""Source clients built from settings: one shared limiter, breaker and retry policy per source."""

from __future__ import annotations

from django.conf import settings

from ingest.changes import redis_client
from ingest.http import DATA_API_LIMITS, GAMMA_LIMITS, SourceClient, scale_limits


def _client(*, source: str, base_url: str, limits) -> SourceClient:
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


def data_api_client() -> SourceClient:
    return _client(source="data_api", base_url=settings.POLYMARKET_DATA_API_URL, limits=DATA_API_LIMITS)


def gamma_client() -> SourceClient:
    return _client(source="gamma", base_url=settings.POLYMARKET_GAMMA_API_URL, limits=GAMMA_LIMITS)


def feed_client() -> SourceClient:
    # Feeds live on many hosts; they share one modest budget and one breaker per process group.
    return _client(source="feeds", base_url=settings.POLYMARKET_GAMMA_API_URL, limits={"/": (100, 10.0)})
