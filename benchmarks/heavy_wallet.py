"""Benchmark of one heavy wallet's change (issue 16 item 5): what does one new fill cost a wallet
that holds 10k, 100k or 1M fills?

    .venv/bin/python benchmarks/heavy_wallet.py [--sizes 10000,100000,1000000] [--changes 20]
        [--budget-seconds 180] [--database arbitra_bench_heavy] [--keep | --reuse]

One scratch database holds one wallet per size (ids 1, 2, 3 …), its fills spread over the last
90 days in 200 markets (every fifth resolved) and 400 off-chain events linked to those markets,
generated inside PostgreSQL by seed_dataset's bulk load (indexes dropped for the load and rebuilt
after it, month partitions created first). Every wallet is computed once (timed: the full
recompute at that size), then gets --changes new fills one at a time, each after the one before
(a buy or a sell of a token it holds, traded one second later than the last), and each change
goes through `wallet_batch_compute` — the drain's own path: marts, then the batch consumers the
apps registered (the ledger re-mark, scoring). Each part is timed per change and the median over
the changes is printed per size; changes stop early when --budget-seconds is spent at a size (a
change that re-reads a million fills takes a minute). The target is ≤ 20 ms a change, flat from
10k to 1M: the ratio t(largest) / t(smallest) is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.marts_drain import database_drop  # noqa: E402
from benchmarks.seed_dataset import (  # noqa: E402
    DAYS,
    _log,
    _timed,
    database_create,
    database_migrate,
    fill_load_begin,
    fill_load_end,
    offchain_events_seed,
)

MARKETS = 200
EVENTS = 400


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def heavy_wallets_seed(*, database_url: str, sizes: list[int]) -> None:
    """Markets, tokens, one wallet per size with that many fills, and linked off-chain events."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '512MB'")
        connection.execute("SELECT setseed(0.16)")
        _timed(
            connection,
            "markets",
            """
            INSERT INTO market (id, condition_id, gamma_id, question, slug, description, category, tags, event_slug,
                event_title, outcomes, outcome_prices, volume, liquidity, active, closed, archived, uma_resolution_status,
                winner_index, is_void, resolved_at, metadata_status, created_at, updated_at)
            SELECT m, '0x' || lpad(to_hex(m), 64, '0'), m::text, 'Heavy market ' || m, '', '', 'bench', '[]', '', '',
                '["Yes", "No"]', '[]', 0, 100000, m %% 5 <> 0, m %% 5 = 0, false, '', CASE WHEN m %% 5 = 0 THEN m %% 2 END,
                false, CASE WHEN m %% 5 = 0 THEN now() - interval '2 days' END, 'fetched', now(), now()
            FROM generate_series(1, %(markets)s) AS m
            """,
            {"markets": MARKETS},
        )
        _timed(
            connection,
            "outcome tokens",
            """
            INSERT INTO outcome_token (token_id, market_id, outcome_index, outcome, latest_price)
            SELECT (m.id * 10 + i)::text, m.id, i, CASE i WHEN 0 THEN 'Yes' ELSE 'No' END,
                   CASE WHEN m.winner_index IS NULL THEN round((0.2 + random() * 0.6)::numeric, 3) END
            FROM market m CROSS JOIN generate_series(0, 1) AS i
            """,
        )
        _timed(
            connection,
            "wallets",
            """
            INSERT INTO wallet (id, address, pseudonym, name, profile_image, tracked, created_at, updated_at)
            SELECT w, '0x' || lpad(to_hex(w), 40, '0'), '', '', '', false, now(), now()
            FROM generate_series(1, %(wallets)s) AS w
            """,
            {"wallets": len(sizes)},
        )
        connection.execute("SELECT setval(pg_get_serial_sequence('market', 'id'), (SELECT max(id) FROM market))")
        connection.execute("SELECT setval(pg_get_serial_sequence('wallet', 'id'), (SELECT max(id) FROM wallet))")
        indexes = fill_load_begin(connection)
        for wallet_id, fills in enumerate(sizes, start=1):
            # A power law over markets (a few markets hold most of the wallet's trading), buys
            # slightly more often than sells, all traded (and ingested) before the benchmark starts.
            # make_interval, not interval '%(days)s days': with server-side binding that literal is
            # '$4 days' (the parameter's number), which PostgreSQL reads as 4 days.
            _timed(
                connection,
                f"wallet {wallet_id}: {fills:,} fills",
                """
                INSERT INTO trade_fill (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id, side,
                    size, price, usdc_size, traded_at, outcome, outcome_index, ingested_at)
                SELECT md5(%(wallet)s || ':' || i) || md5(i || ':' || %(wallet)s), 'bench',
                    '0x' || md5(%(wallet)s || '/' || i) || md5(i || '/' || %(wallet)s),
                    (g.market * 10 + g.outcome)::text, g.market, %(wallet)s,
                    CASE WHEN random() < 0.55 THEN 'BUY' ELSE 'SELL' END, g.size, g.price, round(g.size * g.price, 6),
                    g.traded_at, '', g.outcome, g.traded_at + interval '5 seconds'
                FROM generate_series(1, %(fills)s) AS i,
                LATERAL (SELECT 1 + floor(%(markets)s * power(random(), 2))::bigint AS market,
                    (random() < 0.5)::int AS outcome,
                    round((1 + random() * 500)::numeric, 4) AS size,
                    round((0.02 + random() * 0.96)::numeric, 4) AS price,
                    now() - interval '1 hour' - random() * make_interval(days => %(days)s) AS traded_at,
                    i AS seq) AS g
                """,
                {"wallet": wallet_id, "fills": fills, "markets": MARKETS, "days": DAYS},
            )
        fill_load_end(connection, indexes)
        offchain_events_seed(connection, {"events": EVENTS, "days": DAYS, "markets": MARKETS})
        _timed(connection, "vacuum analyze", "VACUUM ANALYZE")


class PartTimer:
    """Wall time of the named parts of one `wallet_batch_compute` call, by wrapping the functions
    the batch calls (module attributes and the registered consumers) for the benchmark's run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, label: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        return timed

    @contextmanager
    def installed(self):
        from marts import selectors, services

        patched = [
            (selectors, "fills_for_wallets", "fills read"),
            (services, "wallet_mart_compute", "marts compute"),
            (services, "_dirty_bucket_starts", "marts write"),
            (services, "_marts_write", "marts write"),
            (services, "_wallets_last_trade_sync", "wallet last trade"),
        ]
        originals = [(module, name, getattr(module, name)) for module, name, _label in patched]
        consumers = list(services._batch_consumers)
        try:
            for (module, name, label), (_m, _n, original) in zip(patched, originals, strict=True):
                setattr(module, name, self.wrap(label, original))
            services._batch_consumers[:] = [
                self.wrap(f"consumer {consumer.__module__}.{consumer.__name__}", consumer) for consumer in consumers
            ]
            yield self
        finally:
            for module, name, original in originals:
                setattr(module, name, original)
            services._batch_consumers[:] = consumers


def wallet_change_timed(*, wallet_id: int) -> dict[str, float]:
    """Compute one wallet through the drain's batch; the seconds of each part and the total."""
    from marts.services import wallet_batch_compute

    timer = PartTimer()
    with timer.installed():
        started = time.perf_counter()
        result = wallet_batch_compute(wallet_ids=[wallet_id])
        total = time.perf_counter() - started
    if result.computed != [wallet_id]:
        raise RuntimeError(f"wallet {wallet_id} was not computed: {result}")
    parts = dict(timer.seconds)
    parts["other (lock, market/token/event reads)"] = total - sum(parts.values())
    parts["total"] = total
    return parts


def fill_append(*, wallet_id: int, number: int) -> None:
    """One new fill one second after the wallet's newest: a buy, or every third change a sell, of
    the token of its newest fill — in order, the common case of a live wallet."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO trade_fill (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id, side,
                size, price, usdc_size, traded_at, outcome, outcome_index, ingested_at)
            SELECT md5(r.salt || f.id) || md5(f.id || r.salt), 'bench', '0x' || md5(r.salt || 'tx') || md5('tx' || r.salt),
                f.token_id, f.market_id, f.wallet_id, CASE WHEN %(number)s %% 3 = 2 THEN 'SELL' ELSE 'BUY' END,
                10, 0.5, 5, greatest(f.traded_at + interval '1 second', now() - interval '10 minutes'), '',
                f.outcome_index, clock_timestamp()
            FROM (SELECT * FROM trade_fill WHERE wallet_id = %(wallet)s ORDER BY traded_at DESC, idempotency_key DESC
                  LIMIT 1) f
            CROSS JOIN (SELECT gen_random_uuid()::text AS salt) r
            """,
            {"wallet": wallet_id, "number": number},
        )


def flatness_print(medians: dict[int, dict[str, float]]) -> None:
    """The change's time at the largest size against the smallest: flat is the target."""
    if len(medians) < 2:
        return
    small, large = min(medians), max(medians)
    ratio = medians[large]["total"] / medians[small]["total"]
    print(f"ratio t({large:,} fills) / t({small:,} fills) = {ratio:.2f} per change (target: flat, ≤ 20 ms each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated fills per wallet")
    parser.add_argument("--changes", type=int, default=20, help="new fills per size, one change at a time")
    parser.add_argument("--budget-seconds", type=float, default=180.0,
                        help="stop a size's changes (after at least 3) once this much time is spent on them")
    parser.add_argument("--database", default=os.environ.get("HEAVY_BENCH_DB", "arbitra_bench_heavy"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true", help="start from a kept database (no seeding)")
    args = parser.parse_args()
    sizes = [int(part) for part in args.sizes.split(",")]

    base_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    database_url = _with_database(base_url, args.database)
    server_url = _with_database(base_url, "postgres")
    if not args.reuse:
        database_create(server_url=server_url, name=args.database, recreate=True)
        database_migrate(database_url=database_url, redis_url=redis_url)
        heavy_wallets_seed(database_url=database_url, sizes=sizes)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()
    # What a compute worker has imported before its first task (Celery loads every app's tasks).
    from django.db import connection

    import marts.tasks  # noqa: F401
    import scoring.tasks  # noqa: F401

    medians: dict[int, dict[str, float]] = {}
    full: dict[int, float] = {}
    try:
        for wallet_id, fills in enumerate(sizes, start=1):
            # The first computation of the wallet: every fill read and computed, every row written.
            first = wallet_change_timed(wallet_id=wallet_id)
            full[fills] = first["total"]
            _log(f"{fills:>9,} fills: first (full) computation {first['total'] * 1000:,.0f} ms")
            runs: list[dict[str, float]] = []
            spent = 0.0
            for number in range(args.changes):
                if len(runs) >= 3 and spent >= args.budget_seconds:
                    break
                fill_append(wallet_id=wallet_id, number=number)
                runs.append(wallet_change_timed(wallet_id=wallet_id))
                spent += runs[-1]["total"]
            labels = sorted({label for run in runs for label in run}, key=lambda label: (label == "total", label))
            medians[fills] = {label: statistics.median(run.get(label, 0.0) for run in runs) for label in labels}
            print(f"{fills:>9,} fills: one new fill, median of {len(runs)} changes "
                  f"{medians[fills]['total'] * 1000:,.1f} ms (full computation {full[fills] * 1000:,.0f} ms)", flush=True)
            for label, seconds in medians[fills].items():
                if label != "total":
                    print(f"{'':>16}{label:<48} {seconds * 1000:10.1f} ms", flush=True)
        flatness_print(medians)
    finally:
        connection.close()
        if not args.keep:
            database_drop(base_url, args.database)


if __name__ == "__main__":
    main()
