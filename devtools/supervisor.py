"""Run the service set's processes as children of one command, with prefixed logs.

Each child gets its own process group, so stopping it also stops whatever it forked (gunicorn
workers, Celery pool processes). On Linux the kernel also sends each child SIGTERM if this
supervisor dies without cleaning up (PR_SET_PDEATHSIG), so even a SIGKILL leaves no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

_COLOURS = ["36", "32", "33", "35", "34", "31", "96", "92"]
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen
    reader: threading.Thread


class ProcessSupervisor:
    def __init__(self, *, stream=None, colour: bool | None = None, stop_timeout: float = 20.0) -> None:
        self.stream = stream or sys.stdout
        self.colour = self.stream.isatty() if colour is None else colour
        self.stop_timeout = stop_timeout
        self.children: list[_Child] = []
        self._write_lock = threading.Lock()
        self._width = 8

    def say(self, name: str, line: str) -> None:
        prefix = f"{name:<{self._width}}|"
        if self.colour:
            index = sum(map(ord, name)) % len(_COLOURS)
            prefix = f"\033[{_COLOURS[index]}m{prefix}\033[0m"
        with self._write_lock:
            self.stream.write(f"{prefix} {line.rstrip()}\n")
            self.stream.flush()

    def start(self, spec: ChildSpec) -> subprocess.Popen:
        self._width = max(self._width, len(spec.name))
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(  # noqa: S603 - argv is built by the project, never from input
            list(spec.argv),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            text=True,
            bufsize=1,
        )
        reader = threading.Thread(target=self._pump, args=(spec.name, process), daemon=True)
        reader.start()
        self.children.append(_Child(spec=spec, process=process, reader=reader))
        self.say(spec.name, f"started (pid {process.pid}): {' '.join(spec.argv)}")
        return process

    def run_once(self, spec: ChildSpec, *, timeout: float = 600) -> int:
        """Run a one-shot step (migrate, …) with prefixed output; returns its exit code."""
        process = self.start(spec)
        try:
            return process.wait(timeout=timeout)
        finally:
            self._forget(process)

    def _forget(self, process: subprocess.Popen) -> None:
        for child in list(self.children):
            if child.process is process:
                child.reader.join(timeout=5)
                self.children.remove(child)

    def _pump(self, name: str, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.say(name, line)

    def first_exited(self) -> _Child | None:
        for child in self.children:
            if child.process.poll() is not None:
                return child
        return None

    def wait_for_exit(self, stop_event: threading.Event, *, poll_seconds: float = 0.5) -> _Child | None:
        """Block until a stop is requested or a child exits on its own (returned)."""
        while not stop_event.is_set():
            exited = self.first_exited()
            if exited is not None:
                return exited
            stop_event.wait(poll_seconds)
        return None

    def stop_all(self) -> None:
        """SIGTERM every child, newest first, then SIGKILL whatever is left in its process group.

        Only the child itself gets SIGTERM: a Celery worker then finishes its running tasks (warm
        shutdown) and gunicorn drains its workers; signalling their pool processes directly would
        kill tasks mid-flight.
        """
        for child in reversed(self.children):
            if child.process.poll() is None:
                self.say(child.spec.name, "stopping")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.say(child.spec.name, "did not stop in time; killing")
            # Whatever the child left in its group (pool processes) goes too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
            child.reader.join(timeout=2)
            self.say(child.spec.name, f"stopped (exit {child.process.returncode})")
        self.children.clear()
