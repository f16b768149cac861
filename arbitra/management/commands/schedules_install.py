from django.core.management.base import BaseCommand

from arbitra.schedules import schedules_install


class Command(BaseCommand):
    help = "Create the periodic ingest/compute jobs in django-celery-beat (idempotent; keeps admin edits)."

    def handle(self, *args, **options):
        result = schedules_install()
        self.stdout.write(f"periodic jobs: {result['created']} created, {result['kept']} already present")
