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
import hashlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .chaos import Chaos, Fault
from .news import FEED_ITEM_LIMIT, is_not_modified, render_rss
from .scenarios import EmulatorConfig
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
        for row_id, kind in world.truth_rows(since=since, until=until):
            if kind == VALID:
                fills.append(world.render_truth_fill(row_id))
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
        for row_id, kind in world.truth_rows(since=since, until=until):
            if kind == VALID:
                line: dict[str, Any] = {"fill": world.render_truth_fill(row_id)}
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


def build_routes(api: EmulatorApi) -> dict[tuple[str, str], Route]:
    return {
        ("GET", "/"): Route(api.health, public=False),
        ("GET", "/trades"): Route(api.trades, public=True, rate_limit_keys=("data", "data:/trades")),
        ("GET", "/markets"): Route(api.markets, public=True, rate_limit_keys=("gamma", "gamma:/markets")),
        ("GET", "/markets/keyset"): Route(api.markets_keyset, public=True,
                                          rate_limit_keys=("gamma", "gamma:/markets")),
        ("GET", "/events"): Route(api.events, public=True, rate_limit_keys=("gamma", "gamma:/events")),
        ("GET", "/events/keyset"): Route(api.events_keyset, public=True, rate_limit_keys=("gamma", "gamma:/events")),
        ("GET", "/rss.xml"): Route(api.rss, public=True),
        ("GET", "/_truth/trades"): Route(api.truth_trades, public=False),
        ("GET", "/_truth/markets"): Route(api.truth_markets, public=False),
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
        super().__init__(address, EmulatorRequestHandler)


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
            self._send(json_response({"error": "method not allowed" if known_path else "not found"}, status))
            return
        if route.public:
            world = self.server.api.world
            fault = self.server.api.chaos.decide(scenarios=world.scenarios, rate_limit_keys=route.rate_limit_keys)
            if fault is not None and self._deliver_fault(fault):
                return
        try:
            response = route.handler(params, self.headers, *extra)
        except ApiError as error:
            response = json_response(error.payload, error.status)
        except Exception as error:  # a bug in the emulator must not look like an upstream quirk
            traceback.print_exc(file=sys.stderr)
            response = json_response({"error": f"emulator failure: {error!r}"}, 599)
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

    def _deliver_fault(self, fault: Fault) -> bool:
        """Apply a fault; True when it replaced the response."""
        if fault.delay_seconds:
            time.sleep(fault.delay_seconds)
        if fault.status is None:
            return False
        self._send(Response(status=fault.status, body=fault.body, content_type=fault.content_type,
                            headers=fault.headers))
        return True

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
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
