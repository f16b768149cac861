import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ingest.verify import fills_completeness_check, live_feed_covered_until, live_feed_last_read_at


class Command(BaseCommand):
    help = (
        "Compare stored fills with the ground truth an emulator publishes (GET /_truth/trades), as a multiset "
        "(identical fills of one transaction count once each): prints missing, duplicated and unexpected "
        "counts; exits non-zero unless all three are zero."
    )

    def add_arguments(self, parser):
        parser.add_argument("--upstream", default=settings.POLYMARKET_DATA_API_URL, help="emulator base URL")
        parser.add_argument("--since", type=int, help="Unix seconds, inclusive")
        parser.add_argument(
            "--until", type=int,
            help="Unix seconds, inclusive (default: the second before the live trades cursor — fills published "
                 "since the last poll are not missing yet)",
        )
        parser.add_argument("--everything", action="store_true", help="compare every published fill, up to now")
        parser.add_argument(
            "--feed", choices=("v1", "v2"), default="v2",
            help="whose view of the truth: v2 never serves fills under 0.01 shares nor before they are indexed, "
                 "v1 served all (default v2)",
        )

    def handle(self, *args, **options):
        until = options["until"]
        visible_by = None
        if until is None and not options["everything"]:
            until = live_feed_covered_until()
            # v2 indexes late: a fill that surfaced after the last live pass began is that pass's
            # successor's work, not a loss.
            visible_by = live_feed_last_read_at()
            if until is not None:
                self.stderr.write(f"comparing fills published up to {until} (the live cursor) and visible when the "
                                  "last live pass read the feed; --everything for all")
        report = fills_completeness_check(upstream_url=options["upstream"], since=options["since"], until=until,
                                          feed=options["feed"], visible_by=visible_by)
        self.stdout.write(json.dumps(report.as_dict(), indent=2))
        if not report.complete:
            raise CommandError(
                f"{report.missing} fills missing, {report.duplicated} duplicated, {report.unexpected} unexpected"
            )
