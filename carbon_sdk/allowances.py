"""Compliance periods, allowance vintages, offsets and compliance (DESIGN 2.1, 2.6).

    from carbon_sdk.units import tonnes
    period = regulator.allowances.open_period(2025, cap=tonnes(1_000_000), trading_at=t1, reconciliation_at=t2,
                                              closes_at=t3, regional_caps={11: tonnes(400_000)})
    regulator.allowances.allocate(2025, {enterprise: tonnes(5_000), ...})          # free, in batches
    enterprise_client.allowances.transfer(period.allowance, buyer, tonnes(100))
    enterprise_client.allowances.surrender(2025, [(period.allowance, tonnes(4_800)), (offset, tonnes(200))])
    regulator.allowances.settle(2025, enterprises)                                  # after the deadline
    client.allowances.compliance(2025, enterprise).state                           # one call

Amounts are integer units (6 decimals, 1 unit = 1 gram; see carbon_sdk.units).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from carbon_sdk.coin import RuleApplication, to_bytes32
from carbon_sdk.errors import InvalidInput, contract_error
from carbon_sdk.registry import checked_address, _region
from carbon_sdk.tx import Progress, per_item
from carbon_sdk.types import ParsableEnum, timestamp
from carbon_sdk.units import checked_amount, format_tonnes

if TYPE_CHECKING:
    from carbon_sdk.client import BoundContract, CarbonClient

CONTRACT = "AllowanceManager"
TOKEN = "VintageToken"
MAX_GRANTS = 500  # the contract's bound per allocate / issueOffsets / settle call
DEFAULT_BATCH = 200
MAX_SURRENDER_TOKENS = 32
BPS = 10_000


class PeriodPhase(IntEnum):
    NONE = 0
    OPEN = 1
    TRADING = 2
    RECONCILIATION = 3
    CLOSED = 4


class TokenKind(IntEnum):
    NONE = 0
    ALLOWANCE = 1
    OFFSET = 2


class OffsetKind(ParsableEnum):
    CCER = 0
    FORESTRY_SINK = 1
    OTHER = 2


class ComplianceState(IntEnum):
    NOT_VERIFIED = 0
    DUE = 1
    COMPLIANT = 2
    SHORTFALL = 3
    UNREPORTED = 4


@dataclass(frozen=True)
class Period:
    id: int
    phase: PeriodPhase
    allowance: str  # the vintage's ERC-20
    opened_at: datetime
    trading_at: datetime
    reconciliation_at: datetime
    closes_at: datetime
    offset_share_bps: int
    borrow_share_bps: int
    previous: int
    next: int
    cap: int
    allocated: int
    regional_cap_total: int
    national_allocated: int
    surrendered: int

    @property
    def national_reserve_available(self) -> int:
        return self.cap - self.regional_cap_total - self.national_allocated


@dataclass(frozen=True)
class RegionalCap:
    region: int
    cap: int
    allocated: int

    @property
    def available(self) -> int:
        return self.cap - self.allocated


@dataclass(frozen=True)
class Allocation:
    period: int
    region: int
    grants: dict[str, int]  # recipient -> units, as minted
    total: int
    for_sale: bool
    tx_hashes: tuple[str, ...]


@dataclass(frozen=True)
class OffsetProject:
    project_id: int
    name: str
    kind: OffsetKind
    region: int
    document_hash: bytes


@dataclass(frozen=True)
class OffsetIssuance:
    project_id: int
    vintage: int
    token: str
    grants: dict[str, int]
    total: int
    tx_hashes: tuple[str, ...]


@dataclass(frozen=True)
class SurrenderItem:
    token: str
    kind: TokenKind
    vintage: int
    amount: int


@dataclass(frozen=True)
class Surrender:
    period: int
    enterprise: str
    items: tuple[SurrenderItem, ...]
    tx_hash: str

    @property
    def total(self) -> int:
        return sum(i.amount for i in self.items)


@dataclass(frozen=True)
class ComplianceStatus:
    period: int
    enterprise: str
    state: ComplianceState
    phase: PeriodPhase
    verified: bool
    verified_emissions: int
    surrendered: int
    offsets: int
    borrowed: int
    shortfall: int
    offset_limit: int
    borrow_limit: int
    settled: bool

    @property
    def outstanding(self) -> int:
        """What is still to surrender (0 once compliant)."""
        return max(self.verified_emissions - self.surrendered, 0) if self.verified else 0


@dataclass(frozen=True)
class Settlement:
    period: int
    enterprise: str
    state: ComplianceState
    verified_emissions: int
    surrendered: int
    shortfall: int
    penalty: RuleApplication | None
    tx_hash: str


def pack_grant(recipient: str, amount: int) -> bytes:
    """One grant as the contract reads it: recipient in the high 160 bits, amount in the low 96."""
    return (int(recipient, 16) << 96 | amount).to_bytes(32, "big")


def checked_grants(grants: Mapping[str, int] | Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    items = list(grants.items()) if isinstance(grants, Mapping) else list(grants)
    if not items:
        raise InvalidInput("no grants given")
    out = []
    for i, item in enumerate(items):
        try:
            recipient, amount = item
        except (TypeError, ValueError):
            raise InvalidInput(f"grant #{i} must be (recipient, amount), got {item!r}") from None
        out.append((checked_address(recipient, f"grant #{i} recipient"),
                    checked_amount(amount, f"grant #{i} amount", bits=96)))
    return out


def _period_id(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65_535:
        raise InvalidInput(f"period {value!r} must be an integer label from 1 to 65535 (e.g. 2025)")
    return value


def _bps(value: int, what: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= BPS:
        raise InvalidInput(f"{what} {value!r} must be basis points from 0 to 10000 (500 = 5 %)")
    return value


def _unix(value: datetime | int, what: str) -> int:
    seconds = int(value.timestamp()) if isinstance(value, datetime) else value
    if not isinstance(seconds, int) or seconds < 0 or seconds >= 2**40:
        raise InvalidInput(f"{what} {value!r} must be a datetime or unix seconds")
    return seconds


class AllowancesModule:
    """Periods, caps, allocation, offsets, surrender and settlement on the AllowanceManager contract."""

    def __init__(self, client: "CarbonClient"):
        self._client = client

    @property
    def contract(self) -> "BoundContract":
        return self._client.contract(CONTRACT)

    def token(self, address: str) -> "BoundContract":
        """A vintage token (allowances of a period, or offsets of a project vintage) by address."""
        return self._client.bind(TOKEN, checked_address(address, "token"), self._client.manifest.abi(TOKEN))

    # -- periods ------------------------------------------------------------------------------------------

    def open_period(self, period: int, *, cap: int, trading_at: datetime | int, reconciliation_at: datetime | int,
                    closes_at: datetime | int, offset_share_bps: int = 500, borrow_share_bps: int = 0,
                    regional_caps: Mapping[int, int] | None = None) -> Period:
        """Open a compliance period and create its vintage token (national regulator)."""
        times = [_unix(trading_at, "trading_at"), _unix(reconciliation_at, "reconciliation_at"),
                 _unix(closes_at, "closes_at")]
        if not times[0] <= times[1] <= times[2]:
            raise InvalidInput("the schedule must satisfy trading_at <= reconciliation_at <= closes_at")
        regions = dict(regional_caps or {})
        for region, amount in regions.items():
            if _region(region) == 0:
                raise InvalidInput("regional caps are for regions other than 0 (0 is the national reserve)")
            checked_amount(amount, f"cap of region {region}", bits=128)
        if sum(regions.values()) > cap:
            raise InvalidInput(f"regional caps total {format_tonnes(sum(regions.values()))} t, more than the "
                               f"national cap {format_tonnes(cap)} t")
        params = (_period_id(period), checked_amount(cap, "cap", bits=128), *times,
                  _bps(offset_share_bps, "offset_share_bps"), _bps(borrow_share_bps, "borrow_share_bps"))
        self._client.transact(self.contract.tx("openPeriod", params, list(regions), list(regions.values())))
        return self.period(period)

    def set_regional_cap(self, period: int, region: int, cap: int) -> RegionalCap:
        self._client.transact(self.contract.tx("setRegionalCap", _period_id(period), _region(region),
                                               checked_amount(cap, "cap", allow_zero=True, bits=128)))
        return self.regional_cap(period, region)

    def advance_phase(self, period: int) -> PeriodPhase:
        """End the current phase now (national regulator); returns the new phase."""
        receipt = self._client.transact(self.contract.tx("advancePhase", _period_id(period)))
        return PeriodPhase(self.contract.event_args(receipt, "PeriodPhaseAdvanced")["phase"])

    def period(self, period: int) -> Period:
        """A period; an unknown one raises ``errors.AllowancesUnknownPeriod``."""
        raw = self.contract.call("getPeriod", _period_id(period))
        if raw["phase"] == PeriodPhase.NONE:
            raise contract_error("AllowancesUnknownPeriod", period=period)
        return _period(raw)

    def periods(self) -> list[Period]:
        """Every period, oldest first."""
        out: list[Period] = []
        current = self.contract.call("lastPeriod")
        while current:
            out.append(self.period(current))
            current = out[-1].previous
        return out[::-1]

    def phase(self, period: int) -> PeriodPhase:
        return PeriodPhase(self.contract.call("phaseOf", _period_id(period)))

    def regional_cap(self, period: int, region: int) -> RegionalCap:
        raw = self.contract.call("regionalCap", _period_id(period), _region(region))
        return RegionalCap(region, raw["cap"], raw["allocated"])

    def regional_caps(self, period: int) -> list[RegionalCap]:
        return [self.regional_cap(period, r) for r in self.contract.call("periodRegions", _period_id(period))]

    def available(self, period: int, region: int = 0) -> int:
        """What may still be allocated from ``region``'s cap (0: the national reserve)."""
        if region == 0:
            return self.period(period).national_reserve_available
        return self.regional_cap(period, region).available

    # -- allocation ---------------------------------------------------------------------------------------

    def allocate(self, period: int, grants: Mapping[str, int] | Iterable[tuple[str, int]], *, region: int = 0,
                 batch_size: int = DEFAULT_BATCH, progress: Progress | None = None) -> Allocation:
        """Free allocation to active enterprises, ``batch_size`` per transaction.

        The total is checked against the cap before anything is sent, and every batch is estimated before
        the first is sent, so a bad recipient or a cap overflow anywhere sends nothing.
        """
        items = checked_grants(grants)
        if not 1 <= batch_size <= MAX_GRANTS:
            raise InvalidInput(f"batch_size must be from 1 to {MAX_GRANTS}")
        record = self.period(period)  # unknown period and phase: the contract's first checks, so first here
        if record.phase not in (PeriodPhase.OPEN, PeriodPhase.TRADING):
            raise contract_error("AllowancesWrongPhase", period=period, phase=int(record.phase))
        total = sum(a for _, a in items)
        available = record.national_reserve_available if region == 0 else self.regional_cap(period, region).available
        if total > available:
            raise contract_error("AllowancesCapExceeded", period=period, region=region, available=available,
                                 requested=total)
        chunks = [items[s:s + batch_size] for s in range(0, len(items), batch_size)]
        calls = [self.contract.tx("allocate", period, _region(region), [pack_grant(r, a) for r, a in c])
                 for c in chunks]
        receipts = self._client.transact_many(calls, progress=per_item(chunks, progress))
        merged: dict[str, int] = {}
        for recipient, amount in items:
            merged[recipient] = merged.get(recipient, 0) + amount
        return Allocation(period, region, merged, total, False, tuple(r.tx_hash for r in receipts))

    def allocate_for_sale(self, period: int, amount: int, *, region: int = 0) -> Allocation:
        """Paid allocation: mint ``amount`` to the calling regulator, to sell in a market session."""
        receipt = self._client.transact(self.contract.tx(
            "allocateForSale", _period_id(period), _region(region), checked_amount(amount, "amount", bits=128)))
        return Allocation(period, region, {self._client.address: amount}, amount, True, (receipt.tx_hash,))

    def allocations(self, period: int) -> list[dict[str, Any]]:
        """Every allocation of ``period`` (recipient, amount, tx), from the vintage's mint events."""
        token = self.token(self.period(period).allowance)
        zero = "0x" + "00" * 32
        return [{"recipient": e.args["to"], "amount": e.args["value"], "tx_hash": e.tx_hash,
                 "block_number": e.block_number}
                for e in token.logs(["Transfer"], topics=[zero])]

    # -- offsets ------------------------------------------------------------------------------------------

    def register_offset_project(self, name: str, kind: OffsetKind | str | int, *, region: int = 0,
                                document: bytes | str = b"") -> OffsetProject:
        if not name or not name.strip():
            raise InvalidInput("an offset project needs a name")
        receipt = self._client.transact(self.contract.tx(
            "registerOffsetProject", name, int(OffsetKind.parse(kind)), _region(region),
            to_bytes32(document or name, "document")))
        return self.offset_project(self.contract.event_args(receipt, "OffsetProjectRegistered")["projectId"])

    def offset_project(self, project_id: int) -> OffsetProject:
        raw = self.contract.call("offsetProject", project_id)
        if not raw["exists"]:
            raise contract_error("AllowancesUnknownProject", projectId=project_id)
        return OffsetProject(project_id, raw["name"], OffsetKind(raw["kind"]), raw["region"], raw["documentHash"])

    def offset_projects(self) -> list[OffsetProject]:
        return [self.offset_project(i) for i in range(1, self.contract.call("offsetProjectCount") + 1)]

    def issue_offsets(self, project_id: int, vintage: int, grants: Mapping[str, int] | Iterable[tuple[str, int]],
                      *, batch_size: int = DEFAULT_BATCH, progress: Progress | None = None) -> OffsetIssuance:
        """Issue offset credits of a project vintage to active members (a regulator of the project's region)."""
        items = checked_grants(grants)
        chunks = [items[s:s + batch_size] for s in range(0, len(items), batch_size)]
        calls = [self.contract.tx("issueOffsets", project_id, _period_id(vintage), [pack_grant(r, a) for r, a in c])
                 for c in chunks]
        # The first batch creates the token: send it alone, so later batches are estimated against it.
        receipts = [self._client.transact(calls[0])]
        if len(calls) > 1:
            receipts += self._client.transact_many(calls[1:])
        if progress:
            progress(len(items))
        merged: dict[str, int] = {}
        for recipient, amount in items:
            merged[recipient] = merged.get(recipient, 0) + amount
        token = self.contract.event_args(receipts[0], "OffsetsIssued")["token"]
        return OffsetIssuance(project_id, vintage, token, merged, sum(merged.values()),
                              tuple(r.tx_hash for r in receipts))

    def offset_token(self, project_id: int, vintage: int) -> str | None:
        address = self.contract.call("offsetToken", project_id, _period_id(vintage))
        return None if int(address, 16) == 0 else address

    # -- tokens -------------------------------------------------------------------------------------------

    def balance(self, token: str, holder: str) -> int:
        return int(self.token(token).call("balanceOf", checked_address(holder, "holder")))

    def balances(self, token: str, holders: Sequence[str]) -> dict[str, int]:
        """Balances of many holders in one JSON-RPC batch."""
        checked = [checked_address(h, "holder") for h in holders]
        balances = self.token(token).call_many("balanceOf", [(h,) for h in checked])
        return {holder: int(balance) for holder, balance in zip(checked, balances)}

    def transfer(self, token: str, to: str, amount: int) -> str:
        """Transfer vintage tokens; refused (``errors.TokenTransferRefused``) unless both parties may trade."""
        receipt = self._client.transact(self.token(token).tx("transfer", checked_address(to, "recipient"),
                                                             checked_amount(amount, "amount")))
        return receipt.tx_hash

    def token_info(self, token: str) -> dict[str, Any]:
        raw = self.contract.call("tokenInfo", checked_address(token, "token"))
        return {"kind": TokenKind(raw["kind"]), "vintage": raw["vintage"], "project_id": raw["projectId"],
                "surrendered": raw["surrendered"], "issued": self.contract.call("issuedOf", token)}

    # -- compliance ---------------------------------------------------------------------------------------

    def surrender(self, period: int, items: Mapping[str, int] | Iterable[tuple[str, int]]) -> Surrender:
        """Surrender tokens (allowance vintages and offsets) for ``period``, in one transaction, all or none."""
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        if not 1 <= len(pairs) <= MAX_SURRENDER_TOKENS:
            raise InvalidInput(f"a surrender names 1 to {MAX_SURRENDER_TOKENS} tokens, got {len(pairs)}")
        tokens = [checked_address(t, f"token #{i}") for i, (t, _) in enumerate(pairs)]
        amounts = [checked_amount(a, f"amount #{i}") for i, (_, a) in enumerate(pairs)]
        receipt = self._client.transact(self.contract.tx("surrender", _period_id(period), tokens, amounts))
        events = [e.args for e in self.contract.events(receipt) if e.name == "Surrendered"]
        return Surrender(period, self._client.address, tuple(
            SurrenderItem(e["token"], TokenKind(e["kind"]), e["vintage"], e["amount"]) for e in events),
            receipt.tx_hash)

    def settle(self, period: int, enterprises: Sequence[str], *, batch_size: int = DEFAULT_BATCH,
               progress: Progress | None = None) -> list[Settlement]:
        """Record each enterprise's outcome after the deadline and apply the penalties (a regulator)."""
        checked = [checked_address(e, f"enterprise #{i}") for i, e in enumerate(enterprises)]
        if not checked:
            raise InvalidInput("settle needs at least one enterprise")
        if len(set(checked)) != len(checked):
            raise InvalidInput("an enterprise appears twice in the list")
        chunks = [checked[s:s + batch_size] for s in range(0, len(checked), batch_size)]
        calls = [self.contract.tx("settle", _period_id(period), c) for c in chunks]
        receipts = self._client.transact_many(calls, progress=per_item(chunks, progress))
        out = []
        for receipt in receipts:
            penalties = {a.subject: a for a in self._client.coin.applications_in(receipt)}
            for event in self.contract.events(receipt):
                if event.name == "ComplianceSettled":
                    a = event.args
                    out.append(Settlement(period, a["enterprise"], ComplianceState(a["state"]),
                                          a["verifiedEmissions"], a["surrendered"], a["shortfall"],
                                          penalties.get(a["enterprise"]), receipt.tx_hash))
        return out

    def compliance(self, period: int, enterprise: str) -> ComplianceStatus:
        """An enterprise's compliance for a period, in one call."""
        enterprise = checked_address(enterprise, "enterprise")
        return _status(period, enterprise, self.contract.call("complianceOf", _period_id(period), enterprise))

    def compliance_table(self, period: int, enterprises: Sequence[str]) -> list[ComplianceStatus]:
        """Many enterprises' compliance, in one call per 200."""
        checked = [checked_address(e, "enterprise") for e in enterprises]
        out = []
        for s in range(0, len(checked), 200):
            part = checked[s:s + 200]
            raw = self.contract.call("complianceOfMany", _period_id(period), part)
            out.extend(_status(period, e, r) for e, r in zip(part, raw))
        return out


def _period(raw: dict[str, Any]) -> Period:
    return Period(
        id=raw["id"], phase=PeriodPhase(raw["phase"]), allowance=raw["allowance"],
        opened_at=timestamp(raw["openedAt"]), trading_at=timestamp(raw["tradingAt"]),
        reconciliation_at=timestamp(raw["reconciliationAt"]), closes_at=timestamp(raw["closesAt"]),
        offset_share_bps=raw["offsetShareBps"], borrow_share_bps=raw["borrowShareBps"], previous=raw["previous"],
        next=raw["next"], cap=raw["cap"], allocated=raw["allocated"], regional_cap_total=raw["regionalCapTotal"],
        national_allocated=raw["nationalAllocated"], surrendered=raw["surrendered"])


def _status(period: int, enterprise: str, raw: dict[str, Any]) -> ComplianceStatus:
    return ComplianceStatus(
        period=period, enterprise=enterprise, state=ComplianceState(raw["state"]), phase=PeriodPhase(raw["phase"]),
        verified=raw["verified"], verified_emissions=raw["verifiedEmissions"], surrendered=raw["surrendered"],
        offsets=raw["offsets"], borrowed=raw["borrowed"], shortfall=raw["shortfall"],
        offset_limit=raw["offsetLimit"], borrow_limit=raw["borrowLimit"], settled=raw["settled"])
