"""`carbon`: the command line over the SDK, grouped by noun (devnet, deploy, registry).

Connection settings come from options or the environment: CARBON_RPC_URL, CARBON_MANIFEST,
CARBON_PRIVATE_KEY (or --key-file). Against the local devnet the defaults need none of them: the URL and
the bootstrap admin's key come from the devnet folder.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from carbon_sdk.errors import CarbonError
from carbon_sdk.types import MemberStatus, Role

# Wide tables when the output is a file or a pipe (logs, CI), the terminal's width otherwise.
console = Console(width=None if sys.stdout.isatty() else 160)
DEFAULT_NETWORK = "carbon-devnet"
ROLE_NAMES = [r.name.lower() for r in Role if r is not Role.NONE]


def _default_manifest() -> Path:
    return Path("deployments") / f"{DEFAULT_NETWORK}.json"


class Context:
    def __init__(self, rpc_url: str | None, manifest: str | None, key: str | None, devnet_folder: Path):
        self._rpc_url = rpc_url
        self.manifest_path = Path(manifest) if manifest else _default_manifest()
        self._key = key
        self.devnet_folder = devnet_folder

    def devnet(self):
        from carbon_sdk.devnet import Devnet

        return Devnet.attach(self.devnet_folder)

    @property
    def rpc_url_given(self) -> bool:
        return bool(self._rpc_url)

    @property
    def rpc_url(self) -> str:
        if self._rpc_url:
            return self._rpc_url
        try:
            return self.devnet().rpc_url
        except CarbonError:
            return "http://127.0.0.1:8545"

    def key(self) -> str:
        if self._key:
            return self._key
        bootstrap = self.devnet_folder / "bootstrap.key"
        if bootstrap.exists():
            return bootstrap.read_text().strip()
        raise click.UsageError("no signing key: pass --key-file or set CARBON_PRIVATE_KEY")

    def client(self, signing: bool = True):
        from carbon_sdk.client import CarbonClient

        return CarbonClient(self.rpc_url, self.manifest_path, self.key() if signing else None)


def _run(fn: Callable[[], Any]) -> Any:
    """Turn SDK errors into one clear line and exit code 1 (no traceback for expected failures)."""
    try:
        return fn()
    except CarbonError as exc:
        console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
        sys.exit(1)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


@click.group()
@click.option("--rpc-url", envvar="CARBON_RPC_URL", help="JSON-RPC URL (default: the local devnet).")
@click.option("--manifest", envvar="CARBON_MANIFEST", help="Deployment manifest (default: deployments/carbon-devnet.json).")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), help="File holding the signing key.")
@click.option("--devnet-folder", type=click.Path(file_okay=False, path_type=Path), default=Path(".devnet"),
              show_default=True, envvar="CARBON_DEVNET_FOLDER", help="Folder of the local devnet.")
@click.pass_context
def main(ctx: click.Context, rpc_url: str | None, manifest: str | None, key_file: str | None,
         devnet_folder: Path) -> None:
    """The carbon market: devnet, deployment and consortium registry."""
    key = Path(key_file).read_text().strip() if key_file else os.environ.get("CARBON_PRIVATE_KEY")
    ctx.obj = Context(rpc_url, manifest, key, devnet_folder)


# -- devnet ---------------------------------------------------------------------------------------------


@main.group()
def devnet() -> None:
    """The local permissioned devnet: anvil behind the permissioning gateway."""


@devnet.command("up")
@click.option("--port", default=8545, show_default=True, help="Public (gateway) port.")
@click.option("--anvil-port", type=int, default=None, help="Internal anvil port (default: port + 10000).")
@click.option("--deploy/--no-deploy", default=True, show_default=True,
              help="Deploy the system (and register it with the gateway) if this devnet has no deployment yet.")
@click.pass_obj
def devnet_up(obj: Context, port: int, anvil_port: int | None, deploy: bool) -> None:
    """Start the devnet (state persists in the devnet folder)."""
    from carbon_sdk.devnet import Devnet

    node = _run(lambda: Devnet.start(obj.devnet_folder, port=port, anvil_port=anvil_port or port + 10000))
    console.print(f"devnet up: gateway [bold]{node.rpc_url}[/bold] (chain {node.chain_id}), "
                  f"anvil on {node.anvil_url}, folder {node.folder}")
    console.print(f"bootstrap admin {node.bootstrap_address}; operator token in {node.folder / 'operator.token'}")
    if deploy:
        from carbon_sdk.client import CarbonClient
        from carbon_sdk.errors import ChainMismatch

        manifest_path = obj.manifest_path
        if manifest_path.exists():
            try:
                CarbonClient(node.rpc_url, manifest_path)  # checks chain id and genesis
                console.print(f"deployment manifest {manifest_path} matches this chain: not redeploying")
                return
            except ChainMismatch as exc:
                console.print(f"[yellow]{manifest_path} belongs to another chain ({exc}); redeploying[/yellow]")
        _deploy(obj, node.rpc_url, node.bootstrap_key, manifest_path, node)


@devnet.command("down")
@click.pass_obj
def devnet_down(obj: Context) -> None:
    """Stop the devnet (its state is kept for the next `up`)."""
    node = _run(obj.devnet)
    _run(node.stop)
    console.print(f"devnet in {obj.devnet_folder} stopped; state kept")


@devnet.command("status")
@click.pass_obj
def devnet_status(obj: Context) -> None:
    """Show whether the devnet runs, where, and at which block."""
    from carbon_sdk.devnet import Devnet

    try:
        node = Devnet.attach(obj.devnet_folder)
    except CarbonError as exc:
        console.print(f"devnet in {obj.devnet_folder}: [yellow]not running[/yellow] ({exc})")
        sys.exit(3)
    status = _run(node.status)
    table = Table(title=f"devnet {obj.devnet_folder}")
    table.add_column("field")
    table.add_column("value")
    for name, value in vars(status).items():
        table.add_row(name, str(value))
    console.print(table)


# -- deploy ---------------------------------------------------------------------------------------------


@main.group()
def deploy() -> None:
    """Deploy the system and inspect a deployment."""


def _deploy(obj: Context, rpc_url: str, key: str, manifest_path: Path, node: Any = None) -> None:
    from carbon_sdk.artifacts import load_build
    from carbon_sdk.deploy import deploy_on_devnet, deploy_system
    from carbon_sdk.tx import shared_sender

    network = manifest_path.stem
    if node is not None:
        manifest = _run(lambda: deploy_on_devnet(node, load_build(), network=network, key=key, log=console.print))
        console.print("registry registered with the gateway: active members may now send transactions")
    else:
        sender = shared_sender(rpc_url, key)
        manifest = _run(lambda: deploy_system(sender, load_build(), network=network, log=console.print))
    manifest.save(manifest_path)
    console.print(f"manifest written to [bold]{manifest_path}[/bold]")


@deploy.command("run")
@click.pass_obj
def deploy_run(obj: Context) -> None:
    """Deploy the compiled system (from .build) and write the manifest."""
    node = None if obj.rpc_url_given else _run(obj.devnet)
    _deploy(obj, obj.rpc_url, obj.key(), obj.manifest_path, node)


@deploy.command("info")
@click.pass_obj
def deploy_info(obj: Context) -> None:
    """Show the deployment manifest and check it against the chain."""
    client = _run(lambda: obj.client(signing=False))
    manifest = client.manifest
    table = Table(title=f"{manifest.network}: chain {manifest.chain_id}, from block {manifest.block}")
    table.add_column("contract")
    table.add_column("address")
    table.add_column("block", justify="right")
    for name, record in sorted(manifest.contracts.items()):
        table.add_row(name, record.address, str(record.block))
    console.print(table)
    console.print(f"node {client.rpc.url} at block {client.block_number()}: chain matches the manifest")


# -- registry -------------------------------------------------------------------------------------------


@main.group()
def registry() -> None:
    """Organisations and members of the consortium registry."""


def members_table(members: list, title: str) -> Table:
    table = Table(title=title)
    for column in ("address", "org", "role", "status", "region", "enrolled"):
        table.add_column(column)
    for m in members:
        colour = {"ACTIVE": "green", "SUSPENDED": "yellow", "REVOKED": "red"}.get(m.status.name, "white")
        table.add_row(m.address, str(m.org_id), m.role.name.lower(), f"[{colour}]{m.status.name.lower()}[/{colour}]",
                      str(m.region), m.enrolled_at.strftime("%Y-%m-%d %H:%M:%S"))
    return table


def orgs_table(orgs: list) -> Table:
    table = Table(title="organisations")
    for column in ("id", "name", "admin", "region", "may enrol"):
        table.add_column(column)
    for o in orgs:
        table.add_row(str(o.org_id), o.name, o.admin, str(o.region), ", ".join(r.name.lower() for r in o.allowed_roles))
    return table


@registry.command("register-org")
@click.argument("name")
@click.option("--admin", required=True, help="Address of the organisation's admin.")
@click.option("--admin-role", type=click.Choice(ROLE_NAMES), required=True)
@click.option("--roles", required=True, help="Roles it may enrol, comma separated (e.g. enterprise,observer).")
@click.option("--region", type=int, default=0, show_default=True, help="Region code (0 = national).")
@click.pass_obj
def register_org(obj: Context, name: str, admin: str, admin_role: str, roles: str, region: int) -> None:
    """Register an organisation and enrol its admin (regulator only)."""
    client = _run(obj.client)
    org = _run(lambda: client.registry.register_organisation(
        name, admin, Role.parse(admin_role), allowed_roles=[Role.parse(r.strip()) for r in roles.split(",")],
        region=region))
    console.print(orgs_table([org]))


@registry.command("orgs")
@click.pass_obj
def orgs(obj: Context) -> None:
    """List organisations."""
    client = _run(lambda: obj.client(signing=False))
    console.print(orgs_table(_run(client.registry.organisations)))


@registry.command("enrol")
@click.argument("address")
@click.option("--role", type=click.Choice(ROLE_NAMES), required=True)
@click.option("--region", type=int, default=0, show_default=True)
@click.pass_obj
def enrol(obj: Context, address: str, role: str, region: int) -> None:
    """Enrol one member into the signer's organisation."""
    client = _run(obj.client)
    member = _run(lambda: client.registry.enrol(address, Role.parse(role), region=region))
    console.print(members_table([member], "enrolled"))


@registry.command("enrol-batch")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--role", type=click.Choice(ROLE_NAMES), required=True)
@click.option("--region", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=200, show_default=True, help="Members per transaction.")
@click.pass_obj
def enrol_batch(obj: Context, csv_file: str, role: str, region: int, batch_size: int) -> None:
    """Enrol every address of a CSV file (column `address`, optional column `identity`)."""
    with open(csv_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "address" not in rows[0]:
        raise click.UsageError(f"{csv_file} needs a header row with an 'address' column")
    accounts = [r["address"].strip() for r in rows]
    identities = [r.get("identity") or r["address"].strip().lower() for r in rows]
    client = _run(obj.client)
    with progress_bar() as bar:
        task = bar.add_task("enrolling", total=len(accounts))
        members = _run(lambda: client.registry.enrol_batch(
            accounts, Role.parse(role), region=region, identities=identities, batch_size=batch_size,
            progress=lambda n: bar.advance(task, n)))
    console.print(f"enrolled {len(members)} members as {role} in region {region}")


def _status_command(name: str, verb: str) -> None:
    @registry.command(name, help=f"{verb.capitalize()} a member.")
    @click.argument("address")
    @click.pass_obj
    def command(obj: Context, address: str) -> None:
        client = _run(obj.client)
        change = _run(lambda: getattr(client.registry, name)(address))
        console.print(f"{change.address}: {change.previous.name.lower()} -> {change.current.name.lower()} "
                      f"(tx {change.tx_hash}, block {change.block_number})")


_status_command("suspend", "suspend")
_status_command("reinstate", "reinstate")
_status_command("revoke", "revoke (final)")


@registry.command("show")
@click.argument("address")
@click.pass_obj
def show(obj: Context, address: str) -> None:
    """Show one member."""
    client = _run(lambda: obj.client(signing=False))
    member = _run(lambda: client.registry.member(address))
    if member is None:
        console.print(f"{address} is not a member")
        sys.exit(3)
    console.print(members_table([member], "member"))


@registry.command("list")
@click.option("--status", type=click.Choice([s.name.lower() for s in MemberStatus if s is not MemberStatus.NONE]))
@click.option("--role", type=click.Choice(ROLE_NAMES))
@click.option("--org", "org_id", type=int)
@click.pass_obj
def list_members(obj: Context, status: str | None, role: str | None, org_id: int | None) -> None:
    """List members, optionally filtered."""
    client = _run(lambda: obj.client(signing=False))
    members = _run(lambda: client.registry.members(
        status=MemberStatus[status.upper()] if status else None, role=Role.parse(role) if role else None,
        org_id=org_id))
    console.print(members_table(members, f"{len(members)} members"))


@registry.command("export-allowlist")
@click.option("--format", "fmt", type=click.Choice(["besu"]), default="besu", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("permissions_config.toml"),
              show_default=True)
@click.option("--extra", multiple=True, help="Other addresses to allow (e.g. the bootstrap admin).")
@click.pass_obj
def export_allowlist(obj: Context, fmt: str, output: Path, extra: tuple[str, ...]) -> None:
    """Write the registry's active members as Besu's account allowlist (permissions config file)."""
    client = _run(lambda: obj.client(signing=False))
    path = _run(lambda: client.registry.export_besu_allowlist(output, extra=extra))
    count = path.read_text().count('"0x')
    console.print(f"wrote {count} accounts to {path} ({fmt} accounts-allowlist)")


if __name__ == "__main__":
    main()
