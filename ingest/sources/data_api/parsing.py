"""Data API rows and bodies → typed values with their identity, or exactly why not.

Pure standard library, no Django. What each endpoint gives:

- `/v2/trades` rows: `parse_trade_v2` → `ParsedFill` (snake_case, the token under `token_id`);
  `parse_trade` reads the retired v1 rows (camelCase, `asset`), kept so that landing records
  stored from v1 stay readable by replay. Fills are a multiset: `OccurrenceCounter` numbers the
  identical fills of a transaction in serving order (`ParsedFill.occurrence`, part of the key).
- `/v2/activity` rows: `parse_activity_v2` → `ParsedActivity`, any type (a TRADE row carries its
  fill, with the fill's identity). `NotATrade` (from the fill parsers) is separate from
  `MalformedRow` on purpose: REDEEM/REWARD/rebate rows are valid rows, just not fills.
- `/v2/positions` rows: `parse_position_v2`; `/v2/resolutions` rows: `parse_resolution_v2`.
- Bodies: `parse_page` (envelope → rows + `Pagination`), `parse_upstream_error` (v2 error body),
  `parse_upstream_status` (`/v2/status`). A body of another shape raises `MalformedBody`: a
  transient upstream fault, never a dead letter.

Condition ids are stored in their 64-hex form: Protocol V2 ids are bytes31, which the API serves
right-padded with ``00`` (a 62-hex id is padded the same way, see `parse_condition_id`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple, Protocol, Self, TypeVar

from ingest.sources.values import (
    ONE,
    TX_HASH_PATTERN,
    UNIX_EPOCH,
    WALLET_PATTERN,
    ZERO,
    MalformedBody,
    MalformedRow,
    canonical_number,
    datetime_from_unix_seconds,
    number_with_key_text,
    optional_condition_id,
    optional_decimal,
    optional_flag,
    optional_text,
    optional_token_id,
    optional_whole_number,
    parse_condition_id,
    parse_flag,
    parse_hex_id,
    parse_outcome_index,
    parse_rfc3339_or_gamma_time,
    parse_token_id,
    parse_unix_or_rfc3339_time,
    parse_whole_number,
    require_text,
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

    `asset` is the outcome token (v1 `asset`, v2 `token_id`). `occurrence` numbers the fills of
    one transaction that are identical in all seven identifying fields, in serving order (0 for the
    first; see `OccurrenceCounter`). Not slotted: `_parse_fill` builds it through `__dict__` (see
    `_new_parsed_fill`).
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
    occurrence: int = 0

    def with_occurrence(self, occurrence: int) -> ParsedFill:
        """The same fill as the `occurrence`-th identical fill of its transaction, with that key.

        The key is rebuilt from the typed fields, exactly as `fill_idempotency_key` builds it from
        stored values, so anyone holding a stored fill and its occurrence can recompute it.
        """
        fill = object.__new__(ParsedFill)
        fill.__dict__.update(
            self.__dict__,
            occurrence=occurrence,
            idempotency_key=fill_idempotency_key(
                transaction_hash=self.transaction_hash,
                asset=self.asset,
                wallet=self.wallet,
                side=self.side,
                size=self.size,
                price=self.price,
                timestamp=self.traded_at,
                occurrence=occurrence,
            ),
        )
        return fill


def _fill_key_from_canonical(
    transaction_hash: str,
    asset: str,
    wallet: str,
    side: str,
    size: str,
    price: str,
    timestamp: str,
    occurrence: int = 0,
) -> str:
    """`<10-digit Unix seconds>-<53 hex digits of sha256>`: 64 characters, sortable by time.

    The time prefix (itself one of the identifying fields) makes the unique indexes on the key
    grow at their recent end like a time index, instead of taking every insert on a random page:
    at tens of millions of fills that is the difference between a hot index and one that thrashes
    the buffer cache and writes a full page image to the WAL per fill. 212 bits of hash remain.

    Occurrence 0 hashes exactly the text every stored fill was keyed with before fills were
    counted as a multiset, so no stored fill needs a new key; occurrence n > 0 appends ``|n``.
    """
    canonical = "|".join((_IDEMPOTENCY_KEY_VERSION, transaction_hash, asset, wallet, side, size, price, timestamp))
    if occurrence:
        canonical = f"{canonical}|{occurrence}"
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
    occurrence: int = 0,
) -> str:
    """The identity of a fill: its second, then sha256 over exactly these seven fields, canonicalised.

    One transaction carries several fills, so the hash alone is not an identity. outcomeIndex,
    eventSlug, outcome and title are left out on purpose: the global feed blanks them while
    user-scoped reads fill them in for the very same fill. Numbers are compared by value
    (3 == 3.0 == "3" == 3.00); hash and wallet by lower case; side by upper case. `timestamp` is
    Unix seconds, or a datetime (naive means UTC) as stored in the database.

    Two fills of one transaction can be identical in all seven fields and are still two fills:
    `occurrence` is the index of this one among them as served (see `OccurrenceCounter`).
    Occurrence 0 is the key fills always had.
    """
    if type(occurrence) is not int or occurrence < 0:
        raise ValueError(f"occurrence: not a non-negative int: {occurrence!r}")
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
        occurrence,
    )


class _Numbered(Protocol):
    """What `OccurrenceCounter` numbers: a parsed row with a time-prefixed key and an occurrence."""

    @property
    def idempotency_key(self) -> str: ...

    @property
    def occurrence(self) -> int: ...

    def with_occurrence(self, occurrence: int) -> Self: ...


_NumberedT = TypeVar("_NumberedT", bound=_Numbered)
_OCCURRENCE_STATE_VERSION: Final = 1
_KEY_SECONDS_LENGTH: Final = 10


class OccurrenceCounter:
    """Numbers identical rows of one walk in serving order: the nth identical fill gets occurrence n.

    Rows are identical when their occurrence-0 keys are (for fills: the same transaction, token,
    wallet, side, size, price and second). Identical rows share their second, and Data API walks
    are served in time order (`/v2/trades` newest first, `/v2/activity` either way), so only the
    second being read needs counting: the counts start afresh when the second changes. A second
    can straddle a page boundary or an interrupted walk, hence `state()` / `from_state()`: store
    the state with the walk's cursor and restore it with the cursor, and the rows of the next
    page are numbered as if the walk had never stopped.

    Use one counter per walk (one set of filters), fed every row the walk serves — including rows
    that turn out to be duplicates of stored ones — and never rows of another walk. A walk that
    restarts from its head starts a fresh counter. Rows that go back in time against the walk's
    own direction would be numbered wrongly, so they raise `MalformedBody` (retry the walk).
    """

    __slots__ = ("_counts", "_direction", "_second")

    def __init__(self) -> None:
        self._second = ""
        self._counts: dict[str, int] = {}
        # 0 until the walk has moved from one second to another; then -1 (newest first) or +1.
        self._direction = 0

    def occurrence_of(self, key: str) -> int:
        """How many rows with this occurrence-0 key came before this one (and count this one)."""
        second = key[:_KEY_SECONDS_LENGTH]
        if second != self._second:
            self._turn_to(second)
        seen = self._counts.get(key, 0)
        self._counts[key] = seen + 1
        return seen

    def number(self, item: _NumberedT) -> _NumberedT:
        """The row with its occurrence and the key of that occurrence (the row itself for 0)."""
        if item.occurrence:
            raise ValueError(f"already numbered (occurrence {item.occurrence}): {item.idempotency_key}")
        # occurrence_of, inlined: this runs once per fill on the ingest hot path.
        key = item.idempotency_key
        if key[:_KEY_SECONDS_LENGTH] != self._second:
            self._turn_to(key[:_KEY_SECONDS_LENGTH])
        counts = self._counts
        seen = counts.get(key, 0)
        counts[key] = seen + 1
        return item.with_occurrence(seen) if seen else item

    def numbered(self, items: Iterable[_NumberedT]) -> list[_NumberedT]:
        """Every row of `items` (in serving order) numbered; the counter carries on afterwards."""
        return [self.number(item) for item in items]

    def state(self) -> dict[str, Any]:
        """JSON-ready state: the second being counted and the count of each key seen in it."""
        return {
            "version": _OCCURRENCE_STATE_VERSION,
            "second": self._second,
            "direction": self._direction,
            "counts": dict(self._counts),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> OccurrenceCounter:
        """A counter that carries on from `state()`; None (no stored state) is a fresh one.

        Raises ValueError for a state this code did not write: guessing would renumber fills.
        """
        counter = cls()
        if state is None:
            return counter
        if not isinstance(state, Mapping) or state.get("version") != _OCCURRENCE_STATE_VERSION:
            raise ValueError(f"occurrence state: not a version-{_OCCURRENCE_STATE_VERSION} state: {show(state)}")
        second, direction, counts = state.get("second"), state.get("direction"), state.get("counts")
        if type(second) is not str or not (second == "" or (len(second) == _KEY_SECONDS_LENGTH and second.isdigit())):
            raise ValueError(f"occurrence state: second: not 10 digits: {show(second)}")
        if direction not in (-1, 0, 1) or type(direction) is not int:
            raise ValueError(f"occurrence state: direction: not -1, 0 or 1: {show(direction)}")
        if not isinstance(counts, Mapping) or not all(
            type(key) is str and key.startswith(second) and type(count) is int and count > 0 for key, count in counts.items()
        ):
            raise ValueError(f"occurrence state: counts: not positive counts of keys of second {second}: {show(counts)}")
        if counts and not second:
            raise ValueError("occurrence state: counts without a second")
        counter._second, counter._direction, counter._counts = second, direction, dict(counts)
        return counter

    def _turn_to(self, second: str) -> None:
        if self._second:
            # Zero-padded 10-digit seconds compare as text exactly as they do as numbers.
            direction = 1 if second > self._second else -1
            if self._direction and direction != self._direction:
                order = "newest first" if self._direction < 0 else "oldest first"
                raise MalformedBody(f"rows out of serving order: second {second} after {self._second} in a walk served {order}")
            self._direction = direction
        self._second = second
        self._counts = {}


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

    That __init__ sets each of the 20 fields through object.__setattr__ and costs ~1.6 µs, a fifth
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
        occurrence=0,
    )


# --------------------------------------------------------------------------------------------------
# /v2/activity
# --------------------------------------------------------------------------------------------------

_ACTIVITY_KEY_VERSION: Final = "polymarket-activity-v2"
# The types Polymarket documents today. Others are valid rows too, kept with their type as sent.
KNOWN_ACTIVITY_TYPES: Final = frozenset({"TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION", "MAKER_REBATE"})
_MICRO_USDC: Final = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class ParsedActivity:
    """One `/v2/activity` row, whatever its type.

    A TRADE row carries its `fill`, with exactly the identity of the same fill read from
    `/v2/trades` (so a fill seen on both is stored once); any other row has a content identity
    over its type, transaction, wallet, condition, token, side, amounts and second. Both are
    time-prefixed like fill keys and counted as a multiset with `OccurrenceCounter`.
    `activity_type` is kept exactly as sent; types not known today are valid rows.
    """

    idempotency_key: str
    activity_type: str
    wallet: str
    occurred_at: datetime
    transaction_hash: str | None
    condition_id: str | None
    token_id: str | None
    side: str | None
    size: Decimal | None
    usdc_size: Decimal | None
    price: Decimal | None
    outcome: str | None
    outcome_index: int | None
    title: str | None
    market_slug: str | None
    event_slug: str | None
    name: str | None
    pseudonym: str | None
    profile_image: str | None
    fill: ParsedFill | None
    occurrence: int = 0

    @property
    def is_trade(self) -> bool:
        return self.fill is not None

    @property
    def is_known_type(self) -> bool:
        return self.activity_type.upper() in KNOWN_ACTIVITY_TYPES

    @property
    def fee_usdc(self) -> Decimal | None:
        """The fee of a TRADE row in USDC, to the micro-USDC: what the cash moved (`usdc_size`, fees
        included) differs from the notional size × price, signed by side — a BUY pays notional + fee,
        a SELL receives notional − fee — so a positive fee is paid by the wallet. None on other types.

        Read off the recorded rows, not documented as a formula: on py-sdk/activity.json (v2, both
        BUY) usdc_size − size × price is 0.000000 and 0.489750; on the v1 recordings every BUY pays
        0-9 % above the notional and every SELL receives 0-9 % below it, never the other way. Prices
        are served rounded to 10 decimals, hence the rounding to micro-USDC (USDC's own unit).
        """
        if self.fill is None:
            return None
        fill = self.fill
        difference = fill.usdc_size - fill.size * fill.price
        return (difference if fill.side == "BUY" else -difference).quantize(_MICRO_USDC)

    def with_occurrence(self, occurrence: int) -> ParsedActivity:
        """The same row as the `occurrence`-th identical row of its walk, with that key."""
        if self.fill is not None:
            fill = self.fill.with_occurrence(occurrence)
            return dataclasses.replace(self, idempotency_key=fill.idempotency_key, fill=fill, occurrence=occurrence)
        return dataclasses.replace(self, idempotency_key=self._content_key(occurrence), occurrence=occurrence)

    def _content_key(self, occurrence: int) -> str:
        return activity_idempotency_key(
            activity_type=self.activity_type,
            transaction_hash=self.transaction_hash,
            wallet=self.wallet,
            condition_id=self.condition_id,
            token_id=self.token_id,
            side=self.side,
            size=self.size,
            usdc_size=self.usdc_size,
            price=self.price,
            timestamp=self.occurred_at,
            occurrence=occurrence,
        )


def activity_idempotency_key(
    *,
    activity_type: str,
    transaction_hash: str | None,
    wallet: str,
    condition_id: str | None,
    token_id: str | None,
    side: str | None,
    size: Decimal | int | float | str | None,
    usdc_size: Decimal | int | float | str | None,
    price: Decimal | int | float | str | None,
    timestamp: int | float | str | Decimal | datetime,
    occurrence: int = 0,
) -> str:
    """The identity of a non-TRADE activity row (TRADE rows take their fill's key).

    `<10-digit Unix seconds>-<53 hex digits of sha256>` over the type (upper case) and every field
    that says what moved, canonicalised like fill keys; an absent field hashes as "". Occurrence
    n > 0 appends ``|n``, as for fills: a batched REDEEM can hold identical rows.
    """
    if type(occurrence) is not int or occurrence < 0:
        raise ValueError(f"occurrence: not a non-negative int: {occurrence!r}")
    if isinstance(timestamp, datetime):
        timestamp_text = canonical_number(unix_seconds_of_datetime(timestamp))
    else:
        timestamp_text = canonical_number(to_decimal(timestamp, field="timestamp"))
    parts = [
        _ACTIVITY_KEY_VERSION,
        activity_type.upper(),
        (transaction_hash or "").lower(),
        wallet.lower(),
        (condition_id or "").lower(),
        token_id or "",
        (side or "").upper(),
        *("" if amount is None else canonical_number(to_decimal(amount, field=name)) for name, amount in (
            ("size", size), ("usdc_size", usdc_size), ("price", price)
        )),
        timestamp_text,
    ]  # fmt: skip
    if occurrence:
        parts.append(str(occurrence))
    seconds = timestamp_text.partition(".")[0].zfill(_KEY_SECONDS_LENGTH)
    return f"{seconds}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:53]}"


def _optional_transaction_hash(value: object) -> str | None:
    """A transaction hash, or None where a v2 row says "none" with "" (or leaves it out)."""
    if value is None or value == "":
        return None
    return parse_hex_id(value, field="transaction_hash", pattern=TX_HASH_PATTERN, expected="0x + 64 hex digits")


def _v2_profile_image(row: dict[str, Any]) -> str | None:
    return optional_text(row.get("profile_image"), field="profile_image") or optional_text(
        row.get("profile_image_optimized"), field="profile_image_optimized"
    )


def _activity_type_of(row: object) -> str:
    """An activity row's `type` as sent (any non-empty string), or `MalformedRow`."""
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {show(row)}")
    activity_type = row.get("type")
    if type(activity_type) is not str:
        raise MalformedRow("type: missing" if activity_type is None else f"type: not a string: {show(activity_type)}")
    if not activity_type.strip():
        raise MalformedRow("type: empty")
    return activity_type


def parse_activity_v2(row: dict[str, Any]) -> ParsedActivity:
    """One `/v2/activity` row of any type → a `ParsedActivity` (occurrence 0), or `MalformedRow`.

    A TRADE row must be a complete fill (as `parse_trade_v2` reads it) with its `usdc_size`;
    other rows need only a type, a wallet and a time, and say "none" with "" / null / 999 (the
    REWARD and rebate rows have no condition, token, side or outcome; REDEEM rows have price 0).
    """
    activity_type = _activity_type_of(row)
    get = row.get

    if activity_type.upper() == "TRADE":
        if get("usdc_size") is None:
            raise MalformedRow("usdc_size: missing")  # the fee and the cash moved come from it
        fill = _parse_fill(row, _V2_NAMES)
        return ParsedActivity(
            idempotency_key=fill.idempotency_key,
            activity_type=activity_type,
            wallet=fill.wallet,
            occurred_at=fill.traded_at,
            transaction_hash=fill.transaction_hash,
            condition_id=fill.condition_id,
            token_id=fill.asset,
            side=fill.side,
            size=fill.size,
            usdc_size=fill.usdc_size,
            price=fill.price,
            outcome=fill.outcome,
            outcome_index=fill.outcome_index,
            title=fill.title,
            market_slug=fill.market_slug,
            event_slug=fill.event_slug,
            name=fill.name,
            pseudonym=fill.pseudonym,
            profile_image=fill.profile_image,
            fill=fill,
        )

    wallet = parse_hex_id(get("proxy_wallet"), field="proxy_wallet", pattern=WALLET_PATTERN, expected="0x + 40 hex digits")
    occurred_at = datetime_from_unix_seconds(unix_seconds(get("timestamp"), field="timestamp"))
    transaction_hash = _optional_transaction_hash(get("transaction_hash"))
    condition_id = optional_condition_id(get("condition_id"), field="condition_id")
    token_id = optional_token_id(get("token_id"), field="token_id")
    side = optional_text(get("side"), field="side")
    size = optional_decimal(get("size"), field="size")
    usdc_size = optional_decimal(get("usdc_size"), field="usdc_size")
    price = optional_decimal(get("price"), field="price")
    # Keyed from its typed fields once built, exactly as `with_occurrence` keys it.
    activity = ParsedActivity(
        idempotency_key="",
        activity_type=activity_type,
        wallet=wallet,
        occurred_at=occurred_at,
        transaction_hash=transaction_hash,
        condition_id=condition_id,
        token_id=token_id,
        side=side.upper() if side is not None else None,
        size=size,
        usdc_size=usdc_size,
        price=price,
        outcome=optional_text(get("outcome"), field="outcome"),
        outcome_index=parse_outcome_index(get("outcome_index"), field="outcome_index"),
        title=optional_text(get("title"), field="title"),
        market_slug=optional_text(get("slug"), field="slug"),
        event_slug=optional_text(get("event_slug"), field="event_slug"),
        name=optional_text(get("name"), field="name"),
        pseudonym=optional_text(get("pseudonym"), field="pseudonym"),
        profile_image=_v2_profile_image(row),
        fill=None,
    )
    return dataclasses.replace(activity, idempotency_key=activity._content_key(0))


def parse_activity_figures(row: dict[str, Any], *, idempotency_key: str) -> ParsedActivity:
    """A landed `/v2/activity` row's figures — what a ledger applies: type, time, transaction,
    market, token, side, amounts, outcome index — validated as `parse_activity_v2` validates
    them, under the key the row landed with; or `MalformedRow`.

    The ledger re-reads every landed row of a wallet it recomputes: the identity hash (the row
    already has its key), the text fields (title, slug, names, image) and the checks of the
    wallet it was selected by were two fifths of the parse. Those fields are None here.
    """
    activity_type = _activity_type_of(row)
    get = row.get
    wallet = get("proxy_wallet")
    if activity_type.upper() != "TRADE":
        return ParsedActivity(
            idempotency_key=idempotency_key, activity_type=activity_type, wallet=wallet,
            occurred_at=datetime_from_unix_seconds(unix_seconds(get("timestamp"), field="timestamp")),
            transaction_hash=_optional_transaction_hash(get("transaction_hash")),
            condition_id=optional_condition_id(get("condition_id"), field="condition_id"),
            token_id=optional_token_id(get("token_id"), field="token_id"),
            side=None if (side := optional_text(get("side"), field="side")) is None else side.upper(),
            size=optional_decimal(get("size"), field="size"),
            usdc_size=optional_decimal(get("usdc_size"), field="usdc_size"),
            price=optional_decimal(get("price"), field="price"),
            outcome=None, outcome_index=parse_outcome_index(get("outcome_index"), field="outcome_index"), title=None,
            market_slug=None, event_slug=None, name=None, pseudonym=None, profile_image=None, fill=None,
        )
    raw_usdc_size = get("usdc_size")
    if raw_usdc_size is None:
        raise MalformedRow("usdc_size: missing")
    transaction_hash = parse_hex_id(get("transaction_hash"), field="transaction_hash", pattern=TX_HASH_PATTERN,
                                    expected="0x + 64 hex digits")
    asset = parse_token_id(get("token_id"), field="token_id")
    condition_id = parse_condition_id(get("condition_id"), field="condition_id")
    raw_side = get("side")
    side = raw_side.upper() if type(raw_side) is str else None
    if side not in _SIDES:
        raise MalformedRow("side: missing" if raw_side is None else f"side: not BUY or SELL: {show(raw_side)}")
    size = to_decimal(get("size"), field="size")
    if size <= ZERO:
        raise MalformedRow(f"size: not positive: {show(get('size'))}")
    price = to_decimal(get("price"), field="price")
    if not ZERO <= price <= ONE:
        raise MalformedRow(f"price: outside [0, 1]: {show(get('price'))}")
    usdc_size = to_decimal(raw_usdc_size, field="usdc_size")
    if usdc_size < ZERO:
        raise MalformedRow(f"usdc_size: negative: {show(raw_usdc_size)}")
    traded_at = datetime_from_unix_seconds(unix_seconds(get("timestamp"), field="timestamp"))
    outcome_index = parse_outcome_index(get("outcome_index"), field="outcome_index")
    fill = _new_parsed_fill(
        idempotency_key=idempotency_key, transaction_hash=transaction_hash, asset=asset, condition_id=condition_id,
        wallet=wallet, side=side, size=size, price=price, usdc_size=usdc_size, traded_at=traded_at, outcome=None,
        outcome_index=outcome_index, title=None, market_slug=None, event_slug=None, pseudonym=None, name=None,
        profile_image=None, is_activity=True, occurrence=0,
    )
    return ParsedActivity(
        idempotency_key=idempotency_key, activity_type=activity_type, wallet=wallet, occurred_at=traded_at,
        transaction_hash=transaction_hash, condition_id=condition_id, token_id=asset, side=side, size=size,
        usdc_size=usdc_size, price=price, outcome=None, outcome_index=outcome_index, title=None, market_slug=None,
        event_slug=None, name=None, pseudonym=None, profile_image=None, fill=fill,
    )


# --------------------------------------------------------------------------------------------------
# /v2/positions
# --------------------------------------------------------------------------------------------------

# Row statuses Polymarket documents; py-sdk says rows report OPEN, REDEEMABLE and CLOSED (a lost
# position reports REDEEMABLE) and REDEEMABLE_LOST / MERGEABLE narrow listings, accepted anyway.
POSITION_STATUSES: Final = frozenset({"OPEN", "CLOSED", "REDEEMABLE", "REDEEMABLE_LOST", "MERGEABLE"})


@dataclass(frozen=True, slots=True)
class ParsedPosition:
    """One `/v2/positions` row: Polymarket's own view of a wallet's position in one token.

    Names follow the v2 keys. Only what identifies the position and what reconciliation needs
    (status, `current_size`, `avg_price`, `realized_pnl`) is required; Polymarket's documentation
    prints trimmed rows, so every other field may be None. `realized_pnl` is pre-fee;
    `entry_fees_usdc` is the fee part of `total_cost_usdc`.
    """

    wallet: str
    token_id: str
    condition_id: str
    status: str
    current_size: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    entry_cost_usdc: Decimal | None
    entry_fees_usdc: Decimal | None
    total_cost_usdc: Decimal | None
    current_price: Decimal | None
    current_value: Decimal | None
    total_size: Decimal | None
    unrealized_pnl: Decimal | None
    total_pnl: Decimal | None
    percent_pnl: Decimal | None
    percent_realized_pnl: Decimal | None
    redeemable: bool | None
    mergeable: bool | None
    negative_risk: bool | None
    archived: bool | None
    outcome: str | None
    outcome_index: int | None
    opposite_outcome: str | None
    opposite_token_id: str | None
    title: str | None
    market_slug: str | None
    event_id: str | None
    event_slug: str | None
    end_date: date | None
    last_event_at: datetime | None
    name: str | None
    profile_image: str | None
    verified: bool | None


def _present(amount: Decimal | None, *, field: str) -> Decimal:
    if amount is None:
        raise MalformedRow(f"{field}: missing")
    return amount


def _price_or_none(value: object, *, field: str) -> Decimal | None:
    price = optional_decimal(value, field=field)
    if price is not None and not ZERO <= price <= ONE:
        raise MalformedRow(f"{field}: outside [0, 1]: {show(value)}")
    return price


def _not_negative(value: object, *, field: str) -> Decimal | None:
    amount = optional_decimal(value, field=field)
    if amount is not None and amount < ZERO:
        raise MalformedRow(f"{field}: negative: {show(value)}")
    return amount


def _calendar_date(value: object, *, field: str) -> date | None:
    """A bare date; the Data API writes "no date" as "" or 1970-01-01."""
    moment = parse_rfc3339_or_gamma_time(value, field=field)
    if moment is None or moment == UNIX_EPOCH:
        return None
    return moment.date()


def _event_id(value: object) -> str | None:
    if type(value) is int and value > 0:
        return str(value)
    event_id = optional_text(value, field="event_id")
    return None if event_id in (None, "0") else event_id


class PositionFigures(NamedTuple):
    """What a reconciliation compares of a `/v2/positions` row (the names of `ParsedPosition`)."""

    token_id: str
    status: str
    current_size: Decimal
    realized_pnl: Decimal
    last_event_at: datetime | None


def parse_position_figures(row: dict[str, Any]) -> PositionFigures:
    """A `/v2/positions` row's token, status, size, pre-fee realised PnL and the time of the
    newest movement it counts, validated as `parse_position_v2` validates them, or `MalformedRow`.

    The ledger re-reads every landed position row of a wallet it recomputes and compares only
    these: parsing the row's other thirty fields was a tenth of a ledger refresh.
    An unknown `status` is a malformed row (kept as a dead letter with its payload): what a
    position means for reconciliation depends on it, and guessing would misstate a wallet.
    """
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {show(row)}")
    get = row.get
    raw_status = get("status")
    status = raw_status.upper() if type(raw_status) is str else None
    if status not in POSITION_STATUSES:
        if raw_status is None:
            raise MalformedRow("status: missing")
        raise MalformedRow(f"status: not one of {', '.join(sorted(POSITION_STATUSES))}: {show(raw_status)}")
    current_size = _present(_not_negative(get("current_size"), field="current_size"), field="current_size")
    realized_pnl = _present(optional_decimal(get("realized_pnl"), field="realized_pnl"), field="realized_pnl")
    last_event_at = get("last_event_at")
    return PositionFigures(
        token_id=parse_token_id(get("token_id"), field="token_id"),
        status=status,
        current_size=current_size,
        realized_pnl=realized_pnl,
        last_event_at=None
        if last_event_at in (None, "", 0)
        else datetime_from_unix_seconds(unix_seconds(last_event_at, field="last_event_at")),
    )


def parse_position_v2(row: dict[str, Any]) -> ParsedPosition:
    """One `/v2/positions` row → a `ParsedPosition`, or `MalformedRow` naming the field."""
    figures = parse_position_figures(row)
    get = row.get
    return ParsedPosition(
        wallet=parse_hex_id(get("proxy_wallet"), field="proxy_wallet", pattern=WALLET_PATTERN, expected="0x + 40 hex digits"),
        token_id=figures.token_id,
        condition_id=parse_condition_id(get("condition_id"), field="condition_id"),
        status=figures.status,
        current_size=figures.current_size,
        avg_price=_present(_price_or_none(get("avg_price"), field="avg_price"), field="avg_price"),
        realized_pnl=figures.realized_pnl,
        entry_cost_usdc=_not_negative(get("entry_cost_usdc"), field="entry_cost_usdc"),
        entry_fees_usdc=_not_negative(get("entry_fees_usdc"), field="entry_fees_usdc"),
        total_cost_usdc=_not_negative(get("total_cost_usdc"), field="total_cost_usdc"),
        current_price=_price_or_none(get("current_price"), field="current_price"),
        current_value=_not_negative(get("current_value"), field="current_value"),
        total_size=_not_negative(get("total_size"), field="total_size"),
        unrealized_pnl=optional_decimal(get("unrealized_pnl"), field="unrealized_pnl"),
        total_pnl=optional_decimal(get("total_pnl"), field="total_pnl"),
        percent_pnl=optional_decimal(get("percent_pnl"), field="percent_pnl"),
        percent_realized_pnl=optional_decimal(get("percent_realized_pnl"), field="percent_realized_pnl"),
        redeemable=optional_flag(get("redeemable"), field="redeemable"),
        mergeable=optional_flag(get("mergeable"), field="mergeable"),
        negative_risk=optional_flag(get("negative_risk"), field="negative_risk"),
        archived=optional_flag(get("archived"), field="archived"),
        outcome=optional_text(get("outcome"), field="outcome"),
        outcome_index=parse_outcome_index(get("outcome_index"), field="outcome_index"),
        opposite_outcome=optional_text(get("opposite_outcome"), field="opposite_outcome"),
        opposite_token_id=optional_token_id(get("opposite_token_id"), field="opposite_token_id"),
        title=optional_text(get("title"), field="title"),
        market_slug=optional_text(get("slug"), field="slug"),
        event_id=_event_id(get("event_id")),
        event_slug=optional_text(get("event_slug"), field="event_slug"),
        end_date=_calendar_date(get("end_date"), field="end_date"),
        last_event_at=figures.last_event_at,
        name=optional_text(get("name"), field="name"),
        profile_image=_v2_profile_image(row),
        verified=optional_flag(get("verified"), field="verified"),
    )


# --------------------------------------------------------------------------------------------------
# /v2/resolutions
# --------------------------------------------------------------------------------------------------

_MICRO_USDC_PER_SHARE: Final = 1_000_000
_QUESTION_ID_PATTERN: Final = TX_HASH_PATTERN  # bytes32, 0x + 64 hex like a transaction hash
# UMA's "no price yet" marker in proposed/reproposed/settled prices (py-sdk treats it the same).
_UNSET_UMA_PRICE: Final = "69"


@dataclass(frozen=True, slots=True)
class ParsedResolution:
    """One `/v2/resolutions` row: where a condition stands in its resolution, and its payouts.

    Two shapes are served: condition rows (live captures: `payouts`, `resolved_at`,
    `resolved_block`, `reporter`) and question-keyed rows (py-sdk: `question_id`, UMA prices, no
    payouts). `payouts` is None until the row carries them — an `active` or `posed` row, or a
    question-keyed row even once resolved — so only a resolved row with payouts settles a market.
    """

    condition_id: str | None
    question_id: str | None
    status: str
    payouts_micro_usdc: tuple[int, ...] | None
    resolved_at: datetime | None
    resolved_block: int | None
    was_disputed: bool
    was_arbitrated: bool | None
    extended_review: bool
    question_rules_updated: bool
    reporter: str | None
    resolution_source: str | None
    market_type: str | None
    proposed_price: Decimal | None
    reproposed_price: Decimal | None
    price: Decimal | None
    transaction_hash: str | None
    log_index: int | None
    last_updated_at: datetime | None

    @property
    def is_resolved(self) -> bool:
        return self.status == "resolved"

    @property
    def payouts(self) -> tuple[Decimal, ...] | None:
        """USDC paid per share of each outcome (``[1000000, 0]`` → ``(1, 0)``)."""
        if self.payouts_micro_usdc is None:
            return None
        return tuple(Decimal(micro) / _MICRO_USDC_PER_SHARE for micro in self.payouts_micro_usdc)

    @property
    def winner_index(self) -> int | None:
        """The outcome that takes the whole payout, or None (not resolved, no payouts, or a split)."""
        payouts = self.payouts_micro_usdc
        if not self.is_resolved or payouts is None or payouts.count(_MICRO_USDC_PER_SHARE) != 1:
            return None
        return payouts.index(_MICRO_USDC_PER_SHARE) if sum(payouts) == _MICRO_USDC_PER_SHARE else None


def _payouts(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) < 2:
        raise MalformedRow(f"payouts: not a list of two or more payouts: {show(value)}")
    payouts = tuple(parse_whole_number(payout, field=f"payouts[{position}]") for position, payout in enumerate(value))
    for position, payout in enumerate(payouts):
        if payout > _MICRO_USDC_PER_SHARE:
            raise MalformedRow(f"payouts[{position}]: more than 1 USDC per share: {show(value[position])}")
    return payouts


def _uma_price(value: object, *, field: str) -> Decimal | None:
    if value == _UNSET_UMA_PRICE or value == int(_UNSET_UMA_PRICE):
        return None
    return optional_decimal(value, field=field)


def parse_resolution_v2(row: dict[str, Any]) -> ParsedResolution:
    """One `/v2/resolutions` row (either shape) → a `ParsedResolution`, or `MalformedRow`."""
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {show(row)}")
    get = row.get
    status = require_text(get("status"), field="status").strip().lower()
    condition_id = optional_condition_id(get("condition_id"), field="condition_id")
    raw_question_id = get("question_id")
    question_id = (
        None
        if raw_question_id in (None, "")
        else parse_hex_id(raw_question_id, field="question_id", pattern=_QUESTION_ID_PATTERN, expected="0x + 64 hex digits")
    )
    if condition_id is None and question_id is None:
        raise MalformedRow("condition_id: missing (and no question_id)")
    payouts = _payouts(get("payouts"))
    if payouts is not None and status != "resolved":
        raise MalformedRow(f"payouts: served on a row whose status is {status!r}, not 'resolved'")
    return ParsedResolution(
        condition_id=condition_id,
        question_id=question_id,
        status=status,
        payouts_micro_usdc=payouts,
        resolved_at=parse_rfc3339_or_gamma_time(get("resolved_at"), field="resolved_at"),
        resolved_block=optional_whole_number(get("resolved_block"), field="resolved_block"),
        was_disputed=parse_flag(get("was_disputed"), field="was_disputed"),
        was_arbitrated=optional_flag(get("was_arbitrated"), field="was_arbitrated"),
        extended_review=parse_flag(get("extended_review"), field="extended_review"),
        question_rules_updated=parse_flag(get("new_version_q"), field="new_version_q"),
        reporter=optional_text(get("reporter"), field="reporter"),
        resolution_source=optional_text(get("resolution_source"), field="resolution_source"),
        market_type=optional_text(get("market_type"), field="market_type"),
        proposed_price=_uma_price(get("proposed_price"), field="proposed_price"),
        reproposed_price=_uma_price(get("reproposed_price"), field="reproposed_price"),
        price=_uma_price(get("price"), field="price"),
        transaction_hash=_optional_transaction_hash(get("transaction_hash")),
        log_index=optional_whole_number(get("log_index"), field="log_index"),
        last_updated_at=parse_unix_or_rfc3339_time(get("last_update_timestamp"), field="last_update_timestamp"),
    )


# --------------------------------------------------------------------------------------------------
# /v2/user-stats
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserStatsTotals:
    """`all_time_pnl` of a `/v2/user-stats` card: the newest cumulative `/v2/user-pnl` point.

    `realized_*` are net of fees: the recorded card satisfies ``trade_pnl = position_pnl −
    fees_paid`` (trading before fees = positions' PnL with the net fees put back) and
    ``economic_pnl = realized + income + unrealized`` with no fee term, which holds only if the
    realised figures already paid them. `fees` is the charges (≤ 0), `fees_paid` refunds −
    charges (Polymarket's documentation of the card)."""

    observed_at: datetime
    realized_market_pnl: Decimal
    realized_lp_pnl: Decimal
    realized_combo_pnl: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None
    fees: Decimal
    fees_paid: Decimal
    fees_refunded: Decimal | None
    maker_rebate: Decimal
    taker_rebate: Decimal | None
    reward_income: Decimal
    yield_income: Decimal | None
    trade_count: int | None

    @property
    def trading_realized(self) -> Decimal:
        """Realised PnL of market, LP and combo positions together (what the ledger realises)."""
        return self.realized_market_pnl + self.realized_lp_pnl + self.realized_combo_pnl


@dataclass(frozen=True, slots=True)
class ParsedUserStats:
    """A `/v2/user-stats` `data` object (Polymarket's profile card of one wallet). `totals` is
    None when the wallet exists but no PnL observation is published yet (`all_time_pnl: null`);
    a wallet Polymarket does not know is `data: null` and never reaches the parser."""

    wallet: str
    trades: int | None
    biggest_win: Decimal | None
    join_date: datetime | None
    totals: UserStatsTotals | None


def _required_amount(card: dict[str, Any], name: str) -> Decimal:
    return _present(optional_decimal(card.get(name), field=f"all_time_pnl.{name}"), field=f"all_time_pnl.{name}")


def _optional_amount(card: dict[str, Any], name: str) -> Decimal | None:
    return optional_decimal(card.get(name), field=f"all_time_pnl.{name}")


def parse_user_stats_v2(row: dict[str, Any]) -> ParsedUserStats:
    """A `/v2/user-stats` `data` object → `ParsedUserStats`, or `MalformedRow` naming the field.

    Strict on what reconciliation compares (the realised parts, fees, maker rebates, rewards and
    the observation time): a card missing one of them is a dead letter, not a zero."""
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {show(row)}")
    get = row.get
    wallet = parse_hex_id(get("proxy_wallet"), field="proxy_wallet", pattern=WALLET_PATTERN,
                          expected="0x + 40 hex digits")
    card = get("all_time_pnl")
    totals = None
    if card is not None:
        if not isinstance(card, dict):
            raise MalformedRow(f"all_time_pnl: not an object: {show(card)}")
        observed = card.get("timestamp")
        if observed in (None, ""):
            raise MalformedRow("all_time_pnl.timestamp: missing")
        totals = UserStatsTotals(
            observed_at=datetime_from_unix_seconds(unix_seconds(observed, field="all_time_pnl.timestamp")),
            realized_market_pnl=_required_amount(card, "realized_market_pnl"),
            realized_lp_pnl=_required_amount(card, "realized_lp_pnl"),
            realized_combo_pnl=_required_amount(card, "realized_combo_pnl"),
            realized_pnl=_required_amount(card, "realized_pnl"),
            unrealized_pnl=_optional_amount(card, "unrealized_pnl"),
            fees=_required_amount(card, "fees"),
            fees_paid=_required_amount(card, "fees_paid"),
            fees_refunded=_optional_amount(card, "fees_refunded"),
            maker_rebate=_required_amount(card, "maker_rebate"),
            taker_rebate=_optional_amount(card, "taker_rebate"),
            reward_income=_required_amount(card, "reward_income"),
            yield_income=_optional_amount(card, "yield_income"),
            trade_count=optional_whole_number(card.get("trade_count"), field="all_time_pnl.trade_count"),
        )
    join_date = get("join_date")
    return ParsedUserStats(
        wallet=wallet,
        trades=optional_whole_number(get("trades"), field="trades"),
        biggest_win=_not_negative(get("biggest_win"), field="biggest_win"),
        join_date=None if join_date in (None, "")
        else datetime_from_unix_seconds(unix_seconds(join_date, field="join_date")),
        totals=totals,
    )


# --------------------------------------------------------------------------------------------------
# Bodies: the page envelope, error bodies, /v2/status
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pagination:
    """The `pagination` object of a v2 page. `has_more` is exact and `next_cursor` is null exactly
    on the last page; `offset` is cosmetic (never sent back). An endpoint that does not page
    (`/v2/resolutions`, `/v2/oi`) reads as one complete page: limit and offset None."""

    limit: int | None
    offset: int | None
    has_more: bool
    next_cursor: str | None


_SINGLE_PAGE: Final = Pagination(limit=None, offset=None, has_more=False, next_cursor=None)


@dataclass(frozen=True, slots=True)
class UpstreamErrorBody:
    """A v2 error body: `{error, code, retryable, trace_id, parameter?}`."""

    error: str
    code: str
    retryable: bool
    trace_id: str | None
    parameter: str | None


def parse_upstream_error(body: object) -> UpstreamErrorBody:
    """The v2 error body of a 4xx/5xx answer, or `MalformedBody` when it is not one (an HTML
    page from the CDN, a proxy's text, a truncated body decoded to something else)."""
    if not isinstance(body, dict):
        raise MalformedBody(f"error body: not an object: {show(body)}")
    error, code = body.get("error"), body.get("code")
    if type(error) is not str or type(code) is not str or not code:
        raise MalformedBody(f"error body: no error text and code: {show(body)}")
    retryable = body.get("retryable")
    if type(retryable) is not bool:
        raise MalformedBody(f"error body: retryable: not a boolean: {show(retryable)}")
    trace_id, parameter = body.get("trace_id"), body.get("parameter")
    if trace_id is not None and type(trace_id) is not str:
        raise MalformedBody(f"error body: trace_id: not a string: {show(trace_id)}")
    if parameter is not None and type(parameter) is not str:
        raise MalformedBody(f"error body: parameter: not a string: {show(parameter)}")
    return UpstreamErrorBody(error=error, code=code, retryable=retryable, trace_id=trace_id or None, parameter=parameter or None)


def _error_text(body: dict[str, Any]) -> str:
    try:
        error = parse_upstream_error(body)
    except MalformedBody:
        return show(body)
    return f"{error.code}: {error.error} (trace_id {error.trace_id})"


def _pagination(value: object) -> Pagination:
    if not isinstance(value, dict):
        raise MalformedBody(f"pagination: not an object: {show(value)}")
    has_more, next_cursor = value.get("has_more"), value.get("next_cursor")
    if type(has_more) is not bool:
        raise MalformedBody(f"pagination.has_more: not a boolean: {show(has_more)}")
    if next_cursor is not None and (type(next_cursor) is not str or not next_cursor):
        raise MalformedBody(f"pagination.next_cursor: not a cursor: {show(next_cursor)}")
    if has_more != (next_cursor is not None):
        # A walk decides with these two; when they disagree it could stop early or loop.
        raise MalformedBody(f"pagination: has_more {has_more} with next_cursor {show(next_cursor)}")
    numbers: dict[str, int] = {}
    for name in ("limit", "offset"):
        number = value.get(name)
        if type(number) is not int or number < 0:
            raise MalformedBody(f"pagination.{name}: not a non-negative whole number: {show(number)}")
        numbers[name] = number
    return Pagination(limit=numbers["limit"], offset=numbers["offset"], has_more=has_more, next_cursor=next_cursor)


def parse_page(body: object, *, paginated: bool = True) -> tuple[list[Any], Pagination]:
    """A v2 response body → (its rows as sent, its pagination).

    `data: null` is an empty page, as is `[]`; rows are not looked at (each is parsed, or
    dead-lettered, on its own). Anything else — no envelope, `data` not a list, a pagination
    object missing or inconsistent, an error body served as data — raises `MalformedBody`: a bad
    page is a transient upstream fault, never a reason to end or advance a walk. With
    `paginated=False` (endpoints that do not page) a missing pagination means one complete page.
    """
    if not isinstance(body, dict):
        raise MalformedBody(f"page: not an object: {show(body)}")
    if "data" not in body:
        if "error" in body:
            raise MalformedBody(f"page: an error body where data was expected: {_error_text(body)}")
        raise MalformedBody(f"page: no data member: {show(body)}")
    rows = body["data"]
    if rows is None:
        rows = []
    elif not isinstance(rows, list):
        raise MalformedBody(f"page: data: not a list: {show(rows)}")
    if "pagination" not in body and not paginated:
        return rows, _SINGLE_PAGE
    return rows, _pagination(body.get("pagination"))


@dataclass(frozen=True, slots=True)
class ParsedUpstreamStatus:
    """`GET /v2/status`: how far behind the chain what the API serves is.

    `measured` is False until Polymarket has measured (its 503 before the first refresh, or a
    body without a lag): "not measured yet" is not "no lag", so `lag_seconds` is then None, never
    0. `worst` names the serving mechanism that lags most; `ingestion` (one crawl cursor per
    contract and event, summarised) is kept as sent; `computed_at` / `age_seconds` say how old
    the snapshot is. The field names are Polymarket's documentation's (no body was recorded).
    """

    measured: bool
    lag_seconds: Decimal | None
    worst: str | None
    computed_at: datetime | None
    age_seconds: Decimal | None
    ingestion: dict[str, Any] | list[Any] | None
    error: UpstreamErrorBody | None = None


def parse_upstream_status(body: object, *, http_status: int = 200) -> ParsedUpstreamStatus:
    """A `/v2/status` answer (its decoded body and HTTP status) → `ParsedUpstreamStatus`.

    503 is "not measured yet" whatever the body says (its error body is kept when it is one).
    Any other status than 200 or 503, or a 200 body of another shape, raises `MalformedBody`.
    """
    if http_status == 503:
        try:
            error = parse_upstream_error(body)
        except MalformedBody:
            error = None
        return ParsedUpstreamStatus(
            measured=False, lag_seconds=None, worst=None, computed_at=None, age_seconds=None, ingestion=None, error=error
        )
    if http_status != 200:
        raise MalformedBody(f"status: HTTP {http_status} is neither a status (200) nor 'not measured yet' (503)")
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and "serving" not in body:
        body = body["data"]  # tolerated: the snapshot wrapped in the usual envelope
    if not isinstance(body, dict):
        raise MalformedBody(f"status: not an object: {show(body)}")
    serving = body.get("serving")
    if not isinstance(serving, dict):
        raise MalformedBody(f"status: serving: not an object: {show(serving)}")
    ingestion = body.get("ingestion")
    if ingestion is not None and not isinstance(ingestion, dict | list):
        raise MalformedBody(f"status: ingestion: not an object: {show(ingestion)}")
    try:
        lag_seconds = optional_decimal(serving.get("lag_seconds"), field="serving.lag_seconds")
        age_seconds = optional_decimal(body.get("age_seconds"), field="age_seconds")
        computed_at = parse_unix_or_rfc3339_time(body.get("computed_at"), field="computed_at")
        worst = optional_text(serving.get("worst"), field="serving.worst")
    except MalformedRow as error:
        raise MalformedBody(f"status: {error.reason}") from None
    for name, seconds in (("serving.lag_seconds", lag_seconds), ("age_seconds", age_seconds)):
        if seconds is not None and seconds < ZERO:
            raise MalformedBody(f"status: {name}: negative: {seconds}")
    return ParsedUpstreamStatus(
        measured=lag_seconds is not None,
        lag_seconds=lag_seconds,
        worst=worst,
        computed_at=computed_at,
        age_seconds=age_seconds,
        ingestion=ingestion,
    )
