"""Runs the forge invariant campaign (tests/forge/, profile `ci` of foundry.toml) and checks it really ran.

Forge compiles with the npm solcjs wrapper that `python -m carbon_sdk.toolchain` registers (`make setup`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MIN_CALLS = 10_000  # DESIGN 6: at least this many random operations per CI run
INVARIANT_LINE = re.compile(r"\[(PASS|FAIL)[^\]]*\]\s+(invariant_\w+)\(\) \(runs: (\d+), calls: (\d+), reverts: (\d+)\)")


def _solc_wrapper() -> Path:
    folder = Path(os.environ.get("SOLCX_BINARY_PATH", Path.home() / ".solcx"))
    return folder / "solc-v0.8.28"


def _forge() -> str | None:
    local = ROOT / "node_modules" / ".bin" / "forge"
    return str(local) if local.exists() else shutil.which("forge")


@pytest.mark.timeout(600)  # compiling with solcjs takes ~40 s on 2 cores, the campaign ~10 s
def test_forge_invariant_campaign_passes_with_enough_calls() -> None:
    forge = _forge()
    if forge is None:
        pytest.skip("forge is not installed (run `make setup`: it comes from npm @foundry-rs/forge)")
    solc = _solc_wrapper()
    assert solc.exists(), f"solc wrapper {solc} missing: run `python -m carbon_sdk.toolchain` (make setup)"
    env = dict(os.environ, FOUNDRY_PROFILE="ci", FOUNDRY_SOLC=str(solc))
    result = subprocess.run([forge, "test"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"forge test failed:\n{output[-8000:]}"

    campaigns = INVARIANT_LINE.findall(output)
    assert campaigns, f"no invariant campaign in forge's output:\n{output[-4000:]}"
    failed = [name for status, name, *_ in campaigns if status != "PASS"]
    assert not failed, f"invariants broken: {failed}"
    calls = sum(int(c) for *_, c, _ in campaigns)
    reverts = sum(int(r) for *_, r in campaigns)
    assert calls >= MIN_CALLS, f"only {calls} handler calls in the CI campaign (want >= {MIN_CALLS})"
    # An honest handler: most calls must do something, or the invariants are checked on an idle system.
    assert reverts <= calls // 4, f"{reverts} of {calls} handler calls reverted (more than a quarter)"
