"""Order spam and gas griefing (DESIGN 2.5 and 6): 10,000 minimum orders on one side cannot block clearing or
continuous trading. Clearing runs in bounded steps, each transaction under a gas bound, and takes as many
transactions as its steps imply; the chain and the reference model agree on every step of it."""

from __future__ import annotations

import pytest

from carbon_sdk.exchange_model import MarketSpec, OrderKind, Side, TakerSettled
from carbon_sdk.units import tonnes

from exchange_helpers import Venue, encode

SPAM = 10_000
STEPS = 300
GAS_BOUND = 15_000_000  # half a 30M block


@pytest.fixture(scope="module")
def venue(market) -> Venue:
    return Venue.create(market, traders=4, asset_each=tonnes(20_000))


def test_ten_thousand_minimum_orders_clear_in_bounded_steps(venue):
    spammer, buyer, other, anyone = venue.traders
    model = venue.new_market(MarketSpec(tonnes(1), 2, buyer_fee_bps=10, seller_fee_bps=10),
                             [t.address for t in venue.traders])
    market = model.spec.market
    deadline, closes = venue.open_session(model)
    # 10,000 one-lot asks, 100 per tick from 100 to 199, in 100 transactions of 100 orders.
    gas = []
    for tick in range(100, 200):
        orders = [(Side.ASK, 1, tick)] * 100
        receipt, events = venue.send(spammer, "placeOrders", market, [encode(*o) for o in orders], 50)
        start = len(model.events)
        for order in orders:  # one by one in the model: a batch would copy its whole state for the undo
            model.place(spammer.address, *order, max_fills=50)
        assert events == model.events[start:]
        gas.append(receipt.gas_used)
    assert len(model.orders()) == SPAM and max(gas) < GAS_BOUND
    # A few honest crossing bids: one sweeping 3,000 lots, two small ones, one that crosses nothing.
    for trader, lots, tick in ((buyer, 3_000, 199), (other, 2, 150), (other, 1, 130), (buyer, 5, 99)):
        venue.both(model, lambda: model.place(trader.address, Side.BID, lots, tick), trader, "placeOrder", market,
                   encode(Side.BID, lots, tick), 50)
    venue.to_clearing(model, deadline)

    calls, clear_gas = 0, []
    while True:
        calls += 1
        done = None

        def step():
            nonlocal done
            done = model.clear(STEPS)
            return done

        receipt_events = venue.both(model, step, anyone, "clear", market, STEPS)
        assert receipt_events == done
        clear_gas.append(_last_gas(anyone))
        if done:
            break
    state = model.session_state()
    pairs = len(model.fills)
    # 3,000 + 2 + 1 pairs, one step each: the 30 ask ticks 100..129 and the bid ticks 199, 150 and 130 leave the
    # book with the fill that closes their last order, at no step; the calls take exactly the transactions the
    # steps imply.
    assert pairs == 3_003
    assert state.steps == pairs
    assert calls == state.steps // STEPS + 1
    assert max(clear_gas) < GAS_BOUND, clear_gas
    print(f"\nclearing {SPAM} orders: {calls} transactions, {state.steps} steps, max gas {max(clear_gas):,}, "
          f"placement batch of 100 max gas {max(gas):,}")

    # Continuous trading against the flood: a market order's walk is bounded by its own maxFills. Each unit
    # fills one one-lot ask; the levels it empties leave the book with their last fill, at no unit.
    receipt, events = venue.send(buyer, "placeOrder", market, encode(Side.BID, 5_000, 199, OrderKind.MARKET), STEPS)
    model.place(buyer.address, Side.BID, 5_000, 199, kind=OrderKind.MARKET, max_fills=STEPS)
    assert events == model.events[-len(events):]
    taker = model.takers[-1]
    assert isinstance(taker, TakerSettled) and taker.filled_lots == STEPS and receipt.gas_used < GAS_BOUND
    venue.to_closed(model, closes)


def _last_gas(client) -> int:
    """Gas of the client's latest transaction (its receipt, by nonce order)."""
    rpc = client.rpc
    block = rpc.call("eth_getBlockByNumber", ["latest", True])
    tx = next(t for t in reversed(block["transactions"]) if t["from"].lower() == client.address.lower())
    return int(rpc.call("eth_getTransactionReceipt", [tx["hash"]])["gasUsed"], 16)


def test_a_spammer_crossing_its_own_orders_delays_clearing_by_bounded_steps(venue):
    """The spammer holds the best bid and floods its own asks below it: clearing cancels each of those asks as
    a self-trade (one step) and skips it afterwards (one step), then matches the honest orders. Every call
    stays bounded and the honest pair still trades."""
    spammer, seller, buyer, anyone = venue.traders
    model = venue.new_market(MarketSpec(tonnes(1), 2), [t.address for t in venue.traders])
    market = model.spec.market
    deadline, _ = venue.open_session(model)
    flood = 1_000
    spam_bid = venue.both(model, lambda: model.place(spammer.address, Side.BID, 1, 200), spammer, "placeOrder",
                          market, encode(Side.BID, 1, 200), 50)
    for start in range(0, flood, 100):
        orders = [(Side.ASK, 1, 100 + (start + i) % 50) for i in range(100)]
        _, events = venue.send(spammer, "placeOrders", market, [encode(*o) for o in orders], 50)
        first = len(model.events)
        for order in orders:
            model.place(spammer.address, *order)
        assert events == model.events[first:]
    honest_bid = venue.both(model, lambda: model.place(buyer.address, Side.BID, 3, 150), buyer, "placeOrder",
                            market, encode(Side.BID, 3, 150), 50)
    honest_ask = venue.both(model, lambda: model.place(seller.address, Side.ASK, 3, 149), seller, "placeOrder",
                            market, encode(Side.ASK, 3, 149), 50)
    venue.to_clearing(model, deadline)
    calls = 0
    while not venue.both(model, lambda: model.clear(STEPS), anyone, "clear", market, STEPS):
        calls += 1
        assert _last_gas(anyone) < GAS_BOUND
    steps = model.session_state().steps
    cancelled = sum(1 for e in model.events if getattr(e, "reason", None) == 1)
    assert cancelled == flood and steps >= 2 * flood and calls + 1 == steps // STEPS + 1
    # Past its own asks, the spammer's bid buys one lot of the honest ask; the honest bid the other two.
    assert [(f.bid_order, f.ask_order, f.lots) for f in model.fills] == [(spam_bid, honest_ask, 1),
                                                                          (honest_bid, honest_ask, 2)]
