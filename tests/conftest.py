"""Shared fixtures: one real devnet (anvil behind the permissioning gateway) and one deployment per run.

Role fixtures give ready clients (``regulator``); factory fixtures make fresh organisations and accounts,
so tests never depend on each other's state.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pytest
from eth_account import Account

from carbon_sdk import CarbonClient, Manifest, Role
from carbon_sdk.artifacts import Artifact, load_build
from carbon_sdk.deploy import deploy_contract, deploy_on_devnet
from carbon_sdk.devnet import Devnet
from carbon_sdk.types import Organisation


@pytest.fixture(scope="session")
def devnet(tmp_path_factory) -> Devnet:
    with Devnet.start(tmp_path_factory.mktemp("devnet"), port=None) as node:
        yield node


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Artifact]:
    return load_build()


@pytest.fixture(scope="session")
def manifest(devnet: Devnet, artifacts: dict[str, Artifact]) -> Manifest:
    return deploy_on_devnet(devnet, artifacts, network="pytest")


@pytest.fixture(scope="session")
def regulator(devnet: Devnet, manifest: Manifest) -> CarbonClient:
    """The national regulator's admin (the bootstrap admin who deployed the system)."""
    return CarbonClient(devnet.rpc_url, manifest, devnet.bootstrap_key)


@pytest.fixture
def new_account() -> Callable[[], Any]:
    return Account.create


@dataclass
class OrgHandle:
    org: Organisation
    admin: CarbonClient  # a client signing as the organisation's admin


_names = itertools.count(1)


@pytest.fixture
def make_org(regulator: CarbonClient, devnet: Devnet, manifest: Manifest) -> Callable[..., OrgHandle]:
    """Register a fresh organisation; returns it with a client for its admin."""

    def make(admin_role: Role = Role.ENTERPRISE, allowed: tuple[Role, ...] | None = None, region: int = 0,
             by: CarbonClient | None = None) -> OrgHandle:
        admin = Account.create()
        org = (by or regulator).registry.register_organisation(
            f"Org {next(_names)}", admin.address, admin_role, allowed_roles=allowed or (admin_role,), region=region)
        return OrgHandle(org, CarbonClient(devnet.rpc_url, manifest, admin.key))

    return make


@pytest.fixture
def client_for(devnet: Devnet, manifest: Manifest) -> Callable[[Any], CarbonClient]:
    """A client signing as the given eth_account account."""
    return lambda account: CarbonClient(devnet.rpc_url, manifest, account.key)


def registry_state(client: CarbonClient, addresses: list[str]) -> dict[str, Any]:
    """Everything a registry test may change: org count, each organisation, and the given members."""
    contract = client.registry.contract
    count = contract.call("organisationCount")
    return {
        "organisations": [contract.call("getOrganisation", i) for i in range(1, count + 1)],
        "members": {a: contract.call("getMember", a) for a in addresses},
    }


@pytest.fixture
def unchanged(regulator: CarbonClient):
    """``with unchanged(addresses): ...`` asserts that the registry state is the same afterwards."""
    from contextlib import contextmanager

    @contextmanager
    def check(addresses: list[str]):
        before = registry_state(regulator, addresses)
        yield
        assert registry_state(regulator, addresses) == before

    return check


@pytest.fixture(scope="session")
def probe_address(regulator: CarbonClient, artifacts: dict[str, Artifact], manifest: Manifest) -> str:
    """A GuardedProbe (contracts/test): a minimal RegistryGuard user for mixin and SDK tests."""
    receipt = deploy_contract(regulator.sender, artifacts["GuardedProbe"], manifest.contract("ConsortiumRegistry").address)
    return receipt.contract_address


@pytest.fixture
def probe_for(probe_address: str, artifacts: dict[str, Artifact]):
    """The probe bound to a given client."""
    return lambda client: client.bind("GuardedProbe", probe_address, artifacts["GuardedProbe"].abi)


# ---------------------------------------------------------------- a fresh market per test module

class Market:
    """A fresh deployment of the whole system on the session's chain, reached on anvil directly (no gateway),
    so each test module gets its own registry, period numbering and coin, and may move the chain's clock.

    ``enterprise()``, ``verifier()``... register a fresh organisation and return a client for its admin.
    ``open_period()`` opens the next period id with a schedule relative to the chain's clock.
    """

    def __init__(self, devnet: Devnet, artifacts: dict[str, Artifact], config: Any = None):
        from carbon_sdk.deploy import deploy_system
        from carbon_sdk.tx import shared_sender

        self.devnet = devnet
        self.url = devnet.anvil_url
        # Its own deployer (gas is free on the devnet), so each module's regulator is a fresh account.
        self.deployer = Account.create()
        sender = shared_sender(self.url, self.deployer.key)
        self.manifest = deploy_system(sender, artifacts, network="pytest-market", config=config)
        self.regulator = CarbonClient(self.url, self.manifest, self.deployer.key)
        self._period_ids = itertools.count(2001)
        self._names = itertools.count(1)

    # -- members --------------------------------------------------------------------------------------

    def client(self, account: Any) -> CarbonClient:
        return CarbonClient(self.url, self.manifest, account.key)

    def member(self, role: Role, region: int = 0, by: CarbonClient | None = None,
               allowed: Sequence[Role] | None = None) -> CarbonClient:
        """A fresh organisation whose admin has ``role`` (in ``region``), that may enrol members of the
        ``allowed`` roles (``role`` alone by default); a client signing as that admin."""
        admin = Account.create()
        (by or self.regulator).registry.register_organisation(
            f"{role.name.title()} {next(self._names)}", admin.address, role, allowed_roles=list(allowed or [role]),
            region=region)
        return self.client(admin)

    def credits_platform(self) -> CarbonClient:
        """A fresh platform that may enrol individuals (personal carbon credits)."""
        return self.member(Role.PLATFORM, allowed=[Role.PLATFORM, Role.INDIVIDUAL])

    @staticmethod
    def open_desk(platform: CarbonClient, buy_back: int, sale: int, float_: int = 10_000_000) -> None:
        """Post the desk's prices and fund it with ``float_`` settlement units issued to the platform."""
        platform.settlement.issue(platform.address, float_, fiat_reference="desk float")
        platform.credits.post_prices(buy_back, sale)
        platform.credits.fund_desk(float_)

    def enterprise(self, region: int = 0) -> CarbonClient:
        return self.member(Role.ENTERPRISE, region)

    def verifier(self, region: int = 0) -> CarbonClient:
        return self.member(Role.VERIFIER, region)

    def platform(self, region: int = 0) -> CarbonClient:
        return self.member(Role.PLATFORM, region)

    def regional_regulator(self, region: int) -> CarbonClient:
        return self.member(Role.REGULATOR, region)

    # -- the chain's clock ----------------------------------------------------------------------------

    def now(self) -> int:
        """The latest block's timestamp."""
        return self.regulator.chain_time()

    def mine_at(self, timestamp: int) -> None:
        """Mine an empty block at ``timestamp`` (later than the latest block)."""
        self.regulator.rpc.call("evm_mine", [timestamp])

    def next_block_at(self, timestamp: int) -> None:
        """Make the next mined block carry ``timestamp``."""
        self.regulator.rpc.call("evm_setNextBlockTimestamp", [timestamp])

    # -- periods --------------------------------------------------------------------------------------

    def open_period(self, cap: int, *, trading_in: int = 1_000, reconciliation_in: int = 100_000,
                    closes_in: int = 200_000, **options: Any):
        """Open the next period id, its phases starting ``*_in`` seconds after the chain's clock."""
        now = self.now()
        return self.regulator.allowances.open_period(
            next(self._period_ids), cap=cap, trading_at=now + trading_in, reconciliation_at=now + reconciliation_in,
            closes_at=now + closes_in, **options)

    def to_phase(self, period: int, phase: Any) -> None:
        """Advance ``period`` (by the regulator) until it is in ``phase``."""
        allowances = self.regulator.allowances
        while allowances.phase(period) < phase:
            allowances.advance_phase(period)


def raw_settle(client: CarbonClient, orders: Sequence[Any], permits: Sequence[Any] = ()) -> Any:
    """settleDeskOrders past the SDK's checks, with a fixed gas limit: the chain itself decides (a refusal is
    mined and decoded from the chain)."""
    return client.transact(client.credits.contract.tx(
        "settleDeskOrders", [o.as_abi() for o in orders], [p.as_abi() for p in permits], gas=5_000_000))


@pytest.fixture(scope="module")
def market(devnet: Devnet, artifacts: dict[str, Artifact]) -> Market:
    return Market(devnet, artifacts)


@pytest.fixture(scope="session")
def other_market(devnet: Devnet, artifacts: dict[str, Artifact]) -> Market:
    """A second deployment of the whole system on the same chain: its contracts sit at other addresses, so its
    EIP-712 domains differ. For replay tests across deployments; one per session (each deploy is 9 contracts)."""
    return Market(devnet, artifacts)
