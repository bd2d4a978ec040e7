"""Shared by the exchange's contract tests: a trading venue on a fresh deployment, the chain's events turned
into the reference model's (so a test compares them with ==), snapshots for "nothing changed", and the
conservation check of docs/exchange.md computed from the chain alone."""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import pytest

from carbon_sdk import CarbonClient, Role
from carbon_sdk.errors import ContractCustomError
from carbon_sdk.exchange_model import (
    ASSET,
    SETTLEMENT,
    AuctionCleared,
    Cancelled,
    CancelReason,
    Deposited,
    ExchangeModel,
    FeesCollected,
    Fill,
    MarketSpec,
    ModelError,
    OrderKind,
    Payout,
    Placed,
    Pricing,
    Side,
    TakerSettled,
    Withdrawn,
)
from carbon_sdk.tx import Receipt
from carbon_sdk.units import tonnes

BPS = 10_000
NO_EVENTS = ("MarketCreated", "SessionOpened")  # events the model does not emit (it keeps no clock)


@dataclass
class Venue:
    """One deployment (the module's ``market`` fixture) with an operator, traders holding an allowance vintage
    and settlement tokens in their exchange deposits, and helpers to run markets on it."""

    chain: Any  # tests/conftest.py Market
    operator: CarbonClient
    traders: list[CarbonClient]
    asset: str
    settlement: str
    clients: dict[str, CarbonClient] = field(default_factory=dict)
    home: int = 0  # a first market of the pair, created so that the exchange knows both tokens
    period: int = 0

    @classmethod
    def create(cls, chain: Any, traders: int = 6, asset_each: int = tonnes(100_000),
               cash_each: int = 10**13, deposit: bool = True) -> "Venue":
        operator = chain.platform()
        members = [chain.enterprise() for _ in range(traders)]
        # Long phases: the tests move the clock a lot, and new traders get allowances late.
        period = chain.open_period(tonnes(10**9), reconciliation_in=10**9, closes_in=2 * 10**9)
        chain.regulator.allowances.allocate(period.id, {m.address: asset_each for m in members})
        settlement = chain.manifest.contract("SettlementToken").address
        for m in members:
            operator.settlement.issue(m.address, cash_each, fiat_reference="test funds")
        venue = cls(chain, operator, members, period.allowance, settlement, period=period.id)
        venue.clients = {c.address: c for c in [operator, *members]}
        # The exchange knows a token once a market trades it: a first market makes deposits possible.
        venue.home = operator.exchange.create_market(period.allowance, settlement, lot_size=tonnes(1), tick_size=2).id
        if deposit:
            for m in members:
                m.exchange.deposit(period.allowance, asset_each)
                m.exchange.deposit(settlement, cash_each)
        return venue

    def new_trader(self, region: int = 0, asset: int = tonnes(1_000), cash: int = 10**10) -> CarbonClient:
        """A fresh enterprise with ``asset`` allowances (national markets only) and ``cash`` settlement units in
        its exchange deposit."""
        trader = self.chain.enterprise(region)
        if asset:
            self.chain.regulator.allowances.allocate(self.period, {trader.address: asset}, region=region)
            trader.exchange.deposit(self.asset, asset)
        self.operator.settlement.issue(trader.address, cash, fiat_reference="test funds")
        trader.exchange.deposit(self.settlement, cash)
        self.clients[trader.address] = trader
        return trader

    @property
    def exchange(self):
        return self.operator.exchange.contract

    @property
    def tokens(self) -> dict[str, str]:
        """token name in the model -> address."""
        return {ASSET: self.asset, SETTLEMENT: self.settlement}

    # -- markets ----------------------------------------------------------------------------------------

    def new_market(self, spec: MarketSpec, accounts: Iterable[str] = (), *,
                   sellers: Sequence[Role] = (Role.ENTERPRISE, Role.PLATFORM, Role.REGULATOR),
                   buyers: Sequence[Role] = (Role.ENTERPRISE, Role.PLATFORM), region: int = 0,
                   by: CarbonClient | None = None) -> ExchangeModel:
        """Create the market on chain and return its model: same parameters, the chain's market id and
        operator, and the chain's free balances of ``accounts`` (and the operator) as its deposits."""
        by = by or self.operator
        market = by.exchange.create_market(
            self.asset, self.settlement, lot_size=spec.lot_size, tick_size=spec.tick_size, min_lots=spec.min_lots,
            buyer_fee_bps=spec.buyer_fee_bps, seller_fee_bps=spec.seller_fee_bps, margin_bps=spec.margin_bps,
            pricing=int(spec.pricing), region=region, sellers=sellers, buyers=buyers)
        model = ExchangeModel(MarketSpec(
            spec.lot_size, spec.tick_size, spec.min_lots, spec.buyer_fee_bps, spec.seller_fee_bps, spec.margin_bps,
            spec.pricing, operator=by.address, market=market.id, region=region, seller_roles=sellers,
            buyer_roles=buyers))
        for account in dict.fromkeys([*accounts, by.address]):
            self.join(model, account)
        model.events.clear()
        return model

    def join(self, model: ExchangeModel, account: str) -> None:
        """Tell the model what the chain knows of ``account``: its free balances (as deposits) and its registry
        profile (role, status, region, debt)."""
        for name, token in self.tokens.items():
            free = self.free(account, token) - model.free(account, name)
            if free > 0:
                model.deposit(account, name, free)
        self.refresh_profile(model, account)

    def refresh_profile(self, model: ExchangeModel, account: str) -> None:
        role, status, region, in_debt = self.chain.regulator.registry.contract.call("profileOf", account)
        model.set_profile(account, role=Role(role), active=status == 1, region=region, in_debt=in_debt)

    def open_session(self, model: ExchangeModel, call_for: int = 100_000, run_for: int = 100_000) -> tuple[int, int]:
        """Open the market's next session on chain and in the model; returns (call deadline, closing time)."""
        deadline = self.chain.now() + call_for
        closes = deadline + run_for
        self.operator.exchange.open_session(model.spec.market, call_deadline=deadline, closes_at=closes)
        model.open_session()
        return deadline, closes

    def to_clearing(self, model: ExchangeModel, deadline: int) -> None:
        self.chain.mine_at(max(deadline, self.chain.now() + 1))
        model.end_call()

    def to_closed(self, model: ExchangeModel, closes: int) -> None:
        self.chain.mine_at(max(closes, self.chain.now() + 1))
        model.close()

    # -- transactions -----------------------------------------------------------------------------------

    def refused(self, client: CarbonClient, function: str, *args: Any, gas: int = 5_000_000) -> ContractCustomError:
        """Send the call with a fixed gas limit, so that it is mined and reverts on chain (not only in the
        estimate); returns the custom error the SDK decoded from the mined transaction."""
        try:
            client.transact(client.exchange.contract.tx(function, *args, gas=gas))
        except ContractCustomError as error:
            assert error.tx_hash is not None, "refused before sending: the test wants the mined revert"
            return error
        raise AssertionError(f"{function}{args} was accepted")

    def send(self, client: CarbonClient, function: str, *args: Any) -> tuple[Receipt, list[Any]]:
        """A raw exchange transaction; its receipt and its events as the model's."""
        receipt = client.transact(client.exchange.contract.tx(function, *args))
        return receipt, self.events(receipt)

    def events(self, receipt: Receipt) -> list[Any]:
        names = {address: name for name, address in self.tokens.items()}
        return [e for e in (model_event(ev, names) for ev in self.exchange.events(receipt)) if e is not None]

    def both(self, model: ExchangeModel, operation: Callable[[], Any], client: CarbonClient, function: str,
             *args: Any) -> Any:
        """Run one operation in the model and the same call on chain: the same events, or the same refusal
        (custom error and arguments; the model then changed nothing). Returns the model's result, or the
        model's refusal."""
        start = len(model.events)
        try:
            result = operation()
        except ModelError as refusal:
            try:
                self.send(client, function, *args)
            except ContractCustomError as error:
                assert_same_refusal(refusal, error, self.tokens)
                return refusal
            raise AssertionError(f"the model refused {function}{args} ({refusal}); the chain accepted it") from None
        try:
            _, events = self.send(client, function, *args)
        except ContractCustomError as error:
            raise AssertionError(f"the chain refused {function}{args} ({error}); the model accepted it") from None
        assert events == model.events[start:], f"{function}{args}:\n chain {events}\n model {model.events[start:]}"
        return result

    # -- reading ----------------------------------------------------------------------------------------

    def free(self, account: str, token: str) -> int:
        return int(self.exchange.call("freeBalance", account, token))

    def order(self, order_id: int) -> dict[str, Any]:
        return self.exchange.call("orderOf", order_id)

    def token_balance(self, token: str, holder: str | None = None) -> int:
        holder = holder or self.exchange.address
        return int(self.chain.regulator.allowances.balance(token, holder))


def model_event(event: Any, tokens: dict[str, str]) -> Any:
    """A CarbonExchange event (decoded by the SDK) as the model's event dataclass (None for those the model
    does not emit). ``tokens``: address -> "asset"/"settlement"."""
    a = event.args
    name = event.name
    if name == "Deposited":
        return Deposited(a["account"], tokens.get(a["token"], a["token"]), a["amount"])
    if name == "Withdrawn":
        return Withdrawn(a["account"], tokens.get(a["token"], a["token"]), a["amount"])
    if name == "OrderPlaced":
        return Placed(a["orderId"], a["owner"], a["market"], Side(a["side"]), a["tick"], a["lots"])
    if name == "OrderCancelled":
        return Cancelled(a["orderId"], a["lots"], CancelReason(a["reason"]))
    if name == "Trade":
        return Fill(a["market"], a["session"], a["bidOrder"], a["askOrder"], a["lots"], a["price2"], a["value"])
    if name == "AuctionCleared":
        return AuctionCleared(a["market"], a["session"], a["uniformPrice2"])
    if name == "OrderClaimed":
        return Payout(a["orderId"], a["owner"], a["asset"], a["settlement"], a["fee"])
    if name == "TakerSettled":
        return TakerSettled(a["market"], a["taker"], Side(a["side"]), OrderKind(a["kind"]), a["lots"],
                            a["filledLots"], a["value"], a["fee"])
    if name == "FeesCollected":
        return FeesCollected(a["market"], a["operator"], a["amount"])
    assert name in NO_EVENTS, f"an exchange event the model does not know: {name}"
    return None


def assert_same_refusal(refusal: ModelError, error: ContractCustomError, tokens: dict[str, str]) -> None:
    """The chain's custom error is the model's, with the same arguments (tokens by address, enums as ints)."""
    assert error.name == refusal.contract_name, f"chain {error} vs model {refusal}"
    expected = {k: tokens.get(v, v) if isinstance(v, str) else int(v) if isinstance(v, int) else v
                for k, v in refusal.arguments.items()}
    got = {k: v for k, v in error.arguments.items() if k in expected}
    assert got == expected, f"chain {error} vs model {refusal}"


def order_record(model: ExchangeModel, order_id: int) -> dict[str, Any]:
    """The model's order as the contract's ``orderOf`` returns it."""
    o = model.order(order_id)
    return {"owner": o.owner, "market": o.market, "session": o.session, "side": int(o.side), "tick": o.tick,
            "index": o.index, "lots": o.lots, "openLots": o.open_lots, "filledLots": o.filled_lots,
            "auctionLots": o.auction_lots, "value": o.value, "claimed": o.claimed}


# -- conservation, from the chain alone (docs/exchange.md: Deposits, Claims and settlement) --------------------


def unsettled_claim(params: dict[str, Any], order: dict[str, Any], uniform_price2: int) -> tuple[int, int]:
    """(asset, settlement) that an unsettled order still holds in the exchange, fee included, from its record
    and its market's parameters: what it locked, plus what its fills moved to it, less what they moved away.

    A bid locked ``v + fee(v) + margin(v)`` (``v`` its lots at its limit) and each fill moved the asset to it and
    the fill's value away from it; an ask locked its asset and ``margin(v)``, and each fill moved the asset away
    and the value to it. ``value`` counts UNIFORM auction lots at the auction's price (any price while clearing
    runs: the two sides of a pair add up the same)."""
    lot, tick_size = params["lotSize"], params["tickSize"]
    unit = lot * tick_size // 10**6
    limit_value = order["lots"] * order["tick"] * unit
    margin = limit_value * params["marginBps"] // BPS
    value = order["value"]
    if params["pricing"] == int(Pricing.UNIFORM):
        value += order["auctionLots"] * uniform_price2 * unit // 2
    if order["side"] == int(Side.BID):
        lock = limit_value + limit_value * params["buyerFeeBps"] // BPS + margin
        return order["filledLots"] * lot, lock - value
    return (order["lots"] - order["filledLots"]) * lot, value + margin


class Conservation:
    """The exchange holds exactly what it owes (docs/exchange.md; docs/invariants.md E1-E4), computed from the
    chain alone: for a token, its balance of the exchange against the free balances of ``accounts``, what every
    unsettled order of every market trading the token still holds (orders found from OrderPlaced events) and,
    for a settlement token, the markets' accrued fees. Settled orders hold nothing and stay settled, so they
    are read once."""

    def __init__(self, venue: Venue, accounts: Iterable[str]):
        self.venue = venue
        self.accounts = list(accounts)
        self.orders: list[int] = []
        self.settled: set[int] = set()
        self.next_block = venue.exchange.client.manifest.block

    def check(self, token: str) -> tuple[int, int]:
        """(the exchange's balance of ``token``, what it owes in it)."""
        venue, ex = self.venue, self.venue.exchange
        latest = int(ex.client.rpc.call("eth_blockNumber"), 16)
        self.orders += [e.args["orderId"] for e in ex.logs(["OrderPlaced"], from_block=self.next_block, to_block=latest)]
        self.next_block = latest + 1
        owed = sum(venue.free(a, token) for a in self.accounts)
        markets = {}
        for m in range(1, ex.call("marketCount") + 1):
            info = ex.call("marketOf", m)
            if token in (info["params"]["asset"], info["params"]["settlement"]):
                markets[m] = info["params"]
                if token == info["params"]["settlement"]:
                    owed += info["feesAccrued"]
        sessions: dict[tuple[int, int], dict[str, Any]] = {}
        for order_id in self.orders:
            if order_id in self.settled or (order_id >> 120) not in markets:
                continue
            order = venue.order(order_id)
            if order["claimed"]:
                self.settled.add(order_id)
                continue
            key = (order["market"], order["session"])
            if key not in sessions:
                sessions[key] = ex.call("sessionOf", *key)
            s = sessions[key]
            price2 = s["uniformPrice2"] if s["cleared"] else s["lastBidTick"] + s["lastAskTick"]
            params = markets[order["market"]]
            asset, settlement = unsettled_claim(params, order, price2)
            owed += (asset if token == params["asset"] else 0) + (settlement if token == params["settlement"] else 0)
        return venue.token_balance(token), owed


def exchange_state(venue: Venue, market: int, accounts: Iterable[str], orders: Iterable[int] = ()) -> dict[str, Any]:
    """Everything a refused call must leave as it was: free balances, the given orders' records, the market
    and its current session, the best ticks, and the exchange's token balances."""
    ex = venue.exchange
    info = ex.call("marketOf", market)
    return {
        "free": {(a, t): venue.free(a, t) for a in accounts for t in (venue.asset, venue.settlement)},
        "orders": {i: venue.order(i) for i in orders},
        "market": info,
        "session": ex.call("sessionOf", market, info["session"]),
        "held": {t: venue.token_balance(t) for t in (venue.asset, venue.settlement)},
        "markets": ex.call("marketCount"),
    }


def encode(side: Side | int, lots: int, tick: int, kind: OrderKind | int = OrderKind.LIMIT) -> tuple[int, ...]:
    """One OrderInput for a raw placeOrder(s) call."""
    return (int(side), int(kind), lots, tick)


def random_spec(rng: random.Random, pricing: Pricing) -> MarketSpec:
    """Market parameters at random: lot sizes of 0.1 to 2 t, the smallest valid tick size (or 2-3x), fees up to
    the 1,000 bps limit, margins from none to 20 %."""
    from math import gcd

    lot = rng.choice([10**5, 25 * 10**4, 10**6, 2 * 10**6])
    tick = 2 * 10**6 // gcd(lot, 2 * 10**6) * rng.randint(1, 3)
    return MarketSpec(lot, tick, rng.choice([1, 1, 2]), rng.choice([0, 7, 25, 1000]), rng.choice([0, 13, 40, 1000]),
                      rng.choice([0, 50, 500, 2000]), pricing)


# -- a small book, for tests by hand -----------------------------------------------------------------------------

SPEC = MarketSpec(lot_size=tonnes(1), tick_size=2, min_lots=2, buyer_fee_bps=10, seller_fee_bps=20, margin_bps=100)


class Book:
    """A market in its call phase: a bid 5@100 (trader 0), an ask 3@99 (trader 1), a bid 2@98 (trader 2)."""

    def __init__(self, venue: Venue, spec: MarketSpec | None = None, orders: bool = True, **market: Any):
        self.venue = venue
        self.traders = list(venue.traders)
        self.model = venue.new_market(spec or SPEC, [t.address for t in venue.traders], **market)
        self.market = self.model.spec.market
        self.deadline, self.closes = venue.open_session(self.model)
        self.ids: list[int] = []
        if orders:
            for trader, (side, lots, tick) in zip(self.traders, [(Side.BID, 5, 100), (Side.ASK, 3, 99),
                                                                 (Side.BID, 2, 98)]):
                self.ids.append(self.place(trader, side, lots, tick))

    def both(self, operation, client, function, *args):
        return self.venue.both(self.model, operation, client, function, *args)

    def place(self, trader, side: Side, lots: int, tick: int, max_fills: int = 10) -> int:
        return self.both(lambda: self.model.place(trader.address, side, lots, tick, max_fills=max_fills), trader,
                         "placeOrder", self.market, encode(side, lots, tick), max_fills)

    def to_clearing(self) -> None:
        self.venue.to_clearing(self.model, self.deadline)

    def to_continuous(self) -> None:
        self.to_clearing()
        assert self.both(lambda: self.model.clear(100), self.traders[3], "clear", self.market, 100)

    def to_closed(self) -> None:
        self.to_continuous()
        self.venue.to_closed(self.model, self.closes)

    def accounts(self) -> list[str]:
        return [t.address for t in self.traders] + [self.venue.operator.address]

    @contextmanager
    def unchanged(self):
        """Nothing the exchange holds changes inside the block (nor the model's state)."""
        before = exchange_state(self.venue, self.market, self.accounts(), self.ids)
        model_before = self.model.snapshot()
        yield
        assert exchange_state(self.venue, self.market, self.accounts(), self.ids) == before
        assert self.model.snapshot() == model_before

    def refused(self, model_call, client, function, *args) -> ContractCustomError:
        """Refused on chain (mined) and, when given, by the model with the same error and arguments."""
        with self.unchanged():
            error = self.venue.refused(client, function, *args)
            if model_call is not None:
                with pytest.raises(ModelError) as refusal:
                    model_call()
                assert_same_refusal(refusal.value, error, self.venue.tokens)
        return error


# -- random books, on chain and in the model at once -------------------------------------------------------------


class BookRun:
    """One random market run on chain and in the model, operation by operation (``Venue.both``): the call
    auction, clearing, continuous limit and market orders, cancels and claims, then close, claim everything
    and collect the fees. ``checkpoint(phase)`` is called at the end of each phase."""

    def __init__(self, venue: Venue, seed: int, pricing: Pricing, checkpoint: Callable[[str], None] | None = None,
                 orders: tuple[int, int] = (10, 60), continuous: tuple[int, int] = (10, 40)):
        self.venue, self.seed = venue, seed
        self.rng = rng = random.Random(f"{seed}-{pricing.name}")
        self.spec = random_spec(rng, pricing)
        self.traders = rng.sample(venue.traders, rng.randint(4, 6))
        self.accounts = [t.address for t in self.traders] + [venue.operator.address]
        self.model = venue.new_market(self.spec, [t.address for t in self.traders])
        self.market = self.model.spec.market
        self.checkpoint = checkpoint or (lambda phase: None)
        self.sizes = orders, continuous
        self.refusals: dict[str, int] = {}
        self.clear_calls = 0
        self.skipping_claims = 0  # accepted claims that skipped some of their ids (settled or not due)

    # operations -------------------------------------------------------------------------------------------

    def _both(self, operation: Callable[[], Any], client: CarbonClient, function: str, *args: Any) -> Any:
        result = self.venue.both(self.model, operation, client, function, *args)
        if isinstance(result, ModelError):
            self.refusals[type(result).__name__] = self.refusals.get(type(result).__name__, 0) + 1
        return result

    def random_order(self, market_share: float) -> tuple[Side, int, int, OrderKind]:
        rng = self.rng
        kind = OrderKind.MARKET if rng.random() < market_share else OrderKind.LIMIT
        lots = max(rng.choice([1, 1, 2, 3, 5, 8]), self.spec.min_lots)
        if rng.random() < 0.02:
            lots = self.spec.min_lots - 1  # refused: zero or below the minimum
        tick = rng.randint(95, 105) if kind is OrderKind.LIMIT else rng.randint(90, 110)
        if rng.random() < 0.01:
            tick = 0
        return rng.choice([Side.BID, Side.ASK]), lots, tick, kind

    def place(self, trader: CarbonClient, orders: list[tuple], max_fills: int) -> None:
        model = self.model
        self._both(lambda: model.place_many(trader.address, orders, max_fills), trader, "placeOrders", self.market,
                   [encode(*o) for o in orders], max_fills)

    def cancel_something(self) -> None:
        stored = self.model.orders(self.model.session)
        if not stored:
            return
        order = self.rng.choice(stored)
        owner = self.venue.clients[order.owner]
        who = owner if self.rng.random() < 0.85 else self.rng.choice(self.traders)
        self._both(lambda: self.model.cancel(who.address, order.id), who, "cancel", order.id)

    def claim_something(self) -> None:
        stored = self.model.orders(self.model.session)
        if stored:
            ids = [o.id for o in self.rng.sample(stored, min(len(stored), self.rng.randint(1, 3)))]
            result = self._both(lambda: self.model.claim(ids), self.rng.choice(self.traders), "claim", ids)
            if not isinstance(result, ModelError) and len(result) < len(ids):
                self.skipping_claims += 1

    def claim_all(self) -> None:
        ids = self.model.claimable(self.model.session)
        sdk = self.venue.operator.exchange.claimable(self.market)
        assert sorted(sdk) == sorted(ids), "the SDK's claimable() differs from the model's"
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            self._both(lambda: self.model.claim(chunk), self.rng.choice(self.traders), "claim", chunk)

    def rounds(self, total: int, market_share: float) -> None:
        """About ``total`` orders in batches of 1-6 from one trader at a time, with cancels and claims between."""
        rng, placed = self.rng, 0
        while placed < total:
            trader = rng.choice(self.traders)
            batch = [self.random_order(market_share) for _ in range(rng.randint(1, 6))]
            self.place(trader, batch, rng.choice([1, 2, 3, 5, 50]))
            placed += len(batch)
            if rng.random() < 0.3:
                self.cancel_something()
            if rng.random() < 0.15:
                self.claim_something()

    # the session ------------------------------------------------------------------------------------------

    def run(self) -> ExchangeModel:
        venue, model, rng = self.venue, self.model, self.rng
        deadline, closes = venue.open_session(model)
        self.rounds(rng.randint(*self.sizes[0]), 0.01)  # a market order in CALL is refused
        self.checkpoint("call")

        venue.to_clearing(model, deadline)
        small = rng.random() < 0.5
        while True:
            steps = rng.randint(1, 6) if small else 300
            self.clear_calls += 1
            if self._both(lambda: model.clear(steps), rng.choice(self.traders), "clear", self.market, steps):
                break
            roll = rng.random()
            if roll < 0.2:
                self.cancel_something()
            elif roll < 0.3:
                self.claim_something()  # refused while clearing runs
            elif roll < 0.35:
                self.place(rng.choice(self.traders), [self.random_order(0)], 5)  # refused too
        self.checkpoint("clearing")

        self.claim_all()
        self.rounds(rng.randint(*self.sizes[1]), 0.3)
        self.checkpoint("continuous")

        venue.to_closed(model, closes)
        self.place(rng.choice(self.traders), [self.random_order(0)], 5)  # refused: closed
        self.cancel_something()  # allowed in any phase
        self.claim_all()
        if model.fees_accrued:
            self._both(model.collect_fees, rng.choice(self.traders), "collectFees", self.market)
        self.checkpoint("closed")
        return model

    def compare_state(self) -> None:
        """The chain's order records, free balances, fees and session are the model's."""
        venue, model = self.venue, self.model
        for order in model.orders():
            assert venue.order(order.id) == order_record(model, order.id), f"seed {self.seed}: order {order.id}"
        for account in self.accounts:
            for name, token in venue.tokens.items():
                assert venue.free(account, token) == model.free(account, name), f"seed {self.seed}: {account} {name}"
        info = venue.exchange.call("marketOf", self.market)
        assert info["feesAccrued"] == model.fees_accrued
        sdk = [(f.bid_order, f.ask_order, f.lots, f.price2, f.value) for f in venue.operator.exchange.fills(self.market)]
        assert sdk == [(f.bid_order, f.ask_order, f.lots, f.price2, f.value) for f in model.trades()]
        s, m = venue.exchange.call("sessionOf", self.market, model.session), model.session_state()
        assert (s["phase"], s["cleared"], s["uniformPrice2"], s["lastBidTick"], s["lastAskTick"]) == (
            m.phase, m.cleared, m.uniform_price2, m.last_bid_tick, m.last_ask_tick)


__all__ = ["SPEC", "Book", "BookRun", "Conservation", "Venue", "assert_same_refusal", "encode", "exchange_state", "model_event",
           "order_record", "random_spec", "unsettled_claim"]
