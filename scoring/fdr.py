"""False discovery rate across wallets (Benjamini–Hochberg) for the information-edge labels.

BH needs every tested wallet's p-value, but the drain recomputes only changed wallets. So the drain
stores each wallet's p and effect and estimates its q from the knots of the last exact pass
(`q_estimate`); a periodic pass (`edge_fdr_refresh`, every EDGE_FDR_INTERVAL_SECONDS) computes the
exact q of every tested wallet in one set-based statement — rank by p, q_(i) = min_{j ≥ i} p_(j)·m/j —
updates only the rows whose label or q changed (beyond a tolerance, skipping rows a drain batch
holds), and queues the relabelled wallets so their strategy label and feed follow. A wallet whose
p did not change keeps the exact q of the last pass, so the drain and the pass never undo each other.
"""

from __future__ import annotations

import bisect
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ingest.changes import changed_wallets_push
from scoring.edge import MILD_Q, PROCESSING_Q
from scoring.models import EdgeFdrState

EXACT_KNOTS = 200
QUANTILE_KNOTS = 200


def q_estimate(p: float, *, tested: int, knots: list[list[float]]) -> float:
    """q of a p-value against the last pass: p·m / rank, the rank read from the (p, rank) knots
    (a step below the first knot: the new p would rank first)."""
    if tested <= 0 or not knots:
        return min(1.0, p)
    ps = [knot[0] for knot in knots]
    at = bisect.bisect_right(ps, p)
    if at == 0:
        rank = 1.0
    elif at == len(knots):
        rank = float(tested)
    else:
        (p0, r0), (p1, r1) = knots[at - 1], knots[at]
        rank = r0 + (r1 - r0) * ((p - p0) / (p1 - p0) if p1 > p0 else 0.0)
    return min(1.0, p * tested / max(1.0, rank))


def benjamini_hochberg(p_values: dict[int, float]) -> dict[int, float]:
    """Exact BH q-values of a set of p-values (the same rule as the pass, in Python)."""
    ranked = sorted(p_values.items(), key=lambda item: (item[1], item[0]))
    m = len(ranked)
    q: dict[int, float] = {}
    running = 1.0
    for rank in range(m, 0, -1):
        key, p = ranked[rank - 1]
        running = min(running, p * m / rank)
        q[key] = min(1.0, running)
    return q


def fdr_state_get() -> tuple[int, list[list[float]]]:
    state = EdgeFdrState.objects.filter(pk=1).values_list("tested", "knots").first()
    return state if state is not None else (0, [])


# Every q moves a little whenever m does; a row is rewritten only when its label changes or its q
# moves by more than Q_TOLERANCE (absolute) + 1 % — otherwise each pass would rewrite every tested
# row. Rows a drain batch holds right now are skipped, not waited for (and never deadlocked on):
# that batch writes its own estimate, and the next pass brings it to the exact q.
Q_TOLERANCE = 0.001

REFRESH_SQL = """
WITH ranked AS (
    SELECT wallet_id, info_edge_p AS p, info_edge_effect AS effect, info_edge_q AS old_q, info_edge_level AS old_level,
           row_number() OVER (ORDER BY info_edge_p, wallet_id) AS r, count(*) OVER () AS m
    FROM wallet_snapshot WHERE info_edge_tested
), q AS (
    SELECT wallet_id, effect, old_q, old_level,
           least(1.0, min(p * m / r) OVER (ORDER BY p DESC, wallet_id DESC ROWS UNBOUNDED PRECEDING)) AS q
    FROM ranked
), labelled AS (
    SELECT wallet_id, q, old_q, old_level,
           CASE WHEN q < %(processing)s AND effect >= %(min_effect)s THEN 'processing_edge'
                WHEN q < %(mild)s AND effect > 0 THEN 'mild_edge' ELSE 'no_edge' END AS level
    FROM q
), changed AS (
    SELECT * FROM labelled WHERE level <> old_level OR abs(q - old_q) > %(tolerance)s + 0.01 * q
), locked AS (
    SELECT s.wallet_id FROM wallet_snapshot s JOIN changed c ON c.wallet_id = s.wallet_id
    ORDER BY s.wallet_id FOR UPDATE OF s SKIP LOCKED
)
UPDATE wallet_snapshot s SET info_edge_q = c.q, info_edge_level = c.level
FROM changed c JOIN locked l ON l.wallet_id = c.wallet_id
WHERE s.wallet_id = c.wallet_id
RETURNING s.wallet_id, c.level <> c.old_level
"""

KNOTS_SQL = """
SELECT p, r FROM (
    SELECT info_edge_p AS p, row_number() OVER (ORDER BY info_edge_p, wallet_id) AS r, count(*) OVER () AS m
    FROM wallet_snapshot WHERE info_edge_tested
) ranked
WHERE r <= %(exact)s OR r %% greatest(1, m / %(quantiles)s) = 0 OR r = m
ORDER BY r
"""


# Wallets waiting to become event_trader whose hold has run out (scoring.services.EDGE_STRATEGIES):
# a wallet that trades no more would otherwise wait for its next fill to settle.
EDGE_HOLD_DUE_SQL = """
SELECT wallet_id FROM wallet_snapshot
WHERE pending_changes -> 'strategy_type' ->> 0 = 'event_trader'
  AND (pending_changes -> 'strategy_type' ->> 1)::timestamptz <= %(due)s
"""


def edge_fdr_refresh(*, now: datetime | None = None) -> dict[str, float]:
    """The exact BH pass (see the module docstring). Returns counts and the pass's duration."""
    now = now or timezone.now()
    started = time.monotonic()
    params = {"processing": PROCESSING_Q, "mild": MILD_Q, "min_effect": float(settings.EDGE_MIN_EFFECT),
              "exact": EXACT_KNOTS, "quantiles": QUANTILE_KNOTS, "tolerance": Q_TOLERANCE}
    with transaction.atomic(), connection.cursor() as cursor:
        # One pass at a time; a second runner finds the lock held and leaves the work to the first.
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [0x45444745])
        if not cursor.fetchone()[0]:
            return {"skipped": 1}
        cursor.execute(REFRESH_SQL, params)
        updated = cursor.fetchall()
        cursor.execute(KNOTS_SQL, params)
        knots = [[float(p), int(r)] for p, r in cursor.fetchall()]
        tested = knots[-1][1] if knots else 0
        relabelled = [wallet_id for wallet_id, level_changed in updated if level_changed]
        cursor.execute(EDGE_HOLD_DUE_SQL, {"due": now - timedelta(seconds=settings.SCORING_EDGE_HOLD_SECONDS)})
        hold_due = [row[0] for row in cursor.fetchall()]
        seconds = time.monotonic() - started
        EdgeFdrState.objects.update_or_create(
            pk=1, defaults={"computed_at": now, "tested": tested, "knots": knots, "seconds": seconds,
                            "changed": len(relabelled)},
        )
    if relabelled or hold_due:
        # Their strategy label and feed depend on the edge label: the drain brings them along.
        changed_wallets_push(wallet_ids=sorted({*relabelled, *hold_due}))
    return {"tested": tested, "updated": len(updated), "relabelled": len(relabelled), "hold_due": len(hold_due),
            "seconds": round(seconds, 4)}
