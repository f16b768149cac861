"""The drain: batches from the changed-wallet queue, concurrency, redelivery and determinism."""

from __future__ import annotations

import io
import os
import random
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from ingest.changes import changed_wallets_depth, changed_wallets_pop, changed_wallets_push
from ingest.models import TradeFill
from marts.models import WalletComputeState, WalletPosition, WalletTradeAgg5m
from marts.selectors import marts_checksum
from marts.services import WALLET_LOCK_CLASS, changed_wallets_drain, wallet_batch_compute
from marts.testing import compute_redis, fill_build, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import WalletSnapshot

pytestmark = pytest.mark.usefixtures("compute_redis")
QUEUE = f"compute_marts_test_{os.getpid()}"


@pytest.fixture(scope="module")
def celery_worker_queues():
    # A queue of our own: other suites may run a worker on the shared broker at the same time.
    return [QUEUE]


def _seed(wallets: int, fills_each: int, *, seed: int = 7, now=None):
    """Wallets trading two markets with buys and partial sells; returns (wallets, fills)."""
    rng = random.Random(seed)
    now = now or timezone.now().replace(microsecond=0)
    _m1, tokens1 = market_make(latest_prices=["0.5", "0.5"])
    _m2, tokens2 = market_make(winner_index=1, resolved_at=now - timedelta(hours=1))
    made = [wallet_make() for _ in range(wallets)]
    fills = []
    for wallet in made:
        for index in range(fills_each):
            token = rng.choice(tokens1 + tokens2)
            side = "BUY" if index < 2 or rng.random() < 0.6 else "SELL"
            fills.append(fill_build(
                wallet=wallet, token=token, side=side, size=rng.randint(1, 500), price=f"0.{rng.randint(10, 90)}",
                at=now - timedelta(days=2, minutes=rng.randint(0, 2000)),
            ))
    return made, fills


def _totals() -> tuple:
    rows = WalletSnapshot.objects.order_by("wallet_id").values_list("wallet_id", "total_trades", "realized_pnl")
    return tuple(rows)


@pytest.mark.django_db
def test_a_batch_is_read_with_a_fixed_number_of_queries_whatever_its_size(django_assert_max_num_queries):
    wallets, fills = _seed(40, 6)
    TradeFill.objects.bulk_create(fills)
    # 27: the marts' reads and writes, the consumers', one UPDATE of the wallets' newest trade times,
    # and the edge baselines' seal cursor (these fills were ingested days after they traded).
    with django_assert_max_num_queries(27):
        result = wallet_batch_compute(wallet_ids=[w.pk for w in wallets])
    assert len(result.computed) == 40


@pytest.mark.django_db
def test_delivering_the_same_batch_twice_counts_every_fill_once():
    wallets, fills = _seed(5, 8)
    TradeFill.objects.bulk_create(fills)
    ids = [w.pk for w in wallets]
    changed_wallets_push(wallet_ids=ids)
    changed_wallets_drain()
    first = _totals()
    checksum = marts_checksum()["all"]
    wallet_batch_compute(wallet_ids=ids)  # the redelivered batch
    changed_wallets_push(wallet_ids=ids)
    changed_wallets_drain()
    assert _totals() == first
    assert sum(first_row[1] for first_row in first) == 40
    assert sum(b.trades for b in WalletTradeAgg5m.objects.all()) == 40
    assert marts_checksum()["all"] == checksum


@pytest.mark.django_db
def test_a_wallet_another_worker_holds_is_skipped_and_pushed_back():
    wallets, fills = _seed(2, 3)
    TradeFill.objects.bulk_create(fills)
    held, free = wallets
    settings_dict = connection.settings_dict
    other = psycopg.connect(
        host=settings_dict["HOST"], port=settings_dict["PORT"] or 5432, user=settings_dict["USER"],
        dbname=settings_dict["NAME"], password=settings_dict["PASSWORD"] or None,
    )
    try:
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", [WALLET_LOCK_CLASS, held.pk])  # opens a transaction
        changed_wallets_push(wallet_ids=[held.pk, free.pk])
        result = changed_wallets_drain()
        assert result.computed == 1
        assert result.skipped >= 1  # it came back once more, was still held, and the drain stopped
        assert changed_wallets_pop(batch_size=10) == [held.pk]
        assert not WalletComputeState.objects.filter(wallet=held).exists()
        assert WalletComputeState.objects.filter(wallet=free).exists()
    finally:
        other.rollback()
        other.close()
    assert wallet_batch_compute(wallet_ids=[held.pk]).computed == [held.pk]


@pytest.mark.django_db
def test_insert_order_does_not_change_a_single_mart_byte():
    now = timezone.now().replace(microsecond=0)
    wallets, fills = _seed(6, 12, now=now)
    _m, (yes, _no) = market_make(latest_prices=["0.4", "0.6"])
    same_second = now - timedelta(hours=5)
    # A buy and a sell in the same second: only the idempotency-key tie-break orders them.
    fills += [
        fill_build(wallet=wallets[0], token=yes, side="SELL", size=5, price="0.5", at=same_second, key="b" * 64),
        fill_build(wallet=wallets[0], token=yes, side="BUY", size=5, price="0.4", at=same_second, key="a" * 64),
    ]
    ids = [w.pk for w in wallets]

    TradeFill.objects.bulk_create(fills)
    wallet_batch_compute(wallet_ids=ids, now=now)
    forward = marts_checksum(wallet_ids=ids)
    position = WalletPosition.objects.get(wallet=wallets[0], token_id=yes.token_id)
    assert position.realized_pnl == Decimal("0.5")  # the buy (key a…) is applied before the sell

    TradeFill.objects.all().delete()
    shuffled = list(reversed(fills))
    random.Random(3).shuffle(shuffled)
    for fill in shuffled:
        fill.pk = None
    TradeFill.objects.bulk_create(shuffled)
    wallet_batch_compute(wallet_ids=list(reversed(ids)), now=now + timedelta(minutes=3))
    assert marts_checksum(wallet_ids=ids) == forward


@pytest.mark.django_db
def test_the_checksum_command_prints_one_line_per_table_and_a_total():
    wallets, fills = _seed(3, 4)
    TradeFill.objects.bulk_create(fills)
    wallet_batch_compute(wallet_ids=[w.pk for w in wallets])
    out = io.StringIO()
    call_command("marts_checksum", wallets=f"{wallets[0].pk},{wallets[1].pk}", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("checksum ")
    assert any(line.startswith("wallet_position") for line in lines)
    expected = marts_checksum(wallet_ids=[wallets[0].pk, wallets[1].pk])["all"][1]
    assert expected in lines[-1]
    window = io.StringIO()
    since = (timezone.now() - timedelta(days=1)).isoformat()
    call_command("marts_checksum", since=since, stdout=window)
    assert "wallet_trade_agg_5m    rows=0 " in window.getvalue()  # every fill is older than a day


def test_two_compute_workers_draining_one_queue_compute_every_wallet_once(celery_worker, django_db_blocker):
    from marts.tasks import drain

    wallets, fills = _seed(120, 5)
    TradeFill.objects.bulk_create(fills)
    ids = [w.pk for w in wallets]
    changed_wallets_push(wallet_ids=ids)
    results = [drain.apply_async(kwargs={"batch_size": 5}, queue=QUEUE) for _ in range(2)]
    outcomes = [result.get(timeout=120) for result in results]
    assert changed_wallets_depth() == 0
    assert sum(outcome["computed"] for outcome in outcomes) == 120
    assert all(outcome["batches"] > 0 for outcome in outcomes)
    assert WalletComputeState.objects.count() == 120
    parallel = marts_checksum()
    wallet_batch_compute(wallet_ids=ids)  # one worker, one batch, afterwards
    assert marts_checksum() == parallel


def test_a_redelivered_compute_task_changes_nothing(celery_worker):
    from marts.tasks import wallets_compute

    wallets, fills = _seed(4, 6)
    TradeFill.objects.bulk_create(fills)
    ids = [w.pk for w in wallets]
    assert wallets_compute.apply_async(args=[ids], queue=QUEUE).get(timeout=60) == {"computed": 4, "skipped": 0}
    before = (_totals(), marts_checksum())
    assert wallets_compute.apply_async(args=[ids], queue=QUEUE).get(timeout=60) == {"computed": 4, "skipped": 0}
    assert (_totals(), marts_checksum()) == before
    assert sum(row[1] for row in before[0]) == 24


@pytest.mark.django_db
def test_a_late_fill_rebuilds_only_later_buckets_and_matches_a_full_rebuild():
    now = timezone.now().replace(microsecond=0)
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    wallet = wallet_make()
    early = fill_build(wallet=wallet, token=yes, side="BUY", size=10, price="0.2", at=now - timedelta(days=3))
    sell = fill_build(wallet=wallet, token=yes, side="SELL", size=10, price="0.6", at=now - timedelta(days=1))
    TradeFill.objects.bulk_create([early, sell])
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    untouched = WalletTradeAgg5m.objects.get(wallet=wallet, trades=1, buy_trades=1)

    # A backfilled buy between them changes the average cost, hence the later sell's realised PnL.
    TradeFill.objects.bulk_create([fill_build(wallet=wallet, token=yes, side="BUY", size=10, price="0.4",
                                              at=now - timedelta(days=2), ingested_at=timezone.now() + timedelta(seconds=1))])
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert WalletTradeAgg5m.objects.get(pk=untouched.pk)  # the earlier bucket was left in place
    assert WalletTradeAgg5m.objects.get(wallet=wallet, sell_trades=1).realized_pnl == Decimal(3)  # 6 − 10 × 0.30
    incremental = marts_checksum(wallet_ids=[wallet.pk])

    WalletComputeState.objects.filter(wallet=wallet).delete()  # forces a rebuild of every bucket
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert marts_checksum(wallet_ids=[wallet.pk]) == incremental


@pytest.mark.django_db(transaction=True)
def test_a_drain_with_several_lanes_computes_every_wallet_once_on_several_connections(monkeypatch):
    import marts.services as services

    wallets, fills = _seed(60, 4)
    TradeFill.objects.bulk_create(fills)
    ids = [w.pk for w in wallets]
    backends: list[tuple[str, int]] = []
    compute = services.wallet_batch_compute

    def compute_noting_the_connection(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.append(cursor.fetchone()[0])
        return compute(**kwargs)

    monkeypatch.setattr(services, "wallet_batch_compute", compute_noting_the_connection)
    changed_wallets_push(wallet_ids=ids)
    result = changed_wallets_drain(batch_size=4, lanes=3)
    assert result.computed == 60 and result.batches == 15
    assert len(set(backends)) > 1, "batches ran on more than one connection at once"
    assert changed_wallets_depth() == 0
    assert WalletComputeState.objects.count() == 60
    laned = marts_checksum()
    compute(wallet_ids=ids)  # one batch on one connection, afterwards
    assert marts_checksum() == laned
