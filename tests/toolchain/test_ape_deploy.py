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

from carbon_sdk import CarbonClient, Role
from carbon_sdk.devnet import Devnet
from carbon_sdk.toolchain import PROJECT_ROOT


@pytest.fixture
def ape_project(tmp_path):
    """This project, seen through a folder whose ape-config points the devnet network at a free port."""
    devnet = Devnet.start(tmp_path / "devnet", port=None)
    project = tmp_path / "project"
    project.mkdir()
    for name in ("contracts", "scripts", "node_modules", ".build"):
        (project / name).symlink_to(PROJECT_ROOT / name)
    config = (PROJECT_ROOT / "ape-config.yaml").read_text()
    assert "uri: http://127.0.0.1:8545" in config
    (project / "ape-config.yaml").write_text(config.replace("http://127.0.0.1:8545", devnet.rpc_url))
    yield project, devnet
    devnet.stop()


def test_ape_run_deploy_on_the_devnet_network(ape_project):
    project, devnet = ape_project
    ape = shutil.which("ape", path=str(Path(sys.executable).parent)) or "ape"
    env = {**os.environ, "PATH": f"{PROJECT_ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}"}
    result = subprocess.run(
        [ape, "run", "deploy", "--network", "ethereum:carbon-devnet:node", "--devnet-folder", str(devnet.folder)],
        cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest_path = project / "deployments" / "carbon-devnet.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["chain_id"] == devnet.chain_id and manifest["network"] == "carbon-devnet"
    registry = manifest["contracts"]["ConsortiumRegistry"]["address"]
    assert devnet.status().registry.lower() == registry.lower()  # the gateway now checks this registry
    client = CarbonClient(devnet.rpc_url, manifest_path)
    assert client.registry.member(devnet.bootstrap_address).role is Role.REGULATOR
