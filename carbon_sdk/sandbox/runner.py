"""Run a scenario on a devnet through the SDK, period after period, and write the results folder.

    result = run_scenario(load_scenario("default"), Path("sandbox-out"), progress=bar)
    result.folder / "data" / "periods.csv"

Every step is a transaction on the real contracts, made the way an application would make it: the
regulator opens each period, allocates free allowances by region and sells the rest in the exchange's call
auction; enterprises bid and ask their abatement curves in the auction, then trade what they still need in
the continuous market, report their emissions, are verified (one verifier may be dishonest) and audited,
surrender, and are settled; the platform turns its users' emissions into a committed credit batch, claims it
in bulk, prices with the economics module and buys and sells credits on its desk. Nothing goes around the
contracts: the simulation only decides, the chain executes (docs/sandbox.md).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
import tempfile
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

from eth_account import Account
from eth_utils import keccak

from carbon_sdk.client import CarbonClient
from carbon_sdk.coin import COIN, repayment_cost
from carbon_sdk.desk_orders import BUY_AND_COVER, SELL, DeskOrder, sign_desk_order, sign_permit
from carbon_sdk.signing import private_key
from carbon_sdk.economics import optimal_offset_ratio, regulator_welfare
from carbon_sdk.exchange import OrderSpec
from carbon_sdk.sandbox.agents import (
    GRAMS,
    EnterpriseAgent,
    auction_orders,
    equilibrium_price,
    make_enterprises,
    make_people,
    personal_market,
    price_grid,
)
from carbon_sdk.tx import Call, transact_from_many
from carbon_sdk.types import Role, Side

Progress = Callable[[str, int, int], None]  # (step, done, total)

SANDBOX_BLOCK_GAS = 300_000_000  # the sandbox's own chain; every transaction still fits the devnet's 30M
CALL_PHASE = 3_600  # seconds of chain time the call auction stays open (moved on by the devnet's clock)
SESSION = 86_400
# Fixed gas limits for calls sent in long pipelined streams (estimating each would need the ones before it
# mined): the dearest case measured, with a margin. An order placement pays per order; a continuous order may
# fill against up to 32 resting orders.
GAS = {"deposit": 160_000, "approve": 80_000, "withdraw": 120_000, "repay": 200_000, "place": 200_000, "place_each": 150_000,
       "continuous": 2_500_000}


@dataclasses.dataclass
class RunResult:
    folder: Path
    scenario: str
    periods: list[dict[str, Any]]
    wall_seconds: float
    manifest: Any = None  # the deployment it ran on
    enterprises: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> address
    report: Path | None = None


def _key(seed: int, what: str) -> str:
    """A deterministic private key: the same scenario and seed give the same accounts."""
    return "0x" + keccak(f"carbon-sandbox/{seed}/{what}".encode()).hex()


def _grams(tonnes: float) -> int:
    return max(0, int(round(tonnes * GRAMS)))


class Simulation:
    """One scenario on one deployment. ``run`` plays every period; the CSV rows accumulate on the object."""

    def __init__(self, scenario: Any, devnet: Any, manifest: Any, *, progress: Progress | None = None,
                 log: Callable[[str], None] = lambda _: None):
        self.s = scenario
        self.devnet = devnet
        self.url = devnet.rpc_url
        self.manifest = manifest
        self.progress = progress or (lambda step, done, total: None)
        self.log = log
        self.rng = random.Random(scenario.seed)
        self.regulator = CarbonClient(self.url, manifest, devnet.bootstrap_key)
        self.chain_id = self.regulator.chain_id
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.permits: dict[int, Any] = {}  # person -> its settlement permit, until relayed
        self.order_nonces: dict[int, int] = defaultdict(int)  # person -> its next desk-order nonce
        self.decimals = 2
        self.money = 100

    # -- set-up -------------------------------------------------------------------------------------------

    def client(self, key: str) -> CarbonClient:
        return CarbonClient(self.url, self.manifest, key)

    def setup(self) -> None:
        s, reg, seed = self.s, self.regulator, self.s.seed
        self.decimals = reg.settlement.decimals()
        self.money = 10 ** self.decimals
        platform = s.platforms[0]
        self.platform_key = _key(seed, "platform")
        reg.registry.register_organisation(platform.name, Account.from_key(self.platform_key).address, Role.PLATFORM,
                                           allowed_roles=[Role.PLATFORM, Role.INDIVIDUAL])
        self.platform = self.client(self.platform_key)
        # The platform sends tens of thousands of alike transactions (enrolment, top-ups, claims): let up to
        # 2,000 be unconfirmed at once (still never more than a block of gas), so they share few blocks.
        self.platform.sender.max_in_flight = 2_000
        self.verifiers = []
        for v in s.verifiers:
            key = _key(seed, f"verifier/{v.name}")
            reg.registry.register_organisation(v.name, Account.from_key(key).address, Role.VERIFIER,
                                               allowed_roles=[Role.VERIFIER])
            self.verifiers.append((v, self.client(key)))
        self.agents: list[EnterpriseAgent] = make_enterprises(s.enterprises, self.rng)
        self.firm_keys = {a.name: _key(seed, f"enterprise/{a.name}") for a in self.agents}
        self.firm_address = {a.name: Account.from_key(k).address for a, k in zip(self.agents,
                                                                                   self.firm_keys.values())}
        for step, a in enumerate(self.agents, 1):
            reg.registry.register_organisation(a.name, self.firm_address[a.name], Role.ENTERPRISE,
                                               allowed_roles=[Role.ENTERPRISE], region=a.region)
            self.progress("enterprises", step, len(self.agents))
        # Cash for the market: the platform issues settlement tokens against (simulated) fiat deposits.
        cash = [self.platform.settlement.contract.tx("issue", self.firm_address[a.name],
                                                     int(a.baseline(s.periods) * 200 * self.money),
                                                     keccak(text=f"{a.name} float"))
                for a in self.agents]
        self.platform.transact_many(cash)
        # Individuals: deterministic keys, enrolled by the platform, regions round-robin.
        ind = s.individuals
        regions = sorted(s.regions)
        self.people = make_people(ind.count, ind.low_carbon.share, tuple(ind.low_carbon.emissions_t),
                                  tuple(ind.high_carbon.emissions_t), self.rng)
        # As coincurve keys: each desk order and permit is signed with one, and parsing a hex key costs more
        # than the signature itself.
        self.person_keys = [private_key(_key(seed, f"person/{i}")) for i in range(ind.count)]
        self.person_address = [Account.from_key(k.secret).address for k in self.person_keys]
        self.person_region = [regions[i % len(regions)] for i in range(ind.count)]
        for region in regions:
            group = [a for a, r in zip(self.person_address, self.person_region) if r == region]
            done = [0]

            def advance(n: int, done=done, total=len(group)) -> None:
                done[0] += n
                self.progress(f"enrol individuals of region {region}", done[0], total)
            self.platform.registry.enrol_batch(group, Role.INDIVIDUAL, region=region, progress=advance)
        from carbon_sdk.methodology import Methodology

        m = Methodology.default()
        reg.credits.register_methodology(m.version, m.content_hash, uri="carbon_sdk/data/methodology_v1.json")
        self.methodology = m.version
        self.platform.settlement.issue(self.platform.address, 10**12, fiat_reference="credit desk float")
        self.platform.credits.fund_desk(10**12)
        if s.policy.personal_trading:
            self.fund_wallets()
        self.banked: dict[str, list[tuple[str, int]]] = defaultdict(list)  # enterprise -> (vintage token, amount)
        # The shortfall penalty per tonne in currency: the most an allowance is worth to anyone.
        from carbon_sdk.coin import Reason

        rule = reg.coin.rules()[Reason.SHORT_SURRENDER]
        numerator, denominator = reg.coin.rate()
        self.penalty = rule.per_tonne * numerator / denominator / self.money

    def fund_wallets(self) -> None:
        """High-carbon users get a wallet top-up at enrolment that covers their deficits for the whole run at
        the dearest price the model can post (P_c <= 2e + c), issued 200 a transaction; each signs one EIP-2612
        permit for the credit manager (no transaction), which the platform relays with its first desk order."""
        s, ind = self.s, self.s.individuals
        worst = max(s.delta_of(k) for k in range(s.periods)) * (ind.high_carbon.emissions_t[1] - ind.quota_t)
        float_each = math.ceil(s.periods * worst * (2 * ind.e + s.platforms[0].cost_c) * self.money) + self.money
        debtors = [p.index for p in self.people if p.group == "high_carbon"]
        self.platform.settlement.issue_many({self.person_address[i]: float_each for i in debtors},
                                            fiat_reference="wallet top-ups",
                                            progress=self._counter("wallet top-ups", len(debtors)))
        manager = self.platform.credits.contract.address
        domain = self.platform.settlement.permit_domain()
        deadline = self.regulator.chain_time() + (s.periods + 1) * 30 * SESSION
        self.permits = {i: sign_permit(self.person_keys[i], owner=self.person_address[i], spender=manager,
                                       value=2**256 - 1, nonce=0, deadline=deadline, domain=domain)
                        for i in debtors}

    # -- time -----------------------------------------------------------------------------------------------

    def advance_clock(self, seconds: int) -> None:
        self.devnet.rpc("evm_increaseTime", [seconds], operator=True)
        self.devnet.rpc("evm_mine", [], operator=True)

    def block(self) -> int:
        return self.regulator.block_number()

    # -- one period -------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.setup()
        for k in range(self.s.periods):
            started, first_block = time.perf_counter(), self.block() + 1
            period_row = self.play_period(k)
            last_block = self.block()
            txs, gas = self.chain_usage(first_block, last_block)
            period_row.update(transactions=txs, gas=gas, wall_seconds=round(time.perf_counter() - started, 2))
            self.rows["periods"].append(period_row)
            self.log(f"period {k + 1}/{self.s.periods}: price {period_row['clearing_price']:.2f}, "
                     f"emissions {period_row['emissions_t']:,.0f} t of a {period_row['cap_t']:,.0f} t cap, "
                     f"{txs:,} transactions, {period_row['wall_seconds']:.1f} s")

    def play_period(self, k: int) -> dict[str, Any]:
        s, reg = self.s, self.regulator
        pid = 3001 + k
        cap_t = s.cap_of(k)
        regional = {code: cap_t * r.cap_share for code, r in s.regions.items()}
        now = reg.chain_time()
        period = reg.allowances.open_period(
            pid, cap=_grams(cap_t), trading_at=now + 10, reconciliation_at=now + 10 * SESSION,
            closes_at=now + 20 * SESSION, offset_share_bps=round(s.policy.offset_cap * 10_000),
            regional_caps={code: _grams(c) for code, c in regional.items()})
        token = period.allowance
        # Free allocation per region, pro rata to baseline; the rest is sold in the call auction.
        allocated: dict[str, float] = {}
        auctioned_t = 0.0
        for code, region_cap in regional.items():
            firms = [a for a in self.agents if a.region == code]
            free_t = region_cap * s.cap.free_share
            base = sum(a.baseline(k) for a in firms)
            grants = {self.firm_address[a.name]: _grams(free_t * a.baseline(k) / base) for a in firms} if firms else {}
            if grants:
                reg.allowances.allocate(pid, grants, region=code)
                for a in firms:
                    allocated[a.name] = grants[self.firm_address[a.name]] / GRAMS
            for_sale = _grams(region_cap) - sum(grants.values())
            if for_sale > 0:
                reg.allowances.allocate_for_sale(pid, for_sale, region=code)
                auctioned_t += for_sale / GRAMS
        self.advance_clock(20)  # into the trading phase
        self.repay_debts()
        market = self.trade(k, pid, token, allocated, auctioned_t)
        # Abatement at the period's price, then reports, verification, audits.
        price = market["vwap"] or market["clearing_price"]
        reg.allowances.advance_phase(pid)  # trading -> reconciliation
        firm_rows = self.comply(k, pid, token, price)
        reg.allowances.advance_phase(pid)  # reconciliation -> closed
        settled = reg.allowances.settle(pid, [self.firm_address[a.name] for a in self.agents])
        state = {x.enterprise: x for x in settled}
        addresses = [self.firm_address[row["enterprise"]] for row in firm_rows]
        balances = reg.coin.contract.call_many("balanceOf", [(x,) for x in addresses])
        debts = reg.coin.contract.call_many("debtOf", [(x,) for x in addresses])
        for row, address, balance, debt in zip(firm_rows, addresses, balances, debts):
            st = state[address]
            row.update(state=st.state.name.lower(), shortfall_t=st.shortfall / GRAMS)
            row.update(coin_balance=balance / COIN, coin_debt=debt / COIN)
            if st.penalty is not None:
                self.rows["coin"].append({"period": k + 1, "enterprise": row["enterprise"],
                                          "rule": st.penalty.reason.name.lower(),
                                          "amount": -st.penalty.amount / COIN, "debt_after": row["coin_debt"]})
                row["coin_delta"] = round(row["coin_delta"] - st.penalty.amount / COIN, 6)
        self.rows["enterprises"].extend(firm_rows)
        people = self.individuals(k, pid)
        return {
            "period": k + 1, "period_id": pid, "cap_t": round(cap_t, 6),
            "free_allocated_t": round(sum(allocated.values()), 6), "auctioned_t": round(auctioned_t, 6),
            "baseline_t": round(sum(r["baseline_t"] for r in firm_rows), 6),
            "abated_t": round(sum(r["abated_t"] for r in firm_rows), 6),
            "emissions_t": round(sum(r["emissions_t"] for r in firm_rows), 6),
            "reported_t": round(sum(r["reported_t"] for r in firm_rows), 6),
            "verified_t": round(sum(r["verified_t"] for r in firm_rows), 6),
            "surrendered_t": round(sum(r["surrendered_t"] for r in firm_rows), 6), "offsets_t": 0.0,
            "shortfall_t": round(sum(r["shortfall_t"] for r in firm_rows), 6),
            "compliant": sum(r["state"] == "compliant" for r in firm_rows),
            "short_enterprises": sum(r["state"] != "compliant" for r in firm_rows),
            "clearing_price": round(market["clearing_price"], 4),
            "auction_volume_t": round(market["auction_volume_t"], 6),
            "continuous_volume_t": round(market["continuous_volume_t"], 6), "vwap": round(market["vwap"], 4),
            "delta": float(s.delta_of(k)), "individuals_emissions_t": people,
        }

    # -- the market ---------------------------------------------------------------------------------------------

    def repay_debts(self) -> None:
        """A member in coin debt may not trade (DESIGN 2.3): an enterprise with debt pays it off first, from its
        settlement tokens, which is the one payment a debtor can make (an approval of the coin, then the
        repayment: every debtor's pair in one stream)."""
        coin = self.regulator.coin
        addresses = [self.firm_address[a.name] for a in self.agents]
        debts = coin.contract.call_many("debtOf", [(x,) for x in addresses])
        rate = coin.rate()
        settlement = self.regulator.settlement.contract
        items: list[tuple[str, Call]] = []
        for a, address, debt in zip(self.agents, addresses, debts):
            if debt:
                key, cost = self.firm_keys[a.name], repayment_cost(debt, rate)
                items += [(key, dataclasses.replace(settlement.tx("approve", coin.contract.address, cost),
                                                    gas=GAS["approve"])),
                          (key, coin.contract.tx("repayDebt", address, debt, gas=GAS["repay"]))]
        if items:
            transact_from_many(self.url, self.chain_id, items)

    def trade(self, k: int, pid: int, token: str, allocated: dict[str, float], auctioned_t: float) -> dict:
        s, reg = self.s, self.regulator
        rules = s.market
        lot = _grams(rules.lot_t)
        tick_size = round(rules.tick * self.money)
        settlement = reg.settlement.contract.address
        m = reg.exchange.create_market(token, settlement, lot_size=lot, tick_size=tick_size,
                                       buyer_fee_bps=s.policy.buyer_fee_bps, seller_fee_bps=s.policy.seller_fee_bps,
                                       pricing=s.policy.pricing, sellers=(Role.ENTERPRISE, Role.REGULATOR),
                                       buyers=(Role.ENTERPRISE,))
        deadline = reg.chain_time() + CALL_PHASE
        reg.exchange.open_session(m.id, call_deadline=deadline, closes_at=deadline + SESSION)
        holdings = {a.name: allocated.get(a.name, 0.0) + sum(x for _, x in self.banked[a.name]) / GRAMS
                    for a in self.agents}
        expected = equilibrium_price(self.agents, k, holdings, auctioned_t)
        grid = price_grid(self.agents, k, rules.price_levels, rules.tick, ceiling=self.penalty)
        exchange = reg.exchange.contract
        # One stream of calls, in this order: the regulator's sale, then each enterprise's approvals, deposits
        # and orders. The devnet orders transactions first in, first out, so the book's time priority is this
        # order on every run (the determinism test checks it).
        items: list[tuple[str, Call]] = []
        sale_lots = math.floor(auctioned_t / rules.lot_t + 1e-9)
        if sale_lots:
            admin = self.devnet.bootstrap_key
            sale = OrderSpec(Side.ASK, sale_lots, max(1, round(grid[0] / rules.tick)))
            items += [(admin, self._approve(token, sale_lots * lot)),
                      (admin, exchange.tx("deposit", token, sale_lots * lot, gas=GAS["deposit"])),
                      (admin, exchange.tx("placeOrders", m.id, [sale.encode()], 32, gas=self._place_gas(1)))]
        for a in self.agents:
            orders = auction_orders(a, k, holdings[a.name], grid, rules.lot_t)
            if not orders:
                continue
            key = self.firm_keys[a.name]
            bids = [o for o in orders if o.side == "bid"]
            asks = [o for o in orders if o.side == "ask"]
            if bids:
                cash = sum(m.value(o.lots, round(o.price / rules.tick)) for o in bids)
                cash += cash * s.policy.buyer_fee_bps // 10_000 + 1
                items.append((key, self._approve(settlement, cash)))
                items.append((key, exchange.tx("deposit", settlement, cash, gas=GAS["deposit"])))
            if asks:
                amount = sum(o.lots for o in asks) * lot
                items.append((key, self._approve(token, amount)))
                items.append((key, exchange.tx("deposit", token, amount, gas=GAS["deposit"])))
            specs = [OrderSpec(Side.BID if o.side == "bid" else Side.ASK, o.lots, round(o.price / rules.tick))
                     for o in orders]
            for start in range(0, len(specs), 100):
                chunk = specs[start:start + 100]
                items.append((key, exchange.tx("placeOrders", m.id, [x.encode() for x in chunk], 32,
                                               gas=self._place_gas(len(chunk)))))
        if items:
            transact_from_many(self.url, self.chain_id, items,
                               progress=self._counter(f"period {k + 1}: auction orders", len(items)))
        self.advance_clock(CALL_PHASE + 1)
        clearing = reg.exchange.clear_all(m.id)
        clearing_price = float(Fraction(clearing.uniform_price2, 2) * rules.tick) if clearing.uniform_price2 else 0.0
        reg.exchange.claim(m.id)
        auction_fills = reg.exchange.fills(m.id)
        if not clearing_price and auction_fills:  # midpoint pricing: the volume-weighted price of the pairs
            lots = sum(f.lots for f in auction_fills)
            clearing_price = float(sum(Fraction(f.price2, 2) * f.lots for f in auction_fills) / lots) * rules.tick
        if not clearing_price:
            clearing_price = expected
        # Continuous trading: who still needs allowances at that price buys, who has spare sells, crossing it.
        self.continuous(k, m, token, clearing_price)
        self.advance_clock(SESSION)
        reg.exchange.claim(m.id)
        self.withdraw_all(m, token, settlement)
        fills = reg.exchange.fills(m.id)
        self.record_trades(k, m, fills, auction_ids=len(auction_fills))
        auction_t = sum(f.lots for f in auction_fills) * rules.lot_t
        total_t = sum(f.lots for f in fills) * rules.lot_t
        value = sum(f.value for f in fills) / self.money
        return {"clearing_price": clearing_price, "expected_price": expected, "auction_volume_t": auction_t,
                "continuous_volume_t": total_t - auction_t, "vwap": value / total_t if total_t else 0.0}

    @staticmethod
    def _place_gas(orders: int) -> int:
        return GAS["place"] + GAS["place_each"] * orders

    def _approve(self, token: str, amount: int) -> Call:
        """The ERC-20 approval of the exchange that a deposit needs (any token: the ABI is the same)."""
        exchange = self.regulator.exchange.contract.address
        return dataclasses.replace(self.regulator.allowances.token(token).tx("approve", exchange, amount),
                                   gas=GAS["approve"])

    def continuous(self, k: int, m: Any, token: str, price: float) -> None:
        s = self.s
        rules = s.market
        settlement = self.regulator.settlement.contract.address
        addresses = [self.firm_address[a.name] for a in self.agents]
        wallet = dict(zip(addresses, self.regulator.allowances.token(token).call_many(
            "balanceOf", [(x,) for x in addresses])))
        deposit = dict(zip(addresses, self.regulator.exchange.contract.call_many(
            "freeBalance", [(x, token) for x in addresses])))
        need = {}
        for a, address in zip(self.agents, addresses):
            held = (wallet[address] + deposit[address] + sum(x for _, x in self.banked[a.name])) / GRAMS
            need[a.name] = a.net_demand(price, k, held)
        movers = [a for a in self.agents if abs(need[a.name]) >= rules.lot_t]
        self.rng.shuffle(movers)
        exchange = self.regulator.exchange.contract
        deposits: list[tuple[str, Call]] = []
        orders: list[tuple[str, Call]] = []
        tick = max(1, round(price / rules.tick))
        for a in movers[:rules.continuous_orders]:
            key, lots = self.firm_keys[a.name], math.floor(abs(need[a.name]) / rules.lot_t)
            spread = self.rng.randint(0, 2)
            if need[a.name] > 0:  # a buyer: bids a little above the price
                t = tick + spread
                cash = m.value(lots, t) * (10_000 + s.policy.buyer_fee_bps) // 10_000 + 1
                deposits += [(key, self._approve(settlement, cash)),
                             (key, exchange.tx("deposit", settlement, cash, gas=GAS["deposit"]))]
                orders.append((key, exchange.tx("placeOrder", m.id, OrderSpec(Side.BID, lots, t).encode(), 32,
                                                gas=GAS["continuous"])))
            else:
                t = max(1, tick - spread)
                lots = min(lots, wallet[self.firm_address[a.name]] // m.lot_size)
                if lots <= 0:
                    continue
                deposits += [(key, self._approve(token, lots * m.lot_size)),
                             (key, exchange.tx("deposit", token, lots * m.lot_size, gas=GAS["deposit"]))]
                orders.append((key, exchange.tx("placeOrder", m.id, OrderSpec(Side.ASK, lots, t).encode(), 32,
                                                gas=GAS["continuous"])))
        # Deposits first, then the orders in the shuffled order: first in, first out on the devnet, so
        # arrival (time priority, and who fills whom) is the same on every run.
        if deposits or orders:
            transact_from_many(self.url, self.chain_id, deposits + orders,
                               progress=self._counter(f"period {k + 1}: continuous orders", len(deposits + orders)))

    def withdraw_all(self, m: Any, token: str, settlement: str) -> None:
        exchange = self.regulator.exchange
        items = []
        pairs = [(a, t) for a in self.agents for t in (token, settlement)]
        frees = exchange.contract.call_many("freeBalance", [(self.firm_address[a.name], t) for a, t in pairs])
        for (a, t), free in zip(pairs, frees):
            if free:
                items.append((self.firm_keys[a.name], exchange.contract.tx("withdraw", t, free,
                                                                           gas=GAS["withdraw"])))
        if items:
            transact_from_many(self.url, self.chain_id, items)
        left = exchange.free_balance(token, self.regulator.address)
        if left:
            exchange.withdraw(token, left)

    def record_trades(self, k: int, m: Any, fills: Sequence[Any], auction_ids: int) -> None:
        if not fills:
            return
        times = self.regulator.block_times(f.block_number for f in fills)
        owners: dict[int, str] = {}
        ids = sorted({i for f in fills for i in (f.bid_order, f.ask_order) if i})
        for order_id, raw in zip(ids, self.regulator.exchange.contract.call_many("orderOf", [(i,) for i in ids])):
            owners[order_id] = raw["owner"]
        names = {v: n for n, v in self.firm_address.items()}
        names[self.regulator.address] = "regulator"
        senders = {}
        for f in fills:
            if not f.bid_order or not f.ask_order:
                if f.tx_hash not in senders:
                    senders[f.tx_hash] = self.regulator.rpc.call("eth_getTransactionByHash", [f.tx_hash])["from"]
        for n, f in enumerate(fills):
            price = float(Fraction(f.price2, 2)) * self.s.market.tick
            tonnes = f.lots * self.s.market.lot_t
            buyer = owners.get(f.bid_order) or senders.get(f.tx_hash, "")
            seller = owners.get(f.ask_order) or senders.get(f.tx_hash, "")
            self.rows["trades"].append({
                "period": k + 1, "phase": "auction" if n < auction_ids else "continuous",
                "block": f.block_number, "timestamp": times[f.block_number], "price": round(price, 4),
                "tonnes": round(tonnes, 6), "value": round(f.value / self.money, 2),
                "buyer": names.get(_checksum(buyer), buyer), "seller": names.get(_checksum(seller), seller)})

    # -- compliance ----------------------------------------------------------------------------------------------

    def comply(self, k: int, pid: int, token: str, price: float) -> list[dict[str, Any]]:
        """Abate, report, endorse, audit and surrender: each step for every enterprise in shared batches."""
        reg = self.regulator
        mrv = reg.mrv.contract
        step = f"period {k + 1}: reports, audits, surrender"
        addresses = [self.firm_address[a.name] for a in self.agents]
        coin_before = dict(zip(addresses, reg.coin.contract.call_many("balanceOf", [(x,) for x in addresses])))
        held_now = dict(zip(addresses, reg.allowances.token(token).call_many("balanceOf", [(x,) for x in addresses])))
        plans = []
        for i, a in enumerate(self.agents):
            address = self.firm_address[a.name]
            held_t = (held_now[address] + sum(x for _, x in self.banked[a.name])) / GRAMS
            abated = a.final_abatement(k, price, held_t, self.penalty)
            emissions = a.baseline(k) - abated
            reported = emissions * (1 - a.misreport)
            verifier, vclient = self.verifiers[i % len(self.verifiers)]
            verified = emissions * (1 - (0 if verifier.honest else verifier.understatement))
            plans.append((a, address, abated, emissions, reported, verifier, vclient, verified))
        # Reports, each signed by its enterprise; then each verifier's endorsements; then the audits.
        vector = reg.mrv._vector
        reports = [(self.firm_keys[a.name], mrv.tx("submitReport", pid, 1, vector({"CO2": _grams(reported)}, 1),
                                                   keccak(text=f"{a.name}/{pid}/readings"),
                                                   keccak(text=f"{a.name} report {pid}")))
                   for a, _, _, _, reported, *_ in plans]
        transact_from_many(self.url, self.chain_id, reports)
        self.progress(step, 1, 4)
        by_verifier: dict[int, list[Call]] = defaultdict(list)
        for a, address, _, _, _, verifier, vclient, verified in plans:
            by_verifier[id(vclient)].append((vclient, mrv.tx("endorse", pid, address, 1, _grams(verified),
                                                             keccak(text=f"{verifier.name} visit {a.name} {pid}"))))
        for calls in by_verifier.values():
            calls[0][0].transact_many([c for _, c in calls])
        self.progress(step, 2, 4)
        honest = any(v.honest for v, _ in self.verifiers)
        audits = []
        for a, address, _, emissions, _, verifier, _, _ in plans:
            # The regulator re-measures half of what a dishonest verifier endorsed (seeded), else accepts it.
            finding = not verifier.honest and self.rng.random() < 0.5 and honest
            audits.append(mrv.tx("audit", pid, address, finding, _grams(emissions) if finding else 0,
                                 keccak(text=f"audit {a.name} {pid}")))
        receipts = reg.transact_many(audits)
        names = {v: n for n, v in self.firm_address.items()}
        applied = []
        for receipt in receipts:
            applied.extend(reg.coin.applications_in(receipt))
        debts = dict(zip(addresses, reg.coin.contract.call_many("debtOf", [(x,) for x in addresses])))
        for application in applied:
            name = names.get(application.subject, application.subject)
            self.rows["coin"].append({"period": k + 1, "enterprise": name, "rule": application.reason.name.lower(),
                                      "amount": _signed(application) / COIN,
                                      "debt_after": debts.get(application.subject, 0) / COIN})
        self.progress(step, 3, 4)
        verified_on_chain = {x: reg.mrv.verified_emissions(pid, x) or 0 for x in addresses}
        # Surrender: this vintage first, then banked ones; what is left over is banked.
        surrenders, rows = [], []
        for a, address, abated, emissions, reported, verifier, _, _ in plans:
            need = verified_on_chain[address]
            items: dict[str, int] = {}
            take = min(held_now[address], need)
            if take:
                items[token] = take
                need -= take
            banked_left = []
            for old, amount in self.banked[a.name]:
                use = min(amount, need)
                if use:
                    items[old] = items.get(old, 0) + use
                    need -= use
                if amount - use:
                    banked_left.append((old, amount - use))
            if items:
                surrenders.append((self.firm_keys[a.name], reg.allowances.contract.tx(
                    "surrender", pid, list(items), list(items.values()))))
            spare = held_now[address] - items.get(token, 0)
            self.banked[a.name] = banked_left + ([(token, spare)] if spare else [])
            rows.append({
                "period": k + 1, "enterprise": a.name, "group": a.group, "region": a.region,
                "baseline_t": round(a.baseline(k), 6), "abated_t": round(abated, 6), "emissions_t": round(emissions, 6),
                "reported_t": round(reported, 6), "verified_t": verified_on_chain[address] / GRAMS,
                "allocated_t": 0.0, "bought_t": 0.0, "sold_t": 0.0, "surrendered_t": sum(items.values()) / GRAMS,
                "shortfall_t": 0.0, "state": "", "coin_delta": 0.0, "coin_balance": 0.0, "coin_debt": 0.0,
                "verifier": verifier.name, "verifier_honest": verifier.honest})
        if surrenders:
            transact_from_many(self.url, self.chain_id, surrenders)
        coin_after = dict(zip(addresses, reg.coin.contract.call_many("balanceOf", [(x,) for x in addresses])))
        for row, address in zip(rows, addresses):
            row["coin_delta"] = (coin_after[address] - coin_before[address]) / COIN
        self.progress(step, 4, 4)
        self._trade_totals(k, rows)
        return rows

    def _trade_totals(self, k: int, rows: list[dict[str, Any]]) -> None:
        bought, sold = defaultdict(float), defaultdict(float)
        for t in self.rows["trades"]:
            if t["period"] == k + 1:
                bought[t["buyer"]] += t["tonnes"]
                sold[t["seller"]] += t["tonnes"]
        allocations = {a["recipient"]: a["amount"] for a in self.regulator.allowances.allocations(3001 + k)}
        for row in rows:
            row["bought_t"] = round(bought[row["enterprise"]], 6)
            row["sold_t"] = round(sold[row["enterprise"]], 6)
            address = self.firm_address[row["enterprise"]]
            row["allocated_t"] = allocations.get(address, 0) / GRAMS

    # -- individuals ---------------------------------------------------------------------------------------------

    def individuals(self, k: int, pid: int) -> float:
        s, reg, platform = self.s, self.regulator, self.platform
        ind = s.individuals
        delta = s.delta_of(k)
        # This period's baselines: each person's drawn anew within its group's range.
        people = [dataclasses.replace(p, baseline_t=self.rng.uniform(*(ind.low_carbon.emissions_t
                                                                       if p.group == "low_carbon" else
                                                                       ind.high_carbon.emissions_t)))
                  for p in self.people]
        with_market = personal_market(people, quota_t=ind.quota_t, delta=delta, e=ind.e, c=s.platforms[0].cost_c,
                                      k=ind.abatement_k, trading=s.policy.personal_trading)
        quota = _grams(ind.quota_t)
        for code in sorted(s.regions):
            reg.credits.set_quota(pid, region=code, per_capita=quota)
        delta_bps = max(1, round(float(delta) * 10_000))
        reg.credits.set_offset_ratio(pid, delta_bps=delta_bps)
        entries = []
        for o in with_market.outcomes:
            amount, deficit = _grams(o.credits_t), _grams(o.deficit_t)
            if amount or deficit:
                entries.append((self.person_address[o.person.index], amount, deficit))
        reg.credits.set_issuance_ceiling(pid, platform.address, max(1, sum(a for _, a, _ in entries)))
        batch = platform.credits.build_batch(entries, methodology=self.methodology)
        platform.credits.commit_batch(batch, period=pid)
        platform.credits.claim_many(batch, progress=self._counter(f"period {k + 1}: credit claims", len(entries)))
        sold_t = bought_t = covered_t = surplus_paid = purchases_paid = 0.0
        sellers = [o for o in with_market.outcomes if o.sells]
        debtors = [o for o in with_market.outcomes if o.owes_t > 0]
        if with_market.prices is not None:
            posted = with_market.prices.posted(self.decimals)
            platform.credits.post_prices(posted.buy_back, posted.sale)
            # Users sign desk orders in their app (no transaction of theirs); the platform settles them in
            # bulk: sellers first, then debtors buying what they owe from its stock, while it lasts, and
            # surrendering it at once (each debtor's permit rides with its first order).
            domain, deadline = platform.credits.order_domain, reg.chain_time() + SESSION
            orders = []
            sold = 0
            for o in sellers:
                amount = _grams(o.credits_t)
                if amount * posted.buy_back // GRAMS > 0:
                    orders.append(self._desk_order(o.person.index, SELL, amount, posted.buy_back, deadline, domain))
                    sold += amount
            stock = platform.credits.balance(platform.address) + sold
            relayed = []  # the debtors whose permits ride with their orders
            for o in debtors:
                owed = _grams(o.deficit_t) * delta_bps // 10_000  # what the contract records: rounded down
                if owed == 0 or owed > stock:
                    continue
                stock -= owed
                i = o.person.index
                orders.append(self._desk_order(i, BUY_AND_COVER, owed, posted.sale, deadline, domain, period=pid))
                if i in self.permits:
                    relayed.append(i)
            if orders:
                permits = [self.permits[i] for i in relayed]
                trades = platform.credits.settle_desk_orders(
                    orders, permits, progress=self._counter(f"period {k + 1}: desk orders", len(orders)))
                for i in relayed:
                    self.permits.pop(i, None)
                for t in trades:
                    if t.side == "sell":
                        sold_t += t.amount / GRAMS
                        surplus_paid += t.paid / self.money
                    else:
                        bought_t += t.amount / GRAMS
                        purchases_paid += t.paid / self.money
                        covered_t += t.covered / GRAMS
        # Rows by group, and the model's welfare terms for the period.
        for group in ("low_carbon", "high_carbon"):
            outs = [o for o in with_market.outcomes if o.person.group == group]
            self.rows["individuals"].append({
                "period": k + 1, "group": group, "users": len(outs),
                "participants": sum(o.sells or o.owes_t > 0 for o in outs) if with_market.prices else 0,
                "emissions_with_market_t": round(sum(o.emissions_t for o in outs), 6),
                "emissions_without_market_t": round(sum(o.person.baseline_t for o in outs), 6),
                "credits_issued_t": round(sum(_grams(o.credits_t) for o in outs) / GRAMS, 6),
                "deficit_owed_t": round(sum(_grams(o.deficit_t) * delta_bps // 10_000 for o in outs) / GRAMS, 6),
                "sold_t": round(sold_t, 6) if group == "low_carbon" else 0.0,
                "bought_t": round(bought_t, 6) if group == "high_carbon" else 0.0,
                "covered_t": round(covered_t, 6) if group == "high_carbon" else 0.0,
                "outstanding_t": round(sum(_grams(o.deficit_t) * delta_bps // 10_000 for o in outs) / GRAMS
                                       - (covered_t if group == "high_carbon" else 0.0), 6),
                "surplus_paid": round(surplus_paid, 2) if group == "low_carbon" else 0.0,
                "purchases_paid": round(purchases_paid, 2) if group == "high_carbon" else 0.0})
        self.welfare_row(k, with_market)
        return round(sum(o.emissions_t for o in with_market.outcomes), 6)

    def _desk_order(self, person: int, kind: int, amount: int, price: int, deadline: int, domain: bytes,
                    period: int = 0) -> Any:
        """Person ``person``'s signed desk order (its next nonce) for the platform, at ``price`` or better."""
        nonce = self.order_nonces[person]
        self.order_nonces[person] = nonce + 1
        order = DeskOrder(self.person_address[person], self.platform.address, kind, amount, price, nonce, deadline,
                          period)
        return sign_desk_order(self.person_keys[person], order, domain)

    def welfare_row(self, k: int, market: Any) -> None:
        s = self.s
        ind = s.individuals
        p = market.prices
        row = {"period": k + 1, "delta": float(market.delta), "N_t": round(market.N_t, 6), "D": market.D,
               "W_t": round(market.W_t, 6), "e": ind.e, "c": s.platforms[0].cost_c}
        if p is not None:
            row.update(p_ph=float(p.p_ph), p_c=float(p.p_c), d_all_t=float(p.d_all), profit=float(p.profit),
                       user_surplus=float(p.user_surplus), welfare=float(p.welfare),
                       participation=float(p.participation))
        else:
            row.update(p_ph=0.0, p_c=0.0, d_all_t=0.0, profit=0.0, user_surplus=0.0, welfare=0.0, participation=0.0)
        try:
            best = optimal_offset_ratio(market.N_t, s.policy.carbon_value, s.policy.delta_cost_k, ind.e,
                                        max(market.D, 1), max(market.W_t, 1e-6))
            row.update(delta_star=float(best.delta), welfare_at_delta_star=float(best.welfare),
                       social_welfare=float(regulator_welfare(market.delta, market.N_t, s.policy.carbon_value,
                                                              s.policy.delta_cost_k, ind.e, max(market.D, 1),
                                                              max(market.W_t, 1e-6))))
        except Exception:  # noqa: BLE001 - no deficits or no surplus: the model says nothing
            row.update(delta_star=0.0, welfare_at_delta_star=0.0, social_welfare=0.0)
        self.rows["welfare"].append(row)

    # -- bookkeeping -----------------------------------------------------------------------------------------------

    def _counter(self, step: str, total: int) -> Callable[[int], None]:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            self.progress(step, done[0], total)
        return advance

    def chain_usage(self, first: int, last: int) -> tuple[int, int]:
        txs = gas = 0
        for start in range(first, last + 1, 200):
            blocks = self.regulator.rpc.batch([("eth_getBlockByNumber", [hex(b), False])
                                               for b in range(start, min(last, start + 199) + 1)])
            for b in blocks:
                txs += len(b["transactions"])
                gas += int(b["gasUsed"], 16)
        return txs, gas

    def write(self, folder: Path, wall_seconds: float, scenario_file: str | None) -> None:
        data = folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        for name in ("periods", "enterprises", "trades", "individuals", "welfare", "coin"):
            rows = self.rows.get(name, [])
            columns = COLUMNS[name]
            with (data / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        run = {"scenario": self.s.name, "seed": self.s.seed, "periods": self.s.periods, "chain_id": self.chain_id,
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_seconds": round(wall_seconds, 2),
               "personal_trading": self.s.policy.personal_trading, "scenario_file": scenario_file,
               "settlement_decimals": self.decimals, "config": self.s.to_dict()}
        (data / "run.json").write_text(json.dumps(run, indent=2, default=str))


COLUMNS = {
    "periods": ["period", "period_id", "cap_t", "free_allocated_t", "auctioned_t", "baseline_t", "abated_t",
                "emissions_t", "reported_t", "verified_t", "surrendered_t", "offsets_t", "shortfall_t", "compliant",
                "short_enterprises", "clearing_price", "auction_volume_t", "continuous_volume_t", "vwap", "delta",
                "transactions", "gas", "wall_seconds"],
    "enterprises": ["period", "enterprise", "group", "region", "baseline_t", "abated_t", "emissions_t",
                    "reported_t", "verified_t", "allocated_t", "bought_t", "sold_t", "surrendered_t", "shortfall_t",
                    "state", "coin_delta", "coin_balance", "coin_debt", "verifier", "verifier_honest"],
    "trades": ["period", "phase", "block", "timestamp", "price", "tonnes", "value", "buyer", "seller"],
    "individuals": ["period", "group", "users", "participants", "emissions_with_market_t",
                    "emissions_without_market_t", "credits_issued_t", "deficit_owed_t", "sold_t", "bought_t",
                    "covered_t", "outstanding_t", "surplus_paid", "purchases_paid"],
    "welfare": ["period", "delta", "N_t", "D", "W_t", "e", "c", "p_ph", "p_c", "d_all_t", "profit", "user_surplus",
                "welfare", "participation", "delta_star", "welfare_at_delta_star", "social_welfare"],
    "coin": ["period", "enterprise", "rule", "amount", "debt_after"],
}


def _signed(application: Any) -> int:
    """A coin rule application as a signed amount: + reward, − penalty (burned or added to debt)."""
    penalty = application.burned > 0 or application.debt_change > 0
    return -application.amount if penalty else application.amount


def _checksum(address: str) -> str:
    from eth_utils import is_address, to_checksum_address

    return to_checksum_address(address) if isinstance(address, str) and is_address(address) else address


def run_scenario(scenario: Any, out: Path, *, devnet: Any = None, artifacts: Any = None,
                 progress: Progress | None = None, log: Callable[[str], None] = lambda _: None,
                 scenario_file: str | None = None) -> RunResult:
    """Run ``scenario`` on ``devnet`` (a fresh one in a temporary folder when None, stopped at the end, even
    when the process is terminated) and write the results folder ``out`` (``out/data/*.csv``, ``run.json``)."""
    from carbon_sdk.devnet import Devnet
    from carbon_sdk.devnet.node import exit_on_sigterm

    with exit_on_sigterm():  # a terminated run still stops the chain it started
        return _run_scenario(scenario, out, devnet, artifacts, progress, log, scenario_file, Devnet)


def _run_scenario(scenario: Any, out: Path, devnet: Any, artifacts: Any, progress: Progress | None,
                  log: Callable[[str], None], scenario_file: str | None, Devnet: Any) -> RunResult:
    from carbon_sdk.artifacts import load_build
    from carbon_sdk.deploy import SystemConfig, deploy_on_devnet

    started = time.perf_counter()
    out = Path(out)
    own = devnet is None
    if own:
        # A throwaway chain that mines once per request, in blocks of up to 300M gas: anvil's cost per block
        # grows with the state, so a hundred thousand members need few, full blocks (docs/sandbox.md).
        devnet = Devnet.start(Path(tempfile.mkdtemp(prefix="carbon-sandbox-")), port=None, persist=False,
                              mine_per_request=True, gas_limit=SANDBOX_BLOCK_GAS)
    try:
        manifest = deploy_on_devnet(devnet, artifacts or load_build(), network=f"sandbox-{scenario.name}",
                                    config=SystemConfig(tolerance_bps=scenario.policy.tolerance_bps))
        sim = Simulation(scenario, devnet, manifest, progress=progress, log=log)
        sim.run()
        wall = time.perf_counter() - started
        sim.write(out, wall, scenario_file)
        return RunResult(out, scenario.name, sim.rows["periods"], wall, manifest, dict(sim.firm_address))
    finally:
        if own:
            devnet.stop()
