"""Activity ingestion: every bad record named by its line and nothing ingested, CSV and JSON Lines alike, batch
totals on a small file computed by hand, and a 200,000-record synthetic week checked against a reference."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from credits_helpers import ALICE, BOB, CAROL, reference_totals, write_csv, write_jsonl

from carbon_sdk.activities import (
    ActivityFileError,
    ActivityRecord,
    batch_totals,
    load_activities,
    synthetic_accounts,
    write_synthetic_week,
)
from carbon_sdk.errors import InvalidInput
from carbon_sdk.methodology import Methodology

WEEK = ("2025-03-03T00:00:00Z", "2025-03-10T00:00:00Z")

# Alice lives in Shanghai (31), Bob in Guangdong (44). Hand-computed with methodology 1:
#   Alice  electricity 3.27 kWh x 561.7                     = 1836.759       emission
#          metro 12.5 km x (162.72 - 27.8 = 134.92)        = 1686.5         reduction
#          avoided_bag 2 x 25.1326605488                    =   50.2653210976 reduction
#          walking 1.5 km x 162.72                          =  244.08        reduction
#          bus 0.5 km x (162.72 - 103.85 = 58.87)          =   29.435        reduction
#     emissions 1836.759 -> rounded up 1837; reductions 2010.2803210976 -> rounded down 2010
#     (rounding each record down instead would give 1686 + 50 + 244 + 29 = 2009: the rule rounds once)
#   Bob    car 10 km x 162.72                               = 1627.2         emission
#          electricity 10 kWh x 386.9                       = 3869           emission
#          cycling 4.2 km x 162.72                          =  683.424       reduction
#          car 2.5 km x 162.72                              =  406.8         emission
#     emissions 5903.0 -> 5903; reductions 683.424 -> 683
#   batch: emissions 1837 + 5903 = 7740, reductions 2010 + 683 = 2693, 9 records
ROWS = [
    (ALICE, "electricity", "3.27", "kWh", 31, "2025-03-03T23:00:00Z"),
    (ALICE, "metro", "12.5", "km", 31, "2025-03-04T08:10:00Z"),
    (BOB, "car", "10", "km", 44, "2025-03-04T08:12:30Z"),
    (ALICE, "avoided_bag", "2", "item", 31, "2025-03-04T18:00:00+08:00"),
    (BOB, "electricity", "10", "kWh", 44, 1741132800),  # 2025-03-05T00:00:00Z in unix seconds
    (ALICE, "walking", "1.5", "km", 31, "2025-03-05T12:00:00Z"),
    (BOB, "cycling", "4.2", "km", 44, "2025-03-06T07:45:00Z"),
    (ALICE, "bus", "0.5", "km", 31, "2025-03-07T17:30:00Z"),
    (BOB, "car", "2.5", "km", 44, "2025-03-09T23:59:59Z"),
]


@pytest.fixture(scope="module")
def m() -> Methodology:
    return Methodology.default()


def test_totals_of_a_small_file_by_hand(m, tmp_path):
    totals = batch_totals(write_csv(tmp_path / "a.csv", ROWS), m, period=WEEK, known_accounts=[ALICE, BOB])
    assert (totals.methodology_version, totals.methodology_hash) == (1, m.content_hash)
    assert list(totals.accounts) == sorted([ALICE, BOB])
    assert (totals[ALICE].emissions, totals[ALICE].reductions, totals[ALICE].records) == (1837, 2010, 5)
    assert (totals[BOB].emissions, totals[BOB].reductions, totals[BOB].records) == (5903, 683, 4)
    assert (totals.emissions, totals.reductions, totals.records, len(totals)) == (7740, 2693, 9, 2)
    assert totals[ALICE.lower()] == totals[ALICE]
    with pytest.raises(KeyError):
        totals[CAROL]


def test_csv_and_jsonl_agree(m, tmp_path):
    csv_totals = batch_totals(write_csv(tmp_path / "a.csv", ROWS), m, period=WEEK)
    for numbers in (True, False):  # quantities and regions as JSON numbers, and as text
        path = write_jsonl(tmp_path / f"a{numbers}.jsonl", ROWS, numbers=numbers)
        assert batch_totals(path, m, period=WEEK) == csv_totals
        assert load_activities(path, m) == load_activities(tmp_path / "a.csv", m)
    records = load_activities(tmp_path / "a.csv", m)
    assert records[3] == ActivityRecord(ALICE, "avoided_bag", Decimal(2), "item", 31, 1741082400)  # 10:00 UTC
    assert records[4].time == 1741132800 and records[0].quantity == Decimal("3.27")
    assert batch_totals(records, m) == csv_totals  # records in memory, too
    assert batch_totals([dict(zip(("account", "activity", "quantity", "unit", "region", "time"), r)) for r in ROWS],
                        m) == csv_totals


def test_column_order_case_and_blanks_do_not_matter(m, tmp_path):
    reference = batch_totals(write_csv(tmp_path / "a.csv", ROWS), m)
    header = ("time", "Region", "note", "unit", "quantity", "activity", "account")
    messy = [(t, f" {r}", "n/a", u.upper(), q, f" {a.title()} ", acc.lower()) for acc, a, q, u, r, t in ROWS]
    assert batch_totals(write_csv(tmp_path / "b.csv", messy, header=header), m) == reference


def bad_file_problems(m, path, **kwargs) -> dict[int, str]:
    with pytest.raises(ActivityFileError) as caught:
        batch_totals(path, m, **kwargs)
    error = caught.value
    assert str(path) in str(error) and "nothing was ingested" in str(error)
    assert len(error.lines) == len(set(error.lines))  # one entry per bad line
    return dict(error.problems)


def test_every_bad_line_is_named_and_nothing_is_ingested(m, tmp_path):
    rows = [
        ROWS[0],                                                              # line 2: fine
        (ALICE, "taxi", "3", "km", 31, "2025-03-04T08:00:00Z"),               # 3
        (ALICE, "metro", "3", "kWh", 31, "2025-03-04T08:00:00Z"),             # 4
        (ALICE, "metro", "-3", "km", 31, "2025-03-04T08:00:00Z"),             # 5
        (ALICE, "metro", "three", "km", 31, "2025-03-04T08:00:00Z"),          # 6
        (CAROL, "metro", "3", "km", 31, "2025-03-04T08:00:00Z"),              # 7
        (ALICE, "metro", "3", "km", 12, "2025-03-04T08:00:00Z"),              # 8
        (ALICE, "metro", "3", "km", 31, "yesterday"),                         # 9
        (ALICE, "metro", "3.1234567", "km", 31, "2025-03-04T08:00:00Z"),      # 10
        (ALICE, "avoided_bag", "1.5", "item", 31, "2025-03-04T08:00:00Z"),    # 11
        (ALICE, "metro", "3", "km", 31),                                      # 12
        ("0x1234", "metro", "3", "km", 31, "2025-03-04T08:00:00Z"),           # 13
        (ALICE, "metro", "3", "km", 31, "2025-03-11T08:00:00Z"),              # 14
        (ALICE, "", "", "km", 31, "2025-03-04T08:00:00Z"),                    # 15
        (ALICE.lower().replace("b38", "B38"), "metro", "3", "km", 31, "2025-03-04T08:00:00Z"),  # 16
        ("0xBob", "bus", "-1", "mi", "x", "2025-02-30T08:00:00Z"),            # 17: everything at once
        ROWS[1],                                                              # 18: fine
    ]
    problems = bad_file_problems(m, write_csv(tmp_path / "bad.csv", rows), known_accounts=[ALICE, BOB], period=WEEK)
    assert sorted(problems) == list(range(3, 18))
    assert "unknown activity 'taxi'" in problems[3]
    assert "unit 'kWh' is not valid for metro (expected km)" in problems[4]
    assert "quantity '-3' is negative" in problems[5]
    assert "quantity 'three' is not a number" in problems[6]
    assert f"account {CAROL} is not a known account" in problems[7]
    assert "region '12' is not a region of methodology 1 (0, 11, 31, 44)" in problems[8]
    assert "time 'yesterday' is neither ISO 8601 nor unix seconds" in problems[9]
    assert "more than 6 decimal places" in problems[10]
    assert "must be a whole number of items" in problems[11]
    assert "has 5 fields, the header has 6" in problems[12]
    assert "account '0x1234' is not an address" in problems[13]
    assert "outside the batch period (2025-03-03T00:00:00Z to 2025-03-10T00:00:00Z)" in problems[14]
    assert "missing activity, quantity" in problems[15]
    assert "mixed case that is not its checksum" in problems[16]
    assert [part.split(" ")[0] for part in problems[17].split("; ")] == [
        "account", "unit", "quantity", "region", "time"]


def test_jsonl_errors_name_physical_lines(m, tmp_path):
    good = json.dumps(dict(zip(("account", "activity", "quantity", "unit", "region", "time"), ROWS[1])))
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([
        good,                                                                   # 1
        "",                                                                     # 2: blank lines are skipped
        '{"account": "%s", "activity": "metro"' % ALICE,                        # 3: cut short
        "[1, 2]",                                                               # 4
        good.replace('"12.5"', "12.5").replace('"metro"', '"bus"'),             # 5: fine, a number
        good.replace('"12.5"', "true"),                                         # 6
        good.replace('"12.5"', "null"),                                         # 7
        good + " trailing",                                                     # 8
        good.replace('"km"', '"kWh"'),                                          # 9
    ]) + "\n", encoding="utf-8")
    problems = bad_file_problems(m, path)
    assert sorted(problems) == [3, 4, 6, 7, 8, 9]
    assert problems[3].startswith("not a JSON object") and problems[4] == "not a JSON object but list"
    assert "quantity True must be given as text" in problems[6] and problems[7] == "missing quantity"
    assert problems[8].startswith("not a JSON object (Extra data")
    assert "unit 'kWh' is not valid for metro" in problems[9]


def test_the_message_is_capped_but_every_problem_is_kept(m, tmp_path):
    rows = [(ALICE, "metro", str(-i - 1), "km", 31, "2025-03-04T08:00:00Z") for i in range(60)]
    with pytest.raises(ActivityFileError) as caught:
        batch_totals(write_csv(tmp_path / "many.csv", rows + [ROWS[0]]), m)
    assert len(caught.value.problems) == 60 and caught.value.records == 61
    assert caught.value.lines == tuple(range(2, 62))
    message = str(caught.value)
    assert message.startswith("60 invalid activity record(s) of 61") and "... and 10 more (see .problems)" in message
    assert "line 51:" in message and "line 52:" not in message


def test_files_that_cannot_be_read(m, tmp_path):
    with pytest.raises(InvalidInput, match="the header lacks unit, region"):
        batch_totals(write_csv(tmp_path / "h.csv", [], header=("account", "activity", "quantity", "time")), m)
    with pytest.raises(InvalidInput, match="holds no activity records"):
        batch_totals(write_csv(tmp_path / "empty.csv", []), m)
    (tmp_path / "nothing.csv").write_text("")
    with pytest.raises(InvalidInput, match="holds no activity records"):
        batch_totals(tmp_path / "nothing.csv", m)
    with pytest.raises(InvalidInput, match="say format='csv' or 'jsonl'"):
        batch_totals(tmp_path / "a.txt", m)
    with pytest.raises(InvalidInput, match="cannot read"):
        batch_totals(tmp_path / "missing.csv", m)
    (tmp_path / "latin1.csv").write_bytes(b"account,activity,quantity,unit,region,time\n\xe9\n")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        batch_totals(tmp_path / "latin1.csv", m)
    with pytest.raises(InvalidInput, match="must end after it starts"):
        batch_totals(write_csv(tmp_path / "a.csv", ROWS), m, period=(WEEK[1], WEEK[0]))
    with pytest.raises(InvalidInput, match="known account '0x12' is not a valid address"):
        batch_totals(tmp_path / "a.csv", m, known_accounts=["0x12"])
    # An explicit format reads any name.
    write_csv(tmp_path / "a.data", ROWS)
    assert batch_totals(tmp_path / "a.data", m, format="csv").records == 9


# -- a synthetic week ------------------------------------------------------------------------------------------


def test_synthetic_week_is_deterministic_and_plausible(m, tmp_path):
    a = write_synthetic_week(tmp_path / "a.csv", 300, seed=3)
    b = write_synthetic_week(tmp_path / "b.csv", 300, seed=3)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes() and a.records == b.records
    assert a.accounts == tuple(synthetic_accounts(300, seed=3)) and 20 * 300 <= a.records <= 40 * 300
    assert set(a.profiles.values()) == {"green", "average", "high_carbon"}
    totals = batch_totals(a.path, m, period=a.period, known_accounts=a.accounts)
    by_profile: dict[str, list] = {}
    for account, t in totals.accounts.items():
        by_profile.setdefault(a.profiles[account], []).append(t)
    mean = {p: (sum(t.emissions for t in ts) / len(ts), sum(t.reductions for t in ts) / len(ts))
            for p, ts in by_profile.items()}
    # Low-carbon users emit less and reduce more than high-carbon users; the average user sits between.
    assert mean["green"][0] < mean["average"][0] < mean["high_carbon"][0]
    assert mean["green"][1] > mean["average"][1] > mean["high_carbon"][1]
    jsonl = write_synthetic_week(tmp_path / "a.jsonl", 300, seed=3)
    assert batch_totals(jsonl.path, m, period=a.period) == totals
    given = write_synthetic_week(tmp_path / "given.csv", [ALICE.lower(), BOB], seed=1)
    assert given.accounts == (ALICE, BOB) and set(batch_totals(given.path, m).accounts) == {ALICE, BOB}


def test_200k_synthetic_records_match_a_reference(m, tmp_path):
    week = write_synthetic_week(tmp_path / "week.csv", 8_000, seed=11)
    assert week.records >= 200_000
    totals = batch_totals(week.path, m, period=week.period, known_accounts=week.accounts)
    reference = reference_totals(week.path, m)
    assert {a: (t.emissions, t.reductions, t.records) for a, t in totals.accounts.items()} == reference
    assert totals.records == week.records == sum(n for _, _, n in reference.values())
    assert totals.emissions == sum(e for e, _, _ in reference.values())
    assert totals.reductions == sum(r for _, r, _ in reference.values())


def test_credit_entries_and_the_ceiling_from_totals_by_hand(tmp_path):
    """Quota 40 kg: surplus + reductions become credits, emissions above the quota a deficit (grams)."""
    from carbon_sdk.activities import AccountTotals, BatchTotals
    from carbon_sdk.credits import credit_entries, issuance_ceiling

    accounts = {ALICE: AccountTotals(ALICE, 16_600, 11_700, 9), BOB: AccountTotals(BOB, 102_000, 3_400, 20),
                CAROL: AccountTotals(CAROL, 40_000, 0, 3)}
    totals = BatchTotals(1, b"\x00" * 32, accounts, 158_600, 15_100, 32)
    assert credit_entries(totals, 40_000) == [(ALICE, 40_000 - 16_600 + 11_700, 0), (BOB, 3_400, 62_000),
                                              (CAROL, 0, 0)]
    assert issuance_ceiling(totals, 40_000) == 35_100 + 3_400
    per_account = {ALICE: 10_000, BOB: 110_000, CAROL: 50_000}
    assert credit_entries(totals, per_account) == [(ALICE, 11_700, 6_600), (BOB, 8_000 + 3_400, 0),
                                                   (CAROL, 10_000, 0)]
    with pytest.raises(InvalidInput, match="no quota given"):
        credit_entries(totals, {ALICE: 1})
    with pytest.raises(InvalidInput, match="non-negative integer"):
        credit_entries(totals, -1)
