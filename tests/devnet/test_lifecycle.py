"""Starting, attaching to, stopping and restarting a devnet: fresh keys, persisted state."""

from __future__ import annotations

import stat

import pytest
from eth_account import Account

from carbon_sdk.devnet import Devnet, DevnetAlreadyRunning, DevnetNotRunning
from carbon_sdk.rpc import RpcClient

# anvil's well-known development mnemonic ("test test ... junk"), account 0: must never exist on a devnet.
WELL_KNOWN_DEV_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_fresh_keys_persisted_state_and_single_instance(tmp_path):
    folder = tmp_path / "chain"
    devnet = Devnet.start(folder, port=None)
    try:
        key_file = folder / "bootstrap.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((folder / "operator.token").stat().st_mode) == 0o600
        assert Account.from_key(devnet.bootstrap_key).address == devnet.bootstrap_address
        rpc = RpcClient(devnet.rpc_url)
        assert rpc.call("eth_accounts") in ([], None)  # anvil holds no keys of its own
        assert devnet.bootstrap_address != WELL_KNOWN_DEV_ACCOUNT

        # Leave a mark on the chain: a zero-fee transfer from the bootstrap admin (no ether needed).
        from carbon_sdk.tx import Call, shared_sender

        sender = shared_sender(rpc, devnet.bootstrap_key)
        receipt = sender.transact(Call(to=devnet.bootstrap_address, data=b"", gas=21_000))
        assert int(rpc.call("eth_getBalance", [devnet.bootstrap_address, "latest"]), 16) == 0

        with pytest.raises(DevnetAlreadyRunning, match="already running"):
            Devnet.start(folder, port=None)
        attached = Devnet.attach(folder)
        assert attached.rpc_url == devnet.rpc_url
        status = attached.status()
        assert status.running and status.block_number >= receipt.block_number
    finally:
        devnet.stop()

    with pytest.raises(DevnetNotRunning):
        Devnet.attach(folder)

    again = Devnet.start(folder, port=None)
    try:
        assert again.bootstrap_key == devnet.bootstrap_key  # same admin on the same chain
        rpc = RpcClient(again.rpc_url)
        mined = rpc.call("eth_getTransactionByHash", [receipt.tx_hash])
        assert mined is not None and int(mined["blockNumber"], 16) == receipt.block_number  # the chain survived
        assert int(rpc.call("eth_getTransactionCount", [again.bootstrap_address, "latest"]), 16) == 1
    finally:
        again.stop()


def test_two_folders_get_different_keys(tmp_path):
    first = Devnet.start(tmp_path / "a", port=None)
    try:
        second = Devnet.start(tmp_path / "b", port=None)
        try:
            assert first.bootstrap_key != second.bootstrap_key
            assert first.rpc_url != second.rpc_url
        finally:
            second.stop()
    finally:
        first.stop()
