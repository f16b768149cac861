"""The v2 account streams against the emulator over real HTTP: wallet activity landed as received
(every type, a TRADE row under its fill's identity), Polymarket's positions landed, and
/v2/resolutions settling markets that closed before they resolved."""

from __future__ import annotations

import pytest
import requests

from ingest.models import LandingRecord, Market, RunStatus, TradeFill, WalletCursor
from ingest.registry import ingest_job_execute

pytestmark = pytest.mark.django_db(transaction=True)


def test_activity_lands_every_type_once_and_a_trade_row_under_the_identity_of_its_fill(emulator, settings):
    settings.INGEST_ACTIVITY_WALLETS_PER_RUN = 1000
    with emulator(seed=21, scenario="steady,multi_fill,resolutions", history_seconds=900) as upstream:
        upstream.advance(600)
        ingest_job_execute(job_name="gamma.markets")
        trades = ingest_job_execute(job_name="data_api.trades")
        assert trades.status == RunStatus.SUCCEEDED, trades.error_text
        first = ingest_job_execute(job_name="data_api.activity")
        assert first.status == RunStatus.SUCCEEDED, first.error_text
        again = ingest_job_execute(job_name="data_api.activity")

    landed = LandingRecord.objects.filter(source="data_api", stream="activity")
    assert first.stats_json["inserted"] == landed.count() > 0
    assert again.stats_json["inserted"] == 0, "a forward walk from the cursor re-reads one second and lands nothing"
    types = {record.payload["type"] for record in landed}
    assert "TRADE" in types and len(types) > 1, types
    trade_keys = {record.idempotency_key for record in landed if record.payload["type"] == "TRADE"}
    fill_keys = set(TradeFill.objects.values_list("idempotency_key", flat=True))
    assert trade_keys & fill_keys, "activity TRADE rows carry the identity of the same fill on /v2/trades"
    assert WalletCursor.objects.filter(stream="activity", completed_at__isnull=False).exists()


def test_positions_land_polymarkets_own_figures_as_received(emulator, settings):
    settings.INGEST_ACTIVITY_WALLETS_PER_RUN = 5
    with emulator(seed=22, scenario="steady", history_seconds=600) as upstream:
        upstream.advance(60)
        ingest_job_execute(job_name="data_api.trades")
        run = ingest_job_execute(job_name="data_api.positions")
        assert run.status == RunStatus.SUCCEEDED, run.error_text
        wallet = WalletCursor.objects.filter(stream="positions").first().wallet
        served = requests.get(f"{upstream.url}/v2/positions", params={"user": wallet.address}, timeout=5).json()["data"]

    landed = [record.payload for record in LandingRecord.objects.filter(source="data_api", stream="positions")]
    assert served and all(position in landed for position in served)
    assert {"avg_price", "realized_pnl"} <= set(landed[0])


def test_a_market_that_closed_before_it_resolved_is_settled_from_its_v2_payouts(emulator, settings):
    with emulator(seed=23, scenario="steady,resolutions", history_seconds=600) as upstream:
        ingest_job_execute(job_name="gamma.markets")
        ingest_job_execute(job_name="data_api.trades")
        settled: list[Market] = []
        for _ in range(40):
            upstream.advance(600)
            ingest_job_execute(job_name="data_api.trades")
            ingest_job_execute(job_name="gamma.markets")
            run = ingest_job_execute(job_name="data_api.resolutions")
            assert run.status == RunStatus.SUCCEEDED, run.error_text
            settled = list(Market.objects.filter(resolution_source="data_api"))
            if settled:
                break
        truth = {market["conditionId"]: market["_truth"]
                 for market in requests.get(f"{upstream.url}/_truth/markets", timeout=5).json()}

    assert settled, "some market resolved within the simulated hours"
    for market in settled:
        expected = truth[market.condition_id]
        assert market.resolution_payouts, "payouts kept as fractions per outcome"
        if expected["void"]:
            assert market.is_void
        else:
            assert market.winner_index == expected["winner_outcome_index"]
        assert market.resolved_at is not None


def test_protocol_v2_markets_are_read_beside_v1_ones_with_outcome_ids_chosen_by_version(emulator):
    from ingest.models import OutcomeToken

    with emulator(seed=24, scenario="steady", history_seconds=300, protocol_v2_market_share=0.3) as upstream:
        markets = ingest_job_execute(job_name="gamma.markets")
        assert markets.status == RunStatus.SUCCEEDED, markets.error_text
        upstream.advance(30)
        ingest_job_execute(job_name="data_api.trades")

    versions = set(Market.objects.values_list("protocol_version", flat=True))
    assert versions == {"v1", "v2"}
    v2_market = Market.objects.filter(protocol_version="v2").first()
    assert v2_market.condition_id.endswith("00") and len(v2_market.condition_id) == 66, "bytes31, right-padded"
    tokens = OutcomeToken.objects.filter(market=v2_market)
    assert tokens.count() == len(v2_market.outcomes) >= 2
    assert all(75 <= len(token.token_id) <= 78 for token in tokens), "position ids are 75-78 digit decimals"
    v2_fills = TradeFill.objects.filter(market__protocol_version="v2")
    assert v2_fills.exists()
    assert not v2_fills.filter(outcome_index__isnull=True).exists(), "the token map names each fill's outcome"
