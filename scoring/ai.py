"""Writers of wallet reports: an OpenAI-compatible HTTP model, or a deterministic template.

The template is used whenever no model is configured and says so (`model_id = "template"`): the
previous backend labelled its template text with a real model's name.

Settings (`arbitra.settings`; every one has a default, so none is required): AI_API_URL (base URL
or the full `/chat/completions` URL), AI_API_KEY, AI_MODEL, AI_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import requests
from django.conf import settings

TEMPLATE_MODEL_ID = "template"


class AiRateLimited(Exception):
    """The provider answered 429: the batch stops and tries again on its next run."""


class AiProviderError(Exception):
    pass


@dataclass(frozen=True)
class AiDraft:
    model_id: str
    report: dict
    nl_summary: str
    risk_warnings: list[str]
    confidence: Decimal
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    extra: dict = field(default_factory=dict)


class AiProvider(Protocol):
    model_id: str

    def write(self, *, facts: dict) -> AiDraft: ...


def _risk_warnings(facts: dict) -> list[str]:
    warnings = []
    if facts["risk_level"] == "high":
        warnings.append("High risk: large drawdown, concentrated positions or little evidence.")
    if facts["confidence"] < 0.5:
        warnings.append("Few resolved positions: the score rests on a small sample.")
    if facts["strategy_type"] == "lucky":
        warnings.append("Gains come from few positions and may not repeat.")
    if facts["open_positions"] and facts["unrealized_pnl"] < 0:
        warnings.append("Open positions are currently under water.")
    return warnings


class TemplateProvider:
    """Deterministic: the same facts always give the same report."""

    model_id = TEMPLATE_MODEL_ID

    def write(self, *, facts: dict) -> AiDraft:
        win_rate = facts["win_rate"]
        win_text = f"{win_rate * 100:.0f}% of {facts['resolved_positions']} resolved positions" if win_rate is not None else (
            "no resolved positions yet"
        )
        summary = (
            f"{facts['strategy_type'].replace('_', ' ').capitalize()} wallet with {facts['total_trades']} trades across "
            f"{facts['markets_traded']} markets; realised PnL {facts['realized_pnl']:,.2f} USDC, win rate {win_text}. "
            f"Smart score {facts['smart_score']:.1f}/100 ({facts['pool_tier']} tier, {facts['risk_level']} risk, "
            f"momentum {facts['momentum']}); information edge: {facts['info_edge_level'].replace('_', ' ')}."
        )
        report = {
            "overview": summary,
            "strengths": [s for s in (
                "positive realised PnL" if facts["realized_pnl"] > 0 else None,
                "trades ahead of news" if facts["info_edge_level"] in {"processing_edge", "mild_edge"} else None,
                "consistent daily results" if facts["stability_score"] >= 60 else None,
            ) if s],
            "facts": facts,
            "disclaimer": "Generated from a template over computed facts; a probabilistic estimate, not investment advice.",
        }
        return AiDraft(
            model_id=self.model_id,
            report=report,
            nl_summary=summary,
            risk_warnings=_risk_warnings(facts),
            confidence=Decimal(str(round(facts["confidence"], 6))),
        )


class OpenAICompatibleProvider:
    def __init__(self, *, url: str, api_key: str, model: str, timeout: float = 30.0) -> None:
        self.url = url if url.rstrip("/").endswith("/chat/completions") else url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.model_id = model
        self.timeout = timeout

    def write(self, *, facts: dict) -> AiDraft:
        prompt = (
            "You analyse a Polymarket wallet from computed facts. Answer with a JSON object with keys "
            '"nl_summary" (2-3 sentences), "strengths" (list), "weaknesses" (list), "risk_warnings" (list of strings), '
            '"confidence" (0..1). Do not give investment advice. Facts: ' + json.dumps(facts, sort_keys=True, default=str)
        )
        started = time.monotonic()
        try:
            response = requests.post(
                self.url,
                headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
                json={
                    "model": self.model_id,
                    "messages": [{"role": "user", "content": prompt}],
                    "response_format": {"type": "json_object"},
                    "temperature": 0,
                },
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise AiProviderError(f"AI provider unreachable: {type(error).__name__}") from error
        latency_ms = int((time.monotonic() - started) * 1000)
        if response.status_code == 429:
            raise AiRateLimited(response.headers.get("Retry-After", ""))
        if response.status_code >= 400:
            raise AiProviderError(f"AI provider answered {response.status_code}")
        try:
            body = response.json()
            content = json.loads(body["choices"][0]["message"]["content"])
            usage = body.get("usage") or {}
            confidence = Decimal(str(min(1.0, max(0.0, float(content.get("confidence", facts["confidence"]))))))
            return AiDraft(
                model_id=str(body.get("model") or self.model_id),
                report={k: content.get(k) for k in ("nl_summary", "strengths", "weaknesses")} | {"facts": facts},
                nl_summary=str(content.get("nl_summary", "")).strip(),
                risk_warnings=[str(w) for w in content.get("risk_warnings", [])],
                confidence=confidence,
                input_tokens=int(usage.get("prompt_tokens", 0)),
                output_tokens=int(usage.get("completion_tokens", 0)),
                latency_ms=latency_ms,
            )
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise AiProviderError("AI provider answered an unreadable body") from error


def ai_provider_get() -> AiProvider:
    url, key = settings.AI_API_URL, settings.AI_API_KEY
    if url and key:
        return OpenAICompatibleProvider(
            url=url, api_key=key, model=settings.AI_MODEL, timeout=float(settings.AI_TIMEOUT_SECONDS)
        )
    return TemplateProvider()
