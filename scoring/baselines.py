"""Market baselines of the edge test from sealed days (ARCHITECTURE §8; issue 16: costs that stay
flat as the facts grow).

A market's baseline counts every trader's decisions over EDGE_BASELINE_DAYS. Read from the fills,
that is the whole window of the market's fills each time a batch needs it (once per market per
EDGE_BASELINE_TTL_SECONDS per worker): at 1M fills, 484 ms of a 500-wallet batch's ~1.4 s, and at
Polymarket's volume most of 90 days of fills every quarter hour. A decision's slot never straddles
midnight when the decision window divides a day, so the counts add up per UTC day: the seal job
(`edge_days_seal`, beat) stores each market's counts for every day that has ended
(`MarketEdgeDay`; the day and when it was sealed in `EdgeSealedDay`), and a baseline is the sum
of the stored days plus a live read of only the window's partial first day and the days not
sealed yet.

A stored day is used only while it is still right:
- news that could hit its decisions arrived after it was computed: its `news_count` differs from
  the news the reader holds, so the day is read live until the seal job's news sweep has
  recomputed it;
- a fill of the day was ingested after it was sealed (a late row, a new wallet's backfilled
  history): the drain that computes that wallet marks the day due (`edge_days_mark_due`), and
  readers read a due day live until the seal job has recomputed it and cleared the mark.
Either way the baseline equals the one read from the fills (tests/test_edge_baselines.py). A day
sealed under other settings (decision window, news window, news kinds: `seal_rules`) counts as not
sealed: it is read from the fills until the seal job has sealed it again.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from arbitra.sql_arrays import date_array, int_array
from marts.bulk import fast_rows
from marts.models import ComputeCursor
from scoring.edge import MarketBaseline, time_share_before_news
from scoring.models import EdgeSealedDay
from scoring.selectors import NEWS_KINDS, NEWS_KINDS_ARRAY, decision_counts, market_baselines_compute, news_times_for

DAY = timedelta(days=1)
NEWS_CURSOR = "scoring.edge_days_news"
# A fill ingested this long before its day ended was committed before the day could be sealed.
COMMIT_MARGIN = timedelta(minutes=1)
# Due days recomputed per seal transaction.
DUE_CHUNK = 5_000


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def day_start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_add_up(decision_window: timedelta) -> bool:
    """Whether a decision slot can never straddle midnight (the window divides a day)."""
    seconds = max(1, int(decision_window.total_seconds()))
    return 86_400 % seconds == 0


def sealed_through() -> date | None:
    """The latest day the seal job stored for every market, or None before its first run."""
    return EdgeSealedDay.objects.order_by("-day").values_list("day", flat=True).first()


def seal_rules(*, decision_window: timedelta, window: timedelta) -> str:
    """What a sealed day's counts depend on besides the facts: a day sealed under other settings
    (EDGE_DECISION_WINDOW_SECONDS, EDGE_WINDOW_MINUTES, the news kinds) is not sealed for these."""
    return f"slot={int(decision_window.total_seconds())}s window={int(window.total_seconds())}s news={','.join(NEWS_KINDS)}"


def current_seal_rules() -> str:
    return seal_rules(decision_window=timedelta(seconds=settings.EDGE_DECISION_WINDOW_SECONDS),
                      window=timedelta(minutes=settings.EDGE_WINDOW_MINUTES))


def sealed_days(*, since: date, until: date, rules: str) -> dict[date, datetime]:
    """The days in [since, until) sealed under `rules`, and when each was sealed."""
    return dict(fast_rows(
        "SELECT day, sealed_at FROM edge_sealed_day WHERE day >= %s AND day < %s AND rules = %s", [since, until, rules]
    ))


def news_for_day(times: list[datetime], day: date, window: timedelta) -> int:
    """How many of a market's sorted news times could hit a decision on `day`: a decision at t
    counts news in (t, t + window], and t lies within the day."""
    start = day_start_of(day)
    return bisect.bisect_left(times, start + DAY + window) - bisect.bisect_right(times, start)


def news_counts_by_day(times: list[datetime], window: timedelta) -> dict[date, int]:
    """`news_for_day` of every day at once: per day, how many of the times could hit a decision
    on it (a time t counts for each day whose start is before t and whose end plus `window` is
    after it)."""
    counts: dict[date, int] = defaultdict(int)
    for moment in times:
        start = day_start(moment)
        if start == moment:
            start -= DAY
        while moment < start + DAY + window:
            counts[start.date()] += 1
            start -= DAY
    return counts


@dataclass
class _Totals:
    decisions: int = 0
    hits: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, decisions: int, hits: int, first: datetime, last: datetime) -> None:
        self.decisions += decisions
        self.hits += hits
        self.first = first if self.first is None or first < self.first else self.first
        self.last = last if self.last is None or last > self.last else self.last


def _live_counts(*, market_ids: list[int], lo: datetime, hi: datetime, rules_window: timedelta,
                 decision_window: timedelta) -> list[tuple]:
    """Decisions per market in [lo, hi) read from the fills."""
    if not market_ids or lo >= hi:
        return []
    return decision_counts(
        fills_from="trade_fill f", where="f.market_id = ANY(%s::bigint[]) AND f.traded_at >= %s AND f.traded_at < %s",
        params=[int_array(sorted(market_ids)), lo, hi], decision_window=decision_window, window=rules_window,
        by_day=False,
    )


def _day_counts(*, days: list[tuple[int, date]], decision_window: timedelta, window: timedelta) -> list[tuple]:
    """Decisions per (market, day) of the given market days, read from the fills in one statement."""
    if not days:
        return []
    days = sorted(set(days))
    return decision_counts(
        fills_from=(
            "unnest(%s::bigint[], %s::date[]) AS r(market_id, day) "
            "JOIN trade_fill f ON f.market_id = r.market_id "
            "AND f.traded_at >= (r.day::timestamp AT TIME ZONE 'UTC') "
            "AND f.traded_at < ((r.day + 1)::timestamp AT TIME ZONE 'UTC')"
        ),
        # The overall bounds let PostgreSQL skip the partitions no day falls in.
        where="f.traded_at >= %s AND f.traded_at < %s",
        params=[int_array(m for m, _ in days), date_array(d for _, d in days),
                day_start_of(min(d for _, d in days)), day_start_of(max(d for _, d in days)) + DAY],
        decision_window=decision_window, window=window, by_day=True,
    )


def market_baselines(
    *, market_ids: list[int], since: datetime, until: datetime, decision_window: timedelta, window: timedelta
) -> dict[int, MarketBaseline]:
    """The same baselines as `market_baselines_compute` (decisions with fills in [since, until]),
    from the sealed days where they are still right and the fills for the rest."""
    if not market_ids:
        return {}
    first_full = day_start(since) + DAY
    sealed = sealed_days(since=first_full.date(), until=day_start(until).date(),
                         rules=seal_rules(decision_window=decision_window, window=window)) \
        if days_add_up(decision_window) else {}
    if not sealed:
        return market_baselines_compute(market_ids=market_ids, since=since, until=until,
                                        decision_window=decision_window, window=window)
    sealed_end = day_start_of(max(sealed)) + DAY
    # Days before the last sealed one that were never sealed (the window grew, a pass stopped).
    gaps = [(first_full + DAY * i).date() for i in range((sealed_end - first_full).days)]
    gaps = [day for day in gaps if day not in sealed]
    ids = sorted(set(market_ids))
    news = news_times_for(market_ids=ids, since=since, until=until + window)
    totals: dict[int, _Totals] = defaultdict(_Totals)
    # The window's partial first day and the days after the last sealed one, from the fills.
    live = _live_counts(market_ids=ids, lo=since, hi=min(first_full, until + timedelta(microseconds=1)),
                        rules_window=window, decision_window=decision_window)
    live += _live_counts(market_ids=ids, lo=max(sealed_end, first_full), hi=until + timedelta(microseconds=1),
                         rules_window=window, decision_window=decision_window)
    for market_id, _day, decisions, hits, first, last in live:
        totals[market_id].add(decisions, hits, first, last)
    # The sealed days: the stored rows' sums, less the rows that are due or whose news changed.
    # Only the rows news can touch (or that are due) are read one by one; the rest are summed in
    # the database. Facts only ever grow, so a stale row's first and last decision lie within
    # the day's true ones and stay in the bounds.
    lo_day, hi_day = first_full.date(), sealed_end.date()
    # Only the days sealed under these rules: a day still holding another rule's rows is a gap.
    sealed_array = date_array(day for day in sorted(sealed) if lo_day <= day < hi_day)
    news_days = {market_id: news_counts_by_day(times, window) for market_id, times in news.items()}
    candidates = [(m, d) for m, counts in news_days.items() for d in counts if d in sealed and lo_day <= d < hi_day]
    for market_id, decisions, hits, first, last in fast_rows(
        """
        SELECT market_id, sum(decisions)::bigint, sum(hits)::bigint, min(first_at), max(last_at) FROM market_edge_day
        WHERE market_id = ANY(%s::bigint[]) AND day >= %s AND day < %s AND day = ANY(%s::date[]) GROUP BY market_id
        """,
        [int_array(ids), lo_day, hi_day, sealed_array],
    ):
        totals[market_id].add(decisions, hits, first, last)
    due = set(fast_rows(
        "SELECT market_id, day FROM market_edge_day_due WHERE market_id = ANY(%s::bigint[]) AND day >= %s AND day < %s",
        [int_array(ids), lo_day, hi_day],
    ))
    stale: set[tuple[int, date]] = set(due) | {(market_id, day) for market_id in ids for day in gaps}
    for market_id, day, decisions, hits, news_count in fast_rows(
        """
        SELECT s.market_id, s.day, s.decisions, s.hits, s.news_count FROM market_edge_day s
        WHERE s.market_id = ANY(%s::bigint[]) AND s.day >= %s AND s.day < %s AND s.day = ANY(%s::date[])
          AND (s.news_count > 0
               OR EXISTS (SELECT 1 FROM market_edge_day_due d WHERE d.market_id = s.market_id AND d.day = s.day)
               OR (s.market_id, s.day) IN (SELECT * FROM unnest(%s::bigint[], %s::date[])))
        """,
        [int_array(ids), lo_day, hi_day, sealed_array, int_array(m for m, _ in candidates),
         date_array(d for _, d in candidates)],
    ):
        if (market_id, day) in due or news_count != news_days.get(market_id, {}).get(day, 0):
            stale.add((market_id, day))
            totals[market_id].decisions -= decisions
            totals[market_id].hits -= hits
    for market_id, _day, decisions, hits, first, last in _day_counts(
        days=list(stale), decision_window=decision_window, window=window
    ):
        totals[market_id].add(decisions, hits, first, last)
    return {
        market_id: MarketBaseline(
            decisions=total.decisions, hits=total.hits,
            time_share=time_share_before_news(news.get(market_id, []), start=total.first, end=total.last, window=window),
        )
        for market_id, total in totals.items()
        if total.decisions
    }


def edge_days_mark_due(*, days) -> int:
    """Mark sealed market days due for the seal job. The mark's time is taken after the caller read
    the fills that made the day stale, so a seal pass whose read began before it keeps the mark."""
    days = sorted(set(days))
    if not days:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO market_edge_day_due (market_id, day, marked_at)
            SELECT m, d, clock_timestamp() FROM unnest(%s::bigint[], %s::date[]) AS v(m, d) ORDER BY m, d
            ON CONFLICT (market_id, day) DO UPDATE SET marked_at = EXCLUDED.marked_at
            """,
            [int_array(m for m, _ in days), date_array(d for _, d in days)],
        )
    return len(days)


def _traded_at(fill) -> datetime:
    return fill.traded_at


def late_fill_days(*, marts, changed_from: dict[int, datetime], since: datetime) -> set:
    """(market, day) of the batch's new fills that belong to a sealed day and were ingested after
    (or within a commit's margin before) the day was sealed. Live fills are ingested before their
    day ends, so the sealed days are read only for a batch holding a fill ingested after its day."""
    newest: dict[tuple[int, date], datetime] = {}
    today = day_start(timezone.now())
    for mart in marts:
        changed = changed_from.get(mart.wallet_id)
        if changed is None:
            continue
        # Fills are sorted by time: start at the first one the new facts can have changed.
        first = bisect.bisect_left(mart.fills, max(changed, since), key=_traded_at)
        for fill in mart.fills[first:]:
            traded = fill.traded_at
            if traded >= today:
                break
            if fill.ingested_at >= day_start(traded) + DAY - COMMIT_MARGIN:
                key = (fill.market_id, traded.astimezone(UTC).date())
                if key not in newest or fill.ingested_at > newest[key]:
                    newest[key] = fill.ingested_at
    if not newest:
        return set()
    sealed = sealed_days(since=min(day for _, day in newest), until=max(day for _, day in newest) + DAY,
                         rules=current_seal_rules())
    return {key for key, ingested in newest.items() if key[1] in sealed and ingested >= sealed[key[1]] - COMMIT_MARGIN}


def _days_store(*, rows: list[tuple], days: list[tuple[int, date]] | None, day: date | None,
                news: dict[int, list[datetime]], news_window: timedelta, now: datetime) -> int:
    """Replace the stored counts of `days` (or of every market on `day`) with `rows`. `news` was
    read before the rows were, so news arriving in between shows as a mismatch, never as a hit
    the stored count lacks."""
    with connection.cursor() as cursor:
        if day is not None:
            cursor.execute("DELETE FROM market_edge_day WHERE day = %s", [day])
        else:
            cursor.execute(
                "DELETE FROM market_edge_day s USING unnest(%s::bigint[], %s::date[]) AS v(m, d) "
                "WHERE s.market_id = v.m AND s.day = v.d",
                [int_array(m for m, _ in days), date_array(d for _, d in days)],
            )
        if rows:
            cursor.execute(
                """
                INSERT INTO market_edge_day (market_id, day, decisions, hits, first_at, last_at, news_count, computed_at)
                SELECT * FROM unnest(%s::bigint[], %s::date[], %s::integer[], %s::integer[], %s::timestamptz[],
                                     %s::timestamptz[], %s::integer[], %s::timestamptz[])
                """,
                [
                    [row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows],
                    [row[3] for row in rows], [row[4] for row in rows], [row[5] for row in rows],
                    [news_for_day(news.get(row[0], []), row[1], news_window) for row in rows], [now] * len(rows),
                ],
            )
    return len(rows)


def _days_with_new_news(*, since: datetime, first_day: date, last_day: date, window: timedelta) -> list:
    """Stored days of markets linked to news since `since` whose news count is no longer right."""
    market_ids = [row[0] for row in fast_rows(
        """
        SELECT DISTINCT em.market_id FROM offchain_event_market em JOIN offchain_event e ON e.id = em.event_id
        WHERE e.created_at >= %s AND e.kind = ANY(%s::text[])
        """,
        [since, NEWS_KINDS_ARRAY],
    )]
    if not market_ids:
        return []
    news = news_times_for(market_ids=market_ids, since=day_start_of(first_day), until=day_start_of(last_day) + DAY + window)
    stored = fast_rows(
        "SELECT market_id, day, news_count FROM market_edge_day WHERE market_id = ANY(%s::bigint[]) "
        "AND day >= %s AND day <= %s",
        [int_array(sorted(market_ids)), first_day, last_day],
    )
    return [(m, d) for m, d, count in stored if count != news_for_day(news.get(m, []), d, window)]


def edge_days_seal(
    *, now: datetime | None = None, time_budget_seconds: float | None = None, max_days: int | None = None
) -> dict:
    """Store every market's decision counts for each day of the baseline window that has ended and
    is not stored yet (one grouped read of the day's fills, one transaction per day), then
    recompute the due days. Resumes where a stopped run ended."""
    now = now or timezone.now()
    rules_window = timedelta(minutes=settings.EDGE_WINDOW_MINUTES)
    decision_window = timedelta(seconds=settings.EDGE_DECISION_WINDOW_SECONDS)
    budget = float(settings.EDGE_SEAL_TIME_BUDGET_SECONDS if time_budget_seconds is None else time_budget_seconds)
    result = {"days_sealed": 0, "rows": 0, "due_recomputed": 0, "sealed_through": None}
    if not days_add_up(decision_window):
        result["skipped"] = "EDGE_DECISION_WINDOW_SECONDS does not divide a day: baselines are read from the fills"
        return result
    started = time.monotonic()
    first_full = (day_start(now - timedelta(days=settings.EDGE_BASELINE_DAYS)) + DAY).date()
    yesterday = (day_start(now) - DAY).date()
    # Days that left the window are never read again.
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ("market_edge_day", "market_edge_day_due", "edge_sealed_day"):
            cursor.execute(f"DELETE FROM {table} WHERE day < %s", [first_full])  # noqa: S608 - our names
    # A day sealed under other settings is sealed again (its rows are replaced).
    rules = seal_rules(decision_window=decision_window, window=rules_window)
    done = set(sealed_days(since=first_full, until=yesterday + DAY, rules=rules))
    missing = [first_full + DAY * i for i in range((yesterday - first_full).days + 1)]
    for day in [day for day in missing if day not in done]:
        if time.monotonic() - started >= budget or (max_days is not None and result["days_sealed"] >= max_days):
            break
        start, day_started = day_start_of(day), time.monotonic()
        with transaction.atomic():
            news = news_times_for(market_ids=None, since=start, until=start + DAY + rules_window)
            # A fill ingested after this instant may be missing from the counts (see late_fill_days).
            sealed_at = fast_rows("SELECT clock_timestamp()", [])[0][0]
            rows = decision_counts(
                fills_from="trade_fill f", where="f.traded_at >= %s AND f.traded_at < %s", params=[start, start + DAY],
                decision_window=decision_window, window=rules_window, by_day=True,
            )
            stored = _days_store(rows=rows, days=None, day=day, news=news, news_window=rules_window, now=now)
            EdgeSealedDay.objects.update_or_create(day=day, defaults={
                "sealed_at": sealed_at, "rules": rules, "market_days": stored,
                "seconds": round(time.monotonic() - day_started, 3)})
        result["rows"] += stored
        result["days_sealed"] += 1
    # News linked since the previous pass (an hour's margin for links made after the event's row)
    # makes the stored days it could hit due.
    previous = ComputeCursor.objects.filter(name=NEWS_CURSOR).values_list("position", flat=True).first()
    through = sealed_through()
    if through is not None and first_full <= through:
        news_since = (previous or now - timedelta(days=settings.EDGE_BASELINE_DAYS)) - timedelta(hours=1)
        with transaction.atomic():
            changed = _days_with_new_news(since=news_since, first_day=first_full, last_day=through, window=rules_window)
            result["news_due"] = edge_days_mark_due(days=changed)
            ComputeCursor.objects.update_or_create(name=NEWS_CURSOR, defaults={"position": now, "updated_at": now})
    while time.monotonic() - started < budget:
        with transaction.atomic():
            due = fast_rows(
                "SELECT market_id, day FROM market_edge_day_due ORDER BY market_id, day LIMIT %s FOR UPDATE SKIP LOCKED",
                [DUE_CHUNK],
            )
            if not due:
                break
            # Marks made after this instant (by a drain that read a fill this pass may not see) stay.
            threshold = fast_rows("SELECT clock_timestamp()", [])[0][0]
            news = news_times_for(market_ids=sorted({m for m, _ in due}), since=day_start_of(min(d for _, d in due)),
                               until=day_start_of(max(d for _, d in due)) + DAY + rules_window)
            rows = _day_counts(days=due, decision_window=decision_window, window=rules_window)
            _days_store(rows=rows, days=due, day=None, news=news, news_window=rules_window, now=now)
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM market_edge_day_due s USING unnest(%s::bigint[], %s::date[]) AS v(m, d) "
                    "WHERE s.market_id = v.m AND s.day = v.d AND s.marked_at <= %s",
                    [int_array(m for m, _ in due), date_array(d for _, d in due), threshold],
                )
        result["due_recomputed"] += len(due)
        if len(due) < DUE_CHUNK:
            break
    through = sealed_through()
    result["sealed_through"] = None if through is None else through.isoformat()
    result["seconds"] = round(time.monotonic() - started, 3)
    return result
