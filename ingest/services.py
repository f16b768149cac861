"""Cross-source ingest services: dead-letter retries, dispatched to the source that met the row."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from ingest.frame import JobOutcome, JobRequest, job_run
from ingest.models import IngestDeadLetter, IngestRun, RunKind, RunStatus
from ingest.registry import dead_letter_retry_for


def dead_letters_retry(*, dead_letter_ids: Sequence[int], run: IngestRun | None = None) -> dict[str, int]:
    """Re-process dead letters through the same page code; resolved ones are stamped, others counted."""
    resolved = still_failing = 0
    for letter in IngestDeadLetter.objects.filter(pk__in=dead_letter_ids, resolved_at__isnull=True).order_by("pk"):
        retry = dead_letter_retry_for(letter.source)
        letter.retry_count += 1
        letter.last_retry_at = timezone.now()
        if retry is None:
            letter.error = f"no retry for {letter.source}.{letter.stream} rows: fix the source and re-poll it"
            letter.save(update_fields=["retry_count", "last_retry_at", "error"])
            still_failing += 1
            continue
        # Retry writes no new dead letter: the existing one carries the outcome.
        failing, reason = retry(run=run, rows=[letter.payload], stream=letter.stream)
        if failing == 0:
            letter.resolved_at = timezone.now()
            resolved += 1
        else:
            still_failing += 1
            letter.error = reason or letter.error
        letter.save(update_fields=["retry_count", "last_retry_at", "resolved_at", "error"])
    return {"resolved": resolved, "still_failing": still_failing}


DEAD_LETTER_RETRY_JOB = "ingest.dead_letters.retry"


def dead_letters_retry_run(*, dead_letter_ids: Sequence[int], task_id: str = "") -> IngestRun:
    """Retry dead letters as an ingest run of kind `retry`: the run row says who retried what and
    how it ended (`partial` while some still fail), and the landing records and facts the retry
    writes point at it. One retry run at a time (the job lock): a second gets `skipped_locked`."""
    ids = list(dead_letter_ids)

    def body(run: IngestRun) -> JobOutcome:
        outcome = dead_letters_retry(dead_letter_ids=ids, run=run)
        status = RunStatus.SUCCEEDED if outcome["still_failing"] == 0 else RunStatus.PARTIAL
        return JobOutcome(status=status, stats={"dead_letters": len(ids), **outcome})

    return job_run(JobRequest(job_name=DEAD_LETTER_RETRY_JOB, kind=RunKind.RETRY, task_id=task_id), body)

