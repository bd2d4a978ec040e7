"""Static analysis on every CI run: slither (PyPI) over the forge build of contracts/.

slither's plain-solc mode needs ``solc --combined-json``, which the npm solcjs compiler lacks, so the
contracts are built by forge (foundry.toml, the solcjs wrapper as FOUNDRY_SOLC) into a private output
folder, and slither reads that build. Every high or medium finding must be triaged in
``slither.config.json`` (``triage``: check, where, reason); every low finding's check must be accepted there
and explained in docs/security.md. A triage entry that no longer matches anything fails too, so the list
never hides a finding it was not written for.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbon_sdk.toolchain import install_solc_wrapper, project_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "slither.config.json"
SECURITY_DOC = ROOT / "docs" / "security.md"
GATED = ("High", "Medium")


class SlitherFailed(RuntimeError):
    """slither (or the forge build it reads) did not produce a report."""


def _tool(name: str) -> str:
    found = project_tool(name)
    if found is None:
        raise SlitherFailed(f"{name} not found: run `make setup`")
    return found


@pytest.fixture(scope="module")
def triage() -> list[dict]:
    return json.loads(CONFIG.read_text())["triage"]


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> list[dict]:
    """slither's detector results (high, medium, low) for the system contracts."""
    if not (ROOT / "foundry.toml").exists():
        raise SlitherFailed("foundry.toml is missing: slither reads the forge build it describes")
    out = tmp_path_factory.mktemp("slither-forge-out")
    forge = _tool("forge")
    env = dict(
        os.environ,
        # slither (crytic-compile) runs forge by name, and fails without a word if it is not on PATH: as when
        # pytest runs outside the Makefile, which puts node_modules/.bin on PATH.
        PATH=os.pathsep.join([str(Path(forge).parent), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        FOUNDRY_SOLC=str(install_solc_wrapper()),
        # A private output and cache: never races the forge campaigns' build or the lead's out/.
        FOUNDRY_OUT=str(out),
        FOUNDRY_CACHE_PATH=str(out / "cache"),
    )
    build = subprocess.run(
        [forge, "build", "--build-info", "--skip", "test", "--skip", "script"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    if build.returncode != 0:
        raise SlitherFailed(f"forge build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
    run = subprocess.run(
        [
            _tool("slither"), ".", "--config-file", str(CONFIG),
            "--compile-force-framework", "foundry", "--foundry-ignore-compile",
            "--foundry-out-directory", str(out), "--json", "-",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    # slither exits non-zero whenever it reports anything; the JSON says whether the analysis itself ran.
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError as exc:
        log = "\n".join(line for line in run.stderr.splitlines() if "unknown key" not in line)  # our triage key
        raise SlitherFailed(f"slither gave no JSON report ({exc}), exit {run.returncode}:\n{log[-3000:]}") from exc
    if not report.get("success"):
        raise SlitherFailed(f"slither failed: {report.get('error')}\n{run.stderr[-3000:]}")
    return report.get("results", {}).get("detectors", [])


def _matches(entry: dict, finding: dict) -> bool:
    if entry["check"] != finding["check"]:
        return False
    if "where" in entry:
        return entry["where"] in finding["description"]
    # A check-wide acceptance is allowed only for the severity it names (low findings).
    return entry.get("severity") == finding["impact"]


def _summary(finding: dict) -> str:
    return f"[{finding['impact']}] {finding['check']}: {finding['description'].strip().splitlines()[0]}"


def test_slither_analysed_the_system_contracts(findings):
    files = {
        element["source_mapping"]["filename_relative"]
        for finding in findings
        for element in finding["elements"]
        if element.get("source_mapping")
    }
    assert any(f.startswith("contracts/credits/") for f in files), files
    assert any(f.startswith("contracts/allowances/") for f in files), files
    # The config's filter keeps dependencies and test-only contracts out of the report.
    assert not [f for f in files if f.startswith(("node_modules/", "contracts/test/", "tests/"))]
    counts = collections.Counter(f["impact"] for f in findings)
    print(f"slither findings by severity: {dict(sorted(counts.items()))}")


def test_no_untriaged_high_or_medium_finding(findings, triage):
    untriaged = [
        _summary(f) for f in findings
        if f["impact"] in GATED and not any(_matches(e, f) and "where" in e for e in triage)
    ]
    assert not untriaged, "untriaged slither findings (fix them, or triage in slither.config.json):\n" + "\n".join(
        untriaged
    )


def test_every_low_finding_is_accepted_and_explained(findings, triage):
    lows = [f for f in findings if f["impact"] == "Low"]
    unaccepted = [_summary(f) for f in lows if not any(_matches(e, f) for e in triage)]
    assert not unaccepted, "low slither findings not accepted in slither.config.json:\n" + "\n".join(unaccepted)
    doc = SECURITY_DOC.read_text()
    unexplained = sorted({f["check"] for f in lows if f"`{f['check']}`" not in doc})
    assert not unexplained, f"accepted low findings not explained in docs/security.md: {unexplained}"


def test_every_triage_entry_has_a_reason_and_still_matches(findings, triage):
    for entry in triage:
        assert len(entry.get("reason", "").strip()) > 20, f"triage entry without a reason: {entry}"
        assert "where" in entry or entry.get("severity") == "Low", f"check-wide triage is for low findings only: {entry}"
    stale = [entry for entry in triage if not any(_matches(entry, f) for f in findings)]
    assert not stale, f"triage entries that match no finding any more (remove them): {stale}"
