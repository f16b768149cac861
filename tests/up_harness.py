"""Running `manage.py up` from a test: free ports, a scratch database, its own state folder and Redis
databases, a marker in every process's environment to find whatever it started, and polling helpers
with generous deadlines (a loaded 2-core machine starts the service set in 20-60 s)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_marked(marker: str) -> list[int]:
    """Pids whose environment carries the marker: every process `up` started, however deep."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_for(check: Callable[[], object], *, timeout: float, what: str, every: float = 0.5, log: Path | None = None):
    """Poll `check` until it returns something truthy; fail naming `what` (and the log's tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            result = check()
            if result:
                return result
        time.sleep(every)
    tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


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


class UpRun:
    """One `manage.py up` child with free ports; `env` is what commands beside it should use too."""

    def __init__(self, *, database_url: str, state_dir: Path, redis_url: str, extra_env: dict[str, str] | None = None):
        self.marker = uuid.uuid4().hex
        self.web, self.flower, self.emulator = free_port(), free_port(), free_port()
        redis_base = redis_url.rsplit("/", 1)[0]
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "ARBITRA_UP_TEST": self.marker,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": f"{redis_base}/11",
            "CELERY_RESULT_BACKEND": f"{redis_base}/11",
            "ARBITRA_STATE_DIR": str(state_dir),
            "INGEST_TRADES_INTERVAL_SECONDS": "2",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.log: Path = state_dir / "up-0.log"
        self._runs = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web}"

    def argv(self) -> list[str]:
        return [sys.executable, "manage.py", "up", "--web-port", str(self.web), "--flower-port", str(self.flower),
                "--emulator-port", str(self.emulator)]  # fmt: skip

    def start(self) -> subprocess.Popen:
        self._runs += 1
        self.log = self.state_dir / f"up-{self._runs}.log"
        handle = self.log.open("w")
        self.process = subprocess.Popen(self.argv(), cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        return self.process

    def wait_ready(self, timeout: float = 240) -> None:
        wait_for(lambda: "Arbitra is ready" in self.log.read_text(errors="replace") or self._exited(), timeout=timeout,
                 what="the ready block", log=self.log)  # fmt: skip
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[-4000:]

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def status(self) -> dict:
        return json.loads((self.state_dir / "up-status.json").read_text())

    def manage(self, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
        beside = {name: value for name, value in self.env.items() if not name.startswith("POLYMARKET_")}
        return subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=beside, capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip

    def stop(self, signum: int = signal.SIGINT, timeout: float = 90) -> float:
        """Signal `up` and wait for it to exit; returns how long that took."""
        assert self.process is not None
        began = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"`up` did not stop within {timeout} s of {signal.Signals(signum).name}")
        return time.monotonic() - began

    def kill_everything(self) -> None:
        """Last-resort cleanup so a failed test leaves nothing running for the next one."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        for pid in processes_marked(self.marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
