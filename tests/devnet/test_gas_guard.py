"""Gas guards: the test chain has a realistic block gas limit (30M), a transaction that cannot fit a block is
refused at once with a clear error (never left pending), and the SDK's fixed gas limits all fit a block."""

from __future__ import annotations

import time

import pytest

from carbon_sdk.devnet.node import BLOCK_GAS_LIMIT
from carbon_sdk.errors import CarbonError, PermissionDenied, TransactionError
from carbon_sdk.tx import Call, shared_sender

REALISTIC_BLOCK_GAS = 30_000_000
# A contract whose code loops for ever (JUMPDEST; PUSH1 0; JUMP): a call to it needs more gas than any block.
LOOP_RUNTIME = bytes.fromhex("5b600056")
LOOP_INIT = bytes.fromhex("63") + LOOP_RUNTIME + bytes.fromhex("6000526004601cf3")  # return the 4 bytes


@pytest.fixture(scope="module")
def sender(devnet):
    return shared_sender(devnet.rpc_url, devnet.bootstrap_key, devnet.chain_id)


@pytest.fixture(scope="module")
def endless(sender) -> str:
    return sender.transact(Call(to=None, data=LOOP_INIT, gas=200_000)).contract_address


def _nonce(devnet) -> int:
    return int(devnet.rpc("eth_getTransactionCount", [devnet.bootstrap_address, "pending"]), 16)


def test_the_test_chain_has_a_realistic_block_gas_limit(devnet):
    assert BLOCK_GAS_LIMIT == REALISTIC_BLOCK_GAS
    latest = devnet.rpc("eth_getBlockByNumber", ["latest", False])
    assert int(latest["gasLimit"], 16) == REALISTIC_BLOCK_GAS


def test_a_transaction_over_the_block_gas_limit_is_refused_at_once(devnet, sender):
    nonce = _nonce(devnet)
    started = time.monotonic()
    with pytest.raises(TransactionError, match=r"gas_limit > env\.block\.gas_limit"):
        sender.transact(Call(to=devnet.bootstrap_address, data=b"", gas=REALISTIC_BLOCK_GAS + 1))
    assert time.monotonic() - started < 5  # refused on sending, not waited on until a receipt timeout
    assert _nonce(devnet) == nonce  # nothing entered the pool: the sender's next transaction is not stuck
    sender.transact(
        Call(to=devnet.bootstrap_address, data=b"", gas=21_000)
    )  # raises unless mined and successful
    assert _nonce(devnet) == nonce + 1


def test_a_call_needing_more_than_a_block_fails_its_estimate_and_is_never_sent(devnet, sender, endless):
    nonce = _nonce(devnet)
    with pytest.raises(CarbonError, match=f"gas required exceeds allowance: {REALISTIC_BLOCK_GAS}"):
        sender.transact(Call(to=endless, data=b""))
    assert _nonce(devnet) == nonce


def test_an_estimate_over_the_block_gas_limit_is_not_a_permission_error(sender, endless):
    """anvil answers it with -32003, the gateway's METHOD_FORBIDDEN code: only the gateway's own refusals (which
    say what they refused in `data`) are PermissionDenied."""
    with pytest.raises(CarbonError) as raised:
        sender.transact(Call(to=endless, data=b""))
    assert not isinstance(raised.value, PermissionDenied)


def test_the_sdks_fixed_gas_limits_fit_a_block():
    """Calls sent with fixed gas limits (no estimate) must each fit a 30M block, or the node refuses them."""
    from carbon_sdk import credits, desk_orders
    from carbon_sdk.sandbox import runner

    assert credits.CLAIM_BASE_GAS + credits.CLAIM_GAS * credits.MAX_CLAIMS <= REALISTIC_BLOCK_GAS
    # A desk chunk stays within CALL_GAS_BUDGET, except that one order always goes, with its owner's permits.
    dearest_order = max(desk_orders.ORDER_GAS.values()) + desk_orders.PERMIT_GAS
    assert desk_orders.CALL_GAS_BUDGET + dearest_order <= REALISTIC_BLOCK_GAS
    stray_permits = desk_orders.BASE_GAS + desk_orders.PERMIT_GAS * desk_orders.MAX_DESK_ORDERS
    assert stray_permits <= REALISTIC_BLOCK_GAS
    # The sandbox places orders in chunks of 100 (runner.py) and sends the other calls with fixed limits.
    assert runner.GAS["place"] + runner.GAS["place_each"] * 100 <= REALISTIC_BLOCK_GAS
    assert max(runner.GAS.values()) <= REALISTIC_BLOCK_GAS


def test_the_estimate_margin_never_lifts_a_call_that_fits_a_block_over_it(sender, monkeypatch):
    """A call estimated at 25M fits a 30M block; 25M plus the SDK's margin would not, so the limit is the block's."""
    monkeypatch.setattr(sender.rpc, "batch", lambda requests: [hex(25_000_000)] * len(requests))
    assert sender._estimate([Call(to=sender.address, data=b"")]) == [REALISTIC_BLOCK_GAS]
    monkeypatch.setattr(sender.rpc, "batch", lambda requests: [hex(1_000_000)] * len(requests))
    assert sender._estimate([Call(to=sender.address, data=b"")]) == [int(1_000_000 * sender.gas_margin) + 10_000]
