"""Gaps of the v2 live feed close only when every read they rely on provably reached its floor, for
every market that could have traded in them — including markets first listed after the gap.
Sweeps resume where a bad read stopped them. Against the emulator over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from ingest.frame import gap_record
from ingest.http import SourceClient, UpstreamBadPayload
from ingest.models import IngestCursor, IngestGap, Market, RunStatus, TradeFill
from ingest.registry import ingest_job_execute
from ingest.verify import fills_completeness_check

pytestmark = pytest.mark.django_db(transaction=True)


def _window(upstream, start_offset: int, end_offset: int) -> tuple[datetime, datetime]:
    state = requests.get(f"{upstream.url}/_control/state", timeout=5).json()
    start = state["history_start"]
    return (datetime.fromtimestamp(start + start_offset, tz=UTC), datetime.fromtimestamp(start + end_offset, tz=UTC))


def _lose(since: datetime, until: datetime, *, market: Market | None = None) -> int:
    lost = TradeFill.objects.filter(traded_at__gte=since, traded_at__lt=until)
    if market is not None:
        lost = lost.filter(market=market)
    count = lost.count()
    lost.delete()
    return count


def test_a_gap_waits_for_a_market_crawl_newer_than_it_and_then_recovers_a_market_listed_after_it(emulator):
    with emulator(seed=31, scenario="steady,multi_fill", history_seconds=600) as upstream:
        ingest_job_execute(job_name="data_api.trades")
        since, until = _window(upstream, 60, 300)
        # A market Arbitra has never heard of: its fills in the window were never read, and no crawl
        # has listed it yet.
        busiest = Market.objects.filter(fills__traded_at__gte=since, fills__traded_at__lt=until).order_by("id").first()
        unknown_condition = busiest.condition_id
        lost = _lose(since, until)
        TradeFill.objects.filter(market=busiest).delete()
        busiest.delete()
        gap = gap_record(source="data_api", stream="trades", window_start=since, window_end=until, run=None,
                         detail={"reason": "test"})

        waiting = ingest_job_execute(job_name="data_api.gaps")
        assert waiting.status == RunStatus.PARTIAL
        assert waiting.stats_json["waiting_for_market_crawl"] is True
        gap.refresh_from_db()
        assert gap.status == IngestGap.Status.OPEN

        ingest_job_execute(job_name="gamma.markets")
        closing = ingest_job_execute(job_name="data_api.gaps")
        assert closing.status == RunStatus.SUCCEEDED, closing.error_text
        gap.refresh_from_db()
        assert gap.status == IngestGap.Status.CLOSED
        assert closing.stats_json["inserted"] >= lost
        assert Market.objects.get(condition_id=unknown_condition).fills.filter(
            traded_at__gte=since, traded_at__lt=until).exists()
        report = fills_completeness_check(upstream_url=upstream.url, until=int(until.timestamp()) - 1, feed="v2")
    assert report.missing == 0 and report.duplicated == 0, report.as_dict()


def test_a_bad_read_in_mid_sweep_resumes_where_it_stopped_instead_of_from_the_first_market(emulator, monkeypatch,
                                                                                          settings):
    settings.HTTP_MAX_ATTEMPTS = 1
    with emulator(seed=32, scenario="steady", history_seconds=600, market_count=60) as upstream:
        ingest_job_execute(job_name="gamma.markets")
        ingest_job_execute(job_name="data_api.trades")
        since, until = _window(upstream, 30, 200)
        _lose(since, until)
        gap_record(source="data_api", stream="trades", window_start=since, window_end=until, run=None,
                   detail={"reason": "test"})
        ingest_job_execute(job_name="gamma.markets")

        original = SourceClient.get_json
        calls = {"trades": 0}

        def cut_short_on_the_third_group(self, path, *, params=None, **decoding):
            if path == "/v2/trades":
                calls["trades"] += 1
                if calls["trades"] == 3:
                    raise UpstreamBadPayload(url=path, status=200, body_snippet='{"data": [', reason="invalid JSON")
            return original(self, path, params=params, **decoding)

        monkeypatch.setattr(SourceClient, "get_json", cut_short_on_the_third_group)
        stopped = ingest_job_execute(job_name="data_api.gaps")
        assert stopped.status == RunStatus.PARTIAL
        sweep = IngestCursor.objects.get(source="data_api", stream="gaps").state["sweep"]
        assert sweep["next_group"] >= 1, "the groups read before the bad body count"
        requests_before = calls["trades"]

        resumed = ingest_job_execute(job_name="data_api.gaps")
        assert resumed.status == RunStatus.SUCCEEDED, resumed.error_text
        groups = -(-len(sweep["conditions"]) // 20)
        assert calls["trades"] - requests_before < groups + 3, "the resumed sweep did not start over"
        assert IngestGap.objects.get().status == IngestGap.Status.CLOSED
        report = fills_completeness_check(upstream_url=upstream.url, until=int(until.timestamp()) - 1, feed="v2")
    assert report.missing == 0, report.as_dict()
