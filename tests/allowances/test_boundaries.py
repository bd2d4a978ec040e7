"""Phase boundaries to the second, in transactions: an action allowed in a phase goes through one second
before the boundary and is refused, with the phase it met, at the boundary and one second after.

How the clock is set: ``market.next_block_at(ts)`` (evm_setNextBlockTimestamp) makes the next mined block
carry ``ts``. anvil's eth_estimateGas runs against that pending block, so it already sees ``ts``: the SDK's
estimate refuses a call that the boundary forbids before anything is sent (``tx_hash is None``), and nothing
is mined, so the timestamp is still pending. To prove that the contract itself refuses it in a mined block,
the same call is then sent with an explicit gas limit (a ``Call`` with ``gas`` skips the estimate): it is
mined at ``ts``, reverts, and the SDK decodes the error from the mined transaction (``tx_hash`` set). The SDK
recovers that error by replaying the transaction on the parent block's state with the mined block's number and
timestamp as block overrides (carbon_sdk/tx.py, ``_revert_reason``); replayed in the parent block's own
context, a revert caused by the deadline itself would not reproduce and would come back as an undecoded
``TransactionReverted``.
"""

from __future__ import annotations

import pytest

from carbon_sdk import errors
from carbon_sdk.allowances import ComplianceState, PeriodPhase
from allowances_helpers import T, block_time, raw, state, tx_status, unchanged, verify

CAP = T(1_000)


def _refused_at(market, ts, client, sdk_call, function, *args, phase, period, watch):
    """At ``ts`` the SDK refuses before sending, then the contract refuses the mined transaction."""
    market.next_block_at(ts)
    before = state(market, **watch, timeless=True)  # the phase itself moves across the boundary
    with pytest.raises(errors.AllowancesWrongPhase) as estimated:
        sdk_call()
    assert estimated.value.arguments == {"period": period, "phase": phase}
    assert estimated.value.tx_hash is None  # refused by the estimate: nothing sent, the clock still pending
    with pytest.raises(errors.AllowancesWrongPhase) as mined:
        raw(client, function, *args)
    assert mined.value.arguments == {"period": period, "phase": phase}
    assert tx_status(client, mined.value.tx_hash) == 0 and block_time(client, mined.value.tx_hash) == ts
    assert state(market, **watch, timeless=True) == before


def test_trading_at_boundary_changes_the_phase_a_transaction_sees(market):
    """Nothing is refused at tradingAt (allocation runs in OPEN and TRADING), so the boundary shows in the
    phase that an early surrender meets, and in allocation going through on both sides."""
    regulator = market.regulator
    enterprise = market.enterprise()
    period = market.open_period(CAP, trading_in=1_000)
    at = int(period.trading_at.timestamp())
    token = period.allowance
    for offset, phase in ((-1, PeriodPhase.OPEN), (0, PeriodPhase.TRADING), (1, PeriodPhase.TRADING)):
        market.next_block_at(at + offset)
        allocation = regulator.allowances.allocate(period.id, {enterprise.address: T(1)})
        assert block_time(regulator, allocation.tx_hashes[0]) == at + offset
        market.next_block_at(at + offset)  # the next block carries the same second (anvil allows it)
        with unchanged(market, periods=[period.id], holders=[enterprise]):
            with pytest.raises(errors.AllowancesWrongPhase) as info:
                raw(enterprise, "surrender", period.id, [token], [T(1)])
        assert info.value.arguments == {"period": period.id, "phase": phase}
        assert block_time(enterprise, info.value.tx_hash) == at + offset
    assert regulator.allowances.balance(token, enterprise.address) == T(3)


def test_allocation_is_accepted_until_reconciliation_at_and_refused_from_it(market):
    regulator = market.regulator
    enterprise = market.enterprise()
    period = market.open_period(CAP, trading_in=10, reconciliation_in=1_000)
    at = int(period.reconciliation_at.timestamp())
    watch = dict(periods=[period.id], holders=[enterprise, regulator])

    market.next_block_at(at - 1)
    allocation = regulator.allowances.allocate(period.id, {enterprise.address: T(5)})
    assert block_time(regulator, allocation.tx_hashes[0]) == at - 1
    assert regulator.allowances.period(period.id).allocated == T(5)

    for ts in (at, at + 1):
        _refused_at(
            market,
            ts,
            regulator,
            lambda: regulator.allowances.allocate(period.id, {enterprise.address: T(5)}),
            "allocateForSale",
            period.id,
            0,
            T(5),
            phase=PeriodPhase.RECONCILIATION,
            period=period.id,
            watch=watch,
        )
    assert regulator.allowances.balance(period.allowance, enterprise.address) == T(5)


def test_surrender_is_accepted_until_closes_at_and_refused_from_it(market):
    regulator = market.regulator
    enterprise = market.enterprise()
    period = market.open_period(CAP, reconciliation_in=2_000, closes_in=5_000)
    regulator.allowances.allocate(period.id, {enterprise.address: T(10)})
    market.to_phase(period.id, PeriodPhase.RECONCILIATION)  # moves tradingAt and reconciliationAt to now
    verify(market, period.id, enterprise, T(10))
    at = int(period.closes_at.timestamp())
    token = period.allowance
    watch = dict(periods=[period.id], holders=[enterprise])

    market.next_block_at(at - 1)
    done = enterprise.allowances.surrender(period.id, [(token, T(4))])
    assert block_time(enterprise, done.tx_hash) == at - 1 and done.total == T(4)

    for ts in (at, at + 1):
        _refused_at(
            market,
            ts,
            enterprise,
            lambda: enterprise.allowances.surrender(period.id, [(token, T(1))]),
            "surrender",
            period.id,
            [token],
            [T(1)],
            phase=PeriodPhase.CLOSED,
            period=period.id,
            watch=watch,
        )
    status = regulator.allowances.compliance(period.id, enterprise.address)
    assert (status.state, status.surrendered, status.shortfall) == (ComplianceState.SHORTFALL, T(4), T(6))
    assert regulator.allowances.balance(token, enterprise.address) == T(6)


def test_settle_is_refused_until_closes_at_and_accepted_from_it(market):
    regulator = market.regulator
    enterprise = market.enterprise()
    period = market.open_period(CAP, reconciliation_in=2_000, closes_in=5_000)
    market.to_phase(period.id, PeriodPhase.RECONCILIATION)
    verify(market, period.id, enterprise, T(2))  # and surrenders nothing: a shortfall of 2 t
    at = int(period.closes_at.timestamp())
    watch = dict(periods=[period.id], holders=[enterprise])

    market.next_block_at(at - 1)
    before = state(market, **watch, timeless=True)
    with pytest.raises(errors.AllowancesWrongPhase) as estimated:
        regulator.allowances.settle(period.id, [enterprise.address])
    assert estimated.value.arguments == {"period": period.id, "phase": PeriodPhase.RECONCILIATION}
    with pytest.raises(errors.AllowancesWrongPhase) as mined:
        raw(regulator, "settle", period.id, [enterprise.address])
    assert mined.value.arguments == {"period": period.id, "phase": PeriodPhase.RECONCILIATION}
    assert block_time(regulator, mined.value.tx_hash) == at - 1
    assert state(market, **watch, timeless=True) == before

    market.next_block_at(at)
    [outcome] = regulator.allowances.settle(period.id, [enterprise.address])
    assert block_time(regulator, outcome.tx_hash) == at
    assert (outcome.state, outcome.shortfall) == (ComplianceState.SHORTFALL, T(2))


def test_reports_are_accepted_from_reconciliation_at(market):
    """The MRV contract asks the manager for the phase: a report one second early meets TRADING."""
    enterprise = market.enterprise()
    period = market.open_period(CAP, trading_in=10, reconciliation_in=1_000)
    at = int(period.reconciliation_at.timestamp())
    market.next_block_at(at - 1)
    with pytest.raises(errors.MrvWrongPhase) as info:
        enterprise.transact(
            enterprise.mrv.contract.tx(
                "submitReport",
                period.id,
                1,
                [T(1)] + [0] * (len(enterprise.mrv.gwp_table().gases) - 1),
                bytes(32 * [0x11]),
                bytes(32 * [0x22]),
                gas=500_000,
            )
        )
    assert info.value.arguments == {"period": period.id, "phase": PeriodPhase.TRADING}
    assert block_time(enterprise, info.value.tx_hash) == at - 1
    assert enterprise.mrv.report_count(period.id, enterprise.address) == 0
    market.next_block_at(at)
    report = enterprise.mrv.submit_report(
        period.id, {"CO2": T(1)}, readings_root="0x" + "11" * 32, report_document=b"doc"
    )
    assert report.version == 1 and int(report.submitted_at.timestamp()) == at
