"""`ape run deploy --network ethereum:carbon-devnet:node`: ape compiles through py-solc-x, connects to the
devnet's gateway through its network entry, and the script deploys with the SDK and writes the manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eth_account import Account

from carbon_sdk import CarbonClient, Role
from carbon_sdk.devnet import Devnet
from carbon_sdk.toolchain import PROJECT_ROOT


# ape's test account 0 (its default test mnemonic): a well-known key, enrolled only on this throwaway chain.
APE_TEST_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

# An application's ape script: the SDK on ape's provider, signing as one of ape's accounts.
USE_SDK_SCRIPT = """
import json
import ape
import click
from ape.cli import ConnectedProviderCommand
from eth_account import Account

from carbon_sdk import CarbonClient, Role

@click.command(cls=ConnectedProviderCommand)
@click.option("--manifest")
@click.option("--member")
def cli(manifest, member):
    client = CarbonClient.from_ape(manifest, account=ape.accounts.test_accounts[0])
    enrolled = client.registry.enrol(member, Role.ENTERPRISE)
    click.echo("RESULT " + json.dumps({"signer": client.address, "member": enrolled.address,
                                       "status": enrolled.status.name}))
"""


def _ape(project: Path, *args: str) -> subprocess.CompletedProcess:
    ape = shutil.which("ape", path=str(Path(sys.executable).parent)) or "ape"
    env = {**os.environ, "PATH": f"{PROJECT_ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}"}
    result = subprocess.run([ape, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def ape_project(tmp_path):
    """This project, seen through a folder whose ape-config points the devnet network at a free port."""
    devnet = Devnet.start(tmp_path / "devnet", port=None)
    project = tmp_path / "project"
    project.mkdir()
    for name in ("contracts", "node_modules", ".build"):
        (project / name).symlink_to(PROJECT_ROOT / name)
    (project / "scripts").mkdir()
    (project / "scripts" / "deploy.py").symlink_to(PROJECT_ROOT / "scripts" / "deploy.py")
    (project / "scripts" / "use_sdk.py").write_text(USE_SDK_SCRIPT)
    config = (PROJECT_ROOT / "ape-config.yaml").read_text()
    assert "uri: http://127.0.0.1:8545" in config
    (project / "ape-config.yaml").write_text(config.replace("http://127.0.0.1:8545", devnet.rpc_url))
    yield project, devnet
    devnet.stop()


def test_ape_run_deploy_then_the_sdk_inside_an_ape_script(ape_project):
    project, devnet = ape_project
    _ape(project, "run", "deploy", "--network", "ethereum:carbon-devnet:node", "--devnet-folder", str(devnet.folder))
    manifest_path = project / "deployments" / "carbon-devnet.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["chain_id"] == devnet.chain_id and manifest["network"] == "carbon-devnet"
    registry = manifest["contracts"]["ConsortiumRegistry"]["address"]
    assert devnet.status().registry.lower() == registry.lower()  # the gateway now checks this registry
    regulator = CarbonClient(devnet.rpc_url, manifest_path, devnet.bootstrap_key)
    assert regulator.registry.member(devnet.bootstrap_address).role is Role.REGULATOR

    # ape's first test account becomes an organisation admin; an ape script then enrols through the SDK.
    regulator.registry.register_organisation("Ape Enterprise", APE_TEST_ACCOUNT_0, Role.ENTERPRISE,
                                             allowed_roles=[Role.ENTERPRISE])
    member = Account.create().address
    result = _ape(project, "run", "use_sdk", "--network", "ethereum:carbon-devnet:node",
                  "--manifest", str(manifest_path), "--member", member)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    assert json.loads(line[len("RESULT "):]) == {"signer": APE_TEST_ACCOUNT_0, "member": member, "status": "ACTIVE"}
    assert regulator.registry.member(member).org_id == 2
