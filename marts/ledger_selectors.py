"""Reads of the wallet ledger: a wallet's landed account rows, the market terms they refer to,
the wallets whose rows landed since the ledger last read, and the ledger's own tables."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from ingest.sources.data_api.parsing import ParsedActivity, ParsedPosition, parse_activity_v2, parse_position_v2
from ingest.sources.values import MalformedRow
from marts.bulk import fast_rows, int_array
from marts.ledger import MarketTerms

SOURCE = "data_api"
ACTIVITY = "activity"
POSITIONS = "positions"
RESOLUTIONS = "resolutions"


@dataclass
class AccountRows:
    activities: list[ParsedActivity]
    activity_through: int
    positions: list[ParsedPosition]  # Polymarket's latest row per token
    unreadable: int  # landed rows the parsers refuse now (kept in the landing table as received)


def wallet_addresses(*, wallet_ids: list[int]) -> dict[int, str]:
    rows = fast_rows("SELECT id, address FROM wallet WHERE id = ANY(%s::bigint[])", ["{" + ",".join(map(str, wallet_ids)) + "}"])
    return {wallet_id: address for wallet_id, address in rows}


def account_rows_for(*, addresses: list[str]) -> dict[str, AccountRows]:
    """Each wallet's landed activity (landing order) and Polymarket's newest position per token,
    through the (stream, proxy_wallet, id) index of the account streams."""
    result = {address: AccountRows([], 0, [], 0) for address in addresses}
    if not addresses:
        return result
    rows = fast_rows(
        """
        SELECT stream, payload->>'proxy_wallet', id, idempotency_key, payload FROM ingest_landing
        WHERE source = %s AND stream IN (%s, %s) AND payload->>'proxy_wallet' = ANY(%s::text[])
        ORDER BY stream, payload->>'proxy_wallet', id
        """,
        [SOURCE, ACTIVITY, POSITIONS, "{" + ",".join(addresses) + "}"],
    )
    positions: dict[str, dict[str, ParsedPosition]] = defaultdict(dict)
    for stream, address, landing_id, key, payload in rows:
        account = result.get(address)
        if account is None:
            continue
        try:
            if stream == ACTIVITY:
                # Under the key it landed with: the ledger entry names the landed row.
                account.activities.append(dataclasses.replace(parse_activity_v2(payload), idempotency_key=key))
                account.activity_through = max(account.activity_through, landing_id)
            else:
                position = parse_position_v2(payload)
                positions[address][position.token_id] = position  # landing order: the newest wins
        except MalformedRow:
            account.unreadable += 1
    for address, account in result.items():
        account.positions = list(positions[address].values())
    return result


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
