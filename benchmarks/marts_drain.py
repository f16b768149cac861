"""Benchmark of the compute drain: is its cost proportional to changed wallets, not to all wallets?

For each W in --wallets: create a scratch database, seed W wallets with ~10 fills each (SQL
generate_series, server-side), compute every wallet once the old way (every wallet from every
fill — timed: the old approach), then give K wallets one new fill each, push them to the queue and
time draining it with one in-process worker. Prints changed wallets/s, t(W_max)/t(W_min) and the
old approach's time for comparison. The scratch database is dropped at the end (unless --keep).

    .venv/bin/python benchmarks/marts_drain.py --wallets 10000,1000000 [--changed 1000]
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

BENCH_DB = "arbitra_bench"
BENCH_REDIS_DB = 11


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _admin_connect(base_url: str):
    import psycopg

    return psycopg.connect(_with_path(base_url, "/postgres"), autocommit=True)


def database_recreate(base_url: str) -> None:
    with _admin_connect(base_url) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")


def database_drop(base_url: str) -> None:
    with _admin_connect(base_url) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


SEED_SQL = [
    # Markets: 1 per 100 wallets (at least 200), two tokens each; every fifth market resolved.
    """
    INSERT INTO market (condition_id, gamma_id, question, slug, description, category, tags, event_slug, event_title,
        outcomes, outcome_prices, volume, liquidity, active, closed, archived, uma_resolution_status, winner_index,
        is_void, resolved_at, metadata_status, created_at, updated_at)
    SELECT '0x' || lpad(to_hex(m), 64, '0'), '', 'Bench market ' || m, '', '', 'bench', '[]', '', '', '[]', '[]',
        0, 100000, true, m %% 5 = 0, false, '', CASE WHEN m %% 5 = 0 THEN m %% 2 END, false,
        CASE WHEN m %% 5 = 0 THEN now() - interval '2 days' END, 'fetched', now(), now()
    FROM generate_series(1, %(markets)s) AS m
    """,
    """
    INSERT INTO outcome_token (token_id, market_id, outcome_index, outcome, latest_price)
    SELECT m.id::text || '-' || i, m.id, i, CASE i WHEN 0 THEN 'Yes' ELSE 'No' END,
           CASE WHEN m.winner_index IS NULL THEN round((0.2 + random() * 0.6)::numeric, 3) END
    FROM market m CROSS JOIN generate_series(0, 1) AS i
    """,
    """
    INSERT INTO wallet (address, pseudonym, name, profile_image, tracked, created_at, updated_at)
    SELECT '0x' || lpad(to_hex(g), 40, '0'), '', '', '', false, now(), now() FROM generate_series(1, %(wallets)s) AS g
    """,
    # ~10 fills per wallet (8–12), mostly in 2–4 markets, the first three buys, over the last 60 days.
    """
    INSERT INTO trade_fill (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id, side, size,
        price, usdc_size, traded_at, outcome, outcome_index, ingested_at)
    SELECT md5(w.id || ':' || i) || md5(i || ':' || w.id), 'bench', '0x' || md5(w.id || '/' || i) || md5(i || '/' || w.id),
        m.id::text || '-' || (i %% 2), m.id, w.id, CASE WHEN i <= 3 OR random() < 0.6 THEN 'BUY' ELSE 'SELL' END,
        s.size, s.price, s.size * s.price, now() - (random() * interval '60 days'), '', i %% 2, now() - interval '1 hour'
    FROM wallet w
    CROSS JOIN LATERAL generate_series(1, 8 + (w.id %% 5)::int) AS i
    CROSS JOIN LATERAL (SELECT round((1 + random() * 500)::numeric, 2) AS size,
                               round((0.05 + random() * 0.9)::numeric, 2) AS price) AS s
    JOIN market m ON m.id = 1 + ((w.id * 7 + (i %% 3) * 13) %% %(markets)s)
    """,
    "ANALYZE",
]


def seed(*, wallets: int) -> float:
    from django.db import connection

    started = time.monotonic()
    markets = max(200, wallets // 100)
    with connection.cursor() as cursor:
        for statement in SEED_SQL:
            cursor.execute(statement, {"markets": markets, "wallets": wallets})
    return time.monotonic() - started


def full_recompute(*, batch_size: int) -> tuple[float, int]:
    """The old approach: every wallet recomputed from every fill."""
    from django.db import connection

    from marts.services import wallet_batch_compute

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM wallet ORDER BY id")
        ids = [row[0] for row in cursor.fetchall()]
    started = time.monotonic()
    for start in range(0, len(ids), batch_size):
        wallet_batch_compute(wallet_ids=ids[start : start + batch_size])
    return time.monotonic() - started, len(ids)


def change_and_drain(*, changed: int, batch_size: int) -> tuple[float, int]:
    from django.db import connection

    from ingest.changes import changed_wallets_push
    from marts.services import changed_wallets_drain

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM wallet ORDER BY random() LIMIT %s", [changed])
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            INSERT INTO trade_fill (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id, side,
                size, price, usdc_size, traded_at, outcome, outcome_index, ingested_at)
            SELECT md5('new' || f.id) || md5(f.id || 'new'), 'bench', '0x' || md5('tx' || f.id) || md5(f.id || 'tx'),
                f.token_id, f.market_id, f.wallet_id, 'BUY', 10, 0.5, 5, now() - interval '1 minute', '', f.outcome_index, now()
            FROM (SELECT DISTINCT ON (wallet_id) * FROM trade_fill WHERE wallet_id = ANY(%s) ORDER BY wallet_id, id) f
            """,
            [ids],
        )
    changed_wallets_push(wallet_ids=ids)
    started = time.monotonic()
    result = changed_wallets_drain(batch_size=batch_size, time_budget_seconds=3600)
    return time.monotonic() - started, result.computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", default="10000,1000000", help="comma-separated W values")
    parser.add_argument("--changed", type=int, default=1000, help="K: wallets changed before the timed drain")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--skip-full-above", type=int, default=10**9,
                        help="skip the timed old-approach recompute above this W (it also populates the marts)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    sizes = [int(part) for part in args.wallets.split(",")]

    base_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["DATABASE_URL"] = _with_path(base_url, f"/{BENCH_DB}")
    os.environ["REDIS_URL"] = _with_path(redis_url, f"/{BENCH_REDIS_DB}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from ingest.changes import redis_client

    timings: dict[int, float] = {}
    try:
        for wallets in sizes:
            connection.close()
            database_recreate(base_url)
            call_command("migrate", verbosity=0)
            redis_client().flushdb()
            seeded = seed(wallets=wallets)
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM trade_fill")
                fills = cursor.fetchone()[0]
            print(f"W={wallets:>9,}: seeded {fills:,} fills in {seeded:.1f}s", flush=True)
            if wallets <= args.skip_full_above:
                full_seconds, full_count = full_recompute(batch_size=2000)
                print(f"W={wallets:>9,}: old approach (recompute all {full_count:,} wallets from all fills): "
                      f"{full_seconds:.1f}s ({full_count / full_seconds:,.0f} wallets/s)", flush=True)
            else:
                print(f"W={wallets:>9,}: old approach skipped (--skip-full-above); marts start empty", flush=True)
            drain_seconds, computed = change_and_drain(changed=args.changed, batch_size=args.batch_size)
            timings[wallets] = drain_seconds
            print(f"W={wallets:>9,}: drained K={computed:,} changed wallets in {drain_seconds:.2f}s = "
                  f"{computed / drain_seconds:,.0f} changed wallets/s (1 worker)", flush=True)
            if wallets <= args.skip_full_above:
                print(f"W={wallets:>9,}: old approach / drain = {full_seconds / drain_seconds:,.1f}×", flush=True)
        if len(timings) > 1:
            small, large = min(timings), max(timings)
            print(f"ratio t(W={large:,}) / t(W={small:,}) = {timings[large] / timings[small]:.2f} (target ≤ 1.5)")
    finally:
        connection.close()
        if not args.keep:
            database_drop(base_url)


if __name__ == "__main__":
    main()
