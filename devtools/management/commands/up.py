"""`manage.py up`: the whole service set in one terminal.

web (gunicorn), a worker per queue, exactly one beat and Flower run as children with prefixed
logs; Ctrl-C or SIGTERM stops all of them. Without DATABASE_URL / REDIS_URL it starts embedded
PostgreSQL and Redis (data kept under .arbitra/). Unless told to use the real Polymarket it also
starts the upstream emulator and points the sources at it, so data flows within a minute.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.supervisor import ChildSpec, ProcessSupervisor

EMULATOR_PORT = 8099
DEMO_HISTORY_SECONDS = 600


class Command(BaseCommand):
    help = "Run web, workers (ingest, compute), beat and Flower; embedded PostgreSQL/Redis when no URLs are set."

    def add_arguments(self, parser):
        parser.add_argument(
            "--upstream",
            choices=["demo", "polymarket"],
            default=os.environ.get("ARBITRA_UPSTREAM", "demo"),
            help="demo: start the bundled Polymarket emulator (default); polymarket: the real APIs "
            "(or POLYMARKET_*_URL). Also settable as ARBITRA_UPSTREAM.",
        )
        parser.add_argument("--demo-speed", type=float, default=1.0, help="Emulated seconds per real second.")
        parser.add_argument("--web-port", type=int, default=settings.WEB_PORT)
        parser.add_argument("--flower-port", type=int, default=settings.FLOWER_PORT)
        parser.add_argument("--emulator-port", type=int, default=EMULATOR_PORT)
        parser.add_argument("--bind", default="127.0.0.1", help="Address web and Flower listen on.")

    def handle(self, *args, **options):
        state_dir = Path(settings.STATE_DIR)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._new_password_file = state_dir / "admin_password.new"
        supervisor = ProcessSupervisor(stream=self.stdout._out)
        stop_requested = threading.Event()
        embedded = []

        def request_stop(signum, _frame):
            supervisor.say("up", f"received {signal.Signals(signum).name}, stopping everything")
            stop_requested.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

        try:
            env = self._service_urls(supervisor, state_dir, embedded)
            # A file left by an `up` that was killed would point commands at a dead emulator.
            running_upstream = Path(settings.RUNNING_DEMO_UPSTREAM_FILE)
            running_upstream.unlink(missing_ok=True)
            if options["upstream"] == "demo":
                env.update(self._start_emulator(supervisor, options["demo_speed"], options["emulator_port"]))
                running_upstream.write_text(
                    "".join(f"{name}={env[name]}\n" for name in ("POLYMARKET_DATA_API_URL", "POLYMARKET_GAMMA_API_URL")),
                    encoding="utf-8",
                )
            self._prepare_database(supervisor, env)
            if options["upstream"] == "demo":
                code = supervisor.run_once(ChildSpec(
                    name="migrate",
                    argv=self._manage("feed_add", env["ARBITRA_DEMO_FEED_URL"], "--name", "Emulator news wire"),
                    env=env,
                ))
                if code != 0:
                    raise CommandError("registering the demo news feed failed")
            flower_password = self._flower_password(state_dir)
            self._start_services(supervisor, env, options, flower_password)
            self._print_banner(supervisor, options, flower_password, upstream=options["upstream"], env=env)
            exited = supervisor.wait_for_exit(stop_requested)
            if exited is not None:
                supervisor.say(
                    "up", f"{exited.spec.name} exited with code {exited.process.returncode}; stopping the rest"
                )
        finally:
            Path(settings.RUNNING_DEMO_UPSTREAM_FILE).unlink(missing_ok=True)
            supervisor.stop_all()
            for server in reversed(embedded):
                supervisor.say("up", f"stopping embedded {type(server).__name__}")
                server.stop()
            supervisor.say("up", "all processes stopped")

    # --- steps -----------------------------------------------------------------------------------

    def _service_urls(self, supervisor, state_dir: Path, embedded: list) -> dict[str, str]:
        env: dict[str, str] = {}
        needs_postgres = not os.environ.get("DATABASE_URL")
        needs_redis = not os.environ.get("REDIS_URL")
        if needs_postgres or needs_redis:
            from devtools.embedded import EmbeddedPostgres, EmbeddedRedis
        if needs_postgres:
            supervisor.say("up", "DATABASE_URL not set: starting embedded PostgreSQL (data in .arbitra/postgres)")
            server = EmbeddedPostgres(data_dir=state_dir / "postgres", port=settings.EMBEDDED_POSTGRES_PORT)
            env["DATABASE_URL"] = server.start()
            embedded.append(server)
        if needs_redis:
            supervisor.say("up", "REDIS_URL not set: starting embedded Redis (data in .arbitra/redis)")
            server = EmbeddedRedis(data_dir=state_dir / "redis", port=settings.EMBEDDED_REDIS_PORT)
            env["REDIS_URL"] = server.start()
            env.setdefault("CELERY_BROKER_URL", env["REDIS_URL"])
            embedded.append(server)
        return env

    def _start_emulator(self, supervisor, speed: float, port: int) -> dict[str, str]:
        supervisor.start(
            ChildSpec(
                name="emulator",
                argv=[
                    sys.executable,
                    "-m",
                    "devtools.emulator",
                    "--port",
                    str(port),
                    "--scenario",
                    "demo",
                    "--speed",
                    str(speed),
                    # Ten minutes of history at start: enough for every page to have data, and
                    # within what the offset cap lets the first run and the gap backfill read
                    # back (30 minutes left the busiest market's early fills beyond any request
                    # the API answers: an exhausted gap on the newcomer's first screen).
                    "--history",
                    str(DEMO_HISTORY_SECONDS),
                ],
            )
        )
        url = f"http://127.0.0.1:{port}"
        return {"POLYMARKET_DATA_API_URL": url, "POLYMARKET_GAMMA_API_URL": url, "ARBITRA_DEMO_FEED_URL": f"{url}/rss.xml"}

    def _manage(self, *arguments: str) -> list[str]:
        return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *arguments]

    def _prepare_database(self, supervisor, env: dict[str, str]) -> None:
        for name, argv in [
            ("migrate", self._manage("migrate", "--noinput")),
            ("migrate", self._manage("schedules_install")),
            ("migrate", self._manage("admin_bootstrap", "--reveal-file", str(self._new_password_file))),
        ]:
            code = supervisor.run_once(ChildSpec(name=name, argv=argv, env=env))
            if code != 0:
                raise CommandError(f"{' '.join(argv[2:])} failed with exit code {code}")

    def _flower_password(self, state_dir: Path) -> str:
        if settings.FLOWER_PASSWORD:
            return settings.FLOWER_PASSWORD
        secret_file = state_dir / "flower_password"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(18))
            secret_file.chmod(0o600)
        return secret_file.read_text().strip()

    def _start_services(self, supervisor, env: dict[str, str], options, flower_password: str) -> None:
        bind = options["bind"]
        celery = [sys.executable, "-m", "celery", "-A", "arbitra"]
        specs = [
            ChildSpec(
                "web",
                [
                    sys.executable, "-m", "gunicorn", "arbitra.wsgi:application",
                    "--bind", f"{bind}:{options['web_port']}", "--workers", "2", "--threads", "4",
                    "--access-logfile", "-", "--graceful-timeout", "10",
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
            ChildSpec(
                "beat",
                [
                    *celery, "beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                    "--loglevel", "INFO",
                ],
                env,
            ),
            ChildSpec(
                "flower",
                [
                    *celery, "flower", f"--address={bind}", f"--port={options['flower_port']}",
                    f"--basic-auth={settings.FLOWER_USER}:{flower_password}",
                ],
                env,
            ),
        ]
        for spec in specs:
            supervisor.start(spec)

    def _print_banner(self, supervisor, options, flower_password: str, *, upstream: str, env: dict[str, str]) -> None:
        host = options["bind"]
        web = f"http://{host}:{options['web_port']}"
        # Shown in the banner once, the start the admin user is created; the file goes at once.
        admin_password = "password printed when it was first created"  # noqa: S105 - a message, not a secret
        if self._new_password_file.exists():
            admin_password = f"password {self._new_password_file.read_text().strip()}  ← shown only this once"
            self._new_password_file.unlink()
        lines = [
            "Arbitra is starting. Open:",
            f"  API           {web}/api/v1/stats/overview   (health {web}/healthz, readiness {web}/readyz)",
            f"  API docs      {web}/api/docs/  (schema {web}/api/schema/)",
            f"  Admin         {web}/admin/     (user 'admin', {admin_password})",
            f"  Ingest health {web}/admin/ingest/health/",
            f"  Flower        http://{host}:{options['flower_port']}/  (user '{settings.FLOWER_USER}', "
            f"password in .arbitra/flower_password)",
            f"  Upstream      {'emulator at ' + env['POLYMARKET_DATA_API_URL'] if upstream == 'demo' else 'real Polymarket'}",
            "Press Ctrl-C to stop everything.",
        ]
        for line in lines:
            supervisor.say("up", line)
