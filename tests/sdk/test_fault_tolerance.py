"""The SDK under real faults on a real devnet: node restarts with and without the chain, dropped
transactions, reorganisations, an unreachable gateway. No mocks: each fault is caused on anvil or its gateway.

What "never sent twice" means here: every call takes exactly one nonce (the sender's on-chain nonce grows by the
number of calls, not more) and every receipt has its own hash; a re-send is the same signed bytes (same hash).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import pytest

from carbon_sdk.devnet import Devnet
from carbon_sdk.errors import (
    ChainMismatch,
    ChainResetError,
    NodeUnavailable,
    NodeUnreachable,
    TransactionDropped,
    TransactionReorganised,
)
from carbon_sdk.rpc import RetryPolicy, RpcClient
from carbon_sdk.tx import Call, LocalSigner, TransactionSender, shared_sender

# Rides out a node restart (~1 s) with room to spare, and still fails a test in seconds, not minutes.
PATIENT = RetryPolicy(attempts=40, first_delay=0.05, max_delay=0.5, deadline=20.0)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Devnet:
    with Devnet.start(tmp_path_factory.mktemp("faults-devnet"), port=None) as started:
        yield started


def sender_for(
    devnet: Devnet, url: str | None = None, retry: RetryPolicy = PATIENT, **options: Any
) -> TransactionSender:
    """A new sender of the bootstrap admin (the one key the gateway admits without a registry)."""
    rpc = RpcClient(url or devnet.rpc_url, retry=retry, timeout=10)
    options.setdefault("receipt_timeout", 30.0)
    return TransactionSender(rpc, LocalSigner(devnet.bootstrap_key), devnet.chain_id, **options)


def pings(devnet: Devnet, count: int) -> list[Call]:
    """Zero-value self-transfers: cheap, and each needs its own nonce."""
    return [Call(to=devnet.bootstrap_address, data=b"", gas=21_000, label=f"ping {n}") for n in range(count)]


def chain_nonce(devnet: Devnet, block: str = "latest") -> int:
    return int(devnet.rpc("eth_getTransactionCount", [devnet.bootstrap_address, block]), 16)


def node(devnet: Devnet, method: str, *params: Any) -> Any:
    """A node-control call straight to anvil (the operator's way in)."""
    return RpcClient(devnet.anvil_url).call(method, list(params))


def in_background(work: Callable[[], Any]) -> Future:
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the devnet never reached the state the test waits for"
        time.sleep(0.02)


def hold_in_pool(devnet: Devnet) -> None:
    """Stop mining, so transactions wait in the pool (the gateway's sweep leaves them alone, too)."""
    node(devnet, "evm_setAutomine", False)


def pool_size(devnet: Devnet) -> int:
    return int(node(devnet, "txpool_status")["pending"], 16)


def assert_each_call_took_one_nonce(receipts: list, first: int, devnet: Devnet) -> None:
    assert [r.nonce for r in receipts] == list(range(first, first + len(receipts)))
    assert len({r.tx_hash for r in receipts}) == len(receipts)
    assert chain_nonce(devnet) == first + len(receipts)


# -- (a) the node restarts with its chain -----------------------------------------------------------------------


def test_a_node_restart_between_calls_is_ridden_out(devnet):
    sender = sender_for(devnet)
    first = chain_nonce(devnet)
    receipts = sender.transact_many(pings(devnet, 20))
    devnet.restart_node()  # graceful: anvil dumps its chain on the way down and reloads it
    receipts += sender.transact_many(pings(devnet, 20))
    assert_each_call_took_one_nonce(receipts, first, devnet)
    assert sender.resent == 0


def test_a_node_restart_while_calls_go_out_through_the_gateway_completes_them_once(devnet):
    sender = sender_for(devnet, drop_check_after=0.3)
    first = chain_nonce(devnet)
    restarts = threading.Thread(target=devnet.restart_node)
    receipts: list = []
    restarts.start()
    # Calls keep going out, a few per request, for as long as the restart lasts (and some more).
    while restarts.is_alive() or len(receipts) < 100:
        receipts += sender.transact_many(pings(devnet, 5))
    restarts.join()
    assert sender.rpc.faults > 0  # requests did meet the node down
    assert_each_call_took_one_nonce(receipts, first, devnet)


def test_transactions_waiting_in_the_pool_when_the_node_restarts_are_resent_as_the_same_bytes(devnet):
    """anvil keeps mined blocks over a restart, not its pool: the waiting transactions vanish, and the sender
    re-sends each (same hash, same nonce) once it sees its receipt is late."""
    sender = sender_for(devnet, url=devnet.anvil_url, drop_check_after=0.3)
    first = chain_nonce(devnet)
    hold_in_pool(devnet)  # until the restart
    pending = in_background(lambda: sender.transact_many(pings(devnet, 10)))
    wait_until(lambda: pool_size(devnet) == 10)
    devnet.restart_node()  # a new anvil process mines automatically again
    receipts = pending.result(timeout=60)
    assert_each_call_took_one_nonce(receipts, first, devnet)
    assert sender.resent == 10 and sender.rpc.faults > 0


# -- (b) the node restarts without its chain --------------------------------------------------------------------


def test_a_chain_reset_is_refused_on_the_next_call_and_nothing_is_sent(tmp_path):
    with Devnet.start(tmp_path / "throwaway", port=None, persist=False) as devnet:
        sender = sender_for(devnet)
        sender.transact_many(pings(devnet, 3))
        seen = sender.highest_block
        devnet.restart_node()  # a throwaway chain restarts as a new chain: block 0 again, same admin key
        with pytest.raises(
            ChainResetError, match=rf"was reset \(latest block 0, below block {seen} seen before\)"
        ):
            sender.transact(pings(devnet, 1)[0])
        assert chain_nonce(devnet, "pending") == 0 and devnet.rpc("eth_blockNumber") == "0x0"

        # The new chain grows past what the sender saw: the block it remembers has another hash now.
        for _ in range(seen + 2):
            node(devnet, "evm_mine")
        for _ in range(2):  # and it keeps refusing: it never falls back to sending to the new chain
            with pytest.raises(
                ChainResetError, match=r"was reset \(block \d+ is now 0x[0-9a-f]+, was 0x"
            ) as reset:
                sender.transact_many(pings(devnet, 2))
        assert isinstance(reset.value, ChainMismatch) and "create a new client" in str(reset.value)
        assert chain_nonce(devnet, "pending") == 0

        # Blocks this sender saw are gone, the ones before them unchanged (a node that lost its last blocks).
        fresh = sender_for(devnet)
        snapshot, height = node(devnet, "evm_snapshot"), int(devnet.rpc("eth_blockNumber"), 16)
        for call in pings(devnet, 4):
            fresh.transact(call)
        node(devnet, "evm_revert", snapshot)
        with pytest.raises(
            ChainResetError, match=f"latest block {height}, below block {height + 4} seen before"
        ):
            fresh.transact_many(pings(devnet, 2))
        assert chain_nonce(devnet, "pending") == 0


def test_after_a_chain_reset_every_shared_sender_of_the_url_is_new(tmp_path):
    """One sender noticing the reset retires every shared sender of that URL, whatever its settings: a client
    made afterwards sends on the new chain from nonce 0, not through a sender that knew the old one."""
    with Devnet.start(tmp_path / "throwaway", port=None, persist=False) as devnet:
        plain = shared_sender(devnet.rpc_url, devnet.bootstrap_key, devnet.chain_id)
        batched = shared_sender(devnet.rpc_url, devnet.bootstrap_key, devnet.chain_id, batch_size=7)
        assert plain is not batched and plain.nonces is batched.nonces
        plain.transact_many(pings(devnet, 2))
        batched.transact(pings(devnet, 1)[0])
        devnet.restart_node()
        with pytest.raises(ChainResetError):
            plain.transact(pings(devnet, 1)[0])
        again = shared_sender(devnet.rpc_url, devnet.bootstrap_key, devnet.chain_id, batch_size=7)
        assert again is not batched and again.nonces is not batched.nonces
        assert again.transact(pings(devnet, 1)[0]).nonce == 0
        assert chain_nonce(devnet) == 1


# -- (c) a transaction dropped from the pool --------------------------------------------------------------------


def drop_all_once_pooled(devnet: Devnet, count: int) -> None:
    wait_until(lambda: pool_size(devnet) == count)
    node(devnet, "anvil_dropAllTransactions")
    assert pool_size(devnet) == 0
    node(devnet, "evm_setAutomine", True)


def test_a_dropped_transaction_is_resent_with_its_nonce(devnet):
    sender = sender_for(devnet, url=devnet.anvil_url, drop_check_after=0.2)
    first = chain_nonce(devnet)
    hold_in_pool(devnet)
    pending = in_background(lambda: sender.transact_many(pings(devnet, 6)))
    drop_all_once_pooled(devnet, 6)
    receipts = pending.result(timeout=30)
    assert_each_call_took_one_nonce(receipts, first, devnet)
    assert sender.resent == 6


def test_a_dropped_transaction_is_reported_when_resending_is_off(devnet):
    sender = sender_for(devnet, url=devnet.anvil_url, drop_check_after=0.2, resend_dropped=False)
    first = chain_nonce(devnet)
    hold_in_pool(devnet)
    pending = in_background(lambda: sender.transact(pings(devnet, 1)[0]))
    drop_all_once_pooled(devnet, 1)
    with pytest.raises(
        TransactionDropped, match=rf"\(nonce {first}\) vanished from the node .*did not happen"
    ):
        pending.result(timeout=30)
    assert chain_nonce(devnet, "pending") == first  # nothing happened...
    assert sender.transact(pings(devnet, 1)[0]).nonce == first  # ...and the next call takes the freed nonce


# -- (d) a reorganisation ---------------------------------------------------------------------------------------


def mine_until_done(devnet: Devnet, work: Future) -> None:
    while not work.done():
        node(devnet, "evm_mine")
        time.sleep(0.05)


def reorg_out_first_mined(devnet: Devnet, sender: TransactionSender) -> tuple[Future, int]:
    """Send one call; once it is mined, replace its block by an empty one (anvil_reorg); keep mining."""
    height = int(devnet.rpc("eth_blockNumber"), 16)
    work = in_background(lambda: sender.transact(pings(devnet, 1)[0]))
    wait_until(lambda: int(devnet.rpc("eth_blockNumber"), 16) == height + 1)
    node(devnet, "anvil_reorg", 1, [])
    assert devnet.rpc("eth_getBlockByNumber", [hex(height + 1), False])["transactions"] == []
    return work, height + 1


def test_a_receipt_waits_for_its_confirmations_and_a_reorganised_call_is_resent(devnet):
    sender = sender_for(devnet, url=devnet.anvil_url, confirmations=2)
    first = chain_nonce(devnet)
    work, reorganised_block = reorg_out_first_mined(devnet, sender)
    mine_until_done(devnet, work)
    receipt = work.result(timeout=30)
    assert receipt.nonce == first and chain_nonce(devnet) == first + 1 and sender.resent == 1
    assert receipt.block_number > reorganised_block
    assert int(devnet.rpc("eth_blockNumber"), 16) >= receipt.block_number + 2
    mined = devnet.rpc("eth_getTransactionReceipt", [receipt.tx_hash])
    assert int(mined["blockNumber"], 16) == receipt.block_number


def test_a_reorganised_call_is_reported_when_resending_is_off(devnet):
    sender = sender_for(devnet, url=devnet.anvil_url, confirmations=2, resend_dropped=False)
    first = chain_nonce(devnet)
    work, _ = reorg_out_first_mined(devnet, sender)
    mine_until_done(devnet, work)
    with pytest.raises(TransactionReorganised, match=r"reorganised out of the chain before 2 confirmations"):
        work.result(timeout=30)
    assert chain_nonce(devnet) == first
    again = in_background(lambda: sender.transact(pings(devnet, 1)[0]))
    mine_until_done(devnet, again)
    assert again.result().nonce == first  # the next call takes the freed nonce


# -- (e) the gateway unreachable --------------------------------------------------------------------------------


def test_an_unreachable_gateway_is_retried_until_it_answers(devnet):
    sender = sender_for(devnet)
    first = chain_nonce(devnet)
    devnet.stop_gateway()
    comes_back = threading.Timer(1.5, devnet.start_gateway)
    comes_back.start()
    started = time.monotonic()
    try:
        receipts = sender.transact_many(pings(devnet, 3))
    finally:
        comes_back.join()
    assert time.monotonic() - started >= 1.5 and sender.rpc.faults > 0
    assert_each_call_took_one_nonce(receipts, first, devnet)


def test_beyond_the_retry_deadline_the_node_is_reported_unreachable(devnet):
    sender = sender_for(
        devnet, retry=RetryPolicy(attempts=1_000, first_delay=0.05, max_delay=0.2, deadline=1.0)
    )
    first = chain_nonce(devnet)
    devnet.stop_gateway()
    try:
        started = time.monotonic()
        with pytest.raises(
            NodeUnreachable, match=r"did not answer for 1\.\d s .*RetryPolicy\(attempts="
        ) as down:
            sender.transact(pings(devnet, 1)[0])
        assert 0.8 < time.monotonic() - started < 5.0  # gave up near the deadline, not after 1,000 tries
        assert isinstance(down.value, NodeUnavailable) and 1 < down.value.attempts < 1_000
    finally:
        devnet.start_gateway()
    assert chain_nonce(devnet, "pending") == first
