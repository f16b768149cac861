"""The wallet ledger (marts.ledger) checked against hand-computed numbers and Polymarket's own.

Every case feeds `/v2/activity` rows exactly as served (snake_case) through `parse_activity_v2`.
Polymarket basis = pre-fee average cost (PnL subgraph definitions); cash basis = what moved.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

from marts.ledger import MarketTerms, activities_parse, wallet_ledger_compute

D = Decimal
FIXTURES = Path("/work/shared/fixtures/polymarket")
WALLET = "0x" + "ab" * 20
T0 = 1_790_000_000
YES_A, NO_A = "1001", "1002"
MARKET_A = "0x" + "a" * 64


def row(kind, *, at, size, usdc, price=0, token="", side="", condition=MARKET_A, outcome=999, tx=None):
    return {
        "proxy_wallet": WALLET, "timestamp": at, "condition_id": condition, "type": kind, "size": size,
        "usdc_size": usdc, "transaction_hash": tx or "0x" + hashlib.sha256(f"{kind}{at}{token}{side}{size}".encode()).hexdigest(),
        "price": price, "token_id": token, "side": side, "outcome_index": outcome, "title": "t", "slug": "s",
        "event_slug": "e", "outcome": "",
    }


def trade(side, token, *, at, size, price, usdc, outcome=0, condition=MARKET_A):
    return row("TRADE", at=at, size=size, usdc=usdc, price=price, token=token, side=side, condition=condition,
               outcome=outcome)


def binary(payouts=None, marks=()):
    return {MARKET_A: MarketTerms(MARKET_A, (YES_A, NO_A), None if payouts is None else tuple(D(p) for p in payouts),
                                  mark_prices=tuple(D(m) for m in marks))}


def ledger_of(rows, markets=None):
    return wallet_ledger_compute(activities=activities_parse(rows), markets=markets if markets is not None else binary())


def position(ledger, token):
    return next(p for p in ledger.positions if p.token_id == token)


def test_a_taker_fee_is_kept_per_fill_and_only_the_cash_basis_pays_it():
    # BUY 100 @ 0.40 paying 41 (fee 1); SELL 100 @ 0.50 receiving 49 (fee 1).
    ledger = ledger_of([trade("BUY", YES_A, at=T0, size=100, price=0.4, usdc=41),
                        trade("SELL", YES_A, at=T0 + 60, size=100, price=0.5, usdc=49)])
    assert [entry.fee for entry in ledger.entries] == [D("1.000000"), D("1.000000")]
    held = position(ledger, YES_A)
    assert held.realized_pnl == D(10)  # 100 × (0.50 − 0.40), pre-fee
    assert held.cash_realized_pnl == D(8)  # 49 − 41
    assert (held.avg_price, held.cash_avg_price) == (D("0.4"), D("0.41"))
    assert ledger.fees_paid == D(2) and ledger.cash_pnl == D(8)


def test_a_split_buys_both_outcomes_at_half_and_selling_one_side_realises_against_half():
    ledger = ledger_of([row("SPLIT", at=T0, size=100, usdc=100),
                        trade("SELL", YES_A, at=T0, size=100, price=0.7, usdc=70)])
    assert [(e.kind, e.token_id, e.shares, e.cash) for e in ledger.entries[:2]] == [
        ("split", YES_A, D(100), D(-50)), ("split", NO_A, D(100), D(-50))]
    assert position(ledger, YES_A).realized_pnl == D(20)  # 100 × (0.70 − 0.50), not a "sell beyond buys"
    assert position(ledger, YES_A).cost_basis_known
    kept = position(ledger, NO_A)
    assert (kept.shares, kept.avg_price, kept.status) == (D(100), D("0.5"), "open")


def test_a_merge_sells_one_of_every_outcome_at_half():
    ledger = ledger_of([trade("BUY", YES_A, at=T0, size=10, price=0.3, usdc=3),
                        trade("BUY", NO_A, at=T0 + 1, size=10, price=0.6, usdc=6, outcome=1),
                        row("MERGE", at=T0 + 2, size=10, usdc=10)])
    assert position(ledger, YES_A).realized_pnl == D(2)  # 10 × (0.5 − 0.3)
    assert position(ledger, NO_A).realized_pnl == D(-1)  # 10 × (0.5 − 0.6)
    assert ledger.realized_pnl == D(1) and ledger.cash_pnl == D(1)  # 10 back for 9 paid
    assert all(p.shares == 0 and p.status == "closed" for p in ledger.positions)


def test_a_neg_risk_conversion_moves_the_no_cost_into_yes_of_the_other_questions():
    markets = {
        c: MarketTerms(c, (yes, no), None, event_key="event")
        for c, yes, no in (("0x" + "1" * 64, "11", "12"), ("0x" + "2" * 64, "21", "22"), ("0x" + "3" * 64, "31", "32"))
    }
    first = "0x" + "1" * 64
    rows = [trade("BUY", "12", at=T0, size=30, price=0.8, usdc=24, outcome=1, condition=first),
            row("CONVERSION", at=T0 + 5, size=30, usdc=0, token="12", outcome=1, condition=first)]
    ledger = ledger_of(rows, markets)
    assert position(ledger, "12").shares == 0 and position(ledger, "12").realized_pnl == 0
    # k = 1 of Q = 3: YES price (0.8 − 0) / 2 = 0.4 each, 30 shares of each other question.
    for yes in ("21", "31"):
        assert (position(ledger, yes).shares, position(ledger, yes).avg_price) == (D(30), D("0.4"))
    assert ledger.realized_pnl == 0


def test_redeeming_a_winner_and_a_loser_realises_payout_minus_cost():
    ledger = ledger_of([trade("BUY", YES_A, at=T0, size=10, price=0.3, usdc=3),
                        trade("BUY", NO_A, at=T0 + 1, size=5, price=0.6, usdc=3, outcome=1),
                        row("REDEEM", at=T0 + 99, size=15, usdc=10)], binary(payouts=["1", "0"]))
    won, lost = position(ledger, YES_A), position(ledger, NO_A)
    assert (won.status, won.realized_pnl, won.shares) == ("won", D(7), 0)
    assert (lost.status, lost.realized_pnl, lost.shares) == ("lost", D(-3), 0)
    assert ledger.resolved_positions == 2 and ledger.winning_positions == 1


def test_a_redeem_without_a_known_payout_reads_the_binary_split_off_the_row():
    ledger = ledger_of([trade("BUY", YES_A, at=T0, size=10, price=0.3, usdc=3),
                        trade("BUY", NO_A, at=T0 + 1, size=5, price=0.6, usdc=3, outcome=1),
                        row("REDEEM", at=T0 + 99, size=15, usdc=5)])
    assert position(ledger, YES_A).status == "lost" and position(ledger, NO_A).status == "won"
    assert ledger.realized_pnl == D(-3) + D(2)


def test_a_loser_held_to_resolution_is_settled_for_an_idle_holder_and_counts_in_win_rate():
    ledger = ledger_of([trade("BUY", YES_A, at=T0, size=10, price=0.3, usdc=3)], binary(payouts=["0", "1"]))
    held = position(ledger, YES_A)
    assert (held.status, held.realized_pnl, held.settlement_pnl) == ("lost", 0, D(-3))
    assert (ledger.resolved_positions, ledger.winning_positions, ledger.win_rate) == (1, 0, 0)


def test_a_position_sold_out_a_day_before_resolution_stays_closed_with_its_sale_pnl():
    ledger = ledger_of([trade("BUY", YES_A, at=T0, size=10, price=0.3, usdc=3),
                        trade("SELL", YES_A, at=T0 + 3600, size=10, price=0.9, usdc=9)], binary(payouts=["0", "1"]))
    held = position(ledger, YES_A)
    assert (held.status, held.realized_pnl, held.settlement_pnl) == ("closed", D(6), 0)
    assert ledger.resolved_positions == 0


def test_void_and_partial_payouts_settle_as_the_vector_says():
    void = ledger_of([trade("BUY", YES_A, at=T0, size=10, price=0.3, usdc=3)], binary(payouts=["0.5", "0.5"]))
    assert (position(void, YES_A).status, position(void, YES_A).settlement_pnl) == ("void", D(2))
    assert void.resolved_positions == 0  # a refund is neither a win nor a loss
    partial = ledger_of([trade("BUY", YES_A, at=T0, size=10, price=0.3, usdc=3)], binary(payouts=["0.7", "0.3"]))
    assert (position(partial, YES_A).status, position(partial, YES_A).settlement_pnl) == ("partial", D(4))


def test_same_second_buy_then_sell_is_applied_in_landing_order_not_by_key():
    rows = [trade("BUY", YES_A, at=T0, size=5, price=0.5, usdc=2.5),
            trade("SELL", YES_A, at=T0, size=5, price=0.7, usdc=3.5)]
    assert position(ledger_of(rows), YES_A).realized_pnl == D(1)
    reversed_rows = ledger_of(rows[::-1])  # sell landed first: nothing known to sell, then a buy
    assert not position(reversed_rows, YES_A).cost_basis_known


def test_shares_from_before_the_known_history_flag_the_cost_basis_unknown_and_leave_win_rate():
    ledger = ledger_of([trade("SELL", YES_A, at=T0, size=10, price=0.6, usdc=6)], binary(payouts=["1", "0"]))
    held = position(ledger, YES_A)
    assert not held.cost_basis_known and held.realized_pnl == 0
    assert (ledger.unknown_cost_positions, ledger.resolved_positions) == (1, 0)


def test_rewards_and_rebates_are_cash_income_and_unknown_types_are_kept_but_not_counted():
    ledger = ledger_of([row("REWARD", at=T0, size=3, usdc=3, condition=""),
                        row("MAKER_REBATE", at=T0 + 1, size=1.5, usdc=1.5, condition=""),
                        row("YIELD", at=T0 + 2, size=7, usdc=7, condition="")])
    assert (ledger.rewards, ledger.maker_rebates, ledger.cash_pnl) == (D(3), D("1.5"), D("4.5"))
    assert ledger.realized_pnl == 0
    assert ledger.unknown_types == ["YIELD"] and ledger.unknown_usdc == D(7)
    assert [e.kind for e in ledger.entries] == ["reward", "maker_rebate", "unknown"]


def test_an_open_position_is_marked_at_the_latest_price():
    ledger = ledger_of([trade("BUY", YES_A, at=T0, size=10, price=0.3, usdc=3)], binary(marks=["0.8", "0.2"]))
    assert position(ledger, YES_A).unrealized_pnl == D(5)


def _snake(key: str) -> str:
    return re.sub(r"[A-Z]", lambda match: "_" + match.group(0).lower(), key)


def _v1_as_v2(record: dict) -> dict:
    translated = {_snake(key): value for key, value in record.items()}
    translated["token_id"] = translated.pop("asset")
    return translated


def test_the_insiderwatch_activity_reproduces_polymarkets_closed_position_on_the_cash_basis():
    """v1 /closed-positions prices a position by the cash it cost (its avgPrice includes the
    fill's usdcSize beyond size × price): our cash basis reproduces it exactly; our Polymarket
    (pre-fee) basis gives the 4.045 / 0.655 the issue measured on trades."""
    rows = [_v1_as_v2(record) for record in json.loads((FIXTURES / "insiderwatch/activity.json").read_text())]
    rows.reverse()  # served newest first; the walk lands oldest first
    ledger = wallet_ledger_compute(activities=activities_parse(rows), markets={})
    closed = {r["asset"]: r for r in json.loads((FIXTURES / "insiderwatch/closed_positions.json").read_text())}
    compared = 0
    for held in ledger.positions:
        if held.token_id not in closed:
            continue
        theirs = closed[held.token_id]
        assert round(held.cash_realized_pnl, 4) == D(str(theirs["realizedPnl"]))
        assert round(held.cash_avg_price, 4) == D(str(theirs["avgPrice"]))
        assert held.bought_shares == D(str(theirs["totalBought"]))
        compared += 1
    assert compared == 1  # 0x8284337e…: the only closed position whose rows are all in the recording
    target = next(p for p in ledger.positions if p.condition_id.startswith("0x8284337e"))
    assert (round(target.cash_realized_pnl, 4), round(target.cash_avg_price, 3)) == (D("3.5755"), D("0.695"))
    assert (target.realized_pnl, round(target.avg_price, 3), target.status) == (D("4.045"), D("0.655"), "won")


def test_the_v2_py_sdk_recordings_share_no_complete_position_and_their_fees_are_read_per_fill():
    activity = json.loads((FIXTURES / "v2/py-sdk/activity.json").read_text())
    positions = json.loads((FIXTURES / "v2/py-sdk/positions.json").read_text())
    ledger = wallet_ledger_compute(activities=activities_parse(activity[::-1]), markets={})
    assert {p.token_id for p in ledger.positions}.isdisjoint({p["token_id"] for p in positions})
    assert sorted(e.fee for e in ledger.entries) == [D("0.000000"), D("0.489750")]
    # Polymarket's split-born positions (400,000 of each outcome at avg 0.5) are what a SPLIT gives here.
    split = ledger_of([row("SPLIT", at=T0, size=400000, usdc=400000)])
    assert {(p.shares, p.avg_price) for p in split.positions} == {(D(400000), D("0.5"))}
