"""Settlement after the deadline: each enterprise's outcome recorded once, a shortfall or a missing audited
report penalised through the reward-penalty coin (balance burned first, the rest as debt); compliance in
every phase in one call; and debt blocking trades until it is cleared."""

from __future__ import annotations

import pytest
from eth_account import Account

from carbon_sdk import Role, errors
from carbon_sdk.allowances import ComplianceState, PeriodPhase
from carbon_sdk.coin import COIN, Reason
from carbon_sdk.errors import InvalidInput
from allowances_helpers import T, in_reconciliation, raw, report, unchanged, verify

CAP = T(10_000)
ACCURATE_REWARD = 10 * COIN  # the default rules (carbon_sdk.coin.DEFAULT_RULES)
SHORT_PER_TONNE = 10 * COIN
UNREPORTED_FLAT = 100 * COIN


def _closed_with(market, holdings, emissions, surrenders):
    """A period closed after ``emissions`` were audited and ``surrenders`` made."""
    period = in_reconciliation(market, CAP, holdings, emissions)
    for e, amount in surrenders.items():
        e.allowances.surrender(period.id, [(period.allowance, amount)])
    market.to_phase(period.id, PeriodPhase.CLOSED)
    return period


def _rule_events(client, tx_hash):
    return [a for a in client.coin.applications(from_block=client.block_number() - 5) if a.tx_hash == tx_hash]


# ---------------------------------------------------------------- who and when


def test_settle_only_after_close_and_only_by_a_regulator(market):
    e = market.enterprise()
    period = in_reconciliation(market, CAP, {e: T(5)}, {e: T(5)})
    watch = dict(periods=[period.id], holders=[e])
    with unchanged(market, **watch):
        with pytest.raises(errors.AllowancesWrongPhase) as info:
            market.regulator.allowances.settle(period.id, [e.address])
        assert info.value.arguments == {"period": period.id, "phase": PeriodPhase.RECONCILIATION}
    market.to_phase(period.id, PeriodPhase.CLOSED)
    verifier = market.verifier()
    with unchanged(market, **watch):
        for caller in (e, verifier):
            with pytest.raises(errors.GuardMissingRole) as info:
                caller.allowances.settle(period.id, [e.address])
            assert info.value.arguments == {"account": caller.address, "required": Role.REGULATOR}
            with pytest.raises(errors.GuardMissingRole):
                raw(caller, "settle", period.id, [e.address])
        with pytest.raises(InvalidInput, match="at least one enterprise"):
            market.regulator.allowances.settle(period.id, [])
        with pytest.raises(errors.AllowancesBatchSize) as info:
            raw(market.regulator, "settle", period.id, [])
        assert info.value.arguments == {"size": 0, "max": 500}
        with pytest.raises(errors.AllowancesUnknownPeriod) as info:
            raw(market.regulator, "settle", period.id + 1_000, [e.address])
        assert info.value.arguments == {"period": period.id + 1_000}


def test_each_enterprise_is_settled_once(market):
    done, fresh = market.enterprise(), market.enterprise()
    period = _closed_with(
        market, {done: T(5), fresh: T(5)}, {done: T(5), fresh: T(5)}, {done: T(5), fresh: T(5)}
    )
    market.regulator.allowances.settle(period.id, [done.address])
    watch = dict(periods=[period.id], holders=[done, fresh])
    with unchanged(market, **watch):
        with pytest.raises(errors.AllowancesAlreadySettled) as info:
            market.regulator.allowances.settle(period.id, [done.address])
        assert info.value.arguments == {"period": period.id, "enterprise": done.address}
        # one settled name refuses the whole batch: the fresh one stays unsettled
        with pytest.raises(errors.AllowancesAlreadySettled) as info:
            raw(market.regulator, "settle", period.id, [fresh.address, done.address])
        assert info.value.arguments == {"period": period.id, "enterprise": done.address}
        with pytest.raises(InvalidInput, match="appears twice"):
            market.regulator.allowances.settle(period.id, [fresh.address, fresh.address])
        with pytest.raises(errors.AllowancesAlreadySettled) as info:
            raw(market.regulator, "settle", period.id, [fresh.address, fresh.address])
        assert info.value.arguments == {"period": period.id, "enterprise": fresh.address}
    assert not market.regulator.allowances.compliance(period.id, fresh.address).settled
    [outcome] = market.regulator.allowances.settle(period.id, [fresh.address])
    assert outcome.state is ComplianceState.COMPLIANT


def test_a_batch_naming_a_non_member_is_refused_whole(market):
    """Only enterprise members are subject to a period: a batch naming anyone else settles nobody."""
    e = market.enterprise()
    stranger = Account.create().address
    period = _closed_with(market, {e: T(5)}, {e: T(5)}, {})
    with unchanged(market, periods=[period.id], holders=[e, stranger]):
        with pytest.raises(errors.AllowancesNotSubject) as info:
            market.regulator.allowances.settle(period.id, [e.address, stranger])
    assert info.value.arguments == {"period": period.id, "account": stranger}


def test_an_enterprise_enrolled_after_the_deadline_is_not_subject(market):
    e = market.enterprise()
    period = _closed_with(market, {e: T(5)}, {e: T(5)}, {e: T(5)})
    market.mine_at(market.now() + 1)
    late = market.enterprise()  # enrolled after the period closed
    with unchanged(market, periods=[period.id], holders=[e, late]):
        with pytest.raises(errors.AllowancesNotSubject) as info:
            raw(market.regulator, "settle", period.id, [e.address, late.address])
    assert info.value.arguments == {"period": period.id, "account": late.address}


def test_a_regional_regulator_settles_only_its_region(market):
    local, far = market.enterprise(region=11), market.enterprise(region=22)
    period = _closed_with(market, {local: T(5), far: T(5)}, {local: T(5), far: T(5)}, {local: T(5), far: T(5)})
    regional = market.regional_regulator(11)
    with unchanged(market, periods=[period.id], holders=[local, far]):
        with pytest.raises(errors.AllowancesRegionMismatch) as info:
            regional.allowances.settle(period.id, [local.address, far.address])
    assert info.value.arguments == {"callerRegion": 11, "region": 22}
    [outcome] = regional.allowances.settle(period.id, [local.address])
    assert outcome.state is ComplianceState.COMPLIANT


def test_settle_refuses_members_that_are_not_enterprises(market):
    e, verifier = market.enterprise(), market.verifier()
    period = _closed_with(market, {e: T(1)}, {e: T(1)}, {e: T(1)})
    with unchanged(market, periods=[period.id], holders=[e, verifier]):
        with pytest.raises(errors.AllowancesNotSubject) as info:
            market.regulator.allowances.settle(period.id, [e.address, verifier.address])
    assert info.value.arguments == {"period": period.id, "account": verifier.address}


# ---------------------------------------------------------------- outcomes


def test_compliant_enterprise_is_settled_without_penalty(market):
    e = market.enterprise()
    period = _closed_with(market, {e: T(5)}, {e: T(5)}, {e: T(5)})
    coin = market.regulator.coin
    supply, balance = coin.total_supply(), coin.balance(e.address)
    assert balance == ACCURATE_REWARD  # from the accurate audit
    [outcome] = market.regulator.allowances.settle(period.id, [e.address])
    assert (
        outcome.state,
        outcome.verified_emissions,
        outcome.surrendered,
        outcome.shortfall,
        outcome.penalty,
    ) == (ComplianceState.COMPLIANT, T(5), T(5), 0, None)
    assert _rule_events(market.regulator, outcome.tx_hash) == []
    assert (coin.total_supply(), coin.balance(e.address), coin.debt(e.address)) == (supply, balance, 0)
    assert market.regulator.registry.can_trade(e.address)
    status = market.regulator.allowances.compliance(period.id, e.address)
    assert (status.state, status.settled, status.shortfall) == (ComplianceState.COMPLIANT, True, 0)
    [event] = [
        x
        for x in market.regulator.allowances.contract.logs(["ComplianceSettled"])
        if x.tx_hash == outcome.tx_hash
    ]
    assert event.args == {
        "period": period.id,
        "enterprise": e.address,
        "state": ComplianceState.COMPLIANT,
        "verifiedEmissions": T(5),
        "surrendered": T(5),
        "shortfall": 0,
    }


def test_shortfall_burns_the_coin_balance_then_records_debt(market):
    e = market.enterprise()
    period = _closed_with(market, {e: T(5)}, {e: T(5)}, {e: T(2)})
    coin = market.regulator.coin
    supply, total_debt = coin.total_supply(), coin.total_debt()
    status = market.regulator.allowances.compliance(period.id, e.address)
    assert (status.state, status.shortfall, status.settled) == (ComplianceState.SHORTFALL, T(3), False)

    [outcome] = market.regulator.allowances.settle(period.id, [e.address])
    assert (outcome.state, outcome.shortfall, outcome.surrendered) == (ComplianceState.SHORTFALL, T(3), T(2))
    penalty = outcome.penalty
    assert (penalty.subject, penalty.reason, penalty.quantity, penalty.amount) == (
        e.address,
        Reason.SHORT_SURRENDER,
        T(3),
        3 * SHORT_PER_TONNE,
    )
    assert (penalty.burned, penalty.minted, penalty.debt_change) == (ACCURATE_REWARD, 0, 20 * COIN)
    assert (coin.balance(e.address), coin.debt(e.address)) == (0, 20 * COIN)
    assert coin.total_supply() == supply - ACCURATE_REWARD and coin.total_debt() == total_debt + 20 * COIN
    assert not market.regulator.registry.can_trade(e.address)
    assert market.regulator.registry.member(e.address).in_debt
    status = market.regulator.allowances.compliance(period.id, e.address)
    assert (status.state, status.shortfall, status.settled) == (ComplianceState.SHORTFALL, T(3), True)


@pytest.mark.parametrize("how", ["never reported", "reported, not audited"])
def test_unreported_enterprise_gets_the_unreported_penalty(market, how):
    e = market.enterprise()
    period = in_reconciliation(market, CAP, {e: T(5)}, {})
    if how != "never reported":
        report(e, period.id, T(5))
    market.to_phase(period.id, PeriodPhase.CLOSED)
    status = market.regulator.allowances.compliance(period.id, e.address)
    assert (status.state, status.verified, status.shortfall) == (ComplianceState.UNREPORTED, False, 0)
    [outcome] = market.regulator.allowances.settle(period.id, [e.address])
    assert (outcome.state, outcome.verified_emissions, outcome.shortfall) == (
        ComplianceState.UNREPORTED,
        0,
        0,
    )
    assert (outcome.penalty.reason, outcome.penalty.amount, outcome.penalty.debt_change) == (
        Reason.UNREPORTED,
        UNREPORTED_FLAT,
        UNREPORTED_FLAT,
    )
    assert market.regulator.coin.debt(e.address) == UNREPORTED_FLAT
    assert market.regulator.allowances.compliance(period.id, e.address).state is ComplianceState.UNREPORTED


def test_compliance_state_through_every_phase_in_one_call(market):
    allowances = market.regulator.allowances
    full, part, none, silent = (market.enterprise() for _ in range(4))
    period = market.open_period(CAP, offset_share_bps=500, borrow_share_bps=1_000)
    allowances.allocate(period.id, {full.address: T(10), part.address: T(10), none.address: T(10)})
    everyone = [full, part, none, silent]

    def states():
        return [allowances.compliance(period.id, e.address).state for e in everyone]

    for phase in (PeriodPhase.OPEN, PeriodPhase.TRADING, PeriodPhase.RECONCILIATION):
        market.to_phase(period.id, phase)
        assert states() == [ComplianceState.NOT_VERIFIED] * 4
        assert {allowances.compliance(period.id, e.address).phase for e in everyone} == {phase}
    for e in (full, part, none):
        verify(market, period.id, e, T(8))
    status = allowances.compliance(period.id, part.address)
    assert (
        status.state,
        status.verified,
        status.verified_emissions,
        status.offset_limit,
        status.borrow_limit,
        status.outstanding,
    ) == (ComplianceState.DUE, True, T(8), T("0.4"), T("0.8"), T(8))
    full.allowances.surrender(period.id, [(period.allowance, T(8))])
    part.allowances.surrender(period.id, [(period.allowance, T(3))])
    assert states() == [
        ComplianceState.COMPLIANT,
        ComplianceState.DUE,
        ComplianceState.DUE,
        ComplianceState.NOT_VERIFIED,
    ]

    market.to_phase(period.id, PeriodPhase.CLOSED)
    expected = [
        ComplianceState.COMPLIANT,
        ComplianceState.SHORTFALL,
        ComplianceState.SHORTFALL,
        ComplianceState.UNREPORTED,
    ]
    assert states() == expected
    assert [allowances.compliance(period.id, e.address).shortfall for e in everyone] == [0, T(5), T(8), 0]
    outcomes = allowances.settle(period.id, [e.address for e in everyone])
    assert [o.state for o in outcomes] == expected
    table = allowances.compliance_table(period.id, [e.address for e in everyone])
    assert [(s.state, s.settled, s.shortfall) for s in table] == [
        (ComplianceState.COMPLIANT, True, 0),
        (ComplianceState.SHORTFALL, True, T(5)),
        (ComplianceState.SHORTFALL, True, T(8)),
        (ComplianceState.UNREPORTED, True, 0),
    ]


def test_compliance_table_for_many_matches_one_by_one(market):
    allowances = market.regulator.allowances
    e1, e2 = market.enterprise(), market.enterprise()
    period = in_reconciliation(market, CAP, {e1: T(5), e2: T(5)}, {e1: T(4)})
    e1.allowances.surrender(period.id, [(period.allowance, T(1))])
    others = [Account.create().address for _ in range(248)]  # 250 in all: two calls of at most 200
    names = [e1.address] + others[:150] + [e2.address] + others[150:]
    table = allowances.compliance_table(period.id, names)
    assert [s.enterprise for s in table] == names
    assert table[0] == allowances.compliance(period.id, e1.address)
    assert (table[0].state, table[0].surrendered, table[0].outstanding) == (ComplianceState.DUE, T(1), T(3))
    assert table[151] == allowances.compliance(period.id, e2.address)
    assert {s.state for s in table[1:]} == {ComplianceState.NOT_VERIFIED}


# ---------------------------------------------------------------- debt blocks trading


def test_debt_blocks_sending_and_receiving_allowances_until_cleared(market):
    e, other = market.enterprise(), market.enterprise()
    regulator = market.regulator
    period = _closed_with(market, {e: T(5), other: T(5)}, {e: T(5)}, {e: T("2.5")})
    [outcome] = regulator.allowances.settle(period.id, [e.address])
    assert outcome.penalty.debt_change == 15 * COIN  # 25 coin: 10 burned, 15 owed
    token = period.allowance
    watch = dict(periods=[period.id], holders=[e, other])

    def refused_both_ways():
        with unchanged(market, **watch):
            with pytest.raises(errors.TokenTransferRefused) as info:
                e.allowances.transfer(token, other.address, T(1))
            assert info.value.arguments == {"from": e.address, "to": other.address}
            with pytest.raises(errors.TokenTransferRefused) as info:
                other.allowances.transfer(token, e.address, T(1))
            assert info.value.arguments == {"from": other.address, "to": e.address}

    refused_both_ways()
    # A reward repays debt before anything is minted; 10 of 15 leaves the enterprise in debt.
    first = regulator.coin.apply_rule(e.address, "accurate_report", evidence=b"x", audit_key="k1")
    assert (first.debt_change, first.minted) == (-10 * COIN, 0)
    assert regulator.coin.debt(e.address) == 5 * COIN and not regulator.registry.can_trade(e.address)
    refused_both_ways()
    with unchanged(market, **watch):
        with pytest.raises(errors.CoinRuleAlreadyApplied) as info:
            regulator.coin.apply_rule(e.address, "accurate_report", evidence=b"x", audit_key="k1")
    assert (
        info.value.arguments["subject"] == e.address
        and info.value.arguments["reason"] == Reason.ACCURATE_REPORT
    )

    second = regulator.coin.apply_rule(e.address, "accurate_report", evidence=b"x", audit_key="k2")
    assert (second.debt_change, second.minted) == (-5 * COIN, 5 * COIN)
    assert regulator.coin.debt(e.address) == 0 and regulator.coin.balance(e.address) == 5 * COIN
    assert regulator.registry.can_trade(e.address)
    e.allowances.transfer(token, other.address, T(1))
    other.allowances.transfer(token, e.address, T("0.5"))
    assert regulator.allowances.balances(token, [e.address, other.address]) == {
        e.address: T("2.5") - T(1) + T("0.5"),
        other.address: T(5) + T(1) - T("0.5"),
    }


def test_an_enterprise_in_debt_can_still_surrender(market):
    """Surrender burns, it is not a transfer: debt does not stop an enterprise from complying."""
    e = market.enterprise()
    first = _closed_with(market, {e: T(3)}, {e: T(3)}, {})
    market.regulator.allowances.settle(first.id, [e.address])  # 30 coin: 10 burned, 20 owed
    second = in_reconciliation(market, CAP, {e: T(4)}, {e: T(4)})  # its accurate audit repays 10
    assert market.regulator.coin.debt(e.address) == 10 * COIN and not market.regulator.registry.can_trade(
        e.address
    )
    e.allowances.surrender(second.id, [(second.allowance, T(3)), (first.allowance, T(1))])  # banking, too
    assert e.allowances.compliance(second.id, e.address).state is ComplianceState.COMPLIANT
    assert market.regulator.allowances.balances(first.allowance, [e.address]) == {e.address: T(2)}
