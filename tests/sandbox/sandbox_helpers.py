"""Small synthetic results folders for the sandbox report's tests (no chain).

``make_run`` builds the tables of a results folder as lists of dicts with known numbers, ``patch`` changes a
row, ``write_results`` writes ``data/run.json`` and the CSV files the way the runner does (a header row, one
row per record), and ``md_table`` reads a table back out of report.md.

The default run: 3 periods, δ = 0.2, 0.4, 0.6, N = 1,000 t of deficit, D = 10,000 low-carbon users with
W = 0.5 t each, e = 100, c = 5, P = 60, k = 180,000 (so κ = 120,000 and δ* = 0.5). Welfare rows come from
carbon_sdk.economics' closed forms, so they agree with the seed paper's model by construction; the tests
patch them to build disagreements.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from carbon_sdk.economics import optimal_offset_ratio, platform_prices, regulator_welfare

COLUMNS = {
    "periods": ["period", "period_id", "cap_t", "free_allocated_t", "auctioned_t", "baseline_t", "abated_t",
                "emissions_t", "reported_t", "verified_t", "surrendered_t", "offsets_t", "shortfall_t",
                "compliant", "short_enterprises", "clearing_price", "auction_volume_t", "continuous_volume_t",
                "vwap", "delta", "transactions", "gas", "wall_seconds"],
    "enterprises": ["period", "enterprise", "group", "region", "baseline_t", "abated_t", "emissions_t",
                    "reported_t", "verified_t", "allocated_t", "bought_t", "sold_t", "surrendered_t",
                    "shortfall_t", "state", "coin_delta", "coin_balance", "coin_debt", "verifier",
                    "verifier_honest"],
    "trades": ["period", "phase", "block", "timestamp", "price", "tonnes", "value", "buyer", "seller"],
    "individuals": ["period", "group", "users", "participants", "emissions_with_market_t",
                    "emissions_without_market_t", "credits_issued_t", "deficit_owed_t", "sold_t", "bought_t",
                    "covered_t", "outstanding_t", "surplus_paid", "purchases_paid"],
    "welfare": ["period", "delta", "N_t", "D", "W_t", "e", "c", "p_ph", "p_c", "d_all_t", "profit",
                "user_surplus", "welfare", "participation", "delta_star", "welfare_at_delta_star",
                "social_welfare"],
    "coin": ["period", "enterprise", "rule", "amount", "debt_after"],
}

# (phase, price, tonnes) per period: the hand-checked trades.
TRADES = {
    1: [("auction", 10.0, 100.0), ("continuous", 12.0, 20.0), ("continuous", 11.0, 10.0)],
    2: [("auction", 20.0, 50.0), ("continuous", 21.5, 10.0), ("continuous", 19.0, 30.0)],
    3: [("auction", 30.0, 40.0)],
}

# (enterprise, group, emissions, verified, surrendered, shortfall, state) per period; C is unreported last.
FIRMS = {
    1: [("A", "power", 100.0, 100.0, 100.0, 0.0, "compliant"), ("B", "steel", 80.0, 80.0, 80.0, 0.0, "compliant"),
        ("C", "steel", 60.0, 60.0, 60.0, 0.0, "compliant")],
    2: [("A", "power", 110.0, 110.0, 110.0, 0.0, "compliant"), ("B", "steel", 85.0, 85.0, 75.0, 10.0, "shortfall"),
        ("C", "steel", 62.0, 62.0, 62.0, 0.0, "compliant")],
    3: [("A", "power", 120.0, 120.0, 120.0, 0.0, "compliant"), ("B", "steel", 90.0, 90.0, 70.0, 20.0, "shortfall"),
        ("C", "steel", 64.0, 0.0, 0.0, 64.0, "unreported")],
}

# (enterprise, rule, amount) per period: rewards for compliance, penalties for shortfalls.
COIN = {
    1: [("A", "on_time_report", 5.0), ("B", "on_time_report", 5.0), ("C", "on_time_report", 5.0)],
    2: [("A", "on_time_report", 5.0), ("B", "shortfall", -12.5), ("C", "on_time_report", 5.0)],
    3: [("A", "on_time_report", 5.0), ("B", "shortfall", -25.0), ("C", "late_report", -40.0)],
}


def _per_period(value: Any, n: int) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


def make_run(name: str = "base", *, personal_trading: bool = True, seed: int = 7, periods: int = 3,
             deltas: Sequence[float] = (0.2, 0.4, 0.6), N: float | Sequence[float] = 1000.0, D: int = 10_000,
             W: float = 0.5, e: float = 100.0, c: float = 5.0, P: float = 60.0, k: float = 180_000.0,
             consumer_saving: tuple[float, float] = (10.0, 20.0), price_scale: float = 1.0) -> dict[str, Any]:
    """The tables of a results folder, as {"run": run.json, "periods": [row, ...], ...}.

    Consumers: each period the low-carbon group emits 400 t without the market and the high-carbon group
    1,200 t; with the market each emits ``consumer_saving`` less (nothing less when personal trading is off).
    Trade prices are TRADES' times ``price_scale``.
    """
    Ns = _per_period(N, periods)
    tables: dict[str, list[dict]] = {name_: [] for name_ in COLUMNS}
    block = 10
    for p in range(1, periods + 1):
        delta = deltas[p - 1]
        trades = [(phase, round(price * price_scale, 2), tonnes) for phase, price, tonnes in TRADES[p]]
        for i, (phase, price, tonnes) in enumerate(trades):
            tables["trades"].append({"period": p, "phase": phase, "block": block + i, "timestamp": 1000 * p + 12 * i,
                                     "price": price, "tonnes": tonnes, "value": round(price * tonnes, 2),
                                     "buyer": f"0xbuyer{i}", "seller": "0xregulator" if phase == "auction"
                                     else f"0xseller{i}"})
        block += 10
        volume = sum(t for _, _, t in trades)
        firms = FIRMS[p]
        states = [f[6] for f in firms]
        emissions = sum(f[2] for f in firms)
        tables["periods"].append({
            "period": p, "period_id": 2024 + p, "cap_t": 300.0 - 10 * p, "free_allocated_t": 250.0,
            "auctioned_t": 50.0 - 10 * p, "baseline_t": emissions + 15, "abated_t": 15.0, "emissions_t": emissions,
            "reported_t": sum(f[3] for f in firms), "verified_t": sum(f[3] for f in firms),
            "surrendered_t": sum(f[4] for f in firms), "offsets_t": 2.0 * p, "shortfall_t": sum(f[5] for f in firms),
            "compliant": states.count("compliant"), "short_enterprises": len(states) - states.count("compliant"),
            "clearing_price": trades[0][1], "auction_volume_t": sum(t for ph, _, t in trades if ph == "auction"),
            "continuous_volume_t": sum(t for ph, _, t in trades if ph == "continuous"),
            "vwap": round(sum(pr * t for _, pr, t in trades) / volume, 4), "delta": delta,
            "transactions": 100 * p, "gas": 1_000_000 * p, "wall_seconds": 10.0 * p})
        debt = 0.0
        for firm, group, em, ver, surr, short, state in firms:
            coin_rows = [c_ for c_ in COIN[p] if c_[0] == firm]
            debt = sum(-a for pp in range(1, p + 1) for f_, _, a in COIN[pp] if f_ == firm and a < 0)
            tables["enterprises"].append({
                "period": p, "enterprise": firm, "group": group, "region": 11, "baseline_t": em + 5,
                "abated_t": 5.0, "emissions_t": em, "reported_t": ver, "verified_t": ver, "allocated_t": em - 10,
                "bought_t": 10.0, "sold_t": 0.0, "surrendered_t": surr, "shortfall_t": short, "state": state,
                "coin_delta": sum(a for _, _, a in coin_rows), "coin_balance": 100.0, "coin_debt": debt,
                "verifier": "" if state == "unreported" else "GreenCert",
                "verifier_honest": "" if state == "unreported" else True})
            for _, rule, amount in coin_rows:
                tables["coin"].append({"period": p, "enterprise": firm, "rule": rule, "amount": amount,
                                       "debt_after": debt})
        saving_low, saving_high = consumer_saving if personal_trading else (0.0, 0.0)
        for group, users, without, saving in (("low_carbon", 1000, 400.0, saving_low),
                                              ("high_carbon", 1000, 1200.0, saving_high)):
            tables["individuals"].append({
                "period": p, "group": group, "users": users, "participants": 300 if personal_trading else 0,
                "emissions_with_market_t": without - saving, "emissions_without_market_t": without,
                "credits_issued_t": 600.0 if group == "low_carbon" else 0.0,
                "deficit_owed_t": 200.0 * delta if group == "high_carbon" else 0.0,
                "sold_t": 100.0 if group == "low_carbon" else 0.0,
                "bought_t": 100.0 if group == "high_carbon" else 0.0,
                "covered_t": 100.0 if group == "high_carbon" else 0.0, "outstanding_t": 0.0,
                "surplus_paid": 400.0 if group == "low_carbon" else 0.0,
                "purchases_paid": 1300.0 if group == "high_carbon" else 0.0})
        n = Ns[p - 1]
        row = {"period": p, "delta": delta, "N_t": n, "D": D, "W_t": W, "e": e, "c": c}
        if personal_trading:
            prices = platform_prices(n, delta, e, D, W, c)
            row.update(p_ph=float(prices.p_ph), p_c=float(prices.p_c), d_all_t=float(prices.d_all),
                       profit=float(prices.profit), user_surplus=float(prices.user_surplus),
                       welfare=float(prices.welfare), participation=float(prices.participation))
        else:  # what the runner writes without a market
            row.update(p_ph=0.0, p_c=0.0, d_all_t=0.0, profit=0.0, user_surplus=0.0, welfare=0.0, participation=0.0)
        best = optimal_offset_ratio(n, P, k, e, D, W)
        row.update(delta_star=float(best.delta), welfare_at_delta_star=float(best.welfare),
                   social_welfare=float(regulator_welfare(delta, n, P, k, e, D, W)))
        tables["welfare"].append(row)
    config = {"name": name, "description": f"synthetic run {name}", "seed": seed, "periods": periods,
              "policy": {"personal_trading": personal_trading, "offset_ratio": list(deltas[:periods]),
                         "carbon_value": P, "delta_cost_k": k}}
    # As the runner writes it: {"scenario": name, ..., "scenario": dict} in Python keeps the dict only.
    tables["run"] = {"seed": seed, "periods": periods, "chain_id": 31337, "started": "2025-01-01T00:00:00Z",
                     "wall_seconds": 12.5, "personal_trading": personal_trading, "scenario_file": None,
                     "scenario": config}
    return tables


def patch(run: dict[str, Any], table: str, period: int, match: dict | None = None, **values: Any) -> None:
    """Change the row(s) of ``table`` in ``period`` (and matching ``match``) in place."""
    hits = [row for row in run[table] if row["period"] == period
            and all(row.get(k) == v for k, v in (match or {}).items())]
    assert hits, f"no {table} row for period {period} {match}"
    for row in hits:
        row.update(values)


def write_results(folder: Path, run: dict[str, Any], *, columns: dict[str, list[str]] | None = None) -> Path:
    """Write ``run`` (from make_run) as a results folder; ``columns`` overrides a file's header."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, default in COLUMNS.items():
        header = (columns or {}).get(name, default)
        with (data / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(run[name])
    (data / "run.json").write_text(json.dumps(run["run"], indent=2))
    return folder


def md_table(text: str, marker: str) -> list[dict[str, str]]:
    """The first Markdown table after the line containing ``marker``, as a list of {header: cell}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line)
    i = next(j for j in range(start + 1, len(lines)) if lines[j].startswith("|"))
    rows = []
    while i < len(lines) and lines[i].startswith("|"):
        rows.append([cell.strip() for cell in lines[i].strip().strip("|").split(" | ")])
        i += 1
    header, body = rows[0], rows[2:]
    return [dict(zip(header, row)) for row in body]
