"""Replay across deployments, chains and periods (DESIGN 6): a desk order or a permit signed for another
deployment or chain, and a credit batch's root re-committed for another period, move nothing. Each refusal is
mined (fixed gas, past the SDK's own checks) so the chain itself decides, and every balance, allowance, nonce,
deficit and supply is compared before and after."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import raw_settle
from eth_account import Account

from carbon_sdk import Role, errors
from carbon_sdk.desk_orders import BUY, SELL, DeskOrder, desk_domain, permit_domain, sign_desk_order, sign_permit
from carbon_sdk.units import tonnes

PERIOD, OTHER_PERIOD = 2061, 2062
BUY_BACK, SALE = 1_000, 2_500


@pytest.fixture(scope="module")
def world(market, other_market):
    regulator = market.regulator
    platform = market.credits_platform()
    holder, buyer, claimant = Account.create(), Account.create(), Account.create()
    people = [holder, buyer, claimant]
    platform.registry.enrol_batch([p.address for p in people], Role.INDIVIDUAL)
    regulator.credits.register_methodology(1, b"replay methodology")
    for period in (PERIOD, OTHER_PERIOD):
        regulator.credits.set_offset_ratio(period, delta_bps=5_000)
        regulator.credits.set_issuance_ceiling(period, platform.address, tonnes(100))
    batch = platform.credits.build_batch([(holder.address, tonnes(2), 0)])
    platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    platform.credits.claim_many(batch)
    market.open_desk(platform, BUY_BACK, SALE)
    platform.settlement.issue(buyer.address, 5_000, fiat_reference="wallet top-up")
    twin = other_market  # a second deployment on the same chain: other addresses, so other domains
    return {"market": market, "platform": platform, "holder": holder, "buyer": buyer, "claimant": claimant,
            "people": people, "twin": twin,
            "domain": desk_domain(platform.credits.contract.address, platform.chain_id)}


def snapshot(world) -> dict:
    platform = world["platform"]
    credits, settlement = platform.credits, platform.settlement
    parties = [p.address for p in world["people"]] + [platform.address]
    return {"pcc": [credits.balance(a) for a in parties], "cash": [settlement.balance(a) for a in parties],
            "supply": credits.token.call("totalSupply"), "cash_supply": settlement.contract.call("totalSupply"),
            "nonces": [credits.order_nonce(a) for a in parties],
            "permit_nonces": [settlement.permit_nonce(a) for a in parties],
            "allowances": [settlement.contract.call("allowance", a, credits.contract.address) for a in parties],
            "next_batch": credits.contract.call("nextBatchId"),
            "issued": [credits.issued(p, platform.address) for p in (PERIOD, OTHER_PERIOD)]}


def desk_order(world, holder, kind, amount) -> DeskOrder:
    platform = world["platform"]
    return DeskOrder(holder.address, platform.address, kind, amount, BUY_BACK if kind == SELL else SALE,
                     platform.credits.order_nonce(holder.address), platform.chain_time() + 3_600, 0)




@pytest.mark.parametrize("where", ["another-deployment", "another-chain"])
def test_a_desk_order_signed_for_another_deployment_or_chain_is_refused(world, where):
    platform, holder = world["platform"], world["holder"]
    if where == "another-deployment":
        domain = desk_domain(world["twin"].regulator.credits.contract.address, platform.chain_id)
    else:
        domain = desk_domain(platform.credits.contract.address, platform.chain_id + 1)
    foreign = sign_desk_order(holder.key, desk_order(world, holder, SELL, tonnes("0.1")), domain)
    before = snapshot(world)
    with pytest.raises(errors.CreditsOrderSignature) as refused:
        raw_settle(platform, [foreign])
    assert refused.value.arguments["index"] == 0
    assert refused.value.arguments["holder"] == holder.address
    assert snapshot(world) == before
    # The same order signed in this deployment's domain settles: the domain alone made the difference.
    platform.credits.settle_desk_orders([sign_desk_order(holder.key, foreign.order, world["domain"])])
    assert platform.credits.balance(holder.address) == before["pcc"][0] - tonnes("0.1")


def test_a_permit_signed_for_another_deployment_s_token_gives_no_allowance(world):
    platform, buyer, twin = world["platform"], world["buyer"], world["twin"]
    credits_address = platform.credits.contract.address
    # Same token name, same owner, same spender, same nonce: only the token's address differs.
    foreign_domain = permit_domain(platform.settlement._name(), twin.regulator.settlement.contract.address,
                                   platform.chain_id)
    assert foreign_domain != platform.settlement.permit_domain()
    permit = sign_permit(buyer.key, owner=buyer.address, spender=credits_address, value=2**256 - 1,
                         nonce=platform.settlement.permit_nonce(buyer.address),
                         deadline=platform.chain_time() + 3_600, domain=foreign_domain)
    buy = sign_desk_order(buyer.key, desk_order(world, buyer, BUY, tonnes("0.1")), world["domain"])
    before = snapshot(world)
    # The relayed permit fails inside the contract's try/catch and grants nothing, so the payment cannot be drawn.
    with pytest.raises(errors.ERC20InsufficientAllowance):
        raw_settle(platform, [buy], [permit])
    assert snapshot(world) == before
    assert platform.settlement.contract.call("allowance", buyer.address, credits_address) == 0


def test_a_batch_root_recommitted_for_another_period_claims_nothing(world):
    platform, claimant = world["platform"], world["claimant"]
    batch = platform.credits.build_batch([(claimant.address, tonnes(1), 0)])
    platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    platform.credits.claim(batch, 0)
    # The platform copies the claimed root verbatim into a batch for the next period.
    copy = dataclasses.replace(batch, batch_id=platform.credits.contract.call("nextBatchId"))
    platform.transact(platform.credits.contract.tx("commitBatch", copy.batch_id, OTHER_PERIOD, 1,
                                                   bytes.fromhex(batch.root[2:]), batch.total, 1))
    assert platform.credits.batch(copy.batch_id)["root"] == batch.root
    before = snapshot(world)
    # The leaf binds the batch id (and the deployment and chain), so the old proof fits no other batch.
    with pytest.raises(errors.CreditsInvalidProof) as refused:
        platform.transact(dataclasses.replace(
            platform.credits.contract.tx("claim", copy.batch_id, batch.claim_args(0)), gas=2_000_000))
    assert refused.value.arguments == {"batchId": copy.batch_id, "index": 0, "account": claimant.address}
    with pytest.raises(errors.CreditsAlreadyClaimed):  # and the original stays claimed once
        platform.transact(dataclasses.replace(
            platform.credits.contract.tx("claim", batch.batch_id, batch.claim_args(0)), gas=2_000_000))
    assert snapshot(world) == before
    assert platform.credits.batch(copy.batch_id)["claimed"] == 0
