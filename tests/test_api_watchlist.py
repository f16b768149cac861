"""Watchlist identity is the caller's fingerprint (header, query, cookie), never an IP."""

from __future__ import annotations

import pytest

from api.models import WatchlistEntry
from api.testing import api_world_seed, throttle_rates_set

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _unthrottled(settings):
    throttle_rates_set(settings)


@pytest.fixture
def world():
    return api_world_seed()


def _follow(client, wallet_id, **identity):
    return client.post("/api/v1/watchlist", data={"wallet_id": wallet_id}, content_type="application/json", **identity)


def test_following_without_a_fingerprint_is_a_400_and_writes_nothing(client, world):
    response = _follow(client, world.star.id, REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 400
    assert response.json()["error"].startswith("fingerprint: required")
    batch = client.post("/api/v1/watchlist/batch", data={"wallet_ids": [world.star.id]}, content_type="application/json")
    assert batch.status_code == 400
    assert client.delete(f"/api/v1/watchlist/{world.star.id}").status_code == 400
    assert WatchlistEntry.objects.count() == 0


def test_two_users_behind_one_ip_keep_separate_lists(client, world):
    _follow(client, world.star.id, HTTP_X_USER_FINGERPRINT="fp-anna-browser-0001", REMOTE_ADDR="10.0.0.7")
    _follow(client, world.quant.id, HTTP_X_USER_FINGERPRINT="fp-bob-browser-0001", REMOTE_ADDR="10.0.0.7")
    anna = client.get("/api/v1/watchlist", HTTP_X_USER_FINGERPRINT="fp-anna-browser-0001", REMOTE_ADDR="10.0.0.7").json()["data"]
    assert [item["wallet"]["id"] for item in anna["items"]] == [world.star.id]
    anonymous = client.get("/api/v1/watchlist", REMOTE_ADDR="10.0.0.7").json()["data"]
    assert anonymous == {"items": [], "pagination": {"page": 1, "page_size": 20, "total": 0}}


def test_the_header_wins_over_the_query_which_wins_over_the_cookie(client, world):
    client.cookies["user_fingerprint"] = "fp-cookie-browser-0001"
    _follow(client, world.star.id)
    client.post(
        "/api/v1/watchlist?fingerprint=fp-query-browser-0001", data={"wallet_id": world.quant.id}, content_type="application/json"
    )
    client.post(
        "/api/v1/watchlist?fingerprint=fp-query-browser-0001",
        data={"wallet_id": world.event_trader.id},
        content_type="application/json",
        HTTP_X_USER_FINGERPRINT="fp-header-browser-0001",
    )
    owners = dict(WatchlistEntry.objects.values_list("wallet_id", "fingerprint"))
    assert owners == {
        world.star.id: "fp-cookie-browser-0001",
        world.quant.id: "fp-query-browser-0001",
        world.event_trader.id: "fp-header-browser-0001",
    }


def test_an_unusable_fingerprint_is_a_400(client, world):
    response = _follow(client, world.star.id, HTTP_X_USER_FINGERPRINT="has spaces;drop")
    assert response.status_code == 400
    assert response.json()["error"].startswith("fingerprint:")


def test_following_is_idempotent_and_unknown_wallets_are_404(client, world):
    first = _follow(client, world.star.id, HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
    again = _follow(client, world.star.id, HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
    assert first.status_code == again.status_code == 201
    assert first.json()["data"] == {"wallet_id": world.star.id, "watching": True}
    assert (first.json()["meta"]["created"], again.json()["meta"]["created"]) == (True, False)
    assert WatchlistEntry.objects.count() == 1
    missing = _follow(client, 424242, HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
    assert missing.status_code == 404
    assert missing.json()["error"] == "wallet not found"


def test_batch_follow_reports_unknown_ids_separately(client, world):
    _follow(client, world.star.id, HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
    response = client.post(
        "/api/v1/watchlist/batch",
        data={"wallet_ids": [world.star.id, 424242, world.quant.id, world.quant.id]},
        content_type="application/json",
        HTTP_X_USER_FINGERPRINT="fp-1-browser-0001",
    )
    assert response.status_code == 201
    assert response.json()["data"] == {
        "wallet_ids": [world.star.id, world.quant.id],
        "newly_followed": [world.quant.id],
        "unknown_wallet_ids": [424242],
        "watching": True,
    }
    assert WatchlistEntry.objects.filter(fingerprint="fp-1-browser-0001").count() == 2


def test_unfollowing_is_idempotent(client, world):
    _follow(client, world.star.id, HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
    for _ in range(2):
        response = client.delete(f"/api/v1/watchlist/{world.star.id}", HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
        assert response.status_code == 200
        assert response.json()["data"] == {"wallet_id": world.star.id, "watching": False}
    assert client.delete("/api/v1/watchlist/424242", HTTP_X_USER_FINGERPRINT="fp-1-browser-0001").status_code == 404


def test_the_watchlist_lists_facts_and_a_wallet_not_computed_yet(client, world):
    for wallet in (world.star, world.uncomputed):
        _follow(client, wallet.id, HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
    items = client.get("/api/v1/watchlist", HTTP_X_USER_FINGERPRINT="fp-1-browser-0001").json()["data"]["items"]
    newest, oldest = items
    assert newest["wallet"]["id"] == world.uncomputed.id
    assert newest["total_trades"] == 0 and "last_analyzed_at" not in newest and newest["strategy_type"] == "unknown"
    assert oldest["realized_pnl"] == 18000.0 and oldest["pool_tier"] == "star"
    for key in ["watchlist_id", "watchlisted_at", "summary", "nl_summary", "has_ai_report", "info_edge_level", "maker_rebates"]:
        assert key in oldest


def test_the_feed_shows_events_of_followed_wallets_newest_first(client, world):
    _follow(client, world.star.id, HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
    items = client.get("/api/v1/watchlist/feed", HTTP_X_USER_FINGERPRINT="fp-1-browser-0001").json()["data"]["items"]
    assert [item["event_type"] for item in items] == ["pnl_jump", "potential_reached"]
    first = items[0]
    assert first["event_id"] == world.pnl_event.id
    assert first["event_payload"]["before"] == 10000 and first["event_payload"]["reason_code"] == "pnl_up"
    assert first["action_required"] is True and first["suggestion_zh"]
    filtered = client.get("/api/v1/watchlist/feed?type=potential_reached", HTTP_X_USER_FINGERPRINT="fp-1-browser-0001").json()
    assert [item["event_type"] for item in filtered["data"]["items"]] == ["potential_reached"]


def test_the_summary_counts_wallets_needing_action_not_events(client, world):
    for wallet in (world.star, world.quant, world.uncomputed):
        _follow(client, wallet.id, HTTP_X_USER_FINGERPRINT="fp-1-browser-0001")
    summary = client.get("/api/v1/watchlist/summary", HTTP_X_USER_FINGERPRINT="fp-1-browser-0001").json()["data"]
    assert summary == {
        "followed_wallets": 3,
        "style_distribution": {"quant": 2, "unknown": 1},
        "action_required": 1,
        "healthy_wallets": 2,
    }


def test_followers_show_on_the_share_card(client, world):
    for fingerprint in ("fp-1-browser-0001", "fp-2-browser-0001"):
        _follow(client, world.star.id, HTTP_X_USER_FINGERPRINT=fingerprint)
    card = client.get(f"/api/v1/wallets/{world.star.id}/share-card").json()["data"]
    assert card["follower_count"] == 2 and card["followers_7d"] == 2
