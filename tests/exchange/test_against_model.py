"""CarbonExchange against the reference model (carbon_sdk.exchange_model) on random order books.

Each book is a fresh market with random parameters (lot and tick sizes, fees, margin, minimum lots) traded by
4-6 of the venue's accounts: CALL-phase orders in batches with cancels and claims between, clearing in random
step budgets, continuous limit and market orders with random ``maxFills``, then close, claim everything and
collect the fees. Every operation runs in the model and on chain (``Venue.both``): each transaction emits
exactly the model's events (trades with their order pair, lots, price and value; placements; cancellations;
claims with asset, settlement and fee per order; taker settlements; the auction's end), each refusal is the
model's custom error with the same arguments, and at the end the order records, the free balances of every
account and the fees are the model's.
"""

from __future__ import annotations

import pytest

from carbon_sdk.exchange_model import Phase, Pricing

from exchange_helpers import BookRun, Venue

BOOKS = 30  # per pricing rule


@pytest.fixture(scope="module")
def venue(market) -> Venue:
    return Venue.create(market)


@pytest.mark.parametrize("pricing", [Pricing.MIDPOINT, Pricing.UNIFORM])
def test_random_books_match_the_model(venue, pricing):
    totals = {"fills": 0, "auction": 0, "continuous": 0, "payouts": 0, "takers": 0, "self_trades": 0,
              "clear_calls": 0, "orders": 0, "skipping_claims": 0}
    refusals: dict[str, int] = {}
    for seed in range(BOOKS):
        run = BookRun(venue, seed, pricing)
        model = run.run()
        run.compare_state()
        assert model.invariants() == [], f"seed {seed}: {model.invariants()}"
        assert model.claimable() == [] and all(o.claimed for o in model.orders())
        assert model.fees_accrued == 0
        fills = model.fills
        totals["fills"] += len(fills)
        totals["auction"] += sum(f.phase is Phase.CLEARING for f in fills)
        totals["continuous"] += sum(f.phase is Phase.CONTINUOUS for f in fills)
        totals["payouts"] += len(model.payouts)
        totals["takers"] += len(model.takers)
        totals["self_trades"] += sum(getattr(e, "reason", 0) == 1 for e in model.events)
        totals["clear_calls"] += run.clear_calls
        totals["skipping_claims"] += run.skipping_claims
        totals["orders"] += len(model.orders())
        for name, count in run.refusals.items():
            refusals[name] = refusals.get(name, 0) + count
    # The books did exercise both stages, partial fills, self-trades, claims that skipped some orders, refusals.
    assert totals["auction"] > 100 and totals["continuous"] > 100, totals
    assert totals["takers"] > 50 and totals["self_trades"] > 5 and totals["clear_calls"] > 2 * BOOKS, totals
    assert totals["skipping_claims"] > 5, totals
    assert {"NothingToClaim", "WrongPhase", "AlreadyClosed", "NotOwner"} <= set(refusals), refusals
