"""Run the service set's processes as children of one command, with prefixed logs and restarts.

Each child gets its own process group, so stopping it also stops whatever it forked (gunicorn
workers, Celery pool processes). On Linux the kernel also sends each child SIGTERM if this
supervisor dies without cleaning up (PR_SET_PDEATHSIG).

A child that exits on its own is started again after a back-off (1 s, doubling to 30 s; reset once
it has stayed up a minute), so one dead worker never takes the API down. Only when one child has
failed `max_failures` times within `failure_window` seconds does `supervise()` give up and name it.

The supervisor keeps a status file (pid and start time of itself and of every child, restart
counts, last exit codes): the web process reads it for the health page and /metrics, and the next
supervisor on the same state folder reads it to find and stop children a killed predecessor left.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from arbitra.health import process_start_ticks

_COLOURS = ["36", "32", "33", "35", "34", "31", "96", "92"]
_PR_SET_PDEATHSIG = 1
_TAIL_LINES = 30


def _die_with_parent() -> None:
    """Runs in the child between fork and exec."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    #: Runs (in a thread of its own) after every start, e.g. to bring a restarted emulator's clock forward.
    after_start: Callable[[subprocess.Popen], None] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen
    reader: threading.Thread
    started_at: float
    tail: deque = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))
    restarts: int = 0
    last_exit: int | None = None
    last_restart_at: str | None = None
    restart_due: float | None = None
    backoff: float = 1.0
    failures: deque = field(default_factory=deque)


class ProcessSupervisor:
    def __init__(
        self,
        *,
        stream=None,
        colour: bool | None = None,
        stop_timeout: float = 20.0,
        log_dir: Path | None = None,
        status_file: Path | None = None,
        max_failures: int = 5,
        failure_window: float = 120.0,
        max_backoff: float = 30.0,
        stable_after: float = 60.0,
    ) -> None:
        self.stream = stream or sys.stdout
        self.colour = self.stream.isatty() if colour is None else colour
        self.stop_timeout = stop_timeout
        self.log_dir = log_dir
        self.status_file = status_file
        self.max_failures = max_failures
        self.failure_window = failure_window
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.children: list[_Child] = []
        self.since = _utc_now()
        self._write_lock = threading.Lock()
        self._width = 8
        # While False, children's lines go to their log files only (the start-up screen stays short).
        self._echo_children = threading.Event()
        self._echo_children.set()
        self._log_files: dict[str, object] = {}
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    # --- output ------------------------------------------------------------------------------------

    def say(self, name: str, line: str) -> None:
        prefix = f"{name:<{self._width}}|"
        if self.colour:
            index = sum(map(ord, name)) % len(_COLOURS)
            prefix = f"\033[{_COLOURS[index]}m{prefix}\033[0m"
        # After a hang-up the terminal is gone: stopping everything must not fail on a write.
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            self.stream.write(f"{prefix} {line.rstrip()}\n")
            self.stream.flush()

    def echo_children(self, on: bool) -> None:
        if on:
            self._echo_children.set()
        else:
            self._echo_children.clear()

    def _log_file(self, name: str):
        if self.log_dir is None:
            return None
        handle = self._log_files.get(name)
        if handle is None:
            handle = (self.log_dir / f"{name}.log").open("a", encoding="utf-8", buffering=1)
            self._log_files[name] = handle
        return handle

    def _pump(self, child: _Child) -> None:
        process = child.process
        assert process.stdout is not None
        name = child.spec.name
        for line in process.stdout:
            child.tail.append(line.rstrip())
            handle = self._log_file(name)
            if handle is not None:
                with contextlib.suppress(OSError, ValueError):
                    handle.write(line if line.endswith("\n") else line + "\n")
            if self._echo_children.is_set():
                self.say(name, line)

    def tail(self, name: str) -> list[str]:
        for child in self.children:
            if child.spec.name == name:
                return list(child.tail)
        return []

    # --- starting ----------------------------------------------------------------------------------

    def _spawn(self, spec: ChildSpec) -> subprocess.Popen:
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        return subprocess.Popen(  # noqa: S603 - argv is built by the project, never from input
            list(spec.argv),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            text=True,
            bufsize=1,
        )

    def _attach(self, child: _Child) -> None:
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        if child.spec.after_start is not None:
            threading.Thread(target=self._run_after_start, args=(child,), daemon=True).start()

    def _run_after_start(self, child: _Child) -> None:
        try:
            child.spec.after_start(child.process)
        except Exception as error:  # reported, never fatal: the child itself is running
            self.say(child.spec.name, f"after-start step failed: {error}")

    def start(self, spec: ChildSpec) -> subprocess.Popen:
        self._width = max(self._width, len(spec.name))
        process = self._spawn(spec)
        child = _Child(spec=spec, process=process, reader=threading.Thread(), started_at=time.monotonic())
        self.children.append(child)
        self._attach(child)
        self.say("up", f"started {spec.name} (pid {process.pid})")
        self._write_status()
        return process

    def run_once(self, spec: ChildSpec, *, timeout: float = 600) -> int:
        """Run a one-shot step (migrate, …) with prefixed output; returns its exit code."""
        self._width = max(self._width, len(spec.name))
        process = self._spawn(spec)
        child = _Child(spec=spec, process=process, reader=threading.Thread(), started_at=time.monotonic())
        self.children.append(child)
        self._attach(child)
        try:
            return process.wait(timeout=timeout)
        finally:
            # Interrupted (a signal, the timeout): the step goes with the command that ran it.
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            child.reader.join(timeout=5)
            self.children.remove(child)

    # --- supervising -------------------------------------------------------------------------------

    def supervise(self, stop_event: threading.Event, *, poll_seconds: float = 0.25) -> str | None:
        """Keep every child running until a stop is requested (returns None) or one child keeps
        failing (returns why, naming it)."""
        while not stop_event.is_set():
            now = time.monotonic()
            for child in self.children:
                if child.restart_due is not None:
                    if now >= child.restart_due:
                        self._restart(child)
                    continue
                code = child.process.poll()
                if code is None:
                    if now - child.started_at >= self.stable_after:
                        child.backoff = 1.0
                    continue
                # Pool processes of a leader killed outright are still in its group: they go first.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.reader.join(timeout=2)
                child.last_exit = code
                child.failures.append(now)
                while child.failures and now - child.failures[0] > self.failure_window:
                    child.failures.popleft()
                if len(child.failures) >= self.max_failures:
                    self._write_status()
                    return (
                        f"{child.spec.name} exited {len(child.failures)} times within {self.failure_window:.0f} s "
                        f"(last exit code {code}); giving up. Its last lines:\n  " + "\n  ".join(list(child.tail)[-15:])
                    )
                delay = child.backoff
                child.backoff = min(self.max_backoff, child.backoff * 2)
                child.restart_due = now + delay
                self.say(
                    "up",
                    f"{child.spec.name} exited unexpectedly (exit code {code}); restarting in {delay:.0f} s "
                    f"(failure {len(child.failures)} of {self.max_failures} allowed within {self.failure_window:.0f} s)",
                )
                self._write_status()
            stop_event.wait(poll_seconds)
        return None

    def _restart(self, child: _Child) -> None:
        child.restart_due = None
        child.process = self._spawn(child.spec)
        child.started_at = time.monotonic()
        child.restarts += 1
        child.last_restart_at = _utc_now()
        self._attach(child)
        self.say("up", f"restarted {child.spec.name} (pid {child.process.pid}, restart {child.restarts})")
        self._write_status()

    # --- status file -------------------------------------------------------------------------------

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "start_ticks": process_start_ticks(os.getpid()),
            "since": self.since,
            "children": {
                child.spec.name: {
                    "pid": child.process.pid,
                    "start_ticks": process_start_ticks(child.process.pid),
                    "running": child.process.poll() is None,
                    "restarts": child.restarts,
                    "last_exit": child.last_exit,
                    "last_restart_at": child.last_restart_at,
                }
                for child in self.children
            },
        }

    def _write_status(self) -> None:
        if self.status_file is None:
            return
        partial = self.status_file.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            partial.write_text(json.dumps(self.status(), indent=1), encoding="utf-8")
            partial.replace(self.status_file)

    # --- stopping ----------------------------------------------------------------------------------

    def stop_all(self) -> None:
        """SIGTERM every child, newest first, then SIGKILL whatever is left in its process group.

        Only the child itself gets SIGTERM: a Celery worker then finishes its running tasks (warm
        shutdown) and gunicorn drains its workers; signalling their pool processes directly would
        kill tasks mid-flight.
        """
        self.echo_children(True)
        for child in reversed(self.children):
            child.restart_due = None
            if child.process.poll() is None:
                self.say("up", f"stopping {child.spec.name}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.say("up", f"{child.spec.name} did not stop in time; killing")
            # Whatever the child left in its group (pool processes) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
            child.reader.join(timeout=2)
            self.say("up", f"stopped {child.spec.name} (exit {child.process.returncode})")
        self.children.clear()
        if self.status_file is not None:
            self.status_file.unlink(missing_ok=True)
        for handle in self._log_files.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._log_files.clear()


def stop_orphans(status_file: Path, *, say: Callable[[str], None], timeout: float = 20.0) -> list[str]:
    """Stop the children a killed supervisor left running, as its status file names them.

    A child counts only while its pid still has the recorded start time, so a reused pid is never
    signalled. Each child leads its own process group; the whole group goes.
    """
    try:
        status = json.loads(status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    leftovers = []
    for name, child in (status.get("children") or {}).items():
        pid, ticks = child.get("pid"), child.get("start_ticks")
        if isinstance(pid, int) and ticks is not None and process_start_ticks(pid) == ticks:
            leftovers.append((name, pid))
    for name, pid in leftovers:
        say(f"stopping {name} (pid {pid}) left running by an earlier `up` (pid {status.get('pid')}) that was killed")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for _name, pid in leftovers:
        while process_start_ticks(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    status_file.unlink(missing_ok=True)
    return [name for name, _ in leftovers]
