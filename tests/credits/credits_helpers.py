"""Helpers for the off-chain personal-credit tests: activity files from rows, and an independent reference.

(Named ``credits_helpers`` rather than ``helpers``: test folders have no ``__init__.py``.)
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Sequence

from carbon_sdk.activities import COLUMNS
from carbon_sdk.methodology import Methodology

ALICE = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
BOB = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
CAROL = "0x4B20993Bc481177ec7E8f571ceCaE8A9e22C02db"


def write_csv(path: Path, rows: Iterable[Sequence], header: Sequence[str] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: Iterable[Sequence], numbers: bool = True) -> Path:
    """One object per row; with ``numbers``, quantity and region are JSON numbers (the quantity's digits kept)."""
    lines = []
    for account, activity, quantity, unit, region, time in rows:
        if numbers:
            lines.append(f'{{"account": "{account}", "activity": "{activity}", "quantity": {quantity}, '
                         f'"unit": "{unit}", "region": {region}, "time": {json.dumps(time)}}}')
        else:
            lines.append(json.dumps(dict(zip(COLUMNS, (account, activity, str(quantity), unit, str(region), time)))))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reference_totals(path: Path, methodology: Methodology) -> dict[str, tuple[int, int, int]]:
    """account -> (emissions, reductions, records), the slow obvious way: DictReader, ``assess`` per record,
    exact sums per account, then the methodology's rounding once per account."""
    exact: dict[str, list] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            a = methodology.assess(row["activity"], row["quantity"], row["unit"], int(row["region"]))
            sums = exact.setdefault(row["account"], [Decimal(0), Decimal(0), 0])
            sums[0] += a.emissions_exact
            sums[1] += a.reductions_exact
            sums[2] += 1
    return {account: (methodology.round_emissions(e), methodology.round_reductions(r), n)
            for account, (e, r, n) in exact.items()}
