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
from carbon_sdk.rpc import RetryPolicy


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


def test_many_calls_go_out_as_batches_and_all_land(make_org, probe_for):
    handle = make_org(Role.ENTERPRISE)
    probe = probe_for(handle.admin)
    before = probe.call("count")
    calls = [probe.tx("ping", gas=80_000) for _ in range(250)]
    receipts = handle.admin.transact_many(calls)
    assert [r.nonce for r in receipts] == list(range(receipts[0].nonce, receipts[0].nonce + 250))
    assert probe.call("count") == before + 250


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
