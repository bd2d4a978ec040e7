"""Helpers for the MRV tests: reports in a period in RECONCILIATION, a snapshot of everything a rejected
call might change, and a way to send a call the SDK would refuse, so that it reverts on chain."""

from __future__ import annotations

import dataclasses
import itertools
import os
from contextlib import contextmanager
from typing import Any, Iterator

from carbon_sdk import CarbonClient
from carbon_sdk.allowances import PeriodPhase
from carbon_sdk.tx import Call, Receipt
from carbon_sdk.units import tonnes

_documents = itertools.count(1)


def random_root() -> bytes:
    return os.urandom(32)


def document() -> str:
    """A fresh report document (hashed by the SDK)."""
    return f"report document #{next(_documents)}"


def state(market: Any, accounts: list[str], periods: list[int] = ()) -> dict[str, Any]:
    """What a rejected MRV or coin call must leave as it was: every report version and audit of the accounts
    in the periods, their coin balances and debts, the coin's supply and total debt, settlement balances
    (the conversion pool included) and registry debt flags, and the GWP table versions."""
    client: CarbonClient = market.regulator
    mrv, coin, settlement = client.mrv.contract, client.coin.contract, client.settlement.contract
    registry = client.registry.contract
    out: dict[str, Any] = {
        "gwp_versions": mrv.call("gwpVersions"),
        "coin_supply": coin.call("totalSupply"),
        "total_debt": coin.call("totalDebt"),
        "settlement_supply": settlement.call("totalSupply"),
        "pool": settlement.call("balanceOf", coin.address),
    }
    for account in accounts:
        out[account] = {
            "coin": coin.call("balanceOf", account),
            "debt": coin.call("debtOf", account),
            "settlement": settlement.call("balanceOf", account),
            "in_debt": registry.call("getMember", account)["inDebt"],
        }
        for period in periods:
            count = mrv.call("reportCount", period, account)
            out[account][period] = {
                "reports": [mrv.call("getReport", period, account, v) for v in range(1, count + 1)],
                "audit": mrv.call("getAudit", period, account),
            }
    return out


def unchanged(market: Any, accounts: list[str], periods: list[int] = ()):
    """``with unchanged(market, [addresses], [periods]): ...`` asserts that :func:`state` did not change."""

    @contextmanager
    def check() -> Iterator[None]:
        before = state(market, accounts, list(periods))
        yield
        assert state(market, accounts, list(periods)) == before

    return check()


def send_anyway(client: CarbonClient, call: Call) -> Receipt:
    """Send with a fixed gas limit, skipping the SDK's estimate: a bad call is mined and reverts on chain
    (the SDK then raises the decoded error with the transaction's hash)."""
    return client.transact(dataclasses.replace(call, gas=1_000_000))


def reconciling_period(market: Any, cap: int = tonnes(1_000_000)) -> int:
    """A fresh period, moved to RECONCILIATION (reports, reviews and audits happen there)."""
    period = market.open_period(cap).id
    market.to_phase(period, PeriodPhase.RECONCILIATION)
    return period


def submit(enterprise: CarbonClient, period: int, co2: int, **gases: int):
    """A report of ``co2`` grams of CO2 (plus other gases by name), with a random readings root."""
    return enterprise.mrv.submit_report(period, {"CO2": co2, **gases}, readings_root=random_root(),
                                        report_document=document())


def endorsed(market: Any, period: int, reported: int, verified: int, *, region: int = 0):
    """A fresh enterprise whose report of ``reported`` grams a fresh verifier endorsed at ``verified``."""
    enterprise, verifier = market.enterprise(region), market.verifier()
    report = submit(enterprise, period, reported)
    verifier.mrv.endorse(period, enterprise.address, report.version, verified_quantity=verified,
                         evidence="site visit")
    return enterprise, verifier
