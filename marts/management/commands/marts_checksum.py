"""Print a checksum of the mart rows, to show that a recomputation or a replay changed nothing."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from marts.selectors import marts_checksum


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise CommandError(f"not an ISO-8601 time with a zone: {value!r}")
    return parsed


class Command(BaseCommand):
    help = "Checksum of marts (buckets, daily features, positions, snapshot facts), optionally per wallet / time window."

    def add_arguments(self, parser):
        parser.add_argument("--wallets", default="", help="comma-separated wallet ids")
        parser.add_argument("--since", default=None, help="ISO-8601, inclusive (bucket / day / last trade time)")
        parser.add_argument("--until", default=None, help="ISO-8601, exclusive")

    def handle(self, *args, **options):
        try:
            wallet_ids = [int(part) for part in options["wallets"].split(",") if part.strip()]
        except ValueError:
            raise CommandError("--wallets takes comma-separated integers") from None
        result = marts_checksum(wallet_ids=wallet_ids or None, since=_moment(options["since"]), until=_moment(options["until"]))
        for table, (rows, digest) in result.items():
            if table != "all":
                self.stdout.write(f"{table:<22} rows={rows:<9} sha256={digest}")
        rows, digest = result["all"]
        self.stdout.write(f"checksum {digest} rows={rows}")
