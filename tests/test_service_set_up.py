"""`manage.py up` as an operator runs it: everything starts, answers, and stops without orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests

from tests import up_harness

ROOT = up_harness.ROOT
pytestmark = pytest.mark.slow


_free_port = up_harness.free_port
_processes_marked = up_harness.processes_marked
scratch_database = up_harness.scratch_database


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
        assert "Arbitra is ready" in banner and f"password in {tmp_path / 'admin_password'}" in banner
        assert (tmp_path / "admin_password").stat().st_mode & 0o777 == 0o600

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
