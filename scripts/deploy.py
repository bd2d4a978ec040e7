"""Deploy the carbon market and write its manifest to deployments/<network>.json.

    ape run deploy --network ethereum:carbon-devnet:node   # the permissioned devnet (`carbon devnet up`)
    ape run deploy                                          # ape's own local anvil, for a quick look

The deployer becomes the regulator's admin. On the devnet it is the bootstrap admin (key in the devnet
folder); elsewhere set CARBON_DEPLOYER_KEY, or on ape's local network the first test account is used.
All the work is done by carbon_sdk.deploy.deploy_system, the same function the tests use.
"""

import os
from pathlib import Path

import ape
import click
from ape.cli import ConnectedProviderCommand

from carbon_sdk.artifacts import from_ape_contract_types
from carbon_sdk.deploy import RUNTIME_CONTRACTS, SYSTEM_CONTRACTS, deploy_system
from carbon_sdk.tx import shared_sender

DEVNET_NETWORK = "carbon-devnet"


def _deployer_key(network: str, devnet_folder: Path) -> str:
    if os.environ.get("CARBON_DEPLOYER_KEY"):
        return os.environ["CARBON_DEPLOYER_KEY"]
    if network == DEVNET_NETWORK:
        key_file = devnet_folder / "bootstrap.key"
        if not key_file.exists():
            raise click.ClickException(f"{key_file} not found: is the devnet running (`carbon devnet up`)?")
        return key_file.read_text().strip()
    if network == "local":
        return ape.accounts.test_accounts[0].private_key
    raise click.ClickException(f"set CARBON_DEPLOYER_KEY to deploy on {network}")


@click.command(cls=ConnectedProviderCommand)
@click.option("--devnet-folder", type=click.Path(path_type=Path), default=Path(".devnet"), show_default=True,
              envvar="CARBON_DEVNET_FOLDER")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Manifest path (default: deployments/<network>.json).")
def cli(devnet_folder: Path, output: Path | None) -> None:
    provider = ape.chain.provider
    network = provider.network.name
    artifacts = from_ape_contract_types({name: ape.project.get_contract(name).contract_type
                                         for name in SYSTEM_CONTRACTS + RUNTIME_CONTRACTS})
    sender = shared_sender(provider.uri, _deployer_key(network, devnet_folder))
    click.echo(f"deploying to {network} (chain {sender.chain_id}) as {sender.address}")
    manifest = deploy_system(sender, artifacts, network=network, log=click.echo)
    path = manifest.save(output or Path("deployments") / f"{network}.json")
    if network == DEVNET_NETWORK:
        from carbon_sdk.devnet import Devnet

        Devnet.attach(devnet_folder).set_registry(manifest.contract("ConsortiumRegistry").address)
        click.echo("registry registered with the permissioning gateway")
    click.echo(f"manifest written to {path}")
