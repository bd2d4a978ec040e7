"""Monitoring readings: load them, commit them as one Merkle root, prove one, find where two versions differ.

An enterprise's continuous monitoring data (CEMS sensors, fuel meters) stays off chain; its emission
report carries the Merkle root of the readings. Anyone holding the data can then prove that a reading was
part of the report, and two versions of a dataset can be compared reading by reading.

CSV format (header required; one reading per row)::

    sensor,time,gas,quantity_t
    stack-1,2025-01-01T00:00:00Z,CO2,12.345678
    stack-1,2025-01-01T01:00:00Z,CH4,0.000120

``time`` is ISO 8601 (with a zone, or UTC is assumed) or unix seconds; ``quantity_t`` is tonnes of that gas
with at most 6 decimals (1 unit = 1 gram: carbon amounts use 6 decimals throughout). Nothing is rounded: a
value with more decimals is an error.

Each reading is a leaf ``(string sensor, uint64 time, string gas, uint256 grams)`` of an OpenZeppelin
StandardMerkleTree, so a contract can check a proof with `MerkleProof`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable, Sequence

from carbon_sdk.errors import InvalidInput
from carbon_sdk.merkle import StandardMerkleTree

LEAF_ENCODING = ("string", "uint64", "string", "uint256")
UNITS_PER_TONNE = 10**6
COLUMNS = ("sensor", "time", "gas", "quantity_t")


@dataclass(frozen=True, order=True)
class Reading:
    sensor: str
    time: int  # unix seconds
    gas: str
    grams: int

    @property
    def key(self) -> tuple[str, int, str]:
        """What identifies a reading across versions of a dataset: which sensor, when, which gas."""
        return (self.sensor, self.time, self.gas)

    @property
    def tonnes(self) -> Decimal:
        return Decimal(self.grams) / UNITS_PER_TONNE

    def leaf(self) -> tuple[str, int, str, int]:
        return (self.sensor, self.time, self.gas, self.grams)


def parse_time(text: str) -> int:
    """ISO 8601 (UTC unless a zone is given) or unix seconds -> unix seconds; ValueError otherwise."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r} is neither ISO 8601 nor unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def _parse_grams(text: str) -> int:
    try:
        tonnes = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"quantity {text!r} is not a number") from None
    if not tonnes.is_finite() or tonnes < 0:
        raise ValueError(f"quantity {text!r} must be a non-negative number of tonnes")
    grams = tonnes * UNITS_PER_TONNE
    if grams != grams.to_integral_value():
        raise ValueError(f"quantity {text!r} has more than 6 decimals (1 unit = 1 gram; nothing is rounded)")
    return int(grams)


def parse_readings(rows: Iterable[dict[str, str]], source: str = "readings") -> list[Reading]:
    """Validate rows (dicts with the CSV's columns); every problem is reported with its line, nothing partial."""
    readings: list[Reading] = []
    problems: list[str] = []
    seen: dict[tuple[str, int, str], int] = {}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            missing = [c for c in COLUMNS if not (row.get(c) or "").strip()]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            reading = Reading(row["sensor"].strip(), parse_time(row["time"]), row["gas"].strip().upper(),
                              _parse_grams(row["quantity_t"]))
            if reading.time >= 2**64:
                raise ValueError("time is out of range")
            if reading.key in seen:
                raise ValueError(f"duplicate of line {seen[reading.key]} (same sensor, time and gas)")
            seen[reading.key] = line
            readings.append(reading)
        except ValueError as problem:
            problems.append(f"{source}, line {line}: {problem}")
    if problems:
        shown = "\n".join(problems[:20]) + (f"\n... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise InvalidInput(f"{len(problems)} invalid reading(s):\n{shown}")
    if not readings:
        raise InvalidInput(f"{source} holds no readings")
    return readings


def load_readings_csv(path: str | Path) -> list[Reading]:
    """Read and validate a readings CSV (see the module's docstring for the format)."""
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        absent = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise InvalidInput(f"{path}: the header lacks {', '.join(absent)} (expected {','.join(COLUMNS)})")
        return parse_readings(reader, source=str(path))


@dataclass(frozen=True)
class ReadingsCommitment:
    """A dataset of readings and its Merkle tree: the root goes into the report, the rest stays off chain."""

    readings: tuple[Reading, ...]
    tree: StandardMerkleTree

    @classmethod
    def of(cls, readings: Sequence[Reading]) -> "ReadingsCommitment":
        ordered = tuple(sorted(readings))
        return cls(ordered, StandardMerkleTree.of([r.leaf() for r in ordered], LEAF_ENCODING))

    @property
    def root(self) -> str:
        return self.tree.root

    @property
    def total_grams_by_gas(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for r in self.readings:
            totals[r.gas] = totals.get(r.gas, 0) + r.grams
        return totals

    def prove(self, reading: Reading) -> list[str]:
        """The inclusion proof of one reading."""
        try:
            index = self.readings.index(reading)
        except ValueError:
            raise InvalidInput(f"{reading} is not in this dataset") from None
        return self.tree.get_proof(index)


def verify_reading(root: str, reading: Reading, proof: Sequence[str]) -> bool:
    """Whether ``reading`` belongs to the dataset committed as ``root`` (the check `MerkleProof` makes)."""
    return StandardMerkleTree.verify(root, LEAF_ENCODING, reading.leaf(), proof)


@dataclass(frozen=True)
class ReadingsDiff:
    added: tuple[Reading, ...]  # in the new version only
    removed: tuple[Reading, ...]  # in the old version only
    changed: tuple[tuple[Reading, Reading], ...]  # (old, new): same sensor, time and gas, other quantity

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_readings(old: Sequence[Reading], new: Sequence[Reading]) -> ReadingsDiff:
    """Locate the readings where two versions of a dataset differ (their roots differ exactly when this
    is not empty)."""
    before = {r.key: r for r in old}
    after = {r.key: r for r in new}
    return ReadingsDiff(
        added=tuple(sorted(after[k] for k in after.keys() - before.keys())),
        removed=tuple(sorted(before[k] for k in before.keys() - after.keys())),
        changed=tuple(sorted((before[k], after[k]) for k in before.keys() & after.keys() if before[k] != after[k])),
    )
