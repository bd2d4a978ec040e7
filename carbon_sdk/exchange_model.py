"""A plain-Python reference model of the exchange's rules (docs/exchange.md, DESIGN 2.5).

Tests drive this model and ``CarbonExchange.sol`` with the same operations and compare what they emit,
event by event (trades, placements, cancellations, claims, taker settlements), the orders' records and the
free balances. So the model keeps the contract's own bookkeeping, written for clarity rather than speed::

    spec = MarketSpec(lot_size=10**6, tick_size=2, buyer_fee_bps=25, seller_fee_bps=15, margin_bps=50,
                      pricing="midpoint", operator="platform", market=1)
    model = ExchangeModel(spec)
    model.deposit("alice", "settlement", 10**6)
    model.open_session()
    bid = model.place("alice", "bid", lots=5, tick=105)   # the contract's packed order id
    ...
    model.end_call()                                     # the call deadline passed
    while not model.clear(max_steps=10):
        pass
    model.claim([bid])
    assert model.invariants() == []

What the model mirrors exactly, because the results depend on it:

- **Order ids** pack ``market << 120 | session << 88 | side << 80 | tick << 64 | index``; the index counts the
  orders *stored* at that (session, side, tick), FIFO. An order that never rests (filled at once, a market
  order, or one that ran out of ``max_fills`` while the book may still cross it) gets no id:
  :meth:`ExchangeModel.place` returns 0, and so do the taker's side of its trades (``Fill.bid_order`` or
  ``ask_order``), as in the contract's events.
- **The book**: per (session, side) the set of ticks that hold orders, and per tick a FIFO with a head. A fill
  that closes an order moves its level's head past it at once, and retires the tick at once (free of budget)
  if that empties its FIFO; cancelled orders (by their owner or by self-trade prevention) stay in their FIFO
  until a walk (clearing or a taker) skips them, and a tick whose FIFO holds only such orders leaves the set
  when a walk finds it exhausted. Each skipped order and each tick a walk retires costs one unit of the walk's
  budget (``max_steps``, ``max_fills``), exactly like a matched pair or a fill, so a call runs out at the same
  point as on chain.
- **Settlement per order**: an order's fills are recorded in it (``filled_lots``, ``value``; UNIFORM auction
  lots are priced when clearing is done); its fee is charged once, on its total value, rounded down, when it is
  settled. A resting order is settled when it closes: by the taker that completes it, at once when a self-trade
  cancels it in continuous trading, otherwise by a claim.

Integers only: prices are in ticks, auction midpoints in half-ticks (``price2``); ``lot_size * tick_size`` is a
multiple of ``2 * 10**6``, so every value is exact. A rejected operation raises a :class:`ModelError` subclass
whose ``contract_name`` and ``arguments`` are the contract's custom error and its arguments, and changes
nothing; malformed arguments (a float, an unknown side, a tick above 65,535) raise
:class:`~carbon_sdk.errors.InvalidInput`, as the contract's ABI could not even encode them.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import InitVar, dataclass, field
from typing import Any, Hashable, Iterable, Iterator, Sequence

from carbon_sdk.errors import CarbonError, InvalidInput
from carbon_sdk.types import CancelReason, OrderKind, Pricing, Role, SessionPhase, Side, pack_order_id

UNITS_PER_TONNE = 10**6
BPS = 10_000
MAX_FEE_BPS = 1_000
MAX_MARGIN_BPS = 10_000
MAX_BATCH = 100  # orders per placeOrders, ids per claim
MAX_TICK = 2**16 - 1
MAX_LOTS = 2**32 - 1
NO_LIMIT = 2**256 - 1  # max_fills / max_steps without a bound
ASSET = "asset"
SETTLEMENT = "settlement"
TOKENS = (ASSET, SETTLEMENT)

Phase = SessionPhase  # the contract's session phases (the enums are shared with carbon_sdk.exchange)
order_id = pack_order_id


# --- errors: the contract's custom errors, by name and arguments ---------------------------------------------


class ModelError(CarbonError):
    """The contract would revert; the model changed nothing.

    ``contract_name`` is the custom error ``CarbonExchange`` raises for the same refusal and ``arguments`` its
    arguments, named as in the ABI (accounts are the model's account keys, tokens ``"asset"``/``"settlement"``).
    """

    contract_name = ""

    def __init__(self, **arguments: Any):
        self.arguments = arguments
        rendered = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        super().__init__(f"{type(self).__name__}({rendered})")


class WrongPhase(ModelError):
    """The operation is not allowed in the session's current phase (or no session is open)."""

    contract_name = "ExchangeWrongPhase"


class SessionOpen(WrongPhase):
    """A new session opens only after the previous one closed."""

    contract_name = "ExchangeSessionOpen"


class MarketOrderInCall(WrongPhase):
    """Market orders exist only in continuous trading."""

    contract_name = "ExchangeMarketOrderInCall"


class SealedSession(WrongPhase):
    """A sealed session's call phase takes orders only as revealed commitments (:meth:`ExchangeModel.place_revealed`)."""

    contract_name = "ExchangeSealedSession"


class ZeroAmount(ModelError):
    """A deposit or withdrawal of nothing, or fees collected when none accrued."""

    contract_name = "ExchangeZeroAmount"


ZeroQuantity = ZeroAmount  # the former name


class BadQuantity(ModelError):
    """Zero lots, or fewer than the market's ``minLots``."""

    contract_name = "ExchangeBadQuantity"


BelowMinimum = BadQuantity  # the former name


class BadPrice(ModelError):
    """A limit or worst price of zero ticks."""

    contract_name = "ExchangeBadPrice"


class InsufficientFree(ModelError):
    """The free deposit balance does not cover the lock or the withdrawal."""

    contract_name = "ExchangeInsufficientFree"


class UnknownOrder(ModelError):
    """No stored order has this id."""

    contract_name = "ExchangeUnknownOrder"


class NotOwner(ModelError):
    """Only the order's owner may cancel it."""

    contract_name = "ExchangeNotOrderOwner"


class AlreadyClosed(ModelError):
    """The order has no open lots left to cancel (filled, cancelled, or claimed after its session closed)."""

    contract_name = "ExchangeOrderClosed"


class NothingToClaim(ModelError):
    """A claim that would settle no order: each of its orders is settled already, still open before its session
    closed, or of a session that is clearing. ``orderId`` is the claim's first id."""

    contract_name = "ExchangeNothingToClaim"


class BatchSize(ModelError):
    """A batch of no orders or ids, or of more than 100; or a clearing call of no steps (``max`` 2**256 - 1)."""

    contract_name = "ExchangeBatchSize"


class UnknownToken(ModelError, InvalidInput):
    """Neither of the market's tokens."""

    contract_name = "ExchangeUnknownToken"


class InvalidMarket(ModelError, InvalidInput):
    """A market parameter out of range; ``field`` numbers the check as the contract does (1 lot or tick size
    zero, 2 lot x tick not a multiple of 2e6, 3 lot value too large, 4 minLots zero, 5 a fee over 1,000 bps,
    6 margin over 10,000 bps, 7 role masks)."""

    contract_name = "ExchangeInvalidMarket"


class TraderInactive(ModelError):
    contract_name = "ExchangeTraderInactive"


class TraderInDebt(ModelError):
    contract_name = "ExchangeTraderInDebt"


class RoleNotAllowed(ModelError):
    contract_name = "ExchangeRoleNotAllowed"


class RegionMismatch(ModelError):
    contract_name = "ExchangeRegionMismatch"


# --- the market ------------------------------------------------------------------------------------------------


def _int(value: Any, what: str, minimum: int = 0, maximum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f" and <= {maximum}" if maximum is not None else ""
        raise InvalidInput(f"{what} must be an integer >= {minimum}{bound}, got {value!r}")
    return value


def _token(token: str) -> str:
    if token not in TOKENS:
        raise UnknownToken(token=token)
    return token


def _roles(roles: Iterable[Role | str | int] | None) -> frozenset[Role] | None:
    if roles is None:
        return None
    try:
        return frozenset(Role.parse(r) for r in roles)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


@dataclass(frozen=True)
class MarketSpec:
    """A market's parameters and its arithmetic (value, fees, margin, locks, payouts), all exact integers.

    ``operator`` receives the fees (by :meth:`ExchangeModel.collect_fees`); ``market`` is the market's id,
    packed into order ids. ``seller_roles``/``buyer_roles`` of None let any role trade (the model's default);
    ``region`` 0 is a national market. ``fee_recipient`` is the former name of ``operator``.
    """

    lot_size: int  # asset units per lot (6 decimals: 10**6 = one tonne)
    tick_size: int  # settlement units per tonne per tick
    min_lots: int = 1
    buyer_fee_bps: int = 0
    seller_fee_bps: int = 0
    margin_bps: int = 0
    pricing: Pricing = Pricing.MIDPOINT
    operator: Hashable = "operator"
    market: int = 1
    region: int = 0
    seller_roles: frozenset[Role] | None = None
    buyer_roles: frozenset[Role] | None = None
    fee_recipient: InitVar[Hashable] = None

    def __post_init__(self, fee_recipient: Hashable) -> None:
        if fee_recipient is not None:
            object.__setattr__(self, "operator", fee_recipient)
        object.__setattr__(self, "pricing", Pricing.parse(self.pricing))
        object.__setattr__(self, "seller_roles", _roles(self.seller_roles))
        object.__setattr__(self, "buyer_roles", _roles(self.buyer_roles))
        # The contract's checks, in its order (the field numbers of ExchangeInvalidMarket).
        if _int(self.lot_size, "lot_size", 0, 2**64 - 1) == 0 or _int(self.tick_size, "tick_size", 0, 2**64 - 1) == 0:
            raise InvalidMarket(field=1)
        if (self.lot_size * self.tick_size) % (2 * UNITS_PER_TONNE):
            raise InvalidMarket(field=2)  # a lot at a half tick would be worth a fraction of a unit
        if self.unit >= 2**48:
            raise InvalidMarket(field=3)
        if _int(self.min_lots, "min_lots", 0, 2**24 - 1) == 0:
            raise InvalidMarket(field=4)
        if _int(self.buyer_fee_bps, "buyer_fee_bps", 0, 2**16 - 1) > MAX_FEE_BPS or \
                _int(self.seller_fee_bps, "seller_fee_bps", 0, 2**16 - 1) > MAX_FEE_BPS:
            raise InvalidMarket(field=5)
        if _int(self.margin_bps, "margin_bps", 0, 2**16 - 1) > MAX_MARGIN_BPS:
            raise InvalidMarket(field=6)
        for roles in (self.seller_roles, self.buyer_roles):
            if roles is not None and (not roles or Role.NONE in roles):
                raise InvalidMarket(field=7)
        _int(self.market, "market", 1, 2**32 - 1)
        _int(self.region, "region", 0, 2**32 - 1)

    @property
    def unit(self) -> int:
        """Settlement units of one lot at one tick (even)."""
        return self.lot_size * self.tick_size // UNITS_PER_TONNE

    def value(self, lots: int, price2: int) -> int:
        """Settlement units for ``lots`` at ``price2 / 2`` ticks: exact by the market's rule."""
        return lots * price2 * self.unit // 2

    def tick_value(self, lots: int, tick: int) -> int:
        return lots * tick * self.unit

    def fee(self, side: Side, value: int) -> int:
        """The fee an order of ``side`` pays on its total ``value``, rounded down."""
        return value * (self.buyer_fee_bps if side is Side.BID else self.seller_fee_bps) // BPS

    def buyer_fee(self, value: int) -> int:
        return self.fee(Side.BID, value)

    def seller_fee(self, value: int) -> int:
        return self.fee(Side.ASK, value)

    def margin(self, lots: int, tick: int) -> int:
        return self.tick_value(lots, tick) * self.margin_bps // BPS

    def asset(self, lots: int) -> int:
        return lots * self.lot_size

    def order_lock(self, side: Side | str, lots: int, tick: int) -> dict[str, int]:
        """What an order locks when placed, per token: a bid ``v + fee(v) + margin(v)`` settlement units, an ask
        its asset and ``margin(v)``, with ``v`` the value of all its lots at its limit (or worst) price."""
        v = self.tick_value(lots, tick)
        if Side.parse(side) is Side.BID:
            return {ASSET: 0, SETTLEMENT: v + self.buyer_fee(v) + self.margin(lots, tick)}
        return {ASSET: self.asset(lots), SETTLEMENT: self.margin(lots, tick)}

    def payout(self, side: Side, lots: int, tick: int, filled: int, value: int) -> tuple[int, int, int]:
        """(asset, settlement, fee) that settling an order of ``lots`` at ``tick`` which filled ``filled`` lots
        for ``value`` pays: a bid gets its asset and its lock less ``value + fee``; an ask ``value - fee``,
        its margin and its unsold asset. What the order locked is exactly payout + fee + the counterparties'
        share, so nothing is created or lost."""
        lock = self.order_lock(side, lots, tick)
        fee = self.fee(side, value)
        if side is Side.BID:
            return self.asset(filled), lock[SETTLEMENT] - value - fee, fee
        return self.asset(lots - filled), value - fee + lock[SETTLEMENT], fee

    def price_per_tonne(self, price2: int) -> Any:
        """Settlement units per tonne at ``price2`` half-ticks (a Fraction)."""
        from fractions import Fraction

        return Fraction(price2 * self.tick_size, 2)


@dataclass(frozen=True)
class Profile:
    """What the registry says of a trader (for the entry checks). The model's default: any trader may trade."""

    role: Role | None = None
    active: bool = True
    region: int = 0
    in_debt: bool = False


# --- what the model emits: the contract's events ---------------------------------------------------------------


@dataclass(frozen=True)
class Deposited:
    account: Hashable
    token: str
    amount: int


@dataclass(frozen=True)
class Withdrawn:
    account: Hashable
    token: str
    amount: int


@dataclass(frozen=True)
class Placed:
    """OrderPlaced: an order rests in the book (its ``lots`` are all its lots, fills on entry included)."""

    order_id: int
    owner: Hashable
    market: int
    side: Side
    tick: int
    lots: int


@dataclass(frozen=True)
class Cancelled:
    """OrderCancelled: the order's open lots were cancelled (by its owner, or by self-trade prevention)."""

    order_id: int
    lots: int
    reason: CancelReason


@dataclass(frozen=True)
class Fill:
    """Trade: ``lots`` at ``price2`` half-ticks worth ``value``.

    In continuous trading the price is the resting order's and the taker's id is 0 (it is stored, if at all,
    only after it took). In a UNIFORM auction ``price2`` and ``value`` are 0 (the price comes with
    AuctionCleared; :meth:`ExchangeModel.trades` fills it in). ``phase`` and ``taker`` (the placement's number,
    1 for the first order placed in the model) are the model's own notes, not part of the event.
    """

    market: int
    session: int
    bid_order: int
    ask_order: int
    lots: int
    price2: int
    value: int
    phase: Phase = field(default=Phase.CLEARING, compare=False)
    taker: int = field(default=0, compare=False)

    @property
    def price_ticks(self) -> Any:
        from fractions import Fraction

        return Fraction(self.price2, 2)


@dataclass(frozen=True)
class AuctionCleared:
    market: int
    session: int
    uniform_price2: int  # 0 for MIDPOINT, and for a UNIFORM auction that matched nothing


@dataclass(frozen=True)
class Payout:
    """OrderClaimed: what settling one stored order paid its owner, and the fee it paid to the market."""

    order_id: int
    owner: Hashable
    asset: int
    settlement: int
    fee: int


@dataclass(frozen=True)
class TakerSettled:
    """A new order that never rested, settled at once (``asset``/``settlement``: what it paid back, the
    model's note, not part of the event)."""

    market: int
    taker: Hashable
    side: Side
    kind: OrderKind
    lots: int
    filled_lots: int
    value: int
    fee: int
    asset: int = field(default=0, compare=False)
    settlement: int = field(default=0, compare=False)


@dataclass(frozen=True)
class FeesCollected:
    market: int
    operator: Hashable
    amount: int


Event = Deposited | Withdrawn | Placed | Cancelled | Fill | AuctionCleared | Payout | TakerSettled | FeesCollected


@dataclass(frozen=True)
class OrderState:
    """A stored order, as the contract's ``orderOf`` returns it."""

    id: int
    owner: Hashable
    market: int
    session: int
    side: Side
    tick: int
    index: int
    lots: int
    open_lots: int
    filled_lots: int
    auction_lots: int
    value: int  # continuous fills, and MIDPOINT auction fills (UNIFORM auction lots are priced at settlement)
    claimed: bool

    @property
    def closed(self) -> bool:
        return self.open_lots == 0

    @property
    def cancelled_lots(self) -> int:
        return self.lots - self.open_lots - self.filled_lots


@dataclass(frozen=True)
class SessionState:
    id: int
    phase: Phase
    cleared: bool
    uniform_price2: int
    last_bid_tick: int
    last_ask_tick: int
    steps: int  # budget units clearing used (pairs, self-trades, skipped orders, ticks retired by the walk)


# --- internals -------------------------------------------------------------------------------------------------


@dataclass
class _Order:
    id: int
    session: int
    account: Hashable
    side: Side
    tick: int
    lots: int
    open_lots: int
    filled_lots: int = 0
    auction_lots: int = 0
    value: int = 0
    claimed: bool = False


@dataclass
class _Level:
    """The orders stored at one tick, FIFO; those before ``head`` were walked past (closed)."""

    orders: list[int] = field(default_factory=list)
    head: int = 0


@dataclass
class _Book:
    """One side of one session's book: the ticks that hold orders (some maybe only cancelled ones until a walk
    retires them: the contract's bitmap) and each tick's FIFO."""

    side: Side
    ticks: set[int] = field(default_factory=set)
    levels: dict[int, _Level] = field(default_factory=dict)

    def best_tick(self) -> int | None:
        if not self.ticks:
            return None
        return max(self.ticks) if self.side is Side.BID else min(self.ticks)


@dataclass
class _Budget:
    left: int


@dataclass
class _Session:
    id: int
    sealed: bool = False
    phase: Phase = Phase.CALL
    cleared: bool = False
    uniform_price2: int = 0
    last_bid_tick: int = 0
    last_ask_tick: int = 0
    steps: int = 0
    bids: _Book = field(default_factory=lambda: _Book(Side.BID))
    asks: _Book = field(default_factory=lambda: _Book(Side.ASK))

    def book(self, side: Side) -> _Book:
        return self.bids if side is Side.BID else self.asks


def _crosses(side: Side, limit: int, resting_tick: int) -> bool:
    """Whether a new order of ``side`` at ``limit`` trades with a resting order at ``resting_tick``."""
    return resting_tick <= limit if side is Side.BID else resting_tick >= limit


# --- the model -------------------------------------------------------------------------------------------------


class ExchangeModel:
    """One market of the exchange: deposit accounts, sessions, the auction, continuous trading, settlement.

    Time is explicit: :meth:`end_call` is the call deadline passing, :meth:`close` the closing time.
    """

    def __init__(self, spec: MarketSpec):
        self.spec = spec
        self.profiles: dict[Hashable, Profile] = {}
        self.events: list[Event] = []
        self.fees_accrued = 0
        self._orders: dict[int, _Order] = {}
        self._sessions: list[_Session] = []
        self._free: dict[Hashable, dict[str, int]] = {}
        self._deposited = dict.fromkeys(TOKENS, 0)
        self._withdrawn = dict.fromkeys(TOKENS, 0)
        self._placements: list[tuple[Side, OrderKind, int]] = []  # (side, kind, tick) per order placed
        self._taker_of: dict[int, int] = {}  # a stored order's placement number (its entry fills carry id 0)

    # -- sessions --

    @property
    def session(self) -> int:
        """The current session's id (0 before the first)."""
        return len(self._sessions)

    @property
    def phase(self) -> Phase:
        return self._sessions[-1].phase if self._sessions else Phase.NONE

    def session_state(self, session: int | None = None) -> SessionState:
        s = self._session(session)
        return SessionState(s.id, s.phase, s.cleared, s.uniform_price2, s.last_bid_tick, s.last_ask_tick, s.steps)

    def open_session(self, sealed: bool = False) -> int:
        """Open the next session (after the previous one closed); a sealed one takes CALL-phase orders only as
        revealed commitments (the commitments and bonds live in SealedAuction, outside this model)."""
        if self._sessions and self.phase is not Phase.CLOSED:
            raise SessionOpen(market=self.spec.market, session=self.session)
        self._sessions.append(_Session(len(self._sessions) + 1, sealed=sealed))
        return self.session

    def end_call(self) -> None:
        """The call deadline passed: CALL -> CLEARING."""
        self._require(Phase.CALL)
        self._sessions[-1].phase = Phase.CLEARING

    def clear(self, max_steps: int) -> bool:
        """One ``clear`` call of at most ``max_steps`` budget units; True once clearing is done (the session is
        then CONTINUOUS). A call that spends its last unit on a pair returns False even if nothing crosses any
        more: the next call finds that out. A call with no budget (``max_steps`` 0) is refused."""
        _int(max_steps, "max_steps", 0, NO_LIMIT)
        self._require(Phase.CLEARING)
        if max_steps == 0:
            raise BatchSize(size=0, max=NO_LIMIT)
        session = self._sessions[-1]
        budget = _Budget(max_steps)
        done = False
        while budget.left and not done:
            done = self._clear_step(session, budget)
        session.steps += max_steps - budget.left
        if done:
            session.cleared = True
            if self.spec.pricing is Pricing.UNIFORM:
                session.uniform_price2 = session.last_bid_tick + session.last_ask_tick
            self.events.append(AuctionCleared(self.spec.market, session.id, session.uniform_price2))
            session.phase = Phase.CONTINUOUS
        return done

    def close(self) -> None:
        """The closing time passed: CONTINUOUS -> CLOSED (clearing must be done first)."""
        self._require(Phase.CONTINUOUS)
        self._sessions[-1].phase = Phase.CLOSED

    # -- deposits and fees --

    def deposit(self, account: Hashable, token: str, amount: int) -> None:
        _token(token)
        if _int(amount, "amount") == 0:
            raise ZeroAmount()
        self._credit(account, token, amount)
        self._deposited[token] += amount
        self.events.append(Deposited(account, token, amount))

    def withdraw(self, account: Hashable, token: str, amount: int) -> None:
        _token(token)
        if _int(amount, "amount") == 0:
            raise ZeroAmount()
        free = self.free(account, token)
        if amount > free:
            raise InsufficientFree(account=account, token=token, free=free, needed=amount)
        self._free[account][token] -= amount
        self._withdrawn[token] += amount
        self.events.append(Withdrawn(account, token, amount))

    def collect_fees(self) -> int:
        """Move the accrued fees into the operator's deposit (anyone may); returns the amount."""
        amount = self.fees_accrued
        if amount == 0:
            raise ZeroAmount()
        self.fees_accrued = 0
        self._credit(self.spec.operator, SETTLEMENT, amount)
        self.events.append(FeesCollected(self.spec.market, self.spec.operator, amount))
        return amount

    def set_profile(self, account: Hashable, **fields: Any) -> None:
        """What the registry says of ``account`` (role, active, region, in_debt), for the entry checks."""
        self.profiles[account] = Profile(**fields)

    # -- orders --

    def place(self, account: Hashable, side: Side | str, lots: int, tick: int,
              kind: OrderKind | str = OrderKind.LIMIT, max_fills: int | None = None) -> int:
        """``placeOrder``: returns the order's id, or 0 if it never rested (settled at once).

        In CALL the order only rests. In CONTINUOUS it first takes from the other side, spending at most
        ``max_fills`` budget units (None: no bound) on fills, skipped (cancelled) orders and the exhausted
        ticks it retires.
        """
        return self.place_many(account, [(side, lots, tick, kind)], max_fills, batch=False)[0]

    def place_many(self, account: Hashable, orders: Sequence[tuple], max_fills: int | None = None, *,
                   batch: bool = True) -> list[int]:
        """``placeOrders``: (side, lots, tick[, kind]) each, all or none; the entry checks once per side, at
        the first order of that side. Returns the ids (0 for those that never rested)."""
        parsed = [self._parse_order(*o) for o in orders]
        budget = NO_LIMIT if max_fills is None else _int(max_fills, "max_fills", 0, NO_LIMIT)
        if batch and not 1 <= len(parsed) <= MAX_BATCH:
            raise BatchSize(size=len(parsed), max=MAX_BATCH)
        if self.phase not in (Phase.CALL, Phase.CONTINUOUS):
            raise WrongPhase(market=self.spec.market, session=self.session, phase=self.phase)
        if self.phase is Phase.CALL and self._sessions[-1].sealed:
            raise SealedSession(market=self.spec.market, session=self.session)
        checked: set[Side] = set()
        with self._atomic(len(parsed) > 1):
            ids = []
            for side, lots, tick, kind in parsed:
                if side not in checked:
                    self._check_trader(account, side)
                    checked.add(side)
                ids.append(self._place(account, side, lots, tick, kind, budget))
            return ids

    def place_revealed(self, account: Hashable, side: Side | str, lots: int, tick: int,
                       kind: OrderKind | str = OrderKind.LIMIT) -> int:
        """``placeRevealed``: the sealer places ``account``'s revealed order in a sealed session's call phase,
        with the entry checks and the lock on ``account``."""
        side, lots, tick, kind = self._parse_order(side, lots, tick, kind)
        if self.phase is not Phase.CALL or not self._sessions[-1].sealed:
            raise WrongPhase(market=self.spec.market, session=self.session, phase=self.phase)
        self._check_trader(account, side)
        return self._place(account, side, lots, tick, kind, 0)

    def cancel(self, account: Hashable, order_id: int) -> None:
        """Cancel the open lots of one's own order, in any phase; its funds come back by its claim."""
        order = self._order(order_id)
        if order.account != account:
            raise NotOwner(caller=account, orderId=order_id)
        if order.open_lots == 0:
            raise AlreadyClosed(orderId=order_id)
        self.events.append(Cancelled(order_id, order.open_lots, CancelReason.OWNER))
        order.open_lots = 0

    def claim(self, order_ids: Iterable[int]) -> list[Payout]:
        """Settle the given orders that are due (anyone may): a closed order (no open lots) unless its session
        is clearing, or any order once its session closed, its remainder refunded. Orders settled already
        (earlier, or by an earlier id of the same call) or not due yet are skipped, so nobody can make a bulk
        claim fail by settling one of its orders first. Refused, all or none: an unknown id, and a call that
        settles nothing (``NothingToClaim`` with the first id). Returns the payouts (the contract returns their
        number)."""
        order_ids = list(order_ids)
        if not 1 <= len(order_ids) <= MAX_BATCH:
            raise BatchSize(size=len(order_ids), max=MAX_BATCH)
        with self._atomic(len(order_ids) > 1):
            payouts = []
            for i in order_ids:
                order = self._order(i)
                if order.claimed:
                    continue
                phase = self._sessions[order.session - 1].phase
                if phase is Phase.CLEARING or (order.open_lots and phase is not Phase.CLOSED):
                    continue
                order.open_lots = 0  # an open order once its session closed: its remainder is refunded
                payouts.append(self._settle(order))
            if not payouts:
                raise NothingToClaim(orderId=order_ids[0])
            return payouts

    # -- reading --

    def free(self, account: Hashable, token: str) -> int:
        return self._free.get(account, {}).get(_token(token), 0)

    def locked(self, account: Hashable, token: str) -> int:
        """What the exchange holds for ``account`` beyond its free balance: what settling each of its unsettled
        orders would pay now (remainders refunded; a UNIFORM auction not yet cleared priced at its last pair)."""
        index = TOKENS.index(_token(token))
        return sum(self._claim_now(o)[index] for o in self._orders.values() if o.account == account and not o.claimed)

    def balances(self) -> dict[Hashable, dict[str, tuple[int, int]]]:
        """account -> token -> (free, locked), for every account the model has seen."""
        accounts = dict.fromkeys([*self._free, *(o.account for o in self._orders.values())])
        return {a: {t: (self.free(a, t), self.locked(a, t)) for t in TOKENS} for a in accounts}

    def order(self, order_id: int) -> OrderState:
        o = self._order(order_id)
        return OrderState(o.id, o.account, self.spec.market, o.session, o.side, o.tick, o.id & (2**64 - 1), o.lots,
                          o.open_lots, o.filled_lots, o.auction_lots, o.value, o.claimed)

    def orders(self, session: int | None = None) -> list[OrderState]:
        """Every stored order (of one session if given), in the order they were placed."""
        return [self.order(i) for i, o in self._orders.items() if session is None or o.session == session]

    def claimable(self, session: int | None = None) -> list[int]:
        """The ids a claim would settle now."""
        out = []
        for o in self._orders.values():
            phase = self._sessions[o.session - 1].phase
            if (session is None or o.session == session) and not o.claimed and phase is not Phase.CLEARING and (
                    o.open_lots == 0 or phase is Phase.CLOSED):
                out.append(o.id)
        return out

    def book(self, session: int | None = None) -> list[tuple[Side, int, int]]:
        """The open orders as (side, tick, open lots), best first per side, FIFO at a tick (input for depth)."""
        s = self._session(session)
        out = []
        for side in Side:
            book = s.book(side)
            for tick in sorted(book.levels, reverse=side is Side.BID):
                level = book.levels[tick]
                out += [(side, tick, self._orders[i].open_lots) for i in level.orders
                        if self._orders[i].open_lots]
        return out

    def best_ticks(self, session: int | None = None) -> tuple[int | None, int | None]:
        """The best ticks on the book's bitmap (None: no tick). A tick whose last order a fill closed left it at
        once; one that still holds cancelled orders stays until a walk retires it, so it may have nothing open."""
        s = self._session(session)
        return s.bids.best_tick(), s.asks.best_tick()

    @property
    def fills(self) -> list[Fill]:
        return [e for e in self.events if isinstance(e, Fill)]

    @property
    def payouts(self) -> list[Payout]:
        return [e for e in self.events if isinstance(e, Payout)]

    @property
    def takers(self) -> list[TakerSettled]:
        return [e for e in self.events if isinstance(e, TakerSettled)]

    def trades(self) -> list[Fill]:
        """The fills with UNIFORM auction pairs priced (once their clearing is done; before, left at 0)."""
        out = []
        for f in self.fills:
            if f.price2 == 0 and self._sessions[f.session - 1].uniform_price2:
                price2 = self._sessions[f.session - 1].uniform_price2
                f = Fill(f.market, f.session, f.bid_order, f.ask_order, f.lots, price2,
                         self.spec.value(f.lots, price2), f.phase, f.taker)
            out.append(f)
        return out

    def owed(self, token: str) -> int:
        """What the exchange owes in ``token``: free balances, what settling every unsettled order would pay
        (fee included), and, in settlement units, the accrued fees. It always equals what was deposited less
        what was withdrawn."""
        _token(token)
        total = sum(b.get(token, 0) for b in self._free.values())
        for o in self._orders.values():
            if not o.claimed:
                asset, settlement, fee = self._claim_now(o)
                total += asset if token == ASSET else settlement + fee
        return total + (self.fees_accrued if token == SETTLEMENT else 0)

    def snapshot(self) -> dict[str, Any]:
        """Everything the model holds, comparable with ==: a rejected operation leaves it equal."""
        return {
            "sessions": [self.session_state(s.id) for s in self._sessions],
            "books": [copy.deepcopy((s.bids, s.asks)) for s in self._sessions],
            "orders": self.orders(),
            "free": {a: dict(t) for a, t in self._free.items()},
            "deposited": dict(self._deposited),
            "withdrawn": dict(self._withdrawn),
            "events": list(self.events),
            "fees_accrued": self.fees_accrued,
        }

    def invariants(self) -> list[str]:
        """Violations of the exchange's invariants (empty when all hold)."""
        spec, problems = self.spec, []
        for token in TOKENS:
            held = self._deposited[token] - self._withdrawn[token]
            if self.owed(token) != held:
                problems.append(f"{token}: the exchange holds {held} but owes {self.owed(token)}")
        for account, balances in self._free.items():
            if min(balances.values()) < 0:
                problems.append(f"{account} has a negative free balance {balances}")
        per_order: dict[int, list[int]] = {}  # id -> [filled lots, auction lots, recorded value]
        for f in self.trades():
            bid = self._orders.get(f.bid_order)
            ask = self._orders.get(f.ask_order)
            taker = self._placements[f.taker - 1] if f.taker else None
            bid_tick = bid.tick if bid else taker[2]
            ask_tick = ask.tick if ask else taker[2]
            if f.price2 and not 2 * ask_tick <= f.price2 <= 2 * bid_tick:
                problems.append(f"{f} outside [ask {ask_tick}, bid {bid_tick}]")
            if bid and ask and bid.account == ask.account:
                problems.append(f"{f} is a self-trade")
            if f.price2 and f.value != spec.value(f.lots, f.price2):
                problems.append(f"{f}: value is not lots x price")
            if f.phase is Phase.CONTINUOUS and f.price2 != 2 * (bid or ask).tick:
                problems.append(f"{f}: a continuous fill not at the resting order's price")
            for o in (bid, ask):
                if o:
                    counts = per_order.setdefault(o.id, [0, 0, 0])
                    counts[0] += f.lots
                    counts[1] += f.lots if f.phase is Phase.CLEARING else 0
                    counts[2] += 0 if f.phase is Phase.CLEARING and spec.pricing is Pricing.UNIFORM else f.value
        for o in self._orders.values():
            entry = [f for f in self.fills if f.taker == self._taker_of[o.id]]  # filled before it rested
            lots, auction, value = per_order.get(o.id, [0, 0, 0])
            lots += sum(f.lots for f in entry)
            value += sum(f.value for f in entry)
            if o.open_lots < 0 or o.lots - o.open_lots - o.filled_lots < 0:
                problems.append(f"order {o.id}: lots do not add up ({o})")
            if (lots, auction, value) != (o.filled_lots, o.auction_lots, o.value):
                problems.append(f"order {o.id}: its record differs from its fills ({lots}, {auction}, {value})")
            if o.claimed and o.open_lots:
                problems.append(f"order {o.id} is settled with lots open")
        for s in self._sessions:
            open_bids = [t for side, t, _ in self.book(s.id) if side is Side.BID]
            open_asks = [t for side, t, _ in self.book(s.id) if side is Side.ASK]
            if s.phase in (Phase.CONTINUOUS, Phase.CLOSED) and open_bids and open_asks and \
                    max(open_bids) >= min(open_asks):
                problems.append(f"session {s.id} book crossed in {s.phase.name}")
            for side in Side:
                book = s.book(side)
                for tick, level in book.levels.items():
                    if any(self._orders[i].open_lots for i in level.orders[level.head:]) and tick not in book.ticks:
                        problems.append(f"session {s.id} {side.name} tick {tick} holds open orders off the bitmap")
                    if any(self._orders[i].open_lots for i in level.orders[:level.head]):
                        problems.append(f"session {s.id} {side.name} tick {tick}: an open order before the head")
        return problems

    # -- internals: checks --

    def _require(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise WrongPhase(market=self.spec.market, session=self.session, phase=self.phase)

    def _session(self, session: int | None) -> _Session:
        session = self.session if session is None else session
        if not 1 <= _int(session, "session") <= len(self._sessions):
            raise InvalidInput(f"no session {session}")
        return self._sessions[session - 1]

    def _order(self, order_id: int) -> _Order:
        order = self._orders.get(_int(order_id, "order id"))
        if order is None:
            raise UnknownOrder(orderId=order_id)
        return order

    @staticmethod
    def _parse_order(side: Any, lots: Any, tick: Any, kind: Any = OrderKind.LIMIT) -> tuple[Side, int, int, OrderKind]:
        return (Side.parse(side), _int(lots, "lots", 0, MAX_LOTS), _int(tick, "tick", 0, MAX_TICK),
                OrderKind.parse(kind))

    def _check_trader(self, account: Hashable, side: Side) -> None:
        """The entry checks, in the contract's order: active, no debt, role allowed for the side, region."""
        p = self.profiles.get(account, Profile())
        if not p.active:
            raise TraderInactive(account=account)
        if p.in_debt:
            raise TraderInDebt(account=account)
        roles = self.spec.buyer_roles if side is Side.BID else self.spec.seller_roles
        if roles is not None and p.role not in roles:
            raise RoleNotAllowed(account=account, role=p.role or Role.NONE, side=side)
        if self.spec.region and p.region != self.spec.region:
            raise RegionMismatch(account=account, region=p.region, marketRegion=self.spec.region)

    @contextmanager
    def _atomic(self, needed: bool = True) -> Iterator[None]:
        """All or nothing, like a transaction: a refusal half-way through a batch restores the state. (One
        order or one claim needs no undo: each makes all its checks before it changes anything.)"""
        if not needed:
            yield
            return
        saved = copy.deepcopy({k: v for k, v in vars(self).items() if k not in ("spec", "profiles")})
        try:
            yield
        except ModelError:
            vars(self).update(saved)
            raise

    # -- internals: balances and settlement --

    def _credit(self, account: Hashable, token: str, amount: int) -> None:
        balances = self._free.setdefault(account, dict.fromkeys(TOKENS, 0))
        balances[token] += amount

    def _value(self, o: _Order, uniform_price2: int) -> int:
        """The order's total value: its recorded fills, plus its UNIFORM auction lots at the auction's price."""
        if self.spec.pricing is Pricing.UNIFORM:
            return o.value + self.spec.value(o.auction_lots, uniform_price2)
        return o.value

    def _claim_now(self, o: _Order) -> tuple[int, int, int]:
        """(asset, settlement, fee) settling ``o`` would pay now, remainder refunded."""
        s = self._sessions[o.session - 1]
        price2 = s.uniform_price2 if s.cleared else s.last_bid_tick + s.last_ask_tick
        return self.spec.payout(o.side, o.lots, o.tick, o.filled_lots, self._value(o, price2))

    def _settle(self, o: _Order) -> Payout:
        """Pay a closed order's owner what its lock and fills come to, once; the fee accrues to the market."""
        asset, settlement, fee = self._claim_now(o)
        o.claimed = True
        self._credit(o.account, ASSET, asset)
        self._credit(o.account, SETTLEMENT, settlement)
        self.fees_accrued += fee
        payout = Payout(o.id, o.account, asset, settlement, fee)
        self.events.append(payout)
        return payout

    # -- internals: placing --

    def _place(self, account: Hashable, side: Side, lots: int, tick: int, kind: OrderKind, max_fills: int) -> int:
        spec, session = self.spec, self._sessions[-1]
        if lots < spec.min_lots or lots == 0:
            raise BadQuantity(lots=lots, minLots=spec.min_lots)
        if tick == 0:
            raise BadPrice(tick=tick)
        if kind is OrderKind.MARKET and session.phase is not Phase.CONTINUOUS:
            raise MarketOrderInCall(market=spec.market)
        lock = spec.order_lock(side, lots, tick)
        for token in (ASSET, SETTLEMENT):  # an ask's asset first, then its margin
            if lock[token] > self.free(account, token):
                raise InsufficientFree(account=account, token=token, free=self.free(account, token),
                                       needed=lock[token])
        # Every check is made: from here on nothing refuses, so one order needs no undo.
        for token in (ASSET, SETTLEMENT):
            self._credit(account, token, -lock[token])
        self._placements.append((side, kind, tick))
        taker = len(self._placements)

        filled = value = 0
        exhausted = False
        if session.phase is Phase.CONTINUOUS:
            filled, value, exhausted = self._take(session, account, side, lots, tick, max_fills, taker)
        if kind is OrderKind.MARKET or filled == lots or exhausted:
            # Settled at once, never stored: a crossed book is never left behind.
            asset, settlement, fee = spec.payout(side, lots, tick, filled, value)
            self._credit(account, ASSET, asset)
            self._credit(account, SETTLEMENT, settlement)
            self.fees_accrued += fee
            self.events.append(TakerSettled(spec.market, account, side, kind, lots, filled, value, fee,
                                            asset, settlement))
            return 0
        book = session.book(side)
        level = book.levels.setdefault(tick, _Level())
        index = len(level.orders)
        if index == level.head:
            book.ticks.add(tick)  # the tick's FIFO was empty
        oid = order_id(spec.market, session.id, side, tick, index)
        level.orders.append(oid)
        self._orders[oid] = _Order(oid, session.id, account, side, tick, lots, lots - filled, filled, 0, value)
        self._taker_of[oid] = taker
        self.events.append(Placed(oid, account, spec.market, side, tick, lots))
        return oid

    def _take(self, session: _Session, account: Hashable, side: Side, lots: int, tick: int, max_fills: int,
              taker: int) -> tuple[int, int, bool]:
        """Continuous trading: take from the other side while it crosses, at the resting orders' prices;
        returns (filled lots, value, whether the budget ran out while the book may still cross)."""
        book = session.book(Side.ASK if side is Side.BID else Side.BID)
        budget = _Budget(max_fills)
        filled = value = 0
        while filled < lots:
            if budget.left == 0:
                best = book.best_tick()  # maybe a tick of cancelled orders only: "may" still cross
                return filled, value, best is not None and _crosses(side, tick, best)
            maker_id = self._best_order(book, budget)
            if maker_id is None:
                if budget.left == 0:
                    continue  # out of budget while skipping: decided above
                break  # the other side is empty
            maker = self._orders[maker_id]
            if not _crosses(side, tick, maker.tick):
                break
            budget.left -= 1
            if maker.account == account:
                # Self-trade prevention: the taker's own resting order is cancelled, and settled at once.
                self.events.append(Cancelled(maker_id, maker.open_lots, CancelReason.SELF_TRADE))
                maker.open_lots = 0
                self._settle(maker)
                continue
            q = min(maker.open_lots, lots - filled)
            v = self.spec.tick_value(q, maker.tick)
            maker.open_lots -= q
            maker.filled_lots += q
            maker.value += v
            filled += q
            value += v
            bid_id, ask_id = (maker_id, 0) if maker.side is Side.BID else (0, maker_id)
            self.events.append(Fill(self.spec.market, session.id, bid_id, ask_id, q, 2 * maker.tick, v,
                                    Phase.CONTINUOUS, taker))
            if maker.open_lots == 0:
                self._move_head_past(session, maker)
                self._settle(maker)  # the taker settles the resting orders it completes
        return filled, value, False

    # -- internals: the book and the call auction --

    def _best_order(self, book: _Book, budget: _Budget) -> int | None:
        """The best open order (highest bid or lowest ask, earliest first), skipping closed (cancelled) orders
        and retiring exhausted ticks on the way, one budget unit each. None with budget left: the side is empty;
        with none left: the walk stopped here (the next one goes on)."""
        while budget.left:
            tick = book.best_tick()
            if tick is None:
                return None
            level = book.levels[tick]
            while level.head < len(level.orders):
                candidate = level.orders[level.head]
                if self._orders[candidate].open_lots:
                    return candidate
                level.head += 1
                budget.left -= 1
                if budget.left == 0:
                    return None
            book.ticks.discard(tick)  # every order at this tick is closed
            budget.left -= 1
        return None

    @staticmethod
    def _move_head_past(session: _Session, order: _Order) -> None:
        """A fill closed the best order of its level (its head): the head moves past it at once, and the tick
        is retired if that empties its FIFO, both free of budget. (Orders closed by a cancel or a self-trade
        stay in the FIFO until a walk skips them.)"""
        book = session.book(order.side)
        level = book.levels[order.tick]
        level.head = (order.id & (2**64 - 1)) + 1
        if level.head == len(level.orders):
            book.ticks.discard(order.tick)

    def _clear_step(self, session: _Session, budget: _Budget) -> bool:
        """One step of the auction; True when clearing is done."""
        bid_id = self._best_order(session.bids, budget)
        ask_id = self._best_order(session.asks, budget)
        if budget.left == 0:
            return False  # out of budget while skipping: the next call goes on
        if bid_id is None or ask_id is None:
            return True
        bid, ask = self._orders[bid_id], self._orders[ask_id]
        if bid.tick < ask.tick:
            return True
        budget.left -= 1
        if bid.account == ask.account:  # self-trade: the ask's remainder is cancelled
            self.events.append(Cancelled(ask_id, ask.open_lots, CancelReason.SELF_TRADE))
            ask.open_lots = 0
            return False
        q = min(bid.open_lots, ask.open_lots)
        price2 = bid.tick + ask.tick if self.spec.pricing is Pricing.MIDPOINT else 0
        v = self.spec.value(q, price2)
        for o in (bid, ask):
            o.open_lots -= q
            o.filled_lots += q
            o.auction_lots += q
            o.value += v
            if o.open_lots == 0:
                self._move_head_past(session, o)  # it is at the head of its level: no walk pays for it
        session.last_bid_tick, session.last_ask_tick = bid.tick, ask.tick
        self.events.append(Fill(self.spec.market, session.id, bid_id, ask_id, q, price2, v, Phase.CLEARING))
        return False
