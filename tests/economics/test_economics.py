"""carbon_sdk.economics: the pricing model of docs/economics.md, by hand and against numerical optimisation.

Hand example (used throughout): the high-carbon side owes on N = 1,000 t of deficit at offset ratio δ = 0.5;
D = 10,000 low-carbon users hold W = 0.5 t of surplus each (D·W = 5,000 t); the most reluctant user values a
tonne at e = 100; the platform's unit cost is c = 5. Then P_ph = δNe/(DW) = 500·100/5000 = 10, P_c = 2·10 + 5
= 25, D_all = 500 t (10 % of users sell), π = (25 − 10 − 5)·500 = 5,000, U = 5000·10²/(2·100) = 2,500.
"""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest
from economics_helpers import (
    agents_surplus,
    best_buyback,
    box_optimum,
    clearing_sale_price,
    interior_optimum,
    profit,
    random_market,
    random_two_sided,
    supply,
    welfare,
)

from carbon_sdk import economics as econ
from carbon_sdk.economics import (
    OffsetRatio,
    PlatformPrices,
    PostedPrices,
    TwoSidedMarket,
    bisect_root,
    golden_section_max,
    grid_max,
    optimal_offset_ratio,
    platform_fees,
    platform_prices,
    posted_prices,
)
from carbon_sdk.errors import InvalidInput

HAND = dict(N=1_000, delta="0.5", e=100, D=10_000, W="0.5", c=5)


def close(a: float, b: float, rel: float, scale: float = 1.0) -> bool:
    return abs(float(a) - float(b)) <= rel * max(abs(float(a)), abs(float(b)), scale)


# --- by hand ------------------------------------------------------------------------------------------------


def test_platform_prices_by_hand():
    prices = platform_prices(**HAND)
    assert prices == PlatformPrices(p_c=Fraction(25), p_ph=Fraction(10), d_all=Fraction(500),
                                    profit=Fraction(5000), user_surplus=Fraction(2500),
                                    welfare=Fraction(7500), participation=Fraction(1, 10),
                                    buyer_cost=Fraction(12_500))


def test_platform_prices_are_exact_for_decimal_floats():
    # 0.3 means 3/10: P_ph = 100·0.3·50/1000 = 1.5 exactly, so it posts as 150, not 149.
    prices = platform_prices(N=100, delta=0.3, e=50, D=1_000, W=1.0, c=0.1)
    assert prices.p_ph == Fraction(3, 2) and prices.p_c == Fraction(31, 10)
    assert prices.posted(2) == PostedPrices(buy_back=150, sale=310, settlement_decimals=2, tick_size=1)
    assert platform_prices(N=Decimal("100"), delta=Fraction(3, 10), e="50", D=1_000, W=1, c="0.1") == prices


def test_posted_prices_round_the_spread_outwards():
    # P_ph = 1/3, P_c = 2/3 + 1: the buy-back rounds down, the sale price up.
    prices = platform_prices(N=1, delta=1, e=1, D=3, W=1, c=1)
    assert (prices.p_ph, prices.p_c) == (Fraction(1, 3), Fraction(5, 3))
    assert posted_prices(prices, 2) == PostedPrices(33, 167, 2, 1)
    assert posted_prices(prices, 6) == PostedPrices(333_333, 1_666_667, 6, 1)
    assert posted_prices(prices, 2, tick_size=5) == PostedPrices(30, 170, 2, 5)
    hand = platform_prices(**HAND)
    assert posted_prices(hand, 0) == PostedPrices(10, 25, 0, 1)  # exact prices are not moved
    assert hand.posted(2, tick_size=250) == PostedPrices(1000, 2500, 2, 250)


def test_offset_ratio_by_hand():
    # 3eN²/(DW) = 3·100·10^6/5000 = 60,000, so κ = 180,000 − 60,000 = 120,000 and δ* = P·N/κ = 60,000/120,000.
    ratio = optimal_offset_ratio(N=1_000, P=60, k=180_000, e=100, D=10_000, W="0.5")
    assert ratio == OffsetRatio(delta=Fraction(1, 2), unconstrained=Fraction(1, 2),
                                curvature=Fraction(120_000), concave=True, interior=True, bound="interior",
                                welfare=Fraction(15_000))
    assert ratio.delta_bps == 5_000
    # SW(δ*) from its parts: π + U at δ = 0.5 is 7,500 (any c), P·δN = 30,000, kδ²/2 = 22,500.
    assert platform_prices(**HAND).welfare + 60 * 500 - 180_000 * Fraction(1, 8) == ratio.welfare


def test_offset_ratio_corners_by_hand():
    # κ > 0 but P·N/κ = 1.5 > 1: the ratio cap binds.
    capped = optimal_offset_ratio(N=1_000, P=180, k=180_000, e=100, D=10_000, W="0.5")
    assert (capped.delta, capped.unconstrained, capped.interior, capped.bound) == (
        1, Fraction(3, 2), False, "ratio")
    # κ = 50,000 − 60,000 < 0: welfare is convex and rising, so δ* is the cap.
    convex = optimal_offset_ratio(N=1_000, P=1, k=50_000, e=100, D=10_000, W="0.5")
    assert (convex.delta, convex.concave, convex.unconstrained, convex.bound) == (1, False, None, "ratio")
    # A deficit larger than the surplus: δ ≤ DW/N = 1/2, every low-carbon user sells there.
    short = optimal_offset_ratio(N=10_000, P=60, k=10**12, e=100, D=10_000, W="0.5")
    assert short.interior and short.delta < Fraction(1, 2)
    short = optimal_offset_ratio(N=10_000, P=60, k=1, e=100, D=10_000, W="0.5")
    assert (short.delta, short.bound) == (Fraction(1, 2), "surplus")
    assert platform_prices(N=10_000, delta=short.delta, e=100, D=10_000, W="0.5").participation == 1
    assert optimal_offset_ratio(N=1, P=1, k=10**9, e=1, D=1, W=1).delta_bps == 1  # tiny δ*: at least 1 bps


# --- closed forms against numerical optimisation ------------------------------------------------------------


def test_building_blocks_match_the_agents_rules():
    rng = random.Random(11)
    for _ in range(50):
        m = random_market(rng)
        for p_ph in (0.0, rng.uniform(0, m.e), m.e, 1.5 * m.e):
            p_c = p_ph + m.c + rng.uniform(0, 10)
            assert close(econ.surplus_supply(p_ph, m.e, m.D, m.W), supply(m, p_ph), 1e-12)
            assert close(econ.platform_profit(p_ph, p_c, m.e, m.D, m.W, m.c), profit(m, p_ph, p_c), 1e-9,
                         scale=m.surplus * m.e)


def test_buyback_price_maximises_profit_at_the_sale_price():
    # P_ph* = (P_c − c)/2 is the numerical argmax of π(P_ph) = (P_c − P_ph − c)·D_all(P_ph), for any P_c
    # low enough that not every user sells (P_c − c ≤ 2e).
    rng = random.Random(1)
    for _ in range(200):
        m = random_market(rng)
        p_c = m.c + rng.uniform(0.001, 2) * m.e
        numeric = best_buyback(m, p_c)
        assert close(numeric, (p_c - m.c) / 2, 1e-6, scale=m.e * 1e-3)
        assert profit(m, numeric, p_c) <= profit(m, (p_c - m.c) / 2, p_c) * (1 + 1e-12)


def test_buyback_price_against_a_plain_grid():
    # The same claim with no golden section: a 20,001-point grid over [0, P_c − c].
    rng = random.Random(2)
    for _ in range(5):
        m = random_market(rng)
        p_c = m.c + rng.uniform(0.1, 2) * m.e
        grid = [(p_c - m.c) * i / 20_000 for i in range(20_001)]
        best = max(grid, key=lambda p: profit(m, p, p_c))
        assert abs(best - (p_c - m.c) / 2) <= (p_c - m.c) / 20_000


def test_sale_price_clears_the_market():
    # P_c = 2δNe/(DW) + c is where the platform's profit-maximising purchases equal δN (bisection over P_c,
    # each step maximising profit numerically).
    rng = random.Random(3)
    for _ in range(40):
        m = random_market(rng)
        prices = platform_prices(m.N, m.delta, m.e, m.D, m.W, m.c)
        assert close(clearing_sale_price(m), prices.p_c, 1e-6, scale=m.e * 1e-3)
        assert close(supply(m, float(prices.p_ph)), m.delta * m.N, 1e-12)


def test_users_surplus_and_supply_against_agents():
    # U = DW·P_ph²/(2e) and D_all = (P_ph/e)·DW against 200,000 agents at the quantiles of θ.
    rng = random.Random(4)
    for _ in range(3):
        m = random_market(rng)
        prices = platform_prices(m.N, m.delta, m.e, m.D, m.W, m.c)
        sold, surplus = agents_surplus(m, float(prices.p_ph), agents=200_000)
        one_agent = m.W * m.D / 200_000  # the quantile grid is off by at most the agent at the threshold
        assert abs(sold - float(prices.d_all)) <= one_agent + 1e-9 * float(prices.d_all)
        assert abs(surplus - float(prices.user_surplus)) <= one_agent * m.e / 200_000 + 1e-9 * float(
            prices.user_surplus)


def test_profit_and_surplus_identities_on_random_markets():
    rng = random.Random(5)
    for _ in range(300):
        m = random_market(rng)
        p = platform_prices(m.N, m.delta, m.e, m.D, m.W, m.c)
        assert p.d_all == econ.surplus_supply(p.p_ph, m.e, m.D, m.W)  # the market clears, exactly
        assert p.profit == econ.platform_profit(p.p_ph, p.p_c, m.e, m.D, m.W, m.c) == p.p_ph * p.d_all
        assert p.user_surplus == econ.user_surplus(p.p_ph, m.e, m.D, m.W) == p.profit / 2
        assert p.welfare == p.profit + p.user_surplus
        assert p.p_ph == (p.p_c - econ._exact(m.c, "c")) / 2
        assert 0 < p.participation <= 1


def test_offset_ratio_maximises_welfare_on_random_markets():
    # δ* against golden-section search of SW(δ) over (0, δ_max], SW summed from the agents' rules; the
    # regimes (interior, ratio cap, surplus cap, convex) all occur.
    rng = random.Random(6)
    seen = set()
    for _ in range(300):
        m = random_market(rng)
        curvature = 3 * m.e * m.N**2 / m.surplus
        k = curvature * rng.choice([rng.uniform(0.2, 0.99), rng.uniform(1.01, 50)])
        P = rng.uniform(0.01, 3) * max(k - curvature, curvature) / m.N
        cap = min(1.0, m.surplus / m.N)
        ratio = optimal_offset_ratio(m.N, P, k, m.e, m.D, m.W)
        x, best = golden_section_max(lambda d: welfare(m, d, P, k), 0.0, cap, tol=1e-15)
        assert close(ratio.delta, x, 1e-6, scale=cap * 1e-4)
        assert close(ratio.welfare, best, 1e-9, scale=abs(best) + P * m.N * cap * 1e-6)
        assert float(ratio.welfare) >= best * (1 - 1e-9)
        assert ratio.concave == (k > curvature)
        assert ratio.interior == (ratio.concave and P * m.N / (k - curvature) <= cap)
        if ratio.interior:  # first-order condition: SW'(δ*) = 0
            h = 1e-6 * float(ratio.delta)
            at = float(ratio.delta)
            slope = (welfare(m, at + h, P, k) - welfare(m, at - h, P, k)) / (2 * h)
            assert abs(slope) <= 1e-5 * P * m.N
        else:
            assert ratio.delta == min(Fraction(1), econ._exact(m.D, "D") * econ._exact(m.W, "W")
                                      / econ._exact(m.N, "N"))
        seen.add((ratio.bound, ratio.concave))
    assert {("interior", True), ("ratio", True), ("ratio", False), ("surplus", True),
            ("surplus", False)} <= seen


def test_welfare_does_not_depend_on_the_unit_cost():
    # SW(δ) = π + U + P·δN − kδ²/2 for every c: the sale price passes c on to the high-carbon side in full.
    rng = random.Random(7)
    for _ in range(100):
        m = random_market(rng)
        P, k = rng.uniform(1, 100), rng.uniform(1, 1e6)
        expected = econ.regulator_welfare(m.delta, m.N, P, k, m.e, m.D, m.W)
        delta, N, P_, k_ = (econ._exact(v, "x") for v in (m.delta, m.N, P, k))
        for c in (0, m.c, 1_000):
            prices = platform_prices(m.N, m.delta, m.e, m.D, m.W, c)
            assert prices.welfare + P_ * delta * N - k_ * delta**2 / 2 == expected


# --- the model's comparative statics ------------------------------------------------------------------------


def test_prices_rise_with_demand_and_fall_with_supply():
    base = platform_prices(**HAND)
    more_deficit = platform_prices(**{**HAND, "N": 2_000})
    higher_ratio = platform_prices(**{**HAND, "delta": "0.8"})
    more_users = platform_prices(**{**HAND, "D": 20_000})
    more_surplus = platform_prices(**{**HAND, "W": 1})
    for higher in (more_deficit, higher_ratio):
        assert higher.p_c > base.p_c and higher.p_ph > base.p_ph and higher.profit > base.profit
        assert higher.participation > base.participation and higher.user_surplus > base.user_surplus
    for cheaper in (more_users, more_surplus):
        assert cheaper.p_c < base.p_c and cheaper.p_ph < base.p_ph and cheaper.profit < base.profit
    # Only δN matters on the demand side: doubling N equals doubling δ.
    assert platform_prices(**{**HAND, "N": 2_000}) == platform_prices(**{**HAND, "delta": 1})
    # The unit cost moves the sale price one for one and nothing else.
    costly = platform_prices(**{**HAND, "c": 9})
    assert costly.p_c - base.p_c == 4 and (costly.p_ph, costly.profit, costly.user_surplus) == (
        base.p_ph, base.profit, base.user_surplus)
    # More reluctant sellers (higher e) mean higher prices for the same quantity.
    assert platform_prices(**{**HAND, "e": 200}).p_c > base.p_c


def test_prices_are_monotone_in_the_offset_ratio_on_random_markets():
    rng = random.Random(8)
    for _ in range(100):
        m = random_market(rng)
        low, high = sorted(rng.uniform(0.01, 1) * min(1.0, m.surplus / m.N) for _ in range(2))
        a = platform_prices(m.N, low, m.e, m.D, m.W, m.c)
        b = platform_prices(m.N, high, m.e, m.D, m.W, m.c)
        assert a.p_c <= b.p_c and a.p_ph <= b.p_ph and a.profit <= b.profit and a.welfare <= b.welfare


def test_offset_ratio_statics():
    base = dict(N=1_000, P=60, k=180_000, e=100, D=10_000, W="0.5")
    delta = optimal_offset_ratio(**base).delta
    assert optimal_offset_ratio(**{**base, "P": 70}).delta > delta  # a higher carbon value asks for more
    assert optimal_offset_ratio(**{**base, "k": 200_000}).delta < delta  # a costlier ratio, less
    # Properties of the π + U welfare measure (docs/economics.md section 5): more rent when sellers are
    # more reluctant or scarcer, so δ* rises with e and falls with the low-carbon surplus.
    assert optimal_offset_ratio(**{**base, "e": 120}).delta > delta
    assert optimal_offset_ratio(**{**base, "D": 12_000}).delta < delta


# --- two-sided fees -----------------------------------------------------------------------------------------


def test_fees_by_hand():
    # Symmetric sides: S = B = 100, t = 10, α = 0.05 each, b = 1, no costs. The first-order conditions
    # (2t/S)·n − (α_s + α_b)·n = b·q give n = q/(0.2 − 0.1) = 10·q on each side. At q = 5: n = 50, fee =
    # b·q + α·n − t·n/S = 5 + 2.5 − 5 = 2.5, profit = 2·2.5·50 = 250, each side's surplus t·n²/(2S) = 125.
    # At q = 10, n = 100: everybody joins, a corner.
    market = TwoSidedMarket(sellers=100, buyers=100, seller_spread=10, buyer_spread=10, seller_network=0.05,
                            buyer_network=0.05)
    fees = platform_fees(5, market)
    assert close(fees.sellers, 50, 1e-7) and close(fees.buyers, 50, 1e-7)
    assert close(fees.seller_fee, 2.5, 1e-6) and close(fees.buyer_fee, 2.5, 1e-6)
    assert close(fees.profit, 250, 1e-10) and fees.interior
    assert close(fees.seller_surplus, 10 * 50**2 / 200, 1e-6)  # t·n²/(2S) = 125
    assert close(fees.welfare, 500, 1e-6)
    full = platform_fees(10, market)
    assert close(full.sellers, 100, 1e-9) and close(full.buyers, 100, 1e-9) and not full.interior


def test_fees_match_the_closed_form_when_interior():
    # n* solves the first-order conditions; fees then follow Armstrong (2006):
    # f_i = c_i − α_j·n_j + t_i·n_i/N_i.
    rng = random.Random(9)
    checked = 0
    while checked < 25:
        market = random_two_sided(rng)
        q = rng.uniform(0, 10)
        inner = interior_optimum(market, q)
        if inner is None or not (0 < inner[0] < market.sellers and 0 < inner[1] < market.buyers):
            continue
        fees = platform_fees(q, market)
        assert fees.interior
        # A search on profit values finds its argmax to about √ε of the range (docs/economics.md).
        assert abs(fees.sellers - inner[0]) <= 1e-7 * market.sellers
        assert abs(fees.buyers - inner[1]) <= 1e-7 * market.buyers
        fee_scale = market.seller_spread + market.buyer_spread + 20 * q
        assert close(fees.seller_fee, market.seller_cost - market.buyer_network * inner[1]
                     + market.seller_spread * inner[0] / market.sellers, 1e-6, scale=fee_scale)
        assert close(fees.buyer_fee, market.buyer_cost - market.seller_network * inner[0]
                     + market.buyer_spread * inner[1] / market.buyers, 1e-6, scale=fee_scale)
        assert close(fees.profit, market.profit(q, *inner), 1e-9, scale=fee_scale)
        checked += 1


def test_fees_find_corner_optima_with_strong_network_effects():
    # When (α_s + α_b)² ≥ 4·t_s·t_b/(S·B) profit is not concave and the optimum is on the box's boundary; the
    # numerical search must find the exact best of edges and corners.
    rng = random.Random(10)
    for strong in [True] * 20 + [False] * 20:
        market = random_two_sided(rng, strong_network=strong)
        q = rng.uniform(0, 10)
        fees = platform_fees(q, market)
        *_, best = box_optimum(market, q)
        assert fees.profit >= best - 1e-9 * max(1.0, abs(best))
        assert close(fees.profit, best, 1e-9, scale=1.0)
        # The fees bring exactly the members found: each side's marginal member is indifferent.
        fee_s, fee_b = market.fees_for(q, fees.sellers, fees.buyers)
        assert (fee_s, fee_b) == (fees.seller_fee, fees.buyer_fee)


def test_service_level_raises_participation_and_profit():
    rng = random.Random(12)
    for _ in range(15):
        market = random_two_sided(rng)
        low, high = platform_fees(1, market), platform_fees(3, market)
        assert high.sellers >= low.sellers - 1e-6 * market.sellers
        assert high.buyers >= low.buyers - 1e-6 * market.buyers
        # Profit before the cost of the service level.
        gross = lambda f: f.profit + market.service_cost * f.q**2 / 2  # noqa: E731
        assert gross(high) >= gross(low) - 1e-9 * max(1.0, abs(gross(low)))


def test_the_side_that_attracts_the_other_pays_less():
    # Identical sides except that buyers value sellers more than sellers value buyers: sellers get the lower
    # fee (here a subsidy), the classic two-sided result.
    market = TwoSidedMarket(sellers=1_000, buyers=1_000, seller_spread=100, buyer_spread=100,
                            seller_network=0.01, buyer_network=0.15, seller_service=5, buyer_service=5)
    fees = platform_fees(4, market)
    assert fees.interior and fees.seller_fee < fees.buyer_fee and fees.seller_fee < 0


# --- numeric helpers ----------------------------------------------------------------------------------------


def test_numeric_helpers():
    x, fx = golden_section_max(lambda t: -(t - 0.3) ** 2, -5, 5)
    assert abs(x - 0.3) < 1e-7 and fx <= 0
    assert golden_section_max(lambda t: t, 0, 2) == (2.0, 2.0)  # monotone: the end point, exactly
    assert golden_section_max(lambda t: -t, 0, 2) == (0.0, -0.0)
    assert abs(bisect_root(lambda t: t**3 - 2, 0, 2) - 2 ** (1 / 3)) < 1e-12
    # Two peaks: the grid finds the higher one, golden section refines it.
    x, fx = grid_max(lambda t: max(1 - (t - 1) ** 2, 2 - 10 * (t - 4) ** 2), 0, 5)
    assert abs(x - 4) < 1e-7 and abs(fx - 2) < 1e-12
    with pytest.raises(InvalidInput, match="sign change"):
        bisect_root(lambda t: t * t + 1, -1, 1)
    with pytest.raises(InvalidInput):
        grid_max(lambda t: t, 0, 1, points=2)


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"N": 0}, "N .* must be positive"),
    ({"N": -1}, "N .* must be positive"),
    ({"delta": 0}, r"delta .* must be in \(0, 1\]"),
    ({"delta": "1.01"}, r"delta .* must be in \(0, 1\]"),
    ({"e": 0}, "e .* must be positive"),
    ({"D": 0}, "D .* must be positive"),
    ({"W": -0.5}, "W .* must be positive"),
    ({"c": -1}, "c .* must not be negative"),
    ({"N": True}, "must be a number"),
    ({"N": None}, "must be a number"),
    ({"e": float("nan")}, "must be finite"),
    ({"e": float("inf")}, "must be finite"),
    ({"e": Decimal("Infinity")}, "must be finite"),
    ({"W": "half"}, "is not a number"),
    ({"N": 20_000, "delta": 1}, "more than the low-carbon side's whole surplus"),
])
def test_platform_prices_rejects(change, message):
    with pytest.raises(InvalidInput, match=message):
        platform_prices(**{**HAND, **change})


@pytest.mark.parametrize("change, message", [
    ({"P": 0}, "P .* must be positive"),
    ({"k": -1}, "k .* must be positive"),
    ({"N": 0}, "N .* must be positive"),
    ({"e": "x"}, "is not a number"),
])
def test_optimal_offset_ratio_rejects(change, message):
    with pytest.raises(InvalidInput, match=message):
        optimal_offset_ratio(**{**dict(N=1_000, P=60, k=180_000, e=100, D=10_000, W="0.5"), **change})


def test_posted_prices_rejects():
    prices = platform_prices(**HAND)
    with pytest.raises(InvalidInput, match="takes a PlatformPrices"):
        posted_prices({"p_c": 25, "p_ph": 10})
    for decimals in (-1, 37, 2.0, True):
        with pytest.raises(InvalidInput, match="settlement_decimals"):
            posted_prices(prices, decimals)
    for tick in (0, -5, 1.5):
        with pytest.raises(InvalidInput, match="tick_size"):
            posted_prices(prices, 2, tick_size=tick)
    tiny = platform_prices(N=1, delta="0.001", e=1, D=1_000, W=1)  # P_ph = 10^-6
    with pytest.raises(InvalidInput, match="rounds to 0"):
        tiny.posted(2)
    assert tiny.posted(6).buy_back == 1


def test_two_sided_inputs_are_checked():
    good = dict(sellers=10, buyers=10, seller_spread=1, buyer_spread=1, seller_network=0, buyer_network=0)
    for name, value in [("sellers", 0), ("buyer_spread", -1), ("seller_network", -0.1), ("service_cost", -1),
                        ("buyers", float("nan"))]:
        with pytest.raises(InvalidInput, match=name):
            TwoSidedMarket(**{**good, name: value})
    with pytest.raises(InvalidInput, match="q .* must not be negative"):
        platform_fees(-1, TwoSidedMarket(**good))
    with pytest.raises(InvalidInput, match="TwoSidedMarket"):
        platform_fees(1, good)
    assert TwoSidedMarket(**{**good, "sellers": "12.5"}).sellers == 12.5
