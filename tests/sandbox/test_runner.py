"""The sandbox on the devnet: a small scenario played through the SDK, its results checked against the chain
and against what can be computed by hand; the same seed gives the same results."""

from __future__ import annotations

import csv
import math
from fractions import Fraction
from pathlib import Path

import pytest

from carbon_sdk import CarbonClient
from carbon_sdk.sandbox.agents import auction_orders, make_enterprises, price_grid
from carbon_sdk.sandbox.runner import run_scenario
from carbon_sdk.sandbox.scenario import Scenario

SMALL = {
    "name": "small",
    "seed": 11,
    "periods": 2,
    "regions": {11: {"name": "Beijing", "cap_share": 0.5}, 44: {"name": "Guangdong", "cap_share": 0.5}},
    "cap": {"initial_t": 150_000, "decline": 0.05, "free_share": 0.9},
    "enterprises": [
        {"name": "power", "count": 2, "regions": [11, 44], "emissions_t": [50_000, 70_000], "growth": 0.02,
         "abatement": {"intercept": 20, "slope": 0.002}, "max_abatement": 0.3, "misreport": 0.0},
        {"name": "steel", "count": 2, "regions": [44], "emissions_t": [20_000, 30_000], "growth": 0.0,
         "abatement": {"intercept": 30, "slope": 0.003}, "max_abatement": 0.25, "misreport": 0.0},
    ],
    "individuals": {"count": 60, "quota_t": 1.0, "groups": {
        "low_carbon": {"share": 0.5, "emissions_t": [0.3, 0.9]},
        "high_carbon": {"share": 0.5, "emissions_t": [1.1, 2.2]}}, "e": 200, "abatement_k": 400},
    "platforms": [{"name": "Green App", "cost_c": 5, "service_q": 1.0}],
    "verifiers": [{"name": "GreenCert", "honest": True}],
    "policy": {"personal_trading": True, "offset_ratio": [0.3, 0.6], "offset_cap": 0.05,
               "fees": {"buyer_bps": 0, "seller_bps": 0}, "pricing": "uniform", "tolerance_bps": 500,
               "carbon_value": 60, "delta_cost_k": 20_000},
    "market": {"lot_t": 10, "tick": 0.5, "price_levels": 6, "continuous_orders": 4},
}
VOLATILE = {"block", "timestamp", "wall_seconds", "transactions", "gas"}


def read(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / "data" / f"{name}.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def small() -> Scenario:
    return Scenario.from_dict(SMALL)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    """A chain of this module's own, as the sandbox makes it (throwaway, mined per request): each run deploys
    a system and points the gateway at its registry, which the session's chain must not see."""
    from carbon_sdk.devnet import Devnet

    with Devnet.start(tmp_path_factory.mktemp("sandbox-devnet"), port=None, persist=False,
                      mine_per_request=True, gas_limit=300_000_000) as node:
        yield node


@pytest.fixture(scope="module")
def run(small, devnet, artifacts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sandbox") / "small"
    result = run_scenario(small, folder, devnet=devnet, artifacts=artifacts)
    return result


def test_the_results_folder_has_every_table(run):
    for name in ("periods", "enterprises", "trades", "individuals", "welfare", "coin"):
        assert (run.folder / "data" / f"{name}.csv").is_file()
    assert (run.folder / "data" / "run.json").is_file()
    assert len(read(run.folder, "periods")) == 2 and len(read(run.folder, "enterprises")) == 2 * 4


def test_the_cap_binds_and_everyone_complies(run):
    """Honest reports, an honest verifier, baselines above the cap: the enterprises abate or buy down to the
    cap (the shortfall penalty is dearer than abating), and all comply. Allowances trade in 10 t lots, so each
    of the 4 may end up to a lot long, and the regulator's last part-lot stays unsold."""
    rows = read(run.folder, "periods")
    first = rows[0]
    assert float(first["cap_t"]) - 5 * 10 <= float(first["emissions_t"]) <= float(first["cap_t"]) + 1e-6
    # Later periods may also use what was banked: never more than the caps so far in all.
    assert sum(float(r["emissions_t"]) for r in rows) <= sum(float(r["cap_t"]) for r in rows) + 1e-6
    for row in rows:
        assert float(row["baseline_t"]) > float(row["cap_t"])
        assert float(row["verified_t"]) == pytest.approx(float(row["emissions_t"]), abs=1e-3)
        assert int(row["compliant"]) == 4 and int(row["short_enterprises"]) == 0


def test_the_first_auction_clears_at_the_price_its_orders_imply(small, run):
    """Uniform pricing: the midpoint of the last matched pair (docs/exchange.md). The book is computable from
    the agents' own curves (enterprises bid and ask) and the regulator's supply asked at the grid's floor:
    match the dearest bids with the cheapest asks while they cross; the last pair sets the price."""
    import random

    from carbon_sdk.sandbox.runner import _grams

    agents = make_enterprises(small.enterprises, random.Random(small.seed))
    lot = small.market.lot_t
    free, supply_t = {}, 0.0
    for code, region in small.regions.items():
        firms = [a for a in agents if a.region == code]
        base = sum(a.baseline(0) for a in firms)
        grants = {a.name: _grams(small.cap_of(0) * region.cap_share * 0.9 * a.baseline(0) / base) for a in firms}
        free.update({name: g / 10**6 for name, g in grants.items()})
        supply_t += (_grams(small.cap_of(0) * region.cap_share) - sum(grants.values())) / 10**6
    grid = price_grid(agents, 0, small.market.price_levels, small.market.tick, ceiling=100.0)
    orders = [o for a in agents for o in auction_orders(a, 0, free[a.name], grid, lot)]
    bids = sorted((o.price for o in orders if o.side == "bid" for _ in range(o.lots)), reverse=True)
    asks = sorted([o.price for o in orders if o.side == "ask" for _ in range(o.lots)]
                  + [grid[0]] * math.floor(supply_t / lot + 1e-9))
    matched = 0
    while matched < min(len(bids), len(asks)) and bids[matched] >= asks[matched]:
        matched += 1
    expected = (Fraction(str(asks[matched - 1])) + Fraction(str(bids[matched - 1]))) / 2
    first = read(run.folder, "periods")[0]
    assert Fraction(first["clearing_price"]) == expected
    auction = [t for t in read(run.folder, "trades") if t["period"] == "1" and t["phase"] == "auction"]
    assert {Fraction(t["price"]) for t in auction} == {expected}
    assert sum(float(t["tonnes"]) for t in auction) == matched * lot


def test_the_tables_match_the_chain(run, devnet):
    """What the results say, read back independently from the contracts' own records."""
    chain = CarbonClient(devnet.rpc_url, run.manifest)  # read-only
    trades, periods = read(run.folder, "trades"), read(run.folder, "periods")
    enterprises = read(run.folder, "enterprises")
    for market, row in enumerate(periods, start=1):  # one exchange market per period, in order
        fills = chain.exchange.fills(market)
        lot_t = 10
        assert sum(f.lots for f in fills) * lot_t == pytest.approx(
            float(row["auction_volume_t"]) + float(row["continuous_volume_t"]))
        mine = [t for t in trades if t["period"] == row["period"]]
        assert len(mine) == len(fills)
        assert sum(float(t["value"]) for t in mine) == pytest.approx(sum(f.value for f in fills) / 100)
        for e in (r for r in enterprises if r["period"] == row["period"]):
            status = chain.allowances.compliance(int(row["period_id"]), run.enterprises[e["enterprise"]])
            assert status.surrendered / 10**6 == pytest.approx(float(e["surrendered_t"]), abs=1e-6)
            assert status.verified_emissions / 10**6 == pytest.approx(float(e["verified_t"]), abs=1e-6)
    coin = read(run.folder, "coin")
    for name, address in run.enterprises.items():
        rewards = sum(float(c["amount"]) for c in coin if c["enterprise"] == name)
        assert chain.coin.balance(address) / 10**6 == pytest.approx(rewards, abs=1e-6)  # no penalties here
        last = next(r for r in enterprises if r["period"] == "2" and r["enterprise"] == name)
        assert float(last["coin_balance"]) == pytest.approx(rewards, abs=1e-6)


def test_the_same_seed_gives_the_same_results(small, run, devnet, artifacts, tmp_path):
    again = run_scenario(small, tmp_path / "again", devnet=devnet, artifacts=artifacts)
    for name in ("periods", "enterprises", "trades", "individuals", "welfare", "coin"):
        first = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read(run.folder, name)]
        second = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read(again.folder, name)]
        assert first == second, name


def test_individuals_trade_and_emit_less_with_the_market(run):
    rows = read(run.folder, "individuals")
    for period in ("1", "2"):
        mine = [r for r in rows if r["period"] == period]
        assert sum(float(r["emissions_with_market_t"]) for r in mine) < \
            sum(float(r["emissions_without_market_t"]) for r in mine)
        high = next(r for r in mine if r["group"] == "high_carbon")
        assert float(high["covered_t"]) == pytest.approx(float(high["bought_t"]))
    welfare = read(run.folder, "welfare")
    assert float(welfare[1]["p_ph"]) > float(welfare[0]["p_ph"])  # δ rose from 0.3 to 0.6
    assert all(float(w["social_welfare"]) <= float(w["welfare_at_delta_star"]) + 1e-6 for w in welfare)


def test_individuals_trade_by_signed_orders_and_send_nothing_themselves(small, run, devnet):
    """Desk trades are the users' signed orders settled by the platform: the chain's SoldToPlatform and
    BoughtFromPlatform events add up to the results, and no individual ever sent a transaction."""
    from eth_account import Account

    from carbon_sdk.sandbox.runner import _key

    chain = CarbonClient(devnet.rpc_url, run.manifest)
    manager = chain.credits.contract
    events = manager.logs(["SoldToPlatform", "BoughtFromPlatform", "DeficitCovered", "DeskOrderSettled"])
    rows = read(run.folder, "individuals")
    low = [r for r in rows if r["group"] == "low_carbon"]
    high = [r for r in rows if r["group"] == "high_carbon"]
    sold = sum(e.args["amount"] for e in events if e.name == "SoldToPlatform") / 10**6
    bought = sum(e.args["amount"] for e in events if e.name == "BoughtFromPlatform") / 10**6
    covered = sum(e.args["amount"] for e in events if e.name == "DeficitCovered") / 10**6
    assert sold == pytest.approx(sum(float(r["sold_t"]) for r in low), abs=1e-6) and sold > 0
    assert bought == pytest.approx(sum(float(r["bought_t"]) for r in high), abs=1e-6) and bought > 0
    assert covered == pytest.approx(bought, abs=1e-6)
    settled = [e for e in events if e.name == "DeskOrderSettled"]
    assert len(settled) == sum(1 for e in events if e.name in ("SoldToPlatform", "BoughtFromPlatform"))
    people = [Account.from_key(_key(small.seed, f"person/{i}")).address for i in range(small.individuals.count)]
    counts = chain.rpc.batch([("eth_getTransactionCount", [a, "latest"]) for a in people])
    assert all(int(c, 16) == 0 for c in counts)


def test_the_report_shows_what_the_chain_holds(run, devnet):
    """The report's market table gives each period's volume and VWAP: the same as the exchange's own fills."""
    from carbon_sdk.sandbox.report import PLOTS, write_report

    report = write_report(run.folder)
    for name in ("report.md", "report.html", *PLOTS):
        path = run.folder / name
        assert path.is_file() and path.stat().st_size > 0, name
    text = report.read_text()
    chain = CarbonClient(devnet.rpc_url, run.manifest)
    for market in (1, 2):
        fills = chain.exchange.fills(market)
        tonnes = sum(f.lots for f in fills) * 10
        vwap = sum(f.value for f in fills) / 100 / tonnes
        assert f"{tonnes:,.0f}" in text and f"{vwap:,.2f}" in text


def test_a_terminated_run_stops_the_chain_it_started(tmp_path):
    """SIGTERM in the middle of a run: the process exits and takes its devnet's anvil and gateway with it."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from carbon_sdk.sandbox.runner import run_scenario\n"
        "from carbon_sdk.sandbox.scenario import load_scenario\n"
        "run_scenario(load_scenario('default'), Path(sys.argv[1]))\n")
    scratch = tmp_path / "tmp"  # the run makes its devnet folder here (TMPDIR), where only this test looks
    scratch.mkdir()
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "out")], cwd=Path(__file__).parents[2],
                             env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline, folder = time.monotonic() + 60, None
    while time.monotonic() < deadline and folder is None:  # wait until its devnet is up
        for f in scratch.glob("carbon-sandbox-*"):
            if (f / "devnet.json").exists() and json.loads((f / "devnet.json").read_text()).get(
                    "gateway", {}).get("pid"):
                folder = f
        time.sleep(0.2)
    assert folder is not None, "the run never started its devnet"
    config = json.loads((folder / "devnet.json").read_text())
    time.sleep(2)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 128 + signal.SIGTERM
    for pid in (config["anvil"]["pid"], config["gateway"]["pid"]):
        time.sleep(0.5)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
