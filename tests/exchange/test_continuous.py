"""Continuous trading and settlement on chain, by hand (docs/exchange.md, Continuous trading; Claims): who
settles what and when, and the edges of the ``maxFills`` budget, each against the reference model."""

from __future__ import annotations

import pytest

from carbon_sdk.exchange_model import Fill, OrderKind, Payout, Placed, Side, TakerSettled
from carbon_sdk.units import tonnes

from exchange_helpers import Book, Venue, order_record


@pytest.fixture(scope="module")
def venue(market) -> Venue:
    return Venue.create(market, traders=4)


def continuous_book(venue: Venue) -> Book:
    book = Book(venue, orders=False)
    book.to_continuous()
    return book


def test_a_taker_completing_a_resting_order_settles_it_and_itself(venue):
    book = continuous_book(venue)
    a, b = book.traders[:2]
    ask = book.place(b, Side.ASK, 4, 100)
    start = len(book.model.events)
    assert book.place(a, Side.BID, 4, 101) == 0  # filled completely: never stored
    # 4 lots at the resting 100 ticks of 2 units: 800; buyer fee 0 (0.8), seller fee 1 (1.6); margins 1%.
    assert book.model.events[start:] == [
        Fill(book.market, 1, 0, ask, 4, 200, 800),
        Payout(ask, b.address, 0, 800 - 1 + 8, 1),
        TakerSettled(book.market, a.address, Side.BID, OrderKind.LIMIT, 4, 4, 800, 0),
    ]
    assert venue.order(ask)["claimed"]


def test_a_partly_filled_resting_order_waits_for_its_claim(venue):
    book = continuous_book(venue)
    a, b, c = book.traders[:3]
    ask = book.place(b, Side.ASK, 6, 100)
    assert book.place(a, Side.BID, 2, 100) == 0
    assert venue.order(ask) == order_record(book.model, ask) and not venue.order(ask)["claimed"]
    error = book.refused(lambda: book.model.claim([ask]), c, "claim", [ask])
    assert error.name == "ExchangeNothingToClaim"
    book.both(lambda: book.model.cancel(b.address, ask), b, "cancel", ask)
    book.both(lambda: book.model.claim([ask]), c, "claim", [ask])
    # Sold 2 lots for 400 (fee 0.8 -> 0); its margin (1% of 1,200) and the 4 unsold lots come back.
    assert book.model.events[-1] == Payout(ask, b.address, tonnes(4), 400 + 12, 0)


def test_entry_fills_of_a_taker_that_then_rests_carry_order_id_zero(venue):
    """The taker's id is not known until it rests, so its own trades name it 0; its record keeps their lots
    and value (filledLots, value) under the id that OrderPlaced then gives."""
    book = continuous_book(venue)
    a, b = book.traders[:2]
    ask = book.place(b, Side.ASK, 2, 100)
    start = len(book.model.events)
    bid = book.place(a, Side.BID, 5, 101)
    assert bid != 0
    assert book.model.events[start] == Fill(book.market, 1, 0, ask, 2, 200, 400)
    assert book.model.events[-1] == Placed(bid, a.address, book.market, Side.BID, 101, 5)
    record = venue.order(bid)
    assert (record["lots"], record["openLots"], record["filledLots"], record["value"]) == (5, 3, 2, 400)


def test_a_fill_that_empties_a_price_level_retires_its_tick_at_once(venue):
    """A fill that closes the last order of a price level takes the tick off the book's bitmap with it, at no
    cost to the taker's maxFills. A taker whose single unit went on that fill finds nothing left that crosses:
    its remainder rests."""
    book = continuous_book(venue)
    a, b = book.traders[:2]
    ask = book.place(b, Side.ASK, 2, 100)
    start = len(book.model.events)
    bid = book.place(a, Side.BID, 5, 100, max_fills=1)
    # 2 lots at 100 ticks of 2 units: 400; seller fee 0 (0.8), its margin 4 back.
    assert bid != 0 and book.model.events[start:] == [
        Fill(book.market, 1, 0, ask, 2, 200, 400),
        Payout(ask, b.address, 0, 400 + 4, 0),
        Placed(bid, a.address, book.market, Side.BID, 100, 5),
    ]
    record = venue.order(bid)
    assert (record["openLots"], record["filledLots"], record["value"]) == (3, 2, 400)
    assert book.model.best_ticks() == (100, None) and book.model.book() == [(Side.BID, 100, 3)]


def test_a_level_that_still_holds_a_cancelled_order_counts_against_max_fills(venue):
    """A cancelled order stays in its level's FIFO until a walk skips it, so its tick stays on the bitmap: a
    taker whose one unit of maxFills went on a fill before it "may still cross" there, and its remainder comes
    back at once instead of resting. The next walk spends a unit skipping the order and one retiring the tick."""
    book = continuous_book(venue)
    a, b, c = book.traders[:3]
    book.place(b, Side.ASK, 2, 101)
    gone = book.place(c, Side.ASK, 2, 101)
    book.both(lambda: book.model.cancel(c.address, gone), c, "cancel", gone)
    assert book.place(a, Side.BID, 5, 101, max_fills=1) == 0
    # 2 lots at 101 ticks of 2 units: 404; buyer fee 0 (0.404).
    assert book.model.takers[-1] == TakerSettled(book.market, a.address, Side.BID, OrderKind.LIMIT, 5, 2, 404, 0)
    assert book.model.best_ticks() == (None, 101) and book.model.book() == []
    assert book.place(a, Side.BID, 5, 101, max_fills=1) == 0  # its unit skips the cancelled order: no fill
    assert book.model.takers[-1].filled_lots == 0 and book.model.best_ticks() == (None, 101)
    resting = book.place(a, Side.BID, 5, 101, max_fills=1)  # its unit retires the tick; then it rests
    assert resting != 0 and venue.order(resting)["openLots"] == 5 and book.model.best_ticks() == (101, None)


def test_a_clear_call_with_no_steps_is_refused(venue):
    book = Book(venue)
    book.to_clearing()
    error = book.refused(lambda: book.model.clear(0), book.traders[3], "clear", book.market, 0)
    assert (error.name, error.arguments) == ("ExchangeBatchSize", {"size": 0, "max": 2**256 - 1})
    assert book.both(lambda: book.model.clear(50), book.traders[3], "clear", book.market, 50)


def test_a_bulk_claim_skips_an_order_someone_settled_first_and_settles_the_others(venue):
    """claim() skips orders settled already (or not claimable yet) and settles the rest, so whoever claims one
    order of someone else's bulk claim first cannot make the bulk claim fail. Only a claim that settles nothing
    is refused (ExchangeNothingToClaim, with its first id)."""
    book = Book(venue)
    book.to_continuous()
    bid, ask, rest = book.ids
    book.both(lambda: book.model.cancel(book.traders[2].address, rest), book.traders[2], "cancel", rest)
    book.both(lambda: book.model.claim([ask]), book.traders[3], "claim", [ask])  # someone else claims one
    assert venue.exchange.call("claim", [ask, bid, rest]) == 1  # bid: open before the close, skipped too
    start = len(book.model.events)
    payouts = book.both(lambda: book.model.claim([ask, bid, rest]), book.traders[0], "claim", [ask, bid, rest])
    assert [p.order_id for p in payouts] == [rest] and book.model.events[start:] == payouts
    assert venue.order(rest)["claimed"] and venue.order(ask)["claimed"] and not venue.order(bid)["claimed"]
    error = book.refused(lambda: book.model.claim([ask, bid, rest]), book.traders[0], "claim", [ask, bid, rest])
    assert (error.name, error.arguments) == ("ExchangeNothingToClaim", {"orderId": ask})
