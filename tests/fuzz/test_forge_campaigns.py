"""Runs the forge invariant campaign (tests/forge/, profile `ci` of foundry.toml) and checks it really ran.

Forge compiles with the npm solcjs wrapper that `python -m carbon_sdk.toolchain` registers (`make setup`).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from carbon_sdk.toolchain import install_solc_wrapper, project_tool

ROOT = Path(__file__).resolve().parents[2]
MIN_CALLS = 10_000  # DESIGN 6: at least this many random operations per CI run
INVARIANT_LINE = re.compile(r"\[(PASS|FAIL)[^\]]*\]\s+(invariant_\w+)\(\) \(runs: (\d+), calls: (\d+), reverts: (\d+)\)")
SUITE_LINE = re.compile(r"^Ran \d+ tests? for \S+:(\w+)$", re.MULTILINE)
# Invariant contracts that must be in every CI run (a renamed or skipped suite must not go unnoticed).
REQUIRED_SUITES = {"SystemInvariants", "MrvInvariants", "CreditsInvariants"}


def _campaigns_by_suite(output: str) -> dict[str, list[tuple[str, str, str, str, str]]]:
    """Forge's invariant result lines grouped by the contract ("Ran N tests for path:Contract") printed above them."""
    suites: dict[str, list[tuple[str, str, str, str, str]]] = {}
    heads = list(SUITE_LINE.finditer(output))
    for k, head in enumerate(heads):
        end = heads[k + 1].start() if k + 1 < len(heads) else len(output)
        found = INVARIANT_LINE.findall(output, head.end(), end)
        if found:
            suites.setdefault(head.group(1), []).extend(found)
    return suites


@pytest.mark.timeout(600)  # compiling with solcjs takes ~40 s on 2 cores, the campaign ~10 s
def test_forge_invariant_campaign_passes_with_enough_calls() -> None:
    forge = project_tool("forge")
    # Not a skip: `make setup` installs forge from npm, so a missing forge is a broken set-up that must not
    # pass CI with no campaign run.
    assert forge is not None, "forge is not installed (run `make setup`: it comes from npm @foundry-rs/forge)"
    solc = install_solc_wrapper()  # the compiler forge uses (idempotent: what `make setup` registered)
    env = dict(os.environ, FOUNDRY_PROFILE="ci", FOUNDRY_SOLC=str(solc))
    result = subprocess.run([forge, "test"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"forge test failed:\n{output[-8000:]}"

    campaigns = INVARIANT_LINE.findall(output)
    assert campaigns, f"no invariant campaign in forge's output:\n{output[-4000:]}"
    suites = _campaigns_by_suite(output)
    assert sum(len(found) for found in suites.values()) == len(campaigns), "an invariant line outside any suite"
    missing = REQUIRED_SUITES - suites.keys()
    assert not missing, f"invariant suites missing from the CI run: {sorted(missing)} (ran: {sorted(suites)})"
    for suite, found in suites.items():
        suite_calls = sum(int(c) for *_, c, _ in found)
        suite_reverts = sum(int(r) for *_, r in found)
        assert suite_reverts <= suite_calls // 4, f"{suite}: {suite_reverts} of {suite_calls} handler calls reverted"
    failed = [name for status, name, *_ in campaigns if status != "PASS"]
    assert not failed, f"invariants broken: {failed}"
    calls = sum(int(c) for *_, c, _ in campaigns)
    reverts = sum(int(r) for *_, r in campaigns)
    assert calls >= MIN_CALLS, f"only {calls} handler calls in the CI campaign (want >= {MIN_CALLS})"
    # An honest handler: most calls must do something, or the invariants are checked on an idle system.
    assert reverts <= calls // 4, f"{reverts} of {calls} handler calls reverted (more than a quarter)"
