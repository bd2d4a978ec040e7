"""The gateway under load: 50 concurrent clients, 20,000 mixed requests, on a devnet of this module's own.

The load generator is scripts/gateway_load.py (which can run bigger loads and prints the same table). Here:
every request gets the documented answer, the gateway survives, and nothing forbidden reaches the chain.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from carbon_sdk.devnet import Devnet

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gateway_load.py"
REQUESTS, CLIENTS = 20_000, 50


def _load_script():
    spec = importlib.util.spec_from_file_location("gateway_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gateway_load"] = module
    spec.loader.exec_module(module)
    return module


load = _load_script()


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Devnet:
    with Devnet.start(tmp_path_factory.mktemp("load-devnet"), port=None, persist=False) as started:
        yield started


@pytest.mark.timeout(180)
def test_the_gateway_holds_under_mixed_concurrent_load(devnet):
    target = load.prepare(devnet, members=8, strangers=10)
    before = load.chain_snapshot(devnet, target)

    report = load.run_load(target, requests=REQUESTS, clients=CLIENTS, seed=47001)
    after = load.wait_until_mined(devnet, target, before, report)
    print("\n" + report.table())

    # Every request answered as documented: a well-formed JSON-RPC answer with the expected result or code.
    assert len(report.outcomes) == REQUESTS
    assert report.unexpected() == [], report.table()
    assert {outcome.kind for outcome in report.outcomes} == set(load.MIX)
    counts = report.counts()
    assert counts[("member_tx", "result")] > 0 and counts[("stranger_tx", "SENDER_NOT_PERMITTED")] > 0

    # No crash: both processes alive, and the gateway still answers.
    status = devnet.status()
    assert status.running, status
    # It still answers, consistently with anvil (a straggler's block may land after the snapshot, no more).
    assert after["block"] <= int(devnet.rpc("eth_blockNumber"), 16) <= after["block"] + 2

    # Nothing forbidden passed, read on anvil itself: no stranger's nonce or balance moved, the registry's
    # code and storage are intact, the clock and the block count moved only as far as real time and the
    # members' own transactions explain, and automining is still on.
    assert after["strangers"] == before["strangers"]
    assert all(nonce == 0 and balance == 0 for nonce, balance in after["strangers"].values())
    assert (after["registry_code"], after["registry_slot0"]) == (
        before["registry_code"],
        before["registry_slot0"],
    )
    assert after["timestamp"] - before["timestamp"] <= report.seconds + 30  # evm_increaseTime is 10 years
    assert after["timestamp"] < load.FAR_FUTURE
    member_sent = sum(report.member_sent.values())
    assert after["block"] - before["block"] <= member_sent + 5  # anvil_mine asks for 10,000 blocks
    assert after["automine"] is True and after["pending"] == 0

    # The members' accepted transactions were all mined, no more, no fewer.
    mined = {
        address: after["members"][address] - before["members"][address] for address in report.member_sent
    }
    assert mined == report.member_sent
