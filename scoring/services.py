"""Writes of the scoring layer: snapshot + score history, anomalies, feed events, AI reports.

`wallet_scores_write` runs inside the drain's transaction, right after the marts of the same
wallets were replaced, so a snapshot never disagrees with the marts it summarises. Every write is
set-based (one statement per table per batch) and idempotent: change events are derived from the
previous snapshot, which a redelivered batch has already updated, and anomalies and feed events
carry a unique dedupe key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from arbitra.sql_arrays import int_array
from marts.bulk import copy_rows, fast_rows, staged_upsert
from marts.compute import MarketFacts, WalletMart, q
from marts.ledger_selectors import ledger_score_inputs_for
from scoring.ai import AiProvider, AiRateLimited, ai_provider_get
from scoring.anomalies import AnomalyRules, Candidate, anomalies_apply_cooldown, anomalies_detect
from scoring.baselines import edge_days_mark_due, late_fill_days, market_baselines
from scoring.edge import (
    NO_EDGE_EVIDENCE,
    EdgeRules,
    EdgeTest,
    MarketBaseline,
    decision_slots,
    decisions_group,
    edge_level,
    edge_test,
)
from scoring.fdr import benjamini_hochberg, fdr_state_get, q_estimate
from scoring.formulas import ScoreInputs, advice, book_features, realized_pnl_sigma, score_compute
from scoring.models import NON_DIRECTIONAL_STRATEGIES, AiReport, FeedEventType, WalletSnapshot
from scoring.selectors import news_times_for
from scoring.signals import ai_report_prediction_record, predictions_record

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def anomaly_rules() -> AnomalyRules:
    return AnomalyRules(
        lookback=timedelta(hours=settings.ANOMALY_LOOKBACK_HOURS),
        cooldown=timedelta(seconds=settings.ANOMALY_COOLDOWN_SECONDS),
        large_min_usdc=Decimal(str(settings.ANOMALY_LARGE_TRADE_MIN_USDC)),
        large_factor=Decimal(str(settings.ANOMALY_LARGE_TRADE_FACTOR)),
        liquidity_share=Decimal(str(settings.ANOMALY_LIQUIDITY_SHARE)),
        spike_min_trades=int(settings.ANOMALY_SPIKE_MIN_TRADES),
        spike_factor=Decimal(str(settings.ANOMALY_SPIKE_FACTOR)),
        pnl_jump_min_usdc=Decimal(str(settings.ANOMALY_PNL_JUMP_MIN_USDC)),
        fresh_min_usdc=Decimal(str(settings.ANOMALY_FRESH_WALLET_MIN_USDC)),
        pre_event_minutes=float(settings.ANOMALY_PRE_EVENT_MINUTES),
        pre_event_min_usdc=Decimal(str(settings.ANOMALY_PRE_EVENT_MIN_USDC)),
        live_window=timedelta(seconds=settings.ANOMALY_LIVE_WINDOW_SECONDS),
    )


def edge_rules() -> EdgeRules:
    return EdgeRules(
        decision_window=timedelta(seconds=settings.EDGE_DECISION_WINDOW_SECONDS),
        window=timedelta(minutes=settings.EDGE_WINDOW_MINUTES),
        horizon=timedelta(minutes=settings.INFO_EDGE_HORIZON_MINUTES),
        min_decisions=int(settings.EDGE_MIN_DECISIONS),
        min_markets=int(settings.EDGE_MIN_MARKETS),
        min_effect=float(settings.EDGE_MIN_EFFECT),
    )


# The snapshot columns the drain owns. The AI columns (has_ai_report, nl_summary, ai_model_id,
# ai_confidence) belong to the report writer.
SNAPSHOT_COLUMNS: list[str] = [
    "wallet_id", "total_trades", "markets_traded", "volume_total", "volume_30d", "fees_paid", "realized_pnl",
    "unrealized_pnl", "trading_pnl", "maker_rebates", "total_pnl", "roi", "win_rate", "resolved_positions",
    "winning_positions", "open_positions", "trades_7d", "pnl_7d", "pnl_30d", "realized_pnl_24h", "max_drawdown_7d",
    "stability_score", "first_trade_at", "last_trade_at", "smart_score", "confidence", "strategy_type", "pool_tier",
    "risk_level", "suitable_for", "suggested_position", "momentum", "status_7d", "info_edge_level",
    "info_edge_mean_minutes", "info_edge_stddev_minutes", "info_edge_samples", "info_edge_z", "info_edge_p",
    "info_edge_q", "info_edge_decisions", "info_edge_markets", "info_edge_wallet_rate", "info_edge_baseline_rate",
    "info_edge_effect", "info_edge_tested", "pending_changes",
    "potential_reached_at", "scored_at", "last_analyzed_at",
]
# A history row is written when one of these changes as displayed (the score in whole points):
# confidence and the score's decimals move with every trade and are not a change.
DISPLAYED_FIELDS = ("strategy_type", "pool_tier", "risk_level", "momentum", "info_edge_level")
SCORE_DISPLAY_QUANTUM = Decimal(1)
# Labels that wait for SCORING_HOLD_SECONDS before they replace the settled one; the strategy label
# also settles at once when it wins by SCORING_LABEL_MARGIN (scoring.formulas.strategy_margins).
SETTLED_FIELDS = ("strategy_type", "pool_tier", "risk_level")
# Strategy labels that come from the edge's FDR control: their q moves with every other wallet's
# p-value and with the markets' baselines, so a clear margin at one computation is no evidence that
# they will stand (measured on the 4-hour emulator run: 25 random traders labelled event_trader
# five minutes in, from a first pass over a population still thin on decisions, all back to noise
# within five minutes). They settle only after SCORING_EDGE_HOLD_SECONDS (scoring.fdr queues the
# wallets whose hold has run out).
EDGE_STRATEGIES = frozenset({"event_trader"})


@dataclass
class FeedRow:
    wallet_id: int
    event_type: str
    event_time: datetime
    payload: dict
    reason_code: str
    action_required: bool
    suggestion: str
    suggestion_zh: str
    dedupe_key: str


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


PREVIOUS_COLUMNS = [
    "wallet_id", "smart_score", "strategy_type", "pool_tier", "risk_level", "momentum", "info_edge_level",
    "confidence", "total_pnl", "scored_at", "potential_reached_at", "info_edge_p", "info_edge_q", "info_edge_tested",
    "pending_changes",
]


def _previous_snapshots(*, wallet_ids: list[int]) -> dict[int, dict]:
    """The stored snapshot of each wallet, with when it was last computed and the wallet's
    `history_backfilled_at`: when its history before Arbitra first saw it was in (None: not yet)."""
    names = [*PREVIOUS_COLUMNS, "last_analyzed_at", "history_backfilled_at"]
    columns = ", ".join(f"s.{name}" for name in PREVIOUS_COLUMNS)
    rows = fast_rows(
        f"SELECT {columns}, s.last_analyzed_at, w.history_backfilled_at FROM wallet_snapshot s "  # noqa: S608
        "JOIN wallet w ON w.id = s.wallet_id WHERE s.wallet_id = ANY(%s::bigint[])",
        [int_array(wallet_ids)],
    )
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


def _label_from_partial_history(old: dict) -> bool:
    """Whether the stored label was computed before the wallet's history was in: the change its
    arrival brings is the record completing, not the wallet changing what it does."""
    backfilled_at, computed_at = old.get("history_backfilled_at"), old.get("last_analyzed_at")
    return backfilled_at is not None and computed_at is not None and computed_at < backfilled_at


def label_settle(
    *, old: str | None, computed: str, pending: list | None, now: datetime, hold: timedelta, initial: str,
    margin: float = 0.0, clear_margin: float | None = None,
) -> tuple[str, list | None]:
    """Hysteresis of one label: (settled value, pending entry [value, since] or None).

    A computed value that differs from the settled one replaces it once it has been computed
    without interruption for `hold` (computation times, so a replay decides the same), or at once
    when it wins by `margin` ≥ `clear_margin` (scoring.formulas.strategy_margins; None: never).
    The first value, and leaving `initial` (no evidence yet), settle at once: nothing to flap from.
    """
    if old is None or old == initial or computed == old:
        return computed, None
    if clear_margin is not None and margin >= clear_margin:
        return computed, None
    since = datetime.fromisoformat(pending[1]) if pending is not None and pending[0] == computed else now
    if now - since >= hold:
        return computed, None
    return old, [computed, since.isoformat()]


class _BaselineCache:
    """Market baselines of the edge test, per worker process, for EDGE_BASELINE_TTL_SECONDS: a
    market's baseline is one grouped read of its fills, shared by every batch that trades it. An
    entry is recomputed early when a batch sees news newer than the entry's. Its age is measured
    on the batches' `now` (the clock the baseline is computed at), not the process's: a replay or
    a simulated run faster than real time would otherwise keep one baseline for hours of trading."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[float, datetime | None, MarketBaseline]] = {}
        self._lock = threading.Lock()

    def get(self, *, news: dict[int, list[datetime]], now: datetime, rules: EdgeRules) -> dict[int, MarketBaseline]:
        ttl = float(settings.EDGE_BASELINE_TTL_SECONDS)
        clock = now.timestamp()
        found: dict[int, MarketBaseline] = {}
        missing: list[int] = []
        with self._lock:
            for market_id, times in news.items():
                entry = self._entries.get(market_id)
                newest = times[-1] if times else None
                if entry is not None and clock < entry[0] and (newest is None or (entry[1] is not None and newest <= entry[1])):
                    found[market_id] = entry[2]
                else:
                    missing.append(market_id)
        if missing:
            computed = market_baselines(
                market_ids=missing, since=now - timedelta(days=settings.EDGE_BASELINE_DAYS), until=now,
                decision_window=rules.decision_window, window=rules.window,
            )
            with self._lock:
                for market_id in missing:
                    baseline = computed.get(market_id, MarketBaseline(0, 0, 0.0))
                    newest = news[market_id][-1] if news.get(market_id) else None
                    self._entries[market_id] = (clock + ttl, newest, baseline)
                    found[market_id] = baseline
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


edge_baselines = _BaselineCache()


def _edge_tests(*, marts: list[WalletMart], now: datetime, rules: EdgeRules) -> dict[int, EdgeTest]:
    """Edge test of every wallet of the batch: one news read and the baselines of the markets that
    had news (cached) for the whole batch. Only fills in markets with news are grouped into
    decisions here — the others cannot hit and are not counted (scoring.edge)."""
    traded = [mart for mart in marts if mart.fills]
    market_ids = {position.market_id for mart in traded for position in mart.positions}
    news: dict[int, list[datetime]] = {}
    if market_ids:
        news = news_times_for(
            market_ids=market_ids, since=min(m.fills[0].traded_at for m in traded),
            until=max(m.fills[-1].traded_at for m in traded) + rules.horizon,
        )
    if not news:
        return {mart.wallet_id: NO_EDGE_EVIDENCE for mart in marts}
    baselines = edge_baselines.get(news=news, now=now, rules=rules)
    since = now - timedelta(days=settings.EDGE_BASELINE_DAYS)
    tests: dict[int, EdgeTest] = {}
    for mart in marts:
        if not any(position.market_id in news for position in mart.positions):
            tests[mart.wallet_id] = NO_EDGE_EVIDENCE
            continue
        indexed = [(fill, mart.cash[i], i) for i, fill in enumerate(mart.fills) if fill.market_id in news]
        decisions = decisions_group([f for f, _c, _i in indexed], [c for _f, c, _i in indexed],
                                    window=rules.decision_window, indexes=[i for _f, _c, i in indexed])
        own = decision_slots([f for f, _c, _i in indexed if f.traded_at >= since], window=rules.decision_window)
        tests[mart.wallet_id] = edge_test(decisions, news=news, baselines=baselines, own_slots=own, rules=rules)
    return tests


def wallet_scores_write(
    *, marts: list[WalletMart], markets: dict[int, MarketFacts], now: datetime,
    changed_from: dict[int, datetime] | None = None,
) -> None:
    wallet_ids = [mart.wallet_id for mart in marts]
    # Fills of days the baselines already sealed (a backfill, a late row) make those days due.
    edge_days_mark_due(days=late_fill_days(
        marts=marts, changed_from=changed_from or {}, since=now - timedelta(days=settings.EDGE_BASELINE_DAYS),
    ))
    previous = _previous_snapshots(wallet_ids=wallet_ids)
    rules = anomaly_rules()
    erules = edge_rules()
    hold = timedelta(seconds=settings.SCORING_HOLD_SECONDS)
    edge_hold = timedelta(seconds=settings.SCORING_EDGE_HOLD_SECONDS)
    clear_margin = float(settings.SCORING_LABEL_MARGIN)
    tested_before, knots = fdr_state_get()
    tests = _edge_tests(marts=marts, now=now, rules=erules)
    # Win rate and ROI come from the wallet ledger where there is one (re-marked earlier in this
    # batch by the marts consumer registered before ours): it settles idle losers and leaves out
    # positions whose cost basis is unknown, which the fills alone cannot.
    ledgers = ledger_score_inputs_for(wallet_ids=wallet_ids)
    if tested_before == 0:
        # No pass yet (a new installation): control the FDR across this batch's tested wallets.
        # Such a q is shown as the wallet's edge level but does not yet label or score it: a batch
        # holds a few dozen wallets, and its own q clears the edge thresholds by a clear margin
        # where the population's would not (measured on the 4-hour emulator run: 116 of 180
        # strategy_change events were event_trader labels from batch q reverting to noise within
        # 20 minutes, once the first pass over every tested wallet had run).
        batch_q = benjamini_hochberg({w: test.p for w, test in tests.items() if test.tested})
    snapshot_rows: list[dict] = []
    history_rows: list[tuple] = []
    feed: list[FeedRow] = []
    candidates: list[Candidate] = []

    for mart in marts:
        test = tests[mart.wallet_id]
        old = previous.get(mart.wallet_id)
        if old is not None and old["info_edge_tested"] and test.tested and old["info_edge_p"] == test.p:
            q_value = old["info_edge_q"]  # exact from the last BH pass: keep it (see scoring.fdr)
        else:
            q_value = 1.0
            if test.tested:
                q_value = batch_q[mart.wallet_id] if tested_before == 0 else q_estimate(test.p, tested=tested_before, knots=knots)
        edge_label = edge_level(test=test, q=q_value, rules=erules)
        judged_label, judged_q = (edge_label, q_value) if tested_before > 0 else ("insufficient_data", 1.0)
        book = book_features(mart.positions)
        w24, w7, w30 = mart.windows["24h"], mart.windows["7d"], mart.windows["30d"]
        ledger = ledgers.get(mart.wallet_id)
        resolved, winning = (mart.resolved_positions, mart.winning_positions) if ledger is None \
            else (ledger.resolved_positions, ledger.winning_positions)
        win_rate = mart.win_rate if ledger is None else ledger.win_rate
        roi = mart.roi if ledger is None else ledger.roi
        score = score_compute(ScoreInputs(
            total_trades=mart.total_trades,
            markets_traded=mart.markets_traded,
            resolved_positions=resolved,
            winning_positions=winning,
            trading_pnl=mart.trading_pnl,
            realized_pnl=mart.realized_pnl,
            realized_pnl_sigma=realized_pnl_sigma(mart.positions),
            bought_usdc=mart.bought_usdc,
            buy_volume=sum((p.bought_usdc for p in mart.positions), ZERO),
            sell_volume=sum((p.sold_usdc for p in mart.positions), ZERO),
            volume_30d=w30.volume,
            trades_7d=w7.trades,
            trades_30d=w30.trades,
            pnl_7d=w7.realized_pnl,
            pnl_30d=w30.realized_pnl,
            max_drawdown_7d=mart.max_drawdown_7d,
            stability_score=mart.stability_score,
            open_concentration=mart.open_concentration,
            top_gain_share=mart.top_gain_share,
            info_edge_label=judged_label,
            two_sided_share=book.two_sided_share,
            paired_share=book.paired_share,
            pair_cost=book.pair_cost,
            paired_markets=book.paired_markets,
            held_share=book.held_share,
            sold_share=book.sold_share,
            roi_pnl=None if ledger is None else ledger.known_cost_pnl,
            roi_capital=None if ledger is None else ledger.invested,
            info_edge_q=judged_q,
        ))
        computed = {"strategy_type": score.strategy_type, "pool_tier": score.pool_tier, "risk_level": score.risk_level}
        initial = {"strategy_type": "unknown", "pool_tier": None, "risk_level": None}
        pending_old = (old or {}).get("pending_changes") or {}
        if isinstance(pending_old, str):  # jsonb read as text by the fast cursor
            pending_old = json.loads(pending_old)
        pending: dict[str, list] = {}
        settled: dict[str, str] = {}
        for name in SETTLED_FIELDS:
            field_hold, field_margin = hold, None
            if name == "strategy_type":
                field_hold, field_margin = (edge_hold, None) if computed[name] in EDGE_STRATEGIES else (hold, clear_margin)
            value, waiting = label_settle(
                old=None if old is None else old[name], computed=computed[name], pending=pending_old.get(name),
                now=now, hold=field_hold, initial=initial[name],
                margin=score.strategy_margin, clear_margin=field_margin,
            )
            settled[name] = value
            if waiting is not None:
                pending[name] = waiting
        suitable_for, suggested = advice(pool_tier=settled["pool_tier"], risk_level=settled["risk_level"])
        values = {
            "smart_score": score.smart_score, **settled, "momentum": score.momentum, "info_edge_level": edge_label,
            "confidence": score.confidence,
        }
        changed = old is None or any(old[name] != values[name] for name in DISPLAYED_FIELDS) or (
            _displayed_score(old["smart_score"]) != _displayed_score(score.smart_score)
        )
        scored_at = now if changed else old["scored_at"]
        if changed:
            history_rows.append((
                mart.wallet_id, score.smart_score, score.confidence, settled["strategy_type"], settled["pool_tier"],
                settled["risk_level"], score.momentum, edge_label, now, now, mart.last_trade_at,
            ))
        total_pnl = mart.trading_pnl  # + maker rebates, 0 until a source reports them
        snapshot_rows.append({
            "wallet_id": mart.wallet_id, "total_trades": mart.total_trades, "markets_traded": mart.markets_traded,
            "volume_total": q(mart.volume_total), "volume_30d": q(w30.volume), "fees_paid": q(mart.fees_paid),
            "realized_pnl": q(mart.realized_pnl), "unrealized_pnl": q(mart.unrealized_pnl),
            "trading_pnl": q(mart.trading_pnl), "maker_rebates": ZERO, "total_pnl": q(total_pnl), "roi": q(roi),
            "win_rate": None if win_rate is None else q(win_rate),
            "resolved_positions": resolved, "winning_positions": winning,
            "open_positions": mart.open_positions, "trades_7d": w7.trades, "pnl_7d": q(w7.realized_pnl),
            "pnl_30d": q(w30.realized_pnl), "realized_pnl_24h": q(w24.realized_pnl),
            "max_drawdown_7d": q(mart.max_drawdown_7d), "stability_score": mart.stability_score.quantize(Decimal("0.01")),
            "first_trade_at": mart.first_trade_at, "last_trade_at": mart.last_trade_at,
            "smart_score": score.smart_score, "confidence": score.confidence, "strategy_type": settled["strategy_type"],
            "pool_tier": settled["pool_tier"], "risk_level": settled["risk_level"], "suitable_for": suitable_for,
            "suggested_position": suggested, "momentum": score.momentum, "status_7d": score.status_7d,
            "info_edge_level": edge_label, "info_edge_mean_minutes": test.mean_minutes,
            "info_edge_stddev_minutes": test.stddev_minutes, "info_edge_samples": test.samples,
            "info_edge_z": test.z, "info_edge_p": test.p, "info_edge_q": q_value, "info_edge_decisions": test.decisions,
            "info_edge_markets": test.markets, "info_edge_wallet_rate": test.wallet_rate,
            "info_edge_baseline_rate": test.baseline_rate, "info_edge_effect": test.effect,
            "info_edge_tested": test.tested, "pending_changes": json.dumps(pending, sort_keys=True),
            "potential_reached_at": mart.potential_reached_at,
            "scored_at": scored_at, "last_analyzed_at": now,
        })
        feed += _change_events(mart=mart, old=old, values=values, now=now, total_pnl=total_pnl)
        wallet_candidates = anomalies_detect(mart=mart, markets=markets, paired=test.paired, now=now, rules=rules)
        for candidate in wallet_candidates:
            if candidate.alert_type == "pnl_jump":
                feed.append(_pnl_jump_event(candidate))
        candidates += wallet_candidates

    _snapshots_upsert(rows=snapshot_rows)
    _history_insert(rows=history_rows)
    new_anomalies = _anomalies_insert(candidates=candidates, wallet_ids=wallet_ids, cooldown=rules.cooldown)
    feed += [_anomaly_event(row) for row in new_anomalies if row["alert_type"] != "pnl_jump"]
    new_events = feed_events_insert(rows=feed)
    predictions_record(
        anomalies=new_anomalies, events=new_events, marts={mart.wallet_id: mart for mart in marts},
        decision_window=erules.decision_window,
    )


def _displayed_score(value: Decimal) -> Decimal:
    return Decimal(value).quantize(SCORE_DISPLAY_QUANTUM)


def _change_events(*, mart: WalletMart, old: dict | None, values: dict, now: datetime, total_pnl: Decimal) -> list[FeedRow]:
    events: list[FeedRow] = []
    w = mart.wallet_id
    # Market makers and arbitrageurs do not bet on a side: never potential wallets.
    if (mart.potential_reached_at is not None and (old is None or old["potential_reached_at"] is None)
            and values["strategy_type"] not in NON_DIRECTIONAL_STRATEGIES):
        pnl = f"{mart.realized_pnl:,.2f}"
        events.append(FeedRow(
            w, FeedEventType.POTENTIAL_REACHED, mart.potential_reached_at,
            {"before": {"potential": False}, "after": {"potential": True, "total_trades": mart.total_trades,
             "realized_pnl": float(q(mart.realized_pnl))}, "reason_code": "crossed_potential_threshold"},
            "crossed_potential_threshold", False,
            f"Crossed the potential threshold ({mart.total_trades} trades, {pnl} USDC realised): consider watching it.",
            f"达到潜力钱包门槛（{mart.total_trades} 笔交易，已实现盈亏 {pnl} USDC），可考虑关注。",
            "potential",
        ))
    if old is None:
        return events
    stamp = now.isoformat()
    if old["risk_level"] != values["risk_level"]:
        up = RISK_ORDER[values["risk_level"]] > RISK_ORDER.get(old["risk_level"], 1)
        events.append(FeedRow(
            w, FeedEventType.RISK_LEVEL_CHANGE, now,
            {"before": old["risk_level"], "after": values["risk_level"], "reason_code": "risk_up" if up else "risk_down"},
            "risk_up" if up else "risk_down", up and values["risk_level"] == "high",
            f"Risk level {old['risk_level']} → {values['risk_level']}." + (" Consider a smaller position." if up else ""),
            f"风险等级 {old['risk_level']} → {values['risk_level']}。" + ("建议降低仓位。" if up else ""),
            f"risk:{stamp}",
        ))
    # A wallet's first label (leaving `unknown`, no evidence yet) is not a reclassification, nor is
    # the change that its backfilled history brings: both are on the wallet and in its score
    # history, but a follower is told only when one label computed on the wallet's whole record
    # replaces another (issue 13: a third of the emulator's strategy_change events were first
    # labels, more came with the new wallets' histories).
    if (old["strategy_type"] != values["strategy_type"] and old["strategy_type"] != "unknown"
            and not _label_from_partial_history(old)):
        worse = values["strategy_type"] in {"lucky", "noise"}
        events.append(FeedRow(
            w, FeedEventType.STRATEGY_CHANGE, now,
            {"before": old["strategy_type"], "after": values["strategy_type"], "reason_code": "strategy_reclassified"},
            "strategy_reclassified", worse,
            f"Strategy {old['strategy_type']} → {values['strategy_type']}." + (" Re-check before following." if worse else ""),
            f"策略类型 {old['strategy_type']} → {values['strategy_type']}。" + ("跟随前请重新评估。" if worse else ""),
            f"strategy:{stamp}",
        ))
    return events


def _pnl_jump_event(candidate: Candidate) -> FeedRow:
    change = Decimal(candidate.evidence["change"])
    up = change > 0
    return FeedRow(
        candidate.wallet_id, FeedEventType.PNL_JUMP, candidate.observed_at,
        {"before": float(candidate.evidence["before"]), "after": float(candidate.evidence["after"]),
         "change": float(change), "reason_code": "pnl_up" if up else "pnl_down"},
        "pnl_up" if up else "pnl_down", not up,
        f"PnL {'rose' if up else 'fell'} by {abs(change):,.2f} USDC." + ("" if up else " Consider reducing exposure."),
        f"盈亏{'上升' if up else '下降'} {abs(change):,.2f} USDC。" + ("" if up else "建议降低跟随仓位。"),
        candidate.dedupe_key,
    )


def _anomaly_event(row: dict) -> FeedRow:
    action = row["severity"] in {"high", "critical"}
    return FeedRow(
        row["wallet_id"], FeedEventType.ANOMALY, row["observed_at"],
        {"before": None, "after": {"alert_type": row["alert_type"], "severity": row["severity"]},
         "reason_code": row["alert_type"], "anomaly_id": row["id"], "market_id": row["market_id"],
         "description": row["description"]},
        row["alert_type"], action,
        f"{row['description']}. Review the evidence before following.",
        f"异常：{row['alert_type']}（{row['severity']}）。跟随前请查看证据。",
        f"anomaly:{row['id']}",
    )


def _snapshots_upsert(*, rows: list[dict]) -> None:
    # Through a COPY-filled stage: 500 rows × 42 columns as array parameters cost more in client-side
    # adaptation than the upsert itself. The AI columns are set on insert only (the report writer owns them).
    names = SNAPSHOT_COLUMNS
    staged_upsert(
        table="wallet_snapshot", columns=names, key=["wallet_id"],
        rows=[tuple(row[name] for name in names) for row in rows],
        extra_insert={"has_ai_report": "false", "nl_summary": "''", "ai_model_id": "''"},
    )


HISTORY_COLUMNS = [
    "wallet_id", "smart_score", "confidence", "strategy_type", "pool_tier", "risk_level", "momentum", "info_edge_level",
    "scored_at", "computed_at", "valid_as_of",
]


def _history_insert(*, rows: list[tuple]) -> None:
    with connection.cursor() as cursor:
        copy_rows(cursor, "wallet_score_history", HISTORY_COLUMNS, rows)


def _anomalies_insert(*, candidates: list[Candidate], wallet_ids: list[int], cooldown: timedelta) -> list[dict]:
    if not candidates:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT ON (wallet_id, alert_type, market_id) wallet_id, alert_type, market_id, observed_at
            FROM anomaly WHERE wallet_id = ANY(%s)
            ORDER BY wallet_id, alert_type, market_id, observed_at DESC
            """,
            [wallet_ids],
        )
        last = {(wallet_id, alert_type, market_id): observed
                for wallet_id, alert_type, market_id, observed in cursor.fetchall()}
        kept = anomalies_apply_cooldown(candidates=candidates, last_observed=last, cooldown=cooldown)
        if not kept:
            return []
        cursor.execute(
            """
            INSERT INTO anomaly (wallet_id, market_id, alert_type, severity, evidence, description, dedupe_key,
                                 observed_at, acknowledged, created_at)
            SELECT w, m, t, s, e, d, k, o, false, now()
            FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::jsonb[], %s::text[], %s::text[],
                        %s::timestamptz[]) AS u(w, m, t, s, e, d, k, o)
            ON CONFLICT (wallet_id, alert_type, dedupe_key) DO NOTHING
            RETURNING id, wallet_id, market_id, alert_type, severity, description, observed_at, evidence->>'fill' AS fill_key
            """,
            [
                [c.wallet_id for c in kept], [c.market_id for c in kept], [c.alert_type for c in kept],
                [c.severity for c in kept], [Jsonb(c.evidence) for c in kept], [c.description for c in kept],
                [c.dedupe_key for c in kept], [c.observed_at for c in kept],
            ],
        )
        names = [column.name for column in cursor.description]
        return sorted((dict(zip(names, row, strict=True)) for row in cursor.fetchall()), key=lambda r: r["id"])


def feed_events_insert(*, rows: list[FeedRow]) -> list[dict]:
    """Insert feed events; one already stored under the same (wallet, type, dedupe key) is kept.
    Returns the rows inserted now (id, wallet_id, event_type, event_time)."""
    if not rows:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO feed_event (wallet_id, event_type, event_time, payload, reason_code, action_required,
                                    suggestion, suggestion_zh, dedupe_key, created_at)
            SELECT *, now() FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::jsonb[], %s::text[],
                                        %s::bool[], %s::text[], %s::text[], %s::text[])
            ON CONFLICT (wallet_id, event_type, dedupe_key) DO NOTHING
            RETURNING id, wallet_id, event_type, event_time
            """,
            [
                [r.wallet_id for r in rows], [str(r.event_type) for r in rows], [r.event_time for r in rows],
                [Jsonb(r.payload) for r in rows], [r.reason_code for r in rows], [r.action_required for r in rows],
                [r.suggestion for r in rows], [r.suggestion_zh for r in rows], [r.dedupe_key[:120] for r in rows],
            ],
        )
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --- AI reports ------------------------------------------------------------------------------


class AiReportIneligible(Exception):
    pass


def _ai_facts(snapshot: WalletSnapshot) -> dict:
    """The facts a report is written from; their digest identifies the input."""
    return {
        "wallet_id": snapshot.wallet_id,
        "total_trades": snapshot.total_trades,
        "markets_traded": snapshot.markets_traded,
        "realized_pnl": float(snapshot.realized_pnl),
        "unrealized_pnl": float(snapshot.unrealized_pnl),
        "volume_30d": float(snapshot.volume_30d),
        "win_rate": _number(snapshot.win_rate),
        "resolved_positions": snapshot.resolved_positions,
        "open_positions": snapshot.open_positions,
        "pnl_7d": float(snapshot.pnl_7d),
        "pnl_30d": float(snapshot.pnl_30d),
        "max_drawdown_7d": float(snapshot.max_drawdown_7d),
        "stability_score": float(snapshot.stability_score),
        "smart_score": float(snapshot.smart_score),
        "confidence": float(snapshot.confidence),
        "strategy_type": snapshot.strategy_type,
        "pool_tier": snapshot.pool_tier,
        "risk_level": snapshot.risk_level,
        "momentum": snapshot.momentum,
        "info_edge_level": snapshot.info_edge_level,
    }


def ai_report_generate(
    *, wallet_id: int, force: bool = False, provider: AiProvider | None = None, now: datetime | None = None
) -> tuple[AiReport, bool]:
    """The wallet's report: a cached one younger than AI_CACHE_SECONDS unless `force`, else a new one.

    Returns (report, created). Raises AiReportIneligible for a wallet without enough facts and
    AiRateLimited when the provider refuses (nothing is written then).
    """
    now = now or timezone.now()
    snapshot = WalletSnapshot.objects.filter(wallet_id=wallet_id).first()
    minimum = int(settings.AI_MIN_TRADES)
    if snapshot is None or snapshot.total_trades < minimum:
        raise AiReportIneligible(f"wallet needs at least {minimum} computed trades for a report")
    cache = timedelta(seconds=int(settings.AI_CACHE_SECONDS))
    if not force:
        cached = AiReport.objects.filter(wallet_id=wallet_id, created_at__gte=now - cache).order_by("-created_at", "-id").first()
        if cached is not None:
            return cached, False
    facts = _ai_facts(snapshot)
    draft = (provider or ai_provider_get()).write(facts=facts)
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        report = AiReport.objects.create(
            wallet_id=wallet_id, model_id=draft.model_id, report=draft.report, nl_summary=draft.nl_summary,
            risk_warnings=draft.risk_warnings, confidence=draft.confidence, input_digest=digest,
            input_tokens=draft.input_tokens, output_tokens=draft.output_tokens, latency_ms=draft.latency_ms, created_at=now,
        )
        WalletSnapshot.objects.filter(wallet_id=wallet_id).update(
            has_ai_report=True, nl_summary=draft.nl_summary, ai_model_id=draft.model_id, ai_confidence=draft.confidence
        )
        feed_events_insert(rows=[FeedRow(
            wallet_id, FeedEventType.AI_REPORT, now,
            {"before": None, "after": {"report_id": report.pk, "model_id": draft.model_id}, "reason_code": "new_report",
             "nl_summary": draft.nl_summary},
            "new_report", False, "A new analysis report is available.", "新的分析报告已生成。", f"report:{report.pk}",
        )])
        ai_report_prediction_record(report_id=report.pk, wallet_id=wallet_id, at=now)
    return report, True


def ai_reports_batch(
    *, limit: int | None = None, spacing_seconds: float | None = None, provider: AiProvider | None = None,
    sleep=time.sleep,
) -> dict[str, int]:
    """Write reports for the best-scored eligible wallets without a fresh one, one at a time with
    `spacing_seconds` between provider calls; stop at the first 429 and leave the rest for later."""
    limit = limit if limit is not None else int(settings.AI_BATCH_SIZE)
    spacing = spacing_seconds if spacing_seconds is not None else float(settings.AI_BATCH_SPACING_SECONDS)
    cache = timedelta(seconds=int(settings.AI_CACHE_SECONDS))
    minimum = int(settings.AI_MIN_TRADES)
    fresh = AiReport.objects.filter(created_at__gte=timezone.now() - cache).values("wallet_id")
    wallet_ids = list(
        WalletSnapshot.objects.filter(pool_tier__in=["strategy", "star"], total_trades__gte=minimum)
        .exclude(wallet_id__in=fresh)
        .order_by("-smart_score", "wallet_id")
        .values_list("wallet_id", flat=True)[:limit]
    )
    provider = provider or ai_provider_get()
    written = 0
    for position, wallet_id in enumerate(wallet_ids):
        if position:
            sleep(spacing)
        try:
            _report, created = ai_report_generate(wallet_id=wallet_id, provider=provider)
        except AiRateLimited:
            logger.warning("AI provider rate-limited the batch after %d reports", written)
            return {"candidates": len(wallet_ids), "written": written, "rate_limited": 1}
        written += int(created)
    return {"candidates": len(wallet_ids), "written": written, "rate_limited": 0}
