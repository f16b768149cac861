"""Exactly one beat, however many are started: a PostgreSQL advisory lock held for beat's lifetime.

Two beats would send every periodic task twice. Whoever starts a second one (`manage.py up`, compose,
an operator by hand), it waits, saying who holds the lock, and takes over when that beat exits or
dies: the lock belongs to a database session, so PostgreSQL releases it the moment the holder's
connection goes, with no expiry to tune. A beat whose own session is lost (database restart) stops
scheduling until it holds the lock again.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import psycopg
from django.db import connections
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# "ARBIBEAT" as a 64-bit key: one lock per database, shared by every beat that uses it.
BEAT_LOCK_KEY = 0x4152424942454154
_HOLDER_SQL = """
SELECT a.application_name, a.client_addr, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s
"""
_waiting = False


_LIBPQ_PARAMETERS = ("dbname", "user", "password", "host", "port", "sslmode", "options")


def _connect() -> psycopg.Connection:
    # A session of its own (Django closes and reopens its connections at will), to the database
    # Django uses, with a name that tells an operator which beat holds the lock.
    params = {key: value for key, value in connections["default"].get_connection_params().items() if key in _LIBPQ_PARAMETERS}
    name = f"arbitra-beat pid={os.getpid()} host={socket.gethostname()}"[:63]
    return psycopg.connect(**params, autocommit=True, application_name=name, connect_timeout=10)


def _holder(connection: psycopg.Connection) -> str:
    row = connection.execute(_HOLDER_SQL, (BEAT_LOCK_KEY >> 32, BEAT_LOCK_KEY & 0xFFFFFFFF)).fetchone()
    if row is None:
        return "a beat that is just leaving"
    name, address, since = row
    return f"{name or 'a session'} from {address or 'local socket'}, since {since:%Y-%m-%d %H:%M:%S %Z}"


def acquire_beat_lock(*, poll_seconds: float = 5.0, report_every: float = 60.0) -> psycopg.Connection:
    """Block until this process holds the beat lock; the returned connection holds it."""
    global _waiting
    _waiting = True
    try:
        last_report = None
        connection = None
        while True:
            try:
                if connection is None or connection.closed:
                    connection = _connect()
                if connection.execute("SELECT pg_try_advisory_lock(%s)", (BEAT_LOCK_KEY,)).fetchone()[0]:
                    if last_report is not None:
                        logger.warning("beat: the schedule lock is free now; this beat takes over")
                    return connection
                if last_report is None or time.monotonic() - last_report >= report_every:
                    logger.warning(
                        "beat: another beat holds the schedule lock (%s); waiting: only one beat may run",
                        _holder(connection),
                    )
                    last_report = time.monotonic()
            except psycopg.OperationalError as error:
                logger.warning("beat: cannot reach PostgreSQL for the schedule lock (%s); retrying", error)
                connection = None
            time.sleep(poll_seconds)
    finally:
        _waiting = False


class SingleBeatScheduler(DatabaseScheduler):
    """django-celery-beat's DatabaseScheduler, started only once this beat holds the lock."""

    #: Seconds between checks that the session holding the lock is still alive.
    lock_check_seconds = 15.0

    def __init__(self, *args, **kwargs):
        self._lock_connection = None
        if not kwargs.get("lazy"):  # lazy instances only describe the scheduler in beat's banner
            if _waiting:
                # Beat's SIGTERM handler asks for the scheduler while this process still waits.
                raise SystemExit(0)
            self._lock_connection = acquire_beat_lock()
        self._lock_checked = time.monotonic()
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs):
        if self._lock_connection is not None and time.monotonic() - self._lock_checked >= self.lock_check_seconds:
            self._lock_checked = time.monotonic()
            try:
                self._lock_connection.execute("SELECT 1")
            except psycopg.Error:
                logger.warning("beat: lost the session holding the schedule lock; waiting for it again")
                self._lock_connection = acquire_beat_lock()
        return super().tick(*args, **kwargs)

    def close(self):
        try:
            super().close()
        finally:
            if self._lock_connection is not None:
                self._lock_connection.close()
                self._lock_connection = None
