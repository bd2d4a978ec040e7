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
    tree.all_proofs()  # every value's proof at once, as raw 32-byte hashes (a million in about two seconds)
    StandardMerkleTree.verify(tree.root, ["address", "uint256"], [account, 5_000_000], proof)

The same values and leaf types give the same root and proofs as the JavaScript library (tested against it).
"""

from __future__ import annotations

import functools
import gc
import json
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from eth_abi import encode
from eth_hash.auto import keccak as _eth_keccak
from eth_utils import keccak

from carbon_sdk.abi import Keccak256State as _Keccak256  # None without safe-pysha3
from carbon_sdk.abi import keccak256 as _keccak
from carbon_sdk.errors import InvalidInput

_CHUNK = 1 << 15  # values per step of the column-wise leaf encoder (bounds its temporary memory)
_EMPTY_KECCAK = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")

KeccakFunction = Callable[[bytes], bytes]
_Word = tuple[Callable[[Any], bytes], Optional[int]]  # a static type's encoder, a uint's bound

def _raw_pycryptodome_keccak() -> KeccakFunction | None:
    """keccak256 calling pycryptodome's C functions on one reused state: ~4x cheaper per hash than eth_hash's
    pycryptodome backend, which builds a hash object per call. Not thread-safe: one per bulk computation."""
    try:
        from Crypto.Hash.keccak import _raw_keccak_lib as lib
        from Crypto.Util._raw_api import (SmartPointer, VoidPointer, c_size_t, c_ubyte, c_uint8_ptr,
                                          create_string_buffer, get_raw_buffer)

        handle = VoidPointer()
        if lib.keccak_init(handle.address_of(), c_size_t(64), c_ubyte(24)):
            return None
        owner = SmartPointer(handle.get(), lib.keccak_destroy)
        state, out, length, padding = owner.get(), create_string_buffer(32), c_size_t(32), c_ubyte(1)
        reset, absorb, digest = lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest

        def raw_keccak(data: bytes) -> bytes:
            reset(state)
            absorb(state, c_uint8_ptr(data), c_size_t(len(data)))
            digest(state, out, length, padding)
            return get_raw_buffer(out)

        raw_keccak.owner = owner  # type: ignore[attr-defined]  # frees the state with the function
        if raw_keccak(b"") != _EMPTY_KECCAK or raw_keccak(b"a" * 200) != _eth_keccak(b"a" * 200):
            return None
        return raw_keccak
    except Exception:  # pragma: no cover - an unexpected pycryptodome: the portable path
        return None


def _bulk_keccak() -> KeccakFunction | None:
    """The keccak256 for one bulk computation: None means "call _pysha3 inline" (the fastest)."""
    if _Keccak256 is not None:
        return None
    return _raw_pycryptodome_keccak() or _eth_keccak  # pragma: no cover - depends on the environment


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
def _static_words(leaf_encoding: tuple[str, ...]) -> tuple[_Word, ...] | None:
    """Per type of an all-static encoding: its word encoder and, for a uint, its exclusive upper bound."""
    words = []
    for kind in leaf_encoding:
        word = _static_word(kind)
        if word is None:
            return None
        words.append((word, 1 << int(kind[4:] or 256) if kind.startswith("uint") else None))
    return tuple(words)


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


def _encode_column(column: list[Any], word: Callable[[Any], bytes], limit: int | None) -> list[bytes] | None:
    """The ABI words of one column of values, or None if any may be invalid (the per-value encoder then runs
    and names it). Equal values are encoded once: batch ids, chain ids and contract addresses repeat."""
    types = set(map(type, column))
    if limit is not None:  # uintN: exact ints (not bools) in range
        if types != {int}:
            return None
        first = column[0]
        if column.count(first) == len(column):
            return [first.to_bytes(32, "big")] * len(column) if 0 <= first < limit else None
        if min(column) < 0 or max(column) >= limit:
            return None
        return list(map(int.to_bytes, column, repeat(32), repeat("big")))
    if not types <= {str, bytes}:  # hashable, and equal only if encoded the same
        return None
    try:
        words = {v: word(v) for v in set(column)}
    except (ValueError, TypeError):
        return None
    if len(words) == 1:
        return [next(iter(words.values()))] * len(column)
    return list(map(words.__getitem__, column))


def _packed_rows(rows: Sequence[Sequence[Any]],
                 words: tuple[_Word, ...]) -> Iterable[bytes] | None:
    """abi.encode of each row of static values, column by column; None if a row may be invalid."""
    try:
        if set(map(len, rows)) != {len(words)}:
            return None
        columns = [list(map(itemgetter(j), rows)) for j in range(len(words))]
    except (TypeError, IndexError, KeyError):
        return None
    encoded = []
    for (word, limit), column in zip(words, columns):
        column_words = _encode_column(column, word, limit)
        if column_words is None:
            return None
        encoded.append(column_words)
    return map(b"".join, zip(*encoded))


def _hash_leaves(values: Sequence[Sequence[Any]], start: int, stop: int, leaf_encoding: tuple[str, ...],
                 k: KeccakFunction | None) -> list[bytes]:
    """The leaf hashes of values[start:stop], in order."""
    words = _static_words(leaf_encoding)
    hashes: list[bytes] = []
    for low in range(start, stop, _CHUNK):
        rows = values[low:min(low + _CHUNK, stop)]
        packed = _packed_rows(rows, words) if words is not None else None
        if packed is None:  # eth_abi for dynamic types; for a bad value, the encoder that names it
            hashes.extend(map(_leaf_hasher(leaf_encoding), rows))
        elif k is None:
            K = _Keccak256
            hashes.extend([K(K(data).digest()).digest() for data in packed])
        else:
            hashes.extend([k(k(data)) for data in packed])
    return hashes


def _hash_pairs(left: Sequence[bytes], right: Sequence[bytes], k: KeccakFunction | None) -> list[bytes]:
    """hash_pair of each (left[i], right[i])."""
    if k is None:
        K = _Keccak256
        return [K(a + b).digest() if a < b else K(b + a).digest() for a, b in zip(left, right)]
    return [k(a + b) if a < b else k(b + a) for a, b in zip(left, right)]


def _hashes_and_order(values: Sequence[Sequence[Any]], leaf_encoding: tuple[str, ...],
                      k: KeccakFunction | None) -> tuple[list[bytes], list[int]]:
    """The leaf hashes in the order of ``values``, and the value indices sorted by hash (ties by index)."""
    n = len(values)
    hashes = _hash_leaves(values, 0, n, leaf_encoding, k)
    return hashes, sorted(range(n), key=hashes.__getitem__)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (it is restored after, if it was on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def _levels(last: int) -> list[tuple[int, int]]:
    """The tree's levels down to (and including) index ``last``, root first, as (first, last) tree indices: a
    complete binary tree in an array keeps level d at indices 2**d - 1 .. 2**(d + 1) - 2."""
    levels = []
    first = 0
    while first <= last:
        levels.append((first, min(2 * first, last)))
        first = 2 * first + 1
    return levels


@dataclass(frozen=True)
class StandardMerkleTree:
    """An OpenZeppelin-compatible Merkle tree over a list of ABI-encodable values."""

    tree: tuple[bytes, ...]  # the complete binary tree, root first
    values: tuple[tuple[Any, ...], ...]  # in the order given
    tree_indices: tuple[int, ...]  # tree index of each value's leaf
    leaf_encoding: tuple[str, ...]

    @classmethod
    def of(cls, values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str]) -> "StandardMerkleTree":
        """Build the tree (leaves sorted by hash, as OpenZeppelin's default ``sortLeaves: true``).

        Static encodings are packed column by column and hashed with a C Keccak; a million credit entries take
        about five seconds on one core."""
        if not values:
            raise InvalidInput("a Merkle tree needs at least one value")
        encoding = tuple(leaf_encoding)
        kept = tuple(values) if set(map(type, values)) == {tuple} else tuple(
            v if type(v) is tuple else tuple(v) for v in values)
        n = len(kept)
        k = _bulk_keccak()
        # Sorted by hash as OpenZeppelin does; equal hashes (repeated values) keep their order.
        hashes, order = _hashes_and_order(kept, encoding, k)
        size = 2 * n - 1
        # The leaves fill the end of the array, the smallest hash last.
        tree: list[bytes] = [b""] * (n - 1) + list(map(hashes.__getitem__, reversed(order)))
        del hashes
        indices = [0] * n
        for value_index, tree_index in zip(order, range(size - 1, n - 2, -1)):
            indices[value_index] = tree_index
        del order
        for first, last in reversed(_levels(n - 2)):  # inner nodes, deepest level first
            tree[first:last + 1] = _hash_pairs(tree[2 * first + 1:2 * last + 2:2],
                                               tree[2 * first + 2:2 * last + 3:2], k)
        return cls(tuple(tree), kept, tuple(indices), encoding)

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

    def all_proofs(self) -> list[list[bytes]]:
        """Every value's proof (as :meth:`get_proof`, but raw 32-byte hashes), in the order of ``values``.

        Built top down, one level at a time: a node's proof is its sibling followed by its parent's proof. The
        cyclic garbage collector is paused meanwhile: the million lists it makes would otherwise trigger full
        collections that cost several times the work itself."""
        tree = self.tree
        paths: list[Any] = [None] * len(tree)
        paths[0] = []
        with _gc_paused():
            for first, last in _levels(len(self.values) - 2):  # the parents, root first
                parents = paths[first:last + 1]
                lefts = slice(2 * first + 1, 2 * last + 2, 2)
                rights = slice(2 * first + 2, 2 * last + 3, 2)
                paths[lefts] = [[sibling, *path] for sibling, path in zip(tree[rights], parents)]
                paths[rights] = [[sibling, *path] for sibling, path in zip(tree[lefts], parents)]
                paths[first:last + 1] = repeat(None, last + 1 - first)  # inner nodes' paths are done with
            return list(map(paths.__getitem__, self.tree_indices))

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
