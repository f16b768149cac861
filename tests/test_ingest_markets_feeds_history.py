"""Gamma markets, off-chain feeds and per-wallet history against the emulator over real HTTP."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
from django.db import connection

from ingest.changes import changed_wallets_pop
from ingest.models import (
    IngestCursor,
    Market,
    OffchainEvent,
    OffchainFeed,
    OutcomeToken,
    RunStatus,
    TradeFill,
    Wallet,
    WalletCursor,
)
from ingest.registry import INGEST_JOBS, ingest_job_execute
from ingest.sources.gamma import jobs as gamma
from ingest.sources.gamma import writing as gamma_writing
from tests.test_ingest_live_trades import served_until

pytestmark = pytest.mark.django_db(transaction=True)


def _truth_markets(upstream) -> dict[str, dict]:
    rows = requests.get(f"{upstream.url}/_truth/markets", timeout=30).json()
    return {row["conditionId"]: row for row in rows}


def test_it_crawls_every_market_open_and_closed_and_decodes_the_string_encoded_fields(emulator):
    upstream = emulator(seed=41, scenario="steady", history_seconds=60)
    run = ingest_job_execute(job_name="gamma.markets")
    assert run.status == RunStatus.SUCCEEDED, run.error_text
    truth = _truth_markets(upstream)
    stored = {market.condition_id: market for market in Market.objects.all()}
    assert set(stored) == set(truth)
    assert IngestCursor.objects.get(source="gamma", stream="markets").cursor_value == gamma.FULL_CRAWL_DONE
    sample_id, sample = next(iter(truth.items()))
    market = stored[sample_id]
    assert market.question == sample["question"] and market.metadata_status == Market.MetadataStatus.FETCHED
    assert isinstance(market.outcomes, list) and len(market.outcomes) == 2
    tokens = OutcomeToken.objects.filter(market=market).order_by("outcome_index")
    assert [token.token_id for token in tokens] == json.loads(sample["clobTokenIds"])
    assert market.volume == Decimal(sample["volume"])
    for condition_id, row in truth.items():
        if row["_truth"]["resolved_at"] is not None:
            resolved = stored[condition_id]
            assert resolved.closed and resolved.is_resolved
            if row["_truth"]["void"]:
                assert resolved.is_void
            else:
                assert resolved.winner_index == row["_truth"]["winner_outcome_index"]


def test_a_keyset_cursor_that_does_not_advance_fails_the_run_instead_of_looping(emulator, monkeypatch):
    emulator(seed=41, scenario="steady", history_seconds=0)
    job = INGEST_JOBS["gamma.markets"]

    def stuck_client():
        client = job.source.client()
        first_page = client.get_json("/markets/keyset", params={"closed": "false", "limit": 5})
        # Like a `cursor` parameter Gamma ignores: page 1 and the same next_cursor, forever.
        client.get_json = lambda path, *, params=None: {**first_page, "next_cursor": "same"}
        return client

    stuck_source = dataclasses.replace(job.source, client=stuck_client)
    monkeypatch.setitem(INGEST_JOBS, "gamma.markets", dataclasses.replace(job, source=stuck_source))
    run = ingest_job_execute(job_name="gamma.markets")
    assert run.status == RunStatus.FAILED
    assert "did not advance" in run.error_text or "repeated" in run.error_text


def test_a_market_resolving_emits_lifecycle_events_at_gammas_times_and_queues_its_holders(emulator, redis_client):
    upstream = emulator(seed=43, scenario="steady,resolutions", history_seconds=600)
    ingest_job_execute(job_name="gamma.markets")
    ingest_job_execute(job_name="data_api.trades")
    changed_wallets_pop(batch_size=100_000)
    # Long enough for scheduled markets to close and their UMA resolution to land.
    for _ in range(12):
        upstream.advance(600)
        ingest_job_execute(job_name="gamma.markets")
    resolved_events = OffchainEvent.objects.filter(source="gamma:lifecycle", source_event_id__endswith=":resolved")
    assert resolved_events.exists()
    event = resolved_events.first()
    market = event.markets.get()
    assert market.is_resolved
    assert event.event_time == market.resolved_at, "the public time is Gamma's, not our fetch time"
    run_again = ingest_job_execute(job_name="gamma.markets")
    assert run_again.stats_json["lifecycle_events"] == 0, "events are stored once"


def test_a_market_a_trade_page_adds_during_the_crawl_is_updated_not_a_failed_run(emulator, monkeypatch):
    """Seen in the demo's first minute: the trades job committed a pending market between the
    crawl's locking read and its insert, and the whole Gamma run failed on the unique key."""
    upstream = emulator(seed=43, scenario="steady", history_seconds=60)
    raced: list[str] = []
    original_values = gamma_writing._market_values

    def values_after_a_concurrent_trade_page(market):
        if not raced:
            raced.append(market.condition_id)
            # Another connection, committed at once: what a concurrent trade page does.
            thread = threading.Thread(target=_pending_market_commit, args=(market.condition_id,))
            thread.start()
            thread.join()
        return original_values(market)

    monkeypatch.setattr(gamma_writing, "_market_values", values_after_a_concurrent_trade_page)
    run = ingest_job_execute(job_name="gamma.markets")

    assert run.status == RunStatus.SUCCEEDED, run.error_text
    assert set(Market.objects.values_list("condition_id", flat=True)) == set(_truth_markets(upstream))
    market = Market.objects.get(condition_id=raced[0])
    assert market.metadata_status == Market.MetadataStatus.FETCHED
    assert market.question == _truth_markets(upstream)[raced[0]]["question"]
    assert OutcomeToken.objects.filter(market=market).count() == 2


def _pending_market_commit(condition_id: str) -> None:
    try:
        Market.objects.create(condition_id=condition_id, question="title from a trade")
    finally:
        connection.close()


def test_a_market_first_seen_in_a_trade_gets_its_metadata_fetched(emulator):
    emulator(seed=47, scenario="steady", history_seconds=60)
    ingest_job_execute(job_name="data_api.trades")
    pending = Market.objects.filter(metadata_status=Market.MetadataStatus.PENDING)
    assert pending.exists()
    assert all(market.question for market in pending), "titles come from the trades, never placeholders"
    run = ingest_job_execute(job_name="gamma.pending_markets")
    assert run.status == RunStatus.SUCCEEDED
    assert not Market.objects.filter(metadata_status=Market.MetadataStatus.PENDING).exists()
    assert OutcomeToken.objects.exists()
    assert not TradeFill.objects.filter(outcome_index__isnull=True).exists(), "fills learn their outcome index"


def test_a_registered_feed_is_polled_with_conditional_get_and_its_entries_stored_once(emulator, redis_client):
    upstream = emulator(seed=53, scenario="steady,resolutions", history_seconds=3600)
    ingest_job_execute(job_name="gamma.markets")
    ingest_job_execute(job_name="data_api.trades")
    OffchainFeed.objects.create(name="Emulator news", url=f"{upstream.url}/rss.xml")
    first = ingest_job_execute(job_name="offchain.feeds")
    assert first.status == RunStatus.SUCCEEDED, first.error_text
    assert first.stats_json["inserted"] > 0
    events = OffchainEvent.objects.filter(kind=OffchainEvent.Kind.FEED)
    assert events.count() == first.stats_json["inserted"]
    assert events.filter(markets__isnull=False).exists(), "entries link to the markets they name"
    second = ingest_job_execute(job_name="offchain.feeds")
    assert second.stats_json["not_modified"] == 1 and second.stats_json["inserted"] == 0
    assert OffchainEvent.objects.filter(kind=OffchainEvent.Kind.FEED).count() == events.count()


def test_new_wallets_get_their_whole_history_from_start_1_walked_to_the_end_across_runs(emulator, settings):
    settings.INGEST_BACKFILL_WALLETS_PER_RUN = 500
    # A slice of each history per run: the walks must resume from their stored cursors.
    settings.INGEST_TRADES_PAGE_SIZE = 5
    settings.INGEST_WALLET_PAGES_PER_RUN = 2
    upstream = emulator(seed=59, scenario="steady", history_seconds=600, wallet_count=40)
    settings.INGEST_TRADES_INITIAL_SECONDS = 60
    ingest_job_execute(job_name="data_api.trades")
    wallet = Wallet.objects.order_by("id").first()
    before = TradeFill.objects.filter(wallet=wallet).count()
    runs = []
    while len(runs) < 50:
        runs.append(ingest_job_execute(job_name="data_api.wallet_history"))
        assert runs[-1].status == RunStatus.SUCCEEDED, runs[-1].error_text
        wallet.refresh_from_db()
        if wallet.history_backfilled_at is not None:
            break
        walk = WalletCursor.objects.get(wallet=wallet, stream="wallet_history").state["walk"]
        assert walk["filters"]["user"] == wallet.address and walk["filters"]["start"] == "1" and walk["cursor"]
    assert len(runs) > 1, "the history should take more than one run"
    assert wallet.history_backfilled_at is not None
    assert WalletCursor.objects.get(wallet=wallet, stream="wallet_history").state == {}, "a finished walk is cleared"
    until = served_until(upstream)
    truth = requests.get(f"{upstream.url}/_truth/trades", params={"until": until}, timeout=30).json()
    mine = [row for row in truth["fills"] if row["proxyWallet"] == wallet.address and row["v2_served"]]
    stored = TradeFill.objects.filter(wallet=wallet)
    assert stored.filter(traded_at__lt=datetime.fromtimestamp(until + 1, tz=UTC)).count() == len(mine) > before
    assert not stored.filter(outcome_index__isnull=True).exists(), "user-scoped reads carry the outcome"
    assert wallet.first_trade_at.timestamp() == min(row["timestamp"] for row in mine)
