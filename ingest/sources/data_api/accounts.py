"""Data API v2 account streams: wallet activity, wallet positions, market resolutions.

- `/v2/activity?user=…` — every movement of a wallet (TRADE with `usdc_size` including the fee,
  SPLIT, MERGE, REDEEM, REWARD, CONVERSION, MAKER_REBATE, and types not known today), walked
  forward with `sort_direction=ASC&start=…` from the wallet's activity cursor and landed as
  received: the raw material of the wallet ledger.
- `/v2/positions?user=…` — Polymarket's own view of a wallet's positions (avg_price,
  realized_pnl, …), landed as received: the independent figure PnL is reconciled against.
- `/v2/user-stats?user=…` — Polymarket's profile card of a wallet (realised PnL after fees,
  fees, rebates, rewards), its `data` object landed as received: the ledger's totals are
  reconciled against it. `data: null` (a wallet Polymarket does not know) lands nothing.
- `/v2/resolutions?condition=…` (≤ 20 a request) — payouts per share for markets that have
  positions and are closed but not yet resolved; markets often close well before UMA resolves
  them, so they are asked again every run until they resolve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from ingest.facts import market_resolved_event, offchain_events_upsert, wallets_queue_for_markets
from ingest.frame import JobOutcome, PageResult, bulk_cursor, dead_letters_write, landing_write, page_write, rows_split
from ingest.http import SourceClient, UpstreamRejected
from ingest.models import IngestRun, Market, RunStatus, Wallet, WalletCursor
from ingest.sources.data_api.parsing import (
    OccurrenceCounter,
    ParsedActivity,
    ParsedResolution,
    parse_activity_v2,
    parse_page,
    parse_position_v2,
    parse_resolution_v2,
    parse_user_stats_v2,
)
from ingest.sources.data_api.walk import TRANSIENT_ERRORS, wallet_stream_walk
from ingest.sources.data_api.writing import fill_row_identity
from ingest.sources.values import MalformedBody, show

logger = logging.getLogger(__name__)

SOURCE = "data_api"
ACTIVITY_STREAM = "activity"
POSITIONS_STREAM = "positions"
RESOLUTIONS_STREAM = "resolutions"
USER_STATS_STREAM = "user_stats"
CONDITIONS_PER_REQUEST = 20


def _wallets_due(stream: str, limit: int) -> list[Wallet]:
    """Wallets whose `stream` was read least recently (never read first)."""
    last_attempt = WalletCursor.objects.filter(wallet=OuterRef("pk"), stream=stream).values("attempted_at")[:1]
    return list(
        Wallet.objects.annotate(last_attempt=Subquery(last_attempt))
        .order_by(F("last_attempt").asc(nulls_first=True), "id")[:limit]
    )


def _records_land(
    *, run: IngestRun | None, stream: str, fetched: int, records: list[tuple[str, Any, datetime | None]],
    rejects: list[tuple[Any, str]], skipped: int = 0,
) -> PageResult:
    def write() -> PageResult:
        result = PageResult(fetched=fetched, skipped=skipped)
        result.dead_lettered = dead_letters_write(run=run, source=SOURCE, stream=stream, rejects=rejects,
                                                  identity=fill_row_identity)
        if records:
            with bulk_cursor() as cursor:
                result.inserted = landing_write(cursor, run=run, source=SOURCE, stream=stream, records=records)
        result.duplicates = len(records) - result.inserted
        return result

    return page_write(write, queue_changes=False)


def activity_page_land(*, run: IngestRun | None, rows: list[Any], counter: OccurrenceCounter) -> PageResult:
    """Land one page of activity rows verbatim, each under its identity (a TRADE row under the
    identity of its fill), numbered as a multiset in serving order."""
    parsed, rejects, skipped = rows_split(rows, parse=parse_activity_v2)
    numbered: list[tuple[ParsedActivity, Any]] = [(counter.number(activity), row) for activity, row in parsed]
    records = [(activity.idempotency_key, row, activity.occurred_at) for activity, row in numbered]
    result = _records_land(run=run, stream=ACTIVITY_STREAM, fetched=len(rows), records=records, rejects=rejects,
                           skipped=skipped)
    times = [activity.occurred_at for activity, _ in numbered]
    if times:
        result.newest_time, result.oldest_time = max(times), min(times)
    return result


def _wallets_stream_ingest(
    *, run: IngestRun, client: SourceClient, stream: str, path: str, base_filters: dict[str, str],
    write_page_for: Callable[[IngestRun], Callable[[list[Any], OccurrenceCounter], PageResult]],
    start_from_cursor: bool,
) -> JobOutcome:
    wallets = _wallets_due(stream, settings.INGEST_ACTIVITY_WALLETS_PER_RUN)
    total = PageResult()
    pages = 0
    errors: list[str] = []
    for wallet in wallets:
        outcome = wallet_stream_walk(
            client=client, wallet=wallet, stream=stream, path=path, filters=base_filters,
            write_page=write_page_for(run), start_from_cursor=start_from_cursor,
        )
        total.add(outcome.result)
        pages += outcome.pages
        if outcome.stop_reason == "upstream_error":
            errors.append(outcome.error)
            break  # the upstream is in trouble: the next run carries on from here
    stats = {**total.counts(), "pages": pages, "wallets": len(wallets), "http": client.stats}
    return JobOutcome(status=RunStatus.PARTIAL if errors else RunStatus.SUCCEEDED, stats=stats,
                      error=errors[-1] if errors else "")


def activity_ingest(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Walk each due wallet's activity forward from its cursor and land every row as received."""
    return _wallets_stream_ingest(
        run=run, client=client, stream=ACTIVITY_STREAM, path="/v2/activity", base_filters={"sort_direction": "ASC"},
        write_page_for=lambda run: lambda rows, counter: activity_page_land(run=run, rows=rows, counter=counter),
        start_from_cursor=True,
    )


def positions_page_land(*, run: IngestRun | None, rows: list[Any], fetched_at: datetime) -> PageResult:
    """Land one page of Polymarket's positions of a wallet; a position lands again only when a
    value of it changed (the key is the record's content)."""
    from ingest.frame import payload_key

    parsed, rejects, skipped = rows_split(rows, parse=parse_position_v2)
    records = [(payload_key(row), row, fetched_at) for _position, row in parsed]
    return _records_land(run=run, stream=POSITIONS_STREAM, fetched=len(rows), records=records, rejects=rejects,
                         skipped=skipped)


def positions_ingest(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Land Polymarket's own positions (every status) of the due wallets, for reconciliation."""
    fetched_at = timezone.now()
    return _wallets_stream_ingest(
        run=run, client=client, stream=POSITIONS_STREAM, path="/v2/positions", base_filters={},
        write_page_for=lambda run: lambda rows, _counter: positions_page_land(run=run, rows=rows,
                                                                              fetched_at=fetched_at),
        start_from_cursor=False,
    )


def user_stats_land(*, run: IngestRun | None, body: object) -> PageResult:
    """Land a `/v2/user-stats` body's `data` object as received (keyed by its content: a card
    lands again only when a value of it changed); a malformed card is a dead letter, a body of
    another shape `MalformedBody`, `data: null` nothing at all."""
    from ingest.frame import payload_key

    if not isinstance(body, dict) or "data" not in body:
        raise MalformedBody(f"user-stats: no data member: {show(body)}")
    card = body["data"]
    if card is None:
        return PageResult(fetched=0)
    parsed, rejects, skipped = rows_split([card], parse=parse_user_stats_v2)
    records = [(payload_key(row), row, stats.totals.observed_at if stats.totals is not None else None)
               for stats, row in parsed]
    return _records_land(run=run, stream=USER_STATS_STREAM, fetched=1, records=records, rejects=rejects,
                         skipped=skipped)


def user_stats_ingest(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Read Polymarket's profile card of the due wallets (least recently read first) and land it."""
    wallets = _wallets_due(USER_STATS_STREAM, settings.INGEST_ACTIVITY_WALLETS_PER_RUN)
    total = PageResult()
    unavailable = 0
    errors: list[str] = []
    for wallet in wallets:
        attempted_at = timezone.now()
        try:
            result = user_stats_land(run=run, body=client.get_json("/v2/user-stats", params={"user": wallet.address}))
        except (UpstreamRejected, *TRANSIENT_ERRORS, MalformedBody) as exc:
            errors.append(str(exc))
            break  # the upstream is in trouble: the next run carries on from this wallet
        unavailable += result.fetched == 0
        total.add(result)
        WalletCursor.objects.update_or_create(wallet=wallet, stream=USER_STATS_STREAM,
                                              defaults={"attempted_at": attempted_at, "completed_at": timezone.now()})
    stats = {**total.counts(), "wallets": len(wallets), "unavailable": unavailable, "http": client.stats}
    return JobOutcome(status=RunStatus.PARTIAL if errors else RunStatus.SUCCEEDED, stats=stats,
                      error=errors[-1] if errors else "")


# --- resolutions ----------------------------------------------------------------------------------


def markets_awaiting_resolution() -> list[str]:
    """Markets that have fills and are closed (or past their end date) but not resolved by the
    Data API: asked every run until they resolve."""
    now = timezone.now()
    return list(
        Market.objects.filter(Q(closed=True) | Q(end_date__lt=now))
        .exclude(resolution_source="data_api")
        .filter(fills__isnull=False)
        .distinct()
        .order_by("condition_id")
        .values_list("condition_id", flat=True)
    )


def _resolution_apply(resolution: ParsedResolution) -> Market | None:
    """Settle a market from its payouts; returns the market if this changed its resolution."""
    payouts = resolution.payouts
    if not resolution.is_resolved or payouts is None or resolution.condition_id is None:
        return None
    market = Market.objects.filter(condition_id=resolution.condition_id).first()
    if market is None or market.resolution_source == "data_api":
        return None
    winner = resolution.winner_index
    # Equal payouts to every outcome (e.g. 0.5 / 0.5) is a void market refunded at that price; any
    # other split is kept as its payout vector for settlement (resolution_payouts).
    is_void = winner is None and len(set(payouts)) == 1
    market.winner_index = winner
    market.is_void = is_void
    market.resolution_payouts = [str(payout) for payout in payouts]
    market.resolution_source = "data_api"
    market.was_disputed = resolution.was_disputed
    market.resolved_at = resolution.resolved_at or market.resolved_at or timezone.now()
    market.updated_at = timezone.now()
    market.save(update_fields=["winner_index", "is_void", "resolution_payouts", "resolution_source", "was_disputed",
                               "resolved_at", "updated_at"])
    return market


def resolutions_ingest(*, run: IngestRun, client: SourceClient) -> JobOutcome:
    """Ask `/v2/resolutions` about every market awaiting resolution; settle those that resolved,
    record their lifecycle event at the upstream's resolution time, and re-queue their holders."""
    from ingest.frame import payload_key

    condition_ids = markets_awaiting_resolution()
    total = PageResult()
    resolved: list[Market] = []
    errors: list[str] = []
    for start in range(0, len(condition_ids), CONDITIONS_PER_REQUEST):
        group = condition_ids[start : start + CONDITIONS_PER_REQUEST]
        try:
            rows, _pagination = parse_page(client.get_json("/v2/resolutions", params={"condition": ",".join(group)}),
                                           paginated=False)
        except (UpstreamRejected, *TRANSIENT_ERRORS, MalformedBody) as exc:
            errors.append(str(exc))
            break
        parsed, rejects, skipped = rows_split(rows, parse=parse_resolution_v2)
        records = [(payload_key(row), row, resolution.resolved_at or resolution.last_updated_at)
                   for resolution, row in parsed]
        total.add(_records_land(run=run, stream=RESOLUTIONS_STREAM, fetched=len(rows), records=records,
                                rejects=rejects, skipped=skipped))
        for resolution, _row in parsed:
            market = _resolution_apply(resolution)
            if market is not None:
                resolved.append(market)
    events = offchain_events_upsert(drafts=[market_resolved_event(market) for market in resolved], run=run)
    requeued = wallets_queue_for_markets(market_ids=[market.pk for market in resolved])
    stats = {
        **total.counts(),
        "markets_asked": len(condition_ids),
        "markets_resolved": len(resolved),
        "lifecycle_events": events,
        "wallets_requeued_for_settlement": requeued,
        "http": client.stats,
    }
    return JobOutcome(status=RunStatus.PARTIAL if errors else RunStatus.SUCCEEDED, stats=stats,
                      error=errors[-1] if errors else "")
