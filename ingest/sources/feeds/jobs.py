"""Off-chain events: operator-registered RSS/Atom feeds, market lifecycle events, manual entries.

An event's `event_time` is when the information became public (the entry's published time, the
market's closedTime), because the information-edge metric measures trades against it. Events are
unique on (source, source_event_id) — a full constraint, so the upsert can name it. A new event
queues the wallets that traded its markets, so their edge is re-paired.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

import feedparser
from django.db.models import Q
from django.utils import timezone

from ingest.facts import EventDraft, offchain_events_upsert
from ingest.frame import JobOutcome, PageResult, bulk_cursor, dead_letters_write, landing_write, page_write
from ingest.http import SourceClient, ThrottleTimeout, UpstreamBadPayload, UpstreamRejected, UpstreamUnavailable
from ingest.models import IngestRun, Market, OffchainEvent, OffchainFeed, RunStatus

logger = logging.getLogger(__name__)

# Capitalised words that say nothing about which market a headline is about. Month and weekday
# names are capitalised too, and dates are in most market questions ("… by December 31?"): one
# headline naming a month was linked to every market ending that month (27 for one Fed headline
# on the signals emulator), which made every market's news look frequent.
_STOP_TERMS = frozenset(
    "will the a an and or of in on at to for by with is be as new after before who what when how does did "
    "yes no up down above below over under than more less this that its it's "
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    "monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday".split()
)
_TERM = re.compile(r"[A-Za-z][A-Za-z0-9$.&'-]{2,}")


def _terms(text: str) -> set[str]:
    return {
        word.lower().strip(".'-")
        for word in _TERM.findall(text)
        if word[0].isupper() and word.lower() not in _STOP_TERMS
    }


def entry_market_ids(*, feed: OffchainFeed, title: str, summary: str, categories: list[str]) -> list[int]:
    """Markets an entry is about, by the feed's rule: explicit markets, tags, keywords, named terms."""
    linked: set[int] = set(feed.markets.values_list("id", flat=True))
    text = f"{title} {summary}".lower()
    open_markets = Market.objects.filter(closed=False)
    entry_tags = {c.lower() for c in categories}
    wanted_tags = [t for t in feed.tags if t.lower() in entry_tags or t.lower() in text]
    if wanted_tags:
        tag_filter = Q()
        for tag in wanted_tags:
            tag_filter |= Q(tags__contains=[tag]) | Q(category__iexact=tag)
        linked |= set(open_markets.filter(tag_filter).values_list("id", flat=True))
    for keyword in feed.keywords:
        if keyword and keyword.lower() in text:
            linked |= set(open_markets.filter(question__icontains=keyword).values_list("id", flat=True))
    if feed.match_named_terms:
        # Proper names shared by the headline and the market question ("Bitcoin", a candidate's
        # surname, a team): precise enough to pair news with the markets it moves.
        terms = _terms(title)
        if terms:
            term_filter = Q()
            for term in terms:
                term_filter |= Q(question__iregex=rf"\m{re.escape(term)}\M")
            linked |= set(open_markets.filter(term_filter).values_list("id", flat=True))
    return sorted(linked)


def _entry_time(entry: Any) -> datetime | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(name)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    return None


def feed_entries_to_drafts(
    *, feed: OffchainFeed, document: Any
) -> tuple[list[EventDraft], list[tuple[Any, str]], list[tuple[str, Any, datetime | None]]]:
    """(event drafts, rejected entries with their reason, landing records) of one feed document.

    Each entry lands as feedparser read it, under the identity its event is stored with.
    """
    drafts: list[EventDraft] = []
    rejects: list[tuple[Any, str]] = []
    records: list[tuple[str, Any, datetime | None]] = []
    for entry in document.entries:
        received = {key: str(value) for key, value in dict(entry).items()}
        title = (entry.get("title") or "").strip()
        published = _entry_time(entry)
        if not title or published is None:
            rejects.append((received, "entry has no title" if not title else "entry has no published/updated time"))
            continue
        link = entry.get("link") or ""
        identity = entry.get("id") or link or hashlib.sha256(f"{title}|{published.isoformat()}".encode()).hexdigest()
        summary = entry.get("summary") or ""
        categories = [tag.get("term", "") for tag in entry.get("tags", []) if tag.get("term")]
        records.append((hashlib.sha256(identity.encode()).hexdigest(), received, published))
        drafts.append(
            EventDraft(
                source=f"feed:{feed.pk}",
                source_event_id=identity,
                kind=OffchainEvent.Kind.FEED,
                event_time=published,
                title=title,
                url=link,
                summary=summary,
                payload={"feed": feed.name, "title": title, "link": link, "summary": summary, "categories": categories,
                         "published": published.isoformat()},
                market_ids=entry_market_ids(feed=feed, title=title, summary=summary, categories=categories),
            )
        )
    return drafts, rejects, records


def feed_document_write(*, run: IngestRun | None, feed: OffchainFeed, document: Any) -> PageResult:
    """One feed document through the ingest frame: dead letters, landing and events in one transaction."""
    drafts, rejects, records = feed_entries_to_drafts(feed=feed, document=document)
    source = f"feed:{feed.pk}"

    def write() -> PageResult:
        result = PageResult(fetched=len(drafts) + len(rejects))
        result.dead_lettered = dead_letters_write(run=run, source=source, stream="entries", rejects=rejects)
        with bulk_cursor() as cursor:
            landing_write(cursor, run=run, source=source, stream="entries", records=records)
        result.inserted = offchain_events_upsert(drafts=drafts, run=run)
        result.duplicates = len(drafts) - result.inserted
        return result

    return page_write(write, queue_changes=False)


def feeds_poll(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Poll every enabled feed with conditional GET; a failing feed does not stop the others."""
    stats = {"feeds": 0, "not_modified": 0, "entries": 0, "inserted": 0, "dead_lettered": 0, "failed_feeds": 0}
    errors: list[str] = []
    for feed in OffchainFeed.objects.filter(enabled=True).order_by("pk"):
        stats["feeds"] += 1
        headers = {}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        try:
            status, response_headers, text = client.get_text(feed.url, headers=headers)
        except (UpstreamUnavailable, UpstreamRejected, ThrottleTimeout, UpstreamBadPayload) as exc:
            stats["failed_feeds"] += 1
            errors.append(f"{feed.name}: {exc}")
            continue
        feed.last_fetched_at = timezone.now()
        if status == 304:
            stats["not_modified"] += 1
            feed.save(update_fields=["last_fetched_at"])
            continue
        document = feedparser.parse(text)
        if document.bozo and not document.entries:
            stats["failed_feeds"] += 1
            errors.append(f"{feed.name}: not a feed ({document.get('bozo_exception')})")
            feed.save(update_fields=["last_fetched_at"])
            continue
        written = feed_document_write(run=run, feed=feed, document=document)
        stats["entries"] += written.fetched
        stats["dead_lettered"] += written.dead_lettered
        stats["inserted"] += written.inserted
        feed.etag = response_headers.get("ETag", "") or ""
        feed.last_modified = response_headers.get("Last-Modified", "") or ""
        feed.save(update_fields=["last_fetched_at", "etag", "last_modified"])
    stats["http"] = client.stats
    status = RunStatus.SUCCEEDED if not errors else RunStatus.PARTIAL
    return JobOutcome(status=status, stats=stats, error="\n".join(errors))
