"""Invariants after a random sequence of operations (DESIGN 6).

With a fixed seed, 150 random operations (free and paid allocation, transfers, offset issuance, audited
reports, surrenders, phase advances, settlements, coin rewards), many of them bound to fail, run over a
handful of members and two periods. After every step, read everything back in one JSON-RPC batch and check:

- every vintage token (allowances and offsets): totalSupply == the sum of the balances of every account that
  ever received it (from its Transfer events); issuedOf == totalSupply + surrendered, and surrendered == the
  sum of its Surrendered events;
- every period: allocated <= cap, each region's allocated <= its cap, nationalAllocated <= cap -
  regionalCapTotal, allocated == nationalAllocated + the regions' allocations, regionalCapTotal == the sum of
  the regional caps;
- compliance: nothing surrendered without audited emissions, surrendered <= verified, offsets and borrowed
  within their limits;
- the coin: its supply moves by exactly minted - burned of the step's RuleApplied events, its total debt by
  their debt changes; a member may trade iff it is active and owes nothing;
- a refused operation emitted no event and left every value read above exactly as it was.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any, Callable

from eth_account import Account

from carbon_sdk import CarbonClient, errors
from carbon_sdk.allowances import PeriodPhase
from carbon_sdk.errors import InvalidInput
from allowances_helpers import T, grants, raw, raw_token, verifier_of, verify

SEED = 1234
STEPS = 150
NORTH, SOUTH = 11, 22
FAR = 10**7  # schedules far ahead: only advance_phase moves a phase during the run
ZERO = "0x" + "00" * 20
EXPECTED = (errors.ContractCustomError, InvalidInput)


def _read_batch(client: CarbonClient, requests: list[tuple[Any, Any, str, tuple]]) -> dict[Any, Any]:
    """Many view calls in one JSON-RPC batch: (key, bound contract, function, args) -> {key: result}."""
    payload = []
    for _, bound, name, args in requests:
        data = bound.abi.function(name).encode(*args)
        payload.append(("eth_call", [{"to": bound.address, "data": "0x" + data.hex()}, "latest"]))
    out = {}
    for (key, bound, name, _), result in zip(requests, client.rpc.batch(payload)):
        if isinstance(result, Exception):
            raise result
        out[key] = bound.abi.function(name).decode_output(bytes.fromhex(result[2:]))
    return out


class World:
    def __init__(self, market: Any, rng: random.Random):
        self.market = market
        self.rng = rng
        self.reg = market.regulator
        self.reg_north = market.regional_regulator(NORTH)
        self.reg_south = market.regional_regulator(SOUTH)
        self.enterprises = [
            market.enterprise(),
            market.enterprise(),
            market.enterprise(NORTH),
            market.enterprise(NORTH),
            market.enterprise(SOUTH),
        ]
        self.suspended = market.enterprise(NORTH)
        self.reg.registry.suspend(self.suspended.address)
        self.verifier = verifier_of(market)
        self.stranger = Account.create().address
        self.regulators = [self.reg, self.reg_north, self.reg_south]
        self.clients = self.enterprises + [self.suspended, self.verifier] + self.regulators
        self.actors = [c.address for c in self.clients] + [self.stranger]
        self.region_of = {c.address: r for c, r in zip(self.enterprises, (0, 0, NORTH, NORTH, SOUTH))}
        self.region_of[self.suspended.address] = NORTH

        self.a = market.open_period(
            T(1_000),
            trading_in=FAR,
            reconciliation_in=2 * FAR,
            closes_in=3 * FAR,
            regional_caps={NORTH: T(300), SOUTH: T(200)},
            borrow_share_bps=1_000,
        )
        self.b = market.open_period(
            T(800),
            trading_in=FAR,
            reconciliation_in=2 * FAR,
            closes_in=3 * FAR,
            regional_caps={NORTH: T(200), SOUTH: T(100)},
        )
        self.periods = [self.a.id, self.b.id]
        self.projects = [
            self.reg.allowances.register_offset_project("Invariant CCER", "ccer").project_id,
            self.reg_north.allowances.register_offset_project(
                "Invariant peat", "forestry_sink", region=NORTH
            ).project_id,
        ]
        self.tokens = [self.a.allowance, self.b.allowance]
        self.holders: dict[str, set[str]] = defaultdict(set)
        self.surrendered: Counter = Counter()
        self.block = self.reg.block_number()
        self.manager = self.reg.allowances.contract
        self.coin = self.reg.coin.contract
        self.registry = self.reg.registry.contract
        self.snapshot = self.read()
        self.progress = 0.0  # the share of the run done
        self.well_formed = True
        self.rewarded: list[tuple[str, str]] = []

    # -- reading ------------------------------------------------------------------------------------------

    def read(self) -> dict[Any, Any]:
        requests: list[tuple[Any, Any, str, tuple]] = [
            ("coin supply", self.coin, "totalSupply", ()),
            ("coin debt", self.coin, "totalDebt", ()),
        ]
        for actor in self.actors:
            requests += [
                (("coin", actor), self.coin, "balanceOf", (actor,)),
                (("debt", actor), self.coin, "debtOf", (actor,)),
                (("member", actor), self.registry, "getMember", (actor,)),
                (("can trade", actor), self.registry, "canTrade", (actor,)),
            ]
        for token in self.tokens:
            bound = self.reg.allowances.token(token)
            requests += [
                (("supply", token), bound, "totalSupply", ()),
                (("issued", token), self.manager, "issuedOf", (token,)),
                (("info", token), self.manager, "tokenInfo", (token,)),
            ]
            for holder in sorted(set(self.actors) | self.holders[token]):
                requests.append((("balance", token, holder), bound, "balanceOf", (holder,)))
        watched = [c.address for c in self.enterprises + [self.suspended]]
        for period in self.periods:
            requests += [
                (("period", period), self.manager, "getPeriod", (period,)),
                (("regions", period), self.manager, "periodRegions", (period,)),
                (("compliance", period), self.manager, "complianceOfMany", (period, watched)),
            ]
            for region in (NORTH, SOUTH):
                requests.append((("cap", period, region), self.manager, "regionalCap", (period, region)))
        return _read_batch(self.reg, requests)

    def step_logs(self) -> list[dict[str, Any]]:
        now = self.reg.block_number()
        logs = (
            self.reg.rpc.call("eth_getLogs", [{"fromBlock": hex(self.block + 1), "toBlock": hex(now)}])
            if now > self.block
            else []
        )
        self.block = now
        return logs

    # -- checking -----------------------------------------------------------------------------------------

    def check(self, ok: bool, label: str) -> None:
        before = self.snapshot
        logs = self.step_logs()
        if not ok:
            assert logs == [], f"{label}: a refused operation emitted events"
            after = self.read()
            assert after == before, f"{label}: a refused operation changed state"
            return
        minted = burned = debt_change = 0
        for event in self.manager.abi.decode_logs(logs, address=self.manager.address):
            if event.name == "OffsetsIssued" and event.args["token"] not in self.tokens:
                self.tokens.append(event.args["token"])
            elif event.name == "Surrendered":
                self.surrendered[event.args["token"]] += event.args["amount"]
        token_abi = self.reg.allowances.token(self.a.allowance).abi
        for token in self.tokens:
            for event in token_abi.decode_logs(logs, address=token):
                if event.name == "Transfer":
                    self.holders[token].update(a for a in (event.args["from"], event.args["to"]) if a != ZERO)
        for event in self.coin.abi.decode_logs(logs, address=self.coin.address):
            if event.name == "RuleApplied":
                outcome = event.args["outcome"]
                minted += outcome["minted"]
                burned += outcome["burned"]
                debt_change += outcome["debtChange"]
        after = self.read()
        self.snapshot = after

        # coin: supply changes only through the rules applied in this step
        assert after["coin supply"] - before["coin supply"] == minted - burned, label
        assert after["coin debt"] - before["coin debt"] == debt_change, label
        assert after["coin debt"] == sum(after[("debt", a)] for a in self.actors), label
        for actor in self.actors:
            member = after[("member", actor)]
            assert member["inDebt"] == (after[("debt", actor)] > 0), (label, actor)
            assert after[("can trade", actor)] == (
                member["status"] == 1 and after[("debt", actor)] == 0
            ), label
        # tokens: supply == sum of balances of everyone who ever held it; issued == supply + surrendered
        for token in self.tokens:
            supply = after[("supply", token)]
            holders = set(self.actors) | self.holders[token]
            assert supply == sum(after[("balance", token, h)] for h in holders), (label, token)
            assert self.holders[token] <= set(self.actors), (label, "a token reached an unknown account")
            info = after[("info", token)]
            assert after[("issued", token)] == supply + info["surrendered"], (label, token)
            assert info["surrendered"] == self.surrendered[token], (label, token)
        # periods: the caps are never exceeded
        for period in self.periods:
            p = after[("period", period)]
            caps = {r: after[("cap", period, r)] for r in after[("regions", period)]}
            assert set(caps) == {NORTH, SOUTH}, label
            assert p["allocated"] <= p["cap"], label
            assert p["nationalAllocated"] <= p["cap"] - p["regionalCapTotal"], label
            assert all(c["allocated"] <= c["cap"] for c in caps.values()), label
            assert p["allocated"] == p["nationalAllocated"] + sum(
                c["allocated"] for c in caps.values()
            ), label
            assert p["regionalCapTotal"] == sum(c["cap"] for c in caps.values()), label
            assert after[("issued", p["allowance"])] == p["allocated"], label
            assert p["surrendered"] == after[("info", p["allowance"])]["surrendered"], label
            for status in after[("compliance", period)]:
                if not status["verified"]:
                    assert status["surrendered"] == 0, label
                assert status["surrendered"] <= status["verifiedEmissions"], label
                assert status["offsets"] <= status["offsetLimit"], label
                assert status["borrowed"] <= status["borrowLimit"], label
                assert status["offsets"] + status["borrowed"] <= status["surrendered"], label

    # -- operations ---------------------------------------------------------------------------------------
    # Each operation mostly picks arguments that should work in the current state (read from the last
    # snapshot), and otherwise anything at all: over the run both sides of every operation are exercised.

    def likely(self) -> bool:
        """Whether this choice should fit the state: always in a well-formed operation, half the time in the
        others (about 3 operations in 10), which thus mostly get something wrong."""
        return self.well_formed or self.rng.random() < 0.5

    def phase(self, period: int) -> PeriodPhase:
        return PeriodPhase(self.snapshot[("period", period)]["phase"])

    def status(self, period: int, address: str) -> dict[str, Any]:
        watched = [c.address for c in self.enterprises + [self.suspended]]
        return self.snapshot[("compliance", period)][watched.index(address)]

    def balance(self, token: str, holder: str) -> int:
        return self.snapshot.get(("balance", token, holder), 0)

    def available(self, period: int, region: int) -> int:
        if region == 0:
            p = self.snapshot[("period", period)]
            return p["cap"] - p["regionalCapTotal"] - p["nationalAllocated"]
        cap = self.snapshot[("cap", period, region)]
        return cap["cap"] - cap["allocated"]

    def amount_within(self, limit: int, parts: int = 1) -> int:
        if self.likely() and limit >= parts:
            return self.rng.randint(1, max(1, limit // parts))
        return self.rng.randint(1, T(600))

    def pick_period(self, *phases: PeriodPhase) -> int:
        fitting = [p for p in self.periods if self.phase(p) in phases]
        return self.rng.choice(fitting) if fitting and self.likely() else self.rng.choice(self.periods)

    def recipients(self, region: int) -> list[str]:
        eligible = [
            a
            for a, r in self.region_of.items()
            if (region == 0 or r == region) and a != self.suspended.address
        ]
        count = self.rng.randint(1, 3)
        if self.likely():
            return [self.rng.choice(eligible) for _ in range(count)]
        return [self.rng.choice(self.actors) for _ in range(count)]

    def regulator_and_region(self) -> tuple[CarbonClient, int]:
        regulator = self.rng.choice([self.reg, self.reg, self.reg_north, self.reg_south])
        home = {self.reg_north.address: NORTH, self.reg_south.address: SOUTH}.get(regulator.address, 0)
        if home == 0 and self.likely():
            return regulator, self.rng.choice([0, 0, NORTH, SOUTH])
        return regulator, home if self.likely() else self.rng.choice([0, NORTH, SOUTH])

    def op_allocate(self) -> str:
        regulator, region = self.regulator_and_region()
        period = self.pick_period(PeriodPhase.OPEN, PeriodPhase.TRADING)
        recipients = self.recipients(region)
        pairs = [
            (r, self.amount_within(self.available(period, region) // 3, len(recipients))) for r in recipients
        ]
        if self.rng.random() < 0.5:
            regulator.allowances.allocate(period, pairs, region=region, batch_size=self.rng.randint(1, 2))
        else:
            raw(regulator, "allocate", period, region, grants(*pairs))
        return f"allocate {period} r{region} {pairs}"

    def op_sale(self) -> str:
        regulator, region = self.regulator_and_region()
        period = self.pick_period(PeriodPhase.OPEN, PeriodPhase.TRADING)
        amount = self.amount_within(self.available(period, region) // 4)
        regulator.allowances.allocate_for_sale(period, amount, region=region)
        return f"sale {period} r{region} {amount}"

    def op_transfer(self) -> str:
        token = self.rng.choice(self.tokens)
        holding = [c for c in self.clients if self.balance(token, c.address) > 0]
        sender = self.rng.choice(holding) if holding and self.likely() else self.rng.choice(self.clients)
        active = [c.address for c in self.clients if c is not self.suspended]
        to = self.rng.choice(active) if self.likely() else self.rng.choice(self.actors)
        amount = self.amount_within(self.balance(token, sender.address))
        if self.rng.random() < 0.5:
            sender.allowances.transfer(token, to, amount)
        else:
            raw_token(sender, token, "transfer", to, amount)
        return f"transfer {token[:8]} {amount}"

    def op_offsets(self) -> str:
        project = self.rng.choice(self.projects)
        home = self.reg_north if project == self.projects[1] else self.reg
        issuer = home if self.likely() else self.rng.choice(self.regulators)
        vintage = self.rng.choice([self.a.id, self.b.id, self.b.id + 1])
        members = [c.address for c in self.clients if c is not self.suspended]
        pool = members if self.likely() else self.actors
        pairs = [(self.rng.choice(pool), self.rng.randint(1, T(4))) for _ in range(self.rng.randint(1, 3))]
        issuer.allowances.issue_offsets(project, vintage, pairs)
        return f"offsets p{project} v{vintage} {pairs}"

    def op_verify(self) -> str:
        period = self.pick_period(PeriodPhase.RECONCILIATION)
        fresh = [e for e in self.enterprises if self.reg.mrv.report_count(period, e.address) == 0]
        enterprise = self.rng.choice(fresh) if fresh and self.likely() else self.rng.choice(self.enterprises)
        verify(self.market, period, enterprise, self.rng.randint(T(1), T(60)))
        return f"verify {period}"

    def op_surrender(self) -> str:
        due = [
            (p, e)
            for p in self.periods
            if self.phase(p) is PeriodPhase.RECONCILIATION
            for e in self.enterprises
            if self.status(p, e.address)["verified"]
            and self.status(p, e.address)["surrendered"] < self.status(p, e.address)["verifiedEmissions"]
        ]
        if due and self.likely():
            period, enterprise = self.rng.choice(due)
        else:
            period = self.rng.choice(self.periods)
            enterprise = self.rng.choice(self.enterprises + [self.suspended])
        status = self.status(period, enterprise.address)
        left = status["verifiedEmissions"] - status["surrendered"]
        room = {1: left, 2: status["offsetLimit"] - status["offsets"]}  # by kind: allowances, offsets
        borrow_room = status["borrowLimit"] - status["borrowed"]
        items = []
        tokens = self.rng.sample(self.tokens, len(self.tokens))
        for token in tokens:
            info = self.snapshot[("info", token)]
            borrowing = info["kind"] == 1 and token == self.b.allowance and period == self.a.id
            if info["vintage"] > period and not borrowing:
                continue  # ineligible
            limit = min(
                self.balance(token, enterprise.address),
                left,
                borrow_room if borrowing else room[info["kind"]],
            )
            if limit <= 0 or (items and self.rng.random() < 0.5):
                continue
            amount = self.rng.randint(1, limit)
            items.append((token, amount))
            left -= amount
            room[info["kind"]] -= amount
            borrow_room -= amount if borrowing else 0
        if not items or not self.likely():  # anything at all: mostly refused
            items.append((self.rng.choice(self.tokens), self.rng.randint(1, T(50))))
        enterprise.allowances.surrender(period, items)
        return f"surrender {period} {items}"

    # When each period should reach each phase, as a fraction of the run: A is reconciling while B trades
    # (so B's vintage can be borrowed for A), and both close with time left to settle.
    PLAN = {0: (0.05, 0.25, 0.55), 1: (0.20, 0.45, 0.80)}

    def behind(self) -> list[int]:
        """The periods whose phase is behind the plan."""
        return [
            p
            for i, p in enumerate(self.periods)
            if 1 + sum(self.progress >= t for t in self.PLAN[i]) > int(self.phase(p))
        ]

    def op_advance(self) -> str:
        behind = self.behind()
        if behind:
            period, caller = behind[0], self.reg
        else:  # by a regional regulator or an enterprise, past CLOSED, or (rarely) early: mostly refused
            period = self.rng.choice(self.periods)
            closed = self.phase(period) is PeriodPhase.CLOSED
            caller = (
                self.reg
                if closed or self.rng.random() < 0.1
                else self.rng.choice([self.reg_north, self.enterprises[0]])
            )
        caller.allowances.advance_phase(period)
        return f"advance {period}"

    def op_settle(self) -> str:
        period = self.pick_period(PeriodPhase.CLOSED)
        candidates = self.enterprises + [self.suspended]
        fresh = [e.address for e in candidates if not self.status(period, e.address)["settled"]]
        pool = fresh if fresh and self.likely() else [e.address for e in candidates] + [self.stranger]
        names = self.rng.sample(pool, self.rng.randint(1, min(3, len(pool))))
        self.reg.allowances.settle(period, names)
        return f"settle {period} {names}"

    def op_reward(self) -> str:
        if self.rewarded and not self.well_formed:  # the same audit key again: CoinRuleAlreadyApplied
            subject, key = self.rng.choice(self.rewarded)
        else:
            subject, key = self.rng.choice(self.enterprises).address, f"invariant-{len(self.rewarded)}"
        self.reg.coin.apply_rule(subject, "accurate_report", evidence=b"inv", audit_key=key)
        self.rewarded.append((subject, key))
        return f"reward {key}"


# (operation, weight, the phases in which it can work: it is rare while no period is in one of them)
OPERATIONS: list[tuple[str, int, tuple[PeriodPhase, ...]]] = [
    ("allocate", 16, (PeriodPhase.OPEN, PeriodPhase.TRADING)),
    ("sale", 6, (PeriodPhase.OPEN, PeriodPhase.TRADING)),
    ("transfer", 20, ()),
    ("offsets", 8, ()),
    ("verify", 14, (PeriodPhase.RECONCILIATION,)),
    ("surrender", 22, (PeriodPhase.RECONCILIATION,)),
    ("advance", 4, ()),
    ("settle", 10, (PeriodPhase.CLOSED,)),
    ("reward", 5, ()),
]


def _weights(world: World) -> list[int]:
    phases = {world.phase(p) for p in world.periods}
    return [w if not needs or phases & set(needs) else 1 for _, w, needs in OPERATIONS]


def test_invariants_hold_after_every_step_of_a_random_run(market):
    rng = random.Random(SEED)
    world = World(market, rng)
    names = [name for name, _, _ in OPERATIONS]
    outcomes: Counter = Counter()
    for step in range(STEPS):
        world.progress = step / STEPS
        # the periods move through their phases on plan; every other step is a random operation
        name = "advance" if world.behind() else rng.choices(names, _weights(world))[0]
        world.well_formed = rng.random() < 0.7
        operation: Callable[[], str] = getattr(world, f"op_{name}")
        try:
            label = operation()
            ok = True
        except EXPECTED as exc:
            label, ok = f"{name} refused: {exc}", False
        outcomes[name, ok] += 1
        world.check(ok, f"step {step}: {label}")

    # The run must have exercised both sides of every operation, and the periods' whole life.
    for name in names:
        assert outcomes[name, True] > 0, (name, outcomes)
        assert outcomes[name, False] > 0, (name, outcomes)
    phases = {p: world.reg.allowances.phase(p) for p in world.periods}
    assert PeriodPhase.CLOSED in phases.values(), phases
    assert len(world.tokens) > 2  # offset tokens were created and checked too
    statuses = [s for p in world.periods for s in world.snapshot[("compliance", p)]]
    assert any(s["offsets"] for s in statuses), "no offsets were surrendered"
    assert any(s["borrowed"] for s in world.snapshot[("compliance", world.a.id)]), "nothing was borrowed"
    assert any(s["settled"] and s["state"] == 3 for s in statuses), "no shortfall was settled"
    assert world.snapshot["coin debt"] > 0, "no debt arose"
