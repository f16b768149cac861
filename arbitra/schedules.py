"""The periodic jobs beat runs, created once in django-celery-beat's tables.

Operators change intervals or disable a job in the admin (Periodic tasks); `schedules_install`
only creates what is missing, so their edits survive every deploy.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arbitra.periodic import PeriodicJob


def periodic_jobs() -> list[PeriodicJob]:
    from marts.schedules import periodic_jobs as compute_jobs

    return [*_ingest_jobs(), *compute_jobs()]


def _ingest_jobs() -> list[PeriodicJob]:
    from ingest.registry import INGEST_JOBS

    return [
        *(
            PeriodicJob(job.task_name, job.task_name, job.job.every_seconds(), job.job.queue)
            for job in INGEST_JOBS.values()
        ),
        PeriodicJob("ingest.partitions_maintain", "ingest.partitions_maintain",
                    settings.PARTITIONS_MAINTAIN_INTERVAL_SECONDS, "ingest"),
        PeriodicJob("arbitra.heartbeat.ingest", "arbitra.heartbeat", 60, "ingest"),
        PeriodicJob("arbitra.heartbeat.compute", "arbitra.heartbeat", 60, "compute"),
    ]


def schedules_install(*, jobs: list[PeriodicJob] | None = None) -> dict[str, int]:
    """Create the periodic tasks that do not exist yet; leave existing ones as operators set them."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = kept = 0
    with transaction.atomic():
        for job in jobs or periodic_jobs():
            if PeriodicTask.objects.filter(name=job.name).exists():
                kept += 1
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(every=job.every_seconds, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.create(
                name=job.name,
                # Due at once: a fresh install starts pulling data on beat's first tick instead
                # of one interval later.
                last_run_at=timezone.now() - timedelta(seconds=job.every_seconds),
                task=job.task,
                interval=interval,
                queue=job.queue,
                # A queued copy older than its interval is stale: the next tick brings a fresh one.
                expire_seconds=max(job.every_seconds, 30),
                kwargs="{}",
            )
            created += 1
    return {"created": created, "kept": kept}
