"""The exchange's reference model (carbon_sdk.exchange_model) against docs/exchange.md, by hand and at random.

The market used by hand: 1 lot = 1 tonne, 1 tick = 2 settlement units per tonne, so q lots at p ticks are
worth 2*q*p and at h half-ticks q*h; buyer fee 25 bps, seller fee 15 bps, margin 50 bps, all rounded down.
"""

from __future__ import annotations

import random
from dataclasses import replace
from fractions import Fraction
from math import gcd

import pytest

from carbon_sdk.errors import InvalidInput
from carbon_sdk.exchange_model import (
    AlreadyClosed,
    BelowMinimum,
    ExchangeModel,
    InsufficientFree,
    MarketSpec,
    ModelError,
    NotOwner,
    Payout,
    Phase,
    Pricing,
    UnknownOrder,
    WrongPhase,
    BadPrice,
    MarketOrderInCall,
    SessionOpen,
    ZeroQuantity,
)

SPEC = MarketSpec(lot_size=10**6, tick_size=2, min_lots=1, buyer_fee_bps=25, seller_fee_bps=15, margin_bps=50,
                  pricing="midpoint", fee_recipient="platform")
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
    return [(f.buy_order, f.sell_order, f.lots, f.price_half_ticks, f.value) for f in m.fills]


def settled(m: ExchangeModel) -> ExchangeModel:
    assert m.invariants() == []
    return m


# --- the market's arithmetic -----------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [
    {"lot_size": 10**6, "tick_size": 1},  # a lot at a half tick would be half a unit
    {"lot_size": 3 * 10**5, "tick_size": 10},
    {"buyer_fee_bps": 1001},
    {"seller_fee_bps": 5000},
    {"margin_bps": 10_001},
    {"min_lots": 0},
    {"lot_size": 1.0},
    {"pricing": "vickrey"},
])
def test_market_spec_is_validated(changes):
    with pytest.raises(InvalidInput):
        replace(SPEC, **changes)


def test_values_fees_margins_and_locks_are_exact_integers():
    spec = replace(SPEC, lot_size=10**5, tick_size=20)  # 0.1 t lots: 2 * 10**6 exactly
    assert spec.value(3, 205) == 615  # 3 lots of 0.1 t at 102.5 ticks of 20 units per tonne
    assert SPEC.tick_value(3, 1001) == 6006
    assert SPEC.buyer_fee(6006) == 15  # 15.015 rounded down
    assert SPEC.seller_fee(6006) == 9  # 9.009
    assert SPEC.margin(3, 1001) == 30  # 30.03
    assert SPEC.order_lock("bid", 3, 1001) == {"asset": 0, "settlement": 6006 + 15 + 30}
    assert SPEC.order_lock("ask", 3, 1001) == {"asset": 3 * T, "settlement": 30}
    assert SPEC.price_per_tonne(205) == 205  # 102.5 ticks x 2 units
    m = continuous()
    m.place("a", "bid", 3, 1001)
    assert (m.free("a", "settlement"), m.locked("a", "settlement")) == (CASH - 6051, 6051)


# --- the call auction ------------------------------------------------------------------------------------------


def test_midpoint_auction_on_a_3x3_book_by_hand():
    m, (b1, a1, b2, a2, b3, a3) = three_by_three("midpoint")
    assert m.clear(2) is False  # two steps taken, the book still crosses
    assert m.clear(1) is True  # third step; then 103 < 104 ends clearing without a step
    assert m.phase is Phase.CONTINUOUS and m.session_state().steps == 3
    assert fills(settled(m)) == [(b1, a1, 4, 204, 816), (b1, a2, 1, 207, 207), (b2, a2, 2, 205, 410)]
    assert m.fills[1].price_ticks == Fraction(207, 2)
    assert all(f.buyer_fee is None and f.phase is Phase.CLEARING for f in m.fills)
    # Fully filled orders got their margin back at once; proceeds wait for the claim.
    assert m.free("a", "settlement") == CASH - (1050 + 2 + 5) + 5
    assert m.locked("a", "settlement") == 1052 - 1023 - 2 and m.locked("a", "asset") == 5 * T
    assert m.order(b2).remaining == 1 and m.order(b2).auction_value == 410 and not m.order(b2).closed
    assert m.claim([b1, a1, b2, a2, b3, a3]) == [
        Payout(b1, 5 * T, 1052 - 1023 - 2, 2),  # lock 1052 at 105, paid 816+207 and fee 2 (2.5575)
        Payout(a1, 0, 816 - 1, 1),  # fee 1.224
        Payout(b2, 2 * T, (619 - 206) - 410 - 1, 1),  # the lock of 2 of its 3 lots: L(3) - L(1)
        Payout(a2, 0, 617, 0),  # fee 0.9255
        Payout(b3, 0, 0, 0),
        Payout(a3, 0, 0, 0),
    ]
    assert m.fee_recipient_balance() == 4 == m.fees_collected
    assert (m.free("a", "settlement"), m.free("a", "asset")) == (CASH - 1025, TONNES + 5 * T)
    assert (m.free("d", "settlement"), m.free("d", "asset")) == (CASH + 815, TONNES - 4 * T)
    assert (m.free("b", "settlement"), m.locked("b", "settlement")) == (CASH - 622 + 2, 206 + 3)
    assert settled(m)


def test_uniform_auction_on_the_same_book_by_hand():
    m, (b1, a1, b2, a2, b3, a3) = three_by_three("uniform")
    assert m.clear(2) is False
    assert m.fills == [] and m.order(b1).auction_value is None  # the price is not known yet
    assert settled(m) and m.claim([b1, a1]) == [Payout(b1, 0, 0, 0), Payout(a1, 0, 0, 0)]
    assert m.clear(5) is True
    assert m.session_state().clearing_price_half_ticks == 205  # the last pair: bid 103, ask 102
    # Every pair at 102.5 ticks, inside each pair's [ask, bid]: [99, 105], [102, 105], [102, 103].
    assert fills(settled(m)) == [(b1, a1, 4, 205, 820), (b1, a2, 1, 205, 205), (b2, a2, 2, 205, 410)]
    assert m.claim([b1, a1, b2, a2]) == [
        Payout(b1, 5 * T, 1052 - 1025 - 2, 2), Payout(a1, 0, 820 - 1, 1),
        Payout(b2, 2 * T, 413 - 410 - 1, 1), Payout(a2, 0, 615, 0),
    ]
    assert settled(m)


def test_uniform_price_is_the_last_matched_pair_not_a_self_trade_step():
    m = market("uniform")
    a_bid, b_bid = m.place("a", "bid", 2, 105), m.place("b", "bid", 2, 103)
    c_ask, b_ask = m.place("c", "ask", 2, 100), m.place("b", "ask", 2, 102)
    m.end_call()
    assert m.clear(10)
    assert m.session_state().steps == 2  # the pair, then b's own ask cancelled; then no ask is left
    assert fills(m) == [(a_bid, c_ask, 2, 205, 410)]
    assert m.order(b_ask).returned_lots == 2 and m.order(b_ask).closed
    assert m.order(b_bid).remaining == 2 and settled(m)


def test_auction_takes_best_price_first_then_earliest():
    m = market()
    bid = m.place("a", "bid", 3, 100)
    d_ask, e_ask, f_ask = m.place("d", "ask", 2, 100), m.place("e", "ask", 2, 100), m.place("f", "ask", 2, 99)
    m.end_call()
    assert m.clear(10)
    assert fills(settled(m)) == [(bid, f_ask, 2, 199, 398), (bid, d_ask, 1, 200, 200)]
    assert m.order(e_ask).remaining == 2  # later at the same price: untouched


def test_self_trade_in_the_auction_cancels_the_ask():
    m = market()
    bid, own_ask, other_ask = m.place("a", "bid", 5, 105), m.place("a", "ask", 3, 100), m.place("b", "ask", 2, 101)
    m.end_call()
    assert m.clear(1) is False  # the step cancelled a's own ask
    assert m.order(own_ask).returned_lots == 3 and m.order(own_ask).closed
    assert m.free("a", "asset") == TONNES  # its asset and margin are back
    assert m.free("a", "settlement") == CASH - (1050 + 2 + 5)
    assert m.clear(1) is True
    assert fills(settled(m)) == [(bid, other_ask, 2, 206, 412)]


def test_no_crossing_passes_clearing_in_one_step_and_clear_is_bounded():
    m = market()
    m.place("a", "bid", 1, 99)
    m.place("b", "ask", 1, 100)
    m.end_call()
    assert m.clear(1) is True and m.session_state().steps == 0
    flood = market()
    for i in range(40):  # 40 one-lot bids and asks, all crossing
        flood.place("abc"[i % 3], "bid", 1, 110 + i % 5)
        flood.place("def"[i % 3], "ask", 1, 90 + i % 5)
    flood.end_call()
    calls = 1
    while not flood.clear(7):
        calls += 1
        assert flood.session_state().steps == 7 * (calls - 1)
    assert calls == 6 and len(flood.fills) == 40 and settled(flood)


# --- continuous trading ----------------------------------------------------------------------------------------


def test_continuous_fills_at_the_resting_price_and_settle_at_once():
    m, (b1, a1, b2, a2, b3, a3) = three_by_three("midpoint")
    assert m.clear(10)
    b_before = m.free("b", "settlement")
    g_ask = m.place("g", "ask", 3, 100)  # crosses bids b 1@103 and c 4@100
    assert fills(settled(m))[3:] == [(b2, g_ask, 1, 206, 206), (b3, g_ask, 2, 200, 400)]
    assert [(f.buyer_fee, f.seller_fee, f.phase) for f in m.fills[3:]] == [(0, 0, Phase.CONTINUOUS),
                                                                          (1, 0, Phase.CONTINUOUS)]
    assert (m.free("g", "settlement"), m.free("g", "asset")) == (CASH + 606, TONNES - 3 * T)
    assert m.order(g_ask).closed and m.locked("g", "settlement") == 0
    # b's last lot: its lock L(1)=206 paid exactly 206 + fee 0; the order closed, margin 3 back.
    assert m.free("b", "settlement") == b_before + 3 and m.free("b", "asset") == TONNES + T
    # c: 2 of 4 lots, releasing L(4) - L(2) = 802 - 401 = 401 = 400 + fee 1.
    assert (m.free("c", "settlement"), m.locked("c", "settlement")) == (CASH - 806, 401 + 4)
    assert m.free("c", "asset") == TONNES + 2 * T
    assert m.fee_recipient_balance() == 1
    assert m.book() == [(0, 100, 2), (1, 104, 5)]


def test_continuous_takes_best_price_first_then_earliest():
    m = continuous()
    a_bid, b_bid, c_bid = m.place("a", "bid", 2, 100), m.place("b", "bid", 2, 100), m.place("c", "bid", 2, 101)
    ask = m.place("e", "ask", 5, 100)
    assert fills(settled(m)) == [(c_bid, ask, 2, 202, 404), (a_bid, ask, 2, 200, 400), (b_bid, ask, 1, 200, 200)]
    assert m.order(b_bid).remaining == 1 and m.order(ask).closed


def test_self_trade_in_continuous_cancels_the_resting_order():
    m = continuous()
    own_ask, other_ask = m.place("a", "ask", 2, 101), m.place("b", "ask", 2, 102)
    bid = m.place("a", "bid", 3, 102)
    assert m.order(own_ask).returned_lots == 2 and m.order(own_ask).closed
    assert fills(settled(m)) == [(bid, other_ask, 2, 204, 408)]
    assert m.book() == [(0, 102, 1)]  # the rest of a's bid rests at its limit
    assert m.free("a", "asset") == TONNES + 2 * T


def test_market_order_fills_within_its_worst_price_and_returns_the_rest():
    m, _ = three_by_three("midpoint")
    assert m.clear(10)  # left: bids b 1@103, c 4@100; ask f 5@104
    m.place("g", "ask", 3, 106)
    before, locked = m.free("e", "settlement"), m.locked("e", "settlement")  # e's auction sale is unclaimed
    order = m.place("e", "bid", 10, 105, kind="market")
    assert fills(settled(m))[-1] == (order, 6, 5, 208, 1040)
    assert (m.fills[-1].buyer_fee, m.fills[-1].seller_fee) == (2, 1)
    state = m.order(order)
    assert (state.continuous_lots, state.returned_lots, state.closed) == (5, 5, True)
    assert m.free("e", "settlement") == before - 1040 - 2 and m.locked("e", "settlement") == locked
    sell = m.place("d", "ask", 10, 101, kind="market")  # takes b's 1@103, not c's 100
    assert fills(settled(m))[-1] == (2 + 1, sell, 1, 206, 206)
    assert m.order(sell).returned_lots == 9 and m.book() == [(0, 100, 4), (1, 106, 3)]


def test_max_fills_bounds_the_walk():
    m = continuous()
    m.place("b", "ask", 2, 100)
    c_ask = m.place("c", "ask", 2, 101)
    crossing = m.place("a", "bid", 5, 105, max_fills=1)
    # One resting order walked; the rest still crosses c's ask, so it is returned, not rested crossed.
    assert m.order(crossing).returned_lots == 3 and m.order(crossing).closed
    resting = m.place("d", "bid", 5, 101, max_fills=1)
    assert m.order(resting).continuous_lots == 2 and m.order(c_ask).remaining == 0
    m.place("e", "ask", 2, 102)
    rests = m.place("f", "bid", 5, 101, max_fills=0)  # crosses nothing: rests with no walk
    assert m.order(rests).remaining == 5 and settled(m)
    assert m.book() == [(0, 101, 3), (0, 101, 5), (1, 102, 2)]


# --- claims, cancels, deposits ---------------------------------------------------------------------------------


def test_claims_pay_once_and_only_when_due():
    m, ids = three_by_three("midpoint")
    assert m.clear(1) is False
    before = m.snapshot()
    assert m.claim(ids) == [Payout(i, 0, 0, 0) for i in ids]  # clearing not done: nothing due yet
    assert m.snapshot() == before
    assert m.clear(10)
    first = m.claim(ids + ids[:2])
    assert first[6:] == [Payout(ids[0], 0, 0, 0), Payout(ids[1], 0, 0, 0)]  # a repeat in one call pays nothing
    after = m.snapshot()
    assert m.claim(ids) == [Payout(i, 0, 0, 0) for i in ids] and m.snapshot() == after
    assert all(m.order(i).auction_claimed for i in ids if m.order(i).auction_lots)


def test_claim_after_close_returns_the_remainder_and_margin():
    m, (b1, a1, b2, a2, b3, a3) = three_by_three("midpoint")
    assert m.clear(10)
    with pytest.raises(WrongPhase):  # nothing open is cancelled after close; the claim returns it
        m.close() or m.cancel("c", b3)
    assert m.claim([b3, a3, b2]) == [
        Payout(b3, 0, 802 + 4, 0),  # untouched 4@100: L(4) and margin
        Payout(a3, 5 * T, 5, 0),  # untouched 5@104: its asset and margin 5 (5.2)
        Payout(b2, 2 * T, 2 + 206 + 3, 1),  # auction part, then its open lot's lock and margin
    ]
    m.claim([b1, a1, a2])
    assert all(m.locked(a, t) == 0 for a in "abcdefg" for t in ("asset", "settlement"))
    total = sum(m.free(a, "settlement") for a in "abcdefg") + m.fee_recipient_balance()
    assert total == 7 * CASH and sum(m.free(a, "asset") for a in "abcdefg") == 7 * TONNES
    assert settled(m)


def test_cancel_gives_back_everything_and_only_to_the_owner():
    m = market()
    bid = m.place("a", "bid", 3, 1001)
    with pytest.raises(NotOwner):
        m.cancel("b", bid)
    m.cancel("a", bid)
    assert m.free("a", "settlement") == CASH and m.locked("a", "settlement") == 0
    with pytest.raises(AlreadyClosed):
        m.cancel("a", bid)
    assert settled(m)


def test_withdrawals_are_refused_beyond_the_free_balance():
    m = market()
    m.place("a", "bid", 3, 1001)  # locks 6051
    before = m.snapshot()
    with pytest.raises(InsufficientFree) as refused:
        m.withdraw("a", "settlement", CASH - 6051 + 1)
    assert refused.value.arguments["free"] == CASH - 6051 and m.snapshot() == before
    m.withdraw("a", "settlement", CASH - 6051)
    assert m.free("a", "settlement") == 0 and m.locked("a", "settlement") == 6051 and settled(m)


def test_sessions_follow_each_other_and_order_ids_run_on():
    m, ids = three_by_three("midpoint")
    with pytest.raises(WrongPhase):
        m.open_session()
    assert m.clear(10)
    m.close()
    assert m.open_session() == 2 and m.phase is Phase.CALL
    assert m.place("a", "bid", 1, 100) == 7
    with pytest.raises(WrongPhase):  # an order of the closed session is claimed, not cancelled
        m.cancel("c", ids[4])
    assert m.claim([ids[4]])[0].settlement == 806 and settled(m)


def rejections():
    """(name, setup phase, operation, expected error)"""
    return [
        ("zero lots", "call", lambda m: m.place("a", "bid", 0, 100), BelowMinimum),
        ("below minimum", "call", lambda m: m.place("a", "bid", 1, 100), BelowMinimum),
        ("zero price", "call", lambda m: m.place("a", "ask", 2, 0), BadPrice),
        ("lock beyond free", "call", lambda m: m.place("a", "bid", 2, 10**6), InsufficientFree),
        ("asset beyond free", "continuous", lambda m: m.place("a", "ask", 101, 100), InsufficientFree),
        ("market order in call", "call", lambda m: m.place("a", "bid", 2, 100, kind="market"), MarketOrderInCall),
        ("order in clearing", "clearing", lambda m: m.place("a", "bid", 2, 100), WrongPhase),
        ("cancel in clearing", "clearing", lambda m: m.cancel("a", 1), WrongPhase),
        ("cancel by another", "continuous", lambda m: m.cancel("b", 3), NotOwner),
        ("cancel unknown", "continuous", lambda m: m.cancel("a", 99), UnknownOrder),
        ("cancel closed", "continuous", lambda m: m.cancel("c", 2), AlreadyClosed),
        ("claim with one unknown", "continuous", lambda m: m.claim([1, 2, 99]), UnknownOrder),
        ("withdraw too much", "continuous", lambda m: m.withdraw("a", "asset", TONNES + 1), InsufficientFree),
        ("deposit nothing", "call", lambda m: m.deposit("a", "asset", 0), ZeroQuantity),
        ("withdraw nothing", "call", lambda m: m.withdraw("a", "asset", 0), ZeroQuantity),
        ("clear in call", "call", lambda m: m.clear(5), WrongPhase),
        ("clear no steps", "clearing", lambda m: m.clear(0), ZeroQuantity),
        ("clear again", "continuous", lambda m: m.clear(5), WrongPhase),
        ("end call twice", "clearing", lambda m: m.end_call(), WrongPhase),
        ("close in call", "call", lambda m: m.close(), WrongPhase),
        ("close in clearing", "clearing", lambda m: m.close(), WrongPhase),
        ("open while open", "continuous", lambda m: m.open_session(), SessionOpen),
        ("order after close", "closed", lambda m: m.place("a", "bid", 2, 100), WrongPhase),
    ]


@pytest.mark.parametrize("name,phase,operation,error", rejections(), ids=[r[0] for r in rejections()])
def test_every_rejection_changes_nothing(name, phase, operation, error):
    m = market(min_lots=2)
    m.place("a", "bid", 2, 105)  # 1
    m.place("c", "ask", 2, 100)  # 2: fully filled by the auction
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
    assert m.snapshot() == before and settled(m)


@pytest.mark.parametrize("operation", [
    lambda m: m.place("a", "buy", 1, 100),
    lambda m: m.place("a", "bid", 1.0, 100),
    lambda m: m.place("a", "bid", 1, 100, kind="stop"),
    lambda m: m.deposit("a", "coin", 5),
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
                      rng.choice([0, 50, 500, 2000]), pricing, rng.choice(["platform", traders[0]]))


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
        ids = list(range(1, len(m.orders()) + 2))
        if roll < 0.4:
            order = rng.choice(ids)
            owner = m.order(order).account if order <= len(ids) - 1 and rng.random() < 0.9 else rng.choice(traders)
            run(m.cancel, owner, order)
        elif roll < 0.6:
            run(m.claim, rng.sample(ids[:-1], min(len(ids) - 1, 3)) if len(ids) > 1 else [])
        elif roll < 0.8:
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
            assert m.invariants() == [] and m.session_state().steps > before or done
            if rng.random() < 0.3:
                random_housekeeping()
        for _ in range(rng.randint(20, 80)):
            random_order(["limit", "limit", "market"]) if rng.random() < 0.75 else random_housekeeping()
        run(m.close)
    run(m.claim, [o.id for o in m.orders()])
    everyone = traders + ["platform"]
    assert all(m.locked(a, t) == 0 for a in everyone for t in ("asset", "settlement")), f"seed {seed}"
    assert all(o.closed and (o.auction_claimed or not o.auction_lots) for o in m.orders())
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
    one's own ask skipped (cancelled); returns (buy, sell, lots, half-ticks) per matched pair."""
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
        assert [(f.buy_order, f.sell_order, f.lots, f.price_half_ticks) for f in m.fills] == expected, seed
        assert settled(m)
