"""Surrender: allowances of the period or earlier (banking), of the next period up to the borrowing share,
offsets up to the offset share, in total at most the audited emissions; all checked in the one transaction,
which burns everything or nothing."""

from __future__ import annotations

import pytest
from eth_account import Account

from carbon_sdk import Role, errors
from carbon_sdk.allowances import MAX_SURRENDER_TOKENS, ComplianceState, PeriodPhase, TokenKind
from carbon_sdk.errors import InvalidInput
from allowances_helpers import T, in_reconciliation, raw, report, unchanged, verify, verifier_of

CAP = T(10_000)


def _watch(market, periods, tokens, *holders):
    return dict(periods=[p.id for p in periods], tokens=tokens, holders=list(holders))


def _surrendered_events(client, tx_hash):
    return [
        (e.args["token"], e.args["kind"], e.args["vintage"], e.args["amount"])
        for e in client.allowances.contract.logs(["Surrendered"])
        if e.tx_hash == tx_hash
    ]


def test_surrender_burns_own_vintage_and_records_compliance(market):
    e = market.enterprise()
    period = in_reconciliation(market, CAP, {e: T(10)}, {e: T(8)})
    allowances = e.allowances
    token = allowances.token(period.allowance)

    first = allowances.surrender(period.id, [(period.allowance, T(5))])
    assert first.total == T(5) and first.enterprise == e.address
    assert [(i.token, i.kind, i.vintage, i.amount) for i in first.items] == [
        (period.allowance, TokenKind.ALLOWANCE, period.id, T(5))
    ]
    assert _surrendered_events(e, first.tx_hash) == [(period.allowance, TokenKind.ALLOWANCE, period.id, T(5))]
    assert allowances.balance(period.allowance, e.address) == T(5) and token.call("totalSupply") == T(5)
    info = allowances.token_info(period.allowance)
    assert (info["issued"], info["surrendered"]) == (T(10), T(5))  # issued = supply + surrendered
    assert allowances.period(period.id).surrendered == T(5)
    status = allowances.compliance(period.id, e.address)
    assert (status.state, status.verified_emissions, status.surrendered, status.outstanding) == (
        ComplianceState.DUE,
        T(8),
        T(5),
        T(3),
    )

    allowances.surrender(period.id, {period.allowance: T(3)})
    status = allowances.compliance(period.id, e.address)
    assert (status.state, status.surrendered, status.outstanding, status.shortfall) == (
        ComplianceState.COMPLIANT,
        T(8),
        0,
        0,
    )
    assert token.call("totalSupply") == T(2)


def test_surrender_needs_audited_emissions(market):
    reported, endorsed, silent = market.enterprise(), market.enterprise(), market.enterprise()
    period = in_reconciliation(market, CAP, {reported: T(5), endorsed: T(5), silent: T(5)}, {})
    report(reported, period.id, T(5))
    version = report(endorsed, period.id, T(5))
    verifier_of(market).mrv.endorse(
        period.id, endorsed.address, version, verified_quantity=T(5), evidence=b"e"
    )
    with unchanged(market, **_watch(market, [period], [], reported, endorsed, silent)):
        for e in (reported, endorsed, silent):
            with pytest.raises(errors.AllowancesNotVerified) as info:
                e.allowances.surrender(period.id, [(period.allowance, T(1))])
            assert info.value.arguments == {"period": period.id, "enterprise": e.address}
            with pytest.raises(errors.AllowancesNotVerified):
                raw(e, "surrender", period.id, [period.allowance], [T(1)])
            assert e.allowances.compliance(period.id, e.address).state is ComplianceState.NOT_VERIFIED


@pytest.mark.parametrize("phase", [PeriodPhase.OPEN, PeriodPhase.TRADING, PeriodPhase.CLOSED])
def test_surrender_only_in_reconciliation(market, phase):
    e = market.enterprise()
    period = market.open_period(CAP)
    market.regulator.allowances.allocate(period.id, {e.address: T(5)})
    if phase is PeriodPhase.CLOSED:
        market.to_phase(period.id, PeriodPhase.RECONCILIATION)
        verify(market, period.id, e, T(5))
    market.to_phase(period.id, phase)
    with unchanged(market, **_watch(market, [period], [], e)):
        with pytest.raises(errors.AllowancesWrongPhase) as info:
            e.allowances.surrender(period.id, [(period.allowance, T(1))])
    assert info.value.arguments == {"period": period.id, "phase": phase}


def test_banking_an_earlier_vintage_covers_a_later_period(market):
    e = market.enterprise()
    earlier = market.open_period(CAP)
    market.regulator.allowances.allocate(earlier.id, {e.address: T(7)})
    later = in_reconciliation(market, CAP, {e: T(1)}, {e: T(8)})
    done = e.allowances.surrender(later.id, [(earlier.allowance, T(7)), (later.allowance, T(1))])
    assert [(i.vintage, i.amount) for i in done.items] == [(earlier.id, T(7)), (later.id, T(1))]
    status = e.allowances.compliance(later.id, e.address)
    assert (status.state, status.surrendered, status.borrowed, status.offsets) == (
        ComplianceState.COMPLIANT,
        T(8),
        0,
        0,
    )
    # the earlier vintage's record counts its surrendered units, whatever period they covered
    assert e.allowances.period(earlier.id).surrendered == T(7)
    assert e.allowances.token_info(earlier.allowance)["surrendered"] == T(7)
    assert e.allowances.compliance(earlier.id, e.address).surrendered == 0


def test_a_later_vintage_is_ineligible_unless_it_is_the_next_within_the_borrowing_share(market):
    e = market.enterprise()
    period = market.open_period(CAP)  # borrow_share_bps=0 by default
    following = market.open_period(CAP)
    after = market.open_period(CAP)
    allowances = market.regulator.allowances
    allowances.allocate(period.id, {e.address: T(10)})
    allowances.allocate(following.id, {e.address: T(10)})
    allowances.allocate(after.id, {e.address: T(10)})
    market.to_phase(period.id, PeriodPhase.RECONCILIATION)
    verify(market, period.id, e, T(10))
    watch = _watch(market, [period, following, after], [], e)
    with unchanged(market, **watch):
        with pytest.raises(errors.AllowancesIneligibleVintage) as info:
            e.allowances.surrender(period.id, [(period.allowance, T(1)), (after.allowance, T(1))])
        assert info.value.arguments == {"token": after.allowance, "vintage": after.id, "period": period.id}
        with pytest.raises(errors.AllowancesBorrowLimitExceeded) as info:
            e.allowances.surrender(period.id, [(period.allowance, T(1)), (following.allowance, 1)])
        assert info.value.arguments == {
            "period": period.id,
            "enterprise": e.address,
            "limit": 0,
            "requested": 1,
        }
    assert e.allowances.compliance(period.id, e.address).borrow_limit == 0


def test_borrowing_the_next_vintage_up_to_its_share(market):
    e = market.enterprise()
    allowances = market.regulator.allowances
    period = market.open_period(CAP, borrow_share_bps=1_000)  # 10 %
    following = market.open_period(CAP)
    allowances.allocate(period.id, {e.address: T(20)})
    allowances.allocate(following.id, {e.address: T(10)})
    market.to_phase(period.id, PeriodPhase.RECONCILIATION)
    verify(market, period.id, e, T(20))  # borrow limit 2 t
    assert e.allowances.compliance(period.id, e.address).borrow_limit == T(2)
    watch = _watch(market, [period, following], [], e)

    with unchanged(
        market, **watch
    ):  # above the share in one transaction: nothing burned, not even the own vintage
        with pytest.raises(errors.AllowancesBorrowLimitExceeded) as info:
            e.allowances.surrender(period.id, [(period.allowance, T(5)), (following.allowance, T(2) + 1)])
    assert info.value.arguments == {
        "period": period.id,
        "enterprise": e.address,
        "limit": T(2),
        "requested": T(2) + 1,
    }

    done = e.allowances.surrender(period.id, [(following.allowance, T("1.5"))])
    assert [(i.kind, i.vintage) for i in done.items] == [(TokenKind.ALLOWANCE, following.id)]
    e.allowances.surrender(period.id, [(following.allowance, T("0.5"))])  # exactly the limit, over two calls
    status = e.allowances.compliance(period.id, e.address)
    assert (status.borrowed, status.surrendered, status.state) == (T(2), T(2), ComplianceState.DUE)
    assert e.allowances.period(following.id).surrendered == T(2)

    with unchanged(market, **watch):  # the limit is cumulative
        with pytest.raises(errors.AllowancesBorrowLimitExceeded) as info:
            e.allowances.surrender(period.id, [(following.allowance, 1)])
    assert info.value.arguments == {
        "period": period.id,
        "enterprise": e.address,
        "limit": T(2),
        "requested": T(2) + 1,
    }


def test_offsets_are_limited_to_their_share_in_the_same_transaction(market):
    e = market.enterprise()
    regulator = market.regulator
    project = regulator.allowances.register_offset_project("Surrender CCER", "ccer").project_id
    period = in_reconciliation(market, CAP, {e: T(100)}, {e: T(100)})  # default share 5 %: 5 t
    offsets = regulator.allowances.issue_offsets(project, period.id, {e.address: T(10)}).token
    watch = _watch(market, [period], [offsets], e)
    assert e.allowances.compliance(period.id, e.address).offset_limit == T(5)

    with unchanged(market, **watch):
        with pytest.raises(errors.AllowancesOffsetLimitExceeded) as info:
            e.allowances.surrender(period.id, [(period.allowance, T(90)), (offsets, T(5) + 1)])
    assert info.value.arguments == {
        "period": period.id,
        "enterprise": e.address,
        "limit": T(5),
        "requested": T(5) + 1,
    }

    done = e.allowances.surrender(period.id, [(period.allowance, T(90)), (offsets, T(4))])
    assert [(i.kind, i.amount) for i in done.items] == [
        (TokenKind.ALLOWANCE, T(90)),
        (TokenKind.OFFSET, T(4)),
    ]
    assert e.allowances.token_info(offsets)["surrendered"] == T(4)
    assert e.allowances.token(offsets).call("totalSupply") == T(6)

    with unchanged(market, **watch):  # 4 t used: one more tonne is above the 5 t limit
        with pytest.raises(errors.AllowancesOffsetLimitExceeded) as info:
            e.allowances.surrender(period.id, [(offsets, T(1) + 1)])
    assert info.value.arguments["requested"] == T(5) + 1
    e.allowances.surrender(period.id, [(offsets, T(1)), (period.allowance, T(5))])
    status = e.allowances.compliance(period.id, e.address)
    assert (status.state, status.offsets, status.surrendered) == (ComplianceState.COMPLIANT, T(5), T(100))


def test_offsets_of_a_later_vintage_are_ineligible_earlier_ones_are_fine(market):
    e = market.enterprise()
    regulator = market.regulator
    project = regulator.allowances.register_offset_project("Vintage CCER", "ccer").project_id
    period = in_reconciliation(market, CAP, {e: T(100)}, {e: T(100)})
    early = regulator.allowances.issue_offsets(project, period.id - 1, {e.address: T(2)}).token
    late = regulator.allowances.issue_offsets(project, period.id + 1, {e.address: T(2)}).token
    with unchanged(market, **_watch(market, [period], [early, late], e)):
        with pytest.raises(errors.AllowancesIneligibleVintage) as info:
            e.allowances.surrender(period.id, [(early, T(1)), (late, T(1))])
    assert info.value.arguments == {"token": late, "vintage": period.id + 1, "period": period.id}
    e.allowances.surrender(period.id, [(early, T(2))])
    assert e.allowances.compliance(period.id, e.address).offsets == T(2)


def test_surrender_above_audited_emissions_is_refused(market):
    e = market.enterprise()
    period = in_reconciliation(market, CAP, {e: T(20)}, {e: T(8)})
    watch = _watch(market, [period], [], e)
    with unchanged(market, **watch):
        with pytest.raises(errors.AllowancesSurrenderExceedsEmissions) as info:
            e.allowances.surrender(period.id, [(period.allowance, T(8) + 1)])
    assert info.value.arguments == {
        "period": period.id,
        "enterprise": e.address,
        "verified": T(8),
        "requested": T(8) + 1,
    }
    e.allowances.surrender(period.id, [(period.allowance, T(6))])
    with unchanged(market, **watch):  # cumulative: 6 t already surrendered
        with pytest.raises(errors.AllowancesSurrenderExceedsEmissions) as info:
            raw(e, "surrender", period.id, [period.allowance, period.allowance], [T(1), T(1) + 1])
    assert info.value.arguments["requested"] == T(8) + 1 and info.value.tx_hash is not None


def test_surrender_above_the_balance_is_refused(market):
    e = market.enterprise()
    period = in_reconciliation(market, CAP, {e: T(3)}, {e: T(8)})
    with unchanged(market, **_watch(market, [period], [], e)):
        with pytest.raises(errors.ERC20InsufficientBalance) as info:
            e.allowances.surrender(period.id, [(period.allowance, T(3) + 1)])
        assert info.value.arguments == {"sender": e.address, "balance": T(3), "needed": T(3) + 1}
        with pytest.raises(errors.ERC20InsufficientBalance):
            raw(e, "surrender", period.id, [period.allowance], [T(3) + 1])


def test_surrender_of_an_unknown_token_is_refused(market):
    e = market.enterprise()
    period = in_reconciliation(market, CAP, {e: T(3)}, {e: T(3)})
    settlement = market.regulator.settlement.contract.address
    for token in (Account.create().address, settlement):
        with unchanged(market, **_watch(market, [period], [], e)):
            with pytest.raises(errors.AllowancesUnknownToken) as info:
                e.allowances.surrender(period.id, [(period.allowance, T(1)), (token, T(1))])
        assert info.value.arguments == {"token": token}


def test_only_active_enterprises_surrender(market):
    e = market.enterprise()
    period = in_reconciliation(market, CAP, {e: T(3)}, {e: T(3)})
    verifier = verifier_of(market)
    market.regulator.registry.suspend(e.address)
    with unchanged(market, **_watch(market, [period], [], e, verifier, market.regulator)):
        for caller in (verifier, market.regulator, e):
            with pytest.raises(errors.GuardMissingRole) as info:
                caller.allowances.surrender(period.id, [(period.allowance, T(1))])
            assert info.value.arguments == {"account": caller.address, "required": Role.ENTERPRISE}
    market.regulator.registry.reinstate(e.address)
    e.allowances.surrender(period.id, [(period.allowance, T(3))])
    assert e.allowances.compliance(period.id, e.address).state is ComplianceState.COMPLIANT


def test_malformed_surrenders_are_refused(market):
    e = market.enterprise()
    period = in_reconciliation(market, CAP, {e: T(3)}, {e: T(3)})
    token = period.allowance
    with unchanged(market, **_watch(market, [period], [], e)):
        with pytest.raises(InvalidInput, match="amount #1 must be a positive integer"):
            e.allowances.surrender(period.id, [(token, T(1)), (token, 0)])
        with pytest.raises(errors.AllowancesZeroAmount) as info:
            raw(e, "surrender", period.id, [token, token], [T(1), 0])
        assert info.value.arguments == {"index": 1}
        with pytest.raises(InvalidInput, match="a surrender names 1 to 32 tokens, got 0"):
            e.allowances.surrender(period.id, [])
        with pytest.raises(InvalidInput, match="names 1 to 32 tokens, got 33"):
            e.allowances.surrender(period.id, [(token, 1)] * 33)
        for tokens, amounts, error, arguments in (
            ([], [], errors.AllowancesBatchSize, {"size": 0, "max": MAX_SURRENDER_TOKENS}),
            ([token] * 33, [1] * 33, errors.AllowancesBatchSize, {"size": 33, "max": MAX_SURRENDER_TOKENS}),
            ([token, token], [1], errors.AllowancesLengthMismatch, {"tokens": 2, "amounts": 1}),
        ):
            with pytest.raises(error) as info:
                raw(e, "surrender", period.id, tokens, amounts)
            assert info.value.arguments == arguments
    # 32 tokens (the same one named 32 times) is within the bound
    e.allowances.surrender(period.id, [(token, 1)] * MAX_SURRENDER_TOKENS)
    assert e.allowances.compliance(period.id, e.address).surrendered == MAX_SURRENDER_TOKENS
