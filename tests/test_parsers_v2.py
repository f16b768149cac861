"""The Data API v2 and Protocol V2 parsers, checked against real recorded payloads.

Pure Python: no database, no Django. The fixtures live in the shared workspace
(`../shared/fixtures/polymarket/v2/`, see its README), found as tests/test_parsers.py finds them
(`ARBITRA_FIXTURES_DIR` points elsewhere). Every recorded v2 file has a test that parses all of it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ingest.sources.data_api.parsing import (
    OccurrenceCounter,
    fill_idempotency_key,
    parse_activity_v2,
    parse_trade,
    parse_trade_v2,
)
from ingest.sources.values import MalformedBody, MalformedRow, parse_condition_id, parse_token_id
from tests.test_parsers import V1_TO_V2_FIELD_NAMES, load_fixture

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
