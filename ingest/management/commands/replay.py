import json
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from ingest.models import RunStatus
from ingest.registry import replay_targets
from ingest.replay import replay_window


def _utc(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"not an ISO-8601 time: {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Command(BaseCommand):
    help = (
        "Re-run the half-open window [--since, --until) of a source through the same idempotent upserts. "
        "Live cursors are never touched; affected wallets are re-queued for recompute."
    )

    def add_arguments(self, parser):
        parser.add_argument("target", choices=sorted(replay_targets()), help="what to replay (from the sources)")
        parser.add_argument("--since", required=True, type=_utc, help="ISO-8601, inclusive (UTC if no offset)")
        parser.add_argument("--until", required=True, type=_utc, help="ISO-8601, exclusive (UTC if no offset)")
        parser.add_argument("--from-landing", action="store_true", help="re-derive facts from landed payloads")
        parser.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")

    def handle(self, *args, **options):
        if options["since"] >= options["until"]:
            raise CommandError("--since must be before --until")
        run = replay_window(
            target=options["target"],
            since=options["since"],
            until=options["until"],
            from_landing=options["from_landing"],
            dry_run=options["dry_run"],
            progress=lambda message: self.stderr.write(f"replay: {message}"),
        )
        self.stdout.write(
            json.dumps({"run_id": run.pk, "status": run.status, "stats": run.stats_json,
                        "error": run.error_text.splitlines()[0] if run.error_text else ""}, default=str)
        )
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"replay run {run.pk} ended {run.status}")
