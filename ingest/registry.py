"""The ONE list of ingest sources, and everything derived from it.

Jobs (`manage.py ingest`), Celery tasks (ingest.tasks), beat schedules (arbitra.schedules),
replay targets (`manage.py replay`), dead-letter retries, metrics and the health page all read
this list. Adding a source is adding its package under ingest/sources/ and one line here.
"""

from __future__ import annotations

from ingest.frame import JobRequest, job_run
from ingest.models import IngestRun, RunKind
from ingest.sources.base import DeadLetterRetry, RegisteredJob, ReplayTarget, Source
from ingest.sources.data_api.source import SOURCE as DATA_API
from ingest.sources.feeds.source import SOURCE as FEEDS
from ingest.sources.gamma.source import SOURCE as GAMMA

SOURCES: tuple[Source, ...] = (DATA_API, GAMMA, FEEDS)


def _registered_jobs() -> dict[str, RegisteredJob]:
    jobs: dict[str, RegisteredJob] = {}
    for source in SOURCES:
        for job in source.jobs:
            name = source.job_name(job)
            if name in jobs:
                raise ValueError(f"two sources declare the job {name}")
            jobs[name] = RegisteredJob(name=name, source=source, job=job)
    return jobs


INGEST_JOBS: dict[str, RegisteredJob] = _registered_jobs()


def replay_targets() -> dict[str, ReplayTarget]:
    targets: dict[str, ReplayTarget] = {}
    for source in SOURCES:
        for target in source.replay_targets:
            if target.name in targets:
                raise ValueError(f"two sources declare the replay target {target.name}")
            targets[target.name] = target
    return targets


def dead_letter_retry_for(source_name: str) -> DeadLetterRetry | None:
    for source in SOURCES:
        if source.name == source_name:
            return source.dead_letter_retry
    return None


def source_named(source_name: str) -> Source | None:
    return next((source for source in SOURCES if source.name == source_name), None)


def ingest_job_execute(*, job_name: str, kind: str = RunKind.SCHEDULED, task_id: str = "") -> IngestRun:
    """Run one pass of a job under its lock; the run row records the outcome."""
    job = INGEST_JOBS[job_name]
    return job_run(JobRequest(job_name=job.task_name, kind=kind, task_id=task_id), job.execute)
