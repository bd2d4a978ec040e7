"""The pricing model written again from the agents' decisions, in floats, for the tests to optimise
numerically.

Nothing here uses the SDK's closed forms: each function is one agent's rule (a low-carbon user sells when
θ·e ≤ P_ph, the platform keeps what it sells minus what it pays and its unit cost), so that comparing the
numerical optima of these functions with carbon_sdk.economics checks the derivations in docs/economics.md.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from carbon_sdk.economics import TwoSidedMarket, bisect_root, golden_section_max


@dataclass(frozen=True)
class Market:
    N: float  # high-carbon deficit, tonnes
    delta: float  # offset ratio
    e: float  # highest reservation value, currency per tonne
    D: float  # low-carbon users
    W: float  # surplus per low-carbon user, tonnes
    c: float  # platform's unit cost

    @property
    def surplus(self) -> float:
        return self.D * self.W


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def random_market(rng: random.Random) -> Market:
    """Parameters over several orders of magnitude, with δN ≤ DW (the market can clear)."""
    N = log_uniform(rng, 1, 1e6)
    D = log_uniform(rng, 10, 1e7)
    W = log_uniform(rng, 0.01, 5)
    cap = min(1.0, D * W / N)
    delta = rng.uniform(0.01, 1.0) * cap
    return Market(N=round(N, 3), delta=delta, e=rng.uniform(1, 500), D=round(D), W=round(W, 4),
                  c=rng.uniform(0, 50))


# --- agents' rules ------------------------------------------------------------------------------------------


def supply(m: Market, p_ph: float) -> float:
    """Tonnes sold at buy-back price p_ph: every user with θ·e ≤ p_ph sells his W tonnes."""
    return min(max(p_ph, 0.0) / m.e, 1.0) * m.surplus


def profit(m: Market, p_ph: float, p_c: float) -> float:
    return (p_c - p_ph - m.c) * supply(m, p_ph)


def best_buyback(m: Market, p_c: float) -> float:
    """The buy-back price that maximises the platform's profit at sale price p_c, found numerically."""
    x, _ = golden_section_max(lambda p: profit(m, p, p_c), 0.0, max(p_c - m.c, 0.0), tol=1e-14)
    return x


def clearing_sale_price(m: Market) -> float:
    """The sale price at which the platform's profit-maximising purchases cover δN, by bisection."""
    demand = m.delta * m.N
    return bisect_root(lambda p_c: supply(m, best_buyback(m, p_c)) - demand, m.c, m.c + 2 * m.e + 1.0,
                       tol=1e-14)


def agents_surplus(m: Market, p_ph: float, agents: int = 200_000) -> tuple[float, float]:
    """(tonnes sold, sellers' surplus) summed over ``agents`` users placed at the quantiles of U(0, 1), scaled
    to D users: an agent-level count that converges to the integral as agents grows."""
    weight = m.D / agents
    sold = surplus = 0.0
    for i in range(agents):
        theta = (i + 0.5) / agents
        if theta * m.e <= p_ph:
            sold += m.W
            surplus += (p_ph - theta * m.e) * m.W
    return sold * weight, surplus * weight


def welfare(m: Market, delta: float, P: float, k: float) -> float:
    """SW(δ) from its parts: the platform's profit and the sellers' surplus at δ, plus P·δN − kδ²/2.

    The equilibrium at δ is P_ph = δNe/(DW), P_c = 2P_ph + c (checked separately against the numerical
    clearing price); the parts are summed from the agents' rules, not from the closed form of SW.
    """
    p_ph = delta * m.N * m.e / m.surplus
    p_c = 2 * p_ph + m.c
    share = min(p_ph / m.e, 1.0)
    sellers_surplus = m.surplus * (p_ph * share - m.e * share * share / 2)
    return profit(m, p_ph, p_c) + sellers_surplus + P * delta * m.N - k * delta * delta / 2


# --- two-sided fees -----------------------------------------------------------------------------------------


def random_two_sided(rng: random.Random, *, strong_network: bool = False) -> TwoSidedMarket:
    sellers, buyers = log_uniform(rng, 50, 1e5), log_uniform(rng, 20, 1e5)
    spread_s, spread_b = rng.uniform(1, 200), rng.uniform(1, 200)
    # The joint concavity bound: 4·t_s·t_b/(S·B) > (α_s + α_b)².
    bound = 2 * math.sqrt(spread_s * spread_b / (sellers * buyers))
    scale = rng.uniform(1.2, 4.0) if strong_network else rng.uniform(0.0, 0.9)
    share = rng.uniform(0.1, 0.9)
    return TwoSidedMarket(
        sellers=sellers, buyers=buyers, seller_spread=spread_s, buyer_spread=spread_b,
        seller_network=share * scale * bound, buyer_network=(1 - share) * scale * bound,
        seller_service=rng.uniform(0, 20), buyer_service=rng.uniform(0, 20),
        seller_cost=rng.uniform(0, 10), buyer_cost=rng.uniform(0, 10), service_cost=rng.uniform(0, 5))


def interior_optimum(m: TwoSidedMarket, q: float) -> tuple[float, float] | None:
    """The closed-form stationary point (n_s, n_b) of the platform's profit, when profit is jointly concave:
    [2t_s/S, −(α_s+α_b); −(α_s+α_b), 2t_b/B]·n = [b_s·q − c_s, b_b·q − c_b]."""
    a, d = 2 * m.seller_spread / m.sellers, 2 * m.buyer_spread / m.buyers
    b = m.seller_network + m.buyer_network
    det = a * d - b * b
    if det <= 0:
        return None
    r1, r2 = m.seller_service * q - m.seller_cost, m.buyer_service * q - m.buyer_cost
    return (d * r1 + b * r2) / det, (b * r1 + a * r2) / det


def box_optimum(m: TwoSidedMarket, q: float) -> tuple[float, float, float]:
    """The exact maximum of the (quadratic) profit over [0, S] × [0, B]: the best of the interior stationary
    point, each edge's own stationary point and the four corners."""
    candidates = [(0.0, 0.0), (m.sellers, 0.0), (0.0, m.buyers), (m.sellers, m.buyers)]
    inner = interior_optimum(m, q)
    if inner is not None and 0 <= inner[0] <= m.sellers and 0 <= inner[1] <= m.buyers:
        candidates.append(inner)
    a, d = 2 * m.seller_spread / m.sellers, 2 * m.buyer_spread / m.buyers
    b = m.seller_network + m.buyer_network
    r1, r2 = m.seller_service * q - m.seller_cost, m.buyer_service * q - m.buyer_cost
    for n_b in (0.0, m.buyers):  # ∂π/∂n_s = r1 + b·n_b − a·n_s = 0
        candidates.append((min(max((r1 + b * n_b) / a, 0.0), m.sellers), n_b))
    for n_s in (0.0, m.sellers):
        candidates.append((n_s, min(max((r2 + b * n_s) / d, 0.0), m.buyers)))
    best = max(candidates, key=lambda n: m.profit(q, *n))
    return best[0], best[1], m.profit(q, *best)
