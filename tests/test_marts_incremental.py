"""A wallet's walk continued from its stored state gives what one walk over every fill gives.

Random fill streams (both sides, several markets, same-second fills, fees) are walked once whole
and once in random chunks, each chunk starting from the previous chunk's state as stored (through
JSON). The rows the chunks would write (buckets and days from each chunk's first fill on, every
position) must equal the whole walk's, exactly — not rounded.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marts.compute import (
    CONTEXT,
    Fill,
    MarketFacts,
    PotentialProgress,
    TokenFacts,
    WalletFold,
    floor_1h,
    floor_5m,
    fold_advance,
    fold_state_dump,
    fold_state_load,
    potential_advance,
    wallet_mart_book,
    wallet_mart_compute,
)

START = datetime(2026, 9, 1, tzinfo=UTC)
HORIZON = timedelta(minutes=60)


def _stream(rng: random.Random, count: int) -> list[Fill]:
    """`count` fills of one wallet in 3 markets, a third of them in the same second as the one before."""
    fills = []
    moment = START
    for number in range(count):
        if rng.random() > 0.33:
            moment += timedelta(seconds=rng.choice([1, 7, 290, 3600, 20 * 3600]))
        market = rng.randint(1, 3)
        side = "BUY" if rng.random() < 0.55 else "SELL"
        size = Decimal(rng.randint(1, 50_000)) / 100
        price = Decimal(rng.randint(1, 99)) / 100
        usdc = size * price
        if rng.random() < 0.3:  # a fee: paid on top of a buy, kept from a sell's proceeds
            usdc += (1 if side == "BUY" else -1) * usdc * Decimal(rng.randint(1, 300)) / 10_000
        fills.append(Fill(
            wallet_id=1, market_id=market, token_id=f"{market}{rng.randint(0, 1)}", side=side, size=size, price=price,
            usdc_size=usdc.quantize(Decimal("0.000001")), traded_at=moment,
            idempotency_key=f"{rng.getrandbits(64):016x}{number:06d}", outcome_index=None,
            ingested_at=moment + timedelta(seconds=rng.randint(1, 30)),
        ))
    return sorted(fills, key=lambda fill: (fill.traded_at, fill.idempotency_key))


def _events(rng: random.Random, fills: list[Fill]) -> dict[int, list[datetime]]:
    span = (fills[-1].traded_at - START).total_seconds()
    return {market: sorted(START + timedelta(seconds=rng.uniform(0, span)) for _ in range(20)) for market in (1, 2)}


def _advance(fold: WalletFold, fills: list[Fill], events, tokens=None):
    with decimal.localcontext(CONTEXT):
        return fold_advance(fold, fills, tokens=tokens or {}, event_times=events, horizon=HORIZON)


def _comparable(fold: WalletFold) -> dict:
    return {
        "positions": {token: dataclasses.asdict(p) for token, p in fold.positions.items()},
        "totals": (fold.fills, fold.bought_usdc, fold.fees_paid, fold.volume_total, sorted(fold.markets),
                   fold.first_trade_at, fold.last_fill, fold.facts_through),
    }


def _chunked(fills: list[Fill], events, rng: random.Random, *, tamper=None):
    """Walk `fills` chunk by chunk through the stored state; the rows each chunk would write
    (later chunks overwriting earlier ones, as the drain's writes do), the final walk, and the
    per-fill steps."""
    state = None
    written = {"5m": {}, "1h": {}, "daily": {}}
    steps = {"cash": [], "fees": [], "days": [], "realisations": [], "edge_samples": []}
    at = 0
    fold = WalletFold()
    while at < len(fills):
        chunk = fills[at : at + rng.randint(1, 40)]
        at += len(chunk)
        fold = WalletFold() if state is None else fold_state_load(state)
        assert fold.accepts(chunk)
        step = _advance(fold, chunk, events)
        for name in steps:
            steps[name] += getattr(step, name)
        first = chunk[0].traded_at
        written["5m"].update((k, v) for k, v in fold.buckets_5m.items() if k >= floor_5m(first))
        written["1h"].update((k, v) for k, v in fold.buckets_1h.items() if k >= floor_1h(first))
        written["daily"].update((k, v) for k, v in fold.daily.items() if k >= first.date())
        state = json.loads(json.dumps(fold_state_dump(fold, keep_days_from=chunk[-1].traded_at.date() - timedelta(days=3))))
        if tamper is not None:
            tamper(state)
    return written, fold, steps


def _differences(fills, events, rng, *, tamper=None) -> list[str]:
    whole = WalletFold()
    whole_steps = _advance(whole, fills, events)
    written, fold, steps = _chunked(fills, events, rng, tamper=tamper)
    found = [name for name, rows in (("5m", whole.buckets_5m), ("1h", whole.buckets_1h), ("daily", whole.daily))
             if written[name] != dict(rows)]
    found += [name for name, value in _comparable(whole).items() if _comparable(fold)[name] != value]
    found += [name for name, value in steps.items() if list(getattr(whole_steps, name)) != value]
    return found


@pytest.mark.parametrize("seed", range(12))
def test_a_walk_continued_from_its_stored_state_gives_the_whole_walks_rows_exactly(seed):
    rng = random.Random(seed)
    fills = _stream(rng, 300)
    assert _differences(fills, _events(rng, fills), rng) == []


def test_a_deliberately_wrong_state_is_caught():
    rng = random.Random(99)
    fills = _stream(rng, 300)
    events = _events(rng, fills)

    def cost_off_by_one_quantum(state):
        state["positions"][0]["cost_basis"] = str(Decimal(state["positions"][0]["cost_basis"]) + Decimal("1e-12"))

    def a_market_forgotten(state):
        if state["bucket_5m"] and len(state["bucket_5m"]["markets"]) > 1:
            state["bucket_5m"]["markets"].pop()

    assert "positions" in _differences(fills, events, random.Random(1), tamper=cost_off_by_one_quantum)
    assert _differences(fills, events, random.Random(1), tamper=a_market_forgotten) != []


def test_a_fill_older_than_the_state_is_refused_for_the_full_recompute():
    rng = random.Random(7)
    fills = _stream(rng, 50)
    fold = WalletFold()
    _advance(fold, fills, {})
    last = fills[-1]
    # Same second: the key decides, as in the compute's order (traded_at, idempotency_key).
    same_second_before = last._replace(idempotency_key="0")
    same_second_after = last._replace(idempotency_key=last.idempotency_key + "z")
    late = last._replace(traded_at=last.traded_at - timedelta(hours=1), idempotency_key="f" * 22)
    assert not fold.accepts([late])
    assert not fold.accepts([same_second_before])
    assert not fold.accepts([same_second_after, same_second_before])
    assert not fold.accepts([last])  # a fill seen already (a redelivered page)
    assert fold.accepts([same_second_after])
    assert fold.accepts([last._replace(traded_at=last.traded_at + timedelta(seconds=1), idempotency_key="0")])


def test_a_state_of_another_version_is_not_continued():
    rng = random.Random(3)
    fills = _stream(rng, 20)
    fold = WalletFold()
    _advance(fold, fills, {})
    state = fold_state_dump(fold, keep_days_from=START.date())
    assert fold_state_load(state) is not None
    assert fold_state_load({**state, "version": state["version"] + 1}) is None


def _facts(fills: list[Fill]):
    """Market 1 resolved for outcome 0 half-way through the stream (fills after it too), market 2
    void at the end, market 3 open: one token with a latest price, the other marked at its fill."""
    middle = fills[len(fills) // 2].traded_at
    markets = {
        1: MarketFacts(1, 0, False, middle, middle, Decimal(1000)),
        2: MarketFacts(2, None, True, fills[-1].traded_at, None, Decimal(1000)),
        3: MarketFacts(3, None, False, None, None, Decimal(1000)),
    }
    tokens = {f"{m}{o}": TokenFacts(f"{m}{o}", m, o, Decimal("0.37") if (m, o) == (3, 0) else None)
              for m in (1, 2, 3) for o in (0, 1)}
    return markets, tokens


BOOK_TOTALS = ("total_trades", "markets_traded", "volume_total", "bought_usdc", "fees_paid", "realized_pnl",
               "unrealized_pnl", "resolved_positions", "winning_positions", "open_positions", "first_trade_at",
               "last_trade_at", "facts_through", "open_concentration", "top_gain_share")


@pytest.mark.parametrize("seed", range(6))
def test_the_book_of_a_continued_walk_is_the_full_computations_book(seed):
    rng = random.Random(seed)
    fills = _stream(rng, 300)
    markets, tokens = _facts(fills)
    full = wallet_mart_compute(
        wallet_id=1, fills=fills, markets=markets, tokens=tokens, last_prices={}, event_times={},
        now=fills[-1].traded_at + timedelta(hours=1), info_edge_horizon=HORIZON, potential_min_trades=10,
        potential_min_realized_pnl=Decimal(0),
    )
    # Walk in two parts through the stored state, then settle and mark the stored walk.
    cut = rng.randint(1, len(fills) - 1)
    first = WalletFold()
    _advance(first, fills[:cut], {}, tokens)
    fold = fold_state_load(json.loads(json.dumps(fold_state_dump(first, keep_days_from=fills[cut].traded_at.date()))))
    _advance(fold, fills[cut:], {}, tokens)
    book = wallet_mart_book(fold, wallet_id=1, markets=markets, tokens=tokens, last_prices={})

    assert [dataclasses.asdict(p) for p in book.positions] == [dataclasses.asdict(p) for p in full.positions]
    assert {name: getattr(book, name) for name in BOOK_TOTALS} == {name: getattr(full, name) for name in BOOK_TOTALS}
    assert book.realisations == [r for r in full.realisations if not r.is_trade]
    # The days a change writes (from its first fill on) hold their settlements too.
    written = {day: d for day, d in book.daily.items() if day >= fills[cut].traded_at.date()}
    assert written == {day: d for day, d in full.daily.items() if day >= fills[cut].traded_at.date()}
    # ... and the walk stays as the fills left it, ready for the next ones.
    assert all(p.settlement_price is None for p in fold.positions.values())


def _stored(progress: PotentialProgress) -> PotentialProgress:
    """Through JSON, as a state stores it."""
    reached_at, trades, realized = json.loads(json.dumps(
        [None if progress.reached_at is None else progress.reached_at.isoformat(), progress.trades,
         str(progress.realized)]))
    return PotentialProgress(None if reached_at is None else datetime.fromisoformat(reached_at), trades, Decimal(realized))


@pytest.mark.parametrize("seed", range(16))
def test_potential_reached_at_continued_chunk_by_chunk_is_the_full_walks(seed):
    rng = random.Random(seed)
    fills = _stream(rng, 200)
    markets, tokens = _facts(fills)
    rules = {"min_trades": rng.choice([5, 40, 150]), "min_realized": Decimal(rng.choice([-200, 0, 100, 2000]))}
    whole = WalletFold()
    trades = _advance(whole, fills, {}, tokens).realisations
    settlements = wallet_mart_book(whole, wallet_id=1, markets=markets, tokens=tokens, last_prices={}).realisations
    progress, after, at = PotentialProgress(), None, 0
    while at < len(fills):
        chunk = fills[at : at + rng.randint(1, 30)]
        at += len(chunk)
        keys = {fill.idempotency_key for fill in chunk}
        progress, answer = potential_advance(
            progress, fills=chunk, realisations=[r for r in trades if r.order_key in keys] + settlements, after=after,
            **rules)
        progress, after = _stored(progress), (chunk[-1].traded_at, chunk[-1].idempotency_key)
        seen = {fill.idempotency_key for fill in fills[:at]}
        _whole, expected = potential_advance(
            PotentialProgress(), fills=fills[:at], realisations=[r for r in trades if r.order_key in seen] + settlements,
            after=None, **rules)
        assert answer == expected
