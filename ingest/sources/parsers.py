"""Turn one upstream Polymarket row into a typed, validated record, or say exactly why not.

Every parser takes one row as received (a dict decoded from JSON) and returns a frozen dataclass,
or raises `MalformedRow` whose message names the upstream field and the problem
(``"price: not a number: 'abc'"``). Nothing else escapes for a malformed row: callers dead-letter
on `MalformedRow` and can treat any other exception as a bug. `NotATrade` is separate on purpose:
REDEEM/REWARD/rebate rows of `/activity` are valid rows, just not fills, and are skipped.

Pure standard library and no Django, so the hot path stays cheap (the ingest budget is a few
microseconds per fill) and the parsers can be reused by replay tools and benchmarks.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

__all__ = [
    "MalformedRow",
    "NotATrade",
    "ParsedFill",
    "ParsedGammaEvent",
    "ParsedMarket",
    "fill_idempotency_key",
    "parse_gamma_event",
    "parse_gamma_market",
    "parse_rfc3339_or_gamma_time",
    "parse_trade",
    "parse_trade_v2",
    "to_decimal",
]


class MalformedRow(ValueError):
    """An upstream row that cannot become a record. The message names the field and the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotATrade(Exception):
    """An `/activity` row of another type (REDEEM, REWARD, MAKER_REBATE, …): valid, but not a fill.

    Deliberately not a `MalformedRow` (nor a ValueError), so a caller that dead-letters malformed
    rows does not dead-letter these by accident.
    """

    def __init__(self, activity_type: str) -> None:
        super().__init__(f"type: {activity_type!r} is not a trade")
        self.activity_type = activity_type


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedFill:
    """One fill from Data API `/trades` (v1 or v2) or a TRADE row of `/activity`.

    Not slotted: `_parse_fill` builds it through `__dict__` (see `_new_parsed_fill`).
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


@dataclass(frozen=True, slots=True)
class ParsedMarket:
    """One Gamma `/markets` row, with the resolution already decided."""

    gamma_id: str
    condition_id: str
    question: str | None
    slug: str | None
    description: str | None
    category: str | None
    event_slug: str | None
    event_title: str | None
    tags: list[str]
    outcomes: list[str]
    outcome_prices: list[Decimal]
    token_ids: list[str]
    volume: Decimal
    liquidity: Decimal
    active: bool
    closed: bool
    archived: bool
    end_date: datetime | None
    closed_time: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    uma_resolution_status: str | None
    winner_index: int | None
    is_void: bool
    is_resolved: bool
    resolved_at: datetime | None
    fees_enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class ParsedGammaEvent:
    """One Gamma `/events` row (or an event nested in a market row)."""

    gamma_id: str
    slug: str | None
    title: str | None
    category: str | None
    tags: list[str]
    closed: bool
    closed_time: datetime | None
    created_at: datetime | None
    market_condition_ids: list[str]


# --------------------------------------------------------------------------------------------------
# Shared value parsers
# --------------------------------------------------------------------------------------------------

_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# 2100-01-01T00:00:00Z. Anything later is a unit mistake or garbage, never a real fill.
_LAST_PLAUSIBLE_UNIX_SECONDS: Final = 4_102_444_800
# Unix *milliseconds* pass 1e11 in March 1973, so a value between that and 2100-in-milliseconds is
# almost certainly milliseconds sent where seconds were expected; say so rather than "too large".
_SMALLEST_MILLISECOND_TIMESTAMP: Final = 100_000_000_000
_LAST_PLAUSIBLE_UNIX_MILLISECONDS: Final = _LAST_PLAUSIBLE_UNIX_SECONDS * 1000

# Compiled once: the patterns run for every fill. Inputs are lower-cased before matching.
_TX_HASH_PATTERN: Final = re.compile(r"0x[0-9a-f]{64}")
_CONDITION_ID_PATTERN: Final = _TX_HASH_PATTERN
_WALLET_PATTERN: Final = re.compile(r"0x[0-9a-f]{40}")

_SIDES: Final = frozenset({"BUY", "SELL"})
# Data API sentinel for "unknown / not applicable" (global feed, rewards, rebates).
_UNKNOWN_OUTCOME_INDEX: Final = 999
# Stored as a smallint; real markets have a handful of outcomes.
_LARGEST_OUTCOME_INDEX: Final = 32_767
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)
_HALF: Final = Decimal("0.5")
_VOID_PRICE_TOLERANCE: Final = Decimal("0.01")
_IDEMPOTENCY_KEY_VERSION: Final = "polymarket-fill-v2"
_MAX_DECIMAL_EXPONENT: Final = 60
_MAX_TOKEN_ID_BITS: Final = 256
_LARGEST_PLAIN_INT: Final = 10**_MAX_DECIMAL_EXPONENT


def _show(value: object) -> str:
    """A short repr for error messages: rows can carry long strings and must not flood logs."""
    try:
        text = repr(value)
    except Exception:  # an int past Python's 4300-digit str limit, or an object with a broken repr
        return f"<unprintable {type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def to_decimal(value: object, *, field: str) -> Decimal:
    """An exact Decimal from a JSON number, a numeric string or a Decimal.

    Floats go through their shortest repr (``0.9809999989`` stays ``0.9809999989``), never through
    their binary expansion. Booleans, NaN, infinities, empty strings, anything non-numeric and
    magnitudes no amount or time can have raise `MalformedRow` naming `field`.
    """
    # Exact type checks first: they are the hot path, and bool is an int subclass to keep out.
    if type(value) is float:
        number = _decimal_from_text(repr(value), value, field)
    elif type(value) is int:
        number = Decimal(value)
    elif type(value) is str:
        text = value.strip()
        if not text:
            raise MalformedRow(f"{field}: empty")
        # Decimal() also takes "1_000" and non-ASCII digits; no API sends those, so they are noise.
        if not text.isascii() or "_" in text:
            raise MalformedRow(f"{field}: not a number: {_show(value)}")
        number = _decimal_from_text(text, value, field)
    elif value is None:
        raise MalformedRow(f"{field}: missing")
    elif isinstance(value, bool):
        raise MalformedRow(f"{field}: a boolean is not a number: {value!r}")
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(int(value))
    else:
        raise MalformedRow(f"{field}: not a number: {_show(value)}")
    if not number.is_finite():
        raise MalformedRow(f"{field}: not a finite number: {_show(value)}")
    # "1e999999999" is a valid Decimal, but formatting it would build a gigabyte string and
    # arithmetic on it overflows; nothing we ingest comes near 10**±60.
    if not -_MAX_DECIMAL_EXPONENT <= number.adjusted() <= _MAX_DECIMAL_EXPONENT:
        raise MalformedRow(f"{field}: out of range: {_show(value)}")
    return number


def _decimal_from_text(text: str, original: object, field: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise MalformedRow(f"{field}: not a number: {_show(original)}") from None


def _canonical_number(number: Decimal) -> str:
    """Fixed-point text without trailing zeros or exponent, so 3, 3.0, "3" and 3.00 all read "3".

    Not `Decimal.normalize()`: that rounds to the context precision (28 digits) and would make
    the key depend on the context.
    """
    if not number:
        return "0"  # also folds -0 into 0
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _number_with_key_text(value: object, *, field: str) -> tuple[Decimal, str]:
    """`to_decimal` plus the canonical key text of the number, from one float repr.

    The hot path of every fill: JSON floats like 0.979 or 17.27 already repr as the canonical text
    (shortest round-trip, no exponent, trailing zeros only as ".0"), which saves a format pass.
    """
    if type(value) is float:
        text = repr(value)
        if "e" not in text and "n" not in text and value:  # not 1e-05, nan, inf, 0.0 or -0.0
            return Decimal(text), text[:-2] if text.endswith(".0") else text
    elif type(value) is int and -_LARGEST_PLAIN_INT < value < _LARGEST_PLAIN_INT:
        return Decimal(value), str(value)
    number = to_decimal(value, field=field)
    return number, _canonical_number(number)


def _unix_seconds(value: object, *, field: str) -> int | Decimal:
    """Unix seconds as an int (or an exact Decimal when the upstream sent a fraction)."""
    seconds: int | Decimal
    if type(value) is int:
        seconds = value
    else:
        number = to_decimal(value, field=field)
        seconds = int(number) if number == number.to_integral_value() else number
    if seconds <= 0:
        raise MalformedRow(f"{field}: not a positive Unix time in seconds: {_show(value)}")
    if seconds > _LAST_PLAUSIBLE_UNIX_SECONDS:
        if _SMALLEST_MILLISECOND_TIMESTAMP <= seconds <= _LAST_PLAUSIBLE_UNIX_MILLISECONDS:
            raise MalformedRow(f"{field}: looks like milliseconds, expected Unix seconds: {_show(value)}")
        raise MalformedRow(f"{field}: after the year 2100, not a Unix time in seconds: {_show(value)}")
    return seconds


def _datetime_from_unix_seconds(seconds: int | Decimal) -> datetime:
    if isinstance(seconds, int):
        return datetime.fromtimestamp(seconds, UTC)
    # Exact to the microsecond; a float would round 1787241322.123 to …122999.
    return _UNIX_EPOCH + timedelta(microseconds=int(seconds * 1_000_000))


def _unix_seconds_of_datetime(moment: datetime) -> Decimal:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elapsed = moment - _UNIX_EPOCH
    return Decimal(elapsed.days * 86_400 + elapsed.seconds) + Decimal(elapsed.microseconds).scaleb(-6)


def _require_text(value: object, *, field: str) -> str:
    if type(value) is str:
        if value and not value.isspace():
            return value
        raise MalformedRow(f"{field}: empty")
    if value is None:
        raise MalformedRow(f"{field}: missing")
    raise MalformedRow(f"{field}: not a string: {_show(value)}")


def _optional_text(value: object, *, field: str) -> str | None:
    """The string as sent, or None for missing, null, empty or blank (the API's ways of saying "unknown")."""
    if type(value) is str:
        return value if value and not value.isspace() else None
    if value is None:
        return None
    raise MalformedRow(f"{field}: not a string: {_show(value)}")


def _hex_id(value: object, *, field: str, pattern: re.Pattern[str], expected: str) -> str:
    lowered = _require_text(value, field=field).lower()
    if pattern.fullmatch(lowered) is None:
        raise MalformedRow(f"{field}: not {expected}: {_show(value)}")
    return lowered


def _token_id(value: object, *, field: str) -> str:
    """A CTF token id as decimal digits. Kept as text: the ids are ~77 digits, far past 64 bits."""
    if type(value) is int:
        if value < 0 or value.bit_length() > _MAX_TOKEN_ID_BITS:
            raise MalformedRow(f"{field}: not a uint256 token id: {_show(value)}")
        return str(value)
    text = _require_text(value, field=field)
    if not (text.isascii() and text.isdigit()):
        raise MalformedRow(f"{field}: not a decimal token id: {_show(value)}")
    return text


def _outcome_index(value: object, *, field: str) -> int | None:
    if value is None or value == "":
        return None
    if type(value) is int:
        index = value
    # Digit strings are length-capped so int() never meets Python's 4300-digit conversion limit.
    elif (type(value) is str and len(value) <= 9 and value.isascii() and value.isdigit()) or (
        type(value) is float and value.is_integer() and abs(value) < 1e9
    ):
        index = int(value)
    else:
        raise MalformedRow(f"{field}: not a whole number: {_show(value)}")
    if index == _UNKNOWN_OUTCOME_INDEX:
        return None
    if index < 0:
        raise MalformedRow(f"{field}: negative: {_show(value)}")
    if index > _LARGEST_OUTCOME_INDEX:
        raise MalformedRow(f"{field}: too large for an outcome index: {_show(value)}")
    return index


def _flag(value: object, *, field: str) -> bool:
    """A JSON boolean; missing means False. "true"/"false" strings are tolerated, 1/0 are not."""
    if type(value) is bool:
        return bool(value)
    if value is None:
        return False
    if value == "true":
        return True
    if value == "false":
        return False
    raise MalformedRow(f"{field}: not a boolean: {_show(value)}")


def parse_rfc3339_or_gamma_time(value: object, *, field: str = "time") -> datetime | None:
    """A tz-aware UTC datetime from RFC 3339 / ISO 8601 text, or None for missing/empty.

    Takes Gamma's non-ISO ``"2024-11-06 15:17:41+00"`` (space separator, hour-only offset), a
    trailing ``Z``, 1-9 fractional digits (kept to the microsecond) and bare dates (midnight UTC).
    Text without an offset is taken as UTC. Garbage raises `MalformedRow` naming `field`.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif type(value) is str:
        text = value.strip()
        if not text:
            return None
        try:
            # Python 3.11's fromisoformat covers every form Gamma sends, including "+00" and "Z".
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise MalformedRow(f"{field}: not an RFC 3339 date/time: {_show(value)}") from None
    else:
        raise MalformedRow(f"{field}: not a date/time string: {_show(value)}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise MalformedRow(f"{field}: out of range: {_show(value)}") from None


# --------------------------------------------------------------------------------------------------
# Fills
# --------------------------------------------------------------------------------------------------


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
        timestamp_text = _canonical_number(_unix_seconds_of_datetime(timestamp))
    else:
        timestamp_text = _canonical_number(to_decimal(timestamp, field="timestamp"))
    return _fill_key_from_canonical(
        transaction_hash.lower(),
        str(asset),
        wallet.lower(),
        side.upper(),
        _canonical_number(to_decimal(size, field="size")),
        _canonical_number(to_decimal(price, field="price")),
        timestamp_text,
    )


@dataclass(frozen=True, slots=True)
class _FillFieldNames:
    """Where each fill field lives in one API version's rows; errors quote these names."""

    proxy_wallet: str
    transaction_hash: str
    condition_id: str
    outcome_index: str
    event_slug: str
    usdc_size: str
    profile_image: str
    profile_image_optimized: str


_V1_NAMES: Final = _FillFieldNames(
    proxy_wallet="proxyWallet",
    transaction_hash="transactionHash",
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
    """A fill from a Data API v2 row (snake_case: proxy_wallet, transaction_hash, …)."""
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
        raise MalformedRow(f"row: not an object: {_show(row)}")
    get = row.get

    # `/trades` rows have no `type`; `/activity` rows always do. Check it first: REDEEM rows have
    # side "" and price 0 and would otherwise be reported as malformed.
    is_activity = "type" in row
    if is_activity:
        activity_type = row["type"]
        if type(activity_type) is not str:
            raise MalformedRow(f"type: not a string: {_show(activity_type)}")
        if activity_type.upper() != "TRADE":
            raise NotATrade(activity_type)

    transaction_hash = _hex_id(
        get(names.transaction_hash),
        field=names.transaction_hash,
        pattern=_TX_HASH_PATTERN,
        expected="0x + 64 hex digits",
    )
    asset = _token_id(get("asset"), field="asset")
    condition_id = _hex_id(
        get(names.condition_id),
        field=names.condition_id,
        pattern=_CONDITION_ID_PATTERN,
        expected="0x + 64 hex digits",
    )
    wallet = _hex_id(get(names.proxy_wallet), field=names.proxy_wallet, pattern=_WALLET_PATTERN, expected="0x + 40 hex digits")

    raw_side = get("side")
    side = raw_side.upper() if type(raw_side) is str else None
    if side not in _SIDES:
        if raw_side is None:
            raise MalformedRow("side: missing")
        raise MalformedRow(f"side: not BUY or SELL: {_show(raw_side)}")

    size, size_key_text = _number_with_key_text(get("size"), field="size")
    if size <= _ZERO:
        raise MalformedRow(f"size: not positive: {_show(get('size'))}")
    price, price_key_text = _number_with_key_text(get("price"), field="price")
    if not _ZERO <= price <= _ONE:
        raise MalformedRow(f"price: outside [0, 1]: {_show(get('price'))}")

    # usdcSize includes fees on user-scoped reads (5-9% off size × price): take it as sent and only
    # rebuild the notional when the endpoint does not send it (`/trades`).
    raw_usdc_size = get(names.usdc_size)
    if raw_usdc_size is None:
        usdc_size = size * price
    else:
        usdc_size = to_decimal(raw_usdc_size, field=names.usdc_size)
        if usdc_size < _ZERO:
            raise MalformedRow(f"{names.usdc_size}: negative: {_show(raw_usdc_size)}")

    seconds = _unix_seconds(get("timestamp"), field="timestamp")

    profile_image = _optional_text(get(names.profile_image), field=names.profile_image)
    if profile_image is None:
        profile_image = _optional_text(get(names.profile_image_optimized), field=names.profile_image_optimized)

    return _new_parsed_fill(
        idempotency_key=_fill_key_from_canonical(
            transaction_hash,
            asset,
            wallet,
            side,
            size_key_text,
            price_key_text,
            str(seconds) if isinstance(seconds, int) else _canonical_number(seconds),
        ),
        transaction_hash=transaction_hash,
        asset=asset,
        condition_id=condition_id,
        wallet=wallet,
        side=side,
        size=size,
        price=price,
        usdc_size=usdc_size,
        traded_at=_datetime_from_unix_seconds(seconds),
        outcome=_optional_text(get("outcome"), field="outcome"),
        outcome_index=_outcome_index(get(names.outcome_index), field=names.outcome_index),
        title=_optional_text(get("title"), field="title"),
        market_slug=_optional_text(get("slug"), field="slug"),
        event_slug=_optional_text(get(names.event_slug), field=names.event_slug),
        pseudonym=_optional_text(get("pseudonym"), field="pseudonym"),
        name=_optional_text(get("name"), field="name"),
        profile_image=profile_image,
        is_activity=is_activity,
    )


# --------------------------------------------------------------------------------------------------
# Gamma markets and events
# --------------------------------------------------------------------------------------------------


def _json_list(value: object, *, field: str) -> list[Any]:
    """Gamma sends `outcomes`, `outcomePrices` and `clobTokenIds` as JSON-encoded strings
    ("[\\"Yes\\", \\"No\\"]"); accept those and real lists. Missing, null or "" is an empty list."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if type(value) is not str:
        raise MalformedRow(f"{field}: not a list or a JSON-encoded list: {_show(value)}")
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError):
        raise MalformedRow(f"{field}: not valid JSON: {_show(value)}") from None
    if decoded is None:
        return []
    if not isinstance(decoded, list):
        raise MalformedRow(f"{field}: JSON is not a list: {_show(value)}")
    return decoded


def _amount_or_zero(row: dict[str, Any], text_field: str, number_field: str) -> Decimal:
    """Gamma's string amount (exact), else its float twin, else 0."""
    value = row.get(text_field)
    field = text_field
    if value is None or value == "":
        value = row.get(number_field)
        field = number_field
    if value is None or value == "":
        return _ZERO
    return to_decimal(value, field=field)


def _tag_labels(tags: object, *, field: str) -> list[str]:
    """Labels of a Gamma `tags` array (objects with `label`; plain strings tolerated)."""
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise MalformedRow(f"{field}: not a list: {_show(tags)}")
    labels: list[str] = []
    for position, tag in enumerate(tags):
        label = tag.get("label") if isinstance(tag, dict) else tag
        label = _optional_text(label, field=f"{field}[{position}].label")
        if label is not None:
            labels.append(label)
    return labels


def _nested_events(row: dict[str, Any]) -> list[dict[str, Any]]:
    events = row.get("events")
    if events is None:
        return []
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise MalformedRow(f"events: not a list of objects: {_show(events)}")
    return events


def _gamma_id(value: object, *, field: str = "id") -> str:
    if type(value) is int and value.bit_length() <= 64:
        return str(value)
    return _require_text(value, field=field).strip()


def _resolution(closed: bool, prices: list[Decimal], uma_resolution_status: str | None) -> tuple[int | None, bool]:
    """(winner_index, is_void) from Gamma's final prices.

    Resolved only when closed and either exactly one price is 1 and the rest 0 (that outcome won),
    or every price is 0.5 ± 0.01 and UMA says "resolved" (void: refunded at 0.5). `active`,
    `archived` and `lastTradePrice` say nothing about resolution and are not consulted.
    """
    if not closed or len(prices) < 2:
        return None, False
    winners = [index for index, price in enumerate(prices) if price == _ONE]
    if len(winners) == 1 and all(price == _ZERO for index, price in enumerate(prices) if index != winners[0]):
        return winners[0], False
    uma_says_resolved = (uma_resolution_status or "").strip().lower() == "resolved"
    if uma_says_resolved and all(abs(price - _HALF) <= _VOID_PRICE_TOLERANCE for price in prices):
        return None, True
    return None, False


def parse_gamma_market(row: dict[str, Any]) -> ParsedMarket:
    """A market from a Gamma `/markets` (or `/markets/keyset`) row."""
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {_show(row)}")
    gamma_id = _gamma_id(row.get("id"))
    condition_id = _hex_id(
        row.get("conditionId"), field="conditionId", pattern=_CONDITION_ID_PATTERN, expected="0x + 64 hex digits"
    )

    outcomes = [
        _require_text(outcome, field=f"outcomes[{position}]")
        for position, outcome in enumerate(_json_list(row.get("outcomes"), field="outcomes"))
    ]
    outcome_prices: list[Decimal] = []
    for position, raw_price in enumerate(_json_list(row.get("outcomePrices"), field="outcomePrices")):
        price = to_decimal(raw_price, field=f"outcomePrices[{position}]")
        if not _ZERO <= price <= _ONE:
            raise MalformedRow(f"outcomePrices[{position}]: outside [0, 1]: {_show(raw_price)}")
        outcome_prices.append(price)
    token_ids = [
        _token_id(token_id, field=f"clobTokenIds[{position}]")
        for position, token_id in enumerate(_json_list(row.get("clobTokenIds"), field="clobTokenIds"))
    ]
    # Outcomes, prices and tokens are parallel arrays; a length mismatch would pair a token with
    # the wrong outcome (and settle it at the wrong price).
    if token_ids and len(token_ids) != len(outcomes):
        raise MalformedRow(f"clobTokenIds: {len(token_ids)} token ids for {len(outcomes)} outcomes")
    if outcome_prices and len(outcome_prices) != len(outcomes):
        raise MalformedRow(f"outcomePrices: {len(outcome_prices)} prices for {len(outcomes)} outcomes")

    events = _nested_events(row)
    first_event = events[0] if events else {}
    tags = _tag_labels(row.get("tags"), field="tags")
    for position, event in enumerate(events):
        for label in _tag_labels(event.get("tags"), field=f"events[{position}].tags"):
            if label not in tags:
                tags.append(label)
    category = (
        _optional_text(row.get("category"), field="category")
        or _optional_text(first_event.get("category"), field="events[0].category")
        or (tags[0] if tags else None)
    )

    closed = _flag(row.get("closed"), field="closed")
    closed_time = parse_rfc3339_or_gamma_time(row.get("closedTime"), field="closedTime")
    uma_resolution_status = _optional_text(row.get("umaResolutionStatus"), field="umaResolutionStatus")
    winner_index, is_void = _resolution(closed, outcome_prices, uma_resolution_status)
    is_resolved = winner_index is not None or is_void

    return ParsedMarket(
        gamma_id=gamma_id,
        condition_id=condition_id,
        question=_optional_text(row.get("question"), field="question"),
        slug=_optional_text(row.get("slug"), field="slug"),
        description=_optional_text(row.get("description"), field="description"),
        category=category,
        event_slug=_optional_text(first_event.get("slug"), field="events[0].slug"),
        event_title=_optional_text(first_event.get("title"), field="events[0].title"),
        tags=tags,
        outcomes=outcomes,
        outcome_prices=outcome_prices,
        token_ids=token_ids,
        volume=_amount_or_zero(row, "volume", "volumeNum"),
        liquidity=_amount_or_zero(row, "liquidity", "liquidityNum"),
        active=_flag(row.get("active"), field="active"),
        closed=closed,
        archived=_flag(row.get("archived"), field="archived"),
        end_date=parse_rfc3339_or_gamma_time(row.get("endDate"), field="endDate"),
        closed_time=closed_time,
        created_at=parse_rfc3339_or_gamma_time(row.get("createdAt"), field="createdAt"),
        updated_at=parse_rfc3339_or_gamma_time(row.get("updatedAt"), field="updatedAt"),
        uma_resolution_status=uma_resolution_status,
        winner_index=winner_index,
        is_void=is_void,
        is_resolved=is_resolved,
        resolved_at=closed_time if is_resolved else None,
        # Unknown stays unknown: older Gamma rows have no fee flag at all.
        fees_enabled=None if row.get("feesEnabled") is None else _flag(row.get("feesEnabled"), field="feesEnabled"),
    )


def parse_gamma_event(row: dict[str, Any]) -> ParsedGammaEvent:
    """An event from a Gamma `/events` row, with the condition ids of the markets it lists."""
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {_show(row)}")
    tags = _tag_labels(row.get("tags"), field="tags")
    markets = row.get("markets")
    if markets is None:
        markets = []
    elif not isinstance(markets, list) or not all(isinstance(market, dict) for market in markets):
        raise MalformedRow(f"markets: not a list of objects: {_show(markets)}")
    market_condition_ids: list[str] = []
    for position, market in enumerate(markets):
        raw_condition_id = market.get("conditionId")
        # Markets still being set up are listed with an empty conditionId: nothing to link yet.
        if raw_condition_id is None or raw_condition_id == "":
            continue
        condition_id = _hex_id(
            raw_condition_id,
            field=f"markets[{position}].conditionId",
            pattern=_CONDITION_ID_PATTERN,
            expected="0x + 64 hex digits",
        )
        if condition_id not in market_condition_ids:
            market_condition_ids.append(condition_id)

    created_at = parse_rfc3339_or_gamma_time(row.get("createdAt"), field="createdAt")
    if created_at is None:
        created_at = parse_rfc3339_or_gamma_time(row.get("creationDate"), field="creationDate")

    return ParsedGammaEvent(
        gamma_id=_gamma_id(row.get("id")),
        slug=_optional_text(row.get("slug"), field="slug"),
        title=_optional_text(row.get("title"), field="title"),
        category=_optional_text(row.get("category"), field="category") or (tags[0] if tags else None),
        tags=tags,
        closed=_flag(row.get("closed"), field="closed"),
        closed_time=parse_rfc3339_or_gamma_time(row.get("closedTime"), field="closedTime"),
        created_at=created_at,
        market_condition_ids=market_condition_ids,
    )
