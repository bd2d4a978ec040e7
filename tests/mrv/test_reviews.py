"""Endorsements and disputes: who may review, which version, once; each rejection with its custom error and
nothing changed."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak
from mrv_helpers import random_root, reconciling_period, submit, unchanged

from carbon_sdk import Role, errors
from carbon_sdk.allowances import PeriodPhase
from carbon_sdk.mrv import ReportStatus
from carbon_sdk.units import tonnes


@pytest.fixture(scope="module")
def period(market):
    return reconciling_period(market)


def review(client, action, period, enterprise, version):
    if action == "endorse":
        return client.mrv.endorse(period, enterprise, version, verified_quantity=tonnes(100),
                                  evidence="visit")
    return client.mrv.dispute(period, enterprise, version, evidence="visit")


def test_an_endorsement_records_the_verifier_its_quantity_evidence_and_time(market, period):
    enterprise, verifier = market.enterprise(), market.verifier()
    submitted = submit(enterprise, period, tonnes(100))
    report = verifier.mrv.endorse(period, enterprise.address, 1, verified_quantity=tonnes("101.5"),
                                  evidence=b"site visit 2026-02-03")
    assert report.status is ReportStatus.ENDORSED and report.verifier == verifier.address
    assert report.verified_quantity == tonnes("101.5")
    assert report.evidence_hash == keccak(b"site visit 2026-02-03")
    assert report.reviewed_at >= submitted.submitted_at
    assert (report.co2e, report.readings_root) == (submitted.co2e, submitted.readings_root)


def test_only_verifiers_review(market, period):
    enterprise = market.enterprise()
    submit(enterprise, period, tonnes(100))
    for reviewer in (market.enterprise(), market.regulator, market.platform()):
        for action in ("endorse", "dispute"):
            with unchanged(market, [enterprise.address, reviewer.address], [period]), \
                    pytest.raises(errors.GuardMissingRole) as caught:
                review(reviewer, action, period, enterprise.address, 1)
            assert caught.value.arguments == {"account": reviewer.address, "required": Role.VERIFIER}


def test_a_verifier_of_the_enterprises_own_organisation_has_a_conflict_of_interest(market, period):
    admin = Account.create()
    org = market.regulator.registry.register_organisation(
        "Steel Group (plant and in-house verification)", admin.address, Role.ENTERPRISE,
        allowed_roles=[Role.ENTERPRISE, Role.VERIFIER])
    enterprise = market.client(admin)
    in_house = Account.create()
    enterprise.registry.enrol(in_house.address, Role.VERIFIER)
    verifier = market.client(in_house)
    submit(enterprise, period, tonnes(100))
    for action in ("endorse", "dispute"):
        with unchanged(market, [enterprise.address, verifier.address], [period]), \
                pytest.raises(errors.MrvConflictOfInterest) as caught:
            review(verifier, action, period, enterprise.address, 1)
        assert caught.value.arguments == {"verifier": verifier.address, "enterprise": enterprise.address,
                                          "orgId": org.org_id}
    # An independent verifier may.
    assert review(market.verifier(), "endorse", period, enterprise.address, 1).status is ReportStatus.ENDORSED


def test_only_the_latest_known_version_is_reviewed(market, period):
    enterprise, verifier = market.enterprise(), market.verifier()
    submit(enterprise, period, tonnes(100))
    verifier.mrv.dispute(period, enterprise.address, 1, evidence="gap in readings")
    submit(enterprise, period, tonnes(104))
    for action in ("endorse", "dispute"):
        with unchanged(market, [enterprise.address, verifier.address], [period]), \
                pytest.raises(errors.MrvNotLatestVersion) as caught:
            review(verifier, action, period, enterprise.address, 1)
        assert caught.value.arguments == {"period": period, "enterprise": enterprise.address, "version": 1,
                                          "latest": 2}
    for version in (0, 3):
        with unchanged(market, [enterprise.address, verifier.address], [period]), \
                pytest.raises(errors.MrvUnknownReport) as caught:
            review(verifier, "endorse", period, enterprise.address, version)
        assert caught.value.arguments == {"period": period, "enterprise": enterprise.address,
                                          "version": version}


def test_a_version_is_reviewed_once(market, period):
    for first in ("endorse", "dispute"):
        enterprise, verifier = market.enterprise(), market.verifier()
        submit(enterprise, period, tonnes(100))
        done = review(verifier, first, period, enterprise.address, 1)
        other = market.verifier()  # a second verifier cannot overwrite the review either
        for second in ("endorse", "dispute"):
            with unchanged(market, [enterprise.address, verifier.address, other.address], [period]), \
                    pytest.raises(errors.MrvReportNotPending) as caught:
                review(other, second, period, enterprise.address, 1)
            assert caught.value.arguments == {"period": period, "enterprise": enterprise.address,
                                              "version": 1, "status": done.status}


def test_a_review_needs_evidence_and_the_reconciliation_phase(market):
    period = reconciling_period(market)
    enterprise, verifier = market.enterprise(), market.verifier()
    submit(enterprise, period, tonnes(100))
    mrv = verifier.mrv.contract
    with unchanged(market, [enterprise.address, verifier.address], [period]), \
            pytest.raises(errors.MrvMissingHash):
        verifier.transact(mrv.tx("endorse", period, enterprise.address, 1, tonnes(100), b"\0" * 32))
    market.to_phase(period, PeriodPhase.CLOSED)
    with unchanged(market, [enterprise.address, verifier.address], [period]), \
            pytest.raises(errors.MrvWrongPhase) as caught:
        verifier.mrv.endorse(period, enterprise.address, 1, verified_quantity=tonnes(100),
                             evidence=random_root())
    assert caught.value.arguments == {"period": period, "phase": PeriodPhase.CLOSED}
