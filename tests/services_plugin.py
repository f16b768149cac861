"""Give the test run a real PostgreSQL and a real Redis before Django reads its settings.

When DATABASE_URL / REDIS_URL are set (CI, a developer's own servers) they are used as given.
Otherwise embedded servers are started from the pip-installed packages, on ports of their own so
a running `manage.py up` is not disturbed, and stopped when the run ends.

App keys and the Celery broker get separate Redis databases: each test flushes the app database,
and the broker's stays intact under the live worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

TEST_POSTGRES_PORT = 54339
TEST_REDIS_PORT = 63809
APP_REDIS_DB = 14
BROKER_REDIS_DB = 15
_started: list = []


def _with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _start_embedded_services() -> None:
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return
    from devtools.embedded import EmbeddedPostgres, EmbeddedRedis

    state_dir = Path(os.environ.get("ARBITRA_STATE_DIR", Path(__file__).resolve().parent.parent / ".arbitra"))
    if not os.environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(data_dir=state_dir / "test-postgres", port=TEST_POSTGRES_PORT)
        # A concurrent test run may already have started it: share it, and leave stopping to that run.
        already_running = postgres.is_running()
        os.environ["DATABASE_URL"] = postgres.start()
        if not already_running:
            _started.append(postgres)
    if not os.environ.get("REDIS_URL"):
        redis_server = EmbeddedRedis(data_dir=state_dir / "test-redis", port=TEST_REDIS_PORT)
        already_running = redis_server.is_running()
        os.environ["REDIS_URL"] = redis_server.start()
        if not already_running:
            _started.append(redis_server)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    _start_embedded_services()
    redis_url = os.environ["REDIS_URL"]
    os.environ["REDIS_URL"] = _with_redis_db(redis_url, APP_REDIS_DB)
    os.environ["CELERY_BROKER_URL"] = _with_redis_db(redis_url, BROKER_REDIS_DB)
    os.environ["CELERY_RESULT_BACKEND"] = _with_redis_db(redis_url, BROKER_REDIS_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")


def pytest_unconfigure(config) -> None:
    while _started:
        _started.pop().stop()
