"""The market commands of `carbon` (period, allocate, offsets, report, audit, surrender, compliance, settle,
coin), run in-process against this module's fresh deployment (the `market` fixture), reached on anvil."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from carbon_sdk.allowances import ComplianceState, PeriodPhase
from carbon_sdk.cli import main
from carbon_sdk.units import tonnes


def key_of(client) -> str:
    return client.sender.signer._account.key.hex()


@pytest.fixture(scope="module")
def manifest_path(market, tmp_path_factory) -> Path:
    return market.manifest.save(tmp_path_factory.mktemp("cli-market") / "manifest.json")


@pytest.fixture
def carbon(market, manifest_path):
    """``carbon(*args, key=client, ok=True, code=None)``: run the CLI, check its exit code, return its output."""
    runner = CliRunner()

    def run(*args: str, key=None, ok: bool = True, code: int | None = None) -> str:
        env = {"CARBON_MANIFEST": str(manifest_path), "CARBON_RPC_URL": market.url, "COLUMNS": "200",
               "CARBON_PRIVATE_KEY": key_of(key if key is not None else market.regulator)}
        result = runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, result.output
        else:
            assert (result.exit_code == 0) == ok, result.output
        assert "Traceback" not in result.output
        return result.output

    return run


@pytest.fixture
def next_period(market):
    """The next free period id of this module's deployment (ids must increase)."""
    return lambda: max(market.regulator.allowances.contract.call("lastPeriod"), 2024) + 1


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


READINGS = """sensor,time,gas,quantity_t
stack-1,2025-01-01T00:00:00Z,CO2,50
stack-1,2025-01-01T01:00:00Z,CO2,40
stack-1,2025-01-01T01:00:00Z,CH4_fossil,0.5
"""  # 90 t CO2 + 0.5 t fossil methane x 29.8 = 104.9 t CO2e


def open_in_reconciliation(market, period: int, grants: dict[str, int]) -> None:
    """A period opened, allocated and advanced to reconciliation through the SDK (setup for later steps)."""
    now = market.now()
    market.regulator.allowances.open_period(period, cap=tonnes(10_000), trading_at=now + 1_000,
                                            reconciliation_at=now + 100_000, closes_at=now + 200_000)
    market.regulator.allowances.allocate(period, grants)
    market.to_phase(period, PeriodPhase.RECONCILIATION)


# ---------------------------------------------------------------- a whole period through the CLI


def test_a_whole_period_through_the_cli(carbon, market, next_period, tmp_path):
    period = next_period()
    out = carbon("period", "open", period, "--cap", "1000", "--trading-at", "+1000", "--reconciliation-at",
                 "+100000", "--closes-at", "+200000", "--offset-share-bps", "500", "--regional-cap", "11=100")
    assert f"period {period}" in out and "open" in out and "1,000.000000 t" in out and "region 11" in out
    assert "national reserve available" in out and "900.000000 t" in out

    steel, cement, glass = market.enterprise(), market.enterprise(), market.enterprise()
    verifier = market.verifier()
    grants = write(tmp_path / "grants.csv", f"address,tonnes\n{steel.address},120\n{cement.address},50.5\n"
                                            f"{glass.address},10\n")
    out = carbon("allocate", "free", period, "--csv", grants, "--batch-size", "2")
    assert "allocating" in out and "3/3" in out  # the progress bar's final state
    assert "allocated 180.500000 t to 3 enterprises" in out and "2 transactions" in out
    allowance = market.regulator.allowances.period(period).allowance
    assert market.regulator.allowances.balance(allowance, cement.address) == tonnes("50.5")
    out = carbon("allocate", "list", period)
    assert "3 allocations, 180.500000 t" in out and steel.address in out and "120.000000" in out
    out = carbon("period", "list")
    assert str(period) in out and "180.500000" in out

    out = carbon("period", "advance", period, "--to", "reconciliation")
    assert "open -> trading" in out and "trading -> reconciliation" in out

    readings = write(tmp_path / "readings.csv", READINGS)
    document = write(tmp_path / "report.pdf", "%PDF steel plant annual report 2025")
    out = carbon("report", "submit", period, "--readings", readings, "--document", document, key=steel)
    assert "submitted" in out and "104.900000 t" in out and "CH4_FOSSIL" in out and "3 readings committed" in out
    out = carbon("report", "endorse", period, steel.address, 1, "--quantity", "104.9", "--evidence",
                 "site visit 2026-02-03", key=verifier)
    assert "endorsed" in out and "verified 104.900000 t" in out

    out = carbon("audit", "run", period, steel.address, "--evidence", "desk review", key=None)
    assert "accurate" in out and "accurate_report" in out and "10.000000" in out  # the reward, in coin
    assert market.regulator.coin.balance(steel.address) == 10 * 10**6
    out = carbon("audit", "show", period, steel.address)
    assert "accurate" in out and "104.900000 t" in out

    # Offsets: one project, a vintage of this period (eligible) and a later one (not).
    out = carbon("offsets", "register", "Inner Mongolia Forest", "--kind", "forestry_sink")
    assert "Inner Mongolia Forest" in out and "forestry_sink" in out
    project = market.regulator.allowances.contract.call("offsetProjectCount")
    holdings = write(tmp_path / "offsets.csv", f"{steel.address},5\n")
    out = carbon("offsets", "issue", project, period, "--csv", holdings)
    assert "issuing" in out and f"issued 5.000000 t of project {project} vintage {period}" in out
    carbon("offsets", "issue", project, 9999, "--csv", holdings)
    assert "Inner Mongolia Forest" in carbon("offsets", "list")

    later = market.regulator.allowances.offset_token(project, 9999)
    before = (market.regulator.allowances.balance(later, steel.address),
              market.regulator.allowances.compliance(period, steel.address))
    out = carbon("surrender", period, f"offset:{project}:9999=1", key=steel, ok=False)
    assert "AllowancesIneligibleVintage" in out
    assert (market.regulator.allowances.balance(later, steel.address),
            market.regulator.allowances.compliance(period, steel.address)) == before

    out = carbon("surrender", period, f"allowance:{period}=100", f"offset:{project}:{period}=4.9", key=steel)
    assert "surrendered 104.900000 t" in out and "compliant" in out and "outstanding 0.000000 t" in out

    out = carbon("compliance", period, steel.address, cement.address)
    assert "compliant" in out and "not_verified" in out and "1 compliant, 1 not_verified" in out

    out = carbon("period", "advance", period)
    assert "reconciliation -> closed" in out
    out = carbon("settle", period, "--all")
    assert "settling" in out and steel.address in out and "compliant" in out
    assert "unreported 100.000000" in out  # the penalty of the enterprises that never reported
    statuses = market.regulator.allowances.compliance_table(period, [steel.address, cement.address, glass.address])
    assert [s.state for s in statuses] == [ComplianceState.COMPLIANT, ComplianceState.UNREPORTED,
                                          ComplianceState.UNREPORTED]
    assert all(s.settled for s in statuses)
    out = carbon("coin", "balance", cement.address)
    assert "debt 100.000000 coin" in out and "may not trade" in out

    out = carbon("settle", period, steel.address, ok=False)
    assert "AllowancesAlreadySettled" in out
    out = carbon("compliance", period, steel.address)
    assert "yes" in out  # settled


# ---------------------------------------------------------------- errors: one line, nothing changed


def test_audit_twice_is_refused_and_changes_nothing(carbon, market, next_period, tmp_path):
    period = next_period()
    enterprise, verifier = market.enterprise(), market.verifier()
    open_in_reconciliation(market, period, {enterprise.address: tonnes(10)})
    readings = write(tmp_path / "readings.csv", READINGS)
    document = write(tmp_path / "report.pdf", "report")
    carbon("report", "submit", period, "--readings", readings, "--document", document, key=enterprise)
    out = carbon("report", "submit", period, "--readings", readings, "--document", document, key=enterprise,
                 ok=False)
    assert "MrvReportExists" in out
    carbon("report", "endorse", period, enterprise.address, 1, "--quantity", "104.9", "--evidence", "visit",
           key=verifier)
    out = carbon("audit", "run", period, enterprise.address, "--evidence", "review", "--finding", "120")
    assert "misreported" in out and "misreport" in out and "false_verification" in out  # finding off by > 5 %
    before = (market.regulator.mrv.audit_record(period, enterprise.address),
              market.regulator.coin.debt(enterprise.address), market.regulator.coin.debt(verifier.address))
    out = carbon("audit", "run", period, enterprise.address, "--evidence", "again", ok=False)
    assert "MrvAlreadyAudited" in out and out.count("\n") == 1  # one clear line
    assert (market.regulator.mrv.audit_record(period, enterprise.address),
            market.regulator.coin.debt(enterprise.address), market.regulator.coin.debt(verifier.address)) == before


def test_contract_errors_per_group_exit_non_zero_and_change_nothing(carbon, market, next_period, tmp_path):
    period = next_period()
    out = carbon("period", "open", period, "--cap", "100", "--trading-at", "+1000", "--reconciliation-at",
                 "+2000", "--closes-at", "+3000")
    assert f"period {period}" in out
    out = carbon("period", "open", period, "--cap", "100", ok=False)  # ids must increase
    assert "AllowancesPeriodOrder" in out
    assert market.regulator.allowances.contract.call("lastPeriod") == period

    enterprise = market.enterprise()
    too_much = write(tmp_path / "too-much.csv", f"{enterprise.address},60\n{market.enterprise().address},41\n")
    out = carbon("allocate", "free", period, "--csv", too_much, ok=False)
    assert "AllowancesCapExceeded" in out and out.count("\n") == 1  # the progress bar is taken down
    out = carbon("allocate", "for-sale", period, "100.000001", ok=False)
    assert "AllowancesCapExceeded" in out
    assert market.regulator.allowances.period(period).allocated == 0

    out = carbon("offsets", "issue", 999, period, "--csv", too_much, ok=False)
    assert "AllowancesUnknownProject" in out

    document = write(tmp_path / "doc.txt", "doc")
    out = carbon("report", "submit", period, "--readings", write(tmp_path / "r.csv", READINGS), "--document",
                 document, key=enterprise, ok=False)
    assert "MrvWrongPhase" in out  # reports come in reconciliation
    assert market.regulator.mrv.report_count(period, enterprise.address) == 0

    out = carbon("surrender", period, f"allowance:{period}=1", key=enterprise, ok=False)
    assert "AllowancesWrongPhase" in out
    out = carbon("settle", period, enterprise.address, ok=False)
    assert "AllowancesWrongPhase" in out

    out = carbon("coin", "convert", "1", key=enterprise, ok=False)
    assert "CoinInsufficientBalance" in out
    carbon("coin", "apply", enterprise.address, "misreport", "--evidence", "inspection", "--audit-key", "insp-1")
    debt = market.regulator.coin.debt(enterprise.address)
    out = carbon("coin", "apply", enterprise.address, "misreport", "--evidence", "inspection", "--audit-key",
                 "insp-1", ok=False)
    assert "CoinRuleAlreadyApplied" in out
    assert market.regulator.coin.debt(enterprise.address) == debt == 20 * 10**6


# ---------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_a_message(carbon, market, next_period, tmp_path):
    out = carbon("period", "open", next_period(), "--cap", "1.1234567", code=2)
    assert "more than 6 decimals" in out and "--cap" in out
    out = carbon("allocate", "for-sale", 2025, "0.0000001", code=2)
    assert "more than 6 decimals" in out
    out = carbon("period", "open", next_period(), "--cap", "10", "--trading-at", "next tuesday", ok=False)
    assert "trading-at 'next tuesday' is neither ISO 8601" in out
    out = carbon("period", "open", next_period(), "--cap", "10", "--regional-cap", "north=5", ok=False)
    assert "REGION=TONNES" in out

    enterprise = market.enterprise()
    out = carbon("coin", "apply", enterprise.address, "littering", "--evidence", "x", "--audit-key", "k", ok=False)
    assert "unknown reason 'littering'" in out and "short_surrender" in out
    out = carbon("coin", "convert", "0.1234567", code=2)
    assert "more than 6 decimals" in out

    bad = write(tmp_path / "bad.csv", f"address,tonnes\n{enterprise.address},5\n0x1234,5\n"
                                      f"{enterprise.address},1.1234567\n{enterprise.address}\n")
    out = carbon("allocate", "free", 2025, "--csv", bad, ok=False)
    assert "3 invalid line(s)" in out and "line 3: address '0x1234' is not an Ethereum address" in out
    assert "line 4: amount '1.1234567' has more than 6 decimals" in out
    assert "line 5: expected 'address,tonnes'" in out

    readings = write(tmp_path / "readings.csv", READINGS + "stack-2,yesterday,CO2,1\n")
    out = carbon("report", "submit", 2025, "--readings", readings, "--document", readings, ok=False)
    assert "line 5: time 'yesterday' is neither ISO 8601 nor unix seconds" in out

    out = carbon("surrender", 2025, "allowance=5", ok=False)
    assert "allowance:PERIOD" in out
    out = carbon("surrender", 2025, "nothing", ok=False)
    assert "TOKEN=TONNES" in out
    out = carbon("settle", 2025, code=2)
    assert "--all" in out


# ---------------------------------------------------------------- readings tools


def test_gwp_prove_verify_and_diff(carbon, market, next_period, tmp_path):
    out = carbon("report", "gwp")
    assert "IPCC AR6 GWP100" in out and "CH4_fossil" in out and "29.8" in out and "25200" in out
    assert "Forster et al. 2021" in out  # the citation behind the hash on chain

    period = next_period()
    enterprise = market.enterprise()
    open_in_reconciliation(market, period, {enterprise.address: tonnes(1)})
    readings = write(tmp_path / "readings.csv", READINGS)
    carbon("report", "submit", period, "--readings", readings, "--document", readings, key=enterprise)

    proof = tmp_path / "proof.json"
    out = carbon("report", "prove", "--readings", readings, "--sensor", "stack-1", "--time",
                 "2025-01-01T01:00:00Z", "--gas", "ch4_fossil", "--output", proof)
    root = market.regulator.mrv.report(period, enterprise.address).readings_root.hex()
    steps = json.loads(proof.read_text())["proof"]
    assert f"root    0x{root}" in out and f"proof   {len(steps)} hashes" in out and all(h in out for h in steps)
    out = carbon("report", "verify-reading", period, enterprise.address, "--proof", proof)
    assert "verified" in out and f"0x{root}" in out
    out = carbon("report", "verify-reading", period, enterprise.address, "--readings", readings, "--sensor",
                 "stack-1", "--time", "1735693200", "--gas", "CO2")
    assert "verified" in out

    forged = json.loads(proof.read_text())
    forged["reading"]["grams"] += 1
    proof.write_text(json.dumps(forged))
    out = carbon("report", "verify-reading", period, enterprise.address, "--proof", proof, code=1)
    assert "not verified" in out
    out = carbon("report", "prove", "--readings", readings, "--sensor", "stack-9", "--time", "0", "--gas", "CO2",
                 ok=False)
    assert "no reading of sensor 'stack-9'" in out

    out = carbon("report", "versions", period, enterprise.address)
    assert "submitted" in out and "104.900000" in out
    out = carbon("report", "show", period, enterprise.address, "--version", "1")
    assert "104.900000 t" in out and f"0x{root}" in out

    changed = write(tmp_path / "v2.csv",
                    READINGS.replace(",40\n", ",41\n") + "stack-2,2025-01-01T00:00:00Z,CO2,3\n")
    out = carbon("report", "diff", readings, changed, code=1)
    assert "1 added, 0 removed, 1 changed" in out and "40.000000" in out and "41.000000" in out
    out = carbon("report", "diff", readings, readings)
    assert "identical" in out


# ---------------------------------------------------------------- coin


def test_coin_rules_apply_history_pool_convert_and_repay(carbon, market):
    out = carbon("coin", "rules")
    assert "short_surrender" in out and "penalty" in out and "10.000000" in out
    assert "1 coin = 10.00 DCNY" in out

    platform, good, bad = market.platform(), market.enterprise(), market.enterprise()
    regulator = market.regulator.address
    platform.settlement.issue(regulator, 300_000, fiat_reference="bank transfer 1")  # 3,000.00 DCNY

    out = carbon("coin", "fund-pool", "1000.00")
    assert "funded the pool with 1,000.00 DCNY" in out
    out = carbon("coin", "fund-pool", "1.001", ok=False)
    assert "more than 2 decimals" in out

    out = carbon("coin", "apply", good.address, "accurate-report", "--evidence", "audit", "--audit-key", "a-1")
    assert "accurate_report applied" in out and "10.000000" in out
    out = carbon("coin", "apply", bad.address, "6", "--evidence", "no report", "--audit-key", "u-1")
    assert "unreported" in out and "100.000000" in out
    out = carbon("coin", "apply", bad.address, "misreport", "--evidence", "x", "--audit-key", "m-1", "--quantity",
                 "2.5")
    assert "25.000000" in out  # 20 + 2 x 2.5

    out = carbon("coin", "history", bad.address)
    assert "2 rule applications" in out and "unreported" in out and "misreport" in out and good.address not in out
    out = carbon("coin", "balance", good.address)
    assert "balance 10.000000 coin, debt 0.000000 coin" in out

    out = carbon("coin", "convert", "4", key=good)
    assert "converted 4.000000 coin into 40.00 DCNY" in out
    assert market.regulator.coin.balance(good.address) == 6 * 10**6

    out = carbon("coin", "repay", bad.address, "50")
    assert "repaid 50.000000 coin" in out and "500.00 DCNY" in out and "debt left 75.000000 coin" in out
    out = carbon("coin", "repay", bad.address, "500", ok=False)
    assert "CoinDebtExceeded" in out
    assert market.regulator.coin.debt(bad.address) == 75 * 10**6


# ---------------------------------------------------------------- audit trail


def test_audit_trail_export_verify_and_tamper(carbon, market, next_period, tmp_path):
    period = next_period()
    enterprise, verifier = market.enterprise(), market.verifier()
    open_in_reconciliation(market, period, {enterprise.address: tonnes(200)})
    readings = write(tmp_path / "readings.csv", READINGS)
    carbon("report", "submit", period, "--readings", readings, "--document", readings, key=enterprise)
    carbon("report", "endorse", period, enterprise.address, 1, "--quantity", "104.9", "--evidence", "v",
           key=verifier)
    carbon("audit", "run", period, enterprise.address, "--evidence", "review")
    carbon("surrender", period, f"allowance:{period}=104.9", key=enterprise)

    trail_json, trail_csv = tmp_path / "trail.json", tmp_path / "trail.csv"
    out = carbon("audit", "export", period, "--json", trail_json, "--csv", trail_csv)
    assert "exporting" in out and f"audit trail of period {period}" in out
    assert "1 audit" in out and "1 report" in out and "1 surrender" in out and "1 reward" in out
    data = json.loads(trail_json.read_text())
    kinds = {r["kind"] for r in data["records"]}
    assert {"period", "allocation", "report", "endorsement", "audit", "surrender", "reward"} <= kinds
    assert trail_csv.read_text().splitlines()[0].startswith("kind,period,contract")
    assert len(trail_csv.read_text().splitlines()) == len(data["records"]) + 1

    out = carbon("audit", "verify", trail_json)
    assert "ok" in out and f"{len(data['records'])} records checked" in out

    endorsement = next(r for r in data["records"] if r["kind"] == "endorsement")
    endorsement["args"]["verifiedQuantity"] += 1  # the verifier's figure, edited after the fact
    data["records"] = [r for r in data["records"] if r["kind"] != "surrender"]  # and a surrender dropped
    trail_json.write_text(json.dumps(data))
    out = carbon("audit", "verify", trail_json, code=1)
    assert "does not match the chain" in out and "verifiedQuantity" in out and "missing from the file" in out

    trail_json.write_text("{not json")
    out = carbon("audit", "verify", trail_json, code=1)
    assert "not valid JSON" in out
