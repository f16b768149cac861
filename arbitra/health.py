"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse

logger = logging.getLogger(__name__)


def healthz(request):
    """Liveness: the process answers. Deliberately no I/O, so a slow database never kills web."""
    return JsonResponse({"status": "ok"})


def _check_postgres() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.exception("readiness: PostgreSQL check failed")
        return "postgres unreachable"
    return None


def _check_migrations() -> str | None:
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        logger.exception("readiness: migration check failed")
        return "migrations could not be inspected"
    return f"{len(pending)} migrations not applied" if pending else None


def _check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
    except Exception:
        logger.exception("readiness: Redis check failed")
        return "redis unreachable"
    return None


def readyz(request):
    checks = {"postgres": _check_postgres(), "redis": _check_redis()}
    if checks["postgres"] is None:
        checks["migrations"] = _check_migrations()
    failed = {name: problem for name, problem in checks.items() if problem}
    if failed:
        names = ", ".join(sorted(failed))
        return JsonResponse(
            {
                "data": None,
                "error": f"not ready: {names}",
                "code": "not_ready",
                "trace_id": getattr(request, "request_id", ""),
                "meta": {"checks": {name: failed.get(name, "ok") for name in checks}},
            },
            status=503,
        )
    return JsonResponse({"status": "ready", "checks": {name: "ok" for name in checks}})


# --- processes supervised by `manage.py up` --------------------------------------------------------

UP_STATUS_FILE_NAME = "up-status.json"


def process_start_ticks(pid: int | None) -> int | None:
    """When `pid` started (clock ticks since boot, from /proc): with the pid it names one process for
    good, so a pid the kernel reused is never taken for the process it once was."""
    if not isinstance(pid, int):
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] == "Z":
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def supervised_processes() -> dict | None:
    """What `manage.py up` reports about its children (pid, running, restarts, last exit code), or
    None when no `up` runs on this state folder (compose, a bare gunicorn, a stale file)."""
    try:
        status = json.loads((Path(settings.STATE_DIR) / UP_STATUS_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict) or process_start_ticks(status.get("pid")) != status.get("start_ticks"):
        return None
    children = status.get("children") or {}
    status["restarts_total"] = sum(child.get("restarts", 0) for child in children.values())
    status["not_running"] = sorted(name for name, child in children.items() if not child.get("running"))
    return status
