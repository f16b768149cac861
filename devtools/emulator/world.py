"""The emulated world: fills generated second by second on the virtual clock, and what is published.

Determinism: every virtual second is generated from its own RNG streams, seeded by
(seed, concern, second), and seconds are generated strictly in order. Hence the rows published by
virtual time T depend only on (config, scenarios in force at each second, T): never on when or how
often clients polled. Separate streams per concern (fills, bursts, batches, duplicates, malformed
rows, news, insiders) mean that switching on "duplicates" or "malformed" does not reshuffle the
valid fills, so the ground truth of valid fills is the same with or without them.

Planted roles ("roles", part of "signals"; the ground truth is `roles()`, in /_control/state):

- insiders (the catalog's five) are tipped on a share of the markets that resolve with a winner
  and buy that winner `insider_lead_min..max_seconds` (10-60 minutes) before the market's
  resolution news item, which the RSS wire publishes and a feed reader links to the market;
- one market maker is the resting order on a steady stream of fills in a dozen markets that stay
  open, buying a tick under the price and selling a tick over it, both outcomes, never holding
  more than a few fills' worth: many fills, both sides, a low net position, a thin margin;
- one arbitrageur buys both outcomes of a market in equal size for a tick under their price each
  (the pair costs less than 1);
- everyone else trades at random moments, as without the scenario. The role wallets take no part
  in that background trading while the scenario is on;
- background headlines are rarer (`roles_chatter_per_second`): a feed reader links a headline to
  every market naming one of its proper nouns (a month, an asset), so one headline a few minutes
  apart would put nearly every moment of every market within an hour before some news, and no
  timing could stand out from its market's baseline.

Memory: rows live in typed columns (``array``), about 60 bytes a row including every index, so a
million rows stay well under 100 MB. Row ids grow with (timestamp, sequence), which makes every
index (global feed, per market, per wallet, taker-only or not) a sorted array that can be bisected
by time and merged newest-first without sorting.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .catalog import (
    Catalog,
    Market,
    MarketView,
    build_catalog,
    derive_seed,
    hex_digest,
    render_event,
    render_market,
)
from .clock import VirtualClock
from .scenarios import DEFAULT_MANUAL_EPOCH, EmulatorConfig, GenerationProfile, parse_scenarios

# Row kinds. A duplicate is a second feed row with exactly the same content as an earlier valid
# row; a malformed row is an extra row that a validator must reject. Neither is a fill.
VALID = 0
DUPLICATE = 1
MISSING_PROXY_WALLET = 2
NON_NUMERIC_PRICE = 3
MISSING_TIMESTAMP = 4
MALFORMED_KINDS = {
    MISSING_PROXY_WALLET: "missing_proxyWallet",
    NON_NUMERIC_PRICE: "non_numeric_price",
    MISSING_TIMESTAMP: "missing_timestamp",
}

BUY, SELL = 0, 1
SIDE_NAMES = ("BUY", "SELL")
# The global feed's sentinel for "unknown / not applicable" (see the fixtures README).
OUTCOME_INDEX_SENTINEL = 999
# Insiders start buying this long before the resolution news breaks.
INSIDER_WINDOW_SECONDS = 1200


def plain_number(value: float) -> int | float:
    """Whole values as ints, the rest as floats: the Data API mixes both in one field."""
    return int(value) if value.is_integer() else value


def format_price_string(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass
class MarketState:
    closed_at: float | None = None
    resolved_at: float | None = None
    generated_notional: float = 0.0
    last_price: float | None = None
    last_trade_at: float | None = None


@dataclass(frozen=True)
class NewsItem:
    guid: str
    title: str
    link: str
    published_at: int
    market_index: int
    category: str
    # "resolution" items are the moment information becomes public; "background" is chatter.
    kind: str


@dataclass(frozen=True)
class TradeQuery:
    """A parsed /trades request. ``markets`` None = no market filter; empty = nothing matches."""

    limit: int
    offset: int
    taker_only: bool = True
    user: str | None = None
    markets: tuple[int, ...] | None = None
    side: int | None = None
    start: int | None = None
    end: int | None = None
    filter_type: str | None = None
    filter_amount: float | None = None


class _Columns:
    """Column storage for every published row, valid or not, in row-id order."""

    def __init__(self) -> None:
        self.timestamp = array("q")
        self.market = array("H")
        self.outcome = array("B")
        self.wallet = array("I")
        self.side = array("B")
        self.size = array("d")
        self.price = array("d")
        self.is_taker = array("B")
        self.tx_number = array("I")
        self.kind = array("B")
        # Virtual second from which Data API v2 serves the row (its block time + the indexer's lag).
        self.visible_at = array("q")

    def __len__(self) -> int:
        return len(self.kind)


class _Index:
    """Row ids of one scope (all rows and taker rows), ascending = oldest first."""

    __slots__ = ("all_rows", "taker_rows")

    def __init__(self) -> None:
        self.all_rows = array("I")
        self.taker_rows = array("I")

    def add(self, row_id: int, is_taker: bool) -> None:
        self.all_rows.append(row_id)
        if is_taker:
            self.taker_rows.append(row_id)

    def rows(self, taker_only: bool) -> array:
        return self.taker_rows if taker_only else self.all_rows


class World:
    """Generates, stores and answers queries about everything the emulated upstream publishes."""

    def __init__(self, config: EmulatorConfig, clock: VirtualClock | None = None) -> None:
        self.config = config
        self.seed = config.seed
        if clock is None:
            if config.start is not None:
                start = config.start
            elif config.clock == "manual":
                start = DEFAULT_MANUAL_EPOCH
            else:
                start = int(time.time())
            clock = VirtualClock(kind=config.clock, start=start, speed=config.speed)
        self.clock = clock
        self.start = int(clock.start)
        self.history_start = self.start - config.history_seconds
        self.catalog: Catalog = build_catalog(
            seed=config.seed,
            start=self.start,
            market_count=config.market_count,
            wallet_count=config.wallet_count,
            history_seconds=config.history_seconds,
            protocol_v2_share=config.protocol_v2_market_share,
            resolution_window_seconds=config.resolution_window_seconds,
        )
        self.lock = threading.RLock()
        self.scenarios = parse_scenarios(config.scenario)
        self.profile: GenerationProfile = config.profile(self.scenarios)
        self.columns = _Columns()
        self.feed = _Index()
        self.by_market = [_Index() for _ in self.catalog.markets]
        self.by_wallet = [_Index() for _ in self.catalog.wallets]
        self.valid_rows = 0
        self.valid_taker_rows = 0
        # Guarantees that no two valid fills are served identically (see _append).
        self._contents_this_second: set[tuple[int, int, int, int, float, float]] = set()
        self.duplicate_rows = 0
        self.malformed_rows = 0
        self.news: list[NewsItem] = []
        self.market_states = [MarketState() for _ in self.catalog.markets]
        for market, state in zip(self.catalog.markets, self.market_states, strict=True):
            if market.closed_before_history_at is not None:
                state.closed_at = market.closed_before_history_at
                state.resolved_at = market.closed_before_history_at + config.proposal_seconds
        self._open_markets = [m.index for m in self.catalog.markets if self.market_states[m.index].closed_at is None]
        self._awaiting_resolution: list[int] = []
        # (news time, market) for every market that may resolve, earliest first.
        self._resolution_news = sorted(
            (int(m.resolves_at) - m.news_lead_seconds, m.index)
            for m in self.catalog.markets
            if m.resolves_at is not None
        )
        self._resolution_news_cursor = 0
        self._roles_prepare()
        self.generated_until = self.history_start - 1
        self.sync()

    # --- time ---------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def sync(self) -> float:
        """Generate every second up to the virtual now; returns that now."""
        now = self.clock.now()
        target = math.floor(now)
        if target > self.generated_until:
            with self.lock:
                while self.generated_until < target:
                    self._generate_second(self.generated_until + 1)
                    self.generated_until += 1
        return now

    def advance(self, seconds: float) -> float:
        self.clock.advance(seconds)
        return self.sync()

    def set_scenario(self, spec: str) -> frozenset[str]:
        """Switch scenarios from the next ungenerated second on; the past stays as published."""
        scenarios = parse_scenarios(spec)
        with self.lock:
            self.sync()
            self.scenarios = scenarios
            self.profile = self.config.profile(scenarios)
        return scenarios

    # --- generation ---------------------------------------------------------------------------

    def _stream(self, concern: str, second: int) -> random.Random:
        return random.Random(derive_seed(self.seed, concern, second))

    def _generate_second(self, second: int) -> None:
        profile = self.profile
        self._advance_market_fates(second, profile)
        self._publish_news(second, profile)
        if not self._open_markets:
            return
        first_row = len(self.columns)
        tx_counter = [0]
        self._contents_this_second.clear()

        fills = self._stream("fills", second)
        transactions = _poisson(fills, profile.transactions_per_second)
        for _ in range(transactions):
            self._emit_match(fills, second, tx_counter, self._pick_market(fills))

        if profile.burst and self._in_burst(second):
            burst = self._stream("burst", second)
            per_second = self.config.effective_burst_taker_fills / self.config.burst_length_seconds
            for _ in range(_poisson(burst, per_second)):
                self._emit_match(burst, second, tx_counter, self._pick_market(burst))

        if profile.multi_fill_rate:
            batches = self._stream("multi_fill", second)
            if batches.random() < profile.multi_fill_rate:
                for _ in range(batches.randint(1, 3)):
                    self._emit_batch(batches, second, tx_counter)

        if profile.resolutions and profile.roles:
            self._emit_tipped_insider_trades(second, tx_counter)
        elif profile.resolutions:
            self._emit_insider_trades(second, tx_counter)
        if profile.roles:
            self._emit_market_maker_fill(second, tx_counter)
            self._emit_arbitrage(second, tx_counter)

        if profile.identical_fill_rate:
            twins = self._stream("identical_fills", second)
            if twins.random() < profile.identical_fill_rate:
                self._emit_identical_maker_fills(twins, second, tx_counter)

        last_row = len(self.columns)
        if profile.duplicate_rate and last_row > first_row:
            duplicates = self._stream("duplicates", second)
            for row_id in range(first_row, last_row):
                if duplicates.random() < profile.duplicate_rate:
                    self._append_copy(row_id, DUPLICATE)
        if profile.malformed_rate and last_row > first_row:
            malformed = self._stream("malformed", second)
            for row_id in range(first_row, last_row):
                if self.columns.is_taker[row_id] and malformed.random() < profile.malformed_rate:
                    self._append_malformed(malformed, row_id)
        self._assign_visibility(second, first_row, profile)

    def _assign_visibility(self, second: int, first_row: int, profile: GenerationProfile) -> None:
        """When Data API v2 starts serving each transaction of this second (all its rows at once).

        Own RNG stream, drawn per transaction in order of first appearance, so visibility never
        changes which fills exist; with "late_rows" some transactions surface only after newer ones
        were already served, like upstream's lagging indexer.
        """
        columns = self.columns
        if first_row == len(columns):
            return
        rng = self._stream("visibility", second)
        config = self.config
        delays: dict[int, int] = {}
        for row_id in range(first_row, len(columns)):
            tx_number = columns.tx_number[row_id]
            delay = delays.get(tx_number)
            if delay is None:
                delay = rng.randint(0, config.visibility_base_max_seconds)
                if rng.random() < profile.late_row_rate:
                    delay = rng.randint(config.late_row_min_seconds, config.late_row_max_seconds)
                delays[tx_number] = delay
            columns.visible_at[row_id] = second + delay
    def _in_burst(self, second: int) -> bool:
        # Offset by a quarter period so the first burst lands a few minutes into a run, not at t=0.
        period = self.config.burst_period_seconds
        return (second - self.start + period // 4) % period < self.config.burst_length_seconds

    def _advance_market_fates(self, second: int, profile: GenerationProfile) -> None:
        if profile.resolutions:
            due = [
                index for index in self._open_markets
                if (resolves_at := self.catalog.markets[index].resolves_at) is not None and resolves_at <= second
            ]
            for index in due:
                self._open_markets.remove(index)
                self.market_states[index].closed_at = float(second)
                self._awaiting_resolution.append(index)
        # A closed market always finishes resolving, even if "resolutions" was switched off since.
        if self._awaiting_resolution:
            still_waiting = []
            for index in self._awaiting_resolution:
                state = self.market_states[index]
                assert state.closed_at is not None
                if second >= state.closed_at + self.config.proposal_seconds:
                    state.resolved_at = float(second)
                else:
                    still_waiting.append(index)
            self._awaiting_resolution = still_waiting

    def _publish_news(self, second: int, profile: GenerationProfile) -> None:
        while (self._resolution_news_cursor < len(self._resolution_news)
               and self._resolution_news[self._resolution_news_cursor][0] <= second):
            _news_at, index = self._resolution_news[self._resolution_news_cursor]
            self._resolution_news_cursor += 1
            if profile.resolutions and self.market_states[index].closed_at is None:
                market = self.catalog.markets[index]
                self._add_news(second, index, market.resolution_headline, "resolution")
        chatter = self._stream("news", second)
        rate = self.config.roles_chatter_per_second if profile.roles else 1 / 240
        if self._open_markets and chatter.random() < rate:
            index = self._pick_market(chatter)
            market = self.catalog.markets[index]
            self._add_news(second, index, chatter.choice(market.headline_templates), "background")

    def _add_news(self, second: int, market_index: int, title: str, kind: str) -> None:
        guid = "emu-news-" + hex_digest(self.seed, "news", second, market_index, title, nbytes=8)
        market = self.catalog.markets[market_index]
        self.news.append(NewsItem(
            guid=guid,
            title=title,
            link=f"https://news.emulator.invalid/{market.category}/{guid}",
            published_at=second,
            market_index=market_index,
            category=market.category,
            kind=kind,
        ))

    def _pick_market(self, rng: random.Random) -> int:
        markets = self.catalog.markets
        return rng.choices(self._open_markets, weights=[markets[i].weight for i in self._open_markets])[0]

    def _pick_wallet(self, rng: random.Random, *, avoid: int = -1) -> int:
        wallets = range(len(self.catalog.wallets))
        cumulative = self._role_cum_weights if self.profile.roles else self.catalog.wallet_cum_weights
        while True:
            choice = rng.choices(wallets, cum_weights=cumulative)[0]
            if choice != avoid:
                return choice

    def outcome0_price(self, market: Market, at: float, *, resolutions: bool | None = None) -> float:
        """The market's price of outcome 0 at a virtual instant (a pure function of time)."""
        price = market.base_price + market.swing * math.sin(2 * math.pi * at / market.swing_period + market.swing_phase)
        if resolutions is None:
            resolutions = self.profile.resolutions
        if resolutions and market.resolves_at is not None:
            target = {0: 0.99, 1: 0.01, None: 0.5}[market.winner_index]
            news_at = market.resolves_at - market.news_lead_seconds
            if at >= news_at:
                price = target
            elif at >= news_at - INSIDER_WINDOW_SECONDS:
                # Informed buying pulls the price part of the way before the news is public.
                share = 0.5 * (at - (news_at - INSIDER_WINDOW_SECONDS)) / INSIDER_WINDOW_SECONDS
                price += (target - price) * share
        tick = market.tick
        return round(min(1 - tick, max(tick, round(price / tick) * tick)), 4)

    def _emit_match(self, rng: random.Random, second: int, tx_counter: list[int], market_index: int, *,
                    taker: int | None = None, outcome: int | None = None, side: int | None = None,
                    size_scale: float = 1.0, tx_number: int | None = None) -> None:
        """One taker order matched against 0-6 maker orders: one transaction, 1-7 rows.

        A maker leg is either a direct cross (maker on the other side of the same token) or a
        complementary one (maker on the same side of the other token: BUY+BUY is a mint, SELL+SELL
        a merge), in which case the two prices sum to 1. The taker's row carries the total size at
        the volume-weighted price, so it usually shows float noise like 0.0218768264.
        """
        market = self.catalog.markets[market_index]
        if tx_number is None:
            tx_number = tx_counter[0]
            tx_counter[0] += 1
        if outcome is None:
            outcome = rng.randint(0, 1)
        if side is None:
            side = BUY if rng.random() < 0.6 else SELL
        if taker is None:
            taker = self._pick_wallet(rng)
        price0 = self.outcome0_price(market, second)
        reference = price0 if outcome == 0 else round(1 - price0, 4)
        leg_count = rng.choices((0, 1, 2, 3, 4, 5, 6), weights=(4, 40, 22, 14, 9, 6, 5))[0]
        total = _taker_size(rng) * size_scale
        total = round(total, 2) if size_scale != 1.0 else total
        sizes = _split_size(rng, total, max(leg_count, 1))
        if leg_count == 0:
            self._append(second, tx_number, market_index, outcome, taker, side, total, reference, True)
            return
        notional = 0.0
        legs: list[tuple[int, int, int, float, float]] = []
        for size in sizes:
            drift = rng.choice((0, 0, 0, 1, -1, 2, -2)) * market.tick
            leg_price = round(min(1 - market.tick, max(market.tick, reference + drift)), 4)
            if rng.random() < 0.15:
                leg_price = round(leg_price - rng.uniform(1e-10, 9e-9), 10)
            notional += size * leg_price
            complementary = rng.random() < 0.3
            maker_side = side if complementary else 1 - side
            maker_outcome = 1 - outcome if complementary else outcome
            maker_price = round(1 - leg_price, 10) if complementary else leg_price
            maker = self._pick_wallet(rng, avoid=taker)
            legs.append((maker, maker_outcome, maker_side, size, maker_price))
        # Makers first: read newest-first, the taker row then leads its transaction, as upstream.
        for maker, maker_outcome, maker_side, size, maker_price in legs:
            self._append(second, tx_number, market_index, maker_outcome, maker, maker_side, size, maker_price, False)
        taker_price = round(notional / total, 10)
        self._append(second, tx_number, market_index, outcome, taker, side, total, taker_price, True)

    def _emit_batch(self, rng: random.Random, second: int, tx_counter: list[int]) -> None:
        """Many matches settled in one transaction: dozens of rows with one hash, one second."""
        tx_number = tx_counter[0]
        tx_counter[0] += 1
        market_index = self._pick_market(rng)
        for _ in range(rng.randint(4, 12)):
            self._emit_match(rng, second, tx_counter, market_index, tx_number=tx_number)

    def _emit_identical_maker_fills(self, rng: random.Random, second: int, tx_counter: list[int]) -> None:
        """One taker order filled by two resting orders of one maker at one price and size.

        Both maker rows are identical in every served field, and both are fills: v2 readers must
        keep them as a multiset (occurrence 0 and 1), never collapse them into one.
        """
        market_index = self._pick_market(rng)
        market = self.catalog.markets[market_index]
        tx_number = tx_counter[0]
        tx_counter[0] += 1
        outcome = rng.randint(0, 1)
        side = BUY if rng.random() < 0.6 else SELL
        taker = self._pick_wallet(rng)
        maker = self._pick_wallet(rng, avoid=taker)
        price0 = self.outcome0_price(market, second)
        price = price0 if outcome == 0 else round(1 - price0, 4)
        size = float(rng.choice((5, 10, 20, 25, 50, 100)))
        for _ in range(2):
            self._append(second, tx_number, market_index, outcome, maker, 1 - side, size, price, False,
                         allow_identical=True)
        self._append(second, tx_number, market_index, outcome, taker, side, 2 * size, price, True)

    def _emit_insider_trades(self, second: int, tx_counter: list[int]) -> None:
        insiders = self.catalog.insider_indexes
        if not insiders:
            return
        rng = self._stream("insiders", second)
        for index in self._open_markets:
            market = self.catalog.markets[index]
            if market.resolves_at is None or market.winner_index is None:
                continue
            news_at = market.resolves_at - market.news_lead_seconds
            if news_at - INSIDER_WINDOW_SECONDS <= second < news_at and rng.random() < 0.01:
                self._emit_match(rng, second, tx_counter, index, taker=rng.choice(insiders),
                                 outcome=market.winner_index, side=BUY, size_scale=rng.uniform(20, 120))

    # --- planted roles ----------------------------------------------------------------------------

    def _roles_prepare(self) -> None:
        """What the roles need before the first second: the insiders' tips, the market maker's
        markets, and background weights without the role wallets. Own seeds, so preparing them
        changes nothing while the scenario is off."""
        catalog, config = self.catalog, self.config
        role_wallets = {catalog.market_maker_index, catalog.arbitrageur_index}
        cumulative, total, previous = [], 0.0, 0.0
        for index, running in enumerate(catalog.wallet_cum_weights):
            weight = running - previous
            previous = running
            total += 1e-9 if index in role_wallets else weight
            cumulative.append(total)
        self._role_cum_weights = cumulative
        # second -> [(market, insider)]: when each tipped insider buys the winner.
        self._insider_tips: dict[int, list[tuple[int, int]]] = {}
        for market in catalog.markets:
            if market.resolves_at is None or market.winner_index is None:
                continue
            news_at = int(market.resolves_at) - market.news_lead_seconds
            for insider in catalog.insider_indexes:
                rng = random.Random(derive_seed(self.seed, "insider-tips", market.index, insider))
                if rng.random() >= config.insider_market_share:
                    continue
                for _ in range(config.insider_decisions_per_market):
                    lead = rng.randint(config.insider_lead_min_seconds, config.insider_lead_max_seconds)
                    self._insider_tips.setdefault(news_at - lead, []).append((market.index, insider))
        # Markets that stay open for the whole run, priced away from the edges: a spread of a
        # tick or two is then a thin margin on the volume (finer ticks first).
        rng = random.Random(derive_seed(self.seed, "market-maker-markets"))
        quiet = [m for m in catalog.markets if m.resolves_at is None and m.closed_before_history_at is None
                 and 0.25 <= m.base_price <= 0.75]
        rng.shuffle(quiet)
        quiet.sort(key=lambda m: m.tick)
        self._market_maker_markets = [m.index for m in quiet[: config.market_maker_markets]]
        self._market_maker_inventory: dict[tuple[int, int], float] = {}

    def roles(self) -> dict[str, Any]:
        """Ground truth of the planted roles (wallet addresses); `active` while "roles" is on."""
        catalog = self.catalog
        special = {*catalog.insider_indexes, catalog.market_maker_index, catalog.arbitrageur_index}
        return {
            "active": self.profile.roles,
            "insiders": [catalog.wallets[i].address for i in catalog.insider_indexes],
            "market_maker": catalog.wallets[catalog.market_maker_index].address,
            "market_maker_markets": [catalog.markets[i].condition_id for i in self._market_maker_markets],
            "arbitrageur": catalog.wallets[catalog.arbitrageur_index].address,
            "random_traders": [w.address for w in catalog.wallets if w.index not in special],
            "insider_lead_seconds": [self.config.insider_lead_min_seconds, self.config.insider_lead_max_seconds],
        }

    def _emit_tipped_insider_trades(self, second: int, tx_counter: list[int]) -> None:
        tips = self._insider_tips.get(second)
        if not tips:
            return
        rng = self._stream("insider-tips", second)
        for market_index, insider in tips:
            if market_index not in self._open_markets:
                continue
            market = self.catalog.markets[market_index]
            self._emit_match(rng, second, tx_counter, market_index, taker=insider, outcome=market.winner_index,
                             side=BUY, size_scale=rng.uniform(20, 120))

    def _emit_market_maker_fill(self, second: int, tx_counter: list[int]) -> None:
        """A taker hits the market maker's resting order: it buys a tick under the price when it
        holds little of the outcome and sells a tick over it what it holds (never more)."""
        rng = self._stream("market-maker", second)
        if not self._market_maker_markets or rng.random() >= self.config.market_maker_fill_rate:
            return
        market_index = rng.choice(self._market_maker_markets)
        if market_index not in self._open_markets:
            return
        market = self.catalog.markets[market_index]
        outcome = rng.randint(0, 1)
        held = self._market_maker_inventory.get((market_index, outcome), 0.0)
        size = float(rng.choice((10, 20, 25, 40, 50)))
        sell = held >= 50 or (held > 0 and rng.random() < 0.5)
        if sell:
            size = min(size, held)
        price0 = self.outcome0_price(market, second)
        reference = price0 if outcome == 0 else round(1 - price0, 4)
        tick = market.tick
        price = reference + tick if sell else reference - tick
        price = round(min(1 - tick, max(tick, price)), 4)
        maker = self.catalog.market_maker_index
        taker = self._pick_wallet(rng, avoid=maker)
        tx_number = tx_counter[0]
        tx_counter[0] += 1
        maker_side = SELL if sell else BUY
        self._append(second, tx_number, market_index, outcome, maker, maker_side, size, price, False)
        self._append(second, tx_number, market_index, outcome, taker, 1 - maker_side, size, price, True)
        self._market_maker_inventory[(market_index, outcome)] = round(held + (-size if sell else size), 6)

    def _emit_arbitrage(self, second: int, tx_counter: list[int]) -> None:
        """The arbitrageur takes resting sells of both outcomes, a tick under each price: the pair
        costs 1 − 2 ticks and pays 1 at settlement."""
        rng = self._stream("arbitrage", second)
        if not self._open_markets or rng.random() >= self.config.arbitrage_rate:
            return
        market_index = self._pick_market(rng)
        market = self.catalog.markets[market_index]
        tick = market.tick
        price0 = self.outcome0_price(market, second)
        prices = (round(max(tick, price0 - tick), 4), round(max(tick, 1 - price0 - tick), 4))
        if prices[0] + prices[1] >= 1:
            return
        size = float(rng.choice((50, 100, 150, 200)))
        arbitrageur = self.catalog.arbitrageur_index
        for outcome in (0, 1):
            tx_number = tx_counter[0]
            tx_counter[0] += 1
            maker = self._pick_wallet(rng, avoid=arbitrageur)
            self._append(second, tx_number, market_index, outcome, maker, SELL, size, prices[outcome], False)
            self._append(second, tx_number, market_index, outcome, arbitrageur, BUY, size, prices[outcome], True)

    # --- storage ------------------------------------------------------------------------------

    def _append(self, second: int, tx_number: int, market: int, outcome: int, wallet: int, side: int,
                size: float, price: float, is_taker: bool, kind: int = VALID, *,
                allow_identical: bool = False) -> int:
        if kind == VALID and not allow_identical:
            # Two legitimately identical rows would be indistinguishable from an upstream duplicate,
            # making exactly-once storage unverifiable; nudge by one micro-share instead.
            content = (tx_number, wallet, outcome, side, size, price)
            while content in self._contents_this_second:
                size = round(size + 0.000001, 6)
                content = (tx_number, wallet, outcome, side, size, price)
            self._contents_this_second.add(content)
        columns = self.columns
        row_id = len(columns)
        columns.timestamp.append(second)
        columns.market.append(market)
        columns.outcome.append(outcome)
        columns.wallet.append(wallet)
        columns.side.append(side)
        columns.size.append(size)
        columns.price.append(price)
        columns.is_taker.append(is_taker)
        columns.tx_number.append(tx_number)
        columns.kind.append(kind)
        columns.visible_at.append(second)  # the real lag is set once the whole second is generated
        self.feed.add(row_id, is_taker)
        self.by_market[market].add(row_id, is_taker)
        if kind != MISSING_PROXY_WALLET:
            self.by_wallet[wallet].add(row_id, is_taker)
        if kind == VALID:
            self.valid_rows += 1
            if is_taker:
                self.valid_taker_rows += 1
                state = self.market_states[market]
                state.generated_notional += size * price
                state.last_price = price if outcome == 0 else round(1 - price, 10)
                state.last_trade_at = second
        elif kind == DUPLICATE:
            self.duplicate_rows += 1
        else:
            self.malformed_rows += 1
        return row_id

    def _append_copy(self, row_id: int, kind: int) -> int:
        c = self.columns
        return self._append(c.timestamp[row_id], c.tx_number[row_id], c.market[row_id], c.outcome[row_id],
                            c.wallet[row_id], c.side[row_id], c.size[row_id], c.price[row_id],
                            bool(c.is_taker[row_id]), kind)

    def _append_malformed(self, rng: random.Random, template: int) -> None:
        # A different wallet and size from its template so that it never equals a valid row.
        c = self.columns
        kind = rng.choice(tuple(MALFORMED_KINDS))
        self._append(c.timestamp[template], c.tx_number[template], c.market[template], c.outcome[template],
                     self._pick_wallet(rng, avoid=c.wallet[template]), c.side[template],
                     round(c.size[template] + rng.randint(1, 99) / 100, 6), c.price[template], True, kind)

    # --- reading ------------------------------------------------------------------------------

    def row_count(self) -> int:
        return len(self.columns)

    def select_trades(self, query: TradeQuery) -> list[int]:
        """Row ids answering a /trades query, newest first, after offset and limit."""
        self.sync()
        with self.lock:
            return list(self._matching_rows(query))

    def _matching_rows(self, query: TradeQuery) -> Iterator[int]:
        columns = self.columns
        candidates: Iterable[int]
        market_filter: set[int] | None = None
        if query.user is not None:
            wallet = self.catalog.wallet_by_address.get(query.user.lower())
            if wallet is None:
                return
            rows = self.by_wallet[wallet].rows(query.taker_only)
            low, high = 0, len(rows)
            # start/end are honoured on user-scoped reads only, like upstream.
            if query.start is not None:
                low = bisect_left(rows, query.start, key=columns.timestamp.__getitem__)
            if query.end is not None:
                high = bisect_right(rows, query.end, key=columns.timestamp.__getitem__)
            candidates = (rows[i] for i in range(high - 1, low - 1, -1))
            if query.markets is not None:
                market_filter = set(query.markets)
        elif query.markets is not None:
            arrays = [self.by_market[m].rows(query.taker_only) for m in query.markets]
            if not arrays:
                return
            candidates = reversed(arrays[0]) if len(arrays) == 1 else heapq.merge(
                *(reversed(a) for a in arrays), reverse=True)
        else:
            candidates = reversed(self.feed.rows(query.taker_only))

        skip, wanted = query.offset, query.limit
        if wanted <= 0:
            return
        for row_id in candidates:
            if market_filter is not None and columns.market[row_id] not in market_filter:
                continue
            if query.side is not None and columns.side[row_id] != query.side:
                continue
            if query.filter_amount is not None:
                amount = columns.size[row_id]
                if query.filter_type == "CASH":
                    amount *= columns.price[row_id]
                if amount < query.filter_amount:
                    continue
            if skip:
                skip -= 1
                continue
            yield row_id
            wanted -= 1
            if not wanted:
                return

    def transaction_hash(self, row_id: int) -> str:
        c = self.columns
        return "0x" + hex_digest(self.seed, "tx", c.timestamp[row_id], c.tx_number[row_id], nbytes=32)

    def render_trade(self, row_id: int, *, real_context: bool) -> dict[str, Any]:
        """A row exactly as the Data API serves it.

        ``real_context`` False reproduces the unscoped global feed, which blanks outcomeIndex (999)
        and eventSlug (""); user- and market-scoped reads carry the real values.
        """
        c = self.columns
        market = self.catalog.markets[c.market[row_id]]
        wallet = self.catalog.wallets[c.wallet[row_id]]
        outcome = c.outcome[row_id]
        kind = c.kind[row_id]
        row: dict[str, Any] = {
            "proxyWallet": wallet.address,
            "side": SIDE_NAMES[c.side[row_id]],
            "asset": market.token_ids[outcome],
            "conditionId": market.condition_id,
            "size": plain_number(c.size[row_id]),
            "price": plain_number(c.price[row_id]),
            "timestamp": c.timestamp[row_id],
            "title": market.question,
            "slug": market.slug,
            "icon": market.icon,
            "eventSlug": self.catalog.events[market.event_index].slug if real_context else "",
            "outcome": market.outcomes[outcome],
            "outcomeIndex": outcome if real_context else OUTCOME_INDEX_SENTINEL,
            "name": wallet.name,
            "pseudonym": wallet.pseudonym,
            "bio": wallet.bio,
            "profileImage": wallet.profile_image,
            "profileImageOptimized": wallet.profile_image_optimized,
            "transactionHash": self.transaction_hash(row_id),
        }
        if kind == MISSING_PROXY_WALLET:
            del row["proxyWallet"]
        elif kind == NON_NUMERIC_PRICE:
            row["price"] = "abc"
        elif kind == MISSING_TIMESTAMP:
            del row["timestamp"]
        return row

    def render_truth_fill(self, row_id: int) -> dict[str, Any]:
        row = self.render_trade(row_id, real_context=True)
        row["is_taker"] = bool(self.columns.is_taker[row_id])
        return row

    def truth_rows(self, *, since: int | None = None, until: int | None = None) -> Iterator[tuple[int, int]]:
        """(row id, kind) of every published row with since <= timestamp <= until, oldest first."""
        with self.lock:
            published = len(self.columns)
        timestamps = self.columns.timestamp
        low = 0 if since is None else bisect_left(range(published), since, key=timestamps.__getitem__)
        high = published if until is None else bisect_right(range(published), until, key=timestamps.__getitem__)
        kinds = self.columns.kind
        for row_id in range(low, high):
            yield row_id, kinds[row_id]

    # --- markets, events, news ----------------------------------------------------------------

    def market_view(self, index: int, at: float) -> MarketView:
        market = self.catalog.markets[index]
        state = self.market_states[index]
        volume = market.base_volume + state.generated_notional
        if state.resolved_at is not None:
            prices = {0: ("1", "0"), 1: ("0", "1"), None: ("0.5", "0.5")}[market.winner_index]
            uma_status: str | None = "resolved"
            updated = state.resolved_at
        elif state.closed_at is not None:
            # Closed is not resolved: prices sit near, but not at, the final answer until UMA settles.
            last = state.last_price if state.last_price is not None else market.base_price
            prices = (format_price_string(last), format_price_string(1 - last))
            uma_status = "proposed"
            updated = state.closed_at
        else:
            price = self.outcome0_price(market, at)
            prices = (format_price_string(price), format_price_string(1 - price))
            uma_status = None
            updated = max(market.created_at + 3600, state.last_trade_at or 0)
        last_trade = state.last_price if state.last_price is not None else market.base_price
        if state.resolved_at is not None:
            last_trade = float(prices[0])
        return MarketView(
            closed=state.closed_at is not None,
            closed_at=state.closed_at,
            uma_status=uma_status,
            outcome_prices=prices,
            last_trade_price=round(last_trade, 4),
            volume=volume,
            volume_24h=round(state.generated_notional, 6),
            updated_at=updated,
        )

    def event_closed(self, event_index: int) -> bool:
        return all(self.market_states[i].closed_at is not None for i in self.catalog.events[event_index].market_indexes)

    def event_volume(self, event_index: int) -> float:
        event = self.catalog.events[event_index]
        return sum(self.catalog.markets[i].base_volume + self.market_states[i].generated_notional
                   for i in event.market_indexes)

    def render_market(self, index: int, at: float) -> dict[str, Any]:
        market = self.catalog.markets[index]
        event = self.catalog.events[market.event_index]
        return render_market(market, event, self.market_view(index, at),
                             event_closed=self.event_closed(event.index), event_volume=self.event_volume(event.index))

    def render_event(self, event_index: int, at: float) -> dict[str, Any]:
        event = self.catalog.events[event_index]
        markets = []
        for index in event.market_indexes:
            payload = self.render_market(index, at)
            payload.pop("events", None)  # upstream nests markets in events, not events again
            markets.append(payload)
        updated = max(m_state.resolved_at or m_state.closed_at or event.created_at
                      for m_state in (self.market_states[i] for i in event.market_indexes))
        return render_event(event, closed=self.event_closed(event_index), volume=self.event_volume(event_index),
                            updated_at=updated, markets=markets)

    def truth_market(self, index: int, at: float) -> dict[str, Any]:
        market = self.catalog.markets[index]
        state = self.market_states[index]
        payload = self.render_market(index, at)
        payload["_truth"] = {
            "closed_at": state.closed_at,
            "resolved_at": state.resolved_at,
            "scheduled_resolution_at": market.resolves_at,
            "resolution_news_at": (market.resolves_at - market.news_lead_seconds
                                   if market.resolves_at is not None else None),
            "winner_outcome_index": market.winner_index,
            "void": market.winner_index is None,
            "settlement_prices": {0: [1, 0], 1: [0, 1], None: [0.5, 0.5]}[market.winner_index],
            "insider_wallets": [self.catalog.wallets[i].address for i in self.catalog.insider_indexes],
        }
        return payload

    def published_news(self, limit: int) -> list[NewsItem]:
        self.sync()
        with self.lock:
            return list(reversed(self.news[-limit:]))

    def state(self) -> dict[str, Any]:
        now = self.sync()
        with self.lock:
            closed = sum(1 for s in self.market_states if s.closed_at is not None)
            resolved = sum(1 for s in self.market_states if s.resolved_at is not None)
            return {
                "virtual_now": now,
                "published_until": self.generated_until,
                "clock": self.clock.kind,
                "speed": self.clock.speed,
                "start": self.start,
                "history_start": self.history_start,
                "seed": self.seed,
                "scenarios": sorted(self.scenarios),
                "rows": len(self.columns),
                "valid_fills": self.valid_rows,
                "valid_taker_fills": self.valid_taker_rows,
                "duplicate_rows": self.duplicate_rows,
                "malformed_rows": self.malformed_rows,
                "markets": len(self.catalog.markets),
                "markets_closed": closed,
                "markets_resolved": resolved,
                "news_items": len(self.news),
                "roles": self.roles(),
            }


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, int(rng.gauss(mean, math.sqrt(mean)) + 0.5))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


_ROUND_SIZES = (1, 2, 3, 5, 10, 15, 20, 25, 50, 100, 200, 250, 500, 1000)


def _taker_size(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.3:
        return float(rng.choice(_ROUND_SIZES))
    if roll < 0.7:
        return max(0.01, round(rng.lognormvariate(3.0, 1.3), 2))
    return max(0.01, round(rng.lognormvariate(2.5, 1.5), 6))


def _split_size(rng: random.Random, total: float, parts: int) -> list[float]:
    """Maker sizes that add up to the taker's size (to the micro-share)."""
    if parts == 1:
        return [total]
    sizes = []
    remaining = total
    for _ in range(parts - 1):
        share = round(remaining * rng.uniform(0.1, 0.6), 2)
        if share <= 0 or share >= remaining:
            break
        sizes.append(share)
        remaining = round(remaining - share, 6)
    sizes.append(round(remaining, 6))
    return [s for s in sizes if s > 0] or [total]
