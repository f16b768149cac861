"""The emulator's planted roles ("signals" scenario): who trades when, and the truth it tells about them."""

from __future__ import annotations

import collections

from devtools.emulator.scenarios import EmulatorConfig, parse_scenarios
from devtools.emulator.world import BUY, SELL, VALID, World


def _world(scenario: str, **options) -> World:
    config = EmulatorConfig(seed=13, scenario=scenario, clock="manual", history_seconds=3600, **options)
    world = World(config)
    world.advance(4 * 3600)
    return world


def _fills(world: World, wallet: int) -> list[int]:
    columns = world.columns
    return [row for row in world.by_wallet[wallet].all_rows if columns.kind[row] == VALID]


def test_insiders_buy_the_winner_ten_to_sixty_minutes_before_their_markets_resolution_news():
    world = _world("signals")
    resolution_news = {item.market_index: item.published_at for item in world.news if item.kind == "resolution"}
    columns, catalog = world.columns, world.catalog
    leads = []
    for insider in catalog.insider_indexes:
        for row in _fills(world, insider):
            market = catalog.markets[columns.market[row]]
            assert (columns.side[row], columns.outcome[row]) == (BUY, market.winner_index)
            leads.append(resolution_news[market.index] - columns.timestamp[row])
    assert len(catalog.insider_indexes) == 5 and len(leads) >= 40
    assert min(leads) >= 600 and max(leads) <= 3600
    truth = world.state()["roles"]
    assert truth["active"] and truth["insiders"] == [catalog.wallets[i].address for i in catalog.insider_indexes]
    assert len(truth["random_traders"]) == 400 - 7


def test_the_market_maker_quotes_both_sides_of_a_dozen_markets_and_holds_little():
    world = _world("signals")
    columns, maker = world.columns, world.catalog.market_maker_index
    rows = _fills(world, maker)
    assert len(rows) > 1500 and not any(columns.is_taker[row] for row in rows)
    held: collections.Counter = collections.Counter()
    volume = {BUY: 0.0, SELL: 0.0}
    for row in rows:
        key = (columns.market[row], columns.outcome[row])
        held[key] += columns.size[row] if columns.side[row] == BUY else -columns.size[row]
        volume[columns.side[row]] += columns.size[row] * columns.price[row]
        assert held[key] >= 0  # never sells what it does not hold
    assert len({market for market, _outcome in held}) == 12
    assert 0.7 <= volume[SELL] / volume[BUY] <= 1.3
    assert max(held.values()) <= 100


def test_the_arbitrageur_buys_both_outcomes_for_less_than_one():
    world = _world("signals")
    columns, arbitrageur = world.columns, world.catalog.arbitrageur_index
    pairs: dict[tuple[int, int], list[tuple[int, float, float]]] = collections.defaultdict(list)
    for row in _fills(world, arbitrageur):
        assert columns.side[row] == BUY
        pairs[(columns.timestamp[row], columns.market[row])].append(
            (columns.outcome[row], columns.size[row], columns.price[row]))
    assert len(pairs) >= 20
    for legs in pairs.values():
        assert sorted(outcome for outcome, _size, _price in legs) == [0, 1]
        assert legs[0][1] == legs[1][1]
        assert legs[0][2] + legs[1][2] < 1


def test_without_the_roles_the_role_wallets_trade_like_anyone_and_the_chaos_soaks_leave_them_out():
    world = _world("steady,resolutions")
    assert not world.state()["roles"]["active"]
    assert _fills(world, world.catalog.market_maker_index) and _fills(world, world.catalog.arbitrageur_index)
    assert "roles" not in parse_scenarios("chaos") | parse_scenarios("chaos_v2")
    assert parse_scenarios("signals") == {"steady", "resolutions", "roles"}
