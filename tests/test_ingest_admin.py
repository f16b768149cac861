"""The operators' admin: every ingest page loads, dead letters retry, manual events, read-only facts."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as redis_lib
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ingest.admin import LargeTablePaginator
from ingest.changes import CHANGED_WALLETS_KEY
from ingest.facts import EventDraft, offchain_events_upsert
from ingest.models import (
    IngestCursor,
    IngestDeadLetter,
    IngestGap,
    IngestRun,
    LandingPage,
    LandingRetention,
    Market,
    OffchainEvent,
    OffchainFeed,
    RunStatus,
    TradeFill,
    Wallet,
)
from ingest.sources.data_api.writing import trade_page_ingest
from ingest.sources.gamma.writing import market_page_ingest
from tests.landing import landed_trade_records
from tests.test_parsers import load_fixture

pytestmark = pytest.mark.django_db

# Other test sessions share the Redis server and flush the app database at will; these tests read
# back what they queued, so they get a database of their own.
PRIVATE_REDIS_DB = 9


@pytest.fixture
def private_redis(settings):
    parts = urlsplit(settings.REDIS_URL)
    settings.REDIS_URL = urlunsplit((parts.scheme, parts.netloc, f"/{PRIVATE_REDIS_DB}", "", ""))
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _trade_rows() -> list[dict]:
    """Five global-feed rows in the real shape, from the bundled emulator (no external files)."""
    from devtools.emulator import EmulatorConfig, World
    from devtools.emulator.world import VALID

    world = World(EmulatorConfig(seed=5, clock="manual", history_seconds=30))
    row_ids = [row_id for row_id, kind in world.truth_rows() if kind == VALID][:5]
    return [world.render_trade(row_id, real_context=False) for row_id in row_ids]


def _changelist(model) -> str:
    return reverse(f"admin:ingest_{model._meta.model_name}_changelist")


def _change(model, pk) -> str:
    return reverse(f"admin:ingest_{model._meta.model_name}_change", args=[pk])


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def seeded(private_redis):
    """A little of everything an operator looks at."""
    rows = _trade_rows()[:4]
    run = IngestRun.objects.create(job_name="ingest.data_api.trades", status=RunStatus.RUNNING)
    trade_page_ingest(run=run, rows=rows)
    malformed = {**rows[0], "size": "lots"}
    trade_page_ingest(run=run, rows=[malformed])
    newest = timezone.now() - timedelta(seconds=95)
    run.finish(
        status=RunStatus.SUCCEEDED,
        stats={"fetched": 5, "inserted": 4, "duplicates": 0, "dead_lettered": 1, "gaps": 1, "lag_seconds": 95.0,
               "newest_upstream_time": newest.isoformat(), "http": {"retries": 2}},
    )
    IngestRun.objects.create(
        job_name="ingest.gamma.markets", status=RunStatus.FAILED, ended_at=timezone.now(), error_text="HTTP 503\ntrace"
    )
    IngestCursor.objects.create(source="data_api", stream="trades", cursor_value="1787241322")
    IngestCursor.objects.create(source="gamma", stream="markets", cursor_value="full_crawl_done")
    gap = IngestGap.objects.create(
        source="data_api",
        stream="trades",
        window_start=timezone.now() - timedelta(minutes=30),
        window_end=timezone.now() - timedelta(minutes=20),
        found_by_run=run,
        detail={"reason": "offset_cap", "pages": 4},
    )
    market = Market.objects.order_by("id").first()
    feed = OffchainFeed.objects.create(name="Wire", url="https://news.example/rss", keywords=["Bitcoin"])
    feed.markets.add(market)
    offchain_events_upsert(
        drafts=[
            EventDraft(
                source=f"feed:{feed.pk}",
                source_event_id="entry-1",
                kind=OffchainEvent.Kind.FEED,
                event_time=timezone.now(),
                title="Bitcoin rallies",
                market_ids=[market.pk],
            )
        ]
    )
    # Records of other streams land one by one (LandingRecord): a Gamma market.
    market_page_ingest(run=None, rows=load_fixture("prediction-market-vol/gamma_markets.json")[:1])
    LandingRetention.objects.create(
        partition="ingest_landing_page_y2026m01", action="dropped", received_from=datetime(2026, 1, 1, tzinfo=UTC),
        received_until=datetime(2026, 2, 1, tzinfo=UTC), upstream_from=datetime(2025, 12, 30, tzinfo=UTC),
        upstream_until=datetime(2026, 1, 31, tzinfo=UTC), pages=12, records=11_500,
    )
    return {"run": run, "gap": gap, "market": market, "feed": feed, "rows": rows}


def test_every_ingest_page_loads_for_a_staff_user(admin_client, seeded):
    models = [model for model in admin.site._registry if model._meta.app_label == "ingest"]
    assert {model.__name__ for model in models} >= {
        "IngestRun", "IngestDeadLetter", "IngestGap", "IngestCursor", "OffchainFeed", "OffchainEvent", "Market",
        "Wallet", "TradeFill", "LandingRecord", "LandingPage",
    }
    for model in models:
        listing = admin_client.get(_changelist(model))
        assert listing.status_code == 200, model.__name__
        obj = model.objects.order_by("pk").first()
        assert obj is not None, model.__name__
        detail = admin_client.get(_change(model, obj.pk))
        assert detail.status_code == 200, model.__name__
    for model in (OffchainEvent, OffchainFeed):
        assert admin_client.get(reverse(f"admin:ingest_{model._meta.model_name}_add")).status_code == 200


def test_a_run_shows_its_stats_as_readable_json_and_its_duration(admin_client, seeded):
    response = admin_client.get(_change(IngestRun, seeded["run"].pk))
    body = response.content.decode()
    assert "<pre" in body
    assert "&quot;newest_upstream_time&quot;" in body
    assert "dead letters of this run" in body
    listing = admin_client.get(_changelist(IngestRun), {"job_name": "ingest.data_api.trades"})
    assert [run.job_name for run in listing.context["cl"].result_list] == ["ingest.data_api.trades"]
    assert "1 min 35 s" in listing.content.decode()  # the run's lag, human-readable


def test_the_health_page_shows_each_stream_its_cursor_lag_and_open_problems(admin_client, seeded):
    response = admin_client.get("/admin/ingest/health/")
    assert response.status_code == 200
    body = response.content.decode()
    for job in ("ingest.data_api.trades", "ingest.data_api.gaps", "ingest.gamma.markets", "ingest.offchain.feeds"):
        assert job in body
    assert "2026-08-20 15:55:22 UTC" in body  # the trades cursor 1787241322 shown as a time
    assert "full_crawl_done" in body
    assert "1 min 3" in body  # lag ≈ 95 s, human-readable
    assert "/admin/ingest/ingestdeadletter/?state=open&amp;source=data_api&amp;stream=trades" in body
    assert "/admin/ingest/ingestgap/?source=data_api&amp;stream=trades&amp;status__exact=open" in body
    assert f"#{seeded['gap'].pk}" in body
    streams = {row["status"].job_name: row["status"] for row in response.context["streams"]}
    trades = streams["ingest.data_api.trades"]
    assert (trades.gaps_open, trades.dead_letters_open, trades.last_run_status) == (1, 1, RunStatus.SUCCEEDED)
    assert response.context["overview"]["dead_letters_open"] == 1
    assert len(response.context["recent_runs"]) == 2


def test_the_health_page_is_linked_from_the_admin_index_and_closed_to_non_staff(admin_client, client, seeded):
    assert "/admin/ingest/health/" in admin_client.get("/admin/").content.decode()
    user = get_user_model().objects.create_user("visitor", password="pw-visitor-1")
    client.force_login(user)
    response = client.get("/admin/ingest/health/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_retrying_a_fixed_dead_letter_resolves_it_and_stores_the_fill(admin_client, private_redis):
    valid = _trade_rows()[0]
    trade_page_ingest(run=None, rows=[{**valid, "price": "not-a-price"}])
    letter = IngestDeadLetter.objects.get()
    assert "price" in letter.error
    assert not TradeFill.objects.filter(transaction_hash=valid["transactionHash"]).exists()
    # An operator (or a parser fix) corrects the payload; the retry runs it through the page code.
    IngestDeadLetter.objects.filter(pk=letter.pk).update(payload=valid)

    response = admin_client.post(
        _changelist(IngestDeadLetter), {"action": "retry_selected", "_selected_action": [letter.pk]}, follow=True
    )

    letter.refresh_from_db()
    assert letter.resolved_at is not None
    assert letter.retry_count == 1
    fill = TradeFill.objects.get(transaction_hash=valid["transactionHash"])
    assert fill.wallet.address == valid["proxyWallet"]
    # The retry is a run of its own: kind, outcome and the landed page it wrote point at it.
    run = IngestRun.objects.get(kind="retry")
    assert (run.job_name, run.status) == ("ingest.dead_letters.retry", "succeeded")
    assert run.stats_json == {"dead_letters": 1, "resolved": 1, "still_failing": 0}
    assert [key for _, key, _ in landed_trade_records(run=run)] == [fill.idempotency_key]
    assert f"Retried 1 dead letter(s): 1 resolved, 0 still failing. (run #{run.pk})" in _messages(response)


@contextlib.contextmanager
def _retry_lock_held_by_another_session():
    """The dead-letter retry job's lock, held by a second session (advisory locks are per session)."""
    from ingest.frame import job_lock_key
    from ingest.services import DEAD_LETTER_RETRY_JOB

    other = connection.copy()
    key = job_lock_key(DEAD_LETTER_RETRY_JOB)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        yield
        # Released by a statement, not by closing: a closed session's backend drops its locks
        # only once it has exited, which on a loaded machine came after the next acquire (CI).
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    finally:
        other.close()


def test_a_retry_while_another_retry_runs_says_so_and_touches_nothing(admin_client, private_redis):
    from ingest.frame import job_lock
    from ingest.services import DEAD_LETTER_RETRY_JOB

    valid = _trade_rows()[0]
    trade_page_ingest(run=None, rows=[{**valid, "price": "not-a-price"}])
    letter = IngestDeadLetter.objects.get()
    IngestDeadLetter.objects.filter(pk=letter.pk).update(payload=valid)
    with _retry_lock_held_by_another_session():
        response = admin_client.post(
            _changelist(IngestDeadLetter), {"action": "retry_selected", "_selected_action": [letter.pk]}, follow=True
        )
    letter.refresh_from_db()
    assert letter.resolved_at is None and letter.retry_count == 0
    assert IngestRun.objects.get(kind="retry").status == "skipped_locked"
    assert "Another dead-letter retry is running; try again when it has finished." in _messages(response)
    with job_lock(DEAD_LETTER_RETRY_JOB) as acquired:  # the other session let go
        assert acquired


def test_a_dead_letter_that_still_fails_stays_open_and_counts_the_retry(admin_client, private_redis):
    trade_page_ingest(run=None, rows=[{**_trade_rows()[0], "side": "HOLD"}])
    letter = IngestDeadLetter.objects.get()

    response = admin_client.post(
        reverse("admin:ingest_ingestdeadletter_retry", args=[letter.pk]), follow=True
    )

    letter.refresh_from_db()
    assert letter.resolved_at is None
    assert letter.retry_count == 1
    assert letter.last_retry_at is not None
    assert any(m.startswith("Retried 1 dead letter(s): 0 resolved, 1 still failing.") for m in _messages(response))
    assert IngestRun.objects.get(kind="retry").status == "partial"
    assert TradeFill.objects.count() == 0


def test_a_dead_letter_detail_shows_its_payload_as_received_and_offers_a_retry(admin_client, private_redis):
    trade_page_ingest(run=None, rows=[{**_trade_rows()[0], "size": "lots"}])
    letter = IngestDeadLetter.objects.get()
    body = admin_client.get(_change(IngestDeadLetter, letter.pk)).content.decode()
    assert "&quot;size&quot;: &quot;lots&quot;" in body
    assert "Retry now" in body
    assert 'name="_save"' not in body  # the payload stays as received


def test_a_manual_event_added_in_the_admin_is_stored_once_and_queues_the_traders_of_its_markets(
    admin_client, private_redis
):
    rows = _trade_rows()[:2]
    trade_page_ingest(run=None, rows=rows, queue_changes=False)
    traded = Market.objects.get(condition_id=rows[0]["conditionId"])
    other = Market.objects.get(condition_id=rows[1]["conditionId"])
    trader = Wallet.objects.get(address=rows[0]["proxyWallet"])
    traded_at = datetime.fromtimestamp(rows[0]["timestamp"], tz=UTC)
    published = traded_at + timedelta(hours=1)

    response = admin_client.post(
        reverse("admin:ingest_offchainevent_add"),
        {
            "title": "Exchange halts withdrawals",
            "event_time_0": published.strftime("%Y-%m-%d"),
            "event_time_1": published.strftime("%H:%M:%S"),
            "url": "https://news.example/halt",
            "summary": "",
            "source_event_id": "",
            "markets": [traded.pk, other.pk],
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    event = OffchainEvent.objects.get()
    assert (event.source, event.kind, event.title) == ("manual", OffchainEvent.Kind.MANUAL, "Exchange halts withdrawals")
    assert len(event.source_event_id) == 32  # generated uuid
    assert event.event_time == published
    assert event.payload["added_by"] == "admin"
    assert set(event.markets.values_list("pk", flat=True)) == {traded.pk, other.pk}
    assert private_redis.zscore(CHANGED_WALLETS_KEY, str(trader.pk)) is not None

    again = admin_client.post(
        reverse("admin:ingest_offchainevent_add"),
        {
            "title": "Same again",
            "event_time_0": published.strftime("%Y-%m-%d"),
            "event_time_1": published.strftime("%H:%M:%S"),
            "source_event_id": event.source_event_id,
        },
    )
    assert again.status_code == 200
    assert "exists already" in again.content.decode()
    assert OffchainEvent.objects.count() == 1


def test_trade_fills_are_read_only_in_the_admin(admin_client, private_redis):
    trade_page_ingest(run=None, rows=_trade_rows()[:1])
    fill = TradeFill.objects.get()
    assert admin_client.get(reverse("admin:ingest_tradefill_add")).status_code == 403
    detail = admin_client.get(_change(TradeFill, fill.pk))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.post(_change(TradeFill, fill.pk), {"size": "1"}).status_code == 403
    assert admin_client.post(reverse("admin:ingest_tradefill_delete", args=[fill.pk])).status_code == 403
    listing = admin_client.get(_changelist(TradeFill))
    assert "delete_selected" not in listing.content.decode()
    fill.refresh_from_db()
    assert fill.size != 1


def test_trade_fills_are_found_by_wallet_transaction_hash_or_key(admin_client, private_redis):
    rows = _trade_rows()[:3]
    trade_page_ingest(run=None, rows=rows)
    fill = TradeFill.objects.select_related("wallet").filter(transaction_hash=rows[0]["transactionHash"].lower()).first()
    for term in (fill.wallet.address.upper().replace("0X", "0x"), fill.transaction_hash, fill.idempotency_key):
        found = admin_client.get(_changelist(TradeFill), {"q": term}).context["cl"].result_list
        assert fill in list(found), term
    assert list(admin_client.get(_changelist(TradeFill), {"q": "bitcoin"}).context["cl"].result_list) == []
    pages = admin_client.get(_changelist(LandingPage), {"q": fill.idempotency_key}).context["cl"].result_list
    assert len(pages) == 1
    page = admin_client.get(reverse("admin:ingest_landingpage_change", args=[pages[0].pk]))
    assert page.status_code == 200 and fill.idempotency_key in page.content.decode()


def _counts_fills(sql: str) -> bool:
    return "COUNT(*)" in sql.upper() and 'FROM "trade_fill"' in sql


def test_the_trade_list_never_counts_the_whole_table(admin_client, private_redis, monkeypatch):
    trade_page_ingest(run=None, rows=_trade_rows())
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(_changelist(TradeFill)).status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if _counts_fills(q["sql"])]
    assert counts, "a small table is counted exactly"
    assert all("LIMIT" in sql.upper() for sql in counts), counts

    # Once the table is larger than the exact-count cap, the planner's estimate stands in.
    monkeypatch.setattr(LargeTablePaginator, "exact_count_cap", 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE trade_fill")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(_changelist(TradeFill))
    assert not [q["sql"] for q in queries.captured_queries if _counts_fills(q["sql"])]
    assert response.context["cl"].result_count == TradeFill.objects.count()


def test_the_gap_action_queues_the_backfill_job(admin_client, seeded, monkeypatch):
    from ingest.tasks import JOB_TASKS

    queued = []

    class _Result:
        id = "task-1"

    monkeypatch.setattr(JOB_TASKS["data_api.gaps"], "delay", lambda *args: queued.append(args) or _Result())
    response = admin_client.post(
        _changelist(IngestGap), {"action": "queue_gap_backfill", "_selected_action": [seeded["gap"].pk]}, follow=True
    )
    assert queued == [()]
    assert any("Queued ingest.data_api.gaps (task task-1)" in text for text in _messages(response))


def test_a_feed_takes_keywords_as_text_and_can_be_polled_now(admin_client, seeded, monkeypatch):
    from ingest.tasks import JOB_TASKS

    feed, market = seeded["feed"], seeded["market"]
    response = admin_client.post(
        _change(OffchainFeed, feed.pk),
        {
            "name": "Wire",
            "url": "https://news.example/rss",
            "enabled": "on",
            "keywords": "Bitcoin, ETF\nhalving, ETF",
            "tags": "",
            "match_named_terms": "on",
            "markets": [market.pk],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    feed.refresh_from_db()
    assert feed.keywords == ["Bitcoin", "ETF", "halving"]
    assert feed.tags == []

    queued = []

    class _Result:
        id = "task-2"

    monkeypatch.setattr(JOB_TASKS["offchain.feeds"], "delay", lambda *args: queued.append(args) or _Result())
    admin_client.post(_changelist(OffchainFeed), {"action": "poll_now", "_selected_action": [feed.pk]})
    assert queued == [()]


def test_a_timestamp_cursor_can_be_edited_but_only_to_whole_seconds(admin_client, seeded):
    cursor = IngestCursor.objects.get(source="data_api", stream="trades")
    page = admin_client.get(_change(IngestCursor, cursor.pk)).content.decode()
    assert "Changes what the next run reads" in page
    rejected = admin_client.post(_change(IngestCursor, cursor.pk), {"cursor_value": "yesterday"})
    assert rejected.status_code == 200
    assert "Unix timestamp" in rejected.content.decode()
    accepted = admin_client.post(_change(IngestCursor, cursor.pk), {"cursor_value": "1787240000"})
    assert accepted.status_code == 302
    cursor.refresh_from_db()
    assert cursor.cursor_value == "1787240000"


def test_only_the_tracked_flag_of_a_wallet_is_editable(admin_client, seeded):
    wallet = Wallet.objects.order_by("pk").first()
    original = copy.copy(wallet)
    response = admin_client.post(_change(Wallet, wallet.pk), {"tracked": "on", "pseudonym": "renamed"})
    assert response.status_code == 302
    wallet.refresh_from_db()
    assert wallet.tracked is True
    assert wallet.pseudonym == original.pseudonym


def test_the_health_page_still_renders_when_redis_is_down(admin_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = admin_client.get("/admin/ingest/health/")
    assert response.status_code == 200
    assert "Redis unreachable" in response.content.decode()


def test_the_retry_task_records_a_run_and_waits_its_turn_while_another_retry_runs(private_redis, monkeypatch):
    from celery.exceptions import Retry

    from ingest.tasks import retry_dead_letters

    scheduled: list[int] = []

    def retry_later(countdown: int, **_options):
        scheduled.append(countdown)
        return Retry(when=countdown)

    # Celery's own retry in eager mode re-runs the task at once; the worker would wait `countdown`.
    monkeypatch.setattr(retry_dead_letters, "retry", retry_later)

    valid = _trade_rows()[0]
    trade_page_ingest(run=None, rows=[{**valid, "price": "not-a-price"}])
    letter = IngestDeadLetter.objects.get()
    IngestDeadLetter.objects.filter(pk=letter.pk).update(payload=valid)
    with _retry_lock_held_by_another_session(), pytest.raises(Retry):
        retry_dead_letters.run([letter.pk])
    assert scheduled == [5]
    letter.refresh_from_db()
    assert letter.resolved_at is None

    done = retry_dead_letters.run([letter.pk])
    assert done["status"] == "succeeded" and done["stats"]["resolved"] == 1
    assert IngestRun.objects.get(pk=done["run_id"]).kind == "retry"
    letter.refresh_from_db()
    assert letter.resolved_at is not None
