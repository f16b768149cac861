"""The wallet ledger's entries in monthly partitions by `occurred_at` (issue 16).

A ledger entry is one leg of one movement of a wallet, at the time the upstream says it happened;
a year of a busy market maker's activity is millions of them. Kept like the fills
(ingest.partitions): one partition per calendar month, a default partition for a month not
created yet (a history fetch from `start=1` reaching into 2021 parks its old legs there until the
hourly maintenance gives them their month), every unique key holding the partition column. A
wallet's entries are read and replaced as a set by the wallet key, which every partition indexes
(the key's leading column), so a wallet's recompute costs one index probe per month.
"""

from __future__ import annotations

from ingest.partitions import PartitionedTable

LEDGER_ENTRY = PartitionedTable(
    table="wallet_ledger_entry",
    column="occurred_at",
    primary_key=("id", "occurred_at"),
    # One (sequence, leg) per wallet has one time: the key with the time refuses what it refused alone.
    unique=(("wallet_ledger_entry_key", ("wallet_id", "sequence", "leg", "occurred_at")),),
    indexes=(),
)
