import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ingest.verify import fills_completeness_check, live_feed_covered_until


class Command(BaseCommand):
    help = (
        "Compare stored fills with the ground truth an emulator publishes (GET /_truth/trades): "
        "prints missing and unexpected counts; exits non-zero unless both are zero."
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

    def handle(self, *args, **options):
        until = options["until"]
        if until is None and not options["everything"]:
            until = live_feed_covered_until()
            if until is not None:
                self.stderr.write(f"comparing fills published up to {until} (the live cursor; --everything for all)")
        report = fills_completeness_check(upstream_url=options["upstream"], since=options["since"], until=until)
        self.stdout.write(json.dumps(report.as_dict(), indent=2))
        if not report.complete:
            raise CommandError(f"{report.missing} fills missing, {report.unexpected} unexpected")
