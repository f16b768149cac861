"""`manage.py demo_reset` (what `python3 dev.py reset` runs): wipe the demo's data and start over.

Drops the demo database (embedded: database ``arbitra`` of the embedded server; with DATABASE_URL:
every table's rows, and only when `up` marked that database as a demo one), empties the demo's
Redis database (queued tasks, changed-wallet queue, limiter state) and forgets the emulator's
recorded history, so the next `up` begins a new history from a clean slate. Real-Polymarket data
(database ``arbitra_polymarket``, Redis database 1) is left alone. Asks for confirmation unless --yes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

from devtools.management.commands.admin_password import admin_password_file
from devtools.management.commands.up import (
    DEMO_DATABASE_MARK,
    EMBEDDED_DATABASES,
    EMBEDDED_REDIS_DATABASES,
    UpRefused,
    ensure_not_running,
)

DEMO_STATE_FILES = ("demo-emulator.json", "upstream.env")


class Command(BaseCommand):
    help = "Wipe the demo data (database, Redis, the emulator's recorded history) after a confirmation."

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, **options):
        state_dir = Path(settings.STATE_DIR).resolve()
        try:
            ensure_not_running(state_dir)
        except UpRefused as refusal:
            raise CommandError(str(refusal)) from None
        embedded = not os.environ.get("DATABASE_URL")
        if embedded:
            what = (
                f"the demo database {EMBEDDED_DATABASES['demo']!r} of the embedded PostgreSQL in {state_dir / 'postgres'} "
                f"and Redis database {EMBEDDED_REDIS_DATABASES['demo']} of the embedded Redis"
            )
        else:
            self._check_marked_demo(settings.DATABASE_URL)
            database = settings.DATABASES["default"]
            what = f"every row of {database['NAME']!r} on {database['HOST']} and Redis {settings.REDIS_URL}"
        self.stdout.write(
            f"This deletes {what}: fills, wallets, markets, runs, cursors, dead letters, marts, scores, the admin user, "
            "and the emulator's recorded history. The next `up` starts a new demo from scratch."
        )
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("not confirmed: run it in a terminal, or pass --yes")
            if input("Type 'reset' to continue: ").strip() != "reset":
                raise CommandError("not confirmed; nothing was deleted")
        if embedded:
            self._reset_embedded(state_dir)
        else:
            call_command("flush", interactive=False, verbosity=0)
            redis.Redis.from_url(settings.REDIS_URL).flushdb()
            if settings.CELERY_BROKER_URL != settings.REDIS_URL:
                redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
        for name in DEMO_STATE_FILES:
            (state_dir / name).unlink(missing_ok=True)
        admin_password_file().unlink(missing_ok=True)
        self.stdout.write("demo data wiped; `python3 dev.py up` starts a new demo")

    def _check_marked_demo(self, database_url: str) -> None:
        with psycopg.connect(database_url, connect_timeout=10) as connection:
            mark = connection.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
            ).fetchone()[0]
        if not (mark or "").startswith(DEMO_DATABASE_MARK):
            raise CommandError(
                "DATABASE_URL is not a database `up` marked as a demo one; demo_reset wipes demo data only "
                "(empty it yourself with `manage.py flush` if that is really what you want)"
            )

    def _reset_embedded(self, state_dir: Path) -> None:
        from devtools.embedded import EmbeddedPostgres, EmbeddedRedis

        if (state_dir / "postgres").exists():
            server = EmbeddedPostgres(data_dir=state_dir / "postgres", port=settings.EMBEDDED_POSTGRES_PORT, database="postgres")
            url = server.start()
            try:
                with psycopg.connect(url, autocommit=True) as connection:
                    connection.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(EMBEDDED_DATABASES["demo"]))
                    )
            finally:
                server.stop()
        if (state_dir / "redis").exists():
            server = EmbeddedRedis(data_dir=state_dir / "redis", port=settings.EMBEDDED_REDIS_PORT)
            url = server.start()
            try:
                client = redis.Redis.from_url(url.rsplit("/", 1)[0] + f"/{EMBEDDED_REDIS_DATABASES['demo']}")
                client.flushdb()
                client.close()
            finally:
                server.stop()
