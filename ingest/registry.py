"""Every ingest job by name: what it runs and which source client it uses.

Adding a source or stream is adding one entry here (plus its module under ingest/sources/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ingest.clients import data_api_client, feed_client, gamma_client
from ingest.http import SourceClient
from ingest.jobs import JobOutcome, JobRequest, job_run
from ingest.models import IngestRun, RunKind
from ingest.sources.data_api import jobs as data_api
from ingest.sources.feeds import jobs as offchain
from ingest.sources.gamma import jobs as gamma


@dataclass(frozen=True)
class IngestJob:
    name: str
    body: Callable[..., JobOutcome]
    client_factory: Callable[[], SourceClient]
    description: str


INGEST_JOBS: dict[str, IngestJob] = {
    job.name: job
    for job in [
        IngestJob("data_api.trades", data_api.trades_live_ingest, data_api_client, "global trades feed, newest first"),
        IngestJob("data_api.gaps", data_api.trades_gap_backfill, data_api_client, "close gaps left by the offset cap"),
        IngestJob(
            "data_api.wallet_history", data_api.wallet_history_backfill, data_api_client, "history of newly seen wallets"
        ),
        IngestJob("gamma.markets", gamma.markets_sync, gamma_client, "markets: open refresh, closed crawl, stragglers"),
        IngestJob("gamma.pending_markets", gamma.pending_markets_fetch, gamma_client, "metadata of markets seen in trades"),
        IngestJob("offchain.feeds", offchain.feeds_poll, feed_client, "operator-registered RSS/Atom feeds"),
    ]
}


def ingest_job_execute(*, job_name: str, kind: str = RunKind.SCHEDULED, task_id: str = "") -> IngestRun:
    """Run one pass of a job under its lock; the run row records the outcome."""
    job = INGEST_JOBS[job_name]

    def body(run: IngestRun) -> JobOutcome:
        client = job.client_factory()
        try:
            return job.body(run=run, client=client)
        finally:
            client.close()

    return job_run(JobRequest(job_name=f"ingest.{job_name}", kind=kind, task_id=task_id), body)
