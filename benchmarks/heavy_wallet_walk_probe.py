"""WIP probe (not for main): one new fill through the stored walk of each heavy-wallet wallet.

    .venv/bin/python benchmarks/heavy_wallet_walk_probe.py   # after heavy_wallet.py --keep --database h2_heavy

For each wallet of the kept database: its walk over every fill but the newest is stored (JSON),
then 20 times: the state loaded, the fills after its high-water read, the facts of its positions'
markets read, the walk advanced, the book settled and marked, the state dumped. Median per part.
"""

from __future__ import annotations

import decimal
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HORIZON = timedelta(minutes=60)


def fills_after(wallet_id: int, after) -> list:
    from marts.bulk import fast_rows
    from marts.compute import Fill

    rows = fast_rows(
        """
        SELECT wallet_id, market_id, token_id, side, size, price, usdc_size, traded_at, idempotency_key,
               outcome_index, ingested_at
        FROM trade_fill WHERE wallet_id = %s AND traded_at >= %s AND (traded_at, idempotency_key) > (%s, %s)
        ORDER BY traded_at, idempotency_key
        """,
        [wallet_id, after[0], after[0], after[1]],
    )
    return [Fill._make(row) for row in rows]


def main() -> None:
    os.environ["DATABASE_URL"] = os.environ.get("PROBE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/h2_heavy")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitra.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.utils import timezone

    from marts import selectors
    from marts.compute import CONTEXT, WalletFold, fold_advance, fold_state_dump, fold_state_load, wallet_mart_book

    now = timezone.now()
    keep_from = (now - timedelta(days=91)).date()
    for wallet_id in (1, 2, 3):  # heavy_wallet.py seeds one wallet per size, ids from 1
        fills = selectors.fills_for_wallets(wallet_ids=[wallet_id])[wallet_id]
        tokens = selectors.token_facts_for(market_ids={fill.market_id for fill in fills})
        fold = WalletFold()
        with decimal.localcontext(CONTEXT):
            fold_advance(fold, fills[:-1], tokens=tokens, event_times={}, horizon=HORIZON)
        stored = json.dumps(fold_state_dump(fold, keep_days_from=keep_from))
        parts: dict[str, list[float]] = {name: [] for name in
                                         ("state load", "new fills read", "facts read", "walk", "book", "state dump")}
        for _ in range(20):
            marks = [time.perf_counter()]
            walk = fold_state_load(json.loads(stored))
            marks.append(time.perf_counter())
            new = fills_after(wallet_id, walk.last_fill)
            marks.append(time.perf_counter())
            market_ids = {p.market_id for p in walk.positions.values()} | {fill.market_id for fill in new}
            markets = selectors.market_facts_for(market_ids=market_ids)
            facts = selectors.token_facts_for(market_ids=market_ids)
            marks.append(time.perf_counter())
            with decimal.localcontext(CONTEXT):
                fold_advance(walk, new, tokens=facts, event_times={}, horizon=HORIZON)
            marks.append(time.perf_counter())
            book = wallet_mart_book(walk, wallet_id=wallet_id, markets=markets, tokens=facts, last_prices={})
            marks.append(time.perf_counter())
            json.dumps(fold_state_dump(walk, keep_days_from=keep_from))
            marks.append(time.perf_counter())
            for name, started, ended in zip(parts, marks, marks[1:], strict=False):
                parts[name].append(ended - started)
        assert len(new) == 1 and book.total_trades == len(fills)
        medians = {name: statistics.median(values) * 1000 for name, values in parts.items()}
        print(f"{len(fills):>9,} fills: state {len(stored):,} bytes of JSON ({len(fold.positions)} positions, "
              f"{len(fold.daily)} days); total {sum(medians.values()):.2f} ms: "
              + ", ".join(f"{name} {ms:.2f} ms" for name, ms in medians.items()), flush=True)


if __name__ == "__main__":
    main()
