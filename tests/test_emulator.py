"""The Polymarket emulator behaves like the upstream where our adapters depend on it, and tells the truth.

Plain pytest, no Django: ``python -m pytest -p no:django -p no:cacheprovider tests/test_emulator.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.emulator import EmulatorServer, serve

IDENTITY_FIELDS = ("transactionHash", "asset", "proxyWallet", "side", "size", "price", "timestamp")


def identity(row: dict[str, Any]) -> tuple[Any, ...]:
    # outcomeIndex/eventSlug depend on the endpoint, so they are never part of a fill's identity.
    return tuple(row.get(name) for name in IDENTITY_FIELDS)


def is_malformed(row: dict[str, Any]) -> bool:
    return (
        "proxyWallet" not in row
        or "timestamp" not in row
        or not isinstance(row.get("price"), int | float)
    )


def get(server: EmulatorServer, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{server.url}{path}", params=params, timeout=10)


def truth(server: EmulatorServer, **params: Any) -> dict[str, Any]:
    response = get(server, "/_truth/trades", **params)
    assert response.status_code == 200
    return response.json()


@pytest.fixture(autouse=True)
def _isolated_app_redis() -> None:
    """Overrides the suite-wide Redis flush: the emulator needs no service, so its tests use none."""


@pytest.fixture(scope="module")
def demo() -> Iterator[EmulatorServer]:
    with serve(seed=11, scenario="demo", clock="manual", market_count=150) as server:
        yield server


def test_two_servers_with_the_same_seed_publish_the_same_truth_however_they_are_polled() -> None:
    with serve(seed=5, scenario="demo", clock="manual", history_seconds=300) as eager, \
            serve(seed=5, scenario="demo", clock="manual", history_seconds=300) as lazy:
        for _ in range(6):  # one client polls every 20 virtual seconds...
            eager.advance(20)
            assert get(eager, "/trades", limit=50).status_code == 200
        lazy.advance(120)  # ...the other jumps straight there
        published = truth(lazy)
        assert truth(eager) == published
    with serve(seed=6, scenario="demo", clock="manual", history_seconds=300) as other:
        other.advance(120)
        assert truth(other)["fills"] != published["fills"]


def test_trades_come_newest_first_and_in_a_stable_order_within_a_second(demo: EmulatorServer) -> None:
    first = get(demo, "/trades", limit=500, takerOnly="false").json()
    again = get(demo, "/trades", limit=500, takerOnly="false").json()
    timestamps = [row["timestamp"] for row in first if "timestamp" in row]
    assert timestamps == sorted(timestamps, reverse=True)
    assert len(set(timestamps)) < len(timestamps)  # several fills share a second
    assert first == again


def test_limit_is_clamped_to_the_maximum_page(demo: EmulatorServer) -> None:
    assert len(get(demo, "/trades").json()) == 100
    assert len(get(demo, "/trades", limit=10_000).json()) == 500
    assert len(get(demo, "/trades", limit=7).json()) == 7


def test_an_offset_past_the_cap_is_a_400_with_the_upstream_message(demo: EmulatorServer) -> None:
    assert get(demo, "/trades", offset=1500).status_code == 200
    response = get(demo, "/trades", offset=1501)
    assert response.status_code == 400
    assert response.json() == {"error": "max historical activity offset of 1500 exceeded"}


def test_the_global_feed_blanks_outcome_index_and_event_slug_but_scoped_reads_carry_them(
    demo: EmulatorServer,
) -> None:
    global_rows = [row for row in get(demo, "/trades", limit=50).json() if not is_malformed(row)]
    assert {row["outcomeIndex"] for row in global_rows} == {999}
    assert {row["eventSlug"] for row in global_rows} == {""}
    fill = global_rows[0]
    user_rows = get(demo, "/trades", user=fill["proxyWallet"], limit=500).json()
    same_fill = next(row for row in user_rows if identity(row) == identity(fill))
    assert same_fill["outcomeIndex"] in (0, 1)
    assert same_fill["eventSlug"]
    market_rows = get(demo, "/trades", market=fill["conditionId"], limit=500).json()
    assert next(row for row in market_rows if identity(row) == identity(fill))["outcomeIndex"] in (0, 1)


def test_rows_have_the_recorded_data_api_shape(demo: EmulatorServer) -> None:
    fixture = Path(__file__).resolve().parents[2] / "shared/fixtures/polymarket/polymarket-smart-money/trades.json"
    rows = [row for row in get(demo, "/trades", limit=200).json() if not is_malformed(row)]
    assert fixture.exists(), f"recorded fixture {fixture} missing: check out ../shared/fixtures beside the project"
    assert list(rows[0]) == list(json.loads(fixture.read_text())[0])
    assert any(isinstance(row["size"], int) for row in rows)
    assert any(isinstance(row["size"], float) for row in rows)
    assert all(re.fullmatch(r"0x[0-9a-f]{64}", row["transactionHash"]) for row in rows)
    assert all(re.fullmatch(r"0x[0-9a-f]{40}", row["proxyWallet"]) for row in rows)
    assert all(75 <= len(row["asset"]) <= 78 and row["asset"].isdigit() for row in rows)


def test_taker_only_is_the_default(demo: EmulatorServer) -> None:
    takers = {identity(f) for f in truth(demo)["fills"] if f["is_taker"]}
    default_rows = [row for row in get(demo, "/trades", limit=500).json() if not is_malformed(row)]
    assert all(identity(row) in takers for row in default_rows)
    everything = get(demo, "/trades", limit=500, takerOnly="false").json()
    assert any(identity(row) not in takers for row in everything if not is_malformed(row))


def test_start_and_end_are_ignored_without_a_user_and_honoured_with_one(demo: EmulatorServer) -> None:
    newest = get(demo, "/trades", limit=1).json()[0]
    window = {"start": newest["timestamp"] - 600, "end": newest["timestamp"] - 300}
    assert get(demo, "/trades", limit=200, **window).json() == get(demo, "/trades", limit=200).json()
    market_rows = get(demo, "/trades", market=newest["conditionId"], limit=200, **window).json()
    assert market_rows == get(demo, "/trades", market=newest["conditionId"], limit=200).json()
    busiest, _count = Counter(f["proxyWallet"] for f in truth(demo)["fills"]).most_common(1)[0]
    everything = get(demo, "/trades", user=busiest, limit=500, takerOnly="false").json()
    scoped = get(demo, "/trades", user=busiest, limit=500, takerOnly="false", **window).json()
    assert scoped and scoped != everything
    assert all(window["start"] <= row["timestamp"] <= window["end"] for row in scoped)


def test_keyset_paging_visits_every_market_once_and_a_cursor_parameter_returns_page_one(
    demo: EmulatorServer,
) -> None:
    truth_markets = get(demo, "/_truth/markets").json()
    for closed in ("false", "true"):
        seen: list[str] = []
        after: str | None = None
        for _page in range(100):
            params: dict[str, Any] = {"limit": 7, "closed": closed}
            if after:
                params["after_cursor"] = after
            body = get(demo, "/markets/keyset", **params).json()
            seen += [market["id"] for market in body["markets"]]
            after = body.get("next_cursor")
            if not after:
                break
        expected = {m["id"] for m in truth_markets if m["closed"] == (closed == "true")}
        assert sorted(seen) == sorted(expected)
        assert len(seen) == len(set(seen))

    first = get(demo, "/markets/keyset", limit=7).json()
    ignored = get(demo, "/markets/keyset", limit=7, cursor=first["next_cursor"]).json()
    assert [m["id"] for m in ignored["markets"]] == [m["id"] for m in first["markets"]]
    mismatched = get(demo, "/markets/keyset", limit=7, closed="true", after_cursor=first["next_cursor"])
    assert mismatched.status_code == 422


def test_gamma_markets_encode_lists_as_json_strings_and_hide_closed_markets(demo: EmulatorServer) -> None:
    open_markets = get(demo, "/markets", limit=500).json()
    assert len(open_markets) == 100  # clamped
    closed_markets = get(demo, "/markets", closed="true", limit=100).json()
    assert closed_markets and not any(m["closed"] for m in open_markets)
    for market in open_markets + closed_markets:
        # Outcome ids by version: v1 in clobTokenIds (a JSON string), Protocol V2 in positionIds.
        id_field = {"v1": "clobTokenIds", "v2": "positionIds"}[market["version"]]
        for name in ("outcomes", "outcomePrices", "clobTokenIds"):
            if name == id_field or name != "clobTokenIds":
                assert isinstance(market[name], str)
                assert len(json.loads(market[name])) == 2
        assert isinstance(market["id"], str) and isinstance(market["volume"], str)
        assert isinstance(market["volumeNum"], float)
        assert re.fullmatch(r"0x[0-9a-f]{64}", market["conditionId"])
        assert market["events"][0]["slug"]
    for market in closed_markets:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00", market["closedTime"])
        assert market["umaResolutionStatus"] == "resolved"
        prices = json.loads(market["outcomePrices"])
        assert prices.count("1") == 1 or prices == ["0.5", "0.5"]
    deep = get(demo, "/markets", offset=2001)
    assert deep.status_code == 422
    assert "use /markets/keyset" in deep.json()["error"]


def test_markets_close_then_resolve_over_virtual_time() -> None:
    with serve(seed=3, scenario="resolutions", clock="manual", history_seconds=0) as server:
        truth_markets = get(server, "/_truth/markets").json()
        soonest = min((m for m in truth_markets if m["_truth"]["scheduled_resolution_at"]),
                      key=lambda m: m["_truth"]["scheduled_resolution_at"])
        server.advance(soonest["_truth"]["scheduled_resolution_at"] - server.world.now())
        proposed = get(server, "/markets", closed="true", id=soonest["id"]).json()[0]
        assert proposed["umaResolutionStatus"] == "proposed"
        server.advance(server.config.proposal_seconds)
        resolved = get(server, "/markets", closed="true", id=soonest["id"]).json()[0]
        assert resolved["umaResolutionStatus"] == "resolved"
        expected = soonest["_truth"]["settlement_prices"]
        assert [float(p) for p in json.loads(resolved["outcomePrices"])] == expected
        assert get(server, "/trades", market=soonest["conditionId"], limit=1).json()[0]["timestamp"] \
            <= soonest["_truth"]["scheduled_resolution_at"]


def test_the_rate_limit_scenario_answers_429_with_retry_after() -> None:
    with serve(scenario="steady,rate_limit", clock="manual", history_seconds=60,
               storm_first_request=1, storm_seconds=0.3) as server:
        throttled = get(server, "/trades")
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        assert get(server, "/_control/state").status_code == 200  # control and truth are never throttled
        time.sleep(0.35)
        assert get(server, "/trades").status_code == 200


def test_published_rate_limits_are_enforced_when_asked() -> None:
    limits = {"data": 1000, "data:/trades": 3}
    with serve(clock="manual", history_seconds=60, enforce_rate_limits=True, rate_limits_per_10s=limits) as server:
        statuses = [get(server, "/trades", limit=1).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


def test_transport_errors_follow_the_request_sequence_and_never_touch_the_truth() -> None:
    def run() -> tuple[list[int], dict[str, Any]]:
        with serve(seed=9, scenario="steady,errors", clock="manual", history_seconds=120, error_rate=0.3) as server:
            statuses = [get(server, "/trades", limit=5).status_code for _ in range(30)]
            return statuses, truth(server)

    first_statuses, first_truth = run()
    second_statuses, second_truth = run()
    assert first_statuses == second_statuses
    assert {500, 502, 503} & set(first_statuses) and 200 in first_statuses
    with serve(seed=9, scenario="steady", clock="manual", history_seconds=120) as calm:
        assert truth(calm)["fills"] == first_truth["fills"] == second_truth["fills"]


def test_rss_items_appear_on_the_virtual_clock_and_support_conditional_get() -> None:
    with serve(seed=4, scenario="demo", clock="manual", history_seconds=3600) as server:
        first = get(server, "/rss.xml")
        assert first.status_code == 200
        assert first.headers["Content-Type"].startswith("application/rss+xml")
        assert "<pubDate>" in first.text and "<guid" in first.text
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert requests.get(f"{server.url}/rss.xml", headers={"If-None-Match": etag}, timeout=10).status_code == 304
        assert requests.get(f"{server.url}/rss.xml", headers={"If-Modified-Since": modified},
                            timeout=10).status_code == 304
        server.advance(3600)
        later = requests.get(f"{server.url}/rss.xml", headers={"If-None-Match": etag}, timeout=10)
        assert later.status_code == 200
        assert later.headers["ETag"] != etag
        published = get(server, "/_truth/news").json()
        assert max(item["published_at"] for item in published) <= server.world.now()


def test_truth_equals_the_union_of_everything_paged() -> None:
    with serve(seed=2, scenario="demo,malformed,duplicates", clock="manual", history_seconds=240,
               trades_offset_cap=10_000) as server:
        served: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = get(server, "/trades", limit=500, offset=offset, takerOnly="false").json()
            served += page
            if len(page) < 500:
                break
            offset += 500
        expected = truth(server)
        valid = [row for row in served if not is_malformed(row)]
        malformed = [row for row in served if is_malformed(row)]
        assert {identity(row) for row in valid} == {identity(fill) for fill in expected["fills"]}
        assert len({identity(fill) for fill in expected["fills"]}) == expected["fill_count"]
        assert len(malformed) == len(expected["malformed"]) > 0
        assert len(valid) - expected["fill_count"] == expected["duplicate_rows"] > 0


def test_a_burst_publishes_more_fills_than_one_poll_can_page_through() -> None:
    with serve(seed=8, scenario="steady,burst", clock="manual", history_seconds=0) as server:
        burst_starts = server.config.burst_period_seconds * 3 // 4
        server.advance(burst_starts + server.config.burst_length_seconds)
        takers = [f for f in truth(server, since=server.world.start + burst_starts)["fills"] if f["is_taker"]]
        assert len(takers) > server.config.trades_offset_cap + server.config.trades_max_limit


def test_batched_transactions_share_one_hash_and_second_and_straddle_pages() -> None:
    with serve(seed=13, scenario="steady,multi_fill", clock="manual", history_seconds=60,
               multi_fill_rate=1.0) as server:
        pages = [get(server, "/trades", limit=10, offset=offset, takerOnly="false").json()
                 for offset in range(0, 100, 10)]
        hashes_per_page = [{row["transactionHash"] for row in page} for page in pages]
        assert any(a & b for a, b in pairwise(hashes_per_page))
        rows_by_hash: dict[str, list[dict[str, Any]]] = {}
        for fill in truth(server)["fills"]:
            rows_by_hash.setdefault(fill["transactionHash"], []).append(fill)
        batch = max(rows_by_hash.values(), key=len)
        assert len(batch) >= 20
        assert len({row["timestamp"] for row in batch}) == 1
        assert sum(row["is_taker"] for row in batch) > 1


def test_mint_matches_pair_buys_on_both_outcomes_at_prices_summing_to_one(demo: EmulatorServer) -> None:
    rows_by_hash: dict[str, list[dict[str, Any]]] = {}
    for fill in truth(demo)["fills"]:
        rows_by_hash.setdefault(fill["transactionHash"], []).append(fill)
    # Like the recorded Maduro page: a two-row transaction, BUY + BUY on the two tokens, equal size.
    mints = [
        rows for rows in rows_by_hash.values()
        if len(rows) == 2 and {r["side"] for r in rows} == {"BUY"} and rows[0]["asset"] != rows[1]["asset"]
    ]
    assert mints
    assert all(abs(a["price"] + b["price"] - 1) < 1e-6 and a["size"] == b["size"] for a, b in mints)
    assert all(sorted(r["is_taker"] for r in rows) == [False, True] for rows in mints)


def test_new_fills_shift_offsets_between_page_requests() -> None:
    with serve(seed=12, scenario="steady", clock="manual", history_seconds=600) as server:
        first_page = get(server, "/trades", limit=100).json()
        server.advance(30)
        second_page = get(server, "/trades", limit=100, offset=100).json()
        # Rows published meanwhile push already-seen rows onto the next page: overlap, not loss.
        assert {identity(r) for r in first_page} & {identity(r) for r in second_page}


def test_the_cli_serves_on_the_requested_port() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.emulator", "--port", "0", "--clock", "manual", "--history", "60"],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = re.search(r"http://\S+", process.stdout.readline())
        assert url is not None
        assert requests.get(f"{url.group(0)}/trades", params={"limit": 1}, timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
