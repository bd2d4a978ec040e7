"""The SDK's event decoder against web3.py's, for every event of every compiled contract.

Events whose fields are all one-word types (most of this system's) are read word by word, without eth-abi;
the others go through eth-abi. Both must give what web3.py gives for the same log.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from eth_abi import encode
from web3 import Web3

from carbon_sdk.abi import ContractABI, canonical
from carbon_sdk.errors import ConfigurationError

RANDOM = random.Random(20261123)
SAMPLES = 12


def _value(kind: str, item: dict[str, Any]) -> Any:
    """A random value of an ABI type, edge values included (zero, the maximum, negative numbers)."""
    if kind.endswith("]"):
        inner, size = kind[: kind.rindex("[")], kind[kind.rindex("[") + 1 : -1]
        component = dict(item, type=item["type"][: item["type"].rindex("[")])
        return [_value(inner, component) for _ in range(int(size) if size else RANDOM.randint(0, 3))]
    if kind.startswith("("):
        return tuple(_value(canonical(c), c) for c in item["components"])
    if kind == "address":
        return Web3.to_checksum_address(RANDOM.randbytes(20))
    if kind == "bool":
        return RANDOM.random() < 0.5
    if kind in ("string", "bytes"):
        raw = RANDOM.randbytes(RANDOM.randint(0, 70))
        return raw.hex() if kind == "string" else raw
    bits = re.fullmatch(r"u?int(\d+)", kind)
    if bits:
        top = 2 ** int(bits[1])
        if kind.startswith("u"):
            return RANDOM.choice([0, top - 1, RANDOM.randrange(top)])
        return RANDOM.choice([-(top // 2), top // 2 - 1, -1, RANDOM.randrange(top) - top // 2])
    width = re.fullmatch(r"bytes(\d+)", kind)
    assert width, f"no generator for {kind}"
    return RANDOM.randbytes(int(width[1]))


def _log(event: dict[str, Any], topic: bytes, address: str) -> dict[str, Any]:
    """A raw JSON-RPC log of ``event`` with random arguments (dynamic indexed ones only by their hash)."""
    topics, plain_types, plain_values = ["0x" + topic.hex()], [], []
    for item in event["inputs"]:
        kind = canonical(item)
        value = _value(kind, item)
        if item.get("indexed"):
            dynamic = kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("(")
            word = RANDOM.randbytes(32) if dynamic else encode([kind], [value])
            topics.append("0x" + word.hex())
        else:
            plain_types.append(kind)
            plain_values.append(value)
    return {
        "address": address.lower(), "topics": topics, "data": "0x" + encode(plain_types, plain_values).hex(),
        "blockNumber": "0x2a", "transactionHash": "0x" + RANDOM.randbytes(32).hex(), "logIndex": "0x3",
        "blockHash": "0x" + RANDOM.randbytes(32).hex(), "transactionIndex": "0x0", "removed": False,
    }  # fmt: skip


def _plain(value: Any) -> Any:
    """web3's decoded value in the SDK's shapes: structs as dicts by name are compared as tuples of values."""
    if isinstance(value, dict):
        return tuple(_plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _field(kind: str, name: str, indexed: bool = False) -> dict[str, Any]:
    return {"type": kind, "name": name, "indexed": indexed, "internalType": kind}


# One-word types the contracts' events do not use yet (signed integers, short fixed bytes), indexed and not.
SYNTHETIC = [
    {"type": "event", "name": "Signed", "anonymous": False, "inputs": [
        _field("int256", "a"), _field("int8", "b", True), _field("int40", "c"), _field("uint16", "d")]},
    {"type": "event", "name": "ShortBytes", "anonymous": False, "inputs": [
        _field("bytes4", "a", True), _field("bytes1", "b"), _field("bytes20", "c"), _field("bool", "d", True)]},
    {"type": "event", "name": "Mixed", "anonymous": False, "inputs": [
        _field("int16", "a"), _field("string", "b"), _field("bytes3", "c", True), _field("int64[]", "d")]},
]  # fmt: skip


def _events(artifacts) -> list[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """(contract, its ABI, event) for every event of every compiled contract, and the synthetic ones."""
    found = [(name, artifact.abi, item) for name, artifact in sorted(artifacts.items()) for item in artifact.abi
             if item.get("type") == "event" and not item.get("anonymous")]  # fmt: skip
    return found + [("Synthetic", SYNTHETIC, item) for item in SYNTHETIC]


def test_every_event_decodes_as_web3_decodes_it(artifacts):
    events = _events(artifacts)
    assert len(events) > 50  # the system's contracts and their OpenZeppelin bases
    fast = 0
    for contract_name, contract_abi, event in events:
        abi = ContractABI(contract_name, contract_abi)
        topic = abi.event_topics[event["name"]]
        fast += abi._events[topic].words is not None
        reference = Web3().eth.contract(abi=[event]).events[event["name"]]()
        for _ in range(SAMPLES):
            address = Web3.to_checksum_address(RANDOM.randbytes(20))
            log = _log(event, topic, address)
            ours = abi.decode_log(log)
            theirs = reference.process_log({**log, "topics": [bytes.fromhex(t[2:]) for t in log["topics"]],
                                            "data": bytes.fromhex(log["data"][2:])})  # fmt: skip
            where = f"{contract_name}.{event['name']}"
            assert ours is not None and ours.name == event["name"], where
            assert list(ours.args) == [i["name"] for i in event["inputs"]], where
            assert {k: _plain(v) for k, v in ours.args.items()} == {k: _plain(v) for k, v in theirs["args"].items()}, where
            assert (ours.address, ours.block_number, ours.log_index) == (address, 42, 3), where
    assert fast > len(events) // 2  # most events take the word-by-word path


@pytest.mark.parametrize("damage", ["short data", "long data", "missing topic"])
def test_a_log_of_the_wrong_shape_is_refused_with_the_event_named(artifacts, damage):
    """The word-by-word path reads only logs of exactly the event's shape; any other goes the general way,
    which says which event did not fit rather than read past the data or guess at a missing topic."""
    abi = ContractABI("ConsortiumRegistry", artifacts["ConsortiumRegistry"].abi)
    event = next(item for item in abi.abi if item.get("type") == "event" and item["name"] == "MemberEnrolled")
    topic = abi.event_topics["MemberEnrolled"]
    assert abi._events[topic].words is not None
    log = _log(event, topic, Web3.to_checksum_address(RANDOM.randbytes(20)))
    if damage == "short data":
        log["data"] = log["data"][:-64]
    elif damage == "long data":
        log["data"] += "00" * 32
    else:
        log["topics"] = log["topics"][:-1]
    if damage == "long data":  # eth-abi reads the words it needs and ignores a tail: so does the SDK
        assert abi.decode_log(log).args == abi.decode_log({**log, "data": log["data"][:-64]}).args
        return
    with pytest.raises(ConfigurationError, match=r"ConsortiumRegistry\.MemberEnrolled log at 0x[0-9a-f]{40} "):
        abi.decode_log(log)
