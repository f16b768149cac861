"""`manage.py up`: the whole service set in one terminal.

web (gunicorn), a worker per queue, exactly one beat and Flower run as children; a child that dies
is restarted (see devtools.supervisor), Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stops all of
them and the embedded servers. Without DATABASE_URL / REDIS_URL it starts embedded PostgreSQL and
Redis (data kept in the state folder, .arbitra/). Unless told to use the real Polymarket it also
starts the upstream emulator and points the sources at it, so data flows within a minute.

One `up` per state folder (a lock file says which pid holds it, since when). The demo emulator's
settings and clock origin are kept next to the demo database, so after any restart it publishes the
same history the database already holds (`manage.py demo_reset` starts over).

Children's output goes to STATE_DIR/logs/<name>.log; the terminal shows it once the ready block
(URLs, users, where the passwords are) has been printed, so that block is never scrolled away by
start-up noise.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from django.conf import settings
from django.core.management.base import BaseCommand
from psycopg import sql

from arbitra.health import UP_STATUS_FILE_NAME
from devtools.management.commands.admin_password import admin_password_file, write_secret_file
from devtools.supervisor import ChildSpec, ProcessSupervisor, stop_orphans

EMULATOR_PORT = 8099
DEMO_SEED = 1
DEMO_SCENARIO = "demo_v2"
# Gamma serves Protocol V2 markets beside v1 ones; the demo shows both.
DEMO_V2_MARKET_SHARE = 0.3
# Ten minutes of history at the first start: enough for every page to have data, and within what the
# offset cap lets the first run and the gap backfill read back (30 minutes left the busiest market's
# early fills beyond any request the API answers: an exhausted gap on the newcomer's first screen).
DEMO_HISTORY_SECONDS = 600
# Real Polymarket data never shares the demo's embedded database.
EMBEDDED_DATABASES = {"demo": "arbitra", "polymarket": "arbitra_polymarket"}
# Nor its queues: each mode has a Redis database of its own on the embedded server.
EMBEDDED_REDIS_DATABASES = {"demo": 0, "polymarket": 1}
DEMO_DATABASE_MARK = "arbitra demo database"
READY_TIMEOUT_SECONDS = 240
USAGE_ERROR = 2


class UpRefused(Exception):
    """`up` cannot start as configured; the message says why and what to do."""


class _StopRequested(BaseException):
    """A signal arrived while `up` was still starting."""


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class InstanceLock:
    """One `up` per state folder: an flock held for the command's life, naming its holder."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "up.lock"
        self._handle = None

    def acquire(self) -> None:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            handle.close()
            raise UpRefused(
                f"another `up` is already running on the state folder {self.path.parent}: pid {holder.get('pid', '?')}, "
                f"since {holder.get('since', '?')}. Stop it (Ctrl-C in its terminal, or `kill {holder.get('pid', 'PID')}`), "
                "or give this one its own folder with ARBITRA_STATE_DIR."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "since": _utc(time.time())}))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def state_folder_in_use(state_dir: Path) -> dict | None:
    """The holder of the `up` lock on `state_dir` (pid, since) while one runs, else None."""
    path = state_dir / "up.lock"
    if not path.exists():
        return None
    with path.open("r", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(handle.read() or "{}")
            except ValueError:
                return {}
    return None


class Command(BaseCommand):
    help = "Run web, workers (ingest, compute), beat and Flower; embedded PostgreSQL/Redis when no URLs are set."

    def add_arguments(self, parser):
        parser.add_argument(
            "--upstream",
            choices=["demo", "polymarket"],
            default=os.environ.get("ARBITRA_UPSTREAM", "demo"),
            help="demo: start the bundled Polymarket emulator (default); polymarket: the real APIs "
            "(or POLYMARKET_*_URL), in a database of its own. Also settable as ARBITRA_UPSTREAM.",
        )
        parser.add_argument(
            "--demo-speed", type=float, default=None,
            help="Emulated seconds per real second (default 1), fixed when a demo history begins.",
        )
        parser.add_argument(
            "--web-port", type=int, default=settings.WEB_PORT, help="API and admin (default %(default)s, or WEB_PORT)."
        )
        parser.add_argument(
            "--flower-port", type=int, default=settings.FLOWER_PORT, help="Flower (default %(default)s, or FLOWER_PORT)."
        )
        parser.add_argument("--emulator-port", type=int, default=EMULATOR_PORT, help="Demo emulator (default %(default)s).")
        parser.add_argument("--bind", default="127.0.0.1", help="Address web and Flower listen on (default %(default)s).")

    def handle(self, *args, **options):
        state_dir = Path(settings.STATE_DIR).resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir
        self.options = options
        lock = InstanceLock(state_dir)
        try:
            lock.acquire()
        except UpRefused as refusal:
            self.stderr.write(f"up: {refusal}")
            sys.exit(1)
        self.supervisor = ProcessSupervisor(
            stream=self.stdout._out, log_dir=state_dir / "logs", status_file=state_dir / UP_STATUS_FILE_NAME
        )
        self.began = time.monotonic()
        self.stop_requested = threading.Event()
        self.supervising = False
        self.embedded = []
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._request_stop)
        exit_status = 0
        try:
            exit_status = self._run()
        except UpRefused as refusal:
            self.supervisor.say("up", f"cannot start: {refusal}")
            exit_status = USAGE_ERROR
        except _StopRequested:
            pass
        finally:
            self._stop_everything()
            lock.release()
        if exit_status:
            sys.exit(exit_status)

    def _request_stop(self, signum, _frame):
        self.supervisor.say("up", f"received {signal.Signals(signum).name}, stopping everything")
        self.stop_requested.set()
        if not self.supervising:
            raise _StopRequested

    def say(self, line: str) -> None:
        self.supervisor.say("up", line)

    # --- the run ---------------------------------------------------------------------------------

    def _run(self) -> int:
        options, state_dir, supervisor = self.options, self.state_dir, self.supervisor
        left = stop_orphans(state_dir / UP_STATUS_FILE_NAME, say=self.say)
        if left:
            self.say(f"stopped {len(left)} process(es) an earlier `up` left behind: {', '.join(left)}")
        self._check_ports()
        supervisor.echo_children(False)
        self.say(f"starting; every process's output goes to {state_dir / 'logs'}/<name>.log until the service set is ready")
        demo = options["upstream"] == "demo"
        env = self._service_urls()
        database_url = env.get("DATABASE_URL") or os.environ.get("DATABASE_URL") or settings.DATABASE_URL
        mark = self._database_mark(database_url)
        running_upstream = Path(settings.RUNNING_DEMO_UPSTREAM_FILE)
        # A file left by an `up` that was killed would point commands at a dead emulator.
        running_upstream.unlink(missing_ok=True)
        if demo:
            # Positions at the pace of activity (not every 300 s): a ledger is reconciled once both
            # of its wallet's reads have landed, and a newcomer should see that within minutes.
            env.setdefault("INGEST_POSITIONS_INTERVAL_SECONDS", os.environ.get("INGEST_POSITIONS_INTERVAL_SECONDS", "60"))
            emulator = self._demo_emulator_settings(database_url, mark)
            env.update(self._start_emulator(emulator))
            running_upstream.write_text(
                "".join(f"{name}={env[name]}\n" for name in ("POLYMARKET_DATA_API_URL", "POLYMARKET_GAMMA_API_URL")),
                encoding="utf-8",
            )
        elif mark is not None and mark.startswith(DEMO_DATABASE_MARK):
            raise UpRefused(
                f"{_public_url(database_url)} holds demo data ({mark}); real Polymarket data needs a database of its "
                "own: point DATABASE_URL at another database, or wipe this one with `python3 dev.py reset`"
            )
        self._prepare_database(env)
        if demo:
            self._mark_demo_database(database_url, emulator)
            self._one_shot("feed_add", env["ARBITRA_DEMO_FEED_URL"], "--name", "Emulator news wire", env=env)
        self._start_services(env)
        threading.Thread(target=self._announce_when_ready, args=(env,), daemon=True).start()
        self.supervising = True
        if self.stop_requested.is_set():
            return 0
        reason = supervisor.supervise(self.stop_requested)
        if reason is not None:
            supervisor.echo_children(True)
            self.say(f"stopping everything: {reason}")
            return 1
        return 0

    def _stop_everything(self) -> None:
        self.supervising = True  # a second signal while stopping must not abort the stop
        Path(settings.RUNNING_DEMO_UPSTREAM_FILE).unlink(missing_ok=True)
        self.supervisor.stop_all()
        for server in reversed(self.embedded):
            self.say(f"stopping embedded {type(server).__name__}")
            try:
                server.stop()
            except Exception as error:
                self.say(f"embedded {type(server).__name__} did not stop cleanly: {error}")
        self.say("all processes stopped")

    # --- checks before anything starts -------------------------------------------------------------

    def _check_ports(self) -> None:
        options = self.options
        wanted = [("web", options["web_port"], "--web-port"), ("Flower", options["flower_port"], "--flower-port")]
        if options["upstream"] == "demo":
            wanted.append(("the demo emulator", options["emulator_port"], "--emulator-port"))
        seen: dict[int, str] = {}
        for what, port, flag in wanted:
            if port in seen:
                raise UpRefused(f"{what} and {seen[port]} are both given port {port}; pick another with {flag}")
            seen[port] = what
            if not 1 <= port <= 65535:
                raise UpRefused(f"{flag} {port} is not a TCP port (1–65535)")
            if not _port_free(options["bind"], port):
                raise UpRefused(
                    f"port {port} on {options['bind']} ({what}) is already in use by another process; stop it, "
                    f"or choose another port with {flag} N"
                )

    # --- embedded servers and the database --------------------------------------------------------------

    def _service_urls(self) -> dict[str, str]:
        env: dict[str, str] = {}
        needs_postgres = not os.environ.get("DATABASE_URL")
        needs_redis = not os.environ.get("REDIS_URL")
        if not (needs_postgres or needs_redis):
            return env
        from devtools.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServerError

        # Its progress lines would break the prefixed screen; what matters is said below, warnings still show.
        logging.getLogger("devtools.embedded").setLevel(logging.WARNING)

        try:
            if needs_postgres:
                database = EMBEDDED_DATABASES[self.options["upstream"]]
                self.say(
                    f"DATABASE_URL not set: starting embedded PostgreSQL (database {database!r}, "
                    f"data in {self.state_dir / 'postgres'})"
                )
                server = EmbeddedPostgres(
                    data_dir=self.state_dir / "postgres", port=settings.EMBEDDED_POSTGRES_PORT, database=database
                )
                self.embedded.append(server)
                env["DATABASE_URL"] = server.start()
                self.say(f"embedded PostgreSQL ready on port {server.port} (pid {server.pid})")
            if needs_redis:
                self.say(f"REDIS_URL not set: starting embedded Redis (data in {self.state_dir / 'redis'})")
                server = EmbeddedRedis(data_dir=self.state_dir / "redis", port=settings.EMBEDDED_REDIS_PORT)
                self.embedded.append(server)
                database = EMBEDDED_REDIS_DATABASES[self.options["upstream"]]
                env["REDIS_URL"] = server.start().rsplit("/", 1)[0] + f"/{database}"
                self.say(f"embedded Redis ready on port {server.port} (pid {server.pid}, database {database})")
                env.setdefault("CELERY_BROKER_URL", env["REDIS_URL"])
        except EmbeddedServerError as error:
            hint = "set DATABASE_URL / REDIS_URL to use servers of your own, or stop the process holding the port"
            raise UpRefused(f"{str(error).splitlines()[0]} ({hint})") from None
        return env

    def _database_mark(self, database_url: str) -> str | None:
        """The comment `up` leaves on a demo database (None when there is none or it cannot be read)."""
        try:
            with psycopg.connect(database_url, connect_timeout=10) as connection:
                row = connection.execute(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
                ).fetchone()
        except psycopg.Error as error:
            raise UpRefused(f"cannot connect to {_public_url(database_url)}: {str(error).strip().splitlines()[0]}") from None
        return row[0] if row else None

    def _mark_demo_database(self, database_url: str, emulator: dict) -> None:
        mark = (
            f"{DEMO_DATABASE_MARK} {emulator['history_id']} "
            f"(emulator seed {emulator['seed']}, since {_utc(emulator['wall_origin'])})"
        )
        try:
            with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as connection:
                name = connection.execute("SELECT current_database()").fetchone()[0]
                connection.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(mark)))
        except psycopg.Error as error:  # not the owner: the state file alone has to tell demo histories apart
            self.say(f"could not mark the demo database ({str(error).strip().splitlines()[0]})")

    # --- the demo emulator ---------------------------------------------------------------------------

    def _demo_emulator_settings(self, database_url: str, mark: str | None) -> dict:
        """The emulator settings of this database's demo history: recorded ones, or a new history."""
        record_path = self.state_dir / "demo-emulator.json"
        try:
            recorded = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        requested_speed = self.options["demo_speed"]
        if recorded and mark and recorded.get("history_id") and recorded["history_id"] in mark:
            if requested_speed is not None and requested_speed != recorded["speed"]:
                self.say(
                    f"--demo-speed {requested_speed:g} ignored: this demo history runs at {recorded['speed']:g} "
                    "(`python3 dev.py reset` starts a new one)"
                )
            self.say(f"demo: resuming the emulator history begun {_utc(recorded['wall_origin'])} (seed {recorded['seed']})")
            return recorded
        if mark and mark.startswith(DEMO_DATABASE_MARK):
            self.say(
                "demo: this database holds a demo history whose emulator settings were not kept; verify_upstream will "
                "disagree with it until `python3 dev.py reset`"
            )
        now = time.time()
        emulator = {
            "history_id": secrets.token_hex(6),
            "seed": DEMO_SEED,
            "scenario": DEMO_SCENARIO,
            "start": int(now),
            "history_seconds": DEMO_HISTORY_SECONDS,
            "v2_market_share": DEMO_V2_MARKET_SHARE,
            "speed": requested_speed or 1.0,
            "wall_origin": now,
            "database": _public_url(database_url),
        }
        record_path.write_text(json.dumps(emulator, indent=1), encoding="utf-8")
        return emulator

    def _start_emulator(self, emulator: dict) -> dict[str, str]:
        port = self.options["emulator_port"]
        url = f"http://127.0.0.1:{port}"

        def bring_clock_forward(_process) -> None:
            # The emulator's world is a function of (settings, virtual time): started with the same
            # start, then moved to where its clock would be had it never stopped, it has published
            # exactly the history it had, plus what happened while it was down.
            target = emulator["start"] + (time.time() - emulator["wall_origin"]) * emulator["speed"]
            deadline = time.monotonic() + 60
            while True:
                try:
                    requests.post(f"{url}/_control/advance", params={"to": f"{target:.3f}"}, timeout=120).raise_for_status()
                    return
                except requests.ConnectionError:
                    if time.monotonic() > deadline or self.stop_requested.is_set():
                        raise
                    time.sleep(0.3)

        self.supervisor.start(
            ChildSpec(
                name="emulator",
                argv=[
                    sys.executable, "-m", "devtools.emulator", "--port", str(port), "--seed", str(emulator["seed"]),
                    "--scenario", emulator["scenario"], "--speed", str(emulator["speed"]),
                    "--start", str(emulator["start"]), "--history", str(emulator["history_seconds"]),
                    # Kept with the history (older records had none: all v1 markets).
                    "--v2-market-share", str(emulator.get("v2_market_share", 0.0)),
                ],
                after_start=bring_clock_forward,
            )
        )  # fmt: skip
        return {"POLYMARKET_DATA_API_URL": url, "POLYMARKET_GAMMA_API_URL": url, "ARBITRA_DEMO_FEED_URL": f"{url}/rss.xml"}

    # --- one-shot steps and the services --------------------------------------------------------------

    def _manage(self, *arguments: str) -> list[str]:
        return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *arguments]

    def _one_shot(self, *arguments: str, env: dict[str, str]) -> None:
        spec = ChildSpec(name="setup", argv=self._manage(*arguments), env=env)
        code = self.supervisor.run_once(spec)
        if code != 0:
            tail = "\n  ".join(self._setup_log_tail())
            raise UpRefused(f"`manage.py {' '.join(arguments)}` failed (exit code {code}); its last lines:\n  {tail}")

    def _setup_log_tail(self) -> list[str]:
        log = self.state_dir / "logs" / "setup.log"
        try:
            return log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        except OSError:
            return []

    def _prepare_database(self, env: dict[str, str]) -> None:
        self.say("applying migrations, installing the periodic jobs, checking the admin user")
        self._one_shot("migrate", "--noinput", env=env)
        self._one_shot("schedules_install", env=env)
        self._one_shot("admin_password", "--if-missing", "--file", str(admin_password_file()), env=env)

    def _flower_env(self) -> dict[str, str]:
        if settings.FLOWER_PASSWORD or settings.FLOWER_PASSWORD_FILE:
            return {}
        secret_file = self.state_dir / "flower_password"
        if not secret_file.exists():
            write_secret_file(secret_file, secrets.token_urlsafe(18))
        return {"FLOWER_PASSWORD_FILE": str(secret_file)}

    def _start_services(self, env: dict[str, str]) -> None:
        options = self.options
        bind = options["bind"]
        celery = [sys.executable, "-m", "celery", "-A", "arbitra"]
        flower_conf = Path(settings.BASE_DIR) / "arbitra" / "flowerconfig.py"
        specs = [
            ChildSpec(
                "web",
                [
                    sys.executable, "-m", "gunicorn", "arbitra.wsgi:application",
                    "--bind", f"{bind}:{options['web_port']}", "--workers", "2", "--threads", "8",
                    "--access-logfile", "-", "--logger-class", "api.access_log.RedactingAccessLogger",
                    # A search of 200 characters percent-encoded exceeds gunicorn's default 4 KB.
                    "--limit-request-line", "8190",
                    "--graceful-timeout", "10",
                ],
                env,
            ),
            ChildSpec(
                "ingest",
                [*celery, "worker", "-Q", "ingest", "-n", "ingest@%h", "--concurrency", "2", "--loglevel", "INFO"],
                env,
            ),
            ChildSpec(
                "compute",
                [*celery, "worker", "-Q", "compute", "-n", "compute@%h", "--concurrency", "2", "--loglevel", "INFO"],
                env,
            ),
            ChildSpec("beat", [*celery, "beat", "--scheduler", "arbitra.beat:SingleBeatScheduler", "--loglevel", "INFO"], env),
            ChildSpec(
                "flower",
                [*celery, "flower", f"--conf={flower_conf}", f"--address={bind}", f"--port={options['flower_port']}"],
                {**env, **self._flower_env()},
            ),
        ]  # fmt: skip
        for spec in specs:
            self.supervisor.start(spec)

    # --- the ready block ---------------------------------------------------------------------------------

    def _announce_when_ready(self, env: dict[str, str]) -> None:
        host = "127.0.0.1" if self.options["bind"] in {"0.0.0.0", ""} else self.options["bind"]  # noqa: S104
        readyz = f"http://{host}:{self.options['web_port']}/readyz"
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last_answer = "no answer yet"
        while not self.stop_requested.is_set():
            try:
                response = requests.get(readyz, timeout=5)
                if response.status_code == 200:
                    self._print_ready_block(host, env)
                    self.supervisor.echo_children(True)
                    return
                last_answer = f"HTTP {response.status_code}: {response.text[:200]}"
            except requests.RequestException as error:
                last_answer = type(error).__name__
            if time.monotonic() > deadline:
                self.say(
                    f"web is not ready after {READY_TIMEOUT_SECONDS} s ({readyz}: {last_answer}); "
                    "showing every process's output from here on"
                )
                self.supervisor.echo_children(True)
                return
            self.stop_requested.wait(1.0)

    def _print_ready_block(self, host: str, env: dict[str, str]) -> None:
        options = self.options
        web = f"http://{host}:{options['web_port']}"
        flower_secret = (
            "password from FLOWER_PASSWORD" if settings.FLOWER_PASSWORD
            else f"password in {settings.FLOWER_PASSWORD_FILE or self.state_dir / 'flower_password'}"
        )  # fmt: skip
        if options["upstream"] == "demo":
            upstream = (
                f"demo emulator at {env['POLYMARKET_DATA_API_URL']} (its history survives restarts; "
                "`python3 dev.py reset` starts over)"
            )
        else:
            upstream = f"real Polymarket: {settings.POLYMARKET_DATA_API_URL} and {settings.POLYMARKET_GAMMA_API_URL}"
        rule = "─" * 78
        lines = [
            rule,
            f"Arbitra is ready ({time.monotonic() - self.began:.0f} s). Open:",
            f"  API            {web}/api/v1/stats/overview   (every route: {web}/api/v1/)",
            f"  API docs       {web}/api/docs/",
            f"  Admin          {web}/admin/   user 'admin', password in {admin_password_file()}",
            f"  Ingest health  {web}/admin/ingest/health/",
            f"  Flower         http://{host}:{options['flower_port']}/   user '{settings.FLOWER_USER}', {flower_secret}",
            f"  Upstream       {upstream}",
            f"  Logs           {self.state_dir / 'logs'}/<process>.log, and below from here on",
            "  New admin password: .venv/bin/python manage.py admin_password.  Stop: Ctrl-C (or close the terminal).",
            rule,
        ]
        for line in lines:
            self.say(line)


def ensure_not_running(state_dir: Path) -> None:
    """Raise UpRefused when an `up` runs on `state_dir` (for commands that must not run beside it)."""
    holder = state_folder_in_use(state_dir)
    if holder is not None:
        raise UpRefused(
            f"`up` is running on {state_dir} (pid {holder.get('pid', '?')}, since {holder.get('since', '?')}); stop it first"
        )

