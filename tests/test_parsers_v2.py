"""The Data API v2 and Protocol V2 parsers, checked against real recorded payloads.

Pure Python: no database, no Django. The fixtures live in the shared workspace
(`../shared/fixtures/polymarket/v2/`, see its README), found as tests/test_parsers.py finds them
(`ARBITRA_FIXTURES_DIR` points elsewhere). Every recorded v2 file has a test that parses all of it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from ingest.sources.data_api.parsing import (
    NotATrade,
    OccurrenceCounter,
    Pagination,
    UpstreamErrorBody,
    fill_idempotency_key,
    parse_activity_figures,
    parse_activity_v2,
    parse_page,
    parse_position_v2,
    parse_resolution_v2,
    parse_trade,
    parse_trade_v2,
    parse_upstream_error,
    parse_upstream_status,
    parse_user_stats_v2,
)
from ingest.sources.gamma.parsing import parse_gamma_market
from ingest.sources.values import MalformedBody, MalformedRow, parse_condition_id, parse_token_id
from tests.test_parsers import FIXTURES_DIR, V1_TO_V2_FIELD_NAMES, load_fixture

BTC_15M_CONDITION = "0xcd5f9f505e0c0182746aa65963f72f01e7463259e5ea9f56672c0fe3a37f348a"
BTC_15M_UP_TOKEN = "25070934348813416902477876984955073880416401960631253331845590271167412497744"
BTC_15M_DOWN_TOKEN = "111614563957165270026378011809694313565736745512637881727398424401624030147043"
# A Protocol V2 canary market: its bytes31 condition id as served, right-padded to 64 hex.
CANARY_CONDITION = "0x017791f201d5a788e0039e511fc1900e5f000000000000000000000000000000"
V2_TRADE_KEYS = (
    "proxy_wallet", "side", "token_id", "condition_id", "size", "price", "timestamp", "title", "slug", "icon",
    "event_slug", "outcome", "outcome_index", "name", "pseudonym", "bio", "profile_image",
    "profile_image_optimized", "transaction_hash",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated_app_redis():
    """Overrides the suite-wide Redis flush of conftest.py: these tests are pure."""
    return


def recorded_trade_rows() -> list[dict[str, Any]]:
    """The four real rows of the two recorded `/v2/trades` pages, in serving order."""
    return [
        row
        for page in ("data-v2-trades-v1-page1.json", "data-v2-trades-v1-page2.json")
        for row in load_fixture(f"v2/polymarket-bot-v2/{page}")["data"]
    ]


def a_v2_trade_row(**changes: Any) -> dict[str, Any]:
    """The first real row of the recorded `/v2/trades` page 1, with some fields changed."""
    row = copy.deepcopy(recorded_trade_rows()[0])
    row.update(changes)
    return row


def as_v1(row: dict[str, Any]) -> dict[str, Any]:
    """The v1 (camelCase) twin of a v2 row: what a stored v1 landing record holds for the fill."""
    v2_to_v1 = {v2: v1 for v1, v2 in V1_TO_V2_FIELD_NAMES.items()}
    return {v2_to_v1.get(name, name): value for name, value in row.items()}


# --------------------------------------------------------------------------------------------------
# /v2/trades rows
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["data-v2-trades-v1-page1.json", "data-v2-trades-v1-page2.json"])
def test_it_parses_every_row_of_a_recorded_v2_trades_page(page):
    rows = load_fixture(f"v2/polymarket-bot-v2/{page}")["data"]

    fills = [parse_trade_v2(row) for row in rows]

    assert len(fills) == 2
    for row, fill in zip(rows, fills, strict=True):
        assert tuple(row) == V2_TRADE_KEYS  # all 19 keys, every one present
        assert fill.asset == row["token_id"]
        assert fill.condition_id == BTC_15M_CONDITION
        assert fill.wallet == row["proxy_wallet"]
        assert fill.transaction_hash == row["transaction_hash"]
        assert fill.size == Decimal(row["size"])
        assert fill.usdc_size == fill.size * fill.price  # /v2/trades sends no cash amount
        assert fill.outcome_index == row["outcome_index"]
        assert fill.is_activity is False
        assert fill.occurrence == 0


def test_it_reads_the_hand_checked_values_of_the_first_recorded_v2_trade():
    fill = parse_trade_v2(recorded_trade_rows()[0])

    assert fill.asset == BTC_15M_UP_TOKEN
    assert fill.size == Decimal(10)
    assert fill.price == Decimal("0.95")
    assert fill.side == "BUY"
    assert fill.outcome == "Up"
    assert fill.traded_at == datetime(2026, 10, 5, 23, 10, 34, tzinfo=UTC)
    assert fill.market_slug == fill.event_slug == "btc-updown-15m-1791241200"
    assert fill.name == "synthetic-name-p1-r1"
    assert fill.profile_image is None  # "" and "" for both profile images


def test_it_reads_a_78_digit_token_id_of_a_recorded_v2_trade():
    fill = parse_trade_v2(recorded_trade_rows()[2])

    assert fill.asset == BTC_15M_DOWN_TOKEN
    assert len(fill.asset) == 78
    assert fill.outcome_index == 1


def test_it_takes_both_unknown_outcome_index_sentinels_as_unknown():
    sdk_rows = load_fixture("v2/py-sdk/trades.json")
    assert [row["outcome_index"] for row in sdk_rows] == [999, 999]

    fills = [parse_trade_v2(row) for row in sdk_rows] + [parse_trade_v2(a_v2_trade_row(outcome_index=""))]

    assert [fill.outcome_index for fill in fills] == [None, None, None]
    assert [fill.outcome for fill in fills[:2]] == ["Yes", "No"]  # labelled although the index is not
    assert fills[0].event_slug is None  # ""


def test_it_parses_the_trimmed_trade_row_printed_in_polymarkets_documentation():
    body = load_fixture("v2/doc-examples/docs-public-analytics__v2-trades-example.json")

    (fill,) = [parse_trade_v2(row) for row in body["data"]]

    assert fill.side == "SELL"
    assert fill.asset == "7305630249804085635496399869905769372294302716159034447326228509068694952392"
    assert fill.size == Decimal("6.96")
    assert fill.outcome_index is None and fill.name is None  # keys trimmed from the example


def test_it_no_longer_reads_a_v2_trade_without_its_token_id():
    row = {name: value for name, value in a_v2_trade_row().items() if name != "token_id"}

    with pytest.raises(MalformedRow, match=r"^token_id: missing$"):
        parse_trade_v2(dict(row, asset=BTC_15M_UP_TOKEN))  # the v1 name is not read from a v2 row


def test_it_stores_a_protocol_v2_condition_in_its_64_hex_form_and_pads_a_62_hex_one():
    served = parse_trade_v2(a_v2_trade_row(condition_id=CANARY_CONDITION))
    bare_bytes31 = parse_trade_v2(a_v2_trade_row(condition_id=CANARY_CONDITION[:-2].upper().replace("0X", "0x")))

    assert served.condition_id == bare_bytes31.condition_id == CANARY_CONDITION
    assert served.idempotency_key == bare_bytes31.idempotency_key  # the condition is not identity


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0x" + "a" * 60, "condition_id: not 0x + 64 hex digits"),
        ("0x" + "a" * 63, "condition_id: not 0x + 64 hex digits"),
        ("0x" + "a" * 66, "condition_id: not 0x + 64 hex digits"),
        ("0x" + "g" * 64, "condition_id: not 0x + 64 hex digits"),
        ("", "condition_id: empty"),
    ],
)
def test_it_rejects_a_condition_id_that_is_neither_64_nor_62_hex(value, reason):
    with pytest.raises(MalformedRow, match=f"^{re.escape(reason)}"):
        parse_trade_v2(a_v2_trade_row(condition_id=value))


def test_it_accepts_token_ids_up_to_uint256_and_refuses_longer_ones():
    largest = str(2**256 - 1)

    assert parse_token_id(largest, field="token_id") == largest
    assert parse_token_id("7" * 75, field="token_id") == "7" * 75
    for too_large in (str(2**256), "9" * 79, "1" + "0" * 78):
        with pytest.raises(MalformedRow, match=r"^token_id: not a uint256 token id"):
            parse_token_id(too_large, field="token_id")


def test_the_condition_id_parser_lowercases_and_pads_only_bytes31_ids():
    assert parse_condition_id(BTC_15M_CONDITION.upper().replace("0X", "0x"), field="c") == BTC_15M_CONDITION
    assert parse_condition_id("0x" + "ab" * 31, field="c") == "0x" + "ab" * 31 + "00"


def test_a_v2_row_and_its_stored_v1_twin_are_the_same_fill():
    for row in recorded_trade_rows() + load_fixture("v2/py-sdk/trades.json"):
        assert parse_trade(as_v1(row)) == parse_trade_v2(row)


# --------------------------------------------------------------------------------------------------
# Fills as a multiset: the occurrence within a transaction
# --------------------------------------------------------------------------------------------------

# Keys computed by the parser as it was before fills were counted as a multiset (commit 3f42316):
# occurrence 0 must go on producing exactly these, so that no stored fill needs a new key.
KEY_OF_STORED_V1_FILL = "1787241322-e0182272b1c2144d03703673b64e806bc38d1b1a47279b77f9c9e"
KEYS_OF_RECORDED_PAGE_1 = [
    "1791241834-1d07253b435be6882ee807a117ba1d62ffd98aa17721b9936b12f",
    "1791241832-8d489bfc55bc343e69a0f8fdf3938f67c67bed645051b2eafa2bf",
]


def numbered_keys(rows: list[dict[str, Any]], counter: OccurrenceCounter | None = None) -> list[str]:
    counter = counter or OccurrenceCounter()
    return [fill.idempotency_key for fill in counter.numbered(parse_trade_v2(row) for row in rows)]


def a_page_with_identical_fills() -> list[dict[str, Any]]:
    """Newest first: two seconds, each with a transaction holding identical fills, and others."""
    first, second = recorded_trade_rows()[:2]  # seconds 1791241834 and 1791241832
    return [
        first,
        copy.deepcopy(first),  # the same wallet, token, side, price and size in the same transaction
        a_v2_trade_row(size=11),  # same transaction, another size: not identical
        second,
        copy.deepcopy(second),
        copy.deepcopy(second),
        dict(copy.deepcopy(second), transaction_hash="0x" + "ab" * 32),  # identical but another transaction
    ]


def test_occurrence_0_is_exactly_the_key_a_stored_v1_fill_already_carries():
    stored_v1_row = load_fixture("insiderwatch/trades.json")[0]
    v2_twin = {V1_TO_V2_FIELD_NAMES.get(name, name): value for name, value in stored_v1_row.items()}

    from_landing = parse_trade(stored_v1_row)
    (from_v2_feed,) = OccurrenceCounter().numbered([parse_trade_v2(v2_twin)])

    assert from_landing.idempotency_key == KEY_OF_STORED_V1_FILL
    assert from_v2_feed.occurrence == 0
    assert from_v2_feed.idempotency_key == KEY_OF_STORED_V1_FILL
    assert (
        fill_idempotency_key(
            transaction_hash=from_landing.transaction_hash,
            asset=from_landing.asset,
            wallet=from_landing.wallet,
            side=from_landing.side,
            size=from_landing.size,
            price=from_landing.price,
            timestamp=from_landing.traded_at,
        )
        == fill_idempotency_key(
            transaction_hash=from_landing.transaction_hash,
            asset=from_landing.asset,
            wallet=from_landing.wallet,
            side=from_landing.side,
            size=from_landing.size,
            price=from_landing.price,
            timestamp=from_landing.traded_at,
            occurrence=0,
        )
        == KEY_OF_STORED_V1_FILL
    )


def test_the_recorded_v2_page_keeps_the_keys_its_fills_had_before_the_multiset():
    rows = load_fixture("v2/polymarket-bot-v2/data-v2-trades-v1-page1.json")["data"]

    assert numbered_keys(rows) == KEYS_OF_RECORDED_PAGE_1
    assert [parse_trade(as_v1(row)).idempotency_key for row in rows] == KEYS_OF_RECORDED_PAGE_1


def test_it_numbers_identical_fills_of_one_transaction_0_1_2_and_gives_each_its_own_key():
    fills = OccurrenceCounter().numbered(parse_trade_v2(row) for row in a_page_with_identical_fills())

    assert [fill.occurrence for fill in fills] == [0, 1, 0, 0, 1, 2, 0]
    assert len({fill.idempotency_key for fill in fills}) == 7
    assert fills[0].idempotency_key == parse_trade_v2(recorded_trade_rows()[0]).idempotency_key
    assert fills[1] == dataclasses.replace(fills[0], occurrence=1, idempotency_key=fills[1].idempotency_key)
    assert fills[5].idempotency_key == fill_idempotency_key(
        transaction_hash=fills[5].transaction_hash,
        asset=fills[5].asset,
        wallet=fills[5].wallet,
        side=fills[5].side,
        size=fills[5].size,
        price=fills[5].price,
        timestamp=fills[5].traded_at,
        occurrence=2,
    )
    assert all(fill.idempotency_key[:10] == str(int(fill.traded_at.timestamp())) for fill in fills)


def test_re_reading_the_same_rows_gives_the_same_keys():
    assert numbered_keys(a_page_with_identical_fills()) == numbered_keys(a_page_with_identical_fills())


def test_a_walk_split_across_two_pages_with_its_state_stored_as_json_gives_the_keys_of_one_page():
    rows = a_page_with_identical_fills()
    in_one_page = numbered_keys(rows)

    for boundary in range(len(rows) + 1):
        first_page = OccurrenceCounter()
        keys = numbered_keys(rows[:boundary], first_page)
        stored = json.loads(json.dumps(first_page.state()))  # kept with the cursor, e.g. in a JSON column
        keys += numbered_keys(rows[boundary:], OccurrenceCounter.from_state(stored))

        assert keys == in_one_page, f"split before row {boundary}"


def test_a_fresh_counter_at_a_page_boundary_would_collapse_the_second_fill_which_is_why_state_is_kept():
    rows = a_page_with_identical_fills()

    keys = numbered_keys(rows[:1]) + numbered_keys(rows[1:2])

    assert keys[0] == keys[1]  # the second identical fill would be absorbed as a duplicate


def test_the_state_holds_only_the_second_being_read():
    counter = OccurrenceCounter()
    counter.numbered(parse_trade_v2(row) for row in a_page_with_identical_fills())

    state = counter.state()

    assert state["second"] == "1791241832"
    assert state["direction"] == -1  # newest first
    assert sorted(state["counts"].values()) == [1, 3]


def test_an_ascending_walk_is_numbered_like_a_descending_one():
    rows = a_page_with_identical_fills()

    assert sorted(numbered_keys(rows[::-1])) == sorted(numbered_keys(rows))


def test_it_refuses_rows_that_go_back_against_the_direction_of_the_walk():
    first, second = recorded_trade_rows()[:2]

    with pytest.raises(MalformedBody, match=r"^rows out of serving order: second 1791241834 after 1791241832"):
        numbered_keys([first, second, copy.deepcopy(first)])


@pytest.mark.parametrize(
    "state",
    [
        {"version": 2, "second": "", "direction": 0, "counts": {}},
        {"second": "", "direction": 0, "counts": {}},
        {"version": 1, "second": "17912418", "direction": 0, "counts": {}},
        {"version": 1, "second": "1791241832", "direction": 2, "counts": {}},
        {"version": 1, "second": "1791241832", "direction": -1, "counts": {"1791241831-abc": 1}},
        {"version": 1, "second": "1791241832", "direction": -1, "counts": {"1791241832-abc": 0}},
        {"version": 1, "second": "", "direction": 0, "counts": {"-abc": 1}},
        ["not", "a", "state"],
    ],
)
def test_it_refuses_an_occurrence_state_it_did_not_write(state):
    with pytest.raises(ValueError, match=r"^occurrence state"):
        OccurrenceCounter.from_state(state)


def test_no_stored_state_is_a_fresh_counter():
    assert OccurrenceCounter.from_state(None).state() == OccurrenceCounter().state()


def test_it_refuses_to_number_a_fill_twice_or_key_a_negative_occurrence():
    numbered = OccurrenceCounter().numbered(parse_trade_v2(row) for row in a_page_with_identical_fills())

    with pytest.raises(ValueError, match=r"^already numbered"):
        OccurrenceCounter().number(numbered[1])
    with pytest.raises(ValueError, match=r"^occurrence: not a non-negative int"):
        numbered[0].with_occurrence(-1)


def test_the_25_maduro_fills_keep_their_keys_none_being_identical():
    rows = load_fixture("insiderwatch/trades_maduro.json")
    fills = [parse_trade(row) for row in rows]

    numbered = OccurrenceCounter().numbered(fills)

    assert [fill.occurrence for fill in numbered] == [0] * 25
    assert [fill.idempotency_key for fill in numbered] == [fill.idempotency_key for fill in fills]


# --------------------------------------------------------------------------------------------------
# /v2/activity rows
# --------------------------------------------------------------------------------------------------


def as_v2(row: dict[str, Any]) -> dict[str, Any]:
    """The v2 (snake_case) shape of a recorded v1 row, for the activity types no v2 file records."""
    return {V1_TO_V2_FIELD_NAMES.get(name, name): value for name, value in row.items()}


def test_it_parses_every_row_of_the_recorded_v2_activity_with_the_fee_each_trade_paid():
    rows = load_fixture("v2/py-sdk/activity.json")

    activities = [parse_activity_v2(row) for row in rows]

    assert [activity.activity_type for activity in activities] == ["TRADE", "TRADE"]
    for row, activity in zip(rows, activities, strict=True):
        assert activity.is_trade and activity.is_known_type
        assert activity.fill is not None and activity.fill.is_activity
        assert activity.idempotency_key == activity.fill.idempotency_key == parse_trade_v2(row).idempotency_key
        assert activity.usdc_size == Decimal(str(row["usdc_size"]))  # as sent, fees included
        assert activity.token_id == row["token_id"]
        assert activity.outcome_index == 0
    assert activities[0].price == Decimal("0.9300000035")
    assert [activity.fee_usdc for activity in activities] == [Decimal("0.000000"), Decimal("0.489750")]


def test_a_trade_activity_row_gets_the_identity_of_the_same_fill_read_from_v2_trades():
    trade_row = recorded_trade_rows()[0]
    activity_row = dict(
        trade_row, type="TRADE", usdc_size=9.6, outcome_index=999, event_slug="", title="another title"
    )  # the feeds differ in the decorations of one fill, never in its identity

    from_trades = OccurrenceCounter().numbered([parse_trade_v2(trade_row)])[0]
    from_activity = OccurrenceCounter().numbered([parse_activity_v2(activity_row)])[0]

    assert from_activity.idempotency_key == from_trades.idempotency_key
    assert from_activity.fee_usdc == Decimal("0.100000")  # 9.6 paid for 10 × 0.95


def test_the_fill_recorded_on_both_v1_feeds_keeps_one_identity_in_its_v2_shapes():
    shared_tx = "0x619b5c5d241d7c378edb5e823a12b613038a0da243a3136cf9ee2a955465c233"
    on_feed = next(row for row in load_fixture("insiderwatch/trades.json") if row["transactionHash"] == shared_tx)
    in_activity = next(row for row in load_fixture("insiderwatch/activity.json") if row["transactionHash"] == shared_tx)

    assert parse_activity_v2(as_v2(in_activity)).idempotency_key == parse_trade_v2(as_v2(on_feed)).idempotency_key


def test_a_sell_pays_its_fee_out_of_the_notional():
    sells = [as_v2(row) for row in load_fixture("insiderwatch/activity.json") if row["side"] == "SELL"]

    fees = [parse_activity_v2(row).fee_usdc for row in sells]

    assert sorted(fees) == [Decimal("0.000000"), Decimal("0.167510"), Decimal("0.181090")]


@pytest.mark.parametrize("path", ["insiderwatch/activity.json", "polymarket-smart-money/activity.json",
                                  "polymarket-smart-money/activity_all.json", "v2/py-sdk/activity.json"])
def test_the_ledgers_figures_parse_reads_what_the_full_parse_reads_and_refuses_what_it_refuses(path):
    """`parse_activity_figures` (the ledger's re-read of landed rows) against `parse_activity_v2`:
    the same figures under the landed key, and a hostile value in a field it reads refused alike."""
    ledger_fields = ("activity_type", "occurred_at", "transaction_hash", "condition_id", "token_id", "side", "size",
                     "usdc_size", "price", "outcome_index", "fee_usdc", "is_trade")
    fill_fields = ("transaction_hash", "asset", "condition_id", "side", "size", "price", "usdc_size", "traded_at",
                   "outcome_index")
    read = {"type", "timestamp", "transaction_hash", "condition_id", "token_id", "side", "size", "usdc_size", "price",
            "outcome_index"}
    for row in (as_v2(row) for row in load_fixture(path)):
        full, figures = parse_activity_v2(row), parse_activity_figures(row, idempotency_key="landed-key")
        assert figures.idempotency_key == "landed-key"
        assert [getattr(figures, name) for name in ledger_fields] == [getattr(full, name) for name in ledger_fields]
        if full.fill is not None:
            assert figures.fill.idempotency_key == "landed-key"
            assert [getattr(figures.fill, name) for name in fill_fields] == [getattr(full.fill, name)
                                                                            for name in fill_fields]
        for key in read & set(row):
            for value in WEIRD_VALUES:
                hostile = dict(row, **{key: value})
                outcomes = []
                for parse in (parse_activity_v2, lambda r: parse_activity_figures(r, idempotency_key="k")):
                    try:
                        outcomes.append(parse(hostile).fill is not None)
                    except MalformedRow:
                        outcomes.append("malformed")
                assert outcomes[0] == outcomes[1], (path, key, value, outcomes)


@pytest.mark.parametrize(
    ("path", "types"),
    [
        ("insiderwatch/activity.json", {"TRADE": 14, "REDEEM": 6}),
        ("polymarket-smart-money/activity.json", {"REDEEM": 15}),
        (
            "polymarket-smart-money/activity_all.json",
            {"TRADE": 42, "REWARD": 4, "REDEEM": 2, "MAKER_REBATE": 1, "TAKER_REBATE": 1},
        ),
    ],
)
def test_it_keeps_every_activity_type_as_a_row_of_its_own_never_a_dead_letter(path, types):
    rows = [as_v2(row) for row in load_fixture(path)]

    activities = OccurrenceCounter().numbered(parse_activity_v2(row) for row in rows)

    found: dict[str, int] = {}
    for activity in activities:
        found[activity.activity_type] = found.get(activity.activity_type, 0) + 1
    assert found == types
    assert len({activity.idempotency_key for activity in activities}) == len(rows)
    assert all(activity.occurrence == 0 for activity in activities)  # no two recorded rows are identical
    assert all(activity.is_trade == (activity.activity_type == "TRADE") for activity in activities)


def test_it_reads_a_reward_row_as_an_amount_with_no_market():
    reward_row = next(as_v2(row) for row in load_fixture("polymarket-smart-money/activity_all.json") if row["type"] == "REWARD")

    reward = parse_activity_v2(reward_row)

    assert (reward.condition_id, reward.token_id, reward.side, reward.outcome, reward.outcome_index) == (None,) * 5
    assert reward.usdc_size == reward.size == Decimal(str(reward_row["usdc_size"]))
    assert reward.fee_usdc is None
    assert reward.transaction_hash == reward_row["transaction_hash"]


def test_the_five_worthless_redeems_of_one_transaction_keep_five_identities():
    rows = [as_v2(row) for row in load_fixture("polymarket-smart-money/activity.json") if row["size"] == 0]
    assert len(rows) == 5 and len({row["transaction_hash"] for row in rows}) == 1

    redeems = [parse_activity_v2(row) for row in rows]

    assert len({redeem.idempotency_key for redeem in redeems}) == 5  # they differ by condition
    assert all(redeem.usdc_size == 0 and redeem.price == 0 for redeem in redeems)


def test_identical_activity_rows_of_one_transaction_are_two_rows():
    redeem = next(as_v2(row) for row in load_fixture("insiderwatch/activity.json") if row["type"] == "REDEEM")

    first, second = OccurrenceCounter().numbered([parse_activity_v2(redeem), parse_activity_v2(copy.deepcopy(redeem))])

    assert (first.occurrence, second.occurrence) == (0, 1)
    assert first.idempotency_key != second.idempotency_key
    assert first.idempotency_key[:11] == second.idempotency_key[:11] == f"{redeem['timestamp']}-"


def test_a_type_not_known_today_is_kept_as_sent():
    tip = dict(as_v2(load_fixture("polymarket-smart-money/activity_all.json")[0]), type="Tip", side="in")

    activity = parse_activity_v2(tip)

    assert activity.activity_type == "Tip"
    assert activity.is_known_type is False and activity.is_trade is False
    assert activity.side == "IN"
    assert activity.fee_usdc is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": None}, "type: missing"),
        ({"type": 7}, "type: not a string: 7"),
        ({"type": " "}, "type: empty"),
        ({"type": "TRADE", "usdc_size": None}, "usdc_size: missing"),
        ({"type": "TRADE", "token_id": ""}, "token_id: empty"),
        ({"type": "REDEEM", "proxy_wallet": "0x12"}, "proxy_wallet: not 0x + 40 hex digits"),
        ({"type": "REDEEM", "timestamp": None}, "timestamp: missing"),
        ({"type": "REDEEM", "transaction_hash": "0xabc"}, "transaction_hash: not 0x + 64 hex digits"),
        ({"type": "REDEEM", "usdc_size": "lots"}, "usdc_size: not a number"),
        ({"type": "REWARD", "condition_id": "0x12"}, "condition_id: not 0x + 64 hex digits"),
    ],
)
def test_it_rejects_a_malformed_activity_row_naming_the_field(change, reason):
    row = dict(load_fixture("v2/py-sdk/activity.json")[0], **change)

    with pytest.raises(MalformedRow) as raised:
        parse_activity_v2(row)

    assert str(raised.value).startswith(reason)


def test_the_recorded_pages_straddle_a_second_and_number_alike_in_one_walk_or_two():
    first_page, second_page = (
        parse_page(load_fixture(f"v2/polymarket-bot-v2/data-v2-trades-v1-page{number}.json"))[0] for number in (1, 2)
    )
    assert first_page[-1]["timestamp"] == second_page[0]["timestamp"] == 1791241832

    walk = OccurrenceCounter()
    keys = numbered_keys(first_page, walk)
    keys += numbered_keys(second_page, OccurrenceCounter.from_state(json.loads(json.dumps(walk.state()))))

    assert keys == numbered_keys(first_page + second_page)
    assert len(set(keys)) == 4


# --------------------------------------------------------------------------------------------------
# /v2/positions rows
# --------------------------------------------------------------------------------------------------


def a_position_row(**changes: Any) -> dict[str, Any]:
    row = copy.deepcopy(load_fixture("v2/py-sdk/positions.json")[0])
    row.update(changes)
    return row


def test_it_parses_every_recorded_v2_position_with_polymarkets_own_cost_and_pnl():
    rows = load_fixture("v2/py-sdk/positions.json")

    positions = [parse_position_v2(row) for row in rows]

    no, yes = positions
    assert (no.outcome, yes.outcome) == ("No", "Yes")
    assert no.opposite_token_id == yes.token_id and yes.opposite_token_id == no.token_id
    assert no.condition_id == yes.condition_id == "0x7ad403c3508f8e3912940fd1a913f227591145ca0614074208e0b962d5fcc422"
    assert no.status == "OPEN"
    assert no.current_size == Decimal(400000)
    assert no.avg_price == Decimal("0.5")
    assert no.realized_pnl == 0 and no.entry_fees_usdc == 0
    assert no.total_cost_usdc == Decimal(200000)
    assert no.current_price == Decimal("0.7545") and yes.current_price == Decimal("0.2455")
    assert no.percent_realized_pnl == Decimal("-94.1886")
    assert (no.mergeable, no.negative_risk, no.redeemable) == (True, True, False)
    assert no.outcome_index == 1 and yes.outcome_index == 0
    assert no.event_id == "31552"
    assert no.end_date == date(2028, 11, 7)
    assert no.last_event_at == datetime(2026, 8, 23, 15, 46, 10, tzinfo=UTC)


def test_it_parses_the_trimmed_position_printed_in_polymarkets_documentation():
    rows, pagination = parse_page(load_fixture("v2/doc-examples/docs-overview__v2-positions-example.json"))

    (position,) = [parse_position_v2(row) for row in rows]

    assert position.status == "REDEEMABLE"
    assert position.current_size == Decimal("86780.64")
    assert position.realized_pnl == Decimal("-1082.5533")
    assert position.entry_fees_usdc is None and position.outcome_index is None  # trimmed away
    assert pagination.has_more is True


@pytest.mark.parametrize("status", ["OPEN", "CLOSED", "REDEEMABLE", "REDEEMABLE_LOST", "closed"])
def test_it_reads_every_documented_position_status(status):
    assert parse_position_v2(a_position_row(status=status)).status == status.upper()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "LIQUIDATED"}, "status: not one of CLOSED, MERGEABLE, OPEN, REDEEMABLE, REDEEMABLE_LOST: 'LIQUIDATED'"),
        ({"status": None}, "status: missing"),
        ({"current_size": None}, "current_size: missing"),
        ({"current_size": -1}, "current_size: negative"),
        ({"avg_price": 1.2}, "avg_price: outside [0, 1]"),
        ({"realized_pnl": "x"}, "realized_pnl: not a number"),
        ({"token_id": "0x1"}, "token_id: not a decimal token id"),
        ({"condition_id": "0x1"}, "condition_id: not 0x + 64 hex digits"),
        ({"mergeable": "maybe"}, "mergeable: not a boolean"),
        ({"end_date": "soon"}, "end_date: not an RFC 3339 date/time"),
    ],
)
def test_it_rejects_a_malformed_position_naming_the_field(change, reason):
    with pytest.raises(MalformedRow) as raised:
        parse_position_v2(a_position_row(**change))

    assert str(raised.value).startswith(reason)


# --------------------------------------------------------------------------------------------------
# /v2/resolutions rows
# --------------------------------------------------------------------------------------------------


def test_it_reads_a_resolved_protocol_v2_market_with_its_payouts_as_fractions():
    rows, pagination = parse_page(load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-v2-resolved.json"), paginated=False)

    (resolution,) = [parse_resolution_v2(row) for row in rows]

    assert resolution.condition_id == "0x015ecdbafe90dfcb60b2f38afe44f4be85000000000000000000000000000000"
    assert resolution.is_resolved is True
    assert resolution.payouts_micro_usdc == (1_000_000, 0)
    assert resolution.payouts == (Decimal(1), Decimal(0))
    assert resolution.winner_index == 0
    assert resolution.resolved_at == datetime(2026, 10, 5, 21, 35, 56, tzinfo=UTC)
    assert resolution.resolved_block == 95020670
    assert resolution.reporter == "CHAINLINK"
    assert (resolution.was_disputed, resolution.was_arbitrated) == (False, False)
    assert resolution.transaction_hash is None and resolution.log_index is None  # "" and ""
    assert pagination == Pagination(limit=None, offset=None, has_more=False, next_cursor=None)


def test_it_reads_a_resolved_v1_market_whose_second_outcome_won():
    (row,) = load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-v1-resolved.json")["data"]

    resolution = parse_resolution_v2(row)

    assert resolution.payouts == (Decimal(0), Decimal(1))
    assert resolution.winner_index == 1
    assert resolution.log_index == 993
    assert resolution.transaction_hash == row["transaction_hash"]
    assert resolution.reporter is None and resolution.was_arbitrated is None  # not in this row


def test_an_active_resolution_says_it_is_not_resolved_and_has_no_payouts():
    (row,) = load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-v2-active.json")["data"]

    resolution = parse_resolution_v2(row)

    assert resolution.condition_id == CANARY_CONDITION
    assert resolution.status == "active"
    assert resolution.is_resolved is False
    assert (resolution.payouts, resolution.winner_index, resolution.resolved_at) == (None, None, None)
    assert resolution.last_updated_at == datetime(2026, 10, 5, 22, 20, 52, tzinfo=UTC)


def test_it_reads_the_question_keyed_rows_which_never_carry_payouts():
    rows = load_fixture("v2/py-sdk/resolutions.json")

    resolved, posed = [parse_resolution_v2(row) for row in rows]

    assert resolved.question_id == rows[0]["question_id"]
    assert resolved.is_resolved is True
    assert resolved.payouts is None and resolved.winner_index is None  # resolved, but not settled by this row
    assert resolved.price == Decimal(0)
    assert resolved.reproposed_price is None  # "69": UMA's "no price"
    assert resolved.last_updated_at == datetime(2026, 7, 29, 20, 11, 59, tzinfo=UTC)  # Unix seconds as text
    assert resolved.question_rules_updated is True
    assert posed.status == "posed" and posed.is_resolved is False
    assert (posed.proposed_price, posed.price) == (None, None)
    assert posed.log_index == 139


def test_a_split_payout_has_no_single_winner():
    (row,) = load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-v2-resolved.json")["data"]

    resolution = parse_resolution_v2(dict(row, payouts=[500000, 500000]))

    assert resolution.payouts == (Decimal("0.5"), Decimal("0.5"))
    assert resolution.winner_index is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"payouts": [1000000]}, "payouts: not a list of two or more payouts"),
        ({"payouts": "1000000,0"}, "payouts: not a list of two or more payouts"),
        ({"payouts": [1000001, 0]}, "payouts[0]: more than 1 USDC per share"),
        ({"payouts": [-1, 0]}, "payouts[0]: negative"),
        ({"payouts": [0.5, 0.5]}, "payouts[0]: not a whole number"),
        ({"status": "active"}, "payouts: served on a row whose status is 'active'"),
        ({"status": None}, "status: missing"),
        ({"condition_id": ""}, "condition_id: missing (and no question_id)"),
        ({"condition_id": "0x1234"}, "condition_id: not 0x + 64 hex digits"),
        ({"resolved_block": "soon"}, "resolved_block: not a whole number"),
        ({"resolved_at": "yesterday"}, "resolved_at: not an RFC 3339 date/time"),
        ({"was_disputed": "no"}, "was_disputed: not a boolean"),
    ],
)
def test_it_rejects_a_malformed_resolution_naming_the_field(change, reason):
    (row,) = load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-v2-resolved.json")["data"]

    with pytest.raises(MalformedRow) as raised:
        parse_resolution_v2(dict(row, **change))

    assert str(raised.value).startswith(reason)


# --------------------------------------------------------------------------------------------------
# Bodies: the page envelope, the error body, /v2/status
# --------------------------------------------------------------------------------------------------


def test_it_reads_the_pagination_of_both_recorded_trades_pages_with_their_signed_cursors():
    first, second = (load_fixture(f"v2/polymarket-bot-v2/data-v2-trades-v1-page{number}.json") for number in (1, 2))

    (first_rows, first_page), (second_rows, second_page) = parse_page(first), parse_page(second)

    assert len(first_rows) == len(second_rows) == 2
    assert first_page == Pagination(limit=2, offset=0, has_more=True, next_cursor=first["pagination"]["next_cursor"])
    assert second_page.offset == 2 and second_page.has_more is True
    assert second_page.next_cursor is not None and second_page.next_cursor != first_page.next_cursor


def test_the_recorded_empty_page_is_the_end_of_its_walk():
    rows, pagination = parse_page(load_fixture("v2/polymarket-bot-v2/data-v2-trades-v2-empty.json"))

    assert rows == []
    assert pagination == Pagination(limit=3, offset=0, has_more=False, next_cursor=None)


@pytest.mark.parametrize("page", ["data-v2-prices-history-page1.json", "data-v2-prices-history-page2.json"])
def test_it_reads_every_recorded_prices_history_page_as_a_page(page):
    body = load_fixture(f"v2/polymarket-bot-v2/{page}")

    rows, pagination = parse_page(body)

    assert [row["price"] for row in rows] == [0.505] * 3
    assert pagination.has_more is True and pagination.next_cursor == body["pagination"]["next_cursor"]


def test_it_reads_the_recorded_open_interest_body_as_one_complete_page():
    rows, pagination = parse_page(load_fixture("v2/polymarket-bot-v2/data-v2-oi-v2.json"), paginated=False)

    assert parse_condition_id(rows[0]["condition_id"], field="condition_id") == CANARY_CONDITION
    assert pagination.has_more is False and pagination.next_cursor is None


def test_a_null_data_member_is_an_empty_page_not_an_error():
    rows, pagination = parse_page({"data": None, "pagination": {"limit": 5, "offset": 0, "has_more": False, "next_cursor": None}})

    assert rows == [] and pagination.has_more is False


def test_an_empty_page_in_mid_walk_does_not_end_the_walk():
    rows, pagination = parse_page({"data": [], "pagination": {"limit": 5, "offset": 5, "has_more": True, "next_cursor": "c2"}})

    assert rows == []
    assert pagination.has_more is True and pagination.next_cursor == "c2"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html>Access denied</html>", "page: not an object"),
        ([], "page: not an object"),
        ({"pagination": {}}, "page: no data member"),
        ({"data": {"rows": []}, "pagination": {}}, "page: data: not a list"),
        ({"data": []}, "pagination: not an object"),
        (
            {"data": [], "pagination": {"limit": 2, "offset": 0, "has_more": True, "next_cursor": None}},
            "pagination: has_more True",
        ),
        (
            {"data": [], "pagination": {"limit": 2, "offset": 0, "has_more": False, "next_cursor": "c"}},
            "pagination: has_more False",
        ),
        ({"data": [], "pagination": {"limit": 2, "offset": 0, "has_more": "yes", "next_cursor": None}}, "pagination.has_more"),
        ({"data": [], "pagination": {"limit": 2, "offset": 0, "has_more": True, "next_cursor": ""}}, "pagination.next_cursor"),
        ({"data": [], "pagination": {"limit": "2", "offset": 0, "has_more": False, "next_cursor": None}}, "pagination.limit"),
        ({"data": [], "pagination": {"limit": 2, "has_more": False, "next_cursor": None}}, "pagination.offset"),
    ],
)
def test_a_page_of_another_shape_is_a_malformed_body_not_a_malformed_row(body, reason):
    with pytest.raises(MalformedBody) as raised:
        parse_page(body)

    assert str(raised.value).startswith(reason)
    assert not isinstance(raised.value, MalformedRow)


def test_an_error_body_served_as_a_page_says_what_the_upstream_said():
    body = load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json")

    with pytest.raises(MalformedBody, match=r"invalid_request: invalid resolution condition id: .* \(trace_id 561912ae"):
        parse_page(body, paginated=False)


def test_it_reads_the_recorded_400_error_body():
    body = load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json")

    error = parse_upstream_error(body)

    assert error == UpstreamErrorBody(
        error="invalid resolution condition id: 0x017791f201d5a788e0039e511fc1900e5f0000000000000000000000000000",
        code="invalid_request",
        retryable=False,
        trace_id="561912ae6def4118ae57a3e7a86d92aa",
        parameter="condition",
    )


def test_the_condition_the_400_refused_is_the_canary_condition_without_its_padding():
    refused = load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json")["error"].rsplit(" ", 1)[1]

    assert len(refused) == 2 + 62
    assert parse_condition_id(refused, field="condition") == CANARY_CONDITION


def test_it_reads_a_retryable_error_without_a_parameter():
    error = parse_upstream_error({"error": "slow down", "code": "rate_limited", "retryable": True, "trace_id": "t1"})

    assert (error.code, error.retryable, error.trace_id, error.parameter) == ("rate_limited", True, "t1", None)


@pytest.mark.parametrize(
    "body",
    ["<!DOCTYPE html><title>403</title>", None, {"error": "x"}, {"error": "x", "code": "internal", "retryable": "yes"}],
)
def test_an_error_body_of_another_shape_is_a_malformed_body(body):
    with pytest.raises(MalformedBody, match=r"^error body"):
        parse_upstream_error(body)


def a_status_body(**serving: Any) -> dict[str, Any]:
    """A `/v2/status` body with the members Polymarket's documentation names (none is recorded)."""
    return {
        "computed_at": "2026-12-01T21:00:00Z",
        "age_seconds": 4,
        "serving": {"lag_seconds": 12.5, "worst": "activity_feed", **serving},
        "ingestion": {"tail": 95024068, "worst": [{"name": "ctf_exchange/OrderFilled", "behind_blocks": 3}]},
    }


def test_it_reads_the_serving_lag_and_the_worst_mechanism_of_the_upstream():
    status = parse_upstream_status(a_status_body())

    assert status.measured is True
    assert status.lag_seconds == Decimal("12.5")
    assert status.worst == "activity_feed"
    assert status.computed_at == datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
    assert status.age_seconds == Decimal(4)
    assert status.ingestion == a_status_body()["ingestion"]  # kept as sent


def test_a_measured_lag_of_zero_is_not_the_same_claim_as_not_measured_yet():
    measured = parse_upstream_status(a_status_body(lag_seconds=0))
    not_yet = parse_upstream_status(
        {"error": "not measured yet", "code": "dependency_unavailable", "retryable": True, "trace_id": "t9"}, http_status=503
    )

    assert (measured.measured, measured.lag_seconds) == (True, Decimal(0))
    assert (not_yet.measured, not_yet.lag_seconds) == (False, None)
    assert not_yet.error is not None and not_yet.error.trace_id == "t9"


def test_a_503_without_a_json_error_body_is_still_not_measured_yet():
    assert parse_upstream_status("<html>503</html>", http_status=503).measured is False


def test_a_status_snapshot_without_a_lag_is_not_measured():
    assert parse_upstream_status(a_status_body(lag_seconds=None)).measured is False


@pytest.mark.parametrize(
    ("body", "http_status", "reason"),
    [
        (a_status_body(), 500, "status: HTTP 500"),
        ({"serving": "fine"}, 200, "status: serving: not an object"),
        ("<html>", 200, "status: not an object"),
        (a_status_body(lag_seconds=-3), 200, "status: serving.lag_seconds: negative"),
        (a_status_body(lag_seconds="soon"), 200, "status: serving.lag_seconds: not a number"),
        (dict(a_status_body(), ingestion="green"), 200, "status: ingestion: not an object"),
    ],
)
def test_a_status_of_another_shape_is_a_malformed_body(body, http_status, reason):
    with pytest.raises(MalformedBody) as raised:
        parse_upstream_status(body, http_status=http_status)

    assert str(raised.value).startswith(reason)


# --------------------------------------------------------------------------------------------------
# Gamma markets by protocol version
# --------------------------------------------------------------------------------------------------


def btc_15m_market_row(**changes: Any) -> dict[str, Any]:
    """The real Gamma v1 market (5308512) whose trades are recorded above, with some fields changed."""
    row = copy.deepcopy(load_fixture("v2/polymarket-bot-v2/gamma-market-v1-btc15m.json"))
    row.update(changes)
    return row


def a_protocol_v2_market_row(**changes: Any) -> dict[str, Any]:
    """The real v1 market row carrying the fields of Polymarket's documented Protocol V2 market
    (no live V2 market from Gamma has been published) and a V2 condition id."""
    row = btc_15m_market_row(conditionId=CANARY_CONDITION)
    row.update(load_fixture("v2/doc-examples/polymarket-bot-v2__gamma-market-v2-docs-example.json"))
    row.update(changes)
    return row


def test_it_reads_the_recorded_v1_gamma_market_and_its_trades_name_its_tokens_and_outcomes():
    market = parse_gamma_market(btc_15m_market_row())

    assert market.protocol_version == "v1"
    assert market.gamma_id == "5308512"
    assert market.condition_id == BTC_15M_CONDITION
    assert market.outcomes == ["Up", "Down"]
    assert market.token_ids == [BTC_15M_UP_TOKEN, BTC_15M_DOWN_TOKEN]
    assert market.outcome_prices == [Decimal("0.905"), Decimal("0.095")]
    assert market.fees_enabled is True
    assert (market.closed, market.is_resolved) == (False, False)
    for fill in (parse_trade_v2(row) for row in recorded_trade_rows()):
        assert fill.condition_id == market.condition_id
        assert market.token_ids[fill.outcome_index] == fill.asset
        assert market.outcomes[fill.outcome_index] == fill.outcome


def test_it_reads_the_outcome_ids_of_a_protocol_v2_market_from_its_position_ids():
    documented = load_fixture("v2/doc-examples/polymarket-bot-v2__gamma-market-v2-docs-example.json")
    assert documented["clobTokenIds"] is None

    market = parse_gamma_market(a_protocol_v2_market_row())

    assert market.protocol_version == "v2"
    assert market.token_ids == documented["positionIds"]
    assert [len(token_id) for token_id in market.token_ids] == [75, 75]
    assert market.outcomes == ["Yes", "No"]
    assert market.outcome_prices == [Decimal("0.085"), Decimal("0.915")]
    assert market.condition_id == CANARY_CONDITION


def test_it_stores_the_bytes31_condition_of_a_v2_market_in_its_64_hex_form():
    market = parse_gamma_market(a_protocol_v2_market_row(conditionId=CANARY_CONDITION[:-2]))

    assert market.condition_id == CANARY_CONDITION


def test_a_v2_market_listed_from_the_recorded_clob_market_parses_with_its_position_ids():
    clob_market = load_fixture("v2/polymarket-bot-v2/clob-markets-v2.json")
    assert clob_market["v"] == "v2"

    market = parse_gamma_market(
        a_protocol_v2_market_row(
            conditionId=clob_market["c"],
            outcomes=json.dumps([token["o"] for token in clob_market["t"]]),
            outcomePrices='["0.5", "0.5"]',
            positionIds=[token["t"] for token in clob_market["t"]],
        )
    )

    assert market.condition_id == CANARY_CONDITION == parse_condition_id(clob_market["c"], field="c")
    assert market.outcomes == ["Up", "Down"]
    assert market.token_ids == [parse_token_id(token["t"], field="t") for token in clob_market["t"]]
    assert [len(token_id) for token_id in market.token_ids] == [75, 75]


def test_the_recorded_v1_gamma_markets_say_v1_and_a_row_without_a_version_is_v1_too():
    rows = load_fixture("prediction-market-vol/gamma_markets.json")
    assert [row["version"] for row in rows] == ["v1", "v1"]  # the 2024 election markets, as re-fetched

    for row in rows:
        unversioned = {name: value for name, value in row.items() if name != "version"}

        assert parse_gamma_market(row).protocol_version == parse_gamma_market(unversioned).protocol_version == "v1"
        assert parse_gamma_market(unversioned).token_ids == json.loads(row["clobTokenIds"])


def test_a_v2_market_that_lost_its_version_is_refused_not_paired_with_other_ids():
    unversioned = {name: value for name, value in a_protocol_v2_market_row().items() if name != "version"}

    with pytest.raises(MalformedRow, match=r"^clobTokenIds: missing for 2 outcomes of a v1 market$"):
        parse_gamma_market(unversioned)


def test_it_never_picks_outcome_ids_by_which_field_is_present():
    v1_ids = btc_15m_market_row()["clobTokenIds"]

    with pytest.raises(MalformedRow, match=r"^positionIds: missing for 2 outcomes of a v2 market$"):
        parse_gamma_market(a_protocol_v2_market_row(positionIds=None, clobTokenIds=v1_ids))
    with pytest.raises(MalformedRow, match=r"^clobTokenIds: missing for 2 outcomes of a v1 market$"):
        parse_gamma_market(btc_15m_market_row(clobTokenIds=None, positionIds=json.loads(v1_ids)))
    assert (
        parse_gamma_market(a_protocol_v2_market_row(clobTokenIds=v1_ids)).token_ids == a_protocol_v2_market_row()["positionIds"]
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"version": "v3"}, "version: not a protocol version this parser knows ('v1', 'v2'): 'v3'"),
        ({"version": 2}, "version: not a string: 2"),
        ({"version": ""}, "version: not a protocol version this parser knows"),
        (
            {"positionIds": ["651150819117105875331414918119047680898421632356043490229292782433651916800"]},
            "positionIds: 1 token ids",
        ),
        ({"positionIds": ["1", "1"]}, "positionIds: the same id for two outcomes"),
        ({"positionIds": ["1", "0x2"]}, "positionIds[1]: not a decimal token id"),
        ({"positionIds": "1,2"}, "positionIds: not valid JSON"),
        ({"conditionId": "0x" + "1" * 63}, "conditionId: not 0x + 64 hex digits"),
    ],
)
def test_it_rejects_a_protocol_v2_market_it_cannot_pair_with_its_outcomes(change, reason):
    with pytest.raises(MalformedRow) as raised:
        parse_gamma_market(a_protocol_v2_market_row(**change))

    assert str(raised.value).startswith(reason)


def test_it_takes_the_version_case_and_spacing_as_noise():
    assert parse_gamma_market(a_protocol_v2_market_row(version=" V2 ")).protocol_version == "v2"


def test_the_recorded_user_stats_card_parses_with_every_total_reconciliation_compares():
    card = load_fixture("v2/py-sdk/user-stats.json")
    stats = parse_user_stats_v2(card)
    totals = stats.totals
    assert stats.wallet == card["proxy_wallet"] and stats.join_date.timestamp() == card["join_date"]
    assert totals.trading_realized == Decimal(str(card["all_time_pnl"]["realized_pnl"]))
    assert (totals.fees, totals.fees_paid, totals.maker_rebate, totals.reward_income) == tuple(
        Decimal(str(card["all_time_pnl"][name])) for name in ("fees", "fees_paid", "maker_rebate", "reward_income"))
    assert parse_user_stats_v2({**card, "all_time_pnl": None}).totals is None


# --------------------------------------------------------------------------------------------------
# Every recorded v2 file is read above
# --------------------------------------------------------------------------------------------------

READ_ABOVE = {
    "doc-examples/docs-overview__v2-positions-example.json",
    "doc-examples/docs-public-analytics__v2-trades-example.json",
    "doc-examples/polymarket-bot-v2__gamma-market-v2-docs-example.json",
    "polymarket-bot-v2/clob-markets-v2.json",
    "polymarket-bot-v2/data-v2-oi-v2.json",
    "polymarket-bot-v2/data-v2-prices-history-page1.json",
    "polymarket-bot-v2/data-v2-prices-history-page2.json",
    "polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json",
    "polymarket-bot-v2/data-v2-resolutions-v1-resolved.json",
    "polymarket-bot-v2/data-v2-resolutions-v2-active.json",
    "polymarket-bot-v2/data-v2-resolutions-v2-resolved.json",
    "polymarket-bot-v2/data-v2-trades-v1-page1.json",
    "polymarket-bot-v2/data-v2-trades-v1-page2.json",
    "polymarket-bot-v2/data-v2-trades-v2-empty.json",
    "polymarket-bot-v2/gamma-market-v1-btc15m.json",
    "py-sdk/activity.json",
    "py-sdk/positions.json",
    "py-sdk/resolutions.json",
    "py-sdk/trades.json",
    "py-sdk/user-stats.json",
}
# Endpoints no Arbitra source reads (holders, per-wallet PnL series, portfolio value).
NOT_READ_BY_ANY_SOURCE = {"py-sdk/holders.json", "py-sdk/user-pnl.json", "py-sdk/value.json"}


def test_every_recorded_v2_file_is_read_by_a_test_here_or_by_no_source_at_all():
    load_fixture("v2/py-sdk/trades.json")  # fails, naming where, when the fixtures are missing
    v2_dir = FIXTURES_DIR / "v2"

    recorded = {str(path.relative_to(v2_dir)) for path in v2_dir.rglob("*.json")}

    assert recorded == READ_ABOVE | NOT_READ_BY_ANY_SOURCE


# --------------------------------------------------------------------------------------------------
# Hostile values: a row error or a body error, never anything else
# --------------------------------------------------------------------------------------------------

WEIRD_VALUES: list[Any] = [
    None, "", " ", "abc", "0x", "١٢", True, False, -1, 0, 1.5, 10**80, 2**300, float("nan"), float("inf"),
    "NaN", "1e999999999", [], [1, 2], {}, {"a": 1},
]  # fmt: skip


@pytest.mark.parametrize(
    ("parser", "base_rows"),
    [
        (parse_trade_v2, lambda: [recorded_trade_rows()[0]]),
        (
            parse_activity_v2,
            lambda: [
                load_fixture("v2/py-sdk/activity.json")[0],
                as_v2(load_fixture("polymarket-smart-money/activity_all.json")[0]),
            ],
        ),
        (parse_position_v2, lambda: load_fixture("v2/py-sdk/positions.json")[:1]),
        (
            parse_resolution_v2,
            lambda: load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-v2-resolved.json")["data"]
            + load_fixture("v2/py-sdk/resolutions.json")[:1],
        ),
        (parse_gamma_market, lambda: [a_protocol_v2_market_row(), btc_15m_market_row()]),
        (parse_user_stats_v2, lambda: [load_fixture("v2/py-sdk/user-stats.json")]),
    ],
)
def test_a_hostile_value_in_any_field_is_a_malformed_row_or_a_row(parser, base_rows):
    for base_row in base_rows():
        for key in base_row:
            for value in WEIRD_VALUES:
                try:
                    parser(dict(base_row, **{key: value}))
                    parser({name: field for name, field in base_row.items() if name != key})
                except MalformedRow:
                    pass
                except NotATrade:
                    assert parser is parse_trade_v2 and key == "type"


@pytest.mark.parametrize(
    ("parser", "base_body"),
    [
        (parse_page, lambda: load_fixture("v2/polymarket-bot-v2/data-v2-trades-v1-page1.json")),
        (lambda body: parse_page(body, paginated=False), lambda: load_fixture("v2/polymarket-bot-v2/data-v2-oi-v2.json")),
        (parse_upstream_error, lambda: load_fixture("v2/polymarket-bot-v2/data-v2-resolutions-62hex-invalid.json")),
        (parse_upstream_status, a_status_body),
    ],
)
def test_a_hostile_value_in_any_member_of_a_body_is_a_malformed_body_or_a_body(parser, base_body):
    body = base_body()
    members = [(body, key) for key in body] + [
        (body[key], inner) for key in body if isinstance(body[key], dict) for inner in body[key]
    ]
    for holder, key in members:
        original = holder[key]
        for value in WEIRD_VALUES:
            holder[key] = value
            with contextlib.suppress(MalformedBody):
                parser(body)
        holder[key] = original
    for value in WEIRD_VALUES:
        with contextlib.suppress(MalformedBody):
            parser(value)
