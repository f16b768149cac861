"""Soak: Data API v2 ingest against the emulator's late rows, bursts and every fault kind, then
compare with its ground truth.

    .venv/bin/python benchmarks/ingest_soak.py --minutes 30 [--poll-seconds 10] [--scenario chaos_v2]

The emulator runs over real HTTP on a manual clock; this script plays beat: every poll interval
of virtual time it runs the live trades job (/v2/trades walks, overlap from /v2/status), and on
their own cadences the gap backfill, wallet history, activity, resolutions and market jobs — the
same code the Celery tasks run. `chaos_v2` switches on late-visible rows, identical fills in one
transaction, bursts, duplicates, malformed rows, and every transport fault (429 storms, 500/502/503,
503 with Retry-After, CDN 403 pages, truncated bodies, connection resets, slow answers). At the end
the clock moves on by the longest indexing delay (so every fill of the soak is visible), the live
job runs until a pass succeeds, the gap backfill until no gap is open, and `verify_upstream`'s
multiset check (feed v2) compares stored fills with the truth up to the soak's end: zero missing,
zero duplicated and zero unexpected means every published fill was stored exactly once.
Runs in a database of its own (`<DATABASE_URL db>_soak`), created and dropped here.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _database_urls(suffix: str) -> tuple[str, str, str]:
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    name = (parts.path.lstrip("/") or "postgres") + suffix
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, "")), admin, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--poll-seconds", type=int, default=10, help="virtual seconds between live polls")
    parser.add_argument("--scenario", default="chaos_v2", help="emulator scenarios (chaos_v2 = all of them)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    db_url, admin_url, db_name = _database_urls("_soak")
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
        admin.execute(f'CREATE DATABASE "{db_name}"')
    os.environ["DATABASE_URL"] = db_url
    # Retries on the emulator's 429 storms and 5xx answers, scaled to the soak's pace.
    os.environ.setdefault("HTTP_BACKOFF_BASE_SECONDS", "0.05")
    os.environ.setdefault("HTTP_BACKOFF_MAX_SECONDS", "1")
    os.environ.setdefault("CIRCUIT_BREAKER_RESET_SECONDS", "2")
    # Every retried 429/5xx would log a warning; the summary at the end carries the counts.
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from devtools.emulator import serve
    from ingest.changes import redis_client
    from ingest.models import IngestGap, IngestRun, TradeFill
    from ingest.registry import ingest_job_execute
    from ingest.verify import fills_completeness_check

    redis_client().delete(*redis_client().keys("arbitra:http:*") or ["-"])
    upstream = serve(seed=args.seed, scenario=args.scenario, clock="manual", history_seconds=0)
    settings.POLYMARKET_DATA_API_URL = upstream.url
    settings.POLYMARKET_GAMMA_API_URL = upstream.url
    statuses: collections.Counter = collections.Counter()
    started = time.perf_counter()
    try:
        ingest_job_execute(job_name="gamma.markets")
        polls = int(args.minutes * 60 / args.poll_seconds)
        for number in range(1, polls + 1):
            upstream.advance(args.poll_seconds)
            live = ingest_job_execute(job_name="data_api.trades")
            statuses[("trades", live.status)] += 1
            # What the live task's on-commit enqueue does under Celery: backfill a new gap at once.
            if live.stats_json.get("gaps") or number % 3 == 0:
                statuses[("gaps", ingest_job_execute(job_name="data_api.gaps").status)] += 1
            if number % 6 == 0:
                statuses[("wallet_history", ingest_job_execute(job_name="data_api.wallet_history").status)] += 1
            if number % 12 == 0:
                for job in ("activity", "resolutions"):
                    statuses[(job, ingest_job_execute(job_name=f"data_api.{job}").status)] += 1
            if number % 30 == 0:
                statuses[("markets", ingest_job_execute(job_name="gamma.markets").status)] += 1
                print(f"virtual minute {number * args.poll_seconds / 60:.0f}: {TradeFill.objects.count():,} fills stored, "
                      f"{IngestGap.objects.filter(status='open').count()} gaps open", flush=True)
        # The soak ends; chaos goes on. Every fill of the soak becomes visible once the indexer's
        # longest delay has passed: then poll until a pass succeeds, and backfill until no gap is open.
        soak_end = int(upstream.world.now())
        upstream.advance(upstream.config.max_visibility_delay + 1)
        for _ in range(20):
            live = ingest_job_execute(job_name="data_api.trades")
            statuses[("trades", live.status)] += 1
            if live.status == "succeeded":
                break
        for _ in range(50):
            if not IngestGap.objects.filter(status="open").exists():
                break
            statuses[("gaps", ingest_job_execute(job_name="data_api.gaps").status)] += 1
        report = fills_completeness_check(upstream_url=upstream.url, until=soak_end, feed="v2")
        import requests

        state = requests.get(f"{upstream.url}/_control/state", timeout=10).json()
    finally:
        upstream.shutdown()
    runs = IngestRun.objects.count()
    gaps = collections.Counter(IngestGap.objects.values_list("status", flat=True))
    lags = [run.stats_json.get("serving_lag_seconds") for run in IngestRun.objects.filter(job_name="ingest.data_api.trades")]
    measured = [lag for lag in lags if lag is not None]
    resumed = IngestRun.objects.filter(job_name="ingest.data_api.trades", stats_json__resumed_walk=True).count()
    print(f"simulated {args.minutes:g} minutes of '{args.scenario}' trading in {time.perf_counter() - started:.0f}s real time;"
          f" {runs} runs; gaps recorded {sum(gaps.values())}: {dict(gaps)}")
    print("run statuses:", ", ".join(f"{job}/{status}={n}" for (job, status), n in sorted(statuses.items())))
    print(f"live passes: serving lag measured on {len(measured)} of {len(lags)}, max {max(measured, default=0):g}s; "
          f"{resumed} resumed an interrupted walk; loss events (exhausted gaps): {gaps.get('exhausted', 0)}")
    print(f"upstream published: {state['valid_fills']:,} valid fills, {state['duplicate_rows']:,} duplicate rows, "
          f"{state['malformed_rows']:,} malformed rows, {state['requests']:,} requests served")
    print("verify_upstream:", json.dumps(report.as_dict()))
    if not args.keep:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
    sys.exit(0 if report.complete else 1)


if __name__ == "__main__":
    main()
