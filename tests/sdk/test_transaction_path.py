"""The SDK's one transaction path: nonces under concurrency, no double sends, typed errors, chain checks."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from eth_account import Account

from carbon_sdk import CarbonClient, Role, errors
from carbon_sdk.errors import ChainMismatch, InvalidInput, decode_revert
from carbon_sdk.rpc import RetryPolicy, RpcClient
from carbon_sdk.tx import LocalSigner


def test_eight_threads_sharing_one_key_get_consecutive_nonces(make_org, probe_for):
    handle = make_org(Role.ENTERPRISE)
    probe = probe_for(handle.admin)
    start_count = probe.call("count")
    first_nonce = handle.admin.sender.nonces.peek()

    def send_25(_: int):
        return [handle.admin.transact(probe.tx("ping")) for _ in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        receipts = [r for batch in pool.map(send_25, range(8)) for r in batch]
    assert len(receipts) == 200
    assert sorted(r.nonce for r in receipts) == list(range(first_nonce, first_nonce + 200))
    assert len({r.tx_hash for r in receipts}) == 200
    assert probe.call("count") == start_count + 200
    chain_nonce = int(handle.admin.rpc.call("eth_getTransactionCount", [handle.admin.address, "latest"]), 16)
    assert chain_nonce == first_nonce + 200


def test_one_key_through_the_gateway_and_the_node_shares_one_nonce_manager(make_org, probe_for, devnet, manifest):
    """Two URLs of one chain (the gateway, and anvil behind it): their senders of one key hand out nonces from
    one counter, so interleaved transactions all land, none reusing the other's nonce."""
    handle = make_org(Role.ENTERPRISE)
    key = handle.admin.sender.signer._account.key
    direct = CarbonClient(devnet.anvil_url, manifest, key)
    assert direct.sender is not handle.admin.sender and direct.sender.nonces is handle.admin.sender.nonces
    via_gateway, via_node = probe_for(handle.admin), probe_for(direct)
    start = via_gateway.call("count")
    receipts = [client.transact(probe.tx("ping")) for _ in range(5)
                for client, probe in ((handle.admin, via_gateway), (direct, via_node))]
    assert sorted(r.nonce for r in receipts) == list(range(receipts[0].nonce, receipts[0].nonce + 10))
    assert via_gateway.call("count") == start + 10


def test_clients_of_one_key_with_other_settings_get_them_and_share_nonces(make_org, probe_for, devnet, manifest):
    """A second client of a key with its own settings (receipt timeout, batch size, retry policy, headers)
    sends with those settings, not the first client's; all of them still take nonces from one counter."""
    handle = make_org(Role.ENTERPRISE)
    key = handle.admin.sender.signer._account.key
    patient = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02)
    settings = dict(receipt_timeout=45.0, batch_size=7, retry=patient, headers={"X-Client": "careful"})
    careful = CarbonClient(devnet.rpc_url, manifest, key, **settings)
    again = CarbonClient(devnet.rpc_url, manifest, key, **settings)
    assert careful.sender is not handle.admin.sender and careful.sender is again.sender
    assert careful.sender.batch_size == 7 and careful.sender.receipt_timeout == 45.0
    assert careful.sender.rpc.retry == patient and careful.sender.rpc.headers["X-Client"] == "careful"
    assert handle.admin.sender.batch_size == 100 and handle.admin.sender.rpc.retry != patient
    assert careful.sender.nonces is handle.admin.sender.nonces
    probe, probe_careful = probe_for(handle.admin), probe_for(careful)
    receipts = [client.transact(target.tx("ping")) for _ in range(3)
                for client, target in ((handle.admin, probe), (careful, probe_careful))]
    assert sorted(r.nonce for r in receipts) == list(range(receipts[0].nonce, receipts[0].nonce + 6))


def test_many_calls_go_out_as_batches_and_all_land(make_org, probe_for):
    handle = make_org(Role.ENTERPRISE)
    probe = probe_for(handle.admin)
    before = probe.call("count")
    calls = [probe.tx("ping", gas=80_000) for _ in range(250)]
    receipts = handle.admin.transact_many(calls)
    assert [r.nonce for r in receipts] == list(range(receipts[0].nonce, receipts[0].nonce + 250))
    assert probe.call("count") == before + 250


def test_calls_worth_more_than_a_block_of_gas_all_land(make_org):
    """An automining node mines what fits in a block when transactions arrive and leaves the rest pending
    until another one comes: the sender never has more than a block's gas in flight, so nothing is stranded."""
    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL))
    people = [Account.create().address for _ in range(2_000)]  # 10 transactions of about 12M gas each
    members = handle.admin.registry.enrol_batch(people, Role.INDIVIDUAL, identities=[{"n": p} for p in people])
    assert len(members) == 2_000 and handle.admin.registry.member(people[-1]).role is Role.INDIVIDUAL
    sender = handle.admin.sender
    assert sender._send_chunks([12_000_000] * 10, 30_000_000) == [range(0, 2), range(2, 4), range(4, 6),
                                                                   range(6, 8), range(8, 10)]
    assert sender._send_chunks([1] * 250, 0) == [range(0, 100), range(100, 200), range(200, 250)]
    # ... and no more than about a megabyte of call data per request (the gateway takes 5 MB at most).
    assert sender._send_chunks([1] * 5, 0, [400_000] * 5) == [range(0, 2), range(2, 4), range(4, 5)]


class _DropFirstSendProxy(BaseHTTPRequestHandler):
    """Forwards JSON-RPC to the devnet, but drops the reply of the first request that sends a transaction,
    as a flaky network would: the node got the transaction, the client never heard back."""

    target = ""
    dropped = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        reply = requests.post(self.target, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        with self.lock:
            drop = b"eth_sendRawTransaction" in body and _DropFirstSendProxy.dropped == 0
            if drop:
                _DropFirstSendProxy.dropped += 1
        if drop:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    def log_message(self, *args):
        pass


def test_a_lost_reply_is_retried_without_sending_twice(make_org, probe_for, devnet, manifest):
    handle = make_org(Role.ENTERPRISE)
    _DropFirstSendProxy.target = devnet.rpc_url
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DropFirstSendProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        key = Account.create()
        handle.admin.registry.enrol(key.address, Role.ENTERPRISE)
        flaky = CarbonClient(f"http://127.0.0.1:{server.server_port}", manifest, key.key,
                             retry=RetryPolicy(attempts=4, first_delay=0.01))
        probe = probe_for(flaky)
        before = probe.call("count")
        receipt = flaky.transact(probe.tx("ping"))
        assert _DropFirstSendProxy.dropped == 1  # the first reply really was lost
        assert receipt.nonce == 0
        assert probe.call("count") == before + 1  # executed once
        assert int(flaky.rpc.call("eth_getTransactionCount", [key.address, "latest"]), 16) == 1
    finally:
        server.shutdown()


def test_read_only_client_refuses_to_send(devnet, manifest, probe_for):
    reader = CarbonClient(devnet.rpc_url, manifest)
    with pytest.raises(InvalidInput, match="read-only"):
        reader.transact(probe_for(reader).tx("ping"))


def test_a_manifest_for_another_chain_is_refused(devnet, manifest):
    with pytest.raises(ChainMismatch, match="serves chain"):
        CarbonClient(devnet.rpc_url, dataclasses.replace(manifest, chain_id=manifest.chain_id + 1))
    with pytest.raises(ChainMismatch, match="reset"):
        CarbonClient(devnet.rpc_url, dataclasses.replace(manifest, genesis_hash="0x" + "ab" * 32))


def test_non_member_transaction_is_refused_by_the_gateway(devnet, manifest, probe_for):
    stranger = CarbonClient(devnet.rpc_url, manifest, Account.create().key)
    probe = probe_for(stranger)
    with pytest.raises(errors.PermissionDenied, match="not an active member"):
        stranger.transact(probe.tx("ping", gas=80_000))
    assert stranger.sender.nonces.peek() == 0  # the refused nonce was not consumed


def test_revert_data_decodes_to_typed_errors(regulator):
    err = decode_revert(bytes.fromhex("5ab113a6") + bytes(12) + bytes.fromhex("11" * 20))
    assert isinstance(err, errors.RegistryAlreadyEnrolled)
    assert err.arguments == {"account": "0x" + "11" * 20}
    reason = decode_revert(bytes.fromhex("08c379a0") + bytes(31) + b"\x20" + bytes(31) + b"\x03" + b"bad" + bytes(29))
    assert "bad" in str(reason) and not isinstance(reason, errors.ContractCustomError)
    assert "reverted" in str(decode_revert(b""))
    with pytest.raises(AttributeError, match="no attribute"):
        errors.NoSuchErrorAnywhere  # noqa: B018


def test_a_full_pool_is_waited_out_by_resending_the_same_bytes(make_org, probe_for, devnet, monkeypatch):
    handle = make_org(Role.ENTERPRISE)
    probe = probe_for(handle.admin)
    # Fill the node's pool for real: 500 transactions parked behind a nonce gap (nonce 0 is held back).
    blocker = Account.create()
    handle.admin.registry.enrol(blocker.address, Role.ENTERPRISE)
    signer = LocalSigner(blocker.key)

    def transfer(nonce: int) -> str:
        raw, _ = signer.sign({"type": 2, "chainId": 47001, "nonce": nonce, "gas": 21_000, "maxFeePerGas": 0,
                              "maxPriorityFeePerGas": 0, "to": blocker.address, "value": 0, "data": b""})
        return "0x" + raw.hex()

    for start in range(1, 501, 100):
        answers = handle.admin.rpc.batch([("eth_sendRawTransaction", [transfer(n)]) for n in range(start, start + 100)])
        assert not any(isinstance(a, Exception) for a in answers), answers
    refusals = []
    send = handle.admin.rpc.batch

    def counting(calls):
        answers = send(calls)
        if any(isinstance(a, errors.RpcError) and a.code == -32005 for a in answers):
            refusals.append(len(calls))
            if len(refusals) == 1:  # the pool is full: release the gap a little later, straight to the node
                threading.Timer(0.3, lambda: RpcClient(devnet.anvil_url).call(
                    "eth_sendRawTransaction", [transfer(0)])).start()
        return answers

    monkeypatch.setattr(handle.admin.rpc, "batch", counting)
    before = probe.call("count")
    receipts = handle.admin.transact_many([probe.tx("ping", gas=80_000) for _ in range(100)])
    assert refusals, "the pool never filled: the resend path was not exercised"
    assert len({r.tx_hash for r in receipts}) == 100
    assert probe.call("count") == before + 100  # each executed once, though sent more than once
    assert int(handle.admin.rpc.call("eth_getTransactionCount", [blocker.address, "latest"]), 16) == 501


def test_calls_signed_by_many_keys_go_out_in_shared_batches(make_org, probe_for, devnet, manifest):
    """A platform signing for its users' wallets: 300 one-off transactions from 150 accounts, two each in
    order, sent in a few batches; each lands once, from its own account, with consecutive nonces."""
    from carbon_sdk.tx import transact_from_many

    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL))
    users = [Account.create() for _ in range(150)]
    handle.admin.registry.enrol_batch([u.address for u in users], Role.INDIVIDUAL)
    probe = probe_for(handle.admin)
    before = probe.call("count")
    items = [(u.key, probe.tx("ping")) for u in users] + [(u.key, probe.tx("ping", gas=80_000)) for u in users]
    receipts = transact_from_many(devnet.rpc_url, handle.admin.chain_id, items)
    assert probe.call("count") == before + 300
    assert [r.sender for r in receipts] == [u.address for u in users] * 2
    assert [r.nonce for r in receipts] == [0] * 150 + [1] * 150
    # A refused call is reported with its own account's typed error, before anything is sent.
    stranger = Account.create()
    with pytest.raises(errors.GuardInactiveMember) as caught:
        transact_from_many(devnet.rpc_url, handle.admin.chain_id,
                           [(users[0].key, probe.tx("ping")), (stranger.key, probe.tx("ping"))])
    assert caught.value.arguments["account"] == stranger.address
    assert probe.call("count") == before + 300


def test_a_revert_is_explained_on_the_state_its_block_left(make_org, devnet):
    """Two transactions of one sender mined in one block: an approval of 100, then a deposit of 200 that
    fails. The error must say what the chain saw (allowance 100), not what the state before the block had
    (allowance 0)."""
    platform = make_org(Role.PLATFORM).admin
    platform.settlement.issue(platform.address, 1_000, fiat_reference="replay test")
    exchange, settlement = platform.exchange.contract, platform.settlement.contract
    platform.exchange.create_market(platform.credits.contract.address, settlement.address, lot_size=10_000,
                                    tick_size=200)  # lists the settlement token with the exchange
    calls = [dataclasses.replace(settlement.tx("approve", exchange.address, 100), gas=80_000),
             exchange.tx("deposit", settlement.address, 200, gas=200_000)]
    devnet.rpc("evm_setAutomine", [False], operator=True)
    timer = threading.Timer(1.0, lambda: devnet.rpc("evm_mine", [], operator=True))
    try:
        timer.start()
        with pytest.raises(errors.ERC20InsufficientAllowance) as caught:
            platform.transact_many(calls)
    finally:
        timer.join()
        devnet.rpc("evm_setAutomine", [True], operator=True)
    assert caught.value.arguments == {"spender": exchange.address, "allowance": 100, "needed": 200}


@pytest.mark.parametrize("data", [bytes(range(1, 256)) * 8, bytes(2_040), b""])
def test_a_gas_limit_below_the_call_data_cost_is_refused_and_exactly_enough_is_mined(regulator, data):
    """anvil keeps a transaction whose gas does not cover its call data pending for ever; the SDK refuses it
    up front. The SDK's intrinsic cost is the node's: a plain transfer with exactly that much gas is mined."""
    from carbon_sdk.tx import Call, intrinsic_gas

    need = intrinsic_gas(data, Account.create().address)
    with pytest.raises(InvalidInput, match=f"below the {need:,} gas"):
        Call(to=Account.create().address, data=data, gas=need - 1)
    receipt = regulator.transact(Call(to=Account.create().address, data=data, gas=need))
    assert receipt.gas_used == need
