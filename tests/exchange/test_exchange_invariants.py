"""Invariants of the exchange after random order flows (DESIGN 6), checked from the chain:

- the exchange holds exactly what it owes: for each token, its token balance equals the free balances, plus what
  every unsettled order still holds (computed from its record and its market's parameters as docs/exchange.md
  says: a bid's lock ``v + fee(v) + margin(v)`` less the value it bought, an ask's unsold asset and margin plus
  the value it sold), plus the markets' accrued fees for the settlement token - after every phase of every book,
  and after deposits and withdrawals between books;
- every matched price lies within its pair's [ask, bid]: auction pairs from their Trade events and order ids
  (UNIFORM: the AuctionCleared price), continuous fills at the resting order's price, within the taker's limit;
- trading changes no token's total supply, and the tokens held by the traders and the exchange together stay
  the same.
"""

from __future__ import annotations

import random

import pytest

from carbon_sdk.exchange_model import Phase, Pricing

from exchange_helpers import BookRun, Conservation, Venue

BOOKS = 6


@pytest.fixture(scope="module")
def venue(market) -> Venue:
    return Venue.create(market)


def supply(venue: Venue, token: str) -> int:
    return int(venue.chain.regulator.allowances.token(token).call("totalSupply"))


def held(venue: Venue, token: str, accounts: list[str]) -> int:
    return sum(venue.token_balance(token, a) for a in [*accounts, venue.exchange.address])


@pytest.mark.parametrize("pricing", [Pricing.MIDPOINT, Pricing.UNIFORM])
def test_random_flows_keep_the_exchange_whole(venue, pricing):
    accounts = [t.address for t in venue.traders] + [venue.operator.address]
    conservation = Conservation(venue, accounts)
    tokens = (venue.asset, venue.settlement)
    supplies = {t: supply(venue, t) for t in tokens}
    holdings = {t: held(venue, t, accounts) for t in tokens}
    checks = 0

    def check(phase: str) -> None:
        nonlocal checks
        for token in tokens:
            balance, owed = conservation.check(token)
            assert balance == owed, f"{phase}: the exchange holds {balance} of {token} but owes {owed}"
        checks += 1

    rng = random.Random(f"flows-{pricing.name}")
    for seed in range(BOOKS):
        run = BookRun(venue, 1000 + seed, pricing, checkpoint=check)
        model = run.run()
        check_prices(venue, run)
        assert model.invariants() == []
        # Deposits and withdrawals between books move tokens in and out; the exchange stays whole.
        trader = rng.choice(venue.traders)
        for token in tokens:
            amount = rng.randint(1, venue.free(trader.address, token))
            trader.exchange.withdraw(token, amount)
            check(f"after a withdrawal of {amount}")
            trader.exchange.deposit(token, rng.randint(1, amount))
            check("after a deposit")
    assert checks == BOOKS * 8
    assert {t: supply(venue, t) for t in tokens} == supplies
    assert {t: held(venue, t, accounts) for t in tokens} == holdings


def check_prices(venue: Venue, run: BookRun) -> None:
    """Every Trade of the book's market within its pair's [ask, bid] (ticks from the packed order ids)."""
    ex = venue.exchange
    market = run.market
    topic = "0x" + market.to_bytes(32, "big").hex()
    uniform = {e.args["session"]: e.args["uniformPrice2"] for e in ex.logs(["AuctionCleared"], topics=[topic])}
    takers = {f.taker: f for f in run.model.fills if f.taker}
    trades = ex.logs(["Trade"], topics=[topic])
    assert len(trades) == len(run.model.fills)
    for event, fill in zip(trades, run.model.fills):
        a = event.args
        bid_tick = (a["bidOrder"] >> 64) & 0xFFFF
        ask_tick = (a["askOrder"] >> 64) & 0xFFFF
        if a["bidOrder"] and a["askOrder"]:  # an auction pair
            price2 = a["price2"] or uniform[a["session"]]
            assert a["price2"] or run.spec.pricing is Pricing.UNIFORM
            assert 2 * ask_tick <= price2 <= 2 * bid_tick, a
        else:  # continuous: at the resting order's price, within the taker's limit (from the model's record)
            maker_tick = bid_tick or ask_tick
            assert a["price2"] == 2 * maker_tick, a
            assert fill.phase is Phase.CONTINUOUS and fill.taker in takers
            side, kind, limit = run.model._placements[fill.taker - 1]
            assert (maker_tick <= limit) if a["askOrder"] else (maker_tick >= limit), (a, limit)
