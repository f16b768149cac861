"""Monthly time partitions of the fact tables (ARCHITECTURE §5, issue 16).

`trade_fill` is range-partitioned by `traded_at`, one partition per calendar month (UTC), plus a
default partition as the safety net: a fill whose month has no partition yet (a backfill reaching
into 2021, a clock far ahead) is stored there rather than refused. Rows in a default partition
mean a missing partition: the health page and /metrics show their count, and
`partitions_maintain` (beat, hourly) creates the partitions ahead of time and moves any parked
rows into the partition of their month.

Every unique key includes the partition column, as PostgreSQL requires: the fill key is unique
together with `traded_at`. A fill key starts with the fill's own timestamp (see
parsing._fill_key_from_canonical), so two rows with one key always have one `traded_at`: the
composite key refuses exactly what the key alone refused.

`ingest_landing_page` (the landed trade pages) is partitioned by month on `received_at`: retention
(LANDING_RETENTION_DAYS, default 180) detaches and drops or keeps aside whole months of raw
records, never a row at a time. The marts layer registers `wallet_ledger_entry` (by `occurred_at`,
marts.partitions) for the same maintenance.

`table_partition_online` converts a table that still is a single one without holding a lock
longer than the final swap: a trigger mirrors every write into the new partitioned table while
the existing rows are copied over in batches, each its own transaction; then one short
ACCESS EXCLUSIVE lock swaps the names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionedTable:
    """A table partitioned by month on `column`, and the indexes its partitioned form carries.

    `indexes` are (name, definition after ON <table>) in the order they are built; `unique` are
    (name, columns) of the unique constraints, the first one being the primary key.
    """

    table: str
    column: str
    primary_key: tuple[str, ...]
    unique: tuple[tuple[str, tuple[str, ...]], ...]
    indexes: tuple[tuple[str, str], ...]
    months_ahead: int = 2

    @property
    def default_partition(self) -> str:
        return f"{self.table}_default"

    def partition_name(self, month: datetime) -> str:
        return f"{self.table}_y{month.year:04d}m{month.month:02d}"


TRADE_FILL = PartitionedTable(
    table="trade_fill",
    column="traded_at",
    primary_key=("id", "traded_at"),
    unique=(("trade_fill_idempotency_key_key", ("idempotency_key", "traded_at")),),
    indexes=(
        ("trade_fill_tx_hash", "USING hash (transaction_hash)"),
        ("trade_fill_wallet_time", "(wallet_id, traded_at)"),
        ("trade_fill_market_time", "(market_id, traded_at)"),
        ("trade_fill_time", "(traded_at)"),
        ("trade_fill_ingested", "USING brin (ingested_at) WITH (autosummarize = on)"),
    ),
)

# Landed trade pages by the time they were received: retention drops whole months of raw
# records (landing_retention_apply) while the facts derived from them stay.
LANDING_PAGE = PartitionedTable(
    table="ingest_landing_page",
    column="received_at",
    primary_key=("id", "received_at"),
    unique=(),
    indexes=(
        ("ingest_landing_page_from", "(source, stream, upstream_from)"),
        ("ingest_landing_page_until", "(source, stream, upstream_until)"),
        ("ingest_landing_page_run", "USING brin (run_id) WITH (autosummarize = on)"),
    ),
)

# Tables of the layers above ingest (marts: the wallet ledger) join from their AppConfig.ready:
# maintenance lives here, but ingest never imports those layers.
_registered: list[PartitionedTable] = []


def partitioned_table_register(spec: PartitionedTable) -> None:
    if spec not in _registered:
        _registered.append(spec)


def partitioned_tables() -> tuple[PartitionedTable, ...]:
    """Every table kept in monthly partitions: ingest's own, then the registered ones."""
    return (TRADE_FILL, LANDING_PAGE, *_registered)


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def month_after(month: datetime, months: int = 1) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None for the default partition
    upper: datetime | None
    rows_estimate: int


_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def is_partitioned(spec: PartitionedTable) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [spec.table])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partitions_list(spec: PartitionedTable) -> list[Partition]:
    """The table's partitions, oldest month first, the default partition last."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0)::bigint
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass(%s)
            """,
            [spec.table],
        )
        rows = cursor.fetchall()
    found: list[Partition] = []
    for name, bound, estimate in rows:
        match = _BOUND.search(bound or "")
        if match:
            lower, upper = (datetime.fromisoformat(value).astimezone(UTC) for value in match.groups())
            found.append(Partition(name, lower, upper, estimate))
        else:
            found.append(Partition(name, None, None, estimate))
    return sorted(found, key=lambda p: (p.lower is None, p.lower or datetime.min.replace(tzinfo=UTC)))


def default_partition_rows(spec: PartitionedTable) -> int:
    """Rows parked in the default partition: each one means its month had no partition. A count
    over the default partition only, which maintenance keeps empty."""
    if not is_partitioned(spec):
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{spec.default_partition}"')  # noqa: S608 - name from the spec
        return cursor.fetchone()[0]


def partitions_maintain(*, now: datetime | None = None) -> dict[str, list[str]]:
    """Create each partitioned table's partitions from this month to `months_ahead` months ahead,
    and one for every month that has rows parked in its default partition (moving them in); then
    apply the landing's retention. Idempotent; returns the partitions created, per table (and
    under `retention_removed` the landing partitions retention took away)."""
    now = now or timezone.now()
    created: dict[str, list[str]] = {}
    for spec in partitioned_tables():
        if not is_partitioned(spec):
            continue
        existing = {p.lower for p in partitions_list(spec) if p.lower is not None}
        wanted = {month_after(month_start(now), offset) for offset in range(spec.months_ahead + 1)}
        wanted |= set(_parked_months(spec))
        made = []
        for month in sorted(wanted - existing):
            _partition_create(spec, month)
            made.append(spec.partition_name(month))
        if made:
            logger.info("partitions created for %s: %s", spec.table, ", ".join(made))
        created[spec.table] = made
    expired = landing_retention_apply(now=now)
    if expired:
        created["retention_removed"] = expired
    return created


def landing_removed_overlapping(*, since: datetime, until: datetime) -> list:
    """The months of landed pages retention removed whose records' trade times reach into
    [since, until): what a replay of that window from the landing can no longer read."""
    from ingest.models import LandingRetention

    return list(LandingRetention.objects.filter(upstream_from__lt=until, upstream_until__gte=since)
                .order_by("received_from"))


def landing_retention_cutoff(*, now: datetime | None = None) -> datetime | None:
    """Landed pages received before this moment are not kept (LANDING_RETENTION_DAYS; None when
    retention is off). Whole months go: a month leaves once all of it is past the cutoff."""
    days = int(settings.LANDING_RETENTION_DAYS)
    if days <= 0:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def landing_retention_apply(*, now: datetime | None = None) -> list[str]:
    """Detach the landing-page partitions whose month ended before the retention cutoff, then
    drop them (LANDING_RETENTION_ACTION=drop) or keep them as plain tables for an operator to
    export and drop (detach). The facts and ledger derived from them stay. Returns their names."""
    cutoff = landing_retention_cutoff(now=now)
    if cutoff is None or not is_partitioned(LANDING_PAGE):
        return []
    from ingest.models import LandingRetention

    expired = [p for p in partitions_list(LANDING_PAGE) if p.upper is not None and p.upper <= cutoff]
    dropping = settings.LANDING_RETENTION_ACTION == "drop"
    for partition in expired:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f'SELECT count(*), coalesce(sum(record_count), 0), min(upstream_from), max(upstream_until) '  # noqa: S608
                f'FROM "{partition.name}"'
            )
            pages, records, upstream_from, upstream_until = cursor.fetchone()
            cursor.execute(f'ALTER TABLE "{LANDING_PAGE.table}" DETACH PARTITION "{partition.name}"')
            if dropping:
                cursor.execute(f'DROP TABLE "{partition.name}"')
            LandingRetention.objects.create(
                partition=partition.name, action="dropped" if dropping else "detached",
                received_from=partition.lower, received_until=partition.upper, upstream_from=upstream_from,
                upstream_until=upstream_until, pages=pages, records=records,
            )
        logger.info("landing pages received before %s: partition %s %s", partition.upper.date(), partition.name,
                    "dropped" if dropping else "detached (export it, then drop it)")
    return [partition.name for partition in expired]


def _parked_months(spec: PartitionedTable) -> list[datetime]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', {spec.column}, 'UTC') FROM \"{spec.default_partition}\""  # noqa: S608
        )
        return [month_start(row[0]) for row in cursor.fetchall()]


def partition_create_sql(spec: PartitionedTable, month: datetime) -> str:
    """DDL of one month's partition (no parameters: bulk loaders run it on their own connection)."""
    lower, upper = month.isoformat(), month_after(month).isoformat()
    return (f'CREATE TABLE IF NOT EXISTS "{spec.partition_name(month)}" PARTITION OF "{spec.table}" '
            f"FOR VALUES FROM ('{lower}') TO ('{upper}')")


def _partition_create(spec: PartitionedTable, month: datetime) -> None:
    """One month's partition. Rows of that month parked in the default partition move into it in
    the same transaction: PostgreSQL refuses a new partition while the default holds rows of its
    range."""
    name = spec.partition_name(month)
    bounds = [month.isoformat(), month_after(month).isoformat()]
    with transaction.atomic(), connection.cursor() as cursor:
        # Holds off inserts routed to the default partition (they take ROW EXCLUSIVE) until the
        # partition exists, so none lands in its range between the move and the attach.
        cursor.execute(f'LOCK TABLE "{spec.default_partition}" IN SHARE ROW EXCLUSIVE MODE')
        parked = f"parked_{name}"
        cursor.execute(
            f'CREATE TEMP TABLE "{parked}" ON COMMIT DROP AS SELECT * FROM "{spec.default_partition}" '  # noqa: S608
            f"WHERE {spec.column} >= %s AND {spec.column} < %s",
            bounds,
        )
        cursor.execute(
            f'DELETE FROM "{spec.default_partition}" WHERE {spec.column} >= %s AND {spec.column} < %s',  # noqa: S608
            bounds,
        )
        cursor.execute(partition_create_sql(spec, month))
        cursor.execute(f'INSERT INTO "{spec.table}" OVERRIDING SYSTEM VALUE SELECT * FROM "{parked}"')  # noqa: S608


# --- converting a single table into a partitioned one ------------------------------------------------


def _columns(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def _execute(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _months_holding_rows(table: str, column: str) -> list[datetime]:
    """The months in which `table` holds rows: one probe of the column's index per month that has
    any (the first row at or after the next month's start), never a scan of the rows."""
    months: list[datetime] = []
    query = f'SELECT min({column}) FROM "{table}" WHERE {column} >= %s'  # noqa: S608 - names from the spec
    found = _execute(query, [datetime(1970, 1, 1, tzinfo=UTC)])[0][0]
    while found is not None:
        months.append(month_start(found))
        found = _execute(query, [month_after(months[-1])])[0][0]
    return months


def table_partition_online(
    spec: PartitionedTable, *, batch_rows: int = 50_000, now: datetime | None = None,
    progress: Callable[[str], None] = logger.info,
) -> bool:
    """Turn `spec.table` (a plain table with a bigint identity `id`) into its partitioned form,
    rows and ids kept. Returns False when it already is partitioned.

    Must run outside a transaction (each step commits): the table stays readable and writable
    throughout; only the final swap takes an ACCESS EXCLUSIVE lock, for a catalogue change.
    """
    if connection.in_atomic_block:
        raise RuntimeError("table_partition_online commits as it goes: run it outside a transaction")
    if is_partitioned(spec):
        return False
    table, new = spec.table, f"{spec.table}__partitioned"
    columns = _columns(table)
    column_list = ", ".join(f'"{name}"' for name in columns)
    now = now or timezone.now()

    # 1. The partitioned twin, its indexes (temporary names until the swap) and its partitions:
    # every month that holds rows, this month to `months_ahead` ahead, and the default.
    with transaction.atomic():
        _execute(f'DROP TABLE IF EXISTS "{new}"')
        _execute(
            f'CREATE TABLE "{new}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS) '
            f"PARTITION BY RANGE ({spec.column})"
        )
        _execute(f'ALTER TABLE "{new}" ADD CONSTRAINT "{new}_pkey" PRIMARY KEY ({", ".join(spec.primary_key)})')
        for name, fields in spec.unique:
            _execute(f'ALTER TABLE "{new}" ADD CONSTRAINT "{name}__p" UNIQUE ({", ".join(fields)})')
        for name, definition in spec.indexes:
            _execute(f'CREATE INDEX "{name}__p" ON "{new}" {definition}')
        months = {month_after(month_start(now), offset) for offset in range(spec.months_ahead + 1)}
        months |= set(_months_holding_rows(table, spec.column))
        for month in sorted(months):
            _execute(
                f'CREATE TABLE "{spec.partition_name(month)}" PARTITION OF "{new}" FOR VALUES FROM (%s) TO (%s)',
                [month.isoformat(), month_after(month).isoformat()],
            )
        _execute(f'CREATE TABLE "{spec.default_partition}" PARTITION OF "{new}" DEFAULT')

    # 2. From now on every write to the old table is mirrored. Creating the trigger waits for the
    # writers in flight, so every row committed before it is visible to the batch copy below.
    mirror = f"{table}__mirror"
    key = " AND ".join(f'"{name}" = OLD."{name}"' for name in spec.primary_key)
    with transaction.atomic():
        _execute(
            f"""
            CREATE OR REPLACE FUNCTION "{mirror}"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    DELETE FROM "{new}" WHERE {key};
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO "{new}" OVERRIDING SYSTEM VALUE SELECT (NEW).* ON CONFLICT DO NOTHING;
                END IF;
                RETURN NULL;
            END $$
            """  # noqa: S608 - names from the spec, no input
        )
        _execute(
            f'CREATE TRIGGER "{mirror}" AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f'FOR EACH ROW EXECUTE FUNCTION "{mirror}"()'
        )
    top = _execute(f'SELECT coalesce(max(id), 0) FROM "{table}"')[0][0]  # noqa: S608

    # 3. Existing rows, in id batches, each its own transaction. A row the trigger already copied
    # (inserted or updated meanwhile) is kept as the trigger wrote it.
    copied, start = 0, 0
    while start < top:
        end = start + batch_rows
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{new}" OVERRIDING SYSTEM VALUE SELECT {column_list} FROM "{table}" '  # noqa: S608
                "WHERE id > %s AND id <= %s ON CONFLICT DO NOTHING",
                [start, end],
            )
            copied += max(cursor.rowcount, 0)
        start = end
        progress(f"{table}: {copied:,} rows copied into monthly partitions (ids up to {min(end, top):,} of {top:,})")

    # 4. The swap: a catalogue change under one short lock. The identity continues after the
    # highest id, so ids stay unique across the old rows and the new.
    with transaction.atomic():
        _execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        _execute(f'DROP TRIGGER "{mirror}" ON "{table}"')
        _execute(f'DROP FUNCTION "{mirror}"()')
        _execute(f'DROP TABLE "{table}"')
        _execute(f'ALTER TABLE "{new}" RENAME TO "{table}"')
        _execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{new}_pkey" TO "{table}_pkey"')
        for name, _ in spec.unique:
            _execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{name}__p" TO "{name}"')
        for name, _ in spec.indexes:
            _execute(f'ALTER INDEX "{name}__p" RENAME TO "{name}"')
        highest = _execute(f'SELECT coalesce(max(id), 0) FROM "{table}"')[0][0]  # noqa: S608
        _execute(f'ALTER TABLE "{table}" ALTER COLUMN id RESTART WITH {int(highest) + 1}')
    progress(f"{table}: partitioned by month on {spec.column}; {copied:,} rows copied")
    return True


def table_unpartition(spec: PartitionedTable) -> bool:
    """The reverse, for migrating back: one plain table with the single-table indexes. Not
    online (a downgrade is a maintenance operation); returns False when already plain."""
    if not is_partitioned(spec):
        return False
    table, plain = spec.table, f"{spec.table}__plain"
    with transaction.atomic():
        _execute(f'CREATE TABLE "{plain}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)')
        _execute(f'INSERT INTO "{plain}" OVERRIDING SYSTEM VALUE SELECT * FROM "{table}"')  # noqa: S608
        highest = _execute(f'SELECT coalesce(max(id), 0) FROM "{plain}"')[0][0]  # noqa: S608
        _execute(f'DROP TABLE "{table}" CASCADE')
        _execute(f'ALTER TABLE "{plain}" RENAME TO "{table}"')
        _execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY (id)')
        for name, fields in spec.unique:
            single = tuple(field for field in fields if field != spec.column)
            _execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" UNIQUE ({", ".join(single)})')
        for name, definition in spec.indexes:
            _execute(f'CREATE INDEX "{name}" ON "{table}" {definition}')
        _execute(f'ALTER TABLE "{table}" ALTER COLUMN id RESTART WITH {int(highest) + 1}')
    return True
