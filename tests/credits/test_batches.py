"""Credit batches on chain: commit within the ceiling, claims by the account or in bulk by the platform, and
every replay refused (twice, another account, another batch, another deployment, a suspended member)."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from carbon_sdk import Role, errors
from carbon_sdk.units import tonnes

PERIOD = 2025


@pytest.fixture(scope="module")
def world(market):
    regulator = market.regulator
    # A platform whose organisation may enrol individuals.
    admin = Account.create()
    regulator.registry.register_organisation("Green App", admin.address, Role.PLATFORM,
                                             allowed_roles=[Role.PLATFORM, Role.INDIVIDUAL])
    platform = market.client(admin)
    people = [Account.create() for _ in range(6)]
    platform.registry.enrol_batch([p.address for p in people], Role.INDIVIDUAL)
    regulator.credits.register_methodology(1, b"methodology v1 content", uri="carbon_sdk/data/methodology_v1.json")
    regulator.credits.set_offset_ratio(PERIOD, delta_bps=5_000)
    regulator.credits.set_issuance_ceiling(PERIOD, platform.address, tonnes(100))
    return {"market": market, "platform": platform, "people": people, "clients": [market.client(p) for p in people]}


def snapshot(world) -> dict:
    credits = world["platform"].credits
    return {"balances": [credits.balance(p.address) for p in world["people"]],
            "supply": credits.token.call("totalSupply"), "next": credits.contract.call("nextBatchId"),
            "issued": credits.issued(PERIOD, world["platform"].address),
            "deficits": [credits.deficit(PERIOD, p.address) for p in world["people"]]}


def raw(client, function, *args):
    """Send with a fixed gas limit, so that the refusal is mined and comes back from the chain."""
    return client.transact(dataclasses.replace(client.credits.contract.tx(function, *args), gas=2_000_000))


def test_commit_claim_and_deficit(world):
    platform, people, clients = world["platform"], world["people"], world["clients"]
    batch = platform.credits.build_batch([(people[0].address, tonnes("1.5"), 0), (people[1].address, 0, tonnes(2)),
                                          (people[2].address, tonnes("0.25"), 0)])
    record = platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    assert record["total"] == tonnes("1.75") and record["entries"] == 3 and record["root"] == batch.root
    clients[0].credits.claim(batch, 0)  # by the account itself
    assert platform.credits.claim_many(batch) == 2  # the rest, by the platform; the claimed one is skipped
    assert platform.credits.balance(people[0].address) == tonnes("1.5")
    assert platform.credits.balance(people[2].address) == tonnes("0.25")
    # A deficit of 2 t at delta = 50 % owes 1 PCC; the debtor covers it with credits it holds.
    assert platform.credits.deficit(PERIOD, people[1].address) == {"owed": tonnes(1), "covered": 0,
                                                                   "outstanding": tonnes(1)}
    clients[0].transact(clients[0].credits.token.tx("transfer", people[1].address, tonnes(1)))
    assert clients[1].credits.cover_deficit(PERIOD, tonnes(1))["outstanding"] == 0
    assert platform.credits.balance(people[1].address) == 0
    assert platform.credits.batch(batch.batch_id)["claimed"] == tonnes("1.75")


def test_every_replay_is_refused(world):
    platform, people, clients = world["platform"], world["people"], world["clients"]
    batch = platform.credits.build_batch([(people[3].address, tonnes(1), 0), (people[4].address, tonnes(1), 0)])
    platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    clients[3].credits.claim(batch, 0)
    with pytest.raises(errors.CreditsAlreadyClaimed):  # twice
        raw(clients[3], "claim", batch.batch_id, batch.claim_args(0))
    args = list(batch.claim_args(1))
    args[1] = people[3].address  # entry 1's proof for another account
    with pytest.raises(errors.CreditsInvalidProof) as caught:
        raw(platform, "claim", batch.batch_id, tuple(args))
    assert caught.value.arguments == {"batchId": batch.batch_id, "index": 1, "account": people[3].address}
    other = platform.credits.build_batch([(people[4].address, tonnes(1), 0)])
    platform.credits.commit_batch(other, period=PERIOD, methodology=1)
    before = snapshot(world)
    with pytest.raises(errors.CreditsInvalidProof):  # a leaf of one batch presented to another
        raw(platform, "claim", other.batch_id, batch.claim_args(1))
    with pytest.raises(errors.CreditsNotClaimant):  # someone else's entry
        raw(clients[5], "claim", batch.batch_id, batch.claim_args(1))
    world["market"].regulator.registry.suspend(people[4].address)
    with pytest.raises(errors.CreditsIneligibleAccount):  # a suspended member
        raw(platform, "claim", batch.batch_id, batch.claim_args(1))
    assert snapshot(world) == before
    world["market"].regulator.registry.reinstate(people[4].address)
    platform.credits.claim(batch, 1)


def test_a_batch_replayed_on_another_deployment_is_refused(world, other_market):
    platform, people = world["platform"], world["people"]
    batch = platform.credits.build_batch([(people[5].address, tonnes(1), 0)])
    platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    # A second deployment with the same members and the same root: the leaf names the first deployment.
    twin = other_market
    twin_platform = twin.member(Role.PLATFORM)
    twin.regulator.credits.register_methodology(1, b"methodology v1 content")
    twin.regulator.credits.set_issuance_ceiling(PERIOD, twin_platform.address, tonnes(100))
    twin_batch = dataclasses.replace(batch, batch_id=twin_platform.credits.contract.call("nextBatchId"))
    with pytest.raises(errors.InvalidInput, match="built for credit manager"):  # the SDK sees the file's target
        twin_platform.credits.commit_batch(twin_batch, period=PERIOD, methodology=1)
    twin_batch.manager = ""  # a forged file that hides its deployment: the chain still refuses the leaves
    twin_platform.credits.commit_batch(twin_batch, period=PERIOD, methodology=1)
    with pytest.raises(errors.CreditsInvalidProof):
        twin_platform.transact(dataclasses.replace(twin_platform.credits.contract.tx(
            "claim", twin_batch.batch_id, batch.claim_args(0)), gas=2_000_000))


def test_commit_within_the_ceiling_and_the_next_id(world):
    platform, people = world["platform"], world["people"]
    committed, ceiling = platform.credits.issued(PERIOD, platform.address)
    too_big = platform.credits.build_batch([(people[0].address, ceiling - committed + 1, 0)])
    before = snapshot(world)
    with pytest.raises(errors.CreditsCeilingExceeded) as caught:
        platform.credits.commit_batch(too_big, period=PERIOD, methodology=1)
    assert caught.value.arguments["requested"] == ceiling + 1
    stale = dataclasses.replace(too_big, batch_id=too_big.batch_id + 7)
    with pytest.raises(errors.CreditsBatchIdMismatch):
        platform.credits.commit_batch(stale, period=PERIOD, methodology=1)
    with pytest.raises(errors.CreditsUnknownMethodology):
        platform.credits.commit_batch(platform.credits.build_batch([(people[0].address, 1, 0)]), period=PERIOD,
                                      methodology=9)
    assert snapshot(world) == before
