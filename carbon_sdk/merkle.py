"""Merkle trees compatible with OpenZeppelin's StandardMerkleTree (the JavaScript `@openzeppelin/merkle-tree`).

Monitoring readings (MRV) and personal carbon credit batches are committed on chain as one root; the data
stays off chain. Contracts check proofs with OpenZeppelin's `MerkleProof`, so trees must be built exactly
as OpenZeppelin's library builds them:

- leaf = keccak256(keccak256(abi.encode(values...))): hashing twice keeps a leaf from ever being read as
  an inner node (a second-preimage attack);
- inner node = keccak256 of its two children in ascending order (so a proof needs no left/right flags);
- leaves are sorted by hash and laid out as a complete binary tree in one array, root at index 0.

    tree = StandardMerkleTree.of([[account, 5_000_000], ...], ["address", "uint256"])
    tree.root, tree.get_proof(0)
    StandardMerkleTree.verify(tree.root, ["address", "uint256"], [account, 5_000_000], proof)

The same values and leaf types give the same root and proofs as the JavaScript library (tested against it).
"""

from __future__ import annotations

import functools

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from eth_abi import encode
from eth_hash.auto import keccak as _keccak
from eth_utils import keccak

from carbon_sdk.errors import InvalidInput


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    """keccak256(keccak256(abi.encode(value))), as OpenZeppelin's `standardLeafHash`."""
    return _leaf_hasher(tuple(leaf_encoding))(value)


def _static_word(kind: str) -> Callable[[Any], bytes] | None:
    """A fast ABI encoder of one static type (unsigned integers, addresses, bytes32), or None."""
    if kind.startswith("uint"):
        bits = int(kind[4:] or 256)
        limit = 1 << bits

        def uint(v: Any) -> bytes:
            if type(v) is not int or not 0 <= v < limit:
                raise ValueError(f"{v!r} is not a {kind}")
            return v.to_bytes(32, "big")
        return uint
    if kind == "address":
        def address(v: Any) -> bytes:
            # The hash uses the 20 bytes; a checksum is not re-validated here (the SDK checks addresses first).
            raw = bytes.fromhex(v[2:]) if isinstance(v, str) and v.startswith("0x") else v
            if not isinstance(raw, bytes) or len(raw) != 20:
                raise ValueError(f"{v!r} is not an address")
            return b"\x00" * 12 + raw
        return address
    if kind == "bytes32":
        def b32(v: Any) -> bytes:
            raw = bytes.fromhex(v[2:]) if isinstance(v, str) else bytes(v)
            if len(raw) != 32:
                raise ValueError(f"{v!r} is not bytes32")
            return raw
        return b32
    return None


@functools.lru_cache(maxsize=64)
def _leaf_hasher(leaf_encoding: tuple[str, ...]) -> Callable[[Sequence[Any]], bytes]:
    """The leaf hash function for an encoding: static word types are packed directly (about 4x faster than
    eth_abi, which matters for million-entry credit batches); anything else goes through eth_abi."""
    words = [_static_word(kind) for kind in leaf_encoding]

    def generic(value: Sequence[Any]) -> bytes:
        try:
            return keccak(keccak(encode(list(leaf_encoding), list(value))))
        except Exception as exc:  # eth_abi names the offending value
            raise InvalidInput(f"cannot encode {value!r} as ({', '.join(leaf_encoding)}): {exc}") from None

    if any(w is None for w in words):
        return generic

    def packed(value: Sequence[Any]) -> bytes:
        if len(value) != len(words):
            raise InvalidInput(f"{value!r} has {len(value)} values, the encoding ({', '.join(leaf_encoding)}) "
                               f"{len(words)}")
        try:
            data = b"".join(word(v) for word, v in zip(words, value))  # type: ignore[misc]
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"cannot encode {value!r} as ({', '.join(leaf_encoding)}): {exc}") from None
        return _keccak(_keccak(data))

    return packed


def hash_pair(a: bytes, b: bytes) -> bytes:
    return _keccak(a + b) if a < b else _keccak(b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes | str]) -> bytes:
    node = leaf
    for sibling in proof:
        node = hash_pair(node, _bytes32(sibling))
    return node


def _bytes32(value: bytes | str) -> bytes:
    data = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    if len(data) != 32:
        raise InvalidInput(f"a proof node has 32 bytes, not {len(data)}")
    return data


@dataclass(frozen=True)
class StandardMerkleTree:
    """An OpenZeppelin-compatible Merkle tree over a list of ABI-encodable values."""

    tree: tuple[bytes, ...]  # the complete binary tree, root first
    values: tuple[tuple[Any, ...], ...]  # in the order given
    tree_indices: tuple[int, ...]  # tree index of each value's leaf
    leaf_encoding: tuple[str, ...]

    @classmethod
    def of(cls, values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str]) -> "StandardMerkleTree":
        """Build the tree (leaves sorted by hash, as OpenZeppelin's default ``sortLeaves: true``)."""
        if not values:
            raise InvalidInput("a Merkle tree needs at least one value")
        hasher = _leaf_hasher(tuple(leaf_encoding))
        # (hash, index) pairs sort by hash as OpenZeppelin does; equal hashes (repeated values) keep their order.
        hashed = sorted([(hasher(v), i) for i, v in enumerate(values)])
        size = 2 * len(hashed) - 1
        tree: list[bytes] = [b""] * size
        indices = [0] * len(values)
        for position, (leaf, value_index) in enumerate(hashed):
            tree_index = size - 1 - position
            tree[tree_index] = leaf
            indices[value_index] = tree_index
        for i in range(size - 1 - len(hashed), -1, -1):
            tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
        kept = tuple(v if type(v) is tuple else tuple(v) for v in values)
        return cls(tuple(tree), kept, tuple(indices), tuple(leaf_encoding))

    @property
    def root(self) -> str:
        return _hex(self.tree[0])

    def __len__(self) -> int:
        return len(self.values)

    def leaf(self, index: int) -> bytes:
        return self.tree[self._tree_index(index)]

    def get_proof(self, index: int) -> list[str]:
        """The sibling hashes from the value's leaf up to (not including) the root."""
        node = self._tree_index(index)
        proof = []
        while node > 0:
            sibling = node - 1 if node % 2 == 0 else node + 1
            proof.append(_hex(self.tree[sibling]))
            node = (node - 1) // 2
        return proof

    def index_of(self, value: Sequence[Any]) -> int:
        """The position of ``value`` in the values given to :meth:`of`."""
        wanted = tuple(value)
        for i, candidate in enumerate(self.values):
            if candidate == wanted:
                return i
        raise InvalidInput(f"{value!r} is not in the tree")

    @staticmethod
    def verify(root: str | bytes, leaf_encoding: Sequence[str], value: Sequence[Any],
               proof: Sequence[bytes | str]) -> bool:
        """Whether ``value`` is in the tree with this root, by this proof (what `MerkleProof.verify` checks)."""
        return process_proof(leaf_hash(leaf_encoding, value), proof) == _bytes32(root)

    def _tree_index(self, index: int) -> int:
        if not 0 <= index < len(self.values):
            raise InvalidInput(f"index {index} is outside the tree's {len(self.values)} values")
        return self.tree_indices[index]

    # -- OpenZeppelin's JSON dump format ("standard-v1") ---------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {
            "format": "standard-v1",
            "leafEncoding": list(self.leaf_encoding),
            "tree": [_hex(node) for node in self.tree],
            "values": [{"value": [_json_value(x) for x in v], "treeIndex": i}
                       for v, i in zip(self.values, self.tree_indices)],
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.dump()))
        return path

    @classmethod
    def load(cls, data: dict[str, Any]) -> "StandardMerkleTree":
        """A tree from OpenZeppelin's dump; checks that every node is consistent with its leaves."""
        if data.get("format") != "standard-v1":
            raise InvalidInput(f"unknown Merkle tree format {data.get('format')!r}")
        encoding = tuple(data["leafEncoding"])
        values = tuple(tuple(_from_json(x, t) for x, t in zip(item["value"], encoding)) for item in data["values"])
        tree = cls(tuple(bytes.fromhex(n[2:]) for n in data["tree"]), values,
                   tuple(item["treeIndex"] for item in data["values"]), encoding)
        tree.validate()
        return tree

    def validate(self) -> None:
        """Raise InvalidInput unless every leaf and inner node is what the values imply."""
        for value, index in zip(self.values, self.tree_indices):
            if self.tree[index] != leaf_hash(self.leaf_encoding, value):
                raise InvalidInput(f"leaf {index} does not match its value {value!r}")
        for i in range(len(self.tree) // 2 - 1, -1, -1):
            if 2 * i + 2 < len(self.tree) and self.tree[i] != hash_pair(self.tree[2 * i + 1], self.tree[2 * i + 2]):
                raise InvalidInput(f"inner node {i} is not the hash of its children")


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return _hex(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # OpenZeppelin dumps integers as decimal strings (they may exceed 2**53)
    return value


def _from_json(value: Any, abi_type: str) -> Any:
    if abi_type.startswith(("uint", "int")):
        return int(value, 0) if isinstance(value, str) else int(value)
    if abi_type.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value[2:])
    return value
