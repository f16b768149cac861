"""The Data API client: base URL from settings, Polymarket's published limits (ARCHITECTURE §7)."""

from __future__ import annotations

from types import MappingProxyType

from django.conf import settings

from ingest.clients import host_of, source_client_build
from ingest.http import RateLimits, SourceClient

# Path prefix -> (requests, per seconds); "/" applies where no more specific prefix matches.
DATA_API_LIMITS: RateLimits = MappingProxyType({"/": (1000, 10.0), "/v2/trades": (200, 10.0), "/trades": (200, 10.0)})


def data_api_client() -> SourceClient:
    return source_client_build(source="data_api", base_url=settings.POLYMARKET_DATA_API_URL, limits=DATA_API_LIMITS)


def data_api_hosts() -> list[str]:
    return [host_of(settings.POLYMARKET_DATA_API_URL)]
