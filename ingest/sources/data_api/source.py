"""The Data API source (v2): live trades, their gaps, wallet histories — and its replay and retries."""

from __future__ import annotations

from django.conf import settings

from ingest.sources.base import Job, ReplayTarget, Source
from ingest.sources.data_api import accounts, jobs
from ingest.sources.data_api.client import data_api_client, data_api_hosts
from ingest.sources.data_api.replay import trades_replay
from ingest.sources.data_api.writing import dead_letter_retry

SOURCE = Source(
    name="data_api",
    description="Polymarket Data API v2: trades, activity, positions, user stats, resolutions",
    client=data_api_client,
    hosts=data_api_hosts,
    jobs=(
        Job("trades", jobs.trades_live_ingest, "global trades feed, newest first",
            every_seconds=lambda: settings.INGEST_TRADES_INTERVAL_SECONDS),
        Job("gaps", jobs.trades_gap_backfill, "close gaps the live feed could not prove complete",
            every_seconds=lambda: settings.INGEST_BACKFILL_INTERVAL_SECONDS),
        Job("wallet_history", jobs.wallet_history_backfill, "whole trade history of newly seen wallets",
            every_seconds=lambda: settings.INGEST_BACKFILL_INTERVAL_SECONDS),
        Job("activity", accounts.activity_ingest, "every wallet's activity (trades with fees, splits, merges, …)",
            every_seconds=lambda: settings.INGEST_ACTIVITY_INTERVAL_SECONDS),
        Job("positions", accounts.positions_ingest, "Polymarket's own positions of each wallet",
            every_seconds=lambda: settings.INGEST_POSITIONS_INTERVAL_SECONDS),
        # Read with the positions: both are what the ledger is reconciled against.
        Job("user_stats", accounts.user_stats_ingest, "Polymarket's profile card (PnL totals) of each wallet",
            every_seconds=lambda: settings.INGEST_POSITIONS_INTERVAL_SECONDS),
        Job("resolutions", accounts.resolutions_ingest, "payouts of closed markets until they resolve",
            every_seconds=lambda: settings.INGEST_RESOLUTIONS_INTERVAL_SECONDS),
    ),
    replay_targets=(
        ReplayTarget("trades", trades_replay, "fills of the window (condition-scoped reads, or --from-landing)",
                     requeues_wallets=True, landing_retained=True),
    ),
    dead_letter_retry=dead_letter_retry,
)
