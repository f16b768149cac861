"""Data API fill rows → typed fills with their identity, or exactly why not.

`parse_trade_v2` reads today's v2 rows (snake_case, the token under `token_id`); `parse_trade`
reads the retired v1 rows (camelCase, `asset`), kept so that landing records stored from v1 stay
readable by replay. `NotATrade` is separate from `MalformedRow` on purpose: REDEEM/REWARD/rebate
rows of `/activity` are valid rows, just not fills, and are skipped, never dead-lettered.

Condition ids are stored in their 64-hex form: Protocol V2 ids are bytes31, which the API serves
right-padded with ``00`` (a 62-hex id is padded the same way, see `parse_condition_id`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from ingest.sources.values import (
    ONE,
    TX_HASH_PATTERN,
    WALLET_PATTERN,
    ZERO,
    MalformedRow,
    canonical_number,
    datetime_from_unix_seconds,
    number_with_key_text,
    optional_text,
    parse_condition_id,
    parse_hex_id,
    parse_outcome_index,
    parse_token_id,
    show,
    to_decimal,
    unix_seconds,
    unix_seconds_of_datetime,
)

_SIDES: Final = frozenset({"BUY", "SELL"})
_IDEMPOTENCY_KEY_VERSION: Final = "polymarket-fill-v2"


class NotATrade(Exception):
    """An `/activity` row of another type (REDEEM, REWARD, MAKER_REBATE, …): valid, but not a fill.

    Deliberately not a `MalformedRow` (nor a ValueError), so a caller that dead-letters malformed
    rows does not dead-letter these by accident.
    """

    def __init__(self, activity_type: str) -> None:
        super().__init__(f"type: {activity_type!r} is not a trade")
        self.activity_type = activity_type


@dataclass(frozen=True)
class ParsedFill:
    """One fill from Data API `/trades` (v1 or v2) or a TRADE row of `/activity`.

    `asset` is the outcome token (v1 `asset`, v2 `token_id`). Not slotted: `_parse_fill` builds it
    through `__dict__` (see `_new_parsed_fill`).
    """

    idempotency_key: str
    transaction_hash: str
    asset: str
    condition_id: str
    wallet: str
    side: str
    size: Decimal
    price: Decimal
    usdc_size: Decimal
    traded_at: datetime
    outcome: str | None
    outcome_index: int | None
    title: str | None
    market_slug: str | None
    event_slug: str | None
    pseudonym: str | None
    name: str | None
    profile_image: str | None
    is_activity: bool


def _fill_key_from_canonical(
    transaction_hash: str, asset: str, wallet: str, side: str, size: str, price: str, timestamp: str
) -> str:
    """`<10-digit Unix seconds>-<53 hex digits of sha256>`: 64 characters, sortable by time.

    The time prefix (itself one of the identifying fields) makes the unique indexes on the key
    grow at their recent end like a time index, instead of taking every insert on a random page:
    at tens of millions of fills that is the difference between a hot index and one that thrashes
    the buffer cache and writes a full page image to the WAL per fill. 212 bits of hash remain.
    """
    canonical = "|".join((_IDEMPOTENCY_KEY_VERSION, transaction_hash, asset, wallet, side, size, price, timestamp))
    seconds = timestamp.partition(".")[0].zfill(10)
    return f"{seconds}-{hashlib.sha256(canonical.encode()).hexdigest()[:53]}"


def fill_idempotency_key(
    *,
    transaction_hash: str,
    asset: str | int,
    wallet: str,
    side: str,
    size: Decimal | int | float | str,
    price: Decimal | int | float | str,
    timestamp: int | float | str | Decimal | datetime,
) -> str:
    """The identity of a fill: its second, then sha256 over exactly these seven fields, canonicalised.

    One transaction carries several fills, so the hash alone is not an identity. outcomeIndex,
    eventSlug, outcome and title are left out on purpose: the global feed blanks them while
    user-scoped reads fill them in for the very same fill. Numbers are compared by value
    (3 == 3.0 == "3" == 3.00); hash and wallet by lower case; side by upper case. `timestamp` is
    Unix seconds, or a datetime (naive means UTC) as stored in the database.
    """
    if isinstance(timestamp, datetime):
        timestamp_text = canonical_number(unix_seconds_of_datetime(timestamp))
    else:
        timestamp_text = canonical_number(to_decimal(timestamp, field="timestamp"))
    return _fill_key_from_canonical(
        transaction_hash.lower(),
        str(asset),
        wallet.lower(),
        side.upper(),
        canonical_number(to_decimal(size, field="size")),
        canonical_number(to_decimal(price, field="price")),
        timestamp_text,
    )


@dataclass(frozen=True, slots=True)
class _FillFieldNames:
    """Where each fill field lives in one API version's rows; errors quote these names."""

    proxy_wallet: str
    transaction_hash: str
    asset: str
    condition_id: str
    outcome_index: str
    event_slug: str
    usdc_size: str
    profile_image: str
    profile_image_optimized: str


_V1_NAMES: Final = _FillFieldNames(
    proxy_wallet="proxyWallet",
    transaction_hash="transactionHash",
    asset="asset",
    condition_id="conditionId",
    outcome_index="outcomeIndex",
    event_slug="eventSlug",
    usdc_size="usdcSize",
    profile_image="profileImage",
    profile_image_optimized="profileImageOptimized",
)
_V2_NAMES: Final = _FillFieldNames(
    proxy_wallet="proxy_wallet",
    transaction_hash="transaction_hash",
    asset="token_id",
    condition_id="condition_id",
    outcome_index="outcome_index",
    event_slug="event_slug",
    usdc_size="usdc_size",
    profile_image="profile_image",
    profile_image_optimized="profile_image_optimized",
)


def parse_trade(row: dict[str, Any]) -> ParsedFill:
    """A fill from a Data API v1 `/trades` row or a TRADE row of `/activity` (camelCase).

    Raises `NotATrade` for other activity types and `MalformedRow` for anything unusable.
    """
    return _parse_fill(row, _V1_NAMES)


def parse_trade_v2(row: dict[str, Any]) -> ParsedFill:
    """A fill from a Data API v2 `/v2/trades` row, or a TRADE row of `/v2/activity`.

    The 19 snake_case keys of a v2 row (`proxy_wallet, side, token_id, condition_id, size, price,
    timestamp, …`); only the identifying ones, size, price and timestamp are required, the rest
    may be absent (Polymarket's documentation prints trimmed rows). `outcome_index` 999 and ""
    are "unknown", as are empty texts. `usdc_size` is size × price: `/v2/trades` sends no cash
    amount. The key is the occurrence-0 key; number the rows of a page with `OccurrenceCounter`.
    Raises `NotATrade` for other activity types and `MalformedRow` for anything unusable.
    """
    return _parse_fill(row, _V2_NAMES)


def _new_parsed_fill(**fields: Any) -> ParsedFill:
    """A ParsedFill without the frozen-dataclass __init__.

    That __init__ sets each of the 19 fields through object.__setattr__ and costs ~1.6 µs, a fifth
    of the whole parse on the ingest hot path; one dict update costs ~0.2 µs. Callers pass every
    field by name (a test checks the instance carries exactly the dataclass's fields).
    """
    fill = object.__new__(ParsedFill)
    fill.__dict__.update(fields)
    return fill


def _parse_fill(row: dict[str, Any], names: _FillFieldNames) -> ParsedFill:
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {show(row)}")
    get = row.get

    # `/trades` rows have no `type`; `/activity` rows always do. Check it first: REDEEM rows have
    # side "" and price 0 and would otherwise be reported as malformed.
    is_activity = "type" in row
    if is_activity:
        activity_type = row["type"]
        if type(activity_type) is not str:
            raise MalformedRow(f"type: not a string: {show(activity_type)}")
        if activity_type.upper() != "TRADE":
            raise NotATrade(activity_type)

    transaction_hash = parse_hex_id(
        get(names.transaction_hash),
        field=names.transaction_hash,
        pattern=TX_HASH_PATTERN,
        expected="0x + 64 hex digits",
    )
    asset = parse_token_id(get(names.asset), field=names.asset)
    condition_id = parse_condition_id(get(names.condition_id), field=names.condition_id)
    wallet = parse_hex_id(
        get(names.proxy_wallet), field=names.proxy_wallet, pattern=WALLET_PATTERN, expected="0x + 40 hex digits"
    )

    raw_side = get("side")
    side = raw_side.upper() if type(raw_side) is str else None
    if side not in _SIDES:
        if raw_side is None:
            raise MalformedRow("side: missing")
        raise MalformedRow(f"side: not BUY or SELL: {show(raw_side)}")

    size, size_key_text = number_with_key_text(get("size"), field="size")
    if size <= ZERO:
        raise MalformedRow(f"size: not positive: {show(get('size'))}")
    price, price_key_text = number_with_key_text(get("price"), field="price")
    if not ZERO <= price <= ONE:
        raise MalformedRow(f"price: outside [0, 1]: {show(get('price'))}")

    # usdcSize includes fees on user-scoped reads (5-9% off size × price): take it as sent and only
    # rebuild the notional when the endpoint does not send it (`/trades`).
    raw_usdc_size = get(names.usdc_size)
    if raw_usdc_size is None:
        usdc_size = size * price
    else:
        usdc_size = to_decimal(raw_usdc_size, field=names.usdc_size)
        if usdc_size < ZERO:
            raise MalformedRow(f"{names.usdc_size}: negative: {show(raw_usdc_size)}")

    seconds = unix_seconds(get("timestamp"), field="timestamp")

    profile_image = optional_text(get(names.profile_image), field=names.profile_image)
    if profile_image is None:
        profile_image = optional_text(get(names.profile_image_optimized), field=names.profile_image_optimized)

    return _new_parsed_fill(
        idempotency_key=_fill_key_from_canonical(
            transaction_hash,
            asset,
            wallet,
            side,
            size_key_text,
            price_key_text,
            str(seconds) if isinstance(seconds, int) else canonical_number(seconds),
        ),
        transaction_hash=transaction_hash,
        asset=asset,
        condition_id=condition_id,
        wallet=wallet,
        side=side,
        size=size,
        price=price,
        usdc_size=usdc_size,
        traded_at=datetime_from_unix_seconds(seconds),
        outcome=optional_text(get("outcome"), field="outcome"),
        outcome_index=parse_outcome_index(get(names.outcome_index), field=names.outcome_index),
        title=optional_text(get("title"), field="title"),
        market_slug=optional_text(get("slug"), field="slug"),
        event_slug=optional_text(get(names.event_slug), field=names.event_slug),
        pseudonym=optional_text(get("pseudonym"), field="pseudonym"),
        name=optional_text(get("name"), field="name"),
        profile_image=profile_image,
        is_activity=is_activity,
    )
