"""Cursor walks over Data API v2 (ARCHITECTURE §7): the one way every v2 stream is read.

Facts that shape this code: pages come in the envelope `{data, pagination: {has_more,
next_cursor, …}}`; paging is by opaque signed cursor only (sending `offset` is a 400); `limit`
applies to the first page only, the cursor carries it after that; the cursor needs the SAME
filters re-sent; only `has_more` / `next_cursor` end a walk — an empty page in mid-walk is just
an empty page. Walks stay consistent while rows arrive, so a walk interrupted by an error or a
kill resumes from its stored cursor: the `WalkState` is saved after every committed page.

Identical fills of one transaction are numbered in serving order (`OccurrenceCounter`); the
counter's state travels with the cursor, so a second split by a page boundary or an interruption
is numbered as if the walk had never stopped.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.frame import PageResult, upstream_trace_id
from ingest.http import SourceClient, ThrottleTimeout, UpstreamBadPayload, UpstreamRejected, UpstreamUnavailable
from ingest.sources.data_api.parsing import OccurrenceCounter, Pagination, parse_page
from ingest.sources.values import MalformedBody

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (UpstreamUnavailable, ThrottleTimeout, UpstreamBadPayload)
MAX_FIRST_PAGE_LIMIT = 1000

# While a page is written, the reader thread decodes and prepares the next one in plain Python,
# holding the GIL for tens of milliseconds at a stretch. The writing thread, woken by each answer
# of PostgreSQL or Redis (eight a page), then waits for the interpreter's switch interval (5 ms
# by default) before the reader is made to hand the GIL back. During a walk the interval is
# shortened, so the writer resumes within half a millisecond (benchmarks/ingest_throughput.py
# --fills 300000, same code otherwise: 15.3 s -> 12.3 s for the walk).
WALK_SWITCH_INTERVAL_SECONDS = 0.0005
_switch_interval_lock = threading.Lock()
_walks_running = 0
_switch_interval_before = 0.0


@contextlib.contextmanager
def _short_switch_interval() -> Iterator[None]:
    """The interpreter's switch interval at most WALK_SWITCH_INTERVAL_SECONDS while any walk of
    this process runs (it is process-wide), restored when the last one ends."""
    global _walks_running, _switch_interval_before
    with _switch_interval_lock:
        if _walks_running == 0:
            _switch_interval_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_interval_before, WALK_SWITCH_INTERVAL_SECONDS))
        _walks_running += 1
    try:
        yield
    finally:
        with _switch_interval_lock:
            _walks_running -= 1
            if _walks_running == 0:
                sys.setswitchinterval(_switch_interval_before)


@dataclass
class WalkState:
    """Where a walk stands; JSON in a cursor row's `state` so it survives the process."""

    filters: dict[str, str]
    cursor: str | None = None  # the upstream's next_cursor; None: the walk starts at the head
    floor: int | None = None  # Unix seconds; reached once a row strictly older is served
    head: int | None = None  # newest timestamp of the walk's first page
    occurrences: dict | None = None  # OccurrenceCounter state at `cursor`
    pages: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "filters": self.filters, "cursor": self.cursor, "floor": self.floor, "head": self.head,
            "occurrences": self.occurrences, "pages": self.pages,
        }

    @classmethod
    def from_json(cls, data: dict | None) -> WalkState | None:
        if not isinstance(data, dict) or not isinstance(data.get("filters"), dict):
            return None
        return cls(
            filters={str(k): str(v) for k, v in data["filters"].items()},
            cursor=data.get("cursor") or None,
            floor=data.get("floor"),
            head=data.get("head"),
            occurrences=data.get("occurrences"),
            pages=int(data.get("pages") or 0),
        )


@dataclass
class WalkOutcome:
    result: PageResult = field(default_factory=PageResult)
    pages: int = 0
    reached: bool = False  # served a row older than the floor, or the end of the stream
    ended: bool = False  # the upstream said there is nothing more (has_more false / no cursor)
    stop_reason: str = ""  # "" (reached) | page_cap | upstream_error | cursor_rejected
    error: str = ""
    oldest_seen: int | None = None  # Unix seconds over every row served (written or not)
    newest_seen: int | None = None


# Gets the page's rows — or what the walk's `prepare_page` made of them on the reader thread.
PageWriter = Callable[[Any, OccurrenceCounter], PageResult]
# Gets a page's rows and the walk's occurrence counter as it stands at the page's first row, and
# numbers the rows with it (see cursor_walk): runs on the reader thread, never touches the database.
PagePreparer = Callable[[list[Any], OccurrenceCounter], Any]


@dataclass(frozen=True)
class PreparedBody:
    """What a BodyPreparer made of a page's body: everything the walk needs of the page, so the
    rows themselves need not come back from where it ran (see cursor_walk)."""

    pagination: Pagination
    seconds: list[int]  # row_seconds of the page's rows
    prepared: Any  # what write_page gets
    occurrences: dict | None  # the occurrence counter's state at the page's last row


# Gets a page's body as served and the occurrence counter's state at the page's first row: decodes
# the body (a ValueError when it is not JSON, as json_body_decode), reads the envelope (MalformedBody)
# and prepares the rows for write_page, numbering them. Must not touch the database: it may run in
# another process (ingest.helper_process).
BodyPreparer = Callable[[bytes, dict | None], PreparedBody]


def row_seconds(rows: list[Any]) -> list[int]:
    """The Unix seconds of the rows that carry a usable `timestamp` (the walk's floor test)."""
    seconds = []
    for row in rows:
        value = row.get("timestamp") if isinstance(row, dict) else None
        if (type(value) in (int, float) and value > 0) or (type(value) is str and value.isdigit()):
            seconds.append(int(value))
    return seconds


def _page_read(
    client: SourceClient, path: str, params: dict[str, Any], prepare_page: PagePreparer | None,
    prepare_body: BodyPreparer | None, occurrences: dict | None,
) -> tuple[list[int], Pagination, str, Any, OccurrenceCounter | None]:
    """One page: its rows' seconds, its pagination, the upstream's trace id of the response, what
    `prepare_body` or `prepare_page` makes of it (the rows themselves without either), and the
    counter that numbered them — started from `occurrences`, so at the page's last row now."""
    if prepare_body is not None:
        page = client.get_json(path, params=params, decode=lambda content: prepare_body(content, occurrences))
        return (page.seconds, page.pagination, client.last_trace_id, page.prepared,
                OccurrenceCounter.from_state(page.occurrences))
    body = client.get_json(path, params=params)
    rows, pagination = parse_page(body)
    if prepare_page is None:
        return row_seconds(rows), pagination, client.last_trace_id, rows, None
    counter = OccurrenceCounter.from_state(occurrences)
    return row_seconds(rows), pagination, client.last_trace_id, prepare_page(rows, counter), counter


def cursor_walk(
    *,
    client: SourceClient,
    path: str,
    state: WalkState,
    write_page: PageWriter,
    save_state: Callable[[WalkState], None],
    max_pages: int,
    first_limit: int,
    floor_below_head: int | None = None,
    prepare_page: PagePreparer | None = None,
    prepare_body: BodyPreparer | None = None,
    page_writers: int = 1,
) -> WalkOutcome:
    """Page `path` from `state` (head or stored cursor) until the floor or the end, writing each
    page as it comes and saving the walk state after it.

    `floor_below_head` sets the floor relative to the first page's newest row (a first poll with
    no high-water mark): upstream time, so our clock's skew cannot shift the window.

    The next page is read while this one is written (one reader thread; SourceClient is
    thread-safe): otherwise the walk waits on the upstream and on PostgreSQL in turn. Reading
    ahead changes nothing of what is stored or when the state moves — a page read ahead is
    written, and its cursor saved, only after the page before it committed; one read ahead of a
    page whose write failed is dropped, and the next run reads it again from the saved state.

    Without `prepare_page`, `write_page` gets the rows and the occurrence counter at the page's
    first row, and numbers them itself. With one, everything of a page that needs no database is
    done on the reader thread while the page before it is written: `prepare_page` gets the rows
    and the counter at the page's first row (continued from the page before's last, which is
    known once that page is prepared, before it is written) and numbers the rows with it;
    `write_page` then gets what it returns and the counter at the page's last row, which it must
    not advance. Numbering ahead numbers nothing for good: the counter's state is saved with the
    cursor only after the page's commit, as before, and a dropped read ahead drops its numbers.

    `prepare_body` instead of `prepare_page` takes the page from its body's bytes (BodyPreparer):
    decoding too leaves the reader thread, so it can hand the whole page to the helper process
    (ingest.helper_process) and hold the GIL only to wait. A body it finds not to be JSON is asked
    again like any bad body (SourceClient.get_json).

    `page_writers` > 1 (with a preparer: the pages are numbered before they are written) writes
    that many consecutive pages at once, each in its own transaction on its own thread and
    database connection (_PageWriters). The state still moves in serving order: a page's cursor
    is saved once it and every page before it committed. A page may thus commit before the one
    before it; if that one then fails, the saved state stays before it, and the next run reads
    both again: the later page's fills are already stored and count as duplicates (every write
    is keyed by the fill's identity, and the numbering of identical fills is the same on a
    second read). Inside a caller's transaction the pages are written there, one at a time.
    """
    if prepare_page is not None and prepare_body is not None:
        raise ValueError("a walk takes prepare_page or prepare_body, not both")
    if prepare_page is None and prepare_body is None:
        page_writers = 1  # write_page numbers the rows: page N+1's numbers wait for page N's
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-read-ahead")
    writers = _PageWriters(page_writers)
    try:
        with _short_switch_interval():
            return _cursor_walk(client=client, path=path, state=state, write_page=write_page,
                                save_state=save_state, max_pages=max_pages, first_limit=first_limit,
                                floor_below_head=floor_below_head, prepare_page=prepare_page,
                                prepare_body=prepare_body, reader=reader, writers=writers)
    finally:
        # A read ahead still in flight (its page's write failed) is not waited for: its answer
        # would be dropped anyway, and a slow upstream must not delay the error.
        reader.shutdown(wait=False, cancel_futures=True)
        writers.close()


class _PageWriters:
    """Runs page writes: in the calling thread when one at a time, else on up to `count` threads,
    each with its own database connection (Django keeps one per thread), started as pages come
    (a walk of one page starts one) and stopped, their connections closed, by close().

    Writing two pages at once is what lets a walk use a second core: a page's writing thread
    spends most of its time waiting on PostgreSQL's ~24 ms of work a 1,000-row page, work that
    cannot be made parallel within one transaction (docs/SCALE.md §2).
    """

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        if self.count > 1:
            from django.db import connection

            if connection.in_atomic_block:
                # Another connection could not see what the caller's transaction wrote, nor be rolled back with it.
                self.count = 1
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._outstanding = 0
        self._lock = threading.Lock()

    def submit(self, write: Callable[[], PageResult]) -> Future:
        future: Future = Future()
        if self.count == 1:
            try:
                future.set_result(write())
            except Exception as exc:  # handed to the walk, which decides (as before)
                future.set_exception(exc)
            return future
        context = contextvars.copy_context()  # the upstream trace id set for this page
        with self._lock:
            self._outstanding += 1
            if self._outstanding > len(self._threads) and len(self._threads) < self.count:
                thread = threading.Thread(target=self._serve, name=f"page-write-{len(self._threads) + 1}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put((future, context, write))
        return future

    def _serve(self) -> None:
        from django.db import connections

        try:
            while (job := self._jobs.get()) is not None:
                future, context, write = job
                try:
                    future.set_result(context.run(write))
                except BaseException as exc:  # the walk re-raises it in its own thread
                    future.set_exception(exc)
                finally:
                    with self._lock:
                        self._outstanding -= 1
        finally:
            connections.close_all()  # this thread's connections only

    def close(self) -> None:
        """Stop the threads once the writes given to them are done, and wait for them."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()


@dataclass
class _PageInFlight:
    """A page handed to the writers, with what the walk does once it is written (in serving order)."""

    written: Future
    seconds: list[int]
    floor: int | None
    last: bool  # the page ends the walk (has_more false, no cursor, or a row below the floor)
    ended: bool
    next_cursor: str | None
    occurrences: dict  # the occurrence counter's state at the page's last row


def _cursor_walk(
    *, client: SourceClient, path: str, state: WalkState, write_page: PageWriter,
    save_state: Callable[[WalkState], None], max_pages: int, first_limit: int, floor_below_head: int | None,
    prepare_page: PagePreparer | None, prepare_body: BodyPreparer | None, reader: ThreadPoolExecutor,
    writers: _PageWriters,
) -> WalkOutcome:
    outcome = WalkOutcome()
    limit = max(1, min(first_limit, MAX_FIRST_PAGE_LIMIT))
    ahead: tuple[dict[str, Any], Future] | None = None  # the next page's params and its read
    in_flight: collections.deque[_PageInFlight] = collections.deque()
    # Where the reading stands: ahead of `state` by the pages in flight (state moves as they commit).
    cursor, occurrences, floor, head = state.cursor, state.occurrences, state.floor, state.head
    submitted = 0
    while True:
        if submitted >= max_pages:
            if _pages_finish(in_flight, state=state, outcome=outcome, save_state=save_state):
                outcome.stop_reason = "page_cap"
            return outcome
        params: dict[str, Any] = dict(state.filters)
        if cursor:
            params["cursor"] = cursor
        else:
            params["limit"] = limit
        try:
            if ahead is not None and ahead[0] == params:
                seconds, pagination, trace_id, prepared, numbered = ahead[1].result()
            else:
                seconds, pagination, trace_id, prepared, numbered = _page_read(
                    client, path, params, prepare_page, prepare_body, occurrences
                )
            ahead = None
        except UpstreamRejected as exc:
            if not _pages_finish(in_flight, state=state, outcome=outcome, save_state=save_state):
                return outcome
            if cursor and _names_parameter(exc, "cursor"):
                # The upstream no longer takes this cursor (expired, re-signed): the walk starts
                # again from its head next run. Nothing is lost — the high-water mark has not
                # moved, so the new walk reads down to the same floor.
                outcome.stop_reason, outcome.error = "cursor_rejected", str(exc)
                return outcome
            outcome.stop_reason, outcome.error = "upstream_error", f"{type(exc).__name__}: {exc}"
            return outcome
        except (*TRANSIENT_ERRORS, MalformedBody) as exc:
            # MalformedBody also when prepare_page met rows out of serving order: nothing of the
            # page was numbered for good; it is read again.
            if _pages_finish(in_flight, state=state, outcome=outcome, save_state=save_state):
                outcome.stop_reason, outcome.error = "upstream_error", f"{type(exc).__name__}: {exc}"
            return outcome
        # Whether this page ends the walk is known before it is written: the floor (set from the
        # first page's newest row when there is no mark) and the upstream's has_more/next_cursor.
        if floor is None and head is None and floor_below_head is not None and seconds:
            floor = max(seconds) - floor_below_head
        if head is None and seconds:
            head = max(seconds)
        reached_floor = floor is not None and bool(seconds) and min(seconds) < floor
        ended = not pagination.has_more or not pagination.next_cursor
        last = ended or reached_floor
        submitted += 1
        if not last and submitted < max_pages:
            next_params = {**state.filters, "cursor": pagination.next_cursor}
            ahead = (next_params, reader.submit(_page_read, client, path, next_params, prepare_page, prepare_body,
                                                numbered.state() if numbered is not None else None))
        counter = numbered if numbered is not None else OccurrenceCounter.from_state(occurrences)
        trace = upstream_trace_id.set(trace_id)
        try:
            written = writers.submit(lambda prepared=prepared, counter=counter: write_page(prepared, counter))
        finally:
            upstream_trace_id.reset(trace)
        # The counter at the page's last row (without a preparer write_page numbered the rows,
        # in this thread: a walk without one writes one page at a time).
        occurrences_after = counter.state()
        in_flight.append(_PageInFlight(written, seconds, floor, last, ended, pagination.next_cursor, occurrences_after))
        while len(in_flight) >= writers.count or (in_flight and in_flight[0].written.done()):
            if not _page_finish(in_flight, state=state, outcome=outcome, save_state=save_state):
                return outcome
        if last:
            _pages_finish(in_flight, state=state, outcome=outcome, save_state=save_state)
            return outcome
        cursor, occurrences = pagination.next_cursor, occurrences_after


def _pages_finish(in_flight: collections.deque[_PageInFlight], *, state: WalkState, outcome: WalkOutcome,
                  save_state: Callable[[WalkState], None]) -> bool:
    """Finish every page in flight, in serving order; False when one stopped the walk."""
    while in_flight:
        if not _page_finish(in_flight, state=state, outcome=outcome, save_state=save_state):
            return False
    return True


def _page_finish(in_flight: collections.deque[_PageInFlight], *, state: WalkState, outcome: WalkOutcome,
                 save_state: Callable[[WalkState], None]) -> bool:
    """Wait for the oldest page in flight and move the walk past it: count it, then save the
    state at its cursor (not after the walk's last page: its caller moves the mark instead).

    False when its write failed. The pages after it are still waited for (they write on; one may
    commit) and counted, but the state stays before the failed page. A MalformedBody stops the
    walk (rows out of serving order: nothing of the page was numbered for good; it is read again);
    any other error is raised, as a write on this thread would raise it.
    """
    page = in_flight.popleft()
    try:
        result = page.written.result()
    except MalformedBody as exc:
        _pages_count_after_failure(in_flight, outcome)
        outcome.stop_reason, outcome.error = "upstream_error", f"{type(exc).__name__}: {exc}"
        return False
    except BaseException:
        _pages_count_after_failure(in_flight, outcome)
        raise
    _page_count(page, result, outcome)
    if page.seconds and state.head is None:
        state.head, state.floor = max(page.seconds), page.floor
    state.pages += 1
    if page.last:
        outcome.reached = True
        outcome.ended = page.ended
        return True
    state.cursor = page.next_cursor
    state.occurrences = page.occurrences
    save_state(state)
    return True


def _page_count(page: _PageInFlight, result: PageResult, outcome: WalkOutcome) -> None:
    outcome.pages += 1
    outcome.result.add(result)
    if page.seconds:
        oldest, newest = min(page.seconds), max(page.seconds)
        outcome.oldest_seen = oldest if outcome.oldest_seen is None else min(outcome.oldest_seen, oldest)
        outcome.newest_seen = newest if outcome.newest_seen is None else max(outcome.newest_seen, newest)


def _pages_count_after_failure(in_flight: collections.deque[_PageInFlight], outcome: WalkOutcome) -> None:
    """The pages written beside one that failed: waited for, and counted when they committed."""
    while in_flight:
        page = in_flight.popleft()
        try:
            result = page.written.result()
        except BaseException as exc:  # the first failure is the one the walk reports
            logger.warning("a page written beside a failed one failed too: %s: %s", type(exc).__name__, exc)
            continue
        _page_count(page, result, outcome)


def _names_parameter(exc: UpstreamRejected, parameter: str) -> bool:
    body = exc.json_body
    return exc.status == 400 and isinstance(body, dict) and body.get("parameter") == parameter


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def from_unix(seconds: int | str) -> datetime:
    return datetime.fromtimestamp(int(seconds), tz=UTC)


def wallet_stream_walk(
    *, client: SourceClient, wallet, stream: str, path: str, filters: dict[str, str], write_page: PageWriter,
    start_from_cursor: bool = False,
) -> WalkOutcome:
    """One wallet's walk of a user-scoped stream (history, activity, positions), resumed from
    where it stopped; its WalletCursor records the walk state, the attempt and, once the stream
    ended, the newest second served (forward walks start there next time)."""
    from django.conf import settings
    from django.utils import timezone

    from ingest.models import WalletCursor

    position, _ = WalletCursor.objects.get_or_create(wallet=wallet, stream=stream)
    filters = {"user": wallet.address, **filters}
    if start_from_cursor:
        # Forward walks re-read the second they stopped in (rows are keyed, so that is free).
        filters["start"] = position.cursor_value or "1"
    walk = WalkState.from_json(position.state.get("walk")) or WalkState(filters=filters)

    def save(state: WalkState) -> None:
        WalletCursor.objects.filter(pk=position.pk).update(state={"walk": state.to_json()})

    outcome = cursor_walk(
        client=client, path=path, state=walk, write_page=write_page, save_state=save,
        max_pages=settings.INGEST_WALLET_PAGES_PER_RUN, first_limit=settings.INGEST_TRADES_PAGE_SIZE,
    )
    now = timezone.now()
    if outcome.ended:
        newest = outcome.newest_seen
        cursor_value = str(newest) if newest is not None else position.cursor_value
        WalletCursor.objects.filter(pk=position.pk).update(
            state={}, attempted_at=now, completed_at=now, cursor_value=cursor_value
        )
    elif outcome.stop_reason == "cursor_rejected":
        WalletCursor.objects.filter(pk=position.pk).update(state={}, attempted_at=now)
    else:
        WalletCursor.objects.filter(pk=position.pk).update(state={"walk": walk.to_json()}, attempted_at=now)
    return outcome
