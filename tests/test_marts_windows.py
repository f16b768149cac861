"""Rolling windows: what they count, and how they slide for wallets that stopped trading."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.changes import changed_wallets_depth, changed_wallets_pop
from marts.models import WalletWindow
from marts.services import wallet_batch_compute, wallet_windows_slide
from marts.testing import compute_redis, fill_make, market_make, wallet_make  # noqa: F401 - compute_redis is a fixture
from scoring.models import WalletSnapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]


def _windows(wallet) -> dict[str, WalletWindow]:
    return {w.window: w for w in WalletWindow.objects.filter(wallet=wallet)}


def test_each_window_counts_the_fills_inside_it():
    # Yesterday at midday: the fills 3 d and 3 d 1 h before it fall on one UTC day whatever the hour the
    # suite runs at, and no fill lies in the future of the wall clock.
    now = (timezone.now() - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    wallet = wallet_make()
    _m1, (yes1, _n1) = market_make(latest_prices=["0.5", "0.5"])
    _m2, (yes2, _n2) = market_make(latest_prices=["0.5", "0.5"])
    for age, token in [(timedelta(hours=2), yes1), (timedelta(days=3), yes2), (timedelta(days=3, hours=1), yes2),
                       (timedelta(days=20), yes1), (timedelta(days=60), yes1), (timedelta(days=100), yes1)]:
        fill_make(wallet=wallet, token=token, side="BUY", size=10, price="0.5", at=now - age)
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    windows = _windows(wallet)
    assert {name: w.trades for name, w in windows.items()} == {"24h": 1, "7d": 3, "30d": 4, "90d": 5}
    assert windows["7d"].volume == Decimal(15)
    assert windows["7d"].markets_traded == 2
    assert windows["7d"].active_days == 2
    assert windows["24h"].as_of == now
    assert WalletSnapshot.objects.get(wallet=wallet).volume_30d == Decimal(20)


def test_realised_pnl_leaves_the_24h_window_when_the_sell_is_older_than_a_day():
    now = timezone.now().replace(second=0, microsecond=0)
    wallet = wallet_make()
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    fill_make(wallet=wallet, token=yes, side="BUY", size=100, price="0.2", at=now - timedelta(days=2))
    fill_make(wallet=wallet, token=yes, side="SELL", size=100, price="0.5", at=now - timedelta(hours=23, minutes=50))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert _windows(wallet)["24h"].realized_pnl == Decimal(30)
    assert WalletSnapshot.objects.get(wallet=wallet).realized_pnl_24h == Decimal(30)

    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=15))
    assert _windows(wallet)["24h"].realized_pnl == Decimal(0)
    assert _windows(wallet)["7d"].realized_pnl == Decimal(30)


def test_the_slider_queues_only_idle_wallets_whose_buckets_crossed_a_window_edge():
    now = timezone.now().replace(second=0, microsecond=0)
    leaving, staying = wallet_make(), wallet_make()
    _m, (yes, _no) = market_make(latest_prices=["0.5", "0.5"])
    fill_make(wallet=leaving, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(hours=23, minutes=52))
    fill_make(wallet=staying, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(hours=2))
    wallet_batch_compute(wallet_ids=[leaving.pk, staying.pk], now=now)
    wallet_windows_slide(now=now)  # first run: sets the slider's cursor
    changed_wallets_pop(batch_size=100)

    assert wallet_windows_slide(now=now + timedelta(minutes=15)) == 1
    assert changed_wallets_pop(batch_size=100) == [leaving.pk]
    wallet_batch_compute(wallet_ids=[leaving.pk], now=now + timedelta(minutes=15))
    assert _windows(leaving)["24h"].trades == 0
    assert _windows(leaving)["7d"].trades == 1

    # Nothing else expires in the next five minutes: no work at all.
    assert wallet_windows_slide(now=now + timedelta(minutes=20)) == 0
    assert changed_wallets_depth() == 0


def test_the_slider_also_moves_settlements_out_of_windows():
    now = timezone.now().replace(second=0, microsecond=0)
    wallet = wallet_make()
    _m, (yes, _no) = market_make(winner_index=0, resolved_at=now - timedelta(days=6, hours=23, minutes=55))
    fill_make(wallet=wallet, token=yes, side="BUY", size=10, price="0.5", at=now - timedelta(days=40))
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now)
    assert _windows(wallet)["7d"].realized_pnl == Decimal(5)
    wallet_windows_slide(now=now)
    changed_wallets_pop(batch_size=100)
    assert wallet_windows_slide(now=now + timedelta(minutes=10)) == 1
    wallet_batch_compute(wallet_ids=[wallet.pk], now=now + timedelta(minutes=10))
    assert _windows(wallet)["7d"].realized_pnl == Decimal(0)
    assert _windows(wallet)["30d"].realized_pnl == Decimal(5)
