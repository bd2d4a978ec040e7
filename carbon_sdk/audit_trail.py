"""A compliance period's audit trail: exported from the chain's events, checked against the chain in one call.

    trail = client.mrv.export_audit_trail(2025, json_path="trail-2025.json", csv_path="trail-2025.csv")
    trail.kinds()                              # {"allocation": 120, "report": 41, "audit": 40, ...}
    check = observer.mrv.verify_audit_trail("trail-2025.json")
    check.ok, check.problems                   # every record re-checked against its receipt and block

What a period's trail holds (DESIGN 2.2, supervision), one record per event log, oldest first:

=============  ===========================================================================================
kind           events
=============  ===========================================================================================
period         AllowanceManager PeriodOpened, RegionalCapSet, PeriodPhaseAdvanced
allocation     AllowanceManager Allocated, and each recipient's mint (the vintage's Transfer from 0x0)
transfer       the vintage's Transfers between members (trades and over-the-counter moves)
offsets        AllowanceManager OffsetsIssued of the period's vintage, and the mints of those offset tokens
report         EmissionsMRV ReportSubmitted (every version)
endorsement    EmissionsMRV ReportEndorsed
dispute        EmissionsMRV ReportDisputed
audit          EmissionsMRV ReportAudited
surrender      AllowanceManager Surrendered
settlement     AllowanceManager ComplianceSettled
reward         RewardPenaltyCoin RuleApplied of a reward rule, for this period's audit or settlement keys
penalty        RewardPenaltyCoin RuleApplied of a penalty rule, for the same keys
=============  ===========================================================================================

The coin's rules are matched by audit key: an audit applies its rules under
``keccak256(abi.encode(address(mrv), period, enterprise))`` and a settlement under
``keccak256(abi.encode(address(manager), period, enterprise))``, for every enterprise seen in the period.
Rules a regulator applied by hand under a key of its own are not part of a period's trail.

Every record carries where it happened (transaction, block, log index), when (the block's time, ISO 8601
UTC) and who signed the transaction, with the event's arguments in JSON-safe form (bytes as 0x-hex, integers
as integers, structs as objects). Only events, receipts and blocks are read, never state at old blocks, so a
node that prunes old state (the devnet keeps 256 blocks) serves the export and its verification.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from carbon_sdk.abi import ContractABI, Event
from carbon_sdk.errors import CarbonError, InvalidInput, RpcError, contract_error
from carbon_sdk.tx import Progress  # called with the number of records just completed

if TYPE_CHECKING:
    from carbon_sdk.client import BoundContract, CarbonClient

FORMAT = "carbon-audit-trail/1"
RPC_BATCH = 200  # requests per JSON-RPC batch
KEY_CHUNK = 100  # audit keys per eth_getLogs topic filter
ZERO_TOPIC = "0x" + "00" * 32
MANAGER, MRV, COIN, TOKEN = "AllowanceManager", "EmissionsMRV", "RewardPenaltyCoin", "VintageToken"
CSV_COLUMNS = ("kind", "period", "contract", "address", "event", "tx_hash", "block_number", "log_index",
               "block_time", "signer", "args")

# (contract, event) -> kind, for the events matched by the period's topic.
_PERIOD_EVENTS = {
    MANAGER: {"PeriodOpened": "period", "RegionalCapSet": "period", "PeriodPhaseAdvanced": "period",
              "Allocated": "allocation", "Surrendered": "surrender", "ComplianceSettled": "settlement"},
    MRV: {"ReportSubmitted": "report", "ReportEndorsed": "endorsement", "ReportDisputed": "dispute",
          "ReportAudited": "audit"},
}


# ---------------------------------------------------------------- records

@dataclass(frozen=True)
class TrailRecord:
    """One event of a period's trail, where and when it happened, and who signed its transaction."""

    kind: str
    period: int
    contract: str
    address: str
    event: str
    tx_hash: str
    block_number: int
    log_index: int
    block_time: str  # ISO 8601, UTC ("2025-03-01T09:30:00Z")
    signer: str  # the transaction's sender
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        """What identifies a record on chain: its transaction and log index."""
        return (self.tx_hash.lower(), self.log_index)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.block_time.replace("Z", "+00:00"))

    def describe(self) -> str:
        return f"{self.kind} {self.contract}.{self.event} (tx {self.tx_hash}, log {self.log_index})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrailRecord":
        try:
            record = cls(kind=str(data["kind"]), period=int(data["period"]), contract=str(data["contract"]),
                         address=str(data["address"]), event=str(data["event"]), tx_hash=str(data["tx_hash"]),
                         block_number=int(data["block_number"]), log_index=int(data["log_index"]),
                         block_time=str(data["block_time"]), signer=str(data["signer"]), args=data["args"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not an audit-trail record ({exc!r}): {data!r}") from None
        if not isinstance(record.args, dict):
            raise InvalidInput(f"the arguments of {record.describe()} must be an object")
        return record


@dataclass
class AuditTrail:
    """A period's audit trail as exported: the records and where they come from."""

    period: int
    chain_id: int
    genesis_hash: str
    contracts: dict[str, str]  # name -> address of the deployment's contracts the trail reads
    from_block: int
    to_block: int  # the chain's head when exported: the trail is complete up to here
    exported_at: str  # ISO 8601, UTC
    records: list[TrailRecord] = field(default_factory=list)

    def kinds(self) -> dict[str, int]:
        """How many records of each kind."""
        out: dict[str, int] = {}
        for record in self.records:
            out[record.kind] = out.get(record.kind, 0) + 1
        return out

    def of_kind(self, kind: str) -> list[TrailRecord]:
        return [r for r in self.records if r.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "period": self.period, "chain_id": self.chain_id,
                "genesis_hash": self.genesis_hash, "contracts": dict(self.contracts),
                "from_block": self.from_block, "to_block": self.to_block, "exported_at": self.exported_at,
                "records": [r.to_dict() for r in self.records]}

    def to_json(self, path: str | Path) -> Path:
        """Write the trail as JSON (what :meth:`load` and :func:`verify_audit_trail` read)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per record; the event's arguments go into one JSON column (``args``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for r in self.records:
                writer.writerow([r.kind, r.period, r.contract, r.address, r.event, r.tx_hash, r.block_number,
                                 r.log_index, r.block_time, r.signer,
                                 json.dumps(r.args, separators=(",", ":"))])
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AuditTrail":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidInput(f"not an audit trail (expected format {FORMAT!r})")
        try:
            return cls(period=int(data["period"]), chain_id=int(data["chain_id"]),
                       genesis_hash=str(data["genesis_hash"]), contracts=dict(data["contracts"]),
                       from_block=int(data["from_block"]), to_block=int(data["to_block"]),
                       exported_at=str(data["exported_at"]),
                       records=[TrailRecord.from_dict(r) for r in data["records"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not an audit trail: {exc!r}") from None

    @classmethod
    def load(cls, path: str | Path) -> "AuditTrail":
        """Read a trail written by :meth:`to_json`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InvalidInput(f"audit trail {path} not found") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)


@dataclass
class TrailCheck:
    """The outcome of :func:`verify_audit_trail`."""

    ok: bool
    checked: int  # records checked against their receipts and blocks
    problems: list[str] = field(default_factory=list)
    newer: int = 0  # records of the period on chain after the file's last block (not a problem)

    def __bool__(self) -> bool:
        return self.ok


# ---------------------------------------------------------------- helpers

def json_safe(value: Any) -> Any:
    """An event argument as JSON: bytes as 0x-hex, integers (and enums) as integers, structs as objects."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    raise InvalidInput(f"cannot represent {value!r} ({type(value).__name__}) in an audit trail")


def iso_time(seconds: int) -> str:
    """Unix seconds -> ISO 8601 in UTC with a Z suffix."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def audit_key(contract: str, period: int, enterprise: str) -> bytes:
    """``keccak256(abi.encode(contract, period, enterprise))``: the coin's key for an audit or settlement."""
    return keccak(encode(["address", "uint16", "address"], [contract, period, enterprise]))


def _topic(value: int) -> str:
    """An indexed unsigned integer as a log topic."""
    return "0x" + value.to_bytes(32, "big").hex()


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _batch(client: "CarbonClient", calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """One JSON-RPC batch per RPC_BATCH requests; results in order, errors raised."""
    out: list[Any] = []
    for part in _chunks(calls, RPC_BATCH):
        for result in client.rpc.batch(list(part)):
            if isinstance(result, Exception):
                raise result
            out.append(result)
    return out


def _kind_of_rule(event: Event, penalties: dict[int, bool]) -> str:
    reason = int(event.args["reason"])
    if reason in penalties:
        return "penalty" if penalties[reason] else "reward"
    outcome = event.args["outcome"]
    return "penalty" if outcome["burned"] > 0 or outcome["debtChange"] > 0 else "reward"


# ---------------------------------------------------------------- collecting the events

@dataclass(frozen=True)
class _Found:
    kind: str
    contract: str
    event: Event

    @property
    def key(self) -> tuple[str, int]:
        return (self.event.tx_hash.lower(), self.event.log_index)


def collect_events(client: "CarbonClient", period: int,
                   to_block: int | None = None) -> tuple[list[_Found], int]:
    """Every event of ``period``'s trail up to ``to_block`` (the head by default), oldest first, with the
    block the period was opened in."""
    manager, mrv, coin = client.contract(MANAGER), client.contract(MRV), client.contract(COIN)
    end: int | str = "latest" if to_block is None else to_block
    period_topic = _topic(period)
    opened = manager.logs(["PeriodOpened"], to_block=end, topics=[period_topic])
    if not opened:
        raise contract_error("AllowancesUnknownPeriod", period=period)
    start = opened[0].block_number
    found: list[_Found] = []

    for contract in (manager, mrv):
        kinds = _PERIOD_EVENTS[contract.name]
        for event in contract.logs(list(kinds), from_block=start, to_block=end, topics=[period_topic]):
            found.append(_Found(kinds[event.name], contract.name, event))

    # The vintage's mints (allocations) and moves between members; its burns are surrenders, recorded above.
    allowance = opened[0].args["allowance"]
    for event in _token(client, allowance).logs(["Transfer"], from_block=start, to_block=end):
        if int(event.args["from"], 16) == 0:
            found.append(_Found("allocation", TOKEN, event))
        elif int(event.args["to"], 16) != 0:
            found.append(_Found("transfer", TOKEN, event))

    # Offsets of the period's vintage, and the mints of their tokens.
    issued = manager.logs(["OffsetsIssued"], from_block=start, to_block=end, topics=[None, period_topic])
    found.extend(_Found("offsets", MANAGER, e) for e in issued)
    for token in sorted({e.args["token"] for e in issued}):
        mints = _token(client, token).logs(["Transfer"], from_block=start, to_block=end, topics=[ZERO_TOPIC])
        found.extend(_Found("offsets", TOKEN, e) for e in mints)

    # The coin's rules applied for this period's audits and settlements.
    enterprises: set[str] = set()
    for item in found:
        args = item.event.args
        if item.event.name in ("ReportSubmitted", "Surrendered", "ComplianceSettled"):
            enterprises.add(args["enterprise"])
        elif item.kind == "allocation" and item.contract == TOKEN:
            enterprises.add(args["to"])
    keys = sorted("0x" + audit_key(module.address, period, enterprise).hex()
                  for enterprise in enterprises for module in (mrv, manager))
    if keys:
        penalties = {reason: spec.penalty for reason, spec in client.coin.rules().items()}
        for part in _chunks(keys, KEY_CHUNK):
            applied = coin.logs(["RuleApplied"], from_block=start, to_block=end,
                                topics=[None, None, list(part)])
            found.extend(_Found(_kind_of_rule(e, penalties), COIN, e) for e in applied)

    unique = {f.key: f for f in found}
    ordered = sorted(unique.values(), key=lambda f: (f.event.block_number, f.event.log_index))
    return ordered, start


def _token(client: "CarbonClient", address: str) -> "BoundContract":
    return client.bind(TOKEN, address, client.manifest.abi(TOKEN))


# ---------------------------------------------------------------- export

def export_audit_trail(client: "CarbonClient", period: int, *,
                       progress: Progress | None = None) -> AuditTrail:
    """Build ``period``'s audit trail from the chain (events, transactions and blocks, batched)."""
    head = client.block_number()
    found, start = collect_events(client, period, to_block=head)
    signers: dict[str, str] = {}
    times: dict[int, int] = {}
    records: list[TrailRecord] = []
    for part in _chunks(found, RPC_BATCH):
        hashes = sorted({f.event.tx_hash for f in part if f.event.tx_hash.lower() not in signers})
        blocks = sorted({f.event.block_number for f in part if f.event.block_number not in times})
        results = _batch(client, [("eth_getTransactionByHash", [h]) for h in hashes]
                         + [("eth_getBlockByNumber", [hex(b), False]) for b in blocks])
        for tx_hash, tx in zip(hashes, results):
            if tx is None:
                raise RpcError("eth_getTransactionByHash", -32000, f"the node has no transaction {tx_hash}")
            signers[tx_hash.lower()] = to_checksum_address(tx["from"])
        for number, block in zip(blocks, results[len(hashes):]):
            if block is None:
                raise RpcError("eth_getBlockByNumber", -32000, f"the node does not know block {number}")
            times[number] = int(block["timestamp"], 16)
        for f in part:
            e = f.event
            records.append(TrailRecord(
                kind=f.kind, period=period, contract=f.contract, address=e.address, event=e.name,
                tx_hash=e.tx_hash, block_number=e.block_number, log_index=e.log_index,
                block_time=iso_time(times[e.block_number]), signer=signers[e.tx_hash.lower()],
                args=json_safe(e.args)))
        if progress is not None:
            progress(len(part))
    genesis = client.manifest.genesis_hash
    return AuditTrail(
        period=period, chain_id=client.chain_id, genesis_hash=genesis,
        contracts={name: client.contract(name).address for name in (MANAGER, MRV, COIN)},
        from_block=start, to_block=head, exported_at=iso_time(int(datetime.now(timezone.utc).timestamp())),
        records=records)


# ---------------------------------------------------------------- verification

def verify_audit_trail(client: "CarbonClient", trail: AuditTrail | str | Path, *,
                       progress: Progress | None = None) -> TrailCheck:
    """Re-check a trail (or a trail file) against the chain.

    For every record: its transaction's receipt exists with status 1 in the same block, the block has the
    same time, the transaction has the same signer, and the log at the record's index is the same contract's
    same event with the same arguments. Then the period's trail is exported again up to the file's last block
    and compared by (transaction, log index): records missing from the file, and records in the file that are
    not part of the period's trail, are problems. Every problem is listed (a file that is not an audit trail
    at all raises ``InvalidInput``).
    """
    if not isinstance(trail, AuditTrail):
        trail = AuditTrail.load(trail)
    problems: list[str] = []

    if trail.chain_id != client.chain_id:
        problems.append(f"the trail is from chain {trail.chain_id}, the client's deployment is on chain "
                        f"{client.chain_id}")
    if client.manifest.genesis_hash and trail.genesis_hash != client.manifest.genesis_hash:
        problems.append(f"the trail is from a chain with genesis {trail.genesis_hash}, not "
                        f"{client.manifest.genesis_hash}")
    for name in (MANAGER, MRV, COIN):
        expected = client.contract(name).address
        if trail.contracts.get(name, "").lower() != expected.lower():
            problems.append(f"the trail names {name} at {trail.contracts.get(name)}, the deployment's is at "
                            f"{expected}")

    seen: dict[tuple[str, int], int] = {}
    for index, record in enumerate(trail.records):
        if record.key in seen:
            problems.append(f"record #{index} repeats record #{seen[record.key]}: {record.describe()}")
        seen.setdefault(record.key, index)
        if record.period != trail.period:
            problems.append(f"record #{index} ({record.describe()}) is labelled period {record.period}, "
                            f"the trail's is {trail.period}")
        if record.block_number > trail.to_block:
            problems.append(f"record #{index} ({record.describe()}) is in block {record.block_number}, after "
                            f"the trail's last block {trail.to_block}")

    abis = {name: client.contract(name).abi for name in (MANAGER, MRV, COIN)}
    token_abi = ContractABI(TOKEN, client.manifest.abi(TOKEN))
    checked = 0
    receipts: dict[str, Any] = {}
    blocks: dict[int, Any] = {}
    for part_start in range(0, len(trail.records), RPC_BATCH):
        part = trail.records[part_start:part_start + RPC_BATCH]
        hashes = sorted({r.tx_hash.lower() for r in part} - receipts.keys())
        numbers = sorted({r.block_number for r in part} - blocks.keys())
        results = client.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes]
                                   + [("eth_getBlockByNumber", [hex(b), False]) for b in numbers])
        for tx_hash, result in zip(hashes, results):
            receipts[tx_hash] = result
        for number, result in zip(numbers, results[len(hashes):]):
            blocks[number] = result
        for offset, record in enumerate(part):
            index = part_start + offset
            abi = token_abi if record.contract == TOKEN else abis.get(record.contract)
            problems.extend(f"record #{index} ({record.describe()}): {p}" for p in _check_record(
                record, receipts[record.tx_hash.lower()], blocks[record.block_number], abi))
            checked += 1
        if progress is not None:
            progress(len(part))

    # Completeness: the period's trail on chain, up to the file's last block, against the file.
    newer = 0
    try:
        on_chain, _ = collect_events(client, trail.period)
    except CarbonError as exc:
        problems.append(f"cannot export period {trail.period} again from the chain: {exc}")
    else:
        in_file = {r.key: r for r in trail.records}
        chain_keys = set()
        for f in on_chain:
            if f.event.block_number > trail.to_block:
                newer += 1
                continue
            chain_keys.add(f.key)
            record = in_file.get(f.key)
            if record is None:
                problems.append(f"missing from the file: {f.kind} {f.contract}.{f.event.name} (tx "
                                f"{f.event.tx_hash}, log {f.event.log_index}, block {f.event.block_number})")
            elif record.kind != f.kind:
                problems.append(f"{record.describe()} is a {f.kind} record on chain")
        for key, record in in_file.items():
            if key not in chain_keys and record.block_number <= trail.to_block:
                problems.append(f"not part of period {trail.period}'s trail on chain: {record.describe()}")
    return TrailCheck(ok=not problems, checked=checked, problems=problems, newer=newer)


def _check_record(record: TrailRecord, receipt: Any, block: Any, abi: Any) -> list[str]:
    if isinstance(receipt, Exception) or receipt is None:
        return [f"the chain has no receipt for transaction {record.tx_hash}"
                + (f" ({receipt})" if isinstance(receipt, Exception) else "")]
    problems = []
    if int(receipt.get("status", "0x0"), 16) != 1:
        problems.append("the transaction failed on chain (receipt status 0)")
    mined_in = int(receipt["blockNumber"], 16)
    if mined_in != record.block_number:
        problems.append(f"block {record.block_number} in the file, mined in block {mined_in}")
    if isinstance(block, dict) and block:
        block_time = iso_time(int(block["timestamp"], 16))
        if mined_in == record.block_number and block_time != record.block_time:
            problems.append(f"time {record.block_time} in the file, the block's is {block_time}")
    else:
        problems.append(f"the chain has no block {record.block_number}")
    signer = to_checksum_address(receipt["from"])
    if record.signer.lower() != signer.lower():
        problems.append(f"signer {record.signer} in the file, the transaction was signed by {signer}")
    log = next((e for e in receipt.get("logs", []) if int(e["logIndex"], 16) == record.log_index), None)
    if log is None:
        problems.append(f"the transaction has no log {record.log_index}")
        return problems
    if log["address"].lower() != record.address.lower():
        problems.append(f"log {record.log_index} was emitted by {to_checksum_address(log['address'])}, "
                        f"the file says {record.address}")
    if abi is None:
        problems.append(f"unknown contract {record.contract!r}")
        return problems
    event = abi.decode_log(log)
    if event is None:
        problems.append(f"log {record.log_index} is not a {record.contract} event")
        return problems
    if event.name != record.event:
        problems.append(f"log {record.log_index} is {event.name} on chain, {record.event} in the file")
        return problems
    args = json_safe(event.args)
    for name in sorted(set(args) | set(record.args)):
        if args.get(name, "<absent>") != record.args.get(name, "<absent>"):
            problems.append(f"argument {name!r} is {record.args.get(name, '<absent>')!r} in the file, "
                            f"{args.get(name, '<absent>')!r} on chain")
    return problems
