"""A trade page finds its markets, wallets and outcomes by probing each table's unique index, in the
custom and the generic plan a prepared statement may run, whatever the tables' statistics: written
as plain joins, they were planned as hashes of the whole wallet table on every page (13.7 ms a page
at 38,561 wallets, and linear in the wallets)."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from ingest.sources.data_api import writing

pytestmark = pytest.mark.django_db(transaction=True)

PROBED_TABLES = {"wallet", "market", "outcome_token"}


@pytest.fixture
def stored_tables():
    """Enough wallets and markets, analysed, that a hash of the table looks cheaper to the planner
    than a thousand probes; the page's stage as every page has it (a temporary table, no statistics)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO wallet (address, pseudonym, name, profile_image, tracked, created_at, updated_at) "
            "SELECT '0x' || lpad(to_hex(n), 40, '0'), '', '', '', false, now(), now() FROM generate_series(1, 3000) n"
        )
        cursor.execute(
            "INSERT INTO market (condition_id, gamma_id, question, slug, description, category, tags, event_slug, "
            "event_title, outcomes, outcome_prices, volume, liquidity, active, closed, archived, "
            "uma_resolution_status, is_void, metadata_status, created_at, updated_at) "
            "SELECT '0x' || lpad(to_hex(n), 64, '0'), '', '', '', '', '', '[]', '', '', '[]', '[]', 0, 0, true, "
            "false, false, '', false, 'pending', now(), now() FROM generate_series(1, 3000) n"
        )
        cursor.execute("ANALYZE wallet")
        cursor.execute("ANALYZE market")
        cursor.execute(writing._STAGE_TABLE_DDL)
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS ingest_fill_stage")


def plan_scans(statement: str, parameter_types: str = "", arguments: str = "") -> set[tuple[str, str]]:
    """(node type, table) of every scan in the plans PostgreSQL would run `statement` with, prepared:
    the custom plan of its first executions (made for the arguments) and the generic one it may
    keep after them."""
    scans: set[tuple[str, str]] = set()

    def walk(node: dict) -> None:
        if "Relation Name" in node:
            scans.add((node["Node Type"], node["Relation Name"]))
        for child in node.get("Plans", []):
            walk(child)

    with connection.cursor() as cursor:
        for mode in ("force_custom_plan", "force_generic_plan"):
            cursor.execute(f"SET plan_cache_mode = {mode}")
            cursor.execute(f"PREPARE page_statement {parameter_types} AS {statement}")
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE page_statement {arguments}")
            plan = cursor.fetchone()[0]
            cursor.execute("DEALLOCATE page_statement")
            walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
        cursor.execute("RESET plan_cache_mode")
    return scans


def whole_table_reads(scans: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(kind, table) for kind, table in scans if table in PROBED_TABLES and kind == "Seq Scan"}


ADDRESSES = "('{" + ",".join("0x" + f"{n:040x}" for n in range(2000, 3000)) + "}')"
CONDITIONS = "('{" + ",".join("0x" + f"{n:064x}" for n in range(2000, 3000)) + "}')"


def test_the_page_finds_its_ids_by_index_probes_in_the_plans(stored_tables):
    plain = plan_scans(
        "SELECT m.id, w.id, t.outcome FROM ingest_fill_stage s JOIN market m ON m.condition_id = s.condition_id "
        "JOIN wallet w ON w.address = s.wallet LEFT JOIN outcome_token t ON t.token_id = s.token"
    )
    assert whole_table_reads(plain), "control: written as plain joins, this plan reads whole tables"
    probed = plan_scans(f"SELECT m.id, w.id, t.outcome FROM ingest_fill_stage s {writing._PAGE_IDS}")  # noqa: S608
    assert not whole_table_reads(probed), probed
    assert {table for _, table in probed} >= PROBED_TABLES


@pytest.mark.parametrize(
    ("unknown", "column", "plain", "array"),
    [
        (writing._WALLET_UNKNOWN, "address",
         "NOT EXISTS (SELECT FROM wallet known WHERE known.address = page.address)", ADDRESSES),
        (writing._MARKET_UNKNOWN, "condition_id",
         "NOT EXISTS (SELECT FROM market known WHERE known.condition_id = page.condition_id)", CONDITIONS),
    ],
    ids=["wallets", "markets"],
)
def test_new_wallets_and_markets_are_told_apart_by_index_probes_in_the_plans(stored_tables, unknown, column, plain,
                                                                             array):
    def scans(condition: str) -> set[tuple[str, str]]:
        return plan_scans(f"SELECT page.{column} FROM unnest($1::text[]) AS page({column}) WHERE {condition}",  # noqa: S608
                                  "(text[])", array)

    assert whole_table_reads(scans(plain)), "control: written as a plain NOT EXISTS, this plan reads the whole table"
    assert not whole_table_reads(scans(unknown))
