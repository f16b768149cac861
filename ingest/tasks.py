"""Celery tasks of the ingest queue, one per registered job: thin — name the job, run it, report the run."""

from __future__ import annotations

from celery import shared_task

from ingest.models import RunKind, RunStatus
from ingest.partitions import partitions_maintain
from ingest.registry import INGEST_JOBS, ingest_job_execute
from ingest.services import dead_letters_retry_run


def _make_job_task(job_name: str, task_name: str):
    @shared_task(name=task_name, bind=True)
    def run_job(self) -> dict:
        # Every failure mode (upstream down, bad rows, lock held) is recorded on the run row, not
        # raised: a retry here would only race the next beat tick. Redelivery after a killed
        # worker is safe because every write is idempotent and the cursor moves last.
        run = ingest_job_execute(job_name=job_name, kind=RunKind.SCHEDULED, task_id=self.request.id or "")
        return {"run_id": run.pk, "status": run.status, "stats": run.stats_json}

    return run_job


JOB_TASKS = {job_name: _make_job_task(job_name, job.task_name) for job_name, job in INGEST_JOBS.items()}


@shared_task(name="ingest.dead_letters.retry", bind=True, max_retries=60)
def retry_dead_letters(self, dead_letter_ids: list[int]) -> dict:
    run = dead_letters_retry_run(dead_letter_ids=dead_letter_ids, task_id=self.request.id or "")
    if run.status == RunStatus.SKIPPED_LOCKED:
        # Another retry run holds the lock (the admin queues big selections as several tasks):
        # this batch waits its turn instead of being dropped.
        raise self.retry(countdown=5)
    return {"run_id": run.pk, "status": run.status, "stats": run.stats_json}


@shared_task(name="ingest.partitions_maintain")
def maintain_partitions() -> dict:
    return partitions_maintain()
