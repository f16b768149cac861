"""Rate limits a real deployment survives: per client address, never per invented header; service
clients with their own budget; atomic under concurrency; Redis or PostgreSQL down is not a 500."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import OperationalError

from api import selectors, throttling
from api.testing import api_world_seed, throttle_rates_set

SERVICE_TOKEN = "renderer-token-0123456789abcdef"
CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def world(db):
    return api_world_seed()


def _statuses(client, count: int, **headers) -> list[int]:
    return [client.get("/api/v1/portfolios", **headers).status_code for _ in range(count)]


def test_a_rotating_fingerprint_gets_no_more_than_one_addresss_allowance(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=5)
    statuses = [
        client.get("/api/v1/portfolios", REMOTE_ADDR="198.51.100.7", HTTP_X_USER_FINGERPRINT=f"fp-{uuid.uuid4().hex}").status_code
        for _ in range(20)
    ]
    assert statuses.count(200) == 5 and statuses.count(429) == 15


def test_x_forwarded_for_from_an_untrusted_peer_opens_no_new_allowance(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=3)
    statuses = [
        client.get("/api/v1/portfolios", REMOTE_ADDR="198.51.100.8", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(10)
    ]
    assert statuses.count(200) == 3


def test_behind_a_trusted_proxy_each_visitor_is_limited_by_their_own_address(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=2)
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    # The proxy appends the address it saw; what the visitor wrote to the left of it is not believed.
    anna = [_statuses(client, 1, HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, 203.0.113.10", **proxy)[0] for n in range(4)]
    bob = _statuses(client, 2, HTTP_X_FORWARDED_FOR="203.0.113.11", **proxy)
    assert anna == [200, 200, 429, 429] and bob == [200, 200]


def test_ipv6_clients_are_counted_per_64_block(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=2)
    statuses = [client.get("/api/v1/portfolios", REMOTE_ADDR=f"2001:db8:1:2::{n:x}").status_code for n in range(1, 6)]
    assert statuses.count(200) == 2


def test_a_service_client_has_its_own_budget_and_passes_each_visitors_address(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=2)
    settings.API_SERVICE_TOKENS = [SERVICE_TOKEN]
    settings.API_SERVICE_RATE_PER_SECOND = 0.001
    settings.API_SERVICE_RATE_BURST = 12
    renderer = {"REMOTE_ADDR": "192.0.2.50", "HTTP_X_SERVICE_TOKEN": SERVICE_TOKEN}
    # Without a visitor address only the renderer's budget applies: more than one visitor's burst.
    assert _statuses(client, 5, **renderer) == [200] * 5
    # With one, each visitor is limited one by one, and every request still draws on the renderer.
    assert _statuses(client, 3, HTTP_X_FORWARDED_FOR="203.0.113.20", **renderer) == [200, 200, 429]
    assert _statuses(client, 2, HTTP_X_FORWARDED_FOR="203.0.113.21", **renderer) == [200, 200]
    # 5 + 2 + 2 taken of 12 (a refused request takes nothing); the Bearer form is the same token.
    bearer = {"REMOTE_ADDR": "192.0.2.50", "HTTP_AUTHORIZATION": f"Bearer {SERVICE_TOKEN}"}
    assert _statuses(client, 4, **bearer) == [200, 200, 200, 429]


def test_a_wrong_service_token_is_an_ordinary_visitor(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=2)
    settings.API_SERVICE_TOKENS = [SERVICE_TOKEN]
    headers = {"REMOTE_ADDR": "192.0.2.51", "HTTP_X_SERVICE_TOKEN": "x" * 32, "HTTP_X_FORWARDED_FOR": "203.0.113.30"}
    assert _statuses(client, 3, **headers) == [200, 200, 429]


def test_an_allow_listed_address_is_a_service_client(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=1)
    settings.API_SERVICE_ADDRESSES = ["192.0.2.0/28"]
    settings.API_SERVICE_RATE_BURST = 6
    assert _statuses(client, 6, REMOTE_ADDR="192.0.2.3") == [200] * 6


def test_concurrent_requests_cannot_take_more_than_the_burst(settings, redis_client):
    buckets = [throttling.Bucket("arbitra:ratelimit:test:concurrency", rate=0.001, burst=25)]
    allowed = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def hammer():
        start.wait()
        for _ in range(20):
            if throttling.buckets_take(buckets) == 0:
                with lock:
                    allowed.append(1)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 25


def test_the_default_limit_is_30_a_second_with_a_burst_of_60_and_no_hourly_cap():
    from django.conf import settings as live

    assert (live.API_RATE_PER_SECOND, live.API_RATE_BURST, live.API_RATE_PER_HOUR) == (30.0, 60, 0)
    buckets = throttling.buckets_for(throttling.ClientIdentity(address="203.0.113.40", service=""))
    assert [(bucket.rate, bucket.burst) for bucket in buckets] == [(30.0, 60)]


READ_ROUTES = [
    "/api/v1/wallets",
    "/api/v1/wallets/potential?min_trades=0",
    "/api/v1/leaderboard",
    "/api/v1/markets",
    "/api/v1/stats/overview",
    "/api/v1/ops/highlights",
    "/api/v1/anomalies",
    "/api/v1/portfolios",
]


def _redis_unreachable(settings) -> None:
    settings.REDIS_URL = CLOSED_REDIS
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": CLOSED_REDIS}}


def test_with_redis_stopped_read_routes_answer_200_and_readyz_503_naming_redis(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=1000)
    _redis_unreachable(settings)
    before = throttling.limiter_fallbacks["count"]
    for path in READ_ROUTES:
        response = client.get(path, REMOTE_ADDR="198.51.100.60")
        assert response.status_code == 200, (path, response.content[:200])
    assert throttling.limiter_fallbacks["count"] >= before + len(READ_ROUTES)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "redis" in ready.json()["error"] and ready.json()["meta"]["checks"]["redis"] != "ok"


def test_with_redis_stopped_clients_are_still_limited_per_process(client, world, settings):
    throttle_rates_set(settings, per_second=0.001, burst=3)
    _redis_unreachable(settings)
    assert _statuses(client, 5, REMOTE_ADDR="198.51.100.61") == [200, 200, 200, 429, 429]


def test_with_postgresql_unreachable_the_api_answers_a_503_envelope(client, world, monkeypatch):
    def refused(**_kwargs):
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    monkeypatch.setattr(selectors, "leaderboard_list", refused)
    response = client.get("/api/v1/leaderboard")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "unavailable" and body["error"] == "database unavailable; try again shortly"
    assert "5432" not in response.content.decode()
