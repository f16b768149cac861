"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging

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
