"""State changes anonymous browsers may make: acknowledging alerts (audited, reversible, rate
limited, optionally staff only) and forcing AI reports (bounded per wallet and per client)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.admin.sites import site
from django.utils import timezone

from api.models import AnomalyAcknowledgement
from api.testing import api_world_seed, throttle_rates_set
from scoring.models import AiReport, Anomaly

BROWSER = "state-change-browser-0001"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(db, settings):
    throttle_rates_set(settings)
    return api_world_seed()


def _ack(client, anomaly_id: int, **extra):
    return client.patch(f"/api/v1/anomalies/{anomaly_id}/acknowledge", **extra)


def test_an_acknowledgement_records_who_and_when_and_can_be_undone_both_ways(client, world):
    response = _ack(client, world.anomaly.id, HTTP_X_USER_FINGERPRINT=BROWSER, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200 and response.json()["data"]["acknowledged"] is True
    undo = {"data": {"acknowledged": False}, "content_type": "application/json"}
    undone = _ack(client, world.anomaly.id, REMOTE_ADDR="203.0.113.9", **undo)
    assert undone.json()["data"] == {"id": world.anomaly.id, "acknowledged": False, "acknowledged_at": None}
    assert _ack(client, world.anomaly.id).json()["data"]["acknowledged"] is True
    deleted = client.delete(f"/api/v1/anomalies/{world.anomaly.id}/acknowledge")
    assert deleted.status_code == 200 and deleted.json()["data"]["acknowledged"] is False
    assert Anomaly.objects.get(pk=world.anomaly.id).acknowledged is False
    trail = list(AnomalyAcknowledgement.objects.filter(anomaly_id=world.anomaly.id).order_by("id"))
    assert [entry.action for entry in trail] == ["acknowledged", "unacknowledged", "acknowledged", "unacknowledged"]
    first = trail[0]
    assert first.fingerprint_hash and BROWSER not in first.fingerprint_hash and first.client_address == "203.0.113.9"
    assert first.who == f"fingerprint {first.fingerprint_hash}" and first.created_at <= timezone.now()
    assert trail[1].who == "address 203.0.113.9"


def test_repeating_the_current_state_records_nothing(client, world):
    for _ in range(3):
        assert _ack(client, world.anomaly.id).status_code == 200
    assert AnomalyAcknowledgement.objects.filter(anomaly_id=world.anomaly.id).count() == 1


def test_a_signed_in_user_is_recorded_as_that_user(client, world, django_user_model):
    user = django_user_model.objects.create_user("analyst", password="pw-analyst-1")
    client.force_login(user)
    _ack(client, world.anomaly.id)
    assert AnomalyAcknowledgement.objects.get().user == user


def test_acknowledging_is_rate_limited_per_client(client, world, settings):
    settings.API_ACK_PER_MINUTE = 3
    statuses = [_ack(client, world.anomaly.id, HTTP_X_USER_FINGERPRINT=f"rotating-browser-{n:04d}").status_code for n in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert client.patch("/api/v1/anomalies/424242/acknowledge").status_code == 404


def test_with_the_staff_policy_only_staff_may_acknowledge(client, world, settings, django_user_model):
    settings.ANOMALY_ACK_POLICY = "staff"
    refused = _ack(client, world.anomaly.id)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert "ANOMALY_ACK_POLICY" in refused.json()["error"]
    assert not AnomalyAcknowledgement.objects.exists()
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-1", is_staff=True))
    assert _ack(client, world.anomaly.id).status_code == 200


def test_the_audit_trail_is_in_the_admin_and_read_only(admin_client, world):
    assert AnomalyAcknowledgement in site._registry
    _ack(admin_client, world.anomaly.id)
    page = admin_client.get("/admin/api/anomalyacknowledgement/")
    assert page.status_code == 200 and b"acknowledged" in page.content
    assert admin_client.get("/admin/api/anomalyacknowledgement/add/").status_code == 403


def _force(client, wallet_id: int, **extra):
    return client.post(f"/api/v1/ai/analyze/{wallet_id}", data={"force": True}, content_type="application/json", **extra)


def test_force_writes_one_report_per_wallet_per_ten_minutes_and_then_returns_it_with_the_reason(client, world):
    AiReport.objects.all().delete()
    statuses = [_force(client, world.quant.id, REMOTE_ADDR=f"203.0.113.{n}") for n in range(5)]
    assert [response.status_code for response in statuses] == [201, 200, 200, 200, 200]
    assert AiReport.objects.filter(wallet=world.quant).count() == 1
    refused = statuses[1].json()
    assert refused["data"]["id"] == statuses[0].json()["data"]["id"]
    assert "at most one new report every 10 minutes" in refused["meta"]["force_refused"]


def test_force_is_bounded_per_client_across_wallets(client, world, settings):
    settings.AI_FORCE_PER_CLIENT_PER_HOUR = 2
    AiReport.objects.all().delete()
    wallets = [world.star.id, world.quant.id, world.event_trader.id]
    first = [_force(client, wallet_id).status_code for wallet_id in wallets]
    assert first == [201, 201, 201]  # the third wallet had no report yet: written like an unforced request
    AiReport.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    again = [_force(client, wallet_id) for wallet_id in wallets]
    assert [response.status_code for response in again] == [200, 200, 200]
    assert all("may force 2 new reports an hour" in response.json()["meta"]["force_refused"] for response in again)
    assert AiReport.objects.count() == 3


def test_staff_are_not_bounded(client, world, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-1", is_staff=True))
    statuses = [_force(client, world.star.id).status_code for _ in range(3)]
    assert statuses == [201, 201, 201]


def test_check_deploy_is_clean_in_production():
    env = {
        **os.environ,
        "ARBITRA_ENV": "production",
        "SECRET_KEY": "k" * 20 + "-production-secret-key-for-the-check-0123456789",
        "ALLOWED_HOSTS": "api.example.com",
        "FLOWER_PASSWORD": "flower-password-for-the-check",
        "METRICS_TOKEN": "metrics-token-for-the-check-0123",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_outside_production_the_secret_key_is_generated_per_install_in_the_state_folder(tmp_path):
    env = {**os.environ, "ARBITRA_STATE_DIR": str(tmp_path), "SECRET_KEY": ""}
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    runs = [
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        ).stdout.strip().splitlines()[-1]
        for _ in range(2)
    ]
    stored = (tmp_path / "secret_key").read_text().strip()
    assert runs == [stored, stored] and len(stored) >= 50
    assert "arbitra-local-development-key" not in stored
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
