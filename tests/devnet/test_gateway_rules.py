"""The permissioning gateway's rules, over raw HTTP against the session's devnet."""

from __future__ import annotations

import json
import random

import pytest
import requests
from eth_account import Account

from carbon_sdk import Role

PERMISSION, FORBIDDEN, NOT_FOUND, PARSE, INVALID_REQUEST, INVALID_PARAMS = -32001, -32003, -32601, -32700, -32600, -32602


@pytest.fixture
def rpc(devnet):
    session = requests.Session()

    def call(method: str, params: list | None = None, token: str | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        reply = session.post(devnet.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
                             headers=headers, timeout=10)
        return reply.json()

    return call


def _signed_transfer(account, nonce: int = 0) -> str:
    tx = {"type": 2, "chainId": 47001, "nonce": nonce, "gas": 21_000, "maxFeePerGas": 0,
          "maxPriorityFeePerGas": 0, "to": account.address, "value": 0, "data": b""}
    return "0x" + bytes(Account.sign_transaction(tx, account.key).raw_transaction).hex()


def test_a_non_members_transaction_is_refused_and_never_mined(rpc, manifest):
    stranger = Account.create()
    raw = _signed_transfer(stranger)
    answer = rpc("eth_sendRawTransaction", [raw])
    assert answer["error"]["code"] == PERMISSION
    assert stranger.address in answer["error"]["message"]
    tx_hash = "0x" + Account.sign_transaction(  # the hash the node would know it by
        {"type": 2, "chainId": 47001, "nonce": 0, "gas": 21_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
         "to": stranger.address, "value": 0, "data": b""}, stranger.key).hash.hex()
    rpc("eth_blockNumber")
    assert rpc("eth_getTransactionByHash", [tx_hash])["result"] is None
    assert rpc("eth_getTransactionReceipt", [tx_hash])["result"] is None
    assert int(rpc("eth_getTransactionCount", [stranger.address, "pending"])["result"], 16) == 0


def test_a_members_transaction_is_mined_until_it_is_suspended(rpc, make_org, manifest):
    handle = make_org(Role.ENTERPRISE)
    member = Account.create()
    handle.admin.registry.enrol(member.address, Role.ENTERPRISE)
    answer = rpc("eth_sendRawTransaction", [_signed_transfer(member, 0)])
    assert "result" in answer, answer
    receipt = rpc("eth_getTransactionReceipt", [answer["result"]])["result"]
    assert receipt is not None and receipt["status"] == "0x1"
    handle.admin.registry.suspend(member.address)
    refused = rpc("eth_sendRawTransaction", [_signed_transfer(member, 1)])
    assert refused["error"]["code"] == PERMISSION
    assert int(rpc("eth_getTransactionCount", [member.address, "pending"])["result"], 16) == 1


@pytest.mark.parametrize("method, params", [
    ("anvil_mine", ["0x1"]),
    ("evm_snapshot", []),
    ("evm_mine", []),
    ("anvil_setBalance", ["0x" + "11" * 20, "0x1"]),
    ("hardhat_mine", ["0x1"]),
    ("debug_traceTransaction", ["0x" + "00" * 32]),
    ("personal_listAccounts", []),
    ("eth_sendTransaction", [{"from": "0x" + "11" * 20, "to": "0x" + "22" * 20}]),
    ("anvil_impersonateAccount", ["0x" + "11" * 20]),
])
def test_node_control_methods_are_forbidden_without_the_operator_token(rpc, method, params):
    answer = rpc(method, params)
    assert answer["error"]["code"] == FORBIDDEN, answer
    assert "operator token" in answer["error"]["message"]
    wrong = rpc(method, params, token="not-the-token")
    assert wrong["error"]["code"] == FORBIDDEN


def test_the_operator_token_allows_node_control(rpc, devnet):
    before = int(rpc("eth_blockNumber")["result"], 16)
    assert rpc("anvil_mine", ["0x3"])["error"]["code"] == FORBIDDEN
    assert int(rpc("eth_blockNumber")["result"], 16) == before  # the refused call had no effect
    assert "error" not in rpc("anvil_mine", ["0x3"], token=devnet.operator_token)
    assert int(rpc("eth_blockNumber")["result"], 16) == before + 3
    rich = "0x" + "33" * 20
    rpc("anvil_setBalance", [rich, "0x64"])
    assert rpc("eth_getBalance", [rich, "latest"])["result"] == "0x0"
    rpc("anvil_setBalance", [rich, "0x64"], token=devnet.operator_token)
    assert rpc("eth_getBalance", [rich, "latest"])["result"] == "0x64"


def test_unknown_methods_and_gateway_info(rpc, devnet, manifest):
    assert rpc("eth_doesNotExist")["error"]["code"] == NOT_FOUND
    info = rpc("carbon_gatewayInfo")["result"]
    assert info["registry"].lower() == manifest.contract("ConsortiumRegistry").address.lower()
    assert info["bootstrapAdmin"] == devnet.bootstrap_address
    assert rpc("carbon_setRegistry", ["0x" + "44" * 20])["error"]["code"] == FORBIDDEN


def test_a_mixed_batch_is_answered_item_by_item_in_order(devnet):
    stranger = Account.create()
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "anvil_mine", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_sendRawTransaction", "params": [_signed_transfer(stranger)]},
        {"jsonrpc": "2.0", "id": 4, "method": "no_such_method", "params": []},
        {"jsonrpc": "1.0", "id": 5, "method": "eth_chainId"},
        17,
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},  # a notification: no answer
        {"jsonrpc": "2.0", "id": "six", "method": "eth_getBalance", "params": "not-a-list"},
        {"jsonrpc": "2.0", "id": 7, "method": "eth_sendRawTransaction", "params": ["0xdeadbeef"]},
    ]
    answers = requests.post(devnet.rpc_url, json=batch, timeout=10).json()
    assert [a.get("id") for a in answers] == [1, 2, 3, 4, 5, None, "six", 7]
    assert answers[0]["result"] == hex(47001)
    assert [a["error"]["code"] for a in answers[1:]] == [FORBIDDEN, PERMISSION, NOT_FOUND, INVALID_REQUEST,
                                                         INVALID_REQUEST, INVALID_PARAMS, INVALID_PARAMS]


def _malformed(rng: random.Random) -> tuple[bytes, int | None]:
    """A malformed request and the error code it must get (None: any JSON-RPC error)."""
    kind = rng.randrange(10)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))), PARSE  # garbage bytes
    if kind == 1:
        whole = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        return whole[: rng.randrange(1, len(whole) - 1)].encode(), PARSE  # truncated JSON
    if kind == 2:
        return json.dumps(rng.choice([1, "x", None, True, 3.5])).encode(), INVALID_REQUEST  # not an object
    if kind == 3:
        return b"[]", INVALID_REQUEST  # empty batch
    if kind == 4:
        return json.dumps({"jsonrpc": "2.0", "id": 1, "method": rng.choice([1, None, [], {}])}).encode(), INVALID_REQUEST
    if kind == 5:
        return json.dumps({"jsonrpc": "2.0", "id": {"nested": 1}, "method": "eth_chainId"}).encode(), INVALID_REQUEST
    if kind == 6:
        return json.dumps([[{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}]]).encode(), None  # nested arrays
    if kind == 7:
        return b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}\xff\xfe', PARSE  # not UTF-8
    if kind == 8:
        params = [rng.choice(["0x", "0xzz", "", 12, None, "0x" + "ab" * rng.randrange(1, 300)])]
        return json.dumps({"jsonrpc": "2.0", "id": 2**200, "method": "eth_sendRawTransaction", "params": params}).encode(), None
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": 7}).encode(), INVALID_PARAMS


def test_a_thousand_malformed_requests_get_errors_and_the_gateway_survives(devnet):
    rng = random.Random(20261122)
    session = requests.Session()
    for _ in range(1000):
        body, code = _malformed(rng)
        reply = session.post(devnet.rpc_url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        answer = reply.json()
        errors = [a["error"]["code"] for a in (answer if isinstance(answer, list) else [answer])]
        assert errors and all(isinstance(c, int) for c in errors), (body, answer)
        if code is not None:
            assert errors == [code], (body, answer)
    assert session.post(devnet.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}).json()["result"]
