"""Completeness check against an upstream that can export its ground truth (the emulator).

Fills are a multiset: two fills of one transaction can be identical in every served field, and
both are fills. The truth (`GET /_truth/trades`) numbers them with an `occurrence` (0-based among
identical fills of one transaction, in serving order), exactly as the stored key does
(`fill_idempotency_key(..., occurrence=n)`), so the comparison is by key including occurrence:

- missing: published fills not stored;
- duplicated: stored fills that are an extra copy of a published fill (their occurrence-0 identity
  is published, but not that many times);
- unexpected: stored fills that were never published at all.

Zero of each means every published fill was stored exactly once.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import requests

from ingest.models import IngestCursor, TradeFill
from ingest.sources.data_api.parsing import fill_idempotency_key

# Which reader's view of the truth to judge: Data API v2 never serves fills below its
# filter_amount floor (0.01 shares), v1 /trades served every fill.
Feed = Literal["v1", "v2"]


@dataclass
class CompletenessReport:
    truth_fills: int = 0
    stored_fills: int = 0
    missing: int = 0
    duplicated: int = 0
    unexpected: int = 0
    # Published fills that are the second (third, ...) identical fill of their transaction.
    repeated_identical_fills: int = 0
    malformed_published: int = 0
    duplicate_rows_published: int = 0
    # v2: published fills the upstream does not serve yet (indexed late): in flight, not missing.
    not_yet_visible: int = 0
    feed: str = "v2"
    missing_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)
    unexpected_examples: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.unexpected == 0

    def as_dict(self) -> dict:
        return {
            "complete": self.complete,
            "feed": self.feed,
            "truth_fills": self.truth_fills,
            "stored_fills": self.stored_fills,
            "missing": self.missing,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "repeated_identical_fills": self.repeated_identical_fills,
            "malformed_published": self.malformed_published,
            "duplicate_rows_published": self.duplicate_rows_published,
            "not_yet_visible": self.not_yet_visible,
            "missing_examples": self.missing_examples,
            "duplicated_examples": self.duplicated_examples,
            "unexpected_examples": self.unexpected_examples,
        }


def _truth_key(row: dict, *, occurrence: int) -> str:
    return fill_idempotency_key(
        transaction_hash=row["transactionHash"],
        asset=row["asset"],
        wallet=row["proxyWallet"],
        side=row["side"],
        size=row["size"],
        price=row["price"],
        timestamp=row["timestamp"],
        occurrence=occurrence,
    )


@dataclass
class Truth:
    """The published fills as a multiset of keys (with occurrence) and of occurrence-0 identities."""

    keys: Counter[str] = field(default_factory=Counter)
    identities: Counter[str] = field(default_factory=Counter)
    summary: dict = field(default_factory=dict)


def upstream_truth(*, upstream_url: str, since: int | None = None, until: int | None = None,
                   feed: Feed = "v2", visible_by: float | None = None) -> Truth:
    params = {"format": "jsonl"}
    if since is not None:
        params["since"] = since
    if until is not None:
        params["until"] = until
    truth = Truth()
    # v2 serves a fill only once the upstream's indexer reached it (`visible_at`); a fill that no
    # read could have returned yet is in flight, not missing — counted apart until the summary
    # (last line) says what "now" was.
    pending: list[tuple[float, str, str]] = []
    with requests.get(f"{upstream_url.rstrip('/')}/_truth/trades", params=params, stream=True, timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line:
                continue
            record = json.loads(line)
            if "fill" in record:
                fill = record["fill"]
                if feed == "v2" and not fill.get("v2_served", True):
                    continue
                occurrence = int(fill.get("occurrence", 0))
                key, identity = _truth_key(fill, occurrence=occurrence), _truth_key(fill, occurrence=0)
                if feed == "v2" and fill.get("visible_at") is not None:
                    pending.append((float(fill["visible_at"]), key, identity))
                    continue
                truth.keys[key] += 1
                truth.identities[identity] += 1
            elif "summary" in record:
                truth.summary = record["summary"]
    now = visible_by if visible_by is not None else truth.summary.get("virtual_now")
    not_yet_visible = 0
    for visible_at, key, identity in pending:
        if now is not None and visible_at > float(now):
            not_yet_visible += 1
            continue
        truth.keys[key] += 1
        truth.identities[identity] += 1
    truth.summary["not_yet_visible"] = not_yet_visible
    return truth


def upstream_truth_keys(*, upstream_url: str, since: int | None = None, until: int | None = None) -> tuple[set[str], dict]:
    """The published fills' keys (occurrence included) and the truth summary."""
    truth = upstream_truth(upstream_url=upstream_url, since=since, until=until)
    return set(truth.keys), truth.summary


def _occurrence_zero_identities(keys: list[str]) -> dict[str, str]:
    """stored key -> its fill's occurrence-0 key, recomputed from the stored fields."""
    identities: dict[str, str] = {}
    for start in range(0, len(keys), 5_000):
        rows = TradeFill.objects.filter(idempotency_key__in=keys[start:start + 5_000]).values_list(
            "idempotency_key", "transaction_hash", "token_id", "wallet__address", "side", "size", "price", "traded_at"
        )
        for key, transaction_hash, token_id, wallet, side, size, price, traded_at in rows:
            identities[key] = fill_idempotency_key(transaction_hash=transaction_hash, asset=token_id, wallet=wallet,
                                                   side=side, size=size, price=price, timestamp=traded_at)
    return identities


def stored_fill_keys(*, since: int | None, until: int | None):
    """Keys of the fills stored with a trade time in [since, until] (Unix seconds, either open):
    bounded by traded_at, so only the window's monthly partitions are read."""
    query = TradeFill.objects.all()
    if since is not None:
        query = query.filter(traded_at__gte=datetime.fromtimestamp(since, tz=UTC))
    if until is not None:
        query = query.filter(traded_at__lt=datetime.fromtimestamp(until + 1, tz=UTC))
    return query.values_list("idempotency_key", flat=True)


def fills_completeness_check(*, upstream_url: str, since: int | None = None, until: int | None = None,
                             feed: Feed = "v2", visible_by: float | None = None) -> CompletenessReport:
    """Stored fills against the upstream's truth, as a multiset. With `visible_by` (upstream time),
    fills the upstream made visible only after it are in flight (the live feed reads them on its
    next pass), not missing."""
    truth = upstream_truth(upstream_url=upstream_url, since=since, until=until, feed=feed, visible_by=visible_by)
    summary = truth.summary
    until = int(summary.get("until", until or 0)) if summary else until
    stored = Counter(stored_fill_keys(since=since, until=until).iterator(chunk_size=50_000))
    missing = truth.keys - stored
    extra = stored - truth.keys
    # An extra stored fill whose occurrence-0 identity was published is one copy too many of a real
    # fill (its occurrence is past the published count): duplicated. Otherwise it was never
    # published: unexpected.
    identity_of = _occurrence_zero_identities(sorted(extra))
    duplicated: list[str] = []
    unexpected: list[str] = []
    for key in sorted(extra.elements()):
        identity = identity_of.get(key)
        (duplicated if identity is not None and truth.identities[identity] else unexpected).append(key)
    return CompletenessReport(
        truth_fills=sum(truth.keys.values()),
        stored_fills=sum(stored.values()),
        missing=sum(missing.values()),
        duplicated=len(duplicated),
        unexpected=len(unexpected),
        repeated_identical_fills=sum(truth.identities.values()) - len(truth.identities),
        malformed_published=int(summary.get("malformed", 0)),
        duplicate_rows_published=int(summary.get("duplicate_rows", 0)),
        not_yet_visible=int(summary.get("not_yet_visible", 0)),
        feed=feed,
        missing_examples=sorted(missing)[:5],
        duplicated_examples=duplicated[:5],
        unexpected_examples=unexpected[:5],
    )


def live_feed_covered_until() -> int | None:
    """The newest second the live trades feed vouches for: the one before its cursor (fills of the
    cursor's own second may still be published and are read by the next run's lookback). None
    before the first complete run."""
    cursor = IngestCursor.objects.filter(source="data_api", stream="trades").values_list("cursor_value", flat=True).first()
    return int(cursor) - 1 if cursor and cursor.isdigit() else None


def live_feed_last_read_at() -> float | None:
    """Upstream time at which the last live trades pass began reading (its /v2/status snapshot's
    time plus the snapshot's age): fills that became visible after it are the next pass's work."""
    cursor = IngestCursor.objects.filter(source="data_api", stream="status").first()
    state = cursor.state if cursor else {}
    if not state.get("upstream_time"):
        return None
    moment = datetime.fromisoformat(state["upstream_time"])
    return moment.timestamp() + float(state.get("snapshot_age_seconds") or 0)
