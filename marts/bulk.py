"""Bulk SQL plumbing of the compute path: binary reads, COPY writes and staged upserts.

Why not plain `cursor.execute` with array parameters: Django's psycopg cursor binds parameters on
the client and reads results as text, so every timestamp goes through a Python-level parser on
the way in and an adapter on the way out (~4 µs each, thousands per batch). Here reads ask
PostgreSQL for its binary format (decoded in C) and writes send COPY text formatted in one pass.
Both still run through Django's cursor wrappers, so query logging, execute wrappers and error
translation see them like any other statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal

import psycopg
from django.db import connection
from psycopg import pq

# Values are sent already rounded to the NUMERIC(…, 12) columns' scale, the way PostgreSQL rounds
# on input (half away from zero), so a value compares equal to the stored one exactly when
# storing it again would not change a byte.
SCALE_12 = Decimal("0.000000000001")
_ROUNDING = Context(prec=80, rounding=ROUND_HALF_UP)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def stored(value):
    """The value as a NUMERIC(…, 12) column would hold it (other types unchanged)."""
    if value.__class__ is Decimal:
        return value.quantize(SCALE_12, context=_ROUNDING)
    return value


def binary_cursor():
    """A Django-wrapped cursor whose results come back in PostgreSQL's binary format.

    Django's own cursor is a client-side-binding cursor, which can only read text.
    """
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    raw.format = pq.Format.BINARY
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def binary_rows(sql: str, params: Sequence) -> list[tuple]:
    with binary_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _tsv(value) -> str:
    if value is None:
        return "\\N"
    if value.__class__ is str:
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # Decimal, int, float, bool, date


def copy_text(rows: Iterable[Sequence]) -> str:
    return "".join("\t".join(map(_tsv, row)) + "\n" for row in rows)


def copy_rows(cursor, table: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """COPY rows in text format into `table` (a Django cursor: the COPY runs on its psycopg cursor).

    PostgreSQL rounds every NUMERIC to its column's scale the same way on every run.
    """
    if not rows:
        return
    quoted = ", ".join(f'"{column}"' for column in columns)  # "window" is a reserved word
    text = copy_text(rows)
    with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        copy.write(text)


def staged_upsert(
    *, table: str, columns: Sequence[str], key: Sequence[str], rows: Sequence[Sequence],
    extra_insert: dict[str, str] | None = None, only_if_distinct: bool = False,
) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE of many rows through a COPY into a temporary table.

    The stage lives per session (ON COMMIT DELETE ROWS empties it in place at commit), is created
    in the transaction that first needs it, and is emptied by the same statement that reads it,
    so two calls in one transaction cannot see each other's rows. `extra_insert` gives values of
    columns set only when a row is first inserted; `only_if_distinct` skips rows whose stored
    values would not change (no new tuple, no index entries, no WAL).
    """
    if not rows:
        return
    stage = f"stage_{table}"
    names = ", ".join(f'"{column}"' for column in columns)
    updates = ", ".join(f'"{column}" = EXCLUDED."{column}"' for column in columns if column not in key)
    extra = extra_insert or {}
    insert_columns = names + "".join(f', "{column}"' for column in extra)
    insert_values = names + "".join(f", {value}" for value in extra.values())
    distinct = ""
    if only_if_distinct:
        changed = [column for column in columns if column not in key]
        target = ", ".join(f't."{column}"' for column in changed)
        incoming = ", ".join(f'EXCLUDED."{column}"' for column in changed)
        distinct = f" WHERE ({target}) IS DISTINCT FROM ({incoming})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {names} FROM {table} WITH NO DATA"  # noqa: S608 - names are ours
        )
        copy_rows(cursor, stage, columns, rows)
        cursor.execute(
            f"WITH staged AS (DELETE FROM {stage} RETURNING {names}) "  # noqa: S608
            f"INSERT INTO {table} AS t ({insert_columns}) SELECT {insert_values} FROM staged "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}{distinct}"
        )
