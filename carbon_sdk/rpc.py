"""A small JSON-RPC client over HTTP with batching and bounded retries.

web3.py encodes and decodes; this client carries the requests, because the transaction path needs
JSON-RPC batches (hundreds of signed transactions in one HTTP request) and precise control over what is
retried. Every method retried here is idempotent: reads, and ``eth_sendRawTransaction`` of the *same*
signed bytes, which the chain can include at most once (same sender, same nonce).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from carbon_sdk.errors import NodeUnreachable, PermissionDenied, RpcError

# Error codes of the permissioning gateway that clients act on (carbon_sdk.devnet.gateway answers them).
SENDER_NOT_PERMITTED = -32001  # the transaction's signer is not an active consortium member
METHOD_FORBIDDEN = -32003  # a node-control method, without the operator token
LIMIT_EXCEEDED = -32005  # too many transactions waiting in the node's pool: resend later
PERMISSION_CODES = {SENDER_NOT_PERMITTED, METHOD_FORBIDDEN}
# The gateway answers this when the node behind it is down (restarting): as retryable as a refused connection.
NODE_DOWN = -32000
NODE_DOWN_MARKER = "is unreachable"


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying when the node cannot be reached (connection refused or reset, a timeout, an HTTP
    5xx, or the gateway saying its node is down): up to ``attempts`` tries, with delays doubling from
    ``first_delay`` to ``max_delay``, and (with ``deadline``) no new try once that many seconds have passed.
    Then :class:`NodeUnreachable`. The defaults ride out about 5 s of outage (a node restart)."""

    attempts: int = 8
    first_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float | None = None


class RpcClient:
    """Thread-safe JSON-RPC client (one keep-alive HTTP session per thread)."""

    def __init__(self, url: str, timeout: float = 30.0, retry: RetryPolicy | None = None,
                 headers: dict[str, str] | None = None):
        self.url = url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self._ids = itertools.count(1)
        self._local = threading.local()
        # How many requests needed a retry, ever: senders re-check which chain they talk to when it moves.
        self.faults = 0

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _post(self, payload: Any) -> Any:
        delay = self.retry.first_delay
        started = time.monotonic()
        last: Exception | str | None = None
        attempt = 0
        for attempt in range(1, self.retry.attempts + 1):
            try:
                response = self._session().post(self.url, json=payload, headers=self.headers,
                                                timeout=self.timeout)
                if response.status_code >= 500:
                    raise requests.ConnectionError(f"HTTP {response.status_code}")
                reply = response.json()
                down = _node_down(reply)
                if down is None:
                    return reply
                last = down
            except (requests.ConnectionError, requests.Timeout, ValueError) as exc:
                last = exc
                # A dropped connection can leave a broken pooled socket: start a fresh session.
                self._local.session = None
            self.faults += 1
            if attempt == self.retry.attempts:
                break
            if self.retry.deadline is not None and time.monotonic() - started + delay > self.retry.deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, self.retry.max_delay)
        raise NodeUnreachable(self.url, attempt, time.monotonic() - started, last)

    def _error(self, method: str, error: dict[str, Any]) -> RpcError:
        code = int(error.get("code", -32000))
        message = str(error.get("message", ""))
        data = error.get("data")
        # The gateway's refusals carry what they refused in `data`; the same codes from anvil itself mean other
        # things (-32003 is also anvil's "gas required exceeds allowance"), so the code alone does not tell.
        refused = isinstance(data, dict) and ("forbidden" in data or "sender" in data)
        cls = PermissionDenied if code in PERMISSION_CODES and refused else RpcError
        return cls(method, code, message, data)

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        """One request; raises :class:`RpcError` if the node answers with an error."""
        reply = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []})
        if not isinstance(reply, dict):
            raise RpcError(method, -32603, f"unexpected reply {reply!r}")
        if "error" in reply:
            raise self._error(method, reply["error"])
        return reply.get("result")

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Many requests in one HTTP round trip. Returns, in order, each result or its :class:`RpcError`."""
        if not calls:
            return []
        first = next(self._ids)
        ids = range(first, first + len(calls))
        # Reserve the ids we used so concurrent callers never share one.
        for _ in range(len(calls) - 1):
            next(self._ids)
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in zip(ids, calls)]
        reply = self._post(payload)
        if isinstance(reply, dict) and "error" in reply:  # the whole batch was refused
            error = self._error(calls[0][0], reply["error"])
            return [error] * len(calls)
        by_id = {item.get("id"): item for item in reply} if isinstance(reply, list) else {}
        results: list[Any] = []
        for i, (method, _) in zip(ids, calls):
            item = by_id.get(i)
            if item is None:
                results.append(RpcError(method, -32603, "no answer in batch reply"))
            elif "error" in item:
                results.append(self._error(method, item["error"]))
            else:
                results.append(item.get("result"))
        return results


def _node_down(reply: Any) -> str | None:
    """The gateway's "node is down" message if it answered that (to the request or to any item of a batch:
    resending the whole batch is safe, see the module docstring), else None."""
    items = reply if isinstance(reply, list) else [reply]
    for item in items:
        error = item.get("error") if isinstance(item, dict) else None
        if isinstance(error, dict) and error.get("code") == NODE_DOWN and NODE_DOWN_MARKER in str(error.get("message")):
            return str(error.get("message"))
    return None
