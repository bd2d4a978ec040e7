"""Helpers for the allowance and compliance tests: audited emissions, raw transactions, whole-state snapshots.

(Named ``allowances_helpers`` rather than ``helpers``: test folders have no ``__init__.py``, so two folders'
``helpers.py`` would collide in ``sys.modules`` when the whole suite runs.)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from carbon_sdk import CarbonClient
from carbon_sdk.allowances import pack_grant
from carbon_sdk.tx import Receipt
from carbon_sdk.units import tonnes

REPORT_ROOT = "0x" + "11" * 32
# An explicit gas limit makes the SDK skip eth_estimateGas: the transaction is signed, sent and mined, so the
# contract itself has to refuse it (the SDK then decodes the revert from the mined transaction).
RAW_GAS = 1_000_000

T = tonnes  # short alias: T("12.5") == 12_500_000 units


# ---------------------------------------------------------------- members and emissions


def verifier_of(market: Any) -> CarbonClient:
    """One verifier organisation per market (a different organisation from every enterprise)."""
    if getattr(market, "_allowances_verifier", None) is None:
        market._allowances_verifier = market.verifier()
    return market._allowances_verifier


def report(enterprise: CarbonClient, period: int, grams: int) -> int:
    """The enterprise reports ``grams`` of CO2 for ``period`` (RECONCILIATION); returns the version."""
    return enterprise.mrv.submit_report(
        period, {"CO2": grams}, readings_root=REPORT_ROOT, report_document=b"doc"
    ).version


def verify(market: Any, period: int, enterprise: CarbonClient, grams: int) -> int:
    """Report, endorse (by a verifier of another organisation) and audit: ``grams`` become the enterprise's
    audited emissions for ``period``. The audit is accurate, so it also rewards ACCURATE_REPORT (10 coin)."""
    version = report(enterprise, period, grams)
    verifier_of(market).mrv.endorse(
        period, enterprise.address, version, verified_quantity=grams, evidence=b"e"
    )
    market.regulator.mrv.audit(period, enterprise.address, evidence=b"a")
    audited = market.regulator.mrv.verified_emissions(period, enterprise.address)
    assert audited == grams
    return audited


def in_reconciliation(
    market: Any,
    cap: int,
    holdings: dict[CarbonClient, int],
    emissions: dict[CarbonClient, int],
    **period_options: Any,
):
    """A fresh period: ``holdings`` allocated to each enterprise, then RECONCILIATION with ``emissions``
    audited."""
    from carbon_sdk.allowances import PeriodPhase

    period = market.open_period(cap, **period_options)
    grants = {e.address: amount for e, amount in holdings.items() if amount}
    if grants:
        market.regulator.allowances.allocate(period.id, grants)
    market.to_phase(period.id, PeriodPhase.RECONCILIATION)
    for enterprise, grams in emissions.items():
        verify(market, period.id, enterprise, grams)
    return market.regulator.allowances.period(period.id)


# ---------------------------------------------------------------- transactions


def raw(client: CarbonClient, function: str, *args: Any, gas: int = RAW_GAS) -> Receipt:
    """Send an AllowanceManager call with an explicit gas limit: no SDK pre-check, no estimate."""
    return client.transact(client.allowances.contract.tx(function, *args, gas=gas))


def raw_token(client: CarbonClient, token: str, function: str, *args: Any, gas: int = RAW_GAS) -> Receipt:
    return client.transact(client.allowances.token(token).tx(function, *args, gas=gas))


def grants(*pairs: tuple[str, int]) -> list[bytes]:
    return [pack_grant(address, amount) for address, amount in pairs]


def block_time(client: CarbonClient, tx_hash: str) -> int:
    """The timestamp of the block that mined ``tx_hash`` (reverted or not)."""
    receipt = client.rpc.call("eth_getTransactionReceipt", [tx_hash])
    block = client.rpc.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
    return int(block["timestamp"], 16)


def tx_status(client: CarbonClient, tx_hash: str) -> int:
    return int(client.rpc.call("eth_getTransactionReceipt", [tx_hash])["status"], 16)


def nonce(client: CarbonClient, address: str | None = None) -> int:
    return int(client.rpc.call("eth_getTransactionCount", [address or client.address, "latest"]), 16)


def addresses(items: Iterable[Any]) -> list[str]:
    return [i.address if isinstance(i, CarbonClient) else i for i in items]


# ---------------------------------------------------------------- snapshots


def state(
    market: Any,
    *,
    periods: Iterable[int] = (),
    tokens: Iterable[str] = (),
    holders: Iterable[Any] = (),
    enterprises: Iterable[Any] = (),
    timeless: bool = False,
) -> dict[str, Any]:
    """Everything a rejected call could have changed, read from the chain.

    For each period: its record (``getPeriod``: cap, allocated, regional total, national allocations,
    surrendered, schedule, links), every regional cap, and the compliance record of each of ``enterprises``
    (and ``holders``). For each token (the periods' vintages plus ``tokens``): totalSupply, issuedOf,
    tokenInfo and the balance of each holder. The coin's supply and debt and each holder's coin balance, debt
    and trading flag. The manager's period and project counters.

    ``timeless``: leave out what the clock alone changes (a period's phase; an unsettled compliance record's
    phase, state and shortfall), to compare states on either side of a phase boundary.
    """
    reader = market.regulator
    manager = reader.allowances.contract
    holders = addresses(holders)
    watched = sorted(set(holders) | set(addresses(enterprises)))
    out: dict[str, Any] = {
        "last_period": manager.call("lastPeriod"),
        "projects": manager.call("offsetProjectCount"),
        "periods": {},
        "tokens": {},
        "coin": {
            "supply": reader.coin.total_supply(),
            "debt": reader.coin.total_debt(),
            "accounts": {
                a: (reader.coin.balance(a), reader.coin.debt(a), reader.registry.can_trade(a))
                for a in watched
            },
        },
    }
    token_list = list(tokens)
    for period in periods:
        record = manager.call("getPeriod", period)
        compliance = manager.call("complianceOfMany", period, watched) if watched else []
        if timeless:
            record = {k: v for k, v in record.items() if k != "phase"}
            compliance = [
                c
                if c["settled"]
                else {k: v for k, v in c.items() if k not in ("phase", "state", "shortfall")}
                for c in compliance
            ]
        out["periods"][period] = {
            "record": record,
            "regions": {
                r: manager.call("regionalCap", period, r) for r in manager.call("periodRegions", period)
            },
            "compliance": compliance,
        }
        if int(record["allowance"], 16):
            token_list.append(record["allowance"])
    for token in dict.fromkeys(token_list):
        bound = reader.allowances.token(token)
        out["tokens"][token] = {
            "supply": bound.call("totalSupply"),
            "issued": manager.call("issuedOf", token),
            "info": manager.call("tokenInfo", token),
            "balances": reader.allowances.balances(token, holders) if holders else {},
        }
    return out


@contextmanager
def unchanged(market: Any, **what: Any) -> Iterator[dict[str, Any]]:
    """``with unchanged(market, periods=[p], holders=[a, b]): ...`` asserts that the state is identical
    afterwards."""
    before = state(market, **what)
    yield before
    after = state(market, **what)
    assert after == before
