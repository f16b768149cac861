"""The emulator's Data API v2 answers in the recorded shapes, walks stably, and tells the truth.

Real HTTP against ``serve()``; the rows it serves are parsed with the project's own v2 parsers.
No service is needed except by the last test (verify_upstream's multiset comparison, on the database).
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.emulator import EmulatorServer, serve
from devtools.emulator.v2 import TradeSelection, month_floor, render_trade, select_trades
from devtools.emulator.world import BUY, SELL
from ingest.sources.data_api.parsing import (
    OccurrenceCounter,
    parse_activity_v2,
    parse_page,
    parse_position_v2,
    parse_resolution_v2,
    parse_trade_v2,
    parse_upstream_error,
    parse_upstream_status,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/polymarket/v2"
V2_SHARE = 0.3


def recorded(name: str) -> Any:
    path = FIXTURES / name
    assert path.exists(), f"recorded fixture {path} missing: check out ../shared/fixtures beside the project"
    return json.loads(path.read_text())


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively; ints and floats are both numbers (the API mixes them)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = [shape(item) for item in value]
        assert all(s == shapes[0] for s in shapes), f"a list mixing shapes: {shapes}"
        return [shapes[0]] if shapes else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def get(server: EmulatorServer, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{server.url}{path}", params=params, timeout=10)


def ok(server: EmulatorServer, path: str, **params: Any) -> dict[str, Any]:
    response = get(server, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


def walk(server: EmulatorServer, path: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every row of a cursor walk, filters re-sent with each cursor."""
    page = ok(server, path, **params)
    yield from page["data"]
    params.pop("limit", None)
    while page["pagination"]["next_cursor"]:
        page = ok(server, path, cursor=page["pagination"]["next_cursor"], **params)
        yield from page["data"]


def truth_markets(server: EmulatorServer) -> list[dict[str, Any]]:
    return ok(server, "/_truth/markets")


def row_key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True)


@pytest.fixture(autouse=True)
def _isolated_app_redis() -> None:
    """Overrides the suite-wide Redis flush: the emulator needs no service, so its tests use none."""


@pytest.fixture(scope="module")
def world() -> Iterator[EmulatorServer]:
    with serve(seed=11, scenario="demo_v2", clock="manual", market_count=150, history_seconds=3600,
               protocol_v2_market_share=V2_SHARE) as server:
        server.advance(30)
        yield server


def first_market(server: EmulatorServer, *, version: str, state: str) -> dict[str, Any]:
    for market in truth_markets(server):
        truth = market["_truth"]
        resolved = truth["resolved_at"] is not None
        open_ = truth["closed_at"] is None
        if market["version"] == version and {"resolved": resolved, "active": open_}[state]:
            return market
    raise AssertionError(f"no {state} {version} market in this world")


# --- recorded shapes -------------------------------------------------------------------------------

# Every recorded file is either served back by a test below or named here with the reason.
SHAPES_TESTED = {
    "polymarket-bot-v2/data-v2-trades-v1-page1.json", "polymarket-bot-v2/data-v2-trades-v1-page2.json",
    "polymarket-bot-v2/data-v2-trades-v2-empty.json", "polymarket-bot-v2/data-v2-resolutions-v2-resolved.json",
    "polymarket-bot-v2/data-v2-resolutions-v2-active.json", "polymarket-bot-v2/data-v2-resolutions-v1-resolved.json",
    "polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json", "polymarket-bot-v2/gamma-market-v1-btc15m.json",
    "py-sdk/trades.json", "py-sdk/activity.json", "py-sdk/positions.json", "py-sdk/user-stats.json",
    "doc-examples/docs-public-analytics__v2-trades-example.json",
    "doc-examples/docs-overview__v2-positions-example.json",
    "doc-examples/polymarket-bot-v2__gamma-market-v2-docs-example.json",
}
NOT_SERVED = {
    # Routes no Arbitra source reads (open interest, price history, CLOB market, user PnL series,
    # holders, portfolio value), and the question-keyed UMA view of resolutions.
    "polymarket-bot-v2/data-v2-oi-v2.json", "polymarket-bot-v2/data-v2-prices-history-page1.json",
    "polymarket-bot-v2/data-v2-prices-history-page2.json", "polymarket-bot-v2/clob-markets-v2.json",
    "py-sdk/user-pnl.json", "py-sdk/holders.json", "py-sdk/value.json",
    "py-sdk/resolutions.json",
}


def test_every_recorded_file_is_either_served_back_or_named_as_not_served() -> None:
    files = {str(path.relative_to(FIXTURES)) for path in FIXTURES.rglob("*.json")}
    assert files == SHAPES_TESTED | NOT_SERVED

def test_a_condition_page_and_its_next_page_have_the_recorded_shape_and_parse(world: EmulatorServer) -> None:
    market = first_market(world, version="v1", state="active")
    first = ok(world, "/v2/trades", condition=market["conditionId"], limit=2)
    assert shape(first) == shape(recorded("polymarket-bot-v2/data-v2-trades-v1-page1.json"))
    second = ok(world, "/v2/trades", condition=market["conditionId"], cursor=first["pagination"]["next_cursor"])
    assert shape(second) == shape(recorded("polymarket-bot-v2/data-v2-trades-v1-page2.json"))
    assert second["pagination"]["offset"] == 2 and second["pagination"]["limit"] == 2
    for page in (first, second):
        rows, pagination = parse_page(page)
        assert pagination.has_more
        for row in rows:
            assert parse_trade_v2(row).condition_id == market["conditionId"]


def test_the_cursor_has_the_recorded_format(world: EmulatorServer) -> None:
    cursor = ok(world, "/v2/trades", limit=2)["pagination"]["next_cursor"]
    ours = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    theirs_text = recorded("polymarket-bot-v2/data-v2-trades-v1-page1.json")["pagination"]["next_cursor"]
    theirs = json.loads(base64.urlsafe_b64decode(theirs_text + "=" * (-len(theirs_text) % 4)))
    assert shape(ours) == shape(theirs)
    assert ours["data"]["type"] == "trades" and re.fullmatch(r"[0-9a-f]{32}", ours["sig"])


def test_an_empty_page_has_the_recorded_shape(world: EmulatorServer) -> None:
    unknown = "0x" + "ab" * 31 + "00"
    page = ok(world, "/v2/trades", condition=unknown, limit=3)
    assert page == recorded("polymarket-bot-v2/data-v2-trades-v2-empty.json")


def test_bare_feed_rows_have_the_py_sdk_shape_and_blank_outcome_index_and_event_slug(world: EmulatorServer) -> None:
    # The demo world also serves malformed rows on purpose (a missing wallet, price "abc"): not these.
    rows = [row for row in ok(world, "/v2/trades", limit=100)["data"]
            if len(row) == 19 and isinstance(row["price"], int | float)]
    sample = recorded("py-sdk/trades.json")
    assert all(shape(row) == shape(sample[0]) for row in rows)
    assert list(rows[0]) == list(sample[0])  # the 19 keys, in the recorded order
    assert {row["outcome_index"] for row in rows} == {999} and {row["event_slug"] for row in rows} == {""}
    for row in rows:
        parse_trade_v2(row)


def test_doc_examples_are_subsets_of_what_the_emulator_serves(world: EmulatorServer) -> None:
    trades = ok(world, "/v2/trades", limit=1)
    example = recorded("doc-examples/docs-public-analytics__v2-trades-example.json")
    assert shape(trades)["pagination"] == shape(example)["pagination"]
    served = shape(trades["data"][0])
    assert {key: served[key] for key in example["data"][0]} == shape(example["data"][0])

    wallet = busiest_wallet(world)
    positions = ok(world, "/v2/positions", user=wallet, limit=1)
    example = recorded("doc-examples/docs-overview__v2-positions-example.json")
    assert shape(positions)["pagination"] == shape(example)["pagination"]
    served = shape(positions["data"][0])
    assert {key: served[key] for key in example["data"][0]} == shape(example["data"][0])


def busiest_wallet(server: EmulatorServer) -> str:
    world = server.world
    index = max(range(len(world.catalog.wallets)), key=lambda i: len(world.by_wallet[i].all_rows))
    return world.catalog.wallets[index].address


def test_activity_and_position_rows_have_the_py_sdk_shapes_and_parse(world: EmulatorServer) -> None:
    wallet = busiest_wallet(world)
    activity = list(walk(world, "/v2/activity", user=wallet, limit=500))
    trade_sample = recorded("py-sdk/activity.json")[0]
    trades = [row for row in activity if row["type"] == "TRADE"]
    assert trades and all(shape(row) == shape(trade_sample) for row in trades)
    assert all(set(row) == set(trade_sample) for row in activity)
    counter = OccurrenceCounter()
    for row in activity:
        parsed = counter.number(parse_activity_v2(row))
        if row["type"] == "TRADE":
            assert parsed.fill is not None and parsed.fill.usdc_size == Decimal(str(row["usdc_size"]))
    positions = list(walk(world, "/v2/positions", user=wallet, limit=7))
    position_sample = recorded("py-sdk/positions.json")[0]
    assert positions and all(shape(row) == shape(position_sample) for row in positions)
    assert all(list(row) == list(position_sample) for row in positions)
    for row in positions:
        parse_position_v2(row)


def test_user_stats_have_the_recorded_shape_and_add_up_to_the_wallets_positions_and_income(
    world: EmulatorServer,
) -> None:
    wallet = busiest_wallet(world)
    stats = ok(world, "/v2/user-stats", user=wallet)["data"]
    sample = recorded("py-sdk/user-stats.json")
    assert shape(stats) == shape(sample)
    assert list(stats) == list(sample) and list(stats["all_time_pnl"]) == list(sample["all_time_pnl"])
    pnl = stats["all_time_pnl"]
    positions = list(walk(world, "/v2/positions", user=wallet, limit=500))
    # After fees: every fee charged is either paid by the realised PnL or still attached to shares
    # held (entry_fees_usdc, which the unrealised PnL pays).
    attached = sum(p["entry_fees_usdc"] for p in positions)
    assert pnl["fees"] < 0, "the busiest wallet paid taker fees: the basis is exercised"
    assert pnl["realized_market_pnl"] == pytest.approx(
        sum(p["realized_pnl"] for p in positions) + pnl["fees"] + attached, abs=1e-4)
    assert pnl["unrealized_pnl"] == pytest.approx(sum(p["unrealized_pnl"] for p in positions) - attached, abs=1e-4)
    served = Counter()
    for row in walk(world, "/v2/activity", user=wallet, limit=500):
        served[row["type"]] += Decimal(str(row["usdc_size"]))
    # The activity feed serves a movement minutes after it happened; the card counts it at once.
    assert pnl["maker_rebate"] >= float(served["MAKER_REBATE"]) and pnl["reward_income"] >= float(served["REWARD"])
    assert stats["trades"] == len({p["condition_id"] for p in positions})
    # The compositions hold as on the recorded sample (which satisfies them too).
    for card in (pnl, sample["all_time_pnl"]):
        assert card["realized_pnl"] == pytest.approx(card["realized_market_pnl"] + card["realized_lp_pnl"]
                                                     + card["realized_combo_pnl"], abs=1e-5)
        assert card["wallet_income"] == pytest.approx(card["maker_rebate"] + card["taker_rebate"] + card["reward_income"]
                                                      + card["yield_income"] + card["referral_income"], abs=1e-5)
        assert card["position_pnl"] == pytest.approx(card["realized_pnl"] + card["unrealized_pnl"], abs=1e-5)
        assert card["settled_pnl"] == pytest.approx(card["realized_pnl"] + card["wallet_income"], abs=1e-5)
        assert card["economic_pnl"] == pytest.approx(card["settled_pnl"] + card["unrealized_pnl"], abs=1e-5)
        assert card["trade_pnl"] == pytest.approx(card["position_pnl"] - card["fees_paid"], abs=1e-5)
    assert pnl["fees_paid"] == pnl["fees"] <= 0, "no refunds here: fees paid are the charges"
    assert ok(world, "/v2/user-stats", user="0x" + "0" * 40) == {"data": None}
    assert get(world, "/v2/user-stats").status_code == 400


@pytest.mark.parametrize(("fixture", "version", "state"), [
    ("data-v2-resolutions-v2-resolved.json", "v2", "resolved"),
    ("data-v2-resolutions-v2-active.json", "v2", "active"),
    ("data-v2-resolutions-v1-resolved.json", "v1", "resolved"),
])
def test_resolution_rows_have_the_recorded_shape_per_protocol_and_state(
    world: EmulatorServer, fixture: str, version: str, state: str
) -> None:
    market = first_market(world, version=version, state=state)
    body = ok(world, "/v2/resolutions", condition=market["conditionId"])
    assert shape(body) == shape(recorded(f"polymarket-bot-v2/{fixture}"))
    parsed = parse_resolution_v2(body["data"][0])
    assert parsed.condition_id == market["conditionId"]


def test_an_invalid_condition_is_the_recorded_400_and_every_error_carries_its_trace_id(world: EmulatorServer) -> None:
    sixty_two = "0x" + "01" * 31
    response = get(world, "/v2/resolutions", condition=sixty_two)
    assert response.status_code == 400
    expected = recorded("polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json")
    assert shape(response.json()) == shape(expected) and list(response.json()) == list(expected)
    assert response.json()["error"] == f"invalid resolution condition id: {sixty_two}"
    assert response.json()["trace_id"] == response.headers["x-trace-id"]
    assert parse_upstream_error(response.json()).parameter == "condition"


def test_gamma_serves_protocol_v2_markets_beside_v1_ones_and_their_trades_use_position_ids(
    world: EmulatorServer,
) -> None:
    markets = [market for market in truth_markets(world) if market["_truth"]["closed_at"] is None]
    by_version = Counter(market["version"] for market in markets)
    assert by_version["v1"] and by_version["v2"]
    example = recorded("doc-examples/polymarket-bot-v2__gamma-market-v2-docs-example.json")
    v1_record = recorded("polymarket-bot-v2/gamma-market-v1-btc15m.json")
    for market in markets:
        served = shape(market)
        if market["version"] == "v2":
            assert {key: served[key] for key in example} == shape(example)
            assert market["clobTokenIds"] is None
            assert all(re.fullmatch(r"\d{75,78}", p) for p in market["positionIds"])
            assert re.fullmatch(r"0x[0-9a-f]{62}00", market["conditionId"])
        else:
            assert "positionIds" not in market and len(json.loads(market["clobTokenIds"])) == 2
        # Every field the emulator shares with the recorded Gamma market has the recorded type.
        # (feeType is null on a fee-free market, like Gamma's.)
        common = set(served) & set(v1_record) - {"clobTokenIds", "feeType"}
        assert {key: served[key] for key in common} == {key: shape(v1_record)[key] for key in common}
    v2_market = next(market for market in markets if market["version"] == "v2" and market["volume24hr"] > 0)
    rows = ok(world, "/v2/trades", condition=v2_market["conditionId"], taker_only="false", limit=20)["data"]
    assert rows and {row["token_id"] for row in rows} <= set(v2_market["positionIds"])


# --- walking -----------------------------------------------------------------------------------------

def test_a_cursor_walk_skips_and_repeats_nothing_while_rows_arrive_and_late_ones_surface() -> None:
    with serve(seed=5, scenario="steady,late_rows,identical_fills", clock="manual", history_seconds=900,
               late_row_rate=0.3, identical_fill_rate=0.5) as server:
        world = server.world
        selection = TradeSelection(wallet=None, markets=None, side=None, taker_only=False, min_size=0.01,
                                   floor_ts=None, end_ts=None)
        started_at = world.now()
        visible_at_start, _ = select_trades(world, selection, below_row=None, limit=10**9, now=started_at)
        expected = Counter(row_key(render_trade(world, row, real_context=False)) for row in visible_at_start)

        walked: Counter[str] = Counter()
        page = ok(server, "/v2/trades", taker_only="false", limit=250)
        pages = 1
        while True:
            walked.update(row_key(row) for row in page["data"])
            if not page["pagination"]["next_cursor"]:
                break
            server.advance(7)  # new rows at the head, late ones surfacing below the anchor
            page = ok(server, "/v2/trades", taker_only="false", cursor=page["pagination"]["next_cursor"])
            pages += 1
        everything, _ = select_trades(world, selection, below_row=None, limit=10**9, now=world.now())
        visible_at_end = Counter(row_key(render_trade(world, row, real_context=False)) for row in everything)
        assert pages > 10
        assert not expected - walked, "rows visible when the walk began were skipped"
        assert not walked - visible_at_end, "rows were served more often than they exist"
        surfaced = walked - expected
        assert surfaced, "late rows that surfaced below the anchor during the walk belong to it"
        assert max(expected.values()) == 2  # identical fills of one transaction, counted twice


def test_filters_must_be_resent_unchanged_and_a_tampered_cursor_is_refused(world: EmulatorServer) -> None:
    first = ok(world, "/v2/trades", taker_only="false", limit=5)
    cursor = first["pagination"]["next_cursor"]
    assert get(world, "/v2/trades", taker_only="false", cursor=cursor).status_code == 200
    # The same filter spelt another way is the same filter.
    assert get(world, "/v2/trades", takerOnly="0", cursor=cursor).status_code == 200
    expected = shape(recorded("polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json"))
    token = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    token["data"]["params"]["sq"] = str(int(token["data"]["params"]["sq"]) + 1000)
    tampered = base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
    for params in ({"cursor": cursor}, {"cursor": cursor, "taker_only": "false", "side": "BUY"},
                   {"cursor": tampered, "taker_only": "false"}, {"cursor": "not-a-cursor"}):
        response = get(world, "/v2/trades", **params)
        assert response.status_code == 400, params
        assert shape(response.json()) == expected and response.json()["parameter"] == "cursor"


def test_offset_is_refused_with_the_recorded_400_body(world: EmulatorServer) -> None:
    response = get(world, "/v2/trades", offset=0)
    assert response.status_code == 400
    assert shape(response.json()) == shape(recorded("polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json"))
    assert response.json()["code"] == "invalid_request" and response.json()["parameter"] == "offset"
    assert response.json()["retryable"] is False


def test_limit_is_read_on_the_first_page_only_and_capped_at_a_thousand(world: EmulatorServer) -> None:
    assert get(world, "/v2/trades", limit=1001).json()["parameter"] == "limit"
    assert len(ok(world, "/v2/trades", limit=1000, taker_only="false")["data"]) == 1000
    first = ok(world, "/v2/trades", limit=3)
    second = ok(world, "/v2/trades", limit=900, cursor=first["pagination"]["next_cursor"])
    assert len(second["data"]) == 3 and second["pagination"]["limit"] == 3
    assert get(world, "/v2/trades", limit=0).status_code == 400


def test_at_most_twenty_condition_ids_per_request(world: EmulatorServer) -> None:
    ids = [market["conditionId"] for market in truth_markets(world)][:21]
    for path in ("/v2/trades", "/v2/resolutions"):
        assert get(world, path, condition=",".join(ids[:20])).status_code == 200
        refused = get(world, path, condition=",".join(ids))
        assert refused.status_code == 400 and refused.json()["parameter"] == "condition"


def test_the_bare_feed_serves_whole_calendar_months_and_scoped_reads_go_further() -> None:
    assert month_floor(datetime(2026, 3, 14, tzinfo=UTC).timestamp(), 2) == datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    assert month_floor(datetime(2026, 1, 5, tzinfo=UTC).timestamp(), 2) == datetime(2025, 12, 1, tzinfo=UTC).timestamp()
    march = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    for months, february_in_bare_feed in ((2, True), (1, False)):
        with serve(seed=3, scenario="steady", clock="manual", start=march + 60, history_seconds=240,
                   v2_bare_feed_months=months) as server:
            bare = list(walk(server, "/v2/trades", limit=1000))
            assert any(row["timestamp"] >= march for row in bare)
            assert any(row["timestamp"] < march for row in bare) == february_in_bare_feed
            market = max(truth_markets(server), key=lambda m: m["volume24hr"])
            scoped = list(walk(server, "/v2/trades", condition=market["conditionId"], limit=1000))
            assert any(row["timestamp"] < march for row in scoped)
            wallet = busiest_wallet(server)
            history = list(walk(server, "/v2/trades", user=wallet, start=1, limit=1000))
            assert any(row["timestamp"] < march for row in history)
            window = list(walk(server, "/v2/trades", user=wallet, start=march, end=march + 30, limit=1000))
            assert window and all(march <= row["timestamp"] <= march + 30 for row in window)
            # start/end mean nothing without a user
            assert len(list(walk(server, "/v2/trades", start=march, end=march + 1, limit=1000))) == len(bare)


def test_taker_only_is_the_default_and_maker_rows_need_taker_only_false(world: EmulatorServer) -> None:
    truth = ok(world, "/_truth/trades")["fills"]
    is_taker = {(f["transactionHash"], f["proxyWallet"], f["asset"], f["size"], f["price"]): f["is_taker"]
                for f in truth}

    def takers(rows: list[dict[str, Any]]) -> set[bool]:
        return {is_taker[(r["transaction_hash"], r["proxy_wallet"], r["token_id"], r["size"], r["price"])]
                for r in rows if "proxy_wallet" in r and isinstance(r["price"], int | float)}

    assert takers(ok(world, "/v2/trades", limit=500)["data"]) == {True}
    assert takers(ok(world, "/v2/trades", limit=500, taker_only="false")["data"]) == {True, False}


def test_fills_under_a_hundredth_of_a_share_are_never_served(world: EmulatorServer) -> None:
    rows = list(walk(world, "/v2/trades", taker_only="false", limit=1000, filter_amount=0))
    sizes = [row["size"] for row in rows if isinstance(row.get("price"), int | float)]
    assert min(sizes) >= 0.01
    big = ok(world, "/v2/trades", taker_only="false", limit=1000, filter_amount=100)["data"]
    assert big and all(row["size"] >= 100 for row in big)


def test_identical_fills_of_one_transaction_are_served_twice_and_numbered_like_the_truth() -> None:
    with serve(seed=9, scenario="steady,identical_fills", clock="manual", history_seconds=300,
               identical_fill_rate=1.0) as server:
        server.advance(10)
        rows = list(walk(server, "/v2/trades", taker_only="false", limit=1000))
        counts = Counter(row_key(row) for row in rows)
        assert sum(1 for count in counts.values() if count == 2) > 100
        counter = OccurrenceCounter()
        served_keys = Counter(counter.number(parse_trade_v2(row)).idempotency_key for row in rows)
        assert max(served_keys.values()) == 1  # the occurrence tells the twins apart

        from ingest.verify import _truth_key  # the key verify_upstream compares by

        truth = ok(server, "/_truth/trades")["fills"]
        now = server.world.now()
        truth_keys = Counter(_truth_key(fill, occurrence=fill["occurrence"]) for fill in truth
                             if fill["v2_served"] and fill["visible_at"] <= now)
        assert Counter(fill["occurrence"] for fill in truth)[1] > 100
        assert served_keys == truth_keys


# --- activity, positions, resolutions ------------------------------------------------------------------

def test_activity_walks_forward_from_a_start_and_covers_every_movement_type() -> None:
    with serve(seed=4, scenario="steady,resolutions", clock="manual", history_seconds=3 * 3600,
               market_count=40, wallet_count=60, rate_multiplier=0.3, protocol_v2_market_share=V2_SHARE) as server:
        server.advance(3 * 3600)
        types: Counter[str] = Counter()
        rewalked = 0
        for wallet in server.world.catalog.wallets:
            everything = list(walk(server, "/v2/activity", user=wallet.address, sort_direction="ASC", start=1,
                                   limit=100))
            types.update(row["type"] for row in everything)
            stamps = [row["timestamp"] for row in everything]
            assert stamps == sorted(stamps)
            if len(everything) > 20 and rewalked < 5:
                rewalked += 1
                middle = everything[len(everything) // 2]["timestamp"]
                later = list(walk(server, "/v2/activity", user=wallet.address, sort_direction="ASC",
                                  start=middle, limit=70))
                assert later == [row for row in everything if row["timestamp"] >= middle]
                newest_first = list(walk(server, "/v2/activity", user=wallet.address, limit=1000))
                assert newest_first == list(reversed(everything))
        for kind in ("TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION", "MAKER_REBATE"):
            assert types[kind], f"no {kind} in {types}"
        assert set(types) - {"TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION", "MAKER_REBATE"}, \
            "a type not documented today should appear now and then"


def test_positions_add_up_to_the_wallets_own_movements_and_follow_resolution() -> None:
    with serve(seed=4, scenario="steady,resolutions", clock="manual", history_seconds=3 * 3600,
               market_count=40, wallet_count=60, rate_multiplier=0.3, protocol_v2_market_share=V2_SHARE) as server:
        server.advance(3 * 3600)
        statuses: Counter[str] = Counter()
        resolved = {m["conditionId"]: m["_truth"] for m in truth_markets(server) if m["_truth"]["resolved_at"]}
        for wallet in server.world.catalog.wallets[:30]:
            net: Counter[tuple[str, str]] = Counter()
            for row in walk(server, "/v2/activity", user=wallet.address, type="TRADE", limit=1000):
                signed = Decimal(str(row["size"])) * (1 if row["side"] == "BUY" else -1)
                net[(row["condition_id"], row["token_id"])] += signed
            for position in walk(server, "/v2/positions", user=wallet.address, limit=50):
                statuses[position["status"]] += 1
                key = (position["condition_id"], position["token_id"])
                assert Decimal(str(position["total_size"])) >= net[key]
                assert position["status"] in ("OPEN", "CLOSED", "REDEEMABLE", "REDEEMABLE_LOST")
                assert (position["current_size"] == 0) == (position["status"] == "CLOSED")
                if position["status"].startswith("REDEEMABLE"):
                    truth = resolved[position["condition_id"]]
                    paid = truth["settlement_prices"][position["outcome_index"]]
                    assert (paid > 0) == (position["status"] == "REDEEMABLE")
                    assert position["current_price"] == paid
                total = Decimal(str(position["realized_pnl"])) + Decimal(str(position["unrealized_pnl"]))
                assert abs(total - Decimal(str(position["total_pnl"]))) <= Decimal("0.000002")
        assert statuses["OPEN"] and statuses["CLOSED"] and statuses["REDEEMABLE"] and statuses["REDEEMABLE_LOST"]


def test_a_wallets_past_movements_never_change_as_its_markets_close_and_resolve() -> None:
    with serve(seed=4, scenario="steady,resolutions", clock="manual", history_seconds=3600, market_count=40,
               wallet_count=60, rate_multiplier=0.3, protocol_v2_market_share=V2_SHARE) as server:
        wallets = [w.address for w in server.world.catalog.wallets[:25]]
        before = {w: ok(server, "/_truth/activity", user=w)["movements"] for w in wallets}
        settled_until = server.world.now()
        server.advance(3 * 3600)
        closed = [m for m in truth_markets(server) if m["_truth"]["resolved_at"]]
        assert closed
        types = Counter()
        for wallet in wallets:
            after = ok(server, "/_truth/activity", user=wallet)["movements"]
            types.update(row["type"] for row in after)
            assert [row for row in after if row["timestamp"] <= settled_until] == before[wallet]
            served = list(walk(server, "/v2/activity", user=wallet, sort_direction="ASC", limit=200))
            assert served == [{k: v for k, v in row.items() if k != "visible_at"} for row in after
                              if row["visible_at"] <= server.world.now()]
        assert types["CONVERSION"] and types["REDEEM"]


def test_positions_of_a_hand_computed_wallet() -> None:
    """One wallet, four fills written into the world, positions worked out by hand.

    Market with fees (rate 0.07, exponent 1: fee per share = 0.07 * p * (1 - p), takers only).
      t+0 taker BUY 100 Yes @ 0.40   fee 1.68     Yes: 100 sh, cost 40, fees 1.68
      t+1 maker BUY  50 Yes @ 0.70   no fee       Yes: 150 sh, cost 75 (avg 0.5), fees 1.68
      t+2 taker SELL 60 Yes @ 0.80   fee 0.672    realized 60 * (0.8 - 0.5) = 18; Yes: 90 sh, cost 45,
                                                   fees 1.68 * 90/150 = 1.008
      t+3 taker SELL 20 No @ 0.30 holding no No: a SPLIT of 20 first, every outcome bought at 0.50
                                                   (Polymarket's pnl-subgraph rule), then the sale realizes
                                                   20 * (0.30 - 0.50) = -4; Yes: 110 sh, cost 45 + 10 = 55
    Then the market resolves at payout P for Yes: 110 * P is worth, 110 * (P - 55/110) is realized on
    redemption, realized in all 18 + 110 * P - 55.
    """
    with serve(seed=21, scenario="steady", clock="manual", history_seconds=60, redeem_winner_rate=1.0,
               redeem_loser_rate=1.0) as server:
        world = server.world
        market = next(m for m in world.catalog.markets
                      if m.fee_schedule is not None and world.market_states[m.index].closed_at is None)
        # An insider never trades outside the "resolutions" scenario: this wallet has only our fills.
        wallet = world.catalog.insider_indexes[0]
        assert not world.by_wallet[wallet].all_rows
        second = world.generated_until
        fills = [(0, BUY, 100.0, 0.4, True), (0, BUY, 50.0, 0.7, False), (0, SELL, 60.0, 0.8, True),
                 (1, SELL, 20.0, 0.3, True)]
        with world.lock:
            for number, (outcome, side, size, price, is_taker) in enumerate(fills):
                row = world._append(second, 900_000 + number, market.index, outcome, wallet, side, size, price, is_taker)
                world.columns.visible_at[row] = second
        server.advance(1)
        address = world.catalog.wallets[wallet].address
        activity = list(walk(server, "/v2/activity", user=address, sort_direction="ASC", limit=100))
        trades = [(row["type"], row["side"], row["size"], row["usdc_size"]) for row in activity
                  if row["type"] in ("TRADE", "SPLIT")]
        assert trades == [("TRADE", "BUY", 100, 41.68), ("TRADE", "BUY", 50, 35), ("TRADE", "SELL", 60, 47.328),
                          ("SPLIT", "", 20.0, 20.0), ("TRADE", "SELL", 20, 5.706)]
        positions = {row["outcome_index"]: row for row in walk(server, "/v2/positions", user=address)}
        yes, no = positions[0], positions[1]
        price_now = float(json.loads(ok(server, f"/markets/{market.id}")["outcomePrices"])[0])
        assert (yes["status"], yes["current_size"], yes["total_size"]) == ("OPEN", 110, 170)
        assert yes["avg_price"] == 0.5
        assert (yes["entry_cost_usdc"], yes["entry_fees_usdc"], yes["total_cost_usdc"]) == (55, 1.008, 56.008)
        assert yes["realized_pnl"] == 18
        assert yes["current_price"] == price_now
        assert yes["unrealized_pnl"] == pytest.approx(110 * price_now - 55, abs=1e-6)
        assert yes["total_pnl"] == pytest.approx(18 + 110 * price_now - 55, abs=1e-6)
        assert yes["percent_realized_pnl"] == pytest.approx(18 / 30 * 100, abs=1e-6)
        assert (no["status"], no["current_size"], no["total_size"], no["realized_pnl"]) == ("CLOSED", 0, 20, -4)
        assert no["percent_realized_pnl"] == pytest.approx(-4 / 10 * 100, abs=1e-6)
        assert yes["opposite_token_id"] == no["token_id"] == market.token_ids[1]

        # The market resolves; the 110 Yes shares are worth the payout, then redeemed for it.
        payout = {0: 1.0, 1: 0.0, None: 0.5}[market.winner_index]
        with world.lock:
            state = world.market_states[market.index]
            state.closed_at = state.resolved_at = float(world.generated_until)
            world._open_markets.remove(market.index)
        yes = next(row for row in walk(server, "/v2/positions", user=address) if row["outcome_index"] == 0)
        assert yes["status"] == ("REDEEMABLE" if payout else "REDEEMABLE_LOST")
        assert (yes["current_price"], yes["current_value"]) == (payout, 110 * payout)
        assert yes["unrealized_pnl"] == pytest.approx(110 * payout - 55, abs=1e-6)
        server.advance(3700)
        redeem = [row for row in walk(server, "/v2/activity", user=address, type="REDEEM")]
        assert [(row["size"], row["usdc_size"]) for row in redeem] == [(110.0, 110 * payout)]
        yes = next(row for row in walk(server, "/v2/positions", user=address) if row["outcome_index"] == 0)
        assert (yes["status"], yes["current_size"], yes["unrealized_pnl"]) == ("CLOSED", 0, 0)
        assert yes["realized_pnl"] == pytest.approx(18 + 110 * payout - 55, abs=1e-6)
        assert yes["total_pnl"] == yes["realized_pnl"]


def test_markets_close_well_before_they_resolve_and_some_are_void() -> None:
    with serve(seed=8, scenario="steady,resolutions", clock="manual", history_seconds=60, market_count=60,
               protocol_v2_market_share=V2_SHARE) as server:
        server.advance(4 * 3600)
        markets = truth_markets(server)
        resolved_in_run = [m for m in markets
                           if m["_truth"]["scheduled_resolution_at"] is not None and m["_truth"]["resolved_at"]]
        ids = [m["conditionId"] for m in resolved_in_run]
        rows = {}
        for start in range(0, len(ids), 20):
            batch = ",".join(ids[start:start + 20])
            rows.update({row["condition_id"]: row for row in ok(server, "/v2/resolutions", condition=batch)["data"]})
        payouts = set()
        assert len(resolved_in_run) > 10
        for market in resolved_in_run:
            truth, row = market["_truth"], rows[market["conditionId"]]
            assert row["status"] == "resolved"
            assert truth["resolved_at"] - truth["closed_at"] >= 600
            assert row["resolved_at"] == datetime.fromtimestamp(truth["resolved_at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            payouts.add(tuple(row["payouts"]))
            assert sum(row["payouts"]) == 1_000_000
        assert (500_000, 500_000) in payouts and ((1_000_000, 0) in payouts or (0, 1_000_000) in payouts)


def test_a_closed_market_is_proposed_until_uma_answers() -> None:
    with serve(seed=8, scenario="steady,resolutions", clock="manual", history_seconds=60, market_count=60) as server:
        market = min((m for m in truth_markets(server) if m["_truth"]["scheduled_resolution_at"]),
                     key=lambda m: m["_truth"]["scheduled_resolution_at"])
        server.advance(market["_truth"]["scheduled_resolution_at"] - server.world.now() + 1)
        row = ok(server, "/v2/resolutions", condition=market["conditionId"])["data"][0]
        assert row["status"] == "proposed" and "payouts" not in row
        server.advance(601)
        assert ok(server, "/v2/resolutions", condition=market["conditionId"])["data"][0]["status"] == "resolved"


# --- status --------------------------------------------------------------------------------------------

def test_status_is_not_measured_before_the_first_snapshot_then_reports_the_lag_it_really_has() -> None:
    with serve(seed=2, scenario="steady,late_rows", clock="manual", history_seconds=600, late_row_rate=0.5,
               late_row_min_seconds=40, late_row_max_seconds=90) as server:
        response = get(server, "/v2/status")
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
        assert response.json()["code"] == "dependency_unavailable" and response.json()["retryable"] is True
        assert not parse_upstream_status(response.json(), http_status=503).measured
        server.advance(12)
        status = parse_upstream_status(ok(server, "/v2/status"))
        assert status.measured and status.worst == "activity_feed"
        assert 40 <= status.lag_seconds <= 90
        assert status.age_seconds is not None and status.age_seconds < 10
    with serve(seed=2, scenario="steady", clock="manual", history_seconds=600) as server:
        server.advance(12)
        lag = ok(server, "/v2/status")["serving"]["lag_seconds"]
        assert 0 <= lag <= server.config.visibility_base_max_seconds


def test_no_row_older_than_the_reported_lag_surfaces_after_a_walk() -> None:
    """The promise a poller's overlap rests on: rows that appear later are never older than
    now - (lag_seconds + age_seconds) at the time of the walk."""
    with serve(seed=6, scenario="steady,late_rows", clock="manual", history_seconds=300, late_row_rate=0.2) as server:
        server.advance(10)
        for _ in range(15):
            status = ok(server, "/v2/status")
            now = server.world.now()
            before = Counter(row_key(row) for row in walk(server, "/v2/trades", taker_only="false", limit=1000))
            server.advance(9)
            after = Counter(row_key(row) for row in walk(server, "/v2/trades", taker_only="false", limit=1000))
            horizon = now - status["serving"]["lag_seconds"] - status["age_seconds"] - 1
            for key in after - before:
                assert json.loads(key)["timestamp"] >= horizon


# --- faults --------------------------------------------------------------------------------------------

def faulty(scenario: str, **options: Any) -> EmulatorServer:
    return serve(seed=1, scenario=f"steady,{scenario}", clock="manual", history_seconds=60, **options)


def test_a_storm_answers_429_with_retry_after_in_the_v2_shape() -> None:
    with faulty("rate_limit", storm_first_request=1, storm_every_requests=1) as server:
        response = get(server, "/v2/trades")
        assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
        body = parse_upstream_error(response.json())
        assert (body.code, body.retryable, body.trace_id) == ("rate_limited", True, response.headers["x-trace-id"])


def test_errors_are_500_internal_502_html_and_503_with_retry_after() -> None:
    with faulty("errors", error_rate=1.0) as server:
        seen = {}
        for _ in range(30):
            response = get(server, "/v2/trades")
            seen[response.status_code] = response
        assert set(seen) == {500, 502, 503}
        assert parse_upstream_error(seen[500].json()).code == "internal"
        assert parse_upstream_error(seen[500].json()).retryable is False
        assert seen[502].headers["Content-Type"].startswith("text/html")
        assert seen[503].headers["Retry-After"] and parse_upstream_error(seen[503].json()).retryable


def test_unavailable_answers_503_dependency_unavailable_with_retry_after() -> None:
    with faulty("unavailable", unavailable_rate=1.0) as server:
        response = get(server, "/v2/activity", user="0x" + "1" * 40)
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert parse_upstream_error(response.json()).code == "dependency_unavailable"


def test_a_timeout_answers_503_request_timeout_after_the_wait() -> None:
    with faulty("timeouts", timeout_rate=1.0, request_timeout_seconds=0.2) as server:
        response = get(server, "/v2/positions", user="0x" + "2" * 40)
        assert response.status_code == 503 and response.elapsed.total_seconds() >= 0.2
        body = parse_upstream_error(response.json())
        assert (body.code, body.retryable) == ("request_timeout", True) and response.headers["Retry-After"]


def test_the_cdn_answers_an_html_access_denied_page() -> None:
    with faulty("cdn_block", cdn_block_rate=1.0) as server:
        response = get(server, "/v2/trades")
        assert response.status_code == 403 and response.headers["Content-Type"].startswith("text/html")
        assert "Access denied" in response.text and response.headers["x-trace-id"]
        with pytest.raises(ValueError):
            response.json()


def test_a_truncated_body_is_a_complete_message_holding_broken_json() -> None:
    with faulty("truncated", truncated_rate=1.0) as server:
        response = get(server, "/v2/trades", limit=50)
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(response.content)
        with pytest.raises(ValueError):
            json.loads(response.content)


def test_a_reset_cuts_the_connection_mid_body() -> None:
    with faulty("resets", reset_rate=1.0) as server, pytest.raises(requests.exceptions.RequestException):
        get(server, "/v2/trades", limit=200).json()


def test_slow_responses_arrive_late_but_whole() -> None:
    with faulty("slow", slow_rate=1.0, slow_min_seconds=0.3, slow_max_seconds=0.35) as server:
        response = get(server, "/v2/trades")
        assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.3
        parse_page(response.json())


def test_faults_follow_the_request_sequence_and_never_touch_the_truth() -> None:
    def run() -> tuple[list[int], dict[str, Any]]:
        with serve(seed=3, scenario="steady,errors,unavailable,cdn_block,truncated", clock="manual",
                   history_seconds=120, error_rate=0.1, unavailable_rate=0.1, cdn_block_rate=0.1,
                   truncated_rate=0.2) as server:
            statuses = [get(server, "/v2/trades").status_code for _ in range(40)]
            return statuses, ok(server, "/_truth/trades")

    first, second = run(), run()
    assert first == second and len(set(first[0])) >= 4


def test_unknown_v2_routes_and_methods_answer_in_the_v2_shape(world: EmulatorServer) -> None:
    missing = get(world, "/v2/nothing")
    assert missing.status_code == 404 and parse_upstream_error(missing.json()).code == "not_found"
    wrong = requests.post(f"{world.url}/v2/trades", timeout=10)
    assert wrong.status_code == 405 and parse_upstream_error(wrong.json()).code == "method_not_allowed"
    assert wrong.headers["x-trace-id"] != missing.headers["x-trace-id"]


def test_requests_spelt_in_camel_case_mean_the_same(world: EmulatorServer) -> None:
    snake = ok(world, "/v2/trades", taker_only="false", filter_amount=5, limit=20)["data"]
    camel = ok(world, "/v2/trades", takerOnly="false", filterAmount=5, limit=20)["data"]
    assert snake == camel


# --- verify_upstream -------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_verify_counts_a_missing_twin_and_a_duplicated_fill_as_a_multiset(settings) -> None:
    from ingest.models import Market, TradeFill, Wallet
    from ingest.verify import _truth_key, fills_completeness_check

    with serve(seed=9, scenario="steady,identical_fills", clock="manual", history_seconds=30,
               identical_fill_rate=1.0, market_count=4, wallet_count=20) as server:
        published = ok(server, "/_truth/trades")
        # What v2 can have served by now (the manual clock stands still until the report).
        truth = [f for f in published["fills"] if f["v2_served"] and f["visible_at"] <= published["virtual_now"]]
        markets = {c: Market.objects.create(condition_id=c) for c in {f["conditionId"] for f in truth}}
        wallets = {a: Wallet.objects.create(address=a) for a in {f["proxyWallet"] for f in truth}}

        def store(fill: dict[str, Any], occurrence: int) -> None:
            TradeFill.objects.create(
                idempotency_key=_truth_key(fill, occurrence=occurrence), transaction_hash=fill["transactionHash"],
                token_id=fill["asset"], market=markets[fill["conditionId"]], wallet=wallets[fill["proxyWallet"]],
                side=fill["side"], size=Decimal(str(fill["size"])), price=Decimal(str(fill["price"])),
                usdc_size=Decimal(str(fill["size"])) * Decimal(str(fill["price"])),
                traded_at=datetime.fromtimestamp(fill["timestamp"], UTC))

        twin = next(f for f in truth if f["occurrence"] == 1)
        single = next(f for f in truth if f["occurrence"] == 0 and not any(
            g["occurrence"] == 1 and _truth_key(g, occurrence=0) == _truth_key(f, occurrence=0) for g in truth))
        for fill in truth:
            if fill is not twin:
                store(fill, fill["occurrence"])
        store(single, 1)  # the same fill stored a second time
        report = fills_completeness_check(upstream_url=server.url, feed="v2")
        assert (report.missing, report.duplicated, report.unexpected) == (1, 1, 0)
        assert report.repeated_identical_fills >= 1 and not report.complete
        store(twin, 1)
        TradeFill.objects.filter(idempotency_key=_truth_key(single, occurrence=1)).delete()
        assert fills_completeness_check(upstream_url=server.url, feed="v2").complete
