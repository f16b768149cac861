"""The feeds source: operator-registered RSS/Atom feeds, the off-chain news the edge is measured against."""

from __future__ import annotations

from django.conf import settings

from ingest.sources.base import Job, Source
from ingest.sources.feeds import jobs
from ingest.sources.feeds.client import feed_client, feed_hosts

SOURCE = Source(
    name="offchain",
    description="off-chain news feeds (RSS/Atom)",
    client=feed_client,
    hosts=feed_hosts,
    jobs=(
        Job("feeds", jobs.feeds_poll, "operator-registered RSS/Atom feeds",
            every_seconds=lambda: settings.INGEST_OFFCHAIN_INTERVAL_SECONDS),
    ),
)
