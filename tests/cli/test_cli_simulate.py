"""`carbon simulate`: a scenario file run end to end on a fresh devnet the command starts itself, its report
written, its summary printed; bad scenarios refused with the path of every problem."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from carbon_sdk.cli import main
from carbon_sdk.sandbox.scenario import load_scenario


def small_scenario(tmp_path: Path) -> Path:
    """The default scenario, cut down: 3 enterprises, 40 individuals, 1 period."""
    data = load_scenario("default").to_dict()
    data.update(name="cli-small", periods=1)
    data["enterprises"] = [dict(data["enterprises"][0], count=3)]
    data["individuals"]["count"] = 40
    data["policy"]["offset_ratio"] = 0.5
    data["market"]["continuous_orders"] = 3
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_simulate_runs_and_writes_its_report(tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["simulate", str(small_scenario(tmp_path)), "--out", str(out),
                                       "--set", "policy.pricing=uniform"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in ("report.md", "report.html", "klines.png", "data/periods.csv", "data/run.json"):
        assert (out / name).is_file(), name
    assert "scenario cli-small (seed 2025): 1 of 1 periods" in result.output
    assert f"report: {out / 'report.md'}" in result.output.replace("\n", "")
    import json

    run = json.loads((out / "data/run.json").read_text())
    assert run["config"]["policy"]["pricing"] == "uniform"  # --set changed the scenario that ran


def test_simulate_refuses_a_bad_scenario_naming_each_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(small_scenario(tmp_path).read_text())
    data["periods"] = 0
    data["policy"]["pricing"] = "best"
    bad.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["simulate", str(bad)])
    assert result.exit_code == 1
    assert "periods:" in result.output and "policy.pricing:" in result.output
    assert not (tmp_path / "sandbox-reports").exists()
    unknown = CliRunner().invoke(main, ["simulate", "default", "--set", "policy.offset_ratio"])
    assert unknown.exit_code == 1 and "PATH=VALUE" in unknown.output


def test_simulate_lists_the_shipped_scenarios():
    result = CliRunner().invoke(main, ["simulate", "--list"])
    assert result.exit_code == 0
    for name in ("default", "no-personal-trading", "delta-0.2", "delta-0.6", "large"):
        assert name in result.output
