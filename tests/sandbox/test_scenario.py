"""Scenario files of the policy sandbox: loading, validation, defaults, helpers (no chain needed)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from carbon_sdk.errors import InvalidInput
from carbon_sdk.sandbox import (
    Cap,
    EnterpriseGroup,
    Group,
    Individuals,
    MarketRules,
    Platform,
    Policy,
    Region,
    Scenario,
    ScenarioError,
    Verifier,
    load_scenario,
    shipped_scenarios,
)

SHIPPED = {"default", "no-personal-trading", "delta-0.2", "delta-0.6", "large"}


@pytest.fixture(scope="module")
def default() -> Scenario:
    return load_scenario("default")


def base() -> dict[str, Any]:
    """The default scenario as plain data, to break one value at a time."""
    return load_scenario("default").to_dict()


def problems_of(data: Any) -> tuple[str, ...]:
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data)
    return info.value.problems


def problems_after(change: Callable[[dict[str, Any]], Any]) -> tuple[str, ...]:
    data = base()
    change(data)
    return problems_of(data)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- shipped scenarios -------------------------------------------------------------------------------------------


def test_shipped_scenarios_are_listed():
    shipped = shipped_scenarios()
    assert SHIPPED <= set(shipped)
    assert all(path.is_file() and path.suffix == ".yaml" and path.stem == name for name, path in shipped.items())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_scenario_loads_by_name_and_path(name):
    by_name = load_scenario(name)
    assert by_name.name == name
    assert by_name.description
    assert load_scenario(shipped_scenarios()[name]) == by_name
    assert load_scenario(str(shipped_scenarios()[name])) == by_name


def test_default_scenario(default):
    assert default.periods == 3
    assert sorted(default.regions) == [11, 31, 44]
    assert math.isclose(sum(r.cap_share for r in default.regions.values()), 1.0)
    assert [g.name for g in default.enterprises] == ["power", "cement", "steel"]
    assert default.enterprise_count == 12
    assert default.individuals.count == 2000
    assert len(default.platforms) == 1
    assert [v.honest for v in default.verifiers] == [True, False]
    assert default.verifiers[1].understatement == 0.08
    assert default.policy.offset_ratio == (0.2, 0.4, 0.6)
    assert default.policy.personal_trading is True
    assert default.policy.pricing == "midpoint"
    assert default.market == MarketRules(lot_t=10.0, tick=0.5, price_levels=6, continuous_orders=20)
    assert (default.market.lot_size, default.market.tick_size) == (10_000_000, 50)
    # every region an enterprise names exists
    assert all(code in default.regions for g in default.enterprises for code in g.regions)


def test_default_comments_every_value():
    in_description = False
    for number, line in enumerate(shipped_scenarios()["default"].read_text().splitlines(), start=1):
        code = line.split("#", 1)[0].rstrip()
        if in_description and line.startswith("  "):
            continue  # the folded description's text
        in_description = code.startswith("description:")
        if not code or code.endswith((":", ">-")):
            continue  # blank, a comment line, a section header or the description's first line
        assert "#" in line, f"default.yaml line {number} has a value without a comment: {line!r}"


def test_variants_differ_from_default_only_where_they_say(default):
    def same_as_default(scenario: Scenario, **policy: Any) -> None:
        expected = dataclasses.replace(default, name=scenario.name, description=scenario.description,
                                       policy=dataclasses.replace(default.policy, **policy))
        assert scenario == expected

    same_as_default(load_scenario("no-personal-trading"), personal_trading=False)
    same_as_default(load_scenario("delta-0.2"), offset_ratio=(0.2, 0.2, 0.2))
    same_as_default(load_scenario("delta-0.6"), offset_ratio=(0.6, 0.6, 0.6))


def test_large_scenario(default):
    large = load_scenario("large")
    assert large.individuals.count == 100_000
    assert large.enterprise_count == 200
    assert large.periods == 3
    assert large.seed == default.seed
    assert large.verifiers == default.verifiers
    assert large.policy == default.policy


# --- round trip, helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_to_dict_round_trips(name):
    scenario = load_scenario(name)
    data = scenario.to_dict()
    assert Scenario.from_dict(data) == scenario
    assert Scenario.from_dict(copy.deepcopy(data)).to_dict() == data
    # through JSON (run.json: region codes become text keys) and through YAML
    assert Scenario.from_dict(json.loads(json.dumps(data))) == scenario
    assert Scenario.from_dict(yaml.safe_load(yaml.safe_dump(data))) == scenario


def test_to_dict_shape(default):
    data = default.to_dict()
    assert list(data) == ["name", "description", "seed", "periods", "regions", "cap", "enterprises", "individuals",
                          "platforms", "verifiers", "policy", "market"]
    assert data["regions"][11] == {"name": "Beijing", "cap_share": 0.4}
    assert data["enterprises"][0]["abatement"] == {"intercept": 20.0, "slope": 0.0008}
    assert data["policy"]["fees"] == {"buyer_bps": 10, "seller_bps": 10}
    assert data["policy"]["offset_ratio"] == [0.2, 0.4, 0.6]
    assert load_scenario("delta-0.6").to_dict()["policy"]["offset_ratio"] == 0.6  # constant δ: one number
    assert data["individuals"]["groups"]["low_carbon"] == {"share": 0.5, "emissions_t": [0.3, 0.9]}


def test_dataclasses_are_frozen(default):
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.periods = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.policy.pricing = "uniform"  # type: ignore[misc]
    assert isinstance(default.enterprises, tuple) and isinstance(default.enterprises[0].regions, tuple)
    assert isinstance(default.cap, Cap) and isinstance(default.regions[11], Region)
    assert isinstance(default.enterprises[0], EnterpriseGroup) and isinstance(default.individuals, Individuals)
    assert isinstance(default.individuals.low_carbon, Group) and isinstance(default.platforms[0], Platform)
    assert isinstance(default.verifiers[0], Verifier) and isinstance(default.policy, Policy)
    assert all(isinstance(x, float) for x in (default.cap.initial_t, default.enterprises[0].emissions_t[0],
                                              default.individuals.e, default.policy.carbon_value))


def test_cap_of_and_delta_of_by_hand(default):
    assert default.cap_of(0) == pytest.approx(700_000)
    assert default.cap_of(1) == pytest.approx(700_000 * 0.95)
    assert default.cap_of(2) == pytest.approx(631_750)
    assert default.region_cap_of(2, 31) == pytest.approx(631_750 * 0.3)
    assert [default.delta_of(k) for k in range(3)] == [0.2, 0.4, 0.6]
    flat = default.with_changes({"cap.decline": 0, "policy.offset_ratio": 0.5})
    assert [flat.cap_of(k) for k in range(3)] == [700_000.0] * 3
    assert [flat.delta_of(k) for k in range(3)] == [0.5] * 3
    for bad in (-1, 3, 1.0, True, "0"):
        with pytest.raises(InvalidInput, match="period_index must be an integer from 0 to 2"):
            default.cap_of(bad)
        with pytest.raises(InvalidInput, match="period_index"):
            default.delta_of(bad)
    with pytest.raises(InvalidInput, match="region 12 is not one of the scenario's"):
        default.region_cap_of(0, 12)


def test_with_changes(default):
    changed = default.with_changes({"policy.offset_ratio": 0.6, "enterprises[0].count": 8,
                                    "enterprises.1.emissions_t": [1000, 2000], "regions.11.name": "Peking"},
                                   seed=7, policy__personal_trading=False)
    assert changed.policy.offset_ratio == (0.6, 0.6, 0.6)
    assert changed.enterprises[0].count == 8
    assert changed.enterprises[1].emissions_t == (1000.0, 2000.0)
    assert changed.regions[11].name == "Peking"
    assert changed.seed == 7 and changed.policy.personal_trading is False
    assert changed.enterprise_count == 16
    # the original is untouched, and nothing else moved
    assert default.policy.offset_ratio == (0.2, 0.4, 0.6) and default.enterprises[0].count == 4
    assert changed.market == default.market and changed.verifiers == default.verifiers
    assert default.with_changes() == default


def test_with_changes_accepts_the_dataclasses_names_and_values(default):
    changed = default.with_changes({"policy.buyer_fee_bps": 25, "enterprises[2].abatement_slope": 0.003,
                                    "individuals.low_carbon.share": 0.6, "individuals.high_carbon.share": 0.4,
                                    "market": MarketRules(lot_t=1, tick=0.02, price_levels=3, continuous_orders=0)})
    assert changed.policy.buyer_fee_bps == 25 and changed.policy.seller_fee_bps == 10
    assert changed.enterprises[2].abatement_slope == 0.003
    assert changed.individuals.low_carbon.share == 0.6
    assert changed.market.tick == 0.02 and changed.market.lot_size == 1_000_000 and changed.market.tick_size == 2
    more = default.with_changes({"platforms": (Platform("Other", 3, 2),), "regions.11": Region("Beijing", 0.4)})
    assert more.platforms == (Platform("Other", 3.0, 2.0),)
    # periods and a constant δ move together
    longer = default.with_changes(periods=5, policy__offset_ratio=0.3)
    assert longer.policy.offset_ratio == (0.3,) * 5 and longer.cap_of(4) == pytest.approx(700_000 * 0.95**4)


def test_with_changes_reports_every_problem(default):
    with pytest.raises(ScenarioError) as info:
        default.with_changes({"enterprises[5].count": 8, "periods.x": 1, "bogus": 1, "periods": 5,
                              "policy.fees.buyer_bps": -1})
    problems = info.value.problems
    assert "enterprises[5].count: no item 5: enterprises has 3" in problems
    assert "periods.x: periods is a single value, not a mapping or a list" in problems
    assert any(p.startswith("bogus: unknown key; allowed: name, description, seed, periods,") for p in problems)
    assert "policy.offset_ratio: must be one number or exactly 5 numbers (one per period), got 3 numbers" in problems
    assert "policy.fees.buyer_bps: must be an integer from 0 to 1,000, got -1" in problems
    assert "with changes" in str(info.value)


# --- validation: one rule at a time -----------------------------------------------------------------------------


def _set(path: list, value: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _delete(path: list) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change


CASES = [
    # shares
    (_set(["regions", 11, "cap_share"], 0.5), "regions: the cap_share values must sum to 1, got 1.1"),
    (_set(["regions", 11, "cap_share"], 0), "regions.11.cap_share: must be a number in (0, 1], got 0"),
    (_set(["individuals", "groups", "low_carbon", "share"], 0.4),
     "individuals.groups: the shares of low_carbon and high_carbon must sum to 1, got 0.9"),
    # region codes
    (_set(["regions", 2**32], {"name": "x", "cap_share": 0.1}),
     "regions.4294967296: region code must be an integer from 1 to 4,294,967,295 (0 means national), got 4294967296"),
    (_set(["regions", 0], {"name": "x", "cap_share": 0.1}),
     "regions.0: region code must be an integer from 1 to 4,294,967,295 (0 means national), got 0"),
    (_set(["regions", "north"], {"name": "x", "cap_share": 0.1}),
     "regions.north: region code must be an integer from 1 to 4,294,967,295 (0 means national), got 'north'"),
    (_set(["regions"], {}), "regions: must be a non-empty mapping of region code to {name, cap_share}, got {}"),
    (_set(["enterprises", 0, "regions"], [11, 45]),
     "enterprises[0].regions[1]: must be one of the codes in regions (11, 31, 44), got 45"),
    (_set(["enterprises", 0, "regions"], [11, 11]), "enterprises[0].regions[1]: duplicate region, got 11"),
    (_set(["enterprises", 0, "regions"], []),
     "enterprises[0].regions: must be a non-empty list of region codes, got []"),
    (_set(["enterprises", 0, "regions"], ["11"]),
     "enterprises[0].regions[0]: must be a region code, an integer from 1 to 4,294,967,295, got '11'"),
    # counts
    (_set(["enterprises", 0, "count"], 0), "enterprises[0].count: must be an integer from 1 to 1,000, got 0"),
    (_set(["enterprises", 0, "count"], 2.5), "enterprises[0].count: must be an integer from 1 to 1,000, got 2.5"),
    (_set(["enterprises", 0, "count"], 4.0), "enterprises[0].count: must be an integer from 1 to 1,000, got 4.0"),
    (_set(["enterprises", 0, "count"], 995),
     "enterprises: at most 1,000 enterprises in all (the counts' sum), got 1003"),
    (_set(["individuals", "count"], 1_000_001),
     "individuals.count: must be an integer from 1 to 1,000,000, got 1000001"),
    (_set(["individuals", "count"], -5), "individuals.count: must be an integer from 1 to 1,000,000, got -5"),
    (_set(["enterprises"], []), "enterprises: must be a non-empty list of enterprise groups, got []"),
    (_set(["enterprises", 2, "name"], "power"), "enterprises[2].name: duplicate group name, got 'power'"),
    # periods and δ
    (_set(["periods"], 0), "periods: must be an integer from 1 to 20, got 0"),
    (_set(["periods"], 21), "periods: must be an integer from 1 to 20, got 21"),
    (_set(["policy", "offset_ratio"], [0.2, 0.4]),
     "policy.offset_ratio: must be one number or exactly 3 numbers (one per period), got 2 numbers"),
    (_set(["policy", "offset_ratio"], [0.2, 0, 0.6]), "policy.offset_ratio[1]: must be a number in (0, 1], got 0"),
    (_set(["policy", "offset_ratio"], 1.2),
     "policy.offset_ratio: must be a number in (0, 1] (or a list, one per period), got 1.2"),
    (_set(["policy", "offset_ratio"], "0.5"),
     "policy.offset_ratio: must be a number in (0, 1] (or a list, one per period), got '0.5' "
     "(text: remove the quotes)"),
    # fees, pricing, tolerance
    (_set(["policy", "fees", "buyer_bps"], 1001),
     "policy.fees.buyer_bps: must be an integer from 0 to 1,000, got 1001"),
    (_set(["policy", "fees", "seller_bps"], -1), "policy.fees.seller_bps: must be an integer from 0 to 1,000, got -1"),
    (_set(["policy", "pricing"], "vickrey"), "policy.pricing: must be midpoint or uniform, got 'vickrey'"),
    (_set(["policy", "tolerance_bps"], 10_001),
     "policy.tolerance_bps: must be an integer from 0 to 10,000, got 10001"),
    # verifiers
    (_set(["verifiers", 0, "honest"], False), "verifiers: at least one verifier must be honest, got 2 dishonest"),
    (_set(["verifiers", 1, "understatement"], 0.5),
     "verifiers[1].understatement: must be a number in [0, 0.5), got 0.5"),
    (_set(["verifiers", 1, "understatement"], -0.1),
     "verifiers[1].understatement: must be a number in [0, 0.5), got -0.1"),
    (_set(["verifiers", 0, "understatement"], 0.1),
     "verifiers[0].understatement: must be 0 for an honest verifier (it endorses the truth; set honest: false for "
     "one that understates), got 0.1"),
    (_set(["verifiers"], []), "verifiers: must be a non-empty list of verifiers, got []"),
    (_set(["verifiers", 1, "name"], "GreenCert"), "verifiers[1].name: duplicate verifier name, got 'GreenCert'"),
    # platforms
    (_set(["platforms"], [{"name": "a"}, {"name": "b"}]),
     "platforms: must list exactly one platform for now, got 2 platforms"),
    (_set(["platforms", 0, "service_q"], 0), "platforms[0].service_q: must be a number > 0, got 0"),
    (_set(["platforms", 0, "cost_c"], -1), "platforms[0].cost_c: must be a number >= 0, got -1"),
    # the exchange's grid
    (_set(["market", "lot_t"], 0), "market.lot_t: must be a number > 0 with at most 6 decimals (tonnes; 1 unit = 1 "
                                   "gram), got 0"),
    (_set(["market", "lot_t"], 0.0000005), "market.lot_t: must be a number > 0 with at most 6 decimals (tonnes; 1 "
                                           "unit = 1 gram), got 5e-07"),
    (_set(["market", "tick"], 0.005), "market.tick: must be a number > 0 with at most 2 decimals (currency per "
                                      "tonne), got 0.005"),
    (_set(["market", "tick"], -0.5), "market.tick: must be a number > 0 with at most 2 decimals (currency per "
                                     "tonne), got -0.5"),
    (_set(["market", "lot_t"], 1.5), "market: lot_t x tick must be a multiple of 0.02 so that every price, half "
                                     "ticks included, is a whole number of cents (the exchange needs lot size x "
                                     "tick size to be a multiple of 2,000,000 units), got 1.5 x 0.5"),
    (_set(["market", "price_levels"], 0), "market.price_levels: must be an integer from 1 to 100, got 0"),
    (_set(["market", "continuous_orders"], -1),
     "market.continuous_orders: must be an integer from 0 to 100,000, got -1"),
    # ranges
    (_set(["enterprises", 0, "emissions_t"], [5, 1]),
     "enterprises[0].emissions_t: must be [low, high] with 0 < low <= high, got [5, 1]"),
    (_set(["enterprises", 0, "emissions_t"], [0, 1]),
     "enterprises[0].emissions_t: must be [low, high] with 0 < low <= high, got [0, 1]"),
    (_set(["enterprises", 0, "emissions_t"], 100),
     "enterprises[0].emissions_t: must be [low, high] with 0 < low <= high, got 100"),
    (_set(["individuals", "groups", "high_carbon", "emissions_t"], [1, 2, 3]),
     "individuals.groups.high_carbon.emissions_t: must be [low, high] with 0 < low <= high, got [1, 2, 3]"),
    (_set(["individuals", "groups", "low_carbon", "emissions_t"], [0.5, 1.5]),
     "individuals.groups.low_carbon.emissions_t: must not exceed quota_t (1): low-carbon users have a surplus, "
     "got [0.5, 1.5]"),
    (_set(["individuals", "groups", "high_carbon", "emissions_t"], [0.5, 1.5]),
     "individuals.groups.high_carbon.emissions_t: must not be below quota_t (1): high-carbon users have a deficit, "
     "got [0.5, 1.5]"),
    (_set(["cap", "decline"], 1), "cap.decline: must be a number in [0, 1), got 1"),
    (_set(["cap", "free_share"], 1.1), "cap.free_share: must be a number in [0, 1], got 1.1"),
    (_set(["enterprises", 1, "misreport"], 1.0), "enterprises[1].misreport: must be a number in [0, 1), got 1.0"),
    (_set(["enterprises", 0, "abatement", "slope"], -0.1),
     "enterprises[0].abatement.slope: must be a number >= 0, got -0.1"),
    (_set(["individuals", "quota_t"], 0), "individuals.quota_t: must be a number > 0, got 0"),
    (_set(["policy", "delta_cost_k"], 0), "policy.delta_cost_k: must be a number > 0, got 0"),
    # types: booleans, seeds, numbers
    (_set(["policy", "personal_trading"], "true"),
     "policy.personal_trading: must be true or false (a boolean, not text), got 'true'"),
    (_set(["policy", "personal_trading"], 1),
     "policy.personal_trading: must be true or false (a boolean, not text), got 1"),
    (_set(["verifiers", 0, "honest"], "yes"),
     "verifiers[0].honest: must be true or false (a boolean, not text), got 'yes'"),
    (_set(["seed"], 1.5), "seed: must be an integer from 0 to 18,446,744,073,709,551,615, got 1.5"),
    (_set(["seed"], "2025"), "seed: must be an integer from 0 to 18,446,744,073,709,551,615, got '2025'"),
    (_set(["seed"], True), "seed: must be an integer from 0 to 18,446,744,073,709,551,615, got true"),
    (_set(["cap", "initial_t"], float("nan")), "cap.initial_t: must be a finite number in (0, 1,000,000,000,000], "
                                               "got nan"),
    (_set(["cap", "initial_t"], float("inf")), "cap.initial_t: must be a finite number in (0, 1,000,000,000,000], "
                                               "got inf"),
    (_set(["cap", "initial_t"], "6e5"), "cap.initial_t: must be a number in (0, 1,000,000,000,000], got '6e5' "
                                        "(text: PyYAML reads 6e5 as text, write 600000 or 6.0e+5)"),
    (_set(["individuals", "e"], True), "individuals.e: must be a number > 0, got true"),
    (_set(["individuals", "e"], None), "individuals.e: must be a number > 0, got null"),
    (_set(["name"], ""), "name: must be a non-empty text, got ''"),
    (_set(["description"], 5), "description: must be a text, got 5"),
    # structure
    (_set(["policy"], [1]), "policy: must be a mapping with the keys personal_trading, offset_ratio, offset_cap, "
                            "fees, pricing, tolerance_bps, carbon_value, delta_cost_k, got [1]"),
    (_set(["individuals", "groups", "medium_carbon"], {"share": 0, "emissions_t": [1, 1]}),
     "individuals.groups.medium_carbon: unknown key; allowed: low_carbon, high_carbon"),
    (_set(["extends"], "default"), "extends: only a scenario file may extend another (use load_scenario), "
                                   "got 'default'"),
    # missing required keys
    (_delete(["periods"]), "periods: required key is missing"),
    (_delete(["enterprises", 1, "count"]), "enterprises[1].count: required key is missing"),
    (_delete(["cap", "initial_t"]), "cap.initial_t: required key is missing"),
    (_delete(["policy", "offset_ratio"]), "policy.offset_ratio: required key is missing"),
    (_delete(["individuals", "groups", "high_carbon"]), "individuals.groups.high_carbon: required key is missing"),
    (_delete(["verifiers", 0, "honest"]), "verifiers[0].honest: required key is missing"),
    (_delete(["regions", 11, "cap_share"]), "regions.11.cap_share: required key is missing"),
    (_delete(["enterprises", 0, "abatement", "slope"]), "enterprises[0].abatement.slope: required key is missing"),
]


@pytest.mark.parametrize("change, expected", CASES, ids=[c[1].split(":")[0] + f"#{i}" for i, c in enumerate(CASES)])
def test_each_rule_names_its_path(change, expected):
    problems = problems_after(change)
    assert expected in problems, "\n".join(problems)


def test_unknown_key_names_it_and_the_allowed_ones():
    problems = problems_after(_set(["enterprises", 0, "colour"], "red"))
    assert problems == ("enterprises[0].colour: unknown key; allowed: name, count, regions, emissions_t, growth, "
                        "abatement, max_abatement, misreport",)
    problems = problems_after(_set(["Periods"], 3))
    assert problems[0].startswith("Periods: unknown key; allowed: name, description, seed, periods, regions, cap,")


def test_several_problems_are_reported_at_once():
    def change(data: dict) -> None:
        data["enterprises"][0]["emissions_t"] = [5, 1]
        data["enterprises"][0]["colour"] = "red"
        del data["enterprises"][1]["count"]
        data["periods"] = 0
        data["policy"]["personal_trading"] = "true"
        data["market"]["tick"] = 0.001
        data["individuals"]["groups"]["low_carbon"]["share"] = float("nan")

    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict((lambda d: (change(d), d)[1])(base()), source="mine.yaml")
    error = info.value
    assert set(error.paths) == {"enterprises[0].emissions_t", "enterprises[0].colour", "enterprises[1].count",
                                "periods", "policy.personal_trading", "market.tick",
                                "individuals.groups.low_carbon.share"}
    message = str(error)
    assert message.startswith("mine.yaml: invalid scenario (7 problems):\n")
    assert all(problem in message for problem in error.problems)
    assert isinstance(error, InvalidInput) and isinstance(error, ValueError)


def test_defaults_of_optional_keys():
    minimal = {
        "periods": 2,
        "regions": {7: {"cap_share": 1}},
        "cap": {"initial_t": 1000},
        "enterprises": [{"name": "a", "count": 2, "regions": [7], "emissions_t": [10, 20],
                         "abatement": {"slope": 0.1}}],
        "individuals": {"count": 10, "groups": {"low_carbon": {"share": 1, "emissions_t": [0.5, 0.5]},
                                                "high_carbon": {"share": 0, "emissions_t": [1.5, 2]}}},
        "verifiers": [{"name": "v", "honest": True}, {"name": "w", "honest": False}],
        "policy": {"offset_ratio": [0.1, 0.2]},
    }
    scenario = Scenario.from_dict(minimal, default_name="tiny")
    assert (scenario.name, scenario.description, scenario.seed) == ("tiny", "", 0)
    assert scenario.regions == {7: Region("region 7", 1.0)}
    assert scenario.cap == Cap(1000.0, 0.0, 1.0)
    group = scenario.enterprises[0]
    assert (group.growth, group.abatement_intercept, group.max_abatement, group.misreport) == (0.0, 0.0, 0.3, 0.0)
    assert (scenario.individuals.quota_t, scenario.individuals.e, scenario.individuals.abatement_k) == (1.0, 200, 400)
    assert scenario.platforms == (Platform("platform", 5.0, 1.0),)
    assert scenario.verifiers == (Verifier("v", True, 0.0), Verifier("w", False, 0.05))
    assert scenario.policy == Policy(personal_trading=True, offset_ratio=(0.1, 0.2), offset_cap=0.05,
                                     buyer_fee_bps=10, seller_fee_bps=10, pricing="midpoint", tolerance_bps=500,
                                     carbon_value=60.0, delta_cost_k=180_000.0)
    assert scenario.market == MarketRules(10.0, 0.5, 6, 20)
    assert Scenario.from_dict(scenario.to_dict()) == scenario
    assert Scenario.from_dict(minimal).name == "scenario"


def test_region_codes_as_text_keys_are_read_as_numbers():
    data = base()
    data["regions"] = {str(code): region for code, region in data["regions"].items()}
    assert sorted(Scenario.from_dict(data).regions) == [11, 31, 44]
    data["regions"]["011"] = data["regions"].pop("11")
    assert "regions.011: region code must be an integer" in problems_of(data)[0]


def test_top_level_must_be_a_mapping():
    assert problems_of([1, 2]) == ("(top level): must be a mapping of keys to values with the keys name, description, "
                                   "seed, periods, regions, cap, enterprises, individuals, platforms, verifiers, "
                                   "policy, market, got [1, 2]",)


# --- files ------------------------------------------------------------------------------------------------------


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "broken.yaml", "name: broken\nperiods: 3\nregions:\n  11: {name: a, cap_share: 1\ncap: 1\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    assert info.value.line is not None and info.value.line >= 4
    message = str(info.value)
    assert message.startswith(f"{path}: invalid scenario (1 problem):")
    assert f"line {info.value.line}, column" in message and "not valid YAML" in message

    path = write(tmp_path, "tab.yaml", "periods: 3\nregions:\n\t11: x\n")
    with pytest.raises(ScenarioError, match=r"tab\.yaml: .*\n  line 3, column 1: not valid YAML"):
        load_scenario(path)


def test_a_key_written_twice_is_an_error(tmp_path):
    path = write(tmp_path, "twice.yaml", "periods: 3\nseed: 1\nperiods: 4\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problems == ("line 3, column 1: not valid YAML: the key 'periods' is written twice "
                                   "(first on line 1)",)
    assert info.value.line == 3


def test_file_problems(tmp_path):
    with pytest.raises(ScenarioError, match="the file is empty"):
        load_scenario(write(tmp_path, "empty.yaml", "# nothing\n"))
    with pytest.raises(ScenarioError, match=r"\(top level\): must be a mapping of keys to values, got \[1, 2\]"):
        load_scenario(write(tmp_path, "list.yaml", "[1, 2]\n"))
    with pytest.raises(ScenarioError, match="no such file and no shipped scenario of that name "
                                            r"\(shipped: .*default.*\)"):
        load_scenario("no-such-scenario")
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(path)


def test_a_file_is_validated_with_its_path_and_named_after_its_stem(tmp_path):
    text = shipped_scenarios()["default"].read_text().replace("name: default", "# no name")
    scenario = load_scenario(write(tmp_path, "my-run.yaml", text))
    assert scenario.name == "my-run"
    bad = text.replace("periods: 3 ", "periods: 30 ")
    path = write(tmp_path, "bad.yaml", bad)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    assert "periods: must be an integer from 1 to 20, got 30" in info.value.problems


def test_yaml_booleans_and_anchors(tmp_path):
    text = shipped_scenarios()["default"].read_text()
    scenario = load_scenario(write(tmp_path, "yes.yaml", text.replace("personal_trading: true ",
                                                                      "personal_trading: no ")))
    assert scenario.policy.personal_trading is False
    with pytest.raises(ScenarioError, match=r"policy\.personal_trading: must be true or false .*got 'true'"):
        load_scenario(write(tmp_path, "text.yaml", text.replace("personal_trading: true ",
                                                                "personal_trading: 'true' ")))
    anchored = """
periods: 1
regions: {1: {cap_share: 1}}
cap: {initial_t: 100}
enterprises:
  - &plant {name: a, count: 1, regions: [1], emissions_t: [10, 20], abatement: {slope: 0.1}}
  - <<: *plant
    name: b
individuals: {count: 1, groups: {low_carbon: {share: 1, emissions_t: [0.5, 0.5]},
                                 high_carbon: {share: 0, emissions_t: [1, 1]}}}
verifiers: [{name: v, honest: yes}]
policy: {offset_ratio: 0.5}
"""
    scenario = load_scenario(write(tmp_path, "anchors.yaml", anchored))
    assert [(g.name, g.emissions_t) for g in scenario.enterprises] == [("a", (10.0, 20.0)), ("b", (10.0, 20.0))]


# --- extends ----------------------------------------------------------------------------------------------------


def test_extends_merges_deeply_and_the_child_wins(tmp_path, default):
    path = write(tmp_path, "child.yaml", """
extends: default
periods: 2
policy:
  offset_ratio: [0.3, 0.5]
  fees: {buyer_bps: 0}
individuals:
  groups:
    low_carbon: {share: 0.7}
    high_carbon: {share: 0.3}
""")
    child = load_scenario(path)
    assert child.name == "child" and child.description == ""  # neither is inherited
    assert child.periods == 2 and child.policy.offset_ratio == (0.3, 0.5)
    assert (child.policy.buyer_fee_bps, child.policy.seller_fee_bps) == (0, 10)
    assert child.individuals.low_carbon == Group(0.7, (0.3, 0.9))
    assert child.enterprises == default.enterprises and child.market == default.market
    assert child.seed == default.seed


def test_extends_replaces_lists_and_null_restores_the_default(tmp_path, default):
    path = write(tmp_path, "lists.yaml", """
extends: default
verifiers: [{name: Solo, honest: true}]
cap: {decline: null}
market: null
""")
    scenario = load_scenario(path)
    assert scenario.verifiers == (Verifier("Solo", True, 0.0),)
    assert scenario.cap == Cap(default.cap.initial_t, 0.0, default.cap.free_share)
    assert scenario.market == MarketRules(10.0, 0.5, 6, 20)


def test_extends_by_relative_path_chains_and_is_validated_after_merging(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "parent.yaml", "extends: default\nname: parent\nseed: 99\n")
    grandchild = write(tmp_path / "sub", "grandchild.yaml", "extends: ../parent.yaml\nperiods: 2\n"
                                                            "policy: {offset_ratio: 0.5}\n")
    scenario = load_scenario(grandchild)
    assert (scenario.name, scenario.seed, scenario.periods) == ("grandchild", 99, 2)
    # a child that breaks its parent is reported against the child's file
    broken = write(tmp_path, "broken.yaml", "extends: parent.yaml\nperiods: 2\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(broken)
    assert info.value.source == str(broken)
    assert info.value.problems == ("policy.offset_ratio: must be one number or exactly 2 numbers (one per period), "
                                   "got 3 numbers",)


def test_extends_errors(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ScenarioError, match="extends: a cycle of extends"):
        load_scenario(tmp_path / "a.yaml")
    write(tmp_path, "self.yaml", "extends: self.yaml\n")
    with pytest.raises(ScenarioError, match="extends: a cycle of extends"):
        load_scenario(tmp_path / "self.yaml")
    with pytest.raises(ScenarioError, match=r"extends: no shipped scenario of that name \(shipped: .*\), got 'nope'"):
        load_scenario(write(tmp_path, "nope.yaml", "extends: nope\n"))
    with pytest.raises(ScenarioError, match=r"extends: no such file .*missing\.yaml"):
        load_scenario(write(tmp_path, "gone.yaml", "extends: missing.yaml\n"))
    with pytest.raises(ScenarioError, match=r"extends: must be a shipped scenario's name or a relative path, got 3"):
        load_scenario(write(tmp_path, "num.yaml", "extends: 3\n"))
