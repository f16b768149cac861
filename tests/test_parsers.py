"""The upstream-row parsers, checked against real recorded Polymarket payloads.

Pure Python: no database, no Django. The fixtures live in the shared workspace
(`../shared/fixtures/polymarket/`, see its README); `ARBITRA_FIXTURES_DIR` points elsewhere.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingest.sources.data_api.parsing import NotATrade, ParsedFill, fill_idempotency_key, parse_trade, parse_trade_v2
from ingest.sources.gamma.parsing import parse_gamma_event, parse_gamma_market
from ingest.sources.values import MalformedRow, parse_rfc3339_or_gamma_time, to_decimal

FIXTURES_DIR = Path(
    os.environ.get("ARBITRA_FIXTURES_DIR") or Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "polymarket"
)

# The fill that appears both on the global /trades feed (blanked outcomeIndex/eventSlug) and in
# the owner's /activity (real values); see the fixtures README.
SHARED_FILL_TX = "0x619b5c5d241d7c378edb5e823a12b613038a0da243a3136cf9ee2a955465c233"

V1_TO_V2_FIELD_NAMES = {
    "proxyWallet": "proxy_wallet",
    "transactionHash": "transaction_hash",
    "asset": "token_id",
    "conditionId": "condition_id",
    "outcomeIndex": "outcome_index",
    "eventSlug": "event_slug",
    "usdcSize": "usdc_size",
    "profileImage": "profile_image",
    "profileImageOptimized": "profile_image_optimized",
}


@pytest.fixture(autouse=True)
def _isolated_app_redis():
    """Overrides the suite-wide Redis flush of conftest.py: these tests are pure and must not
    fail because a shared Redis is restarting under another test run."""
    return


def load_fixture(relative_path: str) -> Any:
    # Missing fixtures fail the run: a skip would let a suite that tested nothing pass.
    if not FIXTURES_DIR.is_dir():
        pytest.fail(
            f"Polymarket fixtures not found at {FIXTURES_DIR}: check out the shared workspace beside the project "
            "(../shared/fixtures) or set ARBITRA_FIXTURES_DIR",
            pytrace=False,
        )
    return json.loads((FIXTURES_DIR / relative_path).read_text(encoding="utf-8"))


def trade_rows_of(relative_path: str) -> list[dict[str, Any]]:
    return [row for row in load_fixture(relative_path) if row.get("type", "TRADE") == "TRADE"]


def a_trades_row(**changes: Any) -> dict[str, Any]:
    """A real global-feed row (insiderwatch/trades.json[0]) with some fields changed."""
    row = copy.deepcopy(load_fixture("insiderwatch/trades.json")[0])
    row.update(changes)
    return row


def without(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != key}


def as_v2(row: dict[str, Any]) -> dict[str, Any]:
    return {V1_TO_V2_FIELD_NAMES.get(name, name): value for name, value in row.items()}


def market_row(**changes: Any) -> dict[str, Any]:
    """The real Trump 2024 Gamma market row with some fields changed."""
    row = copy.deepcopy(load_fixture("prediction-market-vol/gamma_markets.json")[0])
    row.update(changes)
    return row


# --------------------------------------------------------------------------------------------------
# Fills from real payloads
# --------------------------------------------------------------------------------------------------


def test_it_parses_every_row_of_the_global_trades_feed_with_the_sentinels_as_unknown():
    rows = load_fixture("insiderwatch/trades.json")

    fills = [parse_trade(row) for row in rows]

    assert len(fills) == 5
    for row, fill in zip(rows, fills, strict=True):
        assert fill.transaction_hash == row["transactionHash"]
        assert fill.asset == row["asset"]
        assert fill.wallet == row["proxyWallet"]
        assert fill.outcome == row["outcome"]
        assert fill.outcome_index is None  # 999 on every row of the global feed
        assert fill.event_slug is None  # "" on every row of the global feed
        assert fill.market_slug == row["slug"]
        assert fill.traded_at == datetime(2026, 8, 20, 15, 55, 22, tzinfo=UTC)
        assert fill.usdc_size == fill.size * fill.price  # /trades sends no usdcSize
        assert fill.is_activity is False


def test_it_parses_every_large_fill_with_its_profile_fields_and_blanks_an_empty_pseudonym():
    rows = load_fixture("polymarket-smart-money/trades.json")

    fills = [parse_trade(row) for row in rows]

    assert [fill.name for fill in fills] == [row["name"] for row in rows]
    assert [fill.pseudonym for fill in fills] == [row["pseudonym"] or None for row in rows]
    assert None in [fill.pseudonym for fill in fills]
    assert [fill.profile_image for fill in fills] == [row["profileImage"] or None for row in rows]
    assert fills[4].profile_image is not None and fills[4].profile_image.startswith("https://")
    assert fills[0].outcome_index == 1
    assert fills[0].event_slug == "will-the-us-confirm-that-aliens-exist-before-2027"


def test_it_gives_the_25_maduro_fills_25_distinct_keys_although_they_share_8_transactions():
    rows = load_fixture("insiderwatch/trades_maduro.json")

    fills = [parse_trade(row) for row in rows]

    assert len({fill.transaction_hash for fill in fills}) == 8
    assert len({fill.idempotency_key for fill in fills}) == 25
    assert all(len(fill.idempotency_key) == 64 for fill in fills)


def test_it_keeps_float_noise_exactly_as_sent():
    noisy_row = next(row for row in load_fixture("insiderwatch/trades_maduro.json") if row["price"] == 0.9809999989)

    fill = parse_trade(noisy_row)

    assert str(fill.price) == "0.9809999989"
    assert to_decimal(0.9809999989, field="price") == Decimal("0.9809999989")
    binary_expansion = Decimal.from_float(0.9809999989)
    assert to_decimal(0.9809999989, field="price") != binary_expansion


def test_it_parses_every_trade_row_of_both_activity_recordings_and_takes_usdc_size_as_sent():
    for path, expected_trades in (
        ("insiderwatch/activity.json", 14),
        ("polymarket-smart-money/activity_all.json", 42),
    ):
        rows = trade_rows_of(path)

        fills = [parse_trade(row) for row in rows]

        assert len(fills) == expected_trades, path
        for row, fill in zip(rows, fills, strict=True):
            assert fill.is_activity is True
            assert fill.usdc_size == Decimal(str(row["usdcSize"]))
            assert fill.outcome_index == row["outcomeIndex"]
            assert fill.event_slug == row["eventSlug"]


def test_it_does_not_rebuild_an_activity_notional_that_includes_fees():
    row = next(row for row in trade_rows_of("insiderwatch/activity.json") if row["transactionHash"] == SHARED_FILL_TX)

    fill = parse_trade(row)

    assert fill.usdc_size == Decimal("3.227079")  # as sent, fees included
    assert fill.size * fill.price == Decimal("2.9999990000000097")  # what a rebuild would give


@pytest.mark.parametrize(
    ("path", "non_trade_rows"),
    [
        ("insiderwatch/activity.json", 6),
        ("polymarket-smart-money/activity.json", 15),
        ("polymarket-smart-money/activity_all.json", 8),
    ],
)
def test_it_raises_not_a_trade_rather_than_malformed_row_for_redeems_rewards_and_rebates(path, non_trade_rows):
    rows = [row for row in load_fixture(path) if row["type"] != "TRADE"]
    assert len(rows) == non_trade_rows

    for row in rows:
        with pytest.raises(NotATrade) as raised:
            parse_trade(row)
        assert not isinstance(raised.value, ValueError)
        assert raised.value.activity_type == row["type"]


def test_it_gives_the_same_key_to_a_fill_seen_on_the_global_feed_and_in_activity():
    from_global_feed = next(
        parse_trade(row) for row in load_fixture("insiderwatch/trades.json") if row["transactionHash"] == SHARED_FILL_TX
    )
    from_activity = next(
        parse_trade(row) for row in trade_rows_of("insiderwatch/activity.json") if row["transactionHash"] == SHARED_FILL_TX
    )

    assert from_global_feed.idempotency_key == from_activity.idempotency_key
    assert from_global_feed.outcome_index is None
    assert from_activity.outcome_index == 1
    assert from_global_feed.event_slug is None
    assert from_activity.event_slug == "btc-updown-5m-1787241300"


def test_it_parses_a_v2_snake_case_row_into_the_same_fill_as_its_v1_twin():
    rows = (
        load_fixture("insiderwatch/trades.json")
        + load_fixture("polymarket-smart-money/trades.json")
        + trade_rows_of("insiderwatch/activity.json")
    )

    for row in rows:
        assert parse_trade_v2(as_v2(row)) == parse_trade(row)


def test_it_names_the_snake_case_field_when_a_v2_row_is_malformed():
    v2_row = without(as_v2(a_trades_row()), "proxy_wallet")

    with pytest.raises(MalformedRow, match=r"^proxy_wallet: missing$"):
        parse_trade_v2(v2_row)


def test_it_builds_a_fill_that_carries_exactly_the_dataclass_fields_and_stays_frozen():
    fill = parse_trade(a_trades_row())

    assert set(vars(fill)) == {field.name for field in fields(ParsedFill)}
    assert fill == ParsedFill(**vars(fill))
    with pytest.raises(FrozenInstanceError):
        fill.price = Decimal(0)  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# The idempotency key
# --------------------------------------------------------------------------------------------------


def test_it_gives_the_same_key_to_a_size_sent_as_int_float_string_or_padded_decimal():
    keys = {parse_trade(a_trades_row(size=size)).idempotency_key for size in (3, 3.0, "3", "3.000", Decimal("3.00"))}

    assert len(keys) == 1


def test_it_gives_the_same_key_to_a_timestamp_sent_as_int_float_or_numeric_string():
    fills = [parse_trade(a_trades_row(timestamp=value)) for value in (1787241322, 1787241322.0, "1787241322")]

    assert len({fill.idempotency_key for fill in fills}) == 1
    assert len({fill.traded_at for fill in fills}) == 1


def test_the_exposed_key_function_agrees_with_parse_trade_on_raw_and_stored_values():
    row = a_trades_row()
    fill = parse_trade(row)

    from_raw_values = fill_idempotency_key(
        transaction_hash=row["transactionHash"].upper().replace("0X", "0x"),
        asset=int(row["asset"]),
        wallet=row["proxyWallet"],
        side=row["side"].lower(),
        size=row["size"],
        price=row["price"],
        timestamp=row["timestamp"],
    )
    from_stored_values = fill_idempotency_key(
        transaction_hash=fill.transaction_hash,
        asset=fill.asset,
        wallet=fill.wallet,
        side=fill.side,
        size=fill.size,
        price=fill.price,
        timestamp=fill.traded_at,
    )

    assert from_raw_values == from_stored_values == fill.idempotency_key


def test_it_leaves_outcome_index_event_slug_outcome_and_title_out_of_the_key():
    plain = parse_trade(a_trades_row())
    decorated = parse_trade(a_trades_row(outcomeIndex=1, eventSlug="btc-updown", outcome="Up", title="Other", slug="x"))

    assert decorated.idempotency_key == plain.idempotency_key


@pytest.mark.parametrize(
    "identity_change",
    [
        {"transactionHash": "0x" + "1" * 64},
        {"asset": "1"},
        {"proxyWallet": "0x" + "2" * 40},
        {"side": "SELL"},
        {"size": 6.122448},
        {"price": 0.49},
        {"timestamp": 1787241323},
    ],
)
def test_it_gives_another_key_when_any_identity_field_differs(identity_change):
    assert parse_trade(a_trades_row(**identity_change)).idempotency_key != parse_trade(a_trades_row()).idempotency_key


def test_it_normalises_case_of_hashes_wallets_and_side_before_keying():
    row = a_trades_row()
    shouted = a_trades_row(
        transactionHash="0x" + row["transactionHash"][2:].upper(),
        conditionId="0x" + row["conditionId"][2:].upper(),
        proxyWallet="0x" + row["proxyWallet"][2:].upper(),
        side="buy",
    )

    fill = parse_trade(shouted)

    assert fill == parse_trade(row)
    assert fill.side == "BUY"


# --------------------------------------------------------------------------------------------------
# Fill values
# --------------------------------------------------------------------------------------------------


def test_it_reads_a_fractional_timestamp_to_the_microsecond():
    fill = parse_trade(a_trades_row(timestamp="1787241322.25"))

    assert fill.traded_at == datetime(2026, 8, 20, 15, 55, 22, 250000, tzinfo=UTC)


def test_it_turns_an_integer_asset_into_its_decimal_text():
    asset = 14240498870334766733818770818455241463603288152255425188497702591907997084431

    assert parse_trade(a_trades_row(asset=asset)).asset == str(asset)


def test_it_takes_a_blank_outcome_and_missing_profile_fields_as_unknown():
    fill = parse_trade(without(a_trades_row(outcome="", title=" "), "outcomeIndex"))

    assert fill.outcome is None
    assert fill.title is None
    assert fill.outcome_index is None
    assert fill.name is None and fill.pseudonym is None and fill.profile_image is None


def test_it_falls_back_to_the_optimized_profile_image_when_the_plain_one_is_empty():
    fill = parse_trade(a_trades_row(profileImage="", profileImageOptimized="https://example.test/p.png"))

    assert fill.profile_image == "https://example.test/p.png"


def test_it_accepts_the_price_bounds_zero_and_one():
    assert parse_trade(a_trades_row(price=0)).price == 0
    assert parse_trade(a_trades_row(price=1)).price == 1


# --------------------------------------------------------------------------------------------------
# Malformed fills
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row_change", "expected_reason"),
    [
        ({"proxyWallet": None}, "proxyWallet: missing"),
        ({"proxyWallet": "0x2e8b47"}, "proxyWallet: not 0x + 40 hex digits"),
        ({"price": "abc"}, "price: not a number: 'abc'"),
        ({"price": 1.5}, "price: outside [0, 1]: 1.5"),
        ({"price": -0.1}, "price: outside [0, 1]"),
        ({"price": True}, "price: a boolean is not a number: True"),
        ({"price": float("nan")}, "price: not a finite number"),
        ({"price": "Infinity"}, "price: not a finite number"),
        ({"price": None}, "price: missing"),
        ({"size": 0}, "size: not positive: 0"),
        ({"size": -2.5}, "size: not positive"),
        ({"size": "1e999999999"}, "size: out of range"),
        ({"timestamp": None}, "timestamp: missing"),
        ({"timestamp": "soon"}, "timestamp: not a number: 'soon'"),
        ({"timestamp": 1787241322000}, "timestamp: looks like milliseconds"),
        ({"timestamp": -1}, "timestamp: not a positive Unix time"),
        ({"timestamp": 5_000_000_000}, "timestamp: after the year 2100"),
        ({"side": "HOLD"}, "side: not BUY or SELL: 'HOLD'"),
        ({"side": ""}, "side: not BUY or SELL"),
        ({"side": None}, "side: missing"),
        ({"transactionHash": "0x619b5c"}, "transactionHash: not 0x + 64 hex digits"),
        ({"transactionHash": "0x" + "g" * 64}, "transactionHash: not 0x + 64 hex digits"),
        ({"transactionHash": ""}, "transactionHash: empty"),
        ({"conditionId": None}, "conditionId: missing"),
        ({"asset": ""}, "asset: empty"),
        ({"asset": "0xabc"}, "asset: not a decimal token id"),
        ({"asset": -1}, "asset: not a uint256 token id"),
        ({"outcomeIndex": "first"}, "outcomeIndex: not a whole number"),
        ({"outcomeIndex": -1}, "outcomeIndex: negative"),
        ({"outcomeIndex": 10**6}, "outcomeIndex: too large"),
        ({"title": 12}, "title: not a string: 12"),
        ({"type": None}, "type: not a string"),
        ({"type": "TRADE", "usdcSize": "lots"}, "usdcSize: not a number: 'lots'"),
        ({"type": "TRADE", "usdcSize": -1}, "usdcSize: negative"),
    ],
)
def test_it_rejects_a_malformed_fill_with_a_reason_naming_the_field(row_change, expected_reason):
    row = a_trades_row(**row_change)

    with pytest.raises(MalformedRow) as raised:
        parse_trade(row)

    assert expected_reason in str(raised.value)
    assert raised.value.reason == str(raised.value)


def test_it_rejects_a_fill_whose_required_fields_are_absent_naming_each_one():
    for key in ("proxyWallet", "transactionHash", "conditionId", "asset", "side", "size", "price", "timestamp"):
        with pytest.raises(MalformedRow, match=f"^{key}: missing$"):
            parse_trade(without(a_trades_row(), key))


def test_it_rejects_a_row_that_is_not_an_object():
    with pytest.raises(MalformedRow, match=r"^row: not an object"):
        parse_trade(["not", "a", "row"])  # type: ignore[arg-type]


def test_a_malformed_fill_never_raises_anything_but_malformed_row():
    weird_values: list[Any] = [
        None, "", " ", "abc", "0x", True, False, -1, 0, 1.5, 10**80, 2**300, float("nan"), float("inf"),
        "NaN", "1e999999999", "١٢", [], {}, object(),
    ]  # fmt: skip
    for base_row in (a_trades_row(), a_trades_row(type="TRADE", usdcSize=3.2)):
        for key in base_row:
            for value in weird_values:
                row = dict(base_row, **{key: value})
                try:
                    parse_trade(row)
                    parse_trade(without(base_row, key))
                except MalformedRow:
                    pass
                except NotATrade:
                    assert key == "type"


# --------------------------------------------------------------------------------------------------
# Numbers and times
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, "3"), (0.1, "0.1"), (6.122447, "6.122447"), (" 0.25 ", "0.25"), ("1e-5", "0.00001"), (Decimal("1.50"), "1.50")],
)
def test_to_decimal_reads_numbers_exactly(value, expected):
    assert to_decimal(value, field="amount") == Decimal(expected)


@pytest.mark.parametrize("value", [True, None, "abc", "", "NaN", "-Infinity", float("inf"), [], "1_000", "1e999999"])
def test_to_decimal_rejects_what_is_not_a_finite_number_naming_the_field(value):
    with pytest.raises(MalformedRow, match=r"^amount: "):
        to_decimal(value, field="amount")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-11-06 15:17:41+00", datetime(2024, 11, 6, 15, 17, 41, tzinfo=UTC)),
        ("2024-11-06T20:40:10Z", datetime(2024, 11, 6, 20, 40, 10, tzinfo=UTC)),
        ("2024-11-07T15:23:00.928768Z", datetime(2024, 11, 7, 15, 23, 0, 928768, tzinfo=UTC)),
        ("2024-01-04T17:33:51.47Z", datetime(2024, 1, 4, 17, 33, 51, 470000, tzinfo=UTC)),
        ("2024-01-04 17:33:51.448+00", datetime(2024, 1, 4, 17, 33, 51, 448000, tzinfo=UTC)),
        ("2024-11-06T10:17:41-05:00", datetime(2024, 11, 6, 15, 17, 41, tzinfo=UTC)),
        ("2026-08-15", datetime(2026, 8, 15, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_it_reads_gamma_and_rfc3339_times_as_utc(text, expected):
    parsed = parse_rfc3339_or_gamma_time(text)

    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() is not None
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", 1730906261, ["2024-11-06"]])
def test_it_rejects_a_time_it_cannot_read_naming_the_field(value):
    with pytest.raises(MalformedRow, match=r"^closedTime: "):
        parse_rfc3339_or_gamma_time(value, field="closedTime")


# --------------------------------------------------------------------------------------------------
# Gamma markets
# --------------------------------------------------------------------------------------------------


def test_it_resolves_the_trump_market_to_yes_from_its_final_prices():
    trump = parse_gamma_market(load_fixture("prediction-market-vol/gamma_markets.json")[0])

    assert trump.question == "Will Donald Trump win the 2024 US Presidential Election?"
    assert trump.outcomes == ["Yes", "No"]
    assert trump.outcome_prices == [Decimal(1), Decimal(0)]
    assert trump.winner_index == 0
    assert trump.outcomes[trump.winner_index] == "Yes"
    assert trump.is_resolved is True
    assert trump.is_void is False
    assert trump.closed_time == datetime(2024, 11, 6, 15, 17, 41, tzinfo=UTC)
    assert trump.resolved_at == trump.closed_time
    assert trump.uma_resolution_status == "resolved"


def test_it_reads_every_field_of_a_real_gamma_market():
    trump = parse_gamma_market(load_fixture("prediction-market-vol/gamma_markets.json")[0])

    assert trump.gamma_id == "253591"
    assert trump.condition_id == "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
    assert trump.slug == "will-donald-trump-win-the-2024-us-presidential-election"
    assert trump.description is not None and trump.description.startswith("This market will resolve")
    assert trump.token_ids == [
        "21742633143463906290569050155826241533067272736897614950488156847949938836455",
        "48331043336612883890938759509493159234755048973500640148014422747788308965732",
    ]
    assert trump.volume == Decimal("1531479284.504353")  # the string, not the float volumeNum
    assert trump.liquidity == Decimal(0)  # absent from this recording
    assert (trump.active, trump.closed, trump.archived) == (True, True, False)
    assert trump.end_date == datetime(2024, 11, 5, 12, 0, tzinfo=UTC)
    assert trump.created_at == datetime(2024, 1, 4, 17, 33, 51, 332000, tzinfo=UTC)
    assert trump.updated_at == datetime(2024, 11, 7, 15, 23, 0, 928768, tzinfo=UTC)
    assert trump.event_slug == "presidential-election-winner-2024"
    assert trump.event_title == "Presidential Election Winner 2024"
    assert trump.category is None
    assert trump.tags == []


def test_it_resolves_the_harris_market_to_no_although_its_last_trade_price_is_one_and_best_bid_is_missing():
    harris_row = load_fixture("prediction-market-vol/gamma_markets.json")[1]
    assert "bestBid" not in harris_row
    assert harris_row["lastTradePrice"] == 1

    harris = parse_gamma_market(harris_row)

    assert harris.winner_index == 1
    assert harris.outcomes[harris.winner_index] == "No"
    assert harris.resolved_at == datetime(2024, 11, 6, 18, 3, 54, tzinfo=UTC)


def test_it_does_not_resolve_a_market_that_is_not_closed_whatever_its_prices_active_or_archived_flags():
    market = parse_gamma_market(market_row(closed=False, active=False, archived=True, lastTradePrice=1))

    assert market.winner_index is None
    assert market.is_void is False
    assert market.is_resolved is False
    assert market.resolved_at is None


def test_it_does_not_resolve_a_closed_market_whose_prices_are_not_exactly_one_and_zeros():
    market = parse_gamma_market(market_row(outcomePrices='["0.9995", "0.0005"]'))

    assert market.is_resolved is False
    assert market.resolved_at is None


def test_it_resolves_the_winner_among_more_than_two_outcomes():
    market = parse_gamma_market(
        market_row(outcomes='["A", "B", "C"]', outcomePrices='["0", "1", "0"]', clobTokenIds='["1", "2", "3"]')
    )

    assert market.winner_index == 1


@pytest.mark.parametrize("prices", ['["0.5", "0.5"]', '["0.505", "0.495"]', '["0.51", "0.49"]'])
def test_it_voids_a_closed_half_half_market_that_uma_resolved(prices):
    market = parse_gamma_market(market_row(outcomePrices=prices))

    assert market.is_void is True
    assert market.winner_index is None
    assert market.is_resolved is True
    assert market.resolved_at == market.closed_time


def test_it_does_not_void_a_half_half_market_without_uma_resolution_or_outside_the_tolerance():
    assert parse_gamma_market(market_row(outcomePrices='["0.5", "0.5"]', umaResolutionStatus=None)).is_resolved is False
    assert parse_gamma_market(market_row(outcomePrices='["0.52", "0.48"]')).is_resolved is False


def test_it_accepts_real_lists_where_gamma_usually_sends_json_encoded_strings():
    market = parse_gamma_market(market_row(outcomes=["Yes", "No"], outcomePrices=[1, 0], clobTokenIds=["11", "22"]))

    assert market.outcomes == ["Yes", "No"]
    assert market.outcome_prices == [Decimal(1), Decimal(0)]
    assert market.token_ids == ["11", "22"]
    assert market.winner_index == 0


def test_it_takes_missing_outcome_arrays_as_empty_and_leaves_the_market_unresolved():
    market = parse_gamma_market(market_row(outcomes="", outcomePrices=None, clobTokenIds="[]"))

    assert (market.outcomes, market.outcome_prices, market.token_ids) == ([], [], [])
    assert market.is_resolved is False


def test_it_prefers_the_exact_volume_string_and_falls_back_to_volume_num():
    assert parse_gamma_market(market_row(volume="10.5", volumeNum=99)).volume == Decimal("10.5")
    assert parse_gamma_market(without(market_row(volumeNum=12.25), "volume")).volume == Decimal("12.25")
    assert parse_gamma_market(market_row(liquidity="7", liquidityNum=8.5)).liquidity == Decimal(7)
    assert parse_gamma_market(market_row(liquidityNum=8.5)).liquidity == Decimal("8.5")


def test_it_takes_the_category_from_the_market_then_the_event_then_the_first_tag():
    tagged_event = {
        "slug": "e",
        "title": "E",
        "tags": [{"label": "Politics"}, {"label": "Elections"}],
    }
    second_event = {"slug": "f", "tags": [{"label": "Elections"}, {"label": "US"}]}

    from_tags = parse_gamma_market(market_row(events=[tagged_event, second_event]))
    from_event = parse_gamma_market(market_row(events=[dict(tagged_event, category="US-current-affairs")]))
    from_market = parse_gamma_market(market_row(category="Politics-2024", events=[tagged_event]))

    assert from_tags.category == "Politics"
    assert from_tags.tags == ["Politics", "Elections", "US"]
    assert from_event.category == "US-current-affairs"
    assert from_market.category == "Politics-2024"


@pytest.mark.parametrize(
    ("row_change", "expected_reason"),
    [
        ({"conditionId": None}, "conditionId: missing"),
        ({"conditionId": "0x123"}, "conditionId: not 0x + 64 hex digits"),
        ({"id": None}, "id: missing"),
        ({"outcomePrices": "[1, 0"}, "outcomePrices: not valid JSON"),
        ({"outcomePrices": '{"Yes": 1}'}, "outcomePrices: JSON is not a list"),
        ({"outcomePrices": '["abc", "0"]'}, "outcomePrices[0]: not a number: 'abc'"),
        ({"outcomePrices": '["2", "0"]'}, "outcomePrices[0]: outside [0, 1]"),
        ({"outcomePrices": '["1", "0", "0"]'}, "outcomePrices: 3 prices for 2 outcomes"),
        ({"clobTokenIds": '["1"]'}, "clobTokenIds: 1 token ids for 2 outcomes"),
        ({"clobTokenIds": '["0xabc", "1"]'}, "clobTokenIds[0]: not a decimal token id"),
        ({"closed": "yes"}, "closed: not a boolean"),
        ({"closedTime": "06/11/2024"}, "closedTime: not an RFC 3339 date/time"),
        ({"volume": "lots"}, "volume: not a number"),
        ({"events": "presidential"}, "events: not a list of objects"),
    ],
)
def test_it_rejects_a_malformed_gamma_market_with_a_reason_naming_the_field(row_change, expected_reason):
    with pytest.raises(MalformedRow) as raised:
        parse_gamma_market(market_row(**row_change))

    assert expected_reason in str(raised.value)


# --------------------------------------------------------------------------------------------------
# Gamma events
# --------------------------------------------------------------------------------------------------


def test_it_parses_a_gamma_event_with_the_condition_ids_of_its_markets():
    markets = load_fixture("prediction-market-vol/gamma_markets.json")
    event_row = copy.deepcopy(markets[0]["events"][0])
    event_row["tags"] = [{"id": "2", "label": "Politics", "slug": "politics"}]
    event_row["markets"] = [
        {"conditionId": markets[0]["conditionId"].upper().replace("0X", "0x")},
        {"conditionId": markets[1]["conditionId"]},
        {"conditionId": markets[1]["conditionId"]},
        {"conditionId": ""},  # a market still being set up
    ]

    event = parse_gamma_event(event_row)

    assert event.gamma_id == "903193"
    assert event.slug == "presidential-election-winner-2024"
    assert event.title == "Presidential Election Winner 2024"
    assert event.category == "Politics"
    assert event.tags == ["Politics"]
    assert event.closed is True
    assert event.closed_time == datetime(2024, 11, 6, 20, 40, 10, tzinfo=UTC)
    assert event.created_at == datetime(2024, 1, 4, 17, 33, 51, 470000, tzinfo=UTC)
    assert event.market_condition_ids == [markets[0]["conditionId"], markets[1]["conditionId"]]


def test_it_rejects_a_gamma_event_listing_a_market_with_a_bad_condition_id():
    with pytest.raises(MalformedRow, match=r"^markets\[0\]\.conditionId: not 0x \+ 64 hex digits"):
        parse_gamma_event({"id": "1", "markets": [{"conditionId": "0xnope"}]})
