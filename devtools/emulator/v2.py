"""Data API v2: /v2/trades, /v2/activity, /v2/positions, /v2/resolutions, /v2/status.

Modelled on the recorded payloads in ``shared/fixtures/polymarket/v2`` (see its README):
- envelope ``{"data": [...], "pagination": {"limit", "offset", "has_more", "next_cursor"}}``;
  ``has_more`` is exact, ``next_cursor`` null on the last page, a miss is ``data: []``;
- cursor-only paging: sending ``offset`` is a 400; ``limit`` (<= 1,000) is read on the first page
  only, later pages take it from the cursor; a cursor is an opaque token like upstream's
  (``base64url({"data": {"type", "params": {"l", "ts", "sq", "d"}}, "sig"})``) whose ``sig`` is an
  HMAC over the seek anchor, the page size and the request's filters, so a tampered cursor or one
  re-sent with other filters is a 400 ``invalid_request`` naming ``cursor``;
- ``offset`` in the answer is cosmetic: how many rows the walk served before this page;
- errors ``{"error", "code", "parameter"?, "retryable", "trace_id"}``.

Walks seek by anchor (block time, sequence), never by position, so rows arriving meanwhile are
never skipped or repeated; rows only become visible once the emulated indexer reached them
(``World.columns.visible_at``), which is what ``/v2/status`` reports as the serving lag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import json
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .catalog import derive_seed, hex_digest, iso_seconds
from .ledger import MICRO, ZERO, Holding, Movement, build_ledger, exact, payouts
from .world import (
    DUPLICATE,
    MISSING_PROXY_WALLET,
    MISSING_TIMESTAMP,
    NON_NUMERIC_PRICE,
    OUTCOME_INDEX_SENTINEL,
    SIDE_NAMES,
    VALID,
    World,
    plain_number,
)

Params = dict[str, list[str]]

ERROR_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
    500: "internal",
    503: "dependency_unavailable",
}
# Only these are worth retrying, and they always say when (Retry-After).
RETRYABLE_CODES = frozenset({"rate_limited", "dependency_unavailable", "request_timeout"})
POSITION_STATUSES = ("OPEN", "CLOSED", "REDEEMABLE", "REDEEMABLE_LOST")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CONDITION = re.compile(r"^0x[0-9a-fA-F]{64}$")
THREE_YEARS = 3 * 365 * 86400
# Polygon: a block every two seconds; anchored on the recorded resolution (block 95024068 at
# 2026-10-05T23:00:53Z) so block numbers look like the real ones.
_BLOCK_ANCHOR = (1_791_241_253, 95_024_068)
# How long a transaction that surfaced late keeps counting towards the reported serving lag.
LAG_MEMORY_SECONDS = 300


def block_at(ts: float) -> int:
    anchor_ts, anchor_block = _BLOCK_ANCHOR
    return anchor_block + math.floor((ts - anchor_ts) / 2)


class V2Error(Exception):
    def __init__(self, status: int, message: str, *, parameter: str | None = None, code: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter
        self.code = code or ERROR_CODES.get(status, "internal")
        self.retry_after = retry_after


def error_body(status: int, message: str, trace_id: str, *, parameter: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """A v2 error body, keys in the recorded order (``error, code, parameter, retryable, trace_id``)."""
    code = code or ERROR_CODES.get(status, "internal")
    body: dict[str, Any] = {"error": message, "code": code}
    if parameter is not None:
        body["parameter"] = parameter
    body["retryable"] = code in RETRYABLE_CODES
    body["trace_id"] = trace_id
    return body


def invalid(message: str, parameter: str) -> V2Error:
    return V2Error(400, message, parameter=parameter)


# --- request parameters ------------------------------------------------------------------------

class Query:
    """Request parameters; each name may come snake_case or camelCase (upstream accepts both)."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def _raw(self, name: str) -> tuple[str, str] | None:
        for spelling in _spellings(name):
            values = self.params.get(spelling)
            if values:
                return spelling, values[-1]
        return None

    def text(self, name: str) -> str | None:
        found = self._raw(name)
        if found is None or found[1].strip() == "":
            return None
        return found[1].strip()

    def refuse(self, name: str, message: str) -> None:
        if self._raw(name) is not None:
            raise invalid(message, name)

    def integer(self, name: str, *, minimum: int = 0) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise invalid(f"invalid {name}: {value!r} is not an integer", name) from None
        if number < minimum:
            raise invalid(f"invalid {name}: must be at least {minimum}", name)
        return number

    def number(self, name: str) -> Decimal | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = Decimal(value)
        except ArithmeticError:
            raise invalid(f"invalid {name}: {value!r} is not a number", name) from None
        if not number.is_finite() or number < 0:
            raise invalid(f"invalid {name}: must be a non-negative number", name)
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise invalid(f"invalid {name}: {value!r} is not a boolean", name)

    def many(self, name: str) -> list[str] | None:
        raw: list[str] = []
        for spelling in _spellings(name):
            raw += self.params.get(spelling, []) + self.params.get(f"{spelling}[]", [])
        parts = [part.strip() for value in raw for part in value.split(",") if part.strip()]
        return parts or None

    def address(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if not _ADDRESS.match(value):
            raise invalid(f"invalid {name}: {value!r} is not a 0x-prefixed 20-byte address", name)
        return value.lower()

    def condition_ids(self, name: str, limit: int, *, noun: str = "condition id") -> list[str] | None:
        values = self.many(name)
        if values is None:
            return None
        if len(values) > limit:
            raise invalid(f"too many {name} values: {len(values)} (at most {limit})", name)
        for value in values:
            if not _CONDITION.match(value):
                raise invalid(f"invalid {noun}: {value}", name)
        return [value.lower() for value in values]

    def choice(self, name: str, allowed: Iterable[str], default: str | None = None) -> str | None:
        value = self.text(name)
        if value is None:
            return default
        if value.upper() not in allowed:
            raise invalid(f"invalid {name}: {value!r} (one of {', '.join(allowed)})", name)
        return value.upper()


def _spellings(name: str) -> tuple[str, ...]:
    """``taker_only`` and ``takerOnly``; a one-word name has one spelling."""
    head, *rest = name.split("_")
    camel = head + "".join(part.title() for part in rest)
    return (name, camel) if camel != name else (name,)


# --- cursors -----------------------------------------------------------------------------------

class CursorSigner:
    """Opaque, signed page tokens in upstream's format, bound to the filters of the walk."""

    def __init__(self, seed: int) -> None:
        self._secret = hashlib.blake2b(repr((seed, "v2-cursor-secret")).encode(), digest_size=32).digest()

    def _signature(self, kind: str, params: dict[str, Any], filters: str) -> str:
        message = json.dumps([kind, params, filters], sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def encode(self, kind: str, params: dict[str, Any], filters: str) -> str:
        token = {"data": {"type": kind, "params": params}, "sig": self._signature(kind, params, filters)}
        raw = json.dumps(token, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str, kind: str, filters: str) -> dict[str, Any]:
        try:
            token = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            params = token["data"]["params"]
            signature = str(token["sig"])
            token_kind = token["data"]["type"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise invalid("invalid cursor: not a cursor this API issued", "cursor") from None
        if token_kind != kind or not isinstance(params, dict):
            raise invalid(f"invalid cursor: issued for {token_kind!r}, not {kind!r}", "cursor")
        if not hmac.compare_digest(signature, self._signature(kind, params, filters)):
            raise invalid("invalid cursor: its signature does not match this request (re-send the same filters "
                          "with every cursor, unchanged)", "cursor")
        return params


def canonical_filters(filters: dict[str, Any]) -> str:
    return json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class PageRequest:
    limit: int
    # Rows served by the walk before this page (the cosmetic pagination.offset).
    served: int
    # Seek anchor: serve strictly beyond it. None on the first page.
    anchor: tuple[int, int] | None


def page_request(query: Query, signer: CursorSigner, kind: str, filters: str, *, default_limit: int,
                 max_limit: int) -> PageRequest:
    query.refuse("offset", "offset is not supported: page with the cursor from pagination.next_cursor")
    cursor = query.text("cursor")
    if cursor is not None:
        # The cursor carries the page size; a limit sent with it is ignored, like upstream.
        params = signer.decode(cursor, kind, filters)
        try:
            return PageRequest(limit=int(params["l"]), served=int(params["d"]),
                               anchor=(int(params["ts"]), int(params["sq"])))
        except (KeyError, TypeError, ValueError):
            raise invalid("invalid cursor: incomplete", "cursor") from None
    limit = query.integer("limit", minimum=1)
    if limit is None:
        limit = default_limit
    if limit > max_limit:
        raise invalid(f"invalid limit: {limit} exceeds the maximum of {max_limit}", "limit")
    return PageRequest(limit=limit, served=0, anchor=None)


def envelope(rows: list[dict[str, Any]], page: PageRequest, next_cursor: str | None) -> dict[str, Any]:
    return {"data": rows, "pagination": {"limit": page.limit, "offset": page.served,
                                         "has_more": next_cursor is not None, "next_cursor": next_cursor}}


def next_page_cursor(signer: CursorSigner, kind: str, filters: str, page: PageRequest, served_now: int,
                     last_anchor: tuple[int, int] | None, has_more: bool) -> str | None:
    if not has_more or last_anchor is None:
        return None
    params = {"l": page.limit, "ts": last_anchor[0], "sq": str(last_anchor[1]), "d": page.served + served_now}
    return signer.encode(kind, params, filters)


def month_floor(now: float, months: int) -> int:
    """Start (Unix seconds) of the calendar month ``months - 1`` before the one ``now`` is in."""
    day = datetime.fromtimestamp(now, UTC)
    year, month = day.year, day.month - (months - 1)
    while month <= 0:
        month += 12
        year -= 1
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


# --- trades ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TradeSelection:
    wallet: int | None
    markets: tuple[int, ...] | None
    side: int | None
    taker_only: bool
    min_size: float
    floor_ts: int | None
    end_ts: int | None


def select_trades(world: World, selection: TradeSelection, *, below_row: int | None, limit: int,
                  now: float) -> tuple[list[int], bool]:
    """Visible rows newest first strictly below a row id (the anchor), and whether more follow."""
    columns = world.columns
    timestamps = columns.timestamp.__getitem__
    market_filter: set[int] | None = None
    if selection.wallet is not None:
        sources = [world.by_wallet[selection.wallet].rows(selection.taker_only)]
        if selection.markets is not None:
            market_filter = set(selection.markets)
    elif selection.markets is not None:
        sources = [world.by_market[m].rows(selection.taker_only) for m in selection.markets]
    else:
        sources = [world.feed.rows(selection.taker_only)]
    with world.lock:
        iterators = []
        for rows in sources:
            high = len(rows) if below_row is None else bisect_left(rows, below_row)
            if selection.end_ts is not None:
                high = min(high, bisect_right(rows, selection.end_ts, 0, high, key=timestamps))
            low = 0 if selection.floor_ts is None else bisect_left(rows, selection.floor_ts, 0, high, key=timestamps)
            iterators.append(_descending(rows, low, high))
        candidates: Iterator[int] = iterators[0] if len(iterators) == 1 else _merge_descending(iterators)
        chosen: list[int] = []
        kinds, visible, sizes, sides, markets = (columns.kind, columns.visible_at, columns.size, columns.side,
                                                 columns.market)
        for row_id in candidates:
            if kinds[row_id] == DUPLICATE or visible[row_id] > now or sizes[row_id] < selection.min_size:
                continue
            if selection.side is not None and sides[row_id] != selection.side:
                continue
            if market_filter is not None and markets[row_id] not in market_filter:
                continue
            chosen.append(row_id)
            if len(chosen) > limit:
                return chosen[:limit], True
    return chosen, False


def _descending(rows: Any, low: int, high: int) -> Iterator[int]:
    for position in range(high - 1, low - 1, -1):
        yield rows[position]


def _merge_descending(iterators: list[Iterator[int]]) -> Iterator[int]:
    return heapq.merge(*iterators, reverse=True)


def render_trade(world: World, row_id: int, *, real_context: bool) -> dict[str, Any]:
    """A /v2/trades row: the 19 snake_case keys in the recorded order. The bare feed blanks
    ``outcome_index`` (999) and ``event_slug`` (""), like the py-sdk sample."""
    c = world.columns
    market = world.catalog.markets[c.market[row_id]]
    wallet = world.catalog.wallets[c.wallet[row_id]]
    outcome = c.outcome[row_id]
    row: dict[str, Any] = {
        "proxy_wallet": wallet.address,
        "side": SIDE_NAMES[c.side[row_id]],
        "token_id": market.token_ids[outcome],
        "condition_id": market.condition_id,
        "size": plain_number(c.size[row_id]),
        "price": plain_number(c.price[row_id]),
        "timestamp": c.timestamp[row_id],
        "title": market.question,
        "slug": market.slug,
        "icon": market.icon,
        "event_slug": world.catalog.events[market.event_index].slug if real_context else "",
        "outcome": market.outcomes[outcome],
        "outcome_index": outcome if real_context else OUTCOME_INDEX_SENTINEL,
        "name": wallet.name,
        "pseudonym": wallet.pseudonym,
        "bio": wallet.bio,
        "profile_image": wallet.profile_image,
        "profile_image_optimized": wallet.profile_image_optimized,
        "transaction_hash": world.transaction_hash(row_id),
    }
    kind = c.kind[row_id]
    if kind == MISSING_PROXY_WALLET:
        del row["proxy_wallet"]
    elif kind == NON_NUMERIC_PRICE:
        row["price"] = "abc"
    elif kind == MISSING_TIMESTAMP:
        del row["timestamp"]
    return row


def fill_content(world: World, row_id: int) -> tuple[Any, ...]:
    """What two fills of one transaction must share to be served identically."""
    c = world.columns
    return (c.tx_number[row_id], c.wallet[row_id], c.market[row_id], c.outcome[row_id], c.side[row_id],
            c.size[row_id], c.price[row_id])


def occurrences_of_second(world: World, row_ids: list[int]) -> dict[int, int]:
    """Occurrence index of each valid row among identical fills of its transaction, in serving order
    (newest first: the higher sequence is occurrence 0). Rows of one second only."""
    seen: dict[tuple[Any, ...], int] = {}
    result: dict[int, int] = {}
    kinds = world.columns.kind
    for row_id in sorted(row_ids, reverse=True):
        if kinds[row_id] != VALID:
            continue
        content = fill_content(world, row_id)
        result[row_id] = seen.get(content, 0)
        seen[content] = result[row_id] + 1
    return result


# --- status ------------------------------------------------------------------------------------

def serving_lag(world: World, at: int) -> tuple[int, dict[str, int]]:
    """The indexer's lag at virtual second ``at``: the longest any transaction that surfaced in the
    last LAG_MEMORY_SECONDS took to become visible, or the age of the oldest one still invisible,
    whichever is larger. Also returns, per exchange cursor, the oldest block time not yet indexed."""
    columns = world.columns
    timestamps = columns.timestamp
    window_start = at - LAG_MEMORY_SECONDS - world.config.max_visibility_delay
    with world.lock:
        published = len(columns)
        low = bisect_left(range(published), window_start, key=timestamps.__getitem__)
        high = bisect_right(range(published), at, lo=low, key=timestamps.__getitem__)
        lag = 0
        pending: dict[str, int] = {}
        for row_id in range(low, high):
            ts = timestamps[row_id]
            visible_at = columns.visible_at[row_id]
            if visible_at <= at:
                if visible_at >= at - LAG_MEMORY_SECONDS:
                    lag = max(lag, visible_at - ts)
            else:
                lag = max(lag, at - ts)
                name = _exchange_cursor(world, columns.market[row_id])
                pending[name] = min(pending.get(name, ts), ts)
    return lag, pending


def _exchange_cursor(world: World, market_index: int) -> str:
    market = world.catalog.markets[market_index]
    if market.protocol_version == "v2":
        return "ProtocolV2Exchange:OrderFilled"
    event = world.catalog.events[market.event_index]
    return "NegRiskCtfExchange:OrderFilled" if event.neg_risk else "CTFExchange:OrderFilled"


_INGESTION_CURSORS = ("CTFExchange:OrderFilled", "NegRiskCtfExchange:OrderFilled", "ProtocolV2Exchange:OrderFilled",
                      "ConditionalTokens:PayoutRedemption", "UmaCtfAdapter:QuestionResolved")


def status_payload(world: World, now: float) -> dict[str, Any]:
    """GET /v2/status as a snapshot refreshed every ``status_refresh_seconds`` virtual seconds.

    Shape from Polymarket's "Get data freshness" page (prose only, no example was published):
    ``serving`` (projections, ``lag_seconds`` = the worst age, ``worst`` names it), ``ingestion``
    (crawl cursors per (contract, event): tail, furthest-behind block, the worst few by name),
    ``computed_at`` and ``age_seconds``. Before the first snapshot: a 503, "not measured yet".
    """
    config = world.config
    first = world.start + config.status_warmup_seconds
    if now < first:
        # Retry-After is in real seconds; a realtime clock covers `speed` virtual seconds in each.
        clock = world.clock
        wait = (first - now) / clock.speed if clock.kind == "realtime" else first - now
        raise V2Error(503, "data freshness not measured yet", code="dependency_unavailable",
                      retry_after=max(1, math.ceil(wait)))
    refresh = max(1, config.status_refresh_seconds)
    snapshot_at = first + int((now - first) // refresh) * refresh
    lag, pending = serving_lag(world, snapshot_at)
    head = block_at(snapshot_at)
    cursors = [{"name": name, "block": block_at(pending[name]) - 1 if name in pending else head}
               for name in _INGESTION_CURSORS]
    for cursor in cursors:
        cursor["lag_blocks"] = head - cursor["block"]
    cursors.sort(key=lambda cursor: (cursor["block"], cursor["name"]))
    projections = [
        {"name": "activity_feed", "lag_seconds": lag},
        # Positions and PnL are computed from every movement up to the snapshot: they never trail.
        {"name": "custody_balances", "lag_seconds": 0},
        {"name": "pnl_engine", "lag_seconds": 0},
    ]
    worst = max(projections, key=lambda projection: projection["lag_seconds"])
    return {
        "computed_at": iso_seconds(snapshot_at),
        "age_seconds": round(now - snapshot_at, 3),
        "serving": {"lag_seconds": lag, "worst": worst["name"], "projections": projections},
        "ingestion": {"head_block": head, "tail_block": cursors[0]["block"],
                      "tail_lag_blocks": cursors[0]["lag_blocks"], "worst": cursors[:3]},
    }


# --- activity ----------------------------------------------------------------------------------

def render_activity(world: World, wallet_index: int, movement: Movement) -> dict[str, Any]:
    """A /v2/activity row, keys in the order of py-sdk/activity.json."""
    market = world.catalog.markets[movement.market]
    wallet = world.catalog.wallets[wallet_index]
    event = world.catalog.events[market.event_index]
    is_trade = movement.type == "TRADE"
    outcome = movement.outcome
    return {
        "proxy_wallet": wallet.address,
        "timestamp": movement.timestamp,
        "condition_id": market.condition_id,
        "type": movement.type,
        "size": plain_number(float(movement.size)) if is_trade else float(movement.size),
        "usdc_size": float(movement.usdc_size),
        "transaction_hash": movement.transaction_hash,
        "price": plain_number(float(movement.price)) if is_trade else 0,
        "token_id": market.token_ids[outcome] if outcome is not None else "",
        "side": movement.side,
        "outcome_index": outcome if outcome is not None else OUTCOME_INDEX_SENTINEL,
        "title": market.question,
        "slug": market.slug,
        "icon": market.icon,
        "event_slug": event.slug,
        "outcome": market.outcomes[outcome] if outcome is not None else "",
        "name": wallet.name,
        "pseudonym": wallet.pseudonym,
        "bio": wallet.bio,
        "profile_image": wallet.profile_image,
        "profile_image_optimized": wallet.profile_image_optimized,
    }


def _movement_order(movement: Movement) -> tuple[int, int]:
    return movement.timestamp, movement.seq


# --- positions ---------------------------------------------------------------------------------

def _out(value: Decimal) -> float:
    return float(value.quantize(MICRO))


def position_status(world: World, market_index: int, outcome: int, held: Holding) -> str:
    if held.size <= 0:
        return "CLOSED"
    if world.market_states[market_index].resolved_at is None:
        return "OPEN"
    pays = payouts(world.catalog.markets[market_index].winner_index)
    return "REDEEMABLE" if pays[outcome] > 0 else "REDEEMABLE_LOST"


def current_price(world: World, market_index: int, outcome: int, now: float) -> Decimal:
    if world.market_states[market_index].resolved_at is not None:
        return payouts(world.catalog.markets[market_index].winner_index)[outcome]
    return Decimal(world.market_view(market_index, now).outcome_prices[outcome])


def render_position(world: World, wallet_index: int, market_index: int, outcome: int, held: Holding,
                    holdings: dict[tuple[int, int], Holding], now: float) -> dict[str, Any]:
    """A /v2/positions row, keys in the order of py-sdk/positions.json."""
    market = world.catalog.markets[market_index]
    event = world.catalog.events[market.event_index]
    wallet = world.catalog.wallets[wallet_index]
    price = current_price(world, market_index, outcome, now)
    entry_cost = held.cost
    value = held.size * price
    unrealized = value - entry_cost
    total = held.realized + unrealized
    status = position_status(world, market_index, outcome, held)
    other = holdings.get((market_index, 1 - outcome))
    unresolved = world.market_states[market_index].resolved_at is None
    return {
        "proxy_wallet": wallet.address,
        "token_id": market.token_ids[outcome],
        "condition_id": market.condition_id,
        "current_size": _out(held.size),
        "avg_price": _out(held.avg_price),
        "entry_cost_usdc": _out(entry_cost),
        "entry_fees_usdc": _out(held.fees),
        "total_cost_usdc": _out(entry_cost + held.fees),
        "current_price": _out(price),
        "current_value": _out(value),
        "total_size": _out(held.total_bought),
        "realized_pnl": _out(held.realized),
        "unrealized_pnl": _out(unrealized),
        "total_pnl": _out(total),
        "percent_pnl": _out(unrealized / entry_cost * 100) if entry_cost > 0 else 0.0,
        "percent_realized_pnl": _out(held.realized / held.disposed_cost * 100) if held.disposed_cost > 0 else 0.0,
        "status": status,
        "redeemable": status == "REDEEMABLE",
        "mergeable": unresolved and held.size > 0 and other is not None and other.size > 0,
        "negative_risk": event.neg_risk,
        "archived": False,
        "title": market.question,
        "slug": market.slug,
        "icon": market.icon,
        "event_id": event.id,
        "event_slug": event.slug,
        "outcome": market.outcomes[outcome],
        "outcome_index": outcome,
        "opposite_outcome": market.outcomes[1 - outcome],
        "opposite_token_id": market.token_ids[1 - outcome],
        "end_date": iso_seconds(market.end_date)[:10],
        "last_event_at": held.last_event_at,
        "name": wallet.name,
        "profile_image": wallet.profile_image,
        "verified": False,
    }


# --- user stats --------------------------------------------------------------------------------

def render_user_stats(world: World, wallet_index: int, ledger: Any, now: float) -> dict[str, Any]:
    """A /v2/user-stats `data` object, keys in the order of py-sdk/user-stats.json.

    Polymarket documents it as the profile card: `trades` counts distinct markets traded,
    `biggest_win` the best single resolved position's win (0 below $1), `all_time_pnl` the
    newest cumulative /v2/user-pnl point. Its market figures are this wallet's /v2/positions
    after fees: realised = Σ realized_pnl − the fees that realised PnL paid (entry fees released
    by sells, merges and redemptions, and the sells' own fees), unrealised = Σ unrealized_pnl −
    Σ entry_fees_usdc — as the recorded sample's `trade_pnl = position_pnl − fees_paid` (trading
    before fees) requires; income comes from its activity rows; fees are the taker fees charged
    (`fees` negative, `fees_paid` = refunds − charges). The compositions follow the identities
    the recorded sample satisfies:
    realized_pnl = market + lp + combo, wallet_income = rebates + rewards + yield + referral,
    sponsored_income = rewards + yield + referral, position_pnl = realized + unrealized,
    settled_pnl = realized + wallet_income, economic_pnl = settled + unrealized, trade_pnl =
    position_pnl − fees_paid. There are no LP, combo, taker-rebate, referral or refund
    movements here: those are 0."""
    columns = world.columns
    wallet = world.catalog.wallets[wallet_index]
    with world.lock:
        rows = [row for row in world.by_wallet[wallet_index].all_rows if columns.kind[row] == VALID]
    realized = unrealized = ZERO
    biggest_win = ZERO
    for (market_index, outcome), held in ledger.holdings.items():
        if held.total_bought <= 0:
            continue
        realized += held.realized - held.fees_realized
        unrealized += held.size * current_price(world, market_index, outcome, now) - held.cost - held.fees
        if world.market_states[market_index].resolved_at is not None and held.size <= 0:
            biggest_win = max(biggest_win, held.realized)
    income: dict[str, Decimal] = {"MAKER_REBATE": ZERO, "REWARD": ZERO, "YIELD": ZERO}
    for movement in ledger.movements:
        if movement.type in income:
            income[movement.type] += movement.usdc_size
    rebate, reward, yield_income = income["MAKER_REBATE"], income["REWARD"], income["YIELD"]
    fees_paid = -ledger.fees_charged  # refunds (none) − charges
    wallet_income = rebate + reward + yield_income
    position_pnl = realized + unrealized
    settled = realized + wallet_income
    notional = sum((exact(columns.size[row]) * exact(columns.price[row]) for row in rows), ZERO)
    return {
        "proxy_wallet": wallet.address,
        "trades": len({columns.market[row] for row in rows}),
        "biggest_win": _out(biggest_win) if biggest_win >= 1 else 0.0,
        "views": 0,
        "join_date": min((columns.timestamp[row] for row in rows), default=None),
        "all_time_pnl": {
            "timestamp": int(now),
            "source_block": block_at(now),
            "realized_market_pnl": _out(realized),
            "realized_lp_pnl": 0.0,
            "realized_combo_pnl": 0.0,
            "unrealized_pnl": _out(unrealized),
            "fees_refunded": 0.0,
            "maker_rebate": _out(rebate),
            "taker_rebate": 0.0,
            "reward_income": _out(reward),
            "yield_income": _out(yield_income),
            "referral_income": 0.0,
            "deposits": None,
            "withdrawals": None,
            "realized_pnl": _out(realized),
            "wallet_income": _out(wallet_income),
            "position_pnl": _out(position_pnl),
            "settled_pnl": _out(settled),
            "economic_pnl": _out(settled + unrealized),
            "trade_pnl": _out(position_pnl - fees_paid),
            "sponsored_income": _out(reward + yield_income),
            "fees": _out(-ledger.fees_charged),
            "fees_paid": _out(fees_paid),
            "cashflow_net": None,
            "volume": _out(sum((exact(columns.size[row]) for row in rows), ZERO)),
            "volume_usdc": _out(notional),
            "trade_count": len(rows),
        } if rows else None,
    }


# --- resolutions -------------------------------------------------------------------------------

def render_resolution(world: World, market_index: int) -> dict[str, Any]:
    """A /v2/resolutions row in the recorded v1- or v2-market shape: ``active`` while trading,
    ``proposed`` between closing and UMA's answer, ``resolved`` with payouts in micro-USDC/share."""
    market = world.catalog.markets[market_index]
    state = world.market_states[market_index]
    v2 = market.protocol_version == "v2"
    if state.resolved_at is not None:
        status, updated = "resolved", state.resolved_at
    elif state.closed_at is not None:
        status, updated = "proposed", state.closed_at
    else:
        status, updated = "active", max(market.created_at, world.history_start)
    resolved = status == "resolved"
    row: dict[str, Any] = {
        "condition_id": market.condition_id,
        "status": status,
        "extended_review": False,
        "was_disputed": market.was_disputed and status != "active",
        "new_version_q": False,
    }
    if resolved and not v2:
        row["transaction_hash"] = "0x" + hex_digest(world.seed, "resolution-tx", market_index, nbytes=32)
        row["log_index"] = str(derive_seed(world.seed, "resolution-log", market_index) % 1000)
    else:
        row["transaction_hash"] = ""
        row["log_index"] = ""
    row["last_update_timestamp"] = iso_seconds(updated)
    if v2:
        row["market_type"] = "BINARY"
    if resolved:
        row["payouts"] = [int(p * 1_000_000) for p in payouts(market.winner_index)]
        row["resolution_source"] = "reported"
        if v2:
            row["reporter"] = "CHAINLINK" if "updown" in market.slug else "UMA"
    if v2:
        row["was_arbitrated"] = False
    if resolved:
        assert state.resolved_at is not None
        row["resolved_block"] = block_at(state.resolved_at)
        row["resolved_at"] = iso_seconds(state.resolved_at)
    return row


# --- the handlers ------------------------------------------------------------------------------

class DataApiV2:
    """The /v2 routes; each takes the parsed query and returns (status, payload, headers)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.config = world.config
        self.signer = CursorSigner(world.seed)
        self._ledgers: dict[int, tuple[tuple[int, int, int], Any]] = {}

    def _markets_of(self, query: Query) -> tuple[int, ...] | None:
        config = self.config
        conditions = query.condition_ids("condition", config.v2_max_filter_ids)
        events = query.many("event_id")
        if events is not None and len(events) > config.v2_max_filter_ids:
            raise invalid(f"too many event_id values: {len(events)} (at most {config.v2_max_filter_ids})",
                          "event_id")
        if conditions is None and events is None:
            return None
        catalog = self.world.catalog
        chosen = {catalog.market_by_condition[c] for c in conditions or [] if c in catalog.market_by_condition}
        wanted = set(events or [])
        for event in catalog.events:
            if event.id in wanted:
                chosen.update(event.market_indexes)
        return tuple(sorted(chosen))

    def _wallet(self, address: str | None) -> int | None:
        return None if address is None else self.world.catalog.wallet_by_address.get(address, -1)

    def trades(self, params: Params) -> dict[str, Any]:
        world, config = self.world, self.config
        query = Query(params)
        now = world.sync()
        user = query.address("user")
        markets = self._markets_of(query)
        side_name = query.choice("side", SIDE_NAMES)
        taker_only = query.flag("taker_only", True)
        amount = query.number("filter_amount")
        min_size = max(config.v2_min_filter_amount, float(amount) if amount is not None else 0.0)
        start = query.integer("start") if user else None
        end = query.integer("end") if user else None
        filters = canonical_filters({"user": user, "markets": markets, "side": side_name, "taker_only": taker_only,
                                     "min_size": min_size, "start": start, "end": end})
        page = page_request(query, self.signer, "trades", filters, default_limit=config.v2_default_limit,
                            max_limit=config.v2_max_limit)
        wallet = self._wallet(user)
        if wallet == -1:
            return envelope([], page, None)
        if user is not None:
            floor = start
        elif markets is not None:
            floor = int(now) - THREE_YEARS
        else:
            floor = month_floor(now, config.v2_bare_feed_months)
        selection = TradeSelection(wallet=wallet, markets=markets,
                                   side=None if side_name is None else SIDE_NAMES.index(side_name),
                                   taker_only=taker_only, min_size=min_size, floor_ts=floor, end_ts=end)
        below = page.anchor[1] if page.anchor is not None else None
        rows, has_more = select_trades(world, selection, below_row=below, limit=page.limit, now=now)
        scoped = user is not None or markets is not None
        last = (world.columns.timestamp[rows[-1]], rows[-1]) if rows else None
        cursor = next_page_cursor(self.signer, "trades", filters, page, len(rows), last, has_more)
        return envelope([render_trade(world, row, real_context=scoped) for row in rows], page, cursor)

    def status(self, _params: Params) -> dict[str, Any]:
        now = self.world.sync()
        return status_payload(self.world, now)

    def ledger(self, wallet: int, now: float) -> Any:
        """The wallet's ledger, reused while nothing it depends on changed (same rows, same second)."""
        world = self.world
        resolved = sum(1 for state in world.market_states if state.resolved_at is not None)
        key = (len(world.by_wallet[wallet].all_rows), int(now), resolved)
        cached = self._ledgers.get(wallet)
        if cached is not None and cached[0] == key:
            return cached[1]
        ledger = build_ledger(world, wallet, now)
        if len(self._ledgers) > 256:
            self._ledgers.clear()
        self._ledgers[wallet] = (key, ledger)
        return ledger

    def _required_user(self, query: Query) -> str:
        user = query.address("user")
        if user is None:
            raise invalid("user is required", "user")
        return user

    def activity(self, params: Params) -> dict[str, Any]:
        world, config = self.world, self.config
        query = Query(params)
        now = world.sync()
        user = self._required_user(query)
        markets = self._markets_of(query)
        types = query.many("type")
        types = sorted({t.upper() for t in types}) if types else None
        direction = query.choice("sort_direction", ("ASC", "DESC"), default="DESC")
        start, end = query.integer("start"), query.integer("end")
        filters = canonical_filters({"user": user, "markets": markets, "types": types, "direction": direction,
                                     "start": start, "end": end})
        page = page_request(query, self.signer, "activity", filters, default_limit=config.v2_default_limit,
                            max_limit=config.v2_max_limit)
        wallet = self._wallet(user)
        if wallet is None or wallet == -1:
            return envelope([], page, None)
        movements = [
            m for m in self.ledger(wallet, now).movements
            if m.visible_at <= now
            and (types is None or m.type in types)
            and (markets is None or m.market in markets)
            and (start is None or m.timestamp >= start)
            and (end is None or m.timestamp <= end)
        ]
        ascending = direction == "ASC"
        if page.anchor is not None:
            # Seek past the anchor (movements are sorted oldest first by (timestamp, seq)).
            if ascending:
                movements = movements[bisect_right(movements, page.anchor, key=_movement_order):]
            else:
                movements = movements[:bisect_left(movements, page.anchor, key=_movement_order)]
        if not ascending:
            movements.reverse()
        chosen = movements[: page.limit]
        has_more = len(movements) > page.limit
        last = (chosen[-1].timestamp, chosen[-1].seq) if chosen else None
        cursor = next_page_cursor(self.signer, "activity", filters, page, len(chosen), last, has_more)
        return envelope([render_activity(world, wallet, m) for m in chosen], page, cursor)

    def positions(self, params: Params) -> dict[str, Any]:
        world, config = self.world, self.config
        query = Query(params)
        now = world.sync()
        user = self._required_user(query)
        markets = self._markets_of(query)
        statuses = query.many("status")
        if statuses is not None:
            statuses = sorted({s.upper() for s in statuses})
            unknown = [s for s in statuses if s not in POSITION_STATUSES]
            if unknown:
                raise invalid(f"invalid status: {unknown[0]!r} (one of {', '.join(POSITION_STATUSES)})", "status")
        filters = canonical_filters({"user": user, "markets": markets, "statuses": statuses})
        page = page_request(query, self.signer, "positions", filters, default_limit=config.v2_default_limit,
                            max_limit=config.v2_max_limit)
        wallet = self._wallet(user)
        if wallet is None or wallet == -1:
            return envelope([], page, None)
        holdings = self.ledger(wallet, now).holdings
        # Seek key: (market index, outcome) never changes for a position, whatever its figures do.
        keys = sorted(
            (market, outcome) for (market, outcome), held in holdings.items()
            if held.total_bought > 0
            and (markets is None or market in markets)
            and (statuses is None or position_status(world, market, outcome, held) in statuses)
        )
        if page.anchor is not None:
            keys = [key for key in keys if key > page.anchor]
        chosen = keys[: page.limit]
        cursor = next_page_cursor(self.signer, "positions", filters, page, len(chosen),
                                  chosen[-1] if chosen else None, len(keys) > page.limit)
        rows = [render_position(world, wallet, market, outcome, holdings[(market, outcome)], holdings, now)
                for market, outcome in chosen]
        return envelope(rows, page, cursor)

    def user_stats(self, params: Params) -> dict[str, Any]:
        """The profile card of one wallet (`user` required); `data: null` when it is not a user."""
        world = self.world
        query = Query(params)
        now = world.sync()
        wallet = self._wallet(self._required_user(query))
        if wallet is None or wallet == -1:
            return {"data": None}
        return {"data": render_user_stats(world, wallet, self.ledger(wallet, now), now)}

    def resolutions(self, params: Params) -> dict[str, Any]:
        world = self.world
        query = Query(params)
        world.sync()
        conditions = query.condition_ids("condition", self.config.v2_max_filter_ids,
                                         noun="resolution condition id")
        if conditions is None:
            raise invalid("condition is required", "condition")
        catalog = world.catalog
        with world.lock:
            rows = [render_resolution(world, catalog.market_by_condition[c])
                    for c in dict.fromkeys(conditions) if c in catalog.market_by_condition]
        return {"data": rows}


