"""SIGKILL of a whole worker mid-walk: the task is redelivered, resumes the walk, and the data ends complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from ingest.models import IngestCursor, IngestRun, RunStatus
from tests.test_ingest_live_trades import completeness

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
VISIBILITY_TIMEOUT = 10


def _worker_env(upstream_url: str) -> dict[str, str]:
    db = connection.settings_dict
    database_url = f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "POLYMARKET_DATA_API_URL": upstream_url,
        "POLYMARKET_GAMMA_API_URL": upstream_url,
        # Short timeouts so redelivery happens within the test, still in the safe order:
        # soft limit < hard limit < visibility timeout.
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "CELERY_TASK_TIME_LIMIT": str(VISIBILITY_TIMEOUT - 1),
        "CELERY_TASK_SOFT_TIME_LIMIT": str(VISIBILITY_TIMEOUT - 2),
        "HTTP_BACKOFF_BASE_SECONDS": "0.01",
        "HTTP_BACKOFF_MAX_SECONDS": "0.05",
        "DB_CONN_MAX_AGE": "0",
        # Pages of 300 rows: a few slow pages per walk, so the kill lands mid-walk and the rest fits the time limit.
        "INGEST_TRADES_PAGE_SIZE": "300",
    }


def _start_worker(env: dict[str, str], name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "arbitra", "worker", "-Q", "ingest", "-n", f"{name}@%h",
         "--concurrency", "1", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _empty_the_broker() -> None:
    """Start without messages (or unacknowledged ones) left by earlier tests on this broker."""
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("ingest", "unacked", "unacked_index", "unacked_mutex")
    broker.close()


def _broker_state() -> str:
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = {key: broker.type(key) for key in broker.keys("*")}
    return f"broker keys {keys!r}, unacked {broker.zrange('unacked_index', 0, -1, withscores=True)!r} at {time.time()}"


def _wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what if isinstance(what, str) else what()}")


def test_a_task_whose_worker_is_killed_is_redelivered_and_nothing_is_lost(emulator):
    from ingest.tasks import JOB_TASKS

    # Every response is slow, so the run is certainly in flight when the worker dies.
    upstream = emulator(seed=31, scenario="steady,slow", history_seconds=240, slow_rate=1.0,
                        slow_min_seconds=0.8, slow_max_seconds=0.8)
    _empty_the_broker()
    env = _worker_env(upstream.url)
    first = _start_worker(env, "doomed")
    second = None
    try:
        JOB_TASKS["data_api.trades"].apply_async()
        _wait_for(lambda: IngestRun.objects.filter(status=RunStatus.RUNNING).exists(), timeout=60, what="the run to start")
        # Killed once a page is committed and its walk state saved: the walk is in progress.
        _wait_for(_walk_in_progress, timeout=60, what="the first page to be committed")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_run = IngestRun.objects.get(status=RunStatus.RUNNING)

        # Redis hands an unacknowledged message to another consumer once the visibility timeout
        # has passed; the surviving worker checks for such messages every few seconds.
        time.sleep(VISIBILITY_TIMEOUT + 1)
        second = _start_worker(env, "survivor")
        _wait_for(
            lambda: IngestRun.objects.filter(status=RunStatus.SUCCEEDED).exists(),
            timeout=VISIBILITY_TIMEOUT * 6,
            what=lambda: "the redelivered task to finish: "
            + repr(list(IngestRun.objects.values_list("status", "task_id", "error_text"))) + _broker_state(),
        )
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
    killed_run.refresh_from_db()
    assert killed_run.status == RunStatus.ABANDONED
    finished = IngestRun.objects.get(status=RunStatus.SUCCEEDED)
    assert finished.task_id == killed_run.task_id, "the same task message was delivered again"
    assert finished.stats_json["resumed_walk"], "the redelivered run carries on from the killed run's cursor"
    report = completeness(upstream)
    assert report.complete, report.as_dict()


def _walk_in_progress() -> bool:
    cursor = IngestCursor.objects.filter(source="data_api", stream="trades").first()
    return bool(cursor and (cursor.state.get("walk") or {}).get("cursor"))
