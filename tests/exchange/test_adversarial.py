"""Adversarial inputs to CarbonExchange (DESIGN 6): every refusal is the named custom error with its arguments,
mined and reverted on chain (sent with a fixed gas limit, not only refused by the gas estimate), and leaves
everything as it was: free balances, order records, the market and its session, the exchange's token balances.
Where the reference model knows the rule, it refuses the same way (same error, same arguments).
"""

from __future__ import annotations

from typing import Any

import pytest

from carbon_sdk import Role
from carbon_sdk.errors import ContractCustomError
from carbon_sdk.exchange_model import (
    Cancelled,
    CancelReason,
    ModelError,
    OrderKind,
    Payout,
    Phase,
    Placed,
    Side,
)
from carbon_sdk.units import tonnes

from exchange_helpers import SPEC, Book, Venue, encode, order_record


@pytest.fixture(scope="module")
def venue(market) -> Venue:
    return Venue.create(market, traders=4)


# --- orders ------------------------------------------------------------------------------------------------------


def test_orders_need_a_session_in_call_or_continuous(venue):
    book = Book(venue, orders=False)
    t = book.traders[0]
    book.ids = [book.place(t, Side.BID, 2, 100)]
    error = book.refused(lambda: book.model.place(t.address, "bid", 2, 100, kind="market"), t, "placeOrder",
                         book.market, encode(Side.BID, 2, 100, OrderKind.MARKET), 10)
    assert (error.name, error.arguments) == ("ExchangeMarketOrderInCall", {"market": book.market})
    book.to_clearing()
    error = book.refused(lambda: book.model.place(t.address, "bid", 2, 100), t, "placeOrder", book.market,
                         encode(Side.BID, 2, 100), 10)
    assert (error.name, error.arguments) == ("ExchangeWrongPhase", {"market": book.market, "session": 1,
                                                                     "phase": int(Phase.CLEARING)})
    assert book.both(lambda: book.model.clear(10), t, "clear", book.market, 10)
    venue.to_closed(book.model, book.closes)
    error = book.refused(lambda: book.model.place_many(t.address, [("ask", 2, 100)], 5), t, "placeOrders",
                         book.market, [encode(Side.ASK, 2, 100)], 5)
    assert (error.name, error.arguments["phase"]) == ("ExchangeWrongPhase", int(Phase.CLOSED))
    # No such market; a market without any session yet.
    missing = venue.exchange.call("marketCount") + 1
    error = venue.refused(t, "placeOrder", missing, encode(Side.BID, 2, 100), 10)
    assert (error.name, error.arguments) == ("ExchangeUnknownMarket", {"market": missing})
    unopened = venue.new_market(SPEC, [t.address])
    error = venue.refused(t, "placeOrder", unopened.spec.market, encode(Side.BID, 2, 100), 10)
    assert (error.name, error.arguments) == ("ExchangeWrongPhase", {"market": unopened.spec.market, "session": 0,
                                                                     "phase": int(Phase.NONE)})
    with pytest.raises(ModelError, match="WrongPhase"):
        unopened.place(t.address, "bid", 2, 100)


@pytest.mark.parametrize("lots,tick,error,arguments", [
    (0, 100, "ExchangeBadQuantity", {"lots": 0, "minLots": 2}),
    (1, 100, "ExchangeBadQuantity", {"lots": 1, "minLots": 2}),
    (2, 0, "ExchangeBadPrice", {"tick": 0}),
])
def test_bad_quantities_and_prices_are_refused_alone_and_in_batches(venue, lots, tick, error, arguments):
    book = Book(venue)
    t = book.traders[3]
    refusal = book.refused(lambda: book.model.place(t.address, "bid", lots, tick), t, "placeOrder", book.market,
                           encode(Side.BID, lots, tick), 10)
    assert (refusal.name, refusal.arguments) == (error, arguments)
    # In a batch, the good orders before the bad one are undone with it.
    orders = [(Side.ASK, 2, 101), (Side.BID, lots, tick)]
    refusal = book.refused(lambda: book.model.place_many(t.address, orders), t, "placeOrders", book.market,
                           [encode(*o) for o in orders], 10)
    assert (refusal.name, refusal.arguments) == (error, arguments)
    with pytest.raises(ContractCustomError, match="ExchangeUnknownOrder"):
        venue.order(book.market << 120 | 1 << 88 | 1 << 80 | 101 << 64)  # the good ask was never stored


def test_batches_of_no_orders_or_too_many_are_refused(venue):
    book = Book(venue)
    t = book.traders[3]
    for size in (0, 101):
        orders = [(Side.ASK, 2, 101)] * size
        error = book.refused(lambda: book.model.place_many(t.address, orders), t, "placeOrders", book.market,
                             [encode(*o) for o in orders], 10)
        assert (error.name, error.arguments) == ("ExchangeBatchSize", {"size": size, "max": 100})
        ids = [book.ids[0]] * size
        error = book.refused(lambda: book.model.claim(ids), t, "claim", ids)
        assert (error.name, error.arguments) == ("ExchangeBatchSize", {"size": size, "max": 100})


def test_orders_beyond_the_free_balance_are_refused(venue):
    book = Book(venue)
    poor = venue.new_trader(asset=tonnes(3), cash=100)
    venue.join(book.model, poor.address)
    book.traders.append(poor)
    error = book.refused(lambda: book.model.place(poor.address, "bid", 2, 100), poor, "placeOrder", book.market,
                         encode(Side.BID, 2, 100), 10)
    # 2 lots at 100 ticks of 2 units: 400, fee 0 (0.4), margin 4.
    assert (error.name, error.arguments) == ("ExchangeInsufficientFree", {
        "account": poor.address, "token": venue.settlement, "free": 100, "needed": 404})
    error = book.refused(lambda: book.model.place(poor.address, "ask", 4, 100), poor, "placeOrder", book.market,
                         encode(Side.ASK, 4, 100), 10)
    assert error.arguments == {"account": poor.address, "token": venue.asset, "free": tonnes(3),
                               "needed": tonnes(4)}


# --- markets and sessions ----------------------------------------------------------------------------------------


def market_params(venue: Venue, **changes: Any) -> tuple:
    p = {"asset": venue.asset, "settlement": venue.settlement, "lot": tonnes(1), "tick": 2, "min": 1, "bfee": 0,
         "sfee": 0, "margin": 0, "pricing": 0, "region": 0, "sellers": 1 << 3, "buyers": 1 << 3, **changes}
    return (p["asset"], p["settlement"], p["lot"], p["tick"], p["min"], p["bfee"], p["sfee"], p["margin"],
            p["pricing"], p["region"], p["sellers"], p["buyers"])


@pytest.mark.parametrize("changes,field", [
    ({"settlement": "asset"}, 0),
    ({"asset": "0x" + "00" * 20}, 0),
    ({"lot": 0}, 1),
    ({"tick": 0}, 1),
    ({"lot": tonnes(1), "tick": 1}, 2),  # 1,000,000: a lot at a half tick would be half a unit
    ({"lot": 3 * 10**5, "tick": 10}, 2),
    ({"lot": 10**12, "tick": 10**12}, 3),
    ({"min": 0}, 4),
    ({"bfee": 1001}, 5),
    ({"sfee": 1001}, 5),
    ({"margin": 10_001}, 6),
    ({"sellers": 0}, 7),
    ({"buyers": 1}, 7),  # bit 0: Role.NONE
    ({"buyers": 1 << 3 | 1 << 9}, 7),  # no such role
])
def test_market_creation_checks_its_parameters(venue, changes, field):
    if changes.get("settlement") == "asset":
        changes = {**changes, "settlement": venue.asset}
    count = venue.exchange.call("marketCount")
    error = venue.refused(venue.operator, "createMarket", market_params(venue, **changes))
    assert (error.name, error.arguments) == ("ExchangeInvalidMarket", {"field": field})
    assert venue.exchange.call("marketCount") == count


def test_only_platforms_and_regulators_create_markets(venue):
    trader = venue.traders[0]
    count = venue.exchange.call("marketCount")
    error = venue.refused(trader, "createMarket", market_params(venue))
    assert (error.name, error.arguments) == ("ExchangeNotMarketCreator", {"caller": trader.address})
    assert venue.exchange.call("marketCount") == count
    regulator = venue.chain.regulator
    assert regulator.exchange.create_market(venue.asset, venue.settlement, lot_size=tonnes(1),
                                            tick_size=2).operator == regulator.address


def test_sessions_only_by_the_operator_one_at_a_time_with_a_sane_schedule(venue):
    book = Book(venue)
    now = venue.chain.now()
    for outsider in (book.traders[0], venue.chain.platform()):
        with book.unchanged():
            error = venue.refused(outsider, "openSession", book.market, now + 10, now + 20, False)
        assert (error.name, error.arguments) == ("ExchangeNotOperator", {"caller": outsider.address,
                                                                          "market": book.market})
    error = book.refused(book.model.open_session, venue.operator, "openSession", book.market, now + 10, now + 20,
                         False)
    assert (error.name, error.arguments) == ("ExchangeSessionOpen", {"market": book.market, "session": 1})
    book.to_closed()
    for deadline, closes in ((now - 1, now + 10**6), (venue.chain.now() + 100, venue.chain.now() + 100)):
        with book.unchanged():
            error = venue.refused(venue.operator, "openSession", book.market, deadline, closes, False)
        assert error.name == "ExchangeInvalidSchedule"
        assert (error.arguments["callDeadline"], error.arguments["closesAt"]) == (deadline, closes)
        assert error.arguments["timestamp"] >= now
    venue.open_session(book.model)  # a sane one opens the next session
    assert venue.operator.exchange.session(book.market).session == 2


# --- cancels and claims ----------------------------------------------------------------------------------------


def test_cancel_only_ones_own_open_order(venue):
    book = Book(venue)
    bid, ask, _ = book.ids
    owner, other = book.traders[0], book.traders[1]
    error = book.refused(lambda: book.model.cancel(other.address, bid), other, "cancel", bid)
    assert (error.name, error.arguments) == ("ExchangeNotOrderOwner", {"caller": other.address, "orderId": bid})
    book.both(lambda: book.model.cancel(owner.address, bid), owner, "cancel", bid)
    error = book.refused(lambda: book.model.cancel(owner.address, bid), owner, "cancel", bid)
    assert (error.name, error.arguments) == ("ExchangeOrderClosed", {"orderId": bid})
    error = book.refused(lambda: book.model.cancel(owner.address, bid + 7), owner, "cancel", bid + 7)
    assert (error.name, error.arguments) == ("ExchangeUnknownOrder", {"orderId": bid + 7})


def test_claims_skip_what_is_not_due_and_refuse_a_call_that_settles_nothing(venue):
    book = Book(venue)
    bid, ask, rest = book.ids
    anyone = book.traders[3]
    error = book.refused(lambda: book.model.claim([rest]), anyone, "claim", [rest])  # open before close
    assert (error.name, error.arguments) == ("ExchangeNothingToClaim", {"orderId": rest})
    book.to_clearing()
    assert not book.both(lambda: book.model.clear(1), anyone, "clear", book.market, 1)  # one pair; more to do
    error = book.refused(lambda: book.model.claim([ask]), anyone, "claim", [ask])  # filled, but clearing runs
    assert (error.name, error.arguments) == ("ExchangeNothingToClaim", {"orderId": ask})
    error = book.refused(lambda: book.model.claim([ask, bid, rest]), anyone, "claim", [ask, bid, rest])
    assert (error.name, error.arguments) == ("ExchangeNothingToClaim", {"orderId": ask})  # none due: its first id
    assert book.both(lambda: book.model.clear(10), anyone, "clear", book.market, 10)
    book.both(lambda: book.model.claim([ask]), anyone, "claim", [ask])
    error = book.refused(lambda: book.model.claim([ask]), anyone, "claim", [ask])  # settled already
    assert (error.name, error.arguments) == ("ExchangeNothingToClaim", {"orderId": ask})
    error = book.refused(lambda: book.model.claim([ask, bid, rest]), anyone, "claim", [ask, bid, rest])
    assert (error.name, error.arguments) == ("ExchangeNothingToClaim", {"orderId": ask})  # settled, open, open
    book.both(lambda: book.model.cancel(book.traders[0].address, bid), book.traders[0], "cancel", bid)
    error = book.refused(lambda: book.model.claim([bid, ask + 99]), anyone, "claim", [bid, ask + 99])
    assert (error.name, error.arguments) == ("ExchangeUnknownOrder", {"orderId": ask + 99})
    assert not venue.order(bid)["claimed"]  # the bid it settled first was undone with the call
    # Twice in one call, among orders not due: settled once, the rest skipped.
    payouts = book.both(lambda: book.model.claim([ask, bid, rest, bid]), anyone, "claim", [ask, bid, rest, bid])
    assert [p.order_id for p in payouts] == [bid] and venue.order(bid)["claimed"]
    assert not venue.order(rest)["claimed"]


def test_withdrawals_of_locked_funds_and_deposits_of_unknown_tokens_are_refused(venue):
    book = Book(venue)
    trader = book.traders[0]  # its bid 5@100 locks 1000 + 1 + 10 settlement units
    free = venue.free(trader.address, venue.settlement)
    error = book.refused(lambda: book.model.withdraw(trader.address, "settlement", free + 1), trader, "withdraw",
                         venue.settlement, free + 1)
    assert (error.name, error.arguments) == ("ExchangeInsufficientFree", {
        "account": trader.address, "token": venue.settlement, "free": free, "needed": free + 1})
    for function in ("withdraw", "deposit"):
        error = book.refused(None, trader, function, venue.settlement, 0)
        assert (error.name, error.arguments) == ("ExchangeZeroAmount", {})
    coin = venue.chain.manifest.contract("RewardPenaltyCoin").address
    for function in ("withdraw", "deposit"):
        error = book.refused(None, trader, function, coin, 1)
        assert (error.name, error.arguments) == ("ExchangeUnknownToken", {"token": coin})
    error = book.refused(book.model.collect_fees, trader, "collectFees", book.market)  # nothing accrued yet
    assert error.name == "ExchangeZeroAmount"
    # The free part does come out, and goes back in.
    held = venue.token_balance(venue.settlement, trader.address)
    assert trader.exchange.withdraw(venue.settlement, free) == 0
    assert venue.token_balance(venue.settlement, trader.address) == held + free
    trader.exchange.deposit(venue.settlement, free)


# --- self-trades -------------------------------------------------------------------------------------------------


def test_self_trade_in_the_auction_cancels_the_ask_remainder(venue):
    book = Book(venue, orders=False)
    a, b = book.traders[0], book.traders[1]
    bid, own, other = book.place(a, Side.BID, 5, 100), book.place(a, Side.ASK, 3, 99), book.place(b, Side.ASK, 2, 100)
    book.to_clearing()
    assert not book.both(lambda: book.model.clear(1), b, "clear", book.market, 1)
    assert book.model.events[-1] == Cancelled(own, 3, CancelReason.SELF_TRADE)
    assert venue.order(own)["openLots"] == 0 and venue.order(own)["filledLots"] == 0
    assert book.both(lambda: book.model.clear(10), b, "clear", book.market, 10)
    assert [(f.bid_order, f.ask_order, f.lots, f.price2) for f in book.model.fills] == [(bid, other, 2, 200)]
    # The cancelled ask's claim gives back its asset and its margin (3 lots at 99 x 2 = 594 -> 5).
    book.both(lambda: book.model.claim([own]), b, "claim", [own])
    assert book.model.events[-1] == Payout(own, a.address, tonnes(3), 5, 0)


def test_self_trade_in_continuous_cancels_and_settles_the_resting_order(venue):
    book = Book(venue, orders=False)
    book.to_continuous()
    a, b = book.traders[0], book.traders[1]
    own, other = book.place(a, Side.ASK, 2, 100), book.place(b, Side.ASK, 2, 101)
    start = len(book.model.events)
    bid = book.place(a, Side.BID, 3, 101)
    assert book.model.events[start:start + 2] == [Cancelled(own, 2, CancelReason.SELF_TRADE),
                                                  Payout(own, a.address, tonnes(2), 4, 0)]  # settled at once
    assert venue.order(own)["claimed"] and venue.order(other)["claimed"]  # other: completed by the taker
    assert venue.order(bid) == order_record(book.model, bid)  # 2 lots filled on entry, 1 resting
    assert book.model.events[-1] == Placed(bid, a.address, book.market, Side.BID, 101, 3)


# --- who may trade -----------------------------------------------------------------------------------------------


def test_a_member_in_debt_cannot_trade_or_withdraw_but_can_cancel_and_be_claimed(venue):
    book = Book(venue)
    debtor = venue.new_trader()
    venue.join(book.model, debtor.address)
    book.traders.append(debtor)
    resting = book.place(debtor, Side.BID, 2, 90)
    book.ids.append(resting)
    venue.chain.regulator.coin.apply_rule(debtor.address, "unreported", evidence="x", audit_key="k")
    assert venue.chain.regulator.coin.debt(debtor.address) > 0
    venue.refresh_profile(book.model, debtor.address)
    error = book.refused(lambda: book.model.place(debtor.address, Side.BID, 2, 100), debtor, "placeOrder",
                         book.market, encode(Side.BID, 2, 100), 10)
    assert (error.name, error.arguments) == ("ExchangeTraderInDebt", {"account": debtor.address})
    with book.unchanged():  # the token's transfer policy refuses the withdrawal
        error = venue.refused(debtor, "withdraw", venue.settlement, 1)
    assert (error.name, error.arguments) == ("TokenTransferRefused", {"from": venue.exchange.address,
                                                                       "to": debtor.address})
    book.both(lambda: book.model.cancel(debtor.address, resting), debtor, "cancel", resting)
    book.both(lambda: book.model.claim([resting]), book.traders[0], "claim", [resting])


def test_a_suspended_member_cannot_trade_but_can_cancel(venue):
    book = Book(venue)
    member = venue.new_trader()
    venue.join(book.model, member.address)
    book.traders.append(member)
    resting = book.place(member, Side.ASK, 2, 110)
    book.ids.append(resting)
    venue.chain.regulator.registry.suspend(member.address)
    venue.refresh_profile(book.model, member.address)
    for side in (Side.BID, Side.ASK):
        error = book.refused(lambda: book.model.place(member.address, side, 2, 100), member, "placeOrder",
                             book.market, encode(side, 2, 100), 10)
        assert (error.name, error.arguments) == ("ExchangeTraderInactive", {"account": member.address})
    book.both(lambda: book.model.cancel(member.address, resting), member, "cancel", resting)
    venue.chain.regulator.registry.reinstate(member.address)


def test_roles_are_checked_per_side(venue):
    # Only platforms buy; enterprises sell.
    book = Book(venue, orders=False, buyers=(Role.PLATFORM,), sellers=(Role.ENTERPRISE,))
    trader = book.traders[0]
    error = book.refused(lambda: book.model.place(trader.address, Side.BID, 2, 100), trader, "placeOrder",
                         book.market, encode(Side.BID, 2, 100), 10)
    assert (error.name, error.arguments) == ("ExchangeRoleNotAllowed", {
        "account": trader.address, "role": int(Role.ENTERPRISE), "side": int(Side.BID)})
    orders = [(Side.ASK, 2, 101), (Side.BID, 2, 100)]  # the ask is fine, the bid refuses the whole batch
    error = book.refused(lambda: book.model.place_many(trader.address, orders), trader, "placeOrders", book.market,
                         [encode(*o) for o in orders], 10)
    assert error.name == "ExchangeRoleNotAllowed"
    book.place(trader, Side.ASK, 2, 101)


def test_a_regional_market_takes_only_its_regions_members(venue):
    book = Book(venue, orders=False, region=5)
    outsider = book.traders[0]
    error = book.refused(lambda: book.model.place(outsider.address, Side.BID, 2, 100), outsider, "placeOrder",
                         book.market, encode(Side.BID, 2, 100), 10)
    assert (error.name, error.arguments) == ("ExchangeRegionMismatch", {
        "account": outsider.address, "region": 0, "marketRegion": 5})
    local = venue.new_trader(region=5, asset=0)
    venue.join(book.model, local.address)
    book.place(local, Side.BID, 2, 100)


# --- reentrancy (complements test_reentrancy.py) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(venue, artifacts):
    """A market whose asset is ReentrantToken (contracts/test): every transfer, once armed, calls back into
    the exchange with the payload the test sets. A trader holds some in its deposit and has an order."""
    from carbon_sdk.deploy import deploy_contract

    trader = venue.traders[3]
    address = deploy_contract(trader.sender, artifacts["ReentrantToken"]).contract_address
    token = trader.bind("ReentrantToken", address, artifacts["ReentrantToken"].abi)
    market = venue.operator.exchange.create_market(address, venue.settlement, lot_size=tonnes(1), tick_size=2).id
    trader.transact(token.tx("approve", venue.exchange.address, 10**24))
    trader.transact(venue.exchange.tx("deposit", address, tonnes(100)))
    now = venue.chain.now()
    venue.operator.exchange.open_session(market, call_deadline=now + 10**6, closes_at=now + 2 * 10**6)
    return {"token": token, "trader": trader, "market": market, "address": address}


def arm(hostile, function: str | None, *args: Any) -> None:
    exchange = hostile["trader"].exchange.contract
    payload = exchange.abi.function(function).encode(*args) if function else b""
    hostile["trader"].transact(hostile["token"].tx("arm", exchange.address if function else "0x" + "00" * 20,
                                                   payload))


@pytest.mark.parametrize("inner", ["placeOrder", "placeOrders", "claim"])
def test_a_reentrant_token_cannot_reenter_order_entry_or_claims_from_a_withdrawal(venue, hostile, inner):
    """The guard fires before anything else: the nested call reverts with ReentrancyGuardReentrantCall, which
    the token bubbles up, so the withdrawal reverts and nothing moves. (It shows the guard is on these entry
    points; whether an unguarded path could have been exploited is not something a test can show.)"""
    token, trader, market = hostile["address"], hostile["trader"], hostile["market"]
    args = {"placeOrder": (market, encode(Side.ASK, 1, 100), 1),
            "placeOrders": (market, [encode(Side.ASK, 1, 100)], 1), "claim": ([1],)}[inner]
    arm(hostile, inner, *args)
    try:
        def state():
            return (venue.free(trader.address, token), hostile["token"].call("balanceOf", venue.exchange.address),
                    hostile["token"].call("balanceOf", trader.address), venue.exchange.call("marketOf", market))
        before = state()
        error = venue.refused(trader, "withdraw", token, tonnes(1))
        assert (error.name, error.arguments) == ("ReentrancyGuardReentrantCall", {})
        assert state() == before
    finally:
        arm(hostile, None)


def test_the_callback_does_run_and_settlement_never_calls_the_token(venue, hostile):
    token, trader, market = hostile["address"], hostile["trader"], hostile["market"]
    arm(hostile, "marketCount")  # an unguarded view: the callback runs inside the transfer and succeeds
    try:
        free = venue.free(trader.address, token)
        trader.transact(venue.exchange.tx("withdraw", token, tonnes(1)))
        assert venue.free(trader.address, token) == free - tonnes(1)
        # Armed with a callback that always reverts (a reentrant withdraw), every exchange call other than
        # deposit and withdraw still works: none of them transfers a token, settlement included.
        arm(hostile, "withdraw", token, 1)
        buyer = venue.traders[0]
        bid = buyer.exchange.place_order(market, "bid", 2, 100).order_id
        ask = trader.exchange.place_order(market, "ask", 3, 101).order_id  # locks the hostile asset
        buyer.exchange.cancel(bid)
        trader.exchange.cancel(ask)
        buyer.exchange.claim(order_ids=[bid, ask])  # pays the asset back into the deposit: no transfer
        assert venue.order(bid)["claimed"] and venue.order(ask)["claimed"]
        assert venue.free(trader.address, token) == free - tonnes(1)
        with pytest.raises(ContractCustomError, match="ReentrancyGuardReentrantCall"):
            trader.transact(venue.exchange.tx("withdraw", token, 1))
    finally:
        arm(hostile, None)
