"""Builders of core facts for tests of the compute path (ORM only, no ingest code involved)."""

from __future__ import annotations

import hashlib
import itertools
import os
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from ingest.models import Market, OutcomeToken, TradeFill, Wallet

_sequence = itertools.count(1)


def wallet_make(*, address: str | None = None) -> Wallet:
    number = next(_sequence)
    return Wallet.objects.create(address=address or f"0x{number:040x}")


def market_make(
    *, outcomes: int = 2, winner_index: int | None = None, is_void: bool = False, latest_prices: list | None = None,
    liquidity: Decimal | int = 0, resolved_at: datetime | None = None,
) -> tuple[Market, list[OutcomeToken]]:
    number = next(_sequence)
    market = Market.objects.create(
        condition_id=f"0x{number:064x}", question=f"Market {number}?", winner_index=winner_index, is_void=is_void,
        liquidity=Decimal(liquidity), resolved_at=resolved_at, closed=winner_index is not None or is_void,
    )
    prices = latest_prices or [None] * outcomes
    tokens = [
        OutcomeToken.objects.create(
            token_id=f"{number}{index:02d}", market=market, outcome_index=index,
            latest_price=None if prices[index] is None else Decimal(str(prices[index])),
        )
        for index in range(outcomes)
    ]
    return market, tokens


def fill_build(
    *, wallet: Wallet, token: OutcomeToken, side: str, size, price, at: datetime, usdc=None, key: str | None = None,
    ingested_at: datetime | None = None,
) -> TradeFill:
    size, price = Decimal(str(size)), Decimal(str(price))
    usdc = size * price if usdc is None else Decimal(str(usdc))
    identity = f"{wallet.pk}|{token.token_id}|{side}|{size}|{price}|{at.isoformat()}|{next(_sequence)}"
    key = key or hashlib.sha256(identity.encode()).hexdigest()
    fill = TradeFill(
        idempotency_key=key, transaction_hash="0x" + key[:64], token_id=token.token_id, market_id=token.market_id,
        wallet=wallet, side=side, size=size, price=price, usdc_size=usdc, traded_at=at,
        outcome_index=token.outcome_index,
    )
    if ingested_at is not None:
        fill.ingested_at = ingested_at
    return fill


def fill_make(**kwargs) -> TradeFill:
    fill = fill_build(**kwargs)
    fill.save()
    return fill


# --- pytest fixtures shared by tests/test_marts_* and tests/test_scoring_* ---------------------
# Other suites may run at the same time against the same Redis server and flush its app database
# per test; the compute tests keep their changed-wallet queue in a database of their own.

COMPUTE_TEST_REDIS_DB = int(os.environ.get("MARTS_TEST_REDIS_DB", "12"))


@pytest.fixture
def compute_redis(settings):
    parts = urlsplit(settings.REDIS_URL)
    settings.REDIS_URL = urlunsplit((parts.scheme, parts.netloc, f"/{COMPUTE_TEST_REDIS_DB}", parts.query, parts.fragment))
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
