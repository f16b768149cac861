"""Shared fixtures: a flushed Redis per test and a real Celery worker over the real broker."""

from __future__ import annotations

import pytest
import redis as redis_lib
from django.conf import settings


@pytest.fixture
def redis_client():
    """The app's Redis database, empty at the start of the test."""
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def _isolated_app_redis():
    # Every test starts from an empty app database (changed-wallet queue, limiter, breaker state).
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def celery_worker_queues():
    return ["ingest", "compute"]


@pytest.fixture
def celery_worker(transactional_db, celery_worker_queues):
    """A real Celery worker thread consuming the real Redis broker (no eager mode).

    It needs committed data (the worker has its own DB connection), hence transactional_db.
    """
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from arbitra.celery import app

    def close_thread_connections(**_kwargs) -> None:
        # Runs in the worker thread that ran the task: its own connections, which would otherwise
        # outlive the test and keep pytest-django from dropping the test database.
        connections.close_all()

    task_postrun.connect(close_thread_connections, weak=False)
    app.control.purge()
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            queues=celery_worker_queues,
            perform_ping_check=False,
            shutdown_timeout=30,
            loglevel="WARNING",
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_thread_connections)


@pytest.fixture
def fast_http(settings):
    """Retries and back-off scaled down so failure scenarios run in seconds."""
    settings.HTTP_BACKOFF_BASE_SECONDS = 0.01
    settings.HTTP_BACKOFF_MAX_SECONDS = 0.05
    settings.HTTP_MAX_ATTEMPTS = 4
    return settings


@pytest.fixture
def emulator(settings, fast_http):
    """Start Polymarket emulators over real HTTP (manual clock) and point the sources at the last one."""
    from devtools.emulator import serve

    servers = []

    def start(**options):
        options.setdefault("clock", "manual")
        server = serve(**options)
        servers.append(server)
        settings.POLYMARKET_DATA_API_URL = server.url
        settings.POLYMARKET_GAMMA_API_URL = server.url
        return server

    yield start
    for server in servers:
        server.shutdown()
