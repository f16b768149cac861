"""`/metrics`: Prometheus text with per-stream lag, runs, rows, retries, open problems, queue depths."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as redis_lib
from django.contrib.auth import get_user_model
from django.utils import timezone

from ingest.changes import changed_wallets_push
from ingest.metrics import MetricFamily, metrics_render
from ingest.models import IngestDeadLetter, IngestGap, IngestRun, RunStatus

pytestmark = pytest.mark.django_db

# Other test sessions share the Redis server, flush the app database and consume the broker's
# queues; these tests count what they put there, so app and broker get a database of their own.
PRIVATE_REDIS_DB = 10
SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@pytest.fixture
def private_redis(settings):
    parts = urlsplit(settings.REDIS_URL)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{PRIVATE_REDIS_DB}", "", ""))
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    client = redis_lib.Redis.from_url(url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not an exposition line: {line!r}"
        labels = frozenset(LABEL.findall(match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _run(job: str, status: str, *, hours_ago: float, stats: dict) -> IngestRun:
    started = timezone.now() - timedelta(hours=hours_ago)
    return IngestRun.objects.create(
        job_name=job, status=status, started_at=started, ended_at=started + timedelta(seconds=3), stats_json=stats
    )


@pytest.fixture
def seeded(private_redis):
    trades = "ingest.data_api.trades"
    newest = timezone.now() - timedelta(seconds=90)
    _run(trades, RunStatus.SUCCEEDED, hours_ago=3, stats={"inserted": 10, "duplicates": 3, "http": {"retries": 2}})
    _run(trades, RunStatus.FAILED, hours_ago=2, stats={"abandoned_runs": 0})
    _run(
        trades,
        RunStatus.SUCCEEDED,
        hours_ago=1,
        stats={"inserted": 5, "duplicates": 1, "http": {"retries": 4}, "newest_upstream_time": newest.isoformat()},
    )
    # Outside the 24-hour window: counted nowhere.
    _run(trades, RunStatus.SUCCEEDED, hours_ago=30, stats={"inserted": 1000, "duplicates": 1000, "http": {"retries": 99}})
    _run("ingest.gamma.markets", RunStatus.PARTIAL, hours_ago=0.5, stats={"inserted": 7, "http": {"retries": "n/a"}})
    _run("replay.trades", RunStatus.SUCCEEDED, hours_ago=0.2, stats={"inserted": 0, "duplicates": 42})
    for payload in ({"a": 1}, {"a": 2}):
        IngestDeadLetter.objects.create(source="data_api", stream="trades", payload=payload, error="price: not a number")
    IngestDeadLetter.objects.create(
        source="data_api", stream="trades", payload={"a": 3}, error="x", resolved_at=timezone.now()
    )
    IngestDeadLetter.objects.create(source="feed:7", stream="entries", payload={"t": ""}, error="entry has no title")
    window = {"window_start": timezone.now() - timedelta(hours=1), "window_end": timezone.now()}
    IngestGap.objects.create(source="data_api", stream="trades", **window)
    IngestGap.objects.create(source="data_api", stream="trades", status=IngestGap.Status.CLOSED, **window)
    changed_wallets_push(wallet_ids=[1, 2, 3])
    private_redis.rpush("ingest", "m1", "m2")
    private_redis.rpush("ingest\x06\x163", "m3")  # a priority-3 message lives under kombu's priority key
    return private_redis


def test_metrics_report_the_expected_series_for_seeded_runs(client, seeded):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    for name in (
        "arbitra_ingest_lag_seconds", "arbitra_ingest_runs_24h", "arbitra_ingest_rows_inserted_24h",
        "arbitra_ingest_rows_duplicates_24h", "arbitra_ingest_http_retries_24h", "arbitra_ingest_dead_letters_open",
        "arbitra_ingest_gaps_open", "arbitra_changed_wallets_queue_depth", "arbitra_celery_queue_depth",
    ):
        assert f"# TYPE {name} gauge" in text
        assert f"# HELP {name} " in text
    samples = _samples(text)
    trades = "ingest.data_api.trades"
    assert 90 <= _value(samples, "arbitra_ingest_lag_seconds", ingest_job=trades) < 120
    assert _value(samples, "arbitra_ingest_runs_24h", ingest_job=trades, status="succeeded") == 2
    assert _value(samples, "arbitra_ingest_runs_24h", ingest_job=trades, status="failed") == 1
    assert _value(samples, "arbitra_ingest_runs_24h", ingest_job=trades, status="partial") == 0
    assert _value(samples, "arbitra_ingest_rows_inserted_24h", ingest_job=trades) == 15
    assert _value(samples, "arbitra_ingest_rows_duplicates_24h", ingest_job=trades) == 4
    assert _value(samples, "arbitra_ingest_http_retries_24h", ingest_job=trades) == 6
    # A non-numeric counter is skipped, not fatal; a job outside the registry still reports.
    assert _value(samples, "arbitra_ingest_http_retries_24h", ingest_job="ingest.gamma.markets") == 0
    assert _value(samples, "arbitra_ingest_rows_inserted_24h", ingest_job="ingest.gamma.markets") == 7
    assert _value(samples, "arbitra_ingest_rows_duplicates_24h", ingest_job="replay.trades") == 42
    assert _value(samples, "arbitra_ingest_rows_inserted_24h", ingest_job="ingest.offchain.feeds") == 0
    assert _value(samples, "arbitra_ingest_dead_letters_open", source="data_api", stream="trades") == 2
    assert _value(samples, "arbitra_ingest_dead_letters_open", source="feed:7", stream="entries") == 1
    assert ("arbitra_ingest_dead_letters_open", frozenset({("source", "gamma"), ("stream", "markets")})) not in samples
    assert _value(samples, "arbitra_ingest_gaps_open", source="data_api", stream="trades") == 1
    assert _value(samples, "arbitra_changed_wallets_queue_depth") == 3
    assert _value(samples, "arbitra_celery_queue_depth", queue="ingest") == 3
    assert _value(samples, "arbitra_celery_queue_depth", queue="compute") == 0
    assert _value(samples, "arbitra_metrics_backend_up", backend="redis") == 1
    assert _value(samples, "arbitra_metrics_backend_up", backend="broker") == 1
    assert _value(samples, "arbitra_ingest_last_success_timestamp_seconds", ingest_job=trades) > 0


def test_metrics_are_forbidden_to_anonymous_callers_that_are_not_on_loopback(client, private_redis):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_metrics_take_the_bearer_token_and_then_no_longer_trust_loopback(client, settings, private_redis):
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    allowed = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert allowed.status_code == 200


def test_metrics_are_open_to_a_staff_session_from_anywhere(client, settings, private_redis):
    settings.METRICS_TOKEN = "s3cret-token"
    user = get_user_model().objects.create_user("oncall", password="pw-oncall-1", is_staff=True)
    client.force_login(user)
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_metrics_still_answer_when_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.content.decode())
    assert _value(samples, "arbitra_metrics_backend_up", backend="redis") == 0
    assert _value(samples, "arbitra_metrics_backend_up", backend="broker") == 0
    assert ("arbitra_changed_wallets_queue_depth", frozenset()) not in samples


def test_label_values_and_help_text_are_escaped():
    family = MetricFamily("arbitra_x", "gauge", 'help with \\ and\nnewline')
    family.add(1.5, source='feed:"quoted"\\path\nline')
    assert metrics_render([family]) == (
        "# HELP arbitra_x help with \\\\ and\\nnewline\n"
        "# TYPE arbitra_x gauge\n"
        'arbitra_x{source="feed:\\"quoted\\"\\\\path\\nline"} 1.5\n'
    )


def test_exhausted_gaps_are_reported_apart_from_open_ones(client, private_redis):
    from datetime import timedelta

    from django.utils import timezone

    from ingest.models import IngestGap

    now = timezone.now()
    IngestGap.objects.create(source="data_api", stream="trades", window_start=now - timedelta(minutes=5),
                             window_end=now, status=IngestGap.Status.EXHAUSTED)
    text = client.get("/metrics").content.decode()
    assert "arbitra_ingest_gaps_exhausted 1" in text.splitlines()
    assert not any(line.startswith("arbitra_ingest_gaps_open{") for line in text.splitlines())
