"""One exception tree for the SDK.

Every error the SDK raises derives from :class:`CarbonError`. Errors that resemble a builtin also derive
from it (``InvalidInput`` is a ``ValueError``), so callers may catch either.

Contract custom errors surface as classes named after the Solidity error, all subclasses of
:class:`ContractCustomError`, carrying the error's arguments by name::

    from carbon_sdk import errors
    try:
        client.registry.enrol(account, Role.INDIVIDUAL)
    except errors.RegistryAlreadyEnrolled as exc:
        print(exc.arguments["account"])

The classes are created from the ABIs the SDK loads (the deployment manifest or the compiled build), so
``errors.<Name>`` exists for every custom error in the system's contracts.
"""

from __future__ import annotations

import threading
from typing import Any

from eth_utils import function_signature_to_4byte_selector


class CarbonError(Exception):
    """Root of every error raised by carbon_sdk."""


class InvalidInput(CarbonError, ValueError):
    """An argument was rejected before anything was sent: nothing changed on chain."""


class ConfigurationError(CarbonError):
    """The SDK was set up wrongly: a missing manifest, a wrong chain, an unknown contract."""


class ChainMismatch(ConfigurationError):
    """The node answers for a different chain (or a reset chain) than the manifest describes."""


class ChainResetError(ChainMismatch):
    """The node now serves a different chain than this client saw before: its genesis block changed, or its
    latest block is below one the client already saw (the node restarted without its state, or lost blocks).
    Nothing more is sent to it; transactions the client saw mined may no longer exist."""

    def __init__(self, url: str, detail: str):
        self.url = url
        self.detail = detail
        super().__init__(
            f"the chain at {url} was reset ({detail}): transactions mined before may be gone, and nothing more was "
            "sent. Redeploy (or point the client at the node that holds the chain), then create a new client")


class RpcError(CarbonError):
    """The node (or the permissioning gateway) answered a JSON-RPC call with an error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None):
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data
        super().__init__(f"{method} failed ({code}): {message}")

    @property
    def revert_data(self) -> bytes | None:
        """The contract's revert data, when the node reported a revert (some nodes nest it one level)."""
        data = self.data.get("data") if isinstance(self.data, dict) else self.data
        if isinstance(data, str) and data.startswith("0x"):
            return bytes.fromhex(data[2:])
        return None


class PermissionDenied(RpcError):
    """The permissioning gateway refused the request (not an active member, or a node-control method)."""


class NodeUnavailable(CarbonError, ConnectionError):
    """The node could not be reached after the configured retries."""


class NodeUnreachable(NodeUnavailable):
    """The node (or the gateway in front of it) did not answer within the retry policy's attempts or deadline.

    Nothing is known to have been lost: a transaction sent before the outage is either mined or will be
    re-sent as the same signed bytes by the next call of the same sender."""

    def __init__(self, url: str, attempts: int, elapsed: float, last: object):
        self.url = url
        self.attempts = attempts
        self.elapsed = elapsed
        super().__init__(
            f"the node at {url} did not answer for {elapsed:.1f} s ({attempts} attempts; last: {last}): check that "
            "the node and its gateway run and are reachable, or allow longer outages with "
            "RetryPolicy(attempts=..., deadline=...)")


class TransactionError(CarbonError):
    """A transaction could not be sent, or was not mined as expected."""


class TransactionTimeout(TransactionError, TimeoutError):
    """A sent transaction was not mined within the timeout. It may still be mined later."""

    def __init__(self, tx_hash: str, timeout: float):
        self.tx_hash = tx_hash
        super().__init__(f"transaction {tx_hash} was not mined within {timeout:.0f} s")


class TransactionDropped(TransactionError):
    """A sent transaction vanished from the node (dropped from its pool, or lost in a node restart) and was not
    re-sent, because the sender was configured not to (``resend_dropped=False``) or a re-send was refused.
    The nonce it used is free again: nothing of the call happened."""

    def __init__(self, tx_hash: str, nonce: int, reason: str):
        self.tx_hash = tx_hash
        self.nonce = nonce
        super().__init__(
            f"transaction {tx_hash} (nonce {nonce}) {reason}: the call did not happen. Send it again (a new call "
            "takes the next free nonce), or let the sender re-send dropped transactions (resend_dropped=True)")


class TransactionReorganised(TransactionDropped):
    """A transaction that had been mined was removed by a chain reorganisation before it had the configured
    number of confirmations, and was not re-sent."""


class TransactionReverted(TransactionError):
    """A transaction reverted without a custom error the SDK could decode."""

    def __init__(self, message: str, tx_hash: str | None = None, data: bytes | None = None):
        self.tx_hash = tx_hash
        self.data = data
        super().__init__(message)


class ContractCustomError(TransactionReverted):
    """A contract rejected the call with a Solidity custom error.

    ``name`` is the Solidity error's name, ``arguments`` its arguments by name (in declaration order),
    ``tx_hash`` the mined transaction when the revert happened on chain (``None`` when the SDK caught it
    while estimating gas, before sending anything).
    """

    name: str = "ContractCustomError"
    signature: str = ""
    input_names: tuple[str, ...] = ()

    def __init__(self, arguments: dict[str, Any], tx_hash: str | None = None, data: bytes | None = None):
        self.arguments = arguments
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in arguments.items())
        super().__init__(f"{self.name}({rendered})", tx_hash=tx_hash, data=data)

    def __getattr__(self, item: str) -> Any:
        # Lets callers write exc.account as well as exc.arguments["account"].
        arguments = self.__dict__.get("arguments", {})
        if item in arguments:
            return arguments[item]
        raise AttributeError(item)


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


_lock = threading.Lock()
_classes: dict[str, type[ContractCustomError]] = {}
# selector -> (class, abi input types, abi inputs)
_by_selector: dict[bytes, tuple[type[ContractCustomError], list[str], list[dict[str, Any]]]] = {}


def register_abi(abi: list[dict[str, Any]]) -> None:
    """Create (once) the exception class of every custom error in ``abi``."""
    from carbon_sdk.abi import canonical  # abi imports this module

    with _lock:
        for item in abi:
            if item.get("type") != "error":
                continue
            name = item["name"]
            types = [canonical(i) for i in item.get("inputs", [])]
            signature = f"{name}({','.join(types)})"
            selector = function_signature_to_4byte_selector(signature)
            if selector in _by_selector:
                continue
            cls = _classes.get(name)
            if cls is None:
                names = tuple(i.get("name") or f"arg{n}" for n, i in enumerate(item.get("inputs", [])))
                cls = type(
                    name,
                    (ContractCustomError,),
                    {"name": name, "signature": signature, "input_names": names, "__module__": __name__},
                )
                _classes[name] = cls
            _by_selector[selector] = (cls, types, list(item.get("inputs", [])))


def decode_revert(data: bytes, tx_hash: str | None = None) -> TransactionReverted:
    """Turn revert data into the matching typed exception (never raises)."""
    from eth_abi import decode

    if len(data) >= 4 and data[:4] in _by_selector:
        from carbon_sdk.abi import normalise

        cls, types, inputs = _by_selector[data[:4]]
        try:
            values = [normalise(v, i) for v, i in zip(decode(types, data[4:]), inputs)]
        except Exception:  # malformed payload: still report which error it was
            return cls({}, tx_hash=tx_hash, data=data)
        return cls(dict(zip(cls.input_names, values)), tx_hash=tx_hash, data=data)
    if data[:4] == bytes.fromhex("08c379a0"):  # Error(string), from code outside this project
        try:
            (reason,) = decode(["string"], data[4:])
            return TransactionReverted(f"reverted: {reason}", tx_hash=tx_hash, data=data)
        except Exception:
            pass
    if data[:4] == bytes.fromhex("4e487b71"):  # Panic(uint256)
        try:
            (code,) = decode(["uint256"], data[4:])
            return TransactionReverted(f"panic 0x{code:02x}", tx_hash=tx_hash, data=data)
        except Exception:
            pass
    shown = "0x" + data.hex() if data else "no data"
    return TransactionReverted(f"reverted ({shown})", tx_hash=tx_hash, data=data)


def contract_error(name: str, **arguments: Any) -> ContractCustomError:
    """The typed error the contract would raise, for checks the SDK makes before sending (same class, so
    callers catch one type whether the SDK or the chain refused)."""
    try:
        cls = _classes[name]
    except KeyError:
        raise ConfigurationError(f"no contract declares the error {name!r}") from None
    return cls(arguments)


def known_errors() -> dict[str, type[ContractCustomError]]:
    """All custom-error classes created so far, by Solidity name."""
    return dict(_classes)


def __getattr__(name: str) -> type[ContractCustomError]:
    # errors.RegistryAlreadyEnrolled etc., once an ABI declaring it has been loaded.
    try:
        return _classes[name]
    except KeyError:
        raise AttributeError(
            f"module 'carbon_sdk.errors' has no attribute {name!r}"
            " (contract errors exist once a manifest or build declaring them is loaded)"
        ) from None
