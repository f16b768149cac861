"""Core facts every source writes the same way: off-chain events with their market links, and
the holders of markets queued for recompute (a resolution settles them; news re-pairs them).

Shared by the Gamma source (lifecycle events), the feeds (news) and the Data API (resolutions),
so it lives below the source packages instead of inside one of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from ingest.changes import changed_wallets_push
from ingest.models import IngestRun


@dataclass(frozen=True)
class EventDraft:
    source: str
    source_event_id: str
    kind: str
    event_time: datetime
    title: str
    url: str = ""
    summary: str = ""
    payload: dict = field(default_factory=dict)
    market_ids: list[int] = field(default_factory=list)


def offchain_events_upsert(*, drafts: list[EventDraft], run: IngestRun | None = None) -> int:
    """Insert new events and their market links; return how many events were new."""
    if not drafts:
        return 0
    unique = {(draft.source, draft.source_event_id): draft for draft in drafts}
    new_market_ids: set[int] = set()
    inserted = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for key in sorted(unique):
            draft = unique[key]
            cursor.execute(
                """
                INSERT INTO offchain_event (source, source_event_id, kind, event_time, title, url, summary, payload,
                                            created_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, now())
                ON CONFLICT (source, source_event_id) DO NOTHING
                RETURNING id
                """,
                [
                    draft.source,
                    draft.source_event_id[:500],
                    draft.kind,
                    draft.event_time,
                    draft.title,
                    draft.url[:1000],
                    draft.summary,
                    _json(draft.payload),
                ],
            )
            row = cursor.fetchone()
            if row is None:
                continue
            inserted += 1
            if draft.market_ids:
                cursor.execute(
                    """
                    INSERT INTO offchain_event_market (event_id, market_id, event_time)
                    SELECT %s, m, %s FROM unnest(%s::bigint[]) AS m ON CONFLICT DO NOTHING
                    """,
                    [row[0], draft.event_time, sorted(set(draft.market_ids))],
                )
                new_market_ids |= set(draft.market_ids)
    if new_market_ids:
        # Only trades inside the pairing horizon can pair with this event.
        horizon = timedelta(minutes=settings.INFO_EDGE_HORIZON_MINUTES)
        earliest = min(draft.event_time for draft in unique.values()) - horizon
        wallets_queue_for_markets(market_ids=sorted(new_market_ids), since=earliest)
    return inserted


def market_resolved_event(market) -> EventDraft:
    """The public moment a market resolved, at the resolution's own time: one event per market,
    whichever source settled it first (Gamma's hint or /v2/resolutions' payouts)."""
    from ingest.models import OffchainEvent

    if market.is_void:
        outcome = "void (refund at " + " / ".join(market.resolution_payouts or ["0.5"]) + ")"
    elif market.winner_index is not None and market.winner_index < len(market.outcomes):
        outcome = market.outcomes[market.winner_index]
    elif market.winner_index is not None:
        outcome = str(market.winner_index)
    else:
        outcome = "split payout " + " / ".join(market.resolution_payouts)
    payload = {"condition_id": market.condition_id, "event": "resolved", "winner_index": market.winner_index,
               "is_void": market.is_void}
    if market.resolution_payouts:
        payload["payouts"] = market.resolution_payouts
    return EventDraft(
        source="gamma:lifecycle",
        source_event_id=f"{market.condition_id}:resolved",
        kind=OffchainEvent.Kind.MARKET_LIFECYCLE,
        event_time=market.resolved_at,
        title=f"Market resolved: {market.question} → {outcome}",
        payload=payload,
        market_ids=[market.pk],
    )


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def wallets_queue_for_markets(*, market_ids: Sequence[int], since: datetime | None = None) -> int:
    """Queue every wallet that traded these markets (a resolution settles them; news re-pairs them).

    Reads the (market, traded_at) index only: bounded by the markets named and, when given, by time.
    """
    if not market_ids:
        return 0
    sql = "SELECT DISTINCT wallet_id FROM trade_fill WHERE market_id = ANY(%s)"
    params: list[Any] = [list(market_ids)]
    if since is not None:
        sql += " AND traded_at >= %s"
        params.append(since)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        wallet_ids = [row[0] for row in cursor.fetchall()]
    changed_wallets_push(wallet_ids=wallet_ids)
    return len(wallet_ids)
