"""Data API fill pages → landing + trade facts, in one transaction per page.

Every write is an `INSERT … ON CONFLICT` over the fill's identity, so a page read twice (page
overlap, a redelivered task, a replay) changes nothing the second time. Rows are sorted by key
before writing: two workers upserting overlapping pages lock rows in the same order and cannot
deadlock. Wallets that got genuinely new fills are pushed to the changed-wallet queue only after
the transaction commits (ingest.frame.page_write), so compute never reads facts that could still
roll back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from arbitra.sql_arrays import text_array, timestamp_array
from ingest.frame import (
    PageResult,
    bulk_cursor,
    dead_letters_write,
    landing_page_body_of,
    landing_page_records,
    landing_page_write,
    page_write,
    payload_key,
    payload_text,
    rows_split,
)
from ingest.helper_process import in_helper_process
from ingest.http import json_body_decode
from ingest.models import IngestRun
from ingest.sources.data_api.parsing import (
    NotATrade,
    OccurrenceCounter,
    ParsedFill,
    parse_page,
    parse_trade,
    parse_trade_v2,
)
from ingest.sources.data_api.walk import BodyPreparer, PreparedBody, row_seconds


def trade_rows_parse(
    rows: Iterable[Any],
    *,
    parser: Callable[[dict], ParsedFill] = parse_trade,
    window: tuple[datetime, datetime] | None = None,
) -> tuple[list[tuple[ParsedFill, Any]], list[tuple[Any, str]], int]:
    """Split rows into (fill, payload) pairs, rejects with their reason, and a count of skipped rows:
    non-trades, and with `window` the fills outside the half-open [start, end)."""
    parsed, rejects, skipped = rows_split(rows, parse=parser, skip=(NotATrade,))
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
    return trade_fills_write(
        run=run, fetched=len(rows), parsed=parsed, rejects=rejects, skipped=skipped, source=source, stream=stream,
        queue_changes=queue_changes,
    )


_FILL_IDENTITY_FIELDS = (
    ("transaction_hash", "transactionHash"), ("token_id", "asset"), ("proxy_wallet", "proxyWallet"), ("side", "side"),
    ("size", "size"), ("price", "price"), ("timestamp", "timestamp"),
)


def fill_row_identity(row: Any) -> str:
    """A malformed fill row's identity for its dead letter: the identifying fields as sent (v2 or
    v1 names), never the sentinels that differ between feeds for the same fill."""
    if not isinstance(row, dict):
        return payload_key(row)
    values = [row.get(v2, row.get(v1)) for v2, v1 in _FILL_IDENTITY_FIELDS]
    if all(value is None for value in values):
        return payload_key(row)
    return payload_key(["fill", *[str(value).strip().lower() if value is not None else None for value in values]])


# COPY's text format gives four characters a meaning (ingest_fill_stage rows are COPY text).
_COPY_TEXT_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_text(value: str | None) -> str:
    r"""A text value as a field of COPY's text format: \N for NULL, its special characters escaped."""
    if value is None:
        return "\\N"
    if _COPY_TEXT_SPECIAL.search(value) is None:  # nearly every value: nothing to escape
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _CopyFields(dict):
    """Values → COPY text fields, each value formatted once: a page's fills repeat their market's
    title and slugs, their wallet's profile, their second (a dict lookup costs less than a call)."""

    def __init__(self, format_value: Callable[[Any], str]) -> None:
        super().__init__()
        self._format = format_value

    def __missing__(self, value: Any) -> str:
        field = self[value] = self._format(value)
        return field


@dataclass(frozen=True)
class PageMarkets:
    """The page's markets, one each in condition id order, with the title and slugs its fills
    reported: what a market first seen in a trade is created with. Each column is an array
    literal (arbitra.sql_arrays), built off the writing thread."""

    condition_ids: str
    titles: str
    slugs: str
    event_slugs: str


@dataclass(frozen=True)
class PageWallets:
    """The page's wallets, one each in address order: the profile its newest fill on the page
    reported ('' where none did) and its first and last trade time here. Each column is an array
    literal (arbitra.sql_arrays), built off the writing thread."""

    addresses: str
    pseudonyms: str
    names: str
    images: str
    first_trade_at: str
    last_trade_at: str


def _page_markets(fills: list[ParsedFill]) -> PageMarkets:
    texts: dict[str, list[str]] = {}
    for fill in fills:
        known = texts.get(fill.condition_id)
        if known is None:
            texts[fill.condition_id] = [fill.title or "", (fill.market_slug or "")[:300], (fill.event_slug or "")[:300]]
        elif not all(known):  # a text another fill of the market left out
            for position, value in enumerate((fill.title, fill.market_slug, fill.event_slug)):
                if not known[position] and value:
                    known[position] = value if position == 0 else value[:300]
    ids = sorted(texts)
    return PageMarkets(condition_ids=text_array(ids), titles=text_array(texts[i][0] for i in ids),
                       slugs=text_array(texts[i][1] for i in ids), event_slugs=text_array(texts[i][2] for i in ids))


def _page_wallets(fills: list[ParsedFill]) -> PageWallets:
    # Per wallet: [first time, last time, pseudonym, name, image, and the times those were said].
    # A profile field takes the newest fill's non-empty value: a wallet renamed between two of
    # its fills on one page is shown under its newer name.
    seen: dict[str, list[Any]] = {}
    for fill in fills:
        moment = fill.traded_at
        entry = seen.get(fill.wallet)
        if entry is None:
            entry = seen[fill.wallet] = [moment, moment, "", "", "", None, None, None]
        elif moment < entry[0]:
            entry[0] = moment
        elif moment > entry[1]:
            entry[1] = moment
        for position, value in ((2, fill.pseudonym), (3, fill.name), (4, fill.profile_image)):
            if value and (entry[position + 3] is None or moment >= entry[position + 3]):
                entry[position], entry[position + 3] = (value[:500] if position == 4 else value), moment
    addresses = sorted(seen)
    rows = [seen[address] for address in addresses]
    return PageWallets(
        addresses=text_array(addresses), pseudonyms=text_array(row[2] for row in rows),
        names=text_array(row[3] for row in rows), images=text_array(row[4] for row in rows),
        first_trade_at=timestamp_array(row[0] for row in rows), last_trade_at=timestamp_array(row[1] for row in rows),
    )


@dataclass(frozen=True)
class FillBatch:
    """Parsed fills made ready to write: all of a page's work that needs no database, so that a
    walk does it on its reader thread while PostgreSQL writes the page before (fill_batch_prepare).

    `fills` has one fill per key, in key order: two workers upserting overlapping pages lock rows
    in the same order and cannot deadlock. `landing_body` holds the page's records, one per key,
    in serving order — the order the upstream gave is part of what it said — as the landed page's
    body, which is what lands whenever every fill is stored or enriched (a page with stored
    duplicates lands only the rest, taken from it then); `landing_times` their trade times.

    Nothing of it is needed to write the page but bytes, strings and counts: `portable()` drops
    the fills, so that a batch prepared in the helper process comes back cheaply.
    """

    parsed_count: int
    fills: list[ParsedFill]  # empty in a portable batch
    fill_count: int
    knows_outcome_index: bool  # some fill says which outcome its token is (user-scoped rows)
    stage_copy: bytes  # `fills` as ingest_fill_stage rows in COPY text (_STAGE_COLUMNS)
    markets: PageMarkets
    wallets: PageWallets
    landing_times: list[datetime]  # per landed record, in serving order
    landing_body: bytes  # b"" when there are no fills
    newest_time: datetime | None
    oldest_time: datetime | None

    def portable(self) -> FillBatch:
        return replace(self, fills=[])

    def landing_records(self, keys: set[str]) -> list[tuple[str, str, datetime]]:
        """The landing records of these fill keys, as landing_page_write takes them."""
        return [(key, payload_text(payload), moment)
                for (key, payload), moment in zip(landing_page_records(self.landing_body), self.landing_times,
                                                  strict=True) if key in keys]


def fill_batch_prepare(parsed: list[tuple[ParsedFill, Any]]) -> FillBatch:
    """(numbered fill, record as received) pairs in serving order → a FillBatch."""
    # The same fill twice in one page must not make the multi-row INSERT touch one key twice:
    # a v1 record landed twice, or a v2 fill met on two reads of one walk. Genuine identical
    # fills of one transaction carry different occurrence numbers, so different keys.
    unique: dict[str, tuple[ParsedFill, Any]] = {}
    for fill, payload in parsed:
        existing = unique.get(fill.idempotency_key)
        # Keep the richer copy: a user-scoped row knows the outcome index the global feed blanks.
        if existing is None or (existing[0].outcome_index is None and fill.outcome_index is not None):
            unique[fill.idempotency_key] = (fill, payload)
    fills = [unique[key][0] for key in sorted(unique)]
    landing = [(key, payload, fill.traded_at) for key, (fill, payload) in unique.items()]
    times = [fill.traded_at for fill in fills]
    return FillBatch(
        parsed_count=len(parsed), fills=fills, fill_count=len(fills),
        knows_outcome_index=any(fill.outcome_index is not None for fill in fills),
        stage_copy=_stage_copy_text(fills), markets=_page_markets(fills), wallets=_page_wallets(fills),
        landing_times=[moment for _, _, moment in landing],
        landing_body=landing_page_body_of(landing) if landing else b"",
        newest_time=max(times, default=None), oldest_time=min(times, default=None),
    )


def _stage_copy_text(fills: list[ParsedFill]) -> bytes:
    """ingest_fill_stage rows in COPY text, built here rather than by psycopg's row writer (which
    needs the connection, so the writing thread, and costs twice as much). Ids, keys and side are
    validated hex, digits and BUY/SELL by the parser, so only free text is escaped. Repeated
    values (a second, an outcome) are formatted once and looked up. Decimals through `!s`: a
    bare f-string field goes through Decimal.__format__, five times slower than str for the same
    text. The page's market and wallet texts are not staged: they go once each (PageMarkets,
    PageWallets), not once per fill."""
    moment = _CopyFields(datetime.isoformat)
    text = _CopyFields(_copy_text)
    index = _CopyFields(lambda value: "\\N" if value is None else str(value))
    lines = [
        f"{fill.idempotency_key}\t{fill.transaction_hash}\t{fill.asset}\t{fill.condition_id}\t{fill.wallet}\t"
        f"{fill.side}\t{fill.size!s}\t{fill.price!s}\t{fill.usdc_size!s}\t{moment[fill.traded_at]}\t"
        f"{text[fill.outcome]}\t{index[fill.outcome_index]}\t{fill.occurrence}\n"
        for fill in fills
    ]
    return "".join(lines).encode()


@dataclass(frozen=True)
class PreparedTradePage:
    """A v2 page's rows parsed, numbered in serving order and made ready to write
    (trade_page_v2_prepare), so a walk prepares the next page on its reader thread while it
    writes this one. `parsed` and `batch` hold the fills inside `window` only."""

    fetched: int
    parsed: list[tuple[ParsedFill, Any]] | None  # None in a portable page: it cannot be previewed
    rejects: list[tuple[Any, str]]
    skipped: int
    window: tuple[datetime, datetime] | None
    batch: FillBatch

    def portable(self) -> PreparedTradePage:
        """This page without its parsed fills: what writing it needs, cheap to pickle."""
        return replace(self, parsed=None, batch=self.batch.portable())


def trade_page_v2_prepare(
    rows: Sequence[Any], counter: OccurrenceCounter, *, window: tuple[datetime, datetime] | None = None
) -> PreparedTradePage:
    """Parse a v2 page, number its identical fills in serving order with `counter` (the walk's, at
    the page's first row), and prepare the write of those inside `window` (a walk's prepare_page).

    Numbering sees every parsed row of the page — also those outside a replay window and those
    already stored — so the nth identical fill of a transaction gets the same key on every read.
    """
    parsed, rejects, skipped = rows_split(rows, parse=parse_trade_v2, skip=(NotATrade,))
    parsed = [(counter.number(fill), row) for fill, row in parsed]
    if window is not None:
        inside = [(fill, row) for fill, row in parsed if window[0] <= fill.traded_at < window[1]]
        skipped += len(parsed) - len(inside)
        parsed = inside
    return PreparedTradePage(fetched=len(rows), parsed=parsed, rejects=rejects, skipped=skipped, window=window,
                             batch=fill_batch_prepare(parsed))


def trade_body_prepare(
    content: bytes, occurrences: dict | None, *, window: tuple[datetime, datetime] | None = None
) -> PreparedBody:
    """A v2 trades page from its body as served: decoded, its envelope read, and prepared by
    trade_page_v2_prepare with the counter continued from `occurrences` — a walk's prepare_body,
    made to run in the helper process (trade_body_preparer), so it returns the page portable."""
    try:
        body = json_body_decode(content)
    except ValueError as exc:
        # Only the message goes back to the walk: a JSONDecodeError pickles the whole body with it.
        raise ValueError(str(exc)) from None
    rows, pagination = parse_page(body)
    counter = OccurrenceCounter.from_state(occurrences)
    page = trade_page_v2_prepare(rows, counter, window=window)
    return PreparedBody(pagination=pagination, seconds=row_seconds(rows), prepared=page.portable(),
                        occurrences=counter.state())


def trade_body_preparer(*, window: tuple[datetime, datetime] | None = None) -> BodyPreparer:
    """The v2 trade walks' prepare_body: trade_body_prepare in the helper process
    (ingest.helper_process; in this process when it is off or unavailable)."""
    return lambda content, occurrences: in_helper_process(trade_body_prepare, content, occurrences, window=window)


def trade_page_v2_ingest(
    *,
    run: IngestRun | None,
    rows: Sequence[Any] | PreparedTradePage,
    counter: OccurrenceCounter,
    stream: str = "trades",
    window: tuple[datetime, datetime] | None = None,
    dry_run: bool = False,
    queue_changes: bool = True,
) -> PageResult:
    """One page of a v2 walk: its rows (parsed, numbered with `counter` and prepared here), or a
    page trade_page_v2_prepare made of them with the same `window` (then `counter` is already at
    the page's last row and is left alone); then written as one transaction.
    """
    page = rows if isinstance(rows, PreparedTradePage) else trade_page_v2_prepare(rows, counter, window=window)
    if page.window != window:
        # A prepared page holds only its own window's fills: any other would write the wrong ones.
        raise ValueError(f"page prepared for window {page.window}, written for {window}")
    if dry_run:
        if page.parsed is None:
            raise ValueError("a portable page holds no parsed fills to preview: prepare dry runs in this process")
        return fills_preview(fetched=page.fetched, parsed=page.parsed, rejects=page.rejects, skipped=page.skipped)
    return trade_fills_write(
        run=run, fetched=page.fetched, parsed=page.batch, rejects=page.rejects, skipped=page.skipped, stream=stream,
        queue_changes=queue_changes,
    )


def trade_fills_write(
    *,
    run: IngestRun | None,
    fetched: int,
    parsed: list[tuple[ParsedFill, Any]] | FillBatch,
    rejects: list[tuple[Any, str]],
    skipped: int = 0,
    source: str = "data_api",
    stream: str = "trades",
    queue_changes: bool = True,
) -> PageResult:
    """Write parsed fills — (fill, record) pairs in serving order, or the FillBatch that
    fill_batch_prepare made of them — and dead-letter the rejects, as one page transaction."""
    batch = parsed if isinstance(parsed, FillBatch) else fill_batch_prepare(parsed)

    def write() -> PageResult:
        result = PageResult(fetched=fetched, skipped=skipped, duplicates=batch.parsed_count - batch.fill_count)
        result.dead_lettered = dead_letters_write(
            run=run, source=source, stream=stream, rejects=rejects, identity=fill_row_identity
        )
        if batch.fill_count:
            _fills_write(batch=batch, run=run, source=source, stream=stream, result=result)
        return result

    return page_write(write, queue_changes=queue_changes)


NEWEST_FILL_STREAM = "newest_fill"


def newest_fill_record(cursor, *, at: datetime) -> None:
    """Keep the newest stored fill's trade time on a cursor row, in the page's transaction (sent
    with its last statements, committed with it): the health page and /api/v1/ingest/status show
    its wall-clock age without reading the fill table at request time.

    A plain UPDATE that moves the time forward: a page with older fills (every page after a
    walk's first) matches no row and locks none, so concurrent pages do not wait on one another
    here — an INSERT … ON CONFLICT DO UPDATE would lock the row on every page until its commit.
    The row is made by the first page ever (DO NOTHING takes no lock either).
    """
    cursor.execute(
        """
        WITH moved AS (
            UPDATE ingest_cursor SET cursor_value = %(at)s, updated_at = now()
            WHERE source = 'data_api' AND stream = %(stream)s AND cursor_value < %(at)s
            RETURNING 1
        )
        INSERT INTO ingest_cursor (source, stream, cursor_value, state, updated_at)
        SELECT 'data_api', %(stream)s, %(at)s, '{}'::jsonb, now()
        WHERE NOT EXISTS (SELECT FROM moved)
          AND NOT EXISTS (SELECT FROM ingest_cursor WHERE source = 'data_api' AND stream = %(stream)s)
        ON CONFLICT (source, stream) DO NOTHING
        """,
        {"stream": NEWEST_FILL_STREAM, "at": at.astimezone(UTC).isoformat()},
        prepare=True,
    )


def trade_page_preview(
    *, rows: Sequence[Any], window: tuple[datetime, datetime] | None = None
) -> PageResult:
    """What trade_page_ingest would do, without writing anything (replay --dry-run)."""
    parsed, rejects, skipped = trade_rows_parse(rows, window=window)
    return fills_preview(fetched=len(rows), parsed=parsed, rejects=rejects, skipped=skipped)


def fills_preview(
    *, fetched: int, parsed: list[tuple[ParsedFill, Any]], rejects: list[tuple[Any, str]], skipped: int
) -> PageResult:
    keys = {fill.idempotency_key for fill, _ in parsed}
    with connection.cursor() as cursor:
        cursor.execute("SELECT idempotency_key FROM trade_fill WHERE idempotency_key = ANY(%s)", [sorted(keys)])
        stored = {row[0] for row in cursor.fetchall()}
    times = [fill.traded_at for fill, _ in parsed]
    return PageResult(
        fetched=fetched,
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
    k text, h text, token text, condition_id text, wallet text, side text,
    size numeric, price numeric, usdc numeric, ts timestamptz, outcome text, outcome_index smallint, occ smallint
) ON COMMIT DELETE ROWS
"""
_STAGE_COLUMNS = "k, h, token, condition_id, wallet, side, size, price, usdc, ts, outcome, outcome_index, occ"

# The page's wallets (PageWallets) as rows, in address order.
_PAGE_WALLETS = """
    unnest(%(addresses)s::text[], %(pseudonyms)s::text[], %(names)s::text[], %(images)s::text[],
           %(first_trade_at)s::timestamptz[], %(last_trade_at)s::timestamptz[])
        WITH ORDINALITY AS page (address, pseudonym, name, image, first_trade_at, last_trade_at, position)
"""


# Each staged fill's market, wallet and known outcome, found by one probe of each table's unique
# index per fill. OFFSET 0 keeps the subqueries from being flattened into joins, so the plan is
# a probe per fill whatever the planner believes of the tables' sizes. As joins they were planned
# as hashes of the whole wallet table, and a prepared statement keeps a plan made on its first,
# small tables: 13.7 ms a page at 38,561 wallets (auto_explain), linear in the wallets, and
# Polymarket has millions.
_PAGE_IDS = """
    JOIN LATERAL (SELECT known.id FROM market known WHERE known.condition_id = s.condition_id OFFSET 0) m ON true
    JOIN LATERAL (SELECT known.id FROM wallet known WHERE known.address = s.wallet OFFSET 0) w ON true
    LEFT JOIN LATERAL (SELECT known.outcome, known.outcome_index FROM outcome_token known
                       WHERE known.token_id = s.token OFFSET 0) t ON true
"""

# A page's markets and wallets not stored yet, by the same probes (OFFSET 0 keeps NOT EXISTS a
# per-row subplan: as an anti-join it too was planned as a hash of the whole table).
_MARKET_UNKNOWN = "NOT EXISTS (SELECT FROM market known WHERE known.condition_id = page.condition_id OFFSET 0)"
_WALLET_UNKNOWN = "NOT EXISTS (SELECT FROM wallet known WHERE known.address = page.address OFFSET 0)"


def _page_wallet_parameters(wallets: PageWallets) -> dict[str, str]:
    return {"addresses": wallets.addresses, "pseudonyms": wallets.pseudonyms, "names": wallets.names,
            "images": wallets.images, "first_trade_at": wallets.first_trade_at, "last_trade_at": wallets.last_trade_at}


def _wallets_touch(cursor, *, wallets: PageWallets, new_wallets: list[str]) -> None:
    """Move known wallets' first trade time and profile to what this page's fills say.

    Only wallets whose row changes are touched: an earlier first trade (a backfilled history) or
    a new pseudonym, name or image — rare, so a page updates almost no wallet row. The newest
    trade time is the drain's to keep (marts.services._wallets_last_trade_sync): it moves for
    nearly every wallet on every page. A plain UPDATE … FROM locks only the rows it changes (an
    INSERT … ON CONFLICT DO UPDATE locks every conflicting row, changed or not). Last statement
    of the page transaction on purpose: its row locks are held only until the commit that
    follows, so concurrent pages sharing wallets barely wait for one another.
    """
    cursor.execute(
        f"""
        UPDATE wallet AS w SET
            first_trade_at = LEAST(w.first_trade_at, page.first_trade_at),
            pseudonym = CASE WHEN page.pseudonym <> '' THEN page.pseudonym ELSE w.pseudonym END,
            name = CASE WHEN page.name <> '' THEN page.name ELSE w.name END,
            profile_image = CASE WHEN page.image <> '' THEN page.image ELSE w.profile_image END,
            updated_at = now()
        FROM {_PAGE_WALLETS}
        WHERE w.address = page.address AND NOT (page.address = ANY(%(new_wallets)s::text[]))
          AND (w.first_trade_at IS NULL OR page.first_trade_at < w.first_trade_at
               OR (page.pseudonym <> '' AND page.pseudonym <> w.pseudonym)
               OR (page.name <> '' AND page.name <> w.name)
               OR (page.image <> '' AND page.image <> w.profile_image))
        """,  # noqa: S608 - module constants, no input
        {**_page_wallet_parameters(wallets), "new_wallets": text_array(new_wallets)},
        prepare=True,
    )


def _fills_write(*, batch: FillBatch, run: IngestRun | None, source: str, stream: str, result: PageResult) -> None:
    with bulk_cursor() as cursor, bulk_cursor() as new_wallet_rows, bulk_cursor() as fill_rows:
        # Every statement below is prepared once per connection (prepare=True; the settings'
        # prepare_threshold lets psycopg honour it): parsing and planning them again on every
        # page cost ~5 ms of the server's ~45 a 1,000-row page. An ANALYZE of the tables they
        # read invalidates the cached plans, so plans follow the tables' growth.
        cursor.execute(_STAGE_TABLE_DDL, prepare=True)
        with cursor.copy(f"COPY ingest_fill_stage ({_STAGE_COLUMNS}) FROM STDIN") as copy:
            copy.write(batch.stage_copy)
        # The four statements below go to the server in one pipeline, answered in one round trip
        # (each round trip would wait, too, for the walk's reader thread to hand back the GIL).
        with connection.connection.pipeline():
            # Markets first seen in a trade get a pending row at once (fills need it), carrying the
            # title and slug the trade itself reported — real upstream text, never a placeholder —
            # until the Gamma job fetches their metadata. Known ones are told apart by index probes
            # (_MARKET_UNKNOWN).
            markets = batch.markets
            cursor.execute(
                f"""
                INSERT INTO market (condition_id, gamma_id, question, slug, description, category, tags, event_slug,
                                    event_title, outcomes, outcome_prices, volume, liquidity, active, closed, archived,
                                    uma_resolution_status, is_void, metadata_status, created_at, updated_at)
                SELECT page.condition_id, '', page.title, page.slug, '', '', '[]', page.event_slug,
                       '', '[]', '[]', 0, 0, true, false, false, '', false, 'pending', now(), now()
                FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[])
                    WITH ORDINALITY AS page (condition_id, title, slug, event_slug, position)
                WHERE {_MARKET_UNKNOWN}
                ORDER BY page.position
                ON CONFLICT (condition_id) DO NOTHING
                """,  # noqa: S608 - module constants, no input
                [markets.condition_ids, markets.titles, markets.slugs, markets.event_slugs],
                prepare=True,
            )
            # User-scoped rows reveal which outcome a token is; the global feed blanks it (so its
            # pages skip the statement).
            if batch.knows_outcome_index:
                cursor.execute(
                    """
                    INSERT INTO outcome_token (token_id, market_id, outcome_index, outcome)
                    SELECT DISTINCT ON (s.token) s.token, m.id, s.outcome_index, coalesce(s.outcome, '')
                    FROM ingest_fill_stage s
                    JOIN LATERAL (SELECT known.id FROM market known WHERE known.condition_id = s.condition_id
                                  OFFSET 0) m ON true
                    WHERE s.outcome_index IS NOT NULL ORDER BY s.token
                    ON CONFLICT DO NOTHING
                    """,
                    prepare=True,
                )
            # Wallets first seen on this page get their row now (fills need its id). Known wallets are
            # not touched here: updating them takes row locks, and a concurrent page sharing wallets
            # would wait on those locks until this transaction commits (see _wallets_touch below).
            # They are filtered out by a plain read first (_WALLET_UNKNOWN): an INSERT's conflict
            # check on a row that a concurrent page is updating would wait for that page's commit.
            new_wallet_rows.execute(
                f"""
                INSERT INTO wallet (address, pseudonym, name, profile_image, tracked, first_trade_at, last_trade_at,
                                    created_at, updated_at)
                SELECT page.address, page.pseudonym, page.name, page.image, false, page.first_trade_at,
                       page.last_trade_at, now(), now()
                FROM {_PAGE_WALLETS}
                WHERE {_WALLET_UNKNOWN}
                ORDER BY page.position
                ON CONFLICT (address) DO NOTHING
                RETURNING address
                """,  # noqa: S608 - module constants, no input
                _page_wallet_parameters(batch.wallets),
                prepare=True,
            )
            # A fill first seen on the global feed (outcome blanked) learns its outcome from a later
            # user-scoped read or from the token map; it is never inserted twice. The raw records land
            # with the fills they stored or enriched, in one LandingPage row: a duplicate (page
            # overlap, lookback, redelivery) changes nothing and lands nothing, so the landing holds
            # each upstream record once without a unique index of its own.
            #
            # New fills are inserted (DO NOTHING on the key); stored ones that did not know their
            # outcome learn it in a sibling UPDATE. Both see the statement's snapshot, so the UPDATE
            # never touches a row the INSERT has just written. (RETURNING xmax to tell inserts from
            # updates is not available on a partitioned table.)
            fill_rows.execute(
                f"""
                WITH page AS (
                    SELECT s.k, s.h, s.token, s.side, s.size, s.price, s.usdc, s.ts, s.occ,
                           m.id AS market_id, w.id AS wallet_id,
                           coalesce(nullif(s.outcome, ''), t.outcome, '') AS outcome,
                           coalesce(s.outcome_index, t.outcome_index) AS outcome_index
                    FROM ingest_fill_stage s
                    {_PAGE_IDS}
                ), written AS (
                    INSERT INTO trade_fill AS f (idempotency_key, source, transaction_hash, token_id, market_id, wallet_id,
                                                 side, size, price, usdc_size, traded_at, outcome, outcome_index,
                                                 occurrence, ingested_at)
                    SELECT k, %(source)s, h, token, market_id, wallet_id, side, size, price, usdc, ts, outcome,
                           outcome_index, occ, now()
                    FROM page ORDER BY k
                    ON CONFLICT (idempotency_key, traded_at) DO NOTHING
                    RETURNING idempotency_key, wallet_id, market_id
                ), enriched AS (
                    UPDATE trade_fill AS f
                    SET outcome_index = page.outcome_index,
                        outcome = CASE WHEN page.outcome <> '' THEN page.outcome ELSE f.outcome END
                    FROM page
                    WHERE f.idempotency_key = page.k AND f.traded_at = page.ts
                      AND f.outcome_index IS NULL AND page.outcome_index IS NOT NULL
                    RETURNING f.idempotency_key
                )
                SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM enriched),
                       ARRAY(SELECT DISTINCT wallet_id FROM written), ARRAY(SELECT DISTINCT market_id FROM written),
                       CASE WHEN (SELECT count(*) FROM written) + (SELECT count(*) FROM enriched) < %(fills)s
                            THEN ARRAY(SELECT idempotency_key FROM written UNION ALL
                                       SELECT idempotency_key FROM enriched) END
                """,  # noqa: S608 - module constants, no input
                {"source": source, "fills": batch.fill_count},
                prepare=True,
            )
            new_wallets = [row[0] for row in new_wallet_rows.fetchall()]
            # One row: the page's counts and changed ids, and the stored or enriched keys only when
            # some fill of the page was neither (1,000 rows of keys the page already holds, else).
            inserted, enriched, wallet_ids, market_ids, stored_keys = fill_rows.fetchone()
        result.inserted += inserted
        result.enriched += enriched
        result.changed_wallet_ids.update(wallet_ids)
        result.changed_market_ids.update(market_ids)
        with connection.connection.pipeline():
            if stored_keys is None:  # every fill of the page stored or enriched
                landing_page_write(cursor, run=run, source=source, stream=stream, times=batch.landing_times,
                                   body=batch.landing_body)
            else:
                landing_page_write(cursor, run=run, source=source, stream=stream,
                                   records=batch.landing_records(set(stored_keys)))
            newest_fill_record(cursor, at=batch.newest_time)
            _wallets_touch(cursor, wallets=batch.wallets, new_wallets=new_wallets)
    # Rows already stored count as duplicates, including those that only learnt their outcome.
    result.duplicates += batch.fill_count - result.inserted
    result.newest_time = batch.newest_time
    result.oldest_time = batch.oldest_time



_V1_KEYS = frozenset({"proxyWallet", "transactionHash", "conditionId", "outcomeIndex"})


def dead_letter_retry(*, run: IngestRun | None, rows: list[Any], stream: str) -> tuple[int, str]:
    """Re-process dead-lettered fill rows: (rows still failing, the last reason).

    Every row met since the v2 move is a v2 row; a v1 record (dead-lettered before it) is told
    by any camelCase identifying key — not by one key being present, which is exactly what a
    malformed row may lack.
    """
    parser = parse_trade if all(isinstance(row, dict) and _V1_KEYS & row.keys() for row in rows) else parse_trade_v2
    parsed, rejects, skipped = trade_rows_parse(rows, parser=parser)
    if rejects:
        return len(rejects), rejects[-1][1]
    trade_fills_write(run=run, fetched=len(rows), parsed=parsed, rejects=[], skipped=skipped, stream=stream)
    return 0, ""
