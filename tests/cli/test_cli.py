"""The `carbon` command line, run in-process against the session's devnet."""

from __future__ import annotations

import socket
import tomllib

import pytest
from click.testing import CliRunner
from eth_account import Account

from carbon_sdk import MemberStatus, Role
from carbon_sdk.cli import main


@pytest.fixture
def carbon(devnet, manifest, tmp_path):
    manifest_path = manifest.save(tmp_path / "manifest.json")
    runner = CliRunner()

    def run(*args: str, key: str | None = None, ok: bool = True):
        env = {"CARBON_MANIFEST": str(manifest_path), "CARBON_DEVNET_FOLDER": str(devnet.folder),
               "CARBON_PRIVATE_KEY": key or devnet.bootstrap_key, "COLUMNS": "200"}
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return run


def test_register_enrol_list_suspend_and_export(carbon, regulator, tmp_path):
    admin = Account.create()
    out = carbon("registry", "register-org", "Pearl River Steel", "--admin", admin.address,
                 "--admin-role", "enterprise", "--roles", "enterprise,observer", "--region", "44")
    assert "Pearl River Steel" in out and "enterprise, observer" in out
    staff = [Account.create().address for _ in range(3)]
    (tmp_path / "staff.csv").write_text("address,identity\n" + "".join(f"{a},employee-{i}\n" for i, a in enumerate(staff)))
    out = carbon("registry", "enrol-batch", str(tmp_path / "staff.csv"), "--role", "enterprise", "--region", "44",
                 key=admin.key.hex())
    assert "enrolled 3 members" in out
    assert regulator.registry.statuses(staff) == [MemberStatus.ACTIVE] * 3
    out = carbon("registry", "suspend", staff[0], key=admin.key.hex())
    assert "active -> suspended" in out
    out = carbon("registry", "show", staff[0])
    assert "suspended" in out and staff[0] in out
    out = carbon("registry", "list", "--status", "active", "--role", "enterprise")
    assert staff[1] in out and staff[0] not in out

    allowlist = tmp_path / "permissions_config.toml"
    carbon("registry", "export-allowlist", "--format", "besu", "--output", str(allowlist))
    accounts = tomllib.loads(allowlist.read_text())["accounts-allowlist"]
    assert staff[1] in accounts and staff[2] in accounts and admin.address in accounts
    assert staff[0] not in accounts  # suspended members are not allowed at the node either
    assert set(accounts) == {m.address for m in regulator.registry.members(status=MemberStatus.ACTIVE)
                             if m.role is not Role.SYSTEM}  # contracts never sign


def test_contract_errors_are_one_clear_line(carbon, make_org):
    handle = make_org(Role.ENTERPRISE)
    out = carbon("registry", "enrol", Account.create().address, "--role", "verifier",
                 key=handle.admin.sender.signer._account.key.hex(), ok=False)
    assert "RegistryRoleNotAllowed" in out and "Traceback" not in out


def test_bad_input_is_refused_with_a_message(carbon):
    out = carbon("registry", "enrol", "0xnot-an-address", "--role", "individual", ok=False)
    assert "not an Ethereum address" in out


def test_deploy_info_and_devnet_status(carbon, manifest):
    out = carbon("deploy", "info")
    assert manifest.contract("ConsortiumRegistry").address in out and "chain matches" in out
    out = carbon("devnet", "status")
    assert "True" in out and str(manifest.chain_id) in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_devnet_up_deploy_down_and_up_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the manifest goes to ./deployments
    runner = CliRunner()
    folder, port = tmp_path / "net", _free_port()
    args = ["--devnet-folder", str(folder)]
    up = runner.invoke(main, [*args, "devnet", "up", "--port", str(port), "--anvil-port", str(_free_port())])
    assert up.exit_code == 0, up.output
    try:
        assert "manifest written" in up.output
        assert (tmp_path / "deployments" / "carbon-devnet.json").exists()
        orgs = runner.invoke(main, [*args, "registry", "orgs"])
        assert "National Carbon Market Regulator" in orgs.output
        again = runner.invoke(main, [*args, "devnet", "up", "--port", str(port)])
        assert again.exit_code == 1 and "already running" in again.output
    finally:
        down = runner.invoke(main, [*args, "devnet", "down"])
        assert down.exit_code == 0, down.output
    status = runner.invoke(main, [*args, "devnet", "status"])
    assert status.exit_code == 3 and "not running" in status.output
    # State was kept: the next start finds the same deployment and does not redeploy.
    up = runner.invoke(main, [*args, "devnet", "up", "--port", str(port), "--anvil-port", str(_free_port())])
    try:
        assert up.exit_code == 0, up.output
        assert "matches this chain: not redeploying" in up.output
    finally:
        runner.invoke(main, [*args, "devnet", "down"])


def test_devnet_up_redeploys_when_the_manifest_is_for_another_chain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ports = ["--port", str(_free_port()), "--anvil-port", str(_free_port())]
    first, second = ["--devnet-folder", str(tmp_path / "a")], ["--devnet-folder", str(tmp_path / "b")]
    assert runner.invoke(main, [*first, "devnet", "up", *ports]).exit_code == 0
    runner.invoke(main, [*first, "devnet", "down"])
    up = runner.invoke(main, [*second, "devnet", "up", *ports])  # a new chain, the old manifest on disk
    try:
        assert up.exit_code == 0, up.output
        assert "belongs to another chain" in up.output and "manifest written" in up.output
    finally:
        runner.invoke(main, [*second, "devnet", "down"])
