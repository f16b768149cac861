"""Writes of the wallet ledger: recompute the ledger of changed wallets from their landed
`/v2/activity` rows, reconcile it with their landed `/v2/positions` and `/v2/user-stats` (the
profile card's totals), replace their rows.

Which wallets changed is read off the landing table itself: rows of the activity, positions and
user-stats streams landed after the ledger's cursor name their wallet; resolution rows name a market, whose
holders (idle ones included) are recomputed so their positions settle. The cursor only moves
forward and the work follows what landed, never the number of wallets. A recomputation replaces a
wallet's rows as a set (delete, then COPY), so running it twice changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from arbitra.sql_arrays import int_array
from ingest.sources.data_api.parsing import ParsedPosition, ParsedUserStats, PositionFigures
from marts import ledger_selectors as selectors
from marts.bulk import copy_rows, fast_rows, staged_upsert, stored_money
from marts.ledger import (
    CONTEXT,
    MarketTerms,
    WalletLedger,
    wallet_ledger_compute,
)
from marts.models import LedgerCursor, ReconciliationStatus, TotalsStatus, WalletLedgerSummary
from marts.services import _cyclic_gc_paused

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
# Polymarket's figure and ours agree within 1 % or one cent, whichever is larger.
RECONCILE_RELATIVE = Decimal("0.01")
RECONCILE_ABSOLUTE = Decimal("0.01")
CURSOR_STREAMS = (selectors.ACTIVITY, selectors.POSITIONS, selectors.RESOLUTIONS, selectors.USER_STATS)
# Wallets recomputed per transaction by a refresh.
LEDGER_BATCH_SIZE = 500

ENTRY_COLUMNS = [
    "wallet_id", "sequence", "leg", "occurred_at", "activity_type", "kind", "source_key", "condition_id", "token_id",
    "shares", "cash", "fee", "price", "note",
]
POSITION_COLUMNS = [
    "wallet_id", "token_id", "condition_id", "outcome_index", "status", "shares", "avg_price", "realized_pnl",
    "cash_avg_price", "cash_realized_pnl", "fees_paid", "bought_shares", "invested", "settlement_price",
    "settlement_pnl", "cash_settlement_pnl", "mark_price", "marked_at", "unrealized_pnl", "cost_basis_known",
    "movements",
    "first_at", "last_at",
]
# The natural keys of a wallet's rows (leading columns of the row tuples) and their SQL types.
ENTRY_KEY = ("bigint", "integer", "integer")  # wallet_id, sequence, leg
POSITION_KEY = ("bigint", "text")  # wallet_id, token_id
SUMMARY_COLUMNS = [
    "wallet_id", "computed_at", "activity_through", "entries", "fees_paid", "maker_rebates", "rewards",
    "unknown_usdc", "unknown_types", "realized_pnl", "settlement_pnl", "unrealized_pnl", "cash_pnl",
    "resolved_positions", "winning_positions", "unknown_cost_positions", "win_rate", "roi", "invested", "known_cost_pnl",
    "reconciliation_status", "reconciliation_difference", "reconciliation_size_difference",
    "reconciliation_positions", "reconciliation_checked_at", "totals_status", "totals_realized_difference",
    "totals_fees_difference", "totals_maker_rebates_difference", "totals_rewards_difference", "totals_observed_at",
]


@dataclass(frozen=True)
class Reconciliation:
    status: str
    difference: Decimal  # ours − Polymarket's realised PnL over the positions both know
    size_difference: Decimal  # Σ |our shares − their current_size|
    positions: int


def _within(ours: Decimal, theirs: Decimal) -> bool:
    return abs(ours - theirs) <= max(RECONCILE_ABSOLUTE, abs(theirs) * RECONCILE_RELATIVE)


def reconciliation_of(*, ledger: WalletLedger, polymarket: Sequence[ParsedPosition | PositionFigures]) -> Reconciliation:
    """Compare our Polymarket-basis realised PnL and sizes, as of Polymarket's snapshot
    (`ledger.snapshot`), with Polymarket's positions.

    `unknown` when Polymarket's positions have not landed, or a position of ours had an unknown
    cost basis by then (its realised figure cannot be ours to vouch for). Tokens only one side
    lists count with zero on the other side: shares Polymarket shows that our ledger lacks are
    drift.
    """
    if not polymarket:
        return Reconciliation(ReconciliationStatus.UNKNOWN, ZERO, ZERO, 0)
    ours = ledger.snapshot
    theirs = {position.token_id: position for position in polymarket}
    realized_ours = realized_theirs = size_difference = ZERO
    sizes_agree = True
    for token in ours.keys() | theirs.keys():
        my_shares, my_realized = ours.get(token, (ZERO, ZERO))
        their = theirs.get(token)
        their_realized = their.realized_pnl if their is not None else ZERO
        their_shares = their.current_size if their is not None else ZERO
        realized_ours += my_realized
        realized_theirs += their_realized
        size_difference += abs(my_shares - their_shares)
        sizes_agree = sizes_agree and _within(my_shares, their_shares)
    difference = realized_ours - realized_theirs
    if ledger.snapshot_unknown_cost:
        status = ReconciliationStatus.UNKNOWN
    elif sizes_agree and _within(realized_ours, realized_theirs):
        status = ReconciliationStatus.RECONCILED
    else:
        status = ReconciliationStatus.DRIFT
    return Reconciliation(status, difference, size_difference, len(theirs))


@dataclass(frozen=True)
class TotalsReconciliation:
    """Our totals − those of Polymarket's profile card, as of the card's observation time."""

    status: str
    realized_difference: Decimal = ZERO  # after-fee realised − market + LP + combo realised
    fees_difference: Decimal = ZERO  # fees charged − the card's charges (`fees` is ≤ 0)
    maker_rebates_difference: Decimal = ZERO
    rewards_difference: Decimal = ZERO
    observed_at: datetime | None = None


TOTALS_UNAVAILABLE = TotalsReconciliation(TotalsStatus.UNAVAILABLE)


def totals_reconciliation_of(*, ledger: WalletLedger, user_stats: ParsedUserStats | None) -> TotalsReconciliation:
    """Compare the ledger's totals as of the card's time (`ledger.totals`, computed with
    `totals_at`) with Polymarket's profile card: realised PnL on the card's basis (after fees,
    market + LP + combo), fees charged, maker rebates, rewards — each within 1 % or 0.01 USDC.
    No card (the wallet is unknown to Polymarket: `data: null`) or a card without a PnL
    observation yet is `unavailable`, never drift."""
    card = user_stats.totals if user_stats is not None else None
    ours = ledger.totals
    if card is None or ours is None:
        return TOTALS_UNAVAILABLE
    pairs = ((ours.realized_after_fees, card.trading_realized), (ours.fees_paid, -card.fees),
             (ours.maker_rebates, card.maker_rebate), (ours.rewards, card.reward_income))
    status = TotalsStatus.RECONCILED if all(_within(mine, theirs) for mine, theirs in pairs) else TotalsStatus.DRIFT
    realized, fees, rebates, rewards = (mine - theirs for mine, theirs in pairs)
    return TotalsReconciliation(status, realized, fees, rebates, rewards, card.observed_at)


def reconciliation_status_with_totals(positions_status: str, totals: TotalsReconciliation) -> str:
    """A totals drift is a drift whatever the positions say; otherwise the positions decide."""
    return ReconciliationStatus.DRIFT if totals.status == TotalsStatus.DRIFT else positions_status


def _with_tokens_seen(markets: dict[str, MarketTerms], activities) -> dict[str, MarketTerms]:
    """Markets whose tokens Arbitra does not know yet take them from the wallet's own rows
    (a TRADE row names its token and outcome index), when every outcome of a binary market shows."""
    seen: dict[str, dict[int, str]] = {}
    for activity in activities:
        if activity.condition_id and activity.token_id and activity.outcome_index is not None \
                and activity.outcome_index < 2:
            seen.setdefault(activity.condition_id, {})[activity.outcome_index] = activity.token_id
    completed = dict(markets)
    for condition, tokens in seen.items():
        terms = completed.get(condition)
        if (terms is None or not terms.token_ids) and len(tokens) == 2:
            known = terms or MarketTerms(condition, (), None)
            completed[condition] = known._replace(token_ids=(tokens[0], tokens[1]))
    return completed


def _markets_of(account: selectors.AccountRows, markets: dict[str, MarketTerms],
                events: dict[str, list[MarketTerms]]) -> dict[str, MarketTerms]:
    """The batch's market terms this wallet's rows refer to, and every market of the event of a
    neg-risk conversion: the ledger's work then follows the wallet's own markets, not the batch's."""
    mine: dict[str, MarketTerms] = {}
    for activity in account.activities:
        terms = markets.get(activity.condition_id or "")
        if terms is None:
            continue
        mine[terms.condition_id] = terms
        if terms.event_key and activity.activity_type.upper() == "CONVERSION":
            mine.update((sibling.condition_id, sibling) for sibling in events.get(terms.event_key, ()))
    return mine


def _snapshot_time(account: selectors.AccountRows) -> datetime | None:
    """The moment of Polymarket's positions snapshot: the newest movement it counted (its newest
    `last_event_at`). The activity walk and the positions read are not one instant — movements
    after it are ours alone and not a drift."""
    counted = [position.last_event_at for position in account.positions if position.last_event_at is not None]
    return max(counted) if counted else None


def wallet_ledgers_compute(
    *, wallet_ids: list[int], now: datetime | None = None,
) -> dict[int, WalletLedger]:
    """Recompute, reconcile and replace the ledger rows of the wallets, in one transaction."""
    with _cyclic_gc_paused():  # ~10^5 short-lived objects and no cycles, as in a drain batch
        return _wallet_ledgers_compute(wallet_ids=wallet_ids, now=now)


def _wallet_ledgers_compute(*, wallet_ids: list[int], now: datetime | None) -> dict[int, WalletLedger]:
    now = now or timezone.now()
    ids = sorted({int(wallet_id) for wallet_id in wallet_ids})
    addresses = selectors.wallet_addresses(wallet_ids=ids)
    accounts = selectors.account_rows_for(addresses=list(addresses.values()))
    conditions: set[str] = set()
    converting: set[str] = set()
    for account in accounts.values():
        for activity in account.activities:
            if activity.condition_id:
                conditions.add(activity.condition_id)
                if activity.activity_type.upper() == "CONVERSION":
                    converting.add(activity.condition_id)
    markets = selectors.market_terms_for(condition_ids=conditions, with_events_of=converting)
    events: dict[str, list[MarketTerms]] = {}
    for terms in markets.values():
        if terms.event_key:
            events.setdefault(terms.event_key, []).append(terms)
    ledgers: dict[int, WalletLedger] = {}
    entries, positions, summaries = [], [], []
    s = stored_money
    for wallet_id, address in addresses.items():
        account = accounts[address]
        card = account.user_stats.totals if account.user_stats is not None else None
        ledger = wallet_ledger_compute(activities=account.activities,
                                       markets=_with_tokens_seen(_markets_of(account, markets, events),
                                                                 account.activities),
                                       snapshot_at=_snapshot_time(account),
                                       totals_at=card.observed_at if card is not None else None)
        ledgers[wallet_id] = ledger
        check = reconciliation_of(ledger=ledger, polymarket=account.positions)
        totals = totals_reconciliation_of(ledger=ledger, user_stats=account.user_stats)
        for e in ledger.entries:
            entries.append((wallet_id, e.sequence, e.leg, e.occurred_at, e.activity_type[:40], e.kind, e.source_key,
                            e.condition_id or "", e.token_id or "", s(e.shares), s(e.cash), s(e.fee),
                            None if e.price is None else s(e.price), e.note[:200]))
        for p in ledger.positions:
            positions.append((
                wallet_id, p.token_id, p.condition_id or "", p.outcome_index, p.status, s(p.shares), s(p.avg_price),
                s(p.realized_pnl), s(p.cash_avg_price), s(p.cash_realized_pnl), s(p.fees_paid), s(p.bought_shares),
                s(p.invested), None if p.settlement_price is None else s(p.settlement_price), s(p.settlement_pnl),
                s(p.cash_settlement_pnl), None if p.mark_price is None else s(p.mark_price),
                None if p.mark_price is None else now, s(p.unrealized_pnl),
                p.cost_basis_known, p.movements, p.first_at, p.last_at,
            ))
        summaries.append((
            wallet_id, now, account.activity_through, len(ledger.entries), s(ledger.fees_paid), s(ledger.maker_rebates),
            s(ledger.rewards), s(ledger.unknown_usdc), json.dumps(ledger.unknown_types), s(ledger.realized_pnl),
            s(ledger.settlement_pnl), s(ledger.unrealized_pnl), s(ledger.cash_pnl), ledger.resolved_positions,
            ledger.winning_positions, ledger.unknown_cost_positions, s(CONTEXT.plus(ledger.win_rate)),
            s(CONTEXT.plus(ledger.roi)), s(ledger.invested), s(ledger.known_cost_pnl),
            reconciliation_status_with_totals(check.status, totals), s(check.difference), s(check.size_difference),
            check.positions, now, totals.status, s(totals.realized_difference), s(totals.fees_difference),
            s(totals.maker_rebates_difference), s(totals.rewards_difference), totals.observed_at,
        ))
    with transaction.atomic(), connection.cursor() as cursor:
        scope = int_array(addresses)
        _rows_replace(cursor, table="wallet_ledger_entry", columns=ENTRY_COLUMNS, key_types=ENTRY_KEY, scope=scope,
                      rows=entries)
        _rows_replace(cursor, table="wallet_ledger_position", columns=POSITION_COLUMNS, key_types=POSITION_KEY,
                      scope=scope, rows=positions, kept_if_equal_but=POSITION_COLUMNS.index("marked_at"))
        staged_upsert(table="wallet_ledger_summary", columns=SUMMARY_COLUMNS, key=["wallet_id"], rows=summaries)
    return ledgers


def _rows_replace(cursor, *, table: str, columns: list[str], key_types: tuple[str, ...], scope: str,
                  rows: list[tuple], kept_if_equal_but: int | None = None) -> None:
    """Make the wallets' (`scope`) rows of `table` exactly `rows`, writing only the difference.

    A recomputation mostly reproduces what is stored (one new fill leaves a wallet's earlier
    entries and its other positions as they were): the stored rows are read (an index range
    per wallet, no WAL), and only rows that are gone or differ are deleted and only new or
    changed ones copied. Deleting and re-inserting every row cost a delete, an insert into
    every index and their WAL per row — most of a batch's writes. Rows are compared by value
    (Decimals at the stored scale), keyed by their first columns (as many as `key_types`).
    `kept_if_equal_but`: a column (the mark's read time) whose new value alone does not make a
    row differ — a stored mark at the same price keeps the time it was read at, as a re-mark
    leaves it (ledger_marks_refresh).
    """
    key_width = len(key_types)
    names = ", ".join(f'"{column}"' for column in columns)
    stored = {row[:key_width]: row for row in fast_rows(
        f"SELECT {names} FROM {table} WHERE wallet_id = ANY(%s::bigint[])", [scope])}  # noqa: S608 - names are ours
    changed = []
    for row in rows:
        key = row[:key_width]
        old = stored.pop(key, None)
        if old is None:
            changed.append(row)
            continue
        if old == row or (kept_if_equal_but is not None and old[:kept_if_equal_but] == row[:kept_if_equal_but]
                          and old[kept_if_equal_but + 1:] == row[kept_if_equal_but + 1:]):
            continue
        stored[key] = old  # differs: deleted, then copied anew
        changed.append(row)
    if stored:
        keys = list(zip(*stored, strict=True))
        key_names = ", ".join(f'"{column}"' for column in columns[:key_width])
        unnest = ", ".join(f"%s::{kind}[]" for kind in key_types)
        cursor.execute(
            f"DELETE FROM {table} WHERE ({key_names}) IN (SELECT * FROM unnest({unnest}))",  # noqa: S608
            [list(values) for values in keys],
        )
    copy_rows(cursor, table, columns, changed)


def ledger_marks_refresh(*, wallet_ids: list[int], now: datetime | None = None) -> int:
    """Re-mark the open ledger positions of these wallets at their token's latest price and
    bring their summaries' unrealised PnL along; returns how many wallets moved.

    Set-based and cheap (no ledger recomputation): only the mark moved, every other figure of
    the position is unchanged. Positions already at the latest price are left as they are."""
    if not wallet_ids:
        return 0
    now = now or timezone.now()
    scope = int_array(wallet_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE wallet_ledger_position p
            SET mark_price = t.latest_price, marked_at = %s, unrealized_pnl = p.shares * (t.latest_price - p.avg_price)
            FROM outcome_token t
            WHERE p.wallet_id = ANY(%s::bigint[]) AND p.status = 'open' AND p.shares > 0
              AND t.token_id = p.token_id AND t.latest_price IS NOT NULL
              AND p.mark_price IS DISTINCT FROM t.latest_price
            RETURNING p.wallet_id
            """,
            [now, scope],
        )
        moved = sorted({row[0] for row in cursor.fetchall()})
        if moved:
            # The ROI moves with the marks (its PnL includes unrealised); the rest of the summary does not.
            cursor.execute(
                """
                UPDATE wallet_ledger_summary s
                SET unrealized_pnl = marks.unrealized, known_cost_pnl = marks.known_cost_pnl,
                    roi = CASE WHEN s.invested > 0 THEN round(marks.known_cost_pnl / s.invested, 12) ELSE 0 END
                FROM (SELECT wallet_id, sum(unrealized_pnl) AS unrealized,
                             coalesce(sum(realized_pnl + settlement_pnl + unrealized_pnl) FILTER (WHERE cost_basis_known), 0)
                                 AS known_cost_pnl
                      FROM wallet_ledger_position WHERE wallet_id = ANY(%s::bigint[]) GROUP BY wallet_id) AS marks
                WHERE s.wallet_id = marks.wallet_id
                """,
                [int_array(moved)],
            )
    return len(moved)


def ledger_marks_for_batch(*, marts, markets, now: datetime, changed_from=None) -> None:
    """A compute batch's consumer (registered in MartsConfig.ready): the drain that recomputes a
    wallet re-marks its ledger too, so a price move that queued a market's holders re-marks
    them within one drain cycle, idle holders included."""
    ledger_marks_refresh(wallet_ids=[mart.wallet_id for mart in marts], now=now)


def _holders_of(condition_ids: list[str]) -> list[int]:
    if not condition_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT wallet_id FROM wallet_ledger_position WHERE condition_id = ANY(%s)",
                       [sorted(set(condition_ids))])
        return [row[0] for row in cursor.fetchall()]


def _wallet_ids_of(addresses: list[str]) -> list[int]:
    if not addresses:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM wallet WHERE address = ANY(%s)", [sorted(set(addresses))])
        return [row[0] for row in cursor.fetchall()]


def wallet_history_refetch(*, wallet_ids: list[int]) -> int:
    """Ask the activity walk for these wallets' whole history again (from start=1), once per
    drift: rows are keyed, so the re-walk lands only what was missing, and the landed rows bring
    the wallet back here. A drift that persists after it stays visible, never hidden."""
    from ingest.models import WalletCursor

    if not wallet_ids:
        return 0
    WalletCursor.objects.filter(wallet_id__in=wallet_ids, stream=selectors.ACTIVITY).update(
        cursor_value="", state={}, attempted_at=None
    )
    return WalletLedgerSummary.objects.filter(wallet_id__in=wallet_ids, history_refetch_requested_at__isnull=True) \
        .update(history_refetch_requested_at=timezone.now())


@dataclass
class LedgerRefresh:
    wallets: int = 0
    landed_rows: int = 0
    reconciled: int = 0
    drift: int = 0
    unknown: int = 0
    refetched: int = 0


def wallet_ledgers_compute_batched(*, wallet_ids: list[int], batch_size: int = LEDGER_BATCH_SIZE,
                                   lanes: int | None = None) -> None:
    """Compute the wallets' ledgers in batches of `batch_size`, `lanes` (COMPUTE_DRAIN_LANES)
    batches at once, each on its own thread, connection and transaction — as the marts drain's
    lanes: one computes in Python while another waits for PostgreSQL. The batches hold disjoint
    wallets, so no two transactions write the same rows."""
    lanes = int(settings.COMPUTE_DRAIN_LANES) if lanes is None else lanes
    if connection.in_atomic_block:
        lanes = 1  # other connections could not see what the caller's transaction wrote
    batches = [wallet_ids[start : start + batch_size] for start in range(0, len(wallet_ids), batch_size)]
    pending = iter(batches)
    claim = threading.Lock()

    def lane() -> None:
        while True:
            with claim:
                batch = next(pending, None)
            if batch is None:
                return
            wallet_ledgers_compute(wallet_ids=batch)

    def thread_lane() -> None:
        try:
            lane()
        finally:
            connections.close_all()  # this thread's connections only: Django keeps them per thread

    lanes = max(1, min(lanes, len(batches)))
    if lanes == 1:
        lane()
        return
    with ThreadPoolExecutor(max_workers=lanes - 1, thread_name_prefix="ledger-lane") as pool:
        others = [pool.submit(thread_lane) for _ in range(lanes - 1)]
        lane()  # the calling thread is a lane too, on the connection it already has
        for other in others:
            other.result()  # re-raises a lane's error once every lane has stopped


def ledgers_refresh(*, rows_per_stream: int = 20_000, batch_size: int = LEDGER_BATCH_SIZE,
                    lanes: int | None = None) -> LedgerRefresh:
    """Recompute the ledger of every wallet whose activity or positions landed since the last
    run, and of every holder of a market whose resolution landed; then move the cursors.

    `lanes` (COMPUTE_DRAIN_LANES) batches are computed at once. The cursors move only after
    every wallet is written: a failed run is read again next time.
    """
    result = LedgerRefresh()
    reached: dict[str, int] = {}
    addresses: list[str] = []
    conditions: list[str] = []
    for stream in CURSOR_STREAMS:
        cursor, _ = LedgerCursor.objects.get_or_create(stream=stream)
        landed = selectors.landed_since(stream=stream, after_id=cursor.landing_id, limit=rows_per_stream)
        result.landed_rows += len(landed)
        if landed:
            reached[stream] = landed[-1][0]
        values = [value for _id, value in landed if value]
        (conditions if stream == selectors.RESOLUTIONS else addresses).extend(values)
    wallet_ids = sorted(set(_wallet_ids_of(addresses)) | set(_holders_of(conditions)))
    wallet_ledgers_compute_batched(wallet_ids=wallet_ids, batch_size=batch_size, lanes=lanes)
    result.wallets = len(wallet_ids)
    for stream, landing_id in reached.items():
        LedgerCursor.objects.filter(stream=stream, landing_id__lt=landing_id).update(
            landing_id=landing_id, updated_at=timezone.now()
        )
    # An array literal, not `wallet_id__in`: the ORM resolves a list parameter element by element.
    statuses = fast_rows(
        "SELECT wallet_id, reconciliation_status, unknown_cost_positions, history_refetch_requested_at "
        "FROM wallet_ledger_summary WHERE wallet_id = ANY(%s::bigint[])",
        [int_array(wallet_ids)],
    ) if wallet_ids else []
    refetch, settled = [], []
    for wallet_id, status, unknown_cost, requested_at in statuses:
        setattr(result, status, getattr(result, status) + 1)
        if (status == ReconciliationStatus.DRIFT or unknown_cost) and requested_at is None:
            refetch.append(wallet_id)
        elif status == ReconciliationStatus.RECONCILED and requested_at is not None:
            settled.append(wallet_id)  # a later drift may ask again
    result.refetched = wallet_history_refetch(wallet_ids=refetch)
    if settled:
        WalletLedgerSummary.objects.filter(wallet_id__in=settled).update(history_refetch_requested_at=None)
    if wallet_ids:
        logger.info("ledgers refreshed: %s", result)
    return result
