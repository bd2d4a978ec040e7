"""What the simulated market's agents decide, from their costs and the market (docs/sandbox.md).

Pure functions and small dataclasses, no chain: the runner (``carbon_sdk.sandbox.runner``) turns the decisions
into transactions through the SDK, and the tests check them by hand.

- **Enterprises** have a baseline (growing each period) and a linear marginal abatement cost
  ``MAC(q) = a + b·q`` (currency per tonne, q tonnes abated, at most a share of the baseline). At price p an
  enterprise abates ``q(p) = clamp((p − a)/b, 0, q_max)`` and needs ``baseline − q(p) − holdings``
  allowances: its demand when positive, its supply when negative. In the call auction it submits that curve
  as limit orders on a price grid; the competitive price solves Σ demand = what the regulator auctions.
- **Individuals** (the seed paper's population): low-carbon users below the quota, with a perception
  coefficient θ ~ U(0, 1), join the credit market when θ ≤ P_ph/e and sell their surplus; high-carbon users
  above it owe δ per tonne of deficit and buy the credits. Both respond to the price with a quadratic cost
  ``k·r²/2`` of reducing r tonnes: a seller reduces until ``k·r = P_ph``, a debtor until ``k·r = δ·P_c``.
  Without an individual market nobody has a price to respond to (the paper's counterfactual).
- **The platform** prices with ``carbon_sdk.economics.platform_prices`` at the period's δ, from the
  deficits and surpluses after the users' responses (a fixed point, found by iteration).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from carbon_sdk.economics import PlatformPrices, platform_prices

GRAMS = 1_000_000  # grams per tonne (and PCC or allowance units per tonne)


# --- enterprises ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnterpriseAgent:
    name: str
    group: str
    region: int
    baseline_t: float  # period 1
    growth: float
    mac_intercept: float  # a, currency per tonne
    mac_slope: float  # b, currency per tonne per tonne abated
    max_abatement: float  # share of the baseline
    misreport: float  # share of its emissions it leaves out of its report

    def baseline(self, period: int) -> float:
        """Baseline emissions in period ``period`` (0-based), tonnes."""
        return self.baseline_t * (1 + self.growth) ** period

    def max_abated(self, period: int) -> float:
        return self.max_abatement * self.baseline(period)

    def abatement_at(self, price: float, period: int) -> float:
        """Tonnes it abates when allowances cost ``price``: while abating is cheaper than buying."""
        if price <= self.mac_intercept:
            return 0.0
        return min((price - self.mac_intercept) / self.mac_slope, self.max_abated(period))

    def final_abatement(self, period: int, price: float, holdings_t: float, penalty: float) -> float:
        """Tonnes it abates once trading is over: what pays at the market's price and, if it still holds too
        few allowances, more, as long as abating costs less than the shortfall penalty per tonne."""
        at_price = self.abatement_at(price, period)
        gap = self.baseline(period) - at_price - holdings_t
        if gap <= 0:
            return at_price
        return max(at_price, min(self.baseline(period) - holdings_t, self.abatement_at(penalty, period)))

    def abatement_cost(self, tonnes: float) -> float:
        return self.mac_intercept * tonnes + self.mac_slope * tonnes * tonnes / 2

    def net_demand(self, price: float, period: int, holdings_t: float) -> float:
        """Allowances it wants to buy at ``price`` (negative: it would sell that many)."""
        return self.baseline(period) - self.abatement_at(price, period) - holdings_t


def make_enterprises(groups: Sequence, rng: random.Random) -> list[EnterpriseAgent]:
    """Agents from the scenario's enterprise groups: baselines drawn uniformly in each group's range, cost
    parameters ±25 % around the group's, regions round-robin. ``groups`` are ``scenario.enterprises``."""
    agents = []
    for group in groups:
        low, high = group.emissions_t
        for i in range(group.count):
            agents.append(EnterpriseAgent(
                name=f"{group.name}-{i + 1:02d}", group=group.name, region=group.regions[i % len(group.regions)],
                baseline_t=rng.uniform(low, high), growth=group.growth,
                mac_intercept=group.abatement_intercept * rng.uniform(0.75, 1.25),
                mac_slope=group.abatement_slope * rng.uniform(0.75, 1.25),
                max_abatement=group.max_abatement, misreport=group.misreport))
    return agents


def equilibrium_price(agents: Sequence[EnterpriseAgent], period: int, holdings_t: dict[str, float],
                      supply_t: float, *, low: float = 0.0, high: float | None = None) -> float:
    """The price at which the enterprises' total net demand equals ``supply_t`` (what the regulator sells):
    demand falls as the price rises, so bisection finds it. ``low`` when even a free allowance finds too few
    buyers; ``high`` (the dearest MAC at full abatement) when abating everything still leaves a shortage."""
    if high is None:
        high = max(a.mac_intercept + a.mac_slope * a.max_abated(period) for a in agents) * 1.01 + 1

    def excess(p: float) -> float:
        return sum(a.net_demand(p, period, holdings_t.get(a.name, 0.0)) for a in agents) - supply_t

    if excess(low) <= 0:
        return low
    if excess(high) >= 0:
        return high
    for _ in range(200):
        mid = (low + high) / 2
        if excess(mid) > 0:
            low = mid
        else:
            high = mid
        if high - low < 1e-9:
            break
    return (low + high) / 2


def price_grid(agents: Sequence[EnterpriseAgent], period: int, levels: int, tick: float,
               ceiling: float | None = None) -> list[float]:
    """``levels`` prices on the tick grid from half the cheapest MAC intercept to the dearest MAC at full
    abatement (where the enterprises' curves change), but never above ``ceiling``: nobody pays more for an
    allowance than the penalty for lacking it."""
    lo = min(a.mac_intercept for a in agents) * 0.5
    hi = max(a.mac_intercept + a.mac_slope * a.max_abated(period) for a in agents)
    if ceiling is not None:
        hi = max(min(hi, ceiling), lo + tick)
    if levels == 1:
        prices = [(lo + hi) / 2]
    else:
        prices = [lo + (hi - lo) * j / (levels - 1) for j in range(levels)]
    return sorted({max(tick, round(p / tick) * tick) for p in prices})


@dataclass(frozen=True)
class Order:
    side: str  # "bid" or "ask"
    lots: int
    price: float  # currency per tonne, on the tick grid


def auction_orders(agent: EnterpriseAgent, period: int, holdings_t: float, grid: Sequence[float],
                   lot_t: float) -> list[Order]:
    """The agent's demand or supply curve as limit orders on ``grid`` (ascending), in whole lots.

    Demand D(p) = max(net demand, 0) falls with p: a bid at p_j for D(p_j) − D(p_j+1) lots means "these lots up
    to p_j". Supply S(p) = max(−net demand, 0) rises with p: an ask at p_j for S(p_j) − S(p_j−1) lots."""
    def lots(tonnes: float) -> int:
        return max(0, math.floor(tonnes / lot_t + 1e-9))

    demand = [lots(agent.net_demand(p, period, holdings_t)) for p in grid]
    supply = [lots(-agent.net_demand(p, period, holdings_t)) for p in grid]
    orders = []
    for j, p in enumerate(grid):
        bid = demand[j] - (demand[j + 1] if j + 1 < len(grid) else 0)
        ask = supply[j] - (supply[j - 1] if j > 0 else 0)
        if bid > 0:
            orders.append(Order("bid", bid, p))
        if ask > 0:
            orders.append(Order("ask", ask, p))
    return orders


# --- individuals ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    index: int
    group: str  # "low_carbon" or "high_carbon"
    baseline_t: float  # emissions without any market
    theta: float  # perception coefficient θ ~ U(0, 1): values a kept tonne at θ·e


@dataclass(frozen=True)
class PersonalOutcome:
    """One individual's period: emissions, credits and what it trades on the platform's desk."""

    person: Person
    emissions_t: float  # after its response to the prices (the baseline without a market)
    credits_t: float  # surplus quota: quota − emissions when positive
    deficit_t: float  # emissions − quota when positive
    sells: bool  # joins the market and sells its credits to the platform
    owes_t: float  # credits owed for its deficit: δ · deficit


@dataclass(frozen=True)
class PersonalMarket:
    """The individuals' period: the platform's prices, everyone's outcome, and the model's inputs."""

    prices: PlatformPrices | None  # None without an individual market
    outcomes: tuple[PersonalOutcome, ...]
    delta: Fraction
    N_t: float  # total deficit after responses, tonnes
    D: int  # low-carbon users
    W_t: float  # their average surplus, tonnes
    iterations: int


def make_people(count: int, low_share: float, low_range: tuple[float, float], high_range: tuple[float, float],
                rng: random.Random) -> list[Person]:
    """``count`` individuals: the first ``round(count·low_share)`` low-carbon, the rest high-carbon, each with
    a baseline drawn uniformly in its group's range and θ ~ U(0, 1)."""
    lows = round(count * low_share)
    people = []
    for i in range(count):
        group, (lo, hi) = ("low_carbon", low_range) if i < lows else ("high_carbon", high_range)
        people.append(Person(i, group, rng.uniform(lo, hi), rng.random()))
    return people


def personal_market(people: Sequence[Person], *, quota_t: float, delta: float | Fraction, e: float, c: float,
                    k: float, trading: bool, max_iterations: int = 100) -> PersonalMarket:
    """Every individual's response and the platform's prices, as a fixed point.

    Given prices, a seller (θ ≤ P_ph/e) reduces ``min(P_ph/k, half its emissions)`` more and sells its whole
    surplus; a debtor reduces ``min(δ·P_c/k, its deficit)``. Given the responses, the platform prices at
    N = Σ deficits, D = low-carbon users, W = their mean surplus. Iterates until the prices stop moving."""
    delta_q = Fraction(str(delta)) if not isinstance(delta, Fraction) else delta
    lows = [p for p in people if p.baseline_t < quota_t]

    def outcomes_at(p_ph: float, p_c: float) -> list[PersonalOutcome]:
        out = []
        for person in people:
            b = person.baseline_t
            if not trading:
                emissions, sells = b, False
            elif b < quota_t:
                sells = person.theta <= p_ph / e
                emissions = b - min(p_ph / k, b / 2) if sells else b
            else:
                sells = False
                emissions = b - min(float(delta_q) * p_c / k, b - quota_t)
            credits = max(quota_t - emissions, 0.0)
            deficit = max(emissions - quota_t, 0.0)
            out.append(PersonalOutcome(person, emissions, credits, deficit, sells and credits > 0,
                                       float(delta_q) * deficit))
        return out

    def inputs(outs: list[PersonalOutcome]) -> tuple[float, int, float]:
        n = sum(o.deficit_t for o in outs)
        low_outs = [o for o in outs if o.person.baseline_t < quota_t]
        w = sum(o.credits_t for o in low_outs) / len(low_outs) if low_outs else 0.0
        return n, len(low_outs), w

    if not trading or not lows or all(p.baseline_t <= quota_t for p in people):
        outs = outcomes_at(0.0, 0.0)
        n, d, w = inputs(outs)
        return PersonalMarket(None, tuple(outs), delta_q, n, d, w, 0)
    p_ph = p_c = 0.0
    prices = None
    outs = outcomes_at(p_ph, p_c)
    for iteration in range(1, max_iterations + 1):
        n, d, w = inputs(outs)
        if n <= 0 or w <= 0:
            break
        # The model needs δN ≤ DW; a market short of surplus is priced where every low-carbon user sells.
        demand = float(delta_q) * n
        supply = d * w
        prices = platform_prices(_exact(n), delta_q, e, d, _exact(w), c) if demand <= supply else \
            platform_prices(_exact(supply / float(delta_q)), delta_q, e, d, _exact(w), c)
        new_ph, new_c = float(prices.p_ph), float(prices.p_c)
        converged = abs(new_ph - p_ph) < 1e-9 and abs(new_c - p_c) < 1e-9
        # Damped: the responses and the prices chase each other; halving the step makes it settle.
        p_ph, p_c = (new_ph, new_c) if iteration == 1 else ((p_ph + new_ph) / 2, (p_c + new_c) / 2)
        outs = outcomes_at(p_ph, p_c)
        if converged:
            break
    n, d, w = inputs(outs)
    return PersonalMarket(prices, tuple(outs), delta_q, n, d, w, iteration)


def _exact(x: float) -> Fraction:
    """A float quantity as an exact decimal of at most 6 places (grams), for the exact economics."""
    return Fraction(round(x * GRAMS), GRAMS)
