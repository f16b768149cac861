"""Gamma market pages → landing + market facts and outcome tokens, in one transaction per page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ingest.facts import wallets_queue_for_markets
from ingest.frame import PageResult, bulk_cursor, dead_letters_write, deadlock_retried, landing_write, payload_key
from ingest.models import IngestRun, Market
from ingest.sources.gamma.parsing import ParsedMarket, parse_gamma_market
from ingest.sources.values import MalformedRow


def _market_values(market: ParsedMarket) -> dict[str, Any]:
    return {
        "gamma_id": market.gamma_id,
        "question": market.question or "",
        "slug": (market.slug or "")[:300],
        "description": market.description or "",
        "category": (market.category or "")[:120],
        "tags": market.tags,
        "event_slug": (market.event_slug or "")[:300],
        "event_title": market.event_title or "",
        "outcomes": market.outcomes,
        "outcome_prices": [str(price) for price in market.outcome_prices],
        "volume": market.volume,
        "liquidity": market.liquidity,
        "active": market.active,
        "closed": market.closed,
        "archived": market.archived,
        "end_date": market.end_date,
        "closed_time": market.closed_time,
        "uma_resolution_status": market.uma_resolution_status or "",
        "fees_enabled": market.fees_enabled,
        "winner_index": market.winner_index,
        "is_void": market.is_void,
        "resolved_at": market.resolved_at,
        "resolution_source": "gamma" if market.is_resolved else "",
        "protocol_version": market.protocol_version,
        "gamma_created_at": market.created_at,
        "gamma_updated_at": market.updated_at,
    }


_RESOLUTION_FIELDS = ("winner_index", "is_void", "resolved_at")


@dataclass(frozen=True)
class MarketChange:
    """A market whose state moved in a way other layers react to (lifecycle events, settlement)."""

    market_id: int
    condition_id: str
    became_closed: bool
    became_resolved: bool
    is_new: bool


def market_page_ingest(
    *, run: IngestRun | None, rows: Sequence[Any], stream: str = "markets"
) -> tuple[PageResult, list[MarketChange]]:
    """Upsert Gamma market rows (metadata, prices, resolution) and their outcome tokens."""
    parsed: dict[str, tuple[ParsedMarket, Any]] = {}
    rejects: list[tuple[Any, str]] = []
    for row in rows:
        if not isinstance(row, dict):
            rejects.append((row, f"row: expected an object, got {type(row).__name__}"))
            continue
        try:
            market = parse_gamma_market(row)
        except MalformedRow as exc:
            rejects.append((row, str(exc)))
            continue
        parsed[market.condition_id] = (market, row)
    return deadlock_retried(lambda: _market_page_write(run=run, rows=rows, stream=stream, parsed=parsed, rejects=rejects))


def _market_page_write(
    *, run: IngestRun | None, rows: Sequence[Any], stream: str, parsed: dict[str, tuple[ParsedMarket, Any]],
    rejects: list[tuple[Any, str]],
) -> tuple[PageResult, list[MarketChange]]:
    """One Gamma page's transaction: dead letters, landing, markets and their tokens."""
    result = PageResult(fetched=len(rows))
    changes: list[MarketChange] = []
    marks_moved: list[int] = []
    with transaction.atomic():
        result.dead_lettered = dead_letters_write(run=run, source="gamma", stream=stream, rejects=rejects)
        if parsed:
            with bulk_cursor() as cursor:
                landing_write(
                    cursor,
                    run=run,
                    source="gamma",
                    stream=stream,
                    records=[(payload_key(row), row, market.updated_at) for market, row in parsed.values()],
                )
        existing = {
            market.condition_id: market
            for market in Market.objects.select_for_update().filter(condition_id__in=sorted(parsed)).order_by("condition_id")
        }
        now = timezone.now()
        for condition_id in sorted(parsed):
            market, _row = parsed[condition_id]
            values = _market_values(market)
            current, created = existing.get(condition_id), False
            if current is None:
                current, created = _market_create_or_lock(condition_id=condition_id, values=values, now=now)
            if created:
                result.inserted += 1
                change = MarketChange(current.pk, condition_id, market.closed, market.is_resolved, True)
            else:
                if current.resolution_source == "data_api":
                    # Settled from /v2/resolutions payouts, the resolution of record: Gamma's
                    # closed + prices is only a hint and never overwrites it.
                    for name in (*_RESOLUTION_FIELDS, "resolution_source"):
                        values.pop(name, None)
                was_closed, was_resolved = current.closed, current.is_resolved
                unchanged = current.metadata_status == Market.MetadataStatus.FETCHED and all(
                    getattr(current, name) == value for name, value in values.items()
                )
                if unchanged:
                    result.duplicates += 1
                else:
                    for name, value in values.items():
                        setattr(current, name, value)
                    current.metadata_status = Market.MetadataStatus.FETCHED
                    current.updated_at = now
                    current.save()
                    result.enriched += 1
                change = MarketChange(
                    current.pk, condition_id, market.closed and not was_closed, market.is_resolved and not was_resolved, False
                )
            result.changed_market_ids.add(current.pk)
            if change.became_resolved:
                result.resolved_market_ids.add(current.pk)
            if change.became_closed or change.became_resolved or change.is_new:
                changes.append(change)
            if _market_tokens_upsert(market_id=current.pk, market=market) and not created:
                marks_moved.append(current.pk)
        if marks_moved:
            # Every holder's unrealised PnL is marked at the latest price, idle holders included:
            # queue them once the new prices are committed, so the next drain re-marks them.
            transaction.on_commit(lambda: wallets_queue_for_markets(market_ids=marks_moved))
    return result, changes


def _market_create_or_lock(*, condition_id: str, values: dict[str, Any], now: datetime) -> tuple[Market, bool]:
    """(market, created): a new market row, or the row a concurrent trade page inserted since our
    locking read, locked.

    The trade path adds a pending market the moment a fill names it; when that commits between the
    SELECT … FOR UPDATE above and this insert, the insert meets its key. The savepoint keeps the
    page's transaction usable, and the committed row is then updated like any known market.
    """
    try:
        with transaction.atomic():
            return Market.objects.create(
                condition_id=condition_id, metadata_status=Market.MetadataStatus.FETCHED, updated_at=now, **values
            ), True
    except IntegrityError:
        return Market.objects.select_for_update().get(condition_id=condition_id), False


def _market_tokens_upsert(*, market_id: int, market: ParsedMarket) -> bool:
    """Store the market's tokens and latest prices; True when a token was added or its price or
    label changed (what its holders are marked at moved)."""
    if not market.token_ids:
        return False
    prices = market.outcome_prices if len(market.outcome_prices) == len(market.token_ids) else [None] * len(market.token_ids)
    outcomes = market.outcomes if len(market.outcomes) == len(market.token_ids) else [""] * len(market.token_ids)
    with bulk_cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO outcome_token AS t (token_id, market_id, outcome_index, outcome, latest_price)
            SELECT tok, %s, idx, o, p FROM unnest(%b::text[], %b::smallint[], %b::text[], %b::numeric[]) AS r(tok, idx, o, p)
            ON CONFLICT (token_id) DO UPDATE SET outcome = EXCLUDED.outcome, latest_price = EXCLUDED.latest_price
            WHERE t.outcome IS DISTINCT FROM EXCLUDED.outcome OR t.latest_price IS DISTINCT FROM EXCLUDED.latest_price
            """,
            [market_id, market.token_ids, list(range(len(market.token_ids))), outcomes, prices],
        )
        moved = cursor.rowcount > 0
        # Fills stored before Gamma told us which outcome a token is learn it now.
        cursor.execute(
            """
            UPDATE trade_fill f SET outcome_index = t.outcome_index,
                   outcome = CASE WHEN f.outcome = '' THEN t.outcome ELSE f.outcome END
            FROM outcome_token t
            WHERE t.market_id = %s AND f.market_id = %s AND f.token_id = t.token_id AND f.outcome_index IS NULL
            """,
            [market_id, market_id],
        )
    return moved


def dead_letter_retry(*, run: IngestRun | None, rows: list[Any], stream: str) -> tuple[int, str]:
    """Re-process dead-lettered market rows: (rows still failing, the last reason)."""
    for row in rows:
        try:
            parse_gamma_market(row)
        except MalformedRow as exc:
            return 1, str(exc)
    market_page_ingest(run=run, rows=rows, stream=stream)
    return 0, ""
