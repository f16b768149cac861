"""The service set's skeleton: health, settings validation, Celery wiring, schedules, compose file."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_lib
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def test_healthz_answers_ok_without_touching_anything(client):
    # No django_db mark: any database access here would raise.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ready_when_postgres_redis_and_migrations_are(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ready"


@pytest.mark.django_db
def test_readyz_names_redis_when_it_cannot_be_reached(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz", HTTP_X_REQUEST_ID="probe-1")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert "redis" in body["error"]
    assert body["meta"]["checks"]["postgres"] == "ok"
    assert body["trace_id"] == "probe-1"


def test_the_request_id_is_echoed_or_generated(client):
    given = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert given["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="not ok; drop table")
    assert generated["X-Request-ID"] != "not ok; drop table"
    assert len(generated["X-Request-ID"]) == 32


def test_an_unknown_api_route_gets_the_json_envelope(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert body["trace_id"] == response["X-Request-ID"]


def _django_check_with(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://nope"),
        ("REDIS_URL", "not a url"),
        ("DEBUG", "maybe"),
        ("CELERY_TASK_TIME_LIMIT", "ten"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_a_malformed_setting_stops_start_up_naming_the_variable(variable, value):
    result = _django_check_with({variable: value})
    assert result.returncode != 0
    assert variable in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {"ARBITRA_ENV": "production", "SECRET_KEY": "", "ALLOWED_HOSTS": "x"}
    result = _django_check_with(env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_celery_is_configured_not_to_lose_work():
    from arbitra.celery import app

    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit > conf.task_soft_time_limit
    assert app.amqp.router.route({}, "ingest.data_api.trades")["queue"].name == "ingest"
    assert app.amqp.router.route({}, "marts.drain")["queue"].name == "compute"


def test_a_task_goes_through_the_broker_and_a_real_worker(celery_worker):
    from arbitra.tasks import HEARTBEAT_KEY, heartbeat

    result = heartbeat.apply_async(queue="compute", routing_key="compute")
    record = result.get(timeout=30)
    assert record["queue"] == "compute"
    stored = redis_lib.Redis.from_url(settings.REDIS_URL).hgetall(HEARTBEAT_KEY.format(queue="compute"))
    assert stored[b"worker"].decode() == record["worker"]


@pytest.mark.django_db
def test_installing_schedules_twice_keeps_operator_edits():
    from django_celery_beat.models import PeriodicTask

    from arbitra.schedules import periodic_jobs, schedules_install

    first = schedules_install()
    assert first["created"] == len(periodic_jobs())
    PeriodicTask.objects.filter(name="ingest.data_api.trades").update(enabled=False)
    second = schedules_install()
    assert second == {"created": 0, "kept": len(periodic_jobs())}
    assert PeriodicTask.objects.get(name="ingest.data_api.trades").enabled is False


def test_every_scheduled_task_is_registered_with_celery():
    from arbitra.celery import app
    from arbitra.schedules import periodic_jobs

    app.loader.import_default_modules()
    missing = [job.task for job in periodic_jobs() if job.task not in app.tasks]
    assert missing == []


def test_docker_compose_parses_and_every_command_exists_in_the_project():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker-ingest", "worker-compute", "beat", "flower"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert "noeviction" in services["redis"]["command"] and "--appendonly" in services["redis"]["command"]
    from arbitra.celery import app

    for name in ["migrate", "web", "worker-ingest", "worker-compute", "beat", "flower"]:
        command = services[name]["command"]
        words = shlex.split(command[-1]) if command[0] == "sh" else command
        if words[0] == "gunicorn":
            module, _, attribute = words[1].partition(":")
            assert (ROOT / (module.replace(".", "/") + ".py")).exists()
            assert attribute == "application"
        elif words[0] == "celery":
            assert words[1:3] == ["-A", "arbitra"] and app.main == "arbitra"
        elif words[0] == "python":
            for step in " ".join(words).split("&&"):
                step_words = step.split()
                assert step_words[1] == "manage.py"
                assert _management_command_exists(step_words[2]), step
        else:
            pytest.fail(f"unknown entry point in {name}: {command}")
        assert "healthcheck" in services[name] or name in {"migrate", "beat"}
    beat = services["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1


def _management_command_exists(name: str) -> bool:
    from django.core.management import get_commands

    return name in get_commands()


@pytest.mark.django_db
def test_json_logs_are_one_object_per_line_carrying_the_request_id(client, settings):
    import io
    import json
    import logging

    from arbitra.logging import ContextFilter, JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    probe = logging.getLogger("arbitra.health")
    probe.addHandler(handler)
    try:
        settings.REDIS_URL = "redis://127.0.0.1:1/0"  # readyz logs why Redis failed
        client.get("/readyz", HTTP_X_REQUEST_ID="req-42")
    finally:
        probe.removeHandler(handler)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records and all(record["context_id"] == "req-42" for record in records)
    assert {"time", "level", "logger", "message"} <= set(records[0])
