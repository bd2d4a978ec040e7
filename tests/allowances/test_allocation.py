"""Allocation: free (in batches) and for sale, national reserve and regional caps. The cap is never exceeded,
whatever the path; every refusal names its error and leaves balances, supply and the period as they were."""

from __future__ import annotations

import pytest
from eth_account import Account

from carbon_sdk import Role, errors
from carbon_sdk.allowances import MAX_GRANTS, PeriodPhase
from carbon_sdk.errors import InvalidInput
from allowances_helpers import T, grants, nonce, raw, tx_status, unchanged

CAP = T(1_000)
NORTH, SOUTH = 11, 22


@pytest.fixture(scope="module")
def cast(market):
    """Members shared by this module's tests: national and regional enterprises, regional regulators."""
    return {
        "a": market.enterprise(),
        "b": market.enterprise(),
        "north": market.enterprise(NORTH),
        "north2": market.enterprise(NORTH),
        "south": market.enterprise(SOUTH),
        "reg_north": market.regional_regulator(NORTH),
        "reg_south": market.regional_regulator(SOUTH),
    }


def _open(market, cap=CAP, north=T(300), south=T(200), **options):
    return market.open_period(cap, regional_caps={NORTH: north, SOUTH: south}, **options)


def _everyone(market, cast):
    return [c for c in cast.values()] + [market.regulator]


# ---------------------------------------------------------------- behaviour


def test_free_allocation_mints_each_grant_from_the_national_reserve(market, cast):
    allowances = market.regulator.allowances
    period = _open(market)
    a, b, north = cast["a"].address, cast["b"].address, cast["north"].address
    result = allowances.allocate(period.id, [(a, T(10)), (b, T("2.5")), (north, T(1)), (a, T(5))])
    assert result.grants == {a: T(15), b: T("2.5"), north: T(1)} and result.total == T("18.5")
    assert len(result.tx_hashes) == 1 and not result.for_sale and result.region == 0
    assert allowances.balances(period.allowance, [a, b, north]) == {a: T(15), b: T("2.5"), north: T(1)}
    record = allowances.period(period.id)
    assert (record.allocated, record.national_allocated) == (T("18.5"), T("18.5"))
    assert allowances.token(period.allowance).call("totalSupply") == T("18.5")
    assert allowances.token_info(period.allowance)["issued"] == T("18.5")
    assert [(m["recipient"], m["amount"]) for m in allowances.allocations(period.id)] == [
        (a, T(10)),
        (b, T("2.5")),
        (north, T(1)),
        (a, T(5)),
    ]
    [event] = [e for e in allowances.contract.logs(["Allocated"]) if e.tx_hash == result.tx_hashes[0]]
    assert event.args == {
        "period": period.id,
        "region": 0,
        "by": market.regulator.address,
        "recipients": 4,
        "total": T("18.5"),
        "forSale": False,
    }


def test_allocation_in_batches_sends_one_transaction_per_batch(market, cast):
    allowances = market.regulator.allowances
    period = _open(market)
    pairs = [(cast[k].address, T(i + 1)) for i, k in enumerate(["a", "b", "north", "north2", "south"])]
    done = []
    result = allowances.allocate(period.id, pairs, batch_size=2, progress=done.append)
    assert len(result.tx_hashes) == 3 and sum(done) == 5
    assert allowances.period(period.id).national_allocated == T(15)
    assert allowances.balances(period.allowance, [a for a, _ in pairs]) == dict(pairs)


def test_regional_regulator_allocates_within_its_region(market, cast):
    allowances = cast["reg_north"].allowances
    period = _open(market)
    north, north2 = cast["north"].address, cast["north2"].address
    allowances.allocate(period.id, {north: T(100), north2: T(150)}, region=NORTH)
    sale = allowances.allocate_for_sale(period.id, T(50), region=NORTH)
    assert sale.for_sale and sale.grants == {cast["reg_north"].address: T(50)}
    assert allowances.balances(period.allowance, [north, north2, cast["reg_north"].address]) == {
        north: T(100),
        north2: T(150),
        cast["reg_north"].address: T(50),
    }
    cap = allowances.regional_cap(period.id, NORTH)
    assert (cap.cap, cap.allocated, cap.available) == (T(300), T(300), 0)
    record = allowances.period(period.id)
    assert (record.allocated, record.national_allocated) == (T(300), 0)
    assert allowances.regional_cap(period.id, SOUTH).allocated == 0


def test_national_regulator_may_allocate_from_a_regional_cap(market, cast):
    allowances = market.regulator.allowances
    period = _open(market)
    allowances.allocate(period.id, {cast["south"].address: T(200)}, region=SOUTH)
    assert allowances.regional_cap(period.id, SOUTH).available == 0
    assert allowances.period(period.id).national_allocated == 0


def test_allocation_for_sale_mints_to_the_calling_regulator(market, cast):
    regulator = market.regulator
    period = _open(market)
    sale = regulator.allowances.allocate_for_sale(period.id, T(400))
    assert sale.for_sale and sale.grants == {regulator.address: T(400)} and sale.total == T(400)
    assert regulator.allowances.balance(period.allowance, regulator.address) == T(400)
    record = regulator.allowances.period(period.id)
    assert (record.allocated, record.national_allocated) == (T(400), T(400))
    [event] = [e for e in regulator.allowances.contract.logs(["Allocated"]) if e.tx_hash == sale.tx_hashes[0]]
    assert event.args["forSale"] is True and event.args["recipients"] == 1


def test_a_batch_of_exactly_500_grants_is_one_transaction(market):
    """MAX_GRANTS recipients in one allocate call: every one minted, the cap consumed by the exact total."""
    admin = market.enterprise()
    members = [Account.create().address for _ in range(MAX_GRANTS - 1)]
    admin.registry.enrol_batch(members, Role.ENTERPRISE)
    recipients = [admin.address] + members
    period = market.open_period(T(10_000))
    result = market.regulator.allowances.allocate(
        period.id, {r: i + 1 for i, r in enumerate(recipients)}, batch_size=MAX_GRANTS
    )
    assert len(result.tx_hashes) == 1
    total = MAX_GRANTS * (MAX_GRANTS + 1) // 2
    assert result.total == total and market.regulator.allowances.period(period.id).allocated == total
    balances = market.regulator.allowances.balances(period.allowance, recipients)
    assert [balances[r] for r in recipients] == list(range(1, MAX_GRANTS + 1))


# ---------------------------------------------------------------- the cap, by every path


def test_national_reserve_overflow_is_refused_by_the_sdk_and_by_the_contract(market, cast):
    regulator = market.regulator
    period = _open(market)  # reserve: 1000 - 300 - 200 = 500 t
    a = cast["a"].address
    regulator.allowances.allocate(period.id, {a: T(499)})
    watch = dict(periods=[period.id], holders=_everyone(market, cast))
    expected = {"period": period.id, "region": 0, "available": T(1), "requested": T(1) + 1}
    with unchanged(market, **watch):
        sent = nonce(regulator)
        with pytest.raises(errors.AllowancesCapExceeded) as sdk:
            regulator.allowances.allocate(period.id, {a: T(1) + 1})
        assert sdk.value.arguments == expected and sdk.value.tx_hash is None
        assert nonce(regulator) == sent
        with pytest.raises(errors.AllowancesCapExceeded) as chain:
            raw(regulator, "allocate", period.id, 0, grants((a, T(1) + 1)))
        assert chain.value.arguments == expected
        assert tx_status(regulator, chain.value.tx_hash) == 0  # mined, and reverted by the contract
        with pytest.raises(errors.AllowancesCapExceeded) as sale:
            raw(regulator, "allocateForSale", period.id, 0, T(1) + 1)
        assert sale.value.arguments == expected
    regulator.allowances.allocate(period.id, {a: T(1)})  # exactly the rest is fine
    assert regulator.allowances.period(period.id).national_reserve_available == 0


def test_batches_summing_above_the_cap_send_nothing_and_the_contract_stops_the_overflowing_batch(
    market, cast
):
    regulator = market.regulator
    allowances = regulator.allowances
    period = _open(market)  # reserve 500 t
    a, b = cast["a"].address, cast["b"].address
    pairs = [(a, T(150)), (b, T(150)), (a, T(150)), (b, T(50) + 1)]  # each batch of 2 fits, the sum does not
    watch = dict(periods=[period.id], holders=_everyone(market, cast))
    with unchanged(market, **watch):
        block, sent = market.regulator.block_number(), nonce(regulator)
        with pytest.raises(errors.AllowancesCapExceeded) as sdk:
            allowances.allocate(period.id, pairs, batch_size=2)
        assert sdk.value.arguments == {
            "period": period.id,
            "region": 0,
            "available": T(500),
            "requested": T(500) + 1,
        }
        assert (market.regulator.block_number(), nonce(regulator)) == (block, sent)  # not one batch sent

    # Sent as raw transactions, the first batch fits and the contract refuses the second.
    first = raw(regulator, "allocate", period.id, 0, grants(*pairs[:2]))
    assert first.block_number > block
    with pytest.raises(errors.AllowancesCapExceeded) as chain:
        raw(regulator, "allocate", period.id, 0, grants(*pairs[2:]))
    assert chain.value.arguments == {
        "period": period.id,
        "region": 0,
        "available": T(200),
        "requested": T(200) + 1,
    }
    assert allowances.balances(period.allowance, [a, b]) == {a: T(150), b: T(150)}
    assert allowances.period(period.id).allocated == T(300)
    assert allowances.token(period.allowance).call("totalSupply") == T(300)


def test_regional_cap_overflow_is_refused_for_free_and_paid_allocation(market, cast):
    reg_north = cast["reg_north"]
    period = _open(market)
    north = cast["north"].address
    reg_north.allowances.allocate(period.id, {north: T(250)}, region=NORTH)
    expected = {"period": period.id, "region": NORTH, "available": T(50), "requested": T(50) + 1}
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        with pytest.raises(errors.AllowancesCapExceeded) as sdk:
            reg_north.allowances.allocate(period.id, {north: T(50) + 1}, region=NORTH)
        assert sdk.value.arguments == expected and sdk.value.tx_hash is None
        with pytest.raises(errors.AllowancesCapExceeded) as chain:
            raw(reg_north, "allocate", period.id, NORTH, grants((north, T(50) + 1)))
        assert chain.value.arguments == expected and chain.value.tx_hash is not None
        with pytest.raises(errors.AllowancesCapExceeded) as sale:
            reg_north.allowances.allocate_for_sale(period.id, T(50) + 1, region=NORTH)
        assert sale.value.arguments == expected
        # A region without a cap has nothing to allocate.
        with pytest.raises(errors.AllowancesCapExceeded) as none:
            market.regulator.allowances.allocate_for_sale(period.id, 1, region=99)
        assert none.value.arguments == {"period": period.id, "region": 99, "available": 0, "requested": 1}


def test_national_reserve_cannot_reach_into_regional_caps(market, cast):
    """With the reserve spent, regional caps stay untouched: nationalAllocated <= cap - regionalCapTotal."""
    regulator = market.regulator
    period = _open(market, north=T(600), south=T(400))  # reserve 0
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        with pytest.raises(errors.AllowancesCapExceeded) as info:
            regulator.allowances.allocate_for_sale(period.id, 1)
    assert info.value.arguments == {"period": period.id, "region": 0, "available": 0, "requested": 1}


def test_lowering_a_regional_cap_below_its_allocation_is_refused(market, cast):
    period = _open(market)
    cast["reg_south"].allowances.allocate(period.id, {cast["south"].address: T(120)}, region=SOUTH)
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        with pytest.raises(errors.AllowancesRegionalCapBelowAllocated) as info:
            market.regulator.allowances.set_regional_cap(period.id, SOUTH, T(120) - 1)
    assert info.value.arguments == {
        "period": period.id,
        "region": SOUTH,
        "cap": T(120) - 1,
        "allocated": T(120),
    }
    # Lowered to exactly the allocation, the region can allocate nothing more.
    market.regulator.allowances.set_regional_cap(period.id, SOUTH, T(120))
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        with pytest.raises(errors.AllowancesCapExceeded) as info:
            raw(cast["reg_south"], "allocateForSale", period.id, SOUTH, 1)
    assert info.value.arguments == {"period": period.id, "region": SOUTH, "available": 0, "requested": 1}


# ---------------------------------------------------------------- phases


@pytest.mark.parametrize("phase", [PeriodPhase.RECONCILIATION, PeriodPhase.CLOSED])
def test_no_allocation_in_reconciliation_or_after_close(market, cast, phase):
    regulator = market.regulator
    period = _open(market)
    market.to_phase(period.id, phase)
    a = cast["a"].address
    expected = {"period": period.id, "phase": phase}
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        for attempt in (
            lambda: regulator.allowances.allocate(period.id, {a: T(1)}),
            lambda: raw(regulator, "allocate", period.id, 0, grants((a, T(1)))),
            lambda: regulator.allowances.allocate_for_sale(period.id, T(1)),
            lambda: cast["reg_north"].allowances.allocate(
                period.id, {cast["north"].address: T(1)}, region=NORTH
            ),
        ):
            with pytest.raises(errors.AllowancesWrongPhase) as info:
                attempt()
            assert info.value.arguments == expected


def test_allocation_runs_in_trading_too(market, cast):
    period = _open(market)
    market.to_phase(period.id, PeriodPhase.TRADING)
    market.regulator.allowances.allocate(period.id, {cast["b"].address: T(3)})
    assert market.regulator.allowances.balance(period.allowance, cast["b"].address) == T(3)


# ---------------------------------------------------------------- recipients and callers


def test_recipients_must_be_active_enterprises(market, cast):
    regulator = market.regulator
    period = _open(market)
    suspended, revoked = market.enterprise(), market.enterprise()
    regulator.registry.suspend(suspended.address)
    regulator.registry.revoke(revoked.address)
    verifier, stranger = market.verifier().address, Account.create().address
    good = cast["a"].address
    watch = dict(
        periods=[period.id], holders=_everyone(market, cast) + [suspended, revoked, verifier, stranger]
    )
    with unchanged(market, **watch):
        for bad in (verifier, stranger, suspended.address, revoked.address, regulator.address):
            # the first bad recipient is named, even after a good one: nothing is minted to anyone
            with pytest.raises(errors.RegistryIneligibleMember) as info:
                regulator.allowances.allocate(period.id, [(good, T(1)), (bad, T(1))])
            assert info.value.arguments == {"account": bad, "role": Role.ENTERPRISE, "region": 0}
        with pytest.raises(errors.RegistryIneligibleMember) as info:
            raw(regulator, "allocate", period.id, 0, grants((good, T(1)), (stranger, T(1))))
        assert info.value.arguments == {"account": stranger, "role": Role.ENTERPRISE, "region": 0}


def test_regional_allocation_only_to_enterprises_of_that_region(market, cast):
    period = _open(market)
    outsiders = [cast["south"].address, cast["a"].address]  # another region, and a national enterprise
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        for outsider in outsiders:
            for client in (cast["reg_north"], market.regulator):
                with pytest.raises(errors.RegistryIneligibleMember) as info:
                    client.allowances.allocate(
                        period.id, [(cast["north"].address, T(1)), (outsider, T(1))], region=NORTH
                    )
                assert info.value.arguments == {"account": outsider, "role": Role.ENTERPRISE, "region": NORTH}


def test_regional_regulator_cannot_allocate_from_another_region_or_the_national_reserve(market, cast):
    reg_north = cast["reg_north"]
    period = _open(market)
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        for region, recipient in ((SOUTH, cast["south"].address), (0, cast["a"].address)):
            with pytest.raises(errors.AllowancesRegionMismatch) as info:
                reg_north.allowances.allocate(period.id, {recipient: T(1)}, region=region)
            assert info.value.arguments == {"callerRegion": NORTH, "region": region}
            with pytest.raises(errors.AllowancesRegionMismatch) as info:
                raw(reg_north, "allocateForSale", period.id, region, T(1))
            assert info.value.arguments == {"callerRegion": NORTH, "region": region}


def test_non_regulators_cannot_allocate(market, cast):
    period = _open(market)
    enterprise = cast["a"]
    gone = market.regional_regulator(NORTH)
    market.regulator.registry.suspend(gone.address)
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        for caller in (enterprise, gone):
            with pytest.raises(errors.GuardMissingRole) as info:
                caller.allowances.allocate(period.id, {enterprise.address: T(1)}, region=NORTH)
            assert info.value.arguments == {"account": caller.address, "required": Role.REGULATOR}
            with pytest.raises(errors.GuardMissingRole) as info:
                raw(caller, "allocateForSale", period.id, 0, T(1))
            assert info.value.arguments == {"account": caller.address, "required": Role.REGULATOR}


def test_zero_amounts_are_refused(market, cast):
    regulator = market.regulator
    period = _open(market)
    a, b = cast["a"].address, cast["b"].address
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        with pytest.raises(InvalidInput, match="grant #1 amount must be a positive integer"):
            regulator.allowances.allocate(period.id, [(a, T(1)), (b, 0)])
        with pytest.raises(errors.AllowancesZeroAmount) as info:
            raw(regulator, "allocate", period.id, 0, grants((a, T(1)), (b, 0)))
        assert info.value.arguments == {"index": 1}
        with pytest.raises(InvalidInput, match="amount must be a positive integer"):
            regulator.allowances.allocate_for_sale(period.id, 0)
        with pytest.raises(errors.AllowancesZeroAmount) as info:
            raw(regulator, "allocateForSale", period.id, 0, 0)
        assert info.value.arguments == {"index": 0}
        with pytest.raises(InvalidInput, match="does not fit in uint96"):
            regulator.allowances.allocate(period.id, {a: 2**96})


def test_empty_and_oversized_batches_are_refused(market, cast):
    regulator = market.regulator
    period = _open(market)
    a = cast["a"].address
    with unchanged(market, periods=[period.id], holders=_everyone(market, cast)):
        with pytest.raises(InvalidInput, match="no grants given"):
            regulator.allowances.allocate(period.id, {})
        with pytest.raises(InvalidInput, match="batch_size must be from 1 to 500"):
            regulator.allowances.allocate(period.id, {a: 1}, batch_size=MAX_GRANTS + 1)
        with pytest.raises(errors.AllowancesBatchSize) as info:
            raw(regulator, "allocate", period.id, 0, [])
        assert info.value.arguments == {"size": 0, "max": MAX_GRANTS}
        with pytest.raises(errors.AllowancesBatchSize) as info:
            raw(regulator, "allocate", period.id, 0, grants(*[(a, 1)] * (MAX_GRANTS + 1)), gas=5_000_000)
        assert info.value.arguments == {"size": MAX_GRANTS + 1, "max": MAX_GRANTS}
    assert regulator.allowances.contract.call("MAX_GRANTS") == MAX_GRANTS
