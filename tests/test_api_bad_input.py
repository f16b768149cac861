"""Bad input: strict filters answer 400 naming the parameter; paging and sorting coerce by contract."""

from __future__ import annotations

import pytest

from api.testing import api_world_seed, throttle_rates_set

pytestmark = pytest.mark.django_db
FINGERPRINT = {"HTTP_X_USER_FINGERPRINT": "fp-bad-input-browser-0001"}


@pytest.fixture(autouse=True)
def _unthrottled(settings):
    throttle_rates_set(settings)


@pytest.fixture
def world():
    return api_world_seed()


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/api/v1/wallets?tracked=maybe", "tracked"),
        ("/api/v1/wallets?pool_tier=diamond", "pool_tier"),
        ("/api/v1/wallets?q=" + "x" * 201, "q"),
        ("/api/v1/wallets/potential?min_realized_pnl=lots", "min_realized_pnl"),
        ("/api/v1/wallets/potential?min_realized_pnl=NaN", "min_realized_pnl"),
        ("/api/v1/wallets/potential?has_ai_report=perhaps", "has_ai_report"),
        ("/api/v1/wallets/potential?min_trades=-1", "min_trades"),
        ("/api/v1/wallets/potential?min_trades=ten", "min_trades"),
        ("/api/v1/watchlist/feed?type=gossip", "type"),
        ("/api/v1/markets?status=9", "status"),
        ("/api/v1/markets?closed=sometimes", "closed"),
        ("/api/v1/leaderboard?pool_tier=gold", "pool_tier"),
        ("/api/v1/ops/highlights?limit=0", "limit"),
        ("/api/v1/ops/highlights?limit=21", "limit"),
        ("/api/v1/ops/highlights?limit=five", "limit"),
        ("/api/v1/anomalies?severity=apocalyptic", "severity"),
        ("/api/v1/anomalies?acknowledged=yesno", "acknowledged"),
        ("/api/v1/anomalies?wallet_id=99999999999999999999999", "wallet_id"),
        ("/api/v1/ai/report/1/history?limit=101", "limit"),
        ("/api/v1/ai/report/1/history?limit=0", "limit"),
        ("/api/v1/markets?q=nul%00byte", "q"),
    ],
)
def test_a_bad_filter_is_a_400_that_names_the_parameter(client, world, path, reason):
    response = client.get(path, **FINGERPRINT)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "bad_request"
    assert body["error"].startswith(f"{reason}:")
    assert body["data"] is None


def test_a_bad_ingest_run_status_is_a_400_for_staff(client, world, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-1", is_staff=True))
    response = client.get("/api/v1/ingest/runs?status=exploded")
    assert response.status_code == 400
    assert response.json()["error"].startswith("status:")


@pytest.mark.parametrize(
    ("query", "page", "page_size"),
    [
        ("", 1, 20),
        ("page=2&page_size=2", 2, 2),
        ("page=0&page_size=0", 1, 20),
        ("page=-3&page_size=-1", 1, 20),
        ("page=abc&page_size=xyz", 1, 20),
        ("page=1.5&page_size=2.5", 1, 20),
        ("page_size=500", 1, 200),
        ("page_size=200", 1, 200),
    ],
)
def test_paging_parameters_are_coerced_by_the_contract_rules(client, world, query, page, page_size):
    response = client.get(f"/api/v1/leaderboard?{query}")
    assert response.status_code == 200
    assert response.json()["data"]["pagination"] == {"page": page, "page_size": page_size, "total": 4}


def test_a_page_past_the_end_is_empty_with_the_real_total(client, world):
    data = client.get("/api/v1/leaderboard?page=50&page_size=2").json()["data"]
    assert data["items"] == []
    assert data["pagination"] == {"page": 50, "page_size": 2, "total": 4}


def test_an_unknown_sort_falls_back_to_the_default_and_ties_break_by_id(client, world):
    default = client.get("/api/v1/wallets/potential?sort_by=smart_score").json()["data"]["items"]
    unknown = client.get("/api/v1/wallets/potential?sort_by=drop_table&order=sideways").json()["data"]["items"]
    assert [item["wallet"]["id"] for item in unknown] == [item["wallet"]["id"] for item in default]
    # quant and event_trader share smart_score 55: desc breaks the tie by the higher id first.
    assert [item["wallet"]["id"] for item in default] == [world.star.id, world.event_trader.id, world.quant.id]
    ascending = client.get("/api/v1/wallets/potential?sort_by=smart_score&order=asc").json()["data"]["items"]
    assert [item["wallet"]["id"] for item in ascending] == [world.quant.id, world.event_trader.id, world.star.id]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "wallet_id"),
        ({"wallet_id": "abc"}, "wallet_id"),
        ({"wallet_id": 0}, "wallet_id"),
        ({"wallet_id": 2**70}, "wallet_id"),
    ],
)
def test_a_bad_follow_body_is_a_400(client, world, body, reason):
    response = client.post("/api/v1/watchlist", data=body, content_type="application/json", **FINGERPRINT)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{reason}:")


@pytest.mark.parametrize(
    "body", [{}, {"wallet_ids": []}, {"wallet_ids": "1,2"}, {"wallet_ids": [1, "x"]}, {"wallet_ids": list(range(1, 202))}]
)
def test_a_bad_batch_body_is_a_400(client, world, body):
    response = client.post("/api/v1/watchlist/batch", data=body, content_type="application/json", **FINGERPRINT)
    assert response.status_code == 400
    assert response.json()["error"].startswith("wallet_ids:")


def test_an_unsupported_body_type_is_a_415_with_the_bad_request_code(client, world):
    response = client.post("/api/v1/watchlist", data="wallet_id=1", content_type="text/plain", **FINGERPRINT)
    assert response.status_code == 415
    assert response.json()["code"] == "bad_request"


def test_a_bad_force_flag_is_a_400(client, world):
    response = client.post(f"/api/v1/ai/analyze/{world.star.id}?force=often")
    assert response.status_code == 400
    assert response.json()["error"].startswith("force:")


def test_an_ineligible_wallet_cannot_be_analysed(client, world):
    response = client.post(f"/api/v1/ai/analyze/{world.newcomer.id}")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert client.post(f"/api/v1/ai/analyze/{world.uncomputed.id}").status_code == 400
    assert client.post("/api/v1/ai/analyze/424242").json()["error"] == "wallet not found"
