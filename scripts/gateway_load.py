"""Load test of the permissioning gateway: many concurrent clients sending a mix of good and bad requests.

    python scripts/gateway_load.py [--requests 20000] [--clients 50] [--members 8] [--seed 47001]

Starts a throwaway devnet, deploys the system, registers a few member organisations through the SDK, then
sends the mix below from ``--clients`` concurrent HTTP clients (asyncio + aiohttp, one keep-alive connection
each) and prints a table: answers by kind and outcome, p50/p99 latency, requests/s. Afterwards it checks on
the chain that nothing forbidden got through. tests/devnet/test_gateway_load.py runs the same functions.

The mix (weights out of 100):
- read: eth_blockNumber, eth_call (a member's isActive: must be 1), eth_getBalance (a stranger's: must be 0);
- member_tx: a zero-fee self-transfer signed by a registered member (accepted, or LIMIT_EXCEEDED and resent);
- stranger_tx: a transaction signed by a non-member (must be SENDER_NOT_PERMITTED);
- control: anvil_*/evm_*/debug_* and co. without (or with a wrong) operator token (must be METHOD_FORBIDDEN);
- malformed_json: bodies that are not JSON (must be PARSE_ERROR);
- invalid_request: JSON that is not a valid JSON-RPC request (INVALID_REQUEST, or INVALID_PARAMS for params);
- oversized_batch: MAX_BATCH_ITEMS + 1 requests in one batch (INVALID_REQUEST, "exceeds").
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
from eth_account import Account
from eth_utils import keccak

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carbon_sdk.devnet.gateway import (  # noqa: E402
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    MAX_BATCH_ITEMS,
    METHOD_FORBIDDEN,
    METHOD_NOT_FOUND,
    NODE_UNAVAILABLE,
    PARSE_ERROR,
    SENDER_NOT_PERMITTED,
)

MIX = {"read": 40, "member_tx": 10, "stranger_tx": 10, "control": 15, "malformed_json": 10,
       "invalid_request": 12, "oversized_batch": 3}  # fmt: skip
CODE_NAMES = {
    PARSE_ERROR: "PARSE_ERROR", INVALID_REQUEST: "INVALID_REQUEST", METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
    INVALID_PARAMS: "INVALID_PARAMS", INTERNAL_ERROR: "INTERNAL_ERROR", NODE_UNAVAILABLE: "NODE_UNAVAILABLE",
    METHOD_FORBIDDEN: "METHOD_FORBIDDEN", SENDER_NOT_PERMITTED: "SENDER_NOT_PERMITTED",
    LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
}  # fmt: skip
FAR_FUTURE = 4_102_444_800  # 2100-01-01: a forbidden clock change that slipped through would show
IS_ACTIVE = "0x" + keccak(text="isActive(address)")[:4].hex()
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)


class Target(
    NamedTuple
):  # NamedTuples, not dataclasses: ape's script loader imports this file outside sys.modules
    """The devnet under load and the accounts the mix uses."""

    rpc_url: str
    chain_id: int
    registry: str
    member_keys: list[str]  # active members' private keys (each sends its own nonce sequence)
    strangers: list[Any]  # eth_account accounts that are not members


class Outcome(NamedTuple):
    kind: str
    label: str  # "result", a JSON-RPC error name, "http 4xx", "transport: ...", "malformed answer: ..."
    expected: bool
    seconds: float


class LoadReport(NamedTuple):
    requests: int
    clients: int
    seconds: float
    outcomes: list[Outcome]
    member_sent: dict[str, int]  # member address -> transactions the gateway accepted

    @property
    def latencies(self) -> list[float]:
        return sorted(outcome.seconds for outcome in self.outcomes)

    def percentile(self, fraction: float) -> float:
        latencies = self.latencies
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))]

    @property
    def throughput(self) -> float:
        return len(self.outcomes) / self.seconds

    def counts(self) -> Counter:
        """(kind, label) -> count."""
        return Counter((outcome.kind, outcome.label) for outcome in self.outcomes)

    def unexpected(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.expected]

    def table(self) -> str:
        by_kind: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in self.outcomes:
            by_kind[outcome.kind].append(outcome)
        lines = [f"{'kind':<16} {'count':>6} {'p50 ms':>8} {'p99 ms':>8}  outcomes", "-" * 78]
        for kind in MIX:
            rows = by_kind.get(kind, [])
            if not rows:
                continue
            seconds = sorted(row.seconds for row in rows)
            labels = Counter(row.label + ("" if row.expected else " (UNEXPECTED)") for row in rows)
            outcomes = ", ".join(f"{label} {count}" for label, count in labels.most_common())
            lines.append(
                f"{kind:<16} {len(rows):>6} {_ms(seconds, 0.5):>8} {_ms(seconds, 0.99):>8}  {outcomes}"
            )
        lines += [
            "-" * 78,
            f"{'all':<16} {len(self.outcomes):>6} {self.percentile(0.5) * 1000:>8.1f} "
            f"{self.percentile(0.99) * 1000:>8.1f}  {self.throughput:.0f} requests/s "
            f"over {self.seconds:.1f} s, "
            f"{self.clients} clients, {len(self.unexpected())} unexpected",
        ]
        return "\n".join(lines)


def _ms(sorted_seconds: list[float], fraction: float) -> str:
    return f"{sorted_seconds[min(len(sorted_seconds) - 1, int(fraction * len(sorted_seconds)))] * 1000:.1f}"


# -- the requests -------------------------------------------------------------------------------------------


def _request(method: str, params: Any, request_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _control_requests(target: Target) -> list[dict[str, Any]]:
    """Node-control requests which, if one got through, would leave a mark the checks after the run see."""
    stranger = target.strangers[0].address
    return [
        _request("anvil_setBalance", [stranger, hex(10**18)]),
        _request("evm_increaseTime", [hex(10 * 365 * 86400)]),
        _request("evm_setNextBlockTimestamp", [hex(FAR_FUTURE)]),
        _request("evm_mine", [hex(FAR_FUTURE)]),
        _request("anvil_mine", ["0x2710"]),  # 10,000 blocks
        _request("evm_setAutomine", [False]),  # would stall the members' transactions
        _request("evm_revert", ["0x1"]),
        _request("anvil_setCode", [target.registry, "0x00"]),
        _request("anvil_setStorageAt", [target.registry, "0x0", "0x" + "ff" * 32]),
        _request("anvil_impersonateAccount", [stranger]),
        _request("eth_sendTransaction", [{"from": stranger, "to": stranger}]),
        _request("debug_traceCall", [{"to": target.registry}, "latest"]),
        _request("hardhat_setBalance", [stranger, "0x1"]),
        _request("txpool_content", []),
    ]


MALFORMED_BODIES = [
    b"{", b'{"jsonrpc":"2.0","id":1,', b"not json", b"[1,2", b'{"a":}', b"\xff\xfe\xfd",
    b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"\xc3\x28}', b"[" * 100_000,
]  # fmt: skip
INVALID_REQUESTS: list[tuple[Any, str]] = [
    (17, "INVALID_REQUEST"), ("x", "INVALID_REQUEST"), (None, "INVALID_REQUEST"), ([], "INVALID_REQUEST"),
    ({"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}, "INVALID_REQUEST"),
    ({"jsonrpc": "2.0", "id": 1, "method": 5}, "INVALID_REQUEST"),
    ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "eth_chainId"}, "INVALID_REQUEST"),
    ({"jsonrpc": "2.0", "id": True, "method": "eth_chainId"}, "INVALID_REQUEST"),
    ({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": "x"}, "INVALID_PARAMS"),
    ({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0xbad"]}, "INVALID_PARAMS"),
]  # fmt: skip


class _Member:
    """One member's nonce sequence; one request at a time, so its transactions arrive in nonce order."""

    def __init__(self, key: str, nonce: int, chain_id: int) -> None:
        self.account = Account.from_key(key)
        self.nonce = nonce
        self.chain_id = chain_id
        self.lock = asyncio.Lock()
        self.accepted = 0
        self._raw: tuple[int, str] | None = None

    def raw(self) -> str:
        """The signed transaction for the next nonce (the same bytes again after a refusal)."""
        if self._raw is None or self._raw[0] != self.nonce:
            tx = {"type": 2, "chainId": self.chain_id, "nonce": self.nonce, "gas": 21_000, "maxFeePerGas": 0,
                  "maxPriorityFeePerGas": 0, "to": self.account.address, "value": 0, "data": b""}  # fmt: skip
            self._raw = (self.nonce, self.account.sign_transaction(tx).raw_transaction.to_0x_hex())
        return self._raw[1]


def _stranger_transactions(target: Target) -> list[str]:
    """Signed transactions of non-members: a self-transfer, a registry call, a contract creation."""
    raws = []
    for stranger in target.strangers:
        is_active = bytes.fromhex(IS_ACTIVE[2:])
        for nonce, to, data in [(0, stranger.address, b""), (0, target.registry, is_active),
                                (1, None, b"\x60\x00")]:  # fmt: skip
            tx = {"type": 2, "chainId": target.chain_id, "nonce": nonce, "gas": 100_000, "maxFeePerGas": 0,
                  "maxPriorityFeePerGas": 0, "value": 0, "data": data,
                  **({"to": to} if to else {})}  # fmt: skip
            raws.append(stranger.sign_transaction(tx).raw_transaction.to_0x_hex())
    return raws


# -- checking one answer ------------------------------------------------------------------------------------


def _label(status: int, body: bytes, request_id: Any) -> tuple[str, Any]:
    """(outcome label, result) of one HTTP answer to a single (non-batch) request."""
    if status != 200:
        return f"http {status}", None
    try:
        answer = json.loads(body)
    except ValueError:
        return "malformed answer: not JSON", None
    if not (isinstance(answer, dict) and answer.get("jsonrpc") == "2.0" and "id" in answer):
        return "malformed answer: not a JSON-RPC response", None
    if ("result" in answer) == ("error" in answer):
        return "malformed answer: needs exactly one of result and error", None
    if request_id is not _ANY_ID and answer["id"] != request_id:
        return f"malformed answer: id {answer['id']!r} for {request_id!r}", None
    if "result" in answer:
        return "result", answer["result"]
    error = answer["error"]
    if not (
        isinstance(error, dict) and type(error.get("code")) is int and isinstance(error.get("message"), str)
    ):
        return "malformed answer: bad error object", None
    return CODE_NAMES.get(error["code"], f"error {error['code']}"), error


_ANY_ID = object()  # the id of an answer to a request that has none (it is invalid, or not parsed)


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()


# -- the run ------------------------------------------------------------------------------------------------


async def _run(target: Target, total: int, clients: int, seed: int) -> LoadReport:
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=total)
    jobs = iter(enumerate(kinds))
    controls = _control_requests(target)
    strangers_raw = _stranger_transactions(target)
    oversized = json.dumps([_request("eth_chainId", [], i) for i in range(MAX_BATCH_ITEMS + 1)]).encode()
    member_addresses = [Account.from_key(key).address for key in target.member_keys]
    json_headers = {"Content-Type": "application/json"}
    outcomes: list[Outcome] = []

    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        counts = [_result(session, target.rpc_url, "eth_getTransactionCount", [address, "pending"])
                  for address in member_addresses]  # fmt: skip
        nonces = await asyncio.gather(*counts)
        members = [
            _Member(key, int(nonce, 16), target.chain_id) for key, nonce in zip(target.member_keys, nonces)
        ]

        async def one(index: int, kind: str, client: int) -> Outcome:
            headers = json_headers
            request_id: Any = index
            check = None  # a test of the result, for reads
            member = None
            if kind == "read":
                choice = index % 3
                if choice == 0:
                    request = _request("eth_blockNumber", [], index)
                    check = lambda result: isinstance(result, str) and int(result, 16) > 0  # noqa: E731
                elif choice == 1:
                    who = member_addresses[index % len(member_addresses)]
                    data = IS_ACTIVE + who[2:].lower().zfill(64)
                    request = _request("eth_call", [{"to": target.registry, "data": data}, "latest"], index)
                    check = lambda result: isinstance(result, str) and int(result, 16) == 1  # noqa: E731
                else:
                    stranger = target.strangers[index % len(target.strangers)].address
                    request = _request("eth_getBalance", [stranger, "latest"], index)
                    check = lambda result: result == "0x0"  # noqa: E731
                body, expected = json.dumps(request).encode(), {"result"}
            elif kind == "member_tx":
                member = members[client % len(members)]
                body, expected = b"", {"result", "LIMIT_EXCEEDED"}  # built under the member's lock
            elif kind == "stranger_tx":
                request = _request(
                    "eth_sendRawTransaction", [strangers_raw[index % len(strangers_raw)]], index
                )
                body, expected = json.dumps(request).encode(), {"SENDER_NOT_PERMITTED"}
            elif kind == "control":
                request = {**controls[index % len(controls)], "id": index}
                body, expected = json.dumps(request).encode(), {"METHOD_FORBIDDEN"}
                if index % 2:  # half of them with a token that is not the operator's
                    headers = {**json_headers, "Authorization": "Bearer not-the-operator-token"}
            elif kind == "malformed_json":
                body, expected, request_id = (
                    MALFORMED_BODIES[index % len(MALFORMED_BODIES)],
                    {"PARSE_ERROR"},
                    _ANY_ID,
                )
            elif kind == "invalid_request":
                item, code = INVALID_REQUESTS[index % len(INVALID_REQUESTS)]
                body, expected = json.dumps(item).encode(), {code}
                request_id = (
                    item.get("id") if isinstance(item, dict) and code == "INVALID_PARAMS" else _ANY_ID
                )
            else:  # oversized_batch
                body, expected, request_id = oversized, {"INVALID_REQUEST"}, None

            started = time.perf_counter()
            try:
                if member is not None:
                    async with member.lock:
                        request = _request("eth_sendRawTransaction", [member.raw()], index)
                        status, reply = await _post(
                            session, target.rpc_url, json.dumps(request).encode(), headers
                        )
                        label, result = _label(status, reply, request_id)
                        if label == "result":
                            member.nonce += 1
                            member.accepted += 1
                else:
                    status, reply = await _post(session, target.rpc_url, body, headers)
                    label, result = _label(status, reply, request_id)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                label, result = f"transport: {type(error).__name__}", None
            seconds = time.perf_counter() - started
            ok = label in expected
            if ok and check is not None and not check(result):
                label, ok = f"wrong result {result!r}", False
            if ok and kind == "oversized_batch" and "exceeds" not in result.get("message", ""):
                label, ok = "INVALID_REQUEST without 'exceeds'", False
            return Outcome(kind, label, ok, seconds)

        async def client_loop(client: int) -> None:
            for index, kind in jobs:  # the clients share one iterator: each job is taken once
                outcomes.append(await one(index, kind, client))

        started = time.perf_counter()
        await asyncio.gather(*[client_loop(client) for client in range(clients)])
        seconds = time.perf_counter() - started
    sent = {member.account.address: member.accepted for member in members}
    return LoadReport(total, clients, seconds, outcomes, sent)


async def _result(session: aiohttp.ClientSession, url: str, method: str, params: list[Any]) -> Any:
    status, body = await _post(session, url, json.dumps(_request(method, params)).encode(), {})
    answer = json.loads(body)
    if "result" not in answer:
        raise RuntimeError(f"{method} through the gateway failed: HTTP {status} {answer}")
    return answer["result"]


def run_load(target: Target, requests: int = 20_000, clients: int = 50, seed: int = 47001) -> LoadReport:
    """Send ``requests`` requests of the mix from ``clients`` concurrent clients; every answer, checked."""
    return asyncio.run(_run(target, requests, clients, seed))


# -- a devnet to load, and the checks after ---------------------------------------------------------------


def prepare(devnet: Any, members: int = 8, strangers: int = 10) -> Target:
    """Deploy the system on ``devnet`` and register ``members`` organisations (their admins are members)."""
    from carbon_sdk import CarbonClient, Role
    from carbon_sdk.artifacts import load_build
    from carbon_sdk.deploy import deploy_on_devnet

    manifest = deploy_on_devnet(devnet, load_build(), network="gateway-load")
    regulator = CarbonClient(devnet.rpc_url, manifest, devnet.bootstrap_key)
    keys = []
    for number in range(members):
        admin = Account.create()
        regulator.registry.register_organisation(f"Load member {number}", admin.address, Role.ENTERPRISE,
                                                 allowed_roles=[Role.ENTERPRISE])  # fmt: skip
        keys.append(admin.key.to_0x_hex())
    registry = manifest.contract("ConsortiumRegistry").address
    return Target(
        devnet.rpc_url, devnet.chain_id, registry, keys, [Account.create() for _ in range(strangers)]
    )


def chain_snapshot(devnet: Any, target: Target) -> dict[str, Any]:
    """What a forbidden request would change, read on anvil itself (behind the gateway)."""
    from carbon_sdk.devnet.node import _rpc

    def anvil(method: str, params: list[Any]) -> Any:
        return _rpc(devnet.anvil_url, method, params)

    latest = anvil("eth_getBlockByNumber", ["latest", False])
    return {
        "block": int(latest["number"], 16),
        "timestamp": int(latest["timestamp"], 16),
        "registry_code": keccak(hexstr=anvil("eth_getCode", [target.registry, "latest"])).hex(),
        "registry_slot0": anvil("eth_getStorageAt", [target.registry, "0x0", "latest"]),
        "strangers": {
            s.address: (
                int(anvil("eth_getTransactionCount", [s.address, "pending"]), 16),
                int(anvil("eth_getBalance", [s.address, "latest"]), 16),
            )
            for s in target.strangers
        },  # fmt: skip
        "members": {
            Account.from_key(k).address: int(
                anvil("eth_getTransactionCount", [Account.from_key(k).address, "latest"]), 16
            )
            for k in target.member_keys
        },  # fmt: skip
        "automine": anvil("anvil_getAutomine", []),
        "pending": int(anvil("txpool_status", [])["pending"], 16),
    }


def wait_until_mined(
    devnet: Any, target: Target, before: dict[str, Any], report: LoadReport, timeout: float = 20.0
) -> dict[str, Any]:
    """The chain snapshot once every accepted member transaction is mined (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        after = chain_snapshot(devnet, target)
        done = all(
            after["members"][a] >= before["members"][a] + report.member_sent[a] for a in report.member_sent
        )
        if done or time.monotonic() > deadline:
            return after
        time.sleep(0.2)


def main() -> int:
    import argparse

    from carbon_sdk.devnet import Devnet

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--seed", type=int, default=47001)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, Devnet.start(folder, port=None, persist=False) as devnet:
        target = prepare(devnet, members=args.members)
        before = chain_snapshot(devnet, target)
        report = run_load(target, args.requests, args.clients, args.seed)
        after = wait_until_mined(devnet, target, before, report)
        print(report.table())
        status = devnet.status()
        print(f"gateway and anvil alive afterwards: {status.running}")
        mined = {a: after["members"][a] - before["members"][a] for a in report.member_sent}
        print(f"member transactions accepted {sum(report.member_sent.values())}, mined {sum(mined.values())}")
        unchanged = all(after[key] == before[key] for key in ("registry_code", "registry_slot0", "strangers"))
        print(f"strangers, registry code and storage unchanged: {unchanged}; "
              f"clock moved {after['timestamp'] - before['timestamp']} s over {report.seconds:.1f} s; "
              f"automine {after['automine']}")  # fmt: skip
        for outcome in report.unexpected()[:10]:
            print("unexpected:", outcome)
        ok = status.running and unchanged and not report.unexpected() and mined == report.member_sent
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
