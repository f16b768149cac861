import json

from django.core.management.base import BaseCommand, CommandError

from ingest.models import RunKind, RunStatus
from ingest.registry import INGEST_JOBS, ingest_job_execute


class Command(BaseCommand):
    help = "Run one pass of an ingest job synchronously (same code as the Celery task); print the run as JSON."

    def add_arguments(self, parser):
        parser.add_argument("job", choices=sorted(INGEST_JOBS), help="job name, e.g. data_api.trades")
        parser.add_argument("--once", action="store_true", help="one pass (the only mode; kept for clarity)")

    def handle(self, *args, **options):
        run = ingest_job_execute(job_name=options["job"], kind=RunKind.SCHEDULED)
        summary = {
            "run_id": run.pk,
            "job": run.job_name,
            "status": run.status,
            "duration_seconds": run.duration_seconds,
            "stats": run.stats_json,
            "error": run.error_text.splitlines()[0] if run.error_text else "",
        }
        self.stdout.write(json.dumps(summary, default=str))
        if run.status in {RunStatus.FAILED, RunStatus.CIRCUIT_OPEN}:
            raise CommandError(f"run {run.pk} ended {run.status}")
