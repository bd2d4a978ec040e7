"""Deploy the whole system: the one function the deploy script, the tests, the demo and the benchmark use."""

from __future__ import annotations

import time
from typing import Any, Callable

from eth_abi import encode

from carbon_sdk.abi import ContractABI
from carbon_sdk.artifacts import Artifact
from carbon_sdk.errors import ConfigurationError
from carbon_sdk.manifest import ContractRecord, Manifest
from carbon_sdk.registry import identity_hash
from carbon_sdk.tx import Call, Receipt, TransactionSender, shared_sender

# Deployed in this order; later issues append (allowances, coin, credits, exchange...).
SYSTEM_CONTRACTS = ("ConsortiumRegistry",)


def deploy_contract(sender: TransactionSender, artifact: Artifact, *args: Any) -> Receipt:
    """Deploy one compiled contract with constructor arguments; return its receipt."""
    if not artifact.bytecode:
        raise ConfigurationError(f"{artifact.name} has no bytecode (is it abstract or an interface?)")
    types = ContractABI(artifact.name, artifact.abi).constructor_types()
    data = artifact.bytecode + (encode(types, list(args)) if types else b"")
    return sender.transact(Call(to=None, data=data, label=f"deploy {artifact.name}"))


def deploy_system(
    sender: TransactionSender,
    artifacts: dict[str, Artifact],
    *,
    network: str,
    regulator_name: str = "National Carbon Market Regulator",
    regulator_identity: bytes | str | dict[str, Any] = b"",
    log: Callable[[str], None] = lambda _: None,
) -> Manifest:
    """Deploy every system contract from ``sender`` (who becomes the regulator's admin); return the manifest."""
    missing = [name for name in SYSTEM_CONTRACTS if name not in artifacts]
    if missing:
        raise ConfigurationError(f"compiled contracts missing: {', '.join(missing)} (run `ape compile`)")
    rpc = sender.rpc
    genesis = rpc.call("eth_getBlockByNumber", ["0x0", False])
    records: dict[str, ContractRecord] = {}

    registry = artifacts["ConsortiumRegistry"]
    receipt = deploy_contract(sender, registry, regulator_name, sender.address,
                              identity_hash(regulator_identity or regulator_name))
    assert receipt.contract_address is not None
    records[registry.name] = ContractRecord(receipt.contract_address, registry.abi, receipt.block_number,
                                            receipt.tx_hash)
    log(f"ConsortiumRegistry deployed at {receipt.contract_address} (gas {receipt.gas_used:,})")

    first_block = min(r.block for r in records.values())
    return Manifest(network=network, chain_id=sender.chain_id, block=first_block, genesis_hash=genesis["hash"],
                    deployer=sender.address, contracts=records, deployed_at=int(time.time()))


def deploy_on_devnet(devnet: Any, artifacts: dict[str, Artifact], *, network: str, key: str | None = None,
                     log: Callable[[str], None] = lambda _: None) -> Manifest:
    """Deploy on a devnet (as its bootstrap admin unless ``key`` is given), then make its gateway check
    senders against the new registry."""
    sender = shared_sender(devnet.rpc_url, key or devnet.bootstrap_key)
    manifest = deploy_system(sender, artifacts, network=network, log=log)
    devnet.set_registry(manifest.contract("ConsortiumRegistry").address)
    return manifest
