"""Monitoring, reporting and verification (DESIGN 2.2): reports, endorsements, disputes, audits, traceability.

    readings = load_readings_csv("plant-2025.csv")
    report = enterprise.mrv.submit_report_from_readings(2025, readings, report_document=b"%PDF...")
    verifier.mrv.endorse(2025, enterprise_address, report.version, verified_quantity=tonnes(10_210),
                         evidence=b"site visit 2026-02-03")
    audit = regulator.mrv.audit(2025, enterprise_address, evidence=b"desk review 2026-03-01")
    audit.applications                        # the coin rules the audit applied

    proof = enterprise.mrv.prove_reading(readings, readings[17])
    client.mrv.verify_reading(2025, enterprise_address, readings[17], proof)     # against the root on chain

    regulator.mrv.export_audit_trail(2025, json_path="trail-2025.json", csv_path="trail-2025.csv")
    observer.mrv.verify_audit_trail("trail-2025.json").ok                       # re-checked against the chain

Quantities are integer grams (6 decimals of a tonne; carbon_sdk.units).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import Any, TYPE_CHECKING, Mapping, Sequence

from carbon_sdk.audit_trail import AuditTrail, TrailCheck, export_audit_trail, verify_audit_trail
from carbon_sdk.coin import RuleApplication, to_bytes32
from carbon_sdk.errors import InvalidInput
from carbon_sdk.gwp import GwpTable
from carbon_sdk.readings import (
    Reading,
    ReadingsCommitment,
    ReadingsDiff,
    diff_readings,
    verify_reading,
)
from carbon_sdk.registry import checked_address
from carbon_sdk.tx import Progress
from carbon_sdk.types import timestamp
from carbon_sdk.units import checked_amount

if TYPE_CHECKING:
    from carbon_sdk.client import BoundContract, CarbonClient

CONTRACT = "EmissionsMRV"
DEFAULT_GWP_VERSION = 1


class ReportStatus(IntEnum):
    NONE = 0
    SUBMITTED = 1
    ENDORSED = 2
    DISPUTED = 3
    AUDITED = 4


@dataclass(frozen=True)
class Report:
    """One version of an enterprise's report for a period."""

    period: int
    enterprise: str
    version: int
    status: ReportStatus
    gwp_version: int
    co2e: int
    submitted_at: datetime
    reviewed_at: datetime | None
    verifier: str | None
    verified_quantity: int
    readings_root: bytes
    report_hash: bytes
    evidence_hash: bytes


@dataclass(frozen=True)
class Audit:
    period: int
    enterprise: str
    version: int
    accurate: bool
    with_finding: bool
    final_quantity: int
    audited_at: datetime
    auditor: str
    evidence_hash: bytes
    applications: tuple[RuleApplication, ...] = ()  # coin rules applied by this audit (when just made)


class MrvModule:
    """Reports, endorsements, disputes and audits on the EmissionsMRV contract, and readings traceability."""

    def __init__(self, client: "CarbonClient"):
        self._client = client

    @property
    def contract(self) -> "BoundContract":
        return self._client.contract(CONTRACT)

    # -- GWP ----------------------------------------------------------------------------------------------

    def gwp_table(self, version: int = DEFAULT_GWP_VERSION) -> GwpTable:
        """A GWP table as registered on chain."""
        raw = self.contract.call("gwpTable", version)
        if not raw["exists"]:
            raise InvalidInput(f"GWP table version {version} is not registered "
                               f"(registered: {self.contract.call('gwpVersions')})")
        return GwpTable(name=raw["name"], gases=tuple(raw["gases"]),
                        gwp=tuple(Decimal(v) / 1000 for v in raw["gwpMilli"]), source=raw["sourceHash"].hex())

    def register_gwp_table(self, version: int, table: GwpTable) -> GwpTable:
        """Register a new GWP table version (national regulator)."""
        self._client.transact(self.contract.tx("registerGwpTable", version, table.name, list(table.gases),
                                               table.gwp_milli, table.source_hash))
        return self.gwp_table(version)

    def co2e(self, quantities: Mapping[str, int], gwp_version: int = DEFAULT_GWP_VERSION) -> int:
        """CO2e grams of per-gas grams, computed by the contract (the figure a report will record)."""
        vector = self._vector(quantities, gwp_version)
        return int(self.contract.call("co2eOf", gwp_version, vector))

    def _vector(self, quantities: Mapping[str, int], gwp_version: int) -> list[int]:
        table = self.gwp_table(gwp_version)
        try:
            vector = table.vector(dict(quantities))
        except KeyError as exc:
            raise InvalidInput(str(exc.args[0])) from None
        return [checked_amount(q, f"quantity of {table.gases[i]}", allow_zero=True) for i, q in enumerate(vector)]

    # -- reporting ----------------------------------------------------------------------------------------

    def submit_report(self, period: int, quantities: Mapping[str, int], *, readings_root: bytes | str,
                      report_document: bytes | str, gwp_version: int = DEFAULT_GWP_VERSION) -> Report:
        """Submit (or, after a dispute, re-submit) the caller's report: per-gas grams, the readings' Merkle
        root and the report document (hashed unless already a 32-byte hash)."""
        vector = self._vector(quantities, gwp_version)
        root = _root(readings_root)
        receipt = self._client.transact(self.contract.tx(
            "submitReport", period, gwp_version, vector, root, to_bytes32(report_document, "report document")))
        args = self.contract.event_args(receipt, "ReportSubmitted")
        return self.report(period, args["enterprise"], args["version"])

    def submit_report_from_readings(self, period: int, readings: Sequence[Reading], *,
                                    report_document: bytes | str,
                                    gwp_version: int = DEFAULT_GWP_VERSION) -> Report:
        """Report the per-gas totals of monitoring readings, committing their Merkle root."""
        if not readings:
            raise InvalidInput("no readings given")
        commitment = ReadingsCommitment.of(readings)
        return self.submit_report(period, commitment.total_grams_by_gas, readings_root=commitment.root,
                                  report_document=report_document, gwp_version=gwp_version)

    def endorse(self, period: int, enterprise: str, version: int, *, verified_quantity: int,
                evidence: bytes | str) -> Report:
        """Endorse a pending report with the verifier's own quantity (an active VERIFIER of another org)."""
        enterprise = checked_address(enterprise, "enterprise")
        self._client.transact(self.contract.tx(
            "endorse", period, enterprise, version, checked_amount(verified_quantity, "verified quantity",
                                                                   allow_zero=True, bits=128),
            to_bytes32(evidence, "evidence")))
        return self.report(period, enterprise, version)

    def dispute(self, period: int, enterprise: str, version: int, *, evidence: bytes | str) -> Report:
        enterprise = checked_address(enterprise, "enterprise")
        self._client.transact(self.contract.tx("dispute", period, enterprise, version,
                                               to_bytes32(evidence, "evidence")))
        return self.report(period, enterprise, version)

    def audit(self, period: int, enterprise: str, *, evidence: bytes | str, finding: int | None = None) -> Audit:
        """Audit the endorsed report (a regulator). ``finding`` replaces the verifier's quantity with the
        regulator's own; the outcome applies the coin's rules once."""
        enterprise = checked_address(enterprise, "enterprise")
        with_finding = finding is not None
        quantity = checked_amount(finding, "finding", allow_zero=True, bits=128) if with_finding else 0
        receipt = self._client.transact(self.contract.tx("audit", period, enterprise, with_finding, quantity,
                                                         to_bytes32(evidence, "evidence")))
        record = self.contract.event_args(receipt, "ReportAudited")["record"]  # the stored record, as emitted
        return _audit(period, enterprise, record, tuple(self._client.coin.applications_in(receipt)))

    # -- reading back -------------------------------------------------------------------------------------

    def report_count(self, period: int, enterprise: str) -> int:
        return int(self.contract.call("reportCount", period, checked_address(enterprise, "enterprise")))

    def report(self, period: int, enterprise: str, version: int | None = None) -> Report:
        """A report version (the latest by default); ``errors``-free: raises InvalidInput if there is none."""
        enterprise = checked_address(enterprise, "enterprise")
        latest = self.report_count(period, enterprise)
        version = latest if version is None else version
        if not 1 <= version <= latest:
            raise InvalidInput(f"{enterprise} has no report version {version} for period {period} "
                               f"({latest} submitted)")
        raw = self.contract.call("getReport", period, enterprise, version)
        return Report(
            period=period, enterprise=enterprise, version=version, status=ReportStatus(raw["status"]),
            gwp_version=raw["gwpVersion"], co2e=raw["co2e"], submitted_at=timestamp(raw["submittedAt"]),
            reviewed_at=timestamp(raw["reviewedAt"]) if raw["reviewedAt"] else None,
            verifier=raw["verifier"] if int(raw["verifier"], 16) else None,
            verified_quantity=raw["verifiedQuantity"], readings_root=raw["readingsRoot"],
            report_hash=raw["reportHash"], evidence_hash=raw["evidenceHash"])

    def reports(self, period: int, enterprise: str) -> list[Report]:
        """Every version, oldest first (all are kept)."""
        return [self.report(period, enterprise, v) for v in range(1, self.report_count(period, enterprise) + 1)]

    def audit_record(self, period: int, enterprise: str) -> Audit | None:
        enterprise = checked_address(enterprise, "enterprise")
        raw = self.contract.call("getAudit", period, enterprise)
        return _audit(period, enterprise, raw) if raw["done"] else None

    def verified_emissions(self, period: int, enterprise: str) -> int | None:
        audited, quantity = self.contract.call("verifiedEmissions", period, checked_address(enterprise))
        return quantity if audited else None

    # -- traceability -------------------------------------------------------------------------------------

    @staticmethod
    def commit_readings(readings: Sequence[Reading]) -> ReadingsCommitment:
        return ReadingsCommitment.of(readings)

    @staticmethod
    def prove_reading(readings: Sequence[Reading] | ReadingsCommitment, reading: Reading) -> list[str]:
        commitment = readings if isinstance(readings, ReadingsCommitment) else ReadingsCommitment.of(readings)
        return commitment.prove(reading)

    def verify_reading(self, period: int, enterprise: str, reading: Reading, proof: Sequence[str],
                       version: int | None = None) -> bool:
        """Whether ``reading`` is in the readings root of the report on chain (the latest version by default)."""
        report = self.report(period, enterprise, version)
        return verify_reading("0x" + report.readings_root.hex(), reading, proof)

    @staticmethod
    def diff_readings(old: Sequence[Reading], new: Sequence[Reading]) -> ReadingsDiff:
        """The readings where two versions of a dataset differ (added, removed, changed)."""
        return diff_readings(old, new)

    # -- supervision: a period's audit trail (carbon_sdk.audit_trail) -------------------------------------

    def audit_trail(self, period: int, progress: Progress | None = None) -> AuditTrail:
        """``period``'s audit trail from the chain: allocations, reports, endorsements, disputes, audits,
        surrenders, settlements, rewards and penalties, each with its signer, block and time.
        ``progress`` is called with the number of records just completed."""
        return export_audit_trail(self._client, period, progress=progress)

    def export_audit_trail(self, period: int, json_path: str | Path | None = None,
                           csv_path: str | Path | None = None,
                           progress: Progress | None = None) -> AuditTrail:
        """The period's audit trail, written as JSON (for :meth:`verify_audit_trail`) and/or CSV."""
        trail = self.audit_trail(period, progress=progress)
        if json_path is not None:
            trail.to_json(json_path)
        if csv_path is not None:
            trail.to_csv(csv_path)
        return trail

    def verify_audit_trail(self, trail: AuditTrail | str | Path,
                           progress: Progress | None = None) -> TrailCheck:
        """Re-check an exported trail (or its JSON file) against the chain; see
        :func:`carbon_sdk.audit_trail.verify_audit_trail`."""
        return verify_audit_trail(self._client, trail, progress=progress)


def _audit(period: int, enterprise: str, raw: dict[str, Any], applications: tuple[RuleApplication, ...] = ()) -> Audit:
    return Audit(period=period, enterprise=enterprise, version=raw["version"], accurate=raw["accurate"],
                 with_finding=raw["withFinding"], final_quantity=raw["finalQuantity"],
                 audited_at=timestamp(raw["auditedAt"]), auditor=raw["auditor"], evidence_hash=raw["evidenceHash"],
                 applications=applications)


def _root(value: bytes | str) -> bytes:
    """A Merkle root given as 32 bytes or 0x-hex (never hashed: a root is already a hash); not zero."""
    root = None
    if isinstance(value, bytes) and len(value) == 32:
        root = value
    elif isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        try:
            root = bytes.fromhex(value[2:])
        except ValueError:
            pass
    if root == bytes(32):
        raise InvalidInput("the readings root must not be the zero hash")
    if root is not None:
        return root
    raise InvalidInput(f"readings root {value!r} must be a 32-byte Merkle root (0x-hex or bytes)")
