"""A trade walk writes consecutive pages at once (cursor_walk(page_writers=…), INGEST_PAGE_WRITERS),
each on its own connection, and still moves its state in serving order: a page that commits before
the one before it is saved only after that one, and when that one fails the next run reads both
again and stores every fill once."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, transaction

from ingest.frame import PageResult
from ingest.models import TradeFill
from ingest.sources.data_api.walk import WalkState, cursor_walk
from ingest.sources.data_api.writing import trade_body_preparer, trade_page_v2_ingest
from tests.test_ingest_v2_live_trades import HEAD, trade_row

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_SECONDS = 10


def bodies(pages: int, rows_per_page: int = 3) -> list[bytes]:
    """Pages of a walk down from HEAD, page n naming page n + 1 by its cursor."""
    served = []
    for number in range(pages):
        rows = [trade_row(HEAD - number * rows_per_page - index, tx=number * 100 + index)
                for index in range(rows_per_page)]
        more = number + 1 < pages
        served.append(json.dumps({"data": rows, "pagination": {"limit": rows_per_page, "offset": 0, "has_more": more,
                                                               "next_cursor": f"page-{number + 1}" if more else None}})
                      .encode())
    return served


class Served:
    """Serves `bodies` by cursor, as the upstream serves a walk (any page again from its cursor)."""

    last_trace_id = ""

    def __init__(self, served: list[bytes]) -> None:
        self.served = served

    def get_json(self, path: str, *, params: dict | None = None, decode=json.loads) -> object:
        cursor = (params or {}).get("cursor")
        return decode(self.served[int(cursor.split("-")[1]) if cursor else 0])


def walk(served: list[bytes], write_page, *, state: WalkState | None = None, saved: list | None = None,
         writers: int = 2):
    state = state or WalkState(filters={})
    return cursor_walk(
        client=Served(served), path="/v2/trades", state=state, write_page=write_page,
        save_state=lambda s: saved.append(s.cursor) if saved is not None else None, max_pages=100, first_limit=3,
        prepare_body=trade_body_preparer(), page_writers=writers,
    )


def ingest(rows, counter) -> PageResult:
    return trade_page_v2_ingest(run=None, rows=rows, counter=counter)


def test_two_pages_are_written_at_once_on_connections_of_their_own(settings):
    settings.INGEST_PAGE_HELPER_PROCESS = False
    both_writing = threading.Barrier(2, timeout=WAIT_SECONDS)
    backends: set[int] = set()

    def write_page(rows, counter) -> PageResult:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.add(cursor.fetchone()[0])
        both_writing.wait()  # breaks (and the walk raises) unless the next page is being written meanwhile
        return ingest(rows, counter)

    outcome = walk(bodies(4), write_page)
    assert outcome.ended and outcome.pages == 4
    assert TradeFill.objects.count() == 12
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] not in backends, "pages are written off the walk's own connection"
    assert len(backends) == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("page-write")], "writer threads stopped"


def test_a_page_that_commits_first_is_saved_only_after_the_page_before_it(settings):
    settings.INGEST_PAGE_HELPER_PROCESS = False
    second_committed = threading.Event()
    finished: list[str] = []
    saved: list[str | None] = []

    def write_page(rows, counter) -> PageResult:
        first_page = rows.batch.newest_time.timestamp() == HEAD
        if first_page:
            assert second_committed.wait(WAIT_SECONDS), "the second page was not written beside the first"
        result = ingest(rows, counter)
        finished.append("first" if first_page else f"after:{len(saved)}")
        if not first_page:
            second_committed.set()
        return result

    outcome = walk(bodies(3), write_page, saved=saved)
    assert outcome.ended and outcome.pages == 3
    assert finished[:2] == ["after:0", "first"], "the second page committed while the first waited"
    assert saved == ["page-1", "page-2"], "the state moved page by page, in serving order"


def test_when_a_page_fails_after_the_next_one_committed_the_next_run_reads_both_and_stores_each_fill_once(settings):
    settings.INGEST_PAGE_HELPER_PROCESS = False
    served = bodies(3)
    second_committed = threading.Event()
    saved: list[str | None] = []

    def failing_first_page(rows, counter) -> PageResult:
        if rows.batch.newest_time.timestamp() == HEAD:
            assert second_committed.wait(WAIT_SECONDS)
            raise RuntimeError("the connection went away")
        result = ingest(rows, counter)
        second_committed.set()
        return result

    state = WalkState(filters={})
    with pytest.raises(RuntimeError, match="went away"):
        walk(served, failing_first_page, state=state, saved=saved)
    assert saved == [] and state.cursor is None, "the state stays before the failed page"
    assert 3 <= TradeFill.objects.count() <= 6, "what the pages beside it wrote is stored"

    outcome = walk(served, ingest, state=state, saved=saved)
    assert outcome.ended and outcome.pages == 3
    keys = list(TradeFill.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == 9 == len(set(keys)), "every fill stored once"
    assert outcome.result.inserted + outcome.result.duplicates == 9
    assert outcome.result.duplicates >= 3, "the page that had committed counts as duplicates"


def thread_recording_writer(threads: set[str]):
    def write_page(rows, counter) -> PageResult:
        threads.add(threading.current_thread().name)
        return ingest(rows, counter)

    return write_page


def test_inside_a_callers_transaction_the_pages_are_written_there_one_at_a_time(settings):
    settings.INGEST_PAGE_HELPER_PROCESS = False
    threads: set[str] = set()
    write_page = thread_recording_writer(threads)
    with transaction.atomic():
        outcome = walk(bodies(3), write_page)
        assert TradeFill.objects.count() == 9, "written in this transaction, visible to it"
    assert outcome.ended
    assert threads == {threading.current_thread().name}


def test_one_writer_writes_in_the_walks_own_thread(settings):
    settings.INGEST_PAGE_HELPER_PROCESS = False
    threads: set[str] = set()
    assert walk(bodies(3), thread_recording_writer(threads), writers=1).ended
    assert threads == {threading.current_thread().name}
    assert TradeFill.objects.count() == 9
