"""Which markets a news entry is linked to by the feed's named-terms rule: proper names shared by
the headline and the question, never the dates almost every question carries."""

from __future__ import annotations

import pytest

from ingest.models import Market, OffchainFeed
from ingest.sources.feeds.jobs import entry_market_ids

pytestmark = pytest.mark.django_db


def _market(condition: str, question: str) -> Market:
    return Market.objects.create(condition_id="0x" + condition * 64, question=question)


def test_a_headline_is_linked_by_the_names_it_shares_with_a_question_not_by_its_month_or_weekday():
    bitcoin = _market("1", "Will Bitcoin reach $100k by December 31?")
    fed = _market("2", "Will the Fed cut rates in December?")
    swift = _market("3", "Will Taylor Swift announce a tour before Monday, December 8?")
    feed = OffchainFeed.objects.create(name="Wire", url="https://news.example/rss", match_named_terms=True)

    linked = entry_market_ids(feed=feed, title="Bitcoin tops $98k on Monday as December nears", summary="",
                              categories=[])
    assert linked == [bitcoin.pk]
    assert entry_market_ids(feed=feed, title="Fed officials signal patience before December", summary="",
                            categories=[]) == [fed.pk]
    assert entry_market_ids(feed=feed, title="Taylor Swift fans queue for tickets", summary="",
                            categories=[]) == [swift.pk]
    assert entry_market_ids(feed=feed, title="Markets quiet on Friday, May 2", summary="", categories=[]) == []
