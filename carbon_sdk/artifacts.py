"""Compiled contracts (ABI and bytecode) from ape's build output, for deploying.

``ape compile`` writes ``.build/__local__.json`` (an ethPM manifest). Inside ape, pass
``project.<Name>.contract_type`` objects instead; both give :class:`Artifact`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbon_sdk.errors import ConfigurationError

DEFAULT_BUILD = Path(".build") / "__local__.json"


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes


def _hex(value: str | None) -> bytes:
    value = value or "0x"
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def load_build(path: str | Path | None = None) -> dict[str, Artifact]:
    """Read every compiled contract from ape's build output."""
    path = Path(path) if path else _find_build()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"no compiled contracts at {path}: run `ape compile` (or `make compile`)") from None
    artifacts = {}
    for name, contract_type in data.get("contractTypes", {}).items():
        bytecode = (contract_type.get("deploymentBytecode") or {}).get("bytecode")
        artifacts[name] = Artifact(name=name, abi=contract_type.get("abi", []), bytecode=_hex(bytecode))
    return artifacts


def from_ape_contract_types(contract_types: dict[str, Any]) -> dict[str, Artifact]:
    """Artifacts from ape ``ContractType`` objects (inside ape scripts)."""
    out = {}
    for name, ct in contract_types.items():
        abi = [json.loads(item.model_dump_json(by_alias=True)) for item in ct.abi]
        bytecode = ct.deployment_bytecode.bytecode if ct.deployment_bytecode else None
        out[name] = Artifact(name=name, abi=abi, bytecode=_hex(bytecode))
    return out


def _find_build() -> Path:
    here = Path.cwd()
    for folder in (here, *here.parents, Path(__file__).resolve().parents[1]):
        candidate = folder / DEFAULT_BUILD
        if candidate.exists():
            return candidate
    return Path(__file__).resolve().parents[1] / DEFAULT_BUILD
