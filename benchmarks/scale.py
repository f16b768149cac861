"""Arbitra at Polymarket's scale: the same measurements on fill tables holding ~0, 10M and 50M fills.

    .venv/bin/python benchmarks/scale.py [--sizes 0,10000000,50000000] [--ingest-fills 100000]
        [--changed 1000] [--requests 200] [--keep] [--reuse]

For each size, in one run and in this order: a database of its own (`<DATABASE_URL db>_scale_<size>`)
seeded by benchmarks/seed_dataset.py at size / 10M of its scale (wallets, markets, news and the
serving tables grow with it; fills over the last 90 days, a power law over wallets and markets;
size 0 means the seed's minimum, 10,000 fills, so that the API has wallets to read), then:

1. partition maintenance — `partitions_maintain` on the seeded tables (what the hourly beat task
   does: check every partitioned table's months, create the ones ahead, move parked rows);
2. ingest — benchmarks/ingest_throughput.py --database: v2 pages of 1,000 rows (the live job's
   page size) through the live job's cursor walk and page writer, changed-wallet push included,
   into this database's fill table, beside a raw COPY of the same rows in the same run;
3. drain — the edge baselines' ended days sealed (as the seal job keeps them); K wallets get one
   new fill each and are pushed; one in-process compute worker drains them (marts, ledger marks,
   scores, anomalies): changed wallets/s of a second round on the same K wallets (the seed
   computes no marts, so the first round is each wallet's first computation; it also warms the
   page cache as a running host has it), beside the first round's and a round of fresh wallets';
4. API — benchmarks/api_latency.py --database through gunicorn: p95 of each main endpoint, one
   client (and 32 at once, printed by that script).

Then the targets of issue 16 at the largest size against the smallest: ingest fills/s and the
API's single-client p95 within 20 %, drain ≥ 1,000 changed wallets/s.

Disk: before seeding a size, the free space of PostgreSQL's data directory must hold the size
at the bytes a fill took in the previous size (its database's size / its fills; 1,000 bytes
before the first) plus a fifth; otherwise the run stops, saying so. Databases are dropped after
their size is measured unless --keep; --reuse measures a kept database again without seeding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED_FILLS_AT_SCALE_1 = 10_000_000
SEED_MIN_FILLS = 10_000
BYTES_PER_FILL_FIRST_GUESS = 1_000


def _url_with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _base_url() -> str:
    return os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_name(size: int) -> str:
    base = urlsplit(_base_url()).path.lstrip("/") or "postgres"
    return f"{base}_scale_{size}"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _server_url() -> str:
    return _url_with_database(_base_url(), "postgres")


def free_bytes() -> tuple[int, str]:
    """Free space where PostgreSQL keeps its data (the server runs on this machine)."""
    with psycopg.connect(_server_url(), autocommit=True) as connection:
        directory = connection.execute("SHOW data_directory").fetchone()[0]
    try:
        return shutil.disk_usage(directory).free, directory
    except OSError:  # not readable from here: the root file system is the best guess
        return shutil.disk_usage("/").free, "/"


def database_bytes_and_fills(name: str) -> tuple[int, int]:
    with psycopg.connect(_url_with_database(_base_url(), name), autocommit=True) as connection:
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        fills = connection.execute(
            "SELECT coalesce(sum(c.reltuples), 0)::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'trade_fill'::regclass"
        ).fetchone()[0]
    return size, fills


def database_exists(name: str) -> bool:
    with psycopg.connect(_server_url(), autocommit=True) as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def database_drop(name: str) -> None:
    with psycopg.connect(_server_url(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(size: int, name: str) -> float:
    from benchmarks.seed_dataset import database_create, database_migrate, dataset_seed

    started = time.perf_counter()
    url = _url_with_database(_base_url(), name)
    database_create(server_url=_server_url(), name=name, recreate=True)
    database_migrate(database_url=url, redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    dataset_seed(database_url=url, scale=max(size, SEED_MIN_FILLS) / SEED_FILLS_AT_SCALE_1)
    return time.perf_counter() - started


def _run(command: list[str], *, name: str) -> str:
    """Run a measuring step in its own process against database `name`; its output, echoed."""
    env = {**os.environ, "DATABASE_URL": _url_with_database(_base_url(), name)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"{' '.join(command[1:3])} failed on {name} (exit {result.returncode})")
    return result.stdout


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"no line matching {pattern!r} in the output above")
    return float(match.group(1).replace(",", ""))


def measure_in_process(args) -> None:
    """The steps that run inside Django (maintenance, drain) in this database; prints one JSON line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from benchmarks.marts_drain import change_and_drain, edge_days_sealed, wallets_pick
    from ingest.changes import CHANGED_WALLETS_KEY, redis_client
    from ingest.partitions import partitioned_tables, partitions_list, partitions_maintain

    call_command("migrate", verbosity=0)  # a kept database (--reuse) may predate a migration
    started = time.perf_counter()
    partitions_maintain()
    maintain_seconds = time.perf_counter() - started
    partitions = sum(len(partitions_list(spec)) for spec in partitioned_tables())

    print(edge_days_sealed(), flush=True)
    redis_client().delete(CHANGED_WALLETS_KEY)
    # The seed fills the serving tables but computes no wallet's marts: a wallet's first drain writes
    # every row it has. A running system's changed wallet has been computed before, so the timed
    # round changes the wallets the first round computed; a round of fresh wallets is reported too.
    wallet_ids = wallets_pick(changed=args.changed)
    first = change_and_drain(changed=args.changed, batch_size=args.batch_size, lanes=args.lanes, profile=False,
                             wallet_ids=wallet_ids)
    seconds, computed = change_and_drain(changed=args.changed, batch_size=args.batch_size, lanes=args.lanes,
                                         profile=False, wallet_ids=wallet_ids)
    fresh = change_and_drain(changed=args.changed, batch_size=args.batch_size, lanes=args.lanes, profile=False)
    print(f"drain: {computed / seconds:,.0f} changed wallets/s computed before; first computation after the seed "
          f"{first[1] / first[0]:,.0f}/s; fresh wallets {fresh[1] / fresh[0]:,.0f}/s", flush=True)
    print(json.dumps({"maintain_seconds": maintain_seconds, "partitions": partitions,
                      "drain_seconds": seconds, "drained": computed,
                      "drain_first_round": first[1] / first[0] if first[0] else 0.0,
                      "drain_fresh": fresh[1] / fresh[0] if fresh[0] else 0.0}))


def measure_size(args, size: int) -> dict:
    name = database_name(size)
    figures: dict = {"size": size}
    if args.reuse and database_exists(name):
        _log(f"{name}: reusing the kept database")
    else:
        _log(f"{name}: seeding {max(size, SEED_MIN_FILLS):,} fills")
        figures["seed_seconds"] = seed(size, name)
    figures["bytes"], figures["fills"] = database_bytes_and_fills(name)
    _log(f"{name}: {figures['fills']:,} fills, database {figures['bytes'] / 1e9:.1f} GB")

    step = _run([sys.executable, __file__, "--in-process", "--changed", str(args.changed),
                 "--batch-size", str(args.batch_size), "--lanes", str(args.lanes)], name=name)
    figures.update(json.loads(step.strip().splitlines()[-1]))

    # A kept database already holds the fills of the default seed: another one publishes new fills.
    emulator_seed = str(int(time.time()) % 1_000_000) if args.reuse else "99"
    ingest = _run([sys.executable, "benchmarks/ingest_throughput.py", "--database", name,
                   "--fills", str(args.ingest_fills), "--seed", emulator_seed], name=name)
    figures["ingest_rate"] = _number(r"ingest path : .*?= ([\d,]+) fills/s", ingest)
    figures["copy_rate"] = _number(r"raw COPY    : .*?= ([\d,]+) fills/s", ingest)
    figures["ingest_ratio"] = _number(r"ingest path runs at ([\d.]+)×", ingest)

    api = _run([sys.executable, "benchmarks/api_latency.py", "--server-url", _server_url(), "--database", name,
                "--requests", str(args.requests), "--skip-old"], name=name)
    single = {}
    for line in api.splitlines():
        match = re.match(r"^(/\S.*?)\s+1 client\s+\d+\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+\d+\s*$", line)
        if match:
            single[match.group(1).strip()] = float(match.group(2))
    if not single:
        raise SystemExit("no single-client p95 in the API benchmark's output")
    figures["api_p95"] = single
    return figures


def report(results: list[dict]) -> None:
    print()
    print(f"{'fills':>12} {'GB':>6} {'B/fill':>7} {'maintain s':>10} {'parts':>6} {'ingest f/s':>11} "
          f"{'COPY f/s':>9} {'×COPY':>6} {'drain w/s':>10} {'API p95 worst':>14} {'API p95 median':>15}")
    for r in results:
        p95 = sorted(r["api_p95"].values())
        print(f"{r['fills']:>12,} {r['bytes'] / 1e9:>6.1f} {r['bytes'] / max(r['fills'], 1):>7,.0f} "
              f"{r['maintain_seconds']:>10.2f} {r['partitions']:>6} {r['ingest_rate']:>11,.0f} {r['copy_rate']:>9,.0f} "
              f"{r['ingest_ratio']:>6.2f} {r['drained'] / r['drain_seconds']:>10,.0f} {p95[-1]:>12.1f} ms "
              f"{p95[len(p95) // 2]:>12.1f} ms")
    if len(results) < 2:
        return
    small, large = results[0], results[-1]
    print()
    ingest = large["ingest_rate"] / small["ingest_rate"]
    normalised = large["ingest_ratio"] / small["ingest_ratio"]
    print(f"ingest at {large['fills']:,} fills: {ingest:.2f}× its rate at {small['fills']:,} "
          f"({normalised:.2f}× measured against raw COPY in the same run) -> "
          f"{'MET' if ingest >= 0.8 else 'MISSED'} (target: within 20 %)")
    worst = max(large["api_p95"][name] / small["api_p95"][name] for name in small["api_p95"] if name in large["api_p95"])
    slowest = max(large["api_p95"], key=lambda name: large["api_p95"][name] / small["api_p95"].get(name, 1e9))
    print(f"API p95 at {large['fills']:,} fills: worst endpoint {worst:.2f}× its p95 at {small['fills']:,} ({slowest}) "
          f"-> {'MET' if worst <= 1.2 else 'MISSED'} (target: within 20 %)")
    rate = large["drained"] / large["drain_seconds"]
    print(f"drain at {large['fills']:,} fills: {rate:,.0f} changed wallets/s (1 worker) -> "
          f"{'MET' if rate >= 1000 else 'MISSED'} (target ≥ 1,000)")
    print(f"partition maintenance: {small['maintain_seconds']:.2f} s at {small['fills']:,}, "
          f"{large['maintain_seconds']:.2f} s at {large['fills']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,10000000,50000000", help="comma-separated fill counts")
    parser.add_argument("--ingest-fills", type=int, default=100_000, help="fills ingested per size (v2 pages of 1,000)")
    parser.add_argument("--changed", type=int, default=1000, help="K: wallets changed before each timed drain")
    parser.add_argument("--batch-size", type=int, default=500, help="drain batch size (COMPUTE_BATCH_SIZE)")
    parser.add_argument("--lanes", type=int, default=2, help="drain batches in flight (COMPUTE_DRAIN_LANES)")
    parser.add_argument("--requests", type=int, default=200, help="API requests per endpoint and mode")
    parser.add_argument("--keep", action="store_true", help="keep each size's database")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again without seeding it")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        measure_in_process(args)
        return

    sizes = sorted(int(size) for size in args.sizes.split(","))
    bytes_per_fill = BYTES_PER_FILL_FIRST_GUESS
    results = []
    for size in sizes:
        name = database_name(size)
        if not (args.reuse and database_exists(name)):
            free, directory = free_bytes()
            needed = int(max(size, SEED_MIN_FILLS) * bytes_per_fill * 1.2)
            if needed > free:
                print(f"stopping before {size:,} fills: they need about {needed / 1e9:.0f} GB "
                      f"({bytes_per_fill:,.0f} bytes a fill and a fifth more), {directory} has {free / 1e9:.0f} GB free")
                break
        figures = measure_size(args, size)
        results.append(figures)
        if figures["fills"] >= 1_000_000:
            bytes_per_fill = figures["bytes"] / figures["fills"]
        if not args.keep:
            database_drop(name)
    report(results)


if __name__ == "__main__":
    main()
