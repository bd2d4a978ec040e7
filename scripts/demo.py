"""The demo: a chain starts by itself, the system is deployed, a sample consortium is enrolled and shown.

    make demo        (or: python scripts/demo.py [--keep])

It runs a fresh permissioned devnet in a temporary folder on free ports (so it never touches a devnet you
started with `carbon devnet up`), and stops it at the end unless --keep is given. Everything goes through
the SDK, exactly as an application would use it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import click
from eth_account import Account
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carbon_sdk import CarbonClient, MemberStatus, Role, errors  # noqa: E402
from carbon_sdk.artifacts import load_build  # noqa: E402
from carbon_sdk.cli import members_table, orgs_table  # noqa: E402
from carbon_sdk.deploy import deploy_on_devnet  # noqa: E402
from carbon_sdk.devnet import Devnet  # noqa: E402

# Wide enough for the tables when the output is a log rather than a terminal.
console = Console(width=None if sys.stdout.isatty() else 130)

# (name, admin role, roles it may enrol, region): region codes are administrative-division codes, 0 = national.
VERIFIERS = [("GreenCert Verification Ltd", 0), ("Yangtze Carbon Assurance", 31)]
ENTERPRISES = [
    ("Jingneng Thermal Power", 11),
    ("Huadong Cement Group", 31),
    ("Pearl River Steel", 44),
    ("Northern Aluminium Smelting", 11),
    ("Coastal Petrochemical", 44),
]
PLATFORM = ("LowCarbon Life Platform", 0)
MERCHANT = ("EcoMart Supermarkets", 44)
OBSERVER = ("Bank of Green Finance (supervision)", 0)


def build_consortium(regulator: CarbonClient, devnet: Devnet, manifest, individuals: int) -> dict:
    """Register every organisation and enrol its members; return the clients of their admins."""
    admins: dict[str, CarbonClient] = {}

    def org(name: str, role: Role, allowed: list[Role], region: int) -> CarbonClient:
        account = Account.create()
        regulator.registry.register_organisation(name, account.address, role, allowed_roles=allowed, region=region,
                                                 admin_identity={"organisation": name})
        admins[name] = CarbonClient(devnet.rpc_url, manifest, account.key)
        return admins[name]

    for name, region in VERIFIERS:
        org(name, Role.VERIFIER, [Role.VERIFIER], region)
    for name, region in ENTERPRISES:
        enterprise = org(name, Role.ENTERPRISE, [Role.ENTERPRISE], region)
        # Each enterprise enrols its emissions-reporting officer as a second member.
        enterprise.registry.enrol(Account.create().address, Role.ENTERPRISE, region=region,
                                  identity={"officer_of": name})
    org(MERCHANT[0], Role.MERCHANT, [Role.MERCHANT], MERCHANT[1])
    org(OBSERVER[0], Role.OBSERVER, [Role.OBSERVER], OBSERVER[1])
    platform = org(PLATFORM[0], Role.PLATFORM, [Role.PLATFORM, Role.INDIVIDUAL], PLATFORM[1])

    people = [Account.create().address for _ in range(individuals)]
    regions = [11, 31, 44]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task(f"platform enrols {individuals} residents", total=individuals)
        for i, region in enumerate(regions):
            group = people[i::len(regions)]
            platform.registry.enrol_batch(group, Role.INDIVIDUAL, region=region,
                                          identities=[{"app_user": p.lower()} for p in group],
                                          progress=lambda n: bar.advance(task, n))
    return {"admins": admins, "people": people, "platform": platform}


def show_permissioning(regulator: CarbonClient, devnet: Devnet, manifest, consortium: dict) -> None:
    """The contract and the gateway each refuse what they should."""
    console.rule("permissioning")
    platform: CarbonClient = consortium["platform"]
    stranger = CarbonClient(devnet.rpc_url, manifest, Account.create().key)
    enrol = stranger.registry.contract.tx("enrol", Account.create().address, int(Role.INDIVIDUAL), 44,
                                          b"\x00" * 32, gas=200_000)  # fixed gas: skip the SDK's pre-check
    try:
        stranger.transact(enrol)
    except errors.PermissionDenied as exc:
        console.print(f"a stranger's signed transaction → gateway refuses it: [red]{exc.rpc_message}[/red]")
    enterprise = consortium["admins"][ENTERPRISES[0][0]]
    try:
        enterprise.registry.enrol(Account.create().address, Role.VERIFIER, region=11)
    except errors.ContractCustomError as exc:
        console.print(f"an enterprise tries to enrol a verifier → contract refuses: [red]{exc}[/red]")
    resident = Account.create()
    platform.registry.enrol(resident.address, Role.INDIVIDUAL, region=44)
    change = platform.registry.suspend(resident.address)
    console.print(f"platform suspends resident {resident.address[:10]}…: {change.previous.name.lower()} → "
                  f"{change.current.name.lower()} (block {change.block_number})")
    suspended = CarbonClient(devnet.rpc_url, manifest, resident.key)
    try:
        suspended.transact(suspended.registry.contract.tx("suspend", platform.address, gas=100_000))
    except errors.PermissionDenied as exc:
        console.print(f"the suspended resident sends a transaction → gateway refuses it: [red]{exc.rpc_message}[/red]")


@click.command()
@click.option("--individuals", default=600, show_default=True, help="Residents the platform enrols.")
@click.option("--keep", is_flag=True, help="Leave the devnet running at the end.")
def cli(individuals: int, keep: bool) -> None:
    started = time.perf_counter()
    artifacts = load_build(ROOT / ".build" / "__local__.json")
    folder = Path(tempfile.mkdtemp(prefix="carbon-demo-"))
    devnet = Devnet.start(folder, port=None)
    try:
        console.print(Panel.fit(f"devnet: anvil behind the permissioning gateway at [bold]{devnet.rpc_url}[/bold]\n"
                                f"chain {devnet.chain_id}, fresh keys in {folder}", title="1. chain"))
        manifest = deploy_on_devnet(devnet, artifacts, network="demo", log=console.print)
        manifest_path = manifest.save(folder / "demo.json")
        console.print(f"manifest: {manifest_path}")
        regulator = CarbonClient(devnet.rpc_url, manifest, devnet.bootstrap_key)

        console.rule("2. consortium")
        consortium = build_consortium(regulator, devnet, manifest, individuals)
        console.print(orgs_table(regulator.registry.organisations()))
        members = regulator.registry.members()
        summary = Table(title=f"{len(members)} members by role and region")
        summary.add_column("role")
        summary.add_column("region")
        summary.add_column("active", justify="right")
        for (role, region), count in sorted(Counter((m.role.name.lower(), m.region) for m in members).items()):
            summary.add_row(role, str(region), str(count))
        console.print(summary)
        residents = [m for m in members if m.role is Role.INDIVIDUAL][:5]
        console.print(members_table(residents, "first residents (only identity hashes are on chain)"))

        show_permissioning(regulator, devnet, manifest, consortium)

        console.rule("3. node-level permissioning for a Besu network")
        allowlist = regulator.registry.export_besu_allowlist(folder / "permissions_config.toml",
                                                             extra=[devnet.bootstrap_address])
        active = len(regulator.registry.members(status=MemberStatus.ACTIVE))
        console.print(f"{allowlist}: accounts-allowlist of {active} active members + bootstrap admin")
        console.print(f"\n[green]demo finished in {time.perf_counter() - started:.1f} s[/green] "
                      f"(block {regulator.block_number()})")
    finally:
        if keep:
            console.print(f"devnet left running: {devnet.rpc_url} (stop: carbon --devnet-folder {folder} devnet down)")
        else:
            devnet.stop()


if __name__ == "__main__":
    cli()
