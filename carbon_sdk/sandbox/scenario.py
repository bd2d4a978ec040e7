"""Policy-sandbox scenarios: a YAML file describing a multi-period market, validated into frozen dataclasses.

    scenario = load_scenario("default")              # a shipped scenario, or a path to a .yaml file
    scenario.cap_of(0), scenario.delta_of(2)         # national cap of period 1 (tonnes), δ of period 3
    bolder = scenario.with_changes({"policy.offset_ratio": 0.6, "individuals.count": 500})
    shipped_scenarios()                              # {"default": Path(...), "large": Path(...), ...}

Every value is checked and every problem is reported at once: :class:`ScenarioError` (an ``InvalidInput``)
lists them all, each as ``path: what is wrong, got X``, e.g.
``enterprises[0].emissions_t: must be [low, high] with 0 < low <= high, got [5, 1]``. Unknown keys are errors
(the message lists the allowed ones), and so are missing required keys. A YAML syntax error names the file,
the line and the column; so does a key written twice in one mapping.

The file (``R`` = required, everything else optional with the default shown)::

    extends: default          # optional: a shipped scenario's name, or a path relative to this file (.yaml or
                              # containing a /); deep merge, this file's values win; lists are replaced whole;
                              # a key set to null removes the parent's value (its default applies again).
                              # name and description are never inherited.
    name: default             # default: the file's stem ("scenario" for a dict); non-empty text
    description: ...          # default: ""
    seed: 2025                # default 0; an integer from 0 to 2**64 - 1
    periods: 3                # R; an integer from 1 to 20
    regions:                  # R; region code -> region. Codes are integers from 1 to 2**32 - 1 (0 means national
      11:                     #    on chain); a quoted "11" is read as 11, so a scenario that went through JSON
        name: Beijing         #    loads again. name: default "region <code>".
        cap_share: 0.4        # R; in (0, 1]; the shares sum to 1 (within 1e-9)
    cap:                      # R
      initial_t: 600000       # R; national cap of period 1, tonnes, > 0 (at most 1e12)
      decline: 0.05           # default 0; in [0, 1): cap_k = initial_t * (1 - decline)**(k - 1)
      free_share: 0.9         # default 1; in [0, 1]: share allocated free, the rest auctioned
    enterprises:              # R; a non-empty list of groups, at most 1,000 enterprises in all
      - name: power           # R; unique non-empty text
        count: 4              # R; an integer >= 1
        regions: [11, 31]     # R; non-empty list of distinct codes from `regions` (round-robin)
        emissions_t: [a, b]   # R; baseline of period 1, tonnes, 0 < a <= b
        growth: 0.02          # default 0; in (-1, 1]: baseline growth per period
        abatement:            # R
          intercept: 20       # default 0; >= 0 (currency per tonne)
          slope: 0.0008       # R; >= 0 (currency per tonne per tonne abated)
        max_abatement: 0.3    # default 0.3; in [0, 1]
        misreport: 0.0        # default 0; in [0, 1): share of emissions it under-reports
    individuals:              # R
      count: 2000             # R; an integer from 1 to 1,000,000
      quota_t: 1.0            # default 1; > 0, tonnes per person per period
      groups:                 # R; exactly low_carbon and high_carbon; shares sum to 1 (within 1e-9)
        low_carbon: {share: 0.5, emissions_t: [0.3, 0.9]}    # share R in [0, 1]; emissions_t R, 0 < a <= b,
        high_carbon: {share: 0.5, emissions_t: [1.1, 2.2]}   # low_carbon's b <= quota_t <= high_carbon's a
      e: 200                  # default 200; > 0
      abatement_k: 400        # default 400; > 0
    platforms:                # default [{name: platform, cost_c: 5, service_q: 1}]; exactly one for now
      - name: LowCarbon Life  # R; non-empty text
        cost_c: 5             # default 5; >= 0, currency per tonne
        service_q: 1.0        # default 1; > 0
    verifiers:                # R; a non-empty list with at least one honest verifier; names unique
      - name: GreenCert       # R
        honest: true          # R; a real boolean (true/false/yes/no, not the text "true")
        understatement: 0.0   # in [0, 0.5); honest: must be 0 (the default); dishonest: default 0.05
    policy:                   # R
      personal_trading: true  # default true; a real boolean
      offset_ratio: 0.4       # R; δ: one number, or a list of exactly `periods` numbers; each in (0, 1]
      offset_cap: 0.05        # default 0.05; in [0, 1]
      fees: {buyer_bps: 10, seller_bps: 10}   # default 10 each; integers from 0 to 1,000
      pricing: midpoint       # default midpoint; midpoint | uniform
      tolerance_bps: 500      # default 500; an integer from 0 to 10,000
      carbon_value: 60        # default 60; >= 0 (P of Proposition 2)
      delta_cost_k: 180000    # default 180,000; > 0 (κ of Proposition 2)
    market:                   # default: all of the below
      lot_t: 10               # default 10; > 0 with at most 6 decimals (tonnes per lot)
      tick: 0.5               # default 0.5; > 0 with at most 2 decimals (currency per tonne per tick)
      price_levels: 6         # default 6; an integer from 1 to 100
      continuous_orders: 20   # default 20; an integer from 0 to 100,000

The exchange's integer grid: a lot is ``lot_t * 10**6`` carbon units, a tick ``tick * 100`` settlement units
(the settlement token has 2 decimals in the sandbox's deployment), and a market needs their product to be a
multiple of 2,000,000 (docs/exchange.md), i.e. ``lot_t * tick`` must be a multiple of 0.02.

Numbers must be real numbers (not text, not booleans, not NaN or infinite); integers must be integers (2000,
not 2000.0). PyYAML reads ``6e5`` as text (YAML 1.1): write ``600000`` or ``6.0e+5``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from carbon_sdk.errors import InvalidInput

__all__ = [
    "Cap",
    "EnterpriseGroup",
    "Group",
    "Individuals",
    "MarketRules",
    "Platform",
    "Policy",
    "Region",
    "Scenario",
    "ScenarioError",
    "Verifier",
    "load_scenario",
    "shipped_scenarios",
]

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "data" / "scenarios"
SHOWN_PROBLEMS = 50
SHARE_TOLERANCE = 1e-9
MAX_PERIODS = 20
MAX_INDIVIDUALS = 1_000_000
MAX_ENTERPRISES = 1_000
MAX_CAP_T = 1e12
UINT32_MAX = 2**32 - 1
SETTLEMENT_DECIMALS = 2
UNITS_PER_TONNE = 10**6
PRICINGS = ("midpoint", "uniform")
MAX_EXTENDS = 10


class ScenarioError(InvalidInput):
    """A scenario was rejected; ``problems`` lists every problem as ``"path: what is wrong, got X"``.

    ``source`` is the file (or "scenario" for a dict); ``line`` is the 1-based line of a YAML syntax error.
    """

    def __init__(self, source: str, problems: Sequence[str], *, line: int | None = None):
        self.source = str(source)
        self.problems = tuple(problems)
        self.line = line
        shown = "\n".join(f"  {p}" for p in self.problems[:SHOWN_PROBLEMS])
        more = len(self.problems) - SHOWN_PROBLEMS
        count = f"{len(self.problems)} problem" + ("s" if len(self.problems) != 1 else "")
        super().__init__(f"{self.source}: invalid scenario ({count}):\n{shown}"
                         + (f"\n  ... and {more} more (see .problems)" if more > 0 else ""))

    @property
    def paths(self) -> tuple[str, ...]:
        """The path of each problem (the text before the first ": ")."""
        return tuple(p.split(": ", 1)[0] for p in self.problems)


# --- the scenario ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    name: str
    cap_share: float  # share of the national cap

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cap_share": self.cap_share}


@dataclass(frozen=True)
class Cap:
    initial_t: float  # national cap of period 1, tonnes
    decline: float  # cap_k = initial_t * (1 - decline)^(k-1)
    free_share: float  # share allocated free; the rest is auctioned

    def to_dict(self) -> dict[str, Any]:
        return {"initial_t": self.initial_t, "decline": self.decline, "free_share": self.free_share}


@dataclass(frozen=True)
class EnterpriseGroup:
    name: str
    count: int
    regions: tuple[int, ...]  # assigned round-robin
    emissions_t: tuple[float, float]  # baseline of period 1, drawn uniformly
    growth: float  # baseline growth per period
    abatement_intercept: float  # MAC(q) = intercept + slope * q, currency per tonne
    abatement_slope: float
    max_abatement: float  # share of baseline abatable in a period
    misreport: float  # share of emissions under-reported

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "regions": list(self.regions),
                "emissions_t": list(self.emissions_t), "growth": self.growth,
                "abatement": {"intercept": self.abatement_intercept, "slope": self.abatement_slope},
                "max_abatement": self.max_abatement, "misreport": self.misreport}


@dataclass(frozen=True)
class Group:
    share: float  # share of the individuals
    emissions_t: tuple[float, float]  # per person and period, drawn uniformly

    def to_dict(self) -> dict[str, Any]:
        return {"share": self.share, "emissions_t": list(self.emissions_t)}


@dataclass(frozen=True)
class Individuals:
    count: int
    quota_t: float  # per-capita quota per period, tonnes
    low_carbon: Group
    high_carbon: Group
    e: float  # highest value a low-carbon user puts on a kept tonne
    abatement_k: float  # abatement cost k * r^2 / 2

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "quota_t": self.quota_t,
                "groups": {"low_carbon": self.low_carbon.to_dict(), "high_carbon": self.high_carbon.to_dict()},
                "e": self.e, "abatement_k": self.abatement_k}


@dataclass(frozen=True)
class Platform:
    name: str
    cost_c: float  # cost per tonne
    service_q: float  # service level

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cost_c": self.cost_c, "service_q": self.service_q}


@dataclass(frozen=True)
class Verifier:
    name: str
    honest: bool
    understatement: float  # 0 for an honest verifier

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "honest": self.honest, "understatement": self.understatement}


@dataclass(frozen=True)
class Policy:
    personal_trading: bool
    offset_ratio: tuple[float, ...]  # δ, one per period
    offset_cap: float  # share of verified emissions payable with offsets
    buyer_fee_bps: int
    seller_fee_bps: int
    pricing: str  # "midpoint" | "uniform"
    tolerance_bps: int  # MRV audit tolerance
    carbon_value: float  # P of Proposition 2
    delta_cost_k: float  # κ of Proposition 2

    def to_dict(self) -> dict[str, Any]:
        ratio = self.offset_ratio
        return {"personal_trading": self.personal_trading,
                # one number when constant, so that changing `periods` keeps a constant δ valid
                "offset_ratio": ratio[0] if len(set(ratio)) == 1 else list(ratio),
                "offset_cap": self.offset_cap,
                "fees": {"buyer_bps": self.buyer_fee_bps, "seller_bps": self.seller_fee_bps},
                "pricing": self.pricing, "tolerance_bps": self.tolerance_bps,
                "carbon_value": self.carbon_value, "delta_cost_k": self.delta_cost_k}


@dataclass(frozen=True)
class MarketRules:
    lot_t: float  # tonnes per lot
    tick: float  # currency per tonne per tick
    price_levels: int  # limit orders per enterprise in the call auction
    continuous_orders: int  # random orders in the continuous phase, per period

    @property
    def lot_size(self) -> int:
        """Carbon units (6 decimals) per lot, for ``exchange.create_market``."""
        return int(Decimal(repr(self.lot_t)) * UNITS_PER_TONNE)

    @property
    def tick_size(self) -> int:
        """Settlement units (2 decimals) per tonne per tick, for ``exchange.create_market``."""
        return int(Decimal(repr(self.tick)) * 10**SETTLEMENT_DECIMALS)

    def to_dict(self) -> dict[str, Any]:
        return {"lot_t": self.lot_t, "tick": self.tick, "price_levels": self.price_levels,
                "continuous_orders": self.continuous_orders}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    periods: int
    regions: dict[int, Region]
    cap: Cap
    enterprises: tuple[EnterpriseGroup, ...]
    individuals: Individuals
    platforms: tuple[Platform, ...]
    verifiers: tuple[Verifier, ...]
    policy: Policy
    market: MarketRules

    # -- derived values

    @property
    def enterprise_count(self) -> int:
        return sum(group.count for group in self.enterprises)

    def cap_of(self, period_index: int) -> float:
        """National cap of a period in tonnes: ``initial_t * (1 - decline)**period_index`` (index from 0)."""
        self._check_index(period_index)
        return self.cap.initial_t * (1.0 - self.cap.decline) ** period_index

    def region_cap_of(self, period_index: int, region: int) -> float:
        """A region's share of a period's national cap, tonnes."""
        if region not in self.regions:
            raise InvalidInput(f"region {region!r} is not one of the scenario's ({_codes(self.regions)})")
        return self.cap_of(period_index) * self.regions[region].cap_share

    def delta_of(self, period_index: int) -> float:
        """The offset ratio δ of a period (index from 0)."""
        self._check_index(period_index)
        return self.policy.offset_ratio[period_index]

    def _check_index(self, period_index: int) -> None:
        if isinstance(period_index, bool) or not isinstance(period_index, int) \
                or not 0 <= period_index < self.periods:
            raise InvalidInput(f"period_index must be an integer from 0 to {self.periods - 1}, got {period_index!r}")

    # -- conversions

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data in the file's shape (every default explicit); ``from_dict`` reads it back."""
        return {"name": self.name, "description": self.description, "seed": self.seed, "periods": self.periods,
                "regions": {code: region.to_dict() for code, region in self.regions.items()},
                "cap": self.cap.to_dict(),
                "enterprises": [group.to_dict() for group in self.enterprises],
                "individuals": self.individuals.to_dict(),
                "platforms": [platform.to_dict() for platform in self.platforms],
                "verifiers": [verifier.to_dict() for verifier in self.verifiers],
                "policy": self.policy.to_dict(), "market": self.market.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "scenario", default_name: str = "scenario") -> "Scenario":
        """Validate plain data (the file's shape) into a scenario; raise :class:`ScenarioError` listing every
        problem. ``default_name`` is the name when ``data`` has none."""
        check = _Check()
        scenario = _parse(data, check, default_name)
        if check.problems or scenario is None:
            raise ScenarioError(source, check.problems or ["(top level): invalid scenario"])
        return scenario

    def with_changes(self, changes: Mapping[str, Any] | None = None, /, **dotted: Any) -> "Scenario":
        """A validated copy with some values changed, by dotted path in the file's shape::

            scenario.with_changes({"policy.offset_ratio": 0.6, "enterprises[0].count": 8})
            scenario.with_changes(seed=7, policy__personal_trading=False)   # "__" stands for "."

        Paths may index lists as ``enterprises[0]`` or ``enterprises.0`` and name regions by code
        (``regions.11.cap_share``); the dataclasses' names are accepted too (``policy.buyer_fee_bps``,
        ``enterprises[0].abatement_slope``, ``individuals.low_carbon.share``). A value may be a dataclass of
        this module. Raises :class:`ScenarioError` for a path that leads nowhere or an invalid result.
        """
        items = dict(changes or {})
        items.update({key.replace("__", "."): value for key, value in dotted.items()})
        data = self.to_dict()
        check = _Check()
        for path, value in items.items():
            try:
                _set_path(data, _split_path(path), _plain(value))
            except _PathError as exc:
                check.problems.append(f"{path}: {exc}")
        scenario = _parse(data, check, self.name)
        if check.problems or scenario is None:
            raise ScenarioError(f"scenario {self.name!r} with changes", check.problems or ["(top level): invalid"])
        return scenario


# --- loading ---------------------------------------------------------------------------------------------------


def shipped_scenarios() -> dict[str, Path]:
    """The scenarios shipped with the package, by name (the file's stem), in name order."""
    if not SCENARIO_DIR.is_dir():
        return {}
    return {path.stem: path for path in sorted(SCENARIO_DIR.glob("*.yaml"))}


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Load and validate a scenario: a shipped one by name (``"default"``) or a YAML file by path.

    A ``str`` that names an existing file is read as a path; otherwise it must be a shipped name.
    """
    path = _locate(path_or_name)
    data = _resolve(path, ())
    return Scenario.from_dict(data, source=str(path), default_name=path.stem)


def _locate(path_or_name: str | Path) -> Path:
    if isinstance(path_or_name, Path):
        candidate = path_or_name
    elif isinstance(path_or_name, str) and path_or_name:
        candidate = Path(path_or_name)
        if not candidate.is_file() and path_or_name in shipped_scenarios():
            return shipped_scenarios()[path_or_name]
    else:
        raise ScenarioError("scenario", [f"(argument): must be a shipped scenario's name or a path, "
                                         f"got {_show(path_or_name)}"])
    if candidate.is_file():
        return candidate
    if candidate.exists():
        raise ScenarioError(str(candidate), ["(file): not a regular file"])
    shipped = ", ".join(shipped_scenarios()) or "none"
    raise ScenarioError(str(candidate), [f"(file): no such file and no shipped scenario of that name "
                                         f"(shipped: {shipped})"])


def _resolve(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The file's mapping with its `extends` chain merged in (parents first)."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        what = "the file is empty" if raw is None else f"must be a mapping of keys to values, got {_show(raw)}"
        raise ScenarioError(str(path), [f"(top level): {what}"])
    if "extends" not in raw:
        return raw
    target = raw["extends"]
    if not isinstance(target, str) or not target.strip():
        raise ScenarioError(str(path), [f"extends: must be a shipped scenario's name or a relative path, "
                                        f"got {_show(target)}"])
    if len(chain) >= MAX_EXTENDS:
        raise ScenarioError(str(path), [f"extends: more than {MAX_EXTENDS} levels of extends, got {_show(target)}"])
    if target.endswith((".yaml", ".yml")) or "/" in target or "\\" in target:
        parent_path = Path(target) if Path(target).is_absolute() else path.parent / target
        if not parent_path.is_file():
            raise ScenarioError(str(path), [f"extends: no such file {str(parent_path)!r}, got {_show(target)}"])
    else:
        shipped = shipped_scenarios()
        if target not in shipped:
            raise ScenarioError(str(path), [f"extends: no shipped scenario of that name "
                                            f"(shipped: {', '.join(shipped) or 'none'}), got {_show(target)}"])
        parent_path = shipped[target]
    here = _same_file_key(path)
    if here in chain or _same_file_key(parent_path) in chain + (here,):
        raise ScenarioError(str(path), [f"extends: a cycle of extends, got {_show(target)}"])
    parent = _resolve(parent_path, chain + (here,))
    parent.pop("name", None)  # never inherited: a variant is not its parent
    parent.pop("description", None)
    return _merge(parent, {key: value for key, value in raw.items() if key != "extends"})


def _same_file_key(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _merge(base: dict[Any, Any], over: Mapping[Any, Any]) -> dict[Any, Any]:
    """Deep merge: mappings merge key by key, anything else (lists included) is replaced; null removes."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also rejects a key written twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                    seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # an unhashable key: SafeLoader reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {_show(key)} is written twice (first on line {first})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), [f"(file): not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise ScenarioError(str(path), [f"(file): cannot read it ({exc.strerror or exc})"]) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader (safe_load's loader) + duplicate check
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        what = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and getattr(exc, "problem", None):
            at = f" on line {context_mark.line + 1}" if context_mark is not None and mark is not None \
                and context_mark.line != mark.line else ""
            what = f"{what} ({context}{at})"
        if mark is None:
            raise ScenarioError(str(path), [f"(file): not valid YAML: {what}"]) from None
        raise ScenarioError(str(path), [f"line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {what}"],
                            line=mark.line + 1) from None


# --- validation ------------------------------------------------------------------------------------------------


_NOTHING = object()
_REQUIRED = object()


class _Text(str):
    """A description shown as is after "got" (not quoted like a text value)."""


def _show(value: Any, limit: int = 80) -> str:
    """A value as the file would show it: null, true, 'text', [5, 1], {a: 1}."""
    text = _render(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, _Text):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_render(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _num(value: float | int) -> str:
    if isinstance(value, int) and abs(value) >= 1_000:
        return f"{value:,}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return _num(int(value))
    return str(value)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _codes(regions: Iterable[int]) -> str:
    return ", ".join(str(code) for code in regions)


_TEXT_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*\Z")


class _Check:
    """Collects problems; each checker returns the clean value, or None when the value is invalid."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, what: str, got: Any = _NOTHING) -> None:
        self.problems.append(f"{path or '(top level)'}: {what}" + ("" if got is _NOTHING else f", got {_show(got)}"))

    def mapping(self, value: Any, path: str, allowed: Sequence[str], what: str = "a mapping") -> dict | None:
        if not isinstance(value, dict):
            self.add(path, f"must be {what} with the keys {', '.join(allowed)}", value)
            return None
        for key in value:
            if key not in allowed:
                self.add(_join(path, key), f"unknown key; allowed: {', '.join(allowed)}")
        return value

    def field(self, data: dict | None, path: str, key: str, checker: Callable[..., Any], default: Any = _REQUIRED,
              **options: Any) -> Any:
        """``data[key]`` checked by ``checker``; ``default`` when absent (a missing required key is an error)."""
        if data is None:
            return None
        where = _join(path, key)
        if key not in data:
            if default is _REQUIRED:
                self.add(where, "required key is missing")
                return None
            return default
        return checker(data[key], where, **options)

    # -- scalars

    def real(self, value: Any, path: str, lo: float | None = None, hi: float | None = None, *,
             lo_open: bool = False, hi_open: bool = False, decimals: int | None = None,
             note: str = "") -> float | None:
        rule = "a number" + _interval(lo, hi, lo_open, hi_open) \
            + (f" with at most {decimals} decimals" if decimals is not None else "") + note
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"must be {rule}", value)
            if isinstance(value, str) and _TEXT_NUMBER.match(value):
                self.problems[-1] += (" (text: PyYAML reads 6e5 as text, write 600000 or 6.0e+5)"
                                      if "e" in value.lower() and "." not in value else " (text: remove the quotes)")
            return None
        number = float(value)
        if not math.isfinite(number):
            self.add(path, f"must be a finite number{rule[len('a number'):]}", value)
            return None
        if not _inside(number, lo, hi, lo_open, hi_open):
            self.add(path, f"must be {rule}", value)
            return None
        if decimals is not None and -Decimal(repr(number)).normalize().as_tuple().exponent > decimals:
            self.add(path, f"must be {rule}", value)
            return None
        return number

    def integer(self, value: Any, path: str, lo: int | None = None, hi: int | None = None,
                note: str = "") -> int | None:
        if lo is not None and hi is not None:
            rule = f"an integer from {_num(lo)} to {_num(hi)}"
        elif lo is not None:
            rule = f"an integer >= {_num(lo)}"
        else:
            rule = "an integer"
        if isinstance(value, bool) or not isinstance(value, int) or not _inside(value, lo, hi, False, False):
            self.add(path, f"must be {rule}{note}", value)
            return None
        return int(value)

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(path, "must be true or false (a boolean, not text)", value)
            return None
        return value

    def text(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.add(path, "must be a non-empty text", value)
            return None
        return value

    def any_text(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str):
            self.add(path, "must be a text", value)
            return None
        return value

    def choice(self, value: Any, path: str, choices: Sequence[str]) -> str | None:
        if not isinstance(value, str) or value not in choices:
            self.add(path, f"must be {' or '.join(choices)}", value)
            return None
        return value

    def range_pair(self, value: Any, path: str) -> tuple[float, float] | None:
        ok = (isinstance(value, (list, tuple)) and len(value) == 2
              and all(not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in value)
              and 0 < value[0] <= value[1])
        if not ok:
            self.add(path, "must be [low, high] with 0 < low <= high", value)
            return None
        return float(value[0]), float(value[1])

    def items(self, value: Any, path: str, what: str) -> list | None:
        if not isinstance(value, list) or not value:
            self.add(path, f"must be a non-empty list of {what}", value)
            return None
        return value


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {_num(lo)}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {_num(hi)}"
    return ""


def _inside(x: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    if lo is not None and (x <= lo if lo_open else x < lo):
        return False
    if hi is not None and (x >= hi if hi_open else x > hi):
        return False
    return True


TOP_KEYS = ("name", "description", "seed", "periods", "regions", "cap", "enterprises", "individuals", "platforms",
            "verifiers", "policy", "market")
REGION_KEYS = ("name", "cap_share")
CAP_KEYS = ("initial_t", "decline", "free_share")
ENTERPRISE_KEYS = ("name", "count", "regions", "emissions_t", "growth", "abatement", "max_abatement", "misreport")
ABATEMENT_KEYS = ("intercept", "slope")
INDIVIDUAL_KEYS = ("count", "quota_t", "groups", "e", "abatement_k")
GROUP_NAMES = ("low_carbon", "high_carbon")
GROUP_KEYS = ("share", "emissions_t")
PLATFORM_KEYS = ("name", "cost_c", "service_q")
VERIFIER_KEYS = ("name", "honest", "understatement")
POLICY_KEYS = ("personal_trading", "offset_ratio", "offset_cap", "fees", "pricing", "tolerance_bps", "carbon_value",
               "delta_cost_k")
FEE_KEYS = ("buyer_bps", "seller_bps")
MARKET_KEYS = ("lot_t", "tick", "price_levels", "continuous_orders")

DEFAULT_PLATFORMS = ({"name": "platform", "cost_c": 5.0, "service_q": 1.0},)
DEFAULT_UNDERSTATEMENT = 0.05


def _parse(data: Any, check: _Check, default_name: str) -> Scenario | None:
    if isinstance(data, dict) and "extends" in data:
        check.add("extends", "only a scenario file may extend another (use load_scenario)", data["extends"])
        data = {key: value for key, value in data.items() if key != "extends"}
    top = check.mapping(data, "", TOP_KEYS, "a mapping of keys to values")
    if top is None:
        return None
    name = check.field(top, "", "name", check.text, default_name)
    description = check.field(top, "", "description", check.any_text, "")
    seed = check.field(top, "", "seed", check.integer, 0, lo=0, hi=2**64 - 1)
    periods = check.field(top, "", "periods", check.integer, lo=1, hi=MAX_PERIODS)
    regions = check.field(top, "", "regions", _regions, check=check)
    cap = check.field(top, "", "cap", _cap, check=check)
    enterprises = check.field(top, "", "enterprises", _enterprises, check=check, regions=regions)
    individuals = check.field(top, "", "individuals", _individuals, check=check)
    platforms = check.field(top, "", "platforms", _platforms, list(DEFAULT_PLATFORMS), check=check)
    if platforms is not None and not isinstance(platforms, tuple):  # the default, as data
        platforms = _platforms(platforms, "platforms", check)
    verifiers = check.field(top, "", "verifiers", _verifiers, check=check)
    policy = check.field(top, "", "policy", _policy, check=check, periods=periods)
    market = check.field(top, "", "market", _market, {}, check=check)
    if market == {}:
        market = _market({}, "market", check)
    parts = (name, description, seed, periods, regions, cap, enterprises, individuals, platforms, verifiers,
             policy, market)
    if check.problems or any(part is None for part in parts):
        return None
    return Scenario(name=name, description=description, seed=seed, periods=periods, regions=regions, cap=cap,
                    enterprises=enterprises, individuals=individuals, platforms=platforms, verifiers=verifiers,
                    policy=policy, market=market)


def _region_code(key: Any) -> int | None:
    if isinstance(key, str) and re.fullmatch(r"0|[1-9][0-9]*", key):
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= UINT32_MAX:
        return None
    return key


def _regions(value: Any, path: str, check: _Check) -> dict[int, Region] | None:
    if not isinstance(value, dict) or not value:
        check.add(path, "must be a non-empty mapping of region code to {name, cap_share}", value)
        return None
    out: dict[int, Region] = {}
    ok = True
    for key, raw in value.items():
        where = _join(path, key)
        code = _region_code(key)
        if code is None:
            check.add(where, f"region code must be an integer from 1 to {UINT32_MAX:,} (0 means national)", key)
            ok = False
        elif code in out:
            check.add(where, "the same region code twice", key)
            ok = False
        entry = check.mapping(raw, where, REGION_KEYS)
        name = check.field(entry, where, "name", check.text, f"region {code if code is not None else key}")
        share = check.field(entry, where, "cap_share", check.real, lo=0, hi=1, lo_open=True)
        if code is None or name is None or share is None:
            ok = False
        else:
            out[code] = Region(name=name, cap_share=share)
    if not ok:
        return None
    total = math.fsum(region.cap_share for region in out.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        check.add(path, "the cap_share values must sum to 1", round(total, 12))
        return None
    return out


def _cap(value: Any, path: str, check: _Check) -> Cap | None:
    data = check.mapping(value, path, CAP_KEYS)
    initial = check.field(data, path, "initial_t", check.real, lo=0, hi=MAX_CAP_T, lo_open=True)
    decline = check.field(data, path, "decline", check.real, 0.0, lo=0, hi=1, hi_open=True)
    free = check.field(data, path, "free_share", check.real, 1.0, lo=0, hi=1)
    if None in (data, initial, decline, free):
        return None
    return Cap(initial_t=initial, decline=float(decline), free_share=float(free))


def _enterprises(value: Any, path: str, check: _Check,
                 regions: dict[int, Region] | None) -> tuple[EnterpriseGroup, ...] | None:
    items = check.items(value, path, "enterprise groups")
    if items is None:
        return None
    out: list[EnterpriseGroup] = []
    names: set[str] = set()
    ok = True
    for i, raw in enumerate(items):
        where = f"{path}[{i}]"
        data = check.mapping(raw, where, ENTERPRISE_KEYS)
        name = check.field(data, where, "name", check.text)
        if name is not None:
            if name in names:
                check.add(_join(where, "name"), "duplicate group name", name)
                name = None
            else:
                names.add(name)
        count = check.field(data, where, "count", check.integer, lo=1, hi=MAX_ENTERPRISES)
        codes = check.field(data, where, "regions", _group_regions, check=check, regions=regions)
        emissions = check.field(data, where, "emissions_t", check.range_pair)
        growth = check.field(data, where, "growth", check.real, 0.0, lo=-1, hi=1, lo_open=True)
        abatement = check.field(data, where, "abatement", _abatement, check=check)
        max_abatement = check.field(data, where, "max_abatement", check.real, 0.3, lo=0, hi=1)
        misreport = check.field(data, where, "misreport", check.real, 0.0, lo=0, hi=1, hi_open=True)
        parts = (data, name, count, codes, emissions, growth, abatement, max_abatement, misreport)
        if any(part is None for part in parts):
            ok = False
            continue
        out.append(EnterpriseGroup(name=name, count=count, regions=codes, emissions_t=emissions,
                                   growth=float(growth), abatement_intercept=abatement[0],
                                   abatement_slope=abatement[1], max_abatement=float(max_abatement),
                                   misreport=float(misreport)))
    if not ok:
        return None
    total = sum(group.count for group in out)
    if total > MAX_ENTERPRISES:
        check.add(path, f"at most {MAX_ENTERPRISES:,} enterprises in all (the counts' sum)", total)
        return None
    return tuple(out)


def _group_regions(value: Any, path: str, check: _Check, regions: dict[int, Region] | None) -> tuple[int, ...] | None:
    items = check.items(value, path, "region codes")
    if items is None:
        return None
    out: list[int] = []
    ok = True
    for i, raw in enumerate(items):
        where = f"{path}[{i}]"
        code = None if isinstance(raw, str) else _region_code(raw)
        if code is None:
            check.add(where, f"must be a region code, an integer from 1 to {UINT32_MAX:,}", raw)
            ok = False
        elif code in out:
            check.add(where, "duplicate region", raw)
            ok = False
        elif regions is not None and code not in regions:
            check.add(where, f"must be one of the codes in regions ({_codes(regions)})", raw)
            ok = False
        else:
            out.append(code)
    return tuple(out) if ok and regions is not None else None


def _abatement(value: Any, path: str, check: _Check) -> tuple[float, float] | None:
    data = check.mapping(value, path, ABATEMENT_KEYS)
    intercept = check.field(data, path, "intercept", check.real, 0.0, lo=0)
    slope = check.field(data, path, "slope", check.real, lo=0)
    if None in (data, intercept, slope):
        return None
    return float(intercept), float(slope)


def _individuals(value: Any, path: str, check: _Check) -> Individuals | None:
    data = check.mapping(value, path, INDIVIDUAL_KEYS)
    count = check.field(data, path, "count", check.integer, lo=1, hi=MAX_INDIVIDUALS)
    quota = check.field(data, path, "quota_t", check.real, 1.0, lo=0, lo_open=True)
    groups = check.field(data, path, "groups", _groups, check=check, quota=quota)
    e = check.field(data, path, "e", check.real, 200.0, lo=0, lo_open=True)
    k = check.field(data, path, "abatement_k", check.real, 400.0, lo=0, lo_open=True)
    if None in (data, count, quota, groups, e, k):
        return None
    return Individuals(count=count, quota_t=float(quota), low_carbon=groups[0], high_carbon=groups[1], e=float(e),
                       abatement_k=float(k))


def _groups(value: Any, path: str, check: _Check, quota: float | None) -> tuple[Group, Group] | None:
    data = check.mapping(value, path, GROUP_NAMES)
    out = []
    for group in GROUP_NAMES:
        where = _join(path, group)
        entry = check.field(data, path, group, check.mapping, allowed=GROUP_KEYS)
        share = check.field(entry, where, "share", check.real, lo=0, hi=1)
        emissions = check.field(entry, where, "emissions_t", check.range_pair)
        out.append(None if None in (entry, share, emissions) else Group(share=share, emissions_t=emissions))
    low, high = out
    if low is None or high is None:
        return None
    ok = True
    total = low.share + high.share
    if abs(total - 1.0) > SHARE_TOLERANCE:
        check.add(path, "the shares of low_carbon and high_carbon must sum to 1", round(total, 12))
        ok = False
    if quota is not None:
        if low.emissions_t[1] > quota:
            check.add(_join(path, "low_carbon.emissions_t"),
                      f"must not exceed quota_t ({_num(quota)}): low-carbon users have a surplus",
                      list(low.emissions_t))
            ok = False
        if high.emissions_t[0] < quota:
            check.add(_join(path, "high_carbon.emissions_t"),
                      f"must not be below quota_t ({_num(quota)}): high-carbon users have a deficit",
                      list(high.emissions_t))
            ok = False
    return (low, high) if ok else None


def _platforms(value: Any, path: str, check: _Check) -> tuple[Platform, ...] | None:
    items = check.items(value, path, "platforms")
    if items is None:
        return None
    if len(items) != 1:
        check.add(path, "must list exactly one platform for now", _Text(f"{len(items)} platforms"))
        return None
    out = []
    for i, raw in enumerate(items):
        where = f"{path}[{i}]"
        data = check.mapping(raw, where, PLATFORM_KEYS)
        name = check.field(data, where, "name", check.text)
        cost = check.field(data, where, "cost_c", check.real, 5.0, lo=0)
        service = check.field(data, where, "service_q", check.real, 1.0, lo=0, lo_open=True)
        if None in (data, name, cost, service):
            return None
        out.append(Platform(name=name, cost_c=float(cost), service_q=float(service)))
    return tuple(out)


def _verifiers(value: Any, path: str, check: _Check) -> tuple[Verifier, ...] | None:
    items = check.items(value, path, "verifiers")
    if items is None:
        return None
    out: list[Verifier] = []
    names: set[str] = set()
    ok = True
    for i, raw in enumerate(items):
        where = f"{path}[{i}]"
        data = check.mapping(raw, where, VERIFIER_KEYS)
        name = check.field(data, where, "name", check.text)
        if name is not None:
            if name in names:
                check.add(_join(where, "name"), "duplicate verifier name", name)
                name = None
            else:
                names.add(name)
        honest = check.field(data, where, "honest", check.boolean)
        understatement = check.field(data, where, "understatement", check.real,
                                     DEFAULT_UNDERSTATEMENT if honest is False else 0.0, lo=0, hi=0.5, hi_open=True)
        if honest is True and understatement:
            check.add(_join(where, "understatement"), "must be 0 for an honest verifier (it endorses the truth; "
                      "set honest: false for one that understates)", data["understatement"])
            understatement = None
        if None in (data, name, honest, understatement):
            ok = False
            continue
        out.append(Verifier(name=name, honest=honest, understatement=float(understatement)))
    if not ok:
        return None
    if not any(verifier.honest for verifier in out):
        check.add(path, "at least one verifier must be honest", _Text(f"{len(out)} dishonest"))
        return None
    return tuple(out)


def _policy(value: Any, path: str, check: _Check, periods: int | None) -> Policy | None:
    data = check.mapping(value, path, POLICY_KEYS)
    trading = check.field(data, path, "personal_trading", check.boolean, True)
    ratio = check.field(data, path, "offset_ratio", _offset_ratio, check=check, periods=periods)
    offset_cap = check.field(data, path, "offset_cap", check.real, 0.05, lo=0, hi=1)
    fees = check.field(data, path, "fees", _fees, (10, 10), check=check)
    pricing = check.field(data, path, "pricing", check.choice, "midpoint", choices=PRICINGS)
    tolerance = check.field(data, path, "tolerance_bps", check.integer, 500, lo=0, hi=10_000)
    carbon_value = check.field(data, path, "carbon_value", check.real, 60.0, lo=0)
    delta_cost_k = check.field(data, path, "delta_cost_k", check.real, 180_000.0, lo=0, lo_open=True)
    if None in (data, trading, ratio, offset_cap, fees, pricing, tolerance, carbon_value, delta_cost_k):
        return None
    return Policy(personal_trading=trading, offset_ratio=ratio, offset_cap=float(offset_cap), buyer_fee_bps=fees[0],
                  seller_fee_bps=fees[1], pricing=pricing, tolerance_bps=tolerance, carbon_value=float(carbon_value),
                  delta_cost_k=float(delta_cost_k))


def _offset_ratio(value: Any, path: str, check: _Check, periods: int | None) -> tuple[float, ...] | None:
    if isinstance(value, (list, tuple)):
        if periods is not None and len(value) != periods:
            check.add(path, f"must be one number or exactly {periods} numbers (one per period)",
                      _Text(f"{len(value)} numbers"))
            return None
        values = [check.real(item, f"{path}[{i}]", lo=0, hi=1, lo_open=True) for i, item in enumerate(value)]
        if periods is None or any(v is None for v in values):
            return None
        return tuple(values)
    number = check.real(value, path, lo=0, hi=1, lo_open=True, note=" (or a list, one per period)")
    if number is None or periods is None:
        return None
    return (number,) * periods


def _fees(value: Any, path: str, check: _Check) -> tuple[int, int] | None:
    data = check.mapping(value, path, FEE_KEYS)
    buyer = check.field(data, path, "buyer_bps", check.integer, 10, lo=0, hi=1000)
    seller = check.field(data, path, "seller_bps", check.integer, 10, lo=0, hi=1000)
    if None in (data, buyer, seller):
        return None
    return buyer, seller


def _market(value: Any, path: str, check: _Check) -> MarketRules | None:
    data = check.mapping(value, path, MARKET_KEYS)
    lot = check.field(data, path, "lot_t", check.real, 10.0, lo=0, lo_open=True, decimals=6,
                      note=" (tonnes; 1 unit = 1 gram)")
    tick = check.field(data, path, "tick", check.real, 0.5, lo=0, lo_open=True, decimals=SETTLEMENT_DECIMALS,
                       note=" (currency per tonne)")
    levels = check.field(data, path, "price_levels", check.integer, 6, lo=1, hi=100)
    orders = check.field(data, path, "continuous_orders", check.integer, 20, lo=0, hi=100_000)
    if None in (data, lot, tick, levels, orders):
        return None
    lot_size = Decimal(repr(float(lot))) * UNITS_PER_TONNE
    tick_size = Decimal(repr(float(tick))) * 10**SETTLEMENT_DECIMALS
    if (lot_size * tick_size) % (2 * UNITS_PER_TONNE):
        check.add(path, "lot_t x tick must be a multiple of 0.02 so that every price, half ticks included, is a "
                        "whole number of cents (the exchange needs lot size x tick size to be a multiple of "
                        "2,000,000 units)", _Text(f"{_num(lot)} x {_num(tick)}"))
        return None
    if lot_size > 2**64 - 1 or tick_size > 2**64 - 1:
        check.add(path, "lot_t and tick must fit the exchange's 64-bit sizes", _Text(f"{_num(lot)} x {_num(tick)}"))
        return None
    return MarketRules(lot_t=float(lot), tick=float(tick), price_levels=levels, continuous_orders=orders)


# --- with_changes ----------------------------------------------------------------------------------------------


class _PathError(Exception):
    pass


_ALIASES = {  # the dataclasses' names -> the file's
    ("policy", "buyer_fee_bps"): ("policy", "fees", "buyer_bps"),
    ("policy", "seller_fee_bps"): ("policy", "fees", "seller_bps"),
    ("individuals", "low_carbon"): ("individuals", "groups", "low_carbon"),
    ("individuals", "high_carbon"): ("individuals", "groups", "high_carbon"),
}
_ENTERPRISE_ALIASES = {"abatement_intercept": ("abatement", "intercept"),
                       "abatement_slope": ("abatement", "slope")}


def _split_path(path: str) -> list[str | int]:
    if not isinstance(path, str) or not path:
        raise _PathError("a path must be non-empty text")
    tokens: list[str | int] = []
    for part in re.split(r"\.|(?=\[)", path):
        match = re.fullmatch(r"\[(-?\d+)\]", part)
        if match:
            tokens.append(int(match.group(1)))
        elif part == "" or "[" in part or "]" in part:
            raise _PathError("not a dotted path (like policy.offset_ratio or enterprises[0].count)")
        else:
            tokens.append(part)
    # aliases
    for short, long in _ALIASES.items():
        if tuple(tokens[:len(short)]) == short:
            tokens = list(long) + tokens[len(short):]
    if len(tokens) >= 3 and tokens[0] == "enterprises" and tokens[2] in _ENTERPRISE_ALIASES:
        tokens = tokens[:2] + list(_ENTERPRISE_ALIASES[tokens[2]]) + tokens[3:]
    return tokens


def _set_path(data: Any, tokens: list[str | int], value: Any) -> None:
    node = data
    for depth, token in enumerate(tokens):
        last = depth == len(tokens) - 1
        where = ".".join(str(t) for t in tokens[:depth]) or "the scenario"
        if isinstance(node, list):
            index = token if isinstance(token, int) else int(token) if re.fullmatch(r"-?\d+", token) else None
            if index is None:
                raise _PathError(f"{where} is a list: index it with a number")
            if not -len(node) <= index < len(node):
                raise _PathError(f"no item {index}: {where} has {len(node)}")
            if last:
                node[index] = value
                return
            node = node[index]
        elif isinstance(node, dict):
            key: Any = token
            if isinstance(token, int) or (re.fullmatch(r"\d+", token) and token not in node):
                key = int(token)  # a region code
            if last:
                node[key] = value
                return
            if key not in node:
                node[key] = {}  # a new mapping: validation reports it if it does not belong
            elif not isinstance(node[key], (dict, list)):
                raise _PathError(f"{_join(where if depth else '', key)} is a single value, not a mapping or a list")
            node = node[key]
        else:
            raise _PathError(f"{where} is a single value, not a mapping or a list")


def _plain(value: Any) -> Any:
    """Dataclasses of this module (and containers of them) as the file's plain data."""
    if hasattr(value, "to_dict") and dataclasses.is_dataclass(value):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
