"""The exchange: markets, sessions, deposits, orders, the call auction, continuous trading, claims, market data.

    market = platform.exchange.create_market(allowance_token, settlement_token, lot_size=tonnes(1),
                                             tick_size=100, buyer_fee_bps=10, seller_fee_bps=10)
    platform.exchange.open_session(market.id, call_deadline=t1, closes_at=t2)
    trader.exchange.deposit(settlement_token, 5_000_000)
    order = trader.exchange.place_order(market.id, Side.BID, lots=100, tick=8_000)      # 80.00 / t
    anyone.exchange.clear_all(market.id)                                                # after the deadline
    anyone.exchange.claim(market.id)                                                    # every closed order

Rules, units and rounding: docs/exchange.md. Quantities are lots, prices ticks; `market.price(tick)` gives
settlement units per tonne.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from carbon_sdk.errors import InvalidInput, contract_error
from carbon_sdk.market_data import Bar, Depth, Trade, depth, ohlcv
from carbon_sdk.registry import checked_address, _region
from carbon_sdk.tx import Progress, Receipt
from carbon_sdk.types import OrderKind, Pricing, Role, SessionPhase, Side, order_parts, roles_mask
from carbon_sdk.units import UNITS_PER_TONNE, checked_amount

if TYPE_CHECKING:
    from carbon_sdk.client import BoundContract, CarbonClient

CONTRACT = "CarbonExchange"
SEALED = "SealedAuction"
MAX_BATCH = 100  # orders per placeOrders / claim call
MAX_TICK = 2**16 - 1
DEFAULT_MAX_FILLS = 50
DEFAULT_CLEAR_STEPS = 300  # matching steps per clear() transaction: well inside a 30M-gas block


@dataclass(frozen=True)
class Market:
    id: int
    asset: str
    settlement: str
    lot_size: int
    tick_size: int
    min_lots: int
    buyer_fee_bps: int
    seller_fee_bps: int
    margin_bps: int
    pricing: Pricing
    region: int
    seller_roles: tuple[Role, ...]
    buyer_roles: tuple[Role, ...]
    operator: str
    session: int
    fees_accrued: int

    def price(self, tick: int | Fraction) -> Fraction:
        """Settlement units per tonne at ``tick`` (a Fraction: midpoints may fall on half ticks)."""
        return Fraction(tick) * self.tick_size

    def tick(self, price_per_tonne: int) -> int:
        """The tick of a price in settlement units per tonne (it must be a whole number of ticks)."""
        if price_per_tonne <= 0 or price_per_tonne % self.tick_size:
            raise InvalidInput(f"price {price_per_tonne} is not a positive multiple of the tick size {self.tick_size}")
        return price_per_tonne // self.tick_size

    def value(self, lots: int, tick: int | Fraction) -> int:
        """Settlement units that ``lots`` cost at ``tick`` (exact, docs/exchange.md)."""
        exact = Fraction(lots * self.lot_size * self.tick_size) * Fraction(tick) / UNITS_PER_TONNE
        assert exact.denominator == 1
        return int(exact)


@dataclass(frozen=True)
class Session:
    market: int
    session: int
    phase: SessionPhase
    sealed: bool
    call_deadline: int
    closes_at: int
    cleared: bool
    uniform_price2: int  # half-ticks (UNIFORM markets, once cleared)


@dataclass(frozen=True)
class Order:
    id: int
    owner: str
    market: int
    session: int
    side: Side
    tick: int
    index: int
    lots: int
    open_lots: int
    filled_lots: int
    auction_lots: int
    value: int
    claimed: bool

    @property
    def closed(self) -> bool:
        return self.open_lots == 0


@dataclass(frozen=True)
class Fill:
    """One trade, from its Trade event. ``price2`` is in half-ticks; a taker that filled at once has id 0."""

    market: int
    session: int
    bid_order: int
    ask_order: int
    lots: int
    price2: int
    value: int
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class Placement:
    """What placing an order did: its id (0 if it never rested), its fills, and the taker settlement."""

    order_id: int
    fills: tuple[Fill, ...]
    filled_lots: int
    value: int
    settled: bool  # the order filled completely (or was a market order) and was settled at once
    tx_hash: str


@dataclass(frozen=True)
class Clearing:
    done: bool
    pairs: int
    self_trades: int
    transactions: int
    uniform_price2: int


@dataclass(frozen=True)
class Claim:
    order_id: int
    owner: str
    asset: int
    settlement: int
    fee: int
    tx_hash: str


@dataclass(frozen=True)
class SealedOrder:
    """A committed order and what revealing it needs: keep it (the salt) until the reveal."""

    market: int
    session: int
    order: "OrderSpec"
    salt: bytes
    commitment: bytes
    tx_hash: str


@dataclass(frozen=True)
class OrderSpec:
    """One order of a batch."""

    side: Side
    lots: int
    tick: int
    kind: OrderKind = OrderKind.LIMIT

    def encode(self) -> tuple[int, int, int, int]:
        return (int(self.side), int(self.kind), self.lots, self.tick)


class ExchangeModule:
    """Markets, sessions, deposits, orders, clearing and claims on the CarbonExchange contract."""

    def __init__(self, client: "CarbonClient"):
        self._client = client

    @property
    def contract(self) -> "BoundContract":
        return self._client.contract(CONTRACT)

    # -- markets and sessions -----------------------------------------------------------------------------

    def create_market(self, asset: str, settlement: str, *, lot_size: int, tick_size: int, min_lots: int = 1,
                      buyer_fee_bps: int = 0, seller_fee_bps: int = 0, margin_bps: int = 0,
                      pricing: Pricing | str = Pricing.MIDPOINT, region: int = 0,
                      sellers: Iterable[Role | str] = (Role.ENTERPRISE, Role.PLATFORM, Role.REGULATOR),
                      buyers: Iterable[Role | str] = (Role.ENTERPRISE, Role.PLATFORM)) -> Market:
        """Create a market operated by the caller (a PLATFORM or REGULATOR), who receives its fees."""
        if (lot_size * tick_size) % (2 * UNITS_PER_TONNE):
            raise InvalidInput(f"lot_size x tick_size ({lot_size} x {tick_size}) must be a multiple of 2,000,000 so "
                               "that every price, midpoints included, is exact (docs/exchange.md)")
        for name, bps in (("buyer_fee_bps", buyer_fee_bps), ("seller_fee_bps", seller_fee_bps)):
            if not 0 <= bps <= 1000:
                raise InvalidInput(f"{name} {bps} must be from 0 to 1000")
        params = (checked_address(asset, "asset"), checked_address(settlement, "settlement"),
                  checked_amount(lot_size, "lot_size", bits=64), checked_amount(tick_size, "tick_size", bits=64),
                  checked_amount(min_lots, "min_lots", bits=24), buyer_fee_bps, seller_fee_bps, margin_bps,
                  int(Pricing.parse(pricing)), _region(region), roles_mask([Role.parse(r) for r in sellers]),
                  roles_mask([Role.parse(r) for r in buyers]))
        receipt = self._client.transact(self.contract.tx("createMarket", params))
        return self.market(self.contract.event_args(receipt, "MarketCreated")["market"])

    def open_session(self, market: int, *, call_deadline: int, closes_at: int, sealed: bool = False) -> Session:
        """Open the market's next session (its operator). A sealed session's call phase takes orders only as
        revealed commitments (``client.sealed``)."""
        receipt = self._client.transact(self.contract.tx("openSession", market, call_deadline, closes_at, sealed))
        return self.session(market, self.contract.event_args(receipt, "SessionOpened")["session"])

    def market(self, market: int) -> Market:
        raw = self.contract.call("marketOf", market)
        p = raw["params"]
        return Market(id=market, asset=p["asset"], settlement=p["settlement"], lot_size=p["lotSize"],
                      tick_size=p["tickSize"], min_lots=p["minLots"], buyer_fee_bps=p["buyerFeeBps"],
                      seller_fee_bps=p["sellerFeeBps"], margin_bps=p["marginBps"], pricing=Pricing(p["pricing"]),
                      region=p["region"], seller_roles=_roles(p["sellerRoles"]), buyer_roles=_roles(p["buyerRoles"]),
                      operator=raw["operator"], session=raw["session"], fees_accrued=raw["feesAccrued"])

    def markets(self) -> list[Market]:
        return [self.market(i) for i in range(1, self.contract.call("marketCount") + 1)]

    def session(self, market: int, session: int | None = None) -> Session:
        """A session (the market's current one by default)."""
        session = self.market(market).session if session is None else session
        raw = self.contract.call("sessionOf", market, session)
        return Session(market, session, SessionPhase(raw["phase"]), raw["isSealed"], raw["callDeadline"],
                       raw["closesAt"], raw["cleared"], raw["uniformPrice2"])

    # -- deposits -----------------------------------------------------------------------------------------

    def deposit(self, token: str, amount: int) -> int:
        """Move tokens into the caller's deposit (approves, then deposits); returns the free balance."""
        token = checked_address(token, "token")
        amount = checked_amount(amount, "amount")
        if not self.contract.call("tokenListed", token):  # checked before the approval: a refusal sends nothing
            raise contract_error("ExchangeUnknownToken", token=token)
        erc20 = self._client.bind("ERC20", token, self._client.manifest.abi("VintageToken"))
        held = int(erc20.call("balanceOf", self._client.address))
        if held < amount:  # checked before the approval, so a refused deposit sends nothing
            raise contract_error("ERC20InsufficientBalance", sender=self._client.address, balance=held, needed=amount)
        self._client.transact(erc20.tx("approve", self.contract.address, amount))
        self._client.transact(self.contract.tx("deposit", token, amount))
        return self.free_balance(token)

    def withdraw(self, token: str, amount: int) -> int:
        self._client.transact(self.contract.tx("withdraw", checked_address(token, "token"),
                                               checked_amount(amount, "amount")))
        return self.free_balance(token)

    def free_balance(self, token: str, account: str | None = None) -> int:
        return int(self.contract.call("freeBalance", checked_address(account or self._client.address, "account"),
                                      checked_address(token, "token")))

    # -- orders -------------------------------------------------------------------------------------------

    def place_order(self, market: int, side: Side | str, lots: int, tick: int, *,
                    kind: OrderKind | str = OrderKind.LIMIT, max_fills: int = DEFAULT_MAX_FILLS) -> Placement:
        spec = _spec(side, lots, tick, kind)
        receipt = self._client.transact(self.contract.tx("placeOrder", market, spec.encode(), max_fills))
        return self._placement(receipt)

    def place_orders(self, market: int, orders: Sequence[OrderSpec | tuple], *,
                     max_fills: int = DEFAULT_MAX_FILLS, progress: Progress | None = None) -> list[int]:
        """Place many orders, up to 100 per transaction; returns the ids of those that rest (0 otherwise)."""
        specs = [o if isinstance(o, OrderSpec) else _spec(*o) for o in orders]
        if not specs:
            raise InvalidInput("no orders given")
        ids: list[int] = []
        for start in range(0, len(specs), MAX_BATCH):
            chunk = specs[start:start + MAX_BATCH]
            receipt = self._client.transact(self.contract.tx("placeOrders", market, [s.encode() for s in chunk],
                                                             max_fills))
            # One OrderPlaced (it rests) or TakerSettled (filled at once) per order, in order.
            events = [e for e in self.contract.events(receipt) if e.name in ("OrderPlaced", "TakerSettled")]
            ids.extend(e.args["orderId"] if e.name == "OrderPlaced" else 0 for e in events)
            if progress:
                progress(len(chunk))
        return ids

    def cancel(self, order_id: int) -> str:
        return self._client.transact(self.contract.tx("cancel", order_id)).tx_hash

    def order(self, order_id: int) -> Order:
        return _order(order_id, self.contract.call("orderOf", order_id))

    def orders(self, market: int, session: int | None = None, owner: str | None = None) -> list[Order]:
        """Every order placed in a session (the current one by default), from the events, with its state."""
        session = self.market(market).session if session is None else session
        topics: list[Any] = [None, None if owner is None else _topic(owner), "0x" + market.to_bytes(32, "big").hex()]
        ids = [e.args["orderId"] for e in self.contract.logs(["OrderPlaced"], topics=topics)
               if order_parts(e.args["orderId"])["session"] == session]
        return [_order(i, raw) for i, raw in zip(ids, self.contract.call_many("orderOf", [(i,) for i in ids]))]

    # -- the call auction and claims ------------------------------------------------------------------------

    def clear(self, market: int, max_steps: int = DEFAULT_CLEAR_STEPS) -> Clearing:
        """One clearing transaction of at most ``max_steps`` steps (anyone, after the call deadline)."""
        receipt = self._client.transact(self.contract.tx("clear", market, max_steps))
        return self._clearing([receipt])

    def clear_all(self, market: int, max_steps: int = DEFAULT_CLEAR_STEPS,
                  progress: Progress | None = None) -> Clearing:
        """Clear until done, one bounded transaction after another."""
        receipts: list[Receipt] = []
        while True:
            receipts.append(self._client.transact(self.contract.tx("clear", market, max_steps)))
            result = self._clearing(receipts)
            if progress:
                progress(1)
            if result.done:
                return result

    def claimable(self, market: int, session: int | None = None) -> list[int]:
        """The orders of a session that a claim would pay now."""
        current = self.session(market, session)
        out = []
        if current.phase is SessionPhase.CLEARING:  # claims wait for the auction's price
            return []
        for order in self.orders(market, current.session):
            if not order.claimed and (order.open_lots == 0 or current.phase is SessionPhase.CLOSED):
                out.append(order.id)
        return out

    def claim(self, market: int | None = None, order_ids: Sequence[int] | None = None, *,
              progress: Progress | None = None) -> list[Claim]:
        """Pay out orders (the given ones, or every claimable order of the market's current session)."""
        if order_ids is None:
            if market is None:
                raise InvalidInput("give a market or the order ids to claim")
            order_ids = self.claimable(market)
        claims: list[Claim] = []
        for start in range(0, len(order_ids), MAX_BATCH):
            receipt = self._client.transact(self.contract.tx("claim", list(order_ids[start:start + MAX_BATCH])))
            claims.extend(Claim(e.args["orderId"], e.args["owner"], e.args["asset"], e.args["settlement"],
                                e.args["fee"], receipt.tx_hash)
                          for e in self.contract.events(receipt) if e.name == "OrderClaimed")
            if progress:
                progress(len(order_ids[start:start + MAX_BATCH]))
        return claims

    def collect_fees(self, market: int) -> int:
        receipt = self._client.transact(self.contract.tx("collectFees", market))
        return self.contract.event_args(receipt, "FeesCollected")["amount"]

    # -- sealed sessions ----------------------------------------------------------------------------------

    @property
    def sealed(self) -> "BoundContract":
        return self._client.contract(SEALED)

    def configure_sealed(self, market: int, *, commit_deadline: int, bond: int) -> dict[str, int]:
        """Set the commit deadline and bond of the market's current sealed session (its operator)."""
        self._client.transact(self.sealed.tx("configure", market, commit_deadline,
                                             checked_amount(bond, "bond", allow_zero=True, bits=128)))
        raw = self.sealed.call("roundOf", market, self.market(market).session)
        return {"commit_deadline": raw["commitDeadline"], "call_deadline": raw["callDeadline"], "bond": raw["bond"]}

    def commit_order(self, market: int, side: Side | str, lots: int, tick: int, *,
                     kind: OrderKind | str = OrderKind.LIMIT, salt: bytes | None = None) -> SealedOrder:
        """Commit to an order of the market's current sealed session, paying its bond (approved here)."""
        import os

        spec = _spec(side, lots, tick, kind)
        session = self.market(market).session
        salt = salt or os.urandom(32)
        commitment = self.sealed.call("commitmentOf", self._client.address, market, session, spec.encode(), salt)
        bond = self.sealed.call("roundOf", market, session)["bond"]
        if bond:
            self._client.settlement.approve(self.sealed.address, bond)
        receipt = self._client.transact(self.sealed.tx("commit", market, session, commitment))
        return SealedOrder(market, session, spec, salt, commitment, receipt.tx_hash)

    def reveal(self, sealed: SealedOrder) -> Placement:
        """Reveal a committed order (after the commit deadline, before the call deadline): the exchange places
        it, the bond comes back."""
        receipt = self._client.transact(self.sealed.tx("reveal", sealed.market, sealed.session,
                                                       sealed.order.encode(), sealed.salt))
        return self._placement(receipt)

    def forfeit(self, commitments: Sequence[bytes]) -> int:
        """Send the bonds of unrevealed commitments to the market's operator (anyone, after the call
        deadline); returns the bonds forfeited."""
        receipt = self._client.transact(self.sealed.tx("forfeit", list(commitments)))
        return sum(e.args["bond"] for e in self.sealed.events(receipt) if e.name == "Forfeited")

    # -- market data --------------------------------------------------------------------------------------

    def fills(self, market: int, session: int | None = None) -> list[Fill]:
        topics: list[Any] = ["0x" + market.to_bytes(32, "big").hex()]
        if session is not None:
            topics.append("0x" + session.to_bytes(32, "big").hex())
        uniform = {(e.args["market"], e.args["session"]): e.args["uniformPrice2"]
                   for e in self.contract.logs(["AuctionCleared"], topics=topics)}
        m = self.market(market)
        out = []
        for e in self.contract.logs(["Trade"], topics=topics):
            a = e.args
            price2, value = a["price2"], a["value"]
            if price2 == 0:  # a UNIFORM auction pair: priced when the auction cleared
                price2 = uniform.get((a["market"], a["session"]), 0)
                value = m.value(a["lots"], Fraction(price2, 2)) if price2 else 0
            out.append(Fill(a["market"], a["session"], a["bidOrder"], a["askOrder"], a["lots"], price2, value,
                            e.tx_hash, e.block_number))
        return out

    def trades(self, market: int, session: int | None = None) -> list[Trade]:
        """Fills as market-data trades (price per tonne, quantity in asset units, block time)."""
        m = self.market(market)
        fills = [f for f in self.fills(market, session) if f.price2]
        times = self._client.block_times(f.block_number for f in fills)
        return [Trade(time=times[f.block_number], price=m.price(Fraction(f.price2, 2)),
                      quantity=f.lots * m.lot_size, block_number=f.block_number, tx_hash=f.tx_hash) for f in fills]

    def ohlcv(self, market: int, interval_seconds: int, session: int | None = None, **options: Any) -> list[Bar]:
        return ohlcv(self.trades(market, session), interval_seconds, **options)

    def depth(self, market: int, session: int | None = None) -> Depth:
        """The open quantity per price level of a session's book (lots), bids descending, asks ascending."""
        m = self.market(market)
        levels: dict[tuple[str, int], int] = {}
        for order in self.orders(market, session):
            if order.open_lots:
                key = (order.side.name.lower(), order.tick)
                levels[key] = levels.get(key, 0) + order.open_lots
        return depth((side, m.price(tick), lots) for (side, tick), lots in levels.items())

    # -- parsing ------------------------------------------------------------------------------------------

    def _placement(self, receipt: Receipt) -> Placement:
        events = self.contract.events(receipt)
        fills = tuple(_fill(e) for e in events if e.name == "Trade")
        placed = [e.args for e in events if e.name == "OrderPlaced"]
        settled = [e.args for e in events if e.name == "TakerSettled"]
        order_id = placed[0]["orderId"] if placed else 0
        return Placement(order_id, fills, sum(f.lots for f in fills), sum(f.value for f in fills), bool(settled),
                         receipt.tx_hash)

    def _clearing(self, receipts: Sequence[Receipt]) -> Clearing:
        pairs = self_trades = 0
        done, uniform = False, 0
        for receipt in receipts:
            for e in self.contract.events(receipt):
                if e.name == "Trade":
                    pairs += 1
                elif e.name == "OrderCancelled" and e.args["reason"] == 1:
                    self_trades += 1
                elif e.name == "AuctionCleared":
                    done, uniform = True, e.args["uniformPrice2"]
        return Clearing(done, pairs, self_trades, len(receipts), uniform)


def _spec(side: Side | str | int, lots: int, tick: int, kind: OrderKind | str | int = OrderKind.LIMIT) -> OrderSpec:
    if not isinstance(tick, int) or not 1 <= tick <= MAX_TICK:
        raise InvalidInput(f"tick {tick!r} must be a whole number of ticks from 1 to {MAX_TICK}")
    return OrderSpec(Side.parse(side), checked_amount(lots, "lots", bits=32), tick, OrderKind.parse(kind))


def _order(order_id: int, raw: dict[str, Any]) -> Order:
    return Order(id=order_id, owner=raw["owner"], market=raw["market"], session=raw["session"],
                 side=Side(raw["side"]), tick=raw["tick"], index=raw["index"], lots=raw["lots"],
                 open_lots=raw["openLots"], filled_lots=raw["filledLots"], auction_lots=raw["auctionLots"],
                 value=raw["value"], claimed=raw["claimed"])


def _fill(event: Any) -> Fill:
    a = event.args
    return Fill(a["market"], a["session"], a["bidOrder"], a["askOrder"], a["lots"], a["price2"], a["value"],
                event.tx_hash, event.block_number)


def _roles(mask: int) -> tuple[Role, ...]:
    return tuple(r for r in Role if r is not Role.NONE and mask & (1 << int(r)))


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + checked_address(address)[2:].lower()


__all__ = ["Claim", "Clearing", "ExchangeModule", "Fill", "Market", "Order", "OrderKind", "OrderSpec", "Placement",
           "Pricing", "SealedOrder", "Session", "SessionPhase", "Side", "order_parts"]
