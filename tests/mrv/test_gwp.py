"""GWP tables: CO2e computed on chain exactly as carbon_sdk.gwp computes it, the default IPCC AR6 table,
registering new versions, and every rejection with its custom error and nothing changed."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from mrv_helpers import document, random_root, reconciling_period, send_anyway, unchanged

from carbon_sdk import Role, errors
from carbon_sdk.errors import InvalidInput
from carbon_sdk.gwp import AR6_GWP100, AR6_SOURCE, GwpTable
from carbon_sdk.mrv import ReportStatus
from carbon_sdk.units import tonnes

TWO_FRACTIONS = GwpTable(name="test: two fractional GWPs", gases=("GAS_A", "GAS_B"),
                         gwp=(Decimal("1.5"), Decimal("2.5")), source="test table, not for reporting")


@pytest.fixture(scope="module")
def period(market):
    return reconciling_period(market)


def test_default_table_is_ipcc_ar6_gwp100_with_its_citation(market):
    table = market.regulator.mrv.gwp_table(1)
    assert table.name == AR6_GWP100.name == "IPCC AR6 GWP100"
    assert table.gases == AR6_GWP100.gases
    assert table.gwp == AR6_GWP100.gwp
    values = dict(zip(table.gases, table.gwp, strict=True))
    assert values["CH4_fossil"] == Decimal("29.8") and values["SF6"] == Decimal("25200")
    assert table.source == AR6_GWP100.source_hash.hex()  # the contract records the citation's keccak256
    assert AR6_GWP100.source == AR6_SOURCE and "Forster et al. 2021" in AR6_SOURCE
    assert market.regulator.mrv.contract.call("gwpVersions")[0] == 1  # installed at deployment


def test_co2e_on_chain_equals_the_sdk_for_random_quantities(market, period):
    rng = random.Random(20250301)
    mrv = market.regulator.mrv
    for _ in range(15):
        gases = rng.sample(AR6_GWP100.gases, rng.randint(1, len(AR6_GWP100.gases)))
        quantities = {gas: rng.randint(0, tonnes(50_000)) for gas in gases}
        assert mrv.co2e(quantities) == AR6_GWP100.co2e(quantities)
    # A submitted report records the same figure, computed by the contract in the transaction.
    enterprise = market.enterprise()
    quantities = {gas: rng.randint(1, tonnes(10_000)) for gas in AR6_GWP100.gases}
    report = enterprise.mrv.submit_report(period, quantities, readings_root=random_root(),
                                          report_document=document())
    assert report.co2e == AR6_GWP100.co2e(quantities)
    assert report.gwp_version == 1 and report.status is ReportStatus.SUBMITTED


def test_co2e_rounds_down_once_below_one_gram(market, period):
    mrv = market.regulator.mrv
    assert mrv.co2e({"CH4_fossil": 1}) == 29  # 29.8 g, rounded down
    assert mrv.co2e({"CH4_fossil": 3}) == 89  # 89.4 g
    assert mrv.co2e({"CH4_fossil": 5}) == 149  # exactly 149 g
    assert mrv.co2e({"CH4_fossil": 1, "CO2": 1}) == 30  # 30.8 g
    assert mrv.co2e({"CH4_fossil": tonnes(1)}) == tonnes("29.8")
    # Rounded once over the sum, not per gas: 1.5 + 2.5 = 4 (per gas it would be 1 + 2 = 3).
    market.regulator.mrv.register_gwp_table(7, TWO_FRACTIONS)
    assert mrv.co2e({"GAS_A": 1, "GAS_B": 1}, gwp_version=7) == 4 == TWO_FRACTIONS.co2e([1, 1])
    assert mrv.co2e({"GAS_A": 1}, gwp_version=7) == 1


def test_national_regulator_registers_a_new_table_version(market, period):
    ar5 = GwpTable(name="IPCC AR5 GWP100", gases=("CO2", "CH4", "N2O"),
                   gwp=(Decimal("1"), Decimal("28"), Decimal("265")),
                   source="IPCC AR5 WG1 Chapter 8, Table 8.7")
    table = market.regulator.mrv.register_gwp_table(2, ar5)
    assert table == GwpTable(ar5.name, ar5.gases, ar5.gwp, ar5.source_hash.hex())
    assert 2 in market.regulator.mrv.contract.call("gwpVersions")
    # Reports may use it; the report records the version it used.
    enterprise = market.enterprise()
    report = enterprise.mrv.submit_report(period, {"CH4": tonnes(1), "N2O": 1_000},
                                          readings_root=random_root(), report_document=document(),
                                          gwp_version=2)
    assert report.gwp_version == 2 and report.co2e == tonnes(28) + 265_000


def test_a_table_version_is_registered_once(market):
    first = GwpTable(name="first", gases=("CO2",), gwp=(Decimal(1),), source="first")
    market.regulator.mrv.register_gwp_table(3, first)
    other = GwpTable(name="second", gases=("CO2", "CH4"), gwp=(Decimal(1), Decimal(30)), source="second")
    with unchanged(market, []), pytest.raises(errors.MrvGwpTableExists) as caught:
        market.regulator.mrv.register_gwp_table(3, other)
    assert caught.value.arguments == {"version": 3}
    assert market.regulator.mrv.gwp_table(3).name == "first"


def test_only_a_national_regulator_registers_tables(market):
    table = GwpTable(name="rogue", gases=("CO2",), gwp=(Decimal("0.5"),), source="none")
    for client in (market.regional_regulator(11), market.enterprise()):
        with unchanged(market, [client.address]), pytest.raises(errors.GuardMissingRole) as caught:
            client.mrv.register_gwp_table(40, table)
        assert caught.value.arguments == {"account": client.address, "required": Role.REGULATOR}
    with pytest.raises(InvalidInput, match="not registered"):
        market.regulator.mrv.gwp_table(40)


def test_an_unknown_gas_is_refused_before_sending(market, period):
    enterprise = market.enterprise()
    nonce = enterprise.rpc.call("eth_getTransactionCount", [enterprise.address, "latest"])
    with unchanged(market, [enterprise.address], [period]), pytest.raises(InvalidInput, match="CH4_biogenic"):
        enterprise.mrv.submit_report(period, {"CO2": tonnes(1), "CH4_biogenic": 5},
                                     readings_root=random_root(), report_document=document())
    with pytest.raises(InvalidInput, match="not in GWP table"):
        market.regulator.mrv.co2e({"XYZ": 1})
    assert enterprise.rpc.call("eth_getTransactionCount", [enterprise.address, "latest"]) == nonce


def test_a_wrong_quantity_count_is_refused_by_the_contract(market, period):
    enterprise = market.enterprise()
    mrv = enterprise.mrv.contract
    with pytest.raises(errors.MrvQuantityCount) as caught:
        mrv.call("co2eOf", 1, [1, 2, 3])
    assert caught.value.arguments == {"gwpVersion": 1, "expected": len(AR6_GWP100.gases), "given": 3}
    call = mrv.tx("submitReport", period, 1, [tonnes(1)] * 12, random_root(), random_root())
    with unchanged(market, [enterprise.address], [period]), pytest.raises(errors.MrvQuantityCount) as caught:
        send_anyway(enterprise, call)
    assert caught.value.arguments == {"gwpVersion": 1, "expected": 11, "given": 12}
    assert caught.value.tx_hash is not None  # mined, reverted, nothing recorded


def test_an_unknown_table_is_refused(market, period):
    enterprise = market.enterprise()
    mrv = enterprise.mrv.contract
    with pytest.raises(errors.MrvUnknownGwpTable) as caught:
        mrv.call("co2eOf", 99, [1])
    assert caught.value.arguments == {"version": 99}
    with unchanged(market, [enterprise.address], [period]), \
            pytest.raises(errors.MrvUnknownGwpTable) as caught:
        enterprise.transact(mrv.tx("submitReport", period, 99, [tonnes(1)], random_root(), random_root()))
    assert caught.value.arguments == {"version": 99}
    # Through the SDK the unknown version is named before anything is sent.
    with pytest.raises(InvalidInput, match="version 99 is not registered"):
        enterprise.mrv.submit_report(period, {"CO2": 1}, readings_root=random_root(),
                                     report_document=document(), gwp_version=99)


def test_a_quantity_too_large_is_a_custom_error_not_a_panic(market):
    contract = market.regulator.mrv.contract
    count = len(AR6_GWP100.gases)
    with pytest.raises(errors.MrvQuantityTooLarge) as caught:
        contract.call("co2eOf", 1, [2**128] + [0] * (count - 1))
    assert caught.value.arguments == {"index": 0, "quantity": 2**128}
    # Each quantity fits, but the CO2e would not fit in 128 bits.
    big = 2**128 - 1
    with pytest.raises(errors.MrvQuantityTooLarge) as caught:
        contract.call("co2eOf", 1, [0] * (count - 1) + [big])  # NF3: x 17,400
    assert caught.value.arguments == {"index": count, "quantity": big * 17_400_000 // 1000}
