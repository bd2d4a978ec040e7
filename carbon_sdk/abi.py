"""Encode calls and decode results and events from a contract's ABI (the build output, never hand-copied)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector

try:  # safe-pysha3: C Keccak, several times cheaper per hash than eth_utils' keccak
    # Keccak256State(data).digest(): hot loops (Merkle trees) call it inline, without keccak256's frame.
    from _pysha3 import keccak_256 as Keccak256State

    def keccak256(data: bytes) -> bytes:
        """keccak256 of raw bytes."""
        return Keccak256State(data).digest()
except ImportError:  # pragma: no cover - safe-pysha3 is a dependency; eth-hash is the fallback
    Keccak256State = None
    from eth_utils import keccak as keccak256

from carbon_sdk import errors
from carbon_sdk.errors import ConfigurationError, InvalidInput

_HEX_ADDRESS = re.compile(r"(0x)?[0-9a-fA-F]{40}")


@functools.lru_cache(maxsize=1 << 18)
def to_checksum_address(value: str | bytes) -> str:
    """The EIP-55 checksummed form of a 20-byte address given as hex (any case) or bytes. Raises ValueError
    for anything else. The same result as eth_utils' (tests compare), about ten times faster and cached: a
    large run checksums the same hundred thousand addresses over and over."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 20:
            raise ValueError(f"an address has 20 bytes, not {len(value)}")
        lower = bytes(value).hex()
    elif isinstance(value, str) and _HEX_ADDRESS.fullmatch(value):
        lower = value[-40:].lower()
    else:
        raise ValueError(f"{value!r} is not a 20-byte hex address")
    digest = keccak256(lower.encode()).hex()
    return "0x" + "".join(c.upper() if c > "9" and digest[i] >= "8" else c for i, c in enumerate(lower))


def canonical(item: dict[str, Any]) -> str:
    kind = item["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(canonical(c) for c in item.get("components", [])) + ")" + kind[len("tuple"):]
    return kind


def normalise(value: Any, item: dict[str, Any]) -> Any:
    """ABI-decoded value -> Python value: checksummed addresses, dicts for structs."""
    kind = item["type"]
    if kind.endswith("]"):
        inner = dict(item, type=kind[: kind.rindex("[")])
        return [normalise(v, inner) for v in value]
    if kind == "tuple":
        return {c["name"]: normalise(v, c) for v, c in zip(value, item["components"])}
    if kind == "address":
        return to_checksum_address(value)
    return value


@dataclass(frozen=True)
class Function:
    name: str
    selector: bytes
    input_types: tuple[str, ...]
    input_names: tuple[str, ...]
    outputs: tuple[dict[str, Any], ...]
    mutability: str

    def encode(self, *args: Any) -> bytes:
        if len(args) != len(self.input_types):
            raise InvalidInput(f"{self.name} takes {len(self.input_types)} arguments, got {len(args)}")
        try:
            return self.selector + encode(list(self.input_types), list(args))
        except Exception as exc:  # eth_abi's messages name the offending value
            raise InvalidInput(f"cannot encode arguments of {self.name}: {exc}") from exc

    def decode_output(self, data: bytes) -> Any:
        values = decode([canonical(o) for o in self.outputs], data)
        values = [normalise(v, o) for v, o in zip(values, self.outputs)]
        return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class Event:
    """A decoded log: the event's name and arguments, and where it happened."""

    name: str
    args: dict[str, Any]
    address: str
    tx_hash: str
    block_number: int
    log_index: int


def _word_reader(kind: str) -> Callable[[bytes], Any] | None:
    """How to read a value of ``kind`` that fills one 32-byte word (as eth-abi decodes it), or None if the type is
    not one word: dynamic types, arrays and structs go through eth-abi."""
    if kind == "address":
        return lambda word: to_checksum_address(word[12:])
    if kind == "bool":
        return lambda word: word[31] == 1
    if re.fullmatch(r"uint\d+", kind):
        return lambda word: int.from_bytes(word, "big")
    if re.fullmatch(r"int\d+", kind):
        return lambda word: int.from_bytes(word, "big", signed=True)
    if (size := re.fullmatch(r"bytes(\d+)", kind)) and 1 <= int(size[1]) <= 32:
        width = int(size[1])
        return lambda word: word[:width]
    return None


@dataclass(frozen=True)
class _EventSpec:
    name: str
    inputs: tuple[dict[str, Any], ...]
    # The fast path, when every field is one word: (name, reader, topic index or None for data) in ABI order.
    # Bulk readers (a hundred thousand enrolments, a thousand logs per desk settlement) take it.
    words: tuple[tuple[str, Callable[[bytes], Any], int | None], ...] | None = None
    data_words: int = 0

    @classmethod
    def of(cls, name: str, inputs: tuple[dict[str, Any], ...]) -> _EventSpec:
        words = []
        topic = data = 0
        for item in inputs:
            reader = _word_reader(canonical(item))
            if reader is None:
                return cls(name, inputs)
            if item.get("indexed"):
                topic += 1
                words.append((item["name"], reader, topic))
            else:
                words.append((item["name"], reader, None))
                data += 1
        return cls(name, inputs, tuple(words), data)


class ContractABI:
    """The callable surface of one contract, built from its ABI."""

    def __init__(self, name: str, abi: list[dict[str, Any]]):
        self.name = name
        self.abi = abi
        self.functions: dict[str, Function] = {}
        self._events: dict[bytes, _EventSpec] = {}
        self.event_topics: dict[str, bytes] = {}
        for item in abi:
            if item.get("type") == "function":
                types = tuple(canonical(i) for i in item.get("inputs", []))
                signature = f"{item['name']}({','.join(types)})"
                self.functions.setdefault(
                    item["name"],
                    Function(
                        name=item["name"],
                        selector=function_signature_to_4byte_selector(signature),
                        input_types=types,
                        input_names=tuple(i.get("name", "") for i in item.get("inputs", [])),
                        outputs=tuple(item.get("outputs", [])),
                        mutability=item.get("stateMutability", "nonpayable"),
                    ),
                )
            elif item.get("type") == "event":
                types = ",".join(canonical(i) for i in item.get("inputs", []))
                topic = event_signature_to_log_topic(f"{item['name']}({types})")
                self._events[topic] = _EventSpec.of(item["name"], tuple(item.get("inputs", [])))
                self.event_topics[item["name"]] = topic
        errors.register_abi(abi)

    def function(self, name: str) -> Function:
        try:
            return self.functions[name]
        except KeyError:
            raise ConfigurationError(f"{self.name} has no function {name!r}") from None

    def constructor_types(self) -> list[str]:
        for item in self.abi:
            if item.get("type") == "constructor":
                return [canonical(i) for i in item.get("inputs", [])]
        return []

    def decode_log(self, log: dict[str, Any]) -> Event | None:
        """Decode one raw JSON-RPC log, or None if it is not one of this contract's events."""
        topics = [bytes.fromhex(t[2:]) for t in log.get("topics", [])]
        if not topics or topics[0] not in self._events:
            return None
        spec = self._events[topics[0]]
        data = bytes.fromhex(log.get("data", "0x")[2:])
        words = spec.words
        if words is not None and len(data) == 32 * spec.data_words and len(topics) == 1 + len(words) - spec.data_words:
            values, at = {}, 0
            for name, reader, topic in words:
                if topic is None:
                    values[name] = reader(data[at : at + 32])
                    at += 32
                else:
                    values[name] = reader(topics[topic])
            return self._event(spec, values, log)
        indexed = [i for i in spec.inputs if i.get("indexed")]
        plain = [i for i in spec.inputs if not i.get("indexed")]
        if len(topics) != 1 + len(indexed):
            raise ConfigurationError(
                f"a {self.name}.{spec.name} log at {log.get('address')} has {len(topics) - 1} indexed topics, "
                f"the ABI's event has {len(indexed)}: this ABI does not describe that contract"
            )
        values: dict[str, Any] = {}
        for item, topic in zip(indexed, topics[1:]):
            kind = canonical(item)
            # Indexed dynamic types are stored as their hash: keep the hash.
            if kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("("):
                values[item["name"]] = topic
            else:
                values[item["name"]] = normalise(decode([kind], topic)[0], item)
        try:
            decoded = decode([canonical(i) for i in plain], data)
        except DecodingError as error:
            raise ConfigurationError(
                f"a {self.name}.{spec.name} log at {log.get('address')} does not decode as the ABI's event "
                f"({error}): this ABI does not describe that contract"
            ) from error
        for item, value in zip(plain, decoded):
            values[item["name"]] = normalise(value, item)
        return self._event(spec, {i["name"]: values[i["name"]] for i in spec.inputs}, log)

    @staticmethod
    def _event(spec: _EventSpec, args: dict[str, Any], log: dict[str, Any]) -> Event:
        return Event(
            name=spec.name,
            args=args,
            address=to_checksum_address(log["address"]),
            tx_hash=log.get("transactionHash", ""),
            block_number=int(log.get("blockNumber", "0x0"), 16),
            log_index=int(log.get("logIndex", "0x0"), 16),
        )

    def decode_logs(self, logs: Iterable[dict[str, Any]], address: str | None = None) -> list[Event]:
        wanted = address.lower() if address else None
        out = []
        for log in logs:
            if wanted and log.get("address", "").lower() != wanted:
                continue
            event = self.decode_log(log)
            if event is not None:
                out.append(event)
        return out
