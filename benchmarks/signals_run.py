"""Signals on the emulator's planted roles: N simulated hours through the real jobs at their default
intervals, then what the labels, the edge ranking and the scorecard say about each role.

    .venv/bin/python benchmarks/signals_run.py [--hours 4] [--wallets 400] [--markets 60] [--seed 13]
        [--rate-multiplier 0.5] [--history-minutes 180]

The default rate is half the emulator's steady one (~0.75 transactions a virtual second, ~13,000
fills an hour): the drain recomputes each changed wallet from all its fills, and at the full rate
four hours take over an hour on a 2-core machine.

The emulator runs the `signals` scenario (steady trading, resolutions with news, and the planted
roles: five insiders buying the winner 10-60 minutes before the market's news item, one market
maker, one arbitrageur, everyone else at random moments) over real HTTP on a manual clock. This
script plays beat: every 5 virtual seconds it runs each periodic job of
`arbitra.schedules.periodic_jobs()` whose default interval has passed, through its Celery task
(in this process, eagerly) — trades, gaps, wallet history, activity, positions, resolutions,
markets, the news feed (the emulator's RSS registered as an ordinary feed), the drain, ledgers,
reconcile, window slide, the FDR pass, signal follow-through and AI reports. As with one worker
per queue, the `ingest` jobs and the `compute` jobs of a step run at the same time (two threads),
and the next step begins when both are done.

Clocks. Virtual time starts at the wall clock's now and runs ahead of it (4 hours in minutes).
The jobs read the time through `django.utils.timezone.now`, which follows the virtual clock here,
so every window, baseline and cooldown is measured in virtual time. PostgreSQL's `now()` — the
`ingested_at` a fill is stamped with — stays the wall clock, which is never later than virtual
time: a fill read by the live job counts as live (stored within ANOMALY_LIVE_WINDOW_SECONDS of its
trade) as it would in production. The cost: a fill of the run fetched late by a backfill counts as
live too (its trade time is ahead of the wall clock); only the history before the start
(`--history-minutes`) is old on both clocks.

Baselines. A market's edge baseline is the share of its trading that falls within an hour before
its news. The emulator's markets trade from the start of the history until they close, so a
market resolving early in the run has most of its life inside that hour: with an hour of history a
market resolving x minutes into the run has ~60 / (60 + x) of its decisions there (every one when
x < 60, as the stored fills begin at the history's start). A real market trades for days before
its news; three hours of history (`--history-minutes 180`, the test's too) put the hour before the
resolution news at a third or less of a market's stored life. The feed reader's linking by named
terms (a month, an asset) adds each headline to many markets, which raises every baseline further.

Wall clock (2 shared cores, 400 wallets): ~11 min per simulated hour, ~46 min for 4 hours, most of
it the drain's marts recompute (~20 ms a wallet), the activity job (~3 s a run) and the ledgers.

Runs in a database of its own (`<DATABASE_URL db>_signals`), created and dropped here. The test
(tests/test_scoring_planted_roles.py) runs `signals_simulate` on a smaller world for one hour.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEP_SECONDS = 5  # the shortest default interval (the drain's)
EDGE_FLAGS = ("processing_edge", "mild_edge")


@dataclass
class SignalsRun:
    """What a run measured (see `signals_report` for its printout)."""

    hours: float
    seconds: float
    roles: dict
    strategy_labels: dict[str, int]
    edge_labels: dict[str, int]
    scored: int
    tested: int
    # address -> (rank in scoring.selectors.edge_ranking, None when untested; edge label; strategy)
    insiders: dict[str, tuple[int | None, str, str]]
    # address -> the edge test's figures (q, p, wallet_rate, baseline_rate, decisions, markets)
    insider_tests: dict[str, dict]
    market_maker: dict
    arbitrageur: dict
    random_scored: int
    random_flagged: int
    best_random_rank: int | None
    strategy_changes_per_hour: dict[int, int]
    strategy_changes_max_per_wallet: int
    # Of those, the ones from one settled label to another (not a wallet's first label, leaving `unknown`).
    strategy_relabels: int
    strategy_relabels_max_per_wallet: int
    history_rows_per_hour: dict[int, int]
    scorecard: list[dict]
    job_runs: dict[str, int] = field(default_factory=dict)
    job_failures: dict[str, int] = field(default_factory=dict)
    job_seconds: dict[str, float] = field(default_factory=dict)


class InProcessEmulator:
    """The emulator in this process (`devtools.emulator.serve`): what the test uses."""

    def __init__(self, server) -> None:
        self.server = server
        self.url = server.url

    def advance(self, seconds: int) -> None:
        self.server.advance(seconds)

    def now(self) -> float:
        return self.server.world.now()

    def roles(self) -> dict:
        return self.server.world.roles()

    def shutdown(self) -> None:
        self.server.shutdown()


class SubprocessEmulator:
    """The emulator in a process of its own (`python -m devtools.emulator`, manual clock): its
    generation and rendering run on the other core instead of sharing this process's GIL with the
    jobs. Virtual time moves only when we advance it, so it is known here without asking."""

    def __init__(self, *, seed: int, start: int, history_seconds: int, wallets: int, markets: int,
                 rate_multiplier: float = 1.0) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.emulator", "--port", "0", "--clock", "manual", "--scenario", "signals",
             "--seed", str(seed), "--start", str(start), "--history", str(history_seconds),
             "--wallets", str(wallets), "--markets", str(markets), "--rate-multiplier", str(rate_multiplier)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        first = self.process.stdout.readline()
        if " on http" not in first:
            self.process.kill()
            raise RuntimeError(f"emulator did not start: {first!r}")
        self.url = first.split(" on ", 1)[1].split()[0]
        self._now = float(start)

    def advance(self, seconds: int) -> None:
        import requests

        requests.post(f"{self.url}/_control/advance", params={"seconds": seconds}, timeout=60).raise_for_status()
        self._now += seconds

    def now(self) -> float:
        return self._now

    def roles(self) -> dict:
        import requests

        return requests.get(f"{self.url}/_control/state", timeout=60).json()["roles"]

    def shutdown(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@contextlib.contextmanager
def jobs_follow_virtual_clock(upstream) -> Iterator[None]:
    """`timezone.now()` answers the emulator's virtual time while the jobs run (see the docstring)."""
    from django.utils import timezone

    real_now = timezone.now
    timezone.now = lambda: datetime.fromtimestamp(upstream.now(), UTC)
    try:
        yield
    finally:
        timezone.now = real_now


def signals_simulate(
    *, upstream, hours: float, progress: Callable[[str], None] | None = None, step_seconds: int = STEP_SECONDS
) -> SignalsRun:
    """Play beat over `hours` of virtual time against a running `signals` emulator (an
    `InProcessEmulator` or `SubprocessEmulator`), then measure. The caller has pointed the Data API
    and Gamma settings at `upstream.url` and migrated the database."""
    from django.conf import settings
    from django.db import connections

    from arbitra.celery import app
    from arbitra.schedules import periodic_jobs
    from ingest.models import OffchainFeed

    app.loader.import_default_modules()
    # The template writer has no rate limit to respect: no real seconds between its reports.
    settings.AI_BATCH_SPACING_SECONDS = 0
    OffchainFeed.objects.get_or_create(url=f"{upstream.url}/rss.xml", defaults={"name": "Emulator wire"})
    queues: dict[str, list] = collections.defaultdict(list)
    for job in periodic_jobs():
        queues[job.queue].append(job)
    runs: collections.Counter = collections.Counter()
    failures: collections.Counter = collections.Counter()
    spent: collections.Counter = collections.Counter()
    last_run: dict[str, float] = {}
    started = time.perf_counter()
    start_virtual = upstream.now()
    total = int(hours * 3600)

    def run_due(jobs: list, now: float) -> None:
        for job in jobs:
            previous = last_run.get(job.name)
            if previous is not None and now - previous < job.every_seconds:
                continue
            last_run[job.name] = now
            began = time.perf_counter()
            result = app.tasks[job.task].apply()
            spent[job.name] += time.perf_counter() - began
            runs[job.name] += 1
            if result.failed():
                failures[job.name] += 1
                if failures[job.name] == 1 and progress:
                    progress(f"{job.name} failed: {result.traceback.strip().splitlines()[-1]}")

    def compute_lane(now: float) -> None:
        run_due(queues["compute"], now)

    with jobs_follow_virtual_clock(upstream), ThreadPoolExecutor(max_workers=1) as compute:
        try:
            for elapsed in range(step_seconds, total + step_seconds, step_seconds):
                upstream.advance(step_seconds)
                now = upstream.now()
                lane = compute.submit(compute_lane, now)
                run_due([job for name, jobs in queues.items() if name != "compute" for job in jobs], now)
                lane.result()
                if progress and elapsed % 1800 == 0:
                    progress(f"virtual {elapsed / 3600:.1f} h after {time.perf_counter() - started:.0f} s")
        finally:
            compute.submit(connections.close_all).result()  # the lane thread's own connections
        report = _measure(upstream=upstream, start=datetime.fromtimestamp(start_virtual, UTC), hours=hours)
    report.seconds = time.perf_counter() - started
    report.job_runs, report.job_failures = dict(runs), dict(failures)
    report.job_seconds = {name: round(seconds, 1) for name, seconds in spent.most_common()}
    return report


def _measure(*, upstream, start: datetime, hours: float) -> SignalsRun:
    from ingest.models import Wallet
    from scoring.models import FeedEvent, FeedEventType, WalletScoreHistory, WalletSnapshot
    from scoring.selectors import edge_ranking, signal_scorecard

    roles = upstream.roles()
    ids = dict(Wallet.objects.values_list("address", "id"))
    snapshots = {s.wallet_id: s for s in WalletSnapshot.objects.all()}
    ranking = edge_ranking()
    rank = {wallet_id: position + 1 for position, wallet_id in enumerate(ranking)}

    def role(address: str) -> dict:
        snapshot = snapshots.get(ids.get(address, -1))
        if snapshot is None:
            return {"address": address, "scored": False}
        return {
            "address": address, "scored": True, "strategy": snapshot.strategy_type,
            "edge": snapshot.info_edge_level, "trades": snapshot.total_trades, "markets": snapshot.markets_traded,
            "trading_pnl": float(snapshot.trading_pnl), "volume": float(snapshot.volume_total),
        }

    insiders, insider_tests = {}, {}
    for address in roles["insiders"]:
        snapshot = snapshots.get(ids.get(address, -1))
        insiders[address] = (
            rank.get(snapshot.wallet_id) if snapshot else None,
            snapshot.info_edge_level if snapshot else "unscored",
            snapshot.strategy_type if snapshot else "unscored",
        )
        if snapshot:
            insider_tests[address] = {
                "q": snapshot.info_edge_q, "p": snapshot.info_edge_p, "wallet_rate": snapshot.info_edge_wallet_rate,
                "baseline_rate": snapshot.info_edge_baseline_rate, "decisions": snapshot.info_edge_decisions,
                "markets": snapshot.info_edge_markets,
            }
    randoms = [snapshots[ids[a]] for a in roles["random_traders"] if ids.get(a) in snapshots]
    random_ranks = [rank[s.wallet_id] for s in randoms if s.wallet_id in rank]

    def per_hour(queryset, field_name: str) -> dict[int, int]:
        epoch = start.timestamp()
        counted = collections.Counter()
        for moment in queryset.values_list(field_name, flat=True):
            counted[int((moment.timestamp() - epoch) // 3600)] += 1
        return dict(sorted(counted.items()))

    strategy_changes = FeedEvent.objects.filter(event_type=FeedEventType.STRATEGY_CHANGE)
    changes_per_wallet = collections.Counter(strategy_changes.values_list("wallet_id", flat=True))
    relabels_per_wallet = collections.Counter(
        strategy_changes.exclude(payload__before="unknown").values_list("wallet_id", flat=True))
    return SignalsRun(
        hours=hours, seconds=0.0, roles=roles, insider_tests=insider_tests,
        strategy_labels=dict(collections.Counter(s.strategy_type for s in snapshots.values()).most_common()),
        edge_labels=dict(collections.Counter(s.info_edge_level for s in snapshots.values()).most_common()),
        scored=len(snapshots), tested=len(ranking), insiders=insiders,
        market_maker=role(roles["market_maker"]), arbitrageur=role(roles["arbitrageur"]),
        random_scored=len(randoms), random_flagged=sum(1 for s in randoms if s.info_edge_level in EDGE_FLAGS),
        best_random_rank=min(random_ranks, default=None),
        strategy_changes_per_hour=per_hour(strategy_changes, "event_time"),
        strategy_changes_max_per_wallet=max(changes_per_wallet.values(), default=0),
        strategy_relabels=sum(relabels_per_wallet.values()),
        strategy_relabels_max_per_wallet=max(relabels_per_wallet.values(), default=0),
        history_rows_per_hour=per_hour(WalletScoreHistory.objects.all(), "computed_at"),
        scorecard=signal_scorecard(),
    )


def _number(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def signals_report(run: SignalsRun) -> str:
    lines = [
        f"simulated {run.hours:g} h of 'signals' in {run.seconds:.0f} s wall clock; {run.scored} wallets scored, "
        f"{run.tested} tested for an information edge",
        "strategy labels: " + ", ".join(
            f"{k}={v} ({v / run.scored:.1%})" for k, v in run.strategy_labels.items()),
        "info-edge classification: " + ", ".join(f"{k}={v}" for k, v in run.edge_labels.items()),
        "planted insiders (edge ranking: effect > 0 by q first; edge; strategy):",
    ]
    for address, (position, edge, strategy) in run.insiders.items():
        test = run.insider_tests.get(address)
        figures = (f"  q {test['q']:.4g} p {test['p']:.4g} wallet_rate {test['wallet_rate']:.3f} baseline "
                   f"{test['baseline_rate']:.3f} decisions {test['decisions']} markets {test['markets']}") if test else ""
        lines.append(f"  {address}  rank {position if position is not None else 'untested'}  {edge}  {strategy}{figures}")
    lines.append(f"best-ranked random trader: {run.best_random_rank}")
    for name, info in (("market maker", run.market_maker), ("arbitrageur", run.arbitrageur)):
        if not info.get("scored"):
            lines.append(f"{name} {info['address']}: not scored")
            continue
        lines.append(f"{name} {info['address']}: strategy {info['strategy']}, edge {info['edge']}, {info['trades']} trades "
                     f"in {info['markets']} markets, trading PnL {info['trading_pnl']:.2f} on volume {info['volume']:.2f}")
    share = run.random_flagged / run.random_scored if run.random_scored else 0.0
    lines.append(f"random traders flagged mild_edge/processing_edge: {run.random_flagged} of {run.random_scored} "
                 f"scored ({share:.1%})")
    lines.append("strategy_change events per hour: " + ", ".join(f"h{h}={n}" for h, n in run.strategy_changes_per_hour.items()))
    wallet_days = run.scored * run.hours / 24
    changes = sum(run.strategy_changes_per_hour.values())
    lines.append(f"strategy_change events: {changes} over {run.scored} wallets in {run.hours / 24:.3f} simulated days = "
                 f"{changes / wallet_days if wallet_days else 0.0:.3f} per wallet per day; most for one wallet: "
                 f"{run.strategy_changes_max_per_wallet}; of them between two labels (not leaving unknown): "
                 f"{run.strategy_relabels} = {run.strategy_relabels / wallet_days if wallet_days else 0.0:.3f} per wallet "
                 f"per day, most for one wallet {run.strategy_relabels_max_per_wallet}")
    lines.append("score-history rows per hour: " + ", ".join(f"h{h}={n}" for h, n in run.history_rows_per_hour.items()))
    lines.append("scorecard (kind, label, count, settled, markets, hit rate, mean edge [95 % CI], reverse hit rate, "
                 "reverse mean edge):")
    for row in run.scorecard:
        reverse = row["reverse"]
        lines.append(
            f"  {row['kind']:<32} {row['label']:<14} {row['count']:>5} {row['settled']:>5} {row['markets']:>4} "
            f"{_number(row['hit_rate'])} {_number(row['mean_edge'])} [{_number(row['edge_ci_low'])}, "
            f"{_number(row['edge_ci_high'])}]  rev {_number(reverse['hit_rate'])} {_number(reverse['mean_edge'])}"
        )
    lines.append("job runs (wall seconds): " + ", ".join(
        f"{k}={v} ({run.job_seconds.get(k, 0):g} s)" for k, v in sorted(run.job_runs.items())))
    if run.job_failures:
        lines.append("job failures: " + ", ".join(f"{k}={v}" for k, v in sorted(run.job_failures.items())))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=4)
    parser.add_argument("--wallets", type=int, default=400)
    parser.add_argument("--markets", type=int, default=60)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--history-minutes", type=int, default=180,
                        help="virtual minutes already traded before the run (see Baselines in the docstring)")
    parser.add_argument("--rate-multiplier", type=float, default=0.5,
                        help="the emulator's transaction rate (1 = ~1.5 transactions a virtual second)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    import psycopg

    from benchmarks.ingest_soak import _database_urls  # the same scratch-database naming as the soak

    db_url, admin_url, db_name = _database_urls("_signals")

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
        admin.execute(f'CREATE DATABASE "{db_name}"')
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from ingest.changes import redis_client

    redis_client().flushdb()
    upstream = SubprocessEmulator(seed=args.seed, start=int(time.time()), history_seconds=args.history_minutes * 60,
                                  wallets=args.wallets, markets=args.markets, rate_multiplier=args.rate_multiplier)
    settings.POLYMARKET_DATA_API_URL = upstream.url
    settings.POLYMARKET_GAMMA_API_URL = upstream.url
    try:
        run = signals_simulate(upstream=upstream, hours=args.hours, progress=lambda line: print(line, flush=True))
    finally:
        upstream.shutdown()
        redis_client().flushdb()
    print(signals_report(run))
    if not args.keep:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}"')


if __name__ == "__main__":
    main()
