"""Monitoring readings off chain: CSV validation, the readings root, inclusion proofs, version diffs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from carbon_sdk.errors import InvalidInput
from carbon_sdk.merkle import StandardMerkleTree
from carbon_sdk.readings import (
    LEAF_ENCODING,
    Reading,
    ReadingsCommitment,
    diff_readings,
    load_readings_csv,
    verify_reading,
)

CSV = """sensor,time,gas,quantity_t
stack-1,2025-01-01T00:00:00Z,CO2,12.345678
stack-1,2025-01-01T01:00:00Z,co2,12.5
stack-1,2025-01-01T00:00:00Z,CH4,0.00012
boiler-2,1735689600,N2O,0.000001
"""


@pytest.fixture
def readings(tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text(CSV)
    return load_readings_csv(path)


def test_csv_is_parsed_into_exact_grams(readings):
    assert readings[0] == Reading("stack-1", 1735689600, "CO2", 12_345_678)
    assert readings[1].gas == "CO2" and readings[1].grams == 12_500_000
    assert readings[3].tonnes == Decimal("0.000001")
    commitment = ReadingsCommitment.of(readings)
    assert commitment.total_grams_by_gas == {"CO2": 24_845_678, "CH4": 120, "N2O": 1}


def test_every_bad_line_is_reported_and_nothing_is_returned(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("sensor,time,gas,quantity_t\n"
                    "s,2025-01-01T00:00:00Z,CO2,1.0000001\n"    # 7 decimals: no silent rounding
                    "s,yesterday,CO2,1\n"
                    "s,2025-01-01T00:00:00Z,CO2,-1\n"
                    ",2025-01-01T00:00:00Z,CO2,1\n"
                    "s,2025-01-02T00:00:00Z,CO2,1\n"
                    "s,2025-01-02T00:00:00Z,CO2,2\n")             # duplicate of line 6
    with pytest.raises(InvalidInput) as caught:
        load_readings_csv(path)
    message = str(caught.value)
    assert "5 invalid" in message
    for line, words in [(2, "more than 6 decimals"), (3, "neither ISO 8601"), (4, "non-negative"),
                        (5, "missing sensor"), (7, "duplicate of line 6")]:
        assert f"line {line}: " in message and words in message


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("sensor,time,quantity\ns,1,2\n")
    with pytest.raises(InvalidInput, match="lacks gas, quantity_t"):
        load_readings_csv(path)


def test_inclusion_proofs_verify_only_the_committed_reading(readings):
    commitment = ReadingsCommitment.of(readings)
    for reading in readings:
        proof = commitment.prove(reading)
        assert verify_reading(commitment.root, reading, proof)
        # The same proof as OpenZeppelin's MerkleProof would see it.
        assert StandardMerkleTree.verify(commitment.root, LEAF_ENCODING, reading.leaf(), proof)
    forged = Reading(readings[0].sensor, readings[0].time, readings[0].gas, readings[0].grams - 1)
    assert not verify_reading(commitment.root, forged, commitment.prove(readings[0]))
    with pytest.raises(InvalidInput, match="not in this dataset"):
        commitment.prove(forged)


def test_the_root_does_not_depend_on_row_order(readings):
    assert ReadingsCommitment.of(readings).root == ReadingsCommitment.of(list(reversed(readings))).root


def test_two_versions_are_compared_reading_by_reading(readings):
    corrected = [r if r.gas != "CH4" else Reading(r.sensor, r.time, r.gas, 150) for r in readings[:-1]]
    extra = Reading("stack-3", 1735693200, "CO2", 1_000_000)
    corrected.append(extra)
    old, new = ReadingsCommitment.of(readings), ReadingsCommitment.of(corrected)
    assert old.root != new.root
    changes = diff_readings(readings, corrected)
    assert changes.added == (extra,)
    assert changes.removed == (readings[-1],)
    assert changes.changed == ((readings[2], Reading("stack-1", 1735689600, "CH4", 150)),)
    same = diff_readings(readings, list(reversed(readings)))
    assert same.identical and ReadingsCommitment.of(readings).root == ReadingsCommitment.of(readings[::-1]).root
