"""Audits: the outcome applies the coin's rules (accurate report, misreport, false verification, verified
reduction) with amounts the rules compute, debts flagged in the registry, the tolerance boundary to the gram,
and every rejection with its custom error and nothing changed."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from mrv_helpers import endorsed, random_root, reconciling_period, send_anyway, submit, unchanged

from carbon_sdk import Role, errors
from carbon_sdk.audit_trail import audit_key
from carbon_sdk.coin import Reason
from carbon_sdk.mrv import ReportStatus
from carbon_sdk.units import tonnes


@pytest.fixture(scope="module")
def period(market):
    return reconciling_period(market)


@pytest.fixture(scope="module")
def rules(market):
    return market.regulator.coin.rules()


def test_an_accurate_report_is_rewarded(market, period, rules):
    enterprise, verifier = endorsed(market, period, reported=tonnes(1_000), verified=tonnes(1_020))
    audit = market.regulator.mrv.audit(period, enterprise.address, evidence="desk review")
    assert audit.accurate and not audit.with_finding and audit.final_quantity == tonnes(1_020)
    assert audit.auditor == market.regulator.address and audit.version == 1
    assert audit.evidence_hash == keccak(text="desk review")
    reward = rules[Reason.ACCURATE_REPORT].amount()
    assert reward == 10_000_000
    [application] = audit.applications
    assert (application.subject, application.reason, application.amount, application.minted) == (
        enterprise.address, Reason.ACCURATE_REPORT, reward, reward)
    mrv = market.regulator.mrv.contract.address
    assert application.audit_key == audit_key(mrv, period, enterprise.address)
    assert application.by == market.regulator.mrv.contract.address  # applied by the MRV module
    coin = market.regulator.coin
    assert coin.balance(enterprise.address) == reward and coin.debt(enterprise.address) == 0
    assert coin.balance(verifier.address) == 0
    assert enterprise.mrv.report(period, enterprise.address).status is ReportStatus.AUDITED
    assert market.regulator.mrv.verified_emissions(period, enterprise.address) == tonnes(1_020)
    compliance = market.regulator.allowances.compliance(period, enterprise.address)
    assert compliance.verified and compliance.verified_emissions == tonnes(1_020)


def test_a_misreport_is_penalised_per_tonne_of_the_gap_and_leaves_debt(market, period, rules):
    enterprise, _ = endorsed(market, period, reported=tonnes(1_000), verified=tonnes(1_200))
    coin, registry = market.regulator.coin, market.regulator.registry
    # Some coin earned before, by a rule applied by hand: the penalty burns it first.
    coin.apply_rule(enterprise.address, Reason.ACCURATE_REPORT, evidence="2024 audit", audit_key="2024 audit")
    audit = market.regulator.mrv.audit(period, enterprise.address, evidence="desk review")
    assert not audit.accurate and audit.final_quantity == tonnes(1_200)
    penalty = rules[Reason.MISREPORT].amount(tonnes(200))
    assert penalty == 20_000_000 + 2 * 200 * 1_000_000  # 20 coin + 2 coin per tonne of the 200 t gap
    [application] = audit.applications
    assert (application.reason, application.quantity, application.amount) == (
        Reason.MISREPORT, tonnes(200), penalty)
    assert application.burned == 10_000_000 and application.debt_change == penalty - 10_000_000
    assert coin.balance(enterprise.address) == 0 and coin.debt(enterprise.address) == penalty - 10_000_000
    assert registry.member(enterprise.address).in_debt and not registry.can_trade(enterprise.address)


def test_a_finding_beyond_tolerance_of_the_verifiers_quantity_penalises_the_verifier(market, period, rules):
    enterprise, verifier = endorsed(market, period, reported=tonnes(1_000), verified=tonnes(900))
    audit = market.regulator.mrv.audit(period, enterprise.address, evidence="inspection",
                                       finding=tonnes(1_000))
    assert audit.with_finding and audit.accurate and audit.final_quantity == tonnes(1_000)
    by_subject = {a.subject: a for a in audit.applications}
    assert by_subject[enterprise.address].reason is Reason.ACCURATE_REPORT
    false = by_subject[verifier.address]
    assert false.reason is Reason.FALSE_VERIFICATION and false.quantity == tonnes(100)
    assert false.amount == rules[Reason.FALSE_VERIFICATION].amount(tonnes(100)) == 250_000_000
    assert market.regulator.coin.debt(verifier.address) == 250_000_000
    assert not market.regulator.registry.can_trade(verifier.address)
    assert market.regulator.registry.can_trade(enterprise.address)


def test_a_finding_within_tolerance_of_the_verifier_does_not_penalise_it(market, period):
    enterprise, verifier = endorsed(market, period, reported=tonnes(1_000), verified=tonnes(1_000))
    audit = market.regulator.mrv.audit(period, enterprise.address, evidence="inspection",
                                       finding=tonnes(1_050))
    assert audit.accurate and [a.reason for a in audit.applications] == [Reason.ACCURATE_REPORT]
    assert market.regulator.coin.debt(verifier.address) == 0


def test_a_verified_reduction_on_the_previous_audited_period_is_rewarded(market, period, rules):
    later = reconciling_period(market)
    enterprise, verifier = market.enterprise(), market.verifier()
    for p, quantity in ((period, tonnes(1_000)), (later, tonnes(800))):
        submit(enterprise, p, quantity)
        verifier.mrv.endorse(p, enterprise.address, 1, verified_quantity=quantity, evidence="visit")
    first = market.regulator.mrv.audit(period, enterprise.address, evidence="audit 1")
    # No earlier audited period: no reduction.
    assert [a.reason for a in first.applications] == [Reason.ACCURATE_REPORT]
    second = market.regulator.mrv.audit(later, enterprise.address, evidence="audit 2")
    reduction = next(a for a in second.applications if a.reason is Reason.VERIFIED_REDUCTION)
    assert reduction.quantity == tonnes(200)
    assert reduction.amount == rules[Reason.VERIFIED_REDUCTION].amount(tonnes(200)) == 100_000_000
    assert market.regulator.coin.balance(enterprise.address) == 2 * 10_000_000 + 100_000_000


@pytest.mark.parametrize("reported,accurate", [
    (tonnes(1_050), True),  # exactly 5 % above the verified 1,000 t
    (tonnes(1_050) + 1, False),  # one gram beyond
    (tonnes(950), True),  # exactly 5 % below
    (tonnes(950) - 1, False),
])
def test_the_tolerance_boundary_to_the_gram(market, period, rules, reported, accurate):
    enterprise, _ = endorsed(market, period, reported=reported, verified=tonnes(1_000))
    audit = market.regulator.mrv.audit(period, enterprise.address, evidence="boundary")
    assert audit.accurate is accurate
    [application] = audit.applications
    if accurate:
        assert application.reason is Reason.ACCURATE_REPORT
    else:
        gap = abs(reported - tonnes(1_000))
        assert application.reason is Reason.MISREPORT and application.quantity == gap == tonnes(50) + 1
        assert application.amount == rules[Reason.MISREPORT].amount(gap) == 20_000_000 + 100_000_002


# -- rejections -----------------------------------------------------------------------------------------


def test_only_an_endorsed_report_is_audited(market, period):
    enterprise, verifier = market.enterprise(), market.verifier()
    with unchanged(market, [enterprise.address], [period]), pytest.raises(errors.MrvUnknownReport) as caught:
        market.regulator.mrv.audit(period, enterprise.address, evidence="nothing to audit")
    assert caught.value.arguments == {"period": period, "enterprise": enterprise.address, "version": 0}
    submit(enterprise, period, tonnes(10))
    for status in (ReportStatus.SUBMITTED, ReportStatus.DISPUTED):
        if status is ReportStatus.DISPUTED:
            verifier.mrv.dispute(period, enterprise.address, 1, evidence="gap")
        with unchanged(market, [enterprise.address, verifier.address], [period]), \
                pytest.raises(errors.MrvReportNotEndorsed) as caught:
            market.regulator.mrv.audit(period, enterprise.address, evidence="too early")
        assert caught.value.arguments == {"period": period, "enterprise": enterprise.address, "version": 1,
                                          "status": status}


def test_an_audit_is_applied_once(market, period):
    enterprise, verifier = endorsed(market, period, reported=tonnes(100), verified=tonnes(100))
    market.regulator.mrv.audit(period, enterprise.address, evidence="first")
    call = market.regulator.mrv.contract.tx("audit", period, enterprise.address, True, tonnes(10),
                                            random_root())
    with unchanged(market, [enterprise.address, verifier.address], [period]), \
            pytest.raises(errors.MrvAlreadyAudited) as caught:
        send_anyway(market.regulator, call)  # mined and reverted: no second reward, no penalty, same record
    assert caught.value.arguments == {"period": period, "enterprise": enterprise.address}
    assert caught.value.tx_hash is not None


def test_audits_need_a_regulator_of_the_enterprises_region(market, period):
    enterprise, verifier = endorsed(market, period, reported=tonnes(100), verified=tonnes(100), region=11)
    for auditor in (market.enterprise(11), verifier, market.regional_regulator(12)):
        with unchanged(market, [enterprise.address, verifier.address, auditor.address], [period]), \
                pytest.raises(errors.GuardMissingRole) as caught:
            auditor.mrv.audit(period, enterprise.address, evidence="not mine to audit")
        assert caught.value.arguments == {"account": auditor.address, "required": Role.REGULATOR}
    regional = market.regional_regulator(11)
    audit = regional.mrv.audit(period, enterprise.address, evidence="regional audit")
    assert audit.auditor == regional.address and audit.accurate
