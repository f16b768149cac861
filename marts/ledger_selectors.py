"""Reads of the wallet ledger: a wallet's landed account rows, the market terms they refer to,
the wallets whose rows landed since the ledger last read, and the ledger's own tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter

import orjson
from django.db import connection
from psycopg.types.json import set_json_loads

from arbitra.sql_arrays import int_array
from ingest.sources.data_api.parsing import (
    ParsedActivity,
    ParsedUserStats,
    PositionFigures,
    parse_activity_figures,
    parse_position_figures,
    parse_user_stats_v2,
)
from ingest.sources.values import MalformedRow
from marts.bulk import fast_cursor, fast_rows
from marts.ledger import MarketTerms

SOURCE = "data_api"
ACTIVITY = "activity"
POSITIONS = "positions"
RESOLUTIONS = "resolutions"
USER_STATS = "user_stats"


# One index seek per wallet and stream on ingest_landing_account_wallet (stream, proxy_wallet, id):
# each branch names its stream with a literal, so the planner can prove the index's partial
# predicate under any plan and seek by (stream, wallet) — with `stream IN (…)` the predicate
# absorbs the condition on the leading column and the index can only be scanned whole. The
# expression's statistics (marts 0005) let the planner expect a few rows per wallet, not the
# default share of the table. The rows are put in order here, not by an ORDER BY: sorting a
# batch's payloads in PostgreSQL spilled to disk (work_mem) and took a parallel plan to merge.
# The wallet is read off the decoded payload, not selected: `->>` on a json column parses the
# whole text again, once per row. Profile cards have an index of their own
# (ingest_landing_user_stats_wallet, marts 0006).
ACCOUNT_ROWS_SQL = f"""
    SELECT stream, id, idempotency_key, payload FROM ingest_landing
    WHERE source = '{SOURCE}' AND stream = '{ACTIVITY}' AND payload->>'proxy_wallet' = ANY(%s::text[])
    UNION ALL
    SELECT stream, id, idempotency_key, payload FROM ingest_landing
    WHERE source = '{SOURCE}' AND stream = '{POSITIONS}' AND payload->>'proxy_wallet' = ANY(%s::text[])
    UNION ALL
    SELECT stream, id, idempotency_key, payload FROM ingest_landing
    WHERE source = '{SOURCE}' AND stream = '{USER_STATS}' AND payload->>'proxy_wallet' = ANY(%s::text[])
"""  # noqa: S608 - module constants, no input


@dataclass
class AccountRows:
    activities: list[ParsedActivity]
    activity_through: int
    positions: list[PositionFigures]  # Polymarket's latest row per token
    unreadable: int  # landed rows the parsers refuse now (kept in the landing table as received)
    user_stats: ParsedUserStats | None = None  # Polymarket's newest landed profile card


def wallet_addresses(*, wallet_ids: list[int]) -> dict[int, str]:
    rows = fast_rows("SELECT id, address FROM wallet WHERE id = ANY(%s::bigint[])", ["{" + ",".join(map(str, wallet_ids)) + "}"])
    return {wallet_id: address for wallet_id, address in rows}


def account_rows_for(*, addresses: list[str]) -> dict[str, AccountRows]:
    """Each wallet's landed activity (landing order) and Polymarket's newest position per token,
    through the (stream, proxy_wallet, id) index of the account streams."""
    result = {address: AccountRows([], 0, [], 0) for address in addresses}
    if not addresses:
        return result
    rows = _landed_rows(ACCOUNT_ROWS_SQL, ["{" + ",".join(addresses) + "}"] * 3)
    rows.sort(key=_landing_id)  # landing order (within each wallet and stream, what counts)
    # Polymarket's newest landed row per token (landing order: a later one replaces it); only
    # those are parsed.
    newest_positions: dict[tuple[str, object], dict] = {}
    newest_cards: dict[str, dict] = {}
    for stream, landing_id, key, payload in rows:
        # A row matched its wallet's `payload->>'proxy_wallet'`: the payload is an object naming it.
        address = payload.get("proxy_wallet")
        account = result.get(address)
        if account is None:
            continue
        if stream == POSITIONS:
            newest_positions[(address, payload.get("token_id"))] = payload
            continue
        if stream == USER_STATS:
            newest_cards[address] = payload
            continue
        try:
            # Under the key it landed with: the ledger entry names the landed row.
            activity = parse_activity_figures(payload, idempotency_key=key)
        except MalformedRow:
            account.unreadable += 1
            continue
        account.activities.append(activity)
        account.activity_through = max(account.activity_through, landing_id)
    for (address, _token), payload in newest_positions.items():
        account = result[address]
        try:
            account.positions.append(parse_position_figures(payload))
        except MalformedRow:
            account.unreadable += 1
    for address, payload in newest_cards.items():
        try:
            result[address].user_stats = parse_user_stats_v2(payload)
        except MalformedRow:
            result[address].unreadable += 1
    return result


_landing_id = itemgetter(1)


def _payload_loads(data) -> object:
    """Landed payloads decoded by orjson (~3× the standard library here); an integer beyond 64
    bits (a token id sent as a number) is the standard library's to keep exact."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(bytes(data))


def _landed_rows(sql: str, params: list) -> list[tuple]:
    with fast_cursor() as cursor:
        set_json_loads(_payload_loads, cursor.cursor)
        cursor.execute(sql, params)
        return cursor.fetchall()


def market_terms_for(*, condition_ids: set[str], with_events_of: set[str]) -> dict[str, MarketTerms]:
    """Tokens (by outcome index), payouts and mark prices of the markets; for `with_events_of`
    (neg-risk conversions) every market of the same event too."""
    if not condition_ids:
        return {}
    rows = fast_rows(
        """
        SELECT m.condition_id, m.event_slug, m.resolution_payouts::text, m.winner_index, m.is_void,
               array_agg(t.token_id ORDER BY t.outcome_index) FILTER (WHERE t.token_id IS NOT NULL),
               array_agg(t.latest_price ORDER BY t.outcome_index) FILTER (WHERE t.token_id IS NOT NULL)
        FROM market m LEFT JOIN outcome_token t ON t.market_id = m.id
        WHERE m.condition_id = ANY(%s::text[])
           OR (m.event_slug <> '' AND m.event_slug IN (
                SELECT event_slug FROM market WHERE condition_id = ANY(%s::text[])))
        GROUP BY m.id
        """,
        ["{" + ",".join(sorted(condition_ids)) + "}", "{" + ",".join(sorted(with_events_of)) + "}"],
    )
    terms: dict[str, MarketTerms] = {}
    for condition_id, event_slug, payouts_text, winner_index, is_void, tokens, prices in rows:
        tokens = tuple(tokens or ())
        payouts = tuple(Decimal(p) for p in json.loads(payouts_text or "[]"))
        if not payouts and (winner_index is not None or is_void) and tokens:
            payouts = tuple(
                Decimal("0.5") if is_void else Decimal(int(index == winner_index)) for index in range(len(tokens))
            )
        terms[condition_id] = MarketTerms(
            condition_id=condition_id, token_ids=tokens, payouts=payouts or None, event_key=event_slug or "",
            mark_prices=tuple(prices or ()),
        )
    return terms


def landed_since(*, stream: str, after_id: int, limit: int) -> list[tuple[int, str]]:
    """(landing id, wallet address or condition id) of rows landed after `after_id`: a range scan
    of the primary key, so the cost follows what landed, never the table."""
    key = "payload->>'condition_id'" if stream == RESOLUTIONS else "payload->>'proxy_wallet'"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {key} FROM ingest_landing WHERE id > %s AND source = %s AND stream = %s ORDER BY id LIMIT %s",  # noqa: S608
            [after_id, SOURCE, stream, limit],
        )
        return cursor.fetchall()


def ledger_reconciliation_counts() -> dict[str, int]:
    """Wallet ledgers per reconciliation status (one pass over the status index)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reconciliation_status, count(*) FROM wallet_ledger_summary GROUP BY 1")
        return dict(cursor.fetchall())


def ledger_reconciliation_share() -> tuple[int, int]:
    """(wallets reconciled, wallets with a ledger) — the reconciliation metric."""
    counts = ledger_reconciliation_counts()
    return counts.get("reconciled", 0), sum(counts.values())


@dataclass(frozen=True)
class LedgerScoreInputs:
    """What scoring takes from a wallet's ledger: the win rate over resolved positions of known
    cost (losers never redeemed included) and the ROI's terms over positions of known cost."""

    resolved_positions: int
    winning_positions: int
    invested: Decimal
    known_cost_pnl: Decimal
    roi: Decimal

    @property
    def win_rate(self) -> Decimal | None:
        return Decimal(self.winning_positions) / Decimal(self.resolved_positions) if self.resolved_positions else None


def ledger_score_inputs_for(*, wallet_ids: list[int]) -> dict[int, LedgerScoreInputs]:
    """The ledger figures of the wallets that have a ledger (one primary-key read per batch)."""
    if not wallet_ids:
        return {}
    rows = fast_rows(
        """
        SELECT wallet_id, resolved_positions, winning_positions, invested, known_cost_pnl, roi
        FROM wallet_ledger_summary WHERE wallet_id = ANY(%s::bigint[])
        """,
        [int_array(wallet_ids)],
    )
    return {row[0]: LedgerScoreInputs(*row[1:]) for row in rows}


@dataclass(frozen=True)
class LedgerSources:
    """Where a wallet's ledger figures come from: its ledger rows (landed /v2/activity rows) per
    kind, the positions settled at a resolution payout, the open positions and the price and
    time each is marked at (the largest first; `SOURCE_POSITIONS_SHOWN` of each)."""

    rows_by_kind: dict[str, int]
    settled: list[dict]
    settled_count: int
    unredeemed_losers: int
    marked: list[dict]
    marked_count: int


SOURCE_POSITIONS_SHOWN = 20


def ledger_sources_for(*, wallet_id: int) -> LedgerSources:
    """Two index reads on the wallet's own ledger rows ((wallet, sequence) and (wallet, token))."""
    from django.db.models import Count, F, Func, Q

    from marts.models import WalletLedgerEntry, WalletLedgerPosition

    rows_by_kind = dict(
        WalletLedgerEntry.objects.filter(wallet_id=wallet_id).values_list("kind")
        .annotate(rows=Count("sequence", distinct=True)).values_list("kind", "rows")
    )
    positions = WalletLedgerPosition.objects.filter(wallet_id=wallet_id)
    settled = positions.filter(settlement_price__isnull=False).exclude(status="closed")
    marked = positions.filter(status="open", shares__gt=0, mark_price__isnull=False)
    counts = positions.aggregate(
        settled=Count("pk", filter=Q(settlement_price__isnull=False) & ~Q(status="closed")),
        unredeemed_losers=Count("pk", filter=Q(status="lost", shares__gt=0, cost_basis_known=True)),
        marked=Count("pk", filter=Q(status="open", shares__gt=0, mark_price__isnull=False)),
    )

    def largest(queryset, amount: str, fields: tuple[str, ...]) -> list[dict]:
        ordered = queryset.order_by(Func(F(amount), function="ABS").desc(), "token_id")
        return list(ordered.values(*fields)[:SOURCE_POSITIONS_SHOWN])

    return LedgerSources(
        rows_by_kind=rows_by_kind,
        settled=largest(settled, "settlement_pnl", ("condition_id", "token_id", "outcome_index", "status", "shares",
                                                    "avg_price", "settlement_price", "settlement_pnl",
                                                    "cost_basis_known")),
        settled_count=counts["settled"],
        unredeemed_losers=counts["unredeemed_losers"],
        marked=largest(marked, "unrealized_pnl", ("condition_id", "token_id", "outcome_index", "shares", "avg_price",
                                                  "mark_price", "marked_at", "unrealized_pnl")),
        marked_count=counts["marked"],
    )
