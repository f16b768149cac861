"""Completeness check against an upstream that can export its ground truth (the emulator).

Compares the fills the upstream published in a window with the fills stored, by idempotency
key: zero missing and zero unexpected means every record was stored exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from ingest.models import IngestCursor, TradeFill
from ingest.sources.data_api.parsing import fill_idempotency_key


@dataclass
class CompletenessReport:
    truth_fills: int = 0
    stored_fills: int = 0
    missing: int = 0
    unexpected: int = 0
    malformed_published: int = 0
    duplicate_rows_published: int = 0
    missing_examples: list[str] = field(default_factory=list)
    unexpected_examples: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.missing == 0 and self.unexpected == 0

    def as_dict(self) -> dict:
        return {
            "complete": self.complete,
            "truth_fills": self.truth_fills,
            "stored_fills": self.stored_fills,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "malformed_published": self.malformed_published,
            "duplicate_rows_published": self.duplicate_rows_published,
            "missing_examples": self.missing_examples,
            "unexpected_examples": self.unexpected_examples,
        }


def _truth_key(row: dict) -> str:
    return fill_idempotency_key(
        transaction_hash=row["transactionHash"],
        asset=row["asset"],
        wallet=row["proxyWallet"],
        side=row["side"],
        size=row["size"],
        price=row["price"],
        timestamp=row["timestamp"],
    )


def upstream_truth_keys(*, upstream_url: str, since: int | None = None, until: int | None = None) -> tuple[set[str], dict]:
    params = {"format": "jsonl"}
    if since is not None:
        params["since"] = since
    if until is not None:
        params["until"] = until
    keys: set[str] = set()
    summary: dict = {}
    with requests.get(f"{upstream_url.rstrip('/')}/_truth/trades", params=params, stream=True, timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line:
                continue
            record = json.loads(line)
            if "fill" in record:
                keys.add(_truth_key(record["fill"]))
            elif "summary" in record:
                summary = record["summary"]
    return keys, summary


def fills_completeness_check(*, upstream_url: str, since: int | None = None, until: int | None = None) -> CompletenessReport:
    truth, summary = upstream_truth_keys(upstream_url=upstream_url, since=since, until=until)
    until = int(summary.get("until", until or 0)) if summary else until
    stored_query = TradeFill.objects.all()
    if since is not None:
        stored_query = stored_query.filter(traded_at__gte=datetime.fromtimestamp(since, tz=UTC))
    if until is not None:
        stored_query = stored_query.filter(traded_at__lt=datetime.fromtimestamp(until + 1, tz=UTC))
    stored = set(stored_query.values_list("idempotency_key", flat=True).iterator(chunk_size=50_000))
    missing = truth - stored
    unexpected = stored - truth
    return CompletenessReport(
        truth_fills=len(truth),
        stored_fills=len(stored),
        missing=len(missing),
        unexpected=len(unexpected),
        malformed_published=int(summary.get("malformed", 0)),
        duplicate_rows_published=int(summary.get("duplicate_rows", 0)),
        missing_examples=sorted(missing)[:5],
        unexpected_examples=sorted(unexpected)[:5],
    )


def live_feed_covered_until() -> int | None:
    """The newest second the live trades feed vouches for: the one before its cursor (fills of the
    cursor's own second may still be published and are read by the next run's lookback). None
    before the first complete run."""
    cursor = IngestCursor.objects.filter(source="data_api", stream="trades").values_list("cursor_value", flat=True).first()
    return int(cursor) - 1 if cursor and cursor.isdigit() else None
