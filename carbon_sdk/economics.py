"""The platform's pricing model for personal carbon credits (DESIGN 2.4; docs/economics.md).

    prices = platform_prices(N=1_000, delta="0.5", e=100, D=10_000, W="0.5", c=5)
    prices.p_ph, prices.p_c                  # Fraction(10), Fraction(25): currency per tonne
    prices.posted(settlement_decimals=2)     # PostedPrices(buy_back=1000, sale=2500, ...)

    ratio = optimal_offset_ratio(N=1_000, P=60, k=180_000, e=100, D=10_000, W="0.5")
    ratio.delta, ratio.delta_bps             # Fraction(1, 2), 5000 (for credits.set_offset_ratio)

    fees = platform_fees(q=1, market=TwoSidedMarket(...))   # two-sided fees, by numerical optimisation

Seed paper: Wang, D.; Zhao, D.; Chen, F.; Tang, X. "Research on Energy Trading Mechanism Based on Individual
Level Carbon Quota". Sustainability 2024, 16(13), 5810, https://doi.org/10.3390/su16135810. Only its abstract
could be read; the model below is rebuilt from the formulas DESIGN 2.4 quotes from it (D_all = (P_ph/e)·D·W,
P_ph* = (P_c − c)/2, P_c = 2Nδe/(DW) + c), and every assumption that fills a gap is stated in
docs/economics.md. The two-sided fees follow Armstrong, M. (2006) "Competition in two-sided markets", RAND
Journal of Economics 37(3), 668-691, section 3 (monopoly platform).

Units: quantities in tonnes of CO2e, prices in currency per tonne. ``N`` is the high-carbon side's deficit in
tonnes (the paper's N high-carbon users, each with a deficit of one tonne), ``δ`` the offset ratio (a deficit
of d tonnes owes δ·d credits, as in CreditManager), ``D`` the number of low-carbon users, ``W`` each one's
surplus in tonnes, ``e`` the highest value (currency per tonne) a low-carbon user puts on keeping his surplus:
the user with perception coefficient θ ~ U(0, 1) values it at θ·e. ``e`` must be a price for θ ≤ P_ph/e to
compare like with like.

The closed forms are computed exactly (``fractions.Fraction``; a float argument means its shortest decimal,
so ``0.3`` is 3/10), because posted prices become integers on chain and a float's last bit must not move
them by one settlement unit. The fee model is solved numerically, in floats.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Callable, Union

from carbon_sdk.errors import InvalidInput

Number = Union[int, float, Decimal, Fraction, str]

BPS = 10_000
INVPHI = (math.sqrt(5) - 1) / 2  # 1/φ, the golden-section step


# --- results ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostedPrices:
    """The platform's posted prices in integer settlement units per tonne (what goes on chain).

    ``buy_back`` is rounded down and ``sale`` up, each to a multiple of ``tick_size``: the posted spread is
    never narrower than the model's, so rounding never turns a trade into a loss for the platform, and each
    price is within one tick of the model's.
    """

    buy_back: int  # paid to low-carbon users per tonne of surplus (the model's P_ph)
    sale: int  # charged to high-carbon users per tonne of credits (the model's P_c)
    settlement_decimals: int
    tick_size: int


@dataclass(frozen=True)
class PlatformPrices:
    """The platform's equilibrium for one offset ratio and one period (exact rationals).

    Prices are in currency per tonne, quantities in tonnes, profit and surplus in currency.
    """

    p_c: Fraction  # sale price to high-carbon users, 2δNe/(DW) + c
    p_ph: Fraction  # buy-back price to low-carbon users, (P_c − c)/2 = δNe/(DW)
    d_all: Fraction  # surplus bought = credits sold = δN (the market clears)
    profit: Fraction  # π = (P_c − P_ph − c)·D_all
    user_surplus: Fraction  # U: the low-carbon sellers' surplus, DW·P_ph²/(2e)
    welfare: Fraction  # π + U
    participation: Fraction  # share of low-carbon users who sell, P_ph/e
    buyer_cost: Fraction  # what the high-carbon side pays, P_c·δN

    def posted(self, settlement_decimals: int = 2, *, tick_size: int = 1) -> PostedPrices:
        """These prices as integer settlement units per tonne; see :func:`posted_prices`."""
        return posted_prices(self, settlement_decimals, tick_size=tick_size)


@dataclass(frozen=True)
class OffsetRatio:
    """The regulator's offset ratio δ* (Proposition 2 as rebuilt in docs/economics.md) and its conditions.

    Welfare SW(δ) = π + U + P·δN − k·δ²/2 = P·N·δ − κ·δ²/2 with κ = k − 3eN²/(DW), on 0 < δ ≤ δ_max =
    min(1, DW/N) (the low-carbon side's whole surplus caps what can be offset).
    """

    delta: Fraction  # δ*
    unconstrained: Fraction | None  # P·N/κ, the stationary point, when SW is concave (κ > 0)
    curvature: Fraction  # κ = k − 3eN²/(DW)
    concave: bool  # condition 1: κ > 0, so SW has one interior stationary point, a maximum
    interior: bool  # condition 2: concave and P·N/κ ≤ δ_max, so δ* = P·N/κ
    bound: str  # "interior", "ratio" (δ* = 1) or "surplus" (δ* = DW/N: every low-carbon user sells)
    welfare: Fraction  # SW(δ*)

    @property
    def delta_bps(self) -> int:
        """δ* in basis points for ``credits.set_offset_ratio``: rounded down, so never above δ*, but at least 1
        (a zero ratio would switch offsetting off)."""
        return max(1, math.floor(self.delta * BPS))


@dataclass(frozen=True)
class TwoSidedMarket:
    """The two-sided fee model's parameters (docs/economics.md section 6; Armstrong 2006, section 3).

    Members pay a fee per period. A low-carbon user (seller) of type θ ~ U(0, 1) joins when
    ``seller_service·q + seller_network·n_buyers − fee_seller ≥ θ·seller_spread``; a high-carbon user (buyer)
    likewise with his own coefficients. ``seller_spread`` is the most reluctant seller's cost of joining, for
    instance e·W, the value he puts on keeping his whole surplus.
    """

    sellers: float  # low-carbon users who could join (D)
    buyers: float  # high-carbon users who could join
    seller_spread: float  # t_s > 0: joining cost of the most reluctant seller
    buyer_spread: float  # t_b > 0
    seller_network: float  # α_s ≥ 0: a seller's benefit per buyer on the platform (liquidity)
    buyer_network: float  # α_b ≥ 0: a buyer's benefit per seller on the platform
    seller_service: float = 1.0  # b_s ≥ 0: a seller's benefit per unit of service level
    buyer_service: float = 1.0  # b_b ≥ 0
    seller_cost: float = 0.0  # c_s ≥ 0: the platform's cost per seller served
    buyer_cost: float = 0.0  # c_b ≥ 0
    service_cost: float = 0.0  # s ≥ 0: a service level q costs the platform s·q²/2 per period

    def __post_init__(self) -> None:
        for name in ("sellers", "buyers", "seller_spread", "buyer_spread"):
            object.__setattr__(self, name, _real(getattr(self, name), name, positive=True))
        for name in ("seller_network", "buyer_network", "seller_service", "buyer_service", "seller_cost",
                     "buyer_cost", "service_cost"):
            object.__setattr__(self, name, _real(getattr(self, name), name, positive=False))

    def fees_for(self, q: float, sellers: float, buyers: float) -> tuple[float, float]:
        """The fees at which ``sellers`` and ``buyers`` members join (the marginal member is indifferent)."""
        fee_s = (self.seller_service * q + self.seller_network * buyers
                 - self.seller_spread * sellers / self.sellers)
        fee_b = (self.buyer_service * q + self.buyer_network * sellers
                 - self.buyer_spread * buyers / self.buyers)
        return fee_s, fee_b

    def profit(self, q: float, sellers: float, buyers: float) -> float:
        """The platform's profit when it sets the fees that bring ``sellers`` and ``buyers`` members."""
        fee_s, fee_b = self.fees_for(q, sellers, buyers)
        return ((fee_s - self.seller_cost) * sellers + (fee_b - self.buyer_cost) * buyers
                - self.service_cost * q * q / 2)


@dataclass(frozen=True)
class PlatformFees:
    """The platform's profit-maximising fees for one service level (floats, by numerical optimisation).

    Fees are per member and period, in currency; a negative fee is a subsidy (a two-sided platform may pay
    the side whose presence the other side values most).
    """

    q: float
    seller_fee: float
    buyer_fee: float
    sellers: float  # low-carbon members at these fees
    buyers: float  # high-carbon members
    profit: float
    seller_surplus: float
    buyer_surplus: float
    welfare: float  # profit + both surpluses
    interior: bool  # both sides join in part (0 < members < population): the first-order conditions hold


# --- validation ---------------------------------------------------------------------------------------------


def _exact(value: Number, what: str) -> Fraction:
    """A number as an exact rational; a float means its shortest decimal (0.3 is 3/10, not 0.2999...)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a number, got {value!r}")
    if isinstance(value, numbers.Rational):
        return Fraction(value.numerator, value.denominator)
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidInput(f"{what} {value!r} is not a number") from None
    elif isinstance(value, numbers.Real) and not isinstance(value, Decimal):
        value = float(value)
        if not math.isfinite(value):
            raise InvalidInput(f"{what} must be finite, got {value!r}")
        value = Decimal(repr(value))
    if not isinstance(value, Decimal):
        raise InvalidInput(f"{what} must be a number, got {value!r}")
    if not value.is_finite():
        raise InvalidInput(f"{what} must be finite, got {value!r}")
    return Fraction(value)


def _positive(value: Number, what: str) -> Fraction:
    exact = _exact(value, what)
    if exact <= 0:
        raise InvalidInput(f"{what} must be positive, got {value!r}")
    return exact


def _non_negative(value: Number, what: str) -> Fraction:
    exact = _exact(value, what)
    if exact < 0:
        raise InvalidInput(f"{what} must not be negative, got {value!r}")
    return exact


def _ratio(value: Number, what: str) -> Fraction:
    exact = _exact(value, what)
    if not 0 < exact <= 1:
        raise InvalidInput(f"{what} must be in (0, 1], got {value!r}")
    return exact


def _real(value: Number, what: str, *, positive: bool) -> float:
    number = float(_exact(value, what))
    if positive and number <= 0:
        raise InvalidInput(f"{what} must be positive, got {value!r}")
    if not positive and number < 0:
        raise InvalidInput(f"{what} must not be negative, got {value!r}")
    return number


def _market(N: Number, e: Number, D: Number, W: Number) -> tuple[Fraction, Fraction, Fraction]:
    n = _positive(N, "N (the high-carbon side's deficit, tonnes)")
    e_ = _positive(e, "e (the highest value a low-carbon user puts on a tonne of surplus)")
    supply = (_positive(D, "D (the number of low-carbon users)")
              * _positive(W, "W (each low-carbon user's surplus, tonnes)"))
    return n, e_, supply


# --- the model's building blocks (any prices, not only the optimum) -----------------------------------------


def surplus_supply(p_ph: Number, e: Number, D: Number, W: Number) -> Fraction:
    """D_all(P_ph): the surplus low-carbon users sell at buy-back price P_ph.

    A user with perception θ ~ U(0, 1) sells his W tonnes when θ·e ≤ P_ph, so a share min(P_ph/e, 1) sells
    (DESIGN's (P_ph/e)·D·W, which holds up to P_ph = e, where every user sells).
    """
    price = _non_negative(p_ph, "P_ph")
    e_ = _positive(e, "e")
    return min(price / e_, Fraction(1)) * _positive(D, "D") * _positive(W, "W")


def platform_profit(p_ph: Number, p_c: Number, e: Number, D: Number, W: Number, c: Number) -> Fraction:
    """π(P_ph) = (P_c − P_ph − c)·D_all(P_ph): the platform sells all it buys, at P_c, with unit cost c."""
    return ((_exact(p_c, "P_c") - _non_negative(p_ph, "P_ph") - _non_negative(c, "c"))
            * surplus_supply(p_ph, e, D, W))


def user_surplus(p_ph: Number, e: Number, D: Number, W: Number) -> Fraction:
    """U(P_ph) = ∫ (P_ph − θe)·D·W dθ over the users who sell (θ ≤ min(P_ph/e, 1))."""
    price = _non_negative(p_ph, "P_ph")
    e_ = _positive(e, "e")
    share = min(price / e_, Fraction(1))
    return _positive(D, "D") * _positive(W, "W") * (price * share - e_ * share * share / 2)


def regulator_welfare(delta: Number, N: Number, P: Number, k: Number, e: Number, D: Number,
                      W: Number) -> Fraction:
    """SW(δ) = π + U + P·δN − k·δ²/2 at the platform's equilibrium for offset ratio δ.

    P values each tonne of deficit the offset ratio covers (a carbon price); k·δ²/2 is the convex cost of
    enforcing ratio δ. π + U does not depend on c: the sale price passes the unit cost on in full.
    """
    n, e_, supply = _market(N, e, D, W)
    d = _ratio(delta, "delta (the offset ratio)")
    p = _positive(P, "P (the value of a tonne offset)")
    k_ = _positive(k, "k (the cost coefficient of the offset ratio)")
    if d * n > supply:
        raise InvalidInput(f"offset ratio {delta} asks for {float(d * n):g} t, more than the low-carbon "
                           f"side's whole surplus D·W = {float(supply):g} t")
    return 3 * e_ * (d * n) ** 2 / (2 * supply) + p * n * d - k_ * d * d / 2


# --- the closed forms ---------------------------------------------------------------------------------------


def platform_prices(N: Number, delta: Number, e: Number, D: Number, W: Number,
                    c: Number = 0) -> PlatformPrices:
    """The platform's prices for offset ratio δ: P_ph* = (P_c − c)/2 and P_c = 2δNe/(DW) + c.

    The platform maximises π over P_ph for a given sale price (P_ph* = (P_c − c)/2, the monopsony rule), and
    P_c is the price at which what it then buys, D_all(P_ph*), covers what the high-carbon side owes, δN.
    Needs δN ≤ D·W: no price buys more surplus than exists.
    """
    n, e_, supply = _market(N, e, D, W)
    d = _ratio(delta, "delta (the offset ratio)")
    cost = _non_negative(c, "c (the platform's cost per tonne)")
    demand = d * n
    if demand > supply:
        raise InvalidInput(f"the high-carbon side owes δN = {float(demand):g} t, more than the low-carbon "
                           f"side's whole surplus D·W = {float(supply):g} t: no buy-back price clears the "
                           "market")
    p_ph = demand * e_ / supply
    p_c = 2 * p_ph + cost
    profit = (p_c - p_ph - cost) * demand
    surplus = supply * p_ph * p_ph / (2 * e_)
    return PlatformPrices(p_c=p_c, p_ph=p_ph, d_all=demand, profit=profit, user_surplus=surplus,
                          welfare=profit + surplus, participation=p_ph / e_, buyer_cost=p_c * demand)


def optimal_offset_ratio(N: Number, P: Number, k: Number, e: Number, D: Number, W: Number) -> OffsetRatio:
    """The regulator's δ* maximising SW(δ) = P·N·δ − κ·δ²/2, κ = k − 3eN²/(DW), on (0, δ_max].

    Conditions (Proposition 2 as rebuilt): if κ > 0 (SW concave) and P·N/κ ≤ δ_max = min(1, DW/N), then
    δ* = P·N/κ; if κ > 0 and P·N/κ > δ_max, or κ ≤ 0 (SW rising everywhere, since SW'(δ) = P·N − κδ > 0),
    then δ* = δ_max.
    """
    n, e_, supply = _market(N, e, D, W)
    p = _positive(P, "P (the value of a tonne offset)")
    k_ = _positive(k, "k (the cost coefficient of the offset ratio)")
    kappa = k_ - 3 * e_ * n * n / supply
    cap = min(Fraction(1), supply / n)
    concave = kappa > 0
    unconstrained = p * n / kappa if concave else None
    interior = unconstrained is not None and unconstrained <= cap
    delta = unconstrained if interior else cap
    if interior:
        bound = "interior"
    else:
        bound = "ratio" if cap == 1 else "surplus"
    return OffsetRatio(delta=delta, unconstrained=unconstrained, curvature=kappa, concave=concave,
                       interior=interior, bound=bound, welfare=p * n * delta - kappa * delta * delta / 2)


def posted_prices(result: PlatformPrices, settlement_decimals: int = 2, *,
                  tick_size: int = 1) -> PostedPrices:
    """The model's prices as integer settlement units per tonne: buy-back rounded down, sale rounded up.

    ``settlement_decimals`` is the settlement token's decimals (``client.settlement.decimals()``). With
    ``tick_size``, the exchange market's settlement units per tonne per tick, both prices are whole ticks,
    ready for ``market.tick(price)``. A buy-back price that rounds to zero is refused: posting it would buy
    nothing.
    """
    if not isinstance(result, PlatformPrices):
        raise InvalidInput("posted_prices takes a PlatformPrices (from platform_prices), "
                           f"got {type(result).__name__}")
    if not isinstance(settlement_decimals, int) or isinstance(settlement_decimals, bool) \
            or not 0 <= settlement_decimals <= 36:
        raise InvalidInput(f"settlement_decimals must be an integer from 0 to 36, "
                           f"got {settlement_decimals!r}")
    if not isinstance(tick_size, int) or isinstance(tick_size, bool) or tick_size <= 0:
        raise InvalidInput(f"tick_size must be a positive integer, got {tick_size!r}")
    scale = 10**settlement_decimals
    buy_back = math.floor(result.p_ph * scale / tick_size) * tick_size
    sale = math.ceil(result.p_c * scale / tick_size) * tick_size
    if buy_back <= 0:
        raise InvalidInput(f"the buy-back price {float(result.p_ph):g} per tonne rounds to 0 at "
                           f"{settlement_decimals} decimals and tick size {tick_size}")
    return PostedPrices(buy_back=buy_back, sale=sale, settlement_decimals=settlement_decimals,
                        tick_size=tick_size)


# --- two-sided fees (numerical) -----------------------------------------------------------------------------


def platform_fees(q: Number, market: TwoSidedMarket) -> PlatformFees:
    """The fees that maximise the platform's profit at service level q, found numerically.

    The platform chooses how many members of each side to bring (n_s, n_b) in [0, sellers] × [0, buyers] and
    charges the fees at which exactly those join (:meth:`TwoSidedMarket.fees_for`); profit is concave in n_b
    for fixed n_s, so the inner maximum is a golden-section search, and the outer one a grid with golden
    refinement, which also finds corner optima when strong network effects make profit non-concave.
    """
    if not isinstance(market, TwoSidedMarket):
        raise InvalidInput(f"market must be a TwoSidedMarket, got {type(market).__name__}")
    level = _real(q, "q (the service level)", positive=False)

    def best_buyers(sellers: float) -> tuple[float, float]:
        return golden_section_max(lambda b: market.profit(level, sellers, b), 0.0, market.buyers)

    sellers, _ = grid_max(lambda s: best_buyers(s)[1], 0.0, market.sellers)
    buyers, profit = best_buyers(sellers)
    fee_s, fee_b = market.fees_for(level, sellers, buyers)
    seller_surplus = market.seller_spread * sellers * sellers / (2 * market.sellers)
    buyer_surplus = market.buyer_spread * buyers * buyers / (2 * market.buyers)
    tol = 1e-9
    interior = (tol * market.sellers < sellers < (1 - tol) * market.sellers
                and tol * market.buyers < buyers < (1 - tol) * market.buyers)
    return PlatformFees(q=level, seller_fee=fee_s, buyer_fee=fee_b, sellers=sellers, buyers=buyers,
                        profit=profit, seller_surplus=seller_surplus, buyer_surplus=buyer_surplus,
                        welfare=profit + seller_surplus + buyer_surplus, interior=interior)


# --- numeric helpers (pure Python; no SciPy) ----------------------------------------------------------------


def golden_section_max(f: Callable[[float], float], lo: float, hi: float, *, tol: float = 1e-12,
                       max_iter: int = 300) -> tuple[float, float]:
    """(x, f(x)) maximising a unimodal f on [lo, hi]; the end points are compared too, so a monotone f
    gives its better end exactly."""
    if not hi >= lo:
        raise InvalidInput(f"golden_section_max needs lo ≤ hi, got [{lo}, {hi}]")
    a, b = float(lo), float(hi)
    width = tol * max(1.0, abs(a), abs(b))
    x1, x2 = b - INVPHI * (b - a), a + INVPHI * (b - a)
    f1, f2 = f(x1), f(x2)
    for _ in range(max_iter):
        if b - a <= width:
            break
        if f1 >= f2:
            b, x2, f2 = x2, x1, f1
            x1 = b - INVPHI * (b - a)
            f1 = f(x1)
        else:
            a, x1, f1 = x1, x2, f2
            x2 = a + INVPHI * (b - a)
            f2 = f(x2)
    mid = (a + b) / 2
    candidates = [(f(mid), mid), (f(float(lo)), float(lo)), (f(float(hi)), float(hi))]
    best_f, best_x = max(candidates)
    return best_x, best_f


def grid_max(f: Callable[[float], float], lo: float, hi: float, *, points: int = 201,
             tol: float = 1e-12) -> tuple[float, float]:
    """(x, f(x)) maximising f on [lo, hi]: the best of ``points`` grid points, refined by golden section
    between its neighbours (for functions that are unimodal only piecewise)."""
    if points < 3:
        raise InvalidInput(f"grid_max needs at least 3 points, got {points}")
    lo, hi = float(lo), float(hi)
    xs = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
    values = [f(x) for x in xs]
    i = max(range(points), key=values.__getitem__)
    x, fx = golden_section_max(f, xs[max(i - 1, 0)], xs[min(i + 1, points - 1)], tol=tol)
    return (x, fx) if fx >= values[i] else (xs[i], values[i])


def bisect_root(f: Callable[[float], float], lo: float, hi: float, *, tol: float = 1e-13,
                max_iter: int = 400) -> float:
    """A root of a continuous f with f(lo), f(hi) of opposite signs (or zero), by bisection."""
    a, b = float(lo), float(hi)
    fa, fb = f(a), f(b)
    if fa == 0:
        return a
    if fb == 0:
        return b
    if (fa > 0) == (fb > 0):
        raise InvalidInput(f"bisect_root needs a sign change on [{lo}, {hi}], got f = {fa}, {fb}")
    for _ in range(max_iter):
        mid = (a + b) / 2
        fm = f(mid)
        if fm == 0 or b - a <= tol * max(1.0, abs(a), abs(b)):
            return mid
        if (fm > 0) == (fa > 0):
            a, fa = mid, fm
        else:
            b = mid
    return (a + b) / 2
