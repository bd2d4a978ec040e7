"""Signed desk orders: holders sign (EIP-712), their platform settles them in bulk; buyers approve by EIP-2612
permit. The SDK's signatures match eth-account's and the contract's digest; settlement moves exactly what a
holder's own calls would; every refusal, by the SDK or by the chain, leaves all balances, deficits and nonces
as they were; and the holders themselves send no transaction at all."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import raw_settle
from eth_account import Account
from eth_account.messages import encode_typed_data

from carbon_sdk import Role, errors
from carbon_sdk.credits import desk_payment
from carbon_sdk.desk_orders import (
    BUY,
    BUY_AND_COVER,
    SELL,
    DeskOrder,
    CALL_GAS_BUDGET,
    DeskOrderRefused,
    DeskOrdersSettled,
    chunk_with_permits,
    desk_domain,
    load_orders,
    save_orders,
    settle_gas,
    sign_desk_order,
    sign_permit,
)
from carbon_sdk.units import tonnes

PERIOD = 2041
BUY_BACK, SALE = 1_000, 2_500  # 10.00 and 25.00 per tonne (2 decimals)
DELTA_BPS = 5_000


@pytest.fixture(scope="module")
def world(market):
    regulator = market.regulator
    platform = market.credits_platform()
    sellers = [Account.create() for _ in range(3)]
    debtors = [Account.create() for _ in range(3)]
    people = sellers + debtors
    platform.registry.enrol_batch([p.address for p in people], Role.INDIVIDUAL)
    regulator.credits.register_methodology(1, b"orders methodology")
    regulator.credits.set_offset_ratio(PERIOD, delta_bps=DELTA_BPS)
    regulator.credits.set_issuance_ceiling(PERIOD, platform.address, tonnes(100))
    entries = [(p.address, tonnes(2), 0) for p in sellers] + [(p.address, 0, tonnes(1)) for p in debtors]
    batch = platform.credits.build_batch(entries)
    platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    platform.credits.claim_many(batch)
    market.open_desk(platform, BUY_BACK, SALE)
    platform.settlement.issue_many({p.address: 5_000 for p in debtors}, fiat_reference="wallet top-ups")
    other = market.platform()
    return {"market": market, "platform": platform, "sellers": sellers, "debtors": debtors, "people": people,
            "other": other, "domain": desk_domain(platform.credits.contract.address, platform.chain_id)}


def snapshot(world) -> dict:
    platform = world["platform"]
    credits, settlement = platform.credits, platform.settlement
    parties = [p.address for p in world["people"]] + [platform.address]
    return {"pcc": [credits.balance(a) for a in parties], "cash": [settlement.balance(a) for a in parties],
            "supply": credits.token.call("totalSupply"),
            "deficits": [credits.deficit(PERIOD, p.address) for p in world["debtors"]],
            "nonces": [credits.order_nonce(a) for a in parties],
            "allowances": [settlement.contract.call("allowance", p.address, credits.contract.address)
                           for p in world["debtors"]],
            "tx_counts": [platform.rpc.call("eth_getTransactionCount", [a, "latest"]) for a in parties[:-1]]}


def order(world, holder, kind, amount, *, nonce=None):
    client = world["platform"]
    return DeskOrder(holder.address, client.address, kind, amount, BUY_BACK if kind == SELL else SALE,
                     client.credits.order_nonce(holder.address) if nonce is None else nonce,
                     client.chain_time() + 3_600, PERIOD if kind == BUY_AND_COVER else 0)


def signed(world, holder, *args, **options):
    return sign_desk_order(holder.key, order(world, holder, *args, **options), world["domain"])


def permit_of(world, holder, value=2**256 - 1):
    platform = world["platform"]
    return sign_permit(holder.key, owner=holder.address, spender=platform.credits.contract.address, value=value,
                       nonce=platform.settlement.permit_nonce(holder.address), deadline=platform.chain_time() + 3_600,
                       domain=platform.settlement.permit_domain())


# -- signatures ------------------------------------------------------------------------------------------------

def test_desk_order_digest_and_signature_match_the_contract_and_eth_account(world):
    platform, alice = world["platform"], world["sellers"][0]
    o = order(world, alice, SELL, tonnes("0.5"))
    manager = platform.credits.contract
    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "DeskOrder": [{"name": n, "type": t} for n, t in (
                      ("holder", "address"), ("platform", "address"), ("kind", "uint8"), ("period", "uint16"),
                      ("amount", "uint128"), ("limitPrice", "uint128"), ("nonce", "uint64"), ("deadline", "uint64"))]},
        "primaryType": "DeskOrder",
        "domain": {"name": "CreditManager", "version": "1", "chainId": platform.chain_id,
                   "verifyingContract": manager.address},
        "message": {"holder": o.holder, "platform": o.platform, "kind": o.kind, "period": o.period,
                    "amount": o.amount, "limitPrice": o.limit_price, "nonce": o.nonce, "deadline": o.deadline},
    }
    reference = Account.sign_message(encode_typed_data(full_message=typed), alice.key)
    ours = sign_desk_order(alice.key, o, world["domain"])
    assert (ours.v, int.from_bytes(ours.r, "big"), int.from_bytes(ours.s, "big")) == \
        (reference.v, reference.r, reference.s)
    assert manager.call("deskOrderDigest", o.as_abi()) == bytes(reference.message_hash)
    assert ours.signer(world["domain"]) == alice.address
    other_domain = desk_domain(world["other"].address, platform.chain_id)  # another contract: another signer
    assert ours.signer(other_domain) != alice.address


def test_permit_signature_matches_eth_account(world):
    platform, bob = world["platform"], world["debtors"][0]
    token = platform.settlement.contract
    p = sign_permit(bob.key, owner=bob.address, spender=platform.credits.contract.address, value=123, nonce=7,
                    deadline=999, domain=platform.settlement.permit_domain())
    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "Permit": [{"name": n, "type": t} for n, t in (("owner", "address"), ("spender", "address"),
                                                                  ("value", "uint256"), ("nonce", "uint256"),
                                                                  ("deadline", "uint256"))]},
        "primaryType": "Permit",
        "domain": {"name": token.call("name"), "version": "1", "chainId": platform.chain_id,
                   "verifyingContract": token.address},
        "message": {"owner": bob.address, "spender": platform.credits.contract.address, "value": 123, "nonce": 7,
                    "deadline": 999},
    }
    reference = Account.sign_message(encode_typed_data(full_message=typed), bob.key)
    assert (p.v, int.from_bytes(p.r, "big"), int.from_bytes(p.s, "big")) == (reference.v, reference.r, reference.s)
    assert token.call("DOMAIN_SEPARATOR") == platform.settlement.permit_domain()


# -- settlement ------------------------------------------------------------------------------------------------

def test_platform_settles_signed_sells_and_buy_and_cover_orders_the_holders_send_nothing(world):
    platform = world["platform"]
    (alice, ann, _), (bob, ben, _) = world["sellers"], world["debtors"]
    before = snapshot(world)
    stock = platform.credits.balance(platform.address)
    orders = [signed(world, alice, SELL, tonnes("0.4")), signed(world, ann, SELL, tonnes("1.5")),
              signed(world, bob, BUY_AND_COVER, tonnes("0.5")), signed(world, ben, BUY, tonnes("0.25"))]
    trades = platform.credits.settle_desk_orders(orders, permits=[permit_of(world, bob), permit_of(world, ben)])
    assert [(t.side, t.account, t.amount, t.covered) for t in trades] == [
        ("sell", alice.address, tonnes("0.4"), 0), ("sell", ann.address, tonnes("1.5"), 0),
        ("buy", bob.address, tonnes("0.5"), tonnes("0.5")), ("buy", ben.address, tonnes("0.25"), 0)]
    assert [t.paid for t in trades] == [400, 1_500, desk_payment(tonnes("0.5"), SALE, round_up=True),
                                        desk_payment(tonnes("0.25"), SALE, round_up=True)]
    credits, cash = platform.credits, platform.settlement
    assert credits.balance(alice.address) == tonnes("1.6") and cash.balance(alice.address) == 400
    assert credits.balance(bob.address) == 0  # bought 0.5 and surrendered it at once
    assert credits.deficit(PERIOD, bob.address) == {"owed": tonnes("0.5"), "covered": tonnes("0.5"), "outstanding": 0}
    assert credits.balance(ben.address) == tonnes("0.25") and cash.balance(ben.address) == 5_000 - 625
    assert credits.balance(platform.address) == stock + tonnes("1.9") - tonnes("0.75")
    assert credits.token.call("totalSupply") == before["supply"] - tonnes("0.5")  # only the cover burned
    for who in (alice, ann, bob, ben):
        assert credits.order_nonce(who.address) == 1
    after = snapshot(world)
    assert after["tx_counts"] == before["tx_counts"]  # no holder sent a transaction
    assert platform.settlement.contract.call("allowance", bob.address, credits.contract.address) == 2**256 - 1


def test_a_relayed_permit_used_twice_is_skipped_and_the_allowance_stands(world):
    platform, ben = world["platform"], world["debtors"][1]
    permit = permit_of(world, ben, value=10**9)
    platform.credits.settle_desk_orders([], permits=[permit])  # a permit alone
    assert platform.settlement.contract.call("allowance", ben.address, platform.credits.contract.address) == 10**9
    trades = platform.credits.settle_desk_orders([signed(world, ben, BUY, tonnes("0.1"))], permits=[permit])
    assert trades[0].amount == tonnes("0.1")  # the stale permit was skipped, the payment drew the allowance


@pytest.mark.parametrize("case", ["signature", "expired", "platform", "replay", "price", "kind", "balance",
                                  "cover-too-much", "no-permit"])
def test_chain_refuses_a_bad_order_and_the_whole_batch_changes_nothing(world, case):
    platform, other = world["platform"], world["other"]
    alice, carl = world["sellers"][0], world["debtors"][2]
    good = signed(world, alice, SELL, tonnes("0.01"))
    o = order(world, alice, SELL, tonnes("0.01"), nonce=good.order.nonce + 1)
    expected, sender, orders = None, platform, None
    if case == "signature":  # signed by someone else
        bad = sign_desk_order(carl.key, o, world["domain"])
        expected = errors.CreditsOrderSignature
    elif case == "expired":
        bad = sign_desk_order(alice.key, dataclasses.replace(o, deadline=platform.chain_time() - 1), world["domain"])
        expected = errors.CreditsOrderExpired
    elif case == "platform":  # settled by a platform it was not signed for
        bad = sign_desk_order(alice.key, o, world["domain"])
        sender, orders, expected = other, [bad], errors.CreditsOrderPlatform
    elif case == "replay":  # the same order twice
        bad, expected = good, errors.InvalidAccountNonce
    elif case == "price":  # a buy-back above the posted one
        bad = sign_desk_order(alice.key, dataclasses.replace(o, limit_price=BUY_BACK + 1), world["domain"])
        expected = errors.CreditsPriceMoved
    elif case == "kind":
        bad = sign_desk_order(alice.key, o, world["domain"])
        object.__setattr__(bad.order, "kind", 7)  # past the SDK's validation, re-signed below
        bad = sign_desk_order(alice.key, bad.order, world["domain"])
        expected = errors.CreditsOrderKind
    elif case == "balance":
        bad = sign_desk_order(alice.key, dataclasses.replace(o, amount=tonnes(50)), world["domain"])
        expected = errors.ERC20InsufficientBalance
    elif case == "cover-too-much":  # more than the deficit owed
        ben = world["debtors"][1]  # owes 0.5 t, has an allowance
        bad = signed(world, ben, BUY_AND_COVER, tonnes("0.6"))
        expected = errors.CreditsCoverExceedsDeficit
    elif case == "no-permit":  # a buyer that never approved the manager
        bad = signed(world, carl, BUY, tonnes("0.1"))
        expected = errors.ERC20InsufficientAllowance
    before = snapshot(world)
    with pytest.raises(expected) as refused:
        raw_settle(sender, orders or [good, bad])
    if case in ("signature", "expired", "kind"):
        assert refused.value.arguments["index"] == 1
    assert snapshot(world) == before


def test_only_platforms_settle_and_batches_are_bounded(world):
    platform, alice = world["platform"], world["sellers"][0]
    member = world["market"].enterprise()
    good = signed(world, alice, SELL, tonnes("0.01"))
    before = snapshot(world)
    with pytest.raises(errors.GuardMissingRole):
        raw_settle(member, [good])
    with pytest.raises(errors.CreditsBatchSize):
        raw_settle(platform, [])
    with pytest.raises(errors.CreditsBatchSize):
        raw_settle(platform, [good] * 201)
    assert snapshot(world) == before


def test_a_suspended_holder_s_order_is_refused(world):
    regulator, platform = world["market"].regulator, world["platform"]
    ann = world["sellers"][1]
    good = signed(world, ann, SELL, tonnes("0.01"))
    regulator.registry.suspend(ann.address)
    try:
        before = snapshot(world)
        with pytest.raises(errors.GuardInactiveMember):
            raw_settle(platform, [good])
        assert snapshot(world) == before
    finally:
        regulator.registry.reinstate(ann.address)


@pytest.mark.parametrize("case", ["platform", "expired", "nonce", "signature", "spender"])
def test_sdk_checks_every_order_before_sending(world, case):
    platform, other = world["platform"], world["other"]
    alice = world["sellers"][0]
    o = order(world, alice, SELL, tonnes("0.01"))
    permits = []
    if case == "platform":
        bad = sign_desk_order(alice.key, dataclasses.replace(o, platform=other.address), world["domain"])
        match = "is for platform"
    elif case == "expired":
        bad = sign_desk_order(alice.key, dataclasses.replace(o, deadline=1), world["domain"])
        match = "expired"
    elif case == "nonce":
        bad = sign_desk_order(alice.key, dataclasses.replace(o, nonce=o.nonce + 1), world["domain"])
        match = "next nonce"
    elif case == "signature":
        bad = sign_desk_order(world["debtors"][0].key, o, world["domain"])
        match = "not signed by its holder"
    else:
        bad = sign_desk_order(alice.key, o, world["domain"])
        permits = [sign_permit(alice.key, owner=alice.address, spender=other.address, value=1, nonce=0, deadline=2**40,
                               domain=platform.settlement.permit_domain())]
        match = "not the credit manager"
    before = snapshot(world)
    block = platform.block_number()
    with pytest.raises(errors.InvalidInput, match=match):
        platform.credits.settle_desk_orders([bad], permits=permits)
    assert platform.block_number() == block and snapshot(world) == before


def test_client_builds_and_signs_its_own_orders(world):
    platform, market = world["platform"], world["market"]
    alice = market.client(world["sellers"][2])
    o = alice.credits.desk_order(platform.address, "sell", tonnes("0.2"))
    assert (o.holder, o.kind, o.limit_price, o.nonce) == (alice.address, SELL, BUY_BACK, 0)
    with pytest.raises(errors.InvalidInput, match="order kind"):
        alice.credits.desk_order(platform.address, "swap", 1)
    with pytest.raises(errors.InvalidInput, match="not the order holder"):
        platform.credits.sign_desk_order(o)
    trades = platform.credits.settle_desk_orders([alice.credits.sign_desk_order(o)])
    assert trades[0].account == alice.address and trades[0].amount == tonnes("0.2")


def test_issue_many_tops_up_wallets_all_or_nothing(world):
    platform, market = world["platform"], world["market"]
    people = world["people"][:2]
    before = [platform.settlement.balance(p.address) for p in people]
    assert platform.settlement.issue_many({p.address: 100 + n for n, p in enumerate(people)},
                                          fiat_reference="top-up 2") == 201
    assert [platform.settlement.balance(p.address) for p in people] == [before[0] + 100, before[1] + 101]
    stranger = Account.create().address  # not a member
    state = [platform.settlement.balance(p.address) for p in people]
    call = platform.settlement.contract.tx("issueMany", [people[0].address, stranger], [5, 5], b"\x01" * 32, gas=500_000)
    with pytest.raises(errors.GuardInactiveMember):
        platform.transact(call)
    call = platform.settlement.contract.tx("issueMany", [people[0].address], [5, 5], b"\x01" * 32, gas=500_000)
    with pytest.raises(errors.SettlementBatchSize):
        platform.transact(call)
    with pytest.raises(errors.GuardMissingRole):
        market.enterprise().transact(platform.settlement.contract.tx("issueMany", [people[0].address], [5],
                                                                     b"\x01" * 32, gas=500_000))
    with pytest.raises(errors.InvalidInput, match="nothing to issue"):
        platform.settlement.issue_many({}, fiat_reference="empty")
    assert [platform.settlement.balance(p.address) for p in people] == state


# -- files and chunks --------------------------------------------------------------------------------------------

def test_orders_file_round_trip_and_clear_errors(world, tmp_path):
    alice = world["sellers"][0]
    orders = [signed(world, alice, SELL, tonnes("0.01")), signed(world, alice, BUY, 5, nonce=9)]
    manager = world["platform"].credits.contract.address
    path = save_orders(tmp_path / "orders.json", orders, manager=manager, chain_id=31337)
    loaded = load_orders(path)
    assert loaded.orders == orders and loaded.permits == [] and loaded.manager == manager
    assert loaded.chain_id == 31337 and loaded.path == path
    (tmp_path / "bad.json").write_text('{"format": "carbon-desk-orders-v1", "manager": "%s", "chain_id": 1, '
                                       '"orders": [{"holder": "0x12"}]}' % manager)
    with pytest.raises(errors.InvalidInput, match="order 0"):
        load_orders(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("[]")
    with pytest.raises(errors.InvalidInput, match="not a desk-orders file"):
        load_orders(tmp_path / "other.json")
    with pytest.raises(errors.InvalidInput, match="amount"):
        DeskOrder(alice.address, alice.address, SELL, 0, 1, 0, 1)
    with pytest.raises(errors.InvalidInput, match="period"):
        DeskOrder(alice.address, alice.address, BUY_AND_COVER, 1, 1, 0, 1)


def test_orders_file_carries_permits_and_every_damage_names_its_place(world, tmp_path):
    alice, bob = world["sellers"][0], world["debtors"][0]
    manager = world["platform"].credits.contract.address
    orders = [signed(world, alice, SELL, tonnes("0.01")), signed(world, bob, BUY_AND_COVER, 5, nonce=4)]
    permits = [permit_of(world, bob), permit_of(world, alice, value=5)]
    path = save_orders(tmp_path / "orders.json", orders, permits=permits, manager=manager, chain_id=31337)
    loaded = load_orders(path)
    assert (loaded.orders, loaded.permits, loaded.manager, loaded.chain_id) == (orders, permits, manager, 31337)
    data = json.loads(path.read_text())
    assert list(data) == ["format", "manager", "chain_id", "orders", "permits"]  # the layout the CLI has written
    p = permits[0]
    assert data["permits"][0] == {"owner": bob.address, "spender": manager, "value": str(2**256 - 1),
                                  "nonce": p.nonce, "deadline": p.deadline, "v": p.v, "r": "0x" + p.r.hex(),
                                  "s": "0x" + p.s.hex()}
    loaded.orders.pop()
    loaded.save()  # a loaded file writes itself back
    assert load_orders(path).orders == orders[:1] and load_orders(path).permits == permits
    assert "permits" not in json.loads(save_orders(path, orders, manager=manager, chain_id=1).read_text())
    assert not list(tmp_path.glob(".*.partial"))

    order, permit = data["orders"][0], data["permits"][0]
    damaged = [  # (the file's content, what the error says after "FILE: ")
        ({**data, "orders": {"0": order}}, '"orders" must be a list'),
        ({**data, "permits": "none"}, '"permits" must be a list'),
        ({**data, "orders": [order, 5]}, "order 1: not a JSON object"),
        ({**data, "orders": [dict(order, kind="swap")]}, "order 0: order kind must be one of"),
        ({**data, "orders": [dict(order, kind=["sell"])]}, "order 0: order kind must be one of"),
        ({**data, "orders": [dict(order, amount=1.5)]}, "order 0: amount must be a whole number, not 1.5"),
        ({**data, "orders": [dict(order, amount="9" * 5_000)]}, "order 0: amount must be a whole number"),
        ({**data, "orders": [dict(order, amount="0")]}, "order 0: amount must be an integer from 1"),
        ({**data, "orders": [dict(order, nonce=-1)]}, "order 0: nonce must be an integer from 0 to 2^64 - 1"),
        ({**data, "orders": [dict(order, kind="buy-and-cover", period=0)]}, "order 0: a buy-and-cover order needs"),
        ({**data, "orders": [dict(order, r="0x12")]}, "order 0: r must be 32 bytes in hex, not 1"),
        ({**data, "orders": [dict(order, s=None)]}, "order 0: s must be 32 bytes in hex, not None"),
        ({**data, "orders": [dict(order, holder="0x12")]}, "order 0: holder '0x12' is not an address"),
        ({**data, "orders": [{k: v for k, v in order.items() if k != "deadline"}]},
         "order 0: missing field 'deadline'"),
        ({**data, "permits": [permit, dict(permit, value=str(2**256))]},
         "permit 1: value must be an integer from 0 to 2^256 - 1"),
        ({**data, "permits": [dict(permit, owner=7)]}, "permit 0: owner 7 is not an address"),
        ({**data, "permits": [["not", "an", "object"]]}, "permit 0: not a JSON object"),
        ({**data, "permits": [dict(permit, nonce=True)]}, "permit 0: nonce must be a whole number, not True"),
        ({**data, "permits": [dict(permit, v="27x")]}, "permit 0: v must be a whole number"),
        ({**data, "permits": [dict(permit, v=300)]}, "permit 0: v must be an integer from 0 to 2^8 - 1"),
        ({**data, "orders": [dict(order, v=-27)]}, "order 0: v must be an integer from 0 to 2^8 - 1"),
        ({k: v for k, v in data.items() if k != "spender" and k != "chain_id"}, "missing field 'chain_id'"),
        ({**data, "chain_id": "x"}, "chain id must be a whole number, not 'x'"),
        ({**data, "manager": None}, "manager None is not an address"),
        ({**data, "format": "v0"}, "not a desk-orders file"),
    ]
    bad = tmp_path / "bad.json"
    for content, expected in damaged:
        bad.write_text(json.dumps(content))
        with pytest.raises(errors.InvalidInput) as refused:
            load_orders(bad)
        assert str(refused.value).startswith(f"{bad}: {expected}"), (expected, str(refused.value))
    for raw in (b"\xff\xfe", b"[" * 100_000, b'{"format": "carbon-desk-orders-v1", "chain_id": Infinity'):
        bad.write_bytes(raw)
        with pytest.raises(errors.InvalidInput, match="cannot read desk orders"):
            load_orders(bad)
    bad.write_text(json.dumps({**data, "chain_id": float("inf")}))  # Python's json writes and reads Infinity
    with pytest.raises(errors.InvalidInput, match="chain id must be a whole number"):
        load_orders(bad)


def test_a_client_signs_orders_and_permits_into_a_file_in_nonce_sequence(world, tmp_path):
    platform, market = world["platform"], world["market"]
    carl = market.client(world["debtors"][2])
    path = tmp_path / "carl.json"
    desk = carl.credits.open_desk_file(path)
    assert (desk.orders, desk.permits) == ([], []) and not path.exists()
    assert (desk.manager, desk.chain_id) == (platform.credits.contract.address, platform.chain_id)
    nonce, permit_nonce = carl.credits.order_nonce(carl.address), carl.settlement.permit_nonce(carl.address)
    first, permit = carl.credits.add_desk_order(desk, platform.address, "buy", tonnes("0.1"), permit=True)
    second, _ = carl.credits.add_desk_order(desk, platform.address, "buy-and-cover", tonnes("0.1"), period=PERIOD,
                                            limit_price=SALE + 1, valid_for=60, permit=True)
    assert desk.orders == [first, second] and desk.permits[0] == permit
    assert [s.order.nonce for s in desk.orders] == [nonce, nonce + 1]  # after the ones waiting in the file
    assert [p.nonce for p in desk.permits] == [permit_nonce, permit_nonce + 1]
    assert permit.spender == platform.credits.contract.address and permit.value == 2**256 - 1
    assert second.order.limit_price == SALE + 1 and second.order.period == PERIOD
    with pytest.raises(errors.InvalidInput, match="could never be settled"):
        carl.credits.add_desk_order(desk, platform.address, "buy", 1, limit_price=0)
    with pytest.raises(errors.InvalidInput, match="a permit is for buy orders"):
        carl.credits.add_desk_order(desk, platform.address, "sell", 1, permit=True)
    with pytest.raises(errors.InvalidInput, match="not this deployment's"):
        carl.credits.add_desk_order(dataclasses.replace(desk, chain_id=1), platform.address, "buy", 1)
    assert len(desk.orders) == 2 and len(desk.permits) == 2  # nothing added by the refusals
    desk.save()
    again = carl.credits.open_desk_file(path)
    assert (again.orders, again.permits) == (desk.orders, desk.permits)
    batch = platform.credits.check_desk_files([again])
    assert (batch.orders, batch.permits, batch.settled, batch.relayed) == (again.orders, again.permits, 0, 0)
    assert batch.name(1) == f"{path}: order 1 ({carl.address}, nonce {nonce + 1})"
    dataclasses.replace(again, chain_id=1).save()
    with pytest.raises(errors.InvalidInput, match=f"{path} holds desk orders for credit manager .* on chain 1, not"):
        carl.credits.open_desk_file(path)


def test_check_leaves_out_what_was_done_before_and_checks_every_permit(world):
    platform = world["platform"]
    ann, carl = world["sellers"][1], world["debtors"][2]
    first = signed(world, ann, SELL, tonnes("0.01"))
    permit = permit_of(world, carl, value=1)
    platform.credits.settle_desk_orders([first], [permit])
    second = signed(world, ann, SELL, tonnes("0.01"))
    with pytest.raises(DeskOrdersSettled, match="1 of the 2 orders were settled before") as settled:
        platform.credits.check_desk_orders([first, second], [permit])
    assert settled.value.first == f"desk order 0 ({ann.address}, nonce {first.order.nonce})"
    batch = platform.credits.check_desk_orders([first, second], [permit], skip_settled=True)
    assert batch.orders == [second] and batch.permits == [] and (batch.settled, batch.relayed) == (1, 1)
    assert batch.name(0) == f"desk order 1 ({ann.address}, nonce {second.order.nonce})"
    assert platform.credits.settle_desk_orders([first, second], skip_settled=True)[0].amount == tonnes("0.01")

    block = platform.block_number()
    manager, now = platform.credits.contract.address, platform.chain_time()
    nonce = platform.settlement.permit_nonce(carl.address)

    def carl_permit(key=carl.key, **change):
        fields = {"owner": carl.address, "spender": manager, "value": 1, "nonce": nonce, "deadline": now + 3_600,
                  "domain": platform.settlement.permit_domain(), **change}
        return sign_permit(key, **fields)

    # Each after a good one of the nonce before (refusals name the permit by its place).
    for bad, expected in ((carl_permit(world["debtors"][0].key, nonce=nonce + 1), "is not signed by its owner"),
                          (carl_permit(nonce=nonce + 2), f": the owner's next permit nonce is {nonce + 1}"),
                          (carl_permit(nonce=nonce + 1, deadline=now), "expired at"),
                          (carl_permit(nonce=nonce + 1, spender=platform.address), "not the credit manager")):
        with pytest.raises(errors.InvalidInput) as refused:
            platform.credits.check_desk_orders([], [carl_permit(), bad])
        assert str(refused.value).startswith(f"permit 1 ({carl.address}, nonce {bad.nonce})"), str(refused.value)
        assert expected in str(refused.value)
    two = [carl_permit(), carl_permit(nonce=nonce + 1)]
    assert platform.credits.check_desk_orders([], two).permits == two
    assert platform.block_number() == block


def test_preflight_names_the_first_order_the_chain_refuses_and_sends_nothing(world):
    platform = world["platform"]
    alice, ann = world["sellers"][:2]
    a, b = signed(world, alice, SELL, tonnes("0.01")), signed(world, ann, SELL, tonnes("0.01"))
    too_much = signed(world, alice, SELL, tonnes(50), nonce=a.order.nonce + 1)
    batch = platform.credits.check_desk_orders([a, b, too_much])
    before, block = snapshot(world), platform.block_number()
    with pytest.raises(DeskOrderRefused) as refused:
        platform.credits.preflight_desk_batch(batch)
    assert refused.value.index == 2 and isinstance(refused.value.error, errors.ERC20InsufficientBalance)
    assert str(refused.value).startswith(f"the chain refuses the first settlement transaction at desk order 2 "
                                         f"({alice.address}, nonce {too_much.order.nonce}): ERC20InsufficientBalance")
    with pytest.raises(errors.ERC20InsufficientBalance):  # settling tries its first call before sending any
        platform.credits.settle_desk_orders([a, b, too_much])
    assert platform.block_number() == block and snapshot(world) == before
    platform.credits.preflight_desk_batch(platform.credits.check_desk_orders([a, b]))  # these two would settle


def test_permits_travel_with_their_owner_s_first_chunk():
    key = "0x" + "11" * 32
    holder = Account.from_key(key).address
    domain = b"\x01" * 32
    orders = [sign_desk_order(key, DeskOrder(holder, holder, SELL, 1, 1, n, 1), domain) for n in range(5)]
    permits = [sign_permit(key, owner=holder, spender=holder, value=1, nonce=0, deadline=1, domain=domain),
               sign_permit(key, owner=Account.create().address, spender=holder, value=1, nonce=0, deadline=1,
                           domain=domain)]
    chunks = chunk_with_permits(orders, permits, size=2)
    assert [len(c) for c, _ in chunks] == [0, 2, 2, 1]  # the stray permit alone first
    assert [p for _, p in chunks] == [[permits[1]], [permits[0]], [], []]  # the holder's with its first order
    assert chunk_with_permits([], permits[:1], size=2) == [([], permits[:1])]
    assert chunk_with_permits([], [], size=2) == []
    # The gas budget splits too: three orders of 95k each within 250k (60k base) make calls of 2 and 1.
    assert [len(c) for c, _ in chunk_with_permits(orders[:3], [], gas_budget=250_000)] == [2, 1]
    assert all(settle_gas(c, p) <= CALL_GAS_BUDGET for c, p in chunk_with_permits(orders * 100, permits))


def test_fast_encoders_match_eth_abi(world):
    from eth_abi import encode

    from carbon_sdk.credits import encode_claims
    from carbon_sdk.desk_orders import encode_settle_args

    alice, bob = world["sellers"][0], world["debtors"][0]
    orders = [signed(world, alice, SELL, tonnes("0.01")), signed(world, bob, BUY_AND_COVER, 7, nonce=3)]
    permits = [permit_of(world, bob), permit_of(world, alice, value=5)]
    types = ["((address,address,uint8,uint16,uint128,uint128,uint64,uint64),uint8,bytes32,bytes32)[]",
             "(address,uint256,uint256,uint8,bytes32,bytes32)[]"]
    for o, p in ((orders, permits), (orders, []), ([], permits[:1])):
        assert encode_settle_args(o, p) == encode(types, [[x.as_abi() for x in o], [x.as_abi() for x in p]])
    claims = [(0, alice.address, 5, 0, [b"\x01" * 32, b"\x02" * 32]), (7, bob.address, 0, 9, []),
              (2**40, alice.address, 2**64 - 1, 2**127, [b"\x03" * 32])]
    reference = encode(["uint256", "(uint256,address,uint128,uint128,bytes32[])[]"], [12, claims])
    assert encode_claims(12, claims) == reference
    assert encode_claims(3, []) == encode(["uint256", "(uint256,address,uint128,uint128,bytes32[])[]"], [3, []])


def test_checksums_match_eth_utils():
    import os

    from eth_utils import to_checksum_address as reference

    from carbon_sdk.abi import to_checksum_address

    for _ in range(2_000):
        raw = os.urandom(20)
        assert to_checksum_address("0x" + raw.hex()) == to_checksum_address(raw) == reference(raw)
        assert to_checksum_address(raw.hex().upper()) == reference(raw)
    for bad in ("0x12", "0x" + "g" * 40, 5, b"\x01" * 19):
        with pytest.raises(ValueError):
            to_checksum_address(bad)

