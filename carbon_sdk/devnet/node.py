"""Start, attach to, inspect and stop a devnet: anvil behind the permissioning gateway.

Both run as detached background processes (their own session, output in ``<folder>/logs``), so a devnet
outlives the command that started it; ``devnet.json`` in the folder records their ports and process ids.

>>> with Devnet.start(Path("/tmp/chain"), port=None) as devnet:  # doctest: +SKIP
...     w3 = Web3(Web3.HTTPProvider(devnet.rpc_url))
...     admin = Account.from_key(devnet.bootstrap_key)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbon_sdk.devnet.folder import DevnetError, DevnetFolder

DEFAULT_FOLDER = Path(".devnet")
DEFAULT_PORT = 8545
DEFAULT_CHAIN_ID = 47001
BLOCK_GAS_LIMIT = 30_000_000
STATE_INTERVAL_SECONDS = 1
HISTORY_STATES = 256
THROWAWAY_HISTORY_STATES = 16  # Devnet.start(persist=False): enough for the SDK's replays of recent blocks
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds carbon_sdk/
_ANVIL_MARKER, _GATEWAY_MARKER = "anvil", "carbon_sdk.devnet.gateway"


Params = list[Any] | dict[str, Any] | None


class DevnetAlreadyRunning(DevnetError):
    """A devnet already runs in this folder."""


class DevnetNotRunning(DevnetError):
    """No devnet runs in this folder (or only part of one)."""


class PortInUse(DevnetError, OSError):
    """The port asked for is taken by another process."""


class AnvilNotFound(DevnetError, FileNotFoundError):
    """No anvil executable in any of the places searched."""


class DevnetRpcError(DevnetError):
    """A JSON-RPC error answer from the devnet."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (JSON-RPC error {code})")
        self.code, self.message, self.data = code, message, data


@dataclass(frozen=True)
class DevnetStatus:
    """A devnet's processes, ports and chain, as ``Devnet.status()`` found them."""

    folder: Path
    chain_id: int
    anvil_running: bool
    gateway_running: bool
    anvil_pid: int | None
    gateway_pid: int | None
    anvil_port: int
    port: int
    block_number: int | None  # None when anvil does not answer
    registry: str | None
    rpc_url: str

    @property
    def running(self) -> bool:
        return self.anvil_running and self.gateway_running


def find_anvil() -> str:
    """$CARBON_ANVIL, else node_modules/.bin/anvil in the current folder or the project, else anvil on PATH.

    npm's ``anvil`` is a node script that runs the native binary as its child; the binary is returned
    instead, so that signals reach anvil itself (a killed wrapper would leave anvil running).
    """
    if os.environ.get("CARBON_ANVIL"):
        path = Path(os.environ["CARBON_ANVIL"])
        if path.is_file() and os.access(path, os.X_OK):
            return _native(path)
        raise AnvilNotFound(f"CARBON_ANVIL={path} is not an executable file")
    searched = [Path.cwd() / "node_modules/.bin/anvil", PACKAGE_ROOT / "node_modules/.bin/anvil"]
    for path in searched:
        if path.is_file() and os.access(path, os.X_OK):
            return _native(path)
    on_path = shutil.which("anvil")
    if on_path:
        return _native(Path(on_path))
    places = ", ".join(str(path) for path in searched)
    raise AnvilNotFound(
        f"anvil not found: set CARBON_ANVIL, or install it with `npm ci` (looked in {places} and on PATH)"
    )


def _native(anvil: Path) -> str:
    """The native anvil behind npm's wrapper script (@foundry-rs/anvil/bin.mjs), or ``anvil`` itself."""
    script = anvil.resolve()
    if script.suffix != ".mjs":
        return str(anvil)
    system = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    packages = script.parent.parent  # node_modules/@foundry-rs
    for native in (packages / f"anvil-{system}-{arch}/bin/anvil", packages / "dist/anvil"):
        if native.is_file() and os.access(native, os.X_OK):
            return str(native)
    return str(anvil)


@contextmanager
def exit_on_sigterm() -> Any:
    """Inside, SIGTERM raises SystemExit, so ``finally`` blocks (and ``with Devnet.start(...)``) stop the
    devnet's processes; by default SIGTERM ends Python at once and leaves anvil and the gateway running. Only
    in the main thread (signals cannot be handled elsewhere); the previous handler is restored after."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def anvil_command(anvil: str, port: int, chain_id: int, chain: list[str], gas_limit: int = BLOCK_GAS_LIMIT,
                  automine: bool = True, history: int = HISTORY_STATES) -> list[str]:
    """anvil's command line; ``chain`` says where the chain comes from and where it goes. Without
    ``automine`` anvil mines only when asked: the gateway then mines once per request that sent transactions
    (see Devnet.start)."""
    return [
        anvil, "--host", HOST, "--port", str(port), "--chain-id", str(chain_id),
        # No dev accounts: keys from anvil's well-known mnemonic never exist on this chain.
        "--accounts", "0",
        "--gas-limit", str(gas_limit),
        *([] if automine else ["--no-mining"]),
        # Blocks take transactions first in, first out (gas is free, so fee order would be arbitrary): what a
        # batch sends in one order is mined in that order, e.g. orders' time priority on the exchange.
        "--order", "fifo",
        # Free gas. A base fee of 0 stays 0 (anvil treats it as a constant), so a transaction with zero
        # fees from an account with no ether is mined; the other two make eth_gasPrice suggest 0.
        "--base-fee", "0", "--gas-price", "0", "--disable-min-priority-fee",
        *chain,
        # Keep the state of the last HISTORY_STATES blocks only (for eth_call at a recent block). Otherwise
        # anvil writes each older block's state, ~80 kB, under ~/.foundry/anvil/tmp and never deletes it.
        "--prune-history", str(history),
        "--no-request-size-limit",  # the gateway bounds requests (5 MB); anvil's own limit is 2 MB
        "--color", "never",
    ]  # fmt: skip


class Devnet:
    """A running devnet: make one with ``Devnet.start`` or ``Devnet.attach``."""

    def __init__(self, folder: DevnetFolder) -> None:
        self._folder = folder
        self._config = folder.read_config()

    # -- life cycle ----------------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        folder: Path | str,
        port: int | None = DEFAULT_PORT,
        anvil_port: int | None = None,
        chain_id: int = DEFAULT_CHAIN_ID,
        persist: bool = True,
        gas_limit: int = BLOCK_GAS_LIMIT,
        mine_per_request: bool = False,
    ) -> Devnet:
        """Start anvil and the gateway for ``folder`` (``port=None``: free ports) and wait until both answer.

        The folder's first start creates its bootstrap admin key; later starts reuse it and reload the chain.
        ``persist=False`` makes a throwaway chain that is never written to the folder: anvil otherwise writes
        its whole state every second, which a chain of a hundred thousand members makes the bottleneck.

        ``mine_per_request``: anvil does not mine each transaction as it arrives; the gateway mines once
        after each request that sent transactions, so a batch of a hundred lands in one block. anvil rebuilds
        the state root over the whole state for every block (half a second at a hundred thousand members),
        so a large simulation needs few, full blocks; with ``gas_limit`` above 30M they can be fuller still.
        Transactions must then come through the gateway (``rpc_url``).
        """
        layout = DevnetFolder(folder)
        layout.create()
        with layout.lifecycle_lock():
            config = layout.read_config()
            running = _running(config)
            if running:
                raise DevnetAlreadyRunning(
                    f"a devnet is already running in {layout.path} ({running}): use it with "
                    f"Devnet.attach({str(layout.path)!r}), or stop it with "
                    f"Devnet.attach({str(layout.path)!r}, partial=True).stop()"
                )
            if config.get("chain_id", chain_id) != chain_id and layout.has_chain():
                raise DevnetError(
                    f"the chain in {layout.path} has chain id {config['chain_id']}, not {chain_id}: "
                    "start it with its own chain id, or use another folder"
                )
            anvil = find_anvil()
            admin = layout.bootstrap_account(create=True)
            port, anvil_port = _choose_ports(port, anvil_port)
            layout.update_config(
                chain_id=chain_id,
                bootstrap_address=admin.address,
                registry=config.get("registry"),
                rpc_url=f"http://{HOST}:{port}",
                anvil={"port": anvil_port, "pid": None},
                gateway={"port": port, "pid": None},
                persist=persist,
                gas_limit=gas_limit,
                mine_per_request=mine_per_request,
            )
            devnet = cls(layout)
            try:
                devnet._start_anvil(anvil)
                devnet._start_gateway()
            except BaseException:
                devnet._stop_processes()
                raise
            return devnet

    @classmethod
    def attach(cls, folder: Path | str, partial: bool = False) -> Devnet:
        """The devnet running in ``folder``. With ``partial``, also a devnet of which only one process, or
        none, still runs: to inspect it, or to stop what is left of it."""
        layout = DevnetFolder(folder)
        config = layout.read_config()
        if not config.get("gateway"):
            raise DevnetNotRunning(f"no devnet was ever started in {layout.path}")
        down = [name for name, marker in (("anvil", _ANVIL_MARKER), ("gateway", _GATEWAY_MARKER))
                if not _alive(config[name].get("pid"), marker)]  # fmt: skip
        if down and not partial:
            where = repr(str(layout.path))
            hint = f"Devnet.start({where})" if len(down) == 2 else f"Devnet.attach({where}, True).stop()"
            raise DevnetNotRunning(
                f"no devnet is running in {layout.path} ({' and '.join(down)} not running): try {hint}"
            )
        return cls(layout)

    def stop(self) -> None:
        """Stop the gateway, then anvil (gracefully, so that it dumps the chain), and wait for both."""
        with self._folder.lifecycle_lock():
            self._stop_processes()
            self._folder.operator_token_file.unlink(missing_ok=True)

    def kill_node(self) -> None:
        """Kill anvil abruptly (SIGKILL), as a crash would; the gateway keeps running and answers errors."""
        self._terminate("anvil", signal.SIGKILL)

    def restart_node(self) -> None:
        """Stop anvil if it runs, then start it again on the same port with the chain reloaded from disk."""
        with self._folder.lifecycle_lock():
            self._terminate("anvil", signal.SIGTERM)
            self._start_anvil(find_anvil())

    def stop_gateway(self) -> None:
        """Stop the gateway only (anvil keeps running): clients see the devnet unreachable, as in an outage."""
        with self._folder.lifecycle_lock():
            self._terminate("gateway", signal.SIGTERM)

    def start_gateway(self) -> None:
        """Start the gateway again on its port, after stop_gateway."""
        with self._folder.lifecycle_lock():
            self._start_gateway()

    def __enter__(self) -> Devnet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what it is ----------------------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        return self._folder.path

    @property
    def chain_id(self) -> int:
        return self._config["chain_id"]

    @property
    def port(self) -> int:
        return self._config["gateway"]["port"]

    @property
    def anvil_port(self) -> int:
        return self._config["anvil"]["port"]

    @property
    def rpc_url(self) -> str:
        """The public endpoint: the permissioning gateway."""
        return f"http://{HOST}:{self.port}"

    @property
    def anvil_url(self) -> str:
        """anvil itself, without permissioning: for the operator's tools only."""
        return f"http://{HOST}:{self.anvil_port}"

    @property
    def bootstrap_key(self) -> str:
        return self._folder.bootstrap_account().key.to_0x_hex()

    @property
    def bootstrap_address(self) -> str:
        return self._folder.bootstrap_account().address

    @property
    def operator_token(self) -> str:
        return self._folder.operator_token()

    @property
    def registry(self) -> str | None:
        return self._folder.read_config().get("registry")

    def set_registry(self, address: str | None) -> str | None:
        """Make the gateway check senders against the registry at ``address``; kept across restarts."""
        return self.rpc("carbon_setRegistry", [address], operator=True)

    def rpc(self, method: str, params: Params = None, operator: bool = False) -> Any:
        """One JSON-RPC call through the gateway (with the operator token if ``operator``); its result."""
        token = self.operator_token if operator else None
        return _rpc(self.rpc_url, method, params, token=token)

    def status(self) -> DevnetStatus:
        config = self._config = self._folder.read_config()
        anvil_running = _alive(config["anvil"].get("pid"), _ANVIL_MARKER)
        block_number = None
        if anvil_running:
            try:
                block_number = int(_rpc(self.anvil_url, "eth_blockNumber"), 16)
            except (OSError, DevnetError):
                pass
        return DevnetStatus(
            folder=self.folder,
            chain_id=self.chain_id,
            anvil_running=anvil_running,
            gateway_running=_alive(config["gateway"].get("pid"), _GATEWAY_MARKER),
            anvil_pid=config["anvil"].get("pid"),
            gateway_pid=config["gateway"].get("pid"),
            anvil_port=self.anvil_port,
            port=self.port,
            block_number=block_number,
            registry=config.get("registry"),
            rpc_url=self.rpc_url,
        )

    def __repr__(self) -> str:
        return f"<Devnet {self.folder} gateway {self.rpc_url} anvil {self.anvil_url} chain {self.chain_id}>"

    # -- processes -----------------------------------------------------------------------------------------

    def _start_anvil(self, anvil: str) -> None:
        if not _port_is_free(self.anvil_port):
            raise PortInUse(f"anvil's port {self.anvil_port} on {HOST} is taken by another process")
        warning = self._folder.promote_anvil_dump()
        if warning:
            log.warning(warning)
        # The chain is loaded from the folder (a new chain gets a genesis time of its own), and dumped to
        # the folder every interval and on SIGTERM or SIGINT. The dump goes to a file of its own, which
        # becomes the state to load once it is known to be complete.
        state, dump = self._folder.anvil_state_file, self._folder.anvil_dump_file
        origin = ["--load-state", str(state)] if state.exists() else ["--timestamp", str(_genesis_time())]
        chain = [*origin, "--dump-state", str(dump), "--state-interval", str(STATE_INTERVAL_SECONDS)] \
            if self._config.get("persist", True) else ["--timestamp", str(_genesis_time())]
        pid = self._spawn("anvil", anvil_command(anvil, self.anvil_port, self.chain_id, chain,
                                                 gas_limit=self._config.get("gas_limit", BLOCK_GAS_LIMIT),
                                                 automine=not self._config.get("mine_per_request", False),
                                                 # a throwaway chain keeps fewer past states: each is a copy
                                                 history=HISTORY_STATES if self._config.get("persist", True)
                                                 else THROWAWAY_HISTORY_STATES))

        def ready() -> bool:
            chain_id = _rpc(self.anvil_url, "eth_chainId", timeout=1)
            if int(chain_id, 16) != self.chain_id:
                raise DevnetError(f"anvil reports chain id {int(chain_id, 16)}, expected {self.chain_id}")
            return True

        self._wait_until_ready("anvil", pid, _ANVIL_MARKER, ready)

    def _start_gateway(self) -> None:
        if not _port_is_free(self.port):
            raise PortInUse(f"port {self.port} on {HOST} is taken by another process: pick another port")
        arguments = ["--folder", str(self.folder), "--port", str(self.port)]
        pid = self._spawn("gateway", [sys.executable, "-m", _GATEWAY_MARKER, *arguments])

        def ready() -> bool:
            info = _rpc(self.rpc_url, "carbon_gatewayInfo", timeout=1)
            return info["bootstrapAdmin"] == self.bootstrap_address

        self._wait_until_ready("gateway", pid, _GATEWAY_MARKER, ready)

    def _spawn(self, name: str, command: list[str]) -> int:
        log_file = self._folder.log_file(name)
        # The gateway imports this very carbon_sdk, wherever it is installed.
        python_path = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        with open(log_file, "ab") as output:
            output.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            output.flush()
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.folder, env={**os.environ, "PYTHONPATH": python_path},
            )  # fmt: skip
        _CHILDREN[process.pid] = process
        self._config = self._folder.update_config(**{name: {"pid": process.pid}})
        return process.pid

    def _wait_until_ready(self, name: str, pid: int, marker: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if ready():
                    return
            except (OSError, DevnetRpcError, KeyError, TypeError, ValueError):
                pass  # not listening yet
            if not _alive(pid, marker):
                raise DevnetError(f"{name} exited while starting; {self._log_tail(name)}")
            if time.monotonic() > deadline:
                waited = f"{START_TIMEOUT_SECONDS:.0f} s"
                raise DevnetError(f"{name} did not answer within {waited}; {self._log_tail(name)}")
            time.sleep(0.05)

    def _log_tail(self, name: str, lines: int = 15) -> str:
        log_file = self._folder.log_file(name)
        try:
            tail = log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"no log at {log_file}"
        return f"last lines of {log_file}:\n" + "\n".join(tail)

    def _stop_processes(self) -> None:
        self._terminate("gateway", signal.SIGTERM)
        self._terminate("anvil", signal.SIGTERM)

    def _terminate(self, name: str, signal_number: int) -> None:
        """Send ``signal_number`` to the process, wait until it exits (SIGKILL if slow), forget its pid."""
        marker = _ANVIL_MARKER if name == "anvil" else _GATEWAY_MARKER
        pid = self._folder.read_config().get(name, {}).get("pid")
        if _alive(pid, marker):
            os.kill(pid, signal_number)
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            while _alive(pid, marker) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(pid, marker):
                os.kill(pid, signal.SIGKILL)
                while _alive(pid, marker):
                    time.sleep(0.02)
        self._config = self._folder.update_config(**{name: {"pid": None}})


# -- helpers -------------------------------------------------------------------------------------------------

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # started by this process: reaped here, never zombies
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _alive(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is a live process whose command line holds ``marker`` (so a reused pid is not ours)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not ours
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc (macOS): trust the signal check
    # A zombie has exited (its parent has not reaped it yet); an exiting process has an empty command line.
    zombie = stat.rpartition(")")[2].split()[0] == "Z"
    return not zombie and marker in command_line


def _genesis_time() -> int:
    """A genesis time, in seconds, that no other chain made on this machine has.

    anvil's genesis block depends only on the chain's settings and on this time, and clients tell chains
    apart by the genesis block's hash: two chains made in the same second would look like one. A chain made
    in a second already taken gets the next free second (its clock then runs that much ahead).
    """
    with open(Path(tempfile.gettempdir()) / f"carbon-devnet-genesis-{os.getuid()}", "a+") as record:
        fcntl.flock(record, fcntl.LOCK_EX)
        record.seek(0)
        last = int(record.read().strip() or 0)
        chosen = max(int(time.time()), last + 1)
        record.seek(0)
        record.truncate()
        record.write(str(chosen))
    return chosen


def _running(config: dict[str, Any]) -> str:
    """A description of this folder's devnet processes that still run ('' if none)."""
    parts = []
    for name, marker in (("gateway", _GATEWAY_MARKER), ("anvil", _ANVIL_MARKER)):
        process = config.get(name, {})
        if _alive(process.get("pid"), marker):
            parts.append(f"{name} pid {process['pid']} on port {process.get('port')}")
    return ", ".join(parts)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is free
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _choose_ports(port: int | None, anvil_port: int | None) -> tuple[int, int]:
    """The ports asked for, checked free, with free ports picked for the ones left as None."""
    for asked, what in ((port, "the gateway's"), (anvil_port, "anvil's")):
        if asked is not None and not _port_is_free(asked):
            raise PortInUse(f"{what} port {asked} on {HOST} is taken by another process: pick another port")
    if port is not None and port == anvil_port:
        raise DevnetError(f"the gateway and anvil cannot share port {port}")
    with ExitStack() as held:  # each picked port stays bound until both are picked, so that they differ

        def pick() -> int:
            while True:
                probe = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                probe.bind((HOST, 0))
                if probe.getsockname()[1] not in (port, anvil_port):
                    return probe.getsockname()[1]

        return (pick() if port is None else port), (pick() if anvil_port is None else anvil_port)


def _rpc(url: str, method: str, params: Any = None, token: str | None = None, timeout: float = 30) -> Any:
    call = {"jsonrpc": "2.0", "id": 1, "method": method, "params": [] if params is None else params}
    body = json.dumps(call).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers)
    with _NO_PROXY.open(request, timeout=timeout) as response:
        answer = json.load(response)
    if "error" in answer:
        error = answer["error"]
        raise DevnetRpcError(method, error.get("code"), error.get("message"), error.get("data"))
    return answer.get("result")
