"""Revoked members (DESIGN 6, "wrong roles and revoked members"), on the paths the other suites test only with
suspension: a revoked holder's signed desk order and a revoked account's credit claim are refused by the chain,
and nothing moves. Revocation is final, so each test revokes a fresh account."""

from __future__ import annotations


import pytest
from conftest import raw_settle
from eth_account import Account

from carbon_sdk import Role, errors
from carbon_sdk.desk_orders import SELL, DeskOrder, desk_domain, sign_desk_order
from carbon_sdk.units import tonnes

PERIOD = 2071
BUY_BACK, SALE = 1_000, 2_500


@pytest.fixture(scope="module")
def world(market):
    regulator = market.regulator
    platform = market.credits_platform()
    regulator.credits.register_methodology(1, b"revocation methodology")
    regulator.credits.set_offset_ratio(PERIOD, delta_bps=5_000)
    regulator.credits.set_issuance_ceiling(PERIOD, platform.address, tonnes(100))
    market.open_desk(platform, BUY_BACK, SALE)
    return {"market": market, "platform": platform}


def person_with_credits(world, *, claimed: bool):
    """A fresh individual with a committed entry of 1 PCC (claimed, or not yet), and the batch."""
    platform = world["platform"]
    person = Account.create()
    platform.registry.enrol_batch([person.address], Role.INDIVIDUAL)
    batch = platform.credits.build_batch([(person.address, tonnes(1), 0)])
    platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    if claimed:
        platform.credits.claim_many(batch)
    return person, batch


def snapshot(world, people) -> dict:
    platform = world["platform"]
    credits, settlement = platform.credits, platform.settlement
    parties = [p.address for p in people] + [platform.address]
    return {"pcc": [credits.balance(a) for a in parties], "cash": [settlement.balance(a) for a in parties],
            "supply": credits.token.call("totalSupply"), "nonces": [credits.order_nonce(a) for a in parties],
            "issued": credits.issued(PERIOD, platform.address)}


def test_a_revoked_holder_s_signed_desk_order_is_refused(world):
    platform, regulator = world["platform"], world["market"].regulator
    person, _ = person_with_credits(world, claimed=True)
    # Signed while a member, relayed after revocation.
    o = DeskOrder(person.address, platform.address, SELL, tonnes("0.1"), BUY_BACK,
                  platform.credits.order_nonce(person.address), platform.chain_time() + 3_600, 0)
    signed = sign_desk_order(person.key, o, desk_domain(platform.credits.contract.address, platform.chain_id))
    regulator.registry.revoke(person.address)
    before = snapshot(world, [person])
    with pytest.raises(errors.GuardInactiveMember) as refused:
        raw_settle(platform, [signed])
    assert refused.value.arguments["account"] == person.address
    assert snapshot(world, [person]) == before


def test_a_revoked_account_s_credit_entry_cannot_be_claimed(world):
    platform, regulator = world["platform"], world["market"].regulator
    person, batch = person_with_credits(world, claimed=False)
    regulator.registry.revoke(person.address)
    before = snapshot(world, [person])
    with pytest.raises(errors.CreditsIneligibleAccount) as refused:
        platform.transact(platform.credits.contract.tx("claim", batch.batch_id, batch.claim_args(0), gas=2_000_000))
    assert refused.value.arguments["account"] == person.address
    assert snapshot(world, [person]) == before
    assert platform.credits.batch(batch.batch_id)["claimed"] == 0
