"""The permissioning gateway, against a real devnet (anvil behind the gateway) of this module's own.

Requests go over plain HTTP or web3.py, so these tests check the gateway itself, not the SDK above it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder

from carbon_sdk.devnet import Devnet
from carbon_sdk.devnet.gateway import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIMIT_EXCEEDED,
    MAX_BATCH_ITEMS,
    MAX_BODY_BYTES,
    MAX_PENDING_TRANSACTIONS,
    METHOD_FORBIDDEN,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SENDER_NOT_PERMITTED,
)

BUILD = Path(__file__).resolve().parents[2] / ".build" / "__local__.json"
ENTERPRISE = 3
NOBODY = "0x" + "11" * 20


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Devnet:
    with Devnet.start(tmp_path_factory.mktemp("gateway-devnet"), port=None) as started:
        yield started


@pytest.fixture(scope="module")
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy between us and 127.0.0.1
    return session


@pytest.fixture(scope="module")
def rpc(devnet: Devnet, http: requests.Session):
    """One JSON-RPC call through the gateway; returns the whole answer (``result`` or ``error``)."""

    def call(method: str, params: Any = None, token: str | None = None, url: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": [] if params is None else params}
        return http.post(url or devnet.rpc_url, json=body, headers=headers, timeout=30).json()

    return call


@pytest.fixture(scope="module")
def w3(devnet: Devnet) -> Web3:
    return Web3(Web3.HTTPProvider(devnet.rpc_url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="module")
def admin(devnet: Devnet) -> LocalAccount:
    return Account.from_key(devnet.bootstrap_key)


def signed(account: LocalAccount, nonce: int, **fields: Any) -> tuple[str, str]:
    """A zero-fee transaction signed by ``account``: (raw 0x-hex, hash)."""
    tx = {"type": 2, "chainId": 47001, "nonce": nonce, "gas": 100_000, "maxFeePerGas": 0,
          "maxPriorityFeePerGas": 0, "to": account.address, "value": 0, "data": b"", **fields}  # fmt: skip
    if tx["to"] is None:  # a contract creation
        del tx["to"]
    signed_tx = account.sign_transaction(tx)
    return signed_tx.raw_transaction.to_0x_hex(), signed_tx.hash.to_0x_hex()


def transact(w3: Web3, account: LocalAccount, **fields: Any) -> Any:
    """Sign a zero-fee transaction, send it through the gateway and return its (successful) receipt."""
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    if "gas" not in fields:
        estimate = {"from": account.address, **{k: v for k, v in fields.items() if v is not None}}
        fields["gas"] = w3.eth.estimate_gas(estimate) * 2
    raw, _ = signed(account, nonce, **fields)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw), timeout=30)
    assert receipt.status == 1, receipt
    return receipt


def assert_never_reached_anvil(devnet: Devnet, rpc, sender: str, tx_hash: str) -> None:
    for url in (devnet.rpc_url, devnet.anvil_url):  # the gateway, and anvil behind it
        assert rpc("eth_getTransactionByHash", [tx_hash], url=url)["result"] is None
        assert rpc("eth_getTransactionReceipt", [tx_hash], url=url)["result"] is None
        assert rpc("eth_getTransactionCount", [sender, "pending"], url=url)["result"] == "0x0"


# -- transactions: who may send ---------------------------------------------------------------------------


def test_the_bootstrap_admin_sends_without_ether(devnet, w3, admin):
    assert w3.eth.get_balance(admin.address) == 0
    assert w3.eth.gas_price == 0 and w3.eth.max_priority_fee == 0  # free gas, so web3's defaults are 0
    receipt = transact(w3, admin, to=NOBODY, gas=21_000)
    assert receipt.gasUsed == 21_000 and receipt.effectiveGasPrice == 0

    signing = Web3(Web3.HTTPProvider(devnet.rpc_url))  # web3.py filling in gas and fees by itself
    signing.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(admin), layer=0)
    tx_hash = signing.eth.send_transaction({"from": admin.address, "to": NOBODY, "value": 0})
    assert signing.eth.wait_for_transaction_receipt(tx_hash, timeout=30).status == 1
    assert w3.eth.get_balance(admin.address) == 0


def test_a_strangers_transaction_is_refused_and_never_reaches_anvil(devnet, rpc):
    stranger = Account.create()
    for method in ("eth_sendRawTransaction", "eth_sendRawTransactionSync"):
        raw, tx_hash = signed(stranger, 0)
        error = rpc(method, [raw])["error"]
        assert error["code"] == SENDER_NOT_PERMITTED
        assert stranger.address in error["message"] and error["data"]["sender"] == stranger.address
        assert_never_reached_anvil(devnet, rpc, stranger.address, tx_hash)


def test_until_a_registry_is_set_only_the_bootstrap_admin_may_send(devnet, rpc, admin, w3):
    previous = devnet.registry
    devnet.set_registry(None)
    try:
        stranger = Account.create()
        raw, tx_hash = signed(stranger, 0)
        error = rpc("eth_sendRawTransaction", [raw])["error"]
        assert error["code"] == SENDER_NOT_PERMITTED
        assert f"{stranger.address} is not the bootstrap admin" in error["message"]
        assert "until a consortium registry is configured" in error["message"]
        assert_never_reached_anvil(devnet, rpc, stranger.address, tx_hash)
        transact(w3, admin, to=NOBODY, gas=21_000)
    finally:
        devnet.set_registry(previous)


@pytest.fixture(scope="module")
def registry(devnet: Devnet, w3: Web3, admin: LocalAccount):
    """The real ConsortiumRegistry from the build, deployed by the bootstrap admin and set on the gateway."""
    contract_types = json.loads(BUILD.read_text()).get("contractTypes", {}) if BUILD.exists() else {}
    if "ConsortiumRegistry" not in contract_types:
        pytest.fail(f"ConsortiumRegistry is not in {BUILD}: run `ape compile` (make test does) first")
    artifact = contract_types["ConsortiumRegistry"]
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["deploymentBytecode"]["bytecode"])
    deploy = factory.constructor("National Regulator", admin.address, b"\x01" * 32).build_transaction(
        {"from": admin.address, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0}
    )
    receipt = transact(w3, admin, data=deploy["data"], to=None)
    devnet.set_registry(receipt.contractAddress)
    return w3.eth.contract(address=receipt.contractAddress, abi=artifact["abi"])


def call_data(contract, function: str, *args: Any) -> str:
    return contract.encode_abi(function, args=list(args))


def test_an_enrolled_member_sends_until_suspended(devnet, w3, rpc, admin, registry):
    assert devnet.status().registry == registry.address
    org_admin, member = Account.create(), Account.create()
    register = call_data(registry, "registerOrganisation", "Acme Steel", org_admin.address, ENTERPRISE, 0,
                         1 << ENTERPRISE, b"\x02" * 32)  # fmt: skip
    transact(w3, admin, to=registry.address, data=register)
    # The organisation's admin is a member now: its own transaction (enrolling a member) goes through.
    enrol = call_data(registry, "enrol", member.address, ENTERPRISE, 0, b"\x03" * 32)
    transact(w3, org_admin, to=registry.address, data=enrol)
    assert registry.functions.isActive(member.address).call()

    transact(w3, member, to=NOBODY, gas=21_000)
    assert w3.eth.get_transaction_count(member.address) == 1

    transact(w3, org_admin, to=registry.address, data=call_data(registry, "suspend", member.address))
    assert not registry.functions.isActive(member.address).call()
    raw, tx_hash = signed(member, 1)
    error = rpc("eth_sendRawTransaction", [raw])["error"]
    assert error["code"] == SENDER_NOT_PERMITTED
    assert f"{member.address} is not an active member of the consortium registry {registry.address}" in (
        error["message"])
    assert rpc("eth_getTransactionReceipt", [tx_hash], url=devnet.anvil_url)["result"] is None
    assert w3.eth.get_transaction_count(member.address, "pending") == 1  # nonce unchanged

    # One batch, three signers: each is judged on its own, in order.
    stranger = Account.create()
    org_nonce = w3.eth.get_transaction_count(org_admin.address)
    batch = [
        {"jsonrpc": "2.0", "id": name, "method": "eth_sendRawTransaction", "params": [transaction]}
        for name, transaction in [("org", signed(org_admin, org_nonce)[0]), ("member", raw),
                                  ("stranger", signed(stranger, 0)[0])]
    ]  # fmt: skip
    answers = requests.post(devnet.rpc_url, json=batch, timeout=30).json()
    assert [answer["id"] for answer in answers] == ["org", "member", "stranger"]
    assert "result" in answers[0]
    assert [answer["error"]["code"] for answer in answers[1:]] == [SENDER_NOT_PERMITTED] * 2
    assert w3.eth.wait_for_transaction_receipt(answers[0]["result"], timeout=30).status == 1

    transact(w3, org_admin, to=registry.address, data=call_data(registry, "reinstate", member.address))
    assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw), timeout=30).status == 1


# -- methods: read, forbidden, unknown, the operator token --------------------------------------------------

READ_CALLS = [
    ("eth_chainId", []), ("eth_blockNumber", []), ("net_version", []), ("web3_clientVersion", []),
    ("eth_syncing", []), ("eth_accounts", []), ("eth_gasPrice", []), ("eth_maxPriorityFeePerGas", []),
    ("eth_feeHistory", ["0x1", "latest", [50]]), ("eth_getBalance", [NOBODY, "latest"]),
    ("eth_getCode", [NOBODY, "latest"]), ("eth_getStorageAt", [NOBODY, "0x0", "latest"]),
    ("eth_getTransactionCount", [NOBODY, "latest"]), ("eth_getBlockByNumber", ["latest", False]),
    ("eth_getBlockReceipts", ["latest"]), ("eth_getLogs", [{"fromBlock": "0x0"}]),
    ("eth_call", [{"to": NOBODY, "data": "0x"}, "latest"]), ("eth_estimateGas", [{"to": NOBODY}]),
    ("eth_createAccessList", [{"to": NOBODY}]), ("eth_newBlockFilter", []),
]  # fmt: skip


@pytest.mark.parametrize("method, params", READ_CALLS)
def test_read_methods_pass(rpc, method, params):
    answer = rpc(method, params)
    assert "result" in answer, answer


def test_anvil_holds_no_accounts(rpc):
    assert rpc("eth_accounts")["result"] == []


CONTROL_CALLS = [
    ("anvil_mine", ["0x1"]), ("evm_snapshot", []), ("evm_mine", []), ("anvil_setBalance", [NOBODY, "0x1"]),
    ("hardhat_mine", ["0x1"]), ("debug_traceTransaction", ["0x" + "00" * 32]), ("personal_listAccounts", []),
    ("eth_sendTransaction", [{"from": NOBODY, "to": NOBODY}]), ("eth_sign", [NOBODY, "0x00"]),
    ("eth_signTypedData_v4", [NOBODY, {}]), ("txpool_content", []), ("admin_nodeInfo", []),
    ("miner_start", []), ("ots_getApiLevel", []), ("trace_block", ["latest"]),
    ("carbon_setRegistry", [NOBODY]),
]  # fmt: skip


@pytest.mark.parametrize("method, params", CONTROL_CALLS)
def test_control_methods_are_forbidden_without_the_operator_token(rpc, method, params):
    for token in (None, "not-the-token"):
        error = rpc(method, params, token=token)["error"]
        assert error["code"] == METHOD_FORBIDDEN, error
        assert "operator token" in error["message"] and method in error["message"]


def test_unknown_methods_are_not_found_not_forbidden(rpc):
    error = rpc("eth_noSuchMethod")["error"]
    assert error["code"] == METHOD_NOT_FOUND
    assert "does not exist" in error["message"] and "eth_noSuchMethod" in error["message"]


def test_the_operator_token_unlocks_control_methods(devnet, rpc, w3, admin):
    token = devnet.operator_token
    before = w3.eth.block_number
    assert rpc("anvil_mine", ["0x2"])["error"]["code"] == METHOD_FORBIDDEN
    assert w3.eth.block_number == before  # refused, so no effect
    assert "error" not in rpc("anvil_mine", ["0x2"], token=token)
    assert w3.eth.block_number == before + 2

    assert rpc("evm_snapshot", token=token)["result"].startswith("0x")
    rich = Account.create().address
    assert "error" not in rpc("anvil_setBalance", [rich, "0x64"], token=token)
    assert w3.eth.get_balance(rich) == 100

    receipt = transact(w3, admin, to=NOBODY, gas=21_000)
    trace = rpc("debug_traceTransaction", [receipt.transactionHash.to_0x_hex()], token=token)
    assert "result" in trace, trace
    # anvil has no personal_* methods: with the token the call reaches anvil, which says so itself.
    assert rpc("personal_listAccounts", token=token)["error"]["code"] != METHOD_FORBIDDEN

    impersonated = Account.create().address
    assert "error" not in rpc("anvil_impersonateAccount", [impersonated], token=token)
    unsigned = {"from": impersonated, "to": NOBODY, "maxFeePerGas": "0x0", "maxPriorityFeePerGas": "0x0"}
    assert rpc("eth_sendTransaction", [unsigned])["error"]["code"] == METHOD_FORBIDDEN
    tx_hash = rpc("eth_sendTransaction", [unsigned], token=token)["result"]
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["from"] == impersonated
    rpc("anvil_stopImpersonatingAccount", [impersonated], token=token)


def test_gateway_info_and_registry_setting(devnet, rpc, registry):
    info = rpc("carbon_gatewayInfo")["result"]
    assert info["registry"] == registry.address and info["chainId"] == 47001
    assert info["bootstrapAdmin"] == devnet.bootstrap_address
    assert rpc("carbon_setRegistry", [NOBODY])["error"]["code"] == METHOD_FORBIDDEN
    token = devnet.operator_token
    assert rpc("carbon_setRegistry", ["not-an-address"], token=token)["error"]["code"] == INVALID_PARAMS
    assert rpc("carbon_setRegistry", [], token=token)["error"]["code"] == INVALID_PARAMS
    assert json.loads((devnet.folder / "devnet.json").read_text())["registry"] == registry.address


# -- the transaction pool's bound ---------------------------------------------------------------------------


def test_transactions_beyond_the_pool_limit_are_refused_together(devnet, rpc, w3, admin, http):
    token = devnet.operator_token
    rpc("evm_setAutomine", [False], token=token)  # let transactions wait in the pool
    try:
        nonce = w3.eth.get_transaction_count(admin.address)
        count = MAX_PENDING_TRANSACTIONS + 50
        raws = [signed(admin, nonce + i, to=NOBODY, gas=21_000)[0] for i in range(count)]

        def send(chunk: list[str]) -> list[dict]:
            batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}
                     for i, raw in enumerate(chunk)]  # fmt: skip
            return http.post(devnet.rpc_url, json=batch, timeout=30).json()

        for start in range(0, MAX_PENDING_TRANSACTIONS, 100):
            assert all("result" in answer for answer in send(raws[start : start + 100]))
        refused = send(raws[MAX_PENDING_TRANSACTIONS:])
        assert {answer["error"]["code"] for answer in refused} == {LIMIT_EXCEEDED}
        assert refused[0]["error"]["data"] == {"waiting": 500, "limit": 500}
    finally:
        rpc("evm_setAutomine", [True], token=token)
        rpc("evm_mine", token=token)
    assert w3.eth.get_transaction_count(admin.address) == nonce + MAX_PENDING_TRANSACTIONS
    assert all("result" in answer for answer in send(raws[MAX_PENDING_TRANSACTIONS:]))  # room again


# -- malformed input ----------------------------------------------------------------------------------------


def test_a_mixed_batch_is_answered_item_by_item_in_order(devnet, http):
    stranger = Account.create()
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "anvil_mine", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_sendRawTransaction", "params": [signed(stranger, 0)[0]]},
        {"jsonrpc": "2.0", "id": 4, "method": "no_such_method"},
        {"jsonrpc": "1.0", "id": 5, "method": "eth_chainId"},
        17,
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no answer
        {"jsonrpc": "2.0", "method": "anvil_mine"},  # a refused notification: no answer either
        {"jsonrpc": "2.0", "id": "six", "method": "eth_getBalance", "params": "not-a-list"},
        {"jsonrpc": "2.0", "id": 2**70, "method": "eth_sendRawTransaction", "params": ["0xdeadbeef"]},
        [],
        {"jsonrpc": "2.0", "id": [1], "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 9, "method": "eth_blockNumber"},
    ]
    answers = http.post(devnet.rpc_url, json=batch, timeout=30).json()
    assert [answer["id"] for answer in answers] == [1, 2, 3, 4, 5, None, "six", 2**70, None, None, 9]
    assert answers[0]["result"] == hex(47001) and answers[-1]["result"].startswith("0x")
    codes = [answer["error"]["code"] for answer in answers[1:-1]]
    assert codes == [
        METHOD_FORBIDDEN, SENDER_NOT_PERMITTED, METHOD_NOT_FOUND, INVALID_REQUEST, INVALID_REQUEST,
        INVALID_PARAMS, INVALID_PARAMS, INVALID_REQUEST, INVALID_REQUEST,
    ]  # fmt: skip


def test_a_batch_of_notifications_gets_no_body(devnet, http):
    reply = http.post(devnet.rpc_url, json=[{"jsonrpc": "2.0", "method": "eth_chainId"}] * 3, timeout=30)
    assert reply.status_code == 204 and reply.content == b""


def _malformed(rng: random.Random) -> tuple[bytes, list[int] | None]:
    """A malformed request body and the codes it must get, in order (0: a result; None: any error codes)."""
    ok = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}

    def body(value: Any) -> bytes:
        return json.dumps(value).encode()

    kind = rng.randrange(12)
    if kind == 0:  # garbage bytes (a number by chance is valid JSON but not a request: an error too)
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))), None
    if kind == 1:  # truncated JSON
        whole = body([ok, ok] if rng.random() < 0.5 else ok)
        return whole[: rng.randrange(1, len(whole) - 1)], [PARSE_ERROR]
    if kind == 2:  # valid JSON, not a request
        return body(rng.choice([1, "x", None, True, 3.5, -7])), [INVALID_REQUEST]
    if kind == 3:  # an empty batch
        return rng.choice([b"[]", b" [ ] "]), [INVALID_REQUEST]
    if kind == 4:  # wrong types
        field, value = rng.choice([("method", 1), ("method", None), ("method", []), ("jsonrpc", 2),
                                   ("id", {"a": 1}), ("id", [1]), ("id", True), ("id", 1.5)])  # fmt: skip
        return body({**ok, field: value}), [INVALID_REQUEST]
    if kind == 5:  # params of the wrong type
        return body({**ok, "method": "eth_call", "params": rng.choice([7, "x", True])}), [INVALID_PARAMS]
    if kind == 6:  # nested arrays: an array is not a request; too deep to parse is a parse error
        depth = rng.choice([2, 50, 100_000])
        return b"[" * depth + body(ok) + b"]" * depth, [INVALID_REQUEST if depth < 100 else PARSE_ERROR]
    if kind == 7:  # not UTF-8
        return body(ok)[:-1] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + b"}", [PARSE_ERROR]
    if kind == 8:  # an undecodable transaction, under a huge id that is echoed back
        raw = rng.choice(["0x", "0xzz", "", "0x" + "ab" * rng.randrange(1, 300), "0x02c0"])
        request = {**ok, "id": 2**200, "method": "eth_sendRawTransaction", "params": [raw]}
        return body(request), [INVALID_PARAMS]
    if kind == 9:  # a batch mixing valid, forbidden and invalid requests
        batch = [ok, {**ok, "method": "evm_mine"}, 5, {**ok, "method": 3}]
        return body(batch), [0, METHOD_FORBIDDEN, INVALID_REQUEST, INVALID_REQUEST]
    if kind == 10:  # a huge id is echoed back; past 4,300 digits Python refuses to parse it
        digits = rng.choice([100, 5000])
        request = b'{"jsonrpc":"2.0","id":' + b"9" * digits + b',"method":"eth_chainId"}'
        return request, [0] if digits < 4300 else None
    return body({**ok, "method": "eth_sendRawTransaction", "params": [rng.randrange(99)]}), [INVALID_PARAMS]


def test_a_thousand_malformed_requests_get_json_rpc_errors(devnet, http):
    rng = random.Random(47001)
    for _ in range(1000):
        body, expected = _malformed(rng)
        reply = http.post(devnet.rpc_url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert reply.status_code == 200, body[:100]
        answer = reply.json()
        answers = answer if isinstance(answer, list) else [answer]
        codes = [item["error"]["code"] if "error" in item else 0 for item in answers]
        if expected is None:
            assert codes and all(code < 0 for code in codes), (body[:100], answer)
        else:
            assert codes == expected, (body[:100], answer)
        assert INTERNAL_ERROR not in codes, (body[:100], answer)
    answer = http.post(devnet.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}).json()
    assert int(answer["result"], 16) > 0


def test_oversized_bodies_and_batches_are_refused(devnet, http):
    big = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["' + b"a" * MAX_BODY_BYTES + b'"]}'
    reply = http.post(devnet.rpc_url, data=big, headers={"Content-Type": "application/json"}, timeout=30)
    error = reply.json()["error"]
    assert error["code"] == INVALID_REQUEST and "exceeds" in error["message"]
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(MAX_BATCH_ITEMS + 1)]
    error = http.post(devnet.rpc_url, json=batch, timeout=30).json()["error"]
    assert error["code"] == INVALID_REQUEST and str(MAX_BATCH_ITEMS) in error["message"]
    answers = http.post(devnet.rpc_url, json=batch[:MAX_BATCH_ITEMS], timeout=30).json()
    assert len(answers) == MAX_BATCH_ITEMS and all(answer["result"] == hex(47001) for answer in answers)


def test_transactions_automining_left_pending_are_mined_by_the_sweep(devnet, rpc, w3, admin, http):
    """anvil's automining can leave a transaction pending until another one comes (one that arrived while a
    block was being built, or one that did not fit the block). The gateway mines whatever is still pending
    shortly after each send. Here blocks hold one transfer each and three wait in the pool when automining
    comes back on: anvil mines one block and leaves two pending, for sure."""
    import time

    from carbon_sdk.devnet.gateway import SWEEP_DELAY

    token = devnet.operator_token
    gas_limit = w3.eth.get_block("latest")["gasLimit"]
    assert rpc("anvil_setBlockGasLimit", [hex(21_000)], token=token)["result"] is True
    rpc("evm_setAutomine", [False], token=token)
    try:
        nonce = w3.eth.get_transaction_count(admin.address)
        sent = [signed(admin, nonce + i, to=NOBODY, gas=21_000) for i in range(3)]
        batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]}
                 for i, (raw, _) in enumerate(sent)]  # fmt: skip
        started = time.monotonic()
        assert all("result" in answer for answer in http.post(devnet.rpc_url, json=batch, timeout=30).json())
        rpc("evm_setAutomine", [True], token=token)  # before the send's sweep runs
        assert rpc("txpool_status", token=token)["result"]["pending"] == "0x2"  # automining left two
        receipts = [w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30) for _, tx_hash in sent]
        waited = time.monotonic() - started
    finally:
        rpc("evm_setAutomine", [True], token=token)
        rpc("anvil_setBlockGasLimit", [hex(gas_limit)], token=token)
    assert all(receipt["status"] == 1 for receipt in receipts)
    # One block each: nothing but a sweep (this send's, or an earlier test's still waiting) mined the two.
    assert len({receipt["blockNumber"] for receipt in receipts}) == 3
    assert waited < SWEEP_DELAY + 5


def test_the_sweep_leaves_the_pool_alone_while_automining_is_off(devnet, rpc, w3, admin, http):
    """An operator who turns automining off holds transactions in the pool until they mine them; a sweep
    started by an earlier send (here: one just before automining goes off) must not mine them."""
    import time

    from carbon_sdk.devnet.gateway import SWEEP_DELAY

    token = devnet.operator_token
    nonce = w3.eth.get_transaction_count(admin.address)
    first, second = (signed(admin, nonce + i, to=NOBODY, gas=21_000) for i in range(2))
    assert "result" in rpc("eth_sendRawTransaction", [first[0]])  # automined, and it starts a sweep
    rpc("evm_setAutomine", [False], token=token)
    try:
        assert "result" in rpc("eth_sendRawTransaction", [second[0]])
        time.sleep(SWEEP_DELAY * 3)  # both sweeps (the first send's and this one's) have run by now
        assert rpc("txpool_status", token=token)["result"]["pending"] == "0x1"
        assert w3.eth.get_transaction_count(admin.address) == nonce + 1
    finally:
        rpc("evm_setAutomine", [True], token=token)
        rpc("evm_mine", token=token)
    assert w3.eth.wait_for_transaction_receipt(second[1], timeout=30)["status"] == 1
