"""The exchange's reference model (carbon_sdk.exchange_model) against docs/exchange.md, by hand and at random.

The market used by hand: 1 lot = 1 tonne, 1 tick = 2 settlement units per tonne, so q lots at p ticks are
worth 2*q*p and at h half-ticks q*h; buyer fee 25 bps, seller fee 15 bps, margin 50 bps, all rounded down,
each fee once per order on the order's total value when the order is settled.
"""

from __future__ import annotations

import random
from dataclasses import replace
from math import gcd

import pytest

from carbon_sdk.errors import InvalidInput
from carbon_sdk.exchange_model import (
    AlreadyClosed,
    AuctionCleared,
    BadPrice,
    BadQuantity,
    BatchSize,
    Cancelled,
    CancelReason,
    ExchangeModel,
    Fill,
    InsufficientFree,
    InvalidMarket,
    MarketOrderInCall,
    MarketSpec,
    ModelError,
    NothingToClaim,
    NotOwner,
    OrderKind,
    Payout,
    Phase,
    Placed,
    Pricing,
    RegionMismatch,
    RoleNotAllowed,
    SealedSession,
    SessionOpen,
    Side,
    TakerSettled,
    TraderInactive,
    TraderInDebt,
    UnknownOrder,
    UnknownToken,
    WrongPhase,
    ZeroAmount,
    order_id,
)
from carbon_sdk.types import Role

SPEC = MarketSpec(lot_size=10**6, tick_size=2, min_lots=1, buyer_fee_bps=25, seller_fee_bps=15, margin_bps=50,
                  pricing="midpoint", operator="platform")
CASH = 10**6  # settlement units each trader deposits
TONNES = 100 * 10**6  # asset units each trader deposits
T = 10**6  # one lot


def market(pricing: str = "midpoint", **changes) -> ExchangeModel:
    m = ExchangeModel(replace(SPEC, pricing=pricing, **changes))
    for account in "abcdefg":
        m.deposit(account, "settlement", CASH)
        m.deposit(account, "asset", TONNES)
    m.open_session()
    return m


def continuous(pricing: str = "midpoint", **changes) -> ExchangeModel:
    """A market whose (empty) auction is over."""
    m = market(pricing, **changes)
    m.end_call()
    assert m.clear(1)
    return m


def three_by_three(pricing: str) -> tuple[ExchangeModel, list[int]]:
    """Bids a 5@105, b 3@103, c 4@100; asks d 4@99, e 3@102, f 5@104 (placed alternately)."""
    m = market(pricing)
    ids = [m.place("a", "bid", 5, 105), m.place("d", "ask", 4, 99), m.place("b", "bid", 3, 103),
           m.place("e", "ask", 3, 102), m.place("c", "bid", 4, 100), m.place("f", "ask", 5, 104)]
    m.end_call()
    return m, ids


def fills(m: ExchangeModel) -> list[tuple[int, int, int, int, int]]:
    return [(f.bid_order, f.ask_order, f.lots, f.price2, f.value) for f in m.trades()]


def settled(m: ExchangeModel) -> ExchangeModel:
    assert m.invariants() == []
    return m


# --- the market's arithmetic -----------------------------------------------------------------------------------


@pytest.mark.parametrize("changes,field", [
    ({"lot_size": 0}, 1),
    ({"lot_size": 10**6, "tick_size": 1}, 2),  # a lot at a half tick would be half a unit
    ({"lot_size": 3 * 10**5, "tick_size": 10}, 2),
    ({"lot_size": 10**12, "tick_size": 10**12}, 3),  # a lot at a tick worth 10**18 >= 2**48
    ({"min_lots": 0}, 4),
    ({"buyer_fee_bps": 1001}, 5),
    ({"seller_fee_bps": 5000}, 5),
    ({"margin_bps": 10_001}, 6),
    ({"buyer_roles": ()}, 7),
    ({"seller_roles": (Role.NONE, Role.ENTERPRISE)}, 7),
])
def test_market_spec_is_checked_like_the_contract(changes, field):
    with pytest.raises(InvalidMarket) as refused:
        replace(SPEC, **changes)
    assert refused.value.arguments == {"field": field} and refused.value.contract_name == "ExchangeInvalidMarket"
    assert isinstance(refused.value, InvalidInput)


@pytest.mark.parametrize("changes", [{"lot_size": 1.0}, {"pricing": "vickrey"}, {"min_lots": 2**24},
                                     {"buyer_roles": ("wizard",)}])
def test_malformed_market_specs_are_invalid_input(changes):
    with pytest.raises(InvalidInput):
        replace(SPEC, **changes)


def test_values_fees_margins_locks_and_payouts_are_exact_integers():
    spec = replace(SPEC, lot_size=10**5, tick_size=20)  # 0.1 t lots: 2 * 10**6 exactly
    assert spec.unit == 2 and spec.value(3, 205) == 615  # 3 lots of 0.1 t at 102.5 ticks of 20 units per tonne
    assert SPEC.tick_value(3, 1001) == 6006
    assert SPEC.buyer_fee(6006) == 15  # 15.015 rounded down
    assert SPEC.seller_fee(6006) == 9  # 9.009
    assert SPEC.margin(3, 1001) == 30  # 30.03
    assert SPEC.order_lock("bid", 3, 1001) == {"asset": 0, "settlement": 6006 + 15 + 30}
    assert SPEC.order_lock("ask", 3, 1001) == {"asset": 3 * T, "settlement": 30}
    # A bid of 3 @ 1001 that filled 2 lots for 4000: the asset, and its lock less value and fee (10).
    assert SPEC.payout(Side.BID, 3, 1001, 2, 4000) == (2 * T, 6051 - 4000 - 10, 10)
    # An ask of 3 @ 1001 that sold 2 lots for 4100: value less fee (6), its margin, its unsold lot.
    assert SPEC.payout(Side.ASK, 3, 1001, 2, 4100) == (T, 4100 - 6 + 30, 6)
    assert SPEC.price_per_tonne(205) == 205  # 102.5 ticks x 2 units
    m = continuous()
    m.place("a", "bid", 3, 1001)
    assert (m.free("a", "settlement"), m.locked("a", "settlement")) == (CASH - 6051, 6051)


def test_order_ids_pack_market_session_side_tick_and_fifo_index():
    m = market(market=7)
    first, second, other = m.place("a", "bid", 1, 100), m.place("b", "bid", 1, 100), m.place("a", "ask", 1, 101)
    assert first == 7 << 120 | 1 << 88 | 0 << 80 | 100 << 64 | 0 == order_id(7, 1, Side.BID, 100, 0)
    assert second == first + 1 and other == order_id(7, 1, Side.ASK, 101, 0)
    state = m.order(second)
    assert (state.market, state.session, state.side, state.tick, state.index) == (7, 1, Side.BID, 100, 1)


# --- the call auction ------------------------------------------------------------------------------------------


def test_midpoint_auction_on_a_3x3_book_by_hand():
    m, (b1, a1, b2, a2, b3, a3) = three_by_three("midpoint")
    # Budget units: pairs (a, d), (a, e), (b, e), one each; the fill that closes d, a, e retires their ticks
    # with them, free; then 103 < 104: done.
    assert m.clear(2) is False  # (a, d), (a, e)
    assert m.clear(1) is False  # (b, e), no budget left to look further
    assert m.clear(1) is True  # 103 < 104: done without spending a unit
    assert m.phase is Phase.CONTINUOUS and m.session_state().steps == 3
    assert fills(settled(m)) == [(b1, a1, 4, 204, 816), (b1, a2, 1, 207, 207), (b2, a2, 2, 205, 410)]
    assert m.events[-1] == AuctionCleared(1, 1, 0)
    assert all(f.phase is Phase.CLEARING for f in m.fills)
    # Nothing is paid before the claims: the filled orders still hold their whole locks.
    assert m.free("a", "settlement") == CASH - (1050 + 2 + 5)
    assert m.order(b2).open_lots == 1 and m.order(b2).value == 410 and not m.order(b2).closed
    assert m.claimable() == [b1, a1, a2]
    assert m.claim([b1, a1, a2]) == [
        Payout(b1, "a", 5 * T, 1057 - 1023 - 2, 2),  # lock 1050 + 2 + 5 at 105; paid 816 + 207, fee 2 (2.5575)
        Payout(a1, "d", 0, 816 - 1 + 3, 1),  # fee 1 (1.224), margin 3 (3.96) back
        Payout(a2, "e", 0, 617 - 0 + 3, 0),  # fee 0 (0.9255)
    ]
    assert m.fees_accrued == 3 and m.free("platform", "settlement") == 0
    assert m.collect_fees() == 3 and m.free("platform", "settlement") == 3 and m.fees_accrued == 0
    assert (m.free("a", "settlement"), m.free("a", "asset")) == (CASH - 1025, TONNES + 5 * T)
    assert (m.free("d", "settlement"), m.free("d", "asset")) == (CASH + 815, TONNES - 4 * T)
    assert settled(m)


def test_uniform_auction_on_the_same_book_by_hand():
    m, (b1, a1, b2, a2, b3, a3) = three_by_three("uniform")
    assert m.clear(2) is False
    assert [(f.lots, f.price2, f.value) for f in m.fills] == [(4, 0, 0), (1, 0, 0)]  # priced when cleared
    assert m.order(b1).value == 0 and settled(m)
    with pytest.raises(NothingToClaim):  # not while clearing runs
        m.claim([b1])
    assert m.clear(5) is True
    assert m.session_state().uniform_price2 == 205  # the last pair: bid 103, ask 102
    assert m.events[-1] == AuctionCleared(1, 1, 205)
    # Every pair at 102.5 ticks, inside each pair's [ask, bid]: [99, 105], [102, 105], [102, 103].
    assert fills(settled(m)) == [(b1, a1, 4, 205, 820), (b1, a2, 1, 205, 205), (b2, a2, 2, 205, 410)]
    assert m.claim([b1, a1, a2]) == [
        Payout(b1, "a", 5 * T, 1057 - 1025 - 2, 2), Payout(a1, "d", 0, 820 - 1 + 3, 1),
        Payout(a2, "e", 0, 615 + 3, 0),
    ]
    assert settled(m)


def test_uniform_price_is_the_last_matched_pair_not_a_self_trade_step():
    m = market("uniform")
    a_bid, b_bid = m.place("a", "bid", 2, 105), m.place("b", "bid", 2, 103)
    c_ask, b_ask = m.place("c", "ask", 2, 100), m.place("b", "ask", 2, 102)
    m.end_call()
    assert m.clear(10)
    # The pair (a's and c's ticks retired with it, free); b's own ask cancelled; skipped and its tick retired;
    # then no ask is left.
    assert m.session_state().steps == 4 and m.session_state().uniform_price2 == 205
    assert fills(m) == [(a_bid, c_ask, 2, 205, 410)]
    assert Cancelled(b_ask, 2, CancelReason.SELF_TRADE) in m.events
    assert m.order(b_ask).cancelled_lots == 2 and m.order(b_ask).closed
    assert m.order(b_bid).open_lots == 2 and settled(m)


def test_auction_takes_best_price_first_then_earliest():
    m = market()
    bid = m.place("a", "bid", 3, 100)
    d_ask, e_ask, f_ask = m.place("d", "ask", 2, 100), m.place("e", "ask", 2, 100), m.place("f", "ask", 2, 99)
    m.end_call()
    assert m.clear(10)
    assert fills(settled(m)) == [(bid, f_ask, 2, 199, 398), (bid, d_ask, 1, 200, 200)]
    assert m.order(e_ask).open_lots == 2  # later at the same price: untouched


def test_self_trade_in_the_auction_cancels_the_ask_and_its_claim_returns_it():
    m = market()
    bid, own_ask, other_ask = m.place("a", "bid", 5, 105), m.place("a", "ask", 3, 100), m.place("b", "ask", 2, 101)
    m.end_call()
    assert m.clear(1) is False  # the step cancelled a's own ask
    assert m.order(own_ask).cancelled_lots == 3 and m.order(own_ask).closed
    assert m.free("a", "asset") == TONNES - 3 * T  # locked until its claim
    assert m.clear(10) is True
    assert fills(settled(m)) == [(bid, other_ask, 2, 206, 412)]
    assert m.claim([own_ask]) == [Payout(own_ask, "a", 3 * T, 3, 0)]  # its asset and its margin (3.0)
    assert m.free("a", "asset") == TONNES


def test_no_crossing_passes_clearing_in_one_call_and_clearing_is_bounded():
    m = market()
    m.place("a", "bid", 1, 99)
    m.place("b", "ask", 1, 100)
    m.end_call()
    assert m.clear(1) is True and m.session_state().steps == 0
    flood = market()
    for i in range(40):  # 40 one-lot bids and asks, all crossing, on 5 ticks a side
        flood.place("abc"[i % 3], "bid", 1, 110 + i % 5)
        flood.place("def"[i % 3], "ask", 1, 90 + i % 5)
    flood.end_call()
    before = flood.snapshot()
    with pytest.raises(BatchSize) as refused:  # a call with no budget is refused
        flood.clear(0)
    assert refused.value.arguments == {"size": 0, "max": 2**256 - 1} and flood.snapshot() == before
    calls = 1
    while not flood.clear(7):
        calls += 1
        assert flood.session_state().steps == 7 * (calls - 1)
    # 40 pairs, 7 per call; each tick leaves the book with the fill of its last order, free.
    assert calls == 6 and flood.session_state().steps == 40 and len(flood.fills) == 40 and settled(flood)


def test_cancelled_orders_cost_clearing_steps_but_never_block_it():
    m = market()
    spam = m.place_many("a", [("bid", 1, 100)] * 30)
    for i in spam:
        m.cancel("a", i)
    bid, ask = m.place("b", "bid", 2, 100), m.place("c", "ask", 2, 100)
    m.end_call()
    calls = 1
    while not m.clear(4):
        calls += 1
    # 30 cancelled bids skipped at tick 100 before b's bid; one pair, whose fill retires both ticks.
    assert fills(m) == [(bid, ask, 2, 200, 400)] and m.session_state().steps == 30 + 1 and calls == 8


# --- continuous trading ----------------------------------------------------------------------------------------


def test_continuous_fills_at_the_resting_price_and_the_taker_settles_what_it_completes():
    m, (b1, a1, b2, a2, b3, a3) = three_by_three("midpoint")
    assert m.clear(10)
    start = len(m.events)
    assert m.place("g", "ask", 3, 100) == 0  # crosses bids b 1@103 and c 4@100; filled, never stored
    assert m.events[start:] == [
        Fill(1, 1, b2, 0, 1, 206, 206),
        Payout(b2, "b", 3 * T, 622 - 616 - 1, 1),  # b completed: settled by the taker, on 410 + 206
        Fill(1, 1, b3, 0, 2, 200, 400),
        TakerSettled(1, "g", Side.ASK, OrderKind.LIMIT, 3, 3, 606, 0),  # fee 0 (0.909), margin 3 back
    ]
    assert (m.free("g", "settlement"), m.free("g", "asset")) == (CASH + 606, TONNES - 3 * T)
    # c: 2 of 4 lots filled; it waits for its claim with its whole lock.
    assert m.order(b3).open_lots == 2 and m.order(b3).value == 400 and m.locked("c", "asset") == 2 * T
    with pytest.raises(NothingToClaim):
        m.claim([b3])
    m.cancel("c", b3)
    assert m.claim([b3]) == [Payout(b3, "c", 2 * T, 806 - 400 - 1, 1)]
    assert m.book() == [(Side.ASK, 104, 5)] and settled(m)


def test_a_taker_that_rests_keeps_its_entry_fills_in_its_record():
    m = continuous()
    ask = m.place("b", "ask", 2, 100)
    bid = m.place("a", "bid", 5, 101)
    assert bid != 0 and m.events[-1] == Placed(bid, "a", 1, Side.BID, 101, 5)
    assert m.fills[-1] == Fill(1, 1, 0, ask, 2, 200, 400)  # the taker's id is 0 in its own trades
    state = m.order(bid)
    assert (state.lots, state.open_lots, state.filled_lots, state.auction_lots, state.value) == (5, 3, 2, 0, 400)
    m.close()
    # Settled by its claim after the close: 2 lots bought for 400 (+1 fee), the rest of its lock back.
    assert m.claim([bid]) == [Payout(bid, "a", 2 * T, 1010 + 2 + 5 - 400 - 1, 1)]
    assert settled(m)


def test_continuous_takes_best_price_first_then_earliest():
    m = continuous()
    a_bid, b_bid, c_bid = m.place("a", "bid", 2, 100), m.place("b", "bid", 2, 100), m.place("c", "bid", 2, 101)
    assert m.place("e", "ask", 5, 100) == 0
    assert fills(settled(m)) == [(c_bid, 0, 2, 202, 404), (a_bid, 0, 2, 200, 400), (b_bid, 0, 1, 200, 200)]
    assert m.order(b_bid).open_lots == 1 and m.order(a_bid).claimed and m.order(c_bid).claimed


def test_self_trade_in_continuous_cancels_and_settles_the_resting_order():
    m = continuous()
    own_ask, other_ask = m.place("a", "ask", 2, 101), m.place("b", "ask", 2, 102)
    bid = m.place("a", "bid", 3, 102)
    assert Cancelled(own_ask, 2, CancelReason.SELF_TRADE) in m.events
    assert Payout(own_ask, "a", 2 * T, 2, 0) in m.events  # settled at once: asset and margin (2.02) back
    assert m.order(own_ask).claimed and m.free("a", "asset") == TONNES
    assert fills(settled(m)) == [(0, other_ask, 2, 204, 408)]
    assert m.book() == [(Side.BID, 102, 1)]  # the rest of a's bid rests at its limit
    assert m.order(bid).filled_lots == 2


def test_market_order_fills_within_its_worst_price_and_returns_the_rest_at_once():
    m, ids = three_by_three("midpoint")
    assert m.clear(10)  # left: bids b 1@103, c 4@100; ask f 5@104
    m.place("g", "ask", 3, 106)
    start = len(m.events)
    assert m.place("e", "bid", 10, 105, kind="market") == 0  # takes f's 5 @ 104; 106 is beyond its worst
    taker = m.events[-1]
    # Locked at its worst price: 1050 x 2 = 2100 + fee 5 + margin 10; paid 1040 and fee 2 (2.6).
    assert taker == TakerSettled(1, "e", Side.BID, OrderKind.MARKET, 10, 5, 1040, 2)
    assert (taker.asset, taker.settlement) == (5 * T, 2100 + 5 + 10 - 1040 - 2)
    # e's own ask (3 @ 102, sold in the auction, not claimed yet) still holds its margin and asset.
    assert m.free("e", "settlement") == CASH - 3 - 1040 - 2 and m.free("e", "asset") == TONNES - 3 * T + 5 * T
    assert len(m.events) - start == 3  # the fill, f's settlement, the taker's
    assert m.place("d", "ask", 10, 101, kind="market") == 0  # takes b's 1@103, not c's 100
    assert fills(settled(m))[-1] == (ids[2], 0, 1, 206, 206)
    assert m.takers[-1].filled_lots == 1 and m.book() == [(Side.BID, 100, 4), (Side.ASK, 106, 3)]


def test_max_fills_bounds_the_walk_and_a_possibly_crossing_rest_comes_back():
    m = continuous()
    b_ask = m.place("b", "ask", 2, 100)
    c_ask = m.place("c", "ask", 2, 101)
    # One unit: b's ask filled; 101 still crosses: the remainder comes back at once, never rests crossed.
    assert m.place("a", "bid", 5, 105, max_fills=1) == 0
    assert m.takers[-1] == TakerSettled(1, "a", Side.BID, OrderKind.LIMIT, 5, 2, 400, 1)
    # One unit: c's 2 @ 101 filled, and its tick retired with it: nothing is left to cross, the remainder rests.
    resting = m.place("d", "bid", 5, 101, max_fills=1)
    assert m.order(resting).filled_lots == 2 and m.order(resting).open_lots == 3
    assert m.order(c_ask).claimed and m.order(b_ask).claimed
    m.place("e", "ask", 2, 102)
    rests = m.place("f", "bid", 5, 101, max_fills=0)  # crosses nothing: rests with no walk
    assert m.order(rests).open_lots == 5 and settled(m)
    assert m.book() == [(Side.BID, 101, 3), (Side.BID, 101, 5), (Side.ASK, 102, 2)]


def test_max_fills_a_level_emptied_by_a_fill_leaves_the_book_but_one_with_cancelled_orders_stays():
    m = continuous()
    m.place("b", "ask", 2, 100)
    # The fill closes the level's last order and retires its tick at once: with its one unit spent, the taker
    # finds nothing left to cross and its remainder rests.
    bid = m.place("a", "bid", 5, 100, max_fills=1)
    assert bid != 0 and m.order(bid).open_lots == 3 and m.best_ticks() == (100, None)
    # A cancelled order keeps its tick on the bitmap until a walk skips it: the taker "may still cross" there,
    # and its remainder comes back instead of resting.
    m.place("b", "ask", 2, 101)
    m.cancel("c", m.place("c", "ask", 2, 101))
    assert m.place("d", "bid", 5, 101, max_fills=1) == 0
    assert m.takers[-1] == TakerSettled(1, "d", Side.BID, OrderKind.LIMIT, 5, 2, 404, 1)
    assert m.best_ticks() == (100, 101) and m.book() == [(Side.BID, 100, 3)]
    # The next walk pays a unit to skip the cancelled order and one to retire the tick; then it rests.
    assert m.place("e", "bid", 5, 101, max_fills=2) != 0 and m.best_ticks() == (101, None) and settled(m)


# --- claims, cancels, deposits ---------------------------------------------------------------------------------


def test_claims_settle_once_and_only_when_due():
    m, ids = three_by_three("midpoint")
    assert m.clear(1) is False
    before = m.snapshot()
    for i in ids:  # clearing runs: nothing is claimable
        with pytest.raises(NothingToClaim) as refused:
            m.claim([i])
        assert refused.value.arguments == {"orderId": i}
    assert m.snapshot() == before
    with pytest.raises(NothingToClaim) as refused:  # a batch of orders none of which is due: its first id
        m.claim(ids[::-1])
    assert refused.value.arguments == {"orderId": ids[-1]} and m.snapshot() == before
    assert m.clear(10)
    b1, a1, b2, a2, b3, a3 = ids
    # Orders not due are skipped: b3 is open before its session closed, b1's repeat settled by the same call.
    assert [p.order_id for p in m.claim([b3, b1, a1, b1])] == [b1, a1]
    before = m.snapshot()
    with pytest.raises(NothingToClaim) as refused:  # settled already
        m.claim([b1])
    assert refused.value.arguments == {"orderId": b1}
    with pytest.raises(NothingToClaim) as refused:  # still open before its session closed
        m.claim([b3])
    assert refused.value.arguments == {"orderId": b3}
    with pytest.raises(NothingToClaim) as refused:  # nothing due among them
        m.claim([b3, b1, a1])
    assert refused.value.arguments == {"orderId": b3}
    with pytest.raises(UnknownOrder) as refused:  # all or none: a2 is due, but the call is refused
        m.claim([a2, b3 + 99])
    assert refused.value.arguments == {"orderId": b3 + 99}
    with pytest.raises(BatchSize):
        m.claim([])
    with pytest.raises(BatchSize):
        m.claim([a2] * 101)
    assert m.snapshot() == before
    assert m.order(b1).claimed and not m.order(a2).claimed and settled(m)


def test_claim_after_close_returns_the_remainder_and_margin():
    m, (b1, a1, b2, a2, b3, a3) = three_by_three("midpoint")
    assert m.clear(10)
    m.close()
    assert m.claim([b3, a3, b2]) == [
        Payout(b3, "c", 0, 800 + 2 + 4, 0),  # untouched 4@100: its lock 800 + fee 2 + margin 4
        Payout(a3, "f", 5 * T, 5, 0),  # untouched 5@104: its asset and margin 5 (5.2)
        Payout(b2, "b", 2 * T, 618 + 1 + 3 - 410 - 1, 1),  # 2 lots for 410 + fee 1; the rest of its lock back
    ]
    m.claim([b1, a1, a2])
    m.collect_fees()
    assert all(m.locked(a, t) == 0 for a in "abcdefg" for t in ("asset", "settlement"))
    total = sum(m.free(a, "settlement") for a in [*"abcdefg", "platform"])
    assert total == 7 * CASH and sum(m.free(a, "asset") for a in "abcdefg") == 7 * TONNES
    assert settled(m)


def test_cancel_works_in_any_phase_and_returns_the_funds_by_the_claim():
    m = market()
    bid = m.place("a", "bid", 3, 1001)
    with pytest.raises(NotOwner) as refused:
        m.cancel("b", bid)
    assert refused.value.arguments == {"caller": "b", "orderId": bid}
    m.cancel("a", bid)
    assert m.free("a", "settlement") == CASH - 6051 and m.locked("a", "settlement") == 6051
    with pytest.raises(AlreadyClosed):
        m.cancel("a", bid)
    assert m.claimable() == [bid]  # cancelled in CALL: claimable at once
    assert m.claim([bid]) == [Payout(bid, "a", 0, 6051, 0)] and m.free("a", "settlement") == CASH
    rests = m.place("a", "bid", 1, 100)
    m.end_call()
    m.cancel("a", rests)  # cancels in CLEARING too; the claim waits for the auction's end
    with pytest.raises(NothingToClaim):
        m.claim([rests])
    assert m.clear(5)
    m.claim([rests])
    after = m.place("a", "ask", 1, 100)
    m.close()
    m.cancel("a", after)  # and after the close
    assert m.claim([after]) == [Payout(after, "a", T, 1, 0)] and settled(m)


def test_withdrawals_are_refused_beyond_the_free_balance():
    m = market()
    m.place("a", "bid", 3, 1001)  # locks 6051
    before = m.snapshot()
    with pytest.raises(InsufficientFree) as refused:
        m.withdraw("a", "settlement", CASH - 6051 + 1)
    assert refused.value.arguments == {"account": "a", "token": "settlement", "free": CASH - 6051,
                                       "needed": CASH - 6050}
    assert m.snapshot() == before
    m.withdraw("a", "settlement", CASH - 6051)
    assert m.free("a", "settlement") == 0 and m.locked("a", "settlement") == 6051 and settled(m)


def test_sessions_follow_each_other_and_each_has_its_own_book():
    m, ids = three_by_three("midpoint")
    with pytest.raises(SessionOpen) as refused:
        m.open_session()
    assert refused.value.arguments == {"market": 1, "session": 1}
    assert m.clear(10)
    m.close()
    assert m.open_session() == 2 and m.phase is Phase.CALL
    new = m.place("a", "bid", 1, 100)
    assert new == order_id(1, 2, Side.BID, 100, 0)  # the index restarts in the new session's book
    assert m.claim([ids[4]])[0].settlement == 806 and settled(m)  # the old session's orders stay claimable


def test_sealed_sessions_take_call_orders_only_as_reveals():
    m = ExchangeModel(SPEC)
    m.deposit("a", "settlement", CASH)
    m.open_session(sealed=True)
    with pytest.raises(SealedSession) as refused:
        m.place("a", "bid", 1, 100)
    assert refused.value.contract_name == "ExchangeSealedSession"
    bid = m.place_revealed("a", "bid", 1, 100)
    assert m.order(bid).owner == "a" and m.free("a", "settlement") == CASH - 200 - 1
    m.end_call()
    with pytest.raises(WrongPhase):
        m.place_revealed("a", "bid", 1, 100)
    assert m.clear(3)
    assert m.place("a", "bid", 1, 100) != 0  # continuous trading is open to all


def test_entry_checks_follow_the_contracts_order():
    m = market(buyer_roles=(Role.PLATFORM,), seller_roles=(Role.ENTERPRISE,), region=5)
    m.set_profile("a", role=Role.ENTERPRISE, region=5)
    with pytest.raises(RoleNotAllowed) as refused:
        m.place("a", "bid", 1, 100)
    assert refused.value.arguments == {"account": "a", "role": Role.ENTERPRISE, "side": Side.BID}
    assert m.place("a", "ask", 1, 100)
    m.set_profile("b", role=Role.ENTERPRISE, region=4)
    with pytest.raises(RegionMismatch):
        m.place("b", "ask", 1, 100)
    m.set_profile("c", role=Role.ENTERPRISE, region=5, in_debt=True)
    with pytest.raises(TraderInDebt):
        m.place("c", "ask", 1, 100)
    m.set_profile("d", role=Role.PLATFORM, region=4, active=False)
    with pytest.raises(TraderInactive):  # inactive is checked first
        m.place("d", "bid", 1, 100)
    # In a batch, the check is made at the first order of each side: a bad quantity before it comes first.
    with pytest.raises(BadQuantity):
        m.place_many("a", [("ask", 0, 100), ("bid", 1, 100)])
    with pytest.raises(RoleNotAllowed):
        m.place_many("a", [("ask", 1, 100), ("bid", 1, 100)])
    assert len(m.orders()) == 1 and settled(m)


def rejections():
    """(name, setup phase, operation, expected error, its arguments)"""
    return [
        ("zero lots", "call", lambda m: m.place("a", "bid", 0, 100), BadQuantity, {"lots": 0, "minLots": 2}),
        ("below minimum", "call", lambda m: m.place("a", "bid", 1, 100), BadQuantity, {"lots": 1, "minLots": 2}),
        ("zero price", "call", lambda m: m.place("a", "ask", 2, 0), BadPrice, {"tick": 0}),
        ("lock beyond free", "call", lambda m: m.place("a", "bid", 10, 65_000), InsufficientFree,
         {"account": "a", "token": "settlement", "free": CASH - 423 - 610, "needed": 1_300_000 + 3250 + 6500}),
        ("asset beyond free", "continuous", lambda m: m.place("a", "ask", 101, 100), InsufficientFree,
         {"account": "a", "token": "asset", "free": TONNES, "needed": 101 * T}),
        ("market order in call", "call", lambda m: m.place("a", "bid", 2, 100, kind="market"), MarketOrderInCall,
         {"market": 1}),
        ("order in clearing", "clearing", lambda m: m.place("a", "bid", 2, 100), WrongPhase,
         {"market": 1, "session": 1, "phase": Phase.CLEARING}),
        ("batch with one bad order", "call", lambda m: m.place_many("a", [("bid", 2, 100), ("bid", 2, 0)]),
         BadPrice, {"tick": 0}),
        ("empty batch", "call", lambda m: m.place_many("a", []), BatchSize, {"size": 0, "max": 100}),
        ("claim in clearing", "clearing", lambda m: m.claim([m.orders()[0].id]), NothingToClaim, None),
        ("claim open order", "continuous", lambda m: m.claim([m.orders()[2].id]), NothingToClaim, None),
        ("claim none due", "continuous", lambda m: m.claim([m.orders()[2].id] * 2), NothingToClaim, None),
        ("cancel by another", "continuous", lambda m: m.cancel("b", m.orders()[2].id), NotOwner, None),
        ("cancel unknown", "continuous", lambda m: m.cancel("a", 99), UnknownOrder, {"orderId": 99}),
        ("cancel closed", "continuous", lambda m: m.cancel("c", m.orders()[1].id), AlreadyClosed, None),
        ("claim with one unknown", "closed", lambda m: m.claim([m.orders()[0].id, 99]), UnknownOrder,
         {"orderId": 99}),
        ("withdraw too much", "continuous", lambda m: m.withdraw("a", "asset", TONNES + 1), InsufficientFree, None),
        ("deposit nothing", "call", lambda m: m.deposit("a", "asset", 0), ZeroAmount, {}),
        ("withdraw nothing", "call", lambda m: m.withdraw("a", "asset", 0), ZeroAmount, {}),
        ("deposit another token", "call", lambda m: m.deposit("a", "coin", 5), UnknownToken, {"token": "coin"}),
        ("collect no fees", "call", lambda m: m.collect_fees(), ZeroAmount, {}),
        ("clear in call", "call", lambda m: m.clear(5), WrongPhase, None),
        ("clear no steps", "clearing", lambda m: m.clear(0), BatchSize, {"size": 0, "max": 2**256 - 1}),
        ("clear again", "continuous", lambda m: m.clear(5), WrongPhase, None),
        ("end call twice", "clearing", lambda m: m.end_call(), WrongPhase, None),
        ("close in call", "call", lambda m: m.close(), WrongPhase, None),
        ("close in clearing", "clearing", lambda m: m.close(), WrongPhase, None),
        ("open while open", "continuous", lambda m: m.open_session(), SessionOpen, {"market": 1, "session": 1}),
        ("order after close", "closed", lambda m: m.place("a", "bid", 2, 100), WrongPhase,
         {"market": 1, "session": 1, "phase": Phase.CLOSED}),
    ]


@pytest.mark.parametrize("name,phase,operation,error,arguments", rejections(), ids=[r[0] for r in rejections()])
def test_every_rejection_changes_nothing(name, phase, operation, error, arguments):
    m = market(min_lots=2)
    m.place("a", "bid", 2, 105)  # 1: filled by the auction
    m.place("c", "ask", 2, 100)  # 2: filled by the auction
    m.place("a", "bid", 3, 101)  # 3: rests after the auction
    if phase != "call":
        m.end_call()
    if phase in ("continuous", "closed"):
        assert m.clear(10)
    if phase == "closed":
        m.close()
    before = m.snapshot()
    with pytest.raises(error) as refused:
        operation(m)
    assert isinstance(refused.value, ModelError) and type(refused.value).__name__ in str(refused.value)
    assert refused.value.contract_name.startswith("Exchange")  # the contract's error for the same refusal
    if arguments is not None:
        assert refused.value.arguments == arguments
    assert m.snapshot() == before and settled(m)


@pytest.mark.parametrize("operation", [
    lambda m: m.place("a", "buy", 1, 100),
    lambda m: m.place("a", "bid", 1.0, 100),
    lambda m: m.place("a", "bid", 1, 100, kind="stop"),
    lambda m: m.place("a", "bid", 2**32, 100),
    lambda m: m.place("a", "bid", 1, 2**16),
    lambda m: m.withdraw("a", "asset", -1),
    lambda m: m.claim(["1"]),
])
def test_malformed_arguments_are_invalid_input(operation):
    m = market()
    before = m.snapshot()
    with pytest.raises(InvalidInput):
        operation(m)
    assert m.snapshot() == before


# --- random books ----------------------------------------------------------------------------------------------


def random_spec(rng: random.Random, pricing: Pricing, traders: list[str]) -> MarketSpec:
    lot = rng.choice([10**5, 10**6, 2 * 10**6, 25 * 10**4])
    tick = 2 * 10**6 // gcd(lot, 2 * 10**6) * rng.randint(1, 3)
    return MarketSpec(lot, tick, rng.randint(1, 2), rng.randint(0, 1000), rng.randint(0, 1000),
                      rng.choice([0, 50, 500, 2000]), pricing, operator=rng.choice(["platform", traders[0]]))


def random_run(seed: int, pricing: Pricing) -> ExchangeModel:
    rng = random.Random(seed)
    traders = [f"t{i}" for i in range(rng.randint(2, 6))]
    m = ExchangeModel(random_spec(rng, pricing, traders))
    spec = m.spec
    rejected = 0

    def run(operation, *args, **kwargs):
        nonlocal rejected
        before = m.snapshot() if rng.random() < 0.3 else None
        try:
            operation(*args, **kwargs)
        except ModelError:
            rejected += 1
            assert before is None or m.snapshot() == before, f"seed {seed}: a rejection changed the model"
        problems = m.invariants()
        assert problems == [], f"seed {seed} after {operation.__name__}{args}: {problems}"

    def random_order(kinds):
        account = rng.choice(traders)
        side = rng.choice(["bid", "ask"])
        lots = rng.choice([0, 1, 1, 2, 3, 5, 8])
        price = rng.randint(95, 105) if rng.random() < 0.98 else 0
        run(m.place, account, side, lots, price, kind=rng.choice(kinds), max_fills=rng.choice([None, 1, 2, 5]))

    def random_housekeeping():
        roll = rng.random()
        ids = [o.id for o in m.orders()]
        if roll < 0.4 and ids:
            order = rng.choice(ids)
            owner = m.order(order).owner if rng.random() < 0.9 else rng.choice(traders)
            run(m.cancel, owner, order)
        elif roll < 0.6 and ids:
            run(m.claim, rng.sample(ids, min(len(ids), 3)))
        elif roll < 0.7:
            run(m.collect_fees)
        elif roll < 0.85:
            run(m.deposit, rng.choice(traders), rng.choice(["asset", "settlement"]),
                rng.choice([spec.lot_size, 10 * spec.lot_size, 5000 * spec.tick_size]))
        else:
            account, token = rng.choice(traders), rng.choice(["asset", "settlement"])
            run(m.withdraw, account, token, rng.randint(0, m.free(account, token) + 5))

    for account in traders:
        m.deposit(account, "asset", rng.randint(5, 40) * spec.lot_size)
        m.deposit(account, "settlement", rng.randint(500, 4000) * spec.tick_size * spec.lot_size // 10**6)
    for _ in range(rng.randint(1, 3)):
        run(m.open_session)
        for _ in range(rng.randint(20, 80)):
            random_order(["limit"]) if rng.random() < 0.75 else random_housekeeping()
        run(m.end_call)
        done = False
        while not done:
            before = m.session_state().steps
            done = m.clear(rng.randint(1, 8))
            assert m.invariants() == [] and (m.session_state().steps > before or done)
            if rng.random() < 0.3:
                random_housekeeping()
        for _ in range(rng.randint(20, 80)):
            random_order(["limit", "limit", "market"]) if rng.random() < 0.75 else random_housekeeping()
        run(m.close)
        ids = m.claimable()
        for start in range(0, len(ids), 100):
            run(m.claim, ids[start:start + 100])
    if m.fees_accrued:
        m.collect_fees()
    everyone = traders + ["platform"]
    assert all(m.locked(a, t) == 0 for a in everyone for t in ("asset", "settlement")), f"seed {seed}"
    assert all(o.closed and o.claimed for o in m.orders())
    assert rejected > 0  # the runs do exercise refusals
    return m


@pytest.mark.parametrize("pricing", [Pricing.MIDPOINT, Pricing.UNIFORM])
def test_random_books_keep_every_invariant(pricing):
    trades = auction_trades = 0
    for seed in range(25):
        m = random_run(seed, pricing)
        trades += len(m.fills)
        auction_trades += sum(f.phase is Phase.CLEARING for f in m.fills)
    assert trades > 500 and auction_trades > 100  # the books did trade, in both stages


def two_pointer_auction(orders: list[tuple[int, str, str, int, int]], pricing: Pricing) -> list[tuple[int, ...]]:
    """An independent reading of the auction: bids high to low, asks low to high, FIFO within a price,
    one's own ask skipped (cancelled); returns (bid, ask, lots, half-ticks) per matched pair."""
    bids = sorted((o for o in orders if o[2] == "bid"), key=lambda o: (-o[4], o[0]))
    asks = sorted((o for o in orders if o[2] == "ask"), key=lambda o: (o[4], o[0]))
    left = {o[0]: o[3] for o in orders}
    pairs, i, j = [], 0, 0
    while i < len(bids) and j < len(asks) and bids[i][4] >= asks[j][4]:
        bid, ask = bids[i], asks[j]
        if bid[1] == ask[1]:
            j += 1
            continue
        lots = min(left[bid[0]], left[ask[0]])
        pairs.append([bid[0], ask[0], lots, bid[4] + ask[4]])
        left[bid[0]] -= lots
        left[ask[0]] -= lots
        i += left[bid[0]] == 0
        j += left[ask[0]] == 0
    if pricing is Pricing.UNIFORM:
        for pair in pairs:
            pair[3] = pairs[-1][3]
    return [tuple(p) for p in pairs]


@pytest.mark.parametrize("pricing", [Pricing.MIDPOINT, Pricing.UNIFORM])
def test_auction_agrees_with_an_independent_two_pointer_reading(pricing):
    for seed in range(40):
        rng = random.Random(1000 + seed)
        m = market(pricing)
        placed = []
        for _ in range(rng.randint(1, 120)):
            account, side, lots, price = rng.choice("abcd"), rng.choice(["bid", "ask"]), rng.randint(1, 6), \
                rng.randint(95, 105)
            placed.append((m.place(account, side, lots, price), account, side, lots, price))
        m.end_call()
        while not m.clear(rng.randint(1, 20)):
            pass
        expected = two_pointer_auction(placed, pricing)
        assert [(f.bid_order, f.ask_order, f.lots, f.price2) for f in m.trades()] == expected, seed
        assert settled(m)
