"""Trade walks prepare their pages in the helper process (ingest.helper_process): the same page as
prepared here, the same errors, and no page lost when the helper dies or is switched off."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from ingest.helper_process import helper_pids, helper_stop, in_helper_process
from ingest.models import RunStatus, TradeFill
from ingest.registry import ingest_job_execute
from ingest.sources.data_api.writing import trade_body_prepare
from ingest.sources.values import MalformedBody
from tests.landing import landed_trade_records
from tests.test_ingest_v2_live_trades import HEAD, page, status, trade_row, upstream  # noqa: F401 - fixture
from tests.test_parsers import FIXTURES_DIR, load_fixture

RECORDED_PAGES = ("v2/polymarket-bot-v2/data-v2-trades-v1-page1.json", "v2/polymarket-bot-v2/data-v2-trades-v1-page2.json")


@pytest.fixture
def no_helper_yet():
    helper_stop()
    assert helper_pids() == []
    yield
    helper_stop()


def recorded_body(relative_path: str) -> bytes:
    load_fixture(relative_path)  # fails, naming where, when the fixtures are missing
    return (FIXTURES_DIR / relative_path).read_bytes()


def test_the_helper_prepares_a_recorded_page_exactly_as_this_process_does(no_helper_yet):
    occurrences = None
    for relative_path in RECORDED_PAGES:
        body = recorded_body(relative_path)
        here = trade_body_prepare(body, occurrences)
        there = in_helper_process(trade_body_prepare, body, occurrences)
        assert there == here
        assert here.prepared.batch.fill_count > 0 and here.prepared.batch.fills == [], "portable: no fills"
        occurrences = there.occurrences
    assert helper_pids() and os.getpid() not in helper_pids(), "prepared in another process"


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        (b'{"data": [{"proxy_wallet": "0x', ValueError, "Unterminated string"),
        (b"<html><body>Just a moment</body></html>", ValueError, "Expecting value"),
        (b'{"data": [], "pagination": {"has_more": "yes"}}', MalformedBody, "pagination"),
    ],
    ids=["truncated-json", "html", "broken-envelope"],
)
def test_a_bad_body_raises_in_the_walk_as_it_would_here(no_helper_yet, body, error, says):
    with pytest.raises(error, match=says) as raised:
        in_helper_process(trade_body_prepare, body, None)
    # A bare ValueError, not a JSONDecodeError: that one would carry the whole body back across.
    assert type(raised.value) is error


@pytest.mark.django_db(transaction=True)
def test_the_live_walk_prepares_its_pages_in_the_helper(no_helper_yet, upstream):  # noqa: F811 - fixture
    rows = [trade_row(HEAD, tx=1), trade_row(HEAD, tx=1), trade_row(HEAD - 10, tx=2)]
    upstream.script(status(5), page(rows[:2], next_cursor="c1"), page(rows[2:], next_cursor=None))
    run = ingest_job_execute(job_name="data_api.trades")

    assert run.status == RunStatus.SUCCEEDED, run.error_text
    assert helper_pids(), "the walk's pages went to the helper process"
    assert TradeFill.objects.count() == 3, "two identical fills of one transaction stay two"
    assert [payload for _, _, payload in landed_trade_records()] == rows, "every record landed, in serving order"


@pytest.mark.django_db(transaction=True)
def test_a_killed_helper_costs_no_page_and_a_new_one_takes_over(no_helper_yet, upstream, caplog):  # noqa: F811
    in_helper_process(int)
    [killed] = helper_pids()
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while killed in helper_pids() and time.monotonic() < deadline:
        time.sleep(0.05)

    upstream.script(status(5), page([trade_row(HEAD, tx=1)], next_cursor="c1"),
                    page([trade_row(HEAD - 10, tx=2)], next_cursor=None))
    with caplog.at_level(logging.WARNING, logger="ingest.helper_process"):
        run = ingest_job_execute(job_name="data_api.trades")

    assert run.status == RunStatus.SUCCEEDED, run.error_text
    assert TradeFill.objects.count() == 2
    assert "page helper process unavailable" in caplog.text, "the page it could not take was prepared here"
    assert helper_pids() and killed not in helper_pids(), "the next page started a new helper"


def test_switched_off_everything_runs_in_this_process(no_helper_yet, settings):
    settings.INGEST_PAGE_HELPER_PROCESS = False
    assert in_helper_process(os.getpid) == os.getpid()
    assert helper_pids() == []
    settings.INGEST_PAGE_HELPER_PROCESS = True
    assert in_helper_process(os.getpid) != os.getpid()


def test_a_call_interrupted_before_its_answer_never_hands_that_answer_to_the_next_call(no_helper_yet):
    class TimeLimit(Exception):
        """What a task's soft time limit raises, asynchronously, in the waiting thread."""

    def time_limit(signum, frame):
        raise TimeLimit

    previous = signal.signal(signal.SIGALRM, time_limit)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(TimeLimit):
            in_helper_process(time.sleep, 1.0)  # interrupted while the helper still works on it
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    interrupted = helper_pids()

    assert in_helper_process(str, "the next call's answer") == "the next call's answer"
    assert in_helper_process(os.getpid) not in (os.getpid(), *interrupted), "a new helper took over"
