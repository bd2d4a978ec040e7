"""Check 4 of carbon_sdk.sandbox.report: the desk's realised trades against the model, on hand-made results folders.

The default synthetic run (sandbox_helpers.make_run): N = 1,000 t, D = 10,000 low-carbon users with W = 0.5 t,
e = 100, c = 5, δ = 0.2, 0.4, 0.6. The model's equilibrium, by hand:

    p_ph = δNe/(DW) = 20δ        ->  4, 8, 12
    p_c  = 2·p_ph + c            -> 13, 21, 29
    D_all = δN                   -> 200, 400, 600 t
    π = (p_c − p_ph − c)·D_all   -> 4·200 = 800, 8·400 = 3,200, 12·600 = 7,200
    P_ph/e                       -> 4 %, 8 %, 12 % (400, 800, 1,200 of the 10,000 users)
    U = P_ph·D_all/2             -> 400, 1,600, 3,600

``desk`` overwrites a period's two individuals rows with desk trades; the rest of make_run stays as it is.
"""

from __future__ import annotations

import pytest
from sandbox_helpers import make_run, md_table, patch, write_results

from carbon_sdk.sandbox.report import (
    RealisedPeriod,
    load_results,
    paper_checks,
    realised_check,
    realised_vs_model,
    write_report,
)

USERS = 10_000  # low-carbon users: the model's D
DEBTORS = 1_000  # high-carbon users, all with a deficit
TOL_T = 2e-6 * (USERS + DEBTORS) + 1e-6  # 2 g per user and the CSV's last decimal: 0.022001 t


def desk(run: dict, period: int, *, sellers: int, sold: float, paid_out: float, owed: float, bought: float,
         paid_in: float, covered: float | None = None) -> None:
    """The period's desk: ``sellers`` of USERS low-carbon users sold ``sold`` t for ``paid_out``; DEBTORS debtors
    owed ``owed`` t, bought ``bought`` t for ``paid_in`` and covered ``covered`` (default: what they bought)."""
    covered = bought if covered is None else covered
    patch(run, "individuals", period, {"group": "low_carbon"}, users=USERS, participants=sellers, sold_t=sold,
          surplus_paid=paid_out, bought_t=0.0, covered_t=0.0, deficit_owed_t=0.0, outstanding_t=0.0,
          purchases_paid=0.0)
    patch(run, "individuals", period, {"group": "high_carbon"}, users=DEBTORS, participants=DEBTORS,
          deficit_owed_t=owed, bought_t=bought, covered_t=covered, outstanding_t=round(owed - covered, 6),
          sold_t=0.0, surplus_paid=0.0, purchases_paid=paid_in)


def agreeing_run(name: str = "agree") -> dict:
    """Desk trades as the model says, up to rounding: each seller paid a little less (payments rounded down),
    each debtor a little more (rounded up)."""
    run = make_run(name)
    desk(run, 1, sellers=400, sold=200.0, paid_out=799.98, owed=200.0, bought=200.0, paid_in=2_600.37)
    desk(run, 2, sellers=800, sold=400.0, paid_out=3_199.95, owed=400.0, bought=400.0, paid_in=8_400.41)
    desk(run, 3, sellers=1_200, sold=600.0, paid_out=7_199.90, owed=600.0, bought=600.0, paid_in=17_400.50)
    return run


def differing_run() -> dict:
    """P1 as the model says. P2: sellers sold 0.6 t each, not W = 0.5 t, so the platform bought back 480 t and
    resold 400 t (80 t left in stock). P3: only 1,100 users sold (11 % against 12 %: 3.1 standard deviations),
    550 t, and the debtors' 600 t came partly from P2's stock."""
    run = agreeing_run("differ")
    desk(run, 2, sellers=800, sold=480.0, paid_out=3_840.0, owed=400.0, bought=400.0, paid_in=8_400.0)
    desk(run, 3, sellers=1_100, sold=550.0, paid_out=6_600.0, owed=600.0, bought=600.0, paid_in=17_400.0)
    return run


def by_period(results) -> dict[int, RealisedPeriod]:
    compared, _ = realised_vs_model(results)
    return {r.period: r for r in compared}


# --- figures and verdicts ---------------------------------------------------------------------------------------


def test_desk_trades_that_follow_the_model_agree(tmp_path):
    results = load_results(write_results(tmp_path / "r", agreeing_run()))
    rows = by_period(results)
    assert sorted(rows) == [1, 2, 3]
    p1 = rows[1]
    assert (p1.buy_back, p1.sale, p1.d_all_t, p1.profit, p1.participation) == pytest.approx((4, 13, 200, 800, 0.04))
    # realised profit = paid by debtors − paid to sellers − c × tonnes bought back
    assert p1.realised_profit == pytest.approx(2_600.37 - 799.98 - 5 * 200)  # 800.39
    assert p1.payments_vs_posted == pytest.approx(0.39) and p1.unsold_stock == pytest.approx(0)
    assert p1.price_rounding == pytest.approx(0) and p1.resold_volume == pytest.approx(0)
    assert p1.tolerance_t == pytest.approx(TOL_T)
    # two units a tonne (posted spread), one per trade (1,400 payments), one cent, volumes at p_c + c
    assert p1.tolerance_profit == pytest.approx(0.01 * (2 * 200 + 400 + 1_000) + 0.01 + 2 * TOL_T * 18)
    assert p1.realised_participation == pytest.approx(0.04)
    assert all(r.agrees and not r.differences for r in rows.values())
    assert rows[3].realised_profit == pytest.approx(7_200.60)

    check = realised_check(results)
    assert check.agrees is True
    assert check.claim.startswith("4. The desk's realised profit, participation and volumes match")
    assert check.evidence.startswith("3 of 3 periods agree. P1 agrees: profit 800.39 vs π 800.00 (0.0 %)")
    assert "resold 200 t vs D_all 200 t (±0.022 t)" in check.evidence
    assert "participation 4.0 % vs P_ph/e 4.0 % (±0.6 percentage points" in check.evidence
    assert "profit 800.39 vs π 800.00 (±18.80)" in check.evidence
    assert "Users' surplus U is not compared: it needs each seller's θ" in check.evidence


def test_desk_trades_that_differ_say_where_and_why(tmp_path):
    results = load_results(write_results(tmp_path / "r", differing_run()))
    rows = by_period(results)
    assert rows[1].agrees

    p2 = rows[2]
    assert not p2.agrees and not p2.volumes_agree and not p2.profit_agrees and p2.participation_agrees
    assert p2.realised_profit == pytest.approx(8_400 - 3_840 - 5 * 480)  # 2,160 against π = 3,200
    assert p2.unsold_stock == pytest.approx(-(8 + 5) * 80)  # the whole difference: -1,040
    assert p2.realised_profit - p2.profit == pytest.approx(
        p2.payments_vs_posted + p2.price_rounding + p2.resold_volume + p2.unsold_stock)
    assert p2.mean_sale_t == pytest.approx(0.6)

    p3 = rows[3]
    assert p3.participation_agrees is False and p3.realised_participation == pytest.approx(0.11)
    assert p3.realised_profit == pytest.approx(17_400 - 6_600 - 5 * 550)  # 8,050 against π = 7,200
    assert p3.unsold_stock == pytest.approx(+(12 + 5) * 50)  # 50 t resold from earlier stock: +850

    check = realised_check(results)
    assert check.agrees is False
    text = check.evidence
    assert text.startswith("1 of 3 periods agree.")
    assert "P2 does not agree: profit 2,160.00 vs π 3,200.00 (-32.5 %)" in text
    assert ("bought back 480 t, +20.0 % on D_all: 8.0 % of D = 10,000 low-carbon users sold (P_ph/e 8.0 %, ×1), "
            "0.6 t each on average against W 0.5 t (×1.2)") in text
    assert "80 t bought back and not resold this period: stock costing 1,040.00 at the posted buy-back price + c" \
        in text
    assert "profit off by -1,040.00, beyond the ±27.15 rounding allows: unsold stock -1,040.00" in text
    assert "P3 does not agree: profit 8,050.00 vs π 7,200.00 (+11.8 %)" in text
    assert "11.0 % of low-carbon users sold against P_ph/e 12.0 %: 3.1 standard deviations" in text
    assert "the platform resold 50 t more than it bought back this period, from stock bought earlier" in text
    assert "resold 600 t vs D_all 600 t (±0.022 t)" in text  # what still agrees in P3
    assert "In P2 each seller sold more than W on average" in text  # P3's sellers sold W each


def test_stock_running_out_is_named(tmp_path):
    # one period, δ = 0.3: p_ph = 6, p_c = 17, D_all = 300 t, π = 6·300 = 1,800, P_ph/e = 6 %
    run = make_run("short", periods=1, deltas=(0.3,))
    desk(run, 1, sellers=600, sold=280.0, paid_out=1_680.0, owed=300.0, bought=280.0, paid_in=4_760.0)
    results = load_results(write_results(tmp_path / "r", run))
    p1 = by_period(results)[1]
    assert p1.realised_profit == pytest.approx(4_760 - 1_680 - 5 * 280)  # 1,680
    assert p1.resold_volume == pytest.approx(6 * 280 - 1_800)  # -120: 20 t fewer sold at a margin of 6
    check = realised_check(results)
    assert check.agrees is False
    assert "the platform's stock ran out: debtors owed 300 t and bought 280 t, leaving 20 t outstanding" \
        in check.evidence
    assert "owed on chain 300 t vs δN 300 t" in check.evidence


def test_posted_prices_are_rounded_down_and_up_to_a_settlement_unit(tmp_path):
    # N = 1,030.864 t: p_ph = N/250 = 4.123456 (posted 4.12, down), p_c = 13.246912 (posted 13.25, up),
    # D_all = 206.1728 t, π = 4.123456 × 206.1728
    run = make_run("rounded", periods=1, deltas=(0.2,), N=1_030.864)
    d_all = 206.1728
    desk(run, 1, sellers=412, sold=d_all, paid_out=848.23, owed=d_all, bought=d_all, paid_in=2_733.50)
    p1 = by_period(load_results(write_results(tmp_path / "r", run)))[1]
    assert (p1.buy_back, p1.sale) == (4.12, 13.25)
    assert p1.price_rounding == pytest.approx((13.25 - 4.12 - 9.123456) * d_all)  # +1.35: the wider posted spread
    assert p1.payments_vs_posted == pytest.approx((2_733.50 - 13.25 * d_all) - (848.23 - 4.12 * d_all))
    assert p1.profit == pytest.approx(4.123456 * d_all)
    assert p1.agrees, p1.differences


def test_payments_that_do_not_match_the_posted_prices_are_not_rounding(tmp_path):
    run = agreeing_run()
    patch(run, "individuals", 1, {"group": "high_carbon"}, purchases_paid=2_650.37)  # 50 more than 13 × 200
    check = realised_check(load_results(write_results(tmp_path / "r", run)))
    assert check.agrees is False
    assert "payments differ from the posted prices times the volumes by +50.39, more than one settlement unit " \
           "per trade (14.01): not rounding" in check.evidence


def test_undecided_without_personal_trading(tmp_path):
    results = load_results(write_results(tmp_path / "r", make_run("off", personal_trading=False)))
    check = realised_check(results)
    assert check.agrees is None
    assert "personal trading was off in this run: no desk trades to compare" in check.evidence
    assert realised_vs_model(results)[0] == []


def test_the_seed_paper_checks_are_unchanged(tmp_path):
    """Check 4 has its own table: paper_checks still returns the five claims of the seed paper."""
    checks = paper_checks(load_results(write_results(tmp_path / "r", differing_run())))
    assert [c.claim.split(".")[0] for c in checks] == ["1a", "2a", "2b", "3a", "3b"]
    assert "check 4 compares the desk's realised profit" in checks[3].evidence


# --- the report -------------------------------------------------------------------------------------------------


def test_report_has_the_tables_and_the_verdict(tmp_path):
    markdown = write_report(write_results(tmp_path / "r", differing_run())).read_text(encoding="utf-8")
    assert "### 4. Realised desk trades against the model" in markdown
    paper = md_table(markdown, "## Comparison with the seed paper")  # the seed paper's table is untouched
    assert [row["claim"].split(".")[0] for row in paper] == ["1a", "2a", "2b", "3a", "3b"]

    volumes = md_table(markdown, "*Volumes: the model buys D_all")
    assert volumes[1] == {"period": "P2", "D_all (t)": "400", "owed on chain (t)": "400", "bought back (t)": "480",
                          "bought back vs D_all": "+20.0 %", "resold (t)": "400", "resold vs D_all": "0.0 %",
                          "unsold (t)": "80", "covered (t)": "400", "tolerance (t)": "0.022"}
    sellers = md_table(markdown, "*Participation and the sellers' side")
    assert sellers[2]["sellers / users"] == "11.0 %" and sellers[2]["difference (points)"] == "-1.0"
    assert sellers[2]["tolerance (points)"] == "±1.0"
    assert sellers[1]["paid to sellers"] == "3,840.00" and sellers[1]["P_ph·D_all (= 2U)"] == "3,200.00"
    assert sellers[1]["U (model)"] == "1,600.00"
    profit = md_table(markdown, "*The platform's profit")
    assert [row["verdict"] for row in profit] == ["agrees", "does not agree", "does not agree"]
    assert profit[1]["realised profit"] == "2,160.00" and profit[1]["π (model)"] == "3,200.00"
    assert profit[1]["difference"] == "-1,040.00" and profit[1]["relative"] == "-32.5 %"
    assert profit[1]["c × bought back"] == "2,400.00"
    parts = md_table(markdown, "*What makes up the profit's difference")
    assert parts[2]["unsold stock"] == "+850.00" and parts[2]["realised profit − π"] == "+850.00"
    lines = markdown.splitlines()
    row = next(line for line in lines if line.startswith("| 4. The desk's realised profit"))
    assert "| does not agree |" in row and "1 of 3 periods agree" in row
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<h3>4. Realised desk trades against the model</h3>" in page
    assert page.count('<td class="disagrees">does not agree</td>') >= 3


def test_comparison_report_checks_each_run(tmp_path):
    a = write_results(tmp_path / "a", agreeing_run("agree"))
    b = write_results(tmp_path / "b", differing_run())
    markdown = write_report(a, compare=b, out=tmp_path / "both").read_text(encoding="utf-8")
    rows = [line for line in markdown.splitlines() if line.startswith("| 4. The desk's realised profit")]
    assert len(rows) == 2
    assert "(agree) | agrees |" in rows[0] and "(differ) | does not agree |" in rows[1]
    assert "*Volumes: the model buys D_all and sells all of it (differ)*" in markdown
