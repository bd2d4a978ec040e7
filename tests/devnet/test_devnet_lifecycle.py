"""Starting, inspecting, attaching to, crashing, restarting and stopping devnets: real processes, no mocks."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from carbon_sdk.devnet import (
    AnvilNotFound,
    Devnet,
    DevnetAlreadyRunning,
    DevnetError,
    DevnetNotRunning,
    DevnetRpcError,
    PortInUse,
    find_anvil,
)
from carbon_sdk.devnet.gateway import NODE_UNAVAILABLE
from carbon_sdk.devnet.node import STATE_INTERVAL_SECONDS

# Account 0 of anvil's well-known development mnemonic ("test test ... junk"): it must never exist here.
WELL_KNOWN_DEV_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
# A contract whose code returns 42: PUSH1 42 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN, behind its deployer.
ANSWER_INIT_CODE = "0x69602a60005260206000f3600052600a6016f3"
ANSWER_CODE = "0x602a60005260206000f3"


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Devnet:
    with Devnet.start(tmp_path_factory.mktemp("lifecycle-devnet"), port=None) as started:
        yield started


def web3_for(devnet: Devnet) -> Web3:
    return Web3(Web3.HTTPProvider(devnet.rpc_url, request_kwargs={"timeout": 30}))


def transact(devnet: Devnet, **fields: Any) -> Any:
    """A zero-fee transaction from the bootstrap admin, through the gateway; its receipt."""
    w3, admin = web3_for(devnet), Account.from_key(devnet.bootstrap_key)
    tx = {"type": 2, "chainId": devnet.chain_id, "nonce": w3.eth.get_transaction_count(admin.address),
          "gas": 100_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "value": 0, **fields}  # fmt: skip
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(admin.sign_transaction(tx).raw_transaction), timeout=30
    )
    assert receipt.status == 1
    return receipt


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_folder_gets_its_own_keys_and_no_well_known_ones(devnet, tmp_path):
    assert mode(devnet.folder / "bootstrap.key") == 0o600
    assert mode(devnet.folder / "operator.token") == 0o600
    admin: LocalAccount = Account.from_key(devnet.bootstrap_key)
    assert admin.address == devnet.bootstrap_address != WELL_KNOWN_DEV_ACCOUNT
    assert (devnet.folder / "bootstrap.key").read_text().strip() == devnet.bootstrap_key

    w3 = web3_for(devnet)
    assert w3.eth.accounts == []  # anvil holds no keys at all
    assert Web3(Web3.HTTPProvider(devnet.anvil_url)).eth.accounts == []
    assert w3.eth.get_balance(WELL_KNOWN_DEV_ACCOUNT) == 0 and w3.eth.get_balance(admin.address) == 0

    config = json.loads((devnet.folder / "devnet.json").read_text())
    status = devnet.status()
    assert config["gateway"] == {"pid": status.gateway_pid, "port": status.port}
    assert config["anvil"] == {"pid": status.anvil_pid, "port": status.anvil_port}
    assert config["chain_id"] == 47001 and config["bootstrap_address"] == admin.address
    assert devnet.operator_token not in (devnet.folder / "devnet.json").read_text()

    with Devnet.start(tmp_path / "other", port=None) as other:
        assert other.bootstrap_key != devnet.bootstrap_key and other.operator_token != devnet.operator_token
        # Clients tell chains apart by their genesis block, even chains made in the same second.
        assert web3_for(other).eth.get_block(0).hash != web3_for(devnet).eth.get_block(0).hash


def test_the_chain_is_free_gas_with_a_30m_block_gas_limit(devnet):
    block = web3_for(devnet).eth.get_block("latest")
    assert block.gasLimit == 30_000_000 and block.baseFeePerGas == 0
    assert web3_for(devnet).eth.chain_id == devnet.chain_id == 47001
    assert devnet.anvil_url.startswith("http://127.0.0.1:") and devnet.rpc_url.startswith("http://127.0.0.1:")


def test_status_and_attach(devnet):
    status = devnet.status()
    assert status.running and status.anvil_running and status.gateway_running
    assert status.rpc_url == devnet.rpc_url and status.chain_id == 47001 and status.folder == devnet.folder
    assert status.block_number == web3_for(devnet).eth.block_number
    attached = Devnet.attach(devnet.folder)
    assert (attached.rpc_url, attached.anvil_url, attached.bootstrap_key) == (
        devnet.rpc_url, devnet.anvil_url, devnet.bootstrap_key)  # fmt: skip
    assert attached.rpc("eth_chainId") == hex(47001)


def test_a_running_devnet_or_a_taken_port_is_refused_clearly(devnet, tmp_path):
    with pytest.raises(DevnetAlreadyRunning, match=f"already running in {devnet.folder}"):
        Devnet.start(devnet.folder, port=None)
    with pytest.raises(PortInUse, match=f"port {devnet.port} .* is taken"):
        Devnet.start(tmp_path / "a", port=devnet.port)
    with pytest.raises(PortInUse, match=f"port {devnet.anvil_port} .* is taken"):
        Devnet.start(tmp_path / "b", port=None, anvil_port=devnet.anvil_port)
    assert devnet.status().running


def test_a_crashed_node_is_reported_then_restarted_with_its_chain(devnet):
    before = transact(devnet, to=devnet.bootstrap_address)
    time.sleep(STATE_INTERVAL_SECONDS + 0.5)  # anvil dumps the chain to the folder every interval
    devnet.kill_node()
    status = devnet.status()
    assert not status.anvil_running and status.gateway_running and status.block_number is None
    with pytest.raises(DevnetRpcError, match="unreachable") as refused:
        devnet.rpc("eth_blockNumber")
    assert refused.value.code == NODE_UNAVAILABLE
    with pytest.raises(DevnetNotRunning, match=r"anvil not running\): try Devnet.attach\(.*, True\).stop\(\)"):
        Devnet.attach(devnet.folder)
    assert Devnet.attach(devnet.folder, partial=True).status().gateway_running
    with pytest.raises(DevnetAlreadyRunning, match="gateway pid"):  # what is left still holds the folder
        Devnet.start(devnet.folder, port=None)

    devnet.restart_node()  # same port, chain reloaded from the last dump
    w3 = web3_for(devnet)
    assert w3.eth.block_number >= before.blockNumber
    assert w3.eth.get_transaction_receipt(before.transactionHash).status == 1

    after = transact(devnet, to=devnet.bootstrap_address)  # the gateway reconnects by itself
    devnet.restart_node()  # a graceful restart dumps the chain on the way down: nothing is lost
    assert web3_for(devnet).eth.get_transaction_receipt(after.transactionHash) == after
    assert devnet.status().running


def test_stop_then_start_again_keeps_the_key_the_chain_and_the_registry(tmp_path):
    folder = tmp_path / "chain"
    with Devnet.start(folder, port=None) as devnet:
        assert mode(folder) == 0o700  # a folder the devnet makes is its owner's only
        key, genesis = devnet.bootstrap_key, web3_for(devnet).eth.get_block(0)
        deployed = transact(devnet, data=ANSWER_INIT_CODE)
        devnet.set_registry(deployed.contractAddress)
        height = devnet.status().block_number
    assert not devnet.status().anvil_running and not devnet.status().gateway_running
    assert devnet.status().anvil_pid is None and devnet.status().gateway_pid is None
    assert not (folder / "operator.token").exists()
    with pytest.raises(DevnetNotRunning, match="no devnet is running"):
        Devnet.attach(folder)
    assert not Devnet.attach(folder, partial=True).status().running
    with pytest.raises(DevnetNotRunning, match="no devnet was ever started"):
        Devnet.attach(tmp_path / "empty", partial=True)

    again = Devnet.start(folder, port=None)
    try:
        assert again.bootstrap_key == key
        w3 = web3_for(again)
        assert w3.eth.get_block(0) == genesis and w3.eth.block_number == height
        assert w3.eth.get_code(deployed.contractAddress).to_0x_hex() == ANSWER_CODE
        assert w3.eth.get_transaction_receipt(deployed.transactionHash) == deployed
        assert again.rpc("carbon_gatewayInfo")["registry"] == deployed.contractAddress
        assert Devnet.attach(folder).status().running
        transact(again, to=again.bootstrap_address)
    finally:
        again.stop()
    again.stop()  # stopping a stopped devnet does nothing

    with pytest.raises(DevnetError, match="chain id 47001, not 5"):
        Devnet.start(folder, port=None, chain_id=5)


def test_a_throwaway_devnet_never_writes_its_chain(tmp_path):
    """persist=False (the sandbox's and the benchmark's chains): no state written, however long it runs, and
    a restart is a new chain."""
    folder = tmp_path / "throwaway"
    with Devnet.start(folder, port=None, persist=False) as devnet:
        transact(devnet, to=devnet.bootstrap_address)
        height = devnet.status().block_number
        time.sleep(STATE_INTERVAL_SECONDS * 2.5)
        assert height >= 1
        assert not devnet._folder.anvil_dump_file.exists() and not devnet._folder.anvil_state_file.exists()
    from carbon_sdk.devnet.folder import ANVIL_DUMP_FILE, ANVIL_STATE_FILE

    assert not (folder / ANVIL_STATE_FILE).exists() and not (folder / ANVIL_DUMP_FILE).exists()  # nor on stop


def test_a_devnet_mining_per_request_puts_a_batch_in_one_block(tmp_path):
    """mine_per_request (the sandbox's chains): anvil mines only when the gateway asks, once per request that
    sent transactions, so a JSON-RPC batch of transactions shares one block; a lone one is mined at once; the
    block gas limit is the one asked for."""
    from carbon_sdk.tx import Call, shared_sender

    with Devnet.start(tmp_path / "batched", port=None, persist=False, mine_per_request=True,
                      gas_limit=120_000_000) as devnet:
        assert int(devnet.rpc("eth_getBlockByNumber", ["latest", False])["gasLimit"], 16) == 120_000_000
        receipt = transact(devnet, to=devnet.bootstrap_address)  # one transaction: mined, not left pending
        sender = shared_sender(devnet.rpc_url, devnet.bootstrap_key, devnet.chain_id)
        receipts = sender.transact_many([Call(to=devnet.bootstrap_address, data=b"", gas=21_000)
                                         for _ in range(60)])
        assert len({r.block_number for r in receipts}) == 1 and receipts[0].block_number > receipt.blockNumber
        assert devnet.rpc("txpool_status", [], operator=True)["pending"] == "0x0"


def test_a_dump_torn_by_a_crash_falls_back_to_the_previous_state(tmp_path, caplog):
    folder = tmp_path / "chain"
    with Devnet.start(folder, port=None) as devnet:
        transact(devnet, to=devnet.bootstrap_address)
    with Devnet.start(folder, port=None) as devnet:  # starts from the dump of the first run
        height = devnet.status().block_number
        transact(devnet, to=devnet.bootstrap_address)
    dump = folder / "anvil-dump.json"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])  # as a crash in mid-write would leave it

    with Devnet.start(folder, port=None) as devnet:
        assert devnet.status().block_number == height  # the chain as the second run found it
        transact(devnet, to=devnet.bootstrap_address)
    assert "incomplete" in caplog.text and list(folder.glob("anvil-dump.torn-*.json"))


def test_anvil_is_found_or_the_error_names_where_it_was_looked_for(monkeypatch, tmp_path):
    assert Path(find_anvil()).name == "anvil"
    monkeypatch.setenv("CARBON_ANVIL", str(tmp_path / "missing-anvil"))
    with pytest.raises(AnvilNotFound, match="CARBON_ANVIL=.*missing-anvil"):
        find_anvil()
    with pytest.raises(AnvilNotFound):
        Devnet.start(tmp_path / "chain", port=None)
    assert not (tmp_path / "chain" / "devnet.json").exists()  # nothing was started, no key was made
    assert not (tmp_path / "chain" / "bootstrap.key").exists()
