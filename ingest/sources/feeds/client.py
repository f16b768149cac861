"""The feeds client: operator-registered RSS/Atom feeds on many hosts share one modest budget."""

from __future__ import annotations

from django.conf import settings

from ingest.clients import host_of, source_client_build
from ingest.http import DEFAULT_SOURCE_LIMIT, SourceClient


def feed_client() -> SourceClient:
    # Feed URLs are absolute; the base URL only names the client.
    return source_client_build(source="feeds", base_url=settings.POLYMARKET_GAMMA_API_URL, limits={"/": DEFAULT_SOURCE_LIMIT})


def feed_hosts() -> list[str]:
    from ingest.models import OffchainFeed

    return sorted({host_of(url) for url in OffchainFeed.objects.filter(enabled=True).values_list("url", flat=True)})
