"""Versioned methodologies for personal carbon accounts: emission factors and baselines, each with its source.

A platform turns its users' activity records into emissions and reductions with a methodology version that the
regulator has registered on chain by its content hash (DESIGN 2.4); every batch of personal credits cites that
version. The default data set, version 1, ships with the SDK (``carbon_sdk/data/methodology_v1.json``)::

    m = Methodology.default()
    m.version, m.content_hash            # 1, keccak256 of the canonical JSON (bytes32)
    m.factor("metro", 31)                # per-km baseline, actual, reduction and their sources
    m.assess("metro", "12.5", "km", 31)  # Assessment(emissions=0, reductions=1686, ...)

The model: emissions and reductions
-----------------------------------
Every activity is one of two kinds, and a record counts as one or the other, never both:

- an **emission** activity is the account's own consumption, e.g. household electricity or driving a petrol
  car: ``emissions = quantity x factor(region)``, in grams CO2e;
- a **reduction** activity is green behaviour measured against a baseline, the emissions the same service
  would have caused the conventional way: ``reductions = quantity x (baseline(region) - actual(region))``.
  A metro trip instead of a petrol car reduces by (car factor - metro factor) per passenger-km; walking and
  cycling have no direct emissions, so by the car factor per km; a declined single-use bag by the bag's
  footprint. The green activity's own emissions are netted inside its reduction and are not also counted as
  emissions, so no gram is counted twice. A methodology whose baseline is below the actual factor for some
  region is refused (a reduction is never negative).

A region without its own value of a factor uses the national default, region 0. Quantities are decimals (at
most 6 places; counted items whole); the arithmetic is exact (``Decimal``, never floats). Rounding to whole
grams happens once, on each account's exact total for a batch (see :mod:`carbon_sdk.activities`), with the
rule the methodology declares; version 1 rounds emissions up (ceiling) and reductions down (floor), so
rounding never favours the account: less than one gram each per account and batch.

The content hash
----------------
``content_hash`` is keccak256 of the canonical JSON of the whole document: keys sorted, no whitespace, UTF-8
(non-ASCII kept as is), every decimal written as a JSON string so that no number formatting is involved (the
form RFC 8785 gives for such a document). Changing anything, a value, a source or a note, changes the hash;
that is what the regulator registers and what every batch cites.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
)
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from eth_utils import keccak

from carbon_sdk.errors import InvalidInput

SCHEMA = "carbon-sdk/methodology/1"
DEFAULT_FILE = "methodology_v1.json"
EMISSION, REDUCTION = "emission", "reduction"
MAX_QUANTITY_DECIMALS = 6
MAX_FACTOR_DECIMALS = 12
MAX_QUANTITY = Decimal(10) ** 12  # per record: a bound that keeps every sum far inside the exact context
MAX_FACTOR = Decimal(10) ** 9  # grams CO2e per unit
UINT32_MAX = 2**32 - 1
ROUNDINGS = {"ceiling": ROUND_CEILING, "floor": ROUND_FLOOR, "half_even": ROUND_HALF_EVEN,
             "half_up": ROUND_HALF_UP, "half_down": ROUND_HALF_DOWN}
SOURCE_FIELDS = ("title", "publisher", "date", "locator", "verification")
ZERO = Decimal(0)

# All arithmetic on factors and quantities runs in this context: 60 significant digits hold any sum the
# bounds above allow, and Inexact is trapped, so a result is either exact or an error, never rounded silently.
EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])

_DECIMAL_TEXT = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?\Z")


@dataclass(frozen=True)
class ActivityFactor:
    """What one unit of an activity counts in one region, in grams CO2e.

    ``emissions_per_unit`` is the factor of an emission activity (0 for a reduction activity);
    ``reductions_per_unit`` is ``baseline - actual`` for a reduction activity (0 for an emission activity).
    """

    activity: str
    region: int  # the region asked for; ``factor_regions`` says which region's values were used
    kind: str
    unit: str
    emissions_per_unit: Decimal
    reductions_per_unit: Decimal
    actual: Decimal  # the activity's own emissions per unit
    baseline: Decimal | None  # the counterfactual's emissions per unit (reduction activities only)
    factor_regions: tuple[int, ...]  # region of the actual value, then of the baseline (0 = national default)
    sources: tuple[str, ...]  # keys into the methodology's sources


@dataclass(frozen=True)
class Assessment:
    """One record's emissions and reductions: exact decimals of grams, and whole grams by the rounding rule."""

    activity: str
    quantity: Decimal
    region: int
    emissions_exact: Decimal
    reductions_exact: Decimal
    emissions: int
    reductions: int


def canonical_json(document: Any) -> bytes:
    """The canonical bytes of a JSON document: sorted keys, no whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def parse_quantity(value: Any, unit: str = "", what: str = "quantity") -> Decimal:
    """A record's quantity as an exact Decimal, or ValueError saying what is wrong with it.

    Non-negative, finite, at most 6 decimal places, below 10^12; a count of items (unit ``item``) is whole.
    Accepts text, ``int`` and ``Decimal``; a float is refused (it is not exact).
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{what} {value!r} must be given as text or an exact number, not {type(value).__name__}")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{what} is empty")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a number") from None
    else:
        raise ValueError(f"{what} {value!r} is not a number")
    if not amount.is_finite():
        raise ValueError(f"{what} {value!r} is not a finite number")
    if amount < 0:
        raise ValueError(f"{what} {value!r} is negative")
    if amount.as_tuple().exponent < -MAX_QUANTITY_DECIMALS and \
            amount.normalize(EXACT).as_tuple().exponent < -MAX_QUANTITY_DECIMALS:
        raise ValueError(f"{what} {value!r} has more than {MAX_QUANTITY_DECIMALS} decimal places")
    if amount >= MAX_QUANTITY:
        raise ValueError(f"{what} {value!r} is implausibly large (at most {MAX_QUANTITY - 1:,} per record)")
    if unit == "item" and amount != amount.to_integral_value():
        raise ValueError(f"{what} {value!r} must be a whole number of items")
    return amount


class Methodology:
    """A validated methodology version (see the module's docstring for the model and the content hash)."""

    def __init__(self, document: Mapping[str, Any]):
        if not isinstance(document, Mapping):
            raise InvalidInput(f"a methodology is a JSON object, not {type(document).__name__}")
        self._document = copy.deepcopy(dict(document))
        problems: list[str] = []
        self._validate(problems)
        if problems:
            shown = "\n".join(f"- {p}" for p in problems)
            raise InvalidInput(f"invalid methodology ({len(problems)} problem(s)):\n{shown}")
        self._canonical = canonical_json(self._document)
        self._hash = keccak(self._canonical)

    # -- loading -------------------------------------------------------------------------------------------

    @classmethod
    def default(cls) -> "Methodology":
        """Version 1, the data set that ships with the SDK."""
        return _default()

    @classmethod
    def load(cls, path: str | Path) -> "Methodology":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read methodology {path}: {exc.strerror or exc}") from None
        return cls.from_json(text, source=str(path))

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "methodology") -> "Methodology":
        try:
            document = json.loads(text, parse_float=_refuse_float, parse_constant=_refuse_float)
        except ValueError as exc:
            raise InvalidInput(f"{source} is not valid JSON: {exc}") from None
        return cls(document)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> "Methodology":
        return cls(document)

    # -- identity ------------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._document["version"]

    @property
    def name(self) -> str:
        return self._document["name"]

    @property
    def content_hash(self) -> bytes:
        """keccak256 of the canonical JSON: what the regulator registers on chain and every batch cites."""
        return self._hash

    @property
    def content_hash_hex(self) -> str:
        return "0x" + self._hash.hex()

    @property
    def canonical_json(self) -> bytes:
        return self._canonical

    @property
    def document(self) -> dict[str, Any]:
        """A copy of the document (change the copy and build a new version from it)."""
        return copy.deepcopy(self._document)

    def __repr__(self) -> str:
        return f"Methodology(version={self.version}, content_hash={self.content_hash_hex})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Methodology) and other._hash == self._hash

    def __hash__(self) -> int:
        return hash(self._hash)

    # -- contents ------------------------------------------------------------------------------------------

    @property
    def regions(self) -> dict[int, str]:
        return dict(self._regions)

    @property
    def activities(self) -> tuple[str, ...]:
        return tuple(self._document["activities"])

    @property
    def sources(self) -> dict[str, dict[str, str]]:
        return copy.deepcopy(self._document["sources"])

    def unit(self, activity: str) -> str:
        return self._activity(activity)["unit"]

    def kind(self, activity: str) -> str:
        return self._activity(activity)["kind"]

    @property
    def emission_rounding(self) -> str:
        return self._document["rounding"]["emissions"]

    @property
    def reduction_rounding(self) -> str:
        return self._document["rounding"]["reductions"]

    def factor(self, activity: str, region: int) -> ActivityFactor:
        """What one unit of ``activity`` counts in ``region`` (unknown regions are refused, not defaulted)."""
        return self._table[(self._activity_name(activity), self._region(region))]

    def per_unit(self) -> dict[tuple[str, int], tuple[Decimal, Decimal]]:
        """(activity, region) -> (emissions per unit, reductions per unit), for every pair: the bulk form."""
        return {key: (f.emissions_per_unit, f.reductions_per_unit) for key, f in self._table.items()}

    # -- arithmetic ----------------------------------------------------------------------------------------

    def assess(self, activity: str, quantity: Any, unit: str, region: int) -> Assessment:
        """One record's emissions and reductions in grams CO2e (exact, and rounded by this version's rule)."""
        name = self._activity_name(activity)
        expected = self._document["activities"][name]["unit"]
        if not (isinstance(unit, str) and unit.strip().lower() == expected.lower()):
            raise InvalidInput(f"unit {unit!r} is not valid for {name} (expected {expected})")
        try:
            amount = parse_quantity(quantity, expected)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        f = self.factor(name, region)
        emissions = EXACT.multiply(amount, f.emissions_per_unit)
        reductions = EXACT.multiply(amount, f.reductions_per_unit)
        return Assessment(name, amount, f.region, emissions, reductions, self.round_emissions(emissions),
                          self.round_reductions(reductions))

    def round_emissions(self, grams: Decimal) -> int:
        return int(grams.to_integral_value(rounding=ROUNDINGS[self.emission_rounding]))

    def round_reductions(self, grams: Decimal) -> int:
        return int(grams.to_integral_value(rounding=ROUNDINGS[self.reduction_rounding]))

    # -- internals -----------------------------------------------------------------------------------------

    def _activity_name(self, activity: str) -> str:
        if activity in self._document["activities"]:
            return activity
        folded = activity.strip().lower() if isinstance(activity, str) else activity
        if folded in self._document["activities"]:
            return folded
        raise InvalidInput(f"unknown activity {activity!r} (methodology {self.version} knows "
                           f"{', '.join(self._document['activities'])})")

    def _activity(self, activity: str) -> dict[str, Any]:
        return self._document["activities"][self._activity_name(activity)]

    def _region(self, region: int) -> int:
        if isinstance(region, bool) or not isinstance(region, int) or region not in self._regions:
            raise InvalidInput(f"unknown region {region!r} (methodology {self.version} knows "
                               f"{', '.join(str(r) for r in self._regions)})")
        return region

    def _validate(self, problems: list[str]) -> None:
        d = self._document
        if d.get("schema") != SCHEMA:
            problems.append(f"schema must be {SCHEMA!r}, not {d.get('schema')!r}")
        version = d.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 65535:
            problems.append(f"version must be an integer from 1 to 65535 (the contract's uint16), not {version!r}")
        for key in ("name", "model", "unit_of_account", "quantities"):
            if not isinstance(d.get(key), str) or not d[key].strip():
                problems.append(f"{key} must be a non-empty text")
        rounding = d.get("rounding")
        if not isinstance(rounding, dict):
            problems.append("rounding must be an object with 'emissions' and 'reductions'")
        else:
            for key in ("emissions", "reductions"):
                if rounding.get(key) not in ROUNDINGS:
                    problems.append(f"rounding.{key} must be one of {', '.join(ROUNDINGS)}, not {rounding.get(key)!r}")
        self._regions = self._validate_regions(d.get("regions"), problems)
        sources = d.get("sources")
        if not isinstance(sources, dict) or not sources:
            problems.append("sources must be a non-empty object")
            sources = {}
        for key, source in sources.items():
            if not isinstance(source, dict):
                problems.append(f"source {key!r} must be an object")
                continue
            for field in SOURCE_FIELDS:
                if not isinstance(source.get(field), str) or not source[field].strip():
                    problems.append(f"source {key!r} lacks {field}")
        factors = self._validate_factors(d.get("factors"), sources, problems)
        self._table = self._validate_activities(d.get("activities"), factors, problems)

    def _validate_regions(self, regions: Any, problems: list[str]) -> dict[int, str]:
        out: dict[int, str] = {}
        if not isinstance(regions, dict):
            problems.append("regions must be an object of region code -> name")
            return out
        for key, name in regions.items():
            if not (isinstance(key, str) and re.fullmatch(r"0|[1-9][0-9]*", key) and int(key) <= UINT32_MAX):
                problems.append(f"region code {key!r} must be a decimal integer from 0 to {UINT32_MAX}")
            elif not isinstance(name, str) or not name.strip():
                problems.append(f"region {key} needs a name")
            else:
                out[int(key)] = name
        if "0" not in regions:
            problems.append("regions must include 0, the national default")
        return out

    def _validate_factors(self, factors: Any, sources: dict, problems: list[str]) -> dict[str, dict | None]:
        """name -> {"per": unit, "by_region": {int: (Decimal, sources)}}, or None for a broken factor."""
        out: dict[str, dict | None] = {}
        if not isinstance(factors, dict) or not factors:
            problems.append("factors must be a non-empty object")
            return out
        for name, factor in factors.items():
            where = f"factor {name!r}"
            if not isinstance(factor, dict) or not isinstance(factor.get("per"), str) or not factor["per"]:
                problems.append(f"{where} needs 'per', the unit it is given per")
                out[name] = None
                continue
            by_region = factor.get("by_region")
            if not isinstance(by_region, dict) or "0" not in by_region:
                problems.append(f"{where} needs by_region with at least the national default, region 0")
                out[name] = None
                continue
            values: dict[int, tuple[Decimal, tuple[str, ...]]] = {}
            for code, entry in by_region.items():
                at = f"{where}, region {code}"
                if not (isinstance(code, str) and re.fullmatch(r"0|[1-9][0-9]*", code) and int(code) in self._regions):
                    problems.append(f"{at}: not a region of this methodology")
                    continue
                if not isinstance(entry, dict):
                    problems.append(f"{at}: must be an object with value, sources and item")
                    continue
                value = _factor_value(entry.get("value"), at, problems)
                cited = entry.get("sources")
                if not isinstance(cited, list) or not cited or not all(isinstance(s, str) for s in cited):
                    problems.append(f"{at}: needs a non-empty list of sources")
                    cited = []
                for key in cited:
                    if key not in sources:
                        problems.append(f"{at}: cites unknown source {key!r}")
                if not isinstance(entry.get("item"), str) or not entry["item"].strip():
                    problems.append(f"{at}: needs 'item', the table, row or figure the value comes from")
                product = entry.get("product")
                if product is not None and value is not None:
                    _check_product(product, value, at, problems)
                if value is not None:
                    values[int(code)] = (value, tuple(cited))
            # A factor with a bad national default is reported above; activities using it are then skipped.
            out[name] = {"per": factor["per"], "by_region": values} if 0 in values else None
        return out

    def _validate_activities(self, activities: Any, factors: dict[str, dict | None],
                             problems: list[str]) -> dict[tuple[str, int], ActivityFactor]:
        table: dict[tuple[str, int], ActivityFactor] = {}
        if not isinstance(activities, dict) or not activities:
            problems.append("activities must be a non-empty object")
            return table
        for name, spec in activities.items():
            where = f"activity {name!r}"
            if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_]*", name)):
                problems.append(f"{where}: names are lower-case letters, digits and underscores")
                continue
            if not isinstance(spec, dict) or spec.get("kind") not in (EMISSION, REDUCTION):
                problems.append(f"{where}: kind must be {EMISSION!r} or {REDUCTION!r}")
                continue
            unit = spec.get("unit")
            if not isinstance(unit, str) or not unit or unit != unit.strip():
                problems.append(f"{where}: needs a unit")
                continue
            if not isinstance(spec.get("description"), str) or not spec["description"].strip():
                problems.append(f"{where}: needs a description")
            refs = {"factor": spec.get("factor")} if spec["kind"] == EMISSION else {
                "baseline": spec.get("baseline"), "actual": spec.get("actual")}
            resolved: dict[str, dict | None] = {}
            for role, ref in refs.items():
                if ref is None and role == "actual":
                    resolved[role] = None  # no direct emissions
                elif ref not in factors:
                    problems.append(f"{where}: {role} {ref!r} is not a factor of this methodology")
                elif factors[ref] is None:
                    pass  # already reported
                elif factors[ref]["per"] != unit:
                    problems.append(f"{where}: {role} {ref!r} is given per {factors[ref]['per']}, the activity "
                                    f"per {unit}")
                else:
                    resolved[role] = factors[ref]
            if len(resolved) != len(refs):
                continue
            for region in self._regions:
                if spec["kind"] == EMISSION:
                    value, used, cited = _lookup(resolved["factor"], region)
                    table[(name, region)] = ActivityFactor(name, region, EMISSION, unit, value, ZERO, value, None,
                                                           (used,), cited)
                    continue
                baseline, base_region, base_sources = _lookup(resolved["baseline"], region)
                if resolved["actual"] is None:
                    actual, actual_region, actual_sources = ZERO, region, ()  # no direct emissions anywhere
                else:
                    actual, actual_region, actual_sources = _lookup(resolved["actual"], region)
                if baseline < actual:
                    problems.append(f"{where}, region {region}: the baseline ({baseline} g) is below the activity's "
                                    f"own emissions ({actual} g): a reduction would be negative")
                    continue
                sources = tuple(dict.fromkeys(actual_sources + base_sources))
                table[(name, region)] = ActivityFactor(name, region, REDUCTION, unit, ZERO,
                                                       EXACT.subtract(baseline, actual), actual, baseline,
                                                       (actual_region, base_region), sources)
        return table


def _lookup(factor: dict, region: int) -> tuple[Decimal, int, tuple[str, ...]]:
    by_region = factor["by_region"]
    used = region if region in by_region else 0
    value, sources = by_region[used]
    return value, used, sources


def _factor_value(value: Any, at: str, problems: list[str]) -> Decimal | None:
    if not isinstance(value, str) or not _DECIMAL_TEXT.match(value):
        problems.append(f"{at}: value must be a decimal written as a JSON string (e.g. \"536.6\"), not {value!r}")
        return None
    amount = Decimal(value)
    if -amount.as_tuple().exponent > MAX_FACTOR_DECIMALS or amount >= MAX_FACTOR:
        problems.append(f"{at}: value {value} must have at most {MAX_FACTOR_DECIMALS} decimals and be below "
                        f"{MAX_FACTOR:,} g per unit")
        return None
    return amount


def _check_product(product: Any, value: Decimal, at: str, problems: list[str]) -> None:
    if not isinstance(product, list) or not product or not all(
            isinstance(p, str) and _DECIMAL_TEXT.match(p) for p in product):
        problems.append(f"{at}: product must be a list of decimals written as strings")
        return
    result = Decimal(1)
    for term in product:
        result = EXACT.multiply(result, Decimal(term))
    if result != value:
        problems.append(f"{at}: value {value} is not the product of {' x '.join(product)} (= {result})")


def _refuse_float(text: str) -> Any:
    raise ValueError(f"number {text} must be written as a string (decimals are exact text in a methodology)")


@lru_cache(maxsize=1)
def _default() -> Methodology:
    data = resources.files("carbon_sdk").joinpath("data", DEFAULT_FILE).read_text(encoding="utf-8")
    return Methodology.from_json(data, source=DEFAULT_FILE)
