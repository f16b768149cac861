"""What the landing holds for trade streams, for tests: the records of every landed page (and of
records landed one by one before pages existed), in landing order."""

from __future__ import annotations

from typing import Any

from ingest.frame import landing_page_records
from ingest.models import TRADE_LANDING_STREAMS, LandingPage, LandingRecord


def landed_trade_records(**filters: Any) -> list[tuple[str, str, Any]]:
    """(stream, idempotency_key, payload) of every landed trade record; `filters` select pages
    (e.g. run=…)."""
    legacy = [
        (record.stream, record.idempotency_key, record.payload)
        for record in LandingRecord.objects.filter(stream__in=TRADE_LANDING_STREAMS, source="data_api", **filters)
        .order_by("id")
    ]
    paged = [
        (page.stream, key, payload)
        for page in LandingPage.objects.filter(**filters).order_by("id")
        for key, payload in landing_page_records(page.body)
    ]
    return legacy + paged
