"""The reconciler: facts newer than their wallet's last computation are found again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ingest.changes import changed_wallets_depth, changed_wallets_pop, changed_wallets_push
from ingest.models import OffchainEvent, OffchainEventMarket
from marts.models import WalletComputeState
from marts.services import changed_wallets_drain, wallets_reconcile, wallets_requeue_for_market_event
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import WalletSnapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]


def test_a_redis_flush_costs_latency_but_the_reconciler_recovers_every_wallet(compute_redis):  # noqa: F811
    now = timezone.now()
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallets = [wallet_make() for _ in range(3)]
    for wallet in wallets:
        fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(hours=1))
    changed_wallets_push(wallet_ids=[w.pk for w in wallets])
    compute_redis.flushdb()  # the queue is gone before any drain ran
    assert changed_wallets_depth() == 0

    counts = wallets_reconcile()
    assert counts["fills"] == 3
    changed_wallets_drain()
    assert WalletSnapshot.objects.filter(wallet__in=wallets, total_trades=1).count() == 3


def test_a_wallet_computed_after_its_newest_fill_is_left_alone_and_a_new_fill_brings_it_back():
    now = timezone.now()
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(hours=2))
    changed_wallets_push(wallet_ids=[wallet.pk])
    changed_wallets_drain()
    assert wallets_reconcile()["pushed"] == 0

    # Ingest stored a fill but its push was lost.
    fill_make(wallet=wallet, token=yes, side="BUY", size=5, price="0.5", at=now - timedelta(minutes=5),
              ingested_at=timezone.now() + timedelta(seconds=1))
    assert wallets_reconcile()["fills"] == 1
    assert changed_wallets_pop(batch_size=10) == [wallet.pk]


def test_a_new_event_requeues_the_wallets_that_traded_its_market_within_the_horizon():
    now = timezone.now()
    market, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    early, recent = wallet_make(), wallet_make()
    fill_make(wallet=early, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(days=5))
    fill_make(wallet=recent, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(hours=3))
    changed_wallets_push(wallet_ids=[early.pk, recent.pk])
    changed_wallets_drain()

    assert wallets_requeue_for_market_event(market_ids=[market.pk], horizon=timedelta(hours=24), event_time=now) == 1
    assert changed_wallets_pop(batch_size=10) == [recent.pk]

    # The reconciler finds the same wallet from the stored event if the push was lost.
    event = OffchainEvent.objects.create(source="test", source_event_id="e1", event_time=now, title="News",
                                         created_at=timezone.now() + timedelta(seconds=1))
    OffchainEventMarket.objects.create(event=event, market=market, event_time=now)
    counts = wallets_reconcile()
    assert counts["events"] == 1
    changed_wallets_drain()
    snapshot = WalletSnapshot.objects.get(wallet=recent)
    assert snapshot.info_edge_samples == 1
    assert snapshot.info_edge_mean_minutes == pytest.approx(-180, abs=0.01)


def test_a_resolution_the_ingest_push_missed_is_settled_by_the_reconciler():
    now = timezone.now()
    market, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.4", at=now - timedelta(hours=3))
    changed_wallets_push(wallet_ids=[wallet.pk])
    changed_wallets_drain()
    wallets_reconcile()  # moves the cursor past the fill

    market.winner_index = 0
    market.updated_at = timezone.now()
    market.save()
    assert wallets_reconcile()["resolutions"] == 1
    changed_wallets_drain()
    assert WalletSnapshot.objects.get(wallet=wallet).realized_pnl == 6
    assert WalletComputeState.objects.get(wallet=wallet).fills == 1
