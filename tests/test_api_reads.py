"""What the read endpoints answer, checked against the seeded snapshots, marts and scores."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from api.models import Portfolio, PortfolioWallet
from api.testing import api_world_seed, throttle_rates_set
from scoring.models import AiReport, FeedEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _unthrottled(settings):
    throttle_rates_set(settings)


@pytest.fixture
def world():
    return api_world_seed()


def _data(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_potential_wallets_default_to_100_trades_and_non_negative_pnl(client, world):
    data = _data(client, "/api/v1/wallets/potential")
    assert {item["wallet"]["id"] for item in data["items"]} == {world.star.id, world.quant.id, world.event_trader.id}
    assert data["pagination"]["total"] == 3
    rich = _data(client, "/api/v1/wallets/potential?min_realized_pnl=1000&min_trades=140&sort_by=realized_pnl")
    assert [item["wallet"]["id"] for item in rich["items"]] == [world.star.id, world.quant.id]
    edge = _data(client, "/api/v1/wallets/potential?strategy_type=event_trader&has_ai_report=false")
    assert [item["wallet"]["id"] for item in edge["items"]] == [world.event_trader.id]


def test_potential_items_carry_the_frontend_keys(client, world):
    item = _data(client, "/api/v1/wallets/potential?pool_tier=star")["items"][0]
    keys = {
        "wallet",
        "total_trades",
        "trading_pnl",
        "maker_rebates",
        "realized_pnl",
        "smart_score",
        "info_edge_level",
        "strategy_type",
        "pool_tier",
        "has_ai_report",
        "nl_summary",
        "summary",
        "last_analyzed_at",
    }
    assert keys <= set(item)
    assert item["wallet"] == {"id": world.star.id, "address": world.star.address, "pseudonym": "Alpha-Star", "tracked": True}
    assert isinstance(item["realized_pnl"], float) and item["smart_score"] == 78.5


def test_scored_payloads_carry_disclosures(client, world):
    for path in [
        "/api/v1/wallets/potential",
        "/api/v1/leaderboard",
        "/api/v1/ops/highlights",
        f"/api/v1/wallets/{world.star.id}/profile",
        f"/api/v1/wallets/{world.star.id}/decision-card",
    ]:
        meta = client.get(path).json()["meta"]
        assert any("not investment advice" in line for line in meta["disclosures"]), path


def test_wallet_search_by_pseudonym_or_address_prefix(client, world):
    assert [w["id"] for w in _data(client, "/api/v1/wallets?q=alpha")["items"]] == [world.star.id]
    assert [w["id"] for w in _data(client, "/api/v1/wallets?q=0XB2B2")["items"]] == [world.quant.id]
    assert [w["id"] for w in _data(client, "/api/v1/wallets?tracked=true")["items"]] == [world.star.id]
    oldest_first = _data(client, "/api/v1/wallets?sort_by=id&order=asc&page_size=2")
    assert [w["id"] for w in oldest_first["items"]] == [world.star.id, world.quant.id]
    assert oldest_first["pagination"]["total"] == 5


def test_the_profile_has_three_layers_and_at_most_ten_recent_events(client, world):
    now = timezone.now()
    for number in range(12):
        FeedEvent.objects.create(
            wallet=world.star,
            event_type="anomaly",
            event_time=now - timedelta(days=1, minutes=number),
            reason_code="large_position",
            payload={"before": None, "after": number},
            dedupe_key=f"extra:{number}",
        )
    profile = _data(client, f"/api/v1/wallets/{world.star.id}/profile")
    assert profile["layer1_facts"]["realized_pnl"] == 18000.0
    assert profile["layer1_facts"]["unrealized_pnl"] == 120.25
    assert profile["strategy"]["pool_tier"] == "star" and profile["strategy"]["confidence"] == 0.7
    assert profile["layer3_info_edge"] == {
        "mean_delta_minutes": 12.5,
        "stddev_minutes": 30.0,
        "samples": 18,
        "z_score": 1.77,
        "p_value": 0.077,
        "label": "no_edge",
    }
    assert profile["meta"]["disclosures"]
    assert len(profile["recent_events"]) == 10
    assert profile["recent_events"][0]["event_type"] == "pnl_jump"


def test_a_wallet_not_computed_yet_has_a_profile_of_defaults(client, world):
    profile = _data(client, f"/api/v1/wallets/{world.uncomputed.id}/profile")
    assert profile["layer1_facts"]["total_trades"] == 0
    assert "strategy" not in profile and "last_analyzed_at" not in profile
    assert profile["layer3_info_edge"]["label"] == "insufficient_data"
    edge = _data(client, f"/api/v1/wallets/{world.event_trader.id}/info-edge")
    assert edge["classification"] == "processing_edge" and edge["mean_delta_minutes"] == -95.0


def test_cards_and_explanations(client, world):
    landing = _data(client, f"/api/v1/wallets/{world.star.id}/share-landing")
    assert landing["pnl_7d"] == 300.0 and landing["decision_card"]["suggested_position"] == "5-10%"
    card = _data(client, f"/api/v1/wallets/{world.quant.id}/share-card")
    assert card["ai_summary_source"] == "fallback" and "150 trades" in card["ai_summary"]
    decision = _data(client, f"/api/v1/wallets/{world.newcomer.id}/decision-card")
    assert decision["suitable_for"] == "watch_only" and decision["recommendation"].startswith("Watch only")
    assert decision["recommendation_zh"] and decision["disclaimer_zh"]
    explained = _data(client, f"/api/v1/wallets/{world.uncomputed.id}/explanations")
    assert explained["layer1"]["realized_pnl"]["value"] == 0.0
    assert explained["layer3"]["label"]["value"] == "insufficient_data"
    assert explained["disclosures"] and explained["generated_at"]


def test_the_leaderboard_has_one_row_per_wallet(client, world):
    items = _data(client, "/api/v1/leaderboard")["items"]
    assert [item["wallet_id"] for item in items] == [world.star.id, world.event_trader.id, world.quant.id, world.newcomer.id]
    assert set(items[0]) >= {
        "wallet_id",
        "address",
        "pseudonym",
        "strategy_type",
        "smart_score",
        "info_edge_level",
        "pool_tier",
        "scored_at",
    }


def test_highlights_rank_by_24h_pnl_and_ai_confidence(client, world):
    data = _data(client, "/api/v1/ops/highlights?limit=1")
    assert data["new_potential_wallets_24h"] == 1
    assert [item["wallet"]["id"] for item in data["top_realized_pnl_24h"]] == [world.star.id]
    assert [item["wallet"]["id"] for item in data["top_ai_confidence"]] == [world.star.id]
    item = data["top_ai_confidence"][0]
    assert item["model_id"] == "template" and item["trade_count"] == 400 and "82%" in item["recommend_reason"]
    assert len(_data(client, "/api/v1/ops/highlights")["top_realized_pnl_24h"]) == 2


def test_stats_overview_counts_from_snapshots(client, world):
    from ingest.models import IngestCursor

    # Freshness is how far the live trades feed has been read completely: its cursor.
    IngestCursor.objects.create(source="data_api", stream="trades", cursor_value="1795600000")
    stats = _data(client, "/api/v1/stats/overview")
    assert stats["tracked_wallets"] == 1 and stats["indexed_markets"] == 3 and stats["wallets"] == 5
    assert stats["trades"] == 400 + 150 + 120 + 3 and stats["potential_wallets"] == 2
    assert stats["data_freshness"]["latest_trade_at"] == "2026-11-25T09:46:40Z"
    assert stats["data_freshness"]["trade_lag_seconds"] > 0


def test_markets_filter_by_status_and_search(client, world):
    assert [m["id"] for m in _data(client, "/api/v1/markets?status=3")["items"]] == [world.resolved_market.id]
    assert [m["id"] for m in _data(client, "/api/v1/markets?status=2")["items"]] == [world.closed_market.id]
    assert [m["id"] for m in _data(client, "/api/v1/markets?q=paris")["items"]] == [world.open_market.id]
    by_volume = _data(client, "/api/v1/markets?sort_by=volume")["items"]
    assert by_volume[0]["id"] == world.closed_market.id
    detail = _data(client, f"/api/v1/markets/{world.resolved_market.id}")
    assert detail["resolution"]["resolved"] is True and detail["resolution"]["winner_index"] == 0
    assert detail["status"] == 3 and detail["prices"] == [1.0, 0.0]


def test_anomalies_filter_and_acknowledge(client, world):
    assert _data(client, "/api/v1/anomalies?acknowledged=false")["pagination"]["total"] == 1
    assert _data(client, "/api/v1/anomalies?severity=medium")["items"][0]["alert_type"] == "trading_rate_spike"
    response = client.patch(f"/api/v1/anomalies/{world.anomaly.id}/acknowledge")
    assert response.status_code == 200 and response.json()["data"]["acknowledged"] is True
    assert _data(client, "/api/v1/anomalies?acknowledged=false")["pagination"]["total"] == 0
    missing = client.patch("/api/v1/anomalies/424242/acknowledge")
    assert missing.status_code == 404 and missing.json()["error"] == "anomaly not found"


def test_ai_analysis_is_201_when_new_and_200_when_cached(client, world):
    AiReport.objects.all().delete()
    created = client.post(f"/api/v1/ai/analyze/{world.quant.id}")
    assert created.status_code == 201
    assert created.json()["data"]["model_id"] == "template"
    cached = client.post(f"/api/v1/ai/analyze/{world.quant.id}")
    assert cached.status_code == 200 and cached.json()["data"]["id"] == created.json()["data"]["id"]
    # A wallet gets at most one new report every 10 minutes, forced or not.
    too_soon = client.post(f"/api/v1/ai/analyze/{world.quant.id}", data={"force": True}, content_type="application/json")
    assert too_soon.status_code == 200 and too_soon.json()["meta"]["force_refused"].startswith("force refused")
    AiReport.objects.filter(wallet=world.quant).update(created_at=timezone.now() - timedelta(minutes=11))
    forced = client.post(f"/api/v1/ai/analyze/{world.quant.id}", data={"force": True}, content_type="application/json")
    assert forced.status_code == 201
    history = _data(client, f"/api/v1/ai/report/{world.quant.id}/history?limit=1")
    assert [report["id"] for report in history] == [forced.json()["data"]["id"]]
    assert _data(client, f"/api/v1/ai/report/{world.quant.id}")["id"] == forced.json()["data"]["id"]
    assert client.get(f"/api/v1/ai/report/{world.newcomer.id}").json()["error"] == "report not found"


def test_portfolios_are_derived_until_operators_publish_one(client, world):
    derived = _data(client, "/api/v1/portfolios")
    assert [pack["source"] for pack in derived] == ["derived"] * 3
    assert derived[0]["wallet_ids"] == [world.star.id]
    pack = Portfolio.objects.create(
        name="Steady", name_zh="稳健", risk_level="low", expected_return=Decimal("0.12"), max_drawdown=Decimal("0.08")
    )
    PortfolioWallet.objects.create(portfolio=pack, wallet=world.quant, position=1)
    PortfolioWallet.objects.create(portfolio=pack, wallet=world.star, position=2)
    Portfolio.objects.create(name="Draft", is_published=False)
    managed = _data(client, "/api/v1/portfolios")
    assert len(managed) == 1
    assert managed[0] | {"wallets": None} == {
        "id": pack.id,
        "name": "Steady",
        "name_zh": "稳健",
        "description": "",
        "risk_level": "low",
        "expected_return": "12%",
        "max_drawdown": "<8%",
        "expected_return_value": 0.12,
        "max_drawdown_value": 0.08,
        "wallet_ids": [world.quant.id, world.star.id],
        "wallets": None,
        "source": "managed",
    }


def test_ingest_status_is_public_and_lists_every_stream(client, world):
    response = client.get("/api/v1/ingest/status")
    streams = {row["job_name"]: row for row in response.json()["data"]}
    assert streams["ingest.data_api.trades"]["last_run_status"] == "succeeded"
    assert streams["ingest.gamma.markets"]["last_run_status"] == "failed"
    assert "dead_letters_open" in response.json()["meta"]["totals"]


def test_ingest_runs_filter_by_job_and_status_for_staff(client, world, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-1", is_staff=True))
    runs = _data(client, "/api/v1/ingest/runs?job=gamma.markets")["items"]
    assert [(run["job_name"], run["status"]) for run in runs] == [("ingest.gamma.markets", "failed")]
    assert _data(client, "/api/v1/ingest/runs?status=succeeded")["pagination"]["total"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/leaderboard?page_size=1",
        "/api/v1/leaderboard?page_size=1&sort_by=smart_score&order=asc",
        "/api/v1/wallets?page_size=1",
        "/api/v1/wallets?page_size=1&q=0x",
        "/api/v1/wallets/potential?page_size=1&min_trades=0",
        "/api/v1/markets?page_size=1",
        "/api/v1/anomalies?page_size=1",
    ],
)
def test_deep_pages_read_keys_first_give_the_plain_slices_rows(client, world, monkeypatch, path):
    from api import selectors

    def every_page():
        pages, page = [], 1
        while True:
            data = _data(client, f"{path}&page={page}")
            if not data["items"]:
                return pages, data["pagination"]["total"]
            pages.append(data["items"])
            page += 1

    monkeypatch.setattr(selectors, "KEYS_FIRST_OFFSET", 10**9)
    plain, plain_total = every_page()
    monkeypatch.setattr(selectors, "KEYS_FIRST_OFFSET", 0)
    keys_first, keys_first_total = every_page()
    assert len(plain) >= 2, path
    assert keys_first == plain
    assert keys_first_total == plain_total
