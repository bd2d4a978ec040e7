"""The permissioning JSON-RPC gateway: the devnet's public endpoint, in front of anvil.

Devnet.start runs it as its own process::

    python -m carbon_sdk.devnet.gateway --folder .devnet --port 8545

It reads the folder's devnet.json (anvil's port, the chain id, the registry) and bootstrap.key (for the
bootstrap admin's address), writes a new operator.token, and serves JSON-RPC over HTTP on 127.0.0.1. Each
request, alone or in a batch, is answered by these rules:

- a method of READ_METHODS is forwarded to anvil;
- eth_sendRawTransaction (and eth_sendRawTransactionSync) is forwarded only if the transaction's signer is
  the bootstrap admin or ``isActive(signer)`` is true on the consortium registry. Otherwise:
  SENDER_NOT_PERMITTED, and anvil never sees it. This holds with the operator token too;
- the admitted transactions of one HTTP request are refused together with LIMIT_EXCEEDED if they would bring
  the node's pool over MAX_PENDING_TRANSACTIONS: anvil 1.7.1's automine stalls, its memory growing until the
  kernel kills it, once about 1,000 transactions wait. Clients resend them after earlier receipts;
- the signers' membership and the pool's size are read in one batched request to anvil per HTTP request;
- carbon_gatewayInfo is answered here; carbon_setRegistry needs the operator token;
- eth_maxPriorityFeePerGas is answered here: 0, as gas is free on this chain (anvil suggests 1 gwei);
- with the operator token (``Authorization: Bearer <token>``) any other method is forwarded too; without
  it a node-control method is refused with METHOD_FORBIDDEN and any other with METHOD_NOT_FOUND.

Every request gets a JSON-RPC answer, whatever the input: malformed input gets the standard error codes.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from eth_utils import keccak, to_checksum_address

from carbon_sdk.devnet.folder import DevnetFolder
from carbon_sdk.rpc import LIMIT_EXCEEDED, METHOD_FORBIDDEN, NODE_DOWN, NODE_DOWN_MARKER, SENDER_NOT_PERMITTED
from carbon_sdk.signing import recover_sender

log = logging.getLogger("carbon_sdk.devnet.gateway")

# JSON-RPC error codes: the standard ones, then this gateway's (EIP-1474 server-error range).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NODE_UNAVAILABLE = NODE_DOWN  # anvil did not answer (clients retry on it: carbon_sdk.rpc)

MAX_PENDING_TRANSACTIONS = 500

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BATCH_ITEMS = 1000
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=5)

READ_METHODS = frozenset(
    {
        "web3_clientVersion", "web3_sha3", "net_version", "net_listening", "net_peerCount",
        "eth_chainId", "eth_blockNumber", "eth_syncing", "eth_accounts", "eth_coinbase", "eth_mining",
        "eth_hashrate", "eth_protocolVersion", "eth_gasPrice", "eth_blobBaseFee", "eth_feeHistory",
        "eth_call", "eth_estimateGas", "eth_createAccessList", "eth_simulateV1",
        "eth_getBalance", "eth_getCode", "eth_getStorageAt", "eth_getTransactionCount", "eth_getProof",
        "eth_getAccount",
        "eth_getBlockByNumber", "eth_getBlockByHash", "eth_getBlockReceipts",
        "eth_getBlockTransactionCountByNumber", "eth_getBlockTransactionCountByHash",
        "eth_getUncleCountByBlockNumber", "eth_getUncleCountByBlockHash",
        "eth_getUncleByBlockNumberAndIndex", "eth_getUncleByBlockHashAndIndex",
        "eth_getTransactionByHash", "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByBlockHashAndIndex", "eth_getTransactionReceipt", "eth_getRawTransactionByHash",
        "eth_getLogs", "eth_newFilter", "eth_newBlockFilter", "eth_newPendingTransactionFilter",
        "eth_getFilterChanges", "eth_getFilterLogs", "eth_uninstallFilter",
    }
)  # fmt: skip
SEND_METHODS = frozenset({"eth_sendRawTransaction", "eth_sendRawTransactionSync"})
SWEEP_DELAY = 0.5  # seconds after a send before the gateway mines what automining left pending
CONTROL_PREFIXES = (
    "anvil_", "evm_", "hardhat_", "debug_", "personal_", "admin_", "miner_", "txpool_", "ots_", "trace_",
    "erigon_", "wallet_", "eth_sign",
)  # fmt: skip
CONTROL_METHODS = frozenset({"eth_sendTransaction", "eth_sendUnsignedTransaction", "eth_fillTransaction"})
FREE_GAS_ANSWERS = {"eth_maxPriorityFeePerGas": "0x0"}

IS_ACTIVE_SELECTOR = "0x" + keccak(text="isActive(address)")[:4].hex()
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


_TOKEN_HINT = "the devnet's operator token (Authorization: Bearer <operator.token>)"


def is_control_method(method: str) -> bool:
    return method in CONTROL_METHODS or method.startswith(CONTROL_PREFIXES)


def error_response(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class UpstreamError(Exception):
    """Anvil could not be reached or gave an answer that is not JSON-RPC."""


@dataclass
class Call:
    """One request of an HTTP request (a batch holds many) on its way through the gateway."""

    id: Any = None
    notification: bool = False
    method: str = ""
    params: Any = field(default_factory=list)
    sender: str | None = None  # the signer, for a transaction
    response: dict[str, Any] | None = None  # set once answered; forwarded to anvil otherwise

    def answer(self, result: Any) -> None:
        self.response = {"jsonrpc": "2.0", "id": self.id, "result": result}

    def fail(self, code: int, message: str, data: Any = None) -> None:
        self.response = error_response(self.id, code, message, data)


class Gateway:
    """The permissioning rules and the forwarding to anvil; ``app()`` wraps it in an aiohttp server."""

    def __init__(self, folder: DevnetFolder, anvil_url: str, operator_token: str) -> None:
        config = folder.read_config()
        self.folder = folder
        self.anvil_url = anvil_url
        self.chain_id: int = config["chain_id"]
        self.registry: str | None = config.get("registry")
        self.bootstrap_admin: str = folder.bootstrap_account().address
        self._bearer = f"Bearer {operator_token}".encode()
        self._session: aiohttp.ClientSession | None = None
        self._node_was_down = False
        # anvil started without automining (Devnet.start(mine_per_request=True)): mine after each request.
        self.mine_per_request: bool = bool(config.get("mine_per_request", False))
        self._mining = asyncio.Lock()
        self._sweep: asyncio.Task | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/", self.handle)
        app.on_startup.append(self._open_session)
        app.on_cleanup.append(self._close_session)
        return app

    async def _open_session(self, _app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=UPSTREAM_TIMEOUT, headers={"Content-Type": "application/json"}
        )

    async def _close_session(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    # -- HTTP ----------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        try:
            operator = hmac.compare_digest(request.headers.get("Authorization", "").encode(), self._bearer)
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                message = f"Invalid Request: the body exceeds {MAX_BODY_BYTES} bytes"
                return _reply(error_response(None, INVALID_REQUEST, message))
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
                return _reply(error_response(None, PARSE_ERROR, f"Parse error: {str(error)[:200]}"))
            if not isinstance(payload, list):
                responses = await self.handle_calls([payload], operator)
                return _reply(responses[0]) if responses else web.Response(status=204)
            if not payload:
                return _reply(error_response(None, INVALID_REQUEST, "Invalid Request: empty batch"))
            if len(payload) > MAX_BATCH_ITEMS:
                message = f"Invalid Request: batch of {len(payload)} requests exceeds {MAX_BATCH_ITEMS}"
                return _reply(error_response(None, INVALID_REQUEST, message))
            responses = await self.handle_calls(payload, operator)
            return _reply(responses) if responses else web.Response(status=204)
        except Exception as error:  # never let one request take the gateway down
            log.exception("internal error while answering a request")
            return _reply(error_response(None, INTERNAL_ERROR, f"internal gateway error: {error!r}"[:300]))

    # -- the rules -----------------------------------------------------------------------------------------

    async def handle_calls(self, items: list[Any], operator: bool) -> list[dict[str, Any]]:
        """Answer the requests of one HTTP request, in order; notifications get no answer."""
        calls = [self._classify(item, operator) for item in items]
        await self._admit_transactions([call for call in calls if call.sender and call.response is None])
        await self._forward([call for call in calls if call.response is None])
        if any(call.method in SEND_METHODS and call.response is not None and "result" in call.response
               for call in calls):
            if self.mine_per_request:
                await self._mine_pending()
            elif self._sweep is None or self._sweep.done():
                # Automining anvil mines what fits when transactions arrive; one that arrives while a block
                # is being built can be left pending until the next one comes, which may be never. A sweep
                # shortly after mines whatever is still pending.
                self._sweep = asyncio.get_running_loop().create_task(self._sweep_pending())
        return [call.response for call in calls if not call.notification]  # type: ignore[misc]

    async def _sweep_pending(self) -> None:
        await asyncio.sleep(SWEEP_DELAY)
        await self._mine_pending(only_if_automining=True)

    async def _mine_pending(self, only_if_automining: bool = False) -> None:
        """Mine blocks until no transaction is pending (one block takes as many as its gas limit allows).

        ``only_if_automining``: leave the pool alone if the node does not automine. The sweep helps automining
        along; once an operator turns automining off (``evm_setAutomine false``), transactions wait until the
        operator mines them, and a sweep started by an earlier request must not mine a few of them.
        """
        # One miner at a time. Requests that arrive while a block is being mined wait here, and the next block
        # takes all of them: under load, blocks grow by themselves.
        status_request = {"jsonrpc": "2.0", "id": 0, "method": "txpool_status", "params": []}
        automine_request = {"jsonrpc": "2.0", "id": 1, "method": "anvil_getAutomine", "params": []}
        async with self._mining:
            try:
                for _ in range(1_000):
                    if only_if_automining:
                        answers = _by_id(await self._post([status_request, automine_request]), 2)
                        if answers.get(1, {}).get("result") is False:
                            return
                        status = answers.get(0, {})
                    else:
                        status = await self._post(status_request)
                    if int(status.get("result", {}).get("pending", "0x0"), 16) == 0:
                        return
                    await self._post({"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []})
            except UpstreamError:  # the node went away: the transactions' senders will see it themselves
                return

    def _classify(self, item: Any, operator: bool) -> Call:
        """Validate one request and answer it here, or leave it (``response`` None) for forwarding."""
        problem = _invalid_request(item)
        if problem:
            known_id = isinstance(item, dict) and _valid_id(item)
            call = Call(id=item.get("id") if known_id else None)  # answered, even without an id
            call.fail(INVALID_REQUEST, f"Invalid Request: {problem}")
            return call
        call = Call(id=item.get("id"), notification="id" not in item, method=item["method"])
        call.params = item.get("params", [])
        method = call.method
        if not isinstance(call.params, (list, dict)):
            problem = f'"params" must be an array or an object, not {_json_type(call.params)}'
            call.fail(INVALID_PARAMS, f"Invalid params: {problem}")
        elif method in SEND_METHODS:
            self._recover_sender(call)
        elif method in READ_METHODS:
            pass
        elif method in FREE_GAS_ANSWERS:
            call.answer(FREE_GAS_ANSWERS[method])
        elif method == "carbon_gatewayInfo":
            call.answer(self.info())
        elif method == "carbon_setRegistry":
            self._set_registry(call, operator)
        elif operator:
            pass
        elif is_control_method(method):
            call.fail(METHOD_FORBIDDEN, f"method {method} controls the node: forbidden without {_TOKEN_HINT}",
                      {"forbidden": method})
        else:
            call.fail(METHOD_NOT_FOUND, f"method {method} does not exist or is not offered by the gateway")
        return call

    def info(self) -> dict[str, Any]:
        return {"registry": self.registry, "bootstrapAdmin": self.bootstrap_admin, "chainId": self.chain_id}

    def _set_registry(self, call: Call, operator: bool) -> None:
        if not operator:
            call.fail(METHOD_FORBIDDEN, f"carbon_setRegistry needs {_TOKEN_HINT}", {"forbidden": "carbon_setRegistry"})
            return
        params = call.params
        address = params[0] if isinstance(params, list) and len(params) == 1 else "not given"
        if not (address is None or _is_address(address)):
            call.fail(INVALID_PARAMS, "carbon_setRegistry takes one parameter: the registry address, or null")
            return
        self.registry = None if address is None else to_checksum_address(address)
        self.folder.update_config(registry=self.registry)
        log.info("consortium registry set to %s", self.registry)
        call.answer(self.registry)

    def _recover_sender(self, call: Call) -> None:
        params = call.params
        if not (isinstance(params, list) and len(params) == 1 and isinstance(params[0], str)):
            call.fail(INVALID_PARAMS, f"{call.method} takes one parameter: the signed transaction as 0x-hex")
            return
        try:
            raw = bytes.fromhex(params[0][2:] if params[0][:2] in ("0x", "0X") else params[0])
            call.sender = recover_sender(raw)  # fast path for EIP-1559, eth-account otherwise
        except Exception as error:
            message = f"could not decode the signed transaction or recover its signer: {str(error)[:200]}"
            call.fail(INVALID_PARAMS, message)

    async def _admit_transactions(self, calls: list[Call]) -> None:
        """Refuse the transactions whose signer is neither the bootstrap admin nor an active member, then
        those that the node's pool has no room for; one batched request to anvil reads what both need."""
        if not calls:
            return
        members = sorted({call.sender for call in calls} - {self.bootstrap_admin})  # type: ignore[misc]
        requests = [{"jsonrpc": "2.0", "id": 0, "method": "txpool_status", "params": []}]
        if self.registry is not None:
            requests += [
                {"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [self._is_active(m), "latest"]}
                for i, m in enumerate(members, start=1)
            ]
        try:
            answers = _by_id(await self._post(requests), len(requests))
        except UpstreamError as error:
            for call in calls:
                call.fail(NODE_UNAVAILABLE, str(error))
            return

        refusals = {
            member: refusal
            for index, member in enumerate(members, start=1)
            if (refusal := self._membership_refusal(member, answers.get(index, {})))
        }
        admitted = []
        for call in calls:
            if call.sender in refusals:
                data = {"sender": call.sender, "registry": self.registry}
                call.fail(SENDER_NOT_PERMITTED, f"transaction refused: {refusals[call.sender]}", data)
            else:
                admitted.append(call)

        pool = answers.get(0, {}).get("result") or {}
        waiting = max(_quantity(pool.get("pending")), 0) + max(_quantity(pool.get("queued")), 0)
        if admitted and waiting + len(admitted) > MAX_PENDING_TRANSACTIONS:
            message = (
                f"transactions refused: the node has {waiting} transactions waiting to be mined and this "
                f"request brings {len(admitted)} more, over the limit of {MAX_PENDING_TRANSACTIONS}; send "
                "them again once earlier ones are mined"
            )
            for call in admitted:
                call.fail(LIMIT_EXCEEDED, message, {"waiting": waiting, "limit": MAX_PENDING_TRANSACTIONS})

    def _is_active(self, member: str) -> dict[str, Any]:
        """The eth_call of isActive(member) on the registry."""
        return {"to": self.registry, "data": IS_ACTIVE_SELECTOR + member[2:].lower().zfill(64)}

    def _membership_refusal(self, member: str, answer: dict[str, Any]) -> str | None:
        """Why ``member`` may not send, from anvil's answer to isActive(member); None if it may."""
        if self.registry is None:
            return (
                f"{member} is not the bootstrap admin {self.bootstrap_admin}, the only account that may send "
                "transactions until a consortium registry is configured"
            )
        if "error" in answer:
            error = answer["error"]
            reason = error.get("message") if isinstance(error, dict) else error
            return f"the membership of {member} could not be checked: isActive on {self.registry}: {reason}"
        if _quantity(answer.get("result")) != 1:
            return f"{member} is not an active member of the consortium registry {self.registry}"
        return None

    # -- anvil ---------------------------------------------------------------------------------------------

    async def _forward(self, calls: list[Call]) -> None:
        if not calls:
            return
        requests = [
            {"jsonrpc": "2.0", "id": index, "method": call.method, "params": call.params}
            for index, call in enumerate(calls)
        ]
        try:
            answers = _by_id(await self._post(requests if len(requests) > 1 else requests[0]), len(requests))
        except UpstreamError as error:
            for call in calls:
                call.fail(NODE_UNAVAILABLE, str(error))
            return
        for index, call in enumerate(calls):
            answer = answers.get(index)
            if answer is None:
                call.fail(INTERNAL_ERROR, "the node gave no answer to this request")
            elif "error" in answer:
                call.response = {"jsonrpc": "2.0", "id": call.id, "error": answer["error"]}
            else:
                call.answer(answer.get("result"))

    async def _post(self, payload: Any) -> Any:
        assert self._session is not None
        body = json.dumps(payload, separators=(",", ":")).encode()
        for attempt in (1, 2):
            try:
                async with self._session.post(self.anvil_url, data=body) as response:
                    text = await response.read()
                break
            except aiohttp.ServerDisconnectedError:
                if attempt == 2:  # a kept-alive connection that anvil closed: retry once on a new one
                    return self._node_down("anvil closed the connection twice")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                return self._node_down(f"{type(error).__name__}: {error}")
        try:
            answer = json.loads(text)
        except ValueError:
            return self._node_down(f"HTTP {response.status} with a body that is not JSON: {text[:200]!r}")
        if self._node_was_down:
            self._node_was_down = False
            log.warning("anvil at %s answers again", self.anvil_url)
        return answer

    def _node_down(self, detail: str) -> Any:
        if not self._node_was_down:
            self._node_was_down = True
            log.warning("anvil at %s is unreachable: %s", self.anvil_url, detail)
        raise UpstreamError(f"the devnet's node (anvil at {self.anvil_url}) {NODE_DOWN_MARKER}: {detail}")


def _by_id(answer: Any, expected: int) -> dict[int, dict[str, Any]]:
    """anvil's answers by the gateway's own request ids (0..n-1); one error for all if it refused a batch."""
    if isinstance(answer, dict) and answer.get("id") is None and "error" in answer:
        return dict.fromkeys(range(expected), answer)
    answers = answer if isinstance(answer, list) else [answer]
    return {item["id"]: item for item in answers if isinstance(item, dict) and type(item.get("id")) is int}


def _invalid_request(item: Any) -> str | None:
    """What makes ``item`` an invalid JSON-RPC request, or None."""
    if not isinstance(item, dict):
        return f"expected a JSON object, not {_json_type(item)}"
    if not _valid_id(item):
        return f'"id" must be a string, an integer or null, not {_json_type(item["id"])}'
    if item.get("jsonrpc") != "2.0":
        return '"jsonrpc" must be "2.0"'
    if not isinstance(item.get("method"), str):
        return '"method" must be a string'
    return None


def _valid_id(item: dict[str, Any]) -> bool:
    return type(item.get("id")) in (int, str, type(None))  # bool is an int subclass: excluded this way


def _quantity(value: Any) -> int:
    """A JSON-RPC hex quantity or 32-byte word as an int; -1 for anything else."""
    if not (isinstance(value, str) and value.startswith("0x") and len(value) <= 66):
        return -1
    try:
        return int(value, 16)
    except ValueError:
        return -1


def _reply(payload: Any) -> web.Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return web.Response(body=body, content_type="application/json")


def _is_address(value: Any) -> bool:
    return isinstance(value, str) and _ADDRESS.fullmatch(value) is not None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", float: "a number"}
    return "null" if value is None else names.get(type(value), "a number")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The devnet's permissioning JSON-RPC gateway.")
    parser.add_argument("--folder", required=True, help="the devnet folder (devnet.json, bootstrap.key)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="public port (default: the gateway port in devnet.json)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    folder = DevnetFolder(args.folder)
    config = folder.read_config()
    port = args.port or config["gateway"]["port"]
    anvil_url = f"http://127.0.0.1:{config['anvil']['port']}"
    gateway = Gateway(folder, anvil_url, folder.new_operator_token())
    log.info("gateway on http://%s:%d in front of %s, bootstrap admin %s, registry %s",
             args.host, port, anvil_url, gateway.bootstrap_admin, gateway.registry)  # fmt: skip
    web.run_app(gateway.app(), host=args.host, port=port, access_log=None, print=None, shutdown_timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
