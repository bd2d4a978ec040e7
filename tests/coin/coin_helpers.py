"""Helpers for the coin tests: a snapshot of everything a rejected coin call might change, coin earned by
a rule, and a way to send a call the SDK would refuse, so that it reverts on chain."""

from __future__ import annotations

import dataclasses
import itertools
from contextlib import contextmanager
from typing import Any, Iterator

from carbon_sdk import CarbonClient
from carbon_sdk.coin import Reason, RuleApplication
from carbon_sdk.tx import Call, Receipt

_keys = itertools.count(1)


def fresh_key() -> str:
    """An audit key never used before (hashed by the SDK)."""
    return f"coin test case #{next(_keys)}"


def apply(market: Any, subject: str, reason: Reason, quantity: int = 0) -> RuleApplication:
    """The national regulator applies ``reason`` to ``subject`` under a fresh audit key."""
    return market.regulator.coin.apply_rule(subject, reason, evidence="inspection report",
                                            audit_key=fresh_key(), quantity=quantity)


def state(market: Any, accounts: list[str]) -> dict[str, Any]:
    """Coin balances and debts, the coin's supply and total debt, settlement balances (the conversion pool
    included) and supply, and registry debt flags."""
    client: CarbonClient = market.regulator
    coin, settlement, registry = client.coin.contract, client.settlement.contract, client.registry.contract
    out: dict[str, Any] = {
        "coin_supply": coin.call("totalSupply"),
        "total_debt": coin.call("totalDebt"),
        "settlement_supply": settlement.call("totalSupply"),
        "pool": settlement.call("balanceOf", coin.address),
    }
    for account in accounts:
        out[account] = (coin.call("balanceOf", account), coin.call("debtOf", account),
                        settlement.call("balanceOf", account), registry.call("getMember", account)["inDebt"])
    return out


def unchanged(market: Any, accounts: list[str]):
    """``with unchanged(market, [addresses]): ...`` asserts that nothing of :func:`state` changed."""

    @contextmanager
    def check() -> Iterator[None]:
        before = state(market, accounts)
        yield
        assert state(market, accounts) == before

    return check()


def send_anyway(client: CarbonClient, call: Call) -> Receipt:
    """Send with a fixed gas limit, skipping the SDK's estimate: a bad call is mined and reverts on chain."""
    return client.transact(dataclasses.replace(call, gas=1_000_000))
