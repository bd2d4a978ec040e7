"""Using personal credits on chain: selling to and buying from a platform at its posted prices, redeeming at a
merchant (burned, recorded, the merchant paid by the platform), donating to a welfare project (retired in the
beneficiary's name), and every refusal leaving all balances and records as they were."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from carbon_sdk import Role, errors
from carbon_sdk.credits import UNIT, desk_payment
from carbon_sdk.economics import platform_prices
from carbon_sdk.units import tonnes

PERIOD = 2031
BUY_BACK, SALE = 1_000, 2_500  # settlement units (2 decimals) per tonne: 10.00 and 25.00
RATE = 1_800  # what the platform pays a merchant per tonne redeemed: 18.00


@pytest.fixture(scope="module")
def world(market):
    regulator = market.regulator
    admin = Account.create()
    regulator.registry.register_organisation("Uses App", admin.address, Role.PLATFORM,
                                             allowed_roles=[Role.PLATFORM, Role.INDIVIDUAL])
    platform = market.client(admin)
    people = [Account.create() for _ in range(4)]
    platform.registry.enrol_batch([p.address for p in people], Role.INDIVIDUAL)
    merchant = market.member(Role.MERCHANT)
    outsider = market.member(Role.ENTERPRISE)  # a member, but no merchant
    regulator.credits.register_methodology(1, b"uses methodology")
    regulator.credits.set_offset_ratio(PERIOD, delta_bps=4_000)
    regulator.credits.set_issuance_ceiling(PERIOD, platform.address, tonnes(100))
    batch = platform.credits.build_batch([(p.address, tonnes(2), 0) for p in people])
    platform.credits.commit_batch(batch, period=PERIOD, methodology=1)
    platform.credits.claim_many(batch)
    platform.settlement.issue(platform.address, 1_000_000, fiat_reference="desk float")
    for p in people:
        platform.settlement.issue(p.address, 10_000, fiat_reference=f"wallet top-up {p.address}")
    beneficiary = Account.create().address
    regulator.credits.register_project(7, beneficiary, name="Kubuqi tree planting", region=0)
    return {"market": market, "regulator": regulator, "platform": platform, "people": people,
            "clients": [market.client(p) for p in people], "merchant": merchant, "outsider": outsider,
            "beneficiary": beneficiary}


def snapshot(world) -> dict:
    platform = world["platform"]
    credits, settlement = platform.credits, platform.settlement
    parties = [p.address for p in world["people"]] + [platform.address, world["merchant"].address,
                                                      world["outsider"].address]
    return {"pcc": [credits.balance(a) for a in parties], "cash": [settlement.balance(a) for a in parties],
            "supply": credits.token.call("totalSupply"), "prices": credits.prices(platform.address),
            "redemptions": credits.contract.call("redemptions"), "project": credits.project(7),
            "allowance": credits.desk_allowance(platform.address)}


def raw(client, function, *args):
    """Send with a fixed gas limit, past the SDK's checks, so that the chain itself refuses."""
    return client.transact(dataclasses.replace(client.credits.contract.tx(function, *args), gas=1_000_000))


def test_sell_to_and_buy_from_the_platform_at_its_posted_prices(world):
    platform, (alice, bob, *_) = world["platform"], world["clients"]
    assert platform.credits.post_prices(BUY_BACK, SALE).sale == SALE
    assert platform.credits.fund_desk(500_000) == 500_000
    cash = platform.settlement.balance(alice.address)
    sale = alice.credits.sell_to_platform(platform.address, tonnes("0.4"))
    assert (sale.amount, sale.price, sale.paid) == (tonnes("0.4"), BUY_BACK, 400)  # 0.4 t x 10.00
    assert platform.settlement.balance(alice.address) == cash + 400
    assert platform.credits.balance(alice.address) == tonnes("1.6")
    assert platform.credits.balance(platform.address) == tonnes("0.4")  # the desk's stock
    assert platform.credits.desk_allowance(platform.address) == 500_000 - 400
    # A buyer pays rounded up: 0.100001 t x 25.00 = 2.500025, so 251 units (2.51).
    bought = bob.credits.buy_from_platform(platform.address, tonnes("0.100001"))
    assert bought.paid == desk_payment(tonnes("0.100001"), SALE, round_up=True) == 251
    assert platform.credits.balance(bob.address) == tonnes("2.100001")
    assert platform.credits.balance(platform.address) == tonnes("0.299999")


def test_redeem_burns_records_and_pays_the_merchant(world):
    platform, alice, merchant = world["platform"], world["clients"][0], world["merchant"]
    platform.credits.post_prices(BUY_BACK, SALE)
    platform.credits.fund_desk(500_000)
    assert platform.credits.set_merchant_rate(merchant.address, RATE) == RATE
    supply, held = platform.credits.token.call("totalSupply"), platform.credits.balance(alice.address)
    paid_before = platform.settlement.balance(merchant.address)
    first = int(platform.credits.contract.call("redemptions"))
    r = alice.credits.redeem(platform.address, merchant.address, tonnes("0.25"), receipt="till 4 #1007")
    assert r.redemption_id == first + 1 and r.merchant == merchant.address and r.platform == platform.address
    assert r.merchant_paid == tonnes("0.25") * RATE // UNIT == 450  # 0.25 t x 18.00
    assert platform.settlement.balance(merchant.address) == paid_before + 450
    assert platform.credits.balance(alice.address) == held - tonnes("0.25")
    assert platform.credits.token.call("totalSupply") == supply - tonnes("0.25")  # burned, not moved
    events = platform.credits.contract.logs(["CreditsRedeemed"])
    assert events[-1].args["holder"] == alice.address and events[-1].args["amount"] == tonnes("0.25")


def test_donate_retires_credits_in_the_beneficiarys_name(world):
    platform, bob = world["platform"], world["clients"][1]
    supply = platform.credits.token.call("totalSupply")
    donation = bob.credits.donate(7, tonnes("0.3"))
    assert (donation.project_id, donation.beneficiary, donation.amount) == (7, world["beneficiary"], tonnes("0.3"))
    project = platform.credits.project(7)
    assert project.retired >= tonnes("0.3") and project.open and project.name == "Kubuqi tree planting"
    assert platform.credits.token.call("totalSupply") == supply - tonnes("0.3")


def test_posted_prices_from_the_model_in_one_call(world):
    platform = world["platform"]
    model, posted = platform.credits.post_model_prices(N=800, e=120, D=6_000, W="0.4", c=5, period=PERIOD)
    assert platform.credits.offset_ratio(PERIOD) == 4_000
    expected = platform_prices(800, "0.4", 120, 6_000, "0.4", 5)  # delta from the chain: 4,000 bps
    assert model == expected
    assert (posted.buy_back, posted.sale) == (expected.posted(2).buy_back, expected.posted(2).sale)
    assert platform.credits.prices(platform.address) == posted
    with pytest.raises(errors.InvalidInput, match="no offset ratio"):
        platform.credits.post_model_prices(N=800, e=120, D=6_000, W="0.4", period=1999)


def test_refusals_change_nothing(world):
    regulator, platform, merchant, outsider = world["regulator"], world["platform"], world["merchant"], \
        world["outsider"]
    alice, bob, carol, dave = world["clients"]
    platform.credits.post_prices(BUY_BACK, SALE)
    platform.credits.fund_desk(500_000)
    platform.credits.set_merchant_rate(merchant.address, RATE)
    before = snapshot(world)
    held = platform.credits.balance(carol.address)
    # A sale beyond the balance: the SDK refuses before sending, and so does the chain.
    with pytest.raises(errors.ERC20InsufficientBalance):
        carol.credits.sell_to_platform(platform.address, held + 1)
    with pytest.raises(errors.ERC20InsufficientBalance):
        raw(carol, "sellToPlatform", platform.address, held + 1, 0)
    # A price moved against the seller or buyer since it was read.
    with pytest.raises(errors.CreditsPriceMoved) as moved:
        raw(carol, "sellToPlatform", platform.address, tonnes(1), BUY_BACK + 1)
    assert moved.value.arguments == {"platform": platform.address, "posted": BUY_BACK, "limit": BUY_BACK + 1}
    with pytest.raises(errors.CreditsPriceMoved):
        raw(carol, "buyFromPlatform", platform.address, tonnes("0.01"), SALE - 1)
    # Too little to pay anything; a closed desk; crossed prices; a platform desk with no stock.
    with pytest.raises(errors.CreditsPaymentRoundsToZero):
        raw(carol, "sellToPlatform", platform.address, 999, 0)  # 999 units x 10.00 per 10^6 units < 1 unit
    with pytest.raises(errors.CreditsDeskClosed):
        raw(carol, "sellToPlatform", outsider.address, tonnes(1), 0)
    with pytest.raises(errors.CreditsPricesCrossed):
        raw(platform, "postPrices", SALE + 1, SALE)
    with pytest.raises(errors.ERC20InsufficientBalance):
        carol.credits.buy_from_platform(platform.address, tonnes(50))  # more than the desk holds
    # Redemption at a non-merchant, at a merchant this platform does not accept, and a non-merchant rate.
    with pytest.raises(errors.CreditsMerchantNotAccepted):
        raw(carol, "redeem", platform.address, outsider.address, tonnes("0.1"), b"\x01" * 32)
    with pytest.raises(errors.CreditsNotMerchant):
        raw(platform, "setMerchantRate", outsider.address, RATE)
    with pytest.raises(errors.CreditsMerchantNotAccepted):
        carol.credits.redeem(outsider.address, merchant.address, tonnes("0.1"))
    with pytest.raises(errors.ERC20InsufficientBalance):
        raw(carol, "redeem", platform.address, merchant.address, held + 1, b"\x01" * 32)
    # Donations: unknown project, nothing, beyond the balance; projects only by a regulator, once per id.
    with pytest.raises(errors.CreditsUnknownProject):
        raw(carol, "donate", 99, tonnes("0.1"))
    with pytest.raises(errors.CreditsZeroAmount):
        raw(carol, "donate", 7, 0)
    with pytest.raises(errors.ERC20InsufficientBalance):
        raw(carol, "donate", 7, held + 1)
    with pytest.raises(errors.GuardMissingRole):
        raw(platform, "registerProject", 8, platform.address, 0, "not a regulator's")
    with pytest.raises(errors.CreditsProjectExists):
        raw(regulator, "registerProject", 7, platform.address, 0, "again")
    with pytest.raises(errors.GuardMissingRole):  # desks are for platforms
        raw(carol, "postPrices", 1, 2)
    # The manager is the PCC token: credits sent to its own address would be lost, so they are refused.
    with pytest.raises(errors.TokenTransferRefused):
        raw(carol, "transfer", carol.credits.contract.address, tonnes("0.1"))
    assert snapshot(world) == before


def test_an_unfunded_desk_and_a_suspended_holder_are_refused(world):
    market, platform, merchant = world["market"], world["platform"], world["merchant"]
    dave = world["clients"][3]
    platform.credits.post_prices(BUY_BACK, SALE)
    platform.credits.set_merchant_rate(merchant.address, RATE)
    platform.credits.fund_desk(0)  # the platform withdraws its approval: nothing can be drawn from it
    before = snapshot(world)
    with pytest.raises(errors.ERC20InsufficientAllowance):
        raw(dave, "sellToPlatform", platform.address, tonnes("0.1"), 0)
    with pytest.raises(errors.ERC20InsufficientAllowance):
        raw(dave, "redeem", platform.address, merchant.address, tonnes("0.1"), b"\x02" * 32)
    assert snapshot(world) == before
    platform.credits.fund_desk(500_000)
    market.regulator.registry.suspend(dave.address)
    before = snapshot(world)
    for function, args in (("sellToPlatform", (platform.address, tonnes("0.1"), 0)),
                           ("donate", (7, tonnes("0.1"))),
                           ("redeem", (platform.address, merchant.address, tonnes("0.1"), b"\x03" * 32))):
        with pytest.raises(errors.GuardInactiveMember):
            raw(dave, function, *args)
    # A merchant suspended after the platform accepted it takes no more redemptions.
    market.regulator.registry.suspend(merchant.address)
    with pytest.raises(errors.CreditsNotMerchant):
        raw(world["clients"][2], "redeem", platform.address, merchant.address, tonnes("0.1"), b"\x04" * 32)
    assert snapshot(world) == before
    market.regulator.registry.reinstate(merchant.address)
    market.regulator.registry.reinstate(dave.address)


def test_closed_projects_take_no_donations(world):
    regulator, carol = world["regulator"], world["clients"][2]
    regulator.credits.register_project(8, Account.create().address, name="Wetland restoration")
    assert not regulator.credits.close_project(8).open
    before = snapshot(world)
    with pytest.raises(errors.CreditsProjectClosed):
        carol.credits.donate(8, tonnes("0.1"))
    with pytest.raises(errors.CreditsProjectClosed):
        raw(carol, "donate", 8, tonnes("0.1"))
    assert snapshot(world) == before


def test_credits_trade_on_the_exchange_between_individuals(world):
    """PCC is a token of the market like any other: a platform lists it, residents trade it peer to peer."""
    from carbon_sdk.types import Side

    market, platform = world["market"], world["platform"]
    alice, bob = world["clients"][0], world["clients"][1]
    pcc, cash = platform.credits.token.address, platform.settlement.contract.address
    listed = platform.exchange.create_market(pcc, cash, lot_size=tonnes("0.01"), tick_size=200,  # 2.00 a tonne per tick
                                             sellers=[Role.INDIVIDUAL, Role.PLATFORM],
                                             buyers=[Role.INDIVIDUAL, Role.PLATFORM])
    deadline = market.now() + 50
    platform.exchange.open_session(listed.id, call_deadline=deadline, closes_at=deadline + 100_000)
    market.mine_at(deadline + 1)
    platform.exchange.clear_all(listed.id)  # an empty call phase: straight to continuous trading
    alice_pcc, bob_pcc = platform.credits.balance(alice.address), platform.credits.balance(bob.address)
    alice_cash, bob_cash = platform.settlement.balance(alice.address), platform.settlement.balance(bob.address)
    alice.exchange.deposit(pcc, tonnes("0.1"))
    bob.exchange.deposit(cash, 1_000)
    assert alice.exchange.place_order(listed.id, Side.ASK, 10, 6).order_id  # 0.1 t at 6 ticks: 12.00 a tonne
    taken = bob.exchange.place_order(listed.id, Side.BID, 10, 6)  # fills it, and settles both at once
    assert taken.order_id == 0 and taken.filled_lots == 10
    for client, token in ((alice, cash), (bob, pcc), (bob, cash)):
        if client.exchange.free_balance(token):
            client.exchange.withdraw(token, client.exchange.free_balance(token))
    assert platform.credits.balance(bob.address) == bob_pcc + tonnes("0.1")
    assert platform.credits.balance(alice.address) == alice_pcc - tonnes("0.1")
    assert platform.settlement.balance(alice.address) == alice_cash + 120  # 0.1 t x 12.00, no fees
    assert platform.settlement.balance(bob.address) == bob_cash - 120
