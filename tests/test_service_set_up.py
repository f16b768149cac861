"""`manage.py up` as an operator runs it: everything starts, answers, and stops without orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_marked(marker: str) -> list[int]:
    """Pids whose environment carries the marker: every process `up` started, however deep."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def scratch_database():
    """A database of its own: `up` migrates it like a fresh install."""
    base = urlsplit(os.environ["DATABASE_URL"])
    name = f"arbitra_up_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit((base.scheme, base.netloc, "/postgres", "", ""))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit((base.scheme, base.netloc, f"/{name}", "", ""))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_up_starts_every_service_serves_data_and_stops_without_orphans(scratch_database, tmp_path):
    from django.conf import settings

    marker = f"ARBITRA_UP_TEST={uuid.uuid4().hex}"
    web, flower, emulator = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        marker.split("=")[0]: marker.split("=")[1],
        "DATABASE_URL": scratch_database,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.REDIS_URL.rsplit("/", 1)[0] + "/11",
        "CELERY_RESULT_BACKEND": settings.REDIS_URL.rsplit("/", 1)[0] + "/11",
        "ARBITRA_STATE_DIR": str(tmp_path),
        "INGEST_TRADES_INTERVAL_SECONDS": "2",
    }
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--web-port", str(web), "--flower-port", str(flower),
         "--emulator-port", str(emulator)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{web}"
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                ready = requests.get(f"{base}/readyz", timeout=10)
                if ready.status_code == 200:
                    break
            time.sleep(1)
        assert ready is not None and ready.status_code == 200, (tmp_path / "up.log").read_text()[-3000:]

        password = (tmp_path / "flower_password").read_text().strip()
        workers: list[str] = []
        while time.monotonic() < deadline and len(workers) < 2:
            with contextlib.suppress(requests.ConnectionError, requests.Timeout, ValueError):
                workers = list(requests.get(f"http://127.0.0.1:{flower}/api/workers", params={"refresh": 1},
                                            auth=("admin", password), timeout=20).json())
            time.sleep(1)
        assert sorted(name.split("@")[0] for name in workers) == ["compute", "ingest"]
        assert requests.get(f"http://127.0.0.1:{flower}/", timeout=5).status_code == 401

        # Data flows: the emulator's trades reach the ingest status endpoint.
        status = {}
        while time.monotonic() < deadline:
            rows = requests.get(f"{base}/api/v1/ingest/status", timeout=5).json()["data"]
            status = {row["job_name"]: row for row in rows}
            if status.get("ingest.data_api.trades", {}).get("last_run_status") == "succeeded":
                break
            time.sleep(1)
        assert status["ingest.data_api.trades"]["last_run_status"] == "succeeded"
        banner = (tmp_path / "up.log").read_text()
        assert "password" in banner and "shown only this once" in banner

        # A command run beside the demo (replay, ingest --once) reads the demo's emulator.
        beside = {name: value for name, value in env.items() if not name.startswith("POLYMARKET_")}
        upstream = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from django.conf import settings; print(settings.POLYMARKET_DATA_API_URL)"],
            cwd=ROOT, env=beside, capture_output=True, text=True, timeout=60, check=True,
        )
        assert upstream.stdout.strip().splitlines()[-1] == f"http://127.0.0.1:{emulator}"
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        log.close()
    time.sleep(1)
    assert _processes_marked(marker) == [], "processes outlived `up`"
    assert "all processes stopped" in (tmp_path / "up.log").read_text()
    assert not (tmp_path / "upstream.env").exists(), "commands after the demo read the configured upstream again"
