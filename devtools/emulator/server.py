"""HTTP face of the emulator: Data API, Gamma, the news RSS, ground truth and control, on one port.

Upstream behaviour reproduced on purpose (each was observed on the real API, see the package doc):
- /trades: newest first; ``limit`` silently clamped; ``offset`` past the cap is a 400 with
  ``{"error": "max historical activity offset of N exceeded"}``; ``start``/``end`` honoured only
  together with ``user``; ``takerOnly`` defaults to true; the unscoped feed blanks ``outcomeIndex``
  (999) and ``eventSlug`` ("").
- Gamma /markets and /events: closed markets hidden unless ``closed=true``; ``limit`` clamped;
  ``offset`` past the cap is a 422 pointing at /markets/keyset; deprecation headers.
- Gamma /markets/keyset and /events/keyset: ``{"markets"|"events": [...], "next_cursor": "..."}``,
  paged by ``after_cursor``; ``next_cursor`` absent on the last page; a ``cursor`` parameter is
  silently ignored, so a client that sends it gets page 1 forever.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .catalog import hex_digest
from .chaos import Chaos, Fault
from .news import FEED_ITEM_LIMIT, is_not_modified, render_rss
from .scenarios import EmulatorConfig
from .v2 import DataApiV2, V2Error, error_body, occurrences_of_second, render_activity
from .world import MALFORMED_KINDS, SIDE_NAMES, VALID, TradeQuery, World

Params = dict[str, list[str]]

_GAMMA_DEEP_OFFSET = "offset too large, use /markets/keyset for deeper pagination"
_LEGACY_LIST_HEADERS = {
    "Deprecation": "true",
    "Sunset": "Fri, 01 May 2026 00:00:00 GMT",
    "Warning": '299 - "use /markets/keyset"',
}
# Parameters that are not filters: a keyset cursor is bound to everything else in the query.
_KEYSET_NON_FILTERS = frozenset({"limit", "after_cursor", "cursor"})
_MARKET_ORDER_FIELDS = frozenset({"id", "volumeNum", "liquidityNum", "endDate", "startDate", "createdAt",
                                  "volume24hr"})


class ApiError(Exception):
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(payload)
        self.status = status
        self.payload = payload


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # When set, the body is streamed with chunked transfer encoding (large truth exports).
    stream: Iterator[bytes] | None = None


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status=status, body=body, headers=headers or {})


# --- query parameter parsing ----------------------------------------------------------------

def _last(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _many(params: Params, name: str) -> list[str] | None:
    """Repeated keys, ``name[]`` keys and comma lists all count; None when the parameter is absent."""
    raw = params.get(name, []) + params.get(f"{name}[]", [])
    if not raw:
        return None
    return [part.strip() for value in raw for part in value.split(",") if part.strip()]


def _int(params: Params, name: str, default: int | None, error: Callable[[str], ApiError]) -> int | None:
    value = _last(params, name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise error(f"invalid {name}: {value!r}") from None
    if number < 0:
        raise error(f"invalid {name}: must not be negative")
    return number


def _bool(params: Params, name: str) -> bool | None:
    value = _last(params, name)
    if value is None or value == "":
        return None
    return value.strip().lower() in ("true", "1", "yes")


def _data_error(message: str) -> ApiError:
    return ApiError(400, {"error": message})


def _gamma_error(message: str) -> ApiError:
    return ApiError(422, {"type": "validation error", "error": message})


# --- the API --------------------------------------------------------------------------------

class EmulatorApi:
    """Request handlers; each takes parsed parameters and returns a Response."""

    def __init__(self, world: World, chaos: Chaos) -> None:
        self.world = world
        self.chaos = chaos
        self.config: EmulatorConfig = world.config
        self.v2 = DataApiV2(world)

    # Data API ---------------------------------------------------------------------------------

    def trades(self, params: Params, _headers: Any) -> Response:
        config = self.config
        limit = _int(params, "limit", config.trades_default_limit, _data_error)
        offset = _int(params, "offset", 0, _data_error)
        assert limit is not None and offset is not None
        if offset > config.trades_offset_cap:
            raise _data_error(f"max historical {config.offset_cap_noun} offset of {config.trades_offset_cap} exceeded")
        limit = min(limit, config.trades_max_limit)
        user = _last(params, "user")
        user = user.strip().lower() if user else None
        markets = self._markets_for_trades(params)
        side_text = _last(params, "side")
        side = None
        if side_text:
            if side_text.upper() not in SIDE_NAMES:
                raise _data_error(f"invalid side: {side_text!r}")
            side = SIDE_NAMES.index(side_text.upper())
        filter_type = _last(params, "filterType")
        filter_amount_text = _last(params, "filterAmount")
        if (filter_type is None) != (filter_amount_text is None):
            raise _data_error("filterType and filterAmount must be provided together")
        filter_amount = None
        if filter_type is not None and filter_amount_text is not None:
            if filter_type not in ("CASH", "TOKENS"):
                raise _data_error(f"invalid filterType: {filter_type!r}")
            try:
                filter_amount = float(filter_amount_text)
            except ValueError:
                raise _data_error(f"invalid filterAmount: {filter_amount_text!r}") from None
        start = _int(params, "start", None, _data_error)
        end = _int(params, "end", None, _data_error)
        taker_only = _bool(params, "takerOnly")
        query = TradeQuery(
            limit=limit,
            offset=offset,
            taker_only=True if taker_only is None else taker_only,
            user=user,
            markets=markets,
            side=side,
            # Upstream ignores the time window unless the read is scoped to a user.
            start=start if user else None,
            end=end if user else None,
            filter_type=filter_type,
            filter_amount=filter_amount,
        )
        rows = self.world.select_trades(query)
        # Only the bare global feed blanks outcomeIndex/eventSlug; scoped reads carry real values
        # (the recorded filterType=CASH global read in the fixtures carries them too).
        real_context = user is not None or markets is not None or filter_amount is not None
        return json_response([self.world.render_trade(row, real_context=real_context) for row in rows])

    def _markets_for_trades(self, params: Params) -> tuple[int, ...] | None:
        condition_ids = _many(params, "market")
        event_ids = _many(params, "eventId")
        if condition_ids is None and event_ids is None:
            return None
        catalog = self.world.catalog
        chosen: set[int] = set()
        for condition_id in condition_ids or []:
            index = catalog.market_by_condition.get(condition_id.lower())
            if index is not None:
                chosen.add(index)
        wanted_events = set(event_ids or [])
        for event in catalog.events:
            if event.id in wanted_events:
                chosen.update(event.market_indexes)
        return tuple(sorted(chosen))

    def health(self, _params: Params, _headers: Any) -> Response:
        return json_response({"data": "OK"})

    # Gamma ------------------------------------------------------------------------------------

    def _filtered_market_indexes(self, params: Params) -> list[int]:
        """Markets matching Gamma's filters, in id order. Closed markets only with closed=true."""
        world = self.world
        catalog = world.catalog
        closed = _bool(params, "closed")
        want_closed = bool(closed)
        active = _bool(params, "active")
        archived = _bool(params, "archived")
        if active is False or archived is True:
            return []  # every emulated market is active and none is archived
        ids = set(_many(params, "id") or []) or None
        slugs = set(_many(params, "slug") or []) or None
        conditions = {c.lower() for c in _many(params, "condition_ids") or []} or None
        tokens = set(_many(params, "clob_token_ids") or []) or None
        chosen = []
        for market in catalog.markets:
            if (world.market_states[market.index].closed_at is not None) != want_closed:
                continue
            if ids is not None and market.id not in ids:
                continue
            if slugs is not None and market.slug not in slugs:
                continue
            if conditions is not None and market.condition_id not in conditions:
                continue
            if tokens is not None and not tokens.intersection(market.token_ids):
                continue
            chosen.append(market.index)
        chosen.sort(key=lambda i: int(catalog.markets[i].id))
        return chosen

    def _gamma_limit_offset(self, params: Params) -> tuple[int, int]:
        """Gamma's offset paging: deep offsets are refused (clients must use the keyset endpoints)."""
        limit = _int(params, "limit", self.config.gamma_default_limit, _gamma_error)
        offset = _int(params, "offset", 0, _gamma_error)
        assert limit is not None and offset is not None
        if offset > self.config.gamma_offset_cap:
            raise _gamma_error(_GAMMA_DEEP_OFFSET)
        return limit, offset

    def markets(self, params: Params, _headers: Any) -> Response:
        config = self.config
        limit, offset = self._gamma_limit_offset(params)
        now = self.world.sync()
        indexes = self._filtered_market_indexes(params)
        rendered = [self.world.render_market(i, now) for i in indexes]
        order = _last(params, "order")
        if order:
            if order not in _MARKET_ORDER_FIELDS:
                raise _gamma_error(f"invalid order field: {order!r}")
            ascending = _bool(params, "ascending")
            rendered.sort(key=lambda m: _sortable(m.get(order)), reverse=ascending is False)
        page = rendered[offset: offset + min(limit, config.gamma_max_limit)]
        return json_response(page, headers=dict(_LEGACY_LIST_HEADERS))

    def market_by_id(self, params: Params, _headers: Any, market_id: str) -> Response:
        now = self.world.sync()
        index = self.world.catalog.market_by_id.get(market_id)
        if index is None:
            raise ApiError(404, {"type": "not found error", "error": "id not found"})
        return json_response(self.world.render_market(index, now))

    def markets_keyset(self, params: Params, _headers: Any) -> Response:
        catalog = self.world.catalog
        self.world.sync()  # publish first: the filters below read market state
        return self._keyset_response(
            params, "markets", self._filtered_market_indexes(params), key=lambda i: int(catalog.markets[i].id),
            max_limit=self.config.gamma_max_limit, render=self.world.render_market,
        )

    def _filtered_event_indexes(self, params: Params) -> list[int]:
        world = self.world
        want_closed = bool(_bool(params, "closed"))
        ids = set(_many(params, "id") or []) or None
        slugs = set(_many(params, "slug") or []) or None
        chosen = [
            event.index for event in world.catalog.events
            if world.event_closed(event.index) == want_closed
            and (ids is None or event.id in ids)
            and (slugs is None or event.slug in slugs)
        ]
        chosen.sort(key=lambda i: int(world.catalog.events[i].id))
        return chosen

    def events(self, params: Params, _headers: Any) -> Response:
        config = self.config
        limit, offset = self._gamma_limit_offset(params)
        now = self.world.sync()
        indexes = self._filtered_event_indexes(params)
        page = indexes[offset: offset + min(limit, config.gamma_events_max_limit)]
        return json_response([self.world.render_event(i, now) for i in page], headers=dict(_LEGACY_LIST_HEADERS))

    def events_keyset(self, params: Params, _headers: Any) -> Response:
        catalog = self.world.catalog
        self.world.sync()  # publish first: the filters below read event state
        return self._keyset_response(
            params, "events", self._filtered_event_indexes(params), key=lambda i: int(catalog.events[i].id),
            max_limit=self.config.gamma_events_max_limit, render=self.world.render_event,
        )

    def _keyset_response(self, params: Params, name: str, indexes: list[int], *, key: Callable[[int], int],
                         max_limit: int, render: Callable[[int, float], dict[str, Any]]) -> Response:
        now = self.world.sync()
        page, next_cursor = self._keyset_page(params, indexes, key=key, max_limit=max_limit)
        payload: dict[str, Any] = {name: [render(i, now) for i in page]}
        if next_cursor is not None:
            payload["next_cursor"] = next_cursor
        return json_response(payload)

    def _keyset_page(self, params: Params, indexes: list[int], *, key: Callable[[int], int],
                     max_limit: int) -> tuple[list[int], str | None]:
        if "offset" in params:
            raise _gamma_error("offset is not supported on keyset endpoints, use after_cursor")
        limit = _int(params, "limit", self.config.gamma_default_limit, _gamma_error)
        assert limit is not None
        limit = max(1, min(limit, max_limit))
        fingerprint = _query_fingerprint(params)
        # "cursor" is deliberately not read: upstream ignores it and serves page 1 again.
        after = _last(params, "after_cursor")
        if after:
            after_key = _decode_cursor(after, fingerprint)
            indexes = [i for i in indexes if key(i) > after_key]
        page = indexes[:limit]
        has_more = len(indexes) > limit
        next_cursor = _encode_cursor(key(page[-1]), fingerprint) if page and has_more else None
        return page, next_cursor

    # News -------------------------------------------------------------------------------------

    def rss(self, _params: Params, headers: Any) -> Response:
        items = self.world.published_news(FEED_ITEM_LIMIT)
        document = render_rss(items, build_time=int(self.world.now()), self_url="/rss.xml")
        validators = {"ETag": document.etag, "Last-Modified": document.last_modified}
        if is_not_modified(document, if_none_match=headers.get("If-None-Match"),
                           if_modified_since=headers.get("If-Modified-Since")):
            return Response(status=304, headers=validators)
        return Response(body=document.body, content_type="application/rss+xml; charset=utf-8", headers=validators)

    # Ground truth -----------------------------------------------------------------------------

    def truth_trades(self, params: Params, _headers: Any) -> Response:
        world = self.world
        now = world.sync()
        since = _int(params, "since", None, _data_error)
        until = _int(params, "until", None, _data_error)
        until = int(now) if until is None else min(until, int(now))
        output = _last(params, "format") or "json"
        if output not in ("json", "jsonl"):
            raise _data_error("format must be json or jsonl")
        if output == "jsonl":
            return Response(content_type="application/x-ndjson", stream=self._truth_lines(since, until, now))
        fills, malformed = [], []
        duplicates = duplicate_takers = 0
        for row_id, kind, occurrence in self._truth_rows(since, until):
            if kind == VALID:
                fills.append(self._truth_fill(row_id, occurrence))
            elif kind in MALFORMED_KINDS:
                malformed.append({"defect": MALFORMED_KINDS[kind], "row": world.render_trade(row_id, real_context=True)})
            else:
                duplicates += 1
                duplicate_takers += world.columns.is_taker[row_id]
        return json_response({
            "virtual_now": now,
            "since": since,
            "until": until,
            "fill_count": len(fills),
            "fills": fills,
            "malformed": malformed,
            "duplicate_rows": duplicates,
            "duplicate_taker_rows": duplicate_takers,
        })

    def _truth_lines(self, since: int | None, until: int, now: float) -> Iterator[bytes]:
        world = self.world
        counts = {"fills": 0, "malformed": 0, "duplicate_rows": 0, "duplicate_taker_rows": 0}
        batch: list[bytes] = []
        for row_id, kind, occurrence in self._truth_rows(since, until):
            if kind == VALID:
                line: dict[str, Any] = {"fill": self._truth_fill(row_id, occurrence)}
                counts["fills"] += 1
            elif kind in MALFORMED_KINDS:
                line = {"malformed": {"defect": MALFORMED_KINDS[kind],
                                      "row": world.render_trade(row_id, real_context=True)}}
                counts["malformed"] += 1
            else:
                counts["duplicate_rows"] += 1
                counts["duplicate_taker_rows"] += world.columns.is_taker[row_id]
                continue
            batch.append(json.dumps(line, separators=(",", ":")).encode() + b"\n")
            if len(batch) >= 2000:
                yield b"".join(batch)
                batch = []
        summary = {"summary": {"virtual_now": now, "since": since, "until": until, **counts}}
        batch.append(json.dumps(summary).encode() + b"\n")
        yield b"".join(batch)

    def _truth_rows(self, since: int | None, until: int) -> Iterator[tuple[int, int, int]]:
        """(row id, kind, occurrence) oldest first; occurrence counts identical fills of one
        transaction in serving order (see v2.occurrences_of_second), 0 for every other fill."""
        world = self.world
        timestamps = world.columns.timestamp
        second_rows: list[tuple[int, int]] = []
        for row_id, kind in world.truth_rows(since=since, until=until):
            if second_rows and timestamps[second_rows[0][0]] != timestamps[row_id]:
                yield from self._with_occurrences(second_rows)
                second_rows = []
            second_rows.append((row_id, kind))
        yield from self._with_occurrences(second_rows)

    def _with_occurrences(self, rows: list[tuple[int, int]]) -> Iterator[tuple[int, int, int]]:
        occurrences = occurrences_of_second(self.world, [row_id for row_id, _kind in rows])
        for row_id, kind in rows:
            yield row_id, kind, occurrences.get(row_id, 0)

    def _truth_fill(self, row_id: int, occurrence: int) -> dict[str, Any]:
        """A fill in the v1 field names verify.py has always read, plus what v2 readers need:
        its occurrence, when v2 serves it, and whether v2 serves it at all (filter_amount floor)."""
        world = self.world
        fill = world.render_truth_fill(row_id)
        fill["occurrence"] = occurrence
        fill["visible_at"] = world.columns.visible_at[row_id]
        fill["v2_served"] = world.columns.size[row_id] >= self.config.v2_min_filter_amount
        return fill

    # Data API v2 ------------------------------------------------------------------------------

    def v2_trades(self, params: Params, _headers: Any) -> Response:
        return json_response(self.v2.trades(params))

    def v2_status(self, params: Params, _headers: Any) -> Response:
        return json_response(self.v2.status(params))

    def v2_activity(self, params: Params, _headers: Any) -> Response:
        return json_response(self.v2.activity(params))

    def v2_positions(self, params: Params, _headers: Any) -> Response:
        return json_response(self.v2.positions(params))

    def v2_resolutions(self, params: Params, _headers: Any) -> Response:
        return json_response(self.v2.resolutions(params))

    def v2_user_stats(self, params: Params, _headers: Any) -> Response:
        return json_response(self.v2.user_stats(params))

    def truth_activity(self, params: Params, _headers: Any) -> Response:
        """Every movement of one wallet up to now, visible on /v2/activity yet or not, oldest first."""
        address = (_last(params, "user") or "").strip().lower()
        wallet = self.world.catalog.wallet_by_address.get(address)
        if wallet is None:
            raise _data_error("give user=<a wallet of this world>")
        now = self.world.sync()
        movements = self.v2.ledger(wallet, now).movements
        rows = []
        for movement in movements:
            row = render_activity(self.world, wallet, movement)
            row["visible_at"] = movement.visible_at
            rows.append(row)
        return json_response({"virtual_now": now, "user": address, "movements": rows})

    def truth_markets(self, _params: Params, _headers: Any) -> Response:
        now = self.world.sync()
        return json_response([self.world.truth_market(i, now) for i in range(len(self.world.catalog.markets))])

    def truth_news(self, _params: Params, _headers: Any) -> Response:
        self.world.sync()
        catalog = self.world.catalog
        return json_response([
            {"guid": item.guid, "title": item.title, "link": item.link, "published_at": item.published_at,
             "kind": item.kind, "category": item.category,
             "conditionId": catalog.markets[item.market_index].condition_id}
            for item in list(self.world.news)
        ])

    # Control ----------------------------------------------------------------------------------

    def control_state(self, _params: Params, _headers: Any) -> Response:
        state = self.world.state()
        state["requests"] = self.chaos.request_count
        return json_response(state)

    def control_advance(self, params: Params, headers: Any) -> Response:
        target = _last(params, "to")
        seconds = _last(params, "seconds")
        try:
            if target is not None:
                self.world.clock.advance_to(float(target))
            elif seconds is not None:
                self.world.clock.advance(float(seconds))
            else:
                raise _data_error("give seconds=N or to=<unix>")
        except ValueError as error:
            raise _data_error(str(error)) from None
        return self.control_state(params, headers)

    def control_scenario(self, params: Params, headers: Any) -> Response:
        name = _last(params, "name")
        if not name:
            raise _data_error("give name=<scenario[,scenario...]>")
        try:
            self.world.set_scenario(name)
        except ValueError as error:
            raise _data_error(str(error)) from None
        return self.control_state(params, headers)


def _sortable(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        try:
            return (0, float(value))
        except ValueError:
            return (1, value)
    return (2, "")


def _query_fingerprint(params: Params) -> str:
    filters = sorted((k, tuple(v)) for k, v in params.items() if k not in _KEYSET_NON_FILTERS)
    return hashlib.blake2b(repr(filters).encode(), digest_size=6).hexdigest()


def _encode_cursor(after_key: int, fingerprint: str) -> str:
    raw = json.dumps({"k": after_key, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, fingerprint: str) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after_key = int(decoded["k"])
        bound_to = str(decoded["q"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _gamma_error("invalid after_cursor") from None
    if bound_to != fingerprint:
        # The cursor belongs to a query with other filters; every page must repeat them.
        raise _gamma_error("after_cursor does not match the query filters")
    return after_key


# --- HTTP plumbing --------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    handler: Callable[..., Response]
    # Public routes are the emulated upstream: chaos and rate limits apply to them only.
    public: bool
    rate_limit_keys: tuple[str, ...] = ()
    # Data API v2 routes answer errors and faults with v2 error bodies.
    v2: bool = False


def build_routes(api: EmulatorApi) -> dict[tuple[str, str], Route]:
    return {
        ("GET", "/"): Route(api.health, public=False),
        ("GET", "/trades"): Route(api.trades, public=True, rate_limit_keys=("data", "data:/trades")),
        ("GET", "/markets"): Route(api.markets, public=True, rate_limit_keys=("gamma", "gamma:/markets")),
        ("GET", "/markets/keyset"): Route(api.markets_keyset, public=True,
                                          rate_limit_keys=("gamma", "gamma:/markets")),
        ("GET", "/events"): Route(api.events, public=True, rate_limit_keys=("gamma", "gamma:/events")),
        ("GET", "/events/keyset"): Route(api.events_keyset, public=True, rate_limit_keys=("gamma", "gamma:/events")),
        ("GET", "/v2/trades"): Route(api.v2_trades, public=True, rate_limit_keys=("data", "data:/v2/trades"), v2=True),
        ("GET", "/v2/activity"): Route(api.v2_activity, public=True, rate_limit_keys=("data", "data:/v2/activity"),
                                       v2=True),
        ("GET", "/v2/positions"): Route(api.v2_positions, public=True,
                                        rate_limit_keys=("data", "data:/v2/positions"), v2=True),
        ("GET", "/v2/resolutions"): Route(api.v2_resolutions, public=True, rate_limit_keys=("data",), v2=True),
        ("GET", "/v2/user-stats"): Route(api.v2_user_stats, public=True, rate_limit_keys=("data",), v2=True),
        ("GET", "/v2/status"): Route(api.v2_status, public=True, rate_limit_keys=("data",), v2=True),
        ("GET", "/rss.xml"): Route(api.rss, public=True),
        ("GET", "/_truth/trades"): Route(api.truth_trades, public=False),
        ("GET", "/_truth/markets"): Route(api.truth_markets, public=False),
        ("GET", "/_truth/activity"): Route(api.truth_activity, public=False),
        ("GET", "/_truth/news"): Route(api.truth_news, public=False),
        ("GET", "/_control/state"): Route(api.control_state, public=False),
        ("POST", "/_control/advance"): Route(api.control_advance, public=False),
        ("POST", "/_control/scenario"): Route(api.control_scenario, public=False),
    }


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: EmulatorApi, *, verbose: bool = False) -> None:
        self.api = api
        self.routes = build_routes(api)
        self.verbose = verbose
        self._request_numbers = itertools.count(1)
        self._trace_lock = threading.Lock()
        super().__init__(address, EmulatorRequestHandler)

    def next_trace_id(self) -> str:
        """Every response's x-trace-id (and a v2 error's trace_id): unique, and the same for the
        same request sequence on every run."""
        with self._trace_lock:
            number = next(self._request_numbers)
        return hex_digest(self.api.config.seed, "trace", number, nbytes=16)


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients can keep connections alive (every response carries a length or chunks).
    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _dispatch(self, method: str) -> None:
        self.trace_id = self.server.next_trace_id()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # drain, so the kept-alive connection stays in sync
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        params = parse_qs(url.query, keep_blank_values=True)
        route, extra = self._resolve(method, path)
        if route is None:
            known_path = any(p == path for (_m, p) in self.server.routes)
            status = 405 if known_path else 404
            if path.startswith("/v2/"):
                message = f"method {method} not allowed on {path}" if known_path else f"no route {path}"
                self._send(json_response(error_body(status, message, self.trace_id), status))
                return
            self._send(json_response({"error": "method not allowed" if known_path else "not found"}, status))
            return
        fault = None
        if route.public:
            world = self.server.api.world
            fault = self.server.api.chaos.decide(scenarios=world.scenarios, rate_limit_keys=route.rate_limit_keys)
            if fault is not None and self._deliver_fault(fault, v2=route.v2):
                return
        try:
            response = route.handler(params, self.headers, *extra)
        except ApiError as error:
            response = json_response(error.payload, error.status)
        except V2Error as error:
            headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
            body = error_body(error.status, error.message, self.trace_id, parameter=error.parameter, code=error.code)
            response = json_response(body, error.status, headers)
        except Exception as error:  # a bug in the emulator must not look like an upstream quirk
            traceback.print_exc(file=sys.stderr)
            response = json_response({"error": f"emulator failure: {error!r}"}, 599)
        if fault is not None and fault.damages_response and response.stream is None:
            self._send_damaged(response, fault)
            return
        self._send(response)

    def _resolve(self, method: str, path: str) -> tuple[Route | None, tuple[str, ...]]:
        route = self.server.routes.get((method, path))
        if route is not None:
            return route, ()
        parts = path.split("/")
        if method == "GET" and len(parts) == 3 and parts[1] == "markets" and parts[2].isdigit():
            api = self.server.api
            return Route(api.market_by_id, public=True, rate_limit_keys=("gamma", "gamma:/markets")), (parts[2],)
        return None, ()

    def _deliver_fault(self, fault: Fault, *, v2: bool) -> bool:
        """Apply a fault; True when it replaced the response."""
        if fault.delay_seconds:
            time.sleep(fault.delay_seconds)
        if fault.status is None:
            return False
        body, content_type = fault.body, fault.content_type
        v2_messages = {"rate_limited": "rate limit exceeded, retry after the given delay",
                       "internal": "internal error", "unavailable": "upstream dependency unavailable",
                       "request_timeout": "the request timed out"}
        if v2 and fault.kind in v2_messages:
            code = {"unavailable": "dependency_unavailable", "request_timeout": "request_timeout"}.get(fault.kind)
            payload = error_body(fault.status, v2_messages[fault.kind], self.trace_id, code=code)
            body, content_type = json.dumps(payload, separators=(",", ":")).encode(), "application/json"
        self._send(Response(status=fault.status, body=body, content_type=content_type, headers=fault.headers))
        return True

    def _send_damaged(self, response: Response, fault: Fault) -> None:
        """A response cut short: "truncated" sends a shortened body with a matching Content-Length
        (a complete HTTP message holding broken JSON); "reset" promises the whole body, sends part
        of it and resets the connection (RST)."""
        cut = max(1, int(len(response.body) * fault.fraction))
        if fault.kind == "truncated":
            self._send(Response(status=response.status, body=response.body[:cut],
                                content_type=response.content_type, headers=response.headers))
            return
        self.send_response(response.status)
        self.send_header("x-trace-id", self.trace_id)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        try:
            self.wfile.write(response.body[:cut])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("x-trace-id", getattr(self, "trace_id", ""))
        for name, value in response.headers.items():
            self.send_header(name, value)
        # With speed > 1 virtual time runs ahead of the wall clock; lag must be measured against this.
        self.send_header("X-Emulator-Virtual-Now", f"{self.server.api.world.now():.3f}")
        if response.status == 304:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Type", response.content_type)
        if response.stream is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in response.stream:
                if chunk:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)


class EmulatorServer:
    """A running emulator (serving from a background thread). Use as a context manager or shutdown()."""

    def __init__(self, httpd: EmulatorHTTPServer) -> None:
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="polymarket-emulator", daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def world(self) -> World:
        return self._httpd.api.world

    @property
    def config(self) -> EmulatorConfig:
        return self._httpd.api.config

    def advance(self, seconds: float) -> float:
        """Move the virtual clock (either kind) and publish what happened meanwhile."""
        return self.world.advance(seconds)

    def wait(self) -> None:
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
