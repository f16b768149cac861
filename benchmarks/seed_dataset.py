"""Seed a benchmark database: wallets, markets, fills, off-chain events, and the serving tables.

    .venv/bin/python benchmarks/seed_dataset.py [--scale 1.0] [--database arbitra_bench] [--recreate]

At scale 1.0: 1,000,000 wallets, 10,000,000 fills, 50,000 markets (100,000 outcome tokens),
100,000 off-chain events. Fills follow a power law over wallets (a few thousand wallets with
hundreds of fills, most with a handful) and over markets, spread over the last 90 days.

Everything is generated inside PostgreSQL with generate_series (no row crosses the network), into
a separate database that is created and migrated first. Indexes of the fill table are dropped for
the bulk insert and rebuilt after it, as a bulk load should.

The serving tables (wallet_snapshot, wallet_compute_state, feed_event, anomaly, ai_report) are
filled by set-based SQL from the fills. Their counts and volumes are exact aggregates of the fills;
PnL, scores and labels are synthetic (a deterministic function of the wallet and its volume)
because this dataset exists to measure the serving path, not to check the scoring formulas.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DAYS = 90
BENCH_FINGERPRINT = "bench-user-fingerprint"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def database_create(*, server_url: str, name: str, recreate: bool) -> None:
    with psycopg.connect(server_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and recreate:
            _log(f"dropping database {name}")
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            _log(f"creating database {name}")
            connection.execute(f'CREATE DATABASE "{name}"')


def database_migrate(*, database_url: str, redis_url: str) -> None:
    _log("migrating")
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def _timed(connection: psycopg.Connection, label: str, sql: str, params: dict | None = None) -> None:
    started = time.perf_counter()
    cursor = connection.execute(sql, params or {})
    rows = f", {cursor.rowcount:,} rows" if cursor.rowcount and cursor.rowcount > 0 else ""
    _log(f"{label}: {time.perf_counter() - started:.1f} s{rows}")


def _fill_indexes(connection: psycopg.Connection) -> list[tuple[str, str]]:
    """Secondary indexes of trade_fill (not the primary key), to rebuild after the bulk load."""
    return connection.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = 'trade_fill' AND i.indexname NOT IN (
            SELECT conname FROM pg_constraint WHERE conrelid = 'trade_fill'::regclass AND contype IN ('p', 'u'))
        """
    ).fetchall()


def fill_load_begin(connection: psycopg.Connection) -> list[tuple[str, str]]:
    """Make trade_fill ready for a bulk load: the months of the last DAYS days get their
    partitions first (the default one is a safety net), its secondary indexes and unique key are
    dropped. Returns the dropped indexes for fill_load_end."""
    from ingest.partitions import TRADE_FILL, month_after, month_start, partition_create_sql

    indexes = _fill_indexes(connection)
    for name, _definition in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    connection.execute("ALTER TABLE trade_fill DROP CONSTRAINT IF EXISTS trade_fill_idempotency_key_key")
    month, last = month_start(datetime.now(UTC) - timedelta(days=DAYS + 1)), month_start(datetime.now(UTC))
    while month <= last:
        connection.execute(partition_create_sql(TRADE_FILL, month))
        month = month_after(month)
    return indexes


def fill_load_end(connection: psycopg.Connection, indexes: list[tuple[str, str]]) -> None:
    """Rebuild what fill_load_begin dropped: one sort per index instead of a random insert per fill."""
    _timed(
        connection,
        "fills unique key",
        "ALTER TABLE trade_fill ADD CONSTRAINT trade_fill_idempotency_key_key UNIQUE (idempotency_key, traded_at)",
    )
    for name, definition in indexes:
        # A partitioned table's index is listed as "ON ONLY": rebuilt on the table, it covers
        # every partition again.
        _timed(connection, f"index {name}", definition.replace(" ON ONLY ", " ON "))


def offchain_events_seed(connection: psycopg.Connection, p: dict) -> None:
    """p["events"] off-chain events over the last p["days"] days, each linked to one of the first
    p["markets"] markets (a power law: a few markets have most of the news)."""
    _timed(
        connection,
        "off-chain events",
        """
        INSERT INTO offchain_event (source, source_event_id, kind, event_time, title, url, summary, payload, created_at)
        SELECT 'bench-feed', i::text, 'feed', now() - random() * make_interval(days => %(days)s), 'News ' || i,
               '', '', '{}', now()
        FROM generate_series(1, %(events)s) AS i
        """,
        p,
    )
    _timed(
        connection,
        "off-chain event links",
        """
        INSERT INTO offchain_event_market (event_id, market_id, event_time)
        SELECT e.id, 1 + floor(%(markets)s * power(random(), 2))::bigint, e.event_time FROM offchain_event e
        ON CONFLICT DO NOTHING
        """,
        p,
    )


def dataset_seed(*, database_url: str, scale: float) -> None:
    wallets = max(1000, int(1_000_000 * scale))
    fills = max(10_000, int(10_000_000 * scale))
    markets = max(100, int(50_000 * scale))
    events = max(200, int(100_000 * scale))
    p = {"wallets": wallets, "fills": fills, "markets": markets, "events": events, "days": DAYS}
    _log(f"seeding {wallets:,} wallets, {fills:,} fills, {markets:,} markets, {events:,} off-chain events")
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '512MB'")
        connection.execute("SET work_mem = '256MB'")
        # Bulk load: no FK triggers row by row (the generated ids are consistent by construction).
        connection.execute("SET session_replication_role = replica")
        _timed(
            connection,
            "truncate",
            "TRUNCATE wallet_snapshot, wallet_compute_state, wallet_score_history, feed_event, anomaly, ai_report, "
            "api_watchlist_entry, api_portfolio_wallet, api_portfolio, offchain_event_market, offchain_event, trade_fill, "
            "outcome_token, market, wallet RESTART IDENTITY CASCADE",
        )
        _timed(
            connection,
            "markets",
            """
            INSERT INTO market (id, condition_id, gamma_id, question, slug, description, category, tags, event_slug,
                event_title, outcomes, outcome_prices, volume, liquidity, active, closed, archived, end_date, closed_time,
                uma_resolution_status, winner_index, is_void, resolved_at, metadata_status, created_at, updated_at)
            SELECT i, '0x' || lpad(to_hex(i), 64, '0'), i::text, 'Will event ' || i || ' happen?', 'event-' || i, '',
                (ARRAY['Politics','Sports','Crypto','Economy','Weather','Culture'])[1 + i %% 6], '[]', 'group-' || (i / 10),
                'Group ' || (i / 10), '["Yes", "No"]',
                CASE WHEN i %% 5 = 0 THEN '["1", "0"]'::jsonb ELSE '["0.42", "0.58"]'::jsonb END,
                round((random() * 1000000)::numeric, 2), round((random() * 50000)::numeric, 2),
                i %% 10 >= 3, i %% 10 < 3, false, now() + (i %% 60) * interval '1 day',
                CASE WHEN i %% 10 < 3 THEN now() - (i %% 30) * interval '1 day' END, '',
                CASE WHEN i %% 5 = 0 THEN 0 END, false, CASE WHEN i %% 5 = 0 THEN now() - (i %% 30) * interval '1 day' END,
                'fetched', now() - (i %% 365) * interval '1 day', now() - (i %% 30) * interval '1 hour'
            FROM generate_series(1, %(markets)s) AS i
            """,
            p,
        )
        _timed(
            connection,
            "outcome tokens",
            """
            INSERT INTO outcome_token (token_id, market_id, outcome_index, outcome, latest_price)
            SELECT (m * 2 + o)::text, m, o, CASE o WHEN 0 THEN 'Yes' ELSE 'No' END, CASE o WHEN 0 THEN 0.42 ELSE 0.58 END
            FROM generate_series(1, %(markets)s) AS m, generate_series(0, 1) AS o
            """,
            p,
        )
        _timed(
            connection,
            "wallets",
            """
            INSERT INTO wallet (id, address, pseudonym, name, profile_image, tracked, created_at, updated_at)
            SELECT i, '0x' || lpad(to_hex(i), 40, '0'), CASE WHEN i %% 5 = 0 THEN 'trader-' || i ELSE '' END, '', '',
                i %% 100 = 0, now() - (i %% 365) * interval '1 day', now() - (i %% 30) * interval '1 hour'
            FROM generate_series(1, %(wallets)s) AS i
            """,
            p,
        )
        indexes = fill_load_begin(connection)
        chunk = 1_000_000
        for start in range(1, fills + 1, chunk):
            end = min(fills, start + chunk - 1)
            # wallet: power law over ranks, scattered over ids by a bijection (7919 is prime to
            # any 10^k) so heavy traders are not simply the lowest ids.
            _timed(
                connection,
                f"fills {start:,}-{end:,}",
                """
                INSERT INTO trade_fill (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id, side,
                    size, price, usdc_size, traded_at, outcome, outcome_index, ingested_at)
                SELECT md5(i::text) || md5((-i)::text), 'data_api', '0x' || md5((i / 2)::text) || md5((i / 2)::text || 'x'),
                    (g.market * 2 + g.outcome)::text, g.market, g.wallet, CASE WHEN random() < 0.6 THEN 'BUY' ELSE 'SELL' END,
                    g.size, g.price, round(g.size * g.price, 6), g.traded_at, '', g.outcome, g.traded_at
                FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS i,
                LATERAL (SELECT
                    1 + ((floor(%(wallets)s * power(random(), 2.5))::bigint * 7919 + 13) %% %(wallets)s) AS wallet,
                    1 + floor(%(markets)s * power(random(), 2))::bigint AS market,
                    (random() < 0.5)::int AS outcome,
                    round((1 + random() * random() * 2000)::numeric, 4) AS size,
                    round((0.01 + random() * 0.98)::numeric, 4) AS price,
                    now() - random() * make_interval(days => %(days)s) AS traded_at,
                    i AS seq) AS g
                """,
                {**p, "start": start, "end": end},
            )
        fill_load_end(connection, indexes)
        offchain_events_seed(connection, p)
        _serving_tables_seed(connection, p)
        connection.execute("SET session_replication_role = DEFAULT")
        for table, column in [("market", "id"), ("wallet", "id")]:
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT max({column}) FROM {table}))"
            )
        _timed(connection, "vacuum analyze", "VACUUM ANALYZE")


def _serving_tables_seed(connection: psycopg.Connection, p: dict) -> None:
    _timed(
        connection,
        "wallet facts (first/last trade)",
        """
        UPDATE wallet w SET first_trade_at = a.first_at, last_trade_at = a.last_at
        FROM (SELECT wallet_id, min(traded_at) AS first_at, max(traded_at) AS last_at FROM trade_fill GROUP BY wallet_id) a
        WHERE a.wallet_id = w.id
        """,
    )
    # Exact aggregates of the fills; PnL and scores synthetic (see the module docstring).
    _timed(
        connection,
        "wallet snapshots",
        """
        INSERT INTO wallet_snapshot (wallet_id, total_trades, markets_traded, volume_total, volume_30d, fees_paid,
            realized_pnl, unrealized_pnl, trading_pnl, maker_rebates, total_pnl, roi, win_rate, resolved_positions,
            winning_positions, open_positions, trades_7d, pnl_7d, pnl_30d, realized_pnl_24h, max_drawdown_7d,
            stability_score, first_trade_at, last_trade_at, smart_score, confidence, strategy_type, pool_tier, risk_level,
            suitable_for, suggested_position, momentum, status_7d, info_edge_level, info_edge_mean_minutes,
            info_edge_stddev_minutes, info_edge_samples, info_edge_z, info_edge_p, has_ai_report, nl_summary, ai_model_id,
            ai_confidence, potential_reached_at, scored_at, last_analyzed_at, info_edge_baseline_rate,
            info_edge_decisions, info_edge_effect, info_edge_markets, info_edge_q, info_edge_tested,
            info_edge_wallet_rate, pending_changes)
        SELECT a.wallet_id, a.trades, a.markets, a.volume, a.volume_30d, 0,
            s.realized, round(s.realized * 0.05, 6), round(s.realized * 1.05, 6), 0, round(s.realized * 1.05, 6),
            round(s.edge / 10, 6), CASE WHEN a.trades >= 10 THEN round(0.5 + s.edge, 6) END, a.trades / 4,
            round(a.trades / 4 * (0.5 + s.edge))::int, LEAST(a.markets, 5), a.trades_7d, round(s.realized * 0.1, 6),
            round(s.realized * 0.3, 6), round(a.volume_24h * s.edge, 6), round(a.volume_30d * 0.02, 6), 50,
            a.first_at, a.last_at, s.score, round(a.trades / (a.trades + 20.0), 6),
            CASE WHEN a.trades < 5 THEN 'unknown' WHEN a.wallet_id %% 7 = 0 THEN 'event_trader'
                 WHEN a.trades >= 100 AND s.edge > 0 THEN 'quant' WHEN s.edge > 0 THEN 'lucky' ELSE 'noise' END,
            CASE WHEN s.score >= 70 AND a.trades >= 30 AND s.edge > 0 THEN 'star'
                 WHEN s.score >= 50 AND a.trades >= 20 THEN 'strategy' ELSE 'observation' END,
            CASE WHEN a.trades < 20 THEN 'high' WHEN s.edge > 0.1 THEN 'low' ELSE 'medium' END,
            CASE WHEN s.score >= 50 AND a.trades >= 20 THEN 'balanced' ELSE 'watch_only' END,
            CASE WHEN s.score >= 50 AND a.trades >= 20 THEN '2-5%%' ELSE '0%%' END,
            (ARRAY['heating','stable','cooling'])[1 + a.wallet_id %% 3],
            CASE WHEN a.trades_7d = 0 THEN 'inactive' WHEN s.edge > 0 THEN 'profitable' ELSE 'losing' END,
            CASE WHEN a.trades < 5 THEN 'insufficient_data' WHEN a.wallet_id %% 7 = 0 THEN 'processing_edge' ELSE 'no_edge' END,
            -- The information-edge numbers are numbers for every wallet (0 with no samples).
            CASE WHEN a.trades >= 5 THEN round((s.edge * 400)::numeric, 3)::float8 ELSE 0 END,
            CASE WHEN a.trades >= 5 THEN 45.0 ELSE 0 END, a.trades / 3, 0, CASE WHEN a.trades >= 5 THEN 0.2 ELSE 1 END,
            a.wallet_id %% 50 = 0 AND a.trades >= 10,
            CASE WHEN a.wallet_id %% 50 = 0 AND a.trades >= 10 THEN 'A wallet of ' || a.trades || ' trades.' ELSE '' END,
            CASE WHEN a.wallet_id %% 50 = 0 AND a.trades >= 10 THEN 'template' ELSE '' END,
            CASE WHEN a.wallet_id %% 50 = 0 AND a.trades >= 10 THEN round((0.3 + s.edge + 0.2)::numeric, 6) END,
            CASE WHEN a.trades >= 100 AND s.edge >= 0 THEN a.last_at - (a.wallet_id %% 240) * interval '1 hour' END,
            now() - (a.wallet_id %% 1440) * interval '1 minute', now() - (a.wallet_id %% 600) * interval '1 second',
            0.1, a.trades / 2, CASE WHEN a.wallet_id %% 7 = 0 THEN 0.3 ELSE 0 END, LEAST(a.markets, 5),
            CASE WHEN a.wallet_id %% 7 = 0 THEN 0.01 ELSE 1 END, a.trades >= 5,
            CASE WHEN a.wallet_id %% 7 = 0 THEN 0.4 ELSE 0.1 END, '{}'::jsonb
        FROM (
            SELECT wallet_id, count(*) AS trades, count(DISTINCT market_id) AS markets, sum(usdc_size) AS volume,
                coalesce(sum(usdc_size) FILTER (WHERE traded_at >= now() - interval '30 days'), 0) AS volume_30d,
                coalesce(sum(usdc_size) FILTER (WHERE traded_at >= now() - interval '24 hours'), 0) AS volume_24h,
                count(*) FILTER (WHERE traded_at >= now() - interval '7 days') AS trades_7d,
                min(traded_at) AS first_at, max(traded_at) AS last_at
            FROM trade_fill GROUP BY wallet_id
        ) a,
        LATERAL (SELECT
            -- a stable number in [-0.3, 0.3) per wallet: the synthetic edge
            ((('x' || substr(md5(a.wallet_id::text), 1, 8))::bit(32)::bigint %% 600) - 300) / 1000.0 AS edge) e,
        LATERAL (SELECT e.edge AS edge, round(a.volume * e.edge::numeric, 6) AS realized,
            round(LEAST(99, 25 + (a.trades / (a.trades + 20.0)) * (e.edge * 150 + 20))::numeric, 2) AS score) s
        """,
    )
    _timed(
        connection,
        "compute state",
        """
        INSERT INTO wallet_compute_state (wallet_id, last_computed_at, facts_through, last_trade_at, fills)
        SELECT wallet_id, last_analyzed_at, last_trade_at, last_trade_at, total_trades FROM wallet_snapshot
        """,
    )
    _timed(
        connection,
        "feed events",
        """
        INSERT INTO feed_event (wallet_id, event_type, event_time, payload, reason_code, action_required, suggestion,
            suggestion_zh, dedupe_key, created_at)
        SELECT s.wallet_id, k.kind, s.last_trade_at - k.n * interval '7 hours',
            jsonb_build_object('before', k.n, 'after', k.n + 1, 'reason_code', k.kind || '_changed'), k.kind || '_changed',
            k.kind IN ('risk_level_change', 'anomaly'), 'Review this wallet.', '请查看该钱包。', 'bench:' || k.n, now()
        FROM wallet_snapshot s,
        LATERAL (
            SELECT n, (ARRAY['pnl_jump', 'risk_level_change', 'strategy_change', 'anomaly', 'potential_reached',
                             'ai_report'])[1 + (s.wallet_id + n) %% 6] AS kind
            FROM generate_series(1, LEAST(6, 1 + s.total_trades / 20)) AS n) k
        """,
    )
    _timed(
        connection,
        "anomalies",
        """
        INSERT INTO anomaly (wallet_id, market_id, alert_type, severity, evidence, description, dedupe_key, observed_at,
            acknowledged, created_at)
        SELECT s.wallet_id, 1 + s.wallet_id %% %(markets)s,
            (ARRAY['large_position', 'trading_rate_spike', 'pnl_jump', 'fresh_wallet_large_trade',
                   'pre_event_timing'])[1 + s.wallet_id %% 5],
            (ARRAY['low','medium','high','critical'])[1 + s.wallet_id %% 4], '{"ratio": 6}', 'Synthetic alert.',
            'bench', s.last_trade_at, s.wallet_id %% 3 = 0, s.last_trade_at
        FROM wallet_snapshot s WHERE s.total_trades >= 30
        """,
        p,
    )
    _timed(
        connection,
        "ai reports",
        """
        INSERT INTO ai_report (wallet_id, model_id, report, nl_summary, risk_warnings, confidence, input_digest,
            input_tokens, output_tokens, latency_ms, created_at)
        SELECT wallet_id, 'template', '{}', nl_summary, '[]', ai_confidence, md5(wallet_id::text), 0, 0, 0, last_analyzed_at
        FROM wallet_snapshot WHERE has_ai_report
        """,
    )
    _timed(
        connection,
        "bench watchlist",
        """
        INSERT INTO api_watchlist_entry (fingerprint, wallet_id, created_at)
        SELECT %(fingerprint)s, wallet_id, now() FROM wallet_snapshot
        WHERE pool_tier <> 'observation' ORDER BY wallet_id LIMIT 50
        """,
        {"fingerprint": BENCH_FINGERPRINT},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--database", default="arbitra_bench")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"))
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M wallets, 10M fills, 50k markets")
    parser.add_argument("--recreate", action="store_true", help="drop and recreate the database first")
    args = parser.parse_args()
    database_url = args.server_url.rsplit("/", 1)[0] + "/" + args.database
    started = time.perf_counter()
    database_create(server_url=args.server_url, name=args.database, recreate=args.recreate)
    database_migrate(database_url=database_url, redis_url=args.redis_url)
    dataset_seed(database_url=database_url, scale=args.scale)
    # The bulk load ran with triggers off (replica role): recount the API's maintained totals.
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": args.redis_url, "LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "manage.py", "api_counters_recount"], cwd=ROOT, env=env, check=True)
    _log(f"done in {time.perf_counter() - started:.0f} s: {database_url}")


if __name__ == "__main__":
    main()
