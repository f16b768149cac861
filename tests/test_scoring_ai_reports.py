"""AI reports: honest labels, a 24h cache, a spaced batch that stops on 429, a feed event each."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from marts.testing import wallet_make
from scoring.ai import AiRateLimited, OpenAICompatibleProvider, TemplateProvider, ai_provider_get
from scoring.models import AiReport, FeedEvent, WalletSnapshot
from scoring.services import AiReportIneligible, ai_report_generate, ai_reports_batch

pytestmark = pytest.mark.django_db


def _scored_wallet(*, trades: int = 50, tier: str = "strategy", score: str = "60") -> int:
    wallet = wallet_make()
    WalletSnapshot.objects.create(
        wallet=wallet, total_trades=trades, markets_traded=12, realized_pnl=Decimal("1234.5"), resolved_positions=20,
        winning_positions=13, win_rate=Decimal("0.65"), smart_score=Decimal(score), confidence=Decimal("0.6"),
        strategy_type="quant", pool_tier=tier, risk_level="medium",
    )
    return wallet.pk


def test_without_a_configured_model_the_template_writes_and_says_so():
    assert isinstance(ai_provider_get(), TemplateProvider)
    wallet_id = _scored_wallet()
    report, created = ai_report_generate(wallet_id=wallet_id)
    assert created is True
    assert report.model_id == "template"
    assert "1,234.50" in report.nl_summary
    snapshot = WalletSnapshot.objects.get(wallet_id=wallet_id)
    assert (snapshot.has_ai_report, snapshot.ai_model_id, snapshot.nl_summary) == (True, "template", report.nl_summary)
    event = FeedEvent.objects.get(wallet_id=wallet_id, event_type="ai_report")
    assert event.payload["after"] == {"report_id": report.pk, "model_id": "template"}


def test_the_template_is_deterministic():
    wallet_id = _scored_wallet()
    first, _ = ai_report_generate(wallet_id=wallet_id)
    second, created = ai_report_generate(wallet_id=wallet_id, force=True)
    assert created is True and second.pk != first.pk
    assert (second.nl_summary, second.report, second.input_digest) == (first.nl_summary, first.report, first.input_digest)


def test_a_report_younger_than_a_day_is_served_from_cache_unless_forced():
    wallet_id = _scored_wallet()
    first, _ = ai_report_generate(wallet_id=wallet_id, now=timezone.now() - timedelta(hours=23))
    cached, created = ai_report_generate(wallet_id=wallet_id)
    assert (cached.pk, created) == (first.pk, False)
    AiReport.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=25))
    _fresh, created = ai_report_generate(wallet_id=wallet_id)
    assert created is True
    assert FeedEvent.objects.filter(wallet_id=wallet_id, event_type="ai_report").count() == 2


def test_a_wallet_with_too_few_trades_is_ineligible():
    with pytest.raises(AiReportIneligible):
        ai_report_generate(wallet_id=_scored_wallet(trades=3))


class _LimitedProvider:
    model_id = "fake"

    def __init__(self, allow: int) -> None:
        self.allow = allow
        self.calls = 0

    def write(self, *, facts):
        self.calls += 1
        if self.calls > self.allow:
            raise AiRateLimited("30")
        return TemplateProvider().write(facts=facts)


def test_the_batch_spaces_its_calls_and_stops_at_the_first_429():
    ids = [_scored_wallet(score=str(90 - n)) for n in range(4)]
    _scored_wallet(tier="observation")  # never a candidate
    pauses: list[float] = []
    provider = _LimitedProvider(allow=2)
    result = ai_reports_batch(limit=10, spacing_seconds=1.5, provider=provider, sleep=pauses.append)
    assert result == {"candidates": 4, "written": 2, "rate_limited": 1}
    assert provider.calls == 3
    assert pauses == [1.5, 1.5]
    assert set(AiReport.objects.values_list("wallet_id", flat=True)) == set(ids[:2])  # best scores first


class _Handler(BaseHTTPRequestHandler):
    status = 200
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append((self.path, self.headers["Authorization"], body["model"]))
        if _Handler.status == 429:
            self.send_response(429)
            self.send_header("Retry-After", "7")
            self.end_headers()
            return
        answer = {"nl_summary": "Careful quant.", "strengths": ["breadth"], "weaknesses": [], "risk_warnings": ["thin"],
                  "confidence": 0.7}
        payload = json.dumps({"model": "test-model-1", "choices": [{"message": {"content": json.dumps(answer)}}],
                              "usage": {"prompt_tokens": 120, "completion_tokens": 30}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def model_server():
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.seen = []
    _Handler.status = 200
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_with_a_url_and_key_an_openai_compatible_model_writes_and_is_named(settings, model_server):
    settings.AI_API_URL = model_server
    settings.AI_API_KEY = "k-123"
    settings.AI_MODEL = "test-model"
    provider = ai_provider_get()
    assert isinstance(provider, OpenAICompatibleProvider)
    report, created = ai_report_generate(wallet_id=_scored_wallet())
    assert created is True
    assert (report.model_id, report.nl_summary, report.risk_warnings) == ("test-model-1", "Careful quant.", ["thin"])
    assert (report.input_tokens, report.output_tokens) == (120, 30)
    assert _Handler.seen == [("/v1/chat/completions", "Bearer k-123", "test-model")]


def test_a_429_from_the_model_writes_nothing(settings, model_server):
    settings.AI_API_URL = model_server
    settings.AI_API_KEY = "k-123"
    _Handler.status = 429
    wallet_id = _scored_wallet()
    with pytest.raises(AiRateLimited):
        ai_report_generate(wallet_id=wallet_id)
    assert not AiReport.objects.exists()
    assert not WalletSnapshot.objects.get(wallet_id=wallet_id).has_ai_report
