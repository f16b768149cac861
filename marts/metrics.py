"""Prometheus families of the marts layer, contributed to /metrics from MartsConfig.ready."""

from __future__ import annotations

from ingest.metrics import MetricFamily
from marts.ledger_selectors import ledger_reconciliation_counts


def ledger_metric_families() -> list[MetricFamily]:
    """Wallet ledgers by reconciliation status with Polymarket's /v2/positions, and the share reconciled."""
    wallets = MetricFamily("arbitra_ledger_wallets", "gauge", "Wallet ledgers by reconciliation status.")
    share = MetricFamily(
        "arbitra_ledger_reconciled_ratio", "gauge", "Share of wallet ledgers reconciled with Polymarket (0-1)."
    )
    counts = ledger_reconciliation_counts()
    for status, count in sorted(counts.items()):
        wallets.add(count, status=status)
    total = sum(counts.values())
    share.add(counts.get("reconciled", 0) / total if total else 0)
    return [wallets, share]
