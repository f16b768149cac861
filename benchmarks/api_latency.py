"""Latency of the main API endpoints through gunicorn, and of the old way for the ratio.

    .venv/bin/python benchmarks/api_latency.py [--database arbitra_bench] [--requests 300] [--concurrency 8]

Starts gunicorn (the production WSGI stack) on a loopback port against the benchmark database
seeded by `benchmarks/seed_dataset.py`, then for each endpoint: a warm-up, N sequential requests
over one keep-alive connection, and N requests from `--concurrency` clients at once. Prints
p50 / p95 / p99 in milliseconds, measured by the client (request sent → body read).

"Old way" runs, in the same session, the SQL the previous backend ran per request for the
homepage highlights and the potential-wallet list: an aggregate of `trade_fill` per wallet. It
is timed directly against PostgreSQL, without any HTTP or JSON cost, which only favours it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
BENCH_FINGERPRINT = "bench-user-fingerprint"
POTENTIAL_SORTS = ["trade_count", "realized_pnl", "smart_score", "last_analyzed_at", "wallet_id"]

OLD_NET = "CASE WHEN side = 'SELL' THEN usdc_size ELSE -usdc_size END"
OLD_HIGHLIGHTS = f"""
WITH per_wallet AS (
    SELECT wallet_id, count(*) AS trades, sum({OLD_NET}) AS net,
           sum(CASE WHEN traded_at >= now() - interval '24 hours' THEN {OLD_NET} ELSE 0 END) AS net_24h,
           max(traded_at) AS last_at
    FROM trade_fill GROUP BY wallet_id
)
SELECT (SELECT count(*) FROM per_wallet WHERE trades >= 100 AND net >= 0 AND last_at >= now() - interval '24 hours'),
       (SELECT json_agg(t) FROM (
            SELECT p.wallet_id, w.address, w.pseudonym, p.trades, p.net, p.net_24h FROM per_wallet p
            JOIN wallet w ON w.id = p.wallet_id ORDER BY p.net_24h DESC, p.wallet_id DESC LIMIT 5) t)
"""
OLD_POTENTIAL = f"""
WITH per_wallet AS (
    SELECT wallet_id, count(*) AS trades, sum({OLD_NET}) AS net, max(traded_at) AS last_at
    FROM trade_fill GROUP BY wallet_id HAVING count(*) >= 100
)
SELECT (SELECT count(*) FROM per_wallet WHERE net >= 0),
       (SELECT json_agg(t) FROM (
            SELECT p.wallet_id, w.address, w.pseudonym, p.trades, p.net, p.last_at FROM per_wallet p
            JOIN wallet w ON w.id = p.wallet_id WHERE p.net >= 0 ORDER BY p.net DESC, p.wallet_id DESC LIMIT 20) t)
"""


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        # Nearest-rank: the value below which `fraction` of the samples fall.
        index = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
        return ordered[index]

    return at(0.50), at(0.95), at(0.99)


class Client:
    """One keep-alive HTTP/1.1 connection, like a browser tab or an API consumer."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str, headers: dict) -> tuple[int, float]:
        started = time.perf_counter()
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self.connection.close()


def gunicorn_start(*, port: int, workers: int, threads: int, env: dict) -> subprocess.Popen:
    # The deployment's worker model (docker-compose.yml, manage.py up): threads within each worker,
    # so a request waiting on PostgreSQL does not hold a whole process.
    worker_class = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else ["--worker-class", "sync"]
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "arbitra.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), *worker_class, "--keep-alive", "30", "--log-level", "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, _ = Client(port).get("/healthz", {})
            if status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("gunicorn did not come up within 60 s")


def run_sequential(port: int, make_path: Callable[[], str], headers: dict, requests: int) -> tuple[list[float], int]:
    client = Client(port)
    samples, errors = [], 0
    for _ in range(requests):
        status, elapsed = client.get(make_path(), headers)
        samples.append(elapsed)
        errors += status != 200
    client.close()
    return samples, errors


def run_concurrent(port: int, make_path, headers: dict, requests: int, concurrency: int) -> tuple[list[float], int]:
    results: list[tuple[list[float], int]] = []
    lock = threading.Lock()
    start = threading.Barrier(concurrency)

    def worker(count: int) -> None:
        client = Client(port)
        samples, errors = [], 0
        start.wait()
        for _ in range(count):
            status, elapsed = client.get(make_path(), headers)
            samples.append(elapsed)
            errors += status != 200
        client.close()
        with lock:
            results.append((samples, errors))

    threads = [threading.Thread(target=worker, args=(max(1, requests // concurrency),)) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [s for samples, _ in results for s in samples], sum(errors for _, errors in results)


def run_sql(database_url: str, sql: str, runs: int, concurrency: int) -> list[float]:
    samples: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        with psycopg.connect(database_url) as connection:
            for _ in range(count):
                started = time.perf_counter()
                connection.execute(sql).fetchall()
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    samples.append(elapsed)

    threads = [threading.Thread(target=worker, args=(max(1, runs // concurrency),)) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--database", default="arbitra_bench")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker (1 = sync workers)")
    parser.add_argument("--requests", type=int, default=300, help="per endpoint and mode")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32, help="clients at once (the issue's figure: 32)")
    parser.add_argument("--old-runs", type=int, default=5, help="sequential runs of each old-way query")
    parser.add_argument("--skip-old", action="store_true")
    args = parser.parse_args()
    database_url = args.server_url.rsplit("/", 1)[0] + "/" + args.database

    with psycopg.connect(database_url) as connection:
        fills = connection.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'trade_fill'").fetchone()[0]
        wallets = connection.execute("SELECT count(*) FROM wallet").fetchone()[0]
        markets = connection.execute("SELECT count(*) FROM market").fetchone()[0]
        profile_ids = [row[0] for row in connection.execute(
            "SELECT wallet_id FROM wallet_snapshot TABLESAMPLE SYSTEM (1) LIMIT 500").fetchall()]
    print(f"dataset: {wallets:,} wallets, ~{fills:,} fills, {markets:,} markets ({database_url})")

    redis.Redis.from_url(args.redis_url).flushdb()  # the benchmark's own Redis database: cold caches
    env = {
        **os.environ, "DATABASE_URL": database_url, "REDIS_URL": args.redis_url, "DEBUG": "false",
        "LOG_LEVEL": "WARNING", "DB_CONN_MAX_AGE": "600",
        # The benchmark client is one IP hammering the API: lift the limits so we measure serving.
        "API_RATE_PER_SECOND": "1000000", "API_RATE_BURST": "1000000",
    }
    rng = random.Random(7)
    endpoints: list[tuple[str, Callable[[], str], dict]] = [
        ("/ops/highlights", lambda: "/api/v1/ops/highlights", {}),
        *[(f"/wallets/potential?sort_by={sort}", (lambda s=sort: f"/api/v1/wallets/potential?sort_by={s}"), {})
          for sort in POTENTIAL_SORTS],
        ("/wallets/{id}/profile", lambda: f"/api/v1/wallets/{rng.choice(profile_ids)}/profile", {}),
        ("/leaderboard", lambda: "/api/v1/leaderboard", {}),
        ("/watchlist/feed", lambda: "/api/v1/watchlist/feed", {"X-User-Fingerprint": BENCH_FINGERPRINT}),
        ("/markets", lambda: "/api/v1/markets", {}),
        ("/stats/overview", lambda: "/api/v1/stats/overview", {}),
        ("/wallets (unfiltered total)", lambda: "/api/v1/wallets?page=2", {}),
        ("/wallets?q=<pseudonym prefix>", lambda: f"/api/v1/wallets?q={rng.choice('abcdefgh')}", {}),
        ("/leaderboard?page=50&page_size=200", lambda: "/api/v1/leaderboard?page=50&page_size=200", {}),
    ]
    server = gunicorn_start(port=args.port, workers=args.workers, threads=args.threads, env=env)
    print(f"gunicorn: {args.workers} workers x {args.threads} threads; {args.concurrency} concurrent clients")
    rows = []
    try:
        for name, make_path, headers in endpoints:
            run_sequential(args.port, make_path, headers, args.warmup)
            sequential, errors_s = run_sequential(args.port, make_path, headers, args.requests)
            concurrent, errors_c = run_concurrent(args.port, make_path, headers, args.requests, args.concurrency)
            rows.append((name, "1 client", sequential, errors_s))
            rows.append((name, f"{args.concurrency} clients", concurrent, errors_c))
            print(f"  measured {name}", flush=True)
        sample = Client(args.port).get("/api/v1/ops/highlights", {})
        assert sample[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)

    old_rows = []
    if not args.skip_old:
        for name, sql in [("/ops/highlights", OLD_HIGHLIGHTS), ("/wallets/potential", OLD_POTENTIAL)]:
            with psycopg.connect(database_url) as connection:
                connection.execute(sql).fetchall()  # warm the cache like the new way's warm-up
            label = name + " (old way)"
            old_rows.append((label, "1 client", run_sql(database_url, sql, args.old_runs, 1), 0))
            concurrent = run_sql(database_url, sql, args.concurrency, args.concurrency)
            old_rows.append((label, f"{args.concurrency} clients", concurrent, 0))
            print(f"  measured {name} the old way", flush=True)

    print()
    print(f"{'endpoint':<46} {'mode':<11} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'errors':>6}")
    for name, mode, samples, errors in rows + old_rows:
        p50, p95, p99 = percentiles(samples)
        print(f"{name:<46} {mode:<11} {len(samples):>5} {p50:>9.1f} {p95:>9.1f} {p99:>9.1f} {errors:>6}")

    single = {name: percentiles(samples) for name, mode, samples, _ in rows if mode == "1 client"}
    print()
    worst = max(p95 for _, p95, _ in single.values())
    print(f"target p95 <= 25 ms single-client: worst endpoint p95 = {worst:.1f} ms -> {'MET' if worst <= 25 else 'MISSED'}")
    loaded = [percentiles(samples)[1] for _, mode, samples, _ in rows if mode != "1 client"]
    print(f"{args.concurrency} concurrent clients: worst endpoint p95 = {max(loaded):.1f} ms")
    if old_rows:
        old = {name.removesuffix(" (old way)"): percentiles(samples) for name, mode, samples, _ in old_rows if mode == "1 client"}
        new_potential = [values for name, values in single.items() if name.startswith("/wallets/potential")]
        comparisons = {
            "/ops/highlights": single["/ops/highlights"],
            "/wallets/potential": max(new_potential, key=lambda values: values[1]),  # the slowest sort
        }
        for name, (new_p50, new_p95, _) in comparisons.items():
            old_p50, old_p95, _ = old[name]
            ratio = old_p50 / new_p50
            print(
                f"{name}: old p50 {old_p50:.0f} ms / new p50 {new_p50:.1f} ms = {ratio:.0f}x "
                f"(p95: {old_p95 / new_p95:.0f}x) -> {'MET' if ratio >= 50 else 'MISSED'} (target >= 50x)"
            )
    print(json.dumps({"fills": fills, "wallets": wallets, "markets": markets}))


if __name__ == "__main__":
    main()
