"""Hostile input gets a 4xx envelope, never a 5xx, and expensive reads stay bounded."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from gunicorn.config import Config

from api import selectors
from api.access_log import REDACTED, RedactFingerprintFilter, RedactingAccessLogger
from api.filters import pseudonym_search
from api.parsers import BoundedJSONParser, json_depth
from api.testing import api_world_seed, throttle_rates_set
from ingest.models import Market, Wallet
from scoring.models import Anomaly, WalletSnapshot

FINGERPRINT = {"HTTP_X_USER_FINGERPRINT": "hostile-input-browser-01"}


@pytest.fixture
def world(db, settings):
    throttle_rates_set(settings)
    return api_world_seed()


def _refused(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["data"] is None and body["error"] and body["trace_id"] == response["X-Request-ID"]
    return body


def test_a_body_over_the_limit_is_a_413_before_any_parser_reads_it(client, world, monkeypatch):
    def parse_must_not_run(*_args, **_kwargs):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(BoundedJSONParser, "parse", parse_must_not_run)
    huge = json.dumps({"wallet_ids": list(range(20_000))})
    assert len(huge) > 64 * 1024
    body = _refused(client.post("/api/v1/watchlist/batch", data=huge, content_type="application/json", **FINGERPRINT), 413)
    assert body["code"] == "bad_request" and "65536 bytes" in body["error"]


def test_a_malformed_content_length_is_a_400(client, world):
    _refused(client.post("/api/v1/watchlist", data="{}", content_type="application/json", CONTENT_LENGTH="lots"), 400)


@pytest.mark.parametrize("depth", [21, 1_000, 30_000])
def test_json_nested_deeper_than_the_limit_is_a_400(client, world, depth):
    nested = "[" * depth + "]" * depth
    body = _refused(client.post("/api/v1/watchlist", data=nested, content_type="application/json", **FINGERPRINT), 400)
    assert "nested deeper than 20 levels" in body["error"]


def test_json_within_the_nesting_limit_is_parsed_and_brackets_in_strings_do_not_count(client, world):
    assert json_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "b": [[1]]}') == 3
    body = json.dumps({"wallet_id": world.star.id, "note": "[" * 500, "deep": [[[[[[1]]]]]]})
    response = client.post("/api/v1/watchlist", data=body, content_type="application/json", **FINGERPRINT)
    assert response.status_code == 201


def test_more_than_a_thousand_query_parameters_is_a_400_envelope(client, world):
    query = "&".join(f"p{n}=1" for n in range(1_001))
    body = _refused(client.get(f"/api/v1/wallets?{query}"), 400)
    assert "more than 1000 query parameters" in body["error"]
    assert client.get("/api/v1/wallets?" + "&".join(f"p{n}=1" for n in range(900))).status_code == 200


def test_more_than_a_thousand_form_fields_is_a_400_envelope(client, world):
    form = "&".join(f"f{n}=1" for n in range(1_001))
    response = client.post("/api/v1/watchlist", data=form, content_type="application/x-www-form-urlencoded", **FINGERPRINT)
    assert "more than 1000 fields" in _refused(response, 400)["error"]


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/wallets", {"GET", "HEAD", "OPTIONS"}),
        ("/api/v1/watchlist", {"GET", "HEAD", "POST", "OPTIONS"}),
        ("/api/v1/anomalies/1/acknowledge", {"PATCH", "DELETE", "OPTIONS"}),
    ],
)
def test_options_answers_with_the_methods_allow_lists(client, world, path, methods):
    response = client.options(path)
    assert response.status_code == 200
    allowed = {method.strip() for method in response["Allow"].split(",")}
    assert allowed == methods
    assert set(response.json()["data"]["methods"]) == methods


def test_pages_past_the_documented_depth_are_a_400_that_says_why(client, world):
    body = _refused(client.get("/api/v1/leaderboard?page=2500&page_size=200"), 400)
    assert body["error"].startswith("page: pages reach at most 10,000 items deep (50 pages of 200)")
    _refused(client.get("/api/v1/wallets?page=4999&page_size=200"), 400)
    _refused(client.get("/api/v1/wallets?page=10536561983645456520970240"), 400)
    assert client.get("/api/v1/wallets?page=50&page_size=200").status_code == 200
    assert client.get("/api/v1/wallets?page=500&page_size=20").status_code == 200
    _refused(client.get("/api/v1/wallets?page=501&page_size=20"), 400)


def test_a_fingerprint_shorter_than_16_characters_is_a_400(client, world):
    body = {"wallet_id": world.star.id}
    response = client.post("/api/v1/watchlist", data=body, content_type="application/json", HTTP_X_USER_FINGERPRINT="short-fp")
    assert "16-128 characters" in _refused(response, 400)["error"]


def _gunicorn_line(raw_uri: str, query: str) -> str:
    class Response:
        status = "200 OK"
        sent = 10
        headers = [("Content-Type", "application/json")]

    class Request:
        headers = [("X-USER-FINGERPRINT", "secret-browser-fingerprint"), ("COOKIE", "user_fingerprint=secret-cookie")]

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": query,
        "PATH_INFO": raw_uri.split("?")[0],
    }
    config = Config()
    config.set("access_log_format", '%(h)s "%(r)s" %(s)s q=%(q)s fp=%({x-user-fingerprint}i)s c=%({cookie}i)s')
    logger = RedactingAccessLogger(config)
    atoms = logger.atoms(Response(), Request(), environ, timedelta(milliseconds=3))
    return config.access_log_format % atoms


def test_fingerprints_never_reach_the_gunicorn_access_log():
    query = "page=2&fingerprint=secret-query-fingerprint"
    line = _gunicorn_line(f"/api/v1/watchlist?{query}", query)
    assert "secret" not in line
    assert f"fingerprint={REDACTED}" in line and "page=2" in line


def test_fingerprints_never_reach_the_development_server_log():
    request_line = "GET /api/v1/watchlist?FingerPrint=secret-value HTTP/1.1"
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s', (request_line, "200", "12"), None)
    RedactFingerprintFilter().filter(record)
    assert "secret" not in record.getMessage() and REDACTED in record.getMessage()


def _real_counts() -> dict[str, int]:
    return {
        "wallets": Wallet.objects.count(),
        "tracked_wallets": Wallet.objects.filter(tracked=True).count(),
        "markets": Market.objects.count(),
        "scored_wallets": WalletSnapshot.objects.count(),
        "trades": sum(WalletSnapshot.objects.values_list("total_trades", flat=True)),
        "potential_wallets": WalletSnapshot.objects.filter(potential_reached_at__isnull=False).count(),
        "anomalies": Anomaly.objects.count(),
    }


def test_the_maintained_counters_follow_inserts_updates_and_deletes(world):
    assert selectors.counters_get() == _real_counts()
    WalletSnapshot.objects.filter(wallet=world.quant).update(total_trades=999, potential_reached_at=timezone.now())
    Wallet.objects.filter(pk=world.newcomer.pk).update(tracked=True)
    WalletSnapshot.objects.filter(wallet=world.newcomer).delete()
    Market.objects.filter(pk=world.closed_market.pk).delete()
    Anomaly.objects.filter(wallet=world.quant).delete()
    fresh = Wallet.objects.create(address="0x" + "99" * 20, tracked=True)
    WalletSnapshot.objects.create(wallet=fresh, total_trades=7, realized_pnl=Decimal("1"))
    assert selectors.counters_get() == _real_counts()


def test_the_counters_fold_into_one_row_each_and_keep_their_totals(world, monkeypatch):
    monkeypatch.setattr(selectors, "COUNTER_FOLD_ROWS", 3)
    for number in range(5):
        Wallet.objects.create(address=f"0x{number:040x}")
    before = selectors.counters_get()  # sees many rows, folds them
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT name) FROM api_counter_delta")
        rows, names = cursor.fetchone()
    assert rows == names
    assert selectors.counters_get() == before == _real_counts()


def test_the_overview_and_unfiltered_list_totals_come_from_the_counters(client, world, django_assert_max_num_queries):
    overview = client.get("/api/v1/stats/overview").json()["data"]
    assert overview["wallets"] == 5 and overview["tracked_wallets"] == 1 and overview["indexed_markets"] == 3
    assert overview["as_of"]
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO api_counter_delta (name, delta) VALUES ('scored_wallets', 1000)")
    # A total past the first page is the counter's, not a COUNT over the table.
    assert client.get("/api/v1/leaderboard?page=2&page_size=1").json()["data"]["pagination"]["total"] == 1004


def test_a_pseudonym_prefix_search_reads_its_index_and_lists_hits_by_pseudonym(client, world):
    for number in range(30):
        Wallet.objects.create(address=f"0x{number + 1000:040x}", pseudonym=f"Whale-{30 - number:02d}")
    queryset = pseudonym_search(Wallet.objects.all(), "whale").order_by("pseudonym_key", "id")[:20]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = queryset.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "wallet_pseudonym_search" in plan and "Sort" not in plan
    hits = client.get("/api/v1/wallets?q=WHALE&page_size=3").json()["data"]
    assert [item["pseudonym"] for item in hits["items"]] == ["Whale-01", "Whale-02", "Whale-03"]
    assert hits["pagination"]["total"] == 30
    by_id = client.get("/api/v1/wallets?q=whale&sort_by=id&order=asc&page_size=1").json()["data"]["items"]
    assert by_id[0]["pseudonym"] == "Whale-30"


def test_security_headers_are_on_every_response(client, world):
    for response in (
        client.get("/api/v1/wallets"),
        client.get("/api/v1/nowhere"),
        client.post("/api/v1/watchlist", data="x" * 70_000, content_type="application/json"),
        client.get("/healthz"),
    ):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert response["Referrer-Policy"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/api/v1/anomalies/1/acknowledge", {"acknowledged": 0}),
        ("patch", "/api/v1/anomalies/1/acknowledge", {"acknowledged": "no"}),
        ("patch", "/api/v1/anomalies/1/acknowledge", [None, None]),
        ("post", "/api/v1/ai/analyze/1", [{"force": True}]),
    ],
)
def test_bodies_of_the_wrong_shape_are_a_400(client, world, method, path, body):
    response = getattr(client, method)(path, data=json.dumps(body), content_type="application/json")
    _refused(response, 400)


def test_an_acknowledgement_sent_as_a_form_is_a_415(client, world):
    response = client.patch(f"/api/v1/anomalies/{world.anomaly.id}/acknowledge", data="acknowledged=0",
                            content_type="application/x-www-form-urlencoded")
    _refused(response, 415)


@pytest.mark.parametrize(
    ("path", "total"),
    [
        ("/api/v1/anomalies?type=", 2),
        ("/api/v1/leaderboard?pool_tier=&strategy_type=", 4),
        ("/api/v1/wallets?q=&pool_tier=", 5),
        ("/api/v1/markets?q=&category=", 3),
    ],
)
def test_an_empty_filter_from_an_empty_form_field_is_no_filter(client, world, path, total):
    response = client.get(path)
    assert response.status_code == 200 and response.json()["data"]["pagination"]["total"] == total


def test_a_decimal_bound_finer_than_the_column_is_rounded_not_refused(client, world):
    response = client.get("/api/v1/wallets/potential?min_realized_pnl=0.0000000000001")
    assert response.status_code == 200
    _refused(client.get("/api/v1/wallets/potential?min_realized_pnl=1e40"), 400)


def test_a_malformed_query_fingerprint_beside_a_good_header_is_a_400(client, world):
    _refused(client.get("/api/v1/watchlist?fingerprint=short", **FINGERPRINT), 400)
    assert client.get("/api/v1/watchlist?fingerprint=", **FINGERPRINT).status_code == 200


def test_a_truncated_table_counts_zero(world):
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE anomaly")
    assert Anomaly.objects.count() == 0 and selectors.counters_get().get("anomalies", 0) == 0
    assert selectors.counters_get().get("wallets") == Wallet.objects.count()


def test_a_recount_repairs_the_totals_after_writes_that_bypassed_the_triggers(world):
    from api.services import counters_recount

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # how bulk loaders skip triggers
        cursor.execute("DELETE FROM anomaly")
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    assert selectors.counters_get()["anomalies"] == 2
    assert counters_recount()["anomalies"] == 0
    assert selectors.counters_get() == _real_counts()
