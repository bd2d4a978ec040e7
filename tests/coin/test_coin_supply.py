"""The coin's supply changes only through the rules and conversion (DESIGN 6): after a random sequence of rule
applications, conversions and repayments, the chain's events account for every unit."""

from __future__ import annotations

import random

from coin_helpers import fresh_key

from carbon_sdk.coin import Reason
from carbon_sdk.units import tonnes


def test_supply_and_debt_are_accounted_for_by_the_events(market):
    rng = random.Random(6)
    regulator = market.regulator
    coin = regulator.coin
    platform = market.platform()
    platform.settlement.issue(regulator.address, 10**9, fiat_reference="pool funding")
    coin.fund_pool(10**9)
    sponsor = market.enterprise()
    platform.settlement.issue(sponsor.address, 10**9, fiat_reference="sponsor funding")
    subjects = [market.enterprise() for _ in range(3)] + [market.verifier() for _ in range(2)]
    rules = coin.rules()

    for _ in range(60):
        subject = rng.choice(subjects)
        action = rng.choices(["rule", "convert", "repay"], weights=[6, 2, 2])[0]
        if action == "convert" and coin.balance(subject.address) >= 1_000:
            subject.coin.convert(rng.randint(1, coin.balance(subject.address)))
        elif action == "repay" and coin.debt(subject.address) > 0:
            sponsor.coin.repay_debt(subject.address, rng.randint(1, coin.debt(subject.address)))
        else:
            reason = rng.choice(list(Reason))
            coin.apply_rule(subject.address, reason, evidence="inspection", audit_key=fresh_key(),
                            quantity=rng.randint(0, tonnes(300)))

    applications = coin.applications()
    converted = coin.contract.logs(["Converted"])
    repaid = coin.contract.logs(["DebtRepaid"])
    assert len(applications) > 30 and converted and repaid
    for a in applications:  # each application is the rule's amount, split exactly
        assert a.amount == rules[a.reason].amount(a.quantity)
        if rules[a.reason].penalty:
            assert a.minted == 0 and a.burned + a.debt_change == a.amount and a.debt_change >= 0
        else:
            assert a.burned == 0 and a.minted - a.debt_change == a.amount and a.debt_change <= 0

    supply = coin.total_supply()
    assert supply == (sum(a.minted for a in applications) - sum(a.burned for a in applications)
                      - sum(e.args["coinAmount"] for e in converted))
    assert supply == sum(coin.balance(s.address) for s in subjects)
    total_debt = coin.total_debt()
    assert total_debt == sum(a.debt_change for a in applications) - sum(e.args["coinAmount"] for e in repaid)
    assert total_debt == sum(coin.debt(s.address) for s in subjects)
    assert coin.pool_balance() == (10**9 - sum(e.args["paid"] for e in converted)
                                   + sum(e.args["paid"] for e in repaid))
    for s in subjects:  # the registry's flag mirrors the coin's debt
        assert regulator.registry.member(s.address).in_debt == (coin.debt(s.address) > 0)
