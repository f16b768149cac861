"""`manage.py api_counters_recount`: recount the totals behind /stats/overview and list totals.

Triggers keep them current; only writes that bypass triggers (a bulk load run with
session_replication_role = replica, as benchmarks/seed_dataset.py does) need this afterwards.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from api.services import counters_recount


class Command(BaseCommand):
    help = "Recount the maintained API totals (wallets, markets, snapshots, trades, anomalies) from their tables."

    def handle(self, *args, **options):
        for name, total in counters_recount().items():
            self.stdout.write(f"{name:<18} {total:>14,}")
