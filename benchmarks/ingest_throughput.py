"""Ingest throughput on Data API v2 pages: N fills through decode → parse → number → key → landing +
facts upsert → changed-wallet push, beside a raw COPY of the same rows in the same run.

    .venv/bin/python benchmarks/ingest_throughput.py --fills 1000000 [--page-size 1000] [--workers 2]

Rows come from the emulator's generator, rendered as /v2/trades serves them (the 19 snake_case
keys, the bare feed's sentinels) inside the v2 envelope. Before the clock starts, each page is
written once to a scratch file as the body the emulator would serve (1,000 rows: the live job's
page size); the timed part is what the live job does with a body it fetched, through the live
job's own cursor walk and preparer: the body goes to the page helper process (as
INGEST_PAGE_HELPER_PROCESS has it; --no-helper: the walk's reader thread), which decodes it, reads
the envelope and runs trade_page_v2_prepare (parse, number identical fills, key, build the stage
rows and the landing body) while the page before is written, then trade_page_v2_ingest (land,
upsert, and push the changed wallets to Redis after the commit). With --workers, each process
runs trade_page_v2_ingest on its share of the pages, all in one thread. Workers stream their
pages from the file, so memory stays flat.
The same bodies are then decoded, parsed and written with a plain COPY into a copy of the fill
table: the floor any ingest path could reach on this machine. Runs in a database of its own
(`<DATABASE_URL db>_bench_ingest`), created and dropped here; uses REDIS_URL.

Targets (issue 11): ≥ 0.6× raw COPY and peak RSS ≤ 300 MB per process on the 2-core machine.
The helper's CPU counts in the ingest path's CPU, and its peak RSS is shown beside the walk's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _bench_database_url(existing: str | None = None) -> tuple[str, str, str]:
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    name = existing or (parts.path.lstrip("/") or "postgres") + "_bench_ingest"
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, "")), admin, name


def _cpu_parts(connection, helpers: list[int]) -> tuple[float, float, float] | None:
    """CPU seconds so far of this process, of the page helper processes and of the PostgreSQL
    server (from /proc, when the server runs on this machine): on a shared machine the work a
    path costs, whatever else competes for the cores. The server's is every backend's, the page
    writers' own connections and the WAL writer and checkpointer included (_server_cpu_seconds).
    None when its counters cannot be read."""
    try:
        server = _server_cpu_seconds(connection)
    except OSError:
        return None
    return time.process_time(), _helper_cpu_seconds(helpers), server


def _cpu_spent(started: tuple[float, float, float] | None, connection, helpers: list[int]):
    now = _cpu_parts(connection, helpers) if started is not None else None
    return None if now is None else tuple(after - before for after, before in zip(now, started, strict=True))


def _proc_stat(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first; OSError when gone or not ours)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _process_cpu_seconds(pid: int) -> float:
    """A process's user + system CPU seconds so far, from /proc (OSError when it is not ours to read)."""
    fields = _proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu_seconds(connection) -> float:
    """CPU seconds of the whole PostgreSQL server so far: the postmaster's children that still
    run, plus those that ended (the kernel adds a reaped child's time to its parent's), so the
    backends of connections opened and closed during a measurement count too. Anything else the
    server does meanwhile counts as well: run the benchmark alone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    postmaster = int(_proc_stat(backend)[1])
    fields = _proc_stat(postmaster)
    ticks = sum(int(value) for value in fields[11:15])  # its own time and its reaped children's
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                child = _proc_stat(entry.name)
            except OSError:
                continue  # ended meanwhile: its time is in the postmaster's now
            if int(child[1]) == postmaster:
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _helper_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of the page helper processes so far."""
    return sum(_process_cpu_seconds(pid) for pid in pids)


def _peak_rss_mb_of(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=1000,
                        help="rows per v2 page and ingest transaction (the live job's size; v2 serves at most 1,000)")
    parser.add_argument("--workers", type=int, default=1,
                        help="ingest processes sharing the pages, as ingest worker slots would (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--no-helper", action="store_true",
                        help="prepare pages on the walk's reader thread (INGEST_PAGE_HELPER_PROCESS=false)")
    parser.add_argument("--page-writers", type=int,
                        help="pages written at once by the walk (INGEST_PAGE_WRITERS, default as the settings have it)")
    parser.add_argument("--seed", type=int, default=99,
                        help="the emulator's seed: another seed publishes other fills, so a kept database "
                             "(--database, scale.py --reuse) takes a new round instead of re-reading stored ones")
    parser.add_argument("--database", help="ingest into this existing database instead (benchmarks/scale.py seeds "
                        "them): its rows stay, only the raw COPY's scratch table is made and dropped")
    args = parser.parse_args()

    bench_url, admin_url, bench_name = _bench_database_url(args.database)
    import psycopg

    if not args.database:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_name}"')
            admin.execute(f'CREATE DATABASE "{bench_name}"')
    os.environ["DATABASE_URL"] = bench_url
    if args.no_helper:
        os.environ["INGEST_PAGE_HELPER_PROCESS"] = "false"
    if args.page_writers is not None:
        os.environ["INGEST_PAGE_WRITERS"] = str(args.page_writers)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from django.conf import settings

    from devtools.emulator import EmulatorConfig, World
    from devtools.emulator.v2 import render_trade
    from devtools.emulator.world import VALID
    from ingest.changes import CHANGED_WALLETS_KEY, redis_client
    from ingest.frame import cursor_advance, cursor_read
    from ingest.helper_process import helper_pids, in_helper_process
    from ingest.http import json_body_decode
    from ingest.sources.data_api.parsing import OccurrenceCounter, parse_page
    from ingest.sources.data_api.walk import WalkState, cursor_walk
    from ingest.sources.data_api.writing import trade_body_prepare, trade_body_preparer, trade_page_v2_ingest

    # Enough virtual history at a raised rate to publish the requested number of fills.
    config = EmulatorConfig(seed=args.seed, scenario="steady,multi_fill", clock="manual", history_seconds=0,
                            rate_multiplier=40, wallet_count=20_000, market_count=400)
    world = World(config)
    started = time.perf_counter()
    while world.row_count() < args.fills:
        world.advance(600)
    generate_seconds = time.perf_counter() - started
    row_ids = [row_id for row_id, kind in world.truth_rows() if kind == VALID][: args.fills]
    print(f"generated {len(row_ids):,} fills in {generate_seconds:.1f}s (emulator, not timed below); "
          f"RSS so far {_peak_rss_mb():.0f} MB", flush=True)

    scratch = tempfile.TemporaryDirectory(prefix="arbitra-ingest-bench-")  # removed when the process exits
    bodies = Path(scratch.name) / "pages.jsonl"  # one page body per line
    with bodies.open("wb") as out:
        for start in range(0, len(row_ids), args.page_size):
            page = [render_trade(world, row_id, real_context=False) for row_id in row_ids[start : start + args.page_size]]
            more = start + args.page_size < len(row_ids)
            body = {"data": page, "pagination": {"limit": args.page_size, "offset": start, "has_more": more,
                                                 "next_cursor": "bench" if more else None}}
            out.write(json.dumps(body, separators=(",", ":")).encode() + b"\n")
        first_second = int(render_trade(world, row_ids[0], real_context=False)["timestamp"])
    del world, row_ids
    print(f"rendered {bodies.stat().st_size / 1e6:,.0f} MB of page bodies (not timed below)", flush=True)
    # The generator's clock starts in the past: the month partitions of its fills exist before
    # the clock starts, as partitions_maintain keeps them on a running system (months ahead).
    from ingest.partitions import partitions_maintain

    partitions_maintain(now=datetime.fromtimestamp(first_second, tz=UTC))

    def pages(share: int = 0, shares: int = 1):
        """Rows of pages number share, share + shares, … — a worker's share of the feed. Each call
        opens the file afresh: forked workers must not share one file offset."""
        with bodies.open("rb") as stream:
            for number, body in enumerate(stream):
                if number % shares == share:
                    # As the live job reads a fetched body: decode, then the v2 envelope.
                    rows, _pagination = parse_page(json_body_decode(body))
                    yield rows

    redis_client().delete(CHANGED_WALLETS_KEY)

    # --- the ingest path -------------------------------------------------------------------------
    def ingest_share(worker: int) -> int:
        # A counter per page: the pages of a share are not consecutive, as they are in one walk.
        return sum(
            trade_page_v2_ingest(run=None, rows=rows, counter=OccurrenceCounter(), queue_changes=True).inserted
            for rows in pages(worker, args.workers)
        )

    class BodiesServed:
        """The rendered bodies served in order, as the upstream serves a walk its pages (the
        cursor each page names leads to the next line): the live job's own walk reads them."""

        last_trace_id = ""

        def __init__(self) -> None:
            self._stream = bodies.open("rb")

        def get_json(self, path: str, *, params: dict | None = None, decode=json_body_decode) -> object:
            return decode(self._stream.readline())

    def ingest_walk() -> int:
        # One process: the live trades job's cursor walk itself (reading the next page while
        # pages are written), with the page writer the live job uses, saving the walk's state
        # after every page into a cursor row as the live job does.
        walk_cursor = cursor_read(source="data_api", stream="bench_walk")
        outcome = cursor_walk(
            client=BodiesServed(), path="/v2/trades", state=WalkState(filters={}),
            write_page=lambda rows, counter: trade_page_v2_ingest(run=None, rows=rows, counter=counter),
            prepare_body=trade_body_preparer(),
            save_state=lambda state: cursor_advance(cursor=walk_cursor, state={"walk": state.to_json()}),
            max_pages=10**9, first_limit=args.page_size, page_writers=settings.INGEST_PAGE_WRITERS,
        )
        if not outcome.ended:
            sys.exit(f"the walk stopped early: {outcome.stop_reason} {outcome.error}")
        return outcome.result.inserted

    if args.workers == 1:
        # The helper starts, and imports what preparing a page needs, before the clock: a running
        # worker's helper has done both long before.
        with bodies.open("rb") as stream:
            in_helper_process(trade_body_prepare, stream.readline(), None)
    started = time.perf_counter()
    helpers = helper_pids() if args.workers == 1 else []
    cpu_started = _cpu_parts(connection, helpers) if args.workers == 1 else None
    if args.workers == 1:
        inserted = ingest_walk()
    else:
        # Forked workers each open their own connection, like separate Celery worker processes.
        connection.close()
        children = []
        for worker in range(args.workers):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                try:
                    count = ingest_share(worker)
                    os.write(write_end, str(count).encode())
                    connection.close()
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
                os._exit(0)
            os.close(write_end)
            children.append((pid, read_end))
        inserted = 0
        for pid, read_end in children:
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"ingest worker {pid} failed (its traceback is above)")
            inserted += int(os.read(read_end, 64))
            os.close(read_end)
    ingest_seconds = time.perf_counter() - started
    ingest_cpu = _cpu_spent(cpu_started, connection, helpers)
    if args.workers == 1 and helper_pids() != helpers:
        print("(the page helper was replaced during the walk: its CPU is not all counted)")
    helper_peak_mb = max((_peak_rss_mb_of(pid) for pid in helper_pids()), default=0.0) if args.workers == 1 else 0.0
    ingest_rate = inserted / ingest_seconds

    # --- baseline: raw COPY of the same typed rows into a copy of the fill table ------------------
    ingest_peak_mb = _peak_rss_mb() if args.workers == 1 else (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS trade_fill_copy")
        cursor.execute("CREATE TABLE trade_fill_copy (LIKE trade_fill INCLUDING DEFAULTS INCLUDING INDEXES)")
        cursor.execute("SELECT condition_id, id FROM market")
        market_ids = dict(cursor.fetchall())
        cursor.execute("SELECT address, id FROM wallet")
        wallet_ids = dict(cursor.fetchall())
    from ingest.sources.data_api.parsing import parse_trade_v2

    copy_rows = 0
    started = time.perf_counter()
    cpu_started = _cpu_parts(connection, [])
    raw = connection.connection
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY trade_fill_copy (id, idempotency_key, source, transaction_hash, token_id, market_id, wallet_id, side, "
            "size, price, usdc_size, traded_at, outcome, outcome_index, occurrence, ingested_at) FROM STDIN"
        ) as copy:
            for rows in pages():
                counter = OccurrenceCounter()
                for row in rows:
                    fill = counter.number(parse_trade_v2(row))
                    market_id, wallet_id = market_ids[fill.condition_id], wallet_ids[fill.wallet]
                    copy_rows += 1
                    copy.write_row((copy_rows, fill.idempotency_key, "data_api", fill.transaction_hash, fill.asset,
                                    market_id, wallet_id, fill.side, fill.size, fill.price, fill.usdc_size,
                                    fill.traded_at, fill.outcome or "", fill.outcome_index, fill.occurrence,
                                    fill.traded_at))
        raw.commit()
    copy_seconds = time.perf_counter() - started
    copy_cpu = _cpu_spent(cpu_started, connection, [])
    copy_rate = copy_rows / copy_seconds

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trade_fill")
        stored_count = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(sum(record_count), 0), count(*), coalesce(sum(octet_length(body)), 0) "
                       "FROM ingest_landing_page")
        landed, landed_pages, landed_bytes = cursor.fetchone()
    queued = redis_client().zcard(CHANGED_WALLETS_KEY)
    ratio = ingest_rate / copy_rate

    preparer = "in the page helper process" if helpers else "on the walk's reader thread"
    preparer += f", {settings.INGEST_PAGE_WRITERS} page{'s' if settings.INGEST_PAGE_WRITERS > 1 else ''} written at once"
    print(f"ingest path : {inserted:,} fills in {ingest_seconds:.1f}s = {ingest_rate:,.0f} fills/s "
          f"({args.workers} process{'es' if args.workers > 1 else ''}, page {args.page_size}, "
          f"{preparer if args.workers == 1 else 'each page prepared in its worker'}; "
          f"{stored_count:,} fills and {landed:,} landed records stored, {queued:,} changed wallets queued)")
    print(f"landing     : {landed_pages:,} landed pages, {landed_bytes / 1e6:,.1f} MB compressed "
          f"({landed_bytes / max(landed, 1):,.0f} bytes a record)")
    print(f"raw COPY    : {copy_rows:,} fills in {copy_seconds:.1f}s = {copy_rate:,.0f} fills/s "
          "(same bodies, decode + envelope + parse + number + COPY, 1 process)")
    print(f"ratio       : ingest path runs at {ratio:.2f}× raw COPY speed")
    if ingest_cpu and copy_cpu:
        def per_page(seconds: float, rows: int) -> str:
            return f"{1000 * seconds / rows * args.page_size:.1f}"

        ingest_total, copy_total = sum(ingest_cpu), sum(copy_cpu)
        print(f"CPU         : ingest path {per_page(ingest_total, inserted)} ms a page (process "
              f"{per_page(ingest_cpu[0], inserted)}, helper {per_page(ingest_cpu[1], inserted)}, PostgreSQL server "
              f"{per_page(ingest_cpu[2], inserted)}), raw COPY {per_page(copy_total, copy_rows)} ms a page (process "
              f"{per_page(copy_cpu[0], copy_rows)}, server {per_page(copy_cpu[2], copy_rows)}); by CPU the ingest "
              f"path runs at {(copy_total / copy_rows) / (ingest_total / inserted):.2f}× raw COPY's speed "
              "(wall time also counts waiting for a core: on a loaded machine the two part ways)")
    print(f"peak RSS    : {ingest_peak_mb:.0f} MB per ingest process (includes what it inherited from the "
          "benchmark's in-memory generator, which a real worker does not hold)"
          + (f"; its page helper process {helper_peak_mb:.0f} MB" if helpers else ""))
    peak_mb = max(ingest_peak_mb, helper_peak_mb)
    print(f"targets     : ≥ 0.6× raw COPY → {'met' if ratio >= 0.6 else 'NOT met'}; "
          f"peak RSS ≤ 300 MB → {'met' if peak_mb <= 300 else 'NOT met'}")
    if args.database:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE trade_fill_copy")
    connection.close()
    if not args.keep and not args.database:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_name}"')


if __name__ == "__main__":
    main()
