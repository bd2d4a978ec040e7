"""Compliance periods: opening (and every way to open one wrongly), regional caps, the phase life cycle,
advancing by the national regulator, and phase boundaries to the second."""

from __future__ import annotations

import pytest

from carbon_sdk import Role, errors
from carbon_sdk.allowances import PeriodPhase, TokenKind
from carbon_sdk.errors import InvalidInput
from allowances_helpers import T, raw, state, unchanged

CAP = T(1_000)


def _params(
    period: int,
    *,
    cap: int,
    trading: int,
    reconciliation: int,
    closes: int,
    offset_bps: int = 500,
    borrow_bps: int = 0,
) -> tuple:
    return (period, cap, trading, reconciliation, closes, offset_bps, borrow_bps)


def _next_id(market) -> int:
    return market.regulator.allowances.contract.call("lastPeriod") + 1


# ---------------------------------------------------------------- opening


def test_open_period_records_schedule_caps_and_creates_its_vintage_token(market):
    allowances = market.regulator.allowances
    previous = allowances.contract.call("lastPeriod")
    now = market.now()
    period = market.open_period(
        CAP, regional_caps={11: T(300), 22: T(200)}, offset_share_bps=700, borrow_share_bps=250
    )
    assert period.phase is PeriodPhase.OPEN
    assert (
        period.cap,
        period.allocated,
        period.regional_cap_total,
        period.national_allocated,
        period.surrendered,
    ) == (CAP, 0, T(500), 0, 0)
    assert period.national_reserve_available == T(500)
    assert (period.offset_share_bps, period.borrow_share_bps) == (700, 250)
    assert now <= period.opened_at.timestamp() < period.trading_at.timestamp()
    assert period.trading_at < period.reconciliation_at < period.closes_at
    assert period.previous == previous and period.next == 0
    assert allowances.contract.call("lastPeriod") == period.id
    assert [(c.region, c.cap, c.allocated) for c in allowances.regional_caps(period.id)] == [
        (11, T(300), 0),
        (22, T(200), 0),
    ]

    token = allowances.token(period.allowance)
    assert token.call("name") == f"Allowance {period.id}" and token.call("symbol") == f"CEA-{period.id}"
    assert token.call("decimals") == 6 and token.call("totalSupply") == 0
    assert token.call("vintage") == period.id and token.call("issuer") == allowances.contract.address
    info = allowances.token_info(period.allowance)
    assert (info["kind"], info["vintage"], info["surrendered"], info["issued"]) == (
        TokenKind.ALLOWANCE,
        period.id,
        0,
        0,
    )

    later = market.open_period(CAP)
    assert later.previous == period.id and allowances.period(period.id).next == later.id
    assert [p.id for p in allowances.periods()][-2:] == [period.id, later.id]


def test_unknown_period_is_phase_none_everywhere(market):
    allowances = market.regulator.allowances
    unknown = _next_id(market) + 100
    assert allowances.phase(unknown) is PeriodPhase.NONE
    assert allowances.contract.call("getPeriod", unknown)["phase"] == PeriodPhase.NONE
    with pytest.raises(errors.AllowancesUnknownPeriod) as sdk:
        allowances.period(unknown)
    assert sdk.value.arguments == {"period": unknown}
    status = allowances.compliance(unknown, market.regulator.address)
    assert status.phase is PeriodPhase.NONE and not status.verified and status.surrendered == 0
    with unchanged(market, periods=[unknown]):
        with pytest.raises(errors.AllowancesUnknownPeriod) as chain:
            raw(market.regulator, "advancePhase", unknown)
    assert chain.value.arguments == {"period": unknown} and chain.value.tx_hash is not None
    with unchanged(market, periods=[unknown]):
        with pytest.raises(errors.AllowancesUnknownPeriod) as info:
            allowances.set_regional_cap(unknown, 11, T(1))
    assert info.value.arguments == {"period": unknown}
    assert allowances.regional_cap(unknown, 11).cap == 0


def test_period_id_must_be_above_the_last(market):
    regulator = market.regulator
    last = market.open_period(CAP).id
    now = market.now()
    for period in (last, last - 1):
        with unchanged(market, periods=[last, period]):
            with pytest.raises(errors.AllowancesPeriodOrder) as info:
                regulator.allowances.open_period(
                    period, cap=CAP, trading_at=now + 100, reconciliation_at=now + 200, closes_at=now + 300
                )
        assert info.value.arguments == {"period": period, "last": last}


def test_schedule_must_be_ordered_and_in_the_future(market):
    regulator = market.regulator
    period = _next_id(market)
    now = market.now()
    # The SDK refuses a misordered schedule before sending...
    with unchanged(market, periods=[period]):
        with pytest.raises(InvalidInput, match="trading_at <= reconciliation_at <= closes_at"):
            regulator.allowances.open_period(
                period, cap=CAP, trading_at=now + 200, reconciliation_at=now + 100, closes_at=now + 300
            )
    # ...and the contract refuses every bad schedule itself.
    bad = [
        (now + 200, now + 100, now + 300),  # reconciliation before trading
        (now + 100, now + 300, now + 200),  # closes before reconciliation
        (now - 10, now + 100, now + 200),  # trading in the past
    ]
    for trading, reconciliation, closes in bad:
        with unchanged(market, periods=[period]):
            with pytest.raises(errors.AllowancesInvalidSchedule) as info:
                raw(
                    regulator,
                    "openPeriod",
                    _params(period, cap=CAP, trading=trading, reconciliation=reconciliation, closes=closes),
                    [],
                    [],
                )
        args = info.value.arguments
        assert (args["tradingAt"], args["reconciliationAt"], args["closesAt"]) == (
            trading,
            reconciliation,
            closes,
        )
        assert args["timestamp"] >= now and info.value.tx_hash is not None
    # closesAt must lie strictly after the opening block, even when the whole schedule is "now".
    at = market.now() + 5
    market.next_block_at(at)
    with unchanged(market, periods=[period]):
        with pytest.raises(errors.AllowancesInvalidSchedule) as info:
            raw(
                regulator,
                "openPeriod",
                _params(period, cap=CAP, trading=at, reconciliation=at, closes=at),
                [],
                [],
            )
    assert info.value.arguments == {"timestamp": at, "tradingAt": at, "reconciliationAt": at, "closesAt": at}


def test_shares_above_10000_bps_are_refused_by_sdk_and_contract(market):
    regulator = market.regulator
    period = _next_id(market)
    now = market.now()
    times = dict(trading_at=now + 100, reconciliation_at=now + 200, closes_at=now + 300)
    before = state(market, periods=[period])
    with pytest.raises(InvalidInput, match=r"offset_share_bps 10001 must be basis points from 0 to 10000"):
        regulator.allowances.open_period(period, cap=CAP, offset_share_bps=10_001, **times)
    with pytest.raises(InvalidInput, match=r"borrow_share_bps 10001 must be basis points"):
        regulator.allowances.open_period(period, cap=CAP, borrow_share_bps=10_001, **times)
    for offset_bps, borrow_bps in ((10_001, 0), (0, 10_001), (65_535, 0)):
        with pytest.raises(errors.AllowancesInvalidShare) as info:
            raw(
                regulator,
                "openPeriod",
                _params(
                    period,
                    cap=CAP,
                    trading=now + 100,
                    reconciliation=now + 200,
                    closes=now + 300,
                    offset_bps=offset_bps,
                    borrow_bps=borrow_bps,
                ),
                [],
                [],
            )
        assert info.value.arguments == {"bps": max(offset_bps, borrow_bps)}
    assert state(market, periods=[period]) == before
    # Exactly 10000 (100 %) is a valid share.
    opened = market.open_period(CAP, offset_share_bps=10_000, borrow_share_bps=10_000)
    assert (opened.offset_share_bps, opened.borrow_share_bps) == (10_000, 10_000)


def test_zero_cap_duplicate_or_national_region_and_zero_regional_cap_are_refused(market):
    regulator = market.regulator
    period = _next_id(market)
    now = market.now()
    times = dict(trading=now + 100, reconciliation=now + 200, closes=now + 300)
    with unchanged(market, periods=[period]):
        with pytest.raises(InvalidInput, match="cap must be a positive integer"):
            regulator.allowances.open_period(
                period, cap=0, trading_at=now + 100, reconciliation_at=now + 200, closes_at=now + 300
            )
        with pytest.raises(InvalidInput, match="regions other than 0"):
            regulator.allowances.open_period(
                period,
                cap=CAP,
                trading_at=now + 100,
                reconciliation_at=now + 200,
                closes_at=now + 300,
                regional_caps={0: T(1)},
            )
    cases = [
        (0, [], [], errors.AllowancesZeroCap, {}),
        (CAP, [11, 11], [T(1), T(2)], errors.AllowancesDuplicateRegion, {"region": 11}),
        (CAP, [0], [T(1)], errors.AllowancesDuplicateRegion, {"region": 0}),
        (CAP, [11, 22], [T(1), 0], errors.AllowancesZeroAmount, {"index": 1}),
        (CAP, [11, 22], [T(1)], errors.AllowancesLengthMismatch, {"tokens": 2, "amounts": 1}),
    ]
    for cap, regions, caps, error, arguments in cases:
        with unchanged(market, periods=[period]):
            with pytest.raises(error) as info:
                raw(regulator, "openPeriod", _params(period, cap=cap, **times), regions, caps)
        assert info.value.arguments == arguments


def test_regional_caps_above_the_national_cap_are_refused_at_opening(market):
    regulator = market.regulator
    period = _next_id(market)
    now = market.now()
    with unchanged(market, periods=[period]):
        with pytest.raises(
            InvalidInput, match="regional caps total 1,000.000001 t, more than the national cap"
        ):
            regulator.allowances.open_period(
                period,
                cap=CAP,
                trading_at=now + 100,
                reconciliation_at=now + 200,
                closes_at=now + 300,
                regional_caps={11: T(600), 22: T("400.000001")},
            )
        with pytest.raises(errors.AllowancesRegionalCapsExceedCap) as info:
            raw(
                regulator,
                "openPeriod",
                _params(period, cap=CAP, trading=now + 100, reconciliation=now + 200, closes=now + 300),
                [11, 22],
                [T(600), T("400.000001")],
            )
    assert info.value.arguments == {"period": period, "regionalTotal": CAP + 1, "cap": CAP}
    # Regional caps may take the whole cap: the national reserve is then empty.
    full = market.open_period(CAP, regional_caps={11: T(600), 22: T(400)})
    assert full.regional_cap_total == CAP and full.national_reserve_available == 0


def test_only_the_national_regulator_opens_periods(market):
    enterprise = market.enterprise()
    regional = market.regional_regulator(11)
    period = _next_id(market)
    now = market.now()
    kwargs = dict(cap=CAP, trading_at=now + 100, reconciliation_at=now + 200, closes_at=now + 300)
    with unchanged(market, periods=[period]):
        with pytest.raises(errors.GuardMissingRole) as info:
            enterprise.allowances.open_period(period, **kwargs)
        assert info.value.arguments == {"account": enterprise.address, "required": Role.REGULATOR}
        with pytest.raises(errors.AllowancesRegionMismatch) as info:
            regional.allowances.open_period(period, **kwargs)
        assert info.value.arguments == {"callerRegion": 11, "region": 0}


# ---------------------------------------------------------------- regional caps


def test_set_regional_cap_raises_lowers_and_adds_regions_within_the_cap(market):
    allowances = market.regulator.allowances
    period = market.open_period(CAP, regional_caps={11: T(300)}).id
    assert allowances.set_regional_cap(period, 11, T(500)).cap == T(500)
    assert allowances.set_regional_cap(period, 33, T(500)).cap == T(500)  # a new region takes the rest
    record = allowances.period(period)
    assert record.regional_cap_total == CAP and record.national_reserve_available == 0
    assert [c.region for c in allowances.regional_caps(period)] == [11, 33]
    assert allowances.set_regional_cap(period, 33, T(100)).cap == T(
        100
    )  # lowering frees the national reserve
    assert allowances.period(period).national_reserve_available == T(400)


def test_set_regional_cap_cannot_exceed_the_national_cap_or_go_below_allocations(market):
    regulator = market.regulator
    allowances = regulator.allowances
    north = market.enterprise(11)
    period = market.open_period(CAP, regional_caps={11: T(300), 22: T(200)}).id
    allowances.allocate(period, {north.address: T(250)}, region=11)
    allowances.allocate_for_sale(period, T(100))  # from the national reserve (500 t)
    watch = dict(periods=[period], holders=[north, regulator])

    with unchanged(market, **watch):
        # 300 + 200 regional + 100 allocated from the reserve: region 22 can grow to 600 t, not 600.000001 t.
        with pytest.raises(errors.AllowancesRegionalCapsExceedCap) as info:
            allowances.set_regional_cap(period, 22, T("600.000001"))
        # The error compares the regional total with what the cap leaves beside the reserve's 100 t.
        left = {"period": period, "regionalTotal": CAP - T(100) + 1, "cap": CAP - T(100)}
        assert info.value.arguments == left
        with pytest.raises(errors.AllowancesRegionalCapsExceedCap) as info:
            allowances.set_regional_cap(period, 44, T("400.000001"))
        assert info.value.arguments == left
        with pytest.raises(errors.AllowancesRegionalCapBelowAllocated) as info:
            allowances.set_regional_cap(period, 11, T(250) - 1)
        assert info.value.arguments == {
            "period": period,
            "region": 11,
            "cap": T(250) - 1,
            "allocated": T(250),
        }
        with pytest.raises(errors.AllowancesDuplicateRegion) as info:
            allowances.set_regional_cap(period, 0, T(1))
        assert info.value.arguments == {"region": 0}
    assert allowances.set_regional_cap(period, 22, T(600)).cap == T(600)  # exactly the cap is fine
    assert allowances.set_regional_cap(period, 11, T(250)).cap == T(250)  # exactly what it allocated is fine


def test_set_regional_cap_needs_the_national_regulator_and_an_unclosed_period(market):
    regional = market.regional_regulator(11)
    enterprise = market.enterprise(11)
    period = market.open_period(CAP, regional_caps={11: T(300)}).id
    with unchanged(market, periods=[period]):
        with pytest.raises(errors.AllowancesRegionMismatch) as info:
            regional.allowances.set_regional_cap(period, 11, T(400))
        assert info.value.arguments == {"callerRegion": 11, "region": 0}
        with pytest.raises(errors.GuardMissingRole) as info:
            enterprise.allowances.set_regional_cap(period, 11, T(400))
        assert info.value.arguments == {"account": enterprise.address, "required": Role.REGULATOR}
    market.to_phase(period, PeriodPhase.CLOSED)
    with unchanged(market, periods=[period]):
        with pytest.raises(errors.AllowancesWrongPhase) as info:
            market.regulator.allowances.set_regional_cap(period, 11, T(400))
    assert info.value.arguments == {"period": period, "phase": PeriodPhase.CLOSED}


def test_regions_set_to_zero_and_back_are_listed_once(market):
    allowances = market.regulator.allowances
    period = market.open_period(CAP).id
    allowances.set_regional_cap(period, 55, T(10))
    allowances.set_regional_cap(period, 55, 0)
    allowances.set_regional_cap(period, 55, T(20))
    assert allowances.contract.call("periodRegions", period) == [55]
    assert [(c.region, c.cap) for c in allowances.regional_caps(period)] == [(55, T(20))]


def test_the_mrv_contract_is_bound_once(market):
    manager = market.regulator.allowances.contract
    mrv = market.manifest.contract("EmissionsMRV").address
    assert manager.call("mrv") == mrv
    enterprise = market.enterprise()
    with unchanged(market):
        with pytest.raises(errors.AllowancesMrvAlreadySet) as info:
            raw(market.regulator, "setMrv", enterprise.address)
        assert info.value.arguments == {"mrv": mrv}
        with pytest.raises(errors.GuardMissingRole) as info:
            raw(enterprise, "setMrv", enterprise.address)
        assert info.value.arguments == {"account": enterprise.address, "required": Role.REGULATOR}
    assert manager.call("mrv") == mrv


# ---------------------------------------------------------------- advancing


def test_national_regulator_advances_through_every_phase(market):
    allowances = market.regulator.allowances
    period = market.open_period(CAP).id
    seen = []
    for expected in (PeriodPhase.TRADING, PeriodPhase.RECONCILIATION, PeriodPhase.CLOSED):
        assert allowances.advance_phase(period) is expected
        seen.append(market.now())
        assert allowances.phase(period) is expected
    record = allowances.period(period)
    # Each advance ends the current phase at the block's time.
    assert [
        int(t.timestamp()) for t in (record.trading_at, record.reconciliation_at, record.closes_at)
    ] == seen
    with unchanged(market, periods=[period]):
        with pytest.raises(errors.AllowancesWrongPhase) as info:
            allowances.advance_phase(period)
    assert info.value.arguments == {"period": period, "phase": PeriodPhase.CLOSED}


def test_only_the_national_regulator_advances(market):
    period = market.open_period(CAP).id
    regional = market.regional_regulator(11)
    enterprise = market.enterprise(11)
    with unchanged(market, periods=[period]):
        with pytest.raises(errors.AllowancesRegionMismatch) as info:
            regional.allowances.advance_phase(period)
        assert info.value.arguments == {"callerRegion": 11, "region": 0}
        with pytest.raises(errors.GuardMissingRole) as info:
            enterprise.allowances.advance_phase(period)
        assert info.value.arguments == {"account": enterprise.address, "required": Role.REGULATOR}
        # the contract itself, not only the estimate, refuses
        with pytest.raises(errors.AllowancesRegionMismatch) as info:
            raw(regional, "advancePhase", period)
        assert info.value.tx_hash is not None
    assert market.regulator.allowances.phase(period) is PeriodPhase.OPEN


def test_phase_follows_the_clock_one_second_either_side_of_every_boundary(market):
    allowances = market.regulator.allowances
    period = market.open_period(CAP, trading_in=1_000, reconciliation_in=2_000, closes_in=3_000)
    boundaries = [
        (int(period.trading_at.timestamp()), PeriodPhase.OPEN, PeriodPhase.TRADING),
        (int(period.reconciliation_at.timestamp()), PeriodPhase.TRADING, PeriodPhase.RECONCILIATION),
        (int(period.closes_at.timestamp()), PeriodPhase.RECONCILIATION, PeriodPhase.CLOSED),
    ]
    for at, before, after in boundaries:
        for offset, expected in ((-1, before), (0, after), (1, after)):
            market.mine_at(at + offset)
            assert market.now() == at + offset
            assert allowances.phase(period.id) is expected, (at, offset)
