"""`carbon`: the command line over the SDK, grouped by noun (devnet, deploy, registry, period, allocate,
offsets, report, audit, coin, market, order, book, and for personal credits methodology, credits, batch and
price) with the compliance verbs surrender, compliance and settle and the exchange's verbs deposit, withdraw,
balance, clear and claim.

Connection settings come from options or the environment: CARBON_RPC_URL, CARBON_MANIFEST,
CARBON_PRIVATE_KEY (or --key-file). Against the local devnet the defaults need none of them: the URL and
the bootstrap admin's key come from the devnet folder.

Carbon amounts on the command line are tonnes with at most 6 decimals ("12.5"; 1 unit = 1 gram), coin
amounts are coins (6 decimals), settlement-token amounts use the token's decimals, and exchange prices are
settlement-token amounts per tonne (a whole number of the market's ticks). Personal credits (PCC) read like
tonnes (1 PCC = 1 tCO2e, 6 decimals); desk prices and merchant rates are settlement-token amounts per PCC.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from carbon_sdk.errors import CarbonError, InvalidInput
from carbon_sdk.readings import parse_time as parse_unix_or_iso
from carbon_sdk.types import MemberStatus, Role, timestamp
from carbon_sdk.units import format_tonnes, tonnes

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
        console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", soft_wrap=True)  # unbroken in logs too
        sys.exit(1)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def with_progress(description: str, total: int | None, work: Callable[[Callable[[int], None]], Any]) -> Any:
    """Run ``work(advance)`` under a progress bar (``advance(n)``: n more items done) and return its result.
    SDK errors are printed by ``_run`` as one line, after the bar is taken down; a total of None (not known
    in advance) is set to the count reached when the work ends."""

    def run() -> Any:
        with progress_bar() as bar:
            task = bar.add_task(description, total=total)
            try:
                result = work(lambda n: bar.advance(task, n))
            except CarbonError:  # take the bar down without a trace: the error line is what matters
                bar.live.transient = True
                bar.live.stop()
                bar.disable = True  # (else Progress.stop prints a blank line on non-terminals)
                raise
            if total is None:
                done = next(t.completed for t in bar.tasks if t.id == task)
                bar.update(task, total=done, completed=done)
            return result

    return _run(run)


@click.group()
@click.option("--rpc-url", envvar="CARBON_RPC_URL", help="JSON-RPC URL (default: the local devnet).")
@click.option("--manifest", envvar="CARBON_MANIFEST", help="Deployment manifest (default: deployments/carbon-devnet.json).")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), help="File holding the signing key.")
@click.option("--devnet-folder", type=click.Path(file_okay=False, path_type=Path), default=Path(".devnet"),
              show_default=True, envvar="CARBON_DEVNET_FOLDER", help="Folder of the local devnet.")
@click.pass_context
def main(ctx: click.Context, rpc_url: str | None, manifest: str | None, key_file: str | None,
         devnet_folder: Path) -> None:
    """The carbon market: devnet, deployment, registry, periods and allocation, MRV, compliance, coin, exchange,
    personal credits."""
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
    members = with_progress("enrolling", len(accounts), lambda advance: client.registry.enrol_batch(
        accounts, Role.parse(role), region=region, identities=identities, batch_size=batch_size,
        progress=advance))
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


# -- shared helpers for the market commands -------------------------------------------------------------


class TonnesType(click.ParamType):
    """A carbon amount in tonnes ("12.5"), converted exactly to integer units (6 decimals)."""

    name = "tonnes"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            units = tonnes(str(value).strip().replace("_", ""), "amount")
        except InvalidInput as exc:
            self.fail(str(exc), param, ctx)
        if units < 0:
            self.fail(f"amount {value!r} must not be negative", param, ctx)
        return units


class DecimalsType(click.ParamType):
    """An amount with at most ``decimals`` decimals (coins: 6), converted exactly to integer units."""

    def __init__(self, decimals: int, unit: str):
        self.decimals = decimals
        self.name = unit

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return parse_units(str(value), self.decimals, f"{self.name} amount")
        except InvalidInput as exc:
            self.fail(str(exc), param, ctx)


TONNES = TonnesType()
COINS = DecimalsType(6, "coin")


def parse_units(text: str, decimals: int, what: str) -> int:
    """``"12.34"`` with ``decimals`` = 2 -> 1234; more decimals, a negative or a non-number is InvalidInput."""
    try:
        amount = Decimal(text.strip().replace("_", ""))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{what} {text!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput(f"{what} {text!r} must be a non-negative number")
    units = amount * 10**decimals
    if units != units.to_integral_value():
        raise InvalidInput(f"{what} {text!r} has more than {decimals} decimals")
    return int(units)


def format_units(units: int, decimals: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), 10**decimals)
    return f"{sign}{whole:,}.{frac:0{decimals}d}" if decimals else f"{sign}{whole:,}"


def t(units: int) -> str:
    """Units as tonnes, for tables."""
    return format_tonnes(units)


def _when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else "-"


_SPAN = re.compile(r"\+(\d+)([smhd]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400}


def parse_time(text: str, now: int, what: str) -> int:
    """ISO 8601 (UTC unless a zone is given), unix seconds, or ``+N[s|m|h|d]`` after the chain's clock."""
    text = text.strip()
    match = _SPAN.fullmatch(text)
    if match:
        return now + int(match.group(1)) * _SECONDS[match.group(2)]
    try:
        return parse_unix_or_iso(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is neither ISO 8601, unix seconds nor +SECONDS (e.g. +30d)") from None


def hashed_input(value: str) -> bytes | str:
    """FILE|TEXT: an existing file's bytes as their keccak256; otherwise the text itself (the SDK hashes it,
    unless it is already a 0x-hex 32-byte hash)."""
    from eth_utils import keccak

    path = Path(value)
    if path.is_file():
        return keccak(path.read_bytes())
    return value


def read_csv_lines(path: str, columns: tuple[str, ...], parse: Callable[[list[str]], Any], what: str) -> list[Any]:
    """Parse a CSV file line by line: ``columns`` cells per line, an optional header naming the first column,
    blank lines and ``#`` comments skipped. Every bad line is named; nothing partial is returned."""
    out: list[Any] = []
    problems: list[str] = []
    expected = ",".join(columns)
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        for row in reader:
            line = reader.line_num
            cells = [c.strip() for c in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if line == 1 and cells[0].lower() == columns[0]:
                continue  # the header
            try:
                if len(cells) != len(columns) or not all(cells):
                    raise InvalidInput(f"expected '{expected}', got {','.join(row)!r}")
                out.append(parse(cells))
            except InvalidInput as exc:
                problems.append(f"{path}, line {line}: {exc}")
    if problems:
        shown = "\n".join(problems[:20]) + (f"\n... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise InvalidInput(f"{len(problems)} invalid line(s) in {path}:\n{shown}")
    if not out:
        raise InvalidInput(f"{path} holds no {what} (expected lines '{expected}')")
    return out


def read_grants(path: str) -> list[tuple[str, int]]:
    """A grants CSV: ``address,tonnes`` per line, an optional header; every bad line is named, nothing partial."""
    from carbon_sdk.registry import checked_address

    def grant(cells: list[str]) -> tuple[str, int]:
        address, amount = checked_address(cells[0], "address"), tonnes(cells[1], "amount")
        if amount <= 0:
            raise InvalidInput(f"amount {cells[1]!r} must be positive")
        return address, amount

    return read_csv_lines(path, ("address", "tonnes"), grant, "grants")


def kv_table(title: str, rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table(title=title)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def tx_note(tx_hashes: Sequence[str]) -> str:
    if not tx_hashes:
        return ""
    return f"tx {tx_hashes[0]}" if len(tx_hashes) == 1 else f"{len(tx_hashes)} transactions"


# -- period ---------------------------------------------------------------------------------------------


@main.group()
def period() -> None:
    """Compliance periods: open with a cap (and regional caps), show, advance the phase."""


def period_table(p: Any, regional: Sequence[Any] = ()) -> Table:
    rows = [("period", p.id), ("phase", p.phase.name.lower()), ("allowance token", p.allowance),
            ("opened", _when(p.opened_at)), ("trading from", _when(p.trading_at)),
            ("reconciliation from", _when(p.reconciliation_at)), ("closes (true-up deadline)", _when(p.closes_at)),
            ("offset share", f"{p.offset_share_bps / 100:g} %"), ("borrow share", f"{p.borrow_share_bps / 100:g} %"),
            ("cap", f"{t(p.cap)} t"), ("allocated", f"{t(p.allocated)} t"),
            ("regional caps", f"{t(p.regional_cap_total)} t"),
            ("national reserve available", f"{t(p.national_reserve_available)} t"),
            ("surrendered", f"{t(p.surrendered)} t"), ("previous / next", f"{p.previous or '-'} / {p.next or '-'}")]
    rows += [(f"region {r.region}", f"cap {t(r.cap)} t, allocated {t(r.allocated)} t, available {t(r.available)} t")
             for r in regional]
    return kv_table(f"period {p.id}", rows)


def parse_regional_caps(values: Sequence[str]) -> dict[int, int]:
    caps: dict[int, int] = {}
    for value in values:
        region, sep, amount = value.partition("=")
        if not sep or not region.strip().isdigit():
            raise InvalidInput(f"regional cap {value!r} must be REGION=TONNES (e.g. 11=400000)")
        if int(region) in caps:
            raise InvalidInput(f"region {region} is given twice")
        caps[int(region)] = tonnes(amount.strip(), f"cap of region {region}")
    return caps


@period.command("open")
@click.argument("period_id", metavar="ID", type=int)
@click.option("--cap", type=TONNES, required=True, help="National cap in tonnes.")
@click.option("--trading-at", default="+30d", show_default=True,
              help="End of allocation: ISO 8601, unix seconds or +SECONDS/+Nd after the chain's clock.")
@click.option("--reconciliation-at", default="+365d", show_default=True, help="End of trading (same forms).")
@click.option("--closes-at", default="+455d", show_default=True, help="The true-up deadline (same forms).")
@click.option("--offset-share-bps", type=int, default=500, show_default=True,
              help="Share of verified emissions offsets may cover (500 = 5 %).")
@click.option("--borrow-share-bps", type=int, default=0, show_default=True,
              help="Share the next vintage may cover (0 = no borrowing).")
@click.option("--regional-cap", "regional_caps", multiple=True, metavar="REGION=T",
              help="A region's share of the cap in tonnes (repeatable).")
@click.pass_obj
def period_open(obj: Context, period_id: int, cap: int, trading_at: str, reconciliation_at: str, closes_at: str,
                offset_share_bps: int, borrow_share_bps: int, regional_caps: tuple[str, ...]) -> None:
    """Open a compliance period and create its allowance vintage (national regulator)."""
    client = _run(obj.client)
    regions = _run(lambda: parse_regional_caps(regional_caps))
    now = _run(lambda: client.chain_time())
    times = _run(lambda: [parse_time(v, now, w) for v, w in ((trading_at, "trading-at"),
                                                              (reconciliation_at, "reconciliation-at"),
                                                              (closes_at, "closes-at"))])
    opened = _run(lambda: client.allowances.open_period(
        period_id, cap=cap, trading_at=times[0], reconciliation_at=times[1], closes_at=times[2],
        offset_share_bps=offset_share_bps, borrow_share_bps=borrow_share_bps, regional_caps=regions))
    console.print(period_table(opened, _run(lambda: client.allowances.regional_caps(period_id))))


@period.command("show")
@click.argument("period_id", metavar="ID", type=int)
@click.pass_obj
def period_show(obj: Context, period_id: int) -> None:
    """Show a period: schedule, phase, cap, allocation and regional caps."""
    client = _run(lambda: obj.client(signing=False))
    p = _run(lambda: client.allowances.period(period_id))
    console.print(period_table(p, _run(lambda: client.allowances.regional_caps(period_id))))


@period.command("list")
@click.pass_obj
def period_list(obj: Context) -> None:
    """List every period, oldest first."""
    client = _run(lambda: obj.client(signing=False))
    periods = _run(client.allowances.periods)
    table = Table(title=f"{len(periods)} periods")
    for column in ("period", "phase", "cap (t)", "allocated (t)", "surrendered (t)", "trading from", "closes"):
        table.add_column(column, justify="right" if "(t)" in column else "left")
    for p in periods:
        table.add_row(str(p.id), p.phase.name.lower(), t(p.cap), t(p.allocated), t(p.surrendered),
                      _when(p.trading_at), _when(p.closes_at))
    console.print(table)


@period.command("advance")
@click.argument("period_id", metavar="ID", type=int)
@click.option("--to", "target", type=click.Choice(["trading", "reconciliation", "closed"]),
              help="Advance until the period is in this phase (default: one phase).")
@click.pass_obj
def period_advance(obj: Context, period_id: int, target: str | None) -> None:
    """End the current phase now (national regulator)."""
    from carbon_sdk.allowances import PeriodPhase

    client = _run(obj.client)
    current = _run(lambda: client.allowances.period(period_id)).phase
    goal = PeriodPhase[target.upper()] if target else None
    if goal is not None and current >= goal:
        console.print(f"period {period_id} is already {current.name.lower()}")
        return
    while True:
        new = _run(lambda: client.allowances.advance_phase(period_id))
        console.print(f"period {period_id}: {current.name.lower()} -> {new.name.lower()}")
        current = new
        if goal is None or current >= goal:
            break


@period.command("set-regional-cap")
@click.argument("period_id", metavar="ID", type=int)
@click.argument("region", type=int)
@click.argument("cap", type=TONNES)
@click.pass_obj
def period_set_regional_cap(obj: Context, period_id: int, region: int, cap: int) -> None:
    """Set a region's share of a period's cap, in tonnes (national regulator)."""
    client = _run(obj.client)
    rc = _run(lambda: client.allowances.set_regional_cap(period_id, region, cap))
    console.print(f"period {period_id}, region {rc.region}: cap {t(rc.cap)} t, allocated {t(rc.allocated)} t, "
                  f"available {t(rc.available)} t")


# -- allocate -------------------------------------------------------------------------------------------


@main.group()
def allocate() -> None:
    """Allocate a period's allowances: free (from a CSV, in batches) or for sale."""


@allocate.command("free")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Lines 'address,tonnes' (an 'address,tonnes' header is optional).")
@click.option("--region", type=int, default=0, show_default=True, help="Whose cap: 0 = the national reserve.")
@click.option("--batch-size", type=int, default=200, show_default=True, help="Grants per transaction.")
@click.pass_obj
def allocate_free(obj: Context, period_id: int, csv_file: str, region: int, batch_size: int) -> None:
    """Free allocation to active enterprises; the whole file is checked against the cap before sending."""
    grants = _run(lambda: read_grants(csv_file))
    client = _run(obj.client)
    allocation = with_progress("allocating", len(grants), lambda advance: client.allowances.allocate(
        period_id, grants, region=region, batch_size=batch_size, progress=advance))
    console.print(f"allocated {t(allocation.total)} t to {len(allocation.grants)} enterprises for period "
                  f"{period_id} from region {region} ({tx_note(allocation.tx_hashes)})")


@allocate.command("for-sale")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("amount", type=TONNES)
@click.option("--region", type=int, default=0, show_default=True)
@click.pass_obj
def allocate_for_sale(obj: Context, period_id: int, amount: int, region: int) -> None:
    """Mint allowances to the signing regulator, to sell in a market session."""
    client = _run(obj.client)
    allocation = _run(lambda: client.allowances.allocate_for_sale(period_id, amount, region=region))
    console.print(f"allocated {t(allocation.total)} t for sale to {client.address} for period {period_id} "
                  f"from region {region} ({tx_note(allocation.tx_hashes)})")


@allocate.command("list")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.pass_obj
def allocate_list(obj: Context, period_id: int) -> None:
    """Every allocation of a period (from the vintage's mint events)."""
    client = _run(lambda: obj.client(signing=False))
    rows = _run(lambda: client.allowances.allocations(period_id))
    table = Table(title=f"period {period_id}: {len(rows)} allocations, {t(sum(r['amount'] for r in rows))} t")
    table.add_column("recipient", no_wrap=True)
    table.add_column("tonnes", justify="right")
    table.add_column("block", justify="right")
    table.add_column("tx", overflow="fold")
    for r in rows:
        table.add_row(r["recipient"], t(r["amount"]), str(r["block_number"]), r["tx_hash"])
    console.print(table)


# -- offsets --------------------------------------------------------------------------------------------


@main.group()
def offsets() -> None:
    """Offset projects (CCER, forestry sinks) and the credits they issue."""


def projects_table(projects: Sequence[Any]) -> Table:
    table = Table(title="offset projects")
    for column in ("id", "name", "kind", "region", "document hash"):
        table.add_column(column, overflow="fold")
    for p in projects:
        table.add_row(str(p.project_id), p.name, p.kind.name.lower(), str(p.region), "0x" + p.document_hash.hex())
    return table


@offsets.command("register")
@click.argument("name")
@click.option("--kind", type=click.Choice(["ccer", "forestry_sink", "other"]), required=True)
@click.option("--region", type=int, default=0, show_default=True)
@click.option("--document", help="The registration document: FILE (hashed) or TEXT (default: the name).")
@click.pass_obj
def offsets_register(obj: Context, name: str, kind: str, region: int, document: str | None) -> None:
    """Register an offset project (a regulator of its region)."""
    client = _run(obj.client)
    project = _run(lambda: client.allowances.register_offset_project(
        name, kind, region=region, document=hashed_input(document) if document else b""))
    console.print(projects_table([project]))


@offsets.command("issue")
@click.argument("project_id", metavar="PROJECT", type=int)
@click.argument("vintage", type=int)
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Lines 'address,tonnes'.")
@click.option("--batch-size", type=int, default=200, show_default=True)
@click.pass_obj
def offsets_issue(obj: Context, project_id: int, vintage: int, csv_file: str, batch_size: int) -> None:
    """Issue a project vintage's credits to members."""
    grants = _run(lambda: read_grants(csv_file))
    client = _run(obj.client)
    issuance = with_progress("issuing", len(grants), lambda advance: client.allowances.issue_offsets(
        project_id, vintage, grants, batch_size=batch_size, progress=advance))
    console.print(f"issued {t(issuance.total)} t of project {project_id} vintage {vintage} to "
                  f"{len(issuance.grants)} holders (token {issuance.token}, {tx_note(issuance.tx_hashes)})")


@offsets.command("list")
@click.pass_obj
def offsets_list(obj: Context) -> None:
    """List offset projects."""
    client = _run(lambda: obj.client(signing=False))
    console.print(projects_table(_run(client.allowances.offset_projects)))


# -- report ---------------------------------------------------------------------------------------------


@main.group()
def report() -> None:
    """Emission reports: submit from readings, endorse or dispute, trace a reading to the root on chain."""


def report_table(r: Any, gases: dict[str, int] | None = None) -> Table:
    rows = [("period", r.period), ("enterprise", r.enterprise), ("version", r.version),
            ("status", r.status.name.lower()), ("GWP table", r.gwp_version), ("reported CO2e", f"{t(r.co2e)} t")]
    rows += [(f"  {gas}", f"{t(grams)} t") for gas, grams in sorted((gases or {}).items())]
    rows += [("submitted", _when(r.submitted_at)), ("reviewed", _when(r.reviewed_at)),
             ("verifier", r.verifier or "-"),
             ("verified quantity", f"{t(r.verified_quantity)} t" if r.verifier else "-"),
             ("readings root", "0x" + r.readings_root.hex()), ("report hash", "0x" + r.report_hash.hex()),
             ("evidence hash", "0x" + r.evidence_hash.hex() if any(r.evidence_hash) else "-")]
    return kv_table(f"report {r.period} v{r.version}", rows)


def _load_readings(path: str) -> list[Any]:
    from carbon_sdk.readings import load_readings_csv

    return _run(lambda: load_readings_csv(path))


def _find_reading(readings: Sequence[Any], sensor: str, time_text: str, gas: str) -> Any:
    try:
        key = (sensor.strip(), parse_unix_or_iso(time_text), gas.strip().upper())
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    for reading in readings:
        if reading.key == key:
            return reading
    raise InvalidInput(f"no reading of sensor {key[0]!r} at {time_text} for gas {key[2]} in the dataset")


@report.command("submit")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.option("--readings", "readings_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Readings CSV: sensor,time,gas,quantity_t.")
@click.option("--document", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The report document (its keccak256 is recorded).")
@click.option("--gwp-version", type=int, default=1, show_default=True)
@click.pass_obj
def report_submit(obj: Context, period_id: int, readings_file: str, document: str, gwp_version: int) -> None:
    """Report the per-gas totals of a readings CSV, committing the readings' Merkle root (an enterprise)."""
    readings = _load_readings(readings_file)
    client = _run(obj.client)
    commitment = client.mrv.commit_readings(readings)
    submitted = _run(lambda: client.mrv.submit_report(
        period_id, commitment.total_grams_by_gas, readings_root=commitment.root,
        report_document=hashed_input(document), gwp_version=gwp_version))
    console.print(report_table(submitted, commitment.total_grams_by_gas))
    console.print(f"{len(readings)} readings committed as root {commitment.root}")


@report.command("show")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprise")
@click.option("--version", type=int, help="Report version (default: the latest).")
@click.pass_obj
def report_show(obj: Context, period_id: int, enterprise: str, version: int | None) -> None:
    """Show a report version."""
    client = _run(lambda: obj.client(signing=False))
    console.print(report_table(_run(lambda: client.mrv.report(period_id, enterprise, version))))


@report.command("versions")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprise")
@click.pass_obj
def report_versions(obj: Context, period_id: int, enterprise: str) -> None:
    """Every version of an enterprise's report for a period (all are kept)."""
    client = _run(lambda: obj.client(signing=False))
    reports = _run(lambda: client.mrv.reports(period_id, enterprise))
    table = Table(title=f"period {period_id}: {len(reports)} report versions of {enterprise}")
    for column in ("version", "status", "CO2e (t)", "verified (t)", "submitted", "readings root"):
        table.add_column(column, justify="right" if "(t)" in column else "left", overflow="fold")
    for r in reports:
        table.add_row(str(r.version), r.status.name.lower(), t(r.co2e), t(r.verified_quantity) if r.verifier else "-",
                      _when(r.submitted_at), "0x" + r.readings_root.hex())
    console.print(table)


@report.command("endorse")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprise")
@click.argument("version", type=int)
@click.option("--quantity", type=TONNES, required=True, help="The verifier's own CO2e figure, in tonnes.")
@click.option("--evidence", required=True, help="FILE (hashed) or TEXT: the verification evidence.")
@click.pass_obj
def report_endorse(obj: Context, period_id: int, enterprise: str, version: int, quantity: int,
                   evidence: str) -> None:
    """Endorse a pending report with the verifier's quantity (a verifier of another organisation)."""
    client = _run(obj.client)
    endorsed = _run(lambda: client.mrv.endorse(period_id, enterprise, version, verified_quantity=quantity,
                                               evidence=hashed_input(evidence)))
    console.print(f"report {period_id} v{version} of {endorsed.enterprise}: {endorsed.status.name.lower()}, "
                  f"reported {t(endorsed.co2e)} t, verified {t(endorsed.verified_quantity)} t")


@report.command("dispute")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprise")
@click.argument("version", type=int)
@click.option("--evidence", required=True, help="FILE (hashed) or TEXT: why the report is disputed.")
@click.pass_obj
def report_dispute(obj: Context, period_id: int, enterprise: str, version: int, evidence: str) -> None:
    """Dispute a pending report (a verifier); the enterprise may then submit a new version."""
    client = _run(obj.client)
    disputed = _run(lambda: client.mrv.dispute(period_id, enterprise, version, evidence=hashed_input(evidence)))
    console.print(f"report {period_id} v{version} of {disputed.enterprise}: {disputed.status.name.lower()}")


_reading_options = [
    click.option("--sensor", required=True),
    click.option("--time", "time_text", required=True, help="ISO 8601 or unix seconds, as in the CSV."),
    click.option("--gas", required=True),
]


def reading_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_reading_options):
        fn = option(fn)
    return fn


@report.command("prove")
@click.option("--readings", "readings_file", type=click.Path(exists=True, dir_okay=False), required=True)
@reading_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the proof as JSON (for `report verify-reading --proof`).")
def report_prove(readings_file: str, sensor: str, time_text: str, gas: str, output: Path | None) -> None:
    """Print the inclusion proof of one reading in a readings CSV's Merkle root (offline)."""
    from carbon_sdk.mrv import MrvModule

    readings = _load_readings(readings_file)
    commitment = MrvModule.commit_readings(readings)
    reading = _run(lambda: _find_reading(readings, sensor, time_text, gas))
    proof = _run(lambda: commitment.prove(reading))
    console.print(f"root    {commitment.root}")
    console.print(f"reading sensor={reading.sensor} time={reading.time} gas={reading.gas} "
                  f"quantity={t(reading.grams)} t")
    console.print(f"proof   {len(proof)} hashes")
    for step in proof:
        console.print(f"  {step}")
    if output:
        output.write_text(json.dumps({"root": commitment.root, "reading": {
            "sensor": reading.sensor, "time": reading.time, "gas": reading.gas, "grams": reading.grams},
            "proof": proof}, indent=2) + "\n")
        console.print(f"proof written to {output}")


@report.command("verify-reading")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprise")
@click.option("--readings", "readings_file", type=click.Path(exists=True, dir_okay=False),
              help="The readings CSV holding the reading (the proof is computed from it).")
@click.option("--proof", "proof_file", type=click.Path(exists=True, dir_okay=False),
              help="A proof written by `report prove --output` (instead of --readings).")
@click.option("--sensor")
@click.option("--time", "time_text", help="ISO 8601 or unix seconds, as in the CSV.")
@click.option("--gas")
@click.option("--version", type=int, help="Report version (default: the latest).")
@click.pass_obj
def report_verify_reading(obj: Context, period_id: int, enterprise: str, readings_file: str | None,
                          proof_file: str | None, sensor: str | None, time_text: str | None, gas: str | None,
                          version: int | None) -> None:
    """Check a reading against the readings root of the report on chain; exit code 1 if it is not in it."""
    from carbon_sdk.mrv import MrvModule
    from carbon_sdk.readings import Reading

    if bool(readings_file) == bool(proof_file):
        raise click.UsageError("give either --readings (with --sensor, --time, --gas) or --proof")
    if readings_file:
        if not (sensor and time_text and gas):
            raise click.UsageError("--readings needs --sensor, --time and --gas")
        readings = _load_readings(readings_file)
        reading = _run(lambda: _find_reading(readings, sensor, time_text, gas))
        proof = _run(lambda: MrvModule.prove_reading(readings, reading))
    else:
        try:
            data = json.loads(Path(proof_file).read_text())
            reading = Reading(str(data["reading"]["sensor"]), int(data["reading"]["time"]),
                              str(data["reading"]["gas"]), int(data["reading"]["grams"]))
            proof = [str(p) for p in data["proof"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise click.UsageError(f"{proof_file} is not a proof written by `report prove --output` ({exc})")
    client = _run(lambda: obj.client(signing=False))
    on_chain = _run(lambda: client.mrv.report(period_id, enterprise, version))
    ok = _run(lambda: client.mrv.verify_reading(period_id, enterprise, reading, proof, on_chain.version))
    what = f"reading {reading.sensor} @ {reading.time} {reading.gas} = {t(reading.grams)} t"
    root = "0x" + on_chain.readings_root.hex()
    if ok:
        console.print(f"[green]verified[/green]: {what} is in the readings root {root} of report "
                      f"{period_id} v{on_chain.version}")
    else:
        console.print(f"[red]not verified[/red]: {what} is not in the readings root {root} of report "
                      f"{period_id} v{on_chain.version}")
        sys.exit(1)


@report.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
def report_diff(old: str, new: str) -> None:
    """Where two versions of a readings CSV differ; exit code 1 when they differ (like diff)."""
    from carbon_sdk.mrv import MrvModule

    before, after = _load_readings(old), _load_readings(new)
    diff = MrvModule.diff_readings(before, after)
    root_old, root_new = MrvModule.commit_readings(before).root, MrvModule.commit_readings(after).root
    console.print(f"old root {root_old} ({len(before)} readings)\nnew root {root_new} ({len(after)} readings)")
    if diff.identical:
        console.print("identical")
        return
    table = Table(title=f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed")
    for column in ("change", "sensor", "time", "gas", "old (t)", "new (t)"):
        table.add_column(column, justify="right" if "(t)" in column else "left")
    for r in diff.removed:
        table.add_row("[red]removed[/red]", r.sensor, _when(datetime.fromtimestamp(r.time, timezone.utc)), r.gas,
                      t(r.grams), "-")
    for r in diff.added:
        table.add_row("[green]added[/green]", r.sensor, _when(datetime.fromtimestamp(r.time, timezone.utc)), r.gas,
                      "-", t(r.grams))
    for a, b in diff.changed:
        table.add_row("[yellow]changed[/yellow]", a.sensor, _when(datetime.fromtimestamp(a.time, timezone.utc)),
                      a.gas, t(a.grams), t(b.grams))
    console.print(table)
    sys.exit(1)


@report.command("gwp")
@click.option("--version", type=int, default=1, show_default=True)
@click.pass_obj
def report_gwp(obj: Context, version: int) -> None:
    """The GWP table reports are converted with, as registered on chain, with its source."""
    from carbon_sdk.gwp import AR6_GWP100

    client = _run(lambda: obj.client(signing=False))
    table_ = _run(lambda: client.mrv.gwp_table(version))
    console.print(f"GWP table v{version}: [bold]{table_.name}[/bold] ({len(table_.gases)} gases)")
    table = Table()
    table.add_column("gas")
    table.add_column("GWP100", justify="right")
    for gas, value in zip(table_.gases, table_.gwp):
        text = f"{value:f}"
        table.add_row(gas, text.rstrip("0").rstrip(".") if "." in text else text)
    console.print(table)
    known = {AR6_GWP100.source_hash.hex(): AR6_GWP100.source}
    citation = known.get(table_.source)
    console.print(f"source: {citation}" if citation else "source: (not a citation this SDK knows)", soft_wrap=True)
    console.print(f"source hash on chain: 0x{table_.source}")


# -- audit ----------------------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """Regulators' audits of endorsed reports, and the audit trail export."""


def applications_table(applications: Sequence[Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("block", "subject", "reason", "quantity (t)", "amount", "minted", "burned", "debt change"):
        table.add_column(column, justify="right" if column not in ("subject", "reason") else "left",
                         no_wrap=column == "subject")
    for a in applications:
        colour = "red" if a.penalty else "green"
        table.add_row(str(a.block_number), a.subject, f"[{colour}]{a.reason.name.lower()}[/{colour}]",
                      t(a.quantity), t(a.amount), t(a.minted), t(a.burned), t(a.debt_change))
    return table


def audit_lines(a: Any) -> str:
    verdict = "[green]accurate[/green]" if a.accurate else "[red]misreported[/red]"
    how = "the regulator's finding" if a.with_finding else "the verifier's quantity"
    return (f"audit of {a.enterprise} for period {a.period}: {verdict}, report v{a.version}, final quantity "
            f"{t(a.final_quantity)} t ({how}), by {a.auditor} at {_when(a.audited_at)}")


@audit.command("run")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprise")
@click.option("--evidence", required=True, help="FILE (hashed) or TEXT: the audit's evidence.")
@click.option("--finding", type=TONNES, help="The regulator's own quantity in tonnes (replaces the verifier's).")
@click.pass_obj
def audit_run(obj: Context, period_id: int, enterprise: str, evidence: str, finding: int | None) -> None:
    """Audit an endorsed report (a regulator of the enterprise's region); the coin's rules apply once."""
    client = _run(obj.client)
    result = _run(lambda: client.mrv.audit(period_id, enterprise, evidence=hashed_input(evidence),
                                           finding=finding))
    console.print(audit_lines(result))
    console.print(applications_table(result.applications, f"coin rules applied ({len(result.applications)})"))


@audit.command("show")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprise")
@click.pass_obj
def audit_show(obj: Context, period_id: int, enterprise: str) -> None:
    """Show the audit of an enterprise's report (exit code 3 if not audited yet)."""
    client = _run(lambda: obj.client(signing=False))
    record = _run(lambda: client.mrv.audit_record(period_id, enterprise))
    if record is None:
        console.print(f"{enterprise} has no audit for period {period_id}")
        sys.exit(3)
    console.print(audit_lines(record))


@audit.command("export")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the trail as JSON (what `audit verify` reads).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the trail as CSV.")
@click.pass_obj
def audit_export(obj: Context, period_id: int, json_path: Path | None, csv_path: Path | None) -> None:
    """Export a period's audit trail from the chain: allocations, reports, reviews, audits, surrenders,
    settlements, rewards and penalties, each with its signer, block and time."""
    if not json_path and not csv_path:
        raise click.UsageError("give --json FILE and/or --csv FILE")
    client = _run(lambda: obj.client(signing=False))
    # The record count is known only once the events are read: the bar counts up without a total.
    trail = with_progress("exporting", None, lambda advance: client.mrv.export_audit_trail(
        period_id, json_path=json_path, csv_path=csv_path, progress=advance))
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(trail.kinds().items()))
    written = " and ".join(str(p) for p in (json_path, csv_path) if p)
    console.print(f"audit trail of period {period_id}: {len(trail.records)} records ({kinds or 'none'}), blocks "
                  f"{trail.from_block}-{trail.to_block}, written to {written}")


@audit.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def audit_verify(obj: Context, path: str) -> None:
    """Check an exported audit trail (JSON) against the chain: every record against its receipt and block,
    and the period's trail on chain against the file. Exit code 1 and the problems listed if they differ."""
    from carbon_sdk.audit_trail import AuditTrail

    trail = _run(lambda: AuditTrail.load(path))
    client = _run(lambda: obj.client(signing=False))
    check = with_progress("verifying", len(trail.records),
                          lambda advance: client.mrv.verify_audit_trail(trail, progress=advance))
    newer = f"; {check.newer} newer records on chain are not in the file" if check.newer else ""
    if check.ok:
        console.print(f"[green]ok[/green]: {path} matches the chain ({check.checked} records checked){newer}")
        return
    console.print(f"[red]{path} does not match the chain[/red]: {len(check.problems)} problem(s), "
                  f"{check.checked} records checked{newer}")
    for problem in check.problems:
        console.print(f"  - {problem}", markup=False, highlight=False)
    sys.exit(1)


# -- surrender, compliance, settle ----------------------------------------------------------------------


def resolve_token(client: Any, name: str) -> str:
    """A token given as an address, ``allowance:PERIOD`` or ``offset:PROJECT:VINTAGE``."""
    from carbon_sdk.registry import checked_address

    parts = name.strip().split(":")
    if parts[0].lower() == "allowance" and len(parts) == 2 and parts[1].isdigit():
        return client.allowances.period(int(parts[1])).allowance
    if parts[0].lower() == "offset" and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        token = client.allowances.offset_token(int(parts[1]), int(parts[2]))
        if token is None:
            raise InvalidInput(f"project {parts[1]} has issued no offsets of vintage {parts[2]}")
        return token
    if len(parts) == 1 and name.strip().lower().startswith("0x"):
        return checked_address(name.strip(), "token")
    raise InvalidInput(f"token {name!r} must be an address, allowance:PERIOD or offset:PROJECT:VINTAGE")


def parse_surrender_items(values: Sequence[str]) -> list[tuple[str, int]]:
    items = []
    for value in values:
        token, sep, amount = value.rpartition("=")
        if not sep or not token:
            raise InvalidInput(f"{value!r} must be TOKEN=TONNES (e.g. allowance:2025=4800)")
        items.append((token, tonnes(amount.strip(), f"amount of {token}")))
    return items


@main.command("surrender")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("items", nargs=-1, required=True, metavar="TOKEN=T...")
@click.pass_obj
def surrender(obj: Context, period_id: int, items: tuple[str, ...]) -> None:
    """Surrender allowances and offsets for a period, all or none (an enterprise, during reconciliation).

    TOKEN is a token address, allowance:PERIOD (a vintage: own, earlier, or the next one up to the borrow
    share) or offset:PROJECT:VINTAGE (up to the offset share); T is tonnes.
    """
    parsed = _run(lambda: parse_surrender_items(items))
    client = _run(obj.client)
    resolved = _run(lambda: [(resolve_token(client, token), amount) for token, amount in parsed])
    done = _run(lambda: client.allowances.surrender(period_id, resolved))
    table = Table(title=f"surrendered {t(done.total)} t for period {period_id}")
    for column in ("token", "kind", "vintage", "tonnes"):
        table.add_column(column, justify="right" if column == "tonnes" else "left")
    for item in done.items:
        table.add_row(item.token, item.kind.name.lower(), str(item.vintage), t(item.amount))
    console.print(table)
    status = _run(lambda: client.allowances.compliance(period_id, done.enterprise))
    console.print(f"{done.enterprise}: {status.state.name.lower()}, outstanding {t(status.outstanding)} t "
                  f"(tx {done.tx_hash})")


def _enterprises(client: Any, given: Sequence[str], csv_file: str | None) -> list[str]:
    """The enterprises named on the command line or in a CSV (first column); none: every enterprise member."""
    names = list(given)
    if csv_file:
        with open(csv_file, newline="") as handle:
            for row in csv.reader(handle):
                cell = row[0].strip() if row else ""
                if cell and cell.lower() not in ("address", "enterprise") and not cell.startswith("#"):
                    names.append(cell)
    if names:
        return names
    return [m.address for m in client.registry.members(role=Role.ENTERPRISE)]


def compliance_table(statuses: Sequence[Any], title: str) -> Table:
    colours = {"COMPLIANT": "green", "DUE": "yellow", "SHORTFALL": "red", "UNREPORTED": "red"}
    table = Table(title=title)
    table.add_column("enterprise", no_wrap=True)
    table.add_column("state")
    for column in ("verified (t)", "surrendered (t)", "offsets (t)", "outstanding (t)", "shortfall (t)"):
        table.add_column(column, justify="right")
    table.add_column("settled")
    for s in statuses:
        colour = colours.get(s.state.name, "white")
        table.add_row(s.enterprise, f"[{colour}]{s.state.name.lower()}[/{colour}]",
                      t(s.verified_emissions) if s.verified else "-", t(s.surrendered), t(s.offsets),
                      t(s.outstanding), t(s.shortfall), "yes" if s.settled else "no")
    return table


@main.command("compliance")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprises", nargs=-1)
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False),
              help="Enterprises, one address per line.")
@click.pass_obj
def compliance(obj: Context, period_id: int, enterprises: tuple[str, ...], csv_file: str | None) -> None:
    """Compliance of enterprises for a period (default: every enterprise member)."""
    client = _run(lambda: obj.client(signing=False))
    period_info = _run(lambda: client.allowances.period(period_id))
    addresses = _run(lambda: _enterprises(client, enterprises, csv_file))
    statuses = _run(lambda: client.allowances.compliance_table(period_id, addresses))
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state.name.lower()] = counts.get(s.state.name.lower(), 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    console.print(compliance_table(statuses, f"period {period_id} ({period_info.phase.name.lower()}): "
                                             f"{len(statuses)} enterprises"))
    console.print(summary or "no enterprises")


@main.command("settle")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("enterprises", nargs=-1)
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False),
              help="Enterprises, one address per line.")
@click.option("--all", "everyone", is_flag=True, help="Every enterprise member not settled yet.")
@click.option("--batch-size", type=int, default=200, show_default=True)
@click.pass_obj
def settle(obj: Context, period_id: int, enterprises: tuple[str, ...], csv_file: str | None, everyone: bool,
           batch_size: int) -> None:
    """Record each enterprise's outcome after the deadline and apply penalties (a regulator)."""
    if not (enterprises or csv_file or everyone):
        raise click.UsageError("name enterprises, give --csv FILE, or --all")
    client = _run(obj.client)
    addresses = _run(lambda: _enterprises(client, enterprises, csv_file))
    if everyone and not (enterprises or csv_file):
        statuses = _run(lambda: client.allowances.compliance_table(period_id, addresses))
        addresses = [s.enterprise for s in statuses if not s.settled]
        if not addresses:
            console.print(f"every enterprise is already settled for period {period_id}")
            return
    settlements = with_progress("settling", len(addresses), lambda advance: client.allowances.settle(
        period_id, addresses, batch_size=batch_size, progress=advance))
    table = Table(title=f"period {period_id}: {len(settlements)} settled")
    table.add_column("enterprise", no_wrap=True)
    table.add_column("state")
    for column in ("verified (t)", "surrendered (t)", "shortfall (t)", "penalty (coin)"):
        table.add_column(column, justify="right")
    for s in settlements:
        colour = "green" if s.state.name == "COMPLIANT" else "red"
        table.add_row(s.enterprise, f"[{colour}]{s.state.name.lower()}[/{colour}]", t(s.verified_emissions),
                      t(s.surrendered), t(s.shortfall),
                      f"{s.penalty.reason.name.lower()} {t(s.penalty.amount)}" if s.penalty else "-")
    console.print(table)


# -- coin -----------------------------------------------------------------------------------------------


@main.group()
def coin() -> None:
    """The reward-penalty coin: rules, balances and debts, manual rules, conversion pool, repayment."""


def _settlement_units(client: Any) -> tuple[int, str]:
    decimals = client.settlement.decimals()
    return decimals, client.settlement.contract.call("symbol")


@coin.command("rules")
@click.pass_obj
def coin_rules(obj: Context) -> None:
    """This deployment's rules (fixed at deployment) and the conversion rate."""
    client = _run(lambda: obj.client(signing=False))
    rules = _run(client.coin.rules)
    table = Table(title="reward-penalty coin rules: flat + per tonne x quantity")
    for column in ("code", "reason", "kind", "flat (coin)", "per tonne (coin)"):
        table.add_column(column, justify="right" if "coin" in column or column == "code" else "left")
    for reason, rule in sorted(rules.items()):
        kind = "[red]penalty[/red]" if rule.penalty else "[green]reward[/green]"
        table.add_row(str(int(reason)), reason.name.lower(), kind, t(rule.flat), t(rule.per_tonne))
    console.print(table)
    numerator, denominator = _run(client.coin.rate)
    decimals, symbol = _run(lambda: _settlement_units(client))
    one_coin = 10**6 * numerator // denominator
    console.print(f"conversion: 1 coin = {format_units(one_coin, decimals)} {symbol}; "
                  f"pool {format_units(_run(client.coin.pool_balance), decimals)} {symbol}; "
                  f"supply {t(_run(client.coin.total_supply))} coin, debt {t(_run(client.coin.total_debt))} coin")


@coin.command("balance")
@click.argument("address", required=False)
@click.pass_obj
def coin_balance(obj: Context, address: str | None) -> None:
    """A member's coin balance and debt (default: the signer's)."""
    client = _run(lambda: obj.client(signing=address is None))
    who = address or client.address
    balance, debt = _run(lambda: client.coin.balance(who)), _run(lambda: client.coin.debt(who))
    state = "[red]in debt: may not trade[/red]" if debt else "[green]no debt[/green]"
    console.print(f"{who}: balance {t(balance)} coin, debt {t(debt)} coin ({state})")


@coin.command("apply")
@click.argument("subject")
@click.argument("reason")
@click.option("--evidence", required=True, help="FILE (hashed) or TEXT.")
@click.option("--audit-key", required=True, help="What makes this application unique (e.g. inspection-17).")
@click.option("--quantity", type=TONNES, default="0", show_default=True,
              help="Tonnes the per-tonne part applies to.")
@click.pass_obj
def coin_apply(obj: Context, subject: str, reason: str, evidence: str, audit_key: str, quantity: int) -> None:
    """Apply a rule by hand (a regulator). REASON: accurate_report, verified_reduction, misreport,
    short_surrender, false_verification, unreported (or its code)."""
    from carbon_sdk.coin import Reason

    parsed = _run(lambda: Reason.parse(int(reason) if reason.isdigit() else reason))
    client = _run(obj.client)
    application = _run(lambda: client.coin.apply_rule(subject, parsed, evidence=hashed_input(evidence),
                                                      audit_key=audit_key, quantity=quantity))
    console.print(applications_table([application], f"{parsed.name.lower()} applied to {application.subject}"))


@coin.command("history")
@click.argument("subject", required=False)
@click.pass_obj
def coin_history(obj: Context, subject: str | None) -> None:
    """Every rule applied (to SUBJECT, if given), from the chain's events."""
    client = _run(lambda: obj.client(signing=False))
    applications = _run(lambda: client.coin.applications(subject))
    console.print(applications_table(applications, f"{len(applications)} rule applications"
                                                   + (f" to {subject}" if subject else "")))


@coin.command("fund-pool")
@click.argument("amount")
@click.pass_obj
def coin_fund_pool(obj: Context, amount: str) -> None:
    """Move settlement tokens into the conversion pool (a regulator); AMOUNT in the token, like 1000.00."""
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    units = _run(lambda: parse_units(amount, decimals, f"{symbol} amount"))
    pool = _run(lambda: client.coin.fund_pool(units))
    console.print(f"funded the pool with {format_units(units, decimals)} {symbol}; "
                  f"pool now {format_units(pool, decimals)} {symbol}")


@coin.command("convert")
@click.argument("amount", type=COINS)
@click.pass_obj
def coin_convert(obj: Context, amount: int) -> None:
    """Convert the signer's coins (AMOUNT in coins) into settlement tokens from the pool."""
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    done = _run(lambda: client.coin.convert(amount))
    console.print(f"{done.holder} converted {t(done.coin_amount)} coin into {format_units(done.paid, decimals)} "
                  f"{symbol} (tx {done.tx_hash})")


@coin.command("repay")
@click.argument("debtor")
@click.argument("amount", type=COINS)
@click.pass_obj
def coin_repay(obj: Context, debtor: str, amount: int) -> None:
    """Pay settlement tokens into the pool to clear AMOUNT coins of DEBTOR's debt."""
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    done = _run(lambda: client.coin.repay_debt(debtor, amount))
    left = _run(lambda: client.coin.debt(done.debtor))
    console.print(f"{done.payer} repaid {t(done.coin_amount)} coin of {done.debtor}'s debt for "
                  f"{format_units(done.paid, decimals)} {symbol}; debt left {t(left)} coin (tx {done.tx_hash})")


# -- exchange: markets, deposits, orders, clearing, claims, the book ---------------------------------------


class DefaultCommandGroup(click.Group):
    """A group that runs ``default`` when its first argument is not one of its commands, so that
    ``carbon book 1`` is ``carbon book depth 1`` while ``carbon book kline 1`` still reaches `kline`."""

    def __init__(self, *args: Any, default: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


class TokenUnits:
    """How the command line reads and prints a token's amounts: carbon tokens in tonnes (6 decimals),
    settlement tokens in their own decimals and symbol."""

    def __init__(self, address: str, symbol: str, decimals: int, carbon: bool):
        self.address, self.symbol, self.decimals, self.carbon = address, symbol, decimals, carbon

    def parse(self, text: str, what: str = "amount") -> int:
        if self.carbon:
            units = tonnes(text.strip().replace("_", ""), what)
            if units < 0:
                raise InvalidInput(f"{what} {text!r} must not be negative")
            return units
        return parse_units(text, self.decimals, f"{what} ({self.symbol})")

    def format(self, units: int) -> str:
        return f"{t(units)} t" if self.carbon else f"{format_units(units, self.decimals)} {self.symbol}"

    @property
    def named(self) -> str:
        """`` of CEA-2025`` for a carbon token (its amounts read in tonnes), nothing for money."""
        return f" of {self.symbol}" if self.carbon else ""

    def price(self, units_per_tonne: Any) -> str:
        """Settlement units per tonne (a Fraction on half ticks) as ``80.50 DCNY/t``, exactly."""
        return f"{format_price(units_per_tonne, self.decimals)} {self.symbol}/t"


def format_price(units: Any, decimals: int) -> str:
    """An exact number of units (int or Fraction: a midpoint may fall on half a unit) with ``decimals``
    decimals, and as many more as it needs."""
    from fractions import Fraction

    value, extra = Fraction(units), 0
    while (value * 10**extra).denominator != 1:
        extra += 1
        if extra > 18:
            raise InvalidInput(f"price {units} has no finite decimal form")
    return format_units(int(value * 10**extra), decimals + extra)


def erc20(client: Any, address: str) -> Any:
    return client.bind("ERC20", address, client.manifest.abi("VintageToken"))


def settlement_tokens(client: Any) -> set[str]:
    """The deployment's settlement token and every market's (lower case): tokens whose amounts are money."""
    markets = client.exchange.markets()
    return {client.settlement.contract.address.lower()} | {m.settlement.lower() for m in markets}


def token_units(client: Any, address: str, carbon: bool | None = None) -> TokenUnits:
    """A token's symbol and decimals from the chain; ``carbon`` None: carbon unless a settlement token."""
    from carbon_sdk.registry import checked_address

    address = checked_address(address, "token")
    if carbon is None:
        carbon = address.lower() not in settlement_tokens(client)
    token = erc20(client, address)
    return TokenUnits(address, str(token.call("symbol")), int(token.call("decimals")), carbon)


def exchange_token(client: Any, name: str) -> str:
    """A token given as an address, ``settlement`` (the deployment's settlement token), ``allowance:PERIOD``
    or ``offset:PROJECT:VINTAGE``."""
    if name.strip().lower() == "settlement":
        return client.settlement.contract.address
    try:
        return resolve_token(client, name)
    except InvalidInput as exc:
        if "must be an address" not in str(exc):
            raise
        raise InvalidInput(f"token {name!r} must be an address, settlement, allowance:PERIOD or "
                           "offset:PROJECT:VINTAGE") from None


def market_money(client: Any, market_id: int) -> tuple[Any, TokenUnits]:
    """A market and how its settlement token's amounts read."""
    m = client.exchange.market(market_id)
    return m, token_units(client, m.settlement, carbon=False)


def parse_price(text: str, m: Any, money: TokenUnits) -> int:
    """PRICE in settlement units per tonne (``80.00``) -> ticks; a price off the tick grid is refused."""
    from carbon_sdk.exchange import MAX_TICK

    units = parse_units(text, money.decimals, "price")
    if units > m.tick_size * MAX_TICK:
        raise InvalidInput(f"price {text} {money.symbol}/t is above market {m.id}'s highest price "
                           f"{money.price(m.tick_size * MAX_TICK)} ({MAX_TICK} ticks)")
    try:
        return m.tick(units)
    except InvalidInput:
        below = units - units % m.tick_size
        near = " or ".join(format_price(p, money.decimals) for p in (below, below + m.tick_size) if p > 0)
        raise InvalidInput(f"price {text} {money.symbol}/t is not on the tick grid of market {m.id} (tick size "
                           f"{money.price(m.tick_size)}; nearest {near})") from None


def _n(count: int, noun: str) -> str:
    """``1 order``, ``2 orders``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _refuse(message: str) -> None:
    raise InvalidInput(message)


def _unix(seconds: int) -> str:
    return _when(datetime.fromtimestamp(seconds, timezone.utc)) if seconds else "-"


def _roles_text(roles: Sequence[Role]) -> str:
    return ", ".join(r.name.lower() for r in roles)


def _roles_option(text: str) -> list[Role]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    if not names:
        raise InvalidInput(f"roles {text!r}: give at least one of {', '.join(ROLE_NAMES)}")
    return [Role.parse(n) for n in names]


def market_table(client: Any, m: Any, money: TokenUnits, session: Any) -> Table:
    asset = token_units(client, m.asset, carbon=True)
    uniform = (f", uniform price {money.price(m.price(Fraction(session.uniform_price2, 2)))}"
               if session.uniform_price2 else "")
    rows = [("market", m.id), ("asset", f"{m.asset} ({asset.symbol})"),
            ("settlement", f"{m.settlement} ({money.symbol}, {money.decimals} decimals)"),
            ("lot size", f"{t(m.lot_size)} t"), ("tick size", money.price(m.tick_size)),
            ("minimum", f"{_n(m.min_lots, 'lot')} ({t(m.min_lots * m.lot_size)} t)"),
            ("fees", f"buyer {m.buyer_fee_bps} bps, seller {m.seller_fee_bps} bps"),
            ("margin", f"{m.margin_bps} bps"), ("pricing", m.pricing.name.lower()),
            ("region", f"{m.region} (national)" if m.region == 0 else m.region),
            ("sellers", _roles_text(m.seller_roles)), ("buyers", _roles_text(m.buyer_roles)),
            ("operator", m.operator), ("fees accrued", money.format(m.fees_accrued)),
            ("session", f"{m.session} ({session.phase.name.lower()}{uniform})" if m.session else "none yet")]
    return kv_table(f"market {m.id}", rows)


def session_table(m: Any, s: Any, money: TokenUnits) -> Table:
    rows = [("market", s.market), ("session", s.session), ("phase", s.phase.name.lower()),
            ("call deadline", _unix(s.call_deadline)), ("closes", _unix(s.closes_at)),
            ("auction cleared", "yes" if s.cleared else "no")]
    if s.uniform_price2:
        rows.append(("uniform price", money.price(m.price(Fraction(s.uniform_price2, 2)))))
    return kv_table(f"market {s.market}, session {s.session}", rows)


def _order_state(o: Any) -> str:
    if o.claimed:
        return "settled"
    return "[green]open[/green]" if o.open_lots else "closed (claim)"


def orders_table(orders: Sequence[Any], m: Any, money: TokenUnits, title: str) -> Table:
    table = Table(title=title)
    table.add_column("order", no_wrap=True)
    table.add_column("owner", no_wrap=True)
    table.add_column("side")
    table.add_column(f"price ({money.symbol}/t)", justify="right")
    for column in ("lots", "open", "filled", "value"):
        table.add_column(column if column != "value" else f"value ({money.symbol})", justify="right")
    table.add_column("state")
    for o in orders:
        colour = "green" if o.side.name == "BID" else "red"
        table.add_row(str(o.id), o.owner, f"[{colour}]{o.side.name.lower()}[/{colour}]",
                      format_price(m.price(o.tick), money.decimals), str(o.lots), str(o.open_lots),
                      str(o.filled_lots), format_units(o.value, money.decimals), _order_state(o))
    return table


def fills_table(fills: Sequence[Any], m: Any, money: TokenUnits, title: str) -> Table:
    table = Table(title=title)
    for column in ("bid order", "ask order", "lots", f"price ({money.symbol}/t)", f"value ({money.symbol})"):
        table.add_column(column, justify="left" if "order" in column else "right", no_wrap=True)
    for f in fills:
        table.add_row(str(f.bid_order or "-"), str(f.ask_order or "-"), str(f.lots),
                      format_price(m.price(Fraction(f.price2, 2)), money.decimals) if f.price2 else "auction",
                      format_units(f.value, money.decimals) if f.price2 else "-")
    return table


# -- market

@main.group("market")
def market_group() -> None:
    """Exchange markets: create, list, show, open a session, the session, fees."""


@market_group.command("create")
@click.argument("asset")
@click.argument("settlement")
@click.option("--lot-size", type=TONNES, required=True, help="Tonnes per lot.")
@click.option("--tick-size", required=True,
              help="Settlement units per tonne per tick, in the token (e.g. 1.00 for one DCNY per tonne).")
@click.option("--min-lots", type=int, default=1, show_default=True, help="Smallest order, in lots.")
@click.option("--buyer-fee-bps", type=int, default=0, show_default=True, help="Fee on bids' fills (at most 1000).")
@click.option("--seller-fee-bps", type=int, default=0, show_default=True, help="Fee on asks' fills (at most 1000).")
@click.option("--margin-bps", type=int, default=0, show_default=True, help="Margin locked with an order, returned.")
@click.option("--pricing", type=click.Choice(["midpoint", "uniform"], case_sensitive=False), default="midpoint",
              show_default=True, help="Auction price: each pair's midpoint, or one price for the whole auction.")
@click.option("--region", type=int, default=0, show_default=True, help="Traders' region (0 = national: anyone).")
@click.option("--sellers", default="enterprise,platform,regulator", show_default=True, help="Roles that may sell.")
@click.option("--buyers", default="enterprise,platform", show_default=True, help="Roles that may buy.")
@click.pass_obj
def market_create(obj: Context, asset: str, settlement: str, lot_size: int, tick_size: str, min_lots: int,
                  buyer_fee_bps: int, seller_fee_bps: int, margin_bps: int, pricing: str, region: int, sellers: str,
                  buyers: str) -> None:
    """Create a market operated by the signer (a platform or regulator), who receives its fees.

    ASSET is a token address, allowance:PERIOD or offset:PROJECT:VINTAGE; SETTLEMENT a token address or
    `settlement` (the deployment's settlement token).
    """
    client = _run(obj.client)
    asset_address = _run(lambda: exchange_token(client, asset))
    money = _run(lambda: token_units(client, exchange_token(client, settlement), carbon=False))
    tick_units = _run(lambda: parse_units(tick_size, money.decimals, "tick size"))
    roles = _run(lambda: (_roles_option(sellers), _roles_option(buyers)))
    m = _run(lambda: client.exchange.create_market(
        asset_address, money.address, lot_size=lot_size, tick_size=tick_units, min_lots=min_lots,
        buyer_fee_bps=buyer_fee_bps, seller_fee_bps=seller_fee_bps, margin_bps=margin_bps, pricing=pricing,
        region=region, sellers=roles[0], buyers=roles[1]))
    console.print(market_table(client, m, money, _run(lambda: client.exchange.session(m.id, 0))))


@market_group.command("list")
@click.pass_obj
def market_list(obj: Context) -> None:
    """Every market, with its current session's phase."""
    client = _run(lambda: obj.client(signing=False))
    markets = _run(client.exchange.markets)
    table = Table(title=_n(len(markets), "market"))
    for column in ("market", "asset", "settlement", "lot (t)", "tick", "fees (bps b/s)", "margin (bps)", "pricing",
                   "region", "session", "phase"):
        table.add_column(column, justify="right" if column in ("market", "lot (t)", "tick", "region") else "left",
                         no_wrap=column in ("asset", "settlement"))
    symbols: dict[str, TokenUnits] = {}

    def units(address: str, carbon: bool) -> TokenUnits:
        if address not in symbols:
            symbols[address] = token_units(client, address, carbon=carbon)
        return symbols[address]

    for m in markets:
        asset, money = _run(lambda: units(m.asset, True)), _run(lambda: units(m.settlement, False))
        phase = _run(lambda: client.exchange.session(m.id)).phase.name.lower() if m.session else "-"
        table.add_row(str(m.id), asset.symbol, money.symbol, t(m.lot_size), money.price(m.tick_size),
                      f"{m.buyer_fee_bps}/{m.seller_fee_bps}", str(m.margin_bps), m.pricing.name.lower(),
                      str(m.region), str(m.session or "-"), phase)
    console.print(table)


@market_group.command("show")
@click.argument("market_id", metavar="MARKET", type=int)
@click.pass_obj
def market_show(obj: Context, market_id: int) -> None:
    """A market's parameters, operator, accrued fees and current session."""
    client = _run(lambda: obj.client(signing=False))
    m, money = _run(lambda: market_money(client, market_id))
    console.print(market_table(client, m, money, _run(lambda: client.exchange.session(market_id))))


@market_group.command("open-session")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--call-deadline", required=True,
              help="End of the call auction: ISO 8601, unix seconds or +SECONDS/+1h after the chain's clock.")
@click.option("--closes-at", required=True, help="End of continuous trading (same forms).")
@click.option("--sealed", is_flag=True, help="Sealed call auction: orders only by commit and reveal "
              "(then set the commit deadline and bond with `market seal`).")
@click.pass_obj
def market_open_session(obj: Context, market_id: int, call_deadline: str, closes_at: str, sealed: bool) -> None:
    """Open the market's next session (its operator), once the previous one is closed."""
    client = _run(obj.client)
    now = _run(lambda: client.chain_time())
    deadline = _run(lambda: parse_time(call_deadline, now, "call-deadline"))
    closes = _run(lambda: parse_time(closes_at, now, "closes-at"))
    s = _run(lambda: client.exchange.open_session(market_id, call_deadline=deadline, closes_at=closes,
                                                  sealed=sealed))
    m, money = _run(lambda: market_money(client, market_id))
    console.print(session_table(m, s, money))


@market_group.command("seal")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--commit-deadline", required=True, help="End of commitments (before the call deadline): ISO 8601, "
              "unix seconds or +SECONDS after the chain's clock; reveals run from then to the call deadline.")
@click.option("--bond", required=True, help="Bond per commitment, in the settlement token (e.g. 50.00).")
@click.pass_obj
def market_seal(obj: Context, market_id: int, commit_deadline: str, bond: str) -> None:
    """Set the commit deadline and bond of the market's current sealed session (its operator)."""
    client = _run(obj.client)
    now = _run(lambda: client.chain_time())
    deadline = _run(lambda: parse_time(commit_deadline, now, "commit-deadline"))
    m, money = _run(lambda: market_money(client, market_id))
    units = _run(lambda: money.parse(bond, "bond"))
    round_ = _run(lambda: client.exchange.configure_sealed(market_id, commit_deadline=deadline, bond=units))
    console.print(f"market {market_id} session {m.session}: commitments until {_when(timestamp(round_['commit_deadline']))}, "
                  f"reveals until {_when(timestamp(round_['call_deadline']))}, bond {money.format(round_['bond'])}",
                  soft_wrap=True)


@market_group.command("session")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--session", "session_id", type=int, help="Session number (default: the current one).")
@click.pass_obj
def market_session(obj: Context, market_id: int, session_id: int | None) -> None:
    """A session's phase, schedule and auction result."""
    client = _run(lambda: obj.client(signing=False))
    m, money = _run(lambda: market_money(client, market_id))
    if session_id is None and not m.session:
        console.print(f"market {market_id} has opened no session yet")
        sys.exit(3)
    console.print(session_table(m, _run(lambda: client.exchange.session(market_id, session_id)), money))


@market_group.command("fees")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--collect", is_flag=True, help="Move the accrued fees into the operator's deposit (anyone).")
@click.pass_obj
def market_fees(obj: Context, market_id: int, collect: bool) -> None:
    """A market's accrued fees; with --collect, moved into its operator's deposit."""
    client = _run(lambda: obj.client(signing=collect))
    m, money = _run(lambda: market_money(client, market_id))
    if not collect:
        console.print(f"market {market_id}: {money.format(m.fees_accrued)} accrued for the operator {m.operator}")
        return
    amount = _run(lambda: client.exchange.collect_fees(market_id))
    free = _run(lambda: client.exchange.free_balance(m.settlement, m.operator))
    console.print(f"market {market_id}: collected {money.format(amount)} into the deposit of the operator "
                  f"{m.operator} (free {money.format(free)})")


# -- deposits

@main.command("deposit")
@click.argument("token")
@click.argument("amount")
@click.pass_obj
def deposit_command(obj: Context, token: str, amount: str) -> None:
    """Move the signer's tokens into its exchange deposit (approves, then deposits).

    TOKEN is an address, `settlement`, allowance:PERIOD or offset:PROJECT:VINTAGE; AMOUNT is tonnes for
    carbon tokens and in the token's decimals for settlement tokens (1000.00).
    """
    client = _run(obj.client)
    units = _run(lambda: token_units(client, exchange_token(client, token)))
    amount_units = _run(lambda: units.parse(amount))
    free = _run(lambda: client.exchange.deposit(units.address, amount_units))
    console.print(f"{client.address} deposited {units.format(amount_units)}{units.named}; free in the exchange "
                  f"{units.format(free)}")


@main.command("withdraw")
@click.argument("token")
@click.argument("amount")
@click.pass_obj
def withdraw_command(obj: Context, token: str, amount: str) -> None:
    """Move free tokens out of the signer's exchange deposit (locked funds stay until their order is settled).
    TOKEN and AMOUNT as for `deposit`."""
    client = _run(obj.client)
    units = _run(lambda: token_units(client, exchange_token(client, token)))
    amount_units = _run(lambda: units.parse(amount))
    free = _run(lambda: client.exchange.withdraw(units.address, amount_units))
    console.print(f"{client.address} withdrew {units.format(amount_units)}{units.named}; free in the exchange "
                  f"{units.format(free)}")


@main.command("balance")
@click.argument("tokens", nargs=-1, metavar="[TOKEN]...")
@click.option("--account", help="Whose deposit (default: the signer's).")
@click.pass_obj
def balance_command(obj: Context, tokens: tuple[str, ...], account: str | None) -> None:
    """Free balances in the exchange deposit, and what the wallet holds, per token (default: every token of
    every market)."""
    client = _run(lambda: obj.client(signing=account is None))
    who = account or client.address
    if tokens:
        addresses = _run(lambda: [exchange_token(client, name) for name in tokens])
    else:
        markets = _run(client.exchange.markets)
        addresses = list(dict.fromkeys(a for m in markets for a in (m.asset, m.settlement)))
    table = Table(title=f"exchange deposit of {who}")
    table.add_column("token", no_wrap=True)
    table.add_column("symbol")
    table.add_column("free in the exchange", justify="right")
    table.add_column("in the wallet", justify="right")
    money = _run(lambda: settlement_tokens(client))
    for address in addresses:
        units = _run(lambda: token_units(client, address, carbon=address.lower() not in money))
        free = _run(lambda: client.exchange.free_balance(address, who))
        held = _run(lambda: int(erc20(client, address).call("balanceOf", who)))
        table.add_row(address, units.symbol, units.format(free), units.format(held))
    console.print(table if addresses else "no markets yet: no tokens to show")


# -- orders

@main.group("order")
def order_group() -> None:
    """Orders: place one or a CSV batch, cancel, show, list a market's orders."""


def read_orders(path: str, m: Any, money: TokenUnits) -> list[Any]:
    """An orders CSV: ``side,lots,price`` per line (bid|ask, lots, settlement units per tonne), an optional
    header; every bad line is named, nothing partial."""
    from carbon_sdk.exchange import OrderSpec, Side

    def order(cells: list[str]) -> Any:
        if cells[0].lower() not in ("bid", "ask"):
            raise InvalidInput(f"side {cells[0]!r} must be bid or ask")
        if not cells[1].isdigit() or int(cells[1]) <= 0:
            raise InvalidInput(f"lots {cells[1]!r} must be a positive whole number")
        return OrderSpec(Side.parse(cells[0]), int(cells[1]), parse_price(cells[2], m, money))

    return read_csv_lines(path, ("side", "lots", "price"), order, "orders")


@order_group.command("place")
@click.argument("market_id", metavar="MARKET", type=int)
@click.argument("side", type=click.Choice(["bid", "ask"], case_sensitive=False))
@click.argument("lots", type=int)
@click.argument("price")
@click.option("--market-order", is_flag=True,
              help="A market order: PRICE is the worst price; it never rests (continuous trading only).")
@click.option("--max-fills", type=int, default=50, show_default=True,
              help="Resting orders it may fill against; what it cannot fill within them does not rest.")
@click.pass_obj
def order_place(obj: Context, market_id: int, side: str, lots: int, price: str, market_order: bool,
                max_fills: int) -> None:
    """Place an order: LOTS lots at PRICE settlement units per tonne (80.00), a whole number of ticks."""
    client = _run(obj.client)
    m, money = _run(lambda: market_money(client, market_id))
    tick = _run(lambda: parse_price(price, m, money))
    kind = "market" if market_order else "limit"
    placed = _run(lambda: client.exchange.place_order(market_id, side, lots, tick, kind=kind, max_fills=max_fills))
    what = f"{kind} {side.lower()} of {_n(lots, 'lot')} at {money.price(m.price(tick))}"
    if placed.fills:
        console.print(fills_table(placed.fills, m, money, _n(len(placed.fills), "fill")))
    filled = f"filled {_n(placed.filled_lots, 'lot')} for {money.format(placed.value)}"
    left = lots - placed.filled_lots
    if placed.order_id:
        first = f"{filled}, " if placed.filled_lots else ""
        console.print(f"{what}: {first}{_n(left, 'lot')} rest in the book as order {placed.order_id} "
                      f"(tx {placed.tx_hash})", soft_wrap=True)
    else:
        back = f"; {_n(left, 'lot')} came back unfilled" if left else ""
        console.print(f"{what}: {filled}, settled at once{back} (tx {placed.tx_hash})", soft_wrap=True)


@order_group.command("commit")
@click.argument("market_id", metavar="MARKET", type=int)
@click.argument("side", type=click.Choice(["bid", "ask"], case_sensitive=False))
@click.argument("lots", type=int)
@click.argument("price")
@click.option("--save", "save_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to keep the order and its salt until the reveal (JSON; keep it private).")
@click.pass_obj
def order_commit(obj: Context, market_id: int, side: str, lots: int, price: str, save_path: Path) -> None:
    """Commit to a limit order of a sealed session (its bond is paid now, returned at the reveal)."""
    client = _run(obj.client)
    m, money = _run(lambda: market_money(client, market_id))
    tick = _run(lambda: parse_price(price, m, money))
    sealed = _run(lambda: client.exchange.commit_order(market_id, side, lots, tick))
    save_path.write_text(json.dumps({"market": sealed.market, "session": sealed.session, "side": sealed.order.side.name,
                                     "lots": sealed.order.lots, "tick": sealed.order.tick, "kind": sealed.order.kind.name,
                                     "salt": "0x" + sealed.salt.hex(), "commitment": "0x" + sealed.commitment.hex(),
                                     "tx_hash": sealed.tx_hash}, indent=2) + "\n")
    console.print(f"committed {side.lower()} of {_n(lots, 'lot')} at {money.price(m.price(tick))}: commitment "
                  f"0x{sealed.commitment.hex()} (saved to {save_path}; reveal it with `order reveal`)", soft_wrap=True)


@order_group.command("reveal")
@click.argument("saved", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def order_reveal(obj: Context, saved: Path) -> None:
    """Reveal a committed order (after the commit deadline, before the call deadline): it is placed."""
    from carbon_sdk.exchange import OrderKind, OrderSpec, SealedOrder, Side

    client = _run(obj.client)
    try:
        data = json.loads(saved.read_text())
        sealed = SealedOrder(data["market"], data["session"],
                             OrderSpec(Side[data["side"]], int(data["lots"]), int(data["tick"]), OrderKind[data["kind"]]),
                             bytes.fromhex(data["salt"][2:]), bytes.fromhex(data["commitment"][2:]), data["tx_hash"])
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{saved} is not a saved commitment: {exc}") from None
    placed = _run(lambda: client.exchange.reveal(sealed))
    console.print(f"revealed: order {placed.order_id} rests in the call auction; bond returned (tx {placed.tx_hash})",
                  soft_wrap=True)


@order_group.command("forfeit")
@click.argument("commitments", nargs=-1, required=True)
@click.pass_obj
def order_forfeit(obj: Context, commitments: tuple[str, ...]) -> None:
    """Send the bonds of commitments not revealed by the call deadline to the market's operator (anyone)."""
    client = _run(obj.client)
    try:
        hashes = [bytes.fromhex(c[2:] if c.startswith("0x") else c) for c in commitments]
    except ValueError:
        raise click.ClickException("commitments are 0x-hex hashes") from None
    total = _run(lambda: client.exchange.forfeit(hashes))
    console.print(f"{_n(len(hashes), 'commitment')} forfeited: {total} settlement units of bonds to the operator")


@order_group.command("batch")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Lines 'side,lots,price' (bid|ask, lots, settlement units per tonne); a header is optional.")
@click.option("--max-fills", type=int, default=50, show_default=True, help="Per order, as for `order place`.")
@click.pass_obj
def order_batch(obj: Context, market_id: int, csv_file: str, max_fills: int) -> None:
    """Place a CSV file's limit orders, up to 100 per transaction; the whole file is checked first."""
    client = _run(obj.client)
    m, money = _run(lambda: market_money(client, market_id))
    specs = _run(lambda: read_orders(csv_file, m, money))
    ids = with_progress("placing", len(specs), lambda advance: client.exchange.place_orders(
        market_id, specs, max_fills=max_fills, progress=advance))
    resting = sum(1 for i in ids if i)
    bids = sum(s.lots for s in specs if s.side.name == "BID")
    asks = sum(s.lots for s in specs if s.side.name == "ASK")
    console.print(f"placed {_n(len(specs), 'order')} in market {market_id} (bids {_n(bids, 'lot')}, asks "
                  f"{_n(asks, 'lot')}): {resting} rest in the book, {len(specs) - resting} settled at once")


@order_group.command("cancel")
@click.argument("order_ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.pass_obj
def order_cancel(obj: Context, order_ids: tuple[int, ...]) -> None:
    """Cancel the open quantity of the signer's own orders (any phase); `claim` returns their funds."""
    client = _run(obj.client)
    for order_id in order_ids:
        open_lots = _run(lambda: client.exchange.order(order_id)).open_lots
        tx = _run(lambda: client.exchange.cancel(order_id))
        console.print(f"cancelled order {order_id}: {_n(open_lots, 'open lot')}; claim it for the funds (tx {tx})",
                      soft_wrap=True)


@order_group.command("show")
@click.argument("order_id", metavar="ID", type=int)
@click.pass_obj
def order_show(obj: Context, order_id: int) -> None:
    """One order: where it lives (market, session, side, price, place in the queue) and its state."""
    client = _run(lambda: obj.client(signing=False))
    o = _run(lambda: client.exchange.order(order_id))
    m, money = _run(lambda: market_money(client, o.market))
    rows = [("order", o.id), ("owner", o.owner), ("market", o.market), ("session", o.session),
            ("side", o.side.name.lower()), ("price", f"{money.price(m.price(o.tick))} (tick {o.tick})"),
            ("queue index", o.index), ("lots", f"{o.lots} ({t(o.lots * m.lot_size)} t)"),
            ("open", f"{o.open_lots} lots"), ("filled", f"{o.filled_lots} lots ({o.auction_lots} in the auction)"),
            ("value", money.format(o.value)), ("state", _order_state(o))]
    console.print(kv_table(f"order {o.id}", rows))


@order_group.command("list")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--owner", help="Only this account's orders.")
@click.option("--session", "session_id", type=int, help="Session number (default: the current one).")
@click.pass_obj
def order_list(obj: Context, market_id: int, owner: str | None, session_id: int | None) -> None:
    """Every order of a market's session (the current one by default), with its state."""
    client = _run(lambda: obj.client(signing=False))
    m, money = _run(lambda: market_money(client, market_id))
    session = session_id if session_id is not None else m.session
    orders = _run(lambda: client.exchange.orders(market_id, session, owner=owner))
    title = f"market {market_id}, session {session}: {_n(len(orders), 'order')}" + (f" of {owner}" if owner else "")
    console.print(orders_table(orders, m, money, title))


# -- clearing and claims

@main.command("clear")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--max-steps", type=int, default=300, show_default=True,
              help="Matching steps per transaction; clearing goes on, one transaction after another, until done.")
@click.pass_obj
def clear_command(obj: Context, market_id: int, max_steps: int) -> None:
    """Clear the call auction after its deadline (anyone): match, then open continuous trading."""
    client = _run(obj.client)
    m, money = _run(lambda: market_money(client, market_id))
    sent = [0]

    def line(_: int) -> None:
        sent[0] += 1
        cleared = client.exchange.session(market_id).cleared
        console.print(f"clearing transaction {sent[0]}: {'auction cleared' if cleared else 'more to match'}")

    result = _run(lambda: client.exchange.clear_all(market_id, max_steps, progress=line))
    s = _run(lambda: client.exchange.session(market_id))
    price = (f"; uniform price {money.price(m.price(Fraction(result.uniform_price2, 2)))}"
             if result.uniform_price2 else "")
    console.print(f"market {market_id}, session {s.session} cleared: {_n(result.pairs, 'pair')} matched, "
                  f"{_n(result.self_trades, 'self-trade')} cancelled, {_n(result.transactions, 'transaction')}"
                  f"{price}; now {s.phase.name.lower()}")


@main.command("claim")
@click.argument("market_id", metavar="MARKET", type=int)
@click.argument("order_ids", metavar="[ID]...", nargs=-1, type=int)
@click.pass_obj
def claim_command(obj: Context, market_id: int, order_ids: tuple[int, ...]) -> None:
    """Settle orders into their owners' deposits (anyone): the given ones, or every order of the market's
    current session that a claim pays now."""
    from carbon_sdk.exchange import order_parts

    client = _run(obj.client)
    m, money = _run(lambda: market_money(client, market_id))
    others = [i for i in order_ids if order_parts(i)["market"] != market_id]
    if others:
        _run(lambda: _refuse(f"order {others[0]} is not in market {market_id}"))
    ids = list(order_ids) or _run(lambda: client.exchange.claimable(market_id))
    if not ids:
        console.print(f"market {market_id}: nothing to claim now")
        return
    claims = with_progress("claiming", len(ids), lambda advance: client.exchange.claim(
        market_id, ids, progress=advance))
    table = Table(title=f"market {market_id}: {_n(len(claims), 'order')} settled")
    table.add_column("order", no_wrap=True)
    table.add_column("owner", no_wrap=True)
    for column in ("asset (t)", f"settlement ({money.symbol})", f"fee ({money.symbol})"):
        table.add_column(column, justify="right")
    for c in claims:
        table.add_row(str(c.order_id), c.owner, t(c.asset), format_units(c.settlement, money.decimals),
                      format_units(c.fee, money.decimals))
    console.print(table)
    console.print(f"paid {t(sum(c.asset for c in claims))} t and {money.format(sum(c.settlement for c in claims))}"
                  f", fees {money.format(sum(c.fee for c in claims))}")


# -- the book and market data

@main.group("book", cls=DefaultCommandGroup, default="depth")
def book_group() -> None:
    """The order book: `carbon book MARKET` (depth), `carbon book kline MARKET` (OHLCV bars, a chart)."""


@book_group.command("depth")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--session", "session_id", type=int, help="Session number (default: the current one).")
@click.pass_obj
def book_depth(obj: Context, market_id: int, session_id: int | None) -> None:
    """Open quantity per price level: bids best (highest) first, asks best (lowest) first, cumulative."""
    client = _run(lambda: obj.client(signing=False))
    m, money = _run(lambda: market_money(client, market_id))
    book = _run(lambda: client.exchange.depth(market_id, session_id))
    session = session_id if session_id is not None else m.session
    table = Table(title=f"market {market_id}, session {session}: depth of book")
    table.add_column("side")
    for column in (f"price ({money.symbol}/t)", "lots", "tonnes", "cumulative lots", "cumulative (t)"):
        table.add_column(column, justify="right")
    for side, levels, colour in (("bid", book.bids, "green"), ("ask", book.asks, "red")):
        for level in levels:
            table.add_row(f"[{colour}]{side}[/{colour}]", format_price(level.price, money.decimals),
                          str(level.quantity), t(level.quantity * m.lot_size), str(level.cumulative),
                          t(level.cumulative * m.lot_size))
    console.print(table)
    if book.spread is not None:
        crossed = " (crossed: the call auction matches it)" if book.spread < 0 else ""
        console.print(f"best bid {money.price(book.best_bid)}, best ask {money.price(book.best_ask)}, spread "
                      f"{money.price(book.spread)}{crossed}, midpoint {money.price(book.midpoint)}")
    else:
        console.print(f"{len(book.bids)} bid levels, {len(book.asks)} ask levels: no spread")


@book_group.command("kline")
@click.argument("market_id", metavar="MARKET", type=int)
@click.option("--interval", type=click.IntRange(min=1), default=3600, show_default=True, help="Bar length, seconds.")
@click.option("--session", "session_id", type=int, help="Only this session's trades (default: every session).")
@click.option("--fill", is_flag=True, help="Carry quiet intervals forward at the last close.")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="Also write a candlestick chart.")
@click.pass_obj
def book_kline(obj: Context, market_id: int, interval: int, session_id: int | None, fill: bool,
               png: Path | None) -> None:
    """OHLCV bars (K-lines) of a market's trades, aligned to the interval (UTC); optionally a PNG chart."""
    from dataclasses import replace

    from carbon_sdk.market_data import plot_klines

    client = _run(lambda: obj.client(signing=False))
    m, money = _run(lambda: market_money(client, market_id))
    bars = _run(lambda: client.exchange.ohlcv(market_id, interval, session_id, fill=fill))
    table = Table(title=f"market {market_id}: {_n(len(bars), 'bar')} of {interval} s")
    table.add_column("start (UTC)")
    for column in ("open", "high", "low", "close", "volume (t)", f"value ({money.symbol})", "trades", "vwap"):
        table.add_column(column, justify="right")
    for b in bars:
        vwap = "-" if b.vwap is None else format_price(round(b.vwap, 2), money.decimals)  # to 1/100 of a unit
        table.add_row(_unix(b.start), *(format_price(p, money.decimals) for p in (b.open, b.high, b.low, b.close)),
                      t(b.volume), format_price(b.value, money.decimals), str(b.trades), vwap)
    console.print(table)
    console.print(f"prices in {money.symbol}/t")
    if png:
        if not bars:
            console.print("[yellow]no trades: no chart written[/yellow]")
            return
        scale = Fraction(1, 10**money.decimals)  # the chart reads in the token (82.50), not in its units
        shown = [replace(b, open=b.open * scale, high=b.high * scale, low=b.low * scale, close=b.close * scale,
                         value=b.value * scale) for b in bars]
        path = _run(lambda: plot_klines(shown, png, title=f"market {market_id}: {money.symbol} per tonne",
                                        interval_seconds=interval))
        console.print(f"candlestick chart written to {path}")


# -- personal credits: methodology, credits, batch, price -------------------------------------------------


def _methodology(path: str | None) -> Any:
    """A methodology file, or the version that ships with the SDK."""
    from carbon_sdk.methodology import Methodology

    return Methodology.load(path) if path else Methodology.default()


def _hex(value: bytes | str) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _decimal_text(value: Decimal) -> str:
    """An exact Decimal without exponent or trailing zeros: 162.72, 100, 0.000001."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _exact_text(value: Any) -> str:
    """An exact rational as its decimals when they end (25, 12.5), else approximately with the fraction
    itself: ``3.333333… (10/3)``."""
    value = Fraction(value)
    rest = value.denominator
    for prime in (2, 5):
        while rest % prime == 0:
            rest //= prime
    if rest == 1:
        places = 0
        while (value * 10**places).denominator != 1:
            places += 1
        digits = format_units(int(value * 10**places), places)
        return digits.replace(",", "")
    return f"{float(value):.6f}… ({value.numerator}/{value.denominator})"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _pcc(units: int) -> str:
    """PCC units (grams) as credits: 1 PCC = 1 tCO2e, 6 decimals."""
    return f"{t(units)} PCC"


def _per_credit(units: int, decimals: int, symbol: str) -> str:
    return f"{format_units(units, decimals)} {symbol}/PCC" if units else "closed"


_methodology_file = click.option(
    "--file", "path", type=click.Path(exists=True, dir_okay=False),
    help="A methodology JSON file (default: version 1, shipped in carbon_sdk/data/methodology_v1.json).")


@main.group("methodology")
def methodology_group() -> None:
    """Methodology versions of personal carbon accounts: show, hash, register on chain, status on chain."""


def methodology_record_table(record: dict[str, Any]) -> Table:
    return kv_table(f"methodology {record['version']} on chain", [
        ("version", record["version"]), ("content hash", _hex(record["content_hash"])),
        ("registered", _unix(record["registered_at"])), ("uri", record["uri"] or "-")])


@methodology_group.command("show")
@_methodology_file
def methodology_show(path: str | None) -> None:
    """A methodology's version, name, content hash, activities (kind, unit, grams CO2e per unit in each region)
    and regions (offline)."""
    from carbon_sdk.methodology import EMISSION

    m = _run(lambda: _methodology(path))
    console.print(kv_table(f"methodology {m.version}", [
        ("version", m.version), ("name", m.name), ("content hash", m.content_hash_hex),
        ("rounding", f"emissions {m.emission_rounding}, reductions {m.reduction_rounding} (once per account "
                     "and batch)"),
        ("file", path or "shipped with the SDK")]))
    regions = sorted(m.regions)
    table = Table(title=f"{_plural(len(m.activities), 'activity', 'activities')}: g CO2e per unit (an emission's "
                        "factor; a reduction's baseline less its own emissions)")
    for column in ("activity", "kind", "unit"):
        table.add_column(column)
    for region in regions:
        table.add_column(f"region {region}", justify="right")
    for activity in m.activities:
        emission = m.kind(activity) == EMISSION
        values = [m.factor(activity, r) for r in regions]
        table.add_row(activity, m.kind(activity), m.unit(activity), *(
            _decimal_text(f.emissions_per_unit if emission else f.reductions_per_unit) for f in values))
    console.print(table)
    names = Table(title=_n(len(regions), "region"))
    names.add_column("code", justify="right")
    names.add_column("name")
    for region in regions:
        names.add_row(str(region), m.regions[region])
    console.print(names)


@methodology_group.command("hash")
@_methodology_file
def methodology_hash(path: str | None) -> None:
    """A methodology's content hash: keccak256 of its canonical JSON, what the regulator registers (offline)."""
    m = _run(lambda: _methodology(path))
    console.print(f"{m.content_hash_hex}  methodology {m.version} ({m.name})", soft_wrap=True, highlight=False)


@methodology_group.command("register")
@_methodology_file
@click.option("--uri", help="Where the methodology can be read (default: the file's path, or the shipped file's).")
@click.pass_obj
def methodology_register(obj: Context, path: str | None, uri: str | None) -> None:
    """Register a methodology version on chain by its content hash (national regulator; once per version)."""
    from carbon_sdk.methodology import DEFAULT_FILE

    m = _run(lambda: _methodology(path))
    where = uri if uri is not None else (path or f"carbon_sdk/data/{DEFAULT_FILE}")
    client = _run(obj.client)
    record = _run(lambda: client.credits.register_methodology(m.version, m.content_hash, where))
    console.print(methodology_record_table(record))
    console.print(f"registered methodology {m.version} ({m.name})", soft_wrap=True)


@methodology_group.command("status")
@click.argument("version", type=int)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Compare with this methodology file (exit code 1 if its hash differs).")
@click.pass_obj
def methodology_status(obj: Context, version: int, path: str | None) -> None:
    """A methodology version as registered on chain (exit code 3 if it is not), compared with --file or, for the
    shipped version, with the shipped file."""
    client = _run(lambda: obj.client(signing=False))
    record = _run(lambda: client.credits.methodology(version))
    if not int(_hex(record["content_hash"]), 16):
        console.print(f"methodology {version} is not registered")
        sys.exit(3)
    console.print(methodology_record_table(record))
    local = _run(lambda: _methodology(path))
    if local.version != version:
        if path:
            console.print(f"[yellow]{path} is methodology {local.version}, not {version}[/yellow]")
            sys.exit(1)
        return
    what = path or "the shipped file"
    if local.content_hash_hex.lower() == _hex(record["content_hash"]).lower():
        console.print(f"[green]matches[/green] {what} ({local.name})", soft_wrap=True)
        return
    console.print(f"[red]differs from[/red] {what}: its content hash is {local.content_hash_hex}", soft_wrap=True)
    if path:
        sys.exit(1)


# -- credits

@main.group("credits")
def credits_group() -> None:
    """Personal carbon credits (PCC; 1 PCC = 1 tCO2e, 6 decimals): quotas, offset ratio, issuance ceilings,
    welfare projects, balances and deficits, the platforms' desks, merchants and donations."""


@credits_group.command("quota")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.option("--region", type=int, required=True, help="Region code (0 = national).")
@click.option("--per-capita", type=TONNES, required=True, help="Each person's quota for the period, in tonnes.")
@click.pass_obj
def credits_quota(obj: Context, period_id: int, region: int, per_capita: int) -> None:
    """Set a region's per-capita quota for a period (a regulator of the region, or national)."""
    client = _run(obj.client)
    quota = _run(lambda: client.credits.set_quota(period_id, region=region, per_capita=per_capita))
    console.print(f"period {period_id}, region {region}: per-capita quota {t(quota)} t")


@credits_group.command("offset-ratio")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.option("--delta-bps", type=int, required=True,
              help="δ in basis points: a deficit of d tonnes owes d·δ PCC (5000 = 50 %).")
@click.pass_obj
def credits_offset_ratio(obj: Context, period_id: int, delta_bps: int) -> None:
    """Set a period's offset ratio δ (national regulator)."""
    client = _run(obj.client)
    ratio = _run(lambda: client.credits.set_offset_ratio(period_id, delta_bps=delta_bps))
    console.print(f"period {period_id}: offset ratio δ = {ratio / 100:g} % ({ratio} bps)")


@credits_group.command("ceiling")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("platform")
@click.argument("ceiling", type=TONNES)
@click.pass_obj
def credits_ceiling(obj: Context, period_id: int, platform: str, ceiling: int) -> None:
    """Set how many PCC (tonnes) a platform may issue in a period in all its batches (a regulator)."""
    client = _run(obj.client)
    committed, limit = _run(lambda: client.credits.set_issuance_ceiling(period_id, platform, ceiling))
    console.print(f"period {period_id}, platform {platform}: issuance ceiling {_pcc(limit)}, committed so far "
                  f"{_pcc(committed)}", soft_wrap=True)


@credits_group.group("project")
def credits_project() -> None:
    """Public-welfare projects credits can be donated to: register, show, close."""


def project_table(p: Any) -> Table:
    state = "[green]open[/green]" if p.open else "[red]closed[/red]"
    return kv_table(f"project {p.project_id}", [
        ("project", p.project_id), ("name", p.name), ("beneficiary", p.beneficiary),
        ("region", f"{p.region} (national)" if p.region == 0 else p.region), ("state", state),
        ("retired", _pcc(p.retired))])


@credits_project.command("register")
@click.argument("project_id", metavar="ID", type=int)
@click.argument("beneficiary")
@click.option("--name", required=True, help="The project's name.")
@click.option("--region", type=int, default=0, show_default=True, help="Region code (0 = national).")
@click.pass_obj
def credits_project_register(obj: Context, project_id: int, beneficiary: str, name: str, region: int) -> None:
    """Register a project (a regulator of its region, or national); donations are retired in BENEFICIARY's name."""
    client = _run(obj.client)
    console.print(project_table(_run(lambda: client.credits.register_project(
        project_id, beneficiary, name=name, region=region))))


@credits_project.command("show")
@click.argument("project_id", metavar="ID", type=int)
@click.pass_obj
def credits_project_show(obj: Context, project_id: int) -> None:
    """A project: name, beneficiary, region, open or closed, credits retired in its name."""
    client = _run(lambda: obj.client(signing=False))
    console.print(project_table(_run(lambda: client.credits.project(project_id))))


@credits_project.command("close")
@click.argument("project_id", metavar="ID", type=int)
@click.pass_obj
def credits_project_close(obj: Context, project_id: int) -> None:
    """Close a project to further donations (a regulator of its region, or national)."""
    client = _run(obj.client)
    console.print(project_table(_run(lambda: client.credits.close_project(project_id))))


@credits_group.command("balance")
@click.argument("account", required=False)
@click.pass_obj
def credits_balance(obj: Context, account: str | None) -> None:
    """An account's PCC, and settlement tokens in its wallet (default: the signer's)."""
    client = _run(lambda: obj.client(signing=account is None))
    who = account or client.address
    held = _run(lambda: client.credits.balance(who))
    decimals, symbol = _run(lambda: _settlement_units(client))
    cash = _run(lambda: client.settlement.balance(who))
    console.print(f"{who}: {_pcc(held)}; wallet {format_units(cash, decimals)} {symbol}", soft_wrap=True)


def _deficit_line(period_id: int, who: str, d: dict[str, int]) -> str:
    if d["owed"] == 0:
        state = "nothing owed"
    else:
        state = "[green]covered[/green]" if d["outstanding"] == 0 else "[yellow]due[/yellow]"
    return (f"{who}, period {period_id}: owes {_pcc(d['owed'])}, covered {_pcc(d['covered'])}, outstanding "
            f"{_pcc(d['outstanding'])} ({state})")


@credits_group.command("deficit")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("account", required=False)
@click.pass_obj
def credits_deficit(obj: Context, period_id: int, account: str | None) -> None:
    """What an account owes for its deficits of a period (deficit × δ PCC), and has covered (default: the
    signer)."""
    client = _run(lambda: obj.client(signing=account is None))
    who = account or client.address
    console.print(_deficit_line(period_id, who, _run(lambda: client.credits.deficit(period_id, who))),
                  soft_wrap=True)


@credits_group.command("cover")
@click.argument("period_id", metavar="PERIOD", type=int)
@click.argument("amount", type=TONNES)
@click.pass_obj
def credits_cover(obj: Context, period_id: int, amount: int) -> None:
    """Surrender (burn) AMOUNT PCC of the signer against its outstanding deficit of a period."""
    client = _run(obj.client)
    d = _run(lambda: client.credits.cover_deficit(period_id, amount))
    console.print(f"covered {_pcc(amount)}; " + _deficit_line(period_id, client.address, d), soft_wrap=True)


@credits_group.command("redeem")
@click.argument("platform")
@click.argument("merchant")
@click.argument("amount", type=TONNES)
@click.option("--receipt", help="The merchant's receipt or order id (recorded as its keccak256).")
@click.pass_obj
def credits_redeem(obj: Context, platform: str, merchant: str, amount: int, receipt: str | None) -> None:
    """Redeem (burn) AMOUNT PCC of the signer at a merchant under a platform's rules; the platform pays the
    merchant its rate."""
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    r = _run(lambda: client.credits.redeem(platform, merchant, amount, receipt=receipt or b""))
    note = f", receipt {_hex(r.receipt)}" if receipt else ""
    console.print(f"redemption {r.redemption_id}: {r.holder} redeemed {_pcc(r.amount)} at {r.merchant} under "
                  f"{r.platform}; the platform paid the merchant {format_units(r.merchant_paid, decimals)} {symbol}"
                  f"{note} (tx {r.tx_hash})", soft_wrap=True)


@credits_group.command("donate")
@click.argument("project_id", metavar="PROJECT_ID", type=int)
@click.argument("amount", type=TONNES)
@click.pass_obj
def credits_donate(obj: Context, project_id: int, amount: int) -> None:
    """Donate AMOUNT PCC of the signer to an open project: burnt, retired in the beneficiary's name."""
    client = _run(obj.client)
    d = _run(lambda: client.credits.donate(project_id, amount))
    p = _run(lambda: client.credits.project(project_id))
    console.print(f"{d.donor} donated {_pcc(d.amount)} to project {d.project_id} ({p.name}), retired in the name "
                  f"of {d.beneficiary}; the project has retired {_pcc(p.retired)} (tx {d.tx_hash})", soft_wrap=True)


def _desk_trade_line(trade: Any, decimals: int, symbol: str) -> str:
    verb, where = ("sold", "to") if trade.side == "sell" else ("bought", "from")
    return (f"{trade.account} {verb} {_pcc(trade.amount)} {where} {trade.platform} at "
            f"{_per_credit(trade.price, decimals, symbol)}: paid {format_units(trade.paid, decimals)} {symbol} "
            f"(tx {trade.tx_hash})")


@credits_group.command("sell")
@click.argument("platform")
@click.argument("amount", type=TONNES)
@click.option("--min-price", help="The lowest buy-back price accepted, in the settlement token per PCC (default: "
                                  "the price posted now).")
@click.pass_obj
def credits_sell(obj: Context, platform: str, amount: int, min_price: str | None) -> None:
    """Sell AMOUNT PCC of the signer to a platform at its posted buy-back price."""
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    limit = None if min_price is None else _run(lambda: parse_units(min_price, decimals, f"min-price ({symbol})"))
    trade = _run(lambda: client.credits.sell_to_platform(platform, amount, min_price=limit))
    console.print(_desk_trade_line(trade, decimals, symbol), soft_wrap=True)


@credits_group.command("buy")
@click.argument("platform")
@click.argument("amount", type=TONNES)
@click.option("--max-price", help="The highest sale price accepted, in the settlement token per PCC (default: "
                                  "the price posted now).")
@click.pass_obj
def credits_buy(obj: Context, platform: str, amount: int, max_price: str | None) -> None:
    """Buy AMOUNT PCC from a platform's holdings at its posted sale price (approves the payment first if needed)."""
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    limit = None if max_price is None else _run(lambda: parse_units(max_price, decimals, f"max-price ({symbol})"))
    trade = _run(lambda: client.credits.buy_from_platform(platform, amount, max_price=limit))
    console.print(_desk_trade_line(trade, decimals, symbol), soft_wrap=True)


@credits_group.command("merchant-rate")
@click.argument("merchant")
@click.argument("price")
@click.pass_obj
def credits_merchant_rate(obj: Context, merchant: str, price: str) -> None:
    """Pay a merchant PRICE settlement tokens (like 8.00) per PCC redeemed there (a platform; 0 stops)."""
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    units = _run(lambda: parse_units(price, decimals, f"price ({symbol})"))
    rate = _run(lambda: client.credits.set_merchant_rate(merchant, units))
    if rate:
        console.print(f"{client.address} pays {merchant} {_per_credit(rate, decimals, symbol)} redeemed there",
                      soft_wrap=True)
    else:
        console.print(f"{client.address} no longer accepts redemptions at {merchant}", soft_wrap=True)


@credits_group.command("fund-desk")
@click.argument("amount")
@click.pass_obj
def credits_fund_desk(obj: Context, amount: str) -> None:
    """Let the signing platform's desk and merchant payments draw up to AMOUNT settlement tokens (1000.00) from
    its wallet: an approval of the credit manager, replacing the previous one."""
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    units = _run(lambda: parse_units(amount, decimals, f"{symbol} amount"))
    allowance = _run(lambda: client.credits.fund_desk(units))
    cash = _run(lambda: client.settlement.balance(client.address))
    console.print(f"{client.address}: the desk may draw {format_units(allowance, decimals)} {symbol} (wallet "
                  f"{format_units(cash, decimals)} {symbol})", soft_wrap=True)


@credits_group.command("prices")
@click.argument("platform")
@click.pass_obj
def credits_prices(obj: Context, platform: str) -> None:
    """A platform's posted buy-back and sale prices, what its desk may draw, and the PCC it holds to sell."""
    client = _run(lambda: obj.client(signing=False))
    decimals, symbol = _run(lambda: _settlement_units(client))
    p = _run(lambda: client.credits.prices(platform))
    allowance = _run(lambda: client.credits.desk_allowance(p.platform))
    held = _run(lambda: client.credits.balance(p.platform))
    console.print(kv_table("platform desk", [
        ("platform", p.platform), ("buy-back (it pays)", _per_credit(p.buy_back, decimals, symbol)),
        ("sale (it charges)", _per_credit(p.sale, decimals, symbol)),
        ("desk funded", f"{format_units(allowance, decimals)} {symbol}"), ("holds", _pcc(held))]))


# -- credits order: signed desk orders (carbon_sdk.desk_orders)
#
# The desk-orders file, its checks and the settlement are the SDK's (carbon_sdk.desk_orders: DeskOrdersFile,
# load_orders; CreditsModule: open_desk_file, add_desk_order, check_desk_files, preflight_desk_batch,
# settle_desk_batch); these commands parse arguments and print.

SHOWN_TRADES = 50  # rows of the per-trade table printed by `credits order settle` (--csv writes them all)


def _save_desk_file(desk: Any) -> None:
    try:
        desk.save()
    except OSError as exc:
        raise click.ClickException(f"cannot write {desk.path}: {exc.strerror}") from None


def _before_sending(check: Callable[[], Any]) -> Any:
    """Run a check of `order settle`: its refusal says that nothing was sent (and how to go on)."""
    from carbon_sdk.desk_orders import DeskOrdersSettled

    try:
        return check()
    except DeskOrdersSettled as settled:
        raise InvalidInput(f"{settled}: pass --skip-settled to settle the rest; nothing was sent") from None
    except InvalidInput as refused:
        raise InvalidInput(f"{refused}; nothing was sent") from None


def _trade_kind(trade: Any) -> str:
    return "sell" if trade.side == "sell" else ("buy-and-cover" if trade.covered else "buy")


@credits_group.group("order")
def credits_order() -> None:
    """Signed desk orders: a holder signs sell, buy or buy-and-cover orders for its platform (no transaction,
    no gas), the platform settles files of them in bulk, 200 orders a transaction."""


@credits_order.command("sign")
@click.argument("kind", type=click.Choice(["sell", "buy", "buy-and-cover"]))
@click.argument("amount", type=TONNES)
@click.option("--platform", required=True, help="The platform whose desk trades (and which settles the order).")
@click.option("--limit-price", help="sell: the lowest buy-back price accepted; buy: the highest sale price, in the "
                                    "settlement token per PCC (default: the price posted now).")
@click.option("--period", "period_id", type=int, help="buy-and-cover: the period of the deficit the credits cover.")
@click.option("--valid-for", type=click.IntRange(min=1), default=3_600, show_default=True,
              help="Seconds of chain time the order (and its permit) may be settled in.")
@click.option("--permit", is_flag=True, help="buy kinds: also sign a permit letting the credit manager draw the "
                                             "signer's settlement tokens for its purchases (needed once).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The desk-orders file to write (JSON; what `credits order settle` reads).")
@click.option("--append", is_flag=True, help="Add to --out if it exists (it must be for this deployment).")
@click.pass_obj
def credits_order_sign(obj: Context, kind: str, amount: int, platform: str, limit_price: str | None,
                       period_id: int | None, valid_for: int, permit: bool, out: Path, append: bool) -> None:
    """Sign an order of the signer's key to sell AMOUNT PCC to a platform's desk, buy AMOUNT PCC from it, or buy
    and cover a deficit, and write it to a desk-orders file for the platform. Nothing is sent."""
    from carbon_sdk.desk_orders import time_text

    if kind == "buy-and-cover" and period_id is None:
        raise click.UsageError("a buy-and-cover order needs --period (the deficit's period)")
    if kind != "buy-and-cover" and period_id is not None:
        raise click.UsageError("only buy-and-cover orders take --period")
    if permit and kind == "sell":
        raise click.UsageError("--permit is for buy orders: a seller pays nothing")
    if out.exists() and not append:
        raise click.UsageError(f"{out} exists: pass --append to add the order to it")
    client = _run(obj.client)
    desk = _run(lambda: client.credits.open_desk_file(out))
    decimals, symbol = _run(lambda: _settlement_units(client))
    limit = None if limit_price is None else _run(lambda: parse_units(limit_price, decimals,
                                                                      f"limit-price ({symbol})"))
    signed, _ = _run(lambda: client.credits.add_desk_order(desk, platform, kind, amount, limit_price=limit,
                                                           period=period_id or 0, valid_for=valid_for, permit=permit))
    _save_desk_file(desk)
    order = signed.order
    verb, bound, where = ("sell", "no less", "to") if kind == "sell" else ("buy", "no more", "from")
    cover = f" and cover its deficit of period {order.period}" if kind == "buy-and-cover" else ""
    price = f"{bound} than {_per_credit(order.limit_price, decimals, symbol)}" if order.limit_price else "any price"
    console.print(f"signed: {order.holder} will {verb} {_pcc(order.amount)} {where} {order.platform}{cover} at "
                  f"{price}, nonce {order.nonce}, valid until {time_text(order.deadline)}"
                  + (", with a permit letting the credit manager draw its payments (no limit)" if permit else ""),
                  soft_wrap=True)
    console.print(f"{out} holds {_n(len(desk.orders), 'order')}"
                  + (f" and {_n(len(desk.permits), 'permit')}" if desk.permits else "")
                  + f" for {desk.manager} on chain {desk.chain_id}; nothing was sent", soft_wrap=True)


def _trades_table(trades: Sequence[Any], tx_numbers: dict[str, int], decimals: int, symbol: str) -> Table:
    table = Table(title="desk trades" + (f" (first {SHOWN_TRADES} of {len(trades)})" if len(trades) > SHOWN_TRADES
                                         else ""))
    for name in ("#", "holder", "kind", "amount", "price", "paid", "covered", "tx"):
        table.add_column(name, justify="right" if name not in ("holder", "kind") else "left")
    for n, trade in enumerate(trades[:SHOWN_TRADES]):
        table.add_row(str(n), trade.account, _trade_kind(trade), _pcc(trade.amount),
                      _per_credit(trade.price, decimals, symbol), f"{format_units(trade.paid, decimals)} {symbol}",
                      _pcc(trade.covered) if trade.covered else "-", str(tx_numbers[trade.tx_hash]))
    return table


@credits_order.command("settle")
@click.argument("files", metavar="FILE...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-settled", is_flag=True, help="Leave out orders already settled (their nonce used), e.g. to "
                                                   "finish a file whose settlement was interrupted.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every trade as CSV (holder, kind, amount, price, paid, covered, tx).")
@click.pass_obj
def credits_order_settle(obj: Context, files: tuple[Path, ...], skip_settled: bool, csv_path: Path | None) -> None:
    """Settle desk-orders files at the signing platform's desk: every order and permit is checked first (this
    deployment, this platform, unexpired, signed by its holder, nonces in sequence) and the first transaction is
    tried on the current state; then 200 orders a transaction (progress bar when there are several), relaying
    each buyer's permit with its first order. Prints the trades and the transactions."""
    from carbon_sdk.desk_orders import DeskSettlementIncomplete, load_orders

    desks = [_run(lambda path=path: load_orders(path)) for path in files]
    client = _run(obj.client)
    batch = _run(lambda: _before_sending(lambda: client.credits.check_desk_files(desks, skip_settled=skip_settled)))
    notes = ([f"{_n(batch.settled, 'order')} settled before, left out"] if batch.settled else []) + (
        [f"{_n(batch.relayed, 'permit')} relayed before, left out"] if batch.relayed else [])
    if not batch.orders and not batch.permits:
        _run(lambda: _refuse("nothing to settle" + (f" ({'; '.join(notes)})" if notes else "")))
    _run(lambda: _before_sending(lambda: client.credits.preflight_desk_batch(batch)))

    def settle(advance: Callable[[int], None] | None) -> list[Any]:
        try:
            return client.credits.settle_desk_batch(batch, progress=advance, tried=True)  # preflight ran
        except DeskSettlementIncomplete as partial:
            raise DeskSettlementIncomplete(f"{partial}: settle the same files again with --skip-settled for the "
                                           "rest", partial.settled, partial.error) from None

    calls = len(batch.chunks)
    trades = with_progress("settling", len(batch.orders), settle) if calls > 1 else _run(lambda: settle(None))
    decimals, symbol = _run(lambda: _settlement_units(client))
    hashes = list(dict.fromkeys(t.tx_hash for t in trades))
    numbers = {h: n for n, h in enumerate(hashes)}
    if trades:
        console.print(_trades_table(trades, numbers, decimals, symbol))
    sells = [t for t in trades if t.side == "sell"]
    buys = [t for t in trades if t.side == "buy"]

    def money(units: int) -> str:
        return f"{format_units(units, decimals)} {symbol}"

    alone = calls - len(hashes)  # calls that relayed permits only: they make no trade
    rows = [("orders settled", f"{len(trades)} ({len(sells)} sell, {sum(1 for t in buys if not t.covered)} buy, "
                               f"{sum(1 for t in buys if t.covered)} buy-and-cover)"),
            ("sold to the desk", f"{_pcc(sum(t.amount for t in sells))}; the platform paid "
                                 f"{money(sum(t.paid for t in sells))}"),
            ("bought from the desk", f"{_pcc(sum(t.amount for t in buys))}; buyers paid "
                                     f"{money(sum(t.paid for t in buys))}"),
            ("covered (burned)", _pcc(sum(t.covered for t in buys))),
            ("permits relayed", len(batch.permits)),
            ("transactions", f"{calls}" + (f" ({alone} relaying permits only)" if alone else ""))]
    rows += [(f"tx {n}", h) for n, h in enumerate(hashes)]
    if notes:
        rows.append(("left out", "; ".join(notes)))
    console.print(kv_table(f"settled at {client.address}'s desk", rows))
    if csv_path is not None:
        try:
            with csv_path.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["holder", "kind", "amount", "price", "paid", "covered", "tx"])
                for trade in trades:
                    writer.writerow([trade.account, _trade_kind(trade), format_tonnes(trade.amount).replace(",", ""),
                                     format_units(trade.price, decimals).replace(",", ""),
                                     format_units(trade.paid, decimals).replace(",", ""),
                                     format_tonnes(trade.covered).replace(",", ""), trade.tx_hash])
        except OSError as exc:
            raise click.ClickException(f"settled, but cannot write the trades to {csv_path}: {exc.strerror}") from None
        console.print(f"{_n(len(trades), 'trade')} written to {csv_path}")


# -- batch

@main.group("batch")
def batch_group() -> None:
    """Credit batches: build from activity records, commit the root, claim entries, show a batch."""


def batch_record_table(record: dict[str, Any]) -> Table:
    return kv_table(f"batch {record['batch_id']}", [
        ("batch", record["batch_id"]), ("platform", record["platform"]), ("period", record["period"]),
        ("methodology", record["methodology"]), ("entries", record["entries"]), ("total", _pcc(record["total"])),
        ("claimed", _pcc(record["claimed"])), ("remaining", _pcc(record["remaining"])), ("root", record["root"])])


@batch_group.command("build")
@click.argument("activities_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--quota", type=TONNES, required=True, help="Each account's quota for the batch's span, in tonnes.")
@click.option("--methodology-file", type=click.Path(exists=True, dir_okay=False),
              help="The methodology to compute with (default: the shipped version 1).")
@click.option("--period-start", help="Records from this time on (ISO 8601 or unix seconds; with --period-end).")
@click.option("--period-end", help="Records before this time (excluded).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("batch.json"),
              show_default=True, help="Where to write the batch (what `batch commit` and `batch claim` read).")
@click.option("--claims", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write each entry with its proof, one JSON line each, for individuals to claim themselves.")
@click.pass_obj
def batch_build(obj: Context, activities_file: str, quota: int, methodology_file: str | None,
                period_start: str | None, period_end: str | None, out: Path, claims: Path | None) -> None:
    """Validate an activity file (CSV or JSON Lines: account,activity,quantity,unit,region,time) and build the
    next batch: credits = surplus quota + reductions, deficit = emissions above the quota. Every bad line is
    named and nothing is written."""
    from carbon_sdk.activities import batch_totals

    if (period_start is None) != (period_end is None):
        raise click.UsageError("give both --period-start and --period-end, or neither")
    m = _run(lambda: _methodology(methodology_file))
    span = (period_start, period_end) if period_start is not None else None
    totals = _run(lambda: batch_totals(activities_file, m, period=span))
    client = _run(lambda: obj.client(signing=False))
    batch = _run(lambda: client.credits.build_batch_from_activities(totals, quota))
    try:
        batch.save(out)
        if claims:
            batch.write_claims(claims)
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None
    deficit = sum(e.deficit for e in batch.entries)
    console.print(kv_table(f"batch {batch.batch_id} (not committed)", [
        ("records", totals.records), ("accounts", len(totals)), ("entries", len(batch.entries)),
        ("emissions", f"{t(totals.emissions)} t"), ("reductions", f"{t(totals.reductions)} t"),
        ("quota per account", f"{t(quota)} t"), ("total credits", _pcc(batch.total)),
        ("total deficit", f"{t(deficit)} t"), ("methodology", f"{m.version} ({m.content_hash_hex})"),
        ("root", batch.root), ("batch id", batch.batch_id)]))
    written = f" and the claims to {claims}" if claims else ""
    console.print(f"batch written to {out}{written}; commit it as batch {batch.batch_id} with `batch commit` "
                  "(rebuild it if another batch is committed first)", soft_wrap=True)


def _load_batch(path: str) -> Any:
    from carbon_sdk.credits import CreditBatchTree

    return CreditBatchTree.load(path)


@batch_group.command("commit")
@click.argument("batch_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--period", "period_id", type=int, required=True, help="The period the credits are issued for.")
@click.option("--methodology", type=int, help="Methodology version (default: the one the batch was built with).")
@click.pass_obj
def batch_commit(obj: Context, batch_file: str, period_id: int, methodology: int | None) -> None:
    """Commit a built batch's root, total and entry count (a platform, within its issuance ceiling)."""
    batch = _run(lambda: _load_batch(batch_file))
    client = _run(obj.client)
    record = _run(lambda: client.credits.commit_batch(batch, period=period_id, methodology=methodology))
    console.print(batch_record_table(record))


@batch_group.command("claim")
@click.argument("batch_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--index", type=int, help="Claim this entry only (its account, or the batch's platform).")
@click.pass_obj
def batch_claim(obj: Context, batch_file: str, index: int | None) -> None:
    """Claim a committed batch's entries: one (--index), or every entry not claimed yet (the batch's platform,
    200 per transaction; progress bar). Credits are minted to each account and its deficit recorded."""
    batch = _run(lambda: _load_batch(batch_file))
    client = _run(obj.client)
    if index is not None:
        if not 0 <= index < len(batch.entries):
            _run(lambda: _refuse(f"index {index} is not an entry of batch {batch.batch_id} (0 to "
                                 f"{len(batch.entries) - 1})"))
        e = batch.entries[index]
        tx = _run(lambda: client.credits.claim(batch, index))
        deficit = f", deficit {t(e.deficit)} t recorded" if e.deficit else ""
        console.print(f"batch {batch.batch_id} entry {index}: {_pcc(e.amount)} to {e.account}{deficit} (tx {tx})",
                      soft_wrap=True)
    else:
        # Entries claimed already are skipped: how many remain is known only as the claims go.
        count = with_progress("claiming", None, lambda advance: client.credits.claim_many(batch, progress=advance))
        skipped = len(batch.entries) - count
        console.print(f"batch {batch.batch_id}: claimed {_plural(count, 'entry', 'entries')}"
                      + (f" ({skipped} claimed before)" if skipped else ""))
    console.print(batch_record_table(_run(lambda: client.credits.batch(batch.batch_id))))


@batch_group.command("show")
@click.argument("batch_id", metavar="BATCH_ID", type=int)
@click.pass_obj
def batch_show(obj: Context, batch_id: int) -> None:
    """A committed batch: platform, period, methodology, entries, total, claimed, root (exit code 3 if none)."""
    client = _run(lambda: obj.client(signing=False))
    record = _run(lambda: client.credits.batch(batch_id))
    if not int(record["root"], 16):
        console.print(f"batch {batch_id} is not committed")
        sys.exit(3)
    console.print(batch_record_table(record))


# -- price

@main.group("price")
def price_group() -> None:
    """The pricing model of personal credits (docs/economics.md): a platform's prices, the regulator's offset
    ratio, two-sided fees (all offline), and posting the model's prices on chain."""


_model_options = [
    click.option("--N", "N", required=True, help="The high-carbon side's deficit, tonnes."),
    click.option("--e", "e", required=True, help="The highest value a low-carbon user puts on a tonne of surplus."),
    click.option("--D", "D", required=True, help="The number of low-carbon users."),
    click.option("--W", "W", required=True, help="Each low-carbon user's surplus, tonnes."),
    click.option("--c", "c", default="0", show_default=True, help="The platform's cost per tonne."),
]


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_model_options):
        fn = option(fn)
    return fn


def model_table(model: Any, title: str, posted: tuple[int, int] | None = None, decimals: int | None = None,
                symbol: str = "") -> Table:
    rows = [("P_c: sale price per tonne", _exact_text(model.p_c)),
            ("P_ph: buy-back price per tonne", _exact_text(model.p_ph)),
            ("D_all: surplus bought = credits sold (t)", _exact_text(model.d_all)),
            ("profit π", _exact_text(model.profit)),
            ("U: low-carbon sellers' surplus", _exact_text(model.user_surplus)),
            ("welfare π + U", _exact_text(model.welfare)),
            ("participation: share of low-carbon users who sell", _exact_text(model.participation)),
            ("high-carbon side pays P_c·δN", _exact_text(model.buyer_cost))]
    if posted is not None and decimals is not None:
        unit = f" {symbol}" if symbol else ""
        rows += [("posted buy-back (settlement units per PCC)",
                  f"{posted[0]} ({format_units(posted[0], decimals)}{unit})"),
                 ("posted sale (settlement units per PCC)", f"{posted[1]} ({format_units(posted[1], decimals)}{unit})")]
    return kv_table(title, rows)


def _reachable_settlement(obj: Context) -> tuple[int, str] | None:
    """The settlement token's decimals and symbol if the deployment answers now (one attempt), else None."""
    from carbon_sdk.client import CarbonClient
    from carbon_sdk.rpc import RetryPolicy

    if not obj.manifest_path.exists():
        return None
    try:
        return _settlement_units(CarbonClient(obj.rpc_url, obj.manifest_path, retry=RetryPolicy(attempts=1)))
    except (CarbonError, OSError, ValueError):
        return None


@price_group.command("model")
@model_options
@click.option("--delta", required=True, help="The offset ratio δ, in (0, 1].")
@click.option("--decimals", type=click.IntRange(0, 36),
              help="Settlement decimals for the posted prices (default: the deployment's token, when reachable).")
@click.pass_obj
def price_model(obj: Context, N: str, e: str, D: str, W: str, c: str, delta: str, decimals: int | None) -> None:
    """A platform's closed-form prices for offset ratio δ: P_ph = δNe/(DW), P_c = 2·P_ph + c (exact), and the
    integers it would post (buy-back rounded down, sale up)."""
    from carbon_sdk.economics import platform_prices

    model = _run(lambda: platform_prices(N, delta, e, D, W, c))
    symbol = ""
    if decimals is None:
        money = _reachable_settlement(obj)
        if money is not None:
            decimals, symbol = money
    posted = None
    if decimals is not None:
        p = _run(lambda: model.posted(decimals))
        posted = (p.buy_back, p.sale)
    console.print(model_table(model, f"platform prices: N={N}, δ={delta}, e={e}, D={D}, W={W}, c={c}", posted,
                              decimals, symbol))
    if posted is None:
        console.print("posted prices: give --decimals (no deployment answered to read its settlement token's)")


@price_group.command("ratio")
@click.option("--N", "N", required=True, help="The high-carbon side's deficit, tonnes.")
@click.option("--P", "P", required=True, help="The value of a tonne offset (a carbon price).")
@click.option("--k", "k", required=True, help="The cost coefficient of enforcing the offset ratio.")
@click.option("--e", "e", required=True, help="The highest value a low-carbon user puts on a tonne of surplus.")
@click.option("--D", "D", required=True, help="The number of low-carbon users.")
@click.option("--W", "W", required=True, help="Each low-carbon user's surplus, tonnes.")
def price_ratio(N: str, P: str, k: str, e: str, D: str, W: str) -> None:
    """The regulator's offset ratio δ* maximising SW(δ) = P·N·δ − κ·δ²/2, κ = k − 3eN²/(DW), with its
    conditions (offline)."""
    from carbon_sdk.economics import optimal_offset_ratio

    r = _run(lambda: optimal_offset_ratio(N, P, k, e, D, W))
    yes = {True: "[green]holds[/green]", False: "[red]fails[/red]"}
    unconstrained = _exact_text(r.unconstrained) if r.unconstrained is not None else "- (SW not concave)"
    console.print(kv_table(f"offset ratio: N={N}, P={P}, k={k}, e={e}, D={D}, W={W}", [
        ("δ*", _exact_text(r.delta)), ("δ* in bps (credits offset-ratio)", r.delta_bps),
        ("bound", {"interior": "interior: δ* = P·N/κ", "ratio": "ratio: δ* = 1",
                   "surplus": "surplus: δ* = DW/N, every low-carbon user sells"}[r.bound]),
        ("condition 1: κ > 0 (SW concave)", f"{yes[r.concave]}, κ = {_exact_text(r.curvature)}"),
        ("condition 2: P·N/κ ≤ min(1, DW/N)", f"{yes[r.interior]}, P·N/κ = {unconstrained}"),
        ("SW(δ*)", _exact_text(r.welfare))]))


@price_group.command("fees")
@click.option("--q", "q", required=True, help="The service level q ≥ 0.")
@click.option("--sellers", required=True, help="Low-carbon users who could join (D).")
@click.option("--buyers", required=True, help="High-carbon users who could join.")
@click.option("--seller-spread", required=True, help="The most reluctant seller's joining cost t_s (e.g. e·W).")
@click.option("--buyer-spread", required=True, help="The most reluctant buyer's joining cost t_b.")
@click.option("--seller-network", default="0", show_default=True, help="A seller's benefit per buyer, α_s.")
@click.option("--buyer-network", default="0", show_default=True, help="A buyer's benefit per seller, α_b.")
@click.option("--seller-service", default="1", show_default=True, help="A seller's benefit per unit of q, b_s.")
@click.option("--buyer-service", default="1", show_default=True, help="A buyer's benefit per unit of q, b_b.")
@click.option("--seller-cost", default="0", show_default=True, help="The platform's cost per seller, c_s.")
@click.option("--buyer-cost", default="0", show_default=True, help="The platform's cost per buyer, c_b.")
@click.option("--service-cost", default="0", show_default=True, help="s: service level q costs s·q²/2.")
def price_fees(q: str, sellers: str, buyers: str, seller_spread: str, buyer_spread: str, seller_network: str,
               buyer_network: str, seller_service: str, buyer_service: str, seller_cost: str, buyer_cost: str,
               service_cost: str) -> None:
    """The platform's profit-maximising two-sided fees per member and period at service level q (Armstrong
    2006; numerical, offline). A negative fee is a subsidy."""
    from carbon_sdk.economics import TwoSidedMarket, platform_fees

    market = _run(lambda: TwoSidedMarket(
        sellers=sellers, buyers=buyers, seller_spread=seller_spread, buyer_spread=buyer_spread,
        seller_network=seller_network, buyer_network=buyer_network, seller_service=seller_service,
        buyer_service=buyer_service, seller_cost=seller_cost, buyer_cost=buyer_cost, service_cost=service_cost))
    f = _run(lambda: platform_fees(q, market))
    console.print(kv_table(f"two-sided fees at q = {q}", [
        ("seller fee (low-carbon side)", f"{f.seller_fee:.6g}"), ("buyer fee (high-carbon side)", f"{f.buyer_fee:.6g}"),
        ("sellers joining", f"{f.sellers:.6g} of {market.sellers:g}"),
        ("buyers joining", f"{f.buyers:.6g} of {market.buyers:g}"), ("profit", f"{f.profit:.6g}"),
        ("sellers' surplus", f"{f.seller_surplus:.6g}"), ("buyers' surplus", f"{f.buyer_surplus:.6g}"),
        ("welfare", f"{f.welfare:.6g}"),
        ("optimum", "interior (first-order conditions hold)" if f.interior else "on a bound (a side not or fully "
                                                                              "served)")]))


@price_group.command("post")
@model_options
@click.option("--delta", help="The offset ratio δ, in (0, 1].")
@click.option("--period", "period_id", type=int, help="Use the offset ratio the regulator set for this period.")
@click.pass_obj
def price_post(obj: Context, N: str, e: str, D: str, W: str, c: str, delta: str | None,
               period_id: int | None) -> None:
    """Price from the model and post the prices on chain (a platform): buy-back and sale per PCC."""
    if (delta is None) == (period_id is None):
        raise click.UsageError("give --delta or --period (the offset ratio set on chain), one of them")
    client = _run(obj.client)
    decimals, symbol = _run(lambda: _settlement_units(client))
    model, posted = _run(lambda: client.credits.post_model_prices(N=N, e=e, D=D, W=W, c=c, delta=delta,
                                                                  period=period_id))
    which = f"δ={delta}" if delta is not None else f"δ of period {period_id}"
    console.print(model_table(model, f"model prices: N={N}, {which}, e={e}, D={D}, W={W}, c={c}",
                              (posted.buy_back, posted.sale), decimals, symbol))
    console.print(f"{posted.platform} posted buy-back {_per_credit(posted.buy_back, decimals, symbol)}, sale "
                  f"{_per_credit(posted.sale, decimals, symbol)}", soft_wrap=True)


# ------------------------------------------------------------------------------------------------ simulate


def _scenario_with(name: str, changes: tuple[str, ...]) -> Any:
    import yaml

    from carbon_sdk.sandbox.scenario import load_scenario

    scenario = load_scenario(name)
    if changes:
        updates = {}
        for change in changes:
            key, sep, value = change.partition("=")
            if not sep or not key.strip():
                raise InvalidInput(f"--set {change!r}: write PATH=VALUE, e.g. policy.offset_ratio=0.6")
            updates[key.strip()] = yaml.safe_load(value)
        scenario = scenario.with_changes(updates)
    return scenario


def _simulate_one(scenario: Any, folder: Path, scenario_file: str | None) -> Any:
    from carbon_sdk.sandbox.runner import run_scenario

    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        return run_scenario(scenario, folder, progress=progress, log=console.print, scenario_file=scenario_file)


@main.command("simulate")
@click.argument("scenario", default="default")
@click.option("--compare", "other", help="A second scenario, run the same way and shown side by side.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Report folder (default: sandbox-reports/NAME-TIME).")
@click.option("--set", "changes", multiple=True, metavar="PATH=VALUE",
              help="Change a value of SCENARIO, e.g. --set policy.offset_ratio=0.6 (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="List the shipped scenarios and exit.")
def simulate(scenario: str, other: str | None, out: Path | None, changes: tuple[str, ...], list_only: bool) -> None:
    """Run a policy scenario on a fresh devnet, period by period through the SDK, and write its report.

    SCENARIO is a shipped name (see --list) or a YAML file. The report (Markdown, HTML, PNG plots and the
    raw data as CSV) compares the market with the seed paper's claims; with --compare, two runs side by side.
    """
    from carbon_sdk.sandbox.report import summary_lines, write_report
    from carbon_sdk.sandbox.scenario import shipped_scenarios

    if list_only:
        rows = [(name, str(path)) for name, path in shipped_scenarios().items()]
        console.print(kv_table("shipped scenarios", rows))
        return
    first = _run(lambda: _scenario_with(scenario, changes))
    second = _run(lambda: _scenario_with(other, ())) if other else None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = out or Path("sandbox-reports") / (f"{first.name}-vs-{second.name}-{stamp}" if second else
                                              f"{first.name}-{stamp}")
    folders = [base / first.name, base / (second.name if second.name != first.name else second.name + "-2")] \
        if second else [base]
    console.print(f"scenario [bold]{first.name}[/bold]: {first.periods} periods, {first.enterprise_count} "
                  f"enterprises, {first.individuals.count:,} individuals; a fresh devnet, every step on chain")
    result = _run(lambda: _simulate_one(first, folders[0], scenario if Path(scenario).is_file() else None))
    if second:
        console.print(f"scenario [bold]{second.name}[/bold] for comparison")
        _run(lambda: _simulate_one(second, folders[1], other if Path(other).is_file() else None))
    report = _run(lambda: write_report(folders[0], compare=folders[1] if second else None,
                                       out=base if second else None))
    from carbon_sdk.sandbox.report import load_results

    for line in summary_lines(_run(lambda: load_results(folders[0]))):
        console.print(f"  {line}", soft_wrap=True)
    console.print(f"report: [bold]{report}[/bold] (and {report.with_suffix('.html').name}, plots and "
                  f"data/*.csv beside it); {result.wall_seconds:.0f} s")


if __name__ == "__main__":
    main()
