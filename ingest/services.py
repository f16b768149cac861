"""Ingest writes: one page of upstream rows → landing + core facts, in one transaction.

Every write is an `INSERT … ON CONFLICT` over a strong key, so a page read twice (page overlap,
a redelivered task, a replay) changes nothing the second time. Rows are sorted by their key
before writing: two workers upserting overlapping pages then lock rows in the same order and
cannot deadlock. Wallets that got genuinely new fills are pushed to the changed-wallet queue only
after the transaction commits, so compute never reads facts that could still roll back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
import psycopg
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from ingest.changes import changed_wallets_push
from ingest.models import IngestDeadLetter, IngestRun, Market, RunKind, RunStatus
from ingest.sources.data_api.parsing import NotATrade, ParsedFill, parse_trade
from ingest.sources.gamma.parsing import ParsedMarket, parse_gamma_market
from ingest.sources.values import MalformedRow

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class PageResult:
    """What one page did; runs add these up into their stats."""

    fetched: int = 0
    inserted: int = 0
    duplicates: int = 0
    enriched: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    changed_wallet_ids: set[int] = field(default_factory=set)
    newest_time: datetime | None = None
    oldest_time: datetime | None = None
    changed_market_ids: set[int] = field(default_factory=set)
    resolved_market_ids: set[int] = field(default_factory=set)

    def add(self, other: PageResult) -> None:
        for name in ("fetched", "inserted", "duplicates", "enriched", "skipped", "dead_lettered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.changed_wallet_ids |= other.changed_wallet_ids
        self.changed_market_ids |= other.changed_market_ids
        self.resolved_market_ids |= other.resolved_market_ids
        if other.newest_time and (self.newest_time is None or other.newest_time > self.newest_time):
            self.newest_time = other.newest_time
        if other.oldest_time and (self.oldest_time is None or other.oldest_time < self.oldest_time):
            self.oldest_time = other.oldest_time

    def counts(self) -> dict[str, int]:
        return {
            "fetched": self.fetched,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "enriched": self.enriched,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "changed_wallets": len(self.changed_wallet_ids),
        }


def payload_key(payload: Any) -> str:
    """A content key for records without an upstream id: the same payload lands once."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def payload_text(payload: Any) -> str:
    """A decoded upstream record as compact JSON text, for the landing's verbatim `json` column.

    orjson: ~0.4 µs a trade row against ~4.4 µs for json.dumps, paid once per fill. It refuses
    what JSON text cannot hold as decoded here (integers beyond 64 bits, non-string keys from a
    caller): those few go through json.dumps.
    """
    try:
        return orjson.dumps(payload).decode()
    except orjson.JSONEncodeError:
        return json.dumps(payload, separators=(",", ":"))


@contextlib.contextmanager
def _bulk_cursor():
    """A server-side-binding cursor on Django's connection (same transaction).

    Django's default client-side binding renders every array parameter as a quoted literal in
    Python, which cost ~70 % of a page's time; bound parameters go to PostgreSQL as they are.
    """
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    try:
        yield cursor
    finally:
        cursor.close()


# --- shared pieces ------------------------------------------------------------------------------

DEADLOCK_ATTEMPTS = 3


def _is_deadlock(exc: BaseException) -> bool:
    # Raw psycopg cursors raise psycopg's class; Django's cursors wrap it as the cause.
    return isinstance(exc, psycopg.errors.DeadlockDetected) or isinstance(exc.__cause__, psycopg.errors.DeadlockDetected)


def _deadlock_retried(write: Callable[[], T]) -> T:
    """Run one page's transaction, again when PostgreSQL picked it as a deadlock victim.

    Jobs write shared rows in different orders — a trade page inserts a market, then locks fills
    it re-reads; the Gamma crawl locks one market's fills, then inserts the next market — and
    PostgreSQL breaks such a cycle by aborting one transaction (seen in the demo's first minute).
    A page's writes are idempotent, so the victim runs again once the other has committed instead
    of failing the whole run. Inside an outer transaction the abort is not ours to retry.
    """
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return write()
        except (psycopg.Error, DatabaseError) as exc:
            if not _is_deadlock(exc) or attempt == DEADLOCK_ATTEMPTS or connection.in_atomic_block:
                raise
            logger.warning("page transaction chosen as a deadlock victim (attempt %d of %d); running it again",
                           attempt, DEADLOCK_ATTEMPTS)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _dead_letters_write(*, run: IngestRun | None, source: str, stream: str, rejects: list[tuple[Any, str]]) -> int:
    """Dead-letter rejected rows once: a row already waiting (open) is not added again."""
    if not rejects:
        return 0
    keyed = {payload_key(row): (row, error) for row, error in rejects}
    already_open = set(
        IngestDeadLetter.objects.filter(
            source=source, stream=stream, payload_key__in=list(keyed), resolved_at__isnull=True
        ).values_list("payload_key", flat=True)
    )
    IngestDeadLetter.objects.bulk_create(
        [
            IngestDeadLetter(source=source, stream=stream, payload=row, payload_key=key, error=error, run=run)
            for key, (row, error) in sorted(keyed.items())
            if key not in already_open
        ]
    )
    return len(keyed) - len(already_open)


def _landing_write(
    cursor, *, run: IngestRun | None, source: str, stream: str, records: list[tuple[str, Any, datetime | None]]
) -> None:
    """records: (idempotency_key, payload as received, upstream time)."""
    if not records:
        return
    cursor.execute(
        """
        INSERT INTO ingest_landing (source, stream, idempotency_key, payload, upstream_time, received_at, run_id)
        SELECT %s, %s, k, p::json, t, now(), %s
        FROM unnest(%b::text[], %b::text[], %b::timestamptz[]) AS r(k, p, t)
        ON CONFLICT (source, stream, idempotency_key) WHERE NOT (source = 'data_api') DO NOTHING
        """,
        [
            source,
            stream,
            run.pk if run else None,
            [key for key, _, _ in records],
            [json.dumps(payload, separators=(",", ":")) for _, payload, _ in records],
            [moment for _, _, moment in records],
        ],
    )


# --- trades ---------------------------------------------------------------------------------------


def trade_rows_parse(
    rows: Iterable[Any],
    *,
    parser: Callable[[dict], ParsedFill] = parse_trade,
    window: tuple[datetime, datetime] | None = None,
) -> tuple[list[tuple[ParsedFill, Any]], list[tuple[Any, str]], int]:
    """Split rows into (fill, payload) pairs, rejects with their reason, and a count of skipped rows:
    non-trades, and with `window` the fills outside the half-open [start, end)."""
    parsed: list[tuple[ParsedFill, Any]] = []
    rejects: list[tuple[Any, str]] = []
    skipped = 0
    for row in rows:
        if not isinstance(row, dict):
            rejects.append((row, f"row: expected an object, got {type(row).__name__}"))
            continue
        try:
            parsed.append((parser(row), row))
        except NotATrade:
            skipped += 1
        except MalformedRow as exc:
            rejects.append((row, str(exc)))
    if window is not None:
        inside = [(fill, row) for fill, row in parsed if window[0] <= fill.traded_at < window[1]]
        skipped += len(parsed) - len(inside)
        parsed = inside
    return parsed, rejects, skipped


def trade_page_ingest(
    *,
    run: IngestRun | None,
    rows: Sequence[Any],
    source: str = "data_api",
    stream: str = "trades",
    parser: Callable[[dict], ParsedFill] = parse_trade,
    queue_changes: bool = True,
    window: tuple[datetime, datetime] | None = None,
) -> PageResult:
    """Land one page of trade rows and upsert their facts; malformed rows go to dead letters.

    With `window` (replay), fills outside the half-open [start, end) are counted as skipped and
    not written: a replay touches exactly its window.
    """
    parsed, rejects, skipped = trade_rows_parse(rows, parser=parser, window=window)
    # The same fill twice in one page (exact duplicate rows happen upstream) must not make the
    # multi-row INSERT touch one key twice.
    unique: dict[str, tuple[ParsedFill, Any]] = {}
    for fill, payload in parsed:
        existing = unique.get(fill.idempotency_key)
        # Keep the richer copy: a user-scoped row knows the outcome index the global feed blanks.
        if existing is None or (existing[0].outcome_index is None and fill.outcome_index is not None):
            unique[fill.idempotency_key] = (fill, payload)
    fills = [unique[key][0] for key in sorted(unique)]

    def write() -> PageResult:
        result = PageResult(fetched=len(rows), skipped=skipped, duplicates=len(parsed) - len(unique))
        with transaction.atomic():
            result.dead_lettered = _dead_letters_write(run=run, source=source, stream=stream, rejects=rejects)
            if fills:
                _fills_write(cursor_fills=fills, payloads=[unique[f.idempotency_key][1] for f in fills],
                             run=run, source=source, stream=stream, result=result)
        return result

    result = _deadlock_retried(write)
    if queue_changes and result.changed_wallet_ids:
        changed_wallets_push(wallet_ids=result.changed_wallet_ids)
    return result


def trade_page_preview(
    *, rows: Sequence[Any], window: tuple[datetime, datetime] | None = None
) -> PageResult:
    """What trade_page_ingest would do, without writing anything (replay --dry-run)."""
    parsed, rejects, skipped = trade_rows_parse(rows, window=window)
    keys = {fill.idempotency_key for fill, _ in parsed}
    with connection.cursor() as cursor:
        cursor.execute("SELECT idempotency_key FROM trade_fill WHERE idempotency_key = ANY(%s)", [sorted(keys)])
        stored = {row[0] for row in cursor.fetchall()}
    times = [fill.traded_at for fill, _ in parsed]
    return PageResult(
        fetched=len(rows),
        inserted=len(keys - stored),
        duplicates=len(parsed) - len(keys - stored),
        skipped=skipped,
        dead_lettered=len(rejects),
        newest_time=max(times) if times else None,
        oldest_time=min(times) if times else None,
    )


# Staging: one COPY per page into a session-temporary table, then set-based upserts from it.
# COPY moves a page to the server in one stream with no per-parameter quoting; every statement
# below then joins the stage against unique indexes.
_STAGE_TABLE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS ingest_fill_stage (
    k text, payload text, h text, token text, condition_id text, wallet text, side text,
    size numeric, price numeric, usdc numeric, ts timestamptz, outcome text, outcome_index smallint,
    pseudonym text, name text, image text, title text, slug text, event_slug text
) ON COMMIT DELETE ROWS
"""
_STAGE_COLUMNS = (
    "k, payload, h, token, condition_id, wallet, side, size, price, usdc, ts, outcome, outcome_index, "
    "pseudonym, name, image, title, slug, event_slug"
)


# One row per wallet on the page, in address order: what its fills say about it.
_STAGE_WALLETS = """
    SELECT wallet, coalesce(max(pseudonym), ''), coalesce(max(name), ''), coalesce(max(image), ''), false,
           min(ts), max(ts), now(), now()
    FROM ingest_fill_stage {where} GROUP BY wallet ORDER BY wallet
"""


def _wallets_touch(cursor, *, new_wallets: list[str]) -> None:
    """Move known wallets' first/last trade times and profile to what this page's fills say.

    Last statement of the page transaction on purpose: the row locks it takes are held only until
    the commit that follows, so concurrent pages sharing wallets barely wait for one another.
    First/last trade times come from trade times, never insert time. The WHERE skips no-op
    updates: most pages repeat known wallets, and a dead tuple per repeat would bloat the table.
    Rows go in address order (the GROUP BY's ORDER BY): two pages lock shared wallets in the
    same order and cannot deadlock.
    """
    cursor.execute(
        f"""
        INSERT INTO wallet AS w (address, pseudonym, name, profile_image, tracked, first_trade_at, last_trade_at,
                                 created_at, updated_at)
        {_STAGE_WALLETS.format(where="WHERE NOT (wallet = ANY(%s::text[]))")}
        ON CONFLICT (address) DO UPDATE SET
            first_trade_at = LEAST(w.first_trade_at, EXCLUDED.first_trade_at),
            last_trade_at = GREATEST(w.last_trade_at, EXCLUDED.last_trade_at),
            pseudonym = CASE WHEN EXCLUDED.pseudonym <> '' THEN EXCLUDED.pseudonym ELSE w.pseudonym END,
            name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE w.name END,
            profile_image = CASE WHEN EXCLUDED.profile_image <> '' THEN EXCLUDED.profile_image
                                 ELSE w.profile_image END,
            -- updated_at marks changes of what the wallet is (profile, first trade), not each
            -- new fill: bumping it per page would defeat in-place (HOT) updates.
            updated_at = CASE
                WHEN w.first_trade_at IS DISTINCT FROM LEAST(w.first_trade_at, EXCLUDED.first_trade_at)
                  OR (EXCLUDED.pseudonym <> '' AND EXCLUDED.pseudonym <> w.pseudonym)
                  OR (EXCLUDED.name <> '' AND EXCLUDED.name <> w.name)
                  OR (EXCLUDED.profile_image <> '' AND EXCLUDED.profile_image <> w.profile_image)
                THEN now() ELSE w.updated_at END
        WHERE w.first_trade_at IS DISTINCT FROM LEAST(w.first_trade_at, EXCLUDED.first_trade_at)
           OR w.last_trade_at IS DISTINCT FROM GREATEST(w.last_trade_at, EXCLUDED.last_trade_at)
           OR (EXCLUDED.pseudonym <> '' AND EXCLUDED.pseudonym <> w.pseudonym)
           OR (EXCLUDED.name <> '' AND EXCLUDED.name <> w.name)
           OR (EXCLUDED.profile_image <> '' AND EXCLUDED.profile_image <> w.profile_image)
        """,
        [new_wallets],
        prepare=True,
    )


def _fills_write(
    *, cursor_fills: list[ParsedFill], payloads: list[Any], run: IngestRun | None, source: str, stream: str,
    result: PageResult,
) -> None:
    fills = cursor_fills
    dumps = payload_text
    with _bulk_cursor() as cursor:
        # Every statement below is prepared once per connection (prepare=True): Django leaves
        # psycopg's automatic preparation off, and planning these statements again on every page
        # is a fixed cost that a 500-row page (the upstream's limit) feels. An ANALYZE of the
        # tables they read invalidates the cached plans, so plans follow the tables' growth.
        cursor.execute(_STAGE_TABLE_DDL, prepare=True)
        with cursor.copy(f"COPY ingest_fill_stage ({_STAGE_COLUMNS}) FROM STDIN") as copy:
            for fill, payload in zip(fills, payloads, strict=True):
                copy.write_row((
                    fill.idempotency_key, dumps(payload), fill.transaction_hash, fill.asset, fill.condition_id,
                    fill.wallet, fill.side, fill.size, fill.price, fill.usdc_size, fill.traded_at, fill.outcome,
                    fill.outcome_index, fill.pseudonym, fill.name, (fill.profile_image or "")[:500], fill.title,
                    (fill.market_slug or "")[:300], (fill.event_slug or "")[:300],
                ))
        # Markets first seen in a trade get a pending row at once (fills need it), carrying the
        # title and slug the trade itself reported — real upstream text, never a placeholder —
        # until the Gamma job fetches their metadata.
        cursor.execute(
            """
            INSERT INTO market (condition_id, gamma_id, question, slug, description, category, tags, event_slug,
                                event_title, outcomes, outcome_prices, volume, liquidity, active, closed, archived,
                                uma_resolution_status, is_void, metadata_status, created_at, updated_at)
            SELECT condition_id, '', coalesce(title, ''), coalesce(slug, ''), '', '', '[]', coalesce(event_slug, ''),
                   '', '[]', '[]', 0, 0, true, false, false, '', false, 'pending', now(), now()
            FROM (SELECT DISTINCT ON (condition_id) condition_id, title, slug, event_slug
                  FROM ingest_fill_stage ORDER BY condition_id) AS page_market
            WHERE NOT EXISTS (SELECT FROM market known WHERE known.condition_id = page_market.condition_id)
            ON CONFLICT (condition_id) DO NOTHING
            """,
            prepare=True,
        )
        # User-scoped rows reveal which outcome a token is; the global feed blanks it.
        cursor.execute(
            """
            INSERT INTO outcome_token (token_id, market_id, outcome_index, outcome)
            SELECT DISTINCT ON (s.token) s.token, m.id, s.outcome_index, coalesce(s.outcome, '')
            FROM ingest_fill_stage s JOIN market m ON m.condition_id = s.condition_id
            WHERE s.outcome_index IS NOT NULL ORDER BY s.token
            ON CONFLICT DO NOTHING
            """,
            prepare=True,
        )
        # Wallets first seen on this page get their row now (fills need its id). Known wallets are
        # not touched here: updating them takes row locks, and a concurrent page sharing wallets
        # would wait on those locks until this transaction commits (see _wallets_touch below).
        # They are filtered out by a plain read first: an INSERT's conflict check on a row that a
        # concurrent page is updating would wait for that page's commit.
        cursor.execute(
            f"""
            INSERT INTO wallet (address, pseudonym, name, profile_image, tracked, first_trade_at, last_trade_at,
                                created_at, updated_at)
            {_STAGE_WALLETS.format(where="WHERE NOT EXISTS (SELECT FROM wallet known WHERE known.address = wallet)")}
            ON CONFLICT (address) DO NOTHING
            RETURNING address
            """,
            prepare=True,
        )
        new_wallets = [row[0] for row in cursor.fetchall()]
        # A fill first seen on the global feed (outcome blanked) learns its outcome from a later
        # user-scoped read or from the token map; it is never inserted twice. The raw record lands
        # with the fill it stored or enriched: a duplicate (page overlap, lookback, redelivery)
        # changes nothing and lands nothing, so the landing holds each upstream record once
        # without a unique index of its own (see LandingRecord).
        cursor.execute(
            """
            WITH written AS (
                INSERT INTO trade_fill AS f (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id,
                                             side, size, price, usdc_size, traded_at, outcome, outcome_index,
                                             ingested_at)
                SELECT s.k, %(source)s, s.h, s.token, m.id, w.id, s.side, s.size, s.price, s.usdc, s.ts,
                       coalesce(nullif(s.outcome, ''), t.outcome, ''), coalesce(s.outcome_index, t.outcome_index), now()
                FROM ingest_fill_stage s
                JOIN market m ON m.condition_id = s.condition_id
                JOIN wallet w ON w.address = s.wallet
                LEFT JOIN outcome_token t ON t.token_id = s.token
                ORDER BY s.k
                ON CONFLICT (idempotency_key) DO UPDATE
                    SET outcome_index = EXCLUDED.outcome_index,
                        outcome = CASE WHEN EXCLUDED.outcome <> '' THEN EXCLUDED.outcome ELSE f.outcome END
                    WHERE f.outcome_index IS NULL AND EXCLUDED.outcome_index IS NOT NULL
                RETURNING (xmax = 0) AS inserted, idempotency_key, wallet_id, market_id
            ), landed AS (
                INSERT INTO ingest_landing (source, stream, idempotency_key, payload, upstream_time, received_at, run_id)
                SELECT %(source)s, %(stream)s, s.k, s.payload::json, s.ts, now(), %(run)s
                FROM ingest_fill_stage s JOIN written ON written.idempotency_key = s.k
                ORDER BY s.k
            )
            SELECT inserted, wallet_id, market_id FROM written
            """,
            {"source": source, "stream": stream, "run": run.pk if run else None},
            prepare=True,
        )
        for inserted, wallet_id, market_id in cursor.fetchall():
            if inserted:
                result.inserted += 1
                result.changed_wallet_ids.add(wallet_id)
                result.changed_market_ids.add(market_id)
            else:
                result.enriched += 1
        _wallets_touch(cursor, new_wallets=new_wallets)
    # Rows already stored count as duplicates, including those that only learnt their outcome.
    result.duplicates += len(fills) - result.inserted
    times = [fill.traded_at for fill in fills]
    result.newest_time = max(times)
    result.oldest_time = min(times)


# --- markets --------------------------------------------------------------------------------------

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
        "gamma_created_at": market.created_at,
        "gamma_updated_at": market.updated_at,
    }


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
    return _deadlock_retried(lambda: _market_page_write(run=run, rows=rows, stream=stream, parsed=parsed, rejects=rejects))


def _market_page_write(
    *, run: IngestRun | None, rows: Sequence[Any], stream: str, parsed: dict[str, tuple[ParsedMarket, Any]],
    rejects: list[tuple[Any, str]],
) -> tuple[PageResult, list[MarketChange]]:
    """One Gamma page's transaction: dead letters, landing, markets and their tokens."""
    result = PageResult(fetched=len(rows))
    changes: list[MarketChange] = []
    with transaction.atomic():
        result.dead_lettered = _dead_letters_write(run=run, source="gamma", stream=stream, rejects=rejects)
        if parsed:
            with _bulk_cursor() as cursor:
                _landing_write(
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
            _market_tokens_upsert(market_id=current.pk, market=market)
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


def _market_tokens_upsert(*, market_id: int, market: ParsedMarket) -> None:
    if not market.token_ids:
        return
    prices = market.outcome_prices if len(market.outcome_prices) == len(market.token_ids) else [None] * len(market.token_ids)
    outcomes = market.outcomes if len(market.outcomes) == len(market.token_ids) else [""] * len(market.token_ids)
    with _bulk_cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO outcome_token AS t (token_id, market_id, outcome_index, outcome, latest_price)
            SELECT tok, %s, idx, o, p FROM unnest(%b::text[], %b::smallint[], %b::text[], %b::numeric[]) AS r(tok, idx, o, p)
            ON CONFLICT (token_id) DO UPDATE SET outcome = EXCLUDED.outcome, latest_price = EXCLUDED.latest_price
            WHERE t.outcome IS DISTINCT FROM EXCLUDED.outcome OR t.latest_price IS DISTINCT FROM EXCLUDED.latest_price
            """,
            [market_id, market.token_ids, list(range(len(market.token_ids))), outcomes, prices],
        )
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


# --- dead letters ---------------------------------------------------------------------------------


def dead_letters_retry(*, dead_letter_ids: Sequence[int], run: IngestRun | None = None) -> dict[str, int]:
    """Re-process dead letters through the same page code; resolved ones are stamped, others counted."""
    resolved = still_failing = 0
    for letter in IngestDeadLetter.objects.filter(pk__in=dead_letter_ids, resolved_at__isnull=True).order_by("pk"):
        retry = _RETRY_BY_SOURCE.get(letter.source)
        letter.retry_count += 1
        letter.last_retry_at = timezone.now()
        if retry is None:
            letter.error = f"no retry for {letter.source}.{letter.stream} rows: fix the source and re-poll it"
            letter.save(update_fields=["retry_count", "last_retry_at", "error"])
            still_failing += 1
            continue
        # Retry writes no new dead letter: the existing one carries the outcome.
        outcome = retry(run=run, rows=[letter.payload], stream=letter.stream)
        if outcome.dead_lettered == 0:
            letter.resolved_at = timezone.now()
            resolved += 1
        else:
            still_failing += 1
            letter.error = outcome.last_error or letter.error
        letter.save(update_fields=["retry_count", "last_retry_at", "resolved_at", "error"])
    return {"resolved": resolved, "still_failing": still_failing}


DEAD_LETTER_RETRY_JOB = "ingest.dead_letters.retry"


def dead_letters_retry_run(*, dead_letter_ids: Sequence[int], task_id: str = "") -> IngestRun:
    """Retry dead letters as an ingest run of kind `retry`: the run row says who retried what and
    how it ended (`partial` while some still fail), and the landing records and facts the retry
    writes point at it. One retry run at a time (the job lock): a second gets `skipped_locked`."""
    from ingest.jobs import JobOutcome, JobRequest, job_run

    ids = list(dead_letter_ids)

    def body(run: IngestRun) -> JobOutcome:
        outcome = dead_letters_retry(dead_letter_ids=ids, run=run)
        status = RunStatus.SUCCEEDED if outcome["still_failing"] == 0 else RunStatus.PARTIAL
        return JobOutcome(status=status, stats={"dead_letters": len(ids), **outcome})

    return job_run(JobRequest(job_name=DEAD_LETTER_RETRY_JOB, kind=RunKind.RETRY, task_id=task_id), body)


@dataclass
class _RetryOutcome:
    dead_lettered: int
    last_error: str = ""


def _trade_retry(*, run, rows, stream) -> _RetryOutcome:
    parsed, rejects, _skipped = trade_rows_parse(rows)
    if rejects:
        return _RetryOutcome(dead_lettered=len(rejects), last_error=rejects[-1][1])
    trade_page_ingest(run=run, rows=[payload for _, payload in parsed], stream=stream)
    return _RetryOutcome(dead_lettered=0)


def _market_retry(*, run, rows, stream) -> _RetryOutcome:
    for row in rows:
        try:
            parse_gamma_market(row)
        except MalformedRow as exc:
            return _RetryOutcome(dead_lettered=1, last_error=str(exc))
    market_page_ingest(run=run, rows=rows, stream=stream)
    return _RetryOutcome(dead_lettered=0)


_RETRY_BY_SOURCE: dict[str, Callable[..., _RetryOutcome]] = {
    "data_api": _trade_retry,
    "gamma": _market_retry,
}
