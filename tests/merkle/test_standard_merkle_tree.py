"""carbon_sdk.merkle against OpenZeppelin's own JavaScript library: same roots, same proofs."""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from eth_account import Account

from carbon_sdk.errors import InvalidInput
from carbon_sdk.merkle import StandardMerkleTree
from carbon_sdk.toolchain import PROJECT_ROOT

REFERENCE = """
const { StandardMerkleTree } = require(process.argv[1]);
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const tree = StandardMerkleTree.of(input.values, input.encoding);
const proofs = input.values.map((_, i) => tree.getProof(i));
console.log(JSON.stringify({ root: tree.root, proofs }));
"""


def reference(values: list, encoding: list[str]) -> dict:
    """Root and proofs from @openzeppelin/merkle-tree (node), for JSON-able values."""
    module = str(PROJECT_ROOT / "node_modules" / "@openzeppelin" / "merkle-tree")
    reply = subprocess.run(["node", "-e", REFERENCE, module], input=json.dumps({"values": values, "encoding": encoding}),
                           capture_output=True, text=True, check=True)
    return json.loads(reply.stdout)


def _as_json(values: list) -> list:
    return [[str(x) if isinstance(x, int) else ("0x" + x.hex() if isinstance(x, bytes) else x) for x in v]
            for v in values]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 257])
def test_same_root_and_proofs_as_openzeppelin_javascript(size):
    rng = random.Random(size)
    values = [[Account.create().address, rng.randrange(0, 10**12), rng.randrange(1, 2**32)] for _ in range(size)]
    encoding = ["address", "uint256", "uint32"]
    tree = StandardMerkleTree.of(values, encoding)
    expected = reference(_as_json(values), encoding)
    assert tree.root == expected["root"]
    assert [tree.get_proof(i) for i in range(size)] == expected["proofs"]
    for i, value in enumerate(values):
        assert StandardMerkleTree.verify(tree.root, encoding, value, tree.get_proof(i))


def test_readings_with_bytes32_and_strings_match_too():
    values = [["sensor-%d" % i, i * 1_000, bytes([i]) * 32] for i in range(20)]
    encoding = ["string", "uint64", "bytes32"]
    tree = StandardMerkleTree.of(values, encoding)
    assert tree.root == reference(_as_json(values), encoding)["root"]


def test_a_proof_does_not_verify_another_value_or_root():
    values = [[Account.create().address, 10 * i] for i in range(1, 9)]
    tree = StandardMerkleTree.of(values, ["address", "uint256"])
    proof = tree.get_proof(3)
    assert StandardMerkleTree.verify(tree.root, ["address", "uint256"], values[3], proof)
    assert not StandardMerkleTree.verify(tree.root, ["address", "uint256"], [values[3][0], 31], proof)
    assert not StandardMerkleTree.verify(tree.root, ["address", "uint256"], values[4], proof)
    other = StandardMerkleTree.of(values[:-1], ["address", "uint256"])
    assert not StandardMerkleTree.verify(other.root, ["address", "uint256"], values[3], proof)


def test_dump_and_load_round_trip_and_tampering_is_detected():
    values = [[Account.create().address, i] for i in range(5)]
    tree = StandardMerkleTree.of(values, ["address", "uint256"])
    loaded = StandardMerkleTree.load(json.loads(json.dumps(tree.dump())))
    assert loaded.root == tree.root and loaded.get_proof(2) == tree.get_proof(2)
    dumped = tree.dump()
    dumped["values"][1]["value"][1] = "999"
    with pytest.raises(InvalidInput, match="does not match"):
        StandardMerkleTree.load(dumped)


def test_bad_input_is_a_clear_error():
    with pytest.raises(InvalidInput, match="at least one"):
        StandardMerkleTree.of([], ["uint256"])
    with pytest.raises(InvalidInput, match="cannot encode"):
        StandardMerkleTree.of([["not-an-address", 1]], ["address", "uint256"])
    tree = StandardMerkleTree.of([[1]], ["uint256"])
    with pytest.raises(InvalidInput, match="outside"):
        tree.get_proof(1)


def test_the_fast_leaf_encoder_matches_eth_abi_on_random_values():
    """Static word types are packed without eth_abi (for million-entry batches): same hashes, same errors."""
    import random

    from eth_abi import encode
    from eth_utils import keccak

    from carbon_sdk.errors import InvalidInput
    from carbon_sdk.merkle import leaf_hash

    encoding = ("uint256", "address", "uint128", "uint64", "bytes32", "uint8")
    rng = random.Random(42)
    for _ in range(500):
        value = (rng.randrange(2**256), "0x" + rng.randbytes(20).hex(), rng.randrange(2**128), rng.randrange(2**64),
                 rng.randbytes(32), rng.randrange(256))
        assert leaf_hash(encoding, value) == keccak(keccak(encode(list(encoding), list(value))))
    for bad in ((2**128, "0x" + "11" * 20), (-1, "0x" + "11" * 20), (1, "0x1234"), (True, "0x" + "11" * 20)):
        with pytest.raises(InvalidInput):
            leaf_hash(("uint128", "address"), bad)
