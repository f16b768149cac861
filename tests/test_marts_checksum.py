"""The marts checksum is keyed by natural keys: the same fills loaded in another order (so every
wallet, market and row gets other surrogate ids) give the same checksum."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ingest.models import Market, OutcomeToken, TradeFill, Wallet
from marts.models import WalletDailyFeature, WalletPosition, WalletTradeAgg1h, WalletTradeAgg5m
from marts.selectors import marts_checksum
from marts.services import wallet_batch_compute
from marts.testing import compute_redis  # noqa: F401 - a fixture
from scoring.models import WalletSnapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_redis")]

ADDRESSES = [f"0x{number:040x}" for number in (0xA1, 0xB2, 0xC3, 0xD4)]
MARKETS = [(f"0x{number:064x}", (f"7{number}00", f"7{number}01")) for number in (11, 22)]


def _facts(now):
    rng = random.Random(5)
    facts = []
    for address in ADDRESSES:
        for index in range(12):
            condition, tokens = rng.choice(MARKETS)
            outcome = rng.randint(0, 1)
            side = "BUY" if index < 3 or rng.random() < 0.6 else "SELL"
            at = now - timedelta(days=1, minutes=rng.randint(0, 900))
            facts.append((address, condition, tokens[outcome], outcome, side, Decimal(rng.randint(1, 90)),
                          Decimal(f"0.{rng.randint(10, 90)}"), at))
    return facts


def _load(facts, *, reverse: bool, now) -> list[int]:
    if reverse:
        # Another arrival order, and ids that start elsewhere.
        Wallet.objects.create(address="0x" + "f" * 40)
        Market.objects.create(condition_id="0x" + "f" * 64)
    wallets = {address: Wallet.objects.create(address=address) for address in (ADDRESSES[::-1] if reverse else ADDRESSES)}
    tokens = {}
    for condition, token_ids in (MARKETS[::-1] if reverse else MARKETS):
        market = Market.objects.create(condition_id=condition, question=condition[-4:],
                                       winner_index=1 if condition == MARKETS[1][0] else None,
                                       resolved_at=now - timedelta(hours=2) if condition == MARKETS[1][0] else None)
        for index, token_id in enumerate(token_ids):
            tokens[token_id] = OutcomeToken.objects.create(token_id=token_id, market=market, outcome_index=index,
                                                           latest_price=Decimal("0.4") if index == 0 else None)
    ordered = facts[::-1] if reverse else facts
    fills = []
    for fact in ordered:
        address, _condition, token, outcome, side, size, price, at = fact
        key = hashlib.sha256(repr(fact).encode()).hexdigest()
        fills.append(TradeFill(
            idempotency_key=key, transaction_hash="0x" + key, token_id=token, market_id=tokens[token].market_id,
            wallet=wallets[address], side=side, size=size, price=price, usdc_size=size * price, traded_at=at,
            outcome_index=outcome,
        ))
    TradeFill.objects.bulk_create(fills)
    return [wallet.pk for wallet in wallets.values()]


def _wipe() -> None:
    for model in (WalletTradeAgg5m, WalletTradeAgg1h, WalletPosition, WalletDailyFeature, WalletSnapshot, TradeFill,
                  OutcomeToken, Market, Wallet):
        model.objects.all().delete()


def test_the_same_fills_in_another_arrival_order_with_other_ids_give_the_same_checksum():
    now = timezone.now().replace(microsecond=0)
    facts = _facts(now)
    first_ids = _load(facts, reverse=False, now=now)
    wallet_batch_compute(wallet_ids=first_ids, now=now)
    first = marts_checksum()
    first_wallet = Wallet.objects.get(address=ADDRESSES[0]).pk
    _wipe()
    second_ids = _load(facts, reverse=True, now=now)
    wallet_batch_compute(wallet_ids=second_ids, now=now)
    second = marts_checksum()

    assert Wallet.objects.get(address=ADDRESSES[0]).pk != first_wallet, "the surrogate ids really differ"
    assert first["wallet_position"][0] > 0 and first["wallet_snapshot"][0] == len(ADDRESSES)
    assert second == first


def test_a_changed_value_changes_the_checksum():
    now = timezone.now().replace(microsecond=0)
    ids = _load(_facts(now), reverse=False, now=now)
    wallet_batch_compute(wallet_ids=ids, now=now)
    before = marts_checksum()
    WalletPosition.objects.filter(pk=WalletPosition.objects.order_by("pk").values("pk")[:1]).update(
        realized_pnl=Decimal("123.45"))
    after = marts_checksum()
    assert after["wallet_position"] != before["wallet_position"] and after["all"] != before["all"]
