"""Shared by the CLI test modules that run `carbon` in-process against a module's fresh deployment.

(Named ``cli_helpers`` rather than ``helpers``: test folders have no ``__init__.py``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from click.testing import CliRunner

from carbon_sdk.cli import main


def key_of(client: Any) -> str:
    return client.sender.signer._account.key.hex()


def cli_runner(market: Any, manifest_path: Path) -> Callable[..., str]:
    """``run(*args, key=client, ok=True)``: run the CLI, check its exit code, return its output."""
    runner = CliRunner()

    def run(*args: Any, key: Any = None, ok: bool = True) -> str:
        env = {"CARBON_MANIFEST": str(manifest_path), "CARBON_RPC_URL": market.url, "COLUMNS": "250",
               "CARBON_PRIVATE_KEY": key_of(key if key is not None else market.regulator)}
        result = runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        assert "Traceback" not in result.output
        return result.output

    return run
