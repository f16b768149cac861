"""Operator surfaces of the ingest layer: runs, dead letters, gaps, cursors, feeds, facts, health page.

Kept thin: reads go through `ingest.selectors`, writes through the services (dead-letter retry,
off-chain event upsert) or by queueing the same Celery task beat would run. Runs, dead letters,
gaps and facts are records of what happened upstream, so they are read-only here; what an operator
may change is configuration (cursors, feeds, a wallet's `tracked` flag) and manual events.

The fill, landing and wallet tables grow to tens of millions of rows, so their changelists never
count the whole table (a planner estimate instead), offer no list filter that needs a DISTINCT
scan, and search by exact, indexed keys only.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from arbitra.health import supervised_processes
from ingest.facts import EventDraft, offchain_events_upsert
from ingest.models import (
    IngestCursor,
    IngestDeadLetter,
    IngestGap,
    IngestRun,
    LandingPage,
    LandingRecord,
    LandingRetention,
    Market,
    OffchainEvent,
    OffchainFeed,
    OutcomeToken,
    RunStatus,
    TradeFill,
    Wallet,
)
from ingest.selectors import (
    dead_letter_stream_lookup,
    dead_letters_injected_by_emulator,
    fills_outside_partitions,
    ingest_gaps_open,
    ingest_overview,
    ingest_run_job_names,
    ingest_runs_list,
    ingest_stream_status,
    landing_page_records_get,
    landing_pages_matching,
    landing_records_matching,
    landing_streams,
    table_rows_estimate,
    trade_fills_matching,
    upstream_outages,
    upstream_serving_status,
    wallets_matching,
)
from ingest.services import dead_letters_retry_run

MANUAL_EVENT_SOURCE = "manual"
# Above this many dead letters the retry goes to the ingest queue: a request retrying thousands of
# rows one by one would outlive the proxy's timeout and leave the operator guessing.
RETRY_SYNC_LIMIT = 200
RETRY_TASK_BATCH = 500
HEALTH_RECENT_RUNS = 20
HEALTH_OPEN_GAPS = 100

_STATUS_COLOURS = {
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.PARTIAL: "#b26a00",
    RunStatus.FAILED: "#c62828",
    RunStatus.ABANDONED: "#c62828",
    RunStatus.CIRCUIT_OPEN: "#ad1457",
    RunStatus.RUNNING: "#1565c0",
    RunStatus.SKIPPED_LOCKED: "#616161",
}
# Unix seconds between 2001 and 2100: a cursor in that range is shown as a time as well.
_UNIX_SECONDS_RANGE = (1_000_000_000, 4_102_444_800)


# --- presentation helpers -------------------------------------------------------------------------


def humanize_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    sign = "−" if seconds < 0 else ""
    value = abs(float(seconds))
    if value < 10:
        return f"{sign}{value:.1f} s"
    whole = int(value)
    if whole < 60:
        return f"{sign}{whole} s"
    if whole < 3600:
        return f"{sign}{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{sign}{whole // 3600} h {whole % 3600 // 60} min"
    return f"{sign}{whole // 86400} d {whole % 86400 // 3600} h"


def cursor_as_time(value: str | None) -> datetime | None:
    """The cursor as a UTC time when it is a Unix timestamp in seconds (the trades feed's cursor)."""
    if value and value.isdigit() and _UNIX_SECONDS_RANGE[0] <= int(value) <= _UNIX_SECONDS_RANGE[1]:
        return datetime.fromtimestamp(int(value), tz=UTC)
    return None


def status_badge(status: str | None) -> str:
    if not status:
        return "—"
    colour = _STATUS_COLOURS.get(status, "#616161")
    return format_html(
        '<span style="background:{};color:#fff;border-radius:3px;padding:1px 6px;white-space:nowrap">{}</span>',
        colour,
        status,
    )


def pretty_json(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre style="white-space:pre-wrap;margin:0;max-height:40em;overflow:auto">{}</pre>', text)


def preformatted(text: str) -> str:
    return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', text) if text else "—"


def _changelist_url(model: type, **params: Any) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _change_url(model: type, pk: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])


def _link(url: str, text: Any) -> str:
    return format_html('<a href="{}">{}</a>', url, text)


def _run_link(run_id: int | None) -> str:
    return _link(_change_url(IngestRun, run_id), f"#{run_id}") if run_id else "—"


# --- shared admin pieces --------------------------------------------------------------------------


class LargeTablePaginator(Paginator):
    """Never counts a whole large table.

    Unfiltered, the count is the planner's estimate (pg_class.reltuples): free, and close enough to
    size the page links. Filtered or small, it is an exact count bounded by a LIMIT, so a broad
    filter costs at most `exact_count_cap` index entries.
    """

    exact_count_cap = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = table_rows_estimate(table=queryset.model._meta.db_table)
            if estimate is not None and estimate > self.exact_count_cap:
                return estimate
        return queryset.order_by()[: self.exact_count_cap].count()


class LargeTableAdmin(admin.ModelAdmin):
    paginator = LargeTablePaginator
    show_full_result_count = False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened: viewable, never added, edited or deleted through the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Operational actions (retry, queue a job) need the model's change permission, although
        the rows themselves stay read-only."""
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")


def _queue_task(request: HttpRequest, task: Any, *args: Any) -> str | None:
    """Send a task to its queue; tell the operator (not a 500 page) when the broker is down."""
    try:
        return task.delay(*args).id
    except Exception as exc:  # kombu raises transport-specific errors
        messages.error(request, f"Could not queue {task.name}: the Celery broker did not accept it ({exc}).")
        return None


class JobNameFilter(admin.SimpleListFilter):
    """Job names from the registry and the last week's runs, not a DISTINCT over all run history."""

    title = "job"
    parameter_name = "job_name"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in ingest_run_job_names(since=timezone.now() - timedelta(days=7))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(job_name=self.value()) if self.value() else queryset


class DeadLetterStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("open", "open"), ("resolved", "resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


class LandingStreamFilter(admin.SimpleListFilter):
    title = "stream"
    parameter_name = "stream_of"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(f"{source}.{stream}", f"{source}.{stream}") for source, stream in landing_streams()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        source, _, stream = self.value().partition(".")
        return queryset.filter(source=source, stream=stream)


# --- runs, dead letters, gaps, cursors ------------------------------------------------------------


@admin.register(IngestRun)
class IngestRunAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = (
        "id", "job_name", "kind", "status_display", "started_at", "duration", "fetched", "inserted", "duplicates",
        "dead_lettered", "gaps", "lag",
    )
    list_display_links = ("id", "job_name")
    list_filter = (JobNameFilter, "status", "kind")
    fields = (
        "job_name", "kind", "status_display", "window_start", "window_end", "started_at", "ended_at", "duration",
        "task_id", "related", "stats", "error",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[IngestRun]:
        return ingest_runs_list()

    def _stat(self, run: IngestRun, key: str) -> Any:
        value = (run.stats_json or {}).get(key)
        return "—" if value is None else value

    @admin.display(description="status", ordering="status")
    def status_display(self, run: IngestRun) -> str:
        return status_badge(run.status)

    @admin.display(description="duration")
    def duration(self, run: IngestRun) -> str:
        if run.ended_at is None:
            return f"running for {humanize_seconds((timezone.now() - run.started_at).total_seconds())}"
        return humanize_seconds(run.duration_seconds)

    @admin.display(description="fetched")
    def fetched(self, run: IngestRun) -> Any:
        return self._stat(run, "fetched")

    @admin.display(description="inserted")
    def inserted(self, run: IngestRun) -> Any:
        return self._stat(run, "inserted")

    @admin.display(description="dupl.")
    def duplicates(self, run: IngestRun) -> Any:
        return self._stat(run, "duplicates")

    @admin.display(description="dead-lettered")
    def dead_lettered(self, run: IngestRun) -> Any:
        return self._stat(run, "dead_lettered")

    @admin.display(description="gaps")
    def gaps(self, run: IngestRun) -> Any:
        return self._stat(run, "gaps")

    @admin.display(description="lag")
    def lag(self, run: IngestRun) -> str:
        return humanize_seconds((run.stats_json or {}).get("lag_seconds"))

    @admin.display(description="stats")
    def stats(self, run: IngestRun) -> str:
        return pretty_json(run.stats_json)

    @admin.display(description="error")
    def error(self, run: IngestRun) -> str:
        return preformatted(run.error_text)

    @admin.display(description="related")
    def related(self, run: IngestRun) -> str:
        return format_html(
            "{} · {} · {} · {}",
            _link(_changelist_url(IngestDeadLetter, run=run.pk), "dead letters of this run"),
            _link(_changelist_url(IngestGap, found_by_run=run.pk), "gaps it found"),
            _link(_changelist_url(LandingPage, run=run.pk), "pages it landed"),
            _link(_changelist_url(LandingRecord, run=run.pk), "records it landed"),
        )


@admin.register(IngestDeadLetter)
class IngestDeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("id", "source", "stream", "created_at", "retry_count", "is_open", "last_retry_at", "error_excerpt")
    list_filter = (DeadLetterStateFilter, "source", "stream")
    search_fields = ("error",)
    search_help_text = "Words of the error message."
    fields = (
        "source", "stream", "run_link", "created_at", "retry_count", "last_retry_at", "resolved_at", "payload_key",
        "error_full", "payload_pretty",
    )
    readonly_fields = fields
    actions = ("retry_selected",)
    change_form_template = "admin/ingest/ingestdeadletter/change_form.html"

    @admin.display(description="open", boolean=True)
    def is_open(self, letter: IngestDeadLetter) -> bool:
        return letter.is_open

    @admin.display(description="error")
    def error_excerpt(self, letter: IngestDeadLetter) -> str:
        first_line = letter.error.splitlines()[0] if letter.error else ""
        return first_line if len(first_line) <= 120 else f"{first_line[:119]}…"

    @admin.display(description="error")
    def error_full(self, letter: IngestDeadLetter) -> str:
        return preformatted(letter.error)

    @admin.display(description="payload (as received)")
    def payload_pretty(self, letter: IngestDeadLetter) -> str:
        return pretty_json(letter.payload)

    @admin.display(description="run")
    def run_link(self, letter: IngestDeadLetter) -> str:
        return _run_link(letter.run_id)

    def _retry(self, request: HttpRequest, ids: list[int]) -> None:
        if not ids:
            messages.info(request, "Nothing to retry: the selected dead letters are already resolved.")
            return
        if len(ids) > RETRY_SYNC_LIMIT:
            from ingest.tasks import retry_dead_letters

            batches = [ids[i : i + RETRY_TASK_BATCH] for i in range(0, len(ids), RETRY_TASK_BATCH)]
            queued = sum(1 for batch in batches if _queue_task(request, retry_dead_letters, batch))
            if queued:
                messages.info(
                    request,
                    f"{len(ids)} dead letters queued for retry in {queued} task(s) on the ingest queue; "
                    "reload this list to see them resolve.",
                )
            return
        run = dead_letters_retry_run(dead_letter_ids=ids)
        if run.status == RunStatus.SKIPPED_LOCKED:
            messages.warning(request, "Another dead-letter retry is running; try again when it has finished.")
            return
        if run.status == RunStatus.FAILED:
            messages.error(request, f"The retry failed (run #{run.pk}): {run.error_text.splitlines()[0]}")
            return
        stats = run.stats_json
        level = messages.SUCCESS if run.status == RunStatus.SUCCEEDED else messages.WARNING
        messages.add_message(
            request,
            level,
            f"Retried {len(ids)} dead letter(s): {stats['resolved']} resolved, {stats['still_failing']} still failing."
            f" (run #{run.pk})",
        )

    @admin.action(description="Retry selected dead letters", permissions=["operate"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[IngestDeadLetter]) -> None:
        selected = queryset.count()
        ids = list(queryset.filter(resolved_at__isnull=True).order_by("pk").values_list("pk", flat=True))
        if selected > len(ids) and ids:
            messages.info(request, f"{selected - len(ids)} of the selected dead letters were already resolved.")
        self._retry(request, ids)

    def get_urls(self) -> list:
        retry = self.admin_site.admin_view(self.retry_one_view)
        return [path("<int:letter_id>/retry/", retry, name="ingest_ingestdeadletter_retry"), *super().get_urls()]

    def retry_one_view(self, request: HttpRequest, letter_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_operate_permission(request):
            raise PermissionDenied
        letter = get_object_or_404(IngestDeadLetter, pk=letter_id)
        self._retry(request, [letter.pk] if letter.is_open else [])
        return HttpResponseRedirect(_change_url(IngestDeadLetter, letter.pk))

    def render_change_form(self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any) -> Any:
        context["can_retry"] = self.has_operate_permission(request) and bool(
            context.get("original") and context["original"].is_open
        )
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(IngestGap)
class IngestGapAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "source", "stream", "window_start", "window_end", "window_length", "status", "attempts", "created_at",
        "closed_at", "found_by",
    )
    list_filter = ("status", "source", "stream")
    fields = (
        "source", "stream", "window_start", "window_end", "window_length", "status", "attempts", "created_at",
        "closed_at", "found_by", "closed_by", "detail_pretty",
    )
    readonly_fields = fields
    actions = ("queue_gap_backfill",)

    @admin.display(description="length")
    def window_length(self, gap: IngestGap) -> str:
        return humanize_seconds((gap.window_end - gap.window_start).total_seconds())

    @admin.display(description="found by run")
    def found_by(self, gap: IngestGap) -> str:
        return _run_link(gap.found_by_run_id)

    @admin.display(description="closed by run")
    def closed_by(self, gap: IngestGap) -> str:
        return _run_link(gap.closed_by_run_id)

    @admin.display(description="detail")
    def detail_pretty(self, gap: IngestGap) -> str:
        return pretty_json(gap.detail)

    @admin.action(description="Queue the gap backfill job now", permissions=["operate"])
    def queue_gap_backfill(self, request: HttpRequest, queryset: QuerySet[IngestGap]) -> None:
        from ingest.tasks import JOB_TASKS

        open_selected = queryset.filter(status=IngestGap.Status.OPEN).count()
        task_id = _queue_task(request, JOB_TASKS["data_api.gaps"])
        if task_id:
            messages.success(
                request,
                f"Queued ingest.data_api.gaps (task {task_id}); it works through the open gaps oldest first "
                f"({open_selected} of the selected are open). Its run appears under Ingest runs.",
            )


CURSOR_WARNING = (
    "⚠ Changes what the next run reads. Moving it forward makes the live feed skip everything in "
    "between — those records are then never fetched unless you run `manage.py replay` for the window. "
    "Moving it back re-reads (safe: duplicates are absorbed) but costs requests and can hit the offset "
    "cap, which records a gap. A run in progress writes its own value when it ends and may overwrite "
    "this edit. data_api.trades holds Unix seconds; empty means start over from the initial window."
)


class IngestCursorForm(forms.ModelForm):
    class Meta:
        model = IngestCursor
        fields = ["cursor_value"]
        help_texts = {"cursor_value": CURSOR_WARNING}

    def clean_cursor_value(self) -> str:
        value = (self.cleaned_data.get("cursor_value") or "").strip()
        # A timestamp cursor fed a non-number would fail every later run at int().
        if (self.instance.cursor_value or "").isdigit() and value and not value.isdigit():
            raise ValidationError("This cursor holds a Unix timestamp in whole seconds; enter one, or leave it empty.")
        return value


@admin.register(IngestCursor)
class IngestCursorAdmin(admin.ModelAdmin):
    form = IngestCursorForm
    list_display = ("job", "cursor_value", "cursor_time", "updated_at")
    fields = ("source", "stream", "cursor_value", "cursor_time", "updated_at")
    readonly_fields = ("source", "stream", "cursor_time", "updated_at")
    ordering = ("source", "stream")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs create their cursors on first run

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # emptying the value does the same, and leaves a history entry

    @admin.display(description="job", ordering="source")
    def job(self, cursor: IngestCursor) -> str:
        return cursor.job_name

    @admin.display(description="as UTC time")
    def cursor_time(self, cursor: IngestCursor) -> str:
        moment = cursor_as_time(cursor.cursor_value)
        return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "—"


# --- off-chain feeds and events -------------------------------------------------------------------


def _https_by_default(db_field: models.Field, **kwargs: Any) -> forms.Field | None:
    """URLs typed without a scheme mean https (Django 6's default; explicit now)."""
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class TermListField(forms.CharField):
    """A JSON list of terms edited as text: comma- or line-separated, trimmed, de-duplicated."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2, "cols": 80}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        terms = (term.strip() for term in re.split(r"[,\n]", text))
        return list(dict.fromkeys(term for term in terms if term))


class OffchainFeedForm(forms.ModelForm):
    keywords = TermListField(
        required=False,
        help_text="Comma-separated. An entry whose title or summary contains a keyword links to the open markets "
        "whose question contains it.",
    )
    tags = TermListField(
        required=False, help_text="Comma-separated. An entry mentioning a tag links to every open market carrying it."
    )

    class Meta:
        model = OffchainFeed
        fields = ["name", "url", "enabled", "keywords", "tags", "match_named_terms", "markets"]
        formfield_callback = _https_by_default


@admin.register(OffchainFeed)
class OffchainFeedAdmin(admin.ModelAdmin):
    form = OffchainFeedForm
    list_display = ("name", "url", "enabled", "rule", "market_count", "last_fetched_at")
    list_filter = ("enabled",)
    search_fields = ("name", "url")
    fields = (
        "name", "url", "enabled", "keywords", "tags", "match_named_terms", "markets", "last_fetched_at", "etag",
        "last_modified",
    )
    readonly_fields = ("last_fetched_at", "etag", "last_modified")
    autocomplete_fields = ("markets",)
    actions = ("poll_now",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request: HttpRequest) -> QuerySet[OffchainFeed]:
        return super().get_queryset(request).annotate(market_count=Count("markets"))

    @admin.display(description="explicit markets", ordering="market_count")
    def market_count(self, feed: OffchainFeed) -> int:
        return feed.market_count

    @admin.display(description="rule")
    def rule(self, feed: OffchainFeed) -> str:
        parts = []
        if feed.keywords:
            parts.append(f"keywords: {', '.join(feed.keywords)}")
        if feed.tags:
            parts.append(f"tags: {', '.join(feed.tags)}")
        if feed.match_named_terms:
            parts.append("named terms")
        return "; ".join(parts) or "—"

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ingest.change_offchainfeed")

    @admin.action(description="Poll feeds now", permissions=["operate"])
    def poll_now(self, request: HttpRequest, queryset: QuerySet[OffchainFeed]) -> None:
        from ingest.tasks import JOB_TASKS

        disabled = queryset.filter(enabled=False).count()
        task_id = _queue_task(request, JOB_TASKS["offchain.feeds"])
        if task_id:
            note = f" {disabled} of the selected feeds are disabled and will be skipped." if disabled else ""
            messages.success(request, f"Queued a poll of every enabled feed (task {task_id}).{note}")


class ManualEventForm(forms.ModelForm):
    """An event an operator learnt of elsewhere (a call, a filing): when it became public, and about what."""

    markets = forms.ModelMultipleChoiceField(
        queryset=Market.objects.all(),
        required=False,
        widget=AutocompleteSelectMultiple(OffchainEvent._meta.get_field("markets"), admin.site),
        help_text="Markets this information is about; the wallets that traded them are queued for recompute.",
    )

    class Meta:
        model = OffchainEvent
        fields = ["title", "event_time", "url", "summary", "source_event_id"]
        formfield_callback = _https_by_default
        help_texts = {
            "event_time": "When the information became public (UTC). Trades before it count as ahead of the news.",
            "source_event_id": "Optional reference of your own; a random id is generated when left empty.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source_event_id"].required = False

    def clean_source_event_id(self) -> str:
        value = (self.cleaned_data.get("source_event_id") or "").strip()
        if value and OffchainEvent.objects.filter(source=MANUAL_EVENT_SOURCE, source_event_id=value).exists():
            raise ValidationError("A manual event with this id exists already.")
        return value


@admin.register(OffchainEvent)
class OffchainEventAdmin(admin.ModelAdmin):
    list_display = ("title_short", "kind", "source", "event_time", "market_count", "created_at")
    list_filter = ("kind",)
    search_fields = ("title",)
    ordering = ("-event_time",)
    add_fields = ("title", "event_time", "url", "summary", "markets", "source_event_id")
    view_fields = (
        "title", "kind", "source", "source_event_id", "event_time", "url", "summary", "linked_markets",
        "payload_pretty", "created_at",
    )
    readonly_fields = ("linked_markets", "payload_pretty")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # Events are facts the edge metric is computed from: added (manual ones) but never edited
    # or deleted here, so a number already shown to users cannot silently change its basis.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[OffchainEvent]:
        return super().get_queryset(request).annotate(market_count=Count("markets"))

    def get_fields(self, request: HttpRequest, obj: OffchainEvent | None = None) -> tuple[str, ...]:
        return self.add_fields if obj is None else self.view_fields

    def get_form(self, request: HttpRequest, obj: OffchainEvent | None = None, change: bool = False, **kwargs: Any):
        if obj is None:
            # `markets` is the form's own field: the model's goes through OffchainEventMarket,
            # whose rows (with the event time) only the service writes.
            kwargs["form"] = ManualEventForm
            kwargs["fields"] = ManualEventForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: OffchainEvent, form: ManualEventForm, change: bool) -> None:
        """Manual events go through the same upsert as feed events, which queues the wallets that
        traded the linked markets; the admin only translates the form into a draft."""
        data = form.cleaned_data
        draft = EventDraft(
            source=MANUAL_EVENT_SOURCE,
            source_event_id=data["source_event_id"] or uuid.uuid4().hex,
            kind=OffchainEvent.Kind.MANUAL,
            event_time=data["event_time"],
            title=data["title"],
            url=data.get("url") or "",
            summary=data.get("summary") or "",
            payload={"added_by": request.user.get_username(), "via": "admin"},
            market_ids=[market.pk for market in data["markets"]],
        )
        if not offchain_events_upsert(drafts=[draft]):
            messages.warning(request, "An event with this id had just been stored; it was kept as it was.")
        stored = OffchainEvent.objects.get(source=draft.source, source_event_id=draft.source_event_id)
        # The admin logs and redirects to `obj`: make it the stored row.
        for name in ("pk", "source", "source_event_id", "kind", "created_at", "payload"):
            setattr(obj, name, getattr(stored, name))
        obj._state.adding = False
        obj._state.db = stored._state.db

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    @admin.display(description="title")
    def title_short(self, event: OffchainEvent) -> str:
        return event.title if len(event.title) <= 100 else f"{event.title[:99]}…"

    @admin.display(description="markets", ordering="market_count")
    def market_count(self, event: OffchainEvent) -> int:
        return event.market_count

    @admin.display(description="linked markets")
    def linked_markets(self, event: OffchainEvent) -> str:
        markets = event.markets.order_by("id")
        if not markets:
            return "—"
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a>', ((_change_url(Market, m.pk), m) for m in markets))

    @admin.display(description="payload")
    def payload_pretty(self, event: OffchainEvent) -> str:
        return pretty_json(event.payload)


# --- core facts -----------------------------------------------------------------------------------


class OutcomeTokenInline(admin.TabularInline):
    model = OutcomeToken
    fields = ("outcome_index", "outcome", "token_id", "latest_price")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Market)
class MarketAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ("question_short", "category", "closed", "resolution", "metadata_status", "volume", "end_date")
    list_filter = ("closed", "metadata_status", "category")
    search_fields = ("=condition_id", "question", "slug")
    search_help_text = "Condition id (exact), or words of the question or slug."
    ordering = ("-id",)
    inlines = (OutcomeTokenInline,)
    readonly_fields = ("trades",)

    @admin.display(description="question", ordering="question")
    def question_short(self, market: Market) -> str:
        text = market.question or market.condition_id
        return text if len(text) <= 100 else f"{text[:99]}…"

    @admin.display(description="resolution")
    def resolution(self, market: Market) -> str:
        if market.is_void:
            return "void"
        if market.winner_index is None:
            return "—"
        outcomes = market.outcomes or []
        return outcomes[market.winner_index] if market.winner_index < len(outcomes) else f"#{market.winner_index}"

    @admin.display(description="trades")
    def trades(self, market: Market) -> str:
        return _link(_changelist_url(TradeFill, market=market.pk), "fills of this market")


@admin.register(Wallet)
class WalletAdmin(LargeTableAdmin):
    list_display = ("address", "pseudonym", "name", "tracked", "first_trade_at", "last_trade_at", "history_backfilled_at")
    list_filter = ("tracked", ("history_backfilled_at", admin.EmptyFieldListFilter))
    search_fields = ("address",)  # the search itself is wallets_matching()
    search_help_text = "A full address (exact), or part of a pseudonym or name."
    ordering = ("-last_trade_at",)
    fields = (
        "address", "pseudonym", "name", "profile_image", "tracked", "first_trade_at", "last_trade_at",
        "history_backfilled_at", "history_before", "history_attempted_at", "created_at", "updated_at", "trades",
    )
    readonly_fields = tuple(name for name in fields if name != "tracked")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return wallets_matching(wallets=queryset, term=search_term), False

    @admin.display(description="trades")
    def trades(self, wallet: Wallet) -> str:
        return _link(_changelist_url(TradeFill, wallet=wallet.pk), "fills of this wallet")


@admin.register(TradeFill)
class TradeFillAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ("traded_at", "side", "size", "price", "usdc_size", "outcome", "wallet", "market", "transaction_hash")
    list_filter = ("side",)
    list_select_related = ("wallet", "market")
    search_fields = ("transaction_hash",)  # the search itself is trade_fills_matching()
    search_help_text = "A wallet address, a transaction hash or an idempotency key (exact)."
    ordering = ("-traded_at",)
    fields = (
        "traded_at", "side", "size", "price", "usdc_size", "outcome", "outcome_index", "wallet", "market", "token_id",
        "transaction_hash", "idempotency_key", "source", "ingested_at",
    )
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return trade_fills_matching(fills=queryset, term=search_term), False


@admin.register(LandingRecord)
class LandingRecordAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ("id", "source", "stream", "idempotency_key", "upstream_time", "received_at", "run_link")
    list_filter = (LandingStreamFilter,)
    search_fields = ("idempotency_key",)  # the search itself is landing_records_matching()
    search_help_text = "An idempotency key (exact)."
    ordering = ("-id",)
    fields = ("source", "stream", "idempotency_key", "upstream_time", "received_at", "run_link", "payload_pretty")
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return landing_records_matching(records=queryset, term=search_term), False

    @admin.display(description="run")
    def run_link(self, record: LandingRecord) -> str:
        return _run_link(record.run_id)

    @admin.display(description="payload (as received)")
    def payload_pretty(self, record: LandingRecord) -> str:
        return pretty_json(record.payload)


# A page's records shown on its admin page: enough to read one, not a megabyte of HTML.
LANDING_PAGE_RECORDS_SHOWN = 50


@admin.register(LandingPage)
class LandingPageAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ("id", "source", "stream", "record_count", "upstream_from", "upstream_until", "received_at",
                    "run_link")
    list_filter = ("source", "stream")
    search_fields = ("id",)  # the search itself is landing_pages_matching()
    search_help_text = "A trade's idempotency key (exact): the page that landed its record."
    ordering = ("-id",)
    fields = ("source", "stream", "record_count", "upstream_from", "upstream_until", "received_at", "run_link",
              "records_pretty")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("body")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        return landing_pages_matching(pages=queryset, term=search_term), False

    @admin.display(description="run")
    def run_link(self, page: LandingPage) -> str:
        return _run_link(page.run_id)

    @admin.display(description="records (as received, with the key each fill was stored under)")
    def records_pretty(self, page: LandingPage) -> str:
        records = landing_page_records_get(page_id=page.pk)
        shown = [{"idempotency_key": key, "record": payload} for key, payload in records[:LANDING_PAGE_RECORDS_SHOWN]]
        more = f"\n… and {len(records) - len(shown)} more" if len(records) > len(shown) else ""
        return format_html("{}{}", pretty_json(shown), more)


@admin.register(LandingRetention)
class LandingRetentionAdmin(ReadOnlyAdmin):
    list_display = ("partition", "action", "received_from", "received_until", "upstream_from", "upstream_until", "pages",
                    "records", "removed_at")
    ordering = ("-removed_at",)


# --- ingest health page ---------------------------------------------------------------------------


def _stream_rows() -> list[dict[str, Any]]:
    rows = []
    for stream in ingest_stream_status():
        letters_lookup = dead_letter_stream_lookup(source=stream.source, stream=stream.stream)
        rows.append(
            {
                "status": stream,
                "cursor_time": cursor_as_time(stream.cursor),
                "last_run_badge": status_badge(stream.last_run_status),
                "lag": humanize_seconds(stream.lag_seconds),
                "stored_age": humanize_seconds(stream.newest_stored_age_seconds),
                "runs_url": _changelist_url(IngestRun, job_name=stream.job_name),
                "gaps_url": _changelist_url(IngestGap, source=stream.source, stream=stream.stream, status__exact="open"),
                "dead_letters_url": _changelist_url(IngestDeadLetter, state="open", **letters_lookup),
            }
        )
    return rows


def _run_rows(runs: QuerySet[IngestRun]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        stats = run.stats_json or {}
        rows.append(
            {
                "run": run,
                "url": _change_url(IngestRun, run.pk),
                "badge": status_badge(run.status),
                "duration": humanize_seconds(run.duration_seconds) if run.ended_at else "running",
                "lag": humanize_seconds(stats.get("lag_seconds")),
                # A failed run's stats carry no counters: "—", not a misleading 0.
                "counts": {key: "—" if stats.get(key) is None else stats[key]
                           for key in ("fetched", "inserted", "duplicates", "dead_lettered")},
                "error": run.error_text.splitlines()[0][:160] if run.error_text else "",
            }
        )
    return rows


def ingest_health_view(request: HttpRequest) -> TemplateResponse:
    """Per stream: cursor, last run, last success, lag, open gaps and dead letters; then recent runs
    and open gaps. Everything comes from the selectors the metrics endpoint reads too."""
    overview = ingest_overview()
    gaps = list(ingest_gaps_open()[:HEALTH_OPEN_GAPS])
    context = {
        **admin.site.each_context(request),
        "title": "Ingest health",
        "overview": overview,
        "fills_outside_partitions": fills_outside_partitions(),
        "streams": _stream_rows(),
        "recent_runs": _run_rows(ingest_runs_list()[:HEALTH_RECENT_RUNS]),
        "open_gaps": [
            {
                "gap": gap,
                "url": _change_url(IngestGap, gap.pk),
                "length": humanize_seconds((gap.window_end - gap.window_start).total_seconds()),
                "found_by": _run_link(gap.found_by_run_id),
            }
            for gap in gaps
        ],
        "open_gaps_shown": len(gaps),
        "dead_letters_injected": dead_letters_injected_by_emulator(),
        "upstream_outages": upstream_outages(),
        "upstream_serving": upstream_serving_status(),
        "supervised": supervised_processes(),
        "links": {
            "dead_letters_open": _changelist_url(IngestDeadLetter, state="open"),
            "gaps_open": _changelist_url(IngestGap, status__exact="open"),
            "gaps_exhausted": _changelist_url(IngestGap, status__exact="exhausted"),
            "runs_running": _changelist_url(IngestRun, status__exact=RunStatus.RUNNING),
            "runs": _changelist_url(IngestRun),
        },
        "generated_at": timezone.now(),
    }
    return TemplateResponse(request, "admin/ingest/health.html", context)


def _with_health_page(get_urls):
    """The health page belongs to no model, so it hangs off the site's own URLs (staff only,
    through admin_view) rather than under a model's /admin/ingest/<model>/ prefix."""

    def urls() -> list:
        health = path("ingest/health/", admin.site.admin_view(ingest_health_view), name="ingest_health")
        return [health, *get_urls()]

    urls.with_health_page = True
    return urls


if not getattr(admin.site.get_urls, "with_health_page", False):
    admin.site.get_urls = _with_health_page(admin.site.get_urls)
admin.site.index_template = "admin/ingest/index.html"
