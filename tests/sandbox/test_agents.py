"""The sandbox's agents, by hand: abatement against the price, the competitive price, auction curves in lots,
and the individuals' responses and the platform's prices as a fixed point (no chain)."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from carbon_sdk.economics import platform_prices
from carbon_sdk.sandbox.agents import (
    EnterpriseAgent,
    Order,
    Person,
    auction_orders,
    equilibrium_price,
    make_people,
    personal_market,
    price_grid,
)


def firm(name: str = "a", baseline: float = 1_000.0, a: float = 20.0, b: float = 0.1,
         max_share: float = 0.5) -> EnterpriseAgent:
    return EnterpriseAgent(name, "g", 11, baseline, 0.0, a, b, max_share, 0.0)


def test_abatement_follows_the_marginal_cost_up_to_its_limit():
    f = firm()  # MAC(q) = 20 + 0.1 q, at most 500 t
    assert f.abatement_at(20, 0) == 0 and f.abatement_at(10, 0) == 0
    assert f.abatement_at(30, 0) == pytest.approx(100)  # (30 - 20) / 0.1
    assert f.abatement_at(1_000, 0) == 500
    assert f.net_demand(30, 0, holdings_t=800) == pytest.approx(1_000 - 100 - 800)
    # After trading: short 200 t at a price of 30, it abates more while that is cheaper than a penalty of 60.
    assert f.final_abatement(0, 30, holdings_t=700, penalty=60) == pytest.approx(300)  # 1000 - 700
    assert f.final_abatement(0, 30, holdings_t=500, penalty=60) == pytest.approx(400)  # MAC(400) = 60: stops
    assert f.final_abatement(0, 30, holdings_t=950, penalty=60) == pytest.approx(100)  # long: just the price
    grown = EnterpriseAgent("g", "g", 11, 1_000, 0.1, 20, 0.1, 0.5, 0)
    assert grown.baseline(2) == pytest.approx(1_210)


def test_the_competitive_price_clears_what_the_regulator_sells():
    # Two firms, each 1,000 t and 800 t held: together they need 400 t less what they abate.
    # MACs 20 + 0.1q and 30 + 0.1q; the regulator sells 200 t: q1 + q2 = 200 with p = 20 + 0.1 q1 = 30 + 0.1 q2
    # gives q1 = 150, q2 = 50 and p = 35.
    firms = [firm("a", a=20), firm("b", a=30)]
    p = equilibrium_price(firms, 0, {"a": 800, "b": 800}, supply_t=200)
    assert p == pytest.approx(35, abs=1e-6)
    assert equilibrium_price(firms, 0, {"a": 2_000, "b": 2_000}, supply_t=10) == 0  # nobody needs any
    high = equilibrium_price(firms, 0, {"a": 0, "b": 0}, supply_t=0)  # abating all they can still leaves a gap
    assert high >= 30 + 0.1 * 500


def test_auction_orders_are_the_curve_in_whole_lots():
    f = firm(a=20, b=0.1)  # holds 800: needs 200 - q(p)
    grid = [10.0, 25.0, 30.0, 40.0]  # q = 0, 50, 100, 200 -> demand 200, 150, 100, 0
    orders = auction_orders(f, 0, 800, grid, lot_t=10)
    assert orders == [Order("bid", 5, 10.0), Order("bid", 5, 25.0), Order("bid", 10, 30.0)]
    assert sum(o.lots for o in orders) * 10 == 200  # all it needs at the lowest price
    seller = auction_orders(f, 0, 1_150, grid, lot_t=10)  # 150 t spare, and more as it abates
    assert [(o.side, o.lots, o.price) for o in seller] == [("ask", 15, 10.0), ("ask", 5, 25.0), ("ask", 5, 30.0),
                                                         ("ask", 10, 40.0)]
    assert price_grid([f], 0, 4, 0.5) == [10.0, 30.0, 50.0, 70.0]  # 20/2 .. 20 + 0.1 x 500, evenly
    assert max(price_grid([f], 0, 4, 0.5, ceiling=40)) == 40


def test_without_a_market_nobody_responds():
    people = [Person(0, "low_carbon", 0.6, 0.1), Person(1, "high_carbon", 1.5, 0.9)]
    out = personal_market(people, quota_t=1.0, delta=0.5, e=200, c=5, k=400, trading=False)
    assert out.prices is None
    assert [o.emissions_t for o in out.outcomes] == [0.6, 1.5]
    assert [o.credits_t for o in out.outcomes] == pytest.approx([0.4, 0.0])
    assert out.outcomes[1].owes_t == pytest.approx(0.25)  # δ x 0.5 t


def test_the_market_is_a_fixed_point_of_prices_and_responses():
    people = make_people(400, 0.5, (0.3, 0.9), (1.1, 2.2), random.Random(3))
    m = personal_market(people, quota_t=1.0, delta="0.4", e=200, c=5, k=400, trading=True)
    assert m.prices is not None and m.iterations < 100
    # The posted prices are the model's at the market's own final N, D, W.
    again = platform_prices(Fraction(round(m.N_t * 10**6), 10**6), Fraction(2, 5), 200, m.D,
                            Fraction(round(m.W_t * 10**6), 10**6), 5)
    assert float(again.p_ph) == pytest.approx(float(m.prices.p_ph), rel=1e-6)
    p_ph, p_c = float(m.prices.p_ph), float(m.prices.p_c)
    for o in m.outcomes:
        if o.person.group == "low_carbon":
            assert o.sells == (o.person.theta <= p_ph / 200 and o.credits_t > 0)
            cut = min(p_ph / 400, o.person.baseline_t / 2) if o.sells else 0
            assert o.emissions_t == pytest.approx(o.person.baseline_t - cut, abs=1e-6)
        else:
            cut = min(0.4 * p_c / 400, o.person.baseline_t - 1.0)
            assert o.emissions_t == pytest.approx(o.person.baseline_t - cut, abs=1e-6)
    # The paper's claim on this population: trading lowers total consumer emissions.
    assert sum(o.emissions_t for o in m.outcomes) < sum(p.baseline_t for p in people)


def test_prices_rise_with_the_offset_ratio():
    people = make_people(400, 0.5, (0.3, 0.9), (1.1, 2.2), random.Random(5))
    prices = [personal_market(people, quota_t=1.0, delta=d, e=200, c=5, k=400, trading=True).prices
              for d in ("0.2", "0.4", "0.6")]
    assert prices[0].p_ph < prices[1].p_ph < prices[2].p_ph
    assert prices[0].p_c < prices[1].p_c < prices[2].p_c
