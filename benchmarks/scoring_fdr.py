"""Benchmark of the Benjamini–Hochberg pass of the information edge (scoring.fdr.edge_fdr_refresh).

BH needs every tested wallet's p-value while the drain recomputes only changed wallets, so a
periodic pass ranks all stored p-values in one statement. This measures that pass: for each W in
--wallets, a scratch database gets W snapshot rows (a share --tested of them tested, p uniform as
for wallets without an edge, a few with tiny p), then the pass runs twice — first when every q
changes, then when nothing changed, then after 1 % of the tested wallets got a new p (a drain
cycle's worth) — and prints the three times.

    .venv/bin/python benchmarks/scoring_fdr.py --wallets 100000,1000000 [--tested 0.3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB_PREFIX = "arbitra_bench_fdr"
BENCH_REDIS_DB = 13


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


SEED_SQL = """
INSERT INTO wallet_snapshot (
    wallet_id, total_trades, markets_traded, volume_total, volume_30d, fees_paid, realized_pnl, unrealized_pnl,
    trading_pnl, maker_rebates, total_pnl, roi, resolved_positions, winning_positions, open_positions, trades_7d,
    pnl_7d, pnl_30d, realized_pnl_24h, max_drawdown_7d, stability_score, smart_score, confidence, strategy_type,
    pool_tier, risk_level, suitable_for, suggested_position, momentum, status_7d, info_edge_level,
    info_edge_mean_minutes, info_edge_stddev_minutes, info_edge_samples, info_edge_z, info_edge_p, info_edge_q,
    info_edge_decisions, info_edge_markets, info_edge_wallet_rate, info_edge_baseline_rate, info_edge_effect,
    info_edge_tested, pending_changes, has_ai_report, nl_summary, ai_model_id, scored_at, last_analyzed_at)
SELECT g, 10, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50, 25, 0.3, 'noise', 'observation', 'medium',
       'watch_only', '0%%', 'stable', 'inactive', CASE WHEN g %% 1000 = 0 THEN 'processing_edge' ELSE 'no_edge' END,
       0, 0, 10, 0, CASE WHEN g %% 1000 = 0 THEN 1e-9 ELSE random() END, 1, 10, 3, 0.2, 0.15, 0.05,
       random() < %s, '{}', false, '', '', now(), now()
FROM generate_series(1, %s) AS g
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", default="100000,1000000", help="comma-separated W values")
    parser.add_argument("--tested", type=float, default=0.3, help="share of wallets with enough decisions to test")
    args = parser.parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["DATABASE_URL"] = _with_path(base_url, f"/{BENCH_DB_PREFIX}")
    os.environ["REDIS_URL"] = _with_path(redis_url, f"/{BENCH_REDIS_DB}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import psycopg

    with psycopg.connect(_with_path(base_url, "/postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB_PREFIX} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DB_PREFIX}")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from ingest.changes import redis_client
        from scoring.fdr import edge_fdr_refresh

        call_command("migrate", verbosity=0)
        redis_client().flushdb()
        for wallets in [int(part) for part in args.wallets.split(",")]:
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE wallet_snapshot")
                started = time.monotonic()
                cursor.execute(SEED_SQL, [args.tested, wallets])
                cursor.execute("ANALYZE wallet_snapshot")
            print(f"W={wallets:>9,}: seeded {wallets:,} snapshots in {time.monotonic() - started:.1f}s", flush=True)
            first = edge_fdr_refresh()
            print(f"W={wallets:>9,}: BH pass over {first['tested']:,} tested wallets, every q new: "
                  f"{first['seconds']:.2f}s ({first['updated']:,} rows updated, {first['relabelled']:,} relabelled)",
                  flush=True)
            steady = edge_fdr_refresh()
            print(f"W={wallets:>9,}: BH pass again, nothing changed: {steady['seconds']:.2f}s "
                  f"({steady['updated']:,} rows updated)", flush=True)
            with connection.cursor() as cursor:  # a drain cycle's worth of changed wallets: 1 % new p
                cursor.execute("UPDATE wallet_snapshot SET info_edge_p = random() WHERE info_edge_tested AND random() < 0.01")
                moved = cursor.rowcount
            cycle = edge_fdr_refresh()
            print(f"W={wallets:>9,}: BH pass after {moved:,} wallets got a new p: {cycle['seconds']:.2f}s "
                  f"({cycle['updated']:,} rows updated, {cycle['relabelled']:,} relabelled)", flush=True)
        redis_client().flushdb()
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(_with_path(base_url, "/postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB_PREFIX} WITH (FORCE)")


if __name__ == "__main__":
    main()
