"""The contract every upstream source meets: one package under ingest/sources/<name>/.

A source declares what it knows about its upstream — how to build its HTTP client, its jobs
(each one stream: a body that pages the upstream through the ingest frame), its replay targets
and how to retry its dead letters — and nothing else. `ingest.registry` holds the ONE list of
sources; the Celery tasks, beat schedules, `manage.py ingest`, replay targets, dead-letter
retries, metrics and the health page are all derived from it. Adding a source is adding its
package and one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.frame import JobOutcome, PageResult
from ingest.http import SourceClient
from ingest.models import IngestRun

JobBody = Callable[..., JobOutcome]  # (*, run: IngestRun, client: SourceClient) -> JobOutcome
ReplayBody = Callable[..., PageResult]  # (run, *, since, until, from_landing, dry_run, progress) -> PageResult
DeadLetterRetry = Callable[..., tuple[int, str]]  # (*, run, rows, stream) -> (still failing, last reason)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Job:
    """One stream of a source, run as `ingest.<source>.<stream>` by beat, Celery and `manage.py ingest`."""

    stream: str
    body: JobBody
    description: str
    # Read when the schedules are installed (settings may be overridden per deployment).
    every_seconds: Callable[[], int]
    queue: str = "ingest"


@dataclass(frozen=True)
class ReplayTarget:
    """A thing `manage.py replay <name>` can re-run over a half-open time window."""

    name: str
    body: ReplayBody
    description: str
    # Replays of facts re-queue the wallets with fills in the window so marts are recomputed.
    requeues_wallets: bool = False
    supports_upstream: bool = True
    # Its --from-landing reads landed pages, which LANDING_RETENTION_DAYS removes month by month.
    landing_retained: bool = False


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    client: Callable[[], SourceClient]
    jobs: tuple[Job, ...]
    replay_targets: tuple[ReplayTarget, ...] = ()
    dead_letter_retry: DeadLetterRetry | None = None
    # Hosts this source talks to, for the health page ("gamma-api.polymarket.com: HTTP 503 …").
    hosts: Callable[[], list[str]] = field(default=lambda: [])

    def job_name(self, job: Job) -> str:
        return f"{self.name}.{job.stream}"


@dataclass(frozen=True)
class RegisteredJob:
    """A job with the source it belongs to, as the registry hands it out."""

    name: str  # "<source>.<stream>"
    source: Source
    job: Job

    @property
    def task_name(self) -> str:
        return f"ingest.{self.name}"

    @property
    def description(self) -> str:
        return self.job.description

    def execute(self, run: IngestRun) -> JobOutcome:
        client = self.source.client()
        try:
            return self.job.body(run=run, client=client)
        finally:
            client.close()
