"""The deployment manifest: where the system lives and how to talk to it.

Written by the deploy script (``deployments/<network>.json``), read by every SDK client. It holds the chain
id, the deployment block, and each contract's address and ABI, so an application needs nothing else from
the build (and no ape) at run time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from carbon_sdk.errors import ConfigurationError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ContractRecord:
    address: str
    abi: list[dict[str, Any]] = field(repr=False)
    block: int = 0
    tx_hash: str = ""


@dataclass(frozen=True)
class Manifest:
    network: str
    chain_id: int
    block: int  # the first block of the deployment: event scans start here
    genesis_hash: str  # hash of block 0, to recognise a chain that was reset
    deployer: str
    contracts: dict[str, ContractRecord]
    deployed_at: int = 0  # unix time
    format: int = FORMAT_VERSION
    # ABIs of contracts the system creates at run time (e.g. each period's VintageToken), by contract name.
    abis: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def contract(self, name: str) -> ContractRecord:
        try:
            return self.contracts[name]
        except KeyError:
            raise ConfigurationError(
                f"the deployment has no contract {name!r} (it has {', '.join(sorted(self.contracts)) or 'none'})"
            ) from None

    def abi(self, name: str) -> list[dict[str, Any]]:
        """The ABI of contract type ``name``: a deployed contract's, or one the system creates at run time."""
        if name in self.abis:
            return self.abis[name]
        return self.contract(name).abi

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        try:
            if data.get("format", FORMAT_VERSION) != FORMAT_VERSION:
                raise ConfigurationError(f"manifest format {data.get('format')} is not supported")
            contracts = {name: ContractRecord(**record) for name, record in data["contracts"].items()}
            return cls(**{**data, "contracts": contracts})
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"not a deployment manifest: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        path = Path(path)
        if not path.exists():
            raise ConfigurationError(f"deployment manifest {path} not found: run the deploy script first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid JSON: {exc}") from None
