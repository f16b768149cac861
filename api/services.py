"""Writes of the serving API: follows, unfollows, acknowledgements, report requests.

Each answers for exactly the ids that exist: the previous backend reported success for ids that
did not (acknowledging a missing alert, following unknown wallets).
"""

from __future__ import annotations

from dataclasses import dataclass

from api.models import WatchlistEntry
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


def anomaly_acknowledge(*, anomaly_id: int) -> Anomaly:
    anomaly = Anomaly.objects.filter(pk=anomaly_id).first()
    if anomaly is None:
        raise AnomalyNotFound
    anomaly.acknowledge()
    return anomaly


def ai_report_request(*, wallet_id: int, force: bool) -> tuple[AiReport, bool]:
    """The wallet's report from the scoring layer's provider: (report, created).

    Raises WalletNotFound for an unknown wallet; the scoring service raises AiReportIneligible
    (too few facts) and AiRateLimited / AiProviderError (provider refused or failed).
    """
    if not Wallet.objects.filter(pk=wallet_id).exists():
        raise WalletNotFound
    return ai_report_generate(wallet_id=wallet_id, force=force)
