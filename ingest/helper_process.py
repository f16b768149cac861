"""A helper process per ingest process, for the pure-Python work of a page that needs no database.

Why: a v2 walk reads the next page while it writes this one, but decoding, parsing, numbering
and preparing 1,000 rows is ~20 ms of Python that held the GIL against the writing thread, which
must take the interpreter back after each of its round trips to PostgreSQL and Redis.
`benchmarks/ingest_throughput.py` measured the walk against a raw COPY of the same rows at 0.49x
with the preparation on a reader thread and 0.62-0.63x with it here (100k fills); at 1M fills,
0.48x and 0.51-0.54x (docs/SCALE.md).

What runs here is a module-level function of bytes and plain values whose answer is mostly bytes
and strings (pickling 1,000 parsed fills back costs as much as preparing them). The helper is a
fresh interpreter (`python -m ingest.helper_process`), not a fork: the ingest process holds
threads, sockets and database connections that a fork would copy. It is not a multiprocessing
child either, which a Celery prefork worker (itself a daemonic process) may not have. It talks
over its stdin and stdout, one call at a time, starts on first use, lives as long as this
process (it exits when its stdin closes) and never opens a connection of its own.

It can only make a page faster, never lose one: when the helper cannot be started or dies
(killed, out of memory), the call runs here in this process instead, a warning says so, and the
next call starts a new helper. INGEST_PAGE_HELPER_PROCESS=false runs everything in-process
(a one-core machine gains nothing from a second process).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")

_FRAME = struct.Struct("!Q")  # every message: its length, then that many bytes of pickle
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class HelperGone(Exception):
    """The helper process ended or could not be started: the call runs in this process."""


class _RemoteError(Exception):
    """An exception of the helper's that could not be pickled back, by its text."""


def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = _read_exactly(stream, _FRAME.size)
    # Only ever our own process's pipe to its own helper: nothing another party can write to.
    return pickle.loads(_read_exactly(stream, _FRAME.unpack(header)[0]))  # noqa: S301


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        read = stream.readinto(view[done:])
        if not read:
            raise EOFError(f"stream ended after {done} of {size} bytes")
        done += read
    return bytes(buffer)


class _Helper:
    """One running helper: its process and the lock that keeps one call on its pipes at a time."""

    def __init__(self) -> None:
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_PROJECT_ROOT),
                                                                                 os.environ.get("PYTHONPATH")]))}
        environment.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "ingest.helper_process"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=environment, cwd=_PROJECT_ROOT,
        )
        self.lock = threading.Lock()
        self.calls = 0
        self.retired = False
        logger.info("page helper process %d started", self.process.pid)

    def call(self, function: Callable[..., T], args: tuple, kwargs: dict) -> T:
        """One call and its answer. Each call carries a number its answer must return: an answer
        that is not this call's (a desynchronised pipe) is never taken for it."""
        with self.lock:
            if self.retired:
                raise HelperGone("retired after an interrupted call")
            self.calls += 1
            try:
                _send(self.process.stdin, (self.calls, function, args, kwargs))
                number, ok, value = _receive(self.process.stdout)
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                self.retired = True
                raise HelperGone(f"{type(exc).__name__}: {exc} (exit code {self.process.poll()})") from exc
            except BaseException:
                # Interrupted between a call and its answer (a task's time limit, a signal): that
                # answer would be read as the next call's. This helper takes no more calls.
                self.retired = True
                self.process.kill()
                raise
            if number != self.calls:
                self.retired = True
                raise HelperGone(f"answer {number} to call {self.calls}")
        if ok:
            return value
        raise value

    def stop(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_lock = threading.Lock()
_helper: _Helper | None = None
_helper_owner: int | None = None  # the pid that started _helper: a forked child must start its own


def _current_helper() -> _Helper:
    global _helper, _helper_owner
    with _lock:
        if _helper is None or _helper_owner != os.getpid():
            _helper, _helper_owner = _Helper(), os.getpid()
        return _helper


def _helper_discard(gone: _Helper) -> None:
    global _helper
    with _lock:
        if _helper is gone:
            _helper = None
    gone.stop()


def in_helper_process(function: Callable[..., T], *args, **kwargs) -> T:
    """function(*args, **kwargs), computed in the helper process when it is on and alive, here
    otherwise. Whatever `function` raises is raised here (pickled across). Thread-safe: calls from
    several threads queue for the one helper."""
    from django.conf import settings

    if not settings.INGEST_PAGE_HELPER_PROCESS:
        return function(*args, **kwargs)
    helper = None
    try:
        helper = _current_helper()
        return helper.call(function, args, kwargs)
    except (HelperGone, OSError) as exc:
        # OSError: the helper could not be started at all (no free pid, no memory).
        logger.warning("page helper process unavailable (%s: %s); preparing in this process, a new helper "
                       "starts on the next call", type(exc).__name__, exc)
        if helper is not None:
            _helper_discard(helper)
        return function(*args, **kwargs)


def helper_pids() -> list[int]:
    """The running helper's pid (empty before first use or after it ended): for benchmarks and tests."""
    with _lock:
        helper = _helper if _helper_owner == os.getpid() else None
    return [helper.process.pid] if helper is not None and helper.process.poll() is None else []


def helper_stop() -> None:
    """Stop the helper (the next call starts a new one): for tests, and a worker that shuts down."""
    global _helper
    with _lock:
        helper, _helper = _helper, None
    if helper is not None:
        helper.stop()


def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The helper's loop: a call in, its answer out, until the ingest process closes our stdin."""
    import django

    django.setup()  # the prepare functions import Django models (and never touch the database)
    while True:
        try:
            number, function, args, kwargs = _receive(requests)
        except EOFError:
            return
        try:
            answer = (number, True, function(*args, **kwargs))
        except Exception as exc:  # every error goes back to the caller, who raises it
            answer = (number, False, exc)
        try:
            _send(answers, answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            _send(answers, (number, False, _RemoteError(f"{answer[2]!r} (its answer could not be pickled: {exc})")))


if __name__ == "__main__":
    # stdout carries answers only: anything printed goes to stderr instead.
    answers, sys.stdout = sys.stdout.buffer, sys.stderr
    _serve(sys.stdin.buffer, answers)
