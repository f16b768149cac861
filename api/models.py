"""What the serving layer owns itself: anonymous watchlists and the curated portfolio packs.

Everything else the API shows is read from the mart and score tables of `marts` / `scoring`.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from ingest.models import Wallet
from scoring.models import RiskLevel

RATIO = {"max_digits": 12, "decimal_places": 6}


class WatchlistEntry(models.Model):
    """One anonymous user (a browser fingerprint) following one wallet.

    The fingerprint is the only identity: the previous backend fell back to the proxy's IP and
    merged every anonymous user behind it into one list, so no row is ever written without one.
    """

    fingerprint = models.CharField(max_length=128)
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="watchers")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "api_watchlist_entry"
        constraints = [
            models.UniqueConstraint(fields=["fingerprint", "wallet"], name="api_watchlist_entry_key"),
        ]
        indexes = [
            # "My watchlist, newest first" is the hot read; the unique key serves follow/unfollow.
            models.Index(fields=["fingerprint", "-created_at", "-id"], name="api_watchlist_recent"),
        ]
        verbose_name_plural = "watchlist entries"

    def __str__(self) -> str:
        return f"{self.fingerprint[:12]}… follows wallet {self.wallet_id}"


class Portfolio(models.Model):
    """A curated pack of wallets, maintained by operators in the admin.

    `expected_return` and `max_drawdown` are ratios (0.12 = 12 %) as the operators judge them; the
    API never derives them for a managed pack.
    """

    name = models.CharField(max_length=120)
    name_zh = models.CharField(max_length=120, blank=True, default="")
    description = models.TextField(blank=True, default="")
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, default=RiskLevel.MEDIUM)
    expected_return = models.DecimalField(**RATIO, default=Decimal(0))
    max_drawdown = models.DecimalField(**RATIO, default=Decimal(0))
    wallets = models.ManyToManyField(Wallet, through="PortfolioWallet", related_name="+", blank=True)
    is_published = models.BooleanField(default=True, help_text="Only published packs are served.")
    position = models.PositiveIntegerField(default=0, help_text="Packs are listed by this number, then by id.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "api_portfolio"
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class PortfolioWallet(models.Model):
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="members")
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "api_portfolio_wallet"
        constraints = [models.UniqueConstraint(fields=["portfolio", "wallet"], name="api_portfolio_wallet_key")]
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.portfolio_id} ∋ wallet {self.wallet_id}"


class CounterDelta(models.Model):
    """Changes to the totals the homepage and the unfiltered lists show, written by triggers.

    Triggers on wallet, market, wallet_snapshot and anomaly append one row per statement and
    counter (migration 0002), so the totals are maintained by the writes themselves and no request
    counts a million rows. Rows are only ever inserted, so concurrent writers never wait on each
    other; `api.selectors.counters_get` sums them and folds them into one row per counter once
    there are many.
    """

    name = models.CharField(max_length=40)
    delta = models.BigIntegerField()

    class Meta:
        db_table = "api_counter_delta"
        indexes = [models.Index(fields=["name"], name="api_counter_delta_name")]

    def __str__(self) -> str:
        return f"{self.name} {self.delta:+d}"


class AcknowledgementAction(models.TextChoices):
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"


class AnomalyAcknowledgement(models.Model):
    """Audit trail of acknowledging an alert and undoing it: who (a signed-in user, else the
    browser's fingerprint, else the client address) and when.

    The fingerprint is kept as a hash: enough to see that one browser acknowledged many alerts,
    and nobody reading the admin can take over that browser's watchlist with it.
    """

    anomaly = models.ForeignKey("scoring.Anomaly", on_delete=models.CASCADE, db_constraint=False, related_name="+")
    action = models.CharField(max_length=16, choices=AcknowledgementAction.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    fingerprint_hash = models.CharField(max_length=16, blank=True, default="", help_text="sha256 prefix of the fingerprint")
    client_address = models.CharField(max_length=64, blank=True, default="", help_text="IPv6 clients as their /64")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "api_anomaly_acknowledgement"
        indexes = [models.Index(fields=["anomaly", "-created_at"], name="api_anomaly_ack_history")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"anomaly {self.anomaly_id} {self.action} by {self.who}"

    @property
    def who(self) -> str:
        if self.user_id:
            return f"user {self.user}"
        if self.fingerprint_hash:
            return f"fingerprint {self.fingerprint_hash}"
        return f"address {self.client_address or 'unknown'}"
