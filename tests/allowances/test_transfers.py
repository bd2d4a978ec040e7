"""Vintage tokens are plain ERC-20s whose transfers the registry polices: only between members that may trade
(active, not in debt). Every refusal is TokenTransferRefused(from, to) with balances, allowances and supply
unchanged."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from carbon_sdk import errors
from carbon_sdk.errors import InvalidInput
from allowances_helpers import T, raw_token, unchanged

HOLDING = T(100)


@pytest.fixture(scope="module")
def period(market):
    return market.open_period(T(10_000))


@pytest.fixture
def pair(market, period):
    """Two fresh active enterprises, the first holding 100 t of the period's vintage."""
    seller, buyer = market.enterprise(), market.enterprise()
    market.regulator.allowances.allocate(period.id, {seller.address: HOLDING})
    return seller, buyer


def _watch(period, *accounts):
    return dict(periods=[period.id], holders=list(accounts))


def test_transfer_between_active_enterprises(market, period, pair):
    seller, buyer = pair
    token = seller.allowances.token(period.allowance)
    supply = token.call("totalSupply")
    tx_hash = seller.allowances.transfer(period.allowance, buyer.address, T("12.5"))
    assert seller.allowances.balances(period.allowance, [seller.address, buyer.address]) == {
        seller.address: HOLDING - T("12.5"),
        buyer.address: T("12.5"),
    }
    assert token.call("totalSupply") == supply
    [event] = [e for e in token.logs(["Transfer"]) if e.tx_hash == tx_hash]
    assert event.args == {"from": seller.address, "to": buyer.address, "value": T("12.5")}


@pytest.mark.parametrize("status", ["suspend", "revoke"])
def test_transfer_to_a_suspended_or_revoked_member_is_refused(market, period, pair, status):
    seller, buyer = pair
    getattr(market.regulator.registry, status)(buyer.address)
    with unchanged(market, **_watch(period, seller, buyer)):
        with pytest.raises(errors.TokenTransferRefused) as info:
            seller.allowances.transfer(period.allowance, buyer.address, T(1))
        assert info.value.arguments == {"from": seller.address, "to": buyer.address}
        with pytest.raises(errors.TokenTransferRefused):  # on chain too
            raw_token(seller, period.allowance, "transfer", buyer.address, T(1))


def test_transfer_from_a_suspended_member_is_refused_and_works_again_once_reinstated(market, period, pair):
    seller, buyer = pair
    market.regulator.registry.suspend(seller.address)
    with unchanged(market, **_watch(period, seller, buyer)):
        with pytest.raises(errors.TokenTransferRefused) as info:
            raw_token(seller, period.allowance, "transfer", buyer.address, T(1))
    assert info.value.arguments == {"from": seller.address, "to": buyer.address}
    market.regulator.registry.reinstate(seller.address)
    seller.allowances.transfer(period.allowance, buyer.address, T(1))
    assert seller.allowances.balance(period.allowance, buyer.address) == T(1)


def test_transfer_to_a_non_member_is_refused(market, period, pair):
    seller, _ = pair
    stranger = Account.create().address
    with unchanged(market, **_watch(period, seller, stranger)):
        with pytest.raises(errors.TokenTransferRefused) as info:
            seller.allowances.transfer(period.allowance, stranger, T(1))
    assert info.value.arguments == {"from": seller.address, "to": stranger}


def test_transfer_of_more_than_the_balance_or_zero(market, period, pair):
    seller, buyer = pair
    with unchanged(market, **_watch(period, seller, buyer)):
        with pytest.raises(errors.ERC20InsufficientBalance) as info:
            seller.allowances.transfer(period.allowance, buyer.address, HOLDING + 1)
        assert info.value.arguments == {"sender": seller.address, "balance": HOLDING, "needed": HOLDING + 1}
        with pytest.raises(InvalidInput, match="amount must be a positive integer"):
            seller.allowances.transfer(period.allowance, buyer.address, 0)


def test_approve_and_transfer_from_follow_the_same_policy(market, period, pair):
    seller, buyer = pair
    broker = market.enterprise()
    token = period.allowance
    seller.transact(seller.allowances.token(token).tx("approve", broker.address, T(30)))
    raw_token(broker, token, "transferFrom", seller.address, buyer.address, T(10))
    balances = broker.allowances.balances(token, [seller.address, buyer.address, broker.address])
    assert balances == {seller.address: HOLDING - T(10), buyer.address: T(10), broker.address: 0}
    assert broker.allowances.token(token).call("allowance", seller.address, broker.address) == T(20)

    suspended, stranger = market.enterprise(), Account.create().address
    market.regulator.registry.suspend(suspended.address)

    def allowance_of() -> int:
        return broker.allowances.token(token).call("allowance", seller.address, broker.address)

    with unchanged(market, **_watch(period, seller, buyer, broker, suspended, stranger)):
        for to in (suspended.address, stranger):
            with pytest.raises(errors.TokenTransferRefused) as info:
                raw_token(broker, token, "transferFrom", seller.address, to, T(5))
            assert info.value.arguments == {"from": seller.address, "to": to}
            assert allowance_of() == T(20)
        with pytest.raises(errors.ERC20InsufficientAllowance) as info:
            raw_token(broker, token, "transferFrom", seller.address, buyer.address, T(20) + 1)
        assert info.value.arguments == {"spender": broker.address, "allowance": T(20), "needed": T(20) + 1}

    # A suspended owner's tokens cannot be moved by its spender either.
    market.regulator.registry.suspend(seller.address)
    with unchanged(market, **_watch(period, seller, buyer, broker)):
        with pytest.raises(errors.TokenTransferRefused) as info:
            raw_token(broker, token, "transferFrom", seller.address, buyer.address, T(5))
    assert info.value.arguments == {"from": seller.address, "to": buyer.address}


def test_offset_tokens_follow_the_same_policy(market, period):
    holder, other = market.enterprise(), market.verifier()  # offsets go to any active member
    project = market.regulator.allowances.register_offset_project("Transfer test forest", "forestry_sink")
    issued = market.regulator.allowances.issue_offsets(project.project_id, period.id, {holder.address: T(5)})
    holder.allowances.transfer(issued.token, other.address, T(2))
    assert holder.allowances.balances(issued.token, [holder.address, other.address]) == {
        holder.address: T(3),
        other.address: T(2),
    }
    market.regulator.registry.suspend(other.address)
    with unchanged(market, tokens=[issued.token], holders=[holder, other]):
        with pytest.raises(errors.TokenTransferRefused) as info:
            holder.allowances.transfer(issued.token, other.address, T(1))
    assert info.value.arguments == {"from": holder.address, "to": other.address}


def test_only_the_manager_mints_and_burns_vintage_tokens(market, period, pair):
    seller, _ = pair
    with unchanged(market, **_watch(period, seller, market.regulator)):
        for function, args in (
            ("mint", (seller.address, T(1))),
            ("burnFrom", (seller.address, T(1))),
            ("mintGrants", ([(int(seller.address, 16) << 96 | T(1)).to_bytes(32, "big")],)),
        ):
            with pytest.raises(errors.VintageNotIssuer) as info:
                raw_token(market.regulator, period.allowance, function, *args)
            assert info.value.arguments == {"caller": market.regulator.address}
    factory = market.regulator.contract("VintageTokenFactory")
    with pytest.raises(errors.FactoryUnauthorised) as info:  # only the manager creates vintage tokens
        market.regulator.transact(factory.tx("create", period.id, 0, gas=3_000_000))
    assert info.value.arguments == {"caller": market.regulator.address}
    with pytest.raises(errors.FactoryAlreadyBound) as info:
        market.regulator.transact(factory.tx("bind", market.regulator.address, gas=200_000))
    assert info.value.arguments == {"manager": market.regulator.allowances.contract.address}


def test_an_approval_held_by_a_suspended_spender_moves_nothing(market):
    """transferFrom checks the spender too: an old approval is no way around a suspension."""
    owner, receiver = market.enterprise(), market.enterprise()
    spender_admin = market.enterprise()
    period = market.open_period(T(100))
    market.regulator.allowances.allocate(period.id, {owner.address: T(10)})
    token = period.allowance
    owner.transact(owner.allowances.token(token).tx("approve", spender_admin.address, T(5)))
    market.regulator.registry.suspend(spender_admin.address)
    call = spender_admin.allowances.token(token).tx("transferFrom", owner.address, receiver.address, T(1))
    with unchanged(market, periods=[period.id], holders=[owner, receiver, spender_admin]):
        with pytest.raises(errors.TokenSpenderRefused) as info:
            spender_admin.transact(dataclasses.replace(call, gas=300_000))
    assert info.value.arguments == {"spender": spender_admin.address}
