"""The demo: the policy sandbox's default scenario, run end to end on a fresh devnet that starts by itself.

    make demo        (or: python scripts/demo.py [--out FOLDER])

Three compliance periods of a declining cap for twelve enterprises and 2,000 individuals: allocation and the
regulator's auction sale, the call auction and continuous trading, reports, verification (one verifier
dishonest), audits, surrender and settlement, then the platform's personal credit batch, bulk claims and
desk trades at the seed paper's prices. Every step is a transaction through the SDK. It ends with the path
of the report (Markdown, HTML, plots, CSV) and a short summary. The same as ``carbon simulate default``.
For a guided walk through each feature by hand, see ``make tour`` (scripts/tour.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carbon_sdk.cli import main  # noqa: E402

if __name__ == "__main__":
    out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else str(ROOT / "demo-report")
    main(["simulate", "default", "--out", out], prog_name="carbon")
