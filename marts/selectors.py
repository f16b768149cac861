"""Reads of facts for the compute drain (one query per kind per batch) and of the marts."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection

from arbitra.sql_arrays import int_array
from marts.bulk import fast_rows
from marts.compute import Fill, MarketFacts, TokenFacts


def fills_for_wallets(*, wallet_ids: list[int]) -> dict[int, list[Fill]]:
    """Every fill of the wallets, in the order position accounting needs: one index-driven query,
    read with psycopg's C loaders (two timestamps and three numerics per fill)."""
    by_wallet: dict[int, list[Fill]] = defaultdict(list)
    if not wallet_ids:
        return by_wallet
    rows = fast_rows(
        """
        SELECT wallet_id, market_id, token_id, side, size, price, usdc_size, traded_at, idempotency_key,
               outcome_index, ingested_at
        FROM trade_fill
        WHERE wallet_id = ANY(%s::bigint[])
        ORDER BY wallet_id, traded_at, idempotency_key
        """,
        [int_array(wallet_ids)],
    )
    make = Fill._make
    for row in rows:
        by_wallet[row[0]].append(make(row))
    return by_wallet


def market_facts_for(*, market_ids: set[int]) -> dict[int, MarketFacts]:
    if not market_ids:
        return {}
    rows = fast_rows(
        "SELECT id, winner_index, is_void, resolved_at, closed_time, liquidity FROM market WHERE id = ANY(%s::bigint[])",
        [int_array(sorted(market_ids))],
    )
    return {row[0]: MarketFacts._make(row) for row in rows}


def token_facts_for(*, market_ids: set[int]) -> dict[str, TokenFacts]:
    if not market_ids:
        return {}
    rows = fast_rows(
        "SELECT token_id, market_id, outcome_index, latest_price FROM outcome_token WHERE market_id = ANY(%s::bigint[])",
        [int_array(sorted(market_ids))],
    )
    return {row[0]: TokenFacts._make(row) for row in rows}


def last_fill_prices_for(*, tokens: list[tuple[int, str]]) -> dict[str, Decimal]:
    """Last traded price of each (market, token), for tokens without a latest price.

    One backward scan of the (market, traded_at) index per token, stopping at its first fill.
    """
    if not tokens:
        return {}
    rows = fast_rows(
        """
        SELECT t.token_id,
               (SELECT f.price FROM trade_fill f
                WHERE f.market_id = t.market_id AND f.token_id = t.token_id
                ORDER BY f.traded_at DESC, f.idempotency_key DESC LIMIT 1)
        FROM unnest(%s::bigint[], %s::text[]) AS t(market_id, token_id)
        """,
        [[market for market, _ in tokens], [token for _, token in tokens]],
    )
    return {token: price for token, price in rows if price is not None}


def event_times_for(*, market_ids: set[int], since: datetime, until: datetime) -> dict[int, list[datetime]]:
    """Off-chain event times per market in [since, until], sorted, from the (market, event_time) index."""
    times: dict[int, list[datetime]] = defaultdict(list)
    if not market_ids:
        return times
    rows = fast_rows(
        """
        SELECT market_id, event_time FROM offchain_event_market
        WHERE market_id = ANY(%s::bigint[]) AND event_time >= %s AND event_time <= %s
        ORDER BY market_id, event_time
        """,
        [int_array(sorted(market_ids)), since, until],
    )
    for market_id, event_time in rows:
        times[market_id].append(event_time)
    return times


# Natural key first, then values. The key is natural — the wallet's address, the market's
# condition id, token ids, times — never a surrogate id: the same fills loaded in another order
# give other ids (wallet 2068 in one database is 371 in the other) and must give the same checksum.
# `wallet_id` is hashed as the wallet's address and `market_id` as the market's condition id.
CHECKSUM_TABLES: dict[str, tuple[str, str, str | None]] = {
    "wallet_trade_agg_5m": (
        "wallet_id, bucket_start, trades, buy_trades, sell_trades, buy_volume, sell_volume, buy_shares, "
        "sell_shares, fees, realized_pnl, markets_traded",
        "wallet_id, bucket_start",
        "bucket_start",
    ),
    "wallet_trade_agg_1h": (
        "wallet_id, bucket_start, trades, buy_trades, sell_trades, buy_volume, sell_volume, buy_shares, "
        "sell_shares, fees, realized_pnl, markets_traded",
        "wallet_id, bucket_start",
        "bucket_start",
    ),
    "wallet_daily_feature": (
        "wallet_id, day, trades, buy_volume, sell_volume, fees, realized_pnl, markets_traded, max_trade_usdc",
        "wallet_id, day",
        "day",
    ),
    "wallet_position": (
        "wallet_id, token_id, market_id, outcome_index, status, trades, shares, avg_cost, cost_basis, "
        "bought_shares, bought_usdc, sold_shares, sold_usdc, fees, realized_pnl, settlement_price, "
        "settled_shares, settled_at, mark_price, unrealized_pnl, first_trade_at, last_trade_at",
        "wallet_id, token_id",
        "last_trade_at",
    ),
    # Only the fact columns of the snapshot: scores and windows are relative to the computation time.
    "wallet_snapshot": (
        "wallet_id, total_trades, markets_traded, volume_total, fees_paid, realized_pnl, unrealized_pnl, "
        "trading_pnl, total_pnl, roi, win_rate, resolved_positions, winning_positions, open_positions, "
        "first_trade_at, last_trade_at, potential_reached_at",
        "wallet_id",
        "last_trade_at",
    ),
    "wallet_ledger_entry": (
        "wallet_id, sequence, leg, occurred_at, activity_type, kind, source_key, condition_id, token_id, shares, "
        "cash, fee, price, note",
        "wallet_id, sequence, leg",
        "occurred_at",
    ),
    "wallet_ledger_position": (
        "wallet_id, token_id, condition_id, outcome_index, status, shares, avg_price, realized_pnl, cash_avg_price, "
        "cash_realized_pnl, fees_paid, bought_shares, invested, settlement_price, settlement_pnl, "
        "cash_settlement_pnl, mark_price, unrealized_pnl, cost_basis_known, movements, first_at, last_at",
        "wallet_id, token_id",
        "last_at",
    ),
}

_NATURAL_KEYS = {"wallet_id": "w.address", "market_id": "m.condition_id"}


def _natural(columns: str) -> str:
    return ", ".join(_NATURAL_KEYS.get(column, f"t.{column}") for column in columns.split(", "))


def marts_checksum(
    *, wallet_ids: list[int] | None = None, since: datetime | None = None, until: datetime | None = None
) -> dict[str, tuple[int, str]]:
    """sha256 per mart table (and "all") over its rows as PostgreSQL renders them, in natural-key
    order, with surrogate ids replaced by the natural keys they stand for."""
    result: dict[str, tuple[int, str]] = {}
    overall = hashlib.sha256()
    total_rows = 0
    with connection.cursor() as cursor:
        # Django keeps the session in UTC (USE_TZ), so timestamps render the same on every machine.
        for table, (columns, order, time_column) in CHECKSUM_TABLES.items():
            conditions, params = [], []
            if wallet_ids:
                conditions.append("t.wallet_id = ANY(%s)")
                params.append(list(wallet_ids))
            if since is not None and time_column:
                conditions.append(f"t.{time_column} >= %s")
                params.append(since)
            if until is not None and time_column:
                conditions.append(f"t.{time_column} < %s")
                params.append(until)
            where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            joins = "JOIN wallet w ON w.id = t.wallet_id"
            if "market_id" in columns.split(", "):
                joins += " LEFT JOIN market m ON m.id = t.market_id"
            cursor.execute(
                f"SELECT ({_natural(columns)})::text FROM {table} t {joins} {where} "  # noqa: S608
                f"ORDER BY {_natural(order)}",
                params,
            )
            digest = hashlib.sha256()
            rows = 0
            for (text,) in cursor.fetchall():
                digest.update(text.encode())
                digest.update(b"\n")
                rows += 1
            result[table] = (rows, digest.hexdigest())
            overall.update(f"{table}:{digest.hexdigest()}\n".encode())
            total_rows += rows
    result["all"] = (total_rows, overall.hexdigest())
    return result


def wallets_with_fills_in_markets(*, market_ids: list[int], since: datetime, until: datetime) -> list[int]:
    if not market_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT wallet_id FROM trade_fill
            WHERE market_id = ANY(%s) AND traded_at >= %s AND traded_at <= %s
            """,
            [sorted(market_ids), since, until],
        )
        return [row[0] for row in cursor.fetchall()]


def wallets_holding_markets(*, market_ids: list[int]) -> list[int]:
    if not market_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT wallet_id FROM wallet_position WHERE market_id = ANY(%s)", [sorted(market_ids)])
        return [row[0] for row in cursor.fetchall()]


def wallets_with_buckets_leaving_windows(*, previous: datetime, now: datetime, windows: list[timedelta]) -> list[int]:
    """Wallets with a fill or settlement that left a rolling window between two slider runs.

    A fill in 5-minute bucket b leaves window W during (b + W, b + 5m + W]: range scans of the
    bucket_start index (and of settled_at for settlements), so the cost follows expiring buckets.
    """
    if now <= previous:
        return []
    ranges: list[tuple[datetime, datetime]] = [(previous - span - timedelta(minutes=5), now - span) for span in windows]
    parts, params = [], []
    for start, end in ranges:
        parts.append("SELECT wallet_id FROM wallet_trade_agg_5m WHERE bucket_start >= %s AND bucket_start < %s")
        params += [start, end]
        parts.append(
            "SELECT wallet_id FROM wallet_position WHERE settled_at IS NOT NULL AND settled_at >= %s AND settled_at < %s"
        )
        params += [start + timedelta(minutes=5), end]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ".join(parts), params)
        return sorted(row[0] for row in cursor.fetchall())
