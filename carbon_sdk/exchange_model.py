"""A plain-Python reference model of the exchange's rules (docs/exchange.md, DESIGN 2.5).

Tests drive this model and ``CarbonExchange.sol`` with the same operations and compare fills, prices, fees,
refunds and balances, so the model is written for clarity, not speed, and holds no chain state::

    spec = MarketSpec(lot_size=10**6, tick_size=2, min_lots=1, buyer_fee_bps=25, seller_fee_bps=15,
                      margin_bps=50, pricing="midpoint", fee_recipient="platform")
    model = ExchangeModel(spec)
    model.deposit("alice", "settlement", 10**6)
    model.open_session()
    bid = model.place("alice", "bid", lots=5, price_ticks=105)
    ...
    model.end_call()                   # the call deadline passed
    while not model.clear(max_steps=10):
        pass
    model.claim([bid])
    assert model.invariants() == []

Integers only. A midpoint may fall between two ticks, so prices are kept in *half-ticks*
(``price_half_ticks = 2 * ticks``); the market requires ``lot_size * tick_size`` to be a multiple of
``2 * 10**6``, so every value is an exact integer. A rejected operation raises a :class:`ModelError`
subclass named like the contract's custom error and changes nothing; malformed arguments (a float, an
unknown side) raise :class:`~carbon_sdk.errors.InvalidInput`, which the contract's ABI could not even encode.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction
from typing import Any, Hashable, Iterable, Iterator

from carbon_sdk.errors import CarbonError, InvalidInput
from carbon_sdk.types import ParsableEnum

UNITS_PER_TONNE = 10**6
BPS = 10_000
MAX_FEE_BPS = 1_000
MAX_MARGIN_BPS = 10_000
ASSET = "asset"
SETTLEMENT = "settlement"
TOKENS = (ASSET, SETTLEMENT)


class Phase(IntEnum):
    NONE = 0  # no session opened yet
    CALL = 1
    CLEARING = 2
    CONTINUOUS = 3
    CLOSED = 4


class Side(ParsableEnum):
    BID = 0
    ASK = 1


class OrderKind(ParsableEnum):
    LIMIT = 0
    MARKET = 1


class Pricing(ParsableEnum):
    MIDPOINT = 0  # each matched pair at its own midpoint (the seed design)
    UNIFORM = 1  # every pair at the midpoint of the last matched pair


# --- errors: the contract's custom errors, by name -----------------------------------------------------------


class ModelError(CarbonError):
    """The contract would revert; the model changed nothing.

    ``arguments`` mirrors the custom error's; ``contract_name`` is the error ``CarbonExchange`` declares for
    the same refusal, so a test driving both can compare ``exc.contract_name`` with the chain's error name.
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


class ZeroQuantity(ModelError):
    """A deposit or withdrawal of nothing (or a clearing call allowed no step)."""

    contract_name = "ExchangeZeroAmount"


class BadQuantity(ModelError):
    """An order's lots are not a valid quantity."""

    contract_name = "ExchangeBadQuantity"


class BelowMinimum(BadQuantity):
    """Fewer lots than the market's ``minLots`` (zero lots included: ``minLots`` is at least 1)."""


class BadPrice(ModelError):
    """A limit or worst price of zero ticks."""

    contract_name = "ExchangeBadPrice"


class InsufficientFree(ModelError):
    """The free deposit balance does not cover the lock or the withdrawal."""

    contract_name = "ExchangeInsufficientFree"


class UnknownOrder(ModelError):
    """No order has this id."""

    contract_name = "ExchangeUnknownOrder"


class NotOwner(ModelError):
    """Only the order's owner may cancel it."""

    contract_name = "ExchangeNotOrderOwner"


class AlreadyClosed(ModelError):
    """The order has nothing left to cancel (filled, cancelled or returned)."""

    contract_name = "ExchangeOrderClosed"


# --- the market ------------------------------------------------------------------------------------------------


def _int(value: Any, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInput(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _token(token: str) -> str:
    if token not in TOKENS:
        raise InvalidInput(f"unknown token {token!r}: expected 'asset' or 'settlement'")
    return token


@dataclass(frozen=True)
class MarketSpec:
    """A market's parameters and its arithmetic (value, fees, margin, locks), all exact integers."""

    lot_size: int  # asset units per lot (6 decimals: 10**6 = one tonne)
    tick_size: int  # settlement units per tonne per tick
    min_lots: int = 1
    buyer_fee_bps: int = 0
    seller_fee_bps: int = 0
    margin_bps: int = 0
    pricing: Pricing = Pricing.MIDPOINT
    fee_recipient: Hashable = "fee-recipient"

    def __post_init__(self) -> None:
        _int(self.lot_size, "lot_size", 1)
        _int(self.tick_size, "tick_size", 1)
        _int(self.min_lots, "min_lots", 1)
        for name, limit in (("buyer_fee_bps", MAX_FEE_BPS), ("seller_fee_bps", MAX_FEE_BPS),
                            ("margin_bps", MAX_MARGIN_BPS)):
            if _int(getattr(self, name), name) > limit:
                raise InvalidInput(f"{name} {getattr(self, name)} is above the limit of {limit}")
        if (self.lot_size * self.tick_size) % (2 * UNITS_PER_TONNE):
            # Otherwise a lot at a half tick would be worth a fraction of a unit.
            raise InvalidInput(f"lot_size * tick_size ({self.lot_size * self.tick_size}) must be a multiple of "
                               f"2 * 10**6 so that any lots at any half tick are worth whole units")
        object.__setattr__(self, "pricing", Pricing.parse(self.pricing))

    def value(self, lots: int, price_half_ticks: int) -> int:
        """Settlement units for ``lots`` at ``price_half_ticks / 2`` ticks: exact by the market's rule."""
        return lots * self.lot_size * price_half_ticks * self.tick_size // (2 * UNITS_PER_TONNE)

    def tick_value(self, lots: int, price_ticks: int) -> int:
        return self.value(lots, 2 * price_ticks)

    def buyer_fee(self, value: int) -> int:
        return value * self.buyer_fee_bps // BPS

    def seller_fee(self, value: int) -> int:
        return value * self.seller_fee_bps // BPS

    def margin(self, lots: int, price_ticks: int) -> int:
        return self.tick_value(lots, price_ticks) * self.margin_bps // BPS

    def asset(self, lots: int) -> int:
        return lots * self.lot_size

    def bid_lock(self, lots: int, price_ticks: int) -> int:
        """What a bid locks for ``lots`` at its limit, margin aside: value plus buyer fee.

        The part of the lock that belongs to ``k`` of an order's ``r`` remaining lots is
        ``bid_lock(r) - bid_lock(r - k)``, so the order's whole lock is given back to the unit in the end.
        """
        value = self.tick_value(lots, price_ticks)
        return value + self.buyer_fee(value)

    def order_lock(self, side: Side | str, lots: int, price_ticks: int) -> dict[str, int]:
        """Everything an order locks when placed, per token."""
        margin = self.margin(lots, price_ticks)
        if Side.parse(side) is Side.BID:
            return {ASSET: 0, SETTLEMENT: self.bid_lock(lots, price_ticks) + margin}
        return {ASSET: self.asset(lots), SETTLEMENT: margin}

    def price_per_tonne(self, price_half_ticks: int) -> Fraction:
        """Settlement units per tonne at ``price_half_ticks``."""
        return Fraction(price_half_ticks * self.tick_size, 2)


# --- outputs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fill:
    """One trade, in execution order.

    Auction fills (``phase`` CLEARING) carry no fees (``None``): an order's auction fees are charged on its
    total auction value, by its claim. Under UNIFORM pricing the auction's fills are published when clearing
    is done, all at the clearing price.
    """

    session: int
    buy_order: int
    sell_order: int
    lots: int
    price_half_ticks: int
    value: int
    buyer_fee: int | None
    seller_fee: int | None
    phase: Phase

    @property
    def price_ticks(self) -> Fraction:
        return Fraction(self.price_half_ticks, 2)


@dataclass(frozen=True)
class OrderState:
    id: int
    session: int
    account: Hashable
    side: Side
    kind: OrderKind
    lots: int
    price_ticks: int  # the limit, or a market order's worst price
    margin: int
    remaining: int  # lots still open (in the book, or awaiting the claim after the session closed)
    auction_lots: int
    auction_value: int | None  # None while a UNIFORM auction's price is not yet known
    continuous_lots: int
    returned_lots: int  # cancelled, removed by self-trade prevention, unfilled market/limit rest, claimed
    auction_claimed: bool
    closed: bool  # nothing open any more; the margin has been refunded


@dataclass(frozen=True)
class Payout:
    """What one order's claim paid: to its owner (per token) and to the fee recipient."""

    order: int
    asset: int
    settlement: int
    fee: int


@dataclass(frozen=True)
class SessionState:
    id: int
    phase: Phase
    clearing_price_half_ticks: int | None  # UNIFORM, once clearing is done and something traded
    last_pair_half_ticks: int | None  # the midpoint of the last pair matched in the auction so far
    steps: int  # clearing steps taken


# --- internals -------------------------------------------------------------------------------------------------


@dataclass
class _Order:
    id: int
    session: int
    account: Hashable
    side: Side
    kind: OrderKind
    lots: int
    price_ticks: int
    margin: int
    remaining: int
    auction_lots: int = 0
    auction_value: int = 0  # MIDPOINT: summed per pair; UNIFORM: set when clearing is done
    continuous_lots: int = 0
    returned_lots: int = 0
    auction_claimed: bool = False
    in_book: bool = False


class _BookSide:
    """Price levels of one side, each a FIFO queue of order ids; best price first."""

    def __init__(self, side: Side):
        self.side = side
        self.prices: list[int] = []  # ascending
        self.levels: dict[int, deque[int]] = {}

    def best_price(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.side is Side.BID else self.prices[0]

    def head(self) -> int | None:
        price = self.best_price()
        return None if price is None else self.levels[price][0]

    def add(self, price: int, order_id: int) -> None:
        if price not in self.levels:
            insort(self.prices, price)
            self.levels[price] = deque()
        self.levels[price].append(order_id)

    def remove(self, price: int, order_id: int) -> None:
        level = self.levels[price]
        level.remove(order_id)
        if not level:
            del self.levels[price]
            self.prices.pop(bisect_left(self.prices, price))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """(price, order id), best price first, earliest first at a price."""
        prices = reversed(self.prices) if self.side is Side.BID else iter(self.prices)
        for price in prices:
            for order_id in self.levels[price]:
                yield price, order_id


@dataclass
class _Session:
    id: int
    phase: Phase = Phase.CALL
    bids: _BookSide = field(default_factory=lambda: _BookSide(Side.BID))
    asks: _BookSide = field(default_factory=lambda: _BookSide(Side.ASK))
    last_pair_half_ticks: int | None = None
    clearing_price_half_ticks: int | None = None
    pending: list[tuple[int, int, int]] = field(default_factory=list)  # UNIFORM (buy, sell, lots) awaiting price
    auction_orders: dict[int, None] = field(default_factory=dict)  # ordered set of orders with auction fills
    steps: int = 0

    def book(self, side: Side) -> _BookSide:
        return self.bids if side is Side.BID else self.asks


# --- the model -------------------------------------------------------------------------------------------------


class ExchangeModel:
    """One market of the exchange: deposit accounts, sessions, the auction, continuous trading, claims."""

    def __init__(self, spec: MarketSpec):
        self.spec = spec
        self.fills: list[Fill] = []
        self.fees_collected = 0  # settlement units credited to the fee recipient so far
        self._orders: dict[int, _Order] = {}
        self._by_account: dict[Hashable, list[int]] = {}
        self._sessions: list[_Session] = []
        self._free: dict[Hashable, dict[str, int]] = {}
        self._deposited = dict.fromkeys(TOKENS, 0)
        self._withdrawn = dict.fromkeys(TOKENS, 0)

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
        return SessionState(s.id, s.phase, s.clearing_price_half_ticks, s.last_pair_half_ticks, s.steps)

    def open_session(self) -> int:
        if self._sessions and self.phase is not Phase.CLOSED:
            raise SessionOpen(session=self.session, phase=self.phase)
        self._sessions.append(_Session(len(self._sessions) + 1))
        return self.session

    def end_call(self) -> None:
        """The call deadline passed: CALL -> CLEARING."""
        self._require(Phase.CALL)
        self._sessions[-1].phase = Phase.CLEARING

    def clear(self, max_steps: int) -> bool:
        """Run at most ``max_steps`` auction steps; True once clearing is done (the session is CONTINUOUS).

        Finding that nothing crosses any more is not a step, so a book with no crossing orders is done at once.
        """
        _int(max_steps, "max_steps")
        self._require(Phase.CLEARING)
        if max_steps == 0:
            raise ZeroQuantity(what="max_steps")
        session = self._sessions[-1]
        for _ in range(max_steps):
            if not self._auction_step(session):
                break
        if self._crossing_pair(session) is not None:
            return False
        self._finish_clearing(session)
        return True

    def close(self) -> None:
        """The closing time passed: CONTINUOUS -> CLOSED (clearing must be done first)."""
        self._require(Phase.CONTINUOUS)
        self._sessions[-1].phase = Phase.CLOSED

    # -- deposits --

    def deposit(self, account: Hashable, token: str, amount: int) -> None:
        _token(token)
        if _int(amount, "amount") == 0:
            raise ZeroQuantity(what="amount")
        self._credit(account, token, amount)
        self._deposited[token] += amount

    def withdraw(self, account: Hashable, token: str, amount: int) -> None:
        _token(token)
        if _int(amount, "amount") == 0:
            raise ZeroQuantity(what="amount")
        free = self.free(account, token)
        if amount > free:
            raise InsufficientFree(account=account, token=token, needed=amount, free=free)
        self._free[account][token] -= amount
        self._withdrawn[token] += amount

    # -- orders --

    def place(self, account: Hashable, side: Side | str, lots: int, price_ticks: int,
              kind: OrderKind | str = OrderKind.LIMIT, max_fills: int | None = None) -> int:
        """Place an order and return its id (sequential from 1 over the model's life).

        In CALL the order only rests. In CONTINUOUS it first takes from the other side, walking at most
        ``max_fills`` resting orders (None: no bound). A market order never rests; a limit order whose walk
        ended on ``max_fills`` while it still crosses gives its remainder back rather than rest in a crossed book.
        """
        side, kind = Side.parse(side), OrderKind.parse(kind)
        _int(lots, "lots")
        _int(price_ticks, "price_ticks")
        if max_fills is not None:
            _int(max_fills, "max_fills")
        if self.phase not in (Phase.CALL, Phase.CONTINUOUS):
            raise WrongPhase(session=self.session, phase=self.phase)
        if lots < self.spec.min_lots:
            raise BelowMinimum(lots=lots, min_lots=self.spec.min_lots)
        if price_ticks == 0:
            raise BadPrice(tick=price_ticks)
        if kind is OrderKind.MARKET and self.phase is not Phase.CONTINUOUS:
            raise MarketOrderInCall(session=self.session)
        lock = self.spec.order_lock(side, lots, price_ticks)
        for token in TOKENS:
            if lock[token] > self.free(account, token):
                raise InsufficientFree(account=account, token=token, needed=lock[token],
                                       free=self.free(account, token))
        # Validated: from here on nothing can fail.
        for token in TOKENS:
            self._credit(account, token, -lock[token])
        order = _Order(len(self._orders) + 1, self.session, account, side, kind, lots, price_ticks,
                       self.spec.margin(lots, price_ticks), remaining=lots)
        self._orders[order.id] = order
        self._by_account.setdefault(account, []).append(order.id)
        session = self._sessions[-1]
        if session.phase is Phase.CALL:
            self._rest(session, order)
        else:
            self._take(session, order, max_fills)
        return order.id

    def cancel(self, account: Hashable, order_id: int) -> None:
        """Give back an open order's remaining lots (and its margin): CALL or CONTINUOUS of its session."""
        order = self._order(order_id)
        if order.account != account:
            raise NotOwner(order=order_id, account=account)
        if order.remaining == 0:
            raise AlreadyClosed(order=order_id)
        if order.session != self.session or self.phase not in (Phase.CALL, Phase.CONTINUOUS):
            raise WrongPhase(session=order.session, phase=self._sessions[order.session - 1].phase)
        self._return_remaining(order)

    def claim(self, order_ids: Iterable[int]) -> list[Payout]:
        """Pay what is due on each order, once: its auction fills once its session's clearing is done, its
        open remainder (and margin) once its session closed. Anyone may claim; nothing due pays nothing."""
        orders = [self._order(i) for i in list(order_ids)]
        return [self._claim_one(o) for o in orders]

    # -- reading --

    def free(self, account: Hashable, token: str) -> int:
        return self._free.get(account, {}).get(_token(token), 0)

    def locked(self, account: Hashable, token: str) -> int:
        """What the exchange holds for ``account`` outside its free balance: open orders' locks and margins,
        and auction proceeds (the asset, the unused lock, the value less fee) not yet claimed."""
        _token(token)
        index = TOKENS.index(token)
        return sum(self._holdings(self._orders[i])[index] for i in self._by_account.get(account, ()))

    def balances(self) -> dict[Hashable, dict[str, tuple[int, int]]]:
        """account -> token -> (free, locked), for every account the model has seen."""
        accounts = list(self._free) + [a for a in self._by_account if a not in self._free]
        return {a: {t: (self.free(a, t), self.locked(a, t)) for t in TOKENS} for a in accounts}

    def fee_recipient_balance(self) -> int:
        return self.free(self.spec.fee_recipient, SETTLEMENT)

    def order(self, order_id: int) -> OrderState:
        o = self._order(order_id)
        return OrderState(o.id, o.session, o.account, o.side, o.kind, o.lots, o.price_ticks, o.margin,
                          o.remaining, o.auction_lots, self._auction_value(o), o.continuous_lots,
                          o.returned_lots, o.auction_claimed, o.remaining == 0)

    def orders(self) -> list[OrderState]:
        return [self.order(i) for i in self._orders]

    def book(self, session: int | None = None) -> list[tuple[Side, int, int]]:
        """The open orders as (side, price ticks, remaining lots), best first per side (input for depth)."""
        s = self._session(session)
        return [(side, price, self._orders[i].remaining) for side in Side for price, i in s.book(side)]

    def snapshot(self) -> dict[str, Any]:
        """Everything the model holds, comparable with ==: a rejected operation leaves it equal."""
        return {
            "sessions": [(s.id, s.phase, s.last_pair_half_ticks, s.clearing_price_half_ticks, s.steps,
                          tuple(s.pending), tuple(s.auction_orders)) for s in self._sessions],
            "books": [tuple(self.book(s.id)) for s in self._sessions],
            "orders": self.orders(),
            "free": {a: dict(t) for a, t in self._free.items()},
            "deposited": dict(self._deposited),
            "withdrawn": dict(self._withdrawn),
            "fills": list(self.fills),
            "fees_collected": self.fees_collected,
        }

    def invariants(self) -> list[str]:
        """Violations of the exchange's invariants (empty when all hold)."""
        spec, problems = self.spec, []
        owed = dict.fromkeys(TOKENS, 0)
        for balances in self._free.values():
            for token, amount in balances.items():
                owed[token] += amount
                if amount < 0:
                    problems.append(f"negative free {token} balance {amount}")
        fills_by_order: dict[int, list[int]] = {}
        pending = [(b, s, q, None) for sess in self._sessions for b, s, q in sess.pending]
        for f in self.fills:
            buy, sell = self._orders[f.buy_order], self._orders[f.sell_order]
            if not 2 * sell.price_ticks <= f.price_half_ticks <= 2 * buy.price_ticks:
                problems.append(f"fill {f} outside [ask {sell.price_ticks}, bid {buy.price_ticks}]")
            if buy.side is not Side.BID or sell.side is not Side.ASK or buy.account == sell.account:
                problems.append(f"fill {f} pairs {buy.side.name}/{sell.side.name} of {buy.account}/{sell.account}")
            if f.lots <= 0 or f.value != spec.value(f.lots, f.price_half_ticks):
                problems.append(f"fill {f}: value is not lots x price")
            if f.phase is Phase.CONTINUOUS:
                maker = min(buy, sell, key=lambda o: o.id)
                if f.price_half_ticks != 2 * maker.price_ticks:
                    problems.append(f"continuous fill {f} not at the resting order {maker.id}'s price")
                if (f.buyer_fee, f.seller_fee) != (spec.buyer_fee(f.value), spec.seller_fee(f.value)):
                    problems.append(f"continuous fill {f}: fees are not rounded-down bps of the value")
            elif spec.pricing is Pricing.UNIFORM:
                clearing = self._sessions[f.session - 1].clearing_price_half_ticks
                if f.price_half_ticks != clearing:
                    problems.append(f"uniform auction fill {f} not at the clearing price {clearing}")
        for b, s, q, phase in [(f.buy_order, f.sell_order, f.lots, f.phase) for f in self.fills] + pending:
            for order_id in (b, s):
                fills_by_order.setdefault(order_id, [0, 0])[phase is Phase.CONTINUOUS] += q
        for o in self._orders.values():
            asset, settlement, fee = self._holdings(o)
            owed[ASSET] += asset
            owed[SETTLEMENT] += settlement + fee
            if min(asset, settlement, fee, o.remaining) < 0:
                problems.append(f"order {o.id} holds a negative amount ({asset}, {settlement}, {fee})")
            if o.remaining + o.auction_lots + o.continuous_lots + o.returned_lots != o.lots:
                problems.append(f"order {o.id}: lots do not add up ({o})")
            if [o.auction_lots, o.continuous_lots] != fills_by_order.get(o.id, [0, 0]):
                problems.append(f"order {o.id}: filled lots differ from its fills")
            if o.in_book != (o.remaining > 0):
                problems.append(f"order {o.id}: in the book is {o.in_book} with {o.remaining} lots open")
        for s in self._sessions:
            for side in Side:
                for price, order_id in s.book(side):
                    o = self._orders[order_id]
                    if (o.session, o.side, o.price_ticks, o.kind) != (s.id, side, price, OrderKind.LIMIT):
                        problems.append(f"order {order_id} is misfiled in session {s.id}'s {side.name} book")
            bid, ask = s.bids.best_price(), s.asks.best_price()
            if s.phase in (Phase.CONTINUOUS, Phase.CLOSED) and bid is not None and ask is not None and bid >= ask:
                problems.append(f"session {s.id} book crossed in {s.phase.name}: bid {bid} >= ask {ask}")
        for token in TOKENS:
            held = self._deposited[token] - self._withdrawn[token]
            if owed[token] != held:
                problems.append(f"{token}: the exchange holds {held} but owes {owed[token]}")
        return problems

    # -- internals --

    def _require(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise WrongPhase(session=self.session, phase=self.phase)

    def _session(self, session: int | None) -> _Session:
        session = self.session if session is None else session
        if not 1 <= _int(session, "session") <= len(self._sessions):
            raise InvalidInput(f"no session {session}")
        return self._sessions[session - 1]

    def _order(self, order_id: int) -> _Order:
        order = self._orders.get(_int(order_id, "order id"))
        if order is None:
            raise UnknownOrder(order=order_id)
        return order

    def _credit(self, account: Hashable, token: str, amount: int) -> None:
        balances = self._free.setdefault(account, dict.fromkeys(TOKENS, 0))
        balances[token] += amount

    def _rest(self, session: _Session, order: _Order) -> None:
        session.book(order.side).add(order.price_ticks, order.id)
        order.in_book = True

    def _close(self, order: _Order) -> None:
        """The order has no open lots any more: out of the book, margin back to its owner."""
        if order.in_book:
            self._sessions[order.session - 1].book(order.side).remove(order.price_ticks, order.id)
            order.in_book = False
        self._credit(order.account, SETTLEMENT, order.margin)

    def _return_remaining(self, order: _Order) -> None:
        """Cancel the open lots: their lock and the margin go back to the owner's free balance."""
        lots = order.remaining
        if order.side is Side.BID:
            self._credit(order.account, SETTLEMENT, self.spec.bid_lock(lots, order.price_ticks))
        else:
            self._credit(order.account, ASSET, self.spec.asset(lots))
        order.returned_lots += lots
        order.remaining = 0
        self._close(order)

    def _auction_value(self, order: _Order) -> int | None:
        session = self._sessions[order.session - 1]
        if self.spec.pricing is Pricing.UNIFORM and session.phase in (Phase.CALL, Phase.CLEARING):
            return None if order.auction_lots else 0
        return order.auction_value

    def _holdings(self, o: _Order) -> tuple[int, int, int]:
        """(asset, settlement) the exchange owes the owner on this order beyond its free balance, and the
        auction fee it owes the fee recipient on it; under UNIFORM before the price is known, at the midpoint
        of the last pair so far (any price in range gives the same totals)."""
        spec = self.spec
        asset = settlement = fee = 0
        if o.remaining:
            settlement += o.margin
            if o.side is Side.BID:
                settlement += spec.bid_lock(o.remaining, o.price_ticks)
            else:
                asset += spec.asset(o.remaining)
        if o.auction_lots and not o.auction_claimed:
            value = self._auction_value(o)
            if value is None:
                value = spec.value(o.auction_lots, self._sessions[o.session - 1].last_pair_half_ticks)
            if o.side is Side.BID:
                fee = spec.buyer_fee(value)
                asset += spec.asset(o.auction_lots)
                settlement += self._auction_lock(o) - value - fee
            else:
                fee = spec.seller_fee(value)
                settlement += value - fee
        return asset, settlement, fee

    def _auction_lock(self, bid: _Order) -> int:
        """The part of a bid's lock that belongs to its auction lots (filled before any continuous fill)."""
        return self.spec.bid_lock(bid.lots, bid.price_ticks) - self.spec.bid_lock(
            bid.lots - bid.auction_lots, bid.price_ticks)

    # the call auction

    def _crossing_pair(self, session: _Session) -> tuple[_Order, _Order] | None:
        bid_id, ask_id = session.bids.head(), session.asks.head()
        if bid_id is None or ask_id is None:
            return None
        bid, ask = self._orders[bid_id], self._orders[ask_id]
        return (bid, ask) if bid.price_ticks >= ask.price_ticks else None

    def _auction_step(self, session: _Session) -> bool:
        """One clearing step; False when nothing crosses (clearing is done)."""
        pair = self._crossing_pair(session)
        if pair is None:
            return False
        bid, ask = pair
        session.steps += 1
        if bid.account == ask.account:  # self-trade: the ask's remainder is cancelled
            self._return_remaining(ask)
            return True
        lots = min(bid.remaining, ask.remaining)
        price = bid.price_ticks + ask.price_ticks  # the midpoint, in half-ticks
        session.last_pair_half_ticks = price
        for order in (bid, ask):
            order.remaining -= lots
            order.auction_lots += lots
            session.auction_orders[order.id] = None
        if self.spec.pricing is Pricing.MIDPOINT:
            value = self.spec.value(lots, price)
            bid.auction_value += value
            ask.auction_value += value
            self.fills.append(Fill(session.id, bid.id, ask.id, lots, price, value, None, None, Phase.CLEARING))
        else:
            session.pending.append((bid.id, ask.id, lots))
        for order in (bid, ask):
            if order.remaining == 0:
                self._close(order)
        return True

    def _finish_clearing(self, session: _Session) -> None:
        if self.spec.pricing is Pricing.UNIFORM and session.last_pair_half_ticks is not None:
            price = session.clearing_price_half_ticks = session.last_pair_half_ticks
            for order_id in session.auction_orders:
                order = self._orders[order_id]
                order.auction_value = self.spec.value(order.auction_lots, price)
            for buy, sell, lots in session.pending:
                self.fills.append(Fill(session.id, buy, sell, lots, price, self.spec.value(lots, price),
                                       None, None, Phase.CLEARING))
            session.pending.clear()
        session.phase = Phase.CONTINUOUS

    # continuous trading

    @staticmethod
    def _crosses(taker: _Order, resting_price: int) -> bool:
        if taker.side is Side.BID:
            return resting_price <= taker.price_ticks
        return resting_price >= taker.price_ticks

    def _take(self, session: _Session, taker: _Order, max_fills: int | None) -> None:
        resting = session.book(Side.ASK if taker.side is Side.BID else Side.BID)
        walked = 0
        while taker.remaining and (max_fills is None or walked < max_fills):
            maker_id = resting.head()
            if maker_id is None or not self._crosses(taker, self._orders[maker_id].price_ticks):
                break
            maker = self._orders[maker_id]
            walked += 1
            if maker.account == taker.account:  # self-trade prevention: cancel the resting order
                self._return_remaining(maker)
                continue
            bid, ask = (taker, maker) if taker.side is Side.BID else (maker, taker)
            self._continuous_fill(session, bid, ask, min(taker.remaining, maker.remaining), 2 * maker.price_ticks)
        if taker.remaining == 0:
            return
        head = resting.head()
        still_crosses = head is not None and self._crosses(taker, self._orders[head].price_ticks)
        if taker.kind is OrderKind.MARKET or still_crosses:
            self._return_remaining(taker)
        else:
            self._rest(session, taker)

    def _continuous_fill(self, session: _Session, bid: _Order, ask: _Order, lots: int, price: int) -> None:
        """Settles at once: buyer gets the asset and the unused lock, seller value less fee, platform fees."""
        spec = self.spec
        value = spec.value(lots, price)
        buyer_fee, seller_fee = spec.buyer_fee(value), spec.seller_fee(value)
        released = spec.bid_lock(bid.remaining, bid.price_ticks) - spec.bid_lock(bid.remaining - lots,
                                                                                 bid.price_ticks)
        self._credit(bid.account, ASSET, spec.asset(lots))
        self._credit(bid.account, SETTLEMENT, released - value - buyer_fee)
        self._credit(ask.account, SETTLEMENT, value - seller_fee)
        self._credit(spec.fee_recipient, SETTLEMENT, buyer_fee + seller_fee)
        self.fees_collected += buyer_fee + seller_fee
        for order in (bid, ask):
            order.remaining -= lots
            order.continuous_lots += lots
        self.fills.append(Fill(session.id, bid.id, ask.id, lots, price, value, buyer_fee, seller_fee,
                               Phase.CONTINUOUS))
        for order in (bid, ask):
            if order.remaining == 0:
                self._close(order)

    # claims

    def _claim_one(self, order: _Order) -> Payout:
        spec, session = self.spec, self._sessions[order.session - 1]
        before = (self.free(order.account, ASSET), self.free(order.account, SETTLEMENT), self.fees_collected)
        if order.auction_lots and not order.auction_claimed and session.phase in (Phase.CONTINUOUS,
                                                                                    Phase.CLOSED):
            value = order.auction_value
            if order.side is Side.BID:
                fee = spec.buyer_fee(value)
                self._credit(order.account, ASSET, spec.asset(order.auction_lots))
                self._credit(order.account, SETTLEMENT, self._auction_lock(order) - value - fee)
            else:
                fee = spec.seller_fee(value)
                self._credit(order.account, SETTLEMENT, value - fee)
            self._credit(spec.fee_recipient, SETTLEMENT, fee)
            self.fees_collected += fee
            order.auction_claimed = True
        if order.remaining and session.phase is Phase.CLOSED:
            self._return_remaining(order)
        after = (self.free(order.account, ASSET), self.free(order.account, SETTLEMENT), self.fees_collected)
        asset, settlement, fee = (a - b for a, b in zip(after, before))
        if order.account == spec.fee_recipient:  # the fee landed in the same free balance
            settlement -= fee
        return Payout(order.id, asset, settlement, fee)
