"""Benchmark of the compute drain: is its cost proportional to changed wallets, not to all wallets?

For each W in --wallets: create a scratch database, seed W wallets with ~10 fills each (SQL
generate_series, server-side, with the fill table's indexes and foreign keys built after the load),
compute every wallet once the old way (every wallet from every fill — timed: the old approach; it
also populates the marts the drain then updates), then give K wallets one new fill each, push them
to the queue and time draining it with one in-process worker — once with the page cache as the
load left it, then --rounds times (fresh K wallets each) after reading the database into the OS
page cache (pg_prewarm), the state of a running host, alternating between the W so that drift in
the machine's speed weighs on both alike; the warm ratio uses the medians. Each warm drain runs
with every --lanes value (COMPUTE_DRAIN_LANES: batches in flight at once in the one worker; 1 =
one batch after another). Prints changed wallets/s, t(W_max)/t(W_min) per lane count and state,
and the old approach's time for comparison. Each scratch database is dropped at the end (unless
--keep; --reuse starts from a kept one and skips seeding and the old approach, computing the marts
and ledgers of any wallet a stopped run left without them). Only a fully populated database is
measured: every wallet has its marts (and with --ledger its ledger), or the run stops.

With --ledger the same run also measures the wallet ledger: every fill also lands as its
`/v2/activity` TRADE row (~10 ledger rows per wallet) plus one `/v2/positions` row per held token,
every wallet's ledger is computed once (timed; on a kept database, the wallets without one), and
after each trades drain K other wallets get one new activity row each and `marts.ledgers_refresh`
(one worker, --ledger-lanes batches in flight) recomputes and reconciles them — changed wallets/s
and t(W_max)/t(W_min) printed beside the trades-only drain's. --profile profiles the ledger
refresh too (one lane). Scratch databases are named $MARTS_BENCH_DB_PREFIX_<W>.

    .venv/bin/python benchmarks/marts_drain.py --wallets 10000,1000000 [--changed 1000] [--lanes 2,1] [--profile]
        [--ledger [--ledger-lanes 2]]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Databases of our own, one per W: `arbitra_bench` is the API benchmark's dataset. Another
# prefix keeps one run's databases apart from another's on a shared server.
BENCH_DB_PREFIX = os.environ.get("MARTS_BENCH_DB_PREFIX", "arbitra_bench_marts")
BENCH_REDIS_DB = 11


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _admin_connect(base_url: str):
    import psycopg

    return psycopg.connect(_with_path(base_url, "/postgres"), autocommit=True)


def database_name(wallets: int) -> str:
    return f"{BENCH_DB_PREFIX}_{wallets}"


def database_exists(base_url: str, name: str) -> bool:
    with _admin_connect(base_url) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def database_recreate(base_url: str, name: str) -> None:
    with _admin_connect(base_url) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")


def database_drop(base_url: str, name: str) -> None:
    with _admin_connect(base_url) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_use(name: str) -> None:
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


SEED_SQL = [
    # Reproducible data: random() follows this seed within the session.
    "SELECT setseed(0.42)",
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
    SELECT (m.id * 10 + i)::text, m.id, i, CASE i WHEN 0 THEN 'Yes' ELSE 'No' END,
           CASE WHEN m.winner_index IS NULL THEN round((0.2 + random() * 0.6)::numeric, 3) END
    FROM market m CROSS JOIN generate_series(0, 1) AS i
    """,
    """
    INSERT INTO wallet (address, pseudonym, name, profile_image, tracked, created_at, updated_at)
    SELECT '0x' || lpad(to_hex(g), 40, '0'), '', '', '', false, now(), now() FROM generate_series(1, %(wallets)s) AS g
    """,
    # ~10 fills per wallet (8–12), mostly in 2–4 markets, the first three buys, over the last 60 days.
    # Wallet ids are 1..W (fresh identity), so the series needs no join with the wallet table.
    """
    INSERT INTO trade_fill (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id, side, size,
        price, usdc_size, traded_at, outcome, outcome_index, ingested_at)
    SELECT md5(w || ':' || i) || md5(i || ':' || w), 'bench', '0x' || md5(w || '/' || i) || md5(i || '/' || w),
        (m * 10 + i %% 2)::text, m, w, CASE WHEN i <= 3 OR random() < 0.6 THEN 'BUY' ELSE 'SELL' END,
        s.size, s.price, s.size * s.price, now() - (random() * interval '60 days'), '', i %% 2, now() - interval '1 hour'
    FROM generate_series(1, %(wallets)s) AS w
    CROSS JOIN LATERAL generate_series(1, 8 + (w %% 5)::int) AS i
    CROSS JOIN LATERAL (SELECT 1 + ((w * 7 + (i %% 3) * 13) %% %(markets)s) AS m) AS mk
    CROSS JOIN LATERAL (SELECT round((1 + random() * 500)::numeric, 2) AS size,
                               round((0.05 + random() * 0.9)::numeric, 2) AS price) AS s
    """,
]


# The ledger's inputs (--ledger): each fill as the /v2/activity TRADE row a wallet walk lands
# (landing order = the wallet's own time order), and one /v2/positions row per (wallet, token).
LEDGER_SEED_SQL = [
    """
    INSERT INTO ingest_landing (source, stream, idempotency_key, payload, upstream_time, received_at)
    SELECT 'data_api', 'activity', f.idempotency_key, json_build_object(
            'proxy_wallet', w.address, 'side', f.side, 'token_id', f.token_id, 'condition_id', m.condition_id,
            'size', f.size, 'price', f.price, 'timestamp', extract(epoch FROM f.traded_at)::bigint, 'title', '',
            'slug', '', 'icon', '', 'event_slug', '', 'outcome', '', 'outcome_index', f.outcome_index, 'name', '',
            'pseudonym', '', 'bio', '', 'profile_image', '', 'profile_image_optimized', '',
            'transaction_hash', f.transaction_hash, 'type', 'TRADE', 'usdc_size', f.usdc_size),
        f.traded_at, now() - interval '1 hour'
    FROM trade_fill f JOIN wallet w ON w.id = f.wallet_id JOIN market m ON m.id = f.market_id
    ORDER BY f.wallet_id, f.traded_at, f.idempotency_key
    """,
    """
    INSERT INTO ingest_landing (source, stream, idempotency_key, payload, upstream_time, received_at)
    SELECT 'data_api', 'positions', md5(p.address || p.token_id) || md5(p.token_id || p.address), json_build_object(
            'proxy_wallet', p.address, 'token_id', p.token_id, 'condition_id', p.condition_id,
            'current_size', p.held, 'avg_price', p.avg_price, 'entry_cost_usdc', p.held * p.avg_price,
            'entry_fees_usdc', 0, 'total_cost_usdc', p.held * p.avg_price, 'current_price', 0.5,
            'current_value', p.held * 0.5, 'total_size', p.bought, 'realized_pnl', 0, 'unrealized_pnl', 0,
            'total_pnl', 0, 'percent_pnl', 0, 'percent_realized_pnl', 0,
            'status', CASE WHEN p.held > 0 THEN 'OPEN' ELSE 'CLOSED' END, 'redeemable', false, 'mergeable', false,
            'negative_risk', false, 'archived', false, 'outcome_index', p.outcome_index,
            'last_event_at', extract(epoch FROM p.last_at)::bigint),
        p.last_at, now() - interval '1 hour'
    FROM (SELECT w.address, f.token_id, m.condition_id, min(f.outcome_index) AS outcome_index,
                 greatest(sum(CASE WHEN f.side = 'BUY' THEN f.size ELSE -f.size END), 0) AS held,
                 sum(f.size) FILTER (WHERE f.side = 'BUY') AS bought,
                 coalesce(round(avg(f.price) FILTER (WHERE f.side = 'BUY'), 6), 0) AS avg_price,
                 max(f.traded_at) AS last_at
          FROM trade_fill f JOIN wallet w ON w.id = f.wallet_id JOIN market m ON m.id = f.market_id
          GROUP BY w.address, f.token_id, m.condition_id) AS p
    ORDER BY p.address, p.token_id
    """,
]


def _table_ddl(cursor, table: str) -> tuple[list[str], list[str]]:
    """(drop, create) statements for a table's secondary indexes and its non-primary-key
    constraints, read from the catalog so they match whatever the migrations built."""
    cursor.execute(
        """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname
        """,
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
        ORDER BY i.relname
        """,
        [table],
    )
    indexes = cursor.fetchall()
    drop = [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for name, _ in constraints]
    drop += [f'DROP INDEX "{name}"' for name, _ in indexes]
    # A partitioned table's index reads back as `CREATE INDEX … ON ONLY parent`: created so, it
    # stays an invalid shell on the parent and no partition gets one (every wallet read of the
    # drain would scan the partitions). Without ONLY it is built on every partition.
    create = [definition.replace(" ON ONLY ", " ON ", 1) for _, definition in indexes]
    create += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints]
    return drop, create


def seed(*, wallets: int, ledger: bool) -> float:
    """Load markets, tokens, wallets and fills (and with `ledger` their activity and positions
    rows). Indexes and foreign keys of the loaded tables are dropped for the load and rebuilt
    after it: one sort per index instead of ~10M random inserts, and no 20M-entry deferred
    foreign-key trigger queue."""
    from django.db import connection, transaction

    started = time.monotonic()
    markets = max(200, wallets // 100)
    tables = ["trade_fill", "ingest_landing"] if ledger else ["trade_fill"]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        rebuilt = []
        for table in tables:
            drop, create = _table_ddl(cursor, table)
            for statement in drop:
                cursor.execute(statement)
            rebuilt += create
        for statement in SEED_SQL + (LEDGER_SEED_SQL if ledger else []):
            step = time.monotonic()
            cursor.execute(statement, {"markets": markets, "wallets": wallets})
            print(f"  seed {time.monotonic() - step:7.1f}s  {StatementTimer.label(statement)[:70]}", flush=True)
        for statement in rebuilt:
            step = time.monotonic()
            cursor.execute(statement)
            print(f"  seed {time.monotonic() - step:7.1f}s  {StatementTimer.label(statement)[:70]}", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def full_recompute(*, batch_size: int, missing_only: bool = False) -> tuple[float, int]:
    """The old approach: every wallet recomputed from every fill. Also the initial population
    (with `missing_only`: the wallets a kept database has no marts for)."""
    from django.db import connection

    from marts.services import wallet_batch_compute

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM wallet w WHERE NOT %s OR NOT EXISTS "
                       "(SELECT 1 FROM wallet_compute_state s WHERE s.wallet_id = w.id) ORDER BY id", [missing_only])
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return 0.0, 0
    started = time.monotonic()
    for start in range(0, len(ids), batch_size):
        wallet_batch_compute(wallet_ids=ids[start : start + batch_size])
    seconds = time.monotonic() - started
    with connection.cursor() as cursor:
        # Statistics of freshly filled marts, as autovacuum would have them in production.
        cursor.execute("VACUUM ANALYZE")
    return seconds, len(ids)


def population_counts() -> tuple[int, int, int, int]:
    """(wallets, wallets with marts, wallets with a ledger, ledger entries)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM wallet), (SELECT count(*) FROM wallet_compute_state), "
                       "(SELECT count(*) FROM wallet_ledger_summary), (SELECT count(*) FROM wallet_ledger_entry)")
        return cursor.fetchone()


def population_require(*, wallets: int, ledger: bool) -> None:
    """Measure only a fully populated database: every wallet has its marts (and with `ledger`
    its ledger) — a drain over a half-computed one reads and writes less than a real one."""
    held, computed, ledgers, entries = population_counts()
    complete = held == wallets and computed == held and (not ledger or ledgers == held)
    print(f"W={wallets:>9,}: {'fully populated' if complete else 'PARTLY populated'}: {held:,} wallets, "
          f"{computed:,} with marts, {ledgers:,} with a ledger ({entries:,} ledger entries)", flush=True)
    if not complete:
        raise SystemExit(f"W={wallets:,}: refusing to measure a partly populated database "
                         "(--reuse without --no-ledger-fill completes it)")


def ledger_full_compute(*, batch_size: int, lanes: int, missing_only: bool = False) -> tuple[float, int]:
    """Every wallet's ledger computed once from its landed rows (the initial population; with
    `missing_only` the wallets a kept database has no ledger for), and the ledger's cursors
    moved past everything landed so far."""
    from django.db import connection

    from marts.ledger_services import CURSOR_STREAMS, wallet_ledgers_compute_batched
    from marts.models import LedgerCursor

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM wallet w WHERE NOT %s OR NOT EXISTS "
                       "(SELECT 1 FROM wallet_ledger_summary s WHERE s.wallet_id = w.id) ORDER BY id", [missing_only])
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT coalesce(max(id), 0) FROM ingest_landing")
        newest = cursor.fetchone()[0]
    if not ids:
        return 0.0, 0
    started = time.monotonic()
    wallet_ledgers_compute_batched(wallet_ids=ids, batch_size=batch_size, lanes=lanes)
    seconds = time.monotonic() - started
    for stream in CURSOR_STREAMS:
        LedgerCursor.objects.update_or_create(stream=stream, defaults={"landing_id": newest})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return seconds, len(ids)


def ledger_change_and_refresh(*, changed: int, lanes: int, profile: bool = False) -> tuple[float, int]:
    """K random wallets that have a ledger get one new /v2/activity TRADE row each (a copy of
    their newest, one minute ago, under a fresh key); time the ledger refresh that recomputes them."""
    from django.db import connection

    from marts.ledger_services import LEDGER_BATCH_SIZE, ledgers_refresh

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO ingest_landing (source, stream, idempotency_key, payload, upstream_time, received_at)
            SELECT 'data_api', 'activity', md5(r.salt || l.id) || md5(l.id || r.salt),
                   (l.payload::jsonb || jsonb_build_object('timestamp', extract(epoch FROM now())::bigint - 60,
                                                         'transaction_hash', '0x' || md5(r.salt || l.id)
                                                                             || md5(l.id || r.salt)))::json,
                   now() - interval '1 minute', now()
            FROM (SELECT DISTINCT ON (payload->>'proxy_wallet') id, payload FROM ingest_landing
                  WHERE source = 'data_api' AND stream = 'activity'
                    AND payload->>'proxy_wallet' IN (
                        SELECT w.address FROM wallet w JOIN wallet_ledger_summary s ON s.wallet_id = w.id
                        ORDER BY random() LIMIT %s)
                  ORDER BY payload->>'proxy_wallet', id DESC) AS l
            CROSS JOIN (SELECT gen_random_uuid()::text AS salt) AS r
            """,
            [changed],
        )
    rows_per_stream = max(changed * 2, 20_000)
    if not profile:
        started = time.monotonic()
        result = ledgers_refresh(rows_per_stream=rows_per_stream, lanes=lanes)
        return time.monotonic() - started, result.wallets
    # One lane: the profiler and the statement timer see the calling thread only.
    (result, seconds), report = _profiled(lambda: ledgers_refresh(rows_per_stream=rows_per_stream, lanes=1))
    batches = -(-result.wallets // LEDGER_BATCH_SIZE)
    print(report(batches=batches, unit=f"{batches} batches of <= {LEDGER_BATCH_SIZE} wallets"), flush=True)
    return seconds, result.wallets


def ledger_refresh_reported(args, *, wallets: int, state: str) -> float:
    lanes = 1 if args.profile else args.ledger_lanes
    seconds, refreshed = ledger_change_and_refresh(changed=args.changed, lanes=lanes, profile=args.profile)
    print(f"W={wallets:>9,}: ledger refreshed K={refreshed:,} changed wallets in {seconds:.2f}s = "
          f"{refreshed / seconds:,.0f} changed wallets/s (1 worker, {lanes_label(lanes)}, marts.ledgers_refresh; "
          f"{state})", flush=True)
    return seconds


class StatementTimer:
    """Wall time per SQL statement (Django's execute wrapper) and per COPY, keyed by a short label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    @staticmethod
    def label(sql: str) -> str:
        return " ".join(sql.split())[:90]

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        self.calls[label] += 1

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add(self.label(sql), time.perf_counter() - started)

    def report(self, *, batches: int) -> str:
        lines = [f"  {'ms/batch':>9} {'calls':>6}  statement"]
        for label, seconds in sorted(self.seconds.items(), key=lambda item: -item[1]):
            lines.append(f"  {seconds * 1000 / max(batches, 1):>9.1f} {self.calls[label]:>6}  {label}")
        return "\n".join(lines)


def _copy_timed(timer: StatementTimer):
    """Wrap psycopg's Cursor.copy so COPY statements (not seen by Django's wrapper) are timed too."""
    import psycopg

    original = psycopg.Cursor.copy

    class Timed:
        def __init__(self, cursor, statement, *args, **kwargs):
            self.inner = original(cursor, statement, *args, **kwargs)
            self.statement = str(statement)

        def __enter__(self):
            self.started = time.perf_counter()
            return self.inner.__enter__()

        def __exit__(self, *exc):
            try:
                return self.inner.__exit__(*exc)
            finally:
                timer.add(StatementTimer.label(self.statement), time.perf_counter() - self.started)

    psycopg.Cursor.copy = lambda cursor, statement, *args, **kwargs: Timed(cursor, statement, *args, **kwargs)
    return lambda: setattr(psycopg.Cursor, "copy", original)


def relations_prewarm() -> float | None:
    """Read every relation of the database (tables and indexes) into the OS page cache, as a
    running host whose database fits in memory holds it; None where pg_prewarm is unavailable.

    Both W get the same treatment, so the warm ratio compares work, not what a bulk load
    happened to leave in the page cache (measured here: half of some marts indexes).
    """
    from django.db import DatabaseError, connection

    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            cursor.execute(
                """
                SELECT sum(pg_prewarm(c.oid, 'read')) FROM pg_class c
                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i') AND c.relpersistence = 'p'
                """
            )
    except DatabaseError as exc:
        print(f"  (no warm measurement: pg_prewarm unavailable: {str(exc).strip().splitlines()[0]})", flush=True)
        return None
    return time.monotonic() - started


def edge_days_sealed() -> str:
    """Seal the edge baselines' ended days, as a running system's seal job has (scoring.baselines):
    without them every drain batch reads its markets' whole baseline window from the fills."""
    from scoring.baselines import edge_days_seal

    result = edge_days_seal(time_budget_seconds=24 * 3600)
    return (f"edge baselines sealed: {result['days_sealed']} days, {result['rows']:,} market days, "
            f"{result['due_recomputed']:,} due days recomputed in {result['seconds']:.1f}s "
            f"(the seal job's daily work in steady state is one day of these)")


def wallets_pick(*, changed: int) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM wallet ORDER BY random() LIMIT %s", [changed])
        return [row[0] for row in cursor.fetchall()]


def change_and_drain(
    *, changed: int, batch_size: int, lanes: int, profile: bool, wallet_ids: list[int] | None = None
) -> tuple[float, int]:
    """One new fill for each of `wallet_ids` (or of `changed` random wallets), pushed and drained:
    (seconds, wallets computed)."""
    from django.db import connection

    # What a compute worker has imported before its first task (Celery loads every app's tasks).
    import marts.tasks  # noqa: F401
    import scoring.tasks  # noqa: F401
    from ingest.changes import changed_wallets_push
    from marts.services import changed_wallets_drain

    ids = wallet_ids if wallet_ids is not None else wallets_pick(changed=changed)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO trade_fill (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id, side,
                size, price, usdc_size, traded_at, outcome, outcome_index, ingested_at)
            SELECT md5(r.salt || f.id) || md5(f.id || r.salt), 'bench', '0x' || md5(r.salt || 'tx' || f.id) || md5(f.id || 'tx'),
                f.token_id, f.market_id, f.wallet_id, 'BUY', 10, 0.5, 5, now() - interval '1 minute', '', f.outcome_index, now()
            FROM (SELECT DISTINCT ON (wallet_id) * FROM trade_fill WHERE wallet_id = ANY(%s) ORDER BY wallet_id, id) f
            -- A fresh salt per run, so a reused database takes another round of new fills.
            CROSS JOIN (SELECT gen_random_uuid()::text AS salt) r
            """,
            [ids],
        )
    changed_wallets_push(wallet_ids=ids)
    if not profile:
        started = time.monotonic()
        result = changed_wallets_drain(batch_size=batch_size, time_budget_seconds=3600, lanes=lanes)
        return time.monotonic() - started, result.computed

    # One lane: the profiler and the statement timer see the calling thread only.
    (result, seconds), report = _profiled(
        lambda: changed_wallets_drain(batch_size=batch_size, time_budget_seconds=3600, lanes=1))
    print(report(batches=result.batches, unit=f"{result.batches} batches"), flush=True)
    return seconds, result.computed


def _profiled(run):
    """((run's result, seconds), report): run under cProfile and the per-statement timer;
    report(batches=, unit=) gives the profile and the SQL time per batch."""
    from django.db import connection

    timer = StatementTimer()
    restore = _copy_timed(timer)
    profiler = cProfile.Profile()
    try:
        with connection.execute_wrapper(timer):
            started = time.monotonic()
            profiler.enable()
            result = run()
            profiler.disable()
            seconds = time.monotonic() - started
    finally:
        restore()

    def report(*, batches: int, unit: str) -> str:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(45)
        return (f"{out.getvalue()}\nSQL per batch ({unit}; the profiler slows Python, not PostgreSQL):\n"
                f"{timer.report(batches=batches)}")

    return (result, seconds), report


# The "lane count" the ledger refresh's timings are kept under (it runs in one thread).
LEDGER = 0


def lanes_label(lanes: int) -> str:
    if lanes == LEDGER:
        return "ledger refresh"
    return f"{lanes} lane" if lanes == 1 else f"{lanes} lanes"


def drain_reported(args, *, wallets: int, lanes: int, state: str) -> float:
    """Change K wallets, drain them, print the line; the drain's seconds."""
    seconds, computed = change_and_drain(
        changed=args.changed, batch_size=args.batch_size, lanes=lanes, profile=args.profile
    )
    print(f"W={wallets:>9,}: drained K={computed:,} changed wallets in {seconds:.2f}s = "
          f"{computed / seconds:,.0f} changed wallets/s (1 worker, {lanes_label(lanes)}; {state})",
          flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", default="10000,1000000", help="comma-separated W values")
    parser.add_argument("--changed", type=int, default=1000, help="K: wallets changed before the timed drain")
    parser.add_argument("--batch-size", type=int, default=500, help="drain batch size (COMPUTE_BATCH_SIZE)")
    parser.add_argument("--full-batch-size", type=int, default=2000, help="batch size of the old-approach recompute")
    parser.add_argument("--rounds", type=int, default=5,
                        help="warm drains per W, each of K fresh wallets; the ratio uses their median")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--reuse", action="store_true",
                        help="start from a kept database (no seeding, no old-approach run)")
    parser.add_argument("--lanes", default="2,1",
                        help="comma-separated drain lane counts to measure (COMPUTE_DRAIN_LANES); the first "
                             "also drains the as-loaded round")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the drain and time each SQL statement (one lane)")
    parser.add_argument("--ledger", action="store_true",
                        help="also seed ~10 activity rows per wallet and time the wallet ledger's refresh")
    parser.add_argument("--no-ledger-fill", action="store_true",
                        help="with --reuse: leave the wallets of a kept database that have no ledger without one "
                             "(the run then stops before measuring: only a fully populated database is measured)")
    parser.add_argument("--ledger-lanes", type=int, default=2,
                        help="ledger batches in flight at once in the one worker (COMPUTE_DRAIN_LANES)")
    args = parser.parse_args()
    sizes = [int(part) for part in args.wallets.split(",")]
    lane_counts = [1] if args.profile else [int(part) for part in args.lanes.split(",")]

    base_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    os.environ["DATABASE_URL"] = _with_path(base_url, f"/{database_name(sizes[0])}")
    os.environ["REDIS_URL"] = _with_path(redis_url, f"/{BENCH_REDIS_DB}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from ingest.changes import redis_client

    # Each W is drained once with the page cache as seeding and the old approach left it (with the
    # first --lanes value), then --rounds times warm (every relation read into the OS page cache,
    # as a running host whose database fits in memory keeps it) with each --lanes value,
    # alternating between the W. K fresh wallets change before each drain.
    timings: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    created: list[str] = []
    try:
        full_seconds: dict[int, float] = {}
        for wallets in sizes:
            name = database_name(wallets)
            reuse = args.reuse and database_exists(base_url, name)
            if not reuse:
                database_recreate(base_url, name)
                created.append(name)
            database_use(name)
            if not reuse:
                # A kept database was migrated when it was made; data migrations written since
                # (re-keying every fill) could take longer than the benchmark itself.
                call_command("migrate", verbosity=0)
            redis_client().flushdb()
            if not reuse:
                seeded = seed(wallets=wallets, ledger=args.ledger)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM trade_fill")
                    fills = cursor.fetchone()[0]
                    cursor.execute("SELECT count(*) FROM ingest_landing WHERE stream IN ('activity', 'positions')")
                    account_rows = cursor.fetchone()[0]
                print(f"W={wallets:>9,}: seeded {fills:,} fills (and {account_rows:,} activity + positions rows) "
                      f"in {seeded:.1f}s", flush=True)
                full_seconds[wallets], full_count = full_recompute(batch_size=args.full_batch_size)
                print(f"W={wallets:>9,}: old approach (recompute all {full_count:,} wallets from all fills, "
                      f"one batch after another): {full_seconds[wallets]:.1f}s "
                      f"({full_count / full_seconds[wallets]:,.0f} wallets/s)", flush=True)
            else:
                held, computed, ledgers, entries = population_counts()
                print(f"W={wallets:>9,}: reusing {name} (no seeding, no old-approach run): {held:,} wallets, "
                      f"{computed:,} with marts, {ledgers:,} with a ledger ({entries:,} ledger entries)", flush=True)
                if computed < held:
                    # A kept database stopped while computing its marts: finished here, not measured half-made.
                    missing_seconds, missing = full_recompute(batch_size=args.full_batch_size, missing_only=True)
                    print(f"W={wallets:>9,}: marts computed for the {missing:,} wallets without them: "
                          f"{missing_seconds:.1f}s", flush=True)
            if args.ledger and not (reuse and args.no_ledger_fill):
                # A kept database may lack ledgers (kept from a trades-only run, or stopped while
                # computing them): those are computed here.
                ledger_seconds, ledger_count = ledger_full_compute(
                    batch_size=args.batch_size, lanes=args.ledger_lanes, missing_only=reuse)
                if ledger_count:
                    print(f"W={wallets:>9,}: every wallet's ledger computed once ({ledger_count:,} wallets"
                          f"{' without one' if reuse else ''}, {lanes_label(args.ledger_lanes)}): {ledger_seconds:.1f}s "
                          f"({ledger_count / ledger_seconds:,.0f} wallets/s)", flush=True)
            print(f"W={wallets:>9,}: {edge_days_sealed()}", flush=True)
            population_require(wallets=wallets, ledger=args.ledger)
            timings[("as loaded", lane_counts[0])][wallets] = drain_reported(
                args, wallets=wallets, lanes=lane_counts[0], state="page cache as loaded"
            )
            if args.ledger:
                timings[("as loaded", LEDGER)][wallets] = ledger_refresh_reported(
                    args, wallets=wallets, state="page cache as loaded")

        # Warm rounds alternate between the databases, so a machine that speeds up or slows down
        # during the run (shared hosts do, by a third within this benchmark's half hour) weighs
        # on every W alike instead of on whichever W was measured last; the lane counts take
        # turns going first for the same reason.
        warm: dict[tuple[int, int], list[float]] = defaultdict(list)
        prewarm_available = True
        for round_number in range(1, args.rounds + 1):
            for wallets in sizes:
                database_use(database_name(wallets))
                prewarm_seconds = relations_prewarm()
                prewarm_available = prewarm_seconds is not None
                if not prewarm_available:
                    break
                order = lane_counts if round_number % 2 else list(reversed(lane_counts))
                state = f"round {round_number}, page cache warm (read in {prewarm_seconds:.0f}s)"
                for lanes in order:
                    warm[(wallets, lanes)].append(drain_reported(args, wallets=wallets, lanes=lanes, state=state))
                if args.ledger:
                    warm[(wallets, LEDGER)].append(ledger_refresh_reported(args, wallets=wallets, state=state))
            if not prewarm_available:
                break
        for (wallets, lanes), drains in sorted(warm.items(), key=lambda item: (item[0][1], item[0][0])):
            median = statistics.median(drains)
            timings[("warm", lanes)][wallets] = median
            print(f"W={wallets:>9,}, {lanes_label(lanes)}: median of {len(drains)} warm drains "
                  f"{median:.2f}s = {args.changed / median:,.0f} changed wallets/s", flush=True)
        for wallets, seconds in full_seconds.items():
            for (state, lanes), by_size in timings.items():
                if wallets in by_size and lanes != LEDGER:
                    print(f"W={wallets:>9,}: old approach / drain = {seconds / by_size[wallets]:,.1f}× "
                          f"(page cache {state}, {lanes_label(lanes)})", flush=True)
        for (state, lanes), by_size in timings.items():
            if len(by_size) > 1:
                small, large = min(by_size), max(by_size)
                print(f"ratio t(W={large:,}) / t(W={small:,}) = {by_size[large] / by_size[small]:.2f} "
                      f"(page cache {state}, {lanes_label(lanes)}; target ≤ 1.5)")
    finally:
        connection.close()
        if not args.keep:
            for name in created:
                database_drop(base_url, name)


if __name__ == "__main__":
    main()
