"""A period's audit trail: exported after a small but complete period, written as JSON and CSV, verified
against the chain by a read-only observer, and tampered copies caught."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Any

import pytest
from mrv_helpers import submit

from carbon_sdk import CarbonClient, errors
from carbon_sdk.allowances import ComplianceState, PeriodPhase
from carbon_sdk.audit_trail import AuditTrail, TrailCheck, iso_time
from carbon_sdk.coin import Reason
from carbon_sdk.units import tonnes


@dataclass
class FullPeriod:
    period: int
    other_period: int
    regulator: CarbonClient
    e1: CarbonClient  # disputed once, re-submitted, compliant with allowances and offsets
    e2: CarbonClient  # accurate, short at the deadline: penalised at settlement
    verifier: CarbonClient
    allowance: str
    offset_token: str
    tx: dict[str, Any]
    reports: dict[str, Any]
    trail: AuditTrail
    progress: list[int]
    json_path: Any
    csv_path: Any
    silent: Any = None  # an enterprise of the period that never reported and is not yet settled


@pytest.fixture(scope="module")
def full(market, tmp_path_factory) -> FullPeriod:
    regulator = market.regulator
    e1, e2, verifier = market.enterprise(), market.enterprise(), market.verifier()
    silent = market.enterprise()  # enrolled before the deadline, never reports, settled only in a test
    opened = market.open_period(tonnes(10_000), regional_caps={11: tonnes(1_000)})
    period, allowance = opened.id, opened.allowance
    tx: dict[str, Any] = {}
    tx["allocation"] = regulator.allowances.allocate(period, {e1.address: tonnes(600),
                                                              e2.address: tonnes(400)})
    project = regulator.allowances.register_offset_project("Hill forest", "forestry_sink")
    issued = regulator.allowances.issue_offsets(project.project_id, period, {e1.address: tonnes(20)})
    market.to_phase(period, PeriodPhase.TRADING)
    tx["transfer"] = e1.allowances.transfer(allowance, e2.address, tonnes(50))
    market.to_phase(period, PeriodPhase.RECONCILIATION)

    def later() -> None:  # each step an hour after the last, so that every step has its own time
        market.next_block_at(market.now() + 3_600)

    later()
    reports = {"e1 v1": submit(e1, period, tonnes(500))}
    later()
    reports["e1 v1 disputed"] = verifier.mrv.dispute(period, e1.address, 1, evidence="meter drift")
    later()
    reports["e1 v2"] = submit(e1, period, tonnes(520))
    later()
    reports["e1 v2 endorsed"] = verifier.mrv.endorse(period, e1.address, 2, verified_quantity=tonnes(520),
                                                     evidence="site visit")
    reports["e2 v1"] = submit(e2, period, tonnes(480))
    verifier.mrv.endorse(period, e2.address, 1, verified_quantity=tonnes(480), evidence="site visit")
    later()
    reports["e1 audit"] = regulator.mrv.audit(period, e1.address, evidence="desk review")
    reports["e2 audit"] = regulator.mrv.audit(period, e2.address, evidence="desk review")
    tx["e1 surrender"] = e1.allowances.surrender(period, [(allowance, tonnes(500)),
                                                          (issued.token, tonnes(20))])
    tx["e2 surrender"] = e2.allowances.surrender(period, [(allowance, tonnes(400))])

    # Noise that is not this period's: another period's report, and a rule applied by hand.
    other = market.open_period(tonnes(1_000)).id
    market.to_phase(other, PeriodPhase.RECONCILIATION)
    submit(e1, other, tonnes(5))
    regulator.coin.apply_rule(e1.address, Reason.ACCURATE_REPORT, evidence="pilot", audit_key="pilot scheme")

    market.to_phase(period, PeriodPhase.CLOSED)
    tx["settlement"] = regulator.allowances.settle(period, [e1.address, e2.address])

    folder = tmp_path_factory.mktemp("trail")
    progress: list[int] = []
    trail = regulator.mrv.export_audit_trail(period, json_path=folder / "trail.json",
                                             csv_path=folder / "trail.csv", progress=progress.append)
    full = FullPeriod(period, other, regulator, e1, e2, verifier, allowance, issued.token, tx, reports, trail,
                      progress, folder / "trail.json", folder / "trail.csv")
    full.silent = silent
    return full


def observer(market) -> CarbonClient:
    """A read-only client (no key), as a bank or a public body would use."""
    return CarbonClient(market.url, market.manifest)


def test_the_trail_holds_every_kind_of_step_of_the_period(full):
    trail = full.trail
    assert trail.period == full.period and all(r.period == full.period for r in trail.records)
    assert trail.kinds() == {"period": 5, "allocation": 3, "offsets": 2, "transfer": 1, "report": 3,
                             "dispute": 1, "endorsement": 2, "audit": 2, "surrender": 3, "settlement": 2,
                             "reward": 2, "penalty": 1}
    assert [(r.block_number, r.log_index) for r in trail.records] == sorted(
        (r.block_number, r.log_index) for r in trail.records)
    assert sum(full.progress) == len(trail.records)
    events = {(r.kind, r.contract, r.event) for r in trail.records}
    assert {("allocation", "AllowanceManager", "Allocated"), ("allocation", "VintageToken", "Transfer"),
            ("offsets", "AllowanceManager", "OffsetsIssued"), ("offsets", "VintageToken", "Transfer"),
            ("period", "AllowanceManager", "PeriodOpened"), ("period", "AllowanceManager", "RegionalCapSet"),
            ("period", "AllowanceManager", "PeriodPhaseAdvanced"),
            ("reward", "RewardPenaltyCoin", "RuleApplied"), ("penalty", "RewardPenaltyCoin", "RuleApplied"),
            ("settlement", "AllowanceManager", "ComplianceSettled")} <= events
    # Nothing of the other period, nor the rule applied by hand under a key of its own.
    assert not any(r.args.get("period") == full.other_period for r in trail.records)
    assert [r.args["reason"] for r in trail.of_kind("reward")] == [Reason.ACCURATE_REPORT] * 2


def test_each_record_names_its_signer(full):
    by_kind: dict[str, set[str]] = {}
    for record in full.trail.records:
        by_kind.setdefault(record.kind, set()).add(record.signer)
    regulator, e1, e2, verifier = (c.address for c in (full.regulator, full.e1, full.e2, full.verifier))
    assert by_kind == {
        "period": {regulator}, "allocation": {regulator}, "offsets": {regulator}, "transfer": {e1},
        "report": {e1, e2}, "dispute": {verifier}, "endorsement": {verifier}, "audit": {regulator},
        "reward": {regulator}, "surrender": {e1, e2}, "settlement": {regulator}, "penalty": {regulator}}
    for record in full.trail.of_kind("report"):
        assert record.signer == record.args["enterprise"]


def test_each_record_has_its_block_and_time_and_arguments(full):
    trail, tx = full.trail, full.tx
    v1 = next(r for r in trail.of_kind("report") if r.args["version"] == 1 and r.signer == full.e1.address)
    assert v1.block_time == iso_time(int(full.reports["e1 v1"].submitted_at.timestamp()))
    assert v1.block_time.endswith("Z") and v1.args["co2e"] == tonnes(500)
    assert v1.args["readingsRoot"] == "0x" + full.reports["e1 v1"].readings_root.hex()
    [dispute] = trail.of_kind("dispute")
    assert dispute.block_time == iso_time(int(full.reports["e1 v1 disputed"].reviewed_at.timestamp()))
    assert len({v1.block_time, dispute.block_time}) == 2  # an hour apart
    audits = {r.args["enterprise"]: r for r in trail.of_kind("audit")}
    e1_audit = audits[full.e1.address]
    assert e1_audit.block_time == iso_time(int(full.reports["e1 audit"].audited_at.timestamp()))
    assert e1_audit.args["record"]["finalQuantity"] == tonnes(520)
    assert e1_audit.args["record"]["accurate"] is True
    # The reward was applied in the audit's transaction.
    reward = next(r for r in trail.of_kind("reward") if r.args["subject"] == full.e1.address)
    assert (reward.tx_hash, reward.block_number) == (e1_audit.tx_hash, e1_audit.block_number)
    assert reward.args["outcome"]["minted"] == 10_000_000
    # Allocation: one Allocated event and one mint per recipient, in the allocation's transaction.
    allocation = trail.of_kind("allocation")
    assert {r.tx_hash for r in allocation} == set(tx["allocation"].tx_hashes)
    mints = {r.args["to"]: r.args["value"] for r in allocation if r.event == "Transfer"}
    assert mints == {full.e1.address: tonnes(600), full.e2.address: tonnes(400)}
    assert all(r.address == full.allowance for r in allocation if r.event == "Transfer")
    [transfer] = trail.of_kind("transfer")
    assert transfer.tx_hash == tx["transfer"] and transfer.args["value"] == tonnes(50)
    surrenders = trail.of_kind("surrender")
    assert {r.tx_hash for r in surrenders} == {tx["e1 surrender"].tx_hash, tx["e2 surrender"].tx_hash}
    [penalty] = trail.of_kind("penalty")
    settled = {s.enterprise: s for s in tx["settlement"]}
    assert settled[full.e2.address].state is ComplianceState.SHORTFALL
    assert penalty.tx_hash == settled[full.e2.address].tx_hash
    assert penalty.args["reason"] == Reason.SHORT_SURRENDER
    assert penalty.args["outcome"]["quantity"] == tonnes(80)
    for record in trail.records:
        receipt = full.regulator.rpc.call("eth_getTransactionReceipt", [record.tx_hash])
        assert int(receipt["blockNumber"], 16) == record.block_number


def test_the_files_are_written_and_load_back(full):
    assert AuditTrail.load(full.json_path) == full.trail
    data = json.loads(full.json_path.read_text())
    assert data["format"] == "carbon-audit-trail/1" and data["period"] == full.period
    with full.csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(full.trail.records)
    for row, record in zip(rows, full.trail.records, strict=True):
        assert (row["kind"], row["event"], row["tx_hash"], int(row["log_index"]), row["signer"]) == (
            record.kind, record.event, record.tx_hash, record.log_index, record.signer)
        assert json.loads(row["args"]) == record.args


def test_an_observer_verifies_the_file_against_the_chain(market, full):
    check = observer(market).mrv.verify_audit_trail(full.json_path)
    assert isinstance(check, TrailCheck)
    assert check.ok, check.problems
    assert check.checked == len(full.trail.records) and check.problems == []
    # Later steps of the period are not a problem for an earlier export, and are counted.
    [settled] = full.regulator.allowances.settle(full.period, [full.silent.address])
    assert settled.state is ComplianceState.UNREPORTED and settled.penalty.reason is Reason.UNREPORTED
    check = observer(market).mrv.verify_audit_trail(full.trail)
    assert check.ok and check.newer == 2  # the settlement and its penalty
    assert len(full.regulator.mrv.audit_trail(full.period).records) == len(full.trail.records) + 2


def tampered(full, tmp_path, change) -> TrailCheck:
    data = json.loads(full.json_path.read_text())
    change(data["records"])
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(data))
    return full.regulator.mrv.verify_audit_trail(path)


def _find(records, kind, **args):
    return next(r for r in records
                if r["kind"] == kind and all(r["args"].get(k) == v for k, v in args.items()))


def test_a_changed_amount_is_caught(full, tmp_path):
    def change(records):
        record = _find(records, "surrender", amount=tonnes(400))
        record["args"]["amount"] = tonnes(480)  # as if e2 had surrendered everything

    check = tampered(full, tmp_path, change)
    assert not check.ok
    assert check.problems == [next(p for p in check.problems if "argument 'amount'" in p)]
    assert f"is {tonnes(480)} in the file, {tonnes(400)} on chain" in check.problems[0]


def test_a_changed_signer_or_time_is_caught(full, tmp_path):
    def change(records):
        audit = _find(records, "audit", enterprise=full.e2.address)
        audit["signer"] = full.e1.address  # as if the enterprise had audited itself
        report = _find(records, "report", enterprise=full.e2.address)
        report["block_time"] = "2020-01-01T00:00:00Z"

    check = tampered(full, tmp_path, change)
    assert not check.ok and len(check.problems) == 2
    signer = f"signer {full.e1.address} in the file, the transaction was signed by {full.regulator.address}"
    assert any(signer in p for p in check.problems)
    assert any("time 2020-01-01T00:00:00Z in the file" in p for p in check.problems)


def test_a_dropped_or_foreign_record_is_caught(full, tmp_path):
    def change(records):
        records.remove(_find(records, "penalty"))

    check = tampered(full, tmp_path, change)
    assert not check.ok and len(check.problems) == 1
    assert check.problems[0].startswith("missing from the file: penalty RewardPenaltyCoin.RuleApplied")

    foreign = full.regulator.mrv.audit_trail(full.other_period).of_kind("report")[0]

    def add(records):
        records.append({**foreign.to_dict(), "period": full.period})  # another period's report, relabelled

    check = tampered(full, tmp_path, add)
    assert not check.ok
    assert any(p.startswith(f"not part of period {full.period}'s trail on chain") for p in check.problems)


def test_an_unknown_period_has_no_trail(market):
    with pytest.raises(errors.AllowancesUnknownPeriod) as caught:
        market.regulator.mrv.audit_trail(9_999)
    assert caught.value.arguments == {"period": 9_999}
