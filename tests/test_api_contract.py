"""The frontend's contract (shared/design/API-CONTRACT.md, "Payload keys the frontend reads"),
checked on every route over a populated world.

Each payload is compared with the keys the frontend reads: a missing key, a null where the
contract lists a number or a string, or a value of another JSON type fails the test. Types:
`n` number, `s` string, `b` boolean, `t` RFC 3339 UTC time, `{}` any object, `*` any value;
a key ending in `?` may be absent (but is never null), a type ending in `|null` may be null.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from api import presenters
from api.testing import api_world_seed, throttle_rates_set
from ingest.models import Wallet
from scoring.models import WalletSnapshot

FINGERPRINT = "contract-test-browser-0001"

WALLET = {"id": "n", "address": "s", "pseudonym?": "s", "tracked": "b"}
# What the potential list and the share card both show of a wallet.
WALLET_HEADLINE = {
    "wallet": WALLET,
    "total_trades": "n",
    "realized_pnl": "n",
    "smart_score": "n",
    "info_edge_level": "s",
    "strategy_type": "s",
    "pool_tier": "s",
    "has_ai_report": "b",
    "nl_summary": "s",
}
POTENTIAL_ITEM = {
    **WALLET_HEADLINE,
    "trading_pnl": "n",
    "maker_rebates": "n",
    "summary": "s",
    "last_analyzed_at?": "t",
}
WATCHLIST_ITEM = {**{k: v for k, v in POTENTIAL_ITEM.items() if k != "summary"}, "watchlist_id": "n", "watchlisted_at": "t"}
FEED_ITEM = {
    "event_id": "n",
    "wallet": WALLET,
    "event_type": "s",
    "event_payload": "{}",
    "action_required": "b",
    "suggestion": "s",
    "suggestion_zh": "s",
    "event_time": "t",
}
PROFILE = {
    "wallet": WALLET,
    "layer1_facts": {
        "realized_pnl": "n",
        "unrealized_pnl": "n",
        "trading_pnl": "n",
        "maker_rebates": "n",
        "fees_paid": "n",
        "total_trades": "n",
        "volume_30d": "n",
    },
    "strategy?": {
        "strategy_type": "s",
        "smart_score": "n",
        "info_edge_level": "s",
        "pool_tier": "s",
        "confidence": "n",
        "scored_at": "t",
    },
    "layer3_info_edge": {"mean_delta_minutes": "n", "stddev_minutes": "n", "samples": "n", "p_value": "n", "label": "s"},
    "meta": {"disclosures": ["s"]},
    "recent_events?": [{k: v for k, v in FEED_ITEM.items() if k != "wallet"}],
}
SHARE_CARD = {
    **WALLET_HEADLINE,
    "follower_count": "n",
    "new_followers_7d": "n",
    "updated_at": "t",
}
DECISION_CARD = {
    "wallet_id": "n",
    "pool_tier": "s",
    "suitable_for": "s",
    "risk_level": "s",
    "suggested_position": "s",
    "momentum": "s",
    "status_7d": "s",
    "recommendation": "s",
    "recommendation_zh": "s",
    "disclaimer": "s",
    "disclaimer_zh": "s",
    "last_updated": "t",
}
SHARE_LANDING = {
    "wallet": WALLET,
    "pool_tier": "s",
    "strategy_type": "s",
    "smart_score": "n",
    "pnl_7d": "n",
    "pnl_30d": "n",
    "max_drawdown_7d": "n",
    "stability_score": "n",
    "nl_summary": "s",
    "follower_count": "n",
    "new_followers_7d": "n",
    "decision_card": DECISION_CARD,
    "updated_at": "t",
}
EXPLANATIONS = {
    "wallet_id": "n",
    "address": "s",
    "layer1": "{}",
    "layer2": "{}",
    "layer3": "{}",
    "disclosures": ["s"],
    "generated_at": "t",
}
INFO_EDGE = {
    "wallet_id": "n",
    "mean_delta_minutes": "n",
    "stddev_minutes": "n",
    "samples": "n",
    "z_score": "n",
    "p_value": "n",
    "classification": "s",
}
OVERVIEW = {"tracked_wallets": "n", "indexed_markets": "n"}
HIGHLIGHTS = {
    "as_of": "t",
    "new_potential_wallets_24h": "n",
    "top_realized_pnl_24h": [
        {
            "wallet": WALLET,
            "trade_count": "n",
            "realized_pnl": "n",
            "realized_pnl_24h": "n",
            "has_ai_report": "b",
            "nl_summary": "s",
            "model_id": "s",
            "recommend_reason": "s",
            "last_analyzed_at?": "t",
        }
    ],
    "top_ai_confidence": [
        {
            "wallet": WALLET,
            "trade_count": "n",
            "realized_pnl": "n",
            "smart_score": "n",
            "info_edge_level": "s",
            "strategy_type": "s",
            "nl_summary": "s",
            "recommend_reason": "s",
            "last_analyzed_at?": "t",
        }
    ],
}
MARKET = {
    "id": "n",
    "condition_id": "s",
    "slug": "s",
    "title": "s",
    "category": "s",
    "status": "n",
    "has_fee": "b",
    "volume": "n",
    "liquidity": "n",
}
LEADERBOARD_ITEM = {
    "wallet_id": "n",
    "address": "s",
    "pseudonym?": "s",
    "strategy_type": "s",
    "smart_score": "n",
    "info_edge_level": "s",
    "pool_tier?": "s",
    "scored_at": "t",
}
ANOMALY = {
    "id": "n",
    "wallet_id": "n",
    "market_id?": "n",
    "alert_type": "s",
    "severity": "n",
    "evidence": "{}",
    "description": "s",
    "acknowledged": "b",
    "created_at": "t",
}
AI_REPORT = {
    "id": "n",
    "wallet_id": "n",
    "model_id": "s",
    "report": "*",
    "nl_summary": "s",
    "risk_warnings?": ["s"],
    "input_tokens": "n",
    "output_tokens": "n",
    "latency_ms": "n",
    "created_at": "t",
}
PORTFOLIO = {
    "id": "n",
    "name": "s",
    "name_zh": "s",
    "description": "s",
    "risk_level": "s",
    "expected_return": "s",
    "max_drawdown": "s",
    "wallet_ids": ["n"],
    "wallets": [WALLET],
}
WATCHLIST_SUMMARY = {"followed_wallets": "n", "style_distribution": "{}", "action_required": "n", "healthy_wallets": "n"}


def paged(item: dict) -> dict:
    return {"items": [item], "pagination": {"page": "n", "page_size": "n", "total": "n"}}


def _violations(value, spec, path: str) -> list[str]:
    if spec == "*":
        return []
    if isinstance(spec, str) and spec.endswith("|null"):
        return [] if value is None else _violations(value, spec.removesuffix("|null"), path)
    if value is None:
        return [f"{path}: null where the contract says {spec if isinstance(spec, str) else type(spec).__name__}"]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not an object"]
        problems = []
        for key, key_spec in spec.items():
            name = key.removesuffix("?")
            if name not in value:
                if not key.endswith("?"):
                    problems.append(f"{path}.{name}: missing")
                continue
            problems += _violations(value[name], key_spec, f"{path}.{name}")
        return problems
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, not an array"]
        return [problem for index, item in enumerate(value) for problem in _violations(item, spec[0], f"{path}[{index}]")]
    if spec == "n" and not (isinstance(value, int | float) and not isinstance(value, bool)):
        return [f"{path}: {value!r} is not a number"]
    if spec in {"s", "t"} and not isinstance(value, str):
        return [f"{path}: {value!r} is not a string"]
    if spec == "t":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return [f"{path}: {value!r} is not an RFC 3339 time"]
        if moment.utcoffset() is None or moment.utcoffset().total_seconds() != 0:
            return [f"{path}: {value!r} is not UTC"]
    if spec == "b" and not isinstance(value, bool):
        return [f"{path}: {value!r} is not a boolean"]
    if spec == "{}" and not isinstance(value, dict):
        return [f"{path}: {value!r} is not an object"]
    return []


@pytest.fixture
def world(db, settings):
    throttle_rates_set(settings)
    world = api_world_seed()
    # A wallet computed before any of its trades could be paired with an off-chain event (9 % of
    # wallets in the field): no samples, the statistics at the model's defaults.
    unpaired = Wallet.objects.create(address="0x" + "f6" * 20, pseudonym="unpaired")
    WalletSnapshot.objects.create(
        wallet=unpaired,
        total_trades=140,
        realized_pnl=Decimal("950"),
        realized_pnl_24h=Decimal("90"),
        smart_score=Decimal("41"),
        strategy_type="noise",
        pool_tier="strategy",
        info_edge_level="no_edge",
        info_edge_samples=0,
        scored_at=timezone.now(),
    )
    world.unpaired = unpaired
    return world


def _wallet_ids(world) -> list[int]:
    return [world.star.id, world.quant.id, world.event_trader.id, world.newcomer.id, world.uncomputed.id, world.unpaired.id]


def _routes(world) -> list[tuple[str, object]]:
    routes = [
        ("/api/v1/wallets", paged(WALLET)),
        ("/api/v1/wallets?q=a", paged(WALLET)),
        ("/api/v1/wallets/potential?min_trades=0&min_realized_pnl=-1000000", paged(POTENTIAL_ITEM)),
        ("/api/v1/watchlist", paged(WATCHLIST_ITEM)),
        ("/api/v1/watchlist/feed", paged(FEED_ITEM)),
        ("/api/v1/watchlist/summary", WATCHLIST_SUMMARY),
        ("/api/v1/portfolios", [PORTFOLIO]),
        ("/api/v1/markets", paged(MARKET)),
        ("/api/v1/leaderboard", paged(LEADERBOARD_ITEM)),
        ("/api/v1/stats/overview", OVERVIEW),
        ("/api/v1/ops/highlights?limit=20", HIGHLIGHTS),
        ("/api/v1/anomalies", paged(ANOMALY)),
        ("/api/v1/anomalies?severity=3", paged(ANOMALY)),
        (f"/api/v1/anomalies/{world.anomaly.id}", ANOMALY),
        (f"/api/v1/ai/report/{world.star.id}", AI_REPORT),
        (f"/api/v1/ai/report/{world.star.id}/history", [AI_REPORT]),
    ]
    for market in (world.open_market, world.closed_market, world.resolved_market):
        routes.append((f"/api/v1/markets/{market.id}", MARKET))
    for wallet_id in _wallet_ids(world):
        routes += [
            (f"/api/v1/wallets/{wallet_id}", WALLET),
            (f"/api/v1/wallets/{wallet_id}/profile", PROFILE),
            (f"/api/v1/wallets/{wallet_id}/share-card", SHARE_CARD),
            (f"/api/v1/wallets/{wallet_id}/share-landing", SHARE_LANDING),
            (f"/api/v1/wallets/{wallet_id}/decision-card", DECISION_CARD),
            (f"/api/v1/wallets/{wallet_id}/explanations", EXPLANATIONS),
            (f"/api/v1/wallets/{wallet_id}/info-edge", INFO_EDGE),
        ]
    return routes


def test_every_route_serves_each_key_the_frontend_reads_with_its_type(client, world):
    followed = client.post(
        "/api/v1/watchlist/batch",
        data={"wallet_ids": _wallet_ids(world)},
        content_type="application/json",
        HTTP_X_USER_FINGERPRINT=FINGERPRINT,
    )
    assert followed.status_code == 201, followed.content
    problems = []
    for path, spec in _routes(world):
        response = client.get(path, HTTP_X_USER_FINGERPRINT=FINGERPRINT)
        if response.status_code != 200:
            problems.append(f"{path}: HTTP {response.status_code} {response.content[:200]!r}")
            continue
        data = response.json()["data"]
        if isinstance(spec, dict) and "items" in spec and not data["items"]:
            problems.append(f"{path}: no items, nothing checked")
        problems += _violations(data, spec, path)
    assert not problems, "\n".join(problems)


def test_a_wallet_without_information_edge_samples_reads_zeros_and_insufficient_data(client, world):
    profile = client.get(f"/api/v1/wallets/{world.unpaired.id}/profile").json()["data"]
    assert profile["layer3_info_edge"] == {
        "mean_delta_minutes": 0.0,
        "stddev_minutes": 0.0,
        "samples": 0,
        "z_score": 0.0,
        "p_value": 1.0,
        "label": "insufficient_data",
    }
    edge = client.get(f"/api/v1/wallets/{world.unpaired.id}/info-edge").json()["data"]
    assert edge["classification"] == "insufficient_data" and edge["mean_delta_minutes"] == 0.0
    card = client.get(f"/api/v1/wallets/{world.unpaired.id}/share-card").json()["data"]
    assert card["info_edge_level"] == "insufficient_data"


def test_information_edge_statistics_stored_as_null_are_served_as_numbers():
    wallet = Wallet(id=7, address="0x" + "07" * 20)
    snapshot = WalletSnapshot(
        wallet=wallet,
        info_edge_level="mild_edge",
        info_edge_samples=0,
        info_edge_mean_minutes=None,
        info_edge_stddev_minutes=None,
        info_edge_z=None,
        info_edge_p=None,
    )
    assert presenters.info_edge(snapshot) == {
        "wallet_id": 7,
        "mean_delta_minutes": 0.0,
        "stddev_minutes": 0.0,
        "samples": 0,
        "z_score": 0.0,
        "p_value": 1.0,
        "label": "insufficient_data",
    }
    snapshot.info_edge_samples, snapshot.info_edge_mean_minutes = 3, -12.0
    partial = presenters.info_edge(snapshot)
    assert partial["mean_delta_minutes"] == -12.0 and partial["p_value"] == 1.0 and partial["label"] == "insufficient_data"


def test_severity_is_a_number_with_its_label_and_the_filter_takes_numbers_and_names(client, world):
    alerts = client.get("/api/v1/anomalies").json()["data"]["items"]
    assert {(alert["severity"], alert["severity_label"]) for alert in alerts} == {(3, "high"), (2, "medium")}
    for high in ("3", "high", "HIGH"):
        items = client.get(f"/api/v1/anomalies?severity={high}").json()["data"]["items"]
        assert [alert["id"] for alert in items] == [world.anomaly.id]
    assert client.get("/api/v1/anomalies?severity=1").json()["data"]["items"] == []
    for bad in ("0", "4", "extreme"):
        response = client.get(f"/api/v1/anomalies?severity={bad}")
        assert response.status_code == 400 and response.json()["error"].startswith("severity:")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/anomalies?type=Weird%20thing",
        "/api/v1/wallets/potential?strategy_type=arbitrage",
        "/api/v1/leaderboard?strategy_type=genius",
        "/api/v1/markets?category=Underwater%20basket%20weaving",
    ],
)
def test_a_free_text_filter_no_row_matches_is_an_empty_list(client, world, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["items"] == [] and response.json()["data"]["pagination"]["total"] == 0


def test_free_text_filters_still_select_what_they_name(client, world):
    assert [a["alert_type"] for a in client.get("/api/v1/anomalies?type=Large_Position").json()["data"]["items"]] == [
        "large_position"
    ]
    edge = client.get("/api/v1/wallets/potential?strategy_type=event_trader").json()["data"]["items"]
    assert [item["wallet"]["id"] for item in edge] == [world.event_trader.id]
    weather = client.get("/api/v1/markets?category=weather").json()["data"]["items"]
    assert [market["id"] for market in weather] == [world.open_market.id]


@pytest.mark.parametrize(
    "path", ["/api/v1/wallets/potential?min_trades=many", "/api/v1/anomalies?acknowledged=maybe", "/api/v1/markets?closed=2"]
)
def test_malformed_typed_parameters_stay_a_400(client, world, path):
    assert client.get(path).status_code == 400


def test_last_analyzed_at_is_the_time_of_the_latest_ai_report(client, world):
    potential = client.get("/api/v1/wallets/potential?min_trades=0&min_realized_pnl=-1000000").json()["data"]["items"]
    by_wallet = {item["wallet"]["id"]: item for item in potential}
    star = by_wallet[world.star.id]
    assert datetime.fromisoformat(star["last_analyzed_at"].replace("Z", "+00:00")) == world.report.created_at
    assert "last_analyzed_at" not in by_wallet[world.quant.id] and by_wallet[world.quant.id]["scored_at"]
    highlights = client.get("/api/v1/ops/highlights").json()["data"]
    event_trader = next(item for item in highlights["top_realized_pnl_24h"] if item["wallet"]["id"] == world.event_trader.id)
    assert event_trader["model_id"] == "" and "last_analyzed_at" not in event_trader


def test_portfolios_show_display_strings_beside_the_numbers(client, world):
    packs = client.get("/api/v1/portfolios").json()["data"]
    star_pack = packs[0]
    assert star_pack["expected_return"] == "5%" and star_pack["expected_return_value"] == 0.05
    assert star_pack["max_drawdown"].startswith("<") and star_pack["max_drawdown"].endswith("%")
