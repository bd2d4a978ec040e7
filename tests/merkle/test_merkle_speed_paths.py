"""The fast paths of carbon_sdk.merkle: all_proofs, the column-wise leaf encoder and the raw keccak fallback
give exactly what the plain per-value algorithm gives."""

from __future__ import annotations

import random

import pytest
from eth_abi import encode
from eth_utils import keccak

from carbon_sdk import merkle
from carbon_sdk.errors import InvalidInput
from carbon_sdk.merkle import StandardMerkleTree, leaf_hash

CREDIT_ENCODING = ("uint256", "address", "uint128", "uint128", "uint256", "address", "uint256")
MANAGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _credit_values(count: int, seed: int = 1) -> list[tuple]:
    """Entries shaped as a credit batch's: repeated accounts, constant batch id, manager and chain id."""
    rng = random.Random(seed)
    accounts = ["0x" + rng.randbytes(20).hex() for _ in range(37)]
    return [(i, accounts[i % len(accounts)] if i % 5 else "0x" + "5a" * 20, 1_000 + i % 997, rng.choice([0, 0, 7]),
             12, MANAGER, 47001) for i in range(count)]


def _reference_tree(values: list, encoding: tuple[str, ...]) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """OpenZeppelin's algorithm written plainly, on eth_abi and eth_utils alone (the module's original code)."""
    def pair(a: bytes, b: bytes) -> bytes:
        return keccak(a + b) if a < b else keccak(b + a)

    hashed = sorted((keccak(keccak(encode(list(encoding), list(v)))), i) for i, v in enumerate(values))
    size = 2 * len(hashed) - 1
    tree = [b""] * size
    indices = [0] * len(values)
    for position, (leaf, value_index) in enumerate(hashed):
        tree[size - 1 - position] = leaf
        indices[value_index] = size - 1 - position
    for i in range(size - 1 - len(hashed), -1, -1):
        tree[i] = pair(tree[2 * i + 1], tree[2 * i + 2])
    return tuple(tree), tuple(indices)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_all_proofs_are_every_get_proof_and_verify(size):
    values = _credit_values(size, seed=size)
    tree = StandardMerkleTree.of(values, CREDIT_ENCODING)
    proofs = tree.all_proofs()
    assert len(proofs) == size
    assert proofs == [[bytes.fromhex(node[2:]) for node in tree.get_proof(i)] for i in range(size)]
    assert all(type(node) is bytes and len(node) == 32 for proof in proofs for node in proof)
    for value, proof in zip(values, proofs):
        assert StandardMerkleTree.verify(tree.root, CREDIT_ENCODING, value, proof)
    if size > 1:  # each proof is its own list
        proofs[0].append(b"\x00" * 32)
        assert proofs[1] == [bytes.fromhex(node[2:]) for node in tree.get_proof(1)]


def test_all_proofs_with_repeated_values_and_a_dynamic_encoding():
    values = [["sensor-%d" % (i % 4), i % 3] for i in range(23)]  # repeated values: equal leaves
    tree = StandardMerkleTree.of(values, ["string", "uint64"])
    proofs = tree.all_proofs()
    assert proofs == [[bytes.fromhex(node[2:]) for node in tree.get_proof(i)] for i in range(len(values))]
    assert all(StandardMerkleTree.verify(tree.root, ["string", "uint64"], v, p) for v, p in zip(values, proofs))


@pytest.mark.parametrize("size", list(range(1, 40)) + [64, 65, 127, 128, 129, 1000])
def test_same_tree_as_the_plain_algorithm(size):
    values = _credit_values(size, seed=size)
    tree = StandardMerkleTree.of(values, CREDIT_ENCODING)
    assert (tree.tree, tree.tree_indices) == _reference_tree(values, CREDIT_ENCODING)
    assert tree.values == tuple(tuple(v) for v in values)


def test_the_column_encoder_takes_what_the_per_value_encoder_takes():
    """Lists or tuples, str or 20-byte addresses, lower or mixed case, constant or varying columns."""
    encoding = ("uint8", "address", "bytes32", "uint256")
    rng = random.Random(7)
    raw = rng.randbytes(20)
    values, normal = [], []
    for i in range(300):
        other = rng.randbytes(20)
        address, address_bytes = [(raw, raw), ("0x" + raw.hex(), raw), ("0x" + raw.hex().upper(), raw),
                                  ("0x" + other.hex(), other)][i % 4]
        word, word_bytes = [(b"\x01" * 32,) * 2, ("0x" + "ab" * 32, b"\xab" * 32), (rng.randbytes(32),) * 2][i % 3]
        value = [i % 256, address, word, 2**256 - 1]
        values.append(tuple(value) if i % 2 else value)
        normal.append([i % 256, "0x" + address_bytes.hex(), word_bytes, 2**256 - 1])
    tree = StandardMerkleTree.of(values, encoding)
    assert (tree.tree, tree.tree_indices) == _reference_tree(normal, encoding)
    assert [tree.leaf(i) for i in range(len(values))] == [leaf_hash(encoding, v) for v in values]
    constant = StandardMerkleTree.of([(5, MANAGER, b"\x02" * 32, 9)] * 10, encoding)
    assert (constant.tree, constant.tree_indices) == _reference_tree([(5, MANAGER, b"\x02" * 32, 9)] * 10, encoding)


@pytest.mark.parametrize("bad, message", [
    ((300, MANAGER), "cannot encode"),               # a uint8 out of range
    ((True, MANAGER), "cannot encode"),              # a bool is not a uint
    ((-1, MANAGER), "cannot encode"),
    ((1.0, MANAGER), "cannot encode"),
    ((1, "0x1234"), "cannot encode"),                # a short address
    ((1, bytearray(20)), "cannot encode"),           # an address must be bytes or a 0x string
    ((1, MANAGER, 3), "has 3 values"),
    ((1,), "has 1 values"),
])
def test_a_bad_value_among_many_is_named_as_before(bad, message):
    values = [(i % 256, MANAGER) for i in range(1000)]
    for at in (0, 999):
        with pytest.raises(InvalidInput, match=message) as raised:
            StandardMerkleTree.of(values[:at] + [bad] + values[at:], ("uint8", "address"))
        assert repr(bad[0]) in str(raised.value)
    with pytest.raises(InvalidInput, match=message):  # a column of one repeated bad value too
        StandardMerkleTree.of([bad] * 50, ("uint8", "address"))


def test_the_raw_pycryptodome_keccak_matches(monkeypatch):
    raw = merkle._raw_pycryptodome_keccak()
    assert raw is not None
    rng = random.Random(3)
    for length in [0, 1, 31, 32, 64, 135, 136, 137, 224, 1000]:
        data = rng.randbytes(length)
        assert raw(data) == keccak(data)
    values = _credit_values(300)
    expected = StandardMerkleTree.of(values, CREDIT_ENCODING)
    monkeypatch.setattr(merkle, "_Keccak256", None)  # as without safe-pysha3: pycryptodome's raw functions
    assert merkle._bulk_keccak() is not None
    assert StandardMerkleTree.of(values, CREDIT_ENCODING) == expected


