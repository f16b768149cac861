"""Landing and core facts.

Landing keeps every upstream record exactly as received, keyed by a strong idempotency key and
tied to the run that brought it, so facts can be re-derived without the upstream. Core facts are
the typed, normalised rows the marts read: markets, outcome tokens, wallets, trade fills and
off-chain events. Both are written in one transaction per page by `ingest.services`.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.indexes import BrinIndex, HashIndex
from django.db import models
from django.utils import timezone

# Shares and USDC amounts arrive with up to ~10 decimals and float noise (0.9809999989); keep them
# all rather than rounding, so a stored value can always be compared with the upstream one.
MONEY = {"max_digits": 30, "decimal_places": 12}


class IngestCursor(models.Model):
    """How far a (source, stream) has been read completely. Moves only forward."""

    source = models.CharField(max_length=40)
    stream = models.CharField(max_length=60)
    cursor_value = models.CharField(max_length=200, blank=True, default="")
    # Where an unfinished walk stands (the upstream's cursor, its floor and head, the occurrence
    # count of the second it stopped in) and what the last run measured (serving lag, overlap):
    # a walk interrupted by an error or a kill resumes from here instead of from the head.
    state = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ingest_cursor"
        constraints = [models.UniqueConstraint(fields=["source", "stream"], name="ingest_cursor_source_stream_key")]

    def __str__(self) -> str:
        return f"{self.source}.{self.stream} @ {self.cursor_value or '∅'}"

    @property
    def job_name(self) -> str:
        return f"{self.source}.{self.stream}"


class RunKind(models.TextChoices):
    SCHEDULED = "scheduled"
    REPLAY = "replay"
    BACKFILL = "backfill"
    RETRY = "retry"


class RunStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    SKIPPED_LOCKED = "skipped_locked"
    CIRCUIT_OPEN = "circuit_open"
    ABANDONED = "abandoned"


class IngestRun(models.Model):
    job_name = models.CharField(max_length=100, db_index=True)
    kind = models.CharField(max_length=20, choices=RunKind.choices, default=RunKind.SCHEDULED)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING, db_index=True)
    stats_json = models.JSONField(default=dict, blank=True)
    error_text = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "ingest_run"
        indexes = [models.Index(fields=["job_name", "-started_at"], name="ingest_run_job_recent")]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.job_name} #{self.pk} {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def finish(self, *, status: str, stats: dict | None = None, error: str = "") -> None:
        self.status = status
        self.ended_at = timezone.now()
        if stats is not None:
            self.stats_json = stats
        self.error_text = error
        self.save(update_fields=["status", "ended_at", "stats_json", "error_text"])


class IngestDeadLetter(models.Model):
    """An upstream row we could not take, kept with its payload until a retry resolves it."""

    source = models.CharField(max_length=40)
    stream = models.CharField(max_length=60)
    payload = models.JSONField()
    # sha256 of the canonical payload: the lookback re-reads a malformed row every poll, and it
    # must stay one open dead letter, not one per poll.
    payload_key = models.CharField(max_length=64, blank=True, default="", db_index=True)
    error = models.TextField()
    retry_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_retry_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    run = models.ForeignKey(IngestRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="dead_letters")

    class Meta:
        db_table = "ingest_dead_letter"
        indexes = [
            models.Index(
                fields=["source", "stream"],
                condition=models.Q(resolved_at__isnull=True),
                name="ingest_dead_letter_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}.{self.stream} dead letter #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class IngestGap(models.Model):
    """A time window the live feed could not cover (offset cap); open until a backfill closes it."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"
        # Swept as far as the Data API allows: market reads, then user windows for every wallet
        # known in the busy markets. A wallet that traded only in the unread part of such a market
        # cannot be discovered through the API, so this is not claimed as closed.
        EXHAUSTED = "exhausted"

    source = models.CharField(max_length=40)
    stream = models.CharField(max_length=60)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)
    found_by_run = models.ForeignKey(IngestRun, null=True, on_delete=models.SET_NULL, related_name="gaps_found")
    closed_by_run = models.ForeignKey(
        IngestRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="gaps_closed"
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ingest_gap"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.source}.{self.stream} gap [{self.window_start:%Y-%m-%d %H:%M:%S}, {self.window_end:%H:%M:%S})"


# Records of these streams land with their fill and are kept unique by the fill's key (LandingRecord).
TRADE_LANDING_SOURCE = "data_api"
TRADE_LANDING_STREAMS = ("trades", "wallet_history")


class VerbatimJSONField(models.JSONField):
    """A `json` (not `jsonb`) column: stores the text as written — key order and number spelling
    as the upstream sent them — and costs no parse on insert, on the hottest write path.

    psycopg already decodes `json` values (Django only turns that off for `jsonb`), so a decoded
    value is passed through instead of being decoded twice.
    """

    def db_type(self, connection) -> str:
        return "json"

    def from_db_value(self, value, expression, connection):
        if isinstance(value, dict | list):
            return value
        return super().from_db_value(value, expression, connection)


class LandingRecord(models.Model):
    """An upstream record as received. Designed to be range-partitioned by received_at at scale.

    Trade records (source `data_api`) land in the same statement that stores or enriches their
    fill, so the fill table's unique key already decides that a record lands once; they stay out
    of the unique index, which cost each of them more than their own row (ingest's hottest
    write). A trade record can repeat only when its fill was deleted and stored again (a repair
    replay). Their keys start with the trade's second, so a key lookup goes through the
    (source, stream, upstream_time) index instead (`landing_records_matching`).
    """

    source = models.CharField(max_length=40)
    stream = models.CharField(max_length=60)
    idempotency_key = models.CharField(max_length=64)
    payload = VerbatimJSONField()
    upstream_time = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    run = models.ForeignKey(IngestRun, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False)

    class Meta:
        db_table = "ingest_landing"
        constraints = [
            models.UniqueConstraint(
                fields=["source", "stream", "idempotency_key"],
                condition=~models.Q(source=TRADE_LANDING_SOURCE, stream__in=TRADE_LANDING_STREAMS),
                name="ingest_landing_idempotency_key",
            )
        ]
        indexes = [models.Index(fields=["source", "stream", "upstream_time"], name="ingest_landing_upstream_time")]

    def __str__(self) -> str:
        return f"{self.source}.{self.stream} {self.idempotency_key[:12]}…"


class LandingPage(models.Model):
    """The trade records one page transaction stored or enriched, landed together as received.

    Trade pages are ingest's hottest write: a row per record cost more than the fill it
    described (its own heap tuple and three index entries, ~850 bytes of JSON each). A page lands
    as one row instead: the records, in the order the upstream served them and each with the key
    its fill was stored under, as one Zstandard-compressed JSON document (ingest.frame.landing_page_write;
    zlib before, still read) — a tenth of the bytes, written in one TOAST value that PostgreSQL does not compress again.
    `upstream_from`/`upstream_until` bound the records' trade times, so a replay window finds its
    pages by index; records of older databases stay in LandingRecord and are read beside these.
    """

    source = models.CharField(max_length=40)
    stream = models.CharField(max_length=60)
    record_count = models.PositiveIntegerField()
    upstream_from = models.DateTimeField()
    upstream_until = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    run = models.ForeignKey(IngestRun, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False)
    # zstd (or zlib, landed before) of the JSON array of [idempotency_key, record as received];
    # ingest.frame.landing_page_records reads it.
    body = models.BinaryField()

    class Meta:
        db_table = "ingest_landing_page"
        indexes = [
            models.Index(fields=["source", "stream", "upstream_from"], name="ingest_landing_page_from"),
            models.Index(fields=["source", "stream", "upstream_until"], name="ingest_landing_page_until"),
            BrinIndex(fields=["run"], name="ingest_landing_page_run", autosummarize=True),
        ]

    def __str__(self) -> str:
        return f"{self.source}.{self.stream} page of {self.record_count} ({self.upstream_from:%Y-%m-%d %H:%M:%S}…)"


class LandingRetention(models.Model):
    """A month of landed trade pages that retention took away (LANDING_RETENTION_DAYS): which
    trade times its records covered, so a replay from the landing can say what it cannot read."""

    partition = models.CharField(max_length=63)
    action = models.CharField(max_length=10)  # dropped | detached
    received_from = models.DateTimeField()
    received_until = models.DateTimeField()
    upstream_from = models.DateTimeField(null=True, blank=True)
    upstream_until = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField()
    records = models.PositiveBigIntegerField()
    removed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ingest_landing_retention"

    def __str__(self) -> str:
        return f"{self.partition} {self.action} ({self.records} records)"


class Market(models.Model):
    class MetadataStatus(models.TextChoices):
        # A market first seen in a trade gets a row at once (fills need it) and is marked for a
        # Gamma fetch; it is never shown with a made-up title.
        PENDING = "pending"
        FETCHED = "fetched"
        NOT_FOUND = "not_found"

    condition_id = models.CharField(max_length=66, unique=True)
    gamma_id = models.CharField(max_length=40, blank=True, default="", db_index=True)
    question = models.TextField(blank=True, default="")
    slug = models.CharField(max_length=300, blank=True, default="", db_index=True)
    description = models.TextField(blank=True, default="")
    category = models.CharField(max_length=120, blank=True, default="", db_index=True)
    tags = models.JSONField(default=list, blank=True)
    event_slug = models.CharField(max_length=300, blank=True, default="")
    event_title = models.TextField(blank=True, default="")
    outcomes = models.JSONField(default=list, blank=True)
    outcome_prices = models.JSONField(default=list, blank=True, help_text="Decimal strings, as Gamma sends them")
    volume = models.DecimalField(**MONEY, default=Decimal(0))
    liquidity = models.DecimalField(**MONEY, default=Decimal(0))
    active = models.BooleanField(default=True)
    closed = models.BooleanField(default=False, db_index=True)
    archived = models.BooleanField(default=False)
    end_date = models.DateTimeField(null=True, blank=True)
    closed_time = models.DateTimeField(null=True, blank=True)
    uma_resolution_status = models.CharField(max_length=40, blank=True, default="")
    fees_enabled = models.BooleanField(null=True, blank=True, help_text="Gamma's feesEnabled; empty when unknown")
    winner_index = models.SmallIntegerField(null=True, blank=True)
    is_void = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Payout per share of each outcome as fractions of 1 USDC (Decimal strings), from Data API
    # /v2/resolutions — the resolution of record; Gamma's closed + prices is only a hint.
    # Database defaults too: the trade path inserts pending markets in raw SQL.
    resolution_payouts = models.JSONField(default=list, db_default=[], blank=True)
    resolution_source = models.CharField(
        max_length=20, blank=True, default="", db_default="", help_text="data_api or gamma (hint)"
    )
    was_disputed = models.BooleanField(null=True, blank=True)
    protocol_version = models.CharField(
        max_length=8, blank=True, default="", db_default="", help_text="Gamma's version: v1 or v2"
    )
    metadata_status = models.CharField(
        max_length=12, choices=MetadataStatus.choices, default=MetadataStatus.PENDING, db_index=True
    )
    gamma_created_at = models.DateTimeField(null=True, blank=True)
    gamma_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "market"
        # The markets list sorts by these with id as the tie-breaker.
        indexes = [
            models.Index(fields=["volume", "id"], name="market_volume_sort"),
            models.Index(fields=["liquidity", "id"], name="market_liquidity_sort"),
            models.Index(fields=["created_at", "id"], name="market_created_sort"),
            models.Index(fields=["updated_at", "id"], name="market_updated_sort"),
        ]

    def __str__(self) -> str:
        return self.question or self.condition_id

    @property
    def is_resolved(self) -> bool:
        return self.winner_index is not None or self.is_void


class OutcomeToken(models.Model):
    token_id = models.CharField(max_length=100, unique=True)
    market = models.ForeignKey(Market, on_delete=models.CASCADE, related_name="tokens")
    outcome_index = models.SmallIntegerField()
    outcome = models.CharField(max_length=200, blank=True, default="")
    latest_price = models.DecimalField(**MONEY, null=True, blank=True)

    class Meta:
        db_table = "outcome_token"
        constraints = [
            models.UniqueConstraint(fields=["market", "outcome_index"], name="outcome_token_market_index")
        ]

    def __str__(self) -> str:
        return f"{self.outcome or self.outcome_index} of {self.market_id}"


class Wallet(models.Model):
    address = models.CharField(max_length=42, unique=True)
    pseudonym = models.CharField(max_length=200, blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    profile_image = models.URLField(max_length=500, blank=True, default="")
    tracked = models.BooleanField(default=False, db_index=True)
    # From trade times, not insert times: a backfilled history moves first_trade_at back.
    first_trade_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Not indexed on purpose: it moves with nearly every page of fills, and an unindexed column
    # lets PostgreSQL update the row in place (HOT) instead of touching every wallet index.
    last_trade_at = models.DateTimeField(null=True, blank=True)
    history_backfilled_at = models.DateTimeField(null=True, blank=True)
    # Per-wallet history backfill progress: older fills are fetched below this time next run, and
    # wallets are served least-recently-attempted first so none starves.
    history_before = models.DateTimeField(null=True, blank=True)
    history_attempted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "wallet"
        indexes = [
            models.Index(fields=["updated_at", "id"], name="wallet_updated_sort"),
            models.Index(
                fields=["created_at"],
                condition=models.Q(history_backfilled_at__isnull=True),
                name="wallet_backfill_pending",
            )
        ]

    def __str__(self) -> str:
        return self.pseudonym or self.address


class TradeSide(models.TextChoices):
    BUY = "BUY"
    SELL = "SELL"


class TradeFill(models.Model):
    """One fill. The identity is the idempotency key over the fields that name a fill on every
    endpoint (tx hash, token, wallet, side, size, price, timestamp) — never outcomeIndex or
    eventSlug, which the global feed blanks while user-scoped reads fill them in — plus its
    occurrence: two fills of one transaction can be identical in all seven fields and are still
    two fills (a multiset). Occurrence 0 is the key every fill had before v2, so no stored fill
    needed a new key.

    The hottest table: every index and constraint here costs each of millions of inserts. So no
    foreign-key constraints in the database — the only writer inserts fills by joining the market
    and wallet rows it has just upserted, and neither is ever deleted (PROTECT still guards the
    ORM) — whereas a deferred FK check is one more index probe and row lock per fill at commit.
    Unique and lookup indexes are declared in Meta: a field-level `unique`/`db_index` on a
    CharField also builds a `varchar_pattern_ops` twin for LIKE queries that nothing here runs.
    """

    idempotency_key = models.CharField(max_length=64)
    source = models.CharField(max_length=40, default="data_api")
    transaction_hash = models.CharField(max_length=66)
    token_id = models.CharField(max_length=100)
    market = models.ForeignKey(
        Market, on_delete=models.PROTECT, related_name="fills", db_index=False, db_constraint=False
    )
    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="fills", db_index=False, db_constraint=False
    )
    side = models.CharField(max_length=4, choices=TradeSide.choices)
    size = models.DecimalField(**MONEY)
    price = models.DecimalField(**MONEY)
    usdc_size = models.DecimalField(**MONEY)
    traded_at = models.DateTimeField()
    outcome = models.CharField(max_length=200, blank=True, default="")
    outcome_index = models.SmallIntegerField(null=True, blank=True)
    occurrence = models.SmallIntegerField(
        default=0, db_default=0, help_text="index among identical fills of one transaction"
    )
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "trade_fill"
        # Partitioned by month on traded_at (ingest.partitions): a unique key must hold the
        # partition column. The key starts with the fill's timestamp, so this refuses exactly
        # what the key alone refused.
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key", "traded_at"], name="trade_fill_idempotency_key_key")
        ]
        indexes = [
            # Admin's fill search looks fills up by exact transaction hash. A hash index: equality
            # is all it serves, and it costs each insert a third of what a B-tree over random
            # 66-character keys does.
            HashIndex(fields=["transaction_hash"], name="trade_fill_tx_hash"),
            models.Index(fields=["wallet", "traded_at"], name="trade_fill_wallet_time"),
            models.Index(fields=["market", "traded_at"], name="trade_fill_market_time"),
            models.Index(fields=["traded_at"], name="trade_fill_time"),
            # The reconciler looks for fills stored after a wallet's last computation. ingested_at
            # follows the physical order of inserts, so a BRIN index answers that range read at a
            # fraction of a B-tree's per-insert cost and size.
            BrinIndex(fields=["ingested_at"], name="trade_fill_ingested", autosummarize=True),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.size}@{self.price} {self.transaction_hash[:10]}…"


class OffchainFeed(models.Model):
    """An RSS/Atom feed an operator registered, with the rule that links its entries to markets."""

    name = models.CharField(max_length=200)
    url = models.URLField(max_length=500, unique=True)
    enabled = models.BooleanField(default=True)
    keywords = models.JSONField(
        default=list, blank=True, help_text="Entries whose title or summary contains any of these link to markets "
        "whose question contains the same keyword."
    )
    tags = models.JSONField(default=list, blank=True, help_text="Link entries to every open market carrying a tag.")
    markets = models.ManyToManyField(Market, blank=True, related_name="feeds", help_text="Always link to these.")
    match_named_terms = models.BooleanField(
        default=True,
        help_text="Also link an entry to open markets whose question names a proper noun of the entry's title.",
    )
    etag = models.CharField(max_length=300, blank=True, default="")
    last_modified = models.CharField(max_length=100, blank=True, default="")
    last_fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "offchain_feed"

    def __str__(self) -> str:
        return self.name


class OffchainEvent(models.Model):
    class Kind(models.TextChoices):
        FEED = "feed"
        MARKET_LIFECYCLE = "market_lifecycle"
        MANUAL = "manual"

    source = models.CharField(max_length=120)
    source_event_id = models.CharField(max_length=500)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MANUAL)
    # When the information became public: the edge metric measures trades against this time.
    event_time = models.DateTimeField(db_index=True)
    title = models.TextField()
    url = models.URLField(max_length=1000, blank=True, default="")
    summary = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    markets = models.ManyToManyField(Market, blank=True, related_name="offchain_events", through="OffchainEventMarket")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "offchain_event"
        # A full (not partial) unique constraint, so INSERT … ON CONFLICT (source, source_event_id)
        # can name it — the previous backend's partial index made every upsert fail.
        constraints = [
            models.UniqueConstraint(fields=["source", "source_event_id"], name="offchain_event_source_id_key")
        ]

    def __str__(self) -> str:
        return self.title[:80]


class OffchainEventMarket(models.Model):
    event = models.ForeignKey(OffchainEvent, on_delete=models.CASCADE)
    market = models.ForeignKey(Market, on_delete=models.CASCADE)
    # Kept beside the link so "first event for a market after time t" is one index range scan.
    event_time = models.DateTimeField()

    class Meta:
        db_table = "offchain_event_market"
        constraints = [models.UniqueConstraint(fields=["event", "market"], name="offchain_event_market_key")]
        indexes = [models.Index(fields=["market", "event_time"], name="offchain_event_market_time")]

    def __str__(self) -> str:
        return f"event {self.event_id} → market {self.market_id}"



class WalletCursor(models.Model):
    """How far one wallet's user-scoped stream (v2 activity, positions) has been read.

    One row per (wallet, stream) instead of an IngestCursor each: there are as many as wallets,
    and the health page lists streams, not wallets.
    """

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="source_cursors", db_constraint=False)
    stream = models.CharField(max_length=40)
    cursor_value = models.CharField(max_length=200, blank=True, default="")
    state = models.JSONField(default=dict, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ingest_wallet_cursor"
        constraints = [models.UniqueConstraint(fields=["wallet", "stream"], name="ingest_wallet_cursor_key")]
        indexes = [models.Index(fields=["stream", "attempted_at"], name="ingest_wallet_cursor_due")]

    def __str__(self) -> str:
        return f"{self.stream} of wallet {self.wallet_id} @ {self.cursor_value or '∅'}"
