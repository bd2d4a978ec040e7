"""Emission reports: submission rules, versions after a dispute, reports from monitoring readings with
inclusion proofs checked against the root on chain, and version diffs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_utils import keccak
from mrv_helpers import document, random_root, reconciling_period, send_anyway, submit, unchanged

from carbon_sdk import Role, errors
from carbon_sdk.allowances import PeriodPhase
from carbon_sdk.gwp import AR6_GWP100
from carbon_sdk.mrv import ReportStatus
from carbon_sdk.readings import ReadingsCommitment, load_readings_csv
from carbon_sdk.units import tonnes

READINGS_V1 = """sensor,time,gas,quantity_t
stack-1,2025-01-01T00:00:00Z,CO2,1200.250000
stack-1,2025-02-01T00:00:00Z,CO2,1190.000001
stack-1,2025-03-01T00:00:00Z,CO2,1215.5
stack-1,2025-01-01T00:00:00Z,CH4_fossil,0.350000
stack-2,2025-01-01T00:00:00Z,CO2,310.125
stack-2,2025-02-01T00:00:00Z,CO2,305
boiler-3,2025-01-01T00:00:00Z,N2O,0.012
boiler-3,2025-02-01T00:00:00Z,N2O,0.011
"""

# Version 2: two readings corrected, one added, one removed.
READINGS_V2 = """sensor,time,gas,quantity_t
stack-1,2025-01-01T00:00:00Z,CO2,1200.250000
stack-1,2025-02-01T00:00:00Z,CO2,1290.000001
stack-1,2025-03-01T00:00:00Z,CO2,1215.5
stack-1,2025-01-01T00:00:00Z,CH4_fossil,0.350000
stack-2,2025-01-01T00:00:00Z,CO2,310.125
stack-2,2025-02-01T00:00:00Z,CO2,305
boiler-3,2025-01-01T00:00:00Z,N2O,0.021
stack-2,2025-03-01T00:00:00Z,CO2,299.9
"""


@pytest.fixture(scope="module")
def period(market):
    return reconciling_period(market)


@pytest.fixture
def readings_v1(tmp_path):
    path = tmp_path / "plant-2025-v1.csv"
    path.write_text(READINGS_V1)
    return load_readings_csv(path)


@pytest.fixture
def readings_v2(tmp_path):
    path = tmp_path / "plant-2025-v2.csv"
    path.write_text(READINGS_V2)
    return load_readings_csv(path)


# -- submission -----------------------------------------------------------------------------------------


def test_a_report_records_signer_time_quantities_and_hashes(market, period):
    enterprise = market.enterprise()
    root = random_root()
    report = enterprise.mrv.submit_report(period, {"CO2": tonnes(1000), "N2O": tonnes("0.5")},
                                          readings_root=root, report_document="annual report 2025, v1")
    assert (report.period, report.enterprise, report.version) == (period, enterprise.address, 1)
    assert report.status is ReportStatus.SUBMITTED
    assert report.co2e == tonnes(1000) + tonnes("136.5")  # N2O: GWP 273
    assert report.readings_root == root and report.report_hash == keccak(text="annual report 2025, v1")
    assert report.verifier is None and report.reviewed_at is None and report.verified_quantity == 0
    events = enterprise.mrv.contract.logs(["ReportSubmitted"], topics=[
        "0x" + period.to_bytes(32, "big").hex(), "0x" + "00" * 12 + enterprise.address[2:].lower()])
    assert len(events) == 1 and events[0].args["quantities"][0] == tonnes(1000)
    block = enterprise.rpc.call("eth_getBlockByNumber", [hex(events[0].block_number), False])
    assert int(block["timestamp"], 16) == int(report.submitted_at.timestamp())
    tx = enterprise.rpc.call("eth_getTransactionByHash", [events[0].tx_hash])
    assert tx["from"].lower() == enterprise.address.lower()


def test_reports_are_submitted_only_in_reconciliation(market):
    enterprise = market.enterprise()
    for phase in (PeriodPhase.OPEN, PeriodPhase.TRADING, PeriodPhase.CLOSED, PeriodPhase.NONE):
        other = 9_999 if phase is PeriodPhase.NONE else market.open_period(tonnes(1_000)).id
        market.to_phase(other, phase)
        with unchanged(market, [enterprise.address], [other]), pytest.raises(errors.MrvWrongPhase) as caught:
            submit(enterprise, other, tonnes(10))
        assert caught.value.arguments == {"period": other, "phase": phase}


def test_only_enterprises_report(market, period):
    for role in (Role.VERIFIER, Role.PLATFORM, Role.REGULATOR):
        client = market.member(role)
        with unchanged(market, [client.address], [period]), pytest.raises(errors.GuardMissingRole) as caught:
            submit(client, period, tonnes(10))
        assert caught.value.arguments == {"account": client.address, "required": Role.ENTERPRISE}


def test_a_report_needs_its_readings_root_and_document_hash(market, period):
    enterprise = market.enterprise()
    zero = b"\0" * 32
    vector = AR6_GWP100.vector({"CO2": tonnes(5)})
    for root, doc in ((zero, document()), (random_root(), zero)):
        # The SDK refuses a zero hash before sending...
        with unchanged(market, [enterprise.address], [period]), pytest.raises(errors.InvalidInput, match="zero"):
            enterprise.mrv.submit_report(period, {"CO2": tonnes(5)}, readings_root=root, report_document=doc)
        # ...and so does the contract, when a raw transaction reaches it.
        raw_doc = doc if doc == zero else keccak(text=doc)
        with unchanged(market, [enterprise.address], [period]), \
                pytest.raises(errors.MrvMissingHash) as caught:
            send_anyway(enterprise, enterprise.mrv.contract.tx("submitReport", period, 1, vector, root, raw_doc))
        assert caught.value.arguments == {} and caught.value.tx_hash is not None


def test_a_second_report_waits_for_a_dispute(market, period):
    enterprise, verifier = market.enterprise(), market.verifier()
    submit(enterprise, period, tonnes(100))
    with unchanged(market, [enterprise.address], [period]), pytest.raises(errors.MrvReportExists) as caught:
        submit(enterprise, period, tonnes(90))
    assert caught.value.arguments == {"period": period, "enterprise": enterprise.address, "version": 1,
                                      "status": ReportStatus.SUBMITTED}
    verifier.mrv.endorse(period, enterprise.address, 1, verified_quantity=tonnes(100), evidence="ok")
    with unchanged(market, [enterprise.address], [period]), pytest.raises(errors.MrvReportExists) as caught:
        submit(enterprise, period, tonnes(90))
    assert caught.value.arguments["status"] == ReportStatus.ENDORSED


def test_after_a_dispute_a_new_version_is_kept_beside_the_old(market, period):
    enterprise, verifier = market.enterprise(), market.verifier()
    first = submit(enterprise, period, tonnes(100))
    disputed = verifier.mrv.dispute(period, enterprise.address, 1, evidence="meter 7 uncalibrated")
    assert disputed.status is ReportStatus.DISPUTED and disputed.verifier == verifier.address
    assert disputed.evidence_hash == keccak(text="meter 7 uncalibrated")
    second = submit(enterprise, period, tonnes(112))
    assert second.version == 2 and second.status is ReportStatus.SUBMITTED and second.co2e == tonnes(112)
    old = enterprise.mrv.report(period, enterprise.address, 1)
    assert old == disputed  # version 1 is still readable, unchanged
    assert old.readings_root == first.readings_root and old.co2e == tonnes(100)
    assert [r.version for r in market.regulator.mrv.reports(period, enterprise.address)] == [1, 2]
    assert enterprise.mrv.report(period, enterprise.address) == second  # the latest by default


# -- readings: root, proofs, diffs ----------------------------------------------------------------------


def test_a_report_from_readings_commits_their_root_and_proves_each_one(market, period, readings_v1):
    enterprise = market.enterprise()
    report = enterprise.mrv.submit_report_from_readings(period, readings_v1, report_document=document())
    commitment = ReadingsCommitment.of(readings_v1)
    assert "0x" + report.readings_root.hex() == commitment.root
    totals = commitment.total_grams_by_gas
    assert totals == {"CO2": tonnes("4220.875001"), "CH4_FOSSIL": tonnes("0.35"), "N2O": tonnes("0.023")}
    assert report.co2e == AR6_GWP100.co2e({"CO2": totals["CO2"], "CH4_fossil": totals["CH4_FOSSIL"],
                                           "N2O": totals["N2O"]})
    client = market.regulator  # an observer with the readings: proofs checked against the root on chain
    for reading in readings_v1:
        proof = enterprise.mrv.prove_reading(readings_v1, reading)
        assert client.mrv.verify_reading(period, enterprise.address, reading, proof)
    reading = next(r for r in readings_v1 if r.sensor == "boiler-3")
    proof = enterprise.mrv.prove_reading(commitment, reading)
    for tampered in (replace(reading, grams=reading.grams + 1), replace(reading, time=reading.time + 1),
                     replace(reading, sensor="boiler-4")):
        assert not client.mrv.verify_reading(period, enterprise.address, tampered, proof)
    other = readings_v1[0]  # a genuine reading with another reading's proof
    assert not client.mrv.verify_reading(period, enterprise.address, other, proof)


def test_two_dataset_versions_differ_exactly_where_readings_changed(market, period, readings_v1, readings_v2):
    enterprise, verifier = market.enterprise(), market.verifier()
    v1 = enterprise.mrv.submit_report_from_readings(period, readings_v1, report_document=document())
    verifier.mrv.dispute(period, enterprise.address, 1, evidence="stack-1 February reading implausible")
    v2 = enterprise.mrv.submit_report_from_readings(period, readings_v2, report_document=document())
    assert v1.readings_root != v2.readings_root
    diff = market.regulator.mrv.diff_readings(readings_v1, readings_v2)
    assert [(old.key, old.grams, new.grams) for old, new in diff.changed] == [
        (("boiler-3", 1735689600, "N2O"), 12_000, 21_000),
        (("stack-1", 1738368000, "CO2"), tonnes("1190.000001"), tonnes("1290.000001")),
    ]
    assert [r.key for r in diff.added] == [("stack-2", 1740787200, "CO2")]
    assert [r.key for r in diff.removed] == [("boiler-3", 1738368000, "N2O")]
    assert not diff.identical and market.regulator.mrv.diff_readings(readings_v1, readings_v1).identical
    # Each version's proofs hold against its own root on chain, and not against the other's.
    old, new = diff.changed[0]
    mrv = market.regulator.mrv
    old_proof, new_proof = mrv.prove_reading(readings_v1, old), mrv.prove_reading(readings_v2, new)
    assert mrv.verify_reading(period, enterprise.address, old, old_proof, version=1)
    assert mrv.verify_reading(period, enterprise.address, new, new_proof, version=2)
    assert not mrv.verify_reading(period, enterprise.address, old, old_proof, version=2)
    assert not mrv.verify_reading(period, enterprise.address, new, new_proof, version=1)
    # An unchanged reading is in both, each with its own version's proof.
    same = next(r for r in readings_v1 if r.sensor == "stack-2" and r.gas == "CO2")
    for version, readings in ((1, readings_v1), (2, readings_v2)):
        proof = mrv.prove_reading(readings, same)
        assert mrv.verify_reading(period, enterprise.address, same, proof, version=version)
