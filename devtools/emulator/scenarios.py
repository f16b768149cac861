"""Scenario names, what each one switches on, and the emulator's configuration.

A scenario string is a comma list (``"steady,burst"``). Composite names expand to their parts:
``demo`` = steady + multi_fill + duplicates + resolutions + a light dose of malformed rows,
``chaos`` = every scenario at full strength (the planted roles aside), and ``signals`` = steady +
resolutions + the planted roles (insiders 10-60 minutes ahead of the news, a market maker, an
arbitrageur; see ``world.py``). Generation scenarios shape *what* is published (fills, markets,
news); transport scenarios (rate_limit, errors, slow) only shape *how* a response is delivered and
can therefore never change the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

GENERATION_SCENARIOS = frozenset({"steady", "burst", "duplicates", "multi_fill", "malformed", "resolutions",
                                  "late_rows", "identical_fills", "roles"})
TRANSPORT_SCENARIOS = frozenset({"rate_limit", "errors", "slow", "unavailable", "timeouts", "cdn_block", "truncated",
                                 "resets"})
# What only a Data API v2 reader copes with (late-visible rows, genuine identical fills, CDN pages,
# cut bodies, resets): kept out of "demo" and "chaos" while v1 readers still run against them.
_V2_ONLY = frozenset({"late_rows", "identical_fills", "unavailable", "timeouts", "cdn_block", "truncated", "resets"})
# The planted roles change who trades when, which the chaos soaks and their truth do not need.
_ROLES = frozenset({"roles"})
COMPOSITE_SCENARIOS: dict[str, frozenset[str]] = {
    "demo": frozenset({"steady", "multi_fill", "duplicates", "resolutions", "malformed_light"}),
    "chaos": (GENERATION_SCENARIOS | TRANSPORT_SCENARIOS) - _V2_ONLY - _ROLES,
    "demo_v2": frozenset({"steady", "multi_fill", "resolutions", "malformed_light", "late_rows", "identical_fills"}),
    "chaos_v2": (GENERATION_SCENARIOS | TRANSPORT_SCENARIOS) - _ROLES,
    "signals": frozenset({"steady", "resolutions", "roles"}),
}
# "malformed_light" is only reachable through "demo": the demo should show the dead-letter path
# without drowning the dashboards in bad rows.
_INTERNAL_SCENARIOS = frozenset({"malformed_light"})
KNOWN_SCENARIOS = GENERATION_SCENARIOS | TRANSPORT_SCENARIOS | frozenset(COMPOSITE_SCENARIOS)

ClockKind = Literal["realtime", "manual"]

# 2026-01-01T00:00:00Z: the default start of a manual clock, so tests get the same timestamps
# on every run without naming a start.
DEFAULT_MANUAL_EPOCH = 1_767_225_600


def parse_scenarios(spec: str) -> frozenset[str]:
    """Expand a comma list of scenario names into the set of primitive scenarios it switches on."""
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise ValueError("empty scenario")
    unknown = [name for name in names if name not in KNOWN_SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {sorted(KNOWN_SCENARIOS)}")
    expanded: set[str] = set()
    for name in names:
        expanded |= COMPOSITE_SCENARIOS.get(name, frozenset({name}))
    if "malformed" in expanded:
        expanded.discard("malformed_light")
    return frozenset(expanded)


@dataclass(frozen=True)
class GenerationProfile:
    """Rates that drive the fill generator for one virtual second (derived from the scenarios)."""

    transactions_per_second: float
    burst: bool
    duplicate_rate: float
    multi_fill_rate: float
    malformed_rate: float
    resolutions: bool
    late_row_rate: float
    identical_fill_rate: float
    roles: bool = False


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that determines the emulated upstream. Same config + same virtual time = same data."""

    seed: int = 1
    scenario: str = "steady"
    clock: ClockKind = "realtime"
    # Virtual seconds per real second (realtime clock only).
    speed: float = 1.0
    # Virtual Unix time at which the clock starts; None = wall-clock now (realtime) or
    # DEFAULT_MANUAL_EPOCH (manual).
    start: int | None = None
    # Virtual seconds of trading already published when the server starts (backfill material).
    history_seconds: int = 1800
    market_count: int = 60
    wallet_count: int = 400
    # Multiplies the base transaction rate; the benchmark raises it to reach a million fills.
    rate_multiplier: float = 1.0

    # --- Data API /trades ---
    trades_default_limit: int = 100
    trades_max_limit: int = 500
    trades_offset_cap: int = 1500
    # The upstream has answered both "activity" and "trades" in this message over time.
    offset_cap_noun: str = "activity"

    # --- Gamma ---
    gamma_default_limit: int = 100
    gamma_max_limit: int = 100
    gamma_offset_cap: int = 2000
    gamma_events_max_limit: int = 500

    # --- scenario strengths ---
    base_transactions_per_second: float = 1.5
    burst_period_seconds: int = 600
    burst_length_seconds: int = 30
    # Taker fills inside one burst window; None = offset cap + 2 full pages, i.e. more than one
    # poll can read back from the live feed.
    burst_taker_fills: int | None = None
    duplicate_rate: float = 0.02
    multi_fill_rate: float = 0.04
    malformed_rate: float = 0.01
    light_malformed_rate: float = 0.002
    # Virtual seconds between a market closing and its UMA resolution landing.
    proposal_seconds: int = 600
    # Markets that resolve during the run do so within this many virtual seconds of its start.
    resolution_window_seconds: int = 4 * 3600
    # --- planted roles ("roles", in "signals") ---
    # Each insider trades the winner of a market it is tipped on this long before the news item.
    insider_lead_min_seconds: int = 600
    insider_lead_max_seconds: int = 3600
    # Share of the resolving markets each insider is tipped on, and its decisions per market.
    insider_market_share: float = 0.8
    insider_decisions_per_market: int = 2
    # The market maker quotes this many markets and is filled this often (per virtual second).
    market_maker_markets: int = 12
    market_maker_fill_rate: float = 0.15
    # The arbitrageur buys both outcomes of a market below 1 this often (per virtual second).
    arbitrage_rate: float = 1 / 150
    # Background headlines per virtual second while the roles are on (1 / 240 otherwise).
    roles_chatter_per_second: float = 1 / 1800
    # Share of markets that are Protocol V2 (Gamma "version": "v2", positionIds, bytes31 condition).
    # 0 until the Gamma reader picks outcome ids by version (v2 markets have clobTokenIds: null and
    # today's parser refuses them); the v2 tests and the v2 demo use 0.3.
    protocol_v2_market_share: float = 0.0

    # --- Data API v2 ---
    v2_default_limit: int = 100
    v2_max_limit: int = 1000
    # condition= / event_id= lists longer than this are a 400.
    v2_max_filter_ids: int = 20
    # The bare feed serves this many calendar months of virtual time (current + previous).
    v2_bare_feed_months: int = 2
    # Fills smaller than this many shares are never served (upstream's default filter_amount).
    v2_min_filter_amount: float = 0.01
    # Every transaction becomes visible 0..N virtual seconds after its block (the indexer's lag)...
    visibility_base_max_seconds: int = 2
    # ...and with "late_rows" this share of transactions only after late_row_min..max seconds.
    late_row_rate: float = 0.03
    late_row_min_seconds: int = 15
    late_row_max_seconds: int = 120
    # With "identical_fills": chance per virtual second of a transaction in which one maker fills
    # twice at the same price and size (two identical rows that are two fills).
    identical_fill_rate: float = 0.15
    # /v2/status is a snapshot refreshed every N virtual seconds; before the first one: 503.
    status_refresh_seconds: int = 10
    status_warmup_seconds: int = 5
    # Per-wallet movements beside trades (see ledger.py): chances per qualifying fill or event.
    merge_rate: float = 0.05
    conversion_rate: float = 0.1
    redeem_winner_rate: float = 0.8
    redeem_loser_rate: float = 0.2
    reward_rate_per_usdc: float = 0.0005
    unknown_activity_rate: float = 0.03

    # --- transport chaos (keyed by request number, so a given request sequence replays) ---
    error_rate: float = 0.05
    slow_rate: float = 0.1
    slow_min_seconds: float = 0.2
    slow_max_seconds: float = 1.0
    storm_first_request: int = 3
    storm_every_requests: int = 40
    storm_seconds: float = 2.0
    # v2-era transport faults (each its own scenario, keyed by request number like the rest).
    unavailable_rate: float = 0.04
    unavailable_retry_after_seconds: int = 1
    # "timeouts": the API gives up on its datastore after this many real seconds: 503 request_timeout.
    timeout_rate: float = 0.03
    request_timeout_seconds: float = 0.5
    cdn_block_rate: float = 0.03
    truncated_rate: float = 0.04
    reset_rate: float = 0.03

    # --- published per-10-second limits (answered with 429 when enforced) ---
    enforce_rate_limits: bool = False
    rate_limits_per_10s: dict[str, int] = field(
        default_factory=lambda: {
            "data": 1000,
            "data:/trades": 200,
            "data:/v2/trades": 200,
            "gamma": 4000,
            "gamma:/markets": 300,
            "gamma:/events": 500,
        }
    )

    def __post_init__(self) -> None:
        parse_scenarios(self.scenario)  # fail fast on a typo
        if self.clock not in ("realtime", "manual"):
            raise ValueError(f"clock must be 'realtime' or 'manual', not {self.clock!r}")
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if self.market_count < 4 or self.wallet_count < 20:
            raise ValueError("need at least 4 markets and 20 wallets")
        if not 0 <= self.protocol_v2_market_share <= 1:
            raise ValueError("protocol_v2_market_share must be between 0 and 1")
        if not 0 <= self.late_row_min_seconds <= self.late_row_max_seconds:
            raise ValueError("need 0 <= late_row_min_seconds <= late_row_max_seconds")
        if not 0 <= self.insider_lead_min_seconds <= self.insider_lead_max_seconds:
            raise ValueError("need 0 <= insider_lead_min_seconds <= insider_lead_max_seconds")

    @property
    def scenarios(self) -> frozenset[str]:
        return parse_scenarios(self.scenario)

    def profile(self, scenarios: frozenset[str]) -> GenerationProfile:
        malformed_rate = 0.0
        if "malformed" in scenarios:
            malformed_rate = self.malformed_rate
        elif "malformed_light" in scenarios:
            malformed_rate = self.light_malformed_rate
        return GenerationProfile(
            transactions_per_second=self.base_transactions_per_second * self.rate_multiplier,
            burst="burst" in scenarios,
            duplicate_rate=self.duplicate_rate if "duplicates" in scenarios else 0.0,
            multi_fill_rate=self.multi_fill_rate if "multi_fill" in scenarios else 0.0,
            malformed_rate=malformed_rate,
            resolutions="resolutions" in scenarios,
            late_row_rate=self.late_row_rate if "late_rows" in scenarios else 0.0,
            identical_fill_rate=self.identical_fill_rate if "identical_fills" in scenarios else 0.0,
            roles="roles" in scenarios,
        )

    @property
    def max_visibility_delay(self) -> int:
        """The longest any row can stay invisible after its block (an upper bound on the serving lag)."""
        return max(self.visibility_base_max_seconds, self.late_row_max_seconds)

    @property
    def effective_burst_taker_fills(self) -> int:
        if self.burst_taker_fills is not None:
            return self.burst_taker_fills
        return self.trades_offset_cap + 2 * self.trades_max_limit
