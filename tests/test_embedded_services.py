"""The embedded PostgreSQL and Redis keep data across restarts and leave no process behind.

Each test runs its own servers in a temporary folder on free ports, so it never touches the
servers of the test session or a developer's `manage.py up`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest
import redis

from devtools.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServerError

pytestmark = pytest.mark.embedded


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie is dead too, merely not yet reaped by its parent
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _processes_in(directory: Path) -> list[int]:
    """Live processes whose working directory is `directory` (servers chdir into their data)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if Path(os.readlink(f"/proc/{entry}/cwd")) == directory and not _gone(int(entry)):
                found.append(int(entry))
        except OSError:
            continue
    return found


# --- PostgreSQL ----------------------------------------------------------------------------------------


def test_postgres_keeps_data_across_restart_and_leaves_no_process(tmp_path):
    server = EmbeddedPostgres(data_dir=tmp_path / "pg", port=_free_port())
    url = server.start()
    assert url == f"postgresql://postgres@127.0.0.1:{server.port}/arbitra"
    assert server.is_running()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('survives')")
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
    first_pid = server.pid
    server.stop()

    assert not server.is_running()
    assert server.pid is None
    assert _gone(first_pid)
    assert _processes_in(server.pgdata) == []
    assert not (server.pgdata / "postmaster.pid").exists()

    with server:  # the context manager starts and stops the same way
        assert server.pid != first_pid
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT value FROM kept").fetchall() == [("survives",)]
        second_pid = server.pid
    assert _gone(second_pid)
    assert _processes_in(server.pgdata) == []


def test_postgres_start_is_idempotent_and_stop_tolerates_repeats(tmp_path):
    server = EmbeddedPostgres(data_dir=tmp_path / "pg", port=_free_port())
    try:
        url = server.start()
        pid = server.pid
        assert server.start() == url
        assert server.pid == pid
    finally:
        server.stop()
    server.stop()
    assert _gone(pid)


def test_postgres_adopts_its_server_left_by_a_crashed_run(tmp_path):
    port = _free_port()
    crashed = EmbeddedPostgres(data_dir=tmp_path / "pg", port=port)
    crashed.start()
    leftover_pid = crashed.pid
    try:
        # A new run on the same folder and port finds the server still up and takes it over.
        successor = EmbeddedPostgres(data_dir=tmp_path / "pg", port=port)
        assert successor.start() == crashed.url
        assert successor.pid == leftover_pid
        with psycopg.connect(successor.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        successor.stop()
        assert _gone(leftover_pid)
        assert _processes_in(successor.pgdata) == []
    finally:
        crashed.stop()


def test_postgres_stops_its_leftover_on_another_port(tmp_path):
    crashed = EmbeddedPostgres(data_dir=tmp_path / "pg", port=_free_port())
    crashed.start()
    leftover_pid = crashed.pid
    successor = EmbeddedPostgres(data_dir=tmp_path / "pg", port=_free_port())
    try:
        url = successor.start()
        assert _gone(leftover_pid)
        assert successor.pid != leftover_pid
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        successor.stop()
        crashed.stop()


def test_postgres_clears_a_stale_pid_file(tmp_path):
    server = EmbeddedPostgres(data_dir=tmp_path / "pg", port=_free_port())
    server.start()
    server.stop()
    # After a hard crash the pid in postmaster.pid may belong to an unrelated live process.
    stale = server.pgdata / "postmaster.pid"
    stale.write_text(f"{os.getpid()}\n{server.pgdata}\n0\n{server.port}\n\n127.0.0.1\n0 0\nready\n")
    try:
        url = server.start()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()


def test_postgres_start_failure_shows_the_log_tail(tmp_path):
    server = EmbeddedPostgres(data_dir=tmp_path / "pg", port=_free_port())
    server.start()
    server.stop()
    with (server.pgdata / "postgresql.conf").open("a") as conf:
        conf.write("\nno_such_setting_here = 1\n")
    with pytest.raises(EmbeddedServerError, match="no_such_setting_here"):
        server.start()
    assert not server.is_running()
    assert _processes_in(server.pgdata) == []


# --- Redis -----------------------------------------------------------------------------------------------


def test_redis_keeps_data_across_restart_and_leaves_no_process(tmp_path):
    server = EmbeddedRedis(data_dir=tmp_path / "redis", port=_free_port())
    url = server.start()
    assert url == f"redis://127.0.0.1:{server.port}/0"
    client = redis.Redis.from_url(url)
    client.set("kept", "survives")
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    client.close()
    first_pid = server.pid
    assert int((tmp_path / "redis" / "redis.pid").read_text()) == first_pid
    server.stop()

    assert not server.is_running()
    assert _gone(first_pid)
    assert _processes_in(server.data_dir) == []
    assert not server.pid_file.exists()

    with server:
        client = redis.Redis.from_url(server.url)
        assert client.get("kept") == b"survives"
        client.close()
        second_pid = server.pid
    assert _gone(second_pid)
    assert _processes_in(server.data_dir) == []


def test_redis_adopts_its_server_left_by_a_crashed_run(tmp_path):
    port = _free_port()
    crashed = EmbeddedRedis(data_dir=tmp_path / "redis", port=port)
    crashed.start()
    leftover_pid = crashed.pid
    try:
        successor = EmbeddedRedis(data_dir=tmp_path / "redis", port=port)
        assert successor.start() == crashed.url
        assert successor.pid == leftover_pid
        successor.stop()
        assert _gone(leftover_pid)
    finally:
        crashed.stop()


def test_redis_clears_a_stale_pid_file(tmp_path):
    server = EmbeddedRedis(data_dir=tmp_path / "redis", port=_free_port())
    (tmp_path / "redis").mkdir()
    server.pid_file.write_text(f"{os.getpid()}\n")
    try:
        url = server.start()
        assert redis.Redis.from_url(url).ping()
    finally:
        server.stop()


def test_redis_refuses_a_port_taken_by_someone_else(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = EmbeddedRedis(data_dir=tmp_path / "redis", port=squatter.getsockname()[1])
        with pytest.raises(EmbeddedServerError, match="already in use"):
            server.start()
    assert not server.is_running()
