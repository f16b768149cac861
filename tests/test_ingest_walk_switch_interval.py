"""cursor_walk shortens the interpreter's switch interval while it runs (the writing thread gets the
GIL back from the read-ahead thread quickly) and gives the previous value back afterwards, also
when a page's write fails."""

from __future__ import annotations

import sys

import pytest

from ingest.frame import PageResult
from ingest.sources.data_api.walk import WALK_SWITCH_INTERVAL_SECONDS, WalkState, cursor_walk


class TwoPages:
    """Two one-row pages of a walk, the first naming the second by its cursor."""

    last_trace_id = ""

    def get_json(self, path: str, *, params: dict | None = None) -> object:
        if "cursor" not in (params or {}):
            return {"data": [{"timestamp": 1_790_000_002}],
                    "pagination": {"limit": 1, "offset": 0, "has_more": True, "next_cursor": "second"}}
        return {"data": [{"timestamp": 1_790_000_001}], "pagination": {"limit": 1, "offset": 0, "has_more": False,
                                                                         "next_cursor": None}}


@pytest.fixture
def long_switch_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.01)
    yield 0.01
    sys.setswitchinterval(before)


def walk(write_page) -> None:
    outcome = cursor_walk(client=TwoPages(), path="/v2/trades", state=WalkState(filters={}), write_page=write_page,
                          save_state=lambda state: None, max_pages=10, first_limit=1)
    assert outcome.ended, outcome.error


def test_pages_are_written_under_the_short_switch_interval_and_the_old_one_comes_back(long_switch_interval):
    seen: list[float] = []

    def write_page(rows, counter) -> PageResult:
        seen.append(sys.getswitchinterval())
        return PageResult(fetched=len(rows))

    walk(write_page)
    assert len(seen) == 2
    assert all(interval <= WALK_SWITCH_INTERVAL_SECONDS for interval in seen)
    assert sys.getswitchinterval() == pytest.approx(long_switch_interval)


def test_a_failed_write_gives_the_old_switch_interval_back(long_switch_interval):
    def write_page(rows, counter) -> PageResult:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        walk(write_page)
    assert sys.getswitchinterval() == pytest.approx(long_switch_interval)
