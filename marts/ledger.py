"""A wallet's ledger from its `/v2/activity` rows: pure computation, no database, no clock.

Every movement becomes one ledger entry per token it touches (a "leg"), applied in the
upstream's own order — timestamp, then the order the rows landed in (the walk serves them in
order; a hash never decides) — to per-token books kept on two bases at once:

- **Polymarket basis** (the definition behind `/v2/positions` `avg_price` / `realized_pnl`,
  leaderboard and profile): pre-fee prices, average cost. We follow Polymarket's PnL subgraph
  (github.com/Polymarket/polymarket-subgraph, `pnl-subgraph`, read through the `search` tool):
  a buy moves the average price ``(avg·held + price·q) / (held + q)``; a sell of q realises
  ``min(q, held) · (price − avg)`` and never moves the average (shares sold beyond those known
  realise nothing); SPLIT buys one share of every outcome at 1/n (0.50 on a binary market);
  MERGE sells one of every outcome at 1/n; REDEEM sells every held share at its payout; a
  neg-risk CONVERSION sells the NO shares of the converted questions at their own average
  (nothing realised) and buys YES of every other question of the event at
  ``(Σ no avg − (k − 1)) / (Q − k)`` (k questions converted, Q in the event; the k − 1 USDC per
  share the adapter pays out is the cash of the row).
- **Cash basis**: the same books with what actually moved — a buy costs `usdc_size` (fee
  included), a sell brings `usdc_size` (fee deducted) — plus rebates and rewards as income.

Fees are kept per fill (`ParsedActivity.fee_usdc`). Types this module does not know are kept as
entries of kind ``unknown`` with their amounts, shown, and never counted (guessing what a new
type means would misstate the wallet).

Settlement comes from the market's payout vector (winner 1, loser 0, void / partial as paid): a
position still held when its market resolves is settled at its payout whether or not the wallet
redeemed — not as Polymarket `realized_pnl` (Polymarket realises only at redemption) but as
`settlement_pnl`, which win rate and ROI use. A disposal of more shares than the known history
holds means shares came from before that history: the position's cost basis is ``unknown`` and
it is left out of win rate and ROI.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from ingest.sources.data_api.parsing import ParsedActivity

ZERO = Decimal(0)
ONE = Decimal(1)
# Sizes are served to the micro-share: a shortfall below that is rounding, not missing history.
SHARE_TOLERANCE = Decimal("0.000001")
CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)
INCOME_KINDS = {"REWARD": "reward", "MAKER_REBATE": "maker_rebate"}


class MarketTerms(NamedTuple):
    """What the ledger needs to know of a market: its tokens by outcome index, its payout per
    share once resolved, and the neg-risk event it belongs to ("" when none is known)."""

    condition_id: str
    token_ids: tuple[str, ...]
    payouts: tuple[Decimal, ...] | None
    event_key: str = ""
    mark_prices: tuple[Decimal | None, ...] = ()


@dataclass(frozen=True)
class LedgerEntry:
    sequence: int  # the movement's place in the wallet's history
    leg: int
    occurred_at: datetime
    activity_type: str  # as sent
    kind: str  # trade, split, merge, redeem, conversion, reward, maker_rebate, unknown
    source_key: str  # the landed row's identity (a TRADE: its fill's)
    condition_id: str | None
    token_id: str | None
    shares: Decimal  # signed: + received, − given up
    cash: Decimal  # signed USDC, fees included
    fee: Decimal
    price: Decimal | None  # the price the Polymarket basis applied to this leg
    note: str = ""


@dataclass
class Book:
    token_id: str
    condition_id: str | None
    outcome_index: int | None
    shares: Decimal = ZERO
    avg_price: Decimal = ZERO  # Polymarket basis
    realized_pnl: Decimal = ZERO
    cash_avg_price: Decimal = ZERO
    cash_realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    bought_shares: Decimal = ZERO
    invested: Decimal = ZERO  # pre-fee cost of every share acquired (the ROI base)
    cost_basis_known: bool = True
    redeemed_at_price: Decimal | None = None
    movements: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None

    def touch(self, at: datetime) -> None:
        self.movements += 1
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)

    def acquire(self, shares: Decimal, price: Decimal, cash_price: Decimal) -> None:
        if shares <= 0:
            return
        held = self.shares
        total = held + shares
        self.avg_price = CONTEXT.divide(self.avg_price * held + price * shares, total)
        self.cash_avg_price = CONTEXT.divide(self.cash_avg_price * held + cash_price * shares, total)
        self.shares = total
        self.bought_shares += shares
        self.invested += price * shares

    def dispose(self, shares: Decimal, price: Decimal, cash_price: Decimal) -> Decimal:
        """Give up shares; returns how many of them the known history held."""
        if shares - self.shares > SHARE_TOLERANCE:
            self.cost_basis_known = False
        known = min(shares, self.shares)
        if known <= 0:
            return ZERO
        self.realized_pnl += known * (price - self.avg_price)
        self.cash_realized_pnl += known * (cash_price - self.cash_avg_price)
        self.shares -= known
        return known


@dataclass(frozen=True)
class LedgerPosition:
    token_id: str
    condition_id: str | None
    outcome_index: int | None
    status: str  # open, closed, won, lost, void, partial
    shares: Decimal
    avg_price: Decimal
    realized_pnl: Decimal
    cash_avg_price: Decimal
    cash_realized_pnl: Decimal
    fees_paid: Decimal
    bought_shares: Decimal
    invested: Decimal
    settlement_price: Decimal | None
    settlement_pnl: Decimal  # Polymarket basis, shares still held at resolution
    cash_settlement_pnl: Decimal
    mark_price: Decimal | None
    unrealized_pnl: Decimal
    cost_basis_known: bool
    movements: int
    first_at: datetime | None
    last_at: datetime | None

    @property
    def total_pnl(self) -> Decimal:
        return self.realized_pnl + self.settlement_pnl

    @property
    def is_resolved(self) -> bool:
        return self.status in ("won", "lost", "void", "partial")


class LedgerTotals(NamedTuple):
    """A wallet's totals as Polymarket's profile card (`/v2/user-stats`) counts them: realised
    PnL of sells, merges and redemptions after fees (the cash basis without income or
    settlement), fees charged, maker rebates and rewards."""

    realized_after_fees: Decimal
    fees_paid: Decimal
    maker_rebates: Decimal
    rewards: Decimal


@dataclass
class WalletLedger:
    entries: list[LedgerEntry] = field(default_factory=list)
    positions: list[LedgerPosition] = field(default_factory=list)
    fees_paid: Decimal = ZERO
    maker_rebates: Decimal = ZERO
    rewards: Decimal = ZERO
    unknown_usdc: Decimal = ZERO  # amounts of rows of unknown types, shown and not counted
    unknown_types: list[str] = field(default_factory=list)
    realized_pnl: Decimal = ZERO  # Polymarket basis: sells, merges, redemptions
    # Per token (shares, Polymarket-basis realised PnL) after the movements up to `snapshot_at`
    # (all of them when none was given), and whether a cost basis was unknown by then: what a
    # reconciliation with Polymarket's positions snapshot of that moment compares.
    snapshot: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    snapshot_unknown_cost: bool = False
    # The totals after the movements up to `totals_at` (None when none was asked for): what a
    # reconciliation with Polymarket's card of that moment compares.
    totals: LedgerTotals | None = None
    settlement_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    cash_pnl: Decimal = ZERO  # cash basis: realised + settled after fees, plus rebates and rewards
    resolved_positions: int = 0
    winning_positions: int = 0
    unknown_cost_positions: int = 0
    # The ROI's two terms, over positions of known cost only: what they bought (pre-fee) and what
    # they made (realised + settled + unrealised at the mark, Polymarket basis).
    invested: Decimal = ZERO
    known_cost_pnl: Decimal = ZERO

    @property
    def win_rate(self) -> Decimal:
        return CONTEXT.divide(Decimal(self.winning_positions), Decimal(self.resolved_positions)) \
            if self.resolved_positions else ZERO

    @property
    def roi(self) -> Decimal:
        return CONTEXT.divide(self.known_cost_pnl, self.invested) if self.invested > 0 else ZERO


def _upstream_order(activities: Sequence[ParsedActivity]) -> list[ParsedActivity]:
    # Stable: rows of one second keep the order they landed in.
    return sorted(activities, key=lambda activity: activity.occurred_at)


def wallet_ledger_compute(
    *, activities: Sequence[ParsedActivity], markets: dict[str, MarketTerms],
    token_markets: dict[str, tuple[str, int]] | None = None, snapshot_at: datetime | None = None,
    totals_at: datetime | None = None,
) -> WalletLedger:
    """The ledger, positions and both PnL bases of one wallet.

    `activities` in landing order; `markets` by condition id (tokens, payouts, event);
    `token_markets` maps a token to (condition id, outcome index) where the rows do not say;
    `snapshot_at`: also keep the books as they stood after the movements up to that time
    (`WalletLedger.snapshot`), in the same pass; `totals_at`: likewise the totals
    (`WalletLedger.totals`).
    """
    token_markets = dict(token_markets or {})
    for terms in markets.values():
        for index, token in enumerate(terms.token_ids):
            token_markets.setdefault(token, (terms.condition_id, index))
    events: dict[str, list[MarketTerms]] = defaultdict(list)
    for terms in markets.values():
        if terms.event_key:
            events[terms.event_key].append(terms)
    ledger = WalletLedger()
    books: dict[str, Book] = {}

    def book(token: str, condition: str | None = None, outcome: int | None = None) -> Book:
        found = books.get(token)
        if found is None:
            known = token_markets.get(token)
            found = books[token] = Book(token_id=token, condition_id=condition or (known and known[0]),
                                        outcome_index=outcome if outcome is not None else (known and known[1]))
        return found

    ordered = _upstream_order(activities)
    conversions = _conversion_groups(ordered)
    no_averages: dict[str, tuple[Decimal, Decimal]] = {}
    snapshot_taken = False
    totals_taken = totals_at is None
    for sequence, activity in enumerate(ordered):
        if snapshot_at is not None and not snapshot_taken and activity.occurred_at > snapshot_at:
            _snapshot_take(ledger, books)
            snapshot_taken = True
        if not totals_taken and activity.occurred_at > totals_at:
            ledger.totals = _totals_of(ledger, books)
            totals_taken = True
        legs = _apply(activity, sequence=sequence, book=book, books=books, markets=markets, events=events,
                      conversions=conversions, no_averages=no_averages, ledger=ledger)
        ledger.entries.extend(legs)
    if not snapshot_taken:
        _snapshot_take(ledger, books)
    if not totals_taken:
        ledger.totals = _totals_of(ledger, books)
    _positions_close(ledger, books=books, markets=markets)
    return ledger


def _snapshot_take(ledger: WalletLedger, books: dict[str, Book]) -> None:
    ledger.snapshot = {token: (b.shares, b.realized_pnl) for token, b in books.items()}
    ledger.snapshot_unknown_cost = any(not b.cost_basis_known for b in books.values())


def _totals_of(ledger: WalletLedger, books: dict[str, Book]) -> LedgerTotals:
    return LedgerTotals(realized_after_fees=sum((b.cash_realized_pnl for b in books.values()), ZERO),
                        fees_paid=ledger.fees_paid, maker_rebates=ledger.maker_rebates, rewards=ledger.rewards)


def _entry(activity: ParsedActivity, *, sequence: int, leg: int, kind: str, token: str | None, shares: Decimal,
           cash: Decimal, price: Decimal | None, fee: Decimal = ZERO, condition: str | None = None,
           note: str = "") -> LedgerEntry:
    return LedgerEntry(
        sequence=sequence, leg=leg, occurred_at=activity.occurred_at, activity_type=activity.activity_type, kind=kind,
        source_key=activity.idempotency_key, condition_id=condition or activity.condition_id, token_id=token,
        shares=shares, cash=cash, fee=fee, price=price, note=note,
    )


def _conversion_groups(ordered: list[ParsedActivity]) -> dict[str, list[ParsedActivity]]:
    """CONVERSION rows of one transaction convert one index set together (k questions)."""
    groups: dict[str, list[ParsedActivity]] = defaultdict(list)
    for activity in ordered:
        if activity.activity_type.upper() == "CONVERSION":
            groups[activity.transaction_hash or activity.idempotency_key].append(activity)
    return groups


def _apply(activity: ParsedActivity, *, sequence: int, book, books: dict[str, Book], markets: dict[str, MarketTerms],
           events: dict[str, list[MarketTerms]], conversions: dict[str, list[ParsedActivity]],
           no_averages: dict[str, tuple[Decimal, Decimal]], ledger: WalletLedger) -> list[LedgerEntry]:
    kind = activity.activity_type.upper()
    at = activity.occurred_at
    size = activity.size or ZERO
    usdc = activity.usdc_size or ZERO
    if kind == "TRADE" and activity.fill is not None:
        fill = activity.fill
        fee = activity.fee_usdc or ZERO
        ledger.fees_paid += fee
        held = book(fill.asset, fill.condition_id, fill.outcome_index)
        held.touch(at)
        held.fees_paid += fee
        cash_price = CONTEXT.divide(fill.usdc_size, fill.size) if fill.size > 0 else fill.price
        if fill.side == "BUY":
            held.acquire(fill.size, fill.price, cash_price)
            shares, cash = fill.size, -fill.usdc_size
        else:
            held.dispose(fill.size, fill.price, cash_price)
            shares, cash = -fill.size, fill.usdc_size
        return [_entry(activity, sequence=sequence, leg=0, kind="trade", token=fill.asset, shares=shares, cash=cash,
                       price=fill.price, fee=fee)]
    if kind in ("SPLIT", "MERGE"):
        terms = markets.get(activity.condition_id or "")
        if terms is None or not terms.token_ids:
            return [_entry(activity, sequence=sequence, leg=0, kind=kind.lower(), token=None, shares=ZERO,
                           cash=-usdc if kind == "SPLIT" else usdc, price=None,
                           note="market tokens unknown: not applied")]
        equal = CONTEXT.divide(ONE, Decimal(len(terms.token_ids)))
        legs = []
        for index, token in enumerate(terms.token_ids):
            held = book(token, terms.condition_id, index)
            held.touch(at)
            if kind == "SPLIT":
                held.acquire(size, equal, equal)
            else:
                held.dispose(size, equal, equal)
            sign = 1 if kind == "SPLIT" else -1
            legs.append(_entry(activity, sequence=sequence, leg=index, kind=kind.lower(), token=token,
                               shares=sign * size, cash=-sign * size * equal, price=equal))
        return legs
    if kind == "REDEEM":
        return _redeem(activity, sequence=sequence, book=book, books=books, markets=markets)
    if kind == "CONVERSION":
        return _convert(activity, sequence=sequence, book=book, markets=markets, events=events,
                        group=conversions[activity.transaction_hash or activity.idempotency_key],
                        no_averages=no_averages)
    if kind in INCOME_KINDS:
        if kind == "REWARD":
            ledger.rewards += usdc
        else:
            ledger.maker_rebates += usdc
        return [_entry(activity, sequence=sequence, leg=0, kind=INCOME_KINDS[kind], token=None, shares=ZERO,
                       cash=usdc, price=None)]
    ledger.unknown_usdc += usdc
    if activity.activity_type not in ledger.unknown_types:
        ledger.unknown_types.append(activity.activity_type)
    return [_entry(activity, sequence=sequence, leg=0, kind="unknown", token=activity.token_id, shares=size,
                   cash=usdc, price=activity.price, note="type not known: shown, not counted")]


def _redeem(activity: ParsedActivity, *, sequence: int, book, books: dict[str, Book],
            markets: dict[str, MarketTerms]) -> list[LedgerEntry]:
    """Every held share of the market is paid its payout. Without a known payout vector the
    payouts are read off the row: one token held → cash / shares; two → the binary split whose
    payouts add up to 1."""
    condition = activity.condition_id or ""
    terms = markets.get(condition)
    size = activity.size or ZERO
    usdc = activity.usdc_size or ZERO
    held = [b for b in books.values() if b.condition_id == condition and b.shares > 0]
    if activity.token_id and not any(b.token_id == activity.token_id for b in held):
        held.append(book(activity.token_id, condition, activity.outcome_index))
    if not held and terms is not None:
        held = [book(token, condition, index) for index, token in enumerate(terms.token_ids)]
    payouts: dict[str, Decimal] = {}
    if terms is not None and terms.payouts is not None:
        payouts = {token: terms.payouts[index] for index, token in enumerate(terms.token_ids)
                   if index < len(terms.payouts)}
    elif len(held) == 1:
        payouts = {held[0].token_id: CONTEXT.divide(usdc, size) if size > 0 else ZERO}
    elif len(held) == 2 and held[0].shares != held[1].shares:
        first, second = held
        payout_first = CONTEXT.divide(usdc - second.shares, first.shares - second.shares)
        payouts = {first.token_id: payout_first, second.token_id: ONE - payout_first}
    else:
        payouts = {b.token_id: CONTEXT.divide(usdc, size) if size > 0 else ZERO for b in held}
    legs = []
    total_held = sum((b.shares for b in held), ZERO)
    if size - total_held > SHARE_TOLERANCE:
        for b in held:
            b.cost_basis_known = False
    for leg, b in enumerate(held):
        price = payouts.get(b.token_id, ZERO)
        shares = b.shares if total_held > 0 else ZERO
        b.touch(activity.occurred_at)
        b.redeemed_at_price = price
        b.dispose(shares, price, price)
        legs.append(_entry(activity, sequence=sequence, leg=leg, kind="redeem", token=b.token_id, shares=-shares,
                           cash=shares * price, price=price, condition=condition))
    if not legs:
        legs.append(_entry(activity, sequence=sequence, leg=0, kind="redeem", token=None, shares=-size, cash=usdc,
                           price=None, note="no known shares of the market: cost basis unknown"))
    return legs


def _convert(activity: ParsedActivity, *, sequence: int, book, markets: dict[str, MarketTerms],
             events: dict[str, list[MarketTerms]], group: list[ParsedActivity],
             no_averages: dict[str, tuple[Decimal, Decimal]]) -> list[LedgerEntry]:
    """NO shares of the converted questions → YES of every other question of the event + cash.
    The group's first row applies the whole conversion; the others only add their NO legs."""
    size = activity.size or ZERO
    condition = activity.condition_id or ""
    terms = markets.get(condition)
    if terms is None or len(terms.token_ids) < 2:
        return [_entry(activity, sequence=sequence, leg=0, kind="conversion", token=activity.token_id, shares=ZERO,
                       cash=activity.usdc_size or ZERO, price=None, note="market tokens unknown: not applied")]
    no_token = terms.token_ids[1]
    no_book = book(no_token, condition, 1)
    no_book.touch(activity.occurred_at)
    no_price, no_cash_price = no_book.avg_price, no_book.cash_avg_price
    no_book.dispose(size, no_price, no_cash_price)
    legs = [_entry(activity, sequence=sequence, leg=0, kind="conversion", token=no_token, shares=-size, cash=ZERO,
                   price=no_price)]
    # The YES side needs every NO average of the index set: the last row of the group applies it.
    if activity is not group[-1]:
        legs[0] = _entry(activity, sequence=sequence, leg=0, kind="conversion", token=no_token, shares=-size,
                         cash=ZERO, price=no_price, note="YES side applied with the last row of the transaction")
        no_averages[activity.idempotency_key] = (no_price, no_cash_price)
        return legs
    converted = {row.condition_id for row in group}
    no_prices = [no_averages.get(row.idempotency_key, (ZERO, ZERO)) for row in group[:-1]] + [(no_price, no_cash_price)]
    others = [t for t in events.get(terms.event_key, []) if t.condition_id not in converted and t.token_ids] \
        if terms.event_key else []
    cash = sum((row.usdc_size or ZERO for row in group), ZERO)
    if not others:
        legs[0] = _entry(activity, sequence=sequence, leg=0, kind="conversion", token=no_token, shares=-size,
                         cash=cash, price=no_price, note="other questions of the event unknown: YES side not applied")
        return legs
    converted_count = Decimal(len(group))
    yes_price = CONTEXT.divide(sum((p for p, _ in no_prices), ZERO) - (converted_count - 1), Decimal(len(others)))
    cash_per_share = CONTEXT.divide(cash, size) if size > 0 else ZERO
    yes_cash_price = CONTEXT.divide(sum((c for _, c in no_prices), ZERO) - cash_per_share, Decimal(len(others)))
    legs[0] = _entry(activity, sequence=sequence, leg=0, kind="conversion", token=no_token, shares=-size, cash=cash,
                     price=no_price)
    for leg, other in enumerate(others, start=1):
        yes = book(other.token_ids[0], other.condition_id, 0)
        yes.touch(activity.occurred_at)
        yes.acquire(size, yes_price, yes_cash_price)
        legs.append(_entry(activity, sequence=sequence, leg=leg, kind="conversion", token=other.token_ids[0],
                           shares=size, cash=ZERO, price=yes_price, condition=other.condition_id))
    return legs


def _positions_close(ledger: WalletLedger, *, books: dict[str, Book], markets: dict[str, MarketTerms]) -> None:
    for token in sorted(books):
        b = books[token]
        terms = markets.get(b.condition_id or "")
        index = b.outcome_index
        payouts = terms.payouts if terms is not None else None
        settlement_price = None
        settlement_pnl = cash_settlement_pnl = unrealized = ZERO
        mark = None
        if b.shares <= 0 and b.redeemed_at_price is not None and (payouts is None or index is None):
            # Redeemed where the payout vector is not known (yet): the redemption says what it paid.
            settlement_price = b.redeemed_at_price
            status = {ONE: "won", ZERO: "lost"}.get(settlement_price, "partial")
        elif payouts is not None and index is not None and index < len(payouts):
            settlement_price = payouts[index]
            if len(set(payouts)) == 1:
                status = "void"
            elif settlement_price == ONE:
                status = "won"
            elif settlement_price == ZERO:
                status = "lost"
            else:
                status = "partial"
            settlement_pnl = b.shares * (settlement_price - b.avg_price)
            cash_settlement_pnl = b.shares * (settlement_price - b.cash_avg_price)
            if b.shares <= 0 and b.redeemed_at_price is None:
                status = "closed"  # sold out before the market paid: nothing was settled
        else:
            status = "open" if b.shares > 0 else "closed"
            if terms is not None and index is not None and index < len(terms.mark_prices):
                mark = terms.mark_prices[index]
            if mark is not None and b.shares > 0:
                unrealized = b.shares * (mark - b.avg_price)
        position = LedgerPosition(
            token_id=b.token_id, condition_id=b.condition_id, outcome_index=index, status=status, shares=b.shares,
            avg_price=b.avg_price, realized_pnl=b.realized_pnl, cash_avg_price=b.cash_avg_price,
            cash_realized_pnl=b.cash_realized_pnl, fees_paid=b.fees_paid,
            bought_shares=b.bought_shares, invested=b.invested, settlement_price=settlement_price,
            settlement_pnl=settlement_pnl, cash_settlement_pnl=cash_settlement_pnl, mark_price=mark,
            unrealized_pnl=unrealized, cost_basis_known=b.cost_basis_known, movements=b.movements,
            first_at=b.first_at, last_at=b.last_at,
        )
        ledger.positions.append(position)
        ledger.realized_pnl += position.realized_pnl
        ledger.settlement_pnl += position.settlement_pnl
        ledger.unrealized_pnl += position.unrealized_pnl
        ledger.cash_pnl += position.cash_realized_pnl + position.cash_settlement_pnl
        if not position.cost_basis_known:
            ledger.unknown_cost_positions += 1
            continue
        ledger.invested += position.invested
        ledger.known_cost_pnl += position.total_pnl + position.unrealized_pnl
        if position.is_resolved and position.status != "void":
            ledger.resolved_positions += 1
            if position.total_pnl > 0:
                ledger.winning_positions += 1
    ledger.cash_pnl += ledger.rewards + ledger.maker_rebates


def activities_parse(rows: Iterable[dict]) -> list[ParsedActivity]:
    """Landed rows (in landing order) → parsed activities numbered as their walk numbered them."""
    from ingest.sources.data_api.parsing import OccurrenceCounter, parse_activity_v2

    counter = OccurrenceCounter()
    return [counter.number(parse_activity_v2(row)) for row in rows]
