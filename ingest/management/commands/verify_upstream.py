import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ingest.verify import fills_completeness_check


class Command(BaseCommand):
    help = (
        "Compare stored fills with the ground truth an emulator publishes (GET /_truth/trades): "
        "prints missing and unexpected counts; exits non-zero unless both are zero."
    )

    def add_arguments(self, parser):
        parser.add_argument("--upstream", default=settings.POLYMARKET_DATA_API_URL, help="emulator base URL")
        parser.add_argument("--since", type=int, help="Unix seconds, inclusive")
        parser.add_argument("--until", type=int, help="Unix seconds, inclusive")

    def handle(self, *args, **options):
        report = fills_completeness_check(upstream_url=options["upstream"], since=options["since"], until=options["until"])
        self.stdout.write(json.dumps(report.as_dict(), indent=2))
        if not report.complete:
            raise CommandError(f"{report.missing} fills missing, {report.unexpected} unexpected")
