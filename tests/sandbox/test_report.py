"""carbon_sdk.sandbox.report on small synthetic results folders (no chain).

The default run (sandbox_helpers.make_run) has hand-checked trades:
period 1: 100 t at 10.00 (auction), 20 t at 12.00, 10 t at 11.00 -> 130 t, VWAP 1,350 / 130 = 10.38;
period 2: 50 t at 20.00 (auction), 10 t at 21.50, 30 t at 19.00 -> 90 t, VWAP 1,785 / 90 = 19.83;
period 3: 40 t at 30.00 -> 40 t, VWAP 30.00.
Consumers emit 1,600 t a period without the market and 1,570 t with it (4,800 vs 4,710 t over the run).
The welfare rows follow the model (δ = 0.2, 0.4, 0.6; δ* = 0.5; p_ph = 4, 8, 12; p_c = 13, 21, 29).
"""

from __future__ import annotations

import html
import json

import pytest
from sandbox_helpers import COLUMNS, TRADES, make_run, md_table, patch, write_results

from carbon_sdk.errors import InvalidInput
from carbon_sdk.sandbox.report import (
    PLOTS,
    EnterpriseRow,
    PaperCheck,
    PeriodRow,
    Results,
    TradeRow,
    WelfareRow,
    load_results,
    paper_checks,
    summary_lines,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def trading(tmp_path):
    return write_results(tmp_path / "trading", make_run("trading"))


@pytest.fixture
def no_trading(tmp_path):
    return write_results(tmp_path / "no-trading", make_run("no_trading", personal_trading=False, price_scale=1.1))


def checks_by_id(checks: list[PaperCheck]) -> dict[str, PaperCheck]:
    """{"1a": check, ...}; a claim id repeated (one per run) keeps a list."""
    out: dict[str, list[PaperCheck]] = {}
    for check in checks:
        out.setdefault(check.claim.split(".")[0], []).append(check)
    return {key: value[0] if len(value) == 1 else value for key, value in out.items()}


# --- loading --------------------------------------------------------------------------------------------------


def test_load_results_gives_typed_rows(trading):
    results = load_results(trading)
    assert isinstance(results, Results)
    assert results.run.scenario == "trading"  # from the scenario dict, as the runner writes run.json
    assert (results.run.seed, results.run.periods, results.run.personal_trading) == (7, 3, True)
    assert results.run.config["policy"]["carbon_value"] == 60
    assert [type(r) for r in results.periods] == [PeriodRow] * 3
    assert isinstance(results.trades[0], TradeRow) and results.trades[0].price == 10.0
    assert isinstance(results.trades[0].block, int) and isinstance(results.trades[0].tonnes, float)
    firm = next(e for e in results.enterprises if e.period == 3 and e.enterprise == "C")
    assert isinstance(firm, EnterpriseRow)
    assert (firm.state, firm.verifier, firm.verifier_honest) == ("unreported", "", None)
    assert results.enterprises[0].verifier_honest is True  # "True" from Python's csv writer
    assert isinstance(results.welfare[0], WelfareRow) and results.welfare[0].p_ph == 4.0
    assert len(results.individuals) == 6 and len(results.coin) == 9


def test_run_json_with_the_name_as_a_string(tmp_path):
    run = make_run("named")
    run["run"]["scenario"] = "named"  # the name, and no scenario dict
    results = load_results(write_results(tmp_path / "r", run))
    assert results.run.scenario == "named" and results.run.config == {}


def test_missing_csv_is_named(tmp_path):
    folder = write_results(tmp_path / "r", make_run())
    (folder / "data" / "trades.csv").unlink()
    with pytest.raises(InvalidInput, match=r"data/trades\.csv: file missing"):
        load_results(folder)


def test_missing_run_json_is_named(tmp_path):
    folder = write_results(tmp_path / "r", make_run())
    (folder / "data" / "run.json").unlink()
    with pytest.raises(InvalidInput, match=r"data/run\.json"):
        load_results(folder)


def test_missing_run_json_key_is_named(tmp_path):
    run = make_run()
    del run["run"]["seed"]
    with pytest.raises(InvalidInput, match=r"data/run\.json: missing key 'seed'"):
        load_results(write_results(tmp_path / "r", run))


@pytest.mark.parametrize("table,column", [("trades", "price"), ("welfare", "delta_star"), ("periods", "gas"),
                                          ("individuals", "emissions_with_market_t"), ("coin", "debt_after")])
def test_missing_column_is_named(tmp_path, table, column):
    header = [c for c in COLUMNS[table] if c != column]
    folder = write_results(tmp_path / "r", make_run(), columns={table: header})
    with pytest.raises(InvalidInput, match=rf"data/{table}\.csv: missing column '{column}'"):
        load_results(folder)


def test_malformed_cell_names_file_line_and_column(tmp_path):
    run = make_run()
    run["trades"][1]["tonnes"] = "twenty"  # the second data row: line 3
    with pytest.raises(InvalidInput, match=r"data/trades\.csv line 3, column 'tonnes': 'twenty' is not a number"):
        load_results(write_results(tmp_path / "r", run))


def test_required_cell_may_not_be_empty(tmp_path):
    run = make_run()
    run["periods"][0]["cap_t"] = ""
    with pytest.raises(InvalidInput, match=r"data/periods\.csv line 2, column 'cap_t': empty"):
        load_results(write_results(tmp_path / "r", run))


def test_unknown_phase_and_unknown_period_are_refused(tmp_path):
    run = make_run()
    run["trades"][0]["phase"] = "dark_pool"
    with pytest.raises(InvalidInput, match=r"trades\.csv line 2, column 'phase': 'dark_pool' is not one of"):
        load_results(write_results(tmp_path / "a", run))
    run = make_run()
    run["coin"][0]["period"] = 9
    with pytest.raises(InvalidInput, match=r"data/coin\.csv, column 'period': period 9 is not in data/periods\.csv"):
        load_results(write_results(tmp_path / "b", run))


def test_missing_folder(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        load_results(tmp_path / "nowhere")


# --- the report -----------------------------------------------------------------------------------------------


def test_every_file_is_written_and_the_pngs_are_images(trading):
    path = write_report(trading)
    assert path == trading / "report.md"
    for name in ("report.md", "report.html", *PLOTS):
        assert (trading / name).is_file(), name
    for name in PLOTS:
        data = (trading / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 2000, name
    markdown = path.read_text(encoding="utf-8")
    page = (trading / "report.html").read_text(encoding="utf-8")
    for name in PLOTS:
        assert f"]({name})" in markdown
        assert f'<img src="{name}"' in page
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "<table>" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    for heading in ("Run summary", "Allowance market per period", "Emissions against the cap", "Compliance",
                    "Rewards and penalties", "Individuals' market", "Welfare", "Comparison with the seed paper"):
        assert f"## {heading}" in markdown
        assert f"<h2>{html.escape(heading)}" in page


def test_out_folder(trading, tmp_path):
    path = write_report(trading, out=tmp_path / "elsewhere" / "report")
    assert path == tmp_path / "elsewhere" / "report" / "report.md"
    assert (path.parent / "klines.png").is_file() and not (trading / "report.md").exists()


def test_market_table_matches_the_trades(trading):
    markdown = write_report(trading).read_text(encoding="utf-8")
    rows = {row["period"]: row for row in md_table(markdown, "Allowance market per period: volumes")}
    for period, trades in TRADES.items():
        volume = sum(t for _, _, t in trades)
        vwap = sum(p * t for _, p, t in trades) / volume
        row = rows[str(period)]
        assert row["volume (t)"] == f"{volume:,.0f}"
        assert row["VWAP"] == f"{vwap:.2f}"
        assert row["trades"] == str(len(trades))
        assert row["auction volume (t)"] == f"{sum(t for ph, _, t in trades if ph == 'auction'):,.0f}"
        assert row["high"] == f"{max(p for _, p, _ in trades):.2f}"
        assert row["low"] == f"{min(p for _, p, _ in trades):.2f}"
        assert row["close"] == f"{trades[-1][1]:.2f}"
    assert (rows["1"]["volume (t)"], rows["1"]["VWAP"]) == ("130", "10.38")  # by hand: 1,350 / 130
    assert (rows["2"]["volume (t)"], rows["2"]["VWAP"]) == ("90", "19.83")  # 1,785 / 90


def test_run_summary_and_per_period_tables(trading):
    markdown = write_report(trading).read_text(encoding="utf-8")
    summary = {row[""]: row["run"] for row in md_table(markdown, "## Run summary")}
    assert summary["scenario"] == "trading" and summary["seed"] == "7" and summary["periods"] == "3 of 3"
    assert summary["transactions"] == "600" and summary["gas"] == "6,000,000"
    assert summary["wall time (s)"] == "12.5" and summary["personal trading"] == "on"
    gas = {row["period"]: row for row in md_table(markdown, "Transactions and gas per period")}
    assert gas["2"]["transactions"] == "200" and gas["2"]["gas"] == "2,000,000"
    emissions = {row["period"]: row for row in md_table(markdown, "emissions against the cap (periods.csv)")}
    assert emissions["3"]["true (t)"] == "274" and emissions["3"]["verified (t)"] == "210"
    assert emissions["3"]["cap (t)"] == "270"


def test_compliance_coin_and_individuals_tables(trading):
    markdown = write_report(trading).read_text(encoding="utf-8")
    compliance = {row["period"]: row for row in md_table(markdown, "Enterprises by state")}
    assert [compliance["3"][k] for k in ("compliant", "shortfall", "unreported")] == ["1", "1", "1"]
    assert compliance["3"]["shortfall (t)"] == "84"  # B 20 t + C's unreported 64 t
    last = {row["enterprise"]: row for row in md_table(markdown, "Enterprises in the last period (period 3)")}
    assert last["B"]["state"] == "shortfall" and last["C"]["state"] == "unreported"
    assert last["C"]["verifier"] == "—"
    coin = {row["period"]: row for row in md_table(markdown, "coin.csv: rewards")}
    assert (coin["3"]["rewards"], coin["3"]["penalties"], coin["3"]["net"]) == ("5.00", "65.00", "-60.00")
    assert coin["3"]["debt at period end"] == "77.50"  # B 12.50 + 25.00, C 40.00
    people = {(r["period"], r["group"]): r for r in md_table(markdown, "individuals.csv by period and group")}
    assert people[("1", "all")]["emissions with market (t)"] == "1,570"
    assert people[("1", "all")]["without market (t)"] == "1,600"
    assert people[("1", "low_carbon")]["change"] == "-2.5 %"


def test_welfare_table(trading):
    markdown = write_report(trading).read_text(encoding="utf-8")
    welfare = {row["period"]: row for row in md_table(markdown, "welfare.csv: the platform's prices")}
    assert (welfare["2"]["p_ph"], welfare["2"]["p_c"], welfare["2"]["δ*"]) == ("8.00", "21.00", "0.5")
    # SW(0.4) = P·N·δ − κδ²/2 = 60·1000·0.4 − 120,000·0.16/2 = 14,400; SW(δ*) = 15,000
    assert (welfare["2"]["SW(δ)"], welfare["2"]["SW(δ*)"], welfare["2"]["SW / SW(δ*)"]) == \
        ("14,400.00", "15,000.00", "96.0 %")


def test_data_checks_flag_a_runner_summary_that_disagrees(tmp_path):
    run = make_run()
    patch(run, "periods", 1, vwap=99.0)
    markdown = write_report(write_results(tmp_path / "r", run)).read_text(encoding="utf-8")
    assert "P1: periods.csv vwap 99.00, trades.csv gives 10.38" in markdown


def test_a_run_without_trades_or_individuals_still_reports(tmp_path):
    run = make_run(periods=1, deltas=(0.3,))
    run["trades"], run["individuals"], run["coin"] = [], [], []
    path = write_report(write_results(tmp_path / "r", run))
    markdown = path.read_text(encoding="utf-8")
    assert "individuals.csv has no rows." in markdown
    assert all((path.parent / name).read_bytes().startswith(PNG_SIGNATURE) for name in PLOTS)


# --- comparison -----------------------------------------------------------------------------------------------


def test_comparison_report_shows_both_runs_side_by_side(trading, no_trading, tmp_path):
    path = write_report(trading, compare=no_trading, out=tmp_path / "cmp")
    markdown = path.read_text(encoding="utf-8")
    assert "# Policy sandbox: trading vs no_trading" in markdown
    summary = md_table(markdown, "## Run summary")
    assert list(summary[0]) == ["", "trading", "no_trading"]
    assert {r[""]: (r["trading"], r["no_trading"]) for r in summary}["personal trading"] == ("on", "off")
    market = {(r["period"], r["figure"]): r for r in md_table(markdown, "Allowance market per period: volumes")}
    # no_trading's prices are 1.1 times: 11, 13.2, 12.1 -> (1100 + 264 + 121) / 130 = 11.42
    assert (market[("1", "VWAP")]["trading"], market[("1", "VWAP")]["no_trading"]) == ("10.38", "11.42")
    assert market[("1", "VWAP")]["no_trading − trading"] == "+1.04"
    assert market[("1", "volume (t)")]["trading"] == market[("1", "volume (t)")]["no_trading"] == "130"
    differs = {r["figure"]: r for r in md_table(markdown, "## What differs")}
    row = differs["consumer emissions with the market (t)"]
    assert (row["trading"], row["no_trading"], row["difference"]) == ("4,710", "4,800", "+90")
    assert "## What differs" in markdown and "policy.personal_trading: true → false" in markdown
    assert "consumer emissions with the market (t): 4,710 (trading) vs 4,800 (no_trading)" in markdown
    people = {(r["period"], r["group"], r["figure"]): r for r in md_table(markdown, "individuals.csv by period")}
    assert people[("2", "all", "emissions with market (t)")]["no_trading"] == "1,600"
    for name in PLOTS:
        assert (tmp_path / "cmp" / name).read_bytes().startswith(PNG_SIGNATURE)
    page = (tmp_path / "cmp" / "report.html").read_text(encoding="utf-8")
    assert "trading" in page and "no_trading" in page and "What differs" in page


def test_comparison_of_runs_with_the_same_scenario_name(tmp_path):
    a = write_results(tmp_path / "seed1", make_run("default", seed=1))
    b = write_results(tmp_path / "seed2", make_run("default", seed=2))
    markdown = write_report(a, compare=b, out=tmp_path / "cmp").read_text(encoding="utf-8")
    assert list(md_table(markdown, "## Run summary")[0]) == ["", "default (seed1)", "default (seed2)"]
    assert "seed: 1 → 2" in markdown


# --- the seed paper's claims ----------------------------------------------------------------------------------


def test_paper_checks_agree_on_data_built_to_agree(trading):
    checks = checks_by_id(paper_checks(load_results(trading)))
    assert set(checks) == {"1a", "2a", "2b", "3a", "3b"}
    assert all(check.agrees is True for check in checks.values()), checks
    assert "4,710 t vs without 4,800 t" in checks["1a"].evidence
    assert "P1: Nδ 200 t → p_ph 4.00, p_c 13.00" in checks["2a"].evidence
    assert "3 of 3 periods within 0.01" in checks["2b"].evidence
    assert "2 of 2 like-for-like pairs" in checks["3b"].evidence


def test_consumer_claim_disagrees_when_the_market_raises_emissions(tmp_path):
    run = make_run(consumer_saving=(-5.0, 2.0))  # low-carbon users emit 5 t more, high-carbon 2 t less
    check = checks_by_id(paper_checks(load_results(write_results(tmp_path / "r", run))))["1a"]
    assert check.agrees is False
    assert "4,809 t vs without 4,800 t" in check.evidence


def test_consumer_claim_undecided_without_personal_trading(no_trading):
    check = checks_by_id(paper_checks(load_results(no_trading)))["1a"]
    assert check.agrees is None and "personal trading was off" in check.evidence


def test_consumer_claim_across_runs(trading, no_trading, tmp_path):
    on, off = load_results(trading), load_results(no_trading)
    across = checks_by_id(paper_checks(on, off))["1b"]
    assert across.agrees is True and "4,710 t vs without trading (no_trading) 4,800 t" in across.evidence
    assert checks_by_id(paper_checks(off, on))["1b"].agrees is True  # either order
    worse = write_results(tmp_path / "worse", make_run("worse", consumer_saving=(-30.0, -30.0)))
    assert checks_by_id(paper_checks(load_results(worse), off))["1b"].agrees is False
    both_on = checks_by_id(paper_checks(on, load_results(worse)))["1b"]
    assert both_on.agrees is None and "personal trading is on in both runs" in both_on.evidence


def test_price_order_breaks_are_reported(tmp_path):
    run = make_run()
    patch(run, "welfare", 3, p_ph=7.5, p_c=20.0)  # below period 2's 8.00 and 21.00 at a higher Nδ
    checks = checks_by_id(paper_checks(load_results(write_results(tmp_path / "r", run))))
    order = checks["2a"]
    assert order.agrees is False
    assert "p_ph falls from 8.00 (P2, Nδ 400 t) to 7.50 (P3, Nδ 600 t), by 0.50" in order.evidence
    assert "p_c falls from 21.00 (P2, Nδ 400 t) to 20.00 (P3, Nδ 600 t), by 1.00" in order.evidence
    assert checks["2b"].agrees is False and "P3" in checks["2b"].evidence


def test_price_within_one_settlement_unit_still_agrees(tmp_path):
    run = make_run()
    patch(run, "welfare", 2, p_ph=7.99, p_c=21.01)  # posted prices rounded down / up by one unit
    checks = checks_by_id(paper_checks(load_results(write_results(tmp_path / "r", run))))
    assert checks["2a"].agrees is True and checks["2b"].agrees is True


def test_closed_form_disagrees_when_the_price_is_off(tmp_path):
    run = make_run()
    patch(run, "welfare", 2, p_ph=9.0)  # δNe/(DW) = 0.4·1000·100/5000 = 8
    checks = checks_by_id(paper_checks(load_results(write_results(tmp_path / "r", run))))
    assert checks["2a"].agrees is True  # still rising: 4, 9, 12
    assert checks["2b"].agrees is False
    assert "2 of 3 periods within 0.01" in checks["2b"].evidence and "off by 1.0000" in checks["2b"].evidence


def test_closed_form_beyond_the_whole_surplus_is_compared_at_the_cap(tmp_path):
    run = make_run()
    # δN = 0.6·20,000 = 12,000 t > DW = 5,000 t: every low-carbon user sells, p_ph = e = 100, p_c = 2e + c = 205
    patch(run, "welfare", 3, N_t=20_000.0, p_ph=100.0, p_c=205.0)
    check = checks_by_id(paper_checks(load_results(write_results(tmp_path / "r", run))))["2b"]
    assert check.agrees is True
    assert "δN 12,000 t > DW 5,000 t: capped at DW" in check.evidence and "outside the paper's model" in check.evidence


def test_price_claims_undecided_with_one_period_or_no_market(tmp_path, no_trading):
    one = write_results(tmp_path / "one", make_run(periods=1, deltas=(0.3,)))
    checks = checks_by_id(paper_checks(load_results(one)))
    assert checks["2a"].agrees is None and "only one level of demand" in checks["2a"].evidence
    assert checks["2b"].agrees is True  # one period still has a closed form to match
    assert checks["3b"].agrees is None
    off = checks_by_id(paper_checks(load_results(no_trading)))
    assert off["2a"].agrees is None and "no period has platform prices" in off["2a"].evidence
    assert off["2b"].agrees is None and off["3a"].agrees is None


def test_proposition_2_disagrees_when_welfare_exceeds_the_optimum(tmp_path):
    run = make_run()
    patch(run, "welfare", 1, social_welfare=15_500.0)  # above SW(δ*) = 15,000
    check = checks_by_id(paper_checks(load_results(write_results(tmp_path / "r", run))))["3a"]
    assert check.agrees is False and "P1: δ 0.2, SW 15,500.00 > SW(δ* 0.5) 15,000.00" in check.evidence


def test_proposition_2_across_periods_disagrees_like_for_like(tmp_path):
    run = make_run()
    patch(run, "welfare", 2, social_welfare=9_000.0)  # δ = 0.4 is closer to δ* = 0.5 than 0.2, yet lower
    check = checks_by_id(paper_checks(load_results(write_results(tmp_path / "r", run))))["3b"]
    assert check.agrees is False
    assert "1 of 2 like-for-like pairs" in check.evidence and "SW 9,000.00 <" in check.evidence


def test_proposition_2_across_periods_is_only_indicative_when_parameters_differ(tmp_path):
    run = make_run(N=(1000.0, 1500.0, 2000.0))
    check = checks_by_id(paper_checks(load_results(write_results(tmp_path / "r", run))))["3b"]
    assert check.agrees is None
    assert "only indicative" in check.evidence and "N_t 1,000 vs 1,500" in check.evidence


def test_paper_section_in_the_report_says_where_it_agrees_and_not(tmp_path):
    run = make_run()
    patch(run, "welfare", 2, p_ph=9.0)
    markdown = write_report(write_results(tmp_path / "r", run)).read_text(encoding="utf-8")
    rows = md_table(markdown, "## Comparison with the seed paper")
    verdicts = {row["claim"].split(".")[0]: row["verdict"] for row in rows}
    assert verdicts == {"1a": "agrees", "2a": "agrees", "2b": "does not agree", "3a": "agrees", "3b": "agrees"}
    assert "agrees with the seed paper on 4, does not agree on 1" in markdown
    assert "It does not agree on: 2b." in markdown
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert '<td class="disagrees">does not agree</td>' in page


# --- summary --------------------------------------------------------------------------------------------------


def test_summary_lines(trading, no_trading):
    lines = summary_lines(load_results(trading))
    text = "\n".join(lines)
    assert 3 <= len(lines) <= 6
    assert "3 of 3 periods" in lines[0] and "600 transactions" in lines[0]
    assert "allowance price 10.00 to 30.00 per t" in text and "VWAP by period 10.38, 19.83, 30.00" in text
    assert "enterprise emissions 771 t (verified 707 t) against a cap of 840 t" in text
    assert "1 of 3 enterprises compliant, 1 short, 1 unreported" in text
    assert "consumer emissions 4,710 t with the individual market vs 4,800 t without (-1.9 %)" in text
    assert "personal trading off" in "\n".join(summary_lines(load_results(no_trading)))


def test_run_json_is_what_the_runner_writes(trading):
    """The helper writes run.json the way the runner's dict literal does: "scenario" ends up as the dict."""
    data = json.loads((trading / "data" / "run.json").read_text())
    assert isinstance(data["scenario"], dict) and data["scenario"]["name"] == "trading"
