"""The scorecard's inputs: every signal recorded as a prediction about one side of a market, then
followed through (ARCHITECTURE §8: scores are point-in-time, signals are judged).

Which side a signal implies: an anomaly about a fill backs the side that fill bought (a BUY of a
token backs that token, a SELL backs the other outcome of its market); an anomaly without a fill,
and a wallet-level feed event (strategy change, risk level change, potential reached), backs the
side of the wallet's latest decision at or before the signal (in the anomaly's market when it has
one). Feed events that only relay an anomaly (`anomaly`, `pnl_jump`) are that anomaly's signal,
not a second one. An AI report (kind `ai_report`) is written outside the drain: it is recorded when
it is written (`ai_report_prediction_record`), backing the side of the wallet's latest fill at or
before the report (the latest decision's side), like a wallet-level feed event.

The label of a prediction is the wallet's strategy as scored at the signal's trade time
(`scoring.selectors.scores_as_of`: the newest history row computed at or before it), never a
score computed after the trade it judges; a wallet not scored by then is `unscored`.

Following through (`signals_follow`, periodic): the implied side's price at the signal, +1 h and
+24 h is the last fill price of that token at or before the moment (or 1 − the other outcome's when
the token itself has no fill yet); its settlement value is 1 (won), 0 (lost) or 0.5 (void) once the
market resolves. The same figures for the opposite side are the reverse control. A prediction is
followed through once it has its +24 h price and its settlement.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from scoring.edge import decisions_group
from scoring.selectors import scores_as_of

# The AI report's feed event is recorded with the report itself (ai_report_prediction_record).
RELAYED_FEED_TYPES = {"anomaly", "pnl_jump", "ai_report"}
FOLLOW_BATCH = 5000


def _latest_decision(decisions: list, *, at: datetime, market_id: int | None):
    chosen = None
    for decision in decisions:
        if decision.at > at:
            break
        if market_id is None or decision.market_id == market_id:
            chosen = decision
    return chosen


def predictions_record(*, anomalies: list[dict], events: list[dict], marts: dict, decision_window: timedelta) -> int:
    """Record the signals just written (new anomalies and feed events of a drain batch; `marts` by
    wallet id). Decisions are grouped only for the wallets that have a signal."""
    grouped: dict[int, list] = {}

    def decisions_of(wallet_id: int) -> list:
        if wallet_id not in grouped:
            mart = marts.get(wallet_id)
            grouped[wallet_id] = [] if mart is None else decisions_group(mart.fills, mart.cash, window=decision_window)
        return grouped[wallet_id]

    drafts: list[tuple] = []  # (kind, source_id, wallet_id, market_id, token_id, side, signal_at)
    for row in anomalies:
        wallet_id, market_id, at = row["wallet_id"], row["market_id"], row["observed_at"]
        key = row.get("fill_key")
        fills = marts[wallet_id].fills if wallet_id in marts else []
        fill = next((f for f in fills if f.idempotency_key == key), None) if key else None
        if fill is not None:
            drafts.append((f"anomaly:{row['alert_type']}", row["id"], wallet_id, fill.market_id, fill.token_id, fill.side, at))
            continue
        decision = _latest_decision(decisions_of(wallet_id), at=at, market_id=market_id)
        if decision is not None:
            drafts.append((f"anomaly:{row['alert_type']}", row["id"], wallet_id, decision.market_id, decision.token_id,
                           decision.side, at))
    for row in events:
        event_type = str(row["event_type"])
        if event_type in RELAYED_FEED_TYPES:
            continue
        decision = _latest_decision(decisions_of(row["wallet_id"]), at=row["event_time"], market_id=None)
        if decision is None:
            continue
        kind = "potential" if event_type == "potential_reached" else f"feed:{event_type}"
        drafts.append((kind, row["id"], row["wallet_id"], decision.market_id, decision.token_id, decision.side,
                       row["event_time"]))
    return _predictions_insert(drafts=drafts)


LATEST_FILL_SQL = """
SELECT market_id, token_id, side FROM trade_fill
WHERE wallet_id = %s AND traded_at <= %s ORDER BY traded_at DESC, id DESC LIMIT 1
"""


def ai_report_prediction_record(*, report_id: int, wallet_id: int, at: datetime) -> int:
    """Record an AI report as a prediction: the side of the wallet's latest fill at or before `at`
    (every fill of a decision has its market, token and side), labelled as scored at `at`."""
    with connection.cursor() as cursor:
        cursor.execute(LATEST_FILL_SQL, [wallet_id, at])
        latest = cursor.fetchone()
    if latest is None:
        return 0
    market_id, token_id, side = latest
    return _predictions_insert(drafts=[("ai_report", report_id, wallet_id, market_id, token_id, side, at)])


def _predictions_insert(*, drafts: list[tuple]) -> int:
    """drafts: (kind, source_id, wallet_id, market_id, token_id, side, signal_at); the label is the
    wallet's strategy as scored at signal_at. A SELL backs the other outcome of its market."""
    if not drafts:
        return 0
    scores = scores_as_of(queries=[(d[2], d[6]) for d in drafts])
    labels = [scores[(d[2], d[6])].strategy_type if (d[2], d[6]) in scores else "unscored" for d in drafts]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO signal_prediction (kind, source_id, wallet_id, market_id, token_id, reverse_token_id, signal_at,
                                           label, followed_through, created_at)
            SELECT u.kind, u.source_id, u.wallet_id, u.market_id,
                   CASE WHEN u.side = 'BUY' THEN u.token_id ELSE c.token_id END,
                   CASE WHEN u.side = 'BUY' THEN coalesce(c.token_id, '') ELSE u.token_id END,
                   u.signal_at, u.label, false, now()
            FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::timestamptz[],
                        %s::text[]) AS u(kind, source_id, wallet_id, market_id, token_id, side, signal_at, label)
            LEFT JOIN LATERAL (
                SELECT o2.token_id FROM outcome_token o1
                JOIN outcome_token o2 ON o2.market_id = o1.market_id AND o2.token_id <> o1.token_id
                WHERE o1.token_id = u.token_id ORDER BY o2.outcome_index LIMIT 1
            ) c ON true
            WHERE u.side = 'BUY' OR c.token_id IS NOT NULL
            ON CONFLICT (kind, source_id) DO NOTHING
            """,
            [[d[0] for d in drafts], [d[1] for d in drafts], [d[2] for d in drafts], [d[3] for d in drafts],
             [d[4] for d in drafts], [d[5] for d in drafts], [d[6] for d in drafts], labels],
        )
        return cursor.rowcount


def _price_at(token: str, other: str, moment: str) -> str:
    """SQL: the side's price at `moment` — its last fill, else 1 − the other outcome's last fill."""
    last = (
        "(SELECT f.price FROM trade_fill f WHERE f.market_id = p.market_id AND f.token_id = {token} "
        "AND f.traded_at <= {moment} ORDER BY f.traded_at DESC LIMIT 1)"
    )
    return (f"coalesce({last.format(token=token, moment=moment)}, "
            f"1 - {last.format(token=other, moment=moment)})")


def _settlement(token: str) -> str:
    return f"""(SELECT CASE WHEN m.is_void THEN 0.5 WHEN m.winner_index IS NULL THEN NULL
        WHEN o.outcome_index = m.winner_index THEN 1 ELSE 0 END
        FROM market m JOIN outcome_token o ON o.market_id = m.id AND o.token_id = {token} WHERE m.id = p.market_id)"""  # noqa: S608


# Built from column expressions of this module only; the values go as parameters.
FOLLOW_SQL = f"""
WITH due AS (
    SELECT id FROM signal_prediction
    WHERE NOT followed_through AND signal_at <= %(now)s ORDER BY signal_at LIMIT %(limit)s
)
UPDATE signal_prediction p SET
    price_at_signal = coalesce(p.price_at_signal, {_price_at("p.token_id", "p.reverse_token_id", "p.signal_at")}),
    reverse_price_at_signal = coalesce(
        p.reverse_price_at_signal, {_price_at("p.reverse_token_id", "p.token_id", "p.signal_at")}),
    price_1h = CASE WHEN p.price_1h IS NULL AND p.signal_at + interval '1 hour' <= %(now)s
               THEN {_price_at("p.token_id", "p.reverse_token_id", "p.signal_at + interval '1 hour'")}
               ELSE p.price_1h END,
    price_24h = CASE WHEN p.price_24h IS NULL AND p.signal_at + interval '24 hours' <= %(now)s
                THEN {_price_at("p.token_id", "p.reverse_token_id", "p.signal_at + interval '24 hours'")}
                ELSE p.price_24h END,
    settlement_value = coalesce(p.settlement_value, {_settlement("p.token_id")}),
    reverse_settlement_value = coalesce(p.reverse_settlement_value, {_settlement("p.reverse_token_id")})
FROM due WHERE p.id = due.id
"""  # noqa: S608

CLOSE_SQL = """
UPDATE signal_prediction SET followed_through = true
WHERE NOT followed_through AND settlement_value IS NOT NULL AND price_24h IS NOT NULL
"""


def signals_follow(*, now: datetime | None = None, limit: int = FOLLOW_BATCH) -> dict[str, int]:
    """Fill in the prices and settlements that became due (oldest open predictions first)."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(FOLLOW_SQL, {"now": now, "limit": limit})
        updated = cursor.rowcount
        cursor.execute(CLOSE_SQL)
        closed = cursor.rowcount
    return {"updated": updated, "closed": closed}


