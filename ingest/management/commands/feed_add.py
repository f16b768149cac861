from django.core.management.base import BaseCommand

from ingest.models import OffchainFeed


class Command(BaseCommand):
    help = "Register (or update) an RSS/Atom feed whose entries become off-chain events. Idempotent by URL."

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("--name", default="")
        parser.add_argument("--keyword", action="append", default=[], help="link entries mentioning it (repeatable)")
        parser.add_argument("--tag", action="append", default=[], help="link entries to markets with this tag")
        parser.add_argument("--no-named-terms", action="store_true", help="do not link by proper names in titles")

    def handle(self, *args, **options):
        feed, created = OffchainFeed.objects.update_or_create(
            url=options["url"],
            defaults={
                "name": options["name"] or options["url"],
                "keywords": options["keyword"],
                "tags": options["tag"],
                "match_named_terms": not options["no_named_terms"],
                "enabled": True,
            },
        )
        self.stdout.write(f"feed {'added' if created else 'updated'}: #{feed.pk} {feed.name} ({feed.url})")
