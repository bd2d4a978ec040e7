"""Methodology versions off chain: the shipped data set, its content hash, validation, and the arithmetic of
every activity type against hand-computed examples."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from importlib import resources

import pytest
from eth_utils import keccak

from carbon_sdk.errors import InvalidInput
from carbon_sdk.methodology import EMISSION, REDUCTION, Methodology, canonical_json, parse_quantity

# Version 1 is what a regulator registers: its bytes, and so its hash, must never change. Any edit to the data
# file (a value, a source, a note) is a new version with a new number.
V1_HASH = "0xbdc37bb9fb1460e855c71fcc51724b76d58be170ed161db3b19f0f36f0a9c0de"


@pytest.fixture(scope="module")
def m() -> Methodology:
    return Methodology.default()


def shipped() -> dict:
    return json.loads(resources.files("carbon_sdk").joinpath("data", "methodology_v1.json").read_text("utf-8"))


# -- the data set and its hash ---------------------------------------------------------------------------------


def test_default_is_version_1_with_its_regions_and_activities(m):
    assert m.version == 1 and m is Methodology.default()
    assert m.regions == {0: "National default (全国)", 11: "Beijing (北京)", 31: "Shanghai (上海)",
                         44: "Guangdong (广东)"}
    assert m.activities == ("electricity", "car", "metro", "bus", "cycling", "walking", "avoided_bag")
    assert [m.kind(a) for a in m.activities] == [EMISSION, EMISSION] + [REDUCTION] * 5
    assert [m.unit(a) for a in m.activities] == ["kWh", "km", "km", "km", "km", "km", "item"]
    assert (m.emission_rounding, m.reduction_rounding) == ("ceiling", "floor")


def test_content_hash_is_keccak_of_the_canonical_json_and_stable(m):
    assert m.content_hash_hex == V1_HASH
    assert m.content_hash == keccak(canonical_json(shipped())) == keccak(m.canonical_json)
    assert m.canonical_json == json.dumps(shipped(), sort_keys=True, separators=(",", ":"),
                                          ensure_ascii=False).encode("utf-8")
    assert "华北".encode() in m.canonical_json  # UTF-8, non-ASCII as is
    # The same content written any other way (indented, keys shuffled) has the same hash.
    document = shipped()
    items = list(document.items())
    random.Random(5).shuffle(items)
    assert Methodology.from_json(json.dumps(dict(items), indent=3, ensure_ascii=True)).content_hash == m.content_hash
    assert Methodology.from_dict(document) == m and hash(Methodology.from_dict(document)) == hash(m)


@pytest.mark.parametrize("path, value", [
    (("factors", "grid_electricity", "by_region", "11", "value"), "677.7"),  # a value
    (("factors", "grid_electricity", "by_region", "11", "item"), "another table"),  # where a value comes from
    (("sources", "desnz-2025", "verification"), "checked against the workbook"),  # a note
    (("rounding", "reductions"), "half_even"),  # the rounding rule
    (("version",), 2),
])
def test_content_hash_changes_with_any_change(m, path, value):
    document = m.document
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    if path[-1] == "value":
        del node["product"]  # the stated product would no longer match
    changed = Methodology.from_dict(document)
    assert changed.content_hash != m.content_hash and changed != m
    assert m.content_hash_hex == V1_HASH  # the original is untouched (document() is a copy)


def test_every_value_cites_its_sources(m):
    document = shipped()
    for name, factor in document["factors"].items():
        for region, entry in factor["by_region"].items():
            assert entry["sources"] and all(s in document["sources"] for s in entry["sources"]), (name, region)
            assert entry["item"].strip()
    for key, source in m.sources.items():
        assert all(source[field].strip() for field in ("title", "publisher", "date", "locator", "verification"))
    # The Chinese grid factors come from the MEE/NBS 2022 factors, per regional grid; transport from DESNZ 2025.
    assert m.factor("electricity", 11).sources == ("mee-electricity-2022",)
    assert "desnz-2025" in m.factor("metro", 31).sources and "assumption-v1" in m.factor("car", 0).sources


# -- the arithmetic, by hand --------------------------------------------------------------------------------


@pytest.mark.parametrize("activity, quantity, unit, region, exact_e, exact_r, grams_e, grams_r", [
    # electricity: kWh x the regional grid factor (MEE 2022, kg/kWh x 1000)
    ("electricity", "3.27", "kWh", 11, "2215.752", "0", 2216, 0),  # 3.27 x 677.6, North China grid; rounded up
    ("electricity", "10", "kWh", 31, "5617", "0", 5617, 0),  # 10 x 561.7, East China grid
    ("electricity", "10", "kWh", 44, "3869", "0", 3869, 0),  # 10 x 386.9, South China grid
    ("electricity", "0.5", "kWh", 0, "268.3", "0", 269, 0),  # 0.5 x 536.6, the national average
    # driving a petrol car is an emission: km x 162.72 g
    ("car", "10", "km", 44, "1627.2", "0", 1628, 0),
    # metro instead of the car: km x (162.72 - 27.8) = km x 134.92; rounded down
    ("metro", "12.5", "km", 31, "0", "1686.5", 0, 1686),
    # bus instead of the car: km x (162.72 - 103.85) = km x 58.87
    ("bus", "8", "km", 11, "0", "470.96", 0, 470),
    # cycling and walking have no direct emissions: km x 162.72
    ("cycling", "4.2", "km", 44, "0", "683.424", 0, 683),
    ("walking", "1.5", "km", 0, "0", "244.08", 0, 244),
    # a declined bag: 8.12 g x 3.09515524 g CO2e/g = 25.1326605488 g per bag
    ("avoided_bag", "3", "item", 44, "0", "75.3979816464", 0, 75),
    ("avoided_bag", 0, "item", 11, "0", "0", 0, 0),
])
def test_assess_each_activity(m, activity, quantity, unit, region, exact_e, exact_r, grams_e, grams_r):
    a = m.assess(activity, quantity, unit, region)
    assert (a.emissions_exact, a.reductions_exact) == (Decimal(exact_e), Decimal(exact_r))
    assert (a.emissions, a.reductions) == (grams_e, grams_r)
    assert a.quantity == Decimal(str(quantity)) and a.region == region


def test_factors_per_unit_and_the_national_default(m):
    metro = m.factor("metro", 11)
    assert (metro.baseline, metro.actual, metro.reductions_per_unit, metro.emissions_per_unit) == (
        Decimal("162.72"), Decimal("27.8"), Decimal("134.92"), 0)
    assert metro.factor_regions == (0, 0)  # Beijing has no transport values of its own: the national default
    grid = m.factor("electricity", 44)
    assert (grid.emissions_per_unit, grid.reductions_per_unit, grid.baseline, grid.factor_regions) == (
        Decimal("386.9"), 0, None, (44,))
    assert m.factor("walking", 31).reductions_per_unit == Decimal("162.72")
    assert m.factor("avoided_bag", 0).reductions_per_unit == Decimal("25.1326605488")
    assert m.per_unit()[("bus", 44)] == (0, Decimal("58.87"))


def test_assess_refuses_what_the_methodology_does_not_know(m):
    with pytest.raises(InvalidInput, match="unknown activity 'taxi'"):
        m.assess("taxi", "1", "km", 0)
    with pytest.raises(InvalidInput, match="unknown region 12"):
        m.assess("metro", "1", "km", 12)
    with pytest.raises(InvalidInput, match="unit 'kWh' is not valid for metro"):
        m.assess("metro", "1", "kWh", 0)
    with pytest.raises(InvalidInput, match="negative"):
        m.assess("metro", "-1", "km", 0)
    with pytest.raises(InvalidInput, match="whole number of items"):
        m.assess("avoided_bag", "1.5", "item", 0)
    assert m.assess(" Metro ", "1", "KM", 0).reductions_exact == Decimal("134.92")  # case and blanks forgiven


@pytest.mark.parametrize("value, unit, error", [
    ("abc", "km", "not a number"), ("-0.1", "km", "negative"), ("NaN", "km", "not a finite"),
    ("Infinity", "km", "not a finite"), ("1.0000001", "km", "more than 6 decimal places"),
    ("1e12", "km", "implausibly large"), (1.5, "km", "not float"), (True, "km", "not bool"), ("", "km", "empty"),
    ("2.5", "item", "whole number of items"),
])
def test_parse_quantity_refuses(value, unit, error):
    with pytest.raises(ValueError, match=error):
        parse_quantity(value, unit)


def test_parse_quantity_accepts_exact_forms():
    assert parse_quantity(" 12.500000 ", "km") == Decimal("12.5")
    assert parse_quantity("1.50000000", "km") == Decimal("1.5")  # trailing zeros are not decimals of the value
    assert parse_quantity(3, "item") == 3 and parse_quantity("3.0", "item") == 3
    assert parse_quantity(Decimal("0.000001"), "kWh") == Decimal("0.000001")


# -- validation -------------------------------------------------------------------------------------------------


def broken(m: Methodology, change) -> str:
    document = m.document
    change(document)
    with pytest.raises(InvalidInput) as caught:
        Methodology.from_dict(document)
    return str(caught.value)


def test_validation_refuses_a_negative_reduction(m):
    def metro_dirtier_than_a_car(d):
        d["factors"]["metro"]["by_region"]["0"] = {"value": "170", "sources": ["desnz-2025"], "item": "made up"}
    message = broken(m, metro_dirtier_than_a_car)
    assert ("activity 'metro', region 0: the baseline (162.72 g) is below the activity's own emissions (170 g)"
            in message)


def test_validation_refuses_inexact_or_unsourced_values(m):
    def float_value(d):
        d["factors"]["bus"]["by_region"]["0"]["value"] = 103.85
    assert "must be a decimal written as a JSON string" in broken(m, float_value)
    with pytest.raises(InvalidInput, match="must be written as a string"):
        Methodology.from_json(json.dumps(shipped()).replace('"version": 1', '"version": 1.0'))

    def unknown_source(d):
        d["factors"]["bus"]["by_region"]["0"]["sources"] = ["my-guess"]
    assert "cites unknown source 'my-guess'" in broken(m, unknown_source)

    def no_item(d):
        del d["factors"]["bus"]["by_region"]["0"]["item"]
    assert "needs 'item'" in broken(m, no_item)

    def wrong_product(d):
        d["factors"]["single_use_bag"]["by_region"]["0"]["value"] = "25.13"
    assert "is not the product of 8.12 x 3.09515524 (= 25.1326605488)" in broken(m, wrong_product)

    def unsourced(d):
        del d["sources"]["ea-carrier-bags-2011"]["verification"]
    assert "source 'ea-carrier-bags-2011' lacks verification" in broken(m, unsourced)


def test_validation_refuses_inconsistent_structure(m):
    def no_national_default(d):
        del d["regions"]["0"]
    assert "regions must include 0" in broken(m, no_national_default)

    def factor_for_unknown_region(d):
        d["factors"]["bus"]["by_region"]["12"] = {"value": "90", "sources": ["desnz-2025"], "item": "x"}
    assert "factor 'bus', region 12: not a region of this methodology" in broken(m, factor_for_unknown_region)

    def unit_mismatch(d):
        d["activities"]["metro"]["unit"] = "mile"
    assert "baseline 'petrol_car' is given per km, the activity per mile" in broken(m, unit_mismatch)

    def unknown_factor(d):
        d["activities"]["bus"]["actual"] = "tram"
    assert "actual 'tram' is not a factor" in broken(m, unknown_factor)

    def bad_version(d):
        d["version"] = 70000
    assert "version must be an integer from 1 to 65535" in broken(m, bad_version)

    def bad_rounding(d):
        d["rounding"]["emissions"] = "nearest"
    assert "rounding.emissions must be one of" in broken(m, bad_rounding)

    with pytest.raises(InvalidInput, match="not valid JSON"):
        Methodology.from_json("{")
    with pytest.raises(InvalidInput, match="cannot read methodology"):
        Methodology.load("/nonexistent/methodology.json")


def test_load_from_a_path(m, tmp_path):
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(shipped(), indent=1), encoding="utf-8")
    assert Methodology.load(path) == m
