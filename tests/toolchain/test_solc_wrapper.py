"""The npm compiler registered with py-solc-x: what ape-solidity relies on."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import solcx

from carbon_sdk.toolchain import PROJECT_ROOT, install_solc_wrapper

SOLC_VERSION = json.loads((PROJECT_ROOT / "node_modules" / "solc" / "package.json").read_text())["version"]


def test_registration_is_idempotent_and_answers_version(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path))
    wrapper = install_solc_wrapper()
    assert "registered at" in capsys.readouterr().out
    before = wrapper.read_bytes(), wrapper.stat().st_mtime_ns
    install_solc_wrapper()
    assert "already registered" in capsys.readouterr().out
    assert (wrapper.read_bytes(), wrapper.stat().st_mtime_ns) == before
    version = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True, check=True).stdout
    assert f"Version: {SOLC_VERSION}+commit." in version
    assert str(solcx.get_installed_solc_versions(tmp_path)[0]) == SOLC_VERSION


def test_standard_json_output_larger_than_a_pipe_buffer(tmp_path, monkeypatch):
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path))
    wrapper = install_solc_wrapper()
    source = ('// SPDX-License-Identifier: MIT\npragma solidity ^0.8.20;\n'
              'import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";\n'
              'contract Tonne is ERC20 { constructor() ERC20("Tonne", "T") {} }\n')
    request = {
        "language": "Solidity",
        "sources": {"Tonne.sol": {"content": source}},
        "settings": {"outputSelection": {"*": {"*": ["abi", "evm.bytecode", "evm.deployedBytecode",
                                                     "evm.methodIdentifiers", "storageLayout"]}}},
    }
    output = solcx.compile_standard(request, solc_binary=wrapper, base_path=PROJECT_ROOT / "node_modules",
                                    allow_paths=[str(PROJECT_ROOT / "node_modules")])
    assert len(json.dumps(output)) > 64 * 1024  # past the size where a piped node output was cut
    tonne = output["contracts"]["Tonne.sol"]["Tonne"]
    assert tonne["evm"]["methodIdentifiers"]["transfer(address,uint256)"] == "a9059cbb"
    assert len(tonne["evm"]["bytecode"]["object"]) > 1000


def test_compile_errors_come_back_as_json(tmp_path, monkeypatch):
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path))
    wrapper = install_solc_wrapper()
    request = {"language": "Solidity", "sources": {"Bad.sol": {"content": "pragma solidity ^0.8.0; contract {"}},
               "settings": {"outputSelection": {"*": {"*": ["abi"]}}}}
    reply = subprocess.run([str(wrapper), "--standard-json"], input=json.dumps(request), capture_output=True,
                           text=True, env={**os.environ})
    errors = json.loads(reply.stdout)["errors"]
    assert errors[0]["type"] == "ParserError"


def test_build_has_the_system_contracts_from_ape_compile():
    build = json.loads(Path(PROJECT_ROOT / ".build" / "__local__.json").read_text())
    abi = build["contractTypes"]["ConsortiumRegistry"]["abi"]
    assert any(item.get("name") == "RegistryAlreadyEnrolled" for item in abi)
    assert build["contractTypes"]["ConsortiumRegistry"]["deploymentBytecode"]["bytecode"].startswith("0x60")
