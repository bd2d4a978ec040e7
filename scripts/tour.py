"""The tour: a chain starts by itself, the system is deployed, a sample consortium is enrolled, and it walks
through every feature by hand: a compliance period (cap and allocation, reports from monitoring data,
endorsement with one dispute, audit, rewards and penalties, surrender with offsets, one enterprise short,
the compliance table), an exchange session, the audit trail, and a platform's 10,000 residents with a week
of personal carbon credits (batch, bulk claims, desk trades at the model's prices, redemptions, donations).

    make tour        (or: python scripts/tour.py [--keep])

It runs a fresh permissioned devnet in a temporary folder on free ports (so it never touches a devnet you
started with `carbon devnet up`), and stops it at the end unless --keep is given. Everything goes through
the SDK, exactly as an application would use it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from fractions import Fraction
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
from carbon_sdk.allowances import OffsetKind  # noqa: E402
from carbon_sdk.artifacts import load_build  # noqa: E402
from carbon_sdk.coin import COIN  # noqa: E402
from carbon_sdk.readings import COLUMNS, Reading, load_readings_csv  # noqa: E402
from carbon_sdk.units import format_tonnes, tonnes  # noqa: E402
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
REGIONAL_REGULATOR = ("Shanghai Municipal Ecology Bureau", 31)

# The 2025 compliance period, in tonnes. `emissions`: the monitoring data's true totals (CO2, fossil CH4);
# `reported`: what the enterprise reports when it differs (a missing meter, an understatement).
PERIOD = 2025
CAP, REGIONAL_CAPS, FOR_SALE = 500_000, {11: 200_000, 31: 100_000, 44: 150_000}, 20_000
PLAN = {
    "Jingneng Thermal Power": {"allocation": 120_000, "co2": 118_000, "ch4": 10, "offsets": 6_000},
    "Huadong Cement Group": {"allocation": 80_000, "co2": 74_000, "ch4": 0, "sells": 5_000},
    "Pearl River Steel": {"allocation": 60_000, "co2": 64_500, "ch4": 0, "reported_co2": 61_000},
    "Northern Aluminium Smelting": {"allocation": 40_000, "co2": 46_000, "ch4": 0},
    "Coastal Petrochemical": {"allocation": 50_000, "co2": 48_000, "ch4": 6, "first_report_missing": "flare-2",
                              "offsets": 1_000},
}


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
    org(REGIONAL_REGULATOR[0], Role.REGULATOR, [Role.REGULATOR], REGIONAL_REGULATOR[1])

    residents = [Account.create() for _ in range(individuals)]  # keys kept: a few sign their own trades later
    people = [r.address for r in residents]
    regions = [11, 31, 44]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task(f"platform enrols {individuals} residents", total=individuals)
        for i, region in enumerate(regions):
            group = people[i::len(regions)]
            platform.registry.enrol_batch(group, Role.INDIVIDUAL, region=region,
                                          identities=[{"app_user": p.lower()} for p in group],
                                          progress=lambda n: bar.advance(task, n))
    return {"admins": admins, "people": people, "residents": residents, "platform": platform}


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


def write_readings(path: Path, co2_t: int, ch4_t: int, start: int, skip_sensor: str | None = None) -> Path:
    """Synthetic hourly monitoring data for one day: two CO2 stacks and a CH4 flare, summing exactly to the
    totals (in grams); `skip_sensor` drops one sensor, as a faulty first submission would."""
    rows: list[Reading] = []
    for sensor, gas, total_t in (("stack-1", "CO2", co2_t * 3 // 5), ("stack-2", "CO2", co2_t - co2_t * 3 // 5),
                                 ("flare-2", "CH4_fossil", ch4_t)):
        if total_t == 0 or sensor == skip_sensor:
            continue
        grams = tonnes(total_t)
        for hour in range(24):
            share = grams // 24 + (grams % 24 if hour == 23 else 0)
            rows.append(Reading(sensor, start + hour * 3600, gas, share))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write(",".join(COLUMNS) + "\n")
        for r in rows:
            out.write(f"{r.sensor},{r.time},{r.gas},{format_tonnes(r.grams).replace(',', '')}\n")
    return path


# The exchange session: (side, who, tonnes, price in CNY per tonne). The regulator sells part of its paid
# allocation; Northern Aluminium, short of allowances, buys.
AUCTION = [
    ("ask", "regulator", 1_800, 80), ("ask", "Jingneng Thermal Power", 1_500, 78), ("ask", "Huadong Cement Group", 500, 82),
    ("bid", "Northern Aluminium Smelting", 2_000, 85), ("bid", "Pearl River Steel", 1_000, 81),
    ("bid", "Coastal Petrochemical", 500, 79),
]
# Continuous trading afterwards, one order a minute: (side, who, tonnes, price, market order?).
CONTINUOUS = [
    ("bid", "Coastal Petrochemical", 300, 80, False), ("ask", "Jingneng Thermal Power", 200, 81, False),
    ("bid", "Pearl River Steel", 150, 82, True), ("ask", "Huadong Cement Group", 100, 79, True),
    ("bid", "Northern Aluminium Smelting", 400, 83, False), ("ask", "Jingneng Thermal Power", 300, 82, False),
    ("bid", "Coastal Petrochemical", 200, 82, False), ("bid", "Pearl River Steel", 100, 84, True),
]


def run_exchange_session(regulator: CarbonClient, devnet: Devnet, consortium: dict, firms: dict[str, CarbonClient],
                         allowance: str, folder: Path) -> None:
    """A session on the exchange: call auction, clearing, continuous trading, claims, K-line chart, final book."""
    from carbon_sdk.market_data import plot_klines

    console.rule("5b. the exchange: call auction, then continuous trading")
    platform: CarbonClient = consortium["platform"]
    settlement = regulator.manifest.contract("SettlementToken").address
    traders = {"regulator": regulator, **firms}
    market = platform.exchange.create_market(allowance, settlement, lot_size=tonnes(1), tick_size=100,
                                             buyer_fee_bps=10, seller_fee_bps=10)
    now = regulator.chain_time()
    platform.exchange.open_session(market.id, call_deadline=now + 300, closes_at=now + 1_800)
    console.print(f"market {market.id}: {PERIOD} allowances (1 t lots) against DCNY (1.00 CNY ticks), fees 0.1 % "
                  f"a side, midpoint pricing; run by {PLATFORM[0]}")
    for side, who, lots, _ in AUCTION:  # deposits: sellers their allowances, buyers their cash
        client = traders[who]
        if side == "ask":
            client.exchange.deposit(allowance, tonnes(lots * 2))
        else:
            platform.settlement.issue(client.address, lots * 100 * 100 * 2, fiat_reference=f"{who} wire")
            client.exchange.deposit(settlement, lots * 100 * 100 * 2)
    for side, who, lots, price in AUCTION:
        traders[who].exchange.place_order(market.id, side, lots, market.tick(price * 100))
    console.print(f"call auction: {len(AUCTION)} orders until the deadline; none match yet")
    devnet.rpc("evm_increaseTime", [301], operator=True)
    devnet.rpc("evm_mine", [], operator=True)
    cleared = platform.exchange.clear_all(market.id)
    fills = platform.exchange.fills(market.id)
    table = Table(title=f"auction cleared in {cleared.transactions} transaction(s): each pair at its midpoint")
    for column in ("bid", "ask", "t", "price (CNY/t)"):
        table.add_column(column)
    names = {}
    for order in platform.exchange.orders(market.id):
        names[order.id] = next(n for n, c in traders.items() if c.address == order.owner)
    for fill in fills:
        table.add_row(names[fill.bid_order], names[fill.ask_order], f"{fill.lots:,}",
                      f"{float(market.price(Fraction(fill.price2, 2))) / 100:,.2f}")
    console.print(table)
    platform.exchange.claim(market.id)
    for side, who, lots, price, at_market in CONTINUOUS:
        devnet.rpc("evm_increaseTime", [60], operator=True)
        traders[who].exchange.place_order(market.id, side, lots, market.tick(price * 100),
                                          kind="market" if at_market else "limit")
    console.print(f"continuous trading: {len(CONTINUOUS)} limit and market orders, one a minute, against what the "
                  "auction left open")
    book = platform.exchange.depth(market.id)
    table = Table(title="the book before the session closes (t)")
    for column in ("bid (CNY/t)", "t", "ask (CNY/t)", "t "):
        table.add_column(column, justify="right")
    for i in range(max(len(book.bids), len(book.asks))):
        bid = book.bids[i] if i < len(book.bids) else None
        ask = book.asks[i] if i < len(book.asks) else None
        table.add_row(f"{float(bid.price) / 100:,.2f}" if bid else "", f"{bid.quantity:,}" if bid else "",
                      f"{float(ask.price) / 100:,.2f}" if ask else "", f"{ask.quantity:,}" if ask else "")
    console.print(table)
    devnet.rpc("evm_increaseTime", [1_800], operator=True)
    devnet.rpc("evm_mine", [], operator=True)
    claims = platform.exchange.claim(market.id)
    fees = platform.exchange.collect_fees(market.id)
    bars = platform.exchange.ohlcv(market.id, 120)
    chart = plot_klines(bars, folder / "kline.png", title=f"CEA-{PERIOD} / DCNY, 2-minute bars")
    console.print(f"session closed: {len(claims)} orders settled by claims; {fees / 100:,.2f} DCNY of fees to the "
                  f"platform; {len(platform.exchange.fills(market.id))} trades; K-line chart: {chart}")
    for who, client in traders.items():  # back to the wallets, for compliance
        free = client.exchange.free_balance(allowance)
        if free:
            client.exchange.withdraw(allowance, free)


def run_period(regulator: CarbonClient, devnet: Devnet, manifest, consortium: dict, folder: Path) -> None:
    """One compliance period for the sample consortium, every step through the SDK."""
    admins: dict[str, CarbonClient] = consortium["admins"]
    firms = {name: admins[name] for name in PLAN}
    address = {name: client.address for name, client in firms.items()}
    verifier, second_verifier = admins[VERIFIERS[0][0]], admins[VERIFIERS[1][0]]
    shanghai = admins[REGIONAL_REGULATOR[0]]
    now = regulator.chain_time()

    console.rule(f"4. compliance period {PERIOD}: cap and allocation")
    period = regulator.allowances.open_period(
        PERIOD, cap=tonnes(CAP), trading_at=now + 3_600, reconciliation_at=now + 7_200, closes_at=now + 10_800,
        regional_caps={r: tonnes(c) for r, c in REGIONAL_CAPS.items()})
    console.print(f"period {PERIOD} opened: national cap {CAP:,} t, regional caps "
                  f"{', '.join(f'{r}: {c:,} t' for r, c in REGIONAL_CAPS.items())}; vintage ERC-20 {period.allowance}")
    region_of = dict(ENTERPRISES)
    by_region: dict[int, dict[str, int]] = {}
    for name, plan in PLAN.items():
        by_region.setdefault(region_of[name], {})[address[name]] = tonnes(plan["allocation"])
    for region, grants in sorted(by_region.items()):
        # The Shanghai bureau allocates its own region's share; the national regulator the others.
        allocator = shanghai if region == 31 else regulator
        done = allocator.allowances.allocate(PERIOD, grants, region=region)
        who = "Shanghai bureau" if region == 31 else "national regulator"
        console.print(f"region {region}: {who} allocates {format_tonnes(done.total)} t to {len(grants)} enterprises")
    regulator.allowances.allocate_for_sale(PERIOD, tonnes(FOR_SALE))
    console.print(f"paid allocation: {FOR_SALE:,} t minted to the regulator from the national reserve, to be sold "
                  f"in a market session")
    try:
        regulator.allowances.allocate(PERIOD, {address["Pearl River Steel"]: tonnes(200_000)}, region=44)
    except errors.ContractCustomError as exc:
        console.print(f"allocating beyond region 44's cap → refused: [red]{exc}[/red]")

    wind = regulator.allowances.register_offset_project("Gansu Wind Farm (CCER)", OffsetKind.CCER)
    forest = regulator.allowances.register_offset_project("Inner Mongolia Forestry Sink", OffsetKind.FORESTRY_SINK)
    for project, holder in ((wind, "Jingneng Thermal Power"), (forest, "Coastal Petrochemical")):
        regulator.allowances.issue_offsets(project.project_id, PERIOD,
                                           {address[holder]: tonnes(PLAN[holder]["offsets"])})
    console.print(f"offset projects registered: {wind.name}, {forest.name}; credits issued per project vintage")

    console.rule("5. trading")
    regulator.allowances.advance_phase(PERIOD)
    seller, buyer = "Huadong Cement Group", "Pearl River Steel"
    firms[seller].allowances.transfer(period.allowance, address[buyer], tonnes(PLAN[seller]["sells"]))
    console.print(f"{seller} sells {PLAN[seller]['sells']:,} t to {buyer} (OTC transfer, both checked as active)")
    run_exchange_session(regulator, devnet, consortium, firms, period.allowance, folder)

    console.rule("6. reports from monitoring data, verification, audit")
    regulator.allowances.advance_phase(PERIOD)
    readings_dir = folder / "readings"
    day = now - 86_400
    reports = {}
    for name, plan in PLAN.items():
        client = firms[name]
        reported_co2 = plan.get("reported_co2", plan["co2"])
        path = write_readings(readings_dir / f"{name.split()[0].lower()}-v1.csv", reported_co2, plan["ch4"], day,
                              skip_sensor=plan.get("first_report_missing"))
        readings = load_readings_csv(path)
        reports[name] = client.mrv.submit_report_from_readings(PERIOD, readings, report_document=path.read_bytes())
    true_co2e = {name: client.mrv.co2e({"CO2": tonnes(p["co2"]), "CH4_fossil": tonnes(p["ch4"])})
                 for (name, p), client in zip(PLAN.items(), firms.values())}
    table = Table(title=f"reports for {PERIOD} (CO2e computed on chain with IPCC AR6 GWP100)")
    for column in ("enterprise", "version", "reported CO2e (t)", "readings root"):
        table.add_column(column)
    for name, report in reports.items():
        table.add_row(name, str(report.version), format_tonnes(report.co2e), "0x" + report.readings_root.hex()[:16] + "…")
    console.print(table)

    disputed = "Coastal Petrochemical"
    verifier.mrv.dispute(PERIOD, address[disputed], 1, evidence="site visit: flare-2 meter missing from the dataset")
    console.print(f"{VERIFIERS[0][0]} disputes {disputed}'s report v1 (a flare meter is missing)")
    old = load_readings_csv(readings_dir / "coastal-v1.csv")
    plan = PLAN[disputed]
    fixed = write_readings(readings_dir / "coastal-v2.csv", plan["co2"], plan["ch4"], day)
    new = load_readings_csv(fixed)
    diff = firms[disputed].mrv.diff_readings(old, new)
    reports[disputed] = firms[disputed].mrv.submit_report_from_readings(PERIOD, new, report_document=fixed.read_bytes())
    console.print(f"{disputed} re-submits v{reports[disputed].version}: the two datasets differ in "
                  f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed readings "
                  f"(v1 is kept on chain)")
    for name in PLAN:
        who = second_verifier if region_of[name] == 31 else verifier
        who.mrv.endorse(PERIOD, address[name], reports[name].version, verified_quantity=true_co2e[name],
                        evidence=f"verification statement {PERIOD} {name}")
    reading = new[5]
    proof = firms[disputed].mrv.prove_reading(new, reading)
    ok = regulator.mrv.verify_reading(PERIOD, address[disputed], reading, proof)
    console.print(f"traceability: reading ({reading.sensor}, {reading.time}, {reading.gas}, "
                  f"{format_tonnes(reading.grams)} t) proven in the root on chain with {len(proof)} hashes: {ok}")

    audits = {name: regulator.mrv.audit(PERIOD, address[name], evidence=f"desk audit {PERIOD} {name}")
              for name in PLAN}
    table = Table(title="audits and the coin rules they applied")
    for column in ("enterprise", "reported (t)", "verified (t)", "outcome", "coin"):
        table.add_column(column)
    for name, audit in audits.items():
        rules = ", ".join(f"{a.reason.name.lower()} {'-' if a.penalty else '+'}{a.amount / COIN:,.0f}"
                          for a in audit.applications)
        table.add_row(name, format_tonnes(reports[name].co2e), format_tonnes(audit.final_quantity),
                      "accurate" if audit.accurate else "[red]misreport[/red]", rules)
    console.print(table)
    try:
        regulator.mrv.audit(PERIOD, address["Pearl River Steel"], evidence="second look")
    except errors.ContractCustomError as exc:
        console.print(f"auditing the same report again → refused: [red]{exc}[/red]")

    console.rule("7. surrender")
    for name, plan in PLAN.items():
        client, verified = firms[name], audits[name].final_quantity
        items = []
        if plan.get("offsets"):
            offset_share = min(tonnes(plan["offsets"]), verified * 5 // 100)
            project = wind if name == "Jingneng Thermal Power" else forest
            items.append((regulator.allowances.offset_token(project.project_id, PERIOD), offset_share))
            verified -= offset_share
        held = client.allowances.balance(period.allowance, client.address)
        if name == "Northern Aluminium Smelting":
            verified = held  # surrenders what it holds: short
        items.append((period.allowance, min(verified, held)))
        client.allowances.surrender(PERIOD, items)
    try:
        firms["Jingneng Thermal Power"].allowances.surrender(
            PERIOD, [(regulator.allowances.offset_token(wind.project_id, PERIOD), tonnes(50))])
    except errors.ContractCustomError as exc:
        console.print(f"offsets beyond 5 % of verified emissions → refused: [red]{exc}[/red]")

    console.rule("8. deadline: settlement and the compliance table")
    regulator.allowances.advance_phase(PERIOD)
    settled = regulator.allowances.settle(PERIOD, list(address.values()))
    statuses = regulator.allowances.compliance_table(PERIOD, list(address.values()))
    table = Table(title=f"compliance {PERIOD}")
    for column in ("enterprise", "region", "verified (t)", "allowances (t)", "offsets (t)", "shortfall (t)", "state",
                   "coin", "coin debt"):
        table.add_column(column, justify="right" if column not in ("enterprise", "state") else "left")
    for name, status in zip(address, statuses):
        state = status.state.name.lower()
        table.add_row(name, str(region_of[name]), format_tonnes(status.verified_emissions),
                      format_tonnes(status.surrendered - status.offsets), format_tonnes(status.offsets),
                      format_tonnes(status.shortfall), state if state == "compliant" else f"[red]{state}[/red]",
                      f"{regulator.coin.balance(address[name]) / COIN:,.0f}",
                      f"{regulator.coin.debt(address[name]) / COIN:,.0f}")
    console.print(table)
    short = next(s for s in settled if s.shortfall)
    name = next(n for n, a in address.items() if a == short.enterprise)
    console.print(f"{name}: {format_tonnes(short.shortfall)} t short → penalty "
                  f"{short.penalty.amount / COIN:,.0f} coin, of which {short.penalty.debt_change / COIN:,.0f} as debt")
    try:
        firms[name].allowances.transfer(period.allowance, address["Huadong Cement Group"], tonnes(1))
    except errors.ContractCustomError as exc:
        console.print(f"{name} (in debt) tries to trade → refused: [red]{exc}[/red]")

    platform: CarbonClient = consortium["platform"]
    platform.settlement.issue(regulator.address, 1_000_000, fiat_reference="treasury transfer 2026-001")
    regulator.coin.fund_pool(1_000_000)
    huadong = firms["Huadong Cement Group"]
    conversion = huadong.coin.convert(huadong.coin.balance(huadong.address))
    console.print(f"Huadong converts {conversion.coin_amount / COIN:,.0f} coin into {conversion.paid / 100:,.2f} DCNY "
                  f"from the regulator-funded pool")

    console.rule("9. supervision: the audit trail")
    observer = CarbonClient(devnet.rpc_url, manifest)
    trail = observer.mrv.export_audit_trail(PERIOD, json_path=folder / f"audit-trail-{PERIOD}.json",
                                            csv_path=folder / f"audit-trail-{PERIOD}.csv")
    check = observer.mrv.verify_audit_trail(folder / f"audit-trail-{PERIOD}.json")
    kinds = Counter(r.kind for r in trail.records)
    console.print(f"{len(trail.records)} records ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}) "
                  f"written to {folder}/audit-trail-{PERIOD}.json and .csv")
    console.print(f"an observer re-checks every record against the chain: "
                  f"{'[green]all ' + str(check.checked) + ' match[/green]' if check.ok else check.problems}")


# Personal carbon accounts: a week of the 2025 period. Quotas in grams of CO2e per person for the week; the
# platform's model inputs: e, the most a low-carbon user values a tonne kept, and c, its cost per tonne.
WEEK_QUOTA = 40_000
DELTA_BPS = 5_000
MODEL_E, MODEL_C = 200, 5
WELFARE_PROJECT = (1, "Kubuqi Desert tree planting")
SIGNING = 40  # residents who sign a desk trade themselves (each is one transaction from its own key)


def run_personal_credits(regulator: CarbonClient, devnet: Devnet, manifest, consortium: dict, folder: Path) -> None:
    """A platform's residents: a week of activity, one committed batch, bulk claims, then credits in use."""
    import random

    from carbon_sdk.activities import batch_totals, write_synthetic_week
    from carbon_sdk.credits import credit_entries, issuance_ceiling
    from carbon_sdk.methodology import Methodology

    console.rule(f"10. personal carbon accounts: {len(consortium['people']):,} residents, one week")
    platform: CarbonClient = consortium["platform"]
    merchant: CarbonClient = consortium["admins"][MERCHANT[0]]
    methodology = Methodology.default()
    regulator.credits.register_methodology(methodology.version, methodology.content_hash,
                                           uri="carbon_sdk/data/methodology_v1.json")
    for region in (11, 31, 44):
        regulator.credits.set_quota(PERIOD, region=region, per_capita=WEEK_QUOTA)
    regulator.credits.set_offset_ratio(PERIOD, delta_bps=DELTA_BPS)
    beneficiary = Account.create().address
    regulator.credits.register_project(WELFARE_PROJECT[0], beneficiary, name=WELFARE_PROJECT[1])
    console.print(f"regulator: methodology v{methodology.version} ({methodology.content_hash_hex[:18]}…) "
                  f"registered, quota {WEEK_QUOTA / 1000:g} kg CO2e per resident for the week in every region, "
                  f"offset ratio δ = {DELTA_BPS / 10_000:g}, welfare project #{WELFARE_PROJECT[0]} "
                  f"'{WELFARE_PROJECT[1]}'")

    started = time.perf_counter()
    week = write_synthetic_week(folder / "activity-week.csv", consortium["people"], seed=2025)
    totals = batch_totals(week.path, methodology, period=week.period, known_accounts=consortium["people"])
    entries = [e for e in credit_entries(totals, WEEK_QUOTA) if e[1] or e[2]]
    # The regulator recomputes what the methodology and quota allow and caps the platform's issuance at it.
    regulator.credits.set_issuance_ceiling(PERIOD, platform.address, issuance_ceiling(totals, WEEK_QUOTA))
    batch = platform.credits.build_batch(entries, methodology=methodology.version)
    built = time.perf_counter() - started
    platform.credits.commit_batch(batch, period=PERIOD)
    claims = batch.write_claims(folder / "credit-claims.jsonl")
    console.print(f"platform: {week.records:,} activity records of {len(totals):,} residents → batch "
                  f"#{batch.batch_id} of {len(entries):,} entries ({format_tonnes(batch.total)} t of credits) "
                  f"built in {built:.1f} s and committed as one root {batch.root[:18]}…; each resident's proof in "
                  f"{claims.name}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("platform claims for its residents, 200 a transaction", total=len(entries))
        platform.credits.claim_many(batch, progress=lambda n: bar.advance(task, n))

    # Prices from the model: N the week's deficits (tonnes), D the low-carbon residents (credits, no deficit),
    # W their average credits.
    deficit_t = Fraction(sum(d for _, _, d in entries), 10**6)
    holders = [(a, amount) for a, amount, _ in entries if amount]
    low_carbon = [(a, amount) for a, amount, deficit in entries if amount and not deficit]
    average_t = Fraction(sum(amount for _, amount in low_carbon), 10**6 * len(low_carbon))
    model, posted = platform.credits.post_model_prices(N=deficit_t, e=MODEL_E, D=len(low_carbon), W=average_t,
                                                       c=MODEL_C, period=PERIOD)
    money = 10 ** regulator.settlement.decimals()
    console.print(f"platform prices from the model (δ N = {float(model.d_all):.1f} t owed, D = {len(low_carbon):,} "
                  f"low-carbon residents holding W = {float(average_t) * 1000:.1f} kg on average): buy-back "
                  f"{posted.buy_back / money:.2f}, sale {posted.sale / money:.2f} per credit (tonne); a resident "
                  f"with θ ≤ P_ph/e = {float(model.participation):.2f} sells")
    platform.settlement.issue(platform.address, 1_000_000 * money, fiat_reference="credit desk float")
    platform.credits.fund_desk(1_000_000 * money)
    platform.credits.set_merchant_rate(merchant.address, posted.buy_back)

    keys = {r.address: r for r in consortium["residents"]}
    client_of = lambda address: CarbonClient(devnet.rpc_url, manifest, keys[address].key)  # noqa: E731
    rng = random.Random(7)
    flows = Counter()
    # Low-carbon residents whose perception θ ~ U(0, 1) is at most P_ph/e sell their credits (a sample signs).
    sellers = [(a, amount) for a, amount in low_carbon if rng.random() <= model.participation][:SIGNING]
    for address, amount in sellers:
        trade = client_of(address).credits.sell_to_platform(platform.address, amount)
        flows["sold to the platform"] += trade.amount
        flows["paid to sellers"] += trade.paid
    # High-carbon residents buy what their deficit owes from the platform's stock, and surrender it.
    owing = [(a, d * DELTA_BPS // 10_000) for a, _, d in entries if d * DELTA_BPS // 10_000 > 0]
    for address, owed in owing[:SIGNING]:
        if platform.credits.balance(platform.address) < owed:
            break
        buyer = client_of(address)
        platform.settlement.issue(address, owed * posted.sale // 10**6 + money, fiat_reference=f"top-up {address}")
        trade = buyer.credits.buy_from_platform(platform.address, owed)
        buyer.credits.cover_deficit(PERIOD, owed)
        flows["bought from the platform"] += trade.amount
        flows["paid by buyers"] += trade.paid
        flows["surrendered for deficits"] += owed
        flows["buyers"] += 1
    # A few redeem credits at EcoMart, a few donate to tree planting.
    keepers = [(a, amount) for a, amount in holders if a not in dict(sellers)]
    for i, (address, amount) in enumerate(keepers[:8]):
        holder = client_of(address)
        if i % 2 == 0:
            r = holder.credits.redeem(platform.address, merchant.address, amount // 2, receipt=f"EcoMart till {i}")
            flows["redeemed at EcoMart"] += r.amount
            flows["paid to EcoMart"] += r.merchant_paid
        else:
            flows["donated to tree planting"] += holder.credits.donate(WELFARE_PROJECT[0], amount // 2).amount

    owed_total = sum(o for _, o in owing)
    table = Table(title="personal credits: the week in figures")
    table.add_column("")
    table.add_column("residents", justify="right")
    table.add_column("credits (t)", justify="right")
    table.add_column("settlement", justify="right")
    rows = [
        ("issued by batch, claimed in bulk", len(holders), batch.total, None),
        ("deficits owed at δ", len(owing), owed_total, None),
        (f"sold to the platform (buy-back; the first {SIGNING} with θ ≤ P_ph/e)", len(sellers), flows["sold to the platform"], flows["paid to sellers"]),
        ("bought from the platform (sale) by residents who owe", flows["buyers"], flows["bought from the platform"],
         flows["paid by buyers"]),
        ("surrendered against deficits", flows["buyers"], flows["surrendered for deficits"], None),
        ("redeemed at EcoMart", 4, flows["redeemed at EcoMart"], flows["paid to EcoMart"]),
        ("donated to tree planting", 4, flows["donated to tree planting"], None),
        ("deficits still outstanding", len(owing) - flows["buyers"], owed_total - flows["surrendered for deficits"],
         None),
    ]
    for label, people, amount, paid in rows:
        table.add_row(label, f"{people:,}", format_tonnes(amount), "" if paid is None else f"{paid / money:,.2f}")
    console.print(table)
    supply = int(platform.credits.token.call("totalSupply"))
    burned = flows["surrendered for deficits"] + flows["redeemed at EcoMart"] + flows["donated to tree planting"]
    console.print(f"PCC supply {format_tonnes(supply)} t = issued {format_tonnes(batch.total)} − burned "
                  f"{format_tonnes(burned)}: {'[green]conserved[/green]' if supply == batch.total - burned else '[red]mismatch[/red]'}; "
                  f"project #{WELFARE_PROJECT[0]} retired "
                  f"{format_tonnes(regulator.credits.project(WELFARE_PROJECT[0]).retired)} t in its beneficiary's name")
    plot = plot_credit_flows(folder / "personal-credit-flows.png", batch.total, owed_total, flows, entries)
    console.print(f"credit flows plotted in {plot}")


def plot_credit_flows(path: Path, issued: int, owed: int, flows: Counter, entries: list) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = ["issued", "deficits owed", "sold to platform", "bought from platform", "surrendered", "redeemed",
              "donated"]
    values = [issued, owed, flows["sold to the platform"], flows["bought from the platform"],
              flows["surrendered for deficits"], flows["redeemed at EcoMart"], flows["donated to tree planting"]]
    left.barh(labels[::-1], [v / 10**6 for v in values[::-1]],
              color=["#8c6d31", "#637939", "#3182bd", "#6baed6", "#e6550d", "#756bb1", "#31a354"][::-1])
    left.set_xscale("log")  # a week's issuance next to a sample's trades
    for y, v in enumerate(values[::-1]):
        left.text(max(v / 10**6, 1e-3) * 1.1, y, f"{v / 10**6:,.3f} t", va="center", fontsize=8)
    left.set_xlabel("tonnes CO2e (PCC), log scale")
    left.set_title("personal credit flows in the week")
    net = [(amount - deficit) / 1000 for _, amount, deficit in entries]
    right.hist(net, bins=60, color="#3182bd")
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlabel("credits − deficit per resident (kg CO2e)")
    right.set_ylabel("residents")
    right.set_title("who has surplus, who owes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@click.command()
@click.option("--individuals", default=10_000, show_default=True, help="Residents the platform enrols.")
@click.option("--keep", is_flag=True, help="Leave the devnet running at the end.")
def cli(individuals: int, keep: bool) -> None:
    from carbon_sdk.devnet.node import exit_on_sigterm

    with exit_on_sigterm():  # terminated, the tour still stops its devnet (unless --keep)
        tour(individuals, keep)


def tour(individuals: int, keep: bool) -> None:
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
        run_period(regulator, devnet, manifest, consortium, folder)
        run_personal_credits(regulator, devnet, manifest, consortium, folder)

        console.rule("11. node-level permissioning for a Besu network")
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
