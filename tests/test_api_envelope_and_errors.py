"""Every /api/v1 answer is the envelope, errors carry the contract's codes, and nothing internal leaks."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from api import selectors
from api.testing import api_world_seed, throttle_rates_set

pytestmark = pytest.mark.django_db

ENVELOPE_KEYS = {"data", "error", "code", "trace_id", "meta"}


@pytest.fixture(autouse=True)
def _unthrottled(settings):
    throttle_rates_set(settings)


def test_a_success_carries_data_and_the_request_id_as_trace_id(client):
    api_world_seed()
    response = client.get("/api/v1/leaderboard", HTTP_X_REQUEST_ID="trace-me-1")
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["trace_id"] == "trace-me-1" == response["X-Request-ID"]
    assert body["error"] == "" and body["code"] == ""
    assert body["data"]["pagination"]["total"] == 4


def test_a_generated_request_id_is_the_trace_id_too(client):
    response = client.get("/api/v1/wallets/424242")
    body = response.json()
    assert response.status_code == 404
    assert body == {
        "data": None,
        "error": "wallet not found",
        "code": "not_found",
        "trace_id": response["X-Request-ID"],
        "meta": {},
    }


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/v1/wallets/424242/profile", "wallet not found"),
        ("/api/v1/wallets/424242/info-edge", "wallet not found"),
        ("/api/v1/ai/report/424242", "report not found"),
        ("/api/v1/markets/424242", "market not found"),
        ("/api/v1/anomalies/424242", "anomaly not found"),
        ("/api/v1/no/such/route", "route not found"),
        ("/api/v1/wallets/not-a-number", "route not found"),
        ("/api/v1/wallets/99999999999999999999999", "route not found"),
    ],
)
def test_missing_things_are_404_envelopes_with_the_contract_message(client, path, message):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == message
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/api/v1/wallets"), ("delete", "/api/v1/leaderboard"), ("post", "/api/v1/markets")],
)
def test_an_unsupported_method_is_a_405_envelope(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_an_unexpected_error_is_a_generic_500_without_sql(client, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError('relation "wallet_snapshot" does not exist LINE 1: SELECT * FROM wallet_snapshot')

    monkeypatch.setattr(selectors, "leaderboard_list", broken)
    client.raise_request_exception = False
    response = client.get("/api/v1/leaderboard", HTTP_X_REQUEST_ID="boom-1")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["error"] == "internal error"
    assert body["trace_id"] == "boom-1"
    assert "wallet_snapshot" not in response.content.decode()


def test_an_error_outside_drf_under_api_v1_is_a_500_envelope(rf):
    from api.exceptions import handler500

    request = rf.get("/api/v1/wallets")
    request.request_id = "outside-1"
    response = handler500(request)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b'"internal_error"' in response.content and b"outside-1" in response.content


def test_malformed_json_is_a_400_envelope(client):
    response = client.post(
        "/api/v1/watchlist", data="{not json", content_type="application/json", HTTP_X_USER_FINGERPRINT="fp-1-browser-0001"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_staff_only_runs_are_a_403_envelope_for_anonymous_and_non_staff(client, django_user_model):
    assert client.get("/api/v1/ingest/runs").json()["code"] == "forbidden"
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-1")
    client.force_login(user)
    response = client.get("/api/v1/ingest/runs")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    staff = django_user_model.objects.create_user("ops", password="pw-ops-1", is_staff=True)
    client.force_login(staff)
    assert client.get("/api/v1/ingest/runs").status_code == 200


def test_the_rate_limit_is_a_429_envelope_per_client_and_probes_are_exempt(client, settings):
    throttle_rates_set(settings, per_second=0.01, burst=3)
    statuses = [client.get("/api/v1/portfolios", REMOTE_ADDR="10.1.1.1").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/api/v1/portfolios", REMOTE_ADDR="10.1.1.1")
    assert limited.json()["code"] == "rate_limited"
    assert int(limited["Retry-After"]) > 0
    # Another client (another address) has its own bucket.
    assert client.get("/api/v1/portfolios", REMOTE_ADDR="10.1.1.2").status_code == 200
    assert all(client.get("/healthz", REMOTE_ADDR="10.1.1.1").status_code == 200 for _ in range(6))


def test_the_rate_limit_bucket_lives_in_redis_so_every_process_shares_it(client, settings, redis_client):
    throttle_rates_set(settings, per_second=1, burst=5)
    client.get("/api/v1/portfolios")
    assert any(b"ratelimit:requests:address:" in key for key in redis_client.keys("*"))


def test_cors_preflight_allows_the_fingerprint_and_request_id_headers(client):
    response = client.options(
        "/api/v1/watchlist",
        HTTP_ORIGIN="http://localhost:3000",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-user-fingerprint, x-request-id, content-type",
    )
    assert response.status_code == 200
    allowed = response["Access-Control-Allow-Headers"].lower()
    assert "x-user-fingerprint" in allowed and "x-request-id" in allowed
    simple = client.get("/api/v1/portfolios", HTTP_ORIGIN="http://localhost:3000")
    assert "x-request-id" in simple["Access-Control-Expose-Headers"].lower()


def test_the_schema_and_the_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/wallets/potential" in document["paths"]
    assert client.get("/api/docs/").status_code == 200


def test_the_v1_root_lists_the_docs_and_every_route_and_each_listed_route_resolves(client):
    from django.urls import Resolver404, resolve

    response = client.get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert body["error"] == "" and body["data"]["docs"] == "/api/docs/" and body["data"]["schema"] == "/api/schema/"
    routes = body["data"]["routes"]
    assert "/api/v1/wallets/{wallet_id}/profile" in routes and "/api/v1/stats/overview" in routes
    for route in routes:
        concrete = route.replace("{wallet_id}", "1").replace("{market_id}", "1").replace("{anomaly_id}", "1")
        try:
            match = resolve(concrete)
        except Resolver404:
            pytest.fail(f"{route} is listed but resolves nowhere")
        assert match.url_name != "api-unknown-route", route
    assert client.get("/api/docs/").status_code == 200
