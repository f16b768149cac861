"""Writes of the serving API: follows, unfollows, acknowledgements, report requests.

Each answers for exactly the ids that exist: the previous backend reported success for ids that
did not (acknowledging a missing alert, following unknown wallets).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from api import throttling
from api.models import AcknowledgementAction, AnomalyAcknowledgement, WatchlistEntry
from ingest.models import Wallet
from scoring.models import AiReport, Anomaly
from scoring.services import ai_report_generate


class WalletNotFound(Exception):
    pass


class AnomalyNotFound(Exception):
    pass


def watchlist_follow(*, fingerprint: str, wallet_id: int) -> bool:
    """Follow a wallet; True when this call added it. Idempotent."""
    if not Wallet.objects.filter(pk=wallet_id).exists():
        raise WalletNotFound
    # get_or_create retries the read when a concurrent request won the insert (unique key).
    _entry, created = WatchlistEntry.objects.get_or_create(fingerprint=fingerprint, wallet_id=wallet_id)
    return created


@dataclass(frozen=True)
class BatchFollowResult:
    wallet_ids: list[int]
    newly_followed: list[int]
    unknown_wallet_ids: list[int]


def watchlist_follow_batch(*, fingerprint: str, wallet_ids: list[int]) -> BatchFollowResult:
    requested = list(dict.fromkeys(wallet_ids))
    known = set(Wallet.objects.filter(pk__in=requested).values_list("id", flat=True))
    already = set(WatchlistEntry.objects.filter(fingerprint=fingerprint, wallet_id__in=known).values_list("wallet_id", flat=True))
    WatchlistEntry.objects.bulk_create(
        [WatchlistEntry(fingerprint=fingerprint, wallet_id=wallet_id) for wallet_id in requested if wallet_id in known],
        ignore_conflicts=True,
    )
    return BatchFollowResult(
        wallet_ids=[wallet_id for wallet_id in requested if wallet_id in known],
        newly_followed=[wallet_id for wallet_id in requested if wallet_id in known and wallet_id not in already],
        unknown_wallet_ids=[wallet_id for wallet_id in requested if wallet_id not in known],
    )


def watchlist_unfollow(*, fingerprint: str, wallet_id: int) -> None:
    """Stop following; a wallet not followed stays not followed (idempotent), an unknown one is 404."""
    deleted, _ = WatchlistEntry.objects.filter(fingerprint=fingerprint, wallet_id=wallet_id).delete()
    if not deleted and not Wallet.objects.filter(pk=wallet_id).exists():
        raise WalletNotFound


@dataclass(frozen=True)
class Actor:
    """Who asks for a state change: a signed-in user, else the browser's fingerprint, else the
    client address (`api.throttling.client_identity`). `staff` lifts the per-client bounds."""

    user_id: int | None
    fingerprint: str | None
    client_key: str
    client_address: str
    staff: bool = False

    @property
    def fingerprint_hash(self) -> str:
        return hashlib.sha256(self.fingerprint.encode()).hexdigest()[:16] if self.fingerprint else ""


class StaffRequired(Exception):
    pass


class ClientLimited(Exception):
    def __init__(self, wait_seconds: float) -> None:
        super().__init__(wait_seconds)
        self.wait_seconds = wait_seconds


def _client_allowance(actor: Actor, *, scope: str, allowance: int, period_seconds: int) -> float:
    """Take one of the client's `scope` allowance (`allowance` per period, refilled
    continuously): 0 when taken, else the seconds until one is back. Staff are not bounded."""
    if actor.staff:
        return 0.0
    key = f"{throttling.KEY_PREFIX}:{scope}:{throttling.hashed(actor.client_key)}"
    bucket = throttling.Bucket(key, allowance / period_seconds, allowance)
    return throttling.buckets_take([bucket])


def anomaly_acknowledge(*, anomaly_id: int, acknowledged: bool, actor: Actor) -> Anomaly:
    """Acknowledge an alert, or undo that (`acknowledged=False`); each change is written to the
    audit trail with who and when. Repeating the current state changes and records nothing.

    Raises AnomalyNotFound, StaffRequired (ANOMALY_ACK_POLICY=staff and the actor is not) and
    ClientLimited (more than API_ACK_PER_MINUTE changes a minute from this client).
    """
    if settings.ANOMALY_ACK_POLICY == "staff" and not actor.staff:
        raise StaffRequired
    if not Anomaly.objects.filter(pk=anomaly_id).exists():
        raise AnomalyNotFound
    wait = _client_allowance(actor, scope="acknowledge", allowance=settings.API_ACK_PER_MINUTE, period_seconds=60)
    if wait > 0:
        raise ClientLimited(wait)
    with transaction.atomic():
        # Locked, so two concurrent requests cannot both record the same change.
        anomaly = Anomaly.objects.select_for_update().get(pk=anomaly_id)
        if anomaly.acknowledged != acknowledged:
            anomaly.acknowledged = acknowledged
            anomaly.acknowledged_at = timezone.now() if acknowledged else None
            anomaly.save(update_fields=["acknowledged", "acknowledged_at"])
            AnomalyAcknowledgement.objects.create(
                anomaly_id=anomaly_id,
                action=AcknowledgementAction.ACKNOWLEDGED if acknowledged else AcknowledgementAction.UNACKNOWLEDGED,
                user_id=actor.user_id,
                fingerprint_hash=actor.fingerprint_hash,
                client_address=actor.client_address,
            )
    return anomaly


@dataclass(frozen=True)
class ReportAnswer:
    report: AiReport
    created: bool
    # Why a `force=true` request got the cached report instead of a new one ("" otherwise).
    not_forced_reason: str = ""


def _wallet_reported_recently(wallet_id: int) -> bool:
    interval = settings.AI_FORCE_WALLET_INTERVAL_SECONDS
    since = timezone.now() - timedelta(seconds=interval)
    return interval > 0 and AiReport.objects.filter(wallet_id=wallet_id, created_at__gte=since).exists()


def _wallet_force_claim(wallet_id: int) -> bool:
    """Claim this wallet's next forced report in Redis, so that of concurrent forced requests
    only one writes; False when another request holds the claim."""
    interval = settings.AI_FORCE_WALLET_INTERVAL_SECONDS
    if interval <= 0:
        return True
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
        return bool(client.set(f"{throttling.KEY_PREFIX}:ai_force:wallet:{wallet_id}", "1", nx=True, ex=interval))
    except (redis.RedisError, OSError):
        return True  # the report table above is the bound then; only a concurrent request may slip by


def ai_report_request(*, wallet_id: int, force: bool, actor: Actor) -> ReportAnswer:
    """The wallet's report from the scoring layer's provider.

    `force` writes a new report (a paid model call once a provider is configured) at most once
    per wallet per AI_FORCE_WALLET_INTERVAL_SECONDS and AI_FORCE_PER_CLIENT_PER_HOUR times an
    hour per client; beyond that the answer is the cached report with the reason. Staff are not
    bounded. Raises WalletNotFound for an unknown wallet; the scoring service raises
    AiReportIneligible (too few facts) and AiRateLimited / AiProviderError (provider refused or
    failed).
    """
    if not Wallet.objects.filter(pk=wallet_id).exists():
        raise WalletNotFound
    reason = ""
    if force and not actor.staff:
        minutes = max(1, settings.AI_FORCE_WALLET_INTERVAL_SECONDS // 60)
        per_hour = settings.AI_FORCE_PER_CLIENT_PER_HOUR
        wallet_reason = f"force refused: a wallet gets at most one new report every {minutes} minutes; showing the latest"
        if _wallet_reported_recently(wallet_id):
            reason = wallet_reason
        elif per_hour <= 0 or _client_allowance(actor, scope="ai_force", allowance=per_hour, period_seconds=3600) > 0:
            reason = f"force refused: this client may force {per_hour} new reports an hour; showing the cached report"
        elif not _wallet_force_claim(wallet_id):
            reason = wallet_reason
        force = not reason
    if reason:
        latest = AiReport.objects.filter(wallet_id=wallet_id).order_by("-created_at", "-id").first()
        if latest is not None:
            return ReportAnswer(latest, False, reason)
    report, created = ai_report_generate(wallet_id=wallet_id, force=force)
    return ReportAnswer(report, created, reason)


COUNTED_TABLES = ["wallet", "market", "wallet_snapshot", "anomaly"]
COUNTER_RECOUNT_SQL = """
INSERT INTO api_counter_delta (name, delta)
SELECT 'wallets', count(*) FROM wallet
UNION ALL SELECT 'tracked_wallets', count(*) FROM wallet WHERE tracked
UNION ALL SELECT 'markets', count(*) FROM market
UNION ALL SELECT 'scored_wallets', count(*) FROM wallet_snapshot
UNION ALL SELECT 'trades', coalesce(sum(total_trades), 0) FROM wallet_snapshot
UNION ALL SELECT 'potential_wallets', count(*) FROM wallet_snapshot WHERE potential_reached_at IS NOT NULL
UNION ALL SELECT 'anomalies', count(*) FROM anomaly
"""


def counters_recount() -> dict[str, int]:
    """Recount the maintained totals from the tables, for writes that bypassed the triggers (a bulk
    load with session_replication_role = replica). Writes to the counted tables wait meanwhile,
    so no change is counted twice or lost."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(COUNTED_TABLES)} IN SHARE MODE")
        cursor.execute("DELETE FROM api_counter_delta")
        cursor.execute(COUNTER_RECOUNT_SQL)
        cursor.execute("SELECT name, delta FROM api_counter_delta ORDER BY name")
        return dict(cursor.fetchall())
