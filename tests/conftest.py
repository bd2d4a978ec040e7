"""Shared fixtures: one real devnet (anvil behind the permissioning gateway) and one deployment per run.

Role fixtures give ready clients (``regulator``); factory fixtures make fresh organisations and accounts,
so tests never depend on each other's state.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

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
