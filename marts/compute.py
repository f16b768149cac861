"""Pure computation of one wallet's marts from its fills: no database, no clock.

Inputs are the wallet's fills in a fixed order — (traded_at, idempotency_key) — and the market and
token facts they refer to, so the same facts give the same rows whatever order they arrived in.

Money conventions (documented here because `TradeFill.usdc_size` is not always size × price):

- notional = size × price, the value of the fill at its price.
- The fee is the part of `usdc_size` the price does not explain: on a BUY the wallet pays
  usdc_size ≥ notional, fee = usdc_size − notional; on a SELL it receives usdc_size ≤ notional,
  fee = notional − usdc_size. A difference the other way, or below `FEE_EPSILON` (float noise in
  upstream numbers such as 0.9809999989), is not a fee: fee = 0.
- Cash is what actually moved: a buy costs notional + fee, a sell brings notional − fee. Cost
  basis and realised PnL use cash, so PnL is net of fees and `fees` is reported separately.
- Volume is buy cash + sell cash.

Position accounting per (wallet, token) with an average cost basis:

- BUY adds shares and cash to the cost basis.
- SELL of q shares removes q × average cost from the basis and realises proceeds − that cost.
  Shares sold beyond those bought (history before our first fill, tokens from a split) realise
  nothing: their cost is unknown, so we assume it equals the proceeds rather than invent a profit.
- When the market resolves, the remaining shares settle at 1 (winning token), 0 (losing token) or
  0.5 (void); the settlement is realised even if the wallet never redeemed, so a loser held to the
  end counts as a loss in PnL and win rate.
- Open shares are marked at the token's latest price (fallback: the token's last fill price; then
  this wallet's own last price) for unrealised PnL.
"""

from __future__ import annotations

import bisect
import decimal
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

ZERO = Decimal(0)
ONE = Decimal(1)
HALF = Decimal("0.5")
FEE_EPSILON = Decimal("0.000001")
QUANTUM = Decimal("0.000000000001")  # the 12 decimals of the NUMERIC columns
# Wide enough that size × price of two 30-digit numbers is exact before we quantize on output.
CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)

WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


class Fill(NamedTuple):
    wallet_id: int
    market_id: int
    token_id: str
    side: str
    size: Decimal
    price: Decimal
    usdc_size: Decimal
    traded_at: datetime
    idempotency_key: str
    outcome_index: int | None
    ingested_at: datetime


class MarketFacts(NamedTuple):
    market_id: int
    winner_index: int | None
    is_void: bool
    resolved_at: datetime | None
    closed_time: datetime | None
    liquidity: Decimal

    @property
    def is_resolved(self) -> bool:
        return self.winner_index is not None or self.is_void


class TokenFacts(NamedTuple):
    token_id: str
    market_id: int
    outcome_index: int
    latest_price: Decimal | None


@dataclass
class Agg:
    trades: int = 0
    buy_trades: int = 0
    sell_trades: int = 0
    buy_volume: Decimal = ZERO
    sell_volume: Decimal = ZERO
    buy_shares: Decimal = ZERO
    sell_shares: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    markets: set[int] = field(default_factory=set)


@dataclass
class Daily:
    trades: int = 0
    buy_volume: Decimal = ZERO
    sell_volume: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    markets: set[int] = field(default_factory=set)
    max_trade_usdc: Decimal = ZERO


@dataclass
class Position:
    token_id: str
    market_id: int
    outcome_index: int | None
    first_trade_at: datetime
    last_trade_at: datetime
    last_price: Decimal
    status: str = "open"
    trades: int = 0
    shares: Decimal = ZERO
    cost_basis: Decimal = ZERO
    bought_shares: Decimal = ZERO
    bought_usdc: Decimal = ZERO
    sold_shares: Decimal = ZERO
    sold_usdc: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    settlement_price: Decimal | None = None
    settled_shares: Decimal = ZERO
    settled_at: datetime | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal = ZERO

    @property
    def avg_cost(self) -> Decimal:
        return self.cost_basis / self.shares if self.shares > 0 else ZERO


@dataclass
class Window:
    trades: int = 0
    volume: Decimal = ZERO
    buy_volume: Decimal = ZERO
    sell_volume: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    active_days: int = 0
    markets_traded: int = 0


class Realisation(NamedTuple):
    """A moment realised PnL changed: a sell, or a settlement at resolution."""

    at: datetime
    order_key: str
    pnl: Decimal
    is_trade: bool


class EdgeSample(NamedTuple):
    fill_index: int
    market_id: int
    delta_minutes: float
    event_time: datetime


@dataclass
class WalletMart:
    wallet_id: int
    fills: list[Fill]
    cash: list[Decimal]  # per fill, aligned with `fills`
    buckets_5m: dict[datetime, Agg]
    buckets_1h: dict[datetime, Agg]
    daily: dict[date, Daily]
    positions: list[Position]
    realisations: list[Realisation]
    windows: dict[str, Window]
    edge_samples: list[EdgeSample]
    total_trades: int = 0
    markets_traded: int = 0
    volume_total: Decimal = ZERO
    bought_usdc: Decimal = ZERO
    fees_paid: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    resolved_positions: int = 0
    winning_positions: int = 0
    open_positions: int = 0
    first_trade_at: datetime | None = None
    last_trade_at: datetime | None = None
    facts_through: datetime | None = None
    potential_reached_at: datetime | None = None
    max_drawdown_7d: Decimal = ZERO
    stability_score: Decimal = ZERO
    open_concentration: Decimal = ZERO
    top_gain_share: Decimal = ZERO

    @property
    def trading_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl

    @property
    def win_rate(self) -> Decimal | None:
        if not self.resolved_positions:
            return None
        return Decimal(self.winning_positions) / Decimal(self.resolved_positions)

    @property
    def roi(self) -> Decimal:
        return self.trading_pnl / self.bought_usdc if self.bought_usdc > 0 else ZERO


@dataclass
class WalletFold:
    """The walk over a wallet's fills so far: what `_compute` carries from one fill to the next,
    so that a walk can go on with fills that sort after the last one it saw (`last_fill`).

    `daily` holds what trades bring to each day; settlements are added to a copy by the caller,
    because their amounts depend on every fill of the position and on the market's resolution.
    Positions are as the fills leave them, before settlement and marking.
    """

    positions: dict[str, Position] = field(default_factory=dict)
    buckets_5m: dict[datetime, Agg] = field(default_factory=lambda: defaultdict(Agg))
    buckets_1h: dict[datetime, Agg] = field(default_factory=lambda: defaultdict(Agg))
    daily: dict[date, Daily] = field(default_factory=lambda: defaultdict(Daily))
    fills: int = 0
    bought_usdc: Decimal = ZERO
    fees_paid: Decimal = ZERO
    volume_total: Decimal = ZERO
    markets: set[int] = field(default_factory=set)
    first_trade_at: datetime | None = None
    last_fill: tuple[datetime, str] | None = None
    facts_through: datetime | None = None

    def accepts(self, fills: Sequence[Fill]) -> bool:
        """Do all of `fills` sort after every fill the walk has seen (in the compute's order)?"""
        if self.last_fill is None or not fills:
            return True
        return min((fill.traded_at, fill.idempotency_key) for fill in fills) > self.last_fill


class FoldSteps(NamedTuple):
    """Per new fill (aligned with the fills given to fold_advance): cash, fee and UTC day; and
    the realisations and information-edge samples those fills brought."""

    cash: list[Decimal]
    fees: list[Decimal]
    days: list[date]
    realisations: list[Realisation]
    edge_samples: list[EdgeSample]


def q(value: Decimal) -> Decimal:
    """Round to the 12 decimals the columns hold, so Python and PostgreSQL agree on every value."""
    return value.quantize(QUANTUM, context=CONTEXT)


def floor_5m(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


def floor_1h(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def fill_cash(fill: Fill) -> tuple[Decimal, Decimal]:
    """(cash moved, fee) of one fill — see the module docstring."""
    notional = CONTEXT.multiply(fill.size, fill.price)
    if fill.side == "BUY":
        fee = fill.usdc_size - notional
        fee = fee if fee > FEE_EPSILON else ZERO
        return notional + fee, fee
    fee = notional - fill.usdc_size
    fee = fee if fee > FEE_EPSILON else ZERO
    return notional - fee, fee


def settlement_price(market: MarketFacts, outcome_index: int | None) -> Decimal | None:
    if market.is_void:
        return HALF
    if market.winner_index is None or outcome_index is None:
        return None
    return ONE if outcome_index == market.winner_index else ZERO


def _outcome_index(fill: Fill, tokens: dict[str, TokenFacts]) -> int | None:
    token = tokens.get(fill.token_id)
    if token is not None:
        return token.outcome_index
    # 999 is the global feed's "unknown" sentinel, never a real outcome.
    if fill.outcome_index is not None and fill.outcome_index != 999:
        return fill.outcome_index
    return None


def wallet_mart_compute(
    *,
    wallet_id: int,
    fills: Sequence[Fill],
    markets: dict[int, MarketFacts],
    tokens: dict[str, TokenFacts],
    last_prices: dict[str, Decimal],
    event_times: dict[int, list[datetime]],
    now: datetime,
    info_edge_horizon: timedelta,
    potential_min_trades: int,
    potential_min_realized_pnl: Decimal,
) -> WalletMart:
    """Everything the marts hold for one wallet. `fills` must be sorted by (traded_at, idempotency_key)."""
    with decimal.localcontext(CONTEXT):
        return _compute(
            wallet_id=wallet_id,
            fills=list(fills),
            markets=markets,
            tokens=tokens,
            last_prices=last_prices,
            event_times=event_times,
            now=now,
            horizon=info_edge_horizon,
            potential_min_trades=potential_min_trades,
            potential_min_realized_pnl=potential_min_realized_pnl,
        )


def _compute(*, wallet_id, fills, markets, tokens, last_prices, event_times, now, horizon,
             potential_min_trades, potential_min_realized_pnl) -> WalletMart:
    fold = WalletFold()
    steps = fold_advance(fold, fills, tokens=tokens, event_times=event_times, horizon=horizon)
    positions, daily, realisations = fold.positions, fold.daily, steps.realisations
    cash_per_fill, fee_per_fill, day_per_fill = steps.cash, steps.fees, steps.days
    mart = WalletMart(
        wallet_id=wallet_id, fills=fills, cash=cash_per_fill, buckets_5m=fold.buckets_5m, buckets_1h=fold.buckets_1h,
        daily=daily, positions=[], realisations=realisations, windows={}, edge_samples=steps.edge_samples,
        bought_usdc=fold.bought_usdc, fees_paid=fold.fees_paid, volume_total=fold.volume_total,
    )

    _settle_and_mark(mart, positions, markets, tokens, last_prices)
    mart.positions = sorted(positions.values(), key=lambda p: p.token_id)
    realisations.sort(key=lambda r: (r.at, r.order_key))
    for realisation in realisations:
        if not realisation.is_trade:
            daily[realisation.at.date()].realized_pnl += realisation.pnl

    mart.total_trades = len(fills)
    mart.markets_traded = len(fold.markets)  # the walk collected them (a fresh fold: these fills only)
    if fills:
        mart.first_trade_at = fills[0].traded_at
        mart.last_trade_at = fills[-1].traded_at
        mart.facts_through = max(fill.ingested_at for fill in fills)
    mart.windows = {
        name: _window(fills, cash_per_fill, fee_per_fill, day_per_fill, realisations, now - span)
        for name, span in WINDOWS.items()
    }
    mart.max_drawdown_7d = _max_drawdown(realisations, now - WINDOWS["7d"])
    mart.stability_score = _stability(daily, (now - WINDOWS["30d"]).date())
    mart.potential_reached_at = _potential_reached_at(
        fills, realisations, min_trades=potential_min_trades, min_realized=potential_min_realized_pnl
    )
    return mart


def wallet_mart_book(fold: WalletFold, *, wallet_id: int, markets: dict[int, MarketFacts],
                     tokens: dict[str, TokenFacts], last_prices: dict[str, Decimal]) -> WalletMart:
    """The book of a stored walk, as the full computation leaves it: positions settled and
    marked, PnL and position totals, the walk's buckets and its days with their settlements.

    Works on copies: `fold` stays as the fills left it, ready for the next ones. Windows and the
    time-series features (drawdown, stability, potential) are not filled in.
    """
    positions = {token: replace(position) for token, position in fold.positions.items()}
    daily = defaultdict(Daily, {day: replace(d, markets=set(d.markets)) for day, d in fold.daily.items()})
    mart = WalletMart(
        wallet_id=wallet_id, fills=[], cash=[], buckets_5m=fold.buckets_5m, buckets_1h=fold.buckets_1h, daily=daily,
        positions=[], realisations=[], windows={}, edge_samples=[], bought_usdc=fold.bought_usdc,
        fees_paid=fold.fees_paid, volume_total=fold.volume_total, total_trades=fold.fills,
        markets_traded=len(fold.markets), first_trade_at=fold.first_trade_at,
        last_trade_at=None if fold.last_fill is None else fold.last_fill[0], facts_through=fold.facts_through,
    )
    with decimal.localcontext(CONTEXT):
        _settle_and_mark(mart, positions, markets, tokens, last_prices)
        mart.positions = sorted(positions.values(), key=lambda p: p.token_id)
        mart.realisations.sort(key=lambda r: (r.at, r.order_key))
        for realisation in mart.realisations:
            daily[realisation.at.date()].realized_pnl += realisation.pnl
    return mart


def fold_advance(fold: WalletFold, fills: Sequence[Fill], *, tokens: dict[str, TokenFacts],
                 event_times: dict[int, list[datetime]], horizon: timedelta) -> FoldSteps:
    """Walk `fills` (sorted, all after `fold.last_fill`) on from where `fold` stands, in place.

    Call inside CONTEXT (wallet_mart_compute does). The hot loop of the compute path (~10^4
    fills per batch): attributes are read once into locals and fill_cash / floor_5m / floor_1h
    are inlined — same operations, same results.
    """
    positions, buckets_5m, buckets_1h, daily = fold.positions, fold.buckets_5m, fold.buckets_1h, fold.daily
    cash_per_fill: list[Decimal] = []
    fee_per_fill: list[Decimal] = []
    day_per_fill: list[date] = []
    realisations: list[Realisation] = []
    edge_samples: list[EdgeSample] = []
    bought_usdc, fees_paid, volume_total = fold.bought_usdc, fold.fees_paid, fold.volume_total
    markets = fold.markets
    for index, fill in enumerate(fills, start=fold.fills):
        size, traded_at, market_id = fill.size, fill.traded_at, fill.market_id
        is_buy = fill.side == "BUY"
        notional = CONTEXT.multiply(size, fill.price)
        fee = fill.usdc_size - notional if is_buy else notional - fill.usdc_size
        if not fee > FEE_EPSILON:
            fee = ZERO
        cash = notional + fee if is_buy else notional - fee
        cash_per_fill.append(cash)
        fee_per_fill.append(fee)
        position = positions.get(fill.token_id)
        if position is None:
            position = Position(
                token_id=fill.token_id, market_id=market_id, outcome_index=_outcome_index(fill, tokens),
                first_trade_at=traded_at, last_trade_at=traded_at, last_price=fill.price,
            )
            positions[fill.token_id] = position
        position.trades += 1
        position.last_trade_at = traded_at
        position.last_price = fill.price
        position.fees += fee
        realized = ZERO
        if is_buy:
            position.shares += size
            position.cost_basis += cash
            position.bought_shares += size
            position.bought_usdc += cash
            bought_usdc += cash
        else:
            matched = min(size, position.shares)
            if matched > 0:
                if matched == position.shares:
                    cost_out = position.cost_basis  # no rounding residue left on a closed position
                else:
                    cost_out = position.cost_basis * matched / position.shares
                proceeds = cash * matched / size
                realized = proceeds - cost_out
                position.shares -= matched
                position.cost_basis -= cost_out
            position.sold_shares += size
            position.sold_usdc += cash
            position.realized_pnl += realized
            realisations.append(Realisation(traded_at, fill.idempotency_key, realized, True))

        minute = traded_at.minute
        start_5m = traded_at.replace(minute=minute - minute % 5, second=0, microsecond=0)
        _add_to_agg(buckets_5m[start_5m], market_id, is_buy, size, cash, fee, realized)
        _add_to_agg(buckets_1h[start_5m.replace(minute=0)], market_id, is_buy, size, cash, fee, realized)
        day_key = traded_at.date()
        day_per_fill.append(day_key)
        day = daily[day_key]
        day.trades += 1
        day.fees += fee
        day.realized_pnl += realized
        day.markets.add(market_id)
        day.max_trade_usdc = max(day.max_trade_usdc, cash)
        if is_buy:
            day.buy_volume += cash
        else:
            day.sell_volume += cash
        fees_paid += fee
        volume_total += cash
        markets.add(market_id)

        times = event_times.get(market_id)
        if times:
            # The first event at or after the trade: Δt ≤ 0 means the wallet traded before the news.
            at = bisect.bisect_left(times, traded_at)
            if at < len(times) and times[at] - traded_at <= horizon:
                delta = (traded_at - times[at]).total_seconds() / 60.0
                edge_samples.append(EdgeSample(index, market_id, delta, times[at]))
    fold.bought_usdc, fold.fees_paid, fold.volume_total = bought_usdc, fees_paid, volume_total
    if fills:
        fold.fills += len(fills)
        if fold.first_trade_at is None:
            fold.first_trade_at = fills[0].traded_at
        fold.last_fill = (fills[-1].traded_at, fills[-1].idempotency_key)
        newest = max(fill.ingested_at for fill in fills)
        fold.facts_through = newest if fold.facts_through is None else max(fold.facts_through, newest)
    return FoldSteps(cash_per_fill, fee_per_fill, day_per_fill, realisations, edge_samples)


def _add_to_agg(agg: Agg, market_id: int, is_buy: bool, size: Decimal, cash: Decimal, fee: Decimal,
                realized: Decimal) -> None:
    agg.trades += 1
    agg.fees += fee
    agg.realized_pnl += realized
    agg.markets.add(market_id)
    if is_buy:
        agg.buy_trades += 1
        agg.buy_volume += cash
        agg.buy_shares += size
    else:
        agg.sell_trades += 1
        agg.sell_volume += cash
        agg.sell_shares += size


def _settle_and_mark(mart: WalletMart, positions: dict[str, Position], markets, tokens, last_prices) -> None:
    open_costs: list[Decimal] = []
    for position in positions.values():
        market = markets.get(position.market_id)
        price = settlement_price(market, position.outcome_index) if market is not None else None
        if price is not None:
            proceeds = position.shares * price
            pnl = proceeds - position.cost_basis
            position.settlement_price = price
            position.settled_shares = position.shares
            position.settled_at = market.resolved_at or market.closed_time or position.last_trade_at
            position.status = "void" if market.is_void else ("won" if price == ONE else "lost")
            position.realized_pnl += pnl
            position.shares = ZERO
            position.cost_basis = ZERO
            if position.settled_shares > 0:
                mart.realisations.append(Realisation(position.settled_at, "~settle:" + position.token_id, pnl, False))
            mart.resolved_positions += 1
            if position.realized_pnl > 0:
                mart.winning_positions += 1
        elif position.shares > 0:
            token = tokens.get(position.token_id)
            mark = token.latest_price if token is not None and token.latest_price is not None else None
            if mark is None:
                mark = last_prices.get(position.token_id, position.last_price)
            position.mark_price = mark
            position.unrealized_pnl = position.shares * mark - position.cost_basis
            mart.unrealized_pnl += position.unrealized_pnl
            mart.open_positions += 1
            open_costs.append(position.cost_basis)
        else:
            position.status = "closed"
        mart.realized_pnl += position.realized_pnl
    total_open = sum(open_costs, ZERO)
    if total_open > 0:
        mart.open_concentration = max(open_costs) / total_open
    gains = [p.realized_pnl for p in positions.values() if p.realized_pnl > 0]
    if gains:
        mart.top_gain_share = max(gains) / sum(gains, ZERO)


def _window(fills: list[Fill], cash: list[Decimal], fees: list[Decimal], days: list[date],
            realisations: list[Realisation], start: datetime) -> Window:
    window = Window()
    first = bisect.bisect_left(fills, start, key=lambda fill: fill.traded_at)
    markets: set[int] = set()
    for index in range(first, len(fills)):
        amount = cash[index]
        window.trades += 1
        window.volume += amount
        if fills[index].side == "BUY":
            window.buy_volume += amount
        else:
            window.sell_volume += amount
        window.fees += fees[index]
        markets.add(fills[index].market_id)
    window.realized_pnl = sum((r.pnl for r in realisations if r.at >= start), ZERO)
    window.active_days = len(set(days[first:]))
    window.markets_traded = len(markets)
    return window


def _max_drawdown(realisations: list[Realisation], start: datetime) -> Decimal:
    """Largest fall of cumulative realised PnL from its running peak inside the window (≥ 0)."""
    cumulative = peak = drawdown = ZERO
    for realisation in realisations:
        if realisation.at < start:
            continue
        cumulative += realisation.pnl
        peak = max(peak, cumulative)
        drawdown = max(drawdown, peak - cumulative)
    return drawdown


def _stability(daily: dict[date, Daily], first_day: date) -> Decimal:
    """0–100: share of days with non-negative realised PnL over 30 days, with a Laplace prior
    ((good + 1) / (days + 2)) so two good days are not "perfectly stable"."""
    days = [d for day, d in daily.items() if day >= first_day and d.realized_pnl != 0]
    good = sum(1 for d in days if d.realized_pnl > 0)
    return Decimal(100) * Decimal(good + 1) / Decimal(len(days) + 2)


def _potential_reached_at(fills, realisations, *, min_trades: int, min_realized: Decimal) -> datetime | None:
    """Trade time at which the wallet first had ≥ min_trades fills and realised PnL > min_realized.

    Walks fills and settlements in time order, so the answer is the same whenever it is computed.
    """
    _progress, reached_at = potential_advance(
        PotentialProgress(), fills=fills, realisations=realisations, after=None, min_trades=min_trades,
        min_realized=min_realized,
    )
    return reached_at


class PotentialProgress(NamedTuple):
    """The walk towards potential_reached_at through a wallet's last fill (and its realisation)."""

    reached_at: datetime | None = None
    trades: int = 0
    realized: Decimal = ZERO


def potential_advance(progress: PotentialProgress, *, fills, realisations, after: tuple[datetime, str] | None,
                      min_trades: int, min_realized: Decimal) -> tuple[PotentialProgress, datetime | None]:
    """Go on from `progress` (which stands at fill `after`, None: before any) with the fills after
    it, their trade realisations and the wallet's settlements: the progress through the last of
    `fills`, to store, and potential_reached_at now.

    The timeline is (time, key, fill before its own realisation); settlements after the last fill
    count for the answer but not for the stored progress, since later fills change their amounts.
    A moment reached at or before the last fill is final for every later fill that sorts after it.
    """
    if progress.reached_at is not None:
        return progress, progress.reached_at
    timeline: list[tuple[datetime, str, int, Decimal]] = [(f.traded_at, f.idempotency_key, 1, ZERO) for f in fills]
    timeline += [(r.at, r.order_key, 0, r.pnl) for r in realisations]
    timeline.sort(key=lambda item: (item[0], item[1], -item[2]))
    start = (after[0], after[1], 0) if after is not None else None
    through = (fills[-1].traded_at, fills[-1].idempotency_key, 0) if fills else start
    trades, realized = progress.trades, progress.realized
    stored = None if through is not None else progress
    for at, key, is_fill, pnl in timeline:
        order = (at, key, -is_fill)
        if start is not None and order <= start:
            continue  # counted in `progress` already
        if stored is None and order > through:
            stored = PotentialProgress(None, trades, realized)
        trades += is_fill
        realized += pnl
        if trades >= min_trades and realized > min_realized:
            return (PotentialProgress(at, trades, realized) if stored is None else stored), at
    return (PotentialProgress(None, trades, realized) if stored is None else stored), None


# --- the stored form of a walk (a wallet's compute state) -------------------------------------
# Money is kept as Decimal's own text, which round-trips exactly (80-digit intermediates included:
# an average cost is a quotient), times as ISO 8601 with their offset. A state written by another
# version of the walk is not continued: the caller recomputes from every fill.

FOLD_STATE_VERSION = 1
_AGG_MONEY = ("buy_volume", "sell_volume", "buy_shares", "sell_shares", "fees", "realized_pnl")
_AGG_COUNTS = ("trades", "buy_trades", "sell_trades")
_DAILY_MONEY = ("buy_volume", "sell_volume", "fees", "realized_pnl", "max_trade_usdc")
_POSITION_MONEY = ("last_price", "shares", "cost_basis", "bought_shares", "bought_usdc", "sold_shares", "sold_usdc",
                   "fees", "realized_pnl")


def _time_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _time_parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _agg_dump(start: datetime, agg: Agg) -> dict:
    return {"start": start.isoformat(), **{name: getattr(agg, name) for name in _AGG_COUNTS},
            **{name: str(getattr(agg, name)) for name in _AGG_MONEY}, "markets": sorted(agg.markets)}


def _agg_load(data: dict) -> tuple[datetime, Agg]:
    agg = Agg(**{name: data[name] for name in _AGG_COUNTS}, **{name: Decimal(data[name]) for name in _AGG_MONEY},
              markets=set(data["markets"]))
    return datetime.fromisoformat(data["start"]), agg


def fold_state_dump(fold: WalletFold, *, keep_days_from: date) -> dict:
    """What a later walk needs to go on from `fold` with fills that sort after its last one.

    Of the buckets only the newest 5-minute and hour can still change (later fills land in them
    or after them); of the days, those from `keep_days_from` on (the oldest day a window or the
    stability score can still read) and the newest.
    """
    newest_day = max(fold.daily) if fold.daily else None
    days = {day: d for day, d in fold.daily.items() if day >= keep_days_from or day == newest_day}
    return {
        "version": FOLD_STATE_VERSION,
        "fills": fold.fills,
        "first_trade_at": _time_text(fold.first_trade_at),
        "last_fill": None if fold.last_fill is None else [fold.last_fill[0].isoformat(), fold.last_fill[1]],
        "facts_through": _time_text(fold.facts_through),
        "bought_usdc": str(fold.bought_usdc),
        "fees_paid": str(fold.fees_paid),
        "volume_total": str(fold.volume_total),
        "markets": sorted(fold.markets),
        "positions": [
            {"token_id": p.token_id, "market_id": p.market_id, "outcome_index": p.outcome_index,
             "first_trade_at": p.first_trade_at.isoformat(), "last_trade_at": p.last_trade_at.isoformat(),
             "trades": p.trades, **{name: str(getattr(p, name)) for name in _POSITION_MONEY}}
            # In the walk's order (first fill first), not sorted: the PnL totals add positions up
            # in that order, and a sum of 80-digit quotients depends on it in its last digits.
            for p in fold.positions.values()
        ],
        "bucket_5m": None if not fold.buckets_5m else _agg_dump(*max(fold.buckets_5m.items())),
        "bucket_1h": None if not fold.buckets_1h else _agg_dump(*max(fold.buckets_1h.items())),
        "daily": [
            {"day": day.isoformat(), "trades": d.trades, **{name: str(getattr(d, name)) for name in _DAILY_MONEY},
             "markets": sorted(d.markets)}
            for day, d in sorted(days.items())
        ],
    }


def fold_state_load(data: dict) -> WalletFold | None:
    """The walk `fold_state_dump` stored, or None for a state of another version."""
    if data.get("version") != FOLD_STATE_VERSION:
        return None
    fold = WalletFold(
        fills=data["fills"], first_trade_at=_time_parse(data["first_trade_at"]),
        last_fill=None if data["last_fill"] is None else (datetime.fromisoformat(data["last_fill"][0]), data["last_fill"][1]),
        facts_through=_time_parse(data["facts_through"]), bought_usdc=Decimal(data["bought_usdc"]),
        fees_paid=Decimal(data["fees_paid"]), volume_total=Decimal(data["volume_total"]), markets=set(data["markets"]),
    )
    for item in data["positions"]:
        fold.positions[item["token_id"]] = Position(
            token_id=item["token_id"], market_id=item["market_id"], outcome_index=item["outcome_index"],
            first_trade_at=datetime.fromisoformat(item["first_trade_at"]),
            last_trade_at=datetime.fromisoformat(item["last_trade_at"]), trades=item["trades"],
            **{name: Decimal(item[name]) for name in _POSITION_MONEY},
        )
    for key, buckets in (("bucket_5m", fold.buckets_5m), ("bucket_1h", fold.buckets_1h)):
        if data[key] is not None:
            start, agg = _agg_load(data[key])
            buckets[start] = agg
    for item in data["daily"]:
        fold.daily[date.fromisoformat(item["day"])] = Daily(
            trades=item["trades"], **{name: Decimal(item[name]) for name in _DAILY_MONEY}, markets=set(item["markets"])
        )
    return fold
