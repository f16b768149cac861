"""The static cast of the emulated world: markets, their events, and wallets.

Everything here is a pure function of (seed, start). What changes over time (a market closing,
resolving, its volume growing) lives in ``world.py``; this module only renders that state into
Gamma's shapes, modelled on the recorded ``gamma_markets.json`` (ids and big numbers as strings,
``outcomes``/``outcomePrices``/``clobTokenIds`` as JSON-encoded strings, a non-ISO ``closedTime``).

All names are invented: the emulator must not put words in real people's mouths.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

IMAGE_HOST = "https://img.emulator.invalid"


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any parts; the same parts always give the same seed (unlike hash())."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def hex_digest(*parts: object, nbytes: int) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=nbytes).hexdigest()


def slugify(text: str) -> str:
    # Like the upstream, accented letters are dropped rather than transliterated.
    return re.sub(r"[^a-z0-9]+", "-", text.lower().encode("ascii", "ignore").decode()).strip("-")


def iso_millis(ts: float) -> str:
    """``2024-01-04T17:33:51.332Z`` — Gamma's createdAt style."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_seconds(ts: float) -> str:
    """``2024-11-05T12:00:00Z`` — Gamma's endDate style."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gamma_closed_time(ts: float) -> str:
    """``2024-11-06 15:17:41+00`` — the market-level closedTime is NOT ISO-8601 upstream."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def token_id(rng: random.Random) -> str:
    """A CLOB token id: a decimal string of 75-78 digits, never small enough for 64 bits."""
    digits = rng.choice((75, 76, 77, 77, 77, 78))
    if digits == 78:
        return str(rng.randrange(10**77, 2**256))
    return str(rng.randrange(10 ** (digits - 1), 10**digits))


@dataclass
class Wallet:
    index: int
    address: str
    name: str
    pseudonym: str
    bio: str
    profile_image: str
    profile_image_optimized: str
    # Insiders buy the eventual winner shortly before the news breaks (information-edge material).
    is_insider: bool = False


@dataclass
class Event:
    index: int
    id: str
    slug: str
    title: str
    description: str
    category: str
    created_at: float
    start_date: float
    end_date: float
    neg_risk: bool
    market_indexes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class FeeSchedule:
    """Gamma's ``feeSchedule``: taker fee per share = rate * (p * (1 - p)) ** exponent; makers get
    ``rebate_rate`` of the fees paid against them back as MAKER_REBATE."""

    rate: float = 0.07
    exponent: int = 1
    rebate_rate: float = 0.2

    def as_gamma(self) -> dict[str, Any]:
        return {"exponent": self.exponent, "rate": self.rate, "takerOnly": True, "rebateRate": self.rebate_rate}


@dataclass
class Market:
    index: int
    id: str
    question: str
    slug: str
    condition_id: str
    question_id: str
    outcomes: tuple[str, str]
    token_ids: tuple[str, str]
    event_index: int
    category: str
    group_item_title: str
    created_at: float
    start_date: float
    end_date: float
    tick: float
    # Popularity: the share of transactions that land on this market.
    weight: float
    base_price: float
    swing: float
    swing_period: float
    swing_phase: float
    base_volume: float
    liquidity: float
    keywords: tuple[str, ...]
    headline_templates: tuple[str, ...]
    # Fate. A market either closed before the emulated history begins, or may resolve during the
    # run (only while the "resolutions" scenario is on), or stays open.
    closed_before_history_at: float | None
    resolves_at: float | None
    # 0/1 = that outcome wins; None = void (refund at 0.5).
    winner_index: int | None
    news_lead_seconds: int
    resolution_headline: str
    # "v1" (CTF exchange: clobTokenIds) or "v2" (Protocol V2: positionIds, a bytes31 condition id).
    protocol_version: str = "v1"
    # Taker fees (and maker rebates) like Gamma's feeSchedule; None = a fee-free market.
    fee_schedule: FeeSchedule | None = None
    # UMA disputed the first proposal before the resolution stood.
    was_disputed: bool = False

    @property
    def icon(self) -> str:
        return f"{IMAGE_HOST}/market/{self.slug}.png"


@dataclass
class Catalog:
    markets: list[Market]
    events: list[Event]
    wallets: list[Wallet]
    # Cumulative weights for rng.choices over wallets (a few wallets trade a lot).
    wallet_cum_weights: list[float]
    insider_indexes: list[int]
    market_by_condition: dict[str, int]
    wallet_by_address: dict[str, int]
    market_by_id: dict[str, int]
    # The planted roles of the "roles" scenario (drawn from a stream of their own, so the rest of
    # the catalog is the same with or without them): one market maker and one arbitrageur.
    market_maker_index: int = -1
    arbitrageur_index: int = -1


# --- vocabulary -------------------------------------------------------------------------------

_FIRST = ("Alicia", "Daniel", "Marta", "Kofi", "Ingrid", "Rafael", "Yuki", "Selin", "Tomas", "Priya",
          "Omar", "Lena", "Mateo", "Hana", "Viktor", "Noor", "Elena", "Jonas", "Amara", "Felix")
_LAST = ("Moreno", "Okafor", "Lindqvist", "Castell", "Varga", "Nakamura", "Duarte", "Brennan", "Haddad",
         "Kowalczyk", "Achebe", "Ferreira", "Sato", "Novak", "Rahman", "Olsen", "Quintero", "Weller")
_COUNTRIES = ("Brazil", "Portugal", "Chile", "Kenya", "Poland", "Norway", "Ghana", "Peru", "Austria",
              "Colombia", "Ireland", "Romania")
_ASSETS = (("Bitcoin", "BTC", (90, 95, 100, 105, 110, 120)), ("Ethereum", "ETH", (3, 3.5, 4, 4.5, 5)),
           ("Solana", "SOL", (150, 175, 200, 250)), ("XRP", "XRP", (2, 2.5, 3, 4)))
_CITIES = ("Harbor City", "Red Valley", "Northgate", "Silverlake", "Iron Bay", "Westbrook", "Pine Ridge",
           "Stonehaven", "Lakeshore", "Eastport", "Granite Falls", "Sunport")
_MASCOTS = ("Gulls", "Foxes", "Comets", "Rangers", "Owls", "Titans", "Hornets", "Pilots", "Wolves", "Barons")
_LEAGUES = (("nba", "basketball"), ("mlb", "baseball"), ("epl", "football"), ("nhl", "hockey"))
_COMPANIES = (("Nimbus Labs", "Nimbus-5"), ("Quanta Devices", "the Q-Phone Fold"),
              ("Orbital Motors", "the Comet robotaxi"), ("Helix AI", "Helix 3"), ("Brightwave", "its AR glasses"),
              ("Cobalt Games", "Starfall VI"))
_REGIONS = (("Aravia", "Morland"), ("the Northern League", "the Delta Front"), ("Kessia", "Tovaria"),
            ("Ostra", "Velmark"))
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_ADJECTIVES = ("Favorable", "Quiet", "Lucky", "Brisk", "Candid", "Nimble", "Stoic", "Vivid", "Rapid", "Gentle",
               "Bold", "Humble", "Shrewd", "Sunny", "Frosty", "Trivial", "Webbed", "Clever")
_NOUNS = ("Webinar", "Myth", "Gopher", "Otter", "Falcon", "Harbor", "Lantern", "Meadow", "Comet", "Ledger",
          "Pebble", "Summit", "Willow", "Badger", "Cipher", "Dentist", "Orchid", "Quartz")
_HANDLES = ("whale", "degen", "alpha", "oracle", "trader", "edge", "sharp", "punter", "signal", "macro")
_BIOS = ("", "", "", "", "full-time forecaster", "markets are conversations", "not financial advice",
         "sports + politics", "long volatility")


@dataclass
class _MarketSpec:
    question: str
    outcomes: tuple[str, str]
    group_item_title: str
    keywords: tuple[str, ...]
    headlines: tuple[str, ...]
    # Per-outcome headline when the market resolves: index 0 = outcome 0 won, 1 = outcome 1 won.
    resolution: tuple[str, str]
    slug: str | None = None


@dataclass
class _EventSpec:
    title: str
    category: str
    description: str
    neg_risk: bool
    markets: list[_MarketSpec]
    slug: str | None = None


def _date_phrase(ts: float) -> str:
    day = datetime.fromtimestamp(ts, UTC)
    return f"{_MONTHS[day.month - 1]} {day.day}"


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _election(rng: random.Random, start: float) -> _EventSpec:
    country = rng.choice(_COUNTRIES)
    year = datetime.fromtimestamp(start, UTC).year + 1
    candidates = {_person(rng) for _ in range(rng.randint(2, 4))}
    markets = [
        _MarketSpec(
            question=f"Will {name} win the {year} {country} presidential election?",
            outcomes=("Yes", "No"),
            group_item_title=name,
            keywords=(name, country, "election"),
            headlines=(f"New poll puts {name} ahead in {country}", f"{name} rallies supporters in {country} capital",
                       f"{country} election: debate night shakes up the race"),
            resolution=(f"{name} declared winner of {country} presidential election",
                        f"{name} concedes in {country} presidential race"),
        )
        for name in sorted(candidates)
    ]
    return _EventSpec(f"{country} Presidential Election {year}", "politics",
                      f"Who will win the {year} presidential election in {country}?", True, markets)


def _crypto_threshold(rng: random.Random, start: float) -> _EventSpec:
    asset, ticker, levels = rng.choice(_ASSETS)
    when = start + rng.randint(2, 40) * 86400
    phrase = _date_phrase(when)
    unit = "k" if ticker == "BTC" else ("k" if ticker == "ETH" else "")
    markets = []
    for level in sorted(rng.sample(levels, k=min(len(levels), rng.randint(2, 3)))):
        shown = f"${level}{unit}"
        markets.append(_MarketSpec(
            question=f"Will the price of {asset} be above {shown} on {phrase}?",
            outcomes=("Yes", "No"),
            group_item_title=shown,
            keywords=(asset, ticker, shown),
            headlines=(f"{asset} jumps as funds pile back in", f"{asset} slides while traders eye {shown}",
                       f"Analysts split on where {ticker} goes next"),
            resolution=(f"{asset} closes above {shown} on {phrase}", f"{asset} ends below {shown} on {phrase}"),
        ))
    return _EventSpec(f"{asset} above ___ on {phrase}?", "crypto",
                      f"Where will {asset} trade on {phrase}?", False, markets)


def _up_or_down(rng: random.Random, start: float) -> _EventSpec:
    asset, ticker, _levels = rng.choice(_ASSETS)
    when = start + rng.randint(1, 48) * 3600
    hour = datetime.fromtimestamp(when, UTC)
    label = f"{_date_phrase(when)}, {hour.hour % 12 or 12}{'AM' if hour.hour < 12 else 'PM'} ET"
    spec = _MarketSpec(
        question=f"{asset} Up or Down - {label}",
        outcomes=("Up", "Down"),
        group_item_title="",
        keywords=(asset, ticker),
        headlines=(f"{ticker} volatility spikes into the hour", f"Liquidations hit {asset} traders"),
        resolution=(f"{asset} finishes the hour higher", f"{asset} finishes the hour lower"),
        slug=f"{ticker.lower()}-updown-1h-{int(when)}",
    )
    return _EventSpec(spec.question, "crypto", f"Will {asset} go up or down?", False, [spec], slug=spec.slug)


def _game(rng: random.Random, start: float) -> _EventSpec:
    league, sport = rng.choice(_LEAGUES)
    home, away = rng.sample(_CITIES, 2)
    home_team, away_team = f"{home} {rng.choice(_MASCOTS)}", f"{away} {rng.choice(_MASCOTS)}"
    day = datetime.fromtimestamp(start + rng.randint(0, 10) * 86400, UTC).strftime("%Y-%m-%d")
    slug = f"{league}-{slugify(home)[:3]}-{slugify(away)[:3]}-{day}"
    spec = _MarketSpec(
        question=f"{home_team} vs. {away_team}",
        outcomes=(home_team, away_team),
        group_item_title="",
        keywords=(home_team, away_team, league.upper()),
        headlines=(f"{home_team} star listed as questionable against {away_team}",
                   f"{away_team} arrive in {home} on a winning streak"),
        resolution=(f"{home_team} beat {away_team} in {sport} clash", f"{away_team} beat {home_team} in {sport} clash"),
        slug=slug,
    )
    return _EventSpec(spec.question, "sports", f"{sport.title()}: {spec.question}", False, [spec], slug=slug)


def _fed(rng: random.Random, start: float) -> _EventSpec:
    when = datetime.fromtimestamp(start + rng.randint(10, 120) * 86400, UTC)
    month, year = _MONTHS[when.month - 1], when.year
    options = (
        ("Fed decreases interest rates by 25 bps after {m} {y} meeting?", "25 bps decrease",
         "Fed cuts rates by 25 bps in {m}", "Fed holds off on a {m} cut"),
        ("No change in Fed interest rates after {m} {y} meeting?", "No change",
         "Fed leaves rates unchanged in {m}", "Fed moves rates in {m}"),
        ("Fed increases interest rates by 25+ bps after {m} {y} meeting?", "25+ bps increase",
         "Fed surprises with a {m} hike", "No hike from the Fed in {m}"),
    )
    markets = [
        _MarketSpec(
            question=question.format(m=month, y=year),
            outcomes=("Yes", "No"),
            group_item_title=title,
            keywords=("Fed", "interest rates", month),
            headlines=(f"Inflation print reshapes {month} Fed bets", f"Fed officials signal patience before {month}"),
            resolution=(yes.format(m=month), no.format(m=month)),
        )
        for question, title, yes, no in options
    ]
    return _EventSpec(f"Fed decision in {month}?", "economics", f"What will the Fed decide in {month} {year}?",
                      True, markets, slug=f"fed-decision-in-{month.lower()}-{year}")


def _launch(rng: random.Random, start: float) -> _EventSpec:
    company, product = rng.choice(_COMPANIES)
    phrase = _date_phrase(start + rng.randint(15, 120) * 86400)
    spec = _MarketSpec(
        question=f"Will {company} release {product} by {phrase}?",
        outcomes=("Yes", "No"),
        group_item_title="",
        keywords=(company, product.replace("the ", "").replace("its ", "")),
        headlines=(f"Leak hints {company} launch date is close", f"{company} supplier reports delays"),
        resolution=(f"{company} launches {product}", f"{company} confirms {product} slips past {phrase}"),
    )
    return _EventSpec(spec.question, "tech", spec.question, False, [spec])


def _ceasefire(rng: random.Random, start: float) -> _EventSpec:
    first, second = rng.choice(_REGIONS)
    phrase = _date_phrase(start + rng.randint(10, 90) * 86400)
    spec = _MarketSpec(
        question=f"{first.removeprefix('the ')} x {second.removeprefix('the ')} ceasefire by {phrase}?",
        outcomes=("Yes", "No"),
        group_item_title="",
        keywords=(first.removeprefix("the "), second.removeprefix("the "), "ceasefire"),
        headlines=(f"Envoys shuttle between {first} and {second}", f"Shelling reported despite {first} talks"),
        resolution=(f"{first} and {second} sign ceasefire".capitalize(),
                    f"Talks between {first} and {second} collapse".capitalize()),
    )
    return _EventSpec(spec.question, "geopolitics", spec.question, False, [spec])


_FAMILIES = (_election, _crypto_threshold, _up_or_down, _game, _game, _fed, _launch, _ceasefire)


# --- building ---------------------------------------------------------------------------------

def build_catalog(*, seed: int, start: float, market_count: int, wallet_count: int,
                  history_seconds: int, protocol_v2_share: float = 0.0,
                  resolution_window_seconds: int = 4 * 3600) -> Catalog:
    rng = random.Random(derive_seed(seed, "catalog"))
    events: list[Event] = []
    markets: list[Market] = []
    seen_questions: set[str] = set()
    next_market_id = 500_000 + rng.randint(0, 90_000)
    next_event_id = 20_000 + rng.randint(0, 9_000)
    attempts = 0
    seen_slugs: set[str] = set()
    while len(markets) < market_count:
        attempts += 1
        if attempts > market_count * 50:
            raise RuntimeError("could not invent enough distinct markets")
        spec = rng.choice(_FAMILIES)(rng, start)
        event_slug = spec.slug or slugify(spec.title)
        fresh = [m for m in spec.markets
                 if m.question not in seen_questions and (m.slug or slugify(m.question)) not in seen_slugs]
        if not fresh or event_slug in seen_slugs:
            continue
        fresh = fresh[: market_count - len(markets)]
        created = start - rng.randint(3, 90) * 86400 - rng.random() * 86400
        event_end = start + rng.randint(1, 120) * 86400
        event = Event(
            index=len(events),
            id=str(next_event_id),
            slug=event_slug,
            title=spec.title,
            description=spec.description,
            category=spec.category,
            created_at=created,
            start_date=created + 600,
            end_date=event_end,
            neg_risk=spec.neg_risk and len(fresh) > 1,
        )
        seen_slugs.add(event_slug)
        next_event_id += rng.randint(1, 40)
        events.append(event)
        fate = _decide_event_fate(rng, event, len(fresh), start=start, history_seconds=history_seconds,
                                  resolution_window_seconds=resolution_window_seconds)
        for position, market_spec in enumerate(fresh):
            seen_questions.add(market_spec.question)
            seen_slugs.add(market_spec.slug or slugify(market_spec.question))
            market = _build_market(rng, seed, len(markets), next_market_id, market_spec, event,
                                   fate=fate, winner_index=fate.winners[position])
            _assign_protocol_and_fees(market, seed, protocol_v2_share)
            markets.append(market)
            event.market_indexes.append(len(markets) - 1)
            next_market_id += rng.randint(1, 25)

    wallets = _build_wallets(rng, seed, wallet_count)
    order = list(range(wallet_count))
    rng.shuffle(order)
    weights = [0.0] * wallet_count
    for rank, wallet_index in enumerate(order):
        weights[wallet_index] = 1.0 / (rank + 4) ** 1.1
    insiders = sorted(rng.sample(order[wallet_count // 2:], k=min(5, wallet_count // 10)))
    for index in insiders:
        wallets[index].is_insider = True
        weights[index] = 1e-9  # insiders only trade on their tip, never as background noise
    roles = random.Random(derive_seed(seed, "roles"))
    market_maker, arbitrageur = roles.sample([i for i in range(wallet_count) if i not in insiders], k=2)
    cumulative, total = [], 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    return Catalog(
        markets=markets,
        events=events,
        wallets=wallets,
        wallet_cum_weights=cumulative,
        insider_indexes=insiders,
        market_by_condition={m.condition_id: m.index for m in markets},
        wallet_by_address={w.address: w.index for w in wallets},
        market_by_id={m.id: m.index for m in markets},
        market_maker_index=market_maker,
        arbitrageur_index=arbitrageur,
    )


@dataclass(frozen=True)
class _EventFate:
    closed_before_history_at: float | None
    resolves_at: float | None
    # Per market of the event: 0/1 = that outcome wins, None = void.
    winners: tuple[int | None, ...]


def _decide_event_fate(rng: random.Random, event: Event, market_count: int, *, start: float,
                       history_seconds: int, resolution_window_seconds: int = 4 * 3600) -> _EventFate:
    """Markets of one event close together and resolve consistently.

    A neg-risk event (one election, one Fed decision) has exactly one "Yes"; a ladder of price
    thresholds is monotone (above $90k can't lose while above $100k wins); only single-market
    events are ever voided.
    """
    history_start = start - history_seconds
    roll = rng.random()
    closed_before = resolves_at = None
    if roll < 0.15:
        closed_before = history_start - rng.randint(1, 30) * 86400 - rng.random() * 3600
    elif roll < 0.50:
        # Spread over the first hours of the run so a demo at speed 60 sees several resolutions.
        resolves_at = float(int(start + rng.randint(5 * 60, max(5 * 60, resolution_window_seconds))))
    winners: tuple[int | None, ...]
    if market_count == 1:
        winners = (None,) if rng.random() < 0.12 else (rng.randint(0, 1),)
    elif event.neg_risk:
        chosen = rng.randrange(market_count)
        winners = tuple(0 if position == chosen else 1 for position in range(market_count))
    else:
        cut = rng.randint(0, market_count)
        winners = tuple(0 if position < cut else 1 for position in range(market_count))
    return _EventFate(closed_before, resolves_at, winners)


def _build_market(rng: random.Random, seed: int, index: int, market_id: int, spec: _MarketSpec, event: Event,
                  *, fate: _EventFate, winner_index: int | None) -> Market:
    resolution = (f"{spec.question.rstrip('?')}: result voided after dispute" if winner_index is None
                  else spec.resolution[winner_index])
    closed_before = fate.closed_before_history_at
    created = event.created_at + rng.random() * 3600
    if closed_before is not None:
        created = min(created, closed_before - 7 * 86400)
    end_date = closed_before if closed_before is not None else event.end_date
    tick = 0.001 if rng.random() < 0.6 else 0.01
    return Market(
        index=index,
        id=str(market_id),
        question=spec.question,
        slug=spec.slug or slugify(spec.question),
        condition_id="0x" + hex_digest(seed, "condition", index, nbytes=32),
        question_id="0x" + hex_digest(seed, "question", index, nbytes=32),
        outcomes=spec.outcomes,
        token_ids=(token_id(rng), token_id(rng)),
        event_index=event.index,
        category=event.category,
        group_item_title=spec.group_item_title,
        created_at=created,
        start_date=created + 300,
        end_date=float(int(end_date)),
        tick=tick,
        weight=rng.paretovariate(1.3),
        base_price=round(rng.uniform(0.06, 0.94), 3),
        swing=rng.uniform(0.005, 0.06),
        swing_period=rng.uniform(1800, 6 * 3600),
        swing_phase=rng.uniform(0, 6.283),
        base_volume=round(rng.lognormvariate(11, 1.6), 6),
        liquidity=round(rng.lognormvariate(9, 1.2), 4),
        keywords=spec.keywords,
        headline_templates=spec.headlines,
        closed_before_history_at=closed_before,
        resolves_at=fate.resolves_at,
        winner_index=winner_index,
        news_lead_seconds=rng.randint(120, 900),
        resolution_headline=resolution,
    )


def _unit(seed: int, *parts: object) -> float:
    return derive_seed(seed, *parts) / 2**64


def protocol_v2_ids(seed: int, index: int) -> tuple[str, tuple[str, str]]:
    """A Protocol V2 market's condition id (bytes31, right-padded to 64 hex) and its two position ids.

    Position ids are consecutive 75-77 digit decimals, like the recorded CLOB market
    (``...625152`` / ``...625153``)."""
    condition_id = "0x" + hex_digest(seed, "condition-v2", index, nbytes=31) + "00"
    rng = random.Random(derive_seed(seed, "position-ids", index))
    digits = rng.choice((75, 76, 77))
    base = rng.randrange(10 ** (digits - 1) // 256 + 1, 10**digits // 256 - 1) * 256
    return condition_id, (str(base), str(base + 1))


def _assign_protocol_and_fees(market: Market, seed: int, protocol_v2_share: float) -> None:
    """Version, fees and dispute flag come from their own seeds, so the main catalog stream (and with
    it every v1 market and fill) stays the same whatever share of markets is Protocol V2."""
    if _unit(seed, "protocol", market.index) < protocol_v2_share:
        market.protocol_version = "v2"
        market.condition_id, market.token_ids = protocol_v2_ids(seed, market.index)
    if market.category == "crypto" or _unit(seed, "fees", market.index) < 0.2:
        market.fee_schedule = FeeSchedule()
    market.was_disputed = _unit(seed, "disputed", market.index) < 0.1


def _build_wallets(rng: random.Random, seed: int, count: int) -> list[Wallet]:
    wallets = []
    for index in range(count):
        address = "0x" + hex_digest(seed, "wallet", index, nbytes=20)
        roll = rng.random()
        name = ""
        if roll < 0.45:
            name = f"{rng.choice(_ADJECTIVES)}{rng.choice(_HANDLES).title()}{rng.choice(('', '', str(rng.randint(1, 99))))}"
        elif roll < 0.55:
            name = rng.choice(_HANDLES) + str(rng.randint(100, 9999))
        pseudonym = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}" if rng.random() < 0.9 else ""
        image = f"{IMAGE_HOST}/profile/{address}.png" if rng.random() < 0.2 else ""
        wallets.append(Wallet(
            index=index,
            address=address,
            name=name,
            pseudonym=pseudonym,
            bio=rng.choice(_BIOS) if name else "",
            profile_image=image,
            profile_image_optimized=image.replace(".png", "-optimized.webp") if image else "",
        ))
    return wallets


# --- Gamma rendering --------------------------------------------------------------------------

@dataclass(frozen=True)
class MarketView:
    """A market's moving parts at one virtual instant, as the world sees them."""

    closed: bool
    closed_at: float | None
    # "proposed" between closing and resolution, "resolved" after; None while open.
    uma_status: str | None
    outcome_prices: tuple[str, str]
    last_trade_price: float
    volume: float
    volume_24h: float
    updated_at: float


def render_event(event: Event, *, closed: bool, volume: float, updated_at: float,
                 markets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": event.id,
        "ticker": event.slug,
        "slug": event.slug,
        "title": event.title,
        "description": event.description,
        "resolutionSource": "",
        "startDate": iso_seconds(event.start_date),
        "creationDate": iso_millis(event.created_at + 60),
        "endDate": iso_seconds(event.end_date),
        "image": f"{IMAGE_HOST}/event/{event.slug}.png",
        "icon": f"{IMAGE_HOST}/event/{event.slug}.png",
        "active": True,
        "closed": closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "volume": round(volume, 6),
        "openInterest": 0,
        "category": event.category,
        "tags": [{"id": str(derive_seed(event.category) % 10_000), "label": event.category.title(),
                  "slug": event.category}],
        "published_at": gamma_closed_time(event.created_at).replace("+00", ".000+00"),
        "updatedBy": "15",
        "createdAt": iso_millis(event.created_at),
        "updatedAt": iso_millis(updated_at),
        "commentsEnabled": False,
        "enableOrderBook": True,
        "negRisk": event.neg_risk,
        "commentCount": 0,
        "cyom": False,
        "showAllOutcomes": True,
        "showMarketImages": True,
        "enableNegRisk": event.neg_risk,
        "automaticallyActive": True,
        "negRiskAugmented": False,
        "pendingDeployment": False,
        "deploying": False,
    }
    if closed:
        payload["closedTime"] = iso_seconds(updated_at)  # the event's closedTime IS ISO upstream
    if markets is not None:
        payload["markets"] = markets
    return payload


def render_market(market: Market, event: Event, view: MarketView, *, event_closed: bool,
                  event_volume: float) -> dict[str, Any]:
    """One Gamma /markets record, with upstream's mixed typing reproduced on purpose."""
    payload: dict[str, Any] = {
        "id": market.id,
        "question": market.question,
        "conditionId": market.condition_id,
        "slug": market.slug,
        "resolutionSource": "",
        "endDate": iso_seconds(market.end_date),
        "liquidity": f"{market.liquidity}",
        "startDate": iso_seconds(market.start_date),
        "fee": "20000000000000000",
        "image": market.icon,
        "icon": market.icon,
        "description": f"This market will resolve according to: {market.question}",
        "outcomes": json.dumps(list(market.outcomes)),
        "outcomePrices": json.dumps(list(view.outcome_prices)),
        "volume": f"{round(view.volume, 6)}",
        "active": True,
        "marketType": "normal",
        "closed": view.closed,
        "marketMakerAddress": "",
        "updatedBy": 15,
        "createdAt": iso_millis(market.created_at),
        "updatedAt": iso_millis(view.updated_at),
    }
    if view.closed_at is not None:
        payload["closedTime"] = gamma_closed_time(view.closed_at)
    payload.update({
        "wideFormat": False,
        "new": False,
        "featured": False,
        "archived": False,
        "restricted": True,
        "groupItemTitle": market.group_item_title,
        "groupItemThreshold": "0",
        "questionID": market.question_id,
        "enableOrderBook": True,
        "orderPriceMinTickSize": market.tick,
        "orderMinSize": 5,
    })
    if view.uma_status is not None:
        payload["umaResolutionStatus"] = view.uma_status
    if view.closed_at is not None:
        payload["umaEndDate"] = iso_seconds(view.closed_at)
    payload.update({
        "volumeNum": round(view.volume, 6),
        "liquidityNum": market.liquidity,
        "endDateIso": iso_seconds(market.end_date)[:10],
        "startDateIso": iso_seconds(market.start_date)[:10],
        "hasReviewedDates": True,
        "volume24hr": round(view.volume_24h, 6),
        "clobTokenIds": json.dumps(list(market.token_ids)) if market.protocol_version == "v1" else None,
        "umaBond": "500.0",
        "umaReward": "5.0",
        "volumeClob": round(view.volume, 6),
        "liquidityClob": market.liquidity,
        "acceptingOrders": not view.closed,
        "negRisk": event.neg_risk,
        "events": [render_event(event, closed=event_closed, volume=event_volume, updated_at=view.updated_at)],
        "ready": False,
        "funded": False,
        "cyom": False,
        "approved": True,
        "spread": market.tick,
        "lastTradePrice": view.last_trade_price,
    })
    if not view.closed:
        price = float(view.outcome_prices[0])
        payload["bestBid"] = round(max(market.tick, price - market.tick), 4)
        payload["bestAsk"] = round(min(1 - market.tick, price + market.tick), 4)
    payload.update({
        "umaResolutionStatuses": "[]" if view.uma_status is None else json.dumps([view.uma_status]),
        "feesEnabled": market.fee_schedule is not None,
        "feeType": None if market.fee_schedule is None else "crypto_fees_v2",
    })
    if market.fee_schedule is not None:
        payload["makerRebatesFeeShareBps"] = 10000
        payload["feeSchedule"] = market.fee_schedule.as_gamma()
    if market.protocol_version == "v2":
        payload["positionIds"] = list(market.token_ids)
    payload["version"] = market.protocol_version
    return payload
