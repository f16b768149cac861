"""A Polymarket-compatible upstream emulator (Data API v2 and v1 /trades, Gamma, a news RSS) over real HTTP.

The demo and the test suite run the ingest path against it. It is pure standard library, starts in
well under a second, and is deterministic: the same (seed, scenarios, virtual time) always publishes
the same rows, however and whenever clients poll.

    from devtools.emulator import serve
    with serve(seed=7, scenario="demo", clock="manual") as upstream:
        requests.get(f"{upstream.url}/trades", params={"limit": 500})
        upstream.advance(60)                      # or POST /_control/advance?seconds=60
        truth = requests.get(f"{upstream.url}/_truth/trades").json()

    python -m devtools.emulator --port 8099 --seed 1 --scenario demo --speed 60

Modules: ``scenarios`` (config and scenario names), ``clock`` (virtual time), ``catalog`` (markets,
events, wallets and their Gamma shapes), ``world`` (fill generation, storage, queries),
``v2`` (the Data API v2 routes, cursors, error bodies), ``ledger`` (per-wallet movements and
positions), ``news`` (RSS), ``chaos`` (transport faults and published rate limits), ``server`` (HTTP).
"""

from __future__ import annotations

from typing import Any

from .chaos import Chaos
from .clock import VirtualClock
from .scenarios import KNOWN_SCENARIOS, ClockKind, EmulatorConfig, parse_scenarios
from .server import EmulatorApi, EmulatorHTTPServer, EmulatorServer
from .world import TradeQuery, World

__all__ = [
    "KNOWN_SCENARIOS",
    "EmulatorConfig",
    "EmulatorServer",
    "TradeQuery",
    "VirtualClock",
    "World",
    "build_server",
    "parse_scenarios",
    "serve",
]


def build_server(config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 0,
                 verbose: bool = False) -> EmulatorHTTPServer:
    """The HTTP server, bound but not yet serving (for callers that run serve_forever themselves)."""
    world = World(config)
    return EmulatorHTTPServer((host, port), EmulatorApi(world, Chaos(config)), verbose=verbose)


def serve(*, host: str = "127.0.0.1", port: int = 0, seed: int = 1, scenario: str = "steady",
          clock: ClockKind = "realtime", speed: float = 1.0, verbose: bool = False,
          **options: Any) -> EmulatorServer:
    """Start an emulator in a background thread and return it (``port=0`` picks a free port).

    ``options`` are any other EmulatorConfig fields, e.g. ``start=...``, ``history_seconds=0``,
    ``trades_offset_cap=300``, ``market_count=20``, ``enforce_rate_limits=True``.
    """
    config = EmulatorConfig(seed=seed, scenario=scenario, clock=clock, speed=speed, **options)
    return EmulatorServer(build_server(config, host=host, port=port, verbose=verbose))
