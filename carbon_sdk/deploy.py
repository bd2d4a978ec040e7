"""Deploy the whole system: the one function the deploy script, the tests, the demo and the benchmark use.

Order and wiring (each later contract names the earlier ones; see docs/architecture.md):

    ConsortiumRegistry -> SettlementToken -> RewardPenaltyCoin -> VintageTokenFactory -> AllowanceManager
    -> EmissionsMRV -> CarbonExchange -> SealedAuction -> CreditManager (also the PCC token); then
    factory.bind(manager), manager.setMrv(mrv), coin.authoriseModules([mrv, manager]),
    registry.setDebtRecorder(coin), exchange.bindSealer(sealed), and registry.registerSystemContract(coin /
    exchange / sealed / credit manager) (pool, deposits and bonds hold tokens; the credit manager spends
    approved settlement tokens for platform desks and merchants).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from eth_abi import encode

from carbon_sdk.abi import ContractABI
from carbon_sdk.artifacts import Artifact
from carbon_sdk.coin import DEFAULT_RULES, CoinRuleSpec
from carbon_sdk.errors import ConfigurationError
from carbon_sdk.gwp import AR6_GWP100, GwpTable
from carbon_sdk.manifest import ContractRecord, Manifest
from carbon_sdk.registry import identity_hash
from carbon_sdk.tx import Call, Receipt, TransactionSender, shared_sender

# Deployed in this order; later issues append (credits, exchange...).
SYSTEM_CONTRACTS = ("ConsortiumRegistry", "SettlementToken", "RewardPenaltyCoin", "VintageTokenFactory",
                    "AllowanceManager", "EmissionsMRV", "CarbonExchange", "SealedAuction", "CreditManager")
# Contract types the system creates at run time; their ABIs go into the manifest.
RUNTIME_CONTRACTS = ("VintageToken",)


@dataclass(frozen=True)
class SystemConfig:
    """What a deployment fixes for good (DESIGN 2.3: the coin's rules and rate are set at deployment)."""

    regulator_name: str = "National Carbon Market Regulator"
    regulator_identity: bytes | str | dict[str, Any] = b""
    settlement_name: str = "Digital Yuan (settlement)"
    settlement_symbol: str = "DCNY"
    settlement_decimals: int = 2
    fiat_currency: str = "CNY"
    fiat_rate: tuple[int, int] = (1, 1)  # fiat minor units per token unit (numerator, denominator)
    # Settlement-token units per coin unit: 1 coin (1e6 units) = 1,000 fen = 10.00 CNY.
    coin_rate: tuple[int, int] = (1, 1_000)
    coin_rules: tuple[CoinRuleSpec, ...] = field(default_factory=lambda: DEFAULT_RULES)
    tolerance_bps: int = 500  # an audit accepts a report within 5 % of the verified quantity
    gwp_table: GwpTable = AR6_GWP100


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
    config: SystemConfig | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> Manifest:
    """Deploy every system contract from ``sender`` (who becomes the regulator's admin); return the manifest."""
    config = config or SystemConfig()
    missing = [name for name in SYSTEM_CONTRACTS + RUNTIME_CONTRACTS if name not in artifacts]
    if missing:
        raise ConfigurationError(f"compiled contracts missing: {', '.join(missing)} (run `ape compile`)")
    genesis = sender.rpc.call("eth_getBlockByNumber", ["0x0", False])
    records: dict[str, ContractRecord] = {}

    def deploy(name: str, *args: Any) -> str:
        receipt = deploy_contract(sender, artifacts[name], *args)
        assert receipt.contract_address is not None
        records[name] = ContractRecord(receipt.contract_address, artifacts[name].abi, receipt.block_number,
                                       receipt.tx_hash)
        log(f"{name} deployed at {receipt.contract_address} (gas {receipt.gas_used:,})")
        return receipt.contract_address

    def call(name: str, function: str, *args: Any) -> None:
        fn = ContractABI(name, artifacts[name].abi).function(function)
        sender.transact(Call(to=records[name].address, data=fn.encode(*args), label=f"{name}.{function}"))

    registry = deploy("ConsortiumRegistry", config.regulator_name, sender.address,
                      identity_hash(config.regulator_identity or config.regulator_name))
    settlement = deploy("SettlementToken", registry, config.settlement_name, config.settlement_symbol,
                        config.settlement_decimals, config.fiat_currency, *config.fiat_rate)
    rules = config.coin_rules
    coin = deploy("RewardPenaltyCoin", registry, settlement, *config.coin_rate,
                  [int(r.reason) for r in rules], [r.penalty for r in rules], [r.flat for r in rules],
                  [r.per_tonne for r in rules])
    factory = deploy("VintageTokenFactory", registry)
    manager = deploy("AllowanceManager", registry, factory, coin)
    table = config.gwp_table
    mrv = deploy("EmissionsMRV", registry, manager, coin, config.tolerance_bps, table.name, list(table.gases),
                 table.gwp_milli, table.source_hash)
    exchange = deploy("CarbonExchange", registry)
    sealed = deploy("SealedAuction", registry, exchange)
    credits = deploy("CreditManager", registry, settlement)  # also the PCC token

    call("VintageTokenFactory", "bind", manager)
    call("AllowanceManager", "setMrv", mrv)
    call("RewardPenaltyCoin", "authoriseModules", [mrv, manager])
    call("ConsortiumRegistry", "setDebtRecorder", coin)
    call("ConsortiumRegistry", "registerSystemContract", coin, identity_hash("reward-penalty coin conversion pool"))
    call("ConsortiumRegistry", "registerSystemContract", exchange, identity_hash("exchange deposits"))
    call("CarbonExchange", "bindSealer", sealed)
    call("ConsortiumRegistry", "registerSystemContract", sealed, identity_hash("sealed-bid bonds"))
    call("ConsortiumRegistry", "registerSystemContract", credits, identity_hash("personal credit desks"))
    log("system wired: factory bound, MRV set, coin modules authorised, coin is the debt recorder, "
        "coin pool and exchange hold tokens as SYSTEM members")

    first_block = min(r.block for r in records.values())
    return Manifest(network=network, chain_id=sender.chain_id, block=first_block, genesis_hash=genesis["hash"],
                    deployer=sender.address, contracts=records, deployed_at=int(time.time()),
                    abis={name: artifacts[name].abi for name in RUNTIME_CONTRACTS})


def deploy_on_devnet(devnet: Any, artifacts: dict[str, Artifact], *, network: str, key: str | None = None,
                     config: SystemConfig | None = None, log: Callable[[str], None] = lambda _: None) -> Manifest:
    """Deploy on a devnet (as its bootstrap admin unless ``key`` is given), then make its gateway check
    senders against the new registry."""
    sender = shared_sender(devnet.rpc_url, key or devnet.bootstrap_key)
    manifest = deploy_system(sender, artifacts, network=network, config=config, log=log)
    devnet.set_registry(manifest.contract("ConsortiumRegistry").address)
    return manifest
