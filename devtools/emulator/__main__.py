"""``python -m devtools.emulator --port 8099 --seed 1 --scenario demo --speed 60``"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from . import serve
from .scenarios import KNOWN_SCENARIOS


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.emulator",
                                     description="Serve an emulated Polymarket Data API + Gamma + news RSS.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", default="steady",
                        help=f"comma list of: {', '.join(sorted(KNOWN_SCENARIOS))}")
    parser.add_argument("--clock", choices=("realtime", "manual"), default="realtime")
    parser.add_argument("--speed", type=float, default=1.0, help="virtual seconds per real second")
    parser.add_argument("--start", type=int, default=None,
                        help="virtual Unix time at startup (default: now, or 2026-01-01 for --clock manual)")
    parser.add_argument("--history", type=int, default=1800, help="virtual seconds already published at startup")
    parser.add_argument("--markets", type=int, default=60)
    parser.add_argument("--wallets", type=int, default=400)
    parser.add_argument("--rate-multiplier", type=float, default=1.0, help="scale the base fill rate")
    parser.add_argument("--offset-cap", type=int, default=1500, help="/trades offset cap (400 beyond it)")
    parser.add_argument("--max-limit", type=int, default=500, help="/trades limit clamp")
    parser.add_argument("--gamma-offset-cap", type=int, default=2000, help="Gamma offset cap (422 beyond it)")
    parser.add_argument("--v2-market-share", type=float, default=0.0,
                        help="share of Protocol V2 markets in Gamma (version v2, positionIds; e.g. 0.3)")
    parser.add_argument("--enforce-rate-limits", action="store_true",
                        help="answer 429 past the published per-10s limits")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    try:
        server = serve(
            host=args.host, port=args.port, seed=args.seed, scenario=args.scenario, clock=args.clock,
            speed=args.speed, verbose=args.verbose, start=args.start, history_seconds=args.history,
            market_count=args.markets, wallet_count=args.wallets, rate_multiplier=args.rate_multiplier,
            trades_offset_cap=args.offset_cap, trades_max_limit=args.max_limit,
            gamma_offset_cap=args.gamma_offset_cap, enforce_rate_limits=args.enforce_rate_limits,
            protocol_v2_market_share=args.v2_market_share,
        )
    except (ValueError, OSError) as error:
        print(f"emulator: {error}", file=sys.stderr)
        return 2
    state = server.world.state()
    print(f"Polymarket emulator on {server.url}  (Data API + Gamma + /rss.xml on one port)", flush=True)
    print(json.dumps({k: state[k] for k in ("seed", "scenarios", "clock", "speed", "virtual_now", "rows")}),
          flush=True)
    # A supervisor stops us with SIGTERM: treat it like Ctrl-C so we exit 0 after a clean shutdown.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
