"""The files of one devnet folder: its secrets, its configuration and its logs.

A folder holds one chain::

    <folder>/devnet.json        ports, process ids, chain id and the registry address (see DevnetFolder)
    <folder>/bootstrap.key      the bootstrap admin's private key, created at first start (mode 0600)
    <folder>/operator.token     the gateway's operator token, new at every gateway start (mode 0600)
    <folder>/anvil-state.json   the chain as anvil loads it at start (the last complete dump)
    <folder>/anvil-dump.json    the chain as anvil dumps it, every second and on a graceful stop
    <folder>/logs/anvil.log, <folder>/logs/gateway.log

Both the node manager (``node.py``) and the gateway process write ``devnet.json``, so every change is a
locked read-modify-write followed by an atomic rename.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from carbon_sdk.errors import CarbonError

CONFIG_FILE = "devnet.json"
BOOTSTRAP_KEY_FILE = "bootstrap.key"
OPERATOR_TOKEN_FILE = "operator.token"
ANVIL_STATE_FILE = "anvil-state.json"
ANVIL_DUMP_FILE = "anvil-dump.json"
LOGS_FOLDER = "logs"


class DevnetError(CarbonError):
    """Root of the devnet's errors (a CarbonError like every SDK error): a devnet that cannot start, is not
    running, or a folder in a bad state."""


class DevnetFolder:
    """Paths and files of one devnet folder.

    >>> folder = DevnetFolder(Path(".devnet"))
    >>> folder.bootstrap_account(create=True).address  # doctest: +SKIP
    '0x...'
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"DevnetFolder({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def bootstrap_key_file(self) -> Path:
        return self.path / BOOTSTRAP_KEY_FILE

    @property
    def operator_token_file(self) -> Path:
        return self.path / OPERATOR_TOKEN_FILE

    @property
    def anvil_state_file(self) -> Path:
        return self.path / ANVIL_STATE_FILE

    @property
    def anvil_dump_file(self) -> Path:
        return self.path / ANVIL_DUMP_FILE

    def has_chain(self) -> bool:
        return self.anvil_state_file.exists() or self.anvil_dump_file.exists()

    def promote_anvil_dump(self) -> str | None:
        """Make anvil's last dump the state that it starts from, if that dump is complete.

        anvil rewrites its dump in place, so a crash in the middle of a write leaves it torn, and anvil
        refuses to start from a torn file. A torn dump is set aside and the chain restarts from the state of
        its previous start; the returned warning says so.
        """
        dump = self.anvil_dump_file
        if not dump.exists():
            return None
        try:
            with dump.open("rb") as file:
                json.load(file)
        except ValueError as error:
            torn = dump.with_name(f"anvil-dump.torn-{time.strftime('%Y%m%d-%H%M%S')}.json")
            os.replace(dump, torn)
            restart = (
                f"the chain restarts from {self.anvil_state_file.name}, its state at the previous start"
                if self.anvil_state_file.exists()
                else "a new chain starts"
            )
            return f"anvil's last dump of the chain is incomplete ({error}): kept as {torn}; {restart}"
        os.replace(dump, self.anvil_state_file)
        return None

    def log_file(self, name: str) -> Path:
        return self.path / LOGS_FOLDER / f"{name}.log"

    def create(self) -> None:
        """Create the folder (private to its owner when it is new) and its logs folder."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.path / LOGS_FOLDER).mkdir(exist_ok=True)

    # -- devnet.json ---------------------------------------------------------------------------------------

    def read_config(self) -> dict[str, Any]:
        """The folder's configuration, or {} for a folder that never held a devnet."""
        try:
            return json.loads(self.config_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as error:
            raise DevnetError(f"{self.config_file} is not valid JSON ({error}); fix or delete it") from error

    def update_config(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into devnet.json (one level deep for dict values) and return the result."""
        with self._locked(".devnet.json.lock"):
            config = self.read_config()
            for key, value in changes.items():
                if isinstance(value, dict) and isinstance(config.get(key), dict):
                    config[key] = {**config[key], **value}
                else:
                    config[key] = value
            temporary = self.config_file.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
            os.replace(temporary, self.config_file)
            return config

    @contextmanager
    def lifecycle_lock(self) -> Iterator[None]:
        """Held while a devnet starts or stops in this folder, so that two of them never overlap."""
        try:
            with self._locked(".lifecycle.lock", blocking=False):
                yield
        except BlockingIOError:
            raise DevnetError(f"another process is starting or stopping the devnet in {self.path}") from None

    @contextmanager
    def _locked(self, name: str, blocking: bool = True) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / name, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- secrets -------------------------------------------------------------------------------------------

    def bootstrap_account(self, create: bool = False) -> LocalAccount:
        """The bootstrap admin, from bootstrap.key; with ``create``, a fresh random key if there is none."""
        if create and not self.bootstrap_key_file.exists():
            try:
                _write_secret(self.bootstrap_key_file, Account.create().key.to_0x_hex(), replace=False)
            except FileExistsError:
                pass  # another process created it first: use theirs
        return Account.from_key(_read_secret(self.bootstrap_key_file))

    def new_operator_token(self) -> str:
        token = secrets.token_urlsafe(32)
        _write_secret(self.operator_token_file, token, replace=True)
        return token

    def operator_token(self) -> str:
        return _read_secret(self.operator_token_file)


def _write_secret(path: Path, text: str, replace: bool) -> None:
    """Write ``text`` to a new 0600 file, then move it into place (``replace=False`` never overwrites)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if another process created the file first
    finally:
        temporary.unlink(missing_ok=True)


def _read_secret(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DevnetError(f"{path} does not exist: has a devnet been started in {path.parent}?") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DevnetError(f"{path} is open to other users (mode {stat.filemode(mode)}): run chmod 600 on it")
    return path.read_text().strip()
