"""The off-chain news wire: an RSS 2.0 feed whose items appear at their pubDate on the virtual clock.

Resolution items are the moment a market's outcome becomes public; insiders in the world trade
before them, so an ingest of this feed gives the information-edge metric real negative Δt samples.
Conditional GET (ETag / Last-Modified) is supported because a poller should not re-read an
unchanged feed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from xml.sax.saxutils import escape

from .world import NewsItem

FEED_ITEM_LIMIT = 50


def rfc822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC), usegmt=True)


@dataclass(frozen=True)
class RssDocument:
    body: bytes
    etag: str
    last_modified: str
    last_modified_ts: int


def render_rss(items: Sequence[NewsItem], *, build_time: int, self_url: str) -> RssDocument:
    """Items newest first. The validators depend only on the items, not on when the feed was read."""
    newest = items[0].published_at if items else 0
    fingerprint = hashlib.blake2b("|".join(i.guid for i in items).encode(), digest_size=8).hexdigest()
    etag = f'"{fingerprint}"'
    last_modified_ts = newest or build_time
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0">',
        "<channel>",
        "<title>Emulator Wire</title>",
        f"<link>{escape(self_url)}</link>",
        "<description>Headlines about the emulated Polymarket markets</description>",
        "<language>en-us</language>",
        f"<lastBuildDate>{rfc822(last_modified_ts)}</lastBuildDate>",
    ]
    for item in items:
        parts.extend([
            "<item>",
            f'<guid isPermaLink="false">{escape(item.guid)}</guid>',
            f"<title>{escape(item.title)}</title>",
            f"<link>{escape(item.link)}</link>",
            f"<pubDate>{rfc822(item.published_at)}</pubDate>",
            f"<category>{escape(item.category)}</category>",
            f"<description>{escape(item.title)}.</description>",
            "</item>",
        ])
    parts.extend(["</channel>", "</rss>", ""])
    return RssDocument(
        body="\n".join(parts).encode("utf-8"),
        etag=etag,
        last_modified=rfc822(last_modified_ts),
        last_modified_ts=last_modified_ts,
    )


def is_not_modified(document: RssDocument, *, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110: If-None-Match wins when present; otherwise compare If-Modified-Since (1 s precision)."""
    if if_none_match is not None:
        candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in candidates or document.etag in candidates
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return document.last_modified_ts <= since.timestamp()
    return False
