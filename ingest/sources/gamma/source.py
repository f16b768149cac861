"""The Gamma source: markets (v1 and Protocol V2), their metadata and lifecycle events."""

from __future__ import annotations

from django.conf import settings

from ingest.sources.base import Job, ReplayTarget, Source
from ingest.sources.gamma import jobs
from ingest.sources.gamma.client import gamma_client, gamma_hosts
from ingest.sources.gamma.replay import lifecycle_replay, markets_replay
from ingest.sources.gamma.writing import dead_letter_retry

SOURCE = Source(
    name="gamma",
    description="Polymarket Gamma: markets and events",
    client=gamma_client,
    hosts=gamma_hosts,
    jobs=(
        Job("markets", jobs.markets_sync, "markets: open refresh, closed crawl, stragglers",
            every_seconds=lambda: settings.INGEST_MARKETS_INTERVAL_SECONDS),
        Job("pending_markets", jobs.pending_markets_fetch, "metadata of markets seen in trades",
            every_seconds=lambda: settings.INGEST_BACKFILL_INTERVAL_SECONDS),
    ),
    replay_targets=(
        ReplayTarget("markets", markets_replay, "market metadata, prices and resolutions (landing or a crawl)"),
        ReplayTarget("offchain", lifecycle_replay, "lifecycle events from the markets' own timestamps"),
    ),
    dead_letter_retry=dead_letter_retry,
)
