"""The Gamma client: base URL from settings, Polymarket's published limits (ARCHITECTURE §7)."""

from __future__ import annotations

from types import MappingProxyType

from django.conf import settings

from ingest.clients import host_of, source_client_build
from ingest.http import RateLimits, SourceClient

GAMMA_LIMITS: RateLimits = MappingProxyType({"/": (4000, 10.0), "/markets": (300, 10.0), "/events": (500, 10.0)})


def gamma_client() -> SourceClient:
    return source_client_build(source="gamma", base_url=settings.POLYMARKET_GAMMA_API_URL, limits=GAMMA_LIMITS)


def gamma_hosts() -> list[str]:
    return [host_of(settings.POLYMARKET_GAMMA_API_URL)]
