"""Per-wallet movements (Data API v2 /activity) and the positions they add up to (/v2/positions).

A wallet's ledger is computed on demand from the fills the world generated for it, plus movements
derived from them by fixed rules, so it is as deterministic as the fills themselves:

- TRADE: one per valid fill of the wallet (maker or taker). ``usdc_size`` is the cash moved: the
  notional plus the taker fee on a BUY, minus it on a SELL (fees only for takers on fee-enabled
  markets: ``size * rate * (p * (1 - p)) ** exponent``, to the micro-USDC).
- SPLIT: a SELL of more shares than the wallet holds is preceded (same second) by a split of the
  shortfall: N USDC become N shares of each outcome. As Polymarket's PnL subgraph prices it, the
  split buys every outcome at 1/n (0.50 each, the markets here are binary): a split-then-sell
  realizes ``p - 0.50`` per share sold and the kept side carries cost 0.50.
- MERGE: after a BUY that leaves the wallet holding both outcomes, with chance ``merge_rate`` it
  merges the smaller holding back into USDC: Polymarket's subgraph sells every outcome at 1/n
  (0.50 each), realizing ``0.50 - avg_price`` per share on each side.
- CONVERSION: after a BUY of "No" on a neg-risk market whose event has other open markets, with
  chance ``conversion_rate`` the No shares become as many Yes shares of every other market of
  the event; their cost moves with them, shared equally. No cash, nothing realized.
- REDEEM: after a market resolves, a wallet holding a paying outcome redeems (chance
  ``redeem_winner_rate``; one holding only losers: ``redeem_loser_rate``) 1-60 minutes later:
  every share of the market is paid its payout (1, 0, or 0.5 each when void).
- MAKER_REBATE and REWARD: at each full UTC hour, per market, for the maker fills of the hour
  before: ``rebate_rate`` of the fee the takers paid on them (fee-enabled markets), and
  ``reward_rate_per_usdc`` of their notional (liquidity rewards).
- YIELD: a type Polymarket does not document today, occasionally at a full hour for a wallet that
  traded in the hour before: readers must keep unknown types as received.

Positions use Polymarket's definitions: ``avg_price`` is the pre-fee average cost of the shares
held (average-cost method: sells do not move it), ``entry_cost_usdc = current_size * avg_price``,
``entry_fees_usdc`` the entry fees still attached to the shares held (released pro rata on
sells), ``realized_pnl`` pre-fee (sells, merges and redemptions at price minus average cost),
``unrealized_pnl = current_value - entry_cost_usdc``, ``total_pnl = realized + unrealized``.
Status: OPEN (held, unresolved), CLOSED (nothing held), REDEEMABLE (held, resolved, pays),
REDEEMABLE_LOST (held, resolved, pays nothing). All arithmetic is Decimal on the values exactly as
served; figures are rounded to 6 places (micro-USDC) only when rendered.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .catalog import derive_seed, hex_digest
from .world import BUY, SIDE_NAMES, VALID, World

MICRO = Decimal("0.000001")
ZERO = Decimal(0)
ONE = Decimal(1)
# A split buys, a merge sells, one share of every outcome at an equal share of the 1 USDC they
# are worth together (Polymarket's pnl-subgraph); every emulated market has two outcomes.
SPLIT_MERGE_PRICE = ONE / 2
HOUR = 3600
# Row-derived movements sort after time-derived ones of the same second (see Movement.seq).
_ROW_SEQ_BASE = 10**6


def micro(value: Decimal) -> Decimal:
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def exact(value: float) -> Decimal:
    """A served float as the decimal a client reads from the JSON text."""
    return Decimal(repr(value))


@dataclass(frozen=True)
class Movement:
    """One /v2/activity row before rendering. ``outcome`` None = a market-level movement."""

    timestamp: int
    # Total order within a wallet: time-derived movements get small numbers, row-derived ones
    # 10**6 + row * 8 + slot, so a SPLIT sorts before the SELL it feeds.
    seq: int
    type: str
    market: int
    outcome: int | None
    side: str
    size: Decimal
    price: Decimal
    usdc_size: Decimal
    transaction_hash: str
    visible_at: int
    row_id: int | None = None


@dataclass
class Holding:
    """One wallet's position in one outcome token."""

    size: Decimal = ZERO
    # Pre-fee cost basis of the shares held, and the entry fees still attached to them.
    cost: Decimal = ZERO
    fees: Decimal = ZERO
    realized: Decimal = ZERO
    # Fees the realized PnL paid: entry fees released by sells, merges and redemptions, and the
    # fees of the sells themselves (/v2/user-stats realises after fees; /v2/positions before).
    fees_realized: Decimal = ZERO
    total_bought: Decimal = ZERO
    # Cost basis of every share given up so far (the base of percent_realized_pnl).
    disposed_cost: Decimal = ZERO
    last_event_at: int = 0

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.size if self.size > 0 else ZERO

    def acquire(self, shares: Decimal, unit_cost: Decimal, fee: Decimal, at: int) -> None:
        self.size += shares
        self.cost += shares * unit_cost
        self.fees += fee
        self.total_bought += shares
        self.last_event_at = at

    def dispose(self, shares: Decimal, unit_price: Decimal, at: int, *, fees_move: bool = False,
                ) -> tuple[Decimal, Decimal]:
        """Give up shares at a price: realizes price - average cost; returns (cost, fees) released.
        The released entry fees are paid by the realized PnL, unless `fees_move` (a conversion
        carries them to the shares it creates)."""
        shares = min(shares, self.size)
        if shares <= 0:
            return ZERO, ZERO
        share_of_holding = shares / self.size
        cost_out = self.cost * share_of_holding
        fees_out = self.fees * share_of_holding
        self.realized += shares * unit_price - cost_out
        self.disposed_cost += cost_out
        if not fees_move:
            self.fees_realized += fees_out
        self.size -= shares
        self.cost -= cost_out
        self.fees -= fees_out
        if self.size <= 0:
            self.size = self.cost = self.fees = ZERO
        self.last_event_at = at
        return cost_out, fees_out


@dataclass
class WalletLedger:
    movements: list[Movement] = field(default_factory=list)
    holdings: dict[tuple[int, int], Holding] = field(default_factory=dict)
    # Taker fees charged on the wallet's fills (the `fees` of /v2/user-stats).
    fees_charged: Decimal = ZERO

    def holding(self, market: int, outcome: int) -> Holding:
        return self.holdings.setdefault((market, outcome), Holding())


def taker_fee(world: World, market_index: int, size: Decimal, price: Decimal) -> Decimal:
    schedule = world.catalog.markets[market_index].fee_schedule
    if schedule is None:
        return ZERO
    rate = Decimal(repr(schedule.rate))
    return micro(size * rate * (price * (ONE - price)) ** schedule.exponent)


def _chance(world: World, *parts: object) -> float:
    return derive_seed(world.seed, "ledger", *parts) / 2**64


def payouts(winner_index: int | None) -> tuple[Decimal, Decimal]:
    if winner_index is None:
        return Decimal("0.5"), Decimal("0.5")
    return (ONE, ZERO) if winner_index == 0 else (ZERO, ONE)


def build_ledger(world: World, wallet: int, now: float) -> WalletLedger:
    """Every movement of one wallet up to virtual ``now`` (visible or not) and its holdings."""
    config = world.config
    columns = world.columns
    catalog = world.catalog
    ledger = WalletLedger()
    moves = ledger.movements
    base_lag = config.visibility_base_max_seconds
    now_second = int(now)
    # (hour end, market) -> [maker notional, rebate]
    hourly: dict[tuple[int, int], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    # hour end -> the market the wallet last traded in that hour
    active_hours: dict[int, int] = {}

    with world.lock:
        rows = list(world.by_wallet[wallet].all_rows)
    for row_id in rows:
        if columns.kind[row_id] != VALID:
            continue
        ts = columns.timestamp[row_id]
        market_index = columns.market[row_id]
        outcome = columns.outcome[row_id]
        side = columns.side[row_id]
        size = exact(columns.size[row_id])
        price = exact(columns.price[row_id])
        is_taker = bool(columns.is_taker[row_id])
        visible_at = columns.visible_at[row_id]
        tx_hash = world.transaction_hash(row_id)
        fee = taker_fee(world, market_index, size, price) if is_taker else ZERO
        ledger.fees_charged += fee
        seq = _ROW_SEQ_BASE + row_id * 8
        held = ledger.holding(market_index, outcome)
        hour_end = (ts // HOUR + 1) * HOUR
        active_hours[hour_end] = market_index
        if not is_taker:
            bucket = hourly[(hour_end, market_index)]
            bucket[0] += size * price
            schedule = catalog.markets[market_index].fee_schedule
            if schedule is not None:
                bucket[1] += taker_fee(world, market_index, size, price) * Decimal(repr(schedule.rebate_rate))
        if side == BUY:
            held.acquire(size, price, fee, ts)
            cash = micro(size * price + fee)
        else:
            shortfall = size - held.size
            if shortfall > 0:
                split = shortfall.quantize(MICRO, rounding="ROUND_UP")
                held.acquire(split, SPLIT_MERGE_PRICE, ZERO, ts)
                ledger.holding(market_index, 1 - outcome).acquire(split, SPLIT_MERGE_PRICE, ZERO, ts)
                moves.append(Movement(ts, seq + 1, "SPLIT", market_index, None, "", split, ZERO, split,
                                      "0x" + hex_digest(world.seed, "split", row_id, nbytes=32), visible_at, row_id))
            held.dispose(size, price, ts)
            held.fees_realized += fee
            cash = micro(size * price - fee)
        moves.append(Movement(ts, seq + 4, "TRADE", market_index, outcome, SIDE_NAMES[side], size, price, cash,
                              tx_hash, visible_at, row_id))
        if side == BUY:
            _maybe_merge(world, ledger, row_id, ts, market_index, outcome, visible_at, seq)
            if outcome == 1:
                _maybe_convert(world, ledger, row_id, ts, market_index, visible_at, seq)

    _redeem_resolved_markets(world, wallet, ledger, now_second, base_lag)
    for (hour_end, market_index), (maker_notional, rebate) in sorted(hourly.items()):
        if hour_end > now_second:
            continue
        visible = hour_end + _lag(world, base_lag, "hourly", wallet, hour_end, market_index)
        if rebate >= MICRO:
            moves.append(Movement(hour_end, market_index * 8 + 1, "MAKER_REBATE", market_index, None, "",
                                  micro(rebate), ZERO, micro(rebate),
                                  "0x" + hex_digest(world.seed, "rebate", wallet, hour_end, market_index, nbytes=32),
                                  visible))
        reward = micro(maker_notional * Decimal(repr(config.reward_rate_per_usdc)))
        if reward >= MICRO:
            moves.append(Movement(hour_end, market_index * 8 + 2, "REWARD", market_index, None, "", reward, ZERO,
                                  reward, "0x" + hex_digest(world.seed, "reward", wallet, hour_end, market_index,
                                                            nbytes=32), visible))
    for hour_end, market_index in sorted(active_hours.items()):
        if hour_end <= now_second and _chance(world, "yield", wallet, hour_end) < config.unknown_activity_rate:
            amount = Decimal(1 + int(_chance(world, "yield-size", wallet, hour_end) * 5000)) * MICRO * 100
            moves.append(Movement(hour_end, market_index * 8 + 7, "YIELD", market_index, None, "", amount, ZERO, amount,
                                  "0x" + hex_digest(world.seed, "yield", wallet, hour_end, nbytes=32),
                                  hour_end + _lag(world, base_lag, "yield", wallet, hour_end)))
    moves.sort(key=lambda m: (m.timestamp, m.seq))
    return ledger


def _lag(world: World, base_lag: int, *parts: object) -> int:
    return int(_chance(world, "lag", *parts) * (base_lag + 1))


def _maybe_merge(world: World, ledger: WalletLedger, row_id: int, ts: int, market_index: int, outcome: int,
                 visible_at: int, seq: int) -> None:
    bought, other = ledger.holding(market_index, outcome), ledger.holding(market_index, 1 - outcome)
    pairs = min(bought.size, other.size).quantize(MICRO, rounding="ROUND_DOWN")
    if pairs < MICRO or _chance(world, "merge", row_id) >= world.config.merge_rate:
        return
    bought.dispose(pairs, SPLIT_MERGE_PRICE, ts)
    other.dispose(pairs, SPLIT_MERGE_PRICE, ts)
    ledger.movements.append(Movement(ts, seq + 6, "MERGE", market_index, None, "", pairs, ZERO, pairs,
                                     "0x" + hex_digest(world.seed, "merge", row_id, nbytes=32), visible_at, row_id))


def _maybe_convert(world: World, ledger: WalletLedger, row_id: int, ts: int, market_index: int, visible_at: int,
                   seq: int) -> None:
    catalog = world.catalog
    event = catalog.events[catalog.markets[market_index].event_index]
    if not event.neg_risk:
        return
    # Open at the time of the fill (not now), so a conversion never vanishes once the event closes.
    others = [i for i in event.market_indexes
              if i != market_index and (world.market_states[i].closed_at is None
                                        or world.market_states[i].closed_at > ts)]
    if not others or _chance(world, "convert", row_id) >= world.config.conversion_rate:
        return
    no_shares = ledger.holding(market_index, 1)
    shares = no_shares.size
    if shares < MICRO:
        return
    # The No shares leave at their own cost (nothing realized); the cost follows into the Yes shares.
    cost_out, fees_out = no_shares.dispose(shares, no_shares.avg_price, ts, fees_move=True)
    count = Decimal(len(others))
    for other in others:
        ledger.holding(other, 0).acquire(shares, cost_out / shares / count, fees_out / count, ts)
    ledger.movements.append(Movement(ts, seq + 7, "CONVERSION", market_index, 1, "", shares, ZERO, ZERO,
                                     "0x" + hex_digest(world.seed, "convert", row_id, nbytes=32), visible_at, row_id))


def _redeem_resolved_markets(world: World, wallet: int, ledger: WalletLedger, now_second: int, base_lag: int) -> None:
    config = world.config
    markets = sorted({market for (market, _outcome) in ledger.holdings})
    for market_index in markets:
        resolved_at = world.market_states[market_index].resolved_at
        if resolved_at is None:
            continue
        pays = payouts(world.catalog.markets[market_index].winner_index)
        held = [(outcome, ledger.holdings.get((market_index, outcome))) for outcome in (0, 1)]
        held = [(outcome, h) for outcome, h in held if h is not None and h.size > 0]
        if not held:
            continue
        wins = any(pays[outcome] > 0 for outcome, _h in held)
        rate = config.redeem_winner_rate if wins else config.redeem_loser_rate
        if _chance(world, "redeem", wallet, market_index) >= rate:
            continue
        at = int(resolved_at) + 60 + int(_chance(world, "redeem-at", wallet, market_index) * 3540)
        if at > now_second:
            continue
        shares = sum((h.size for _o, h in held), ZERO)
        cash = micro(sum((h.size * pays[outcome] for outcome, h in held), ZERO))
        for outcome, h in held:
            h.dispose(h.size, pays[outcome], at)
        ledger.movements.append(Movement(at, market_index * 8 + 3, "REDEEM", market_index, None, "", micro(shares),
                                         ZERO, cash,
                                         "0x" + hex_digest(world.seed, "redeem", wallet, market_index, nbytes=32),
                                         at + _lag(world, base_lag, "redeem", wallet, market_index)))
