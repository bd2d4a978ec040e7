"""Desk orders that holders sign and their platform settles in bulk, and the settlement-token permits they need.

A resident's app signs "sell 0.3 PCC to my platform at no less than 48.00" or "buy 0.2 PCC and cover my
deficit of period 2025 at no more than 62.00" (EIP-712); the platform relays up to 200 such orders per
transaction with ``CreditManager.settleDeskOrders``, which checks each signature, nonce and price limit on
chain. The resident sends nothing and needs no gas; a buyer's payment is approved once with an EIP-2612 permit
of the settlement token, relayed with its first order.

    order = alice.credits.desk_order(platform.address, "sell", tonnes("0.3"))     # reads nonce and price
    signed = alice.credits.sign_desk_order(order)                                 # no transaction
    permit = bob.settlement.sign_permit(manager_address)                          # once per buyer
    platform.credits.settle_desk_orders([signed, ...], permits=[permit, ...])      # 200 per transaction

``save_orders`` / ``load_orders`` carry signed orders and permits between the app and the platform as a JSON
file (:class:`DeskOrdersFile`); ``CreditsModule.check_desk_orders`` checks them against the chain before anything
is sent, and :class:`DeskBatch` is what it found worth sending.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import coincurve
from eth_utils import keccak

from carbon_sdk.abi import keccak256, to_checksum_address

from carbon_sdk.errors import InvalidInput, TransactionError, TransactionReverted
from carbon_sdk.signing import (
    eip712_domain_separator,
    eip712_words,
    private_key,
    recover_typed_signer,
    sign_typed_digest,
)

SELL, BUY, BUY_AND_COVER = 0, 1, 2
KINDS = {"sell": SELL, "buy": BUY, "buy-and-cover": BUY_AND_COVER}
KIND_NAMES = {value: name for name, value in KINDS.items()}
MAX_DESK_ORDERS = 200  # orders (and permits) per settleDeskOrders
ORDERS_FORMAT = "carbon-desk-orders-v1"

DESK_ORDER_TYPEHASH = keccak(text="DeskOrder(address holder,address platform,uint8 kind,uint16 period,"
                                  "uint128 amount,uint128 limitPrice,uint64 nonce,uint64 deadline)")
PERMIT_TYPEHASH = keccak(text="Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")


def desk_domain(manager: str, chain_id: int) -> bytes:
    """The EIP-712 domain separator of the credit manager at ``manager`` on ``chain_id``."""
    return eip712_domain_separator("CreditManager", "1", chain_id, manager)


def permit_domain(token_name: str, token: str, chain_id: int) -> bytes:
    """The EIP-2612 domain separator of an OpenZeppelin ERC20Permit token (its name, version "1")."""
    return eip712_domain_separator(token_name, "1", chain_id, token)


def _uint(value: Any, bits: int, what: str, *, positive: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not (1 if positive else 0) <= value < 2**bits:
        low = "1" if positive else "0"
        raise InvalidInput(f"{what} must be an integer from {low} to 2^{bits} - 1, not {value!r}")
    return value


def _address(value: Any, what: str) -> str:
    try:
        return to_checksum_address(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} {value!r} is not an address") from None


@dataclass(frozen=True)
class DeskOrder:
    """What a holder signs: one trade at its platform's desk (amounts in PCC units, prices per whole credit)."""

    holder: str
    platform: str
    kind: int  # SELL, BUY or BUY_AND_COVER
    amount: int
    limit_price: int  # sell: the least buy-back price accepted; buy: the most sale price accepted
    nonce: int
    deadline: int  # unix seconds
    period: int = 0  # the deficit's period (BUY_AND_COVER)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holder", _address(self.holder, "holder"))
        object.__setattr__(self, "platform", _address(self.platform, "platform"))
        if self.kind not in KIND_NAMES:
            raise InvalidInput(f"order kind must be one of {sorted(KINDS)}, not {self.kind!r}")
        _uint(self.amount, 128, "amount", positive=True)
        _uint(self.limit_price, 128, "limit price")
        _uint(self.nonce, 64, "nonce")
        _uint(self.deadline, 64, "deadline")
        _uint(self.period, 16, "period")
        if self.kind == BUY_AND_COVER and self.period == 0:
            raise InvalidInput("a buy-and-cover order needs the period of the deficit it covers")

    def struct_hash(self) -> bytes:
        return keccak256(DESK_ORDER_TYPEHASH + eip712_words(self.holder, self.platform, self.kind, self.period,
                                                         self.amount, self.limit_price, self.nonce, self.deadline))

    def as_abi(self) -> tuple:
        return (self.holder, self.platform, self.kind, self.period, self.amount, self.limit_price, self.nonce,
                self.deadline)


@dataclass(frozen=True)
class SignedDeskOrder:
    order: DeskOrder
    v: int
    r: bytes
    s: bytes

    def as_abi(self) -> tuple:
        return (self.order.as_abi(), self.v, self.r, self.s)

    def signer(self, domain: bytes) -> str | None:
        """Who signed it in ``domain`` (None: not a valid signature)."""
        return recover_typed_signer(domain, self.order.struct_hash(), self.v, self.r, self.s)

    def to_json(self) -> dict[str, Any]:
        o = self.order
        return {"holder": o.holder, "platform": o.platform, "kind": KIND_NAMES[o.kind], "period": o.period,
                "amount": str(o.amount), "limit_price": str(o.limit_price), "nonce": o.nonce,
                "deadline": o.deadline, "v": self.v, "r": "0x" + self.r.hex(), "s": "0x" + self.s.hex()}

    @classmethod
    def from_json(cls, data: Any, where: str = "order") -> "SignedDeskOrder":
        """Read :meth:`to_json`'s layout; every problem raises InvalidInput starting with ``where``."""
        if not isinstance(data, dict):
            raise InvalidInput(f"{where}: not a JSON object")
        try:
            kind = data["kind"]
            if not isinstance(kind, str) or kind not in KINDS:
                raise InvalidInput(f"order kind must be one of {sorted(KINDS)}, not {kind!r}")
            order = DeskOrder(data["holder"], data["platform"], KINDS[kind], _int(data["amount"], "amount"),
                              _int(data["limit_price"], "limit_price"), _int(data["nonce"], "nonce"),
                              _int(data["deadline"], "deadline"), _int(data.get("period", 0), "period"))
            return cls(order, _uint(_int(data["v"], "v"), 8, "v"), _word(data["r"], "r"), _word(data["s"], "s"))
        except KeyError as missing:
            raise InvalidInput(f"{where}: missing field {missing}") from None
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from None


@dataclass(frozen=True)
class SettlementPermit:
    """An EIP-2612 permit of the settlement token: ``owner`` lets ``spender`` (the credit manager) draw ``value``.
    ``nonce`` is the owner's token nonce it was signed with: not sent (the token reads its own), but its
    signature can be checked, and a permit relayed before told apart, without it."""

    owner: str
    spender: str
    value: int
    nonce: int
    deadline: int
    v: int
    r: bytes
    s: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "owner", _address(self.owner, "owner"))
        object.__setattr__(self, "spender", _address(self.spender, "spender"))
        _uint(self.value, 256, "value")
        _uint(self.nonce, 256, "nonce")
        _uint(self.deadline, 256, "deadline")
        _uint(self.v, 8, "v")

    def as_abi(self) -> tuple:  # the spender is the credit manager itself: it is not sent
        return (self.owner, self.value, self.deadline, self.v, self.r, self.s)

    def struct_hash(self) -> bytes:
        return keccak256(PERMIT_TYPEHASH + eip712_words(self.owner, self.spender, self.value, self.nonce,
                                                        self.deadline))

    def signer(self, domain: bytes) -> str | None:
        """Who signed it in the token's ``domain`` (:func:`permit_domain`; None: not a valid signature)."""
        return recover_typed_signer(domain, self.struct_hash(), self.v, self.r, self.s)

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "spender": self.spender, "value": str(self.value), "nonce": self.nonce,
                "deadline": self.deadline, "v": self.v, "r": "0x" + self.r.hex(), "s": "0x" + self.s.hex()}

    @classmethod
    def from_json(cls, data: Any, where: str = "permit") -> "SettlementPermit":
        """Read :meth:`to_json`'s layout; every problem raises InvalidInput starting with ``where``."""
        if not isinstance(data, dict):
            raise InvalidInput(f"{where}: not a JSON object")
        try:
            return cls(data["owner"], data["spender"], _int(data["value"], "value"), _int(data["nonce"], "nonce"),
                       _int(data["deadline"], "deadline"), _int(data["v"], "v"), _word(data["r"], "r"),
                       _word(data["s"], "s"))
        except KeyError as missing:
            raise InvalidInput(f"{where}: missing field {missing}") from None
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from None


def encode_settle_args(orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit]) -> bytes:
    """The ABI encoding of settleDeskOrders' arguments (without the selector): both arrays hold static tuples,
    so this is their words in a row after two offsets; eth_abi's general encoder takes about 30 times as long
    (a test compares the two)."""
    out = bytearray()
    head = 64 + 32 + 32 * 11 * len(orders)  # where the permits start
    out += eip712_words(64, head, len(orders))
    for signed in orders:
        o = signed.order
        out += eip712_words(o.holder, o.platform, o.kind, o.period, o.amount, o.limit_price, o.nonce, o.deadline,
                            signed.v, signed.r, signed.s)
    out += eip712_words(len(permits))
    for p in permits:
        out += eip712_words(p.owner, p.value, p.deadline, p.v, p.r, p.s)
    return bytes(out)


def _word(text: Any, what: str) -> bytes:
    """A 32-byte signature word from its hex text (0x optional)."""
    try:
        raw = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except (AttributeError, TypeError, ValueError):
        raise InvalidInput(f"{what} must be 32 bytes in hex, not {text!r}") from None
    if len(raw) != 32:
        raise InvalidInput(f"{what} must be 32 bytes in hex, not {len(raw)}")
    return raw


def _int(value: Any, what: str) -> int:
    """A whole number from JSON: an integer, or its decimal text (how large amounts are written)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) <= 100 and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise InvalidInput(f"{what} must be a whole number, not {value!r}")


def sign_desk_order(key: str | bytes | coincurve.PrivateKey, order: DeskOrder, domain: bytes) -> SignedDeskOrder:
    """Sign ``order`` with the holder's ``key`` in the credit manager's ``domain`` (:func:`desk_domain`)."""
    v, r, s = sign_typed_digest(private_key(key), domain, order.struct_hash())
    return SignedDeskOrder(order, v, r, s)


def sign_permit(key: str | bytes | coincurve.PrivateKey, *, owner: str, spender: str, value: int, nonce: int,
                deadline: int, domain: bytes) -> SettlementPermit:
    """Sign an EIP-2612 permit with the owner's ``key`` in the token's ``domain`` (:func:`permit_domain`)."""
    unsigned = SettlementPermit(owner, spender, value, nonce, deadline, 0, bytes(32), bytes(32))
    v, r, s = sign_typed_digest(private_key(key), domain, unsigned.struct_hash())
    return SettlementPermit(unsigned.owner, unsigned.spender, value, nonce, deadline, v, r, s)


def next_free(first: int, taken: Iterable[int]) -> int:
    """The first nonce from ``first`` on that is not ``taken`` (by orders or permits waiting in a file)."""
    taken = set(taken)
    while first in taken:
        first += 1
    return first


@dataclass
class DeskOrdersFile:
    """A desk-orders file (:func:`load_orders`, :func:`save_orders`): signed orders, the settlement-token permits
    that travel with them, and the deployment (credit manager, chain id) they are signed for."""

    path: Path
    orders: list[SignedDeskOrder]
    permits: list[SettlementPermit]
    manager: str
    chain_id: int

    def check_deployment(self, manager: str, chain_id: int) -> None:
        """Raise InvalidInput unless the file is for the credit manager ``manager`` on ``chain_id``."""
        if self.manager != manager or self.chain_id != chain_id:
            raise InvalidInput(f"{self.path} holds desk orders for credit manager {self.manager} on chain "
                               f"{self.chain_id}, not this deployment's ({manager} on chain {chain_id})")

    def save(self) -> Path:
        return save_orders(self.path, self.orders, permits=self.permits, manager=self.manager,
                           chain_id=self.chain_id)


def save_orders(path: str | Path, orders: Iterable[SignedDeskOrder], *, manager: str, chain_id: int,
                permits: Iterable[SettlementPermit] = ()) -> Path:
    """Write signed orders (and permits) to a JSON file for the platform, with the deployment they were signed
    for. Written through a temporary file beside it: a failure (an OSError) leaves the old file as it was."""
    path = Path(path)
    data: dict[str, Any] = {"format": ORDERS_FORMAT, "manager": to_checksum_address(manager), "chain_id": chain_id,
                            "orders": [o.to_json() for o in orders]}
    relayable = [p.to_json() for p in permits]
    if relayable:  # (files without permits stay as they always were)
        data["permits"] = relayable
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_text(json.dumps(data, indent=1))
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    return path


def load_orders(path: str | Path) -> DeskOrdersFile:
    """Read a file of :func:`save_orders`. Every problem raises InvalidInput naming the file, and the order or
    permit by its position."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as error:  # unreadable, not UTF-8, not JSON
        raise InvalidInput(f"{path}: cannot read desk orders: {error}") from None
    if not isinstance(data, dict) or data.get("format") != ORDERS_FORMAT:
        raise InvalidInput(f"{path}: not a desk-orders file (format {ORDERS_FORMAT!r} expected)")
    try:
        manager = _address(data["manager"], "manager")
        chain_id = _uint(_int(data["chain_id"], "chain id"), 64, "chain id")
    except KeyError as missing:
        raise InvalidInput(f"{path}: missing field {missing}") from None
    except InvalidInput as error:
        raise InvalidInput(f"{path}: {error}") from None
    items = {}
    for name in ("orders", "permits"):
        items[name] = data.get(name, [])
        if not isinstance(items[name], list):
            raise InvalidInput(f"{path}: \"{name}\" must be a list")
    orders = [SignedDeskOrder.from_json(item, f"{path}: order {n}") for n, item in enumerate(items["orders"])]
    permits = [SettlementPermit.from_json(item, f"{path}: permit {n}") for n, item in enumerate(items["permits"])]
    return DeskOrdersFile(path, orders, permits, manager, chain_id)


def time_text(seconds: int) -> str:
    """A deadline for messages: ``2025-06-01 12:00:00 UTC``."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):  # past the calendar's years
        return f"unix time {seconds}"


# -- checked batches (CreditsModule.check_desk_orders) and their refusals -------------------------------------

@dataclass(frozen=True)
class DeskBatch:
    """Signed orders and permits checked against the chain (``CreditsModule.check_desk_orders``): what to send,
    in order, and what was left out as done already. ``positions`` are the orders' places in the list checked,
    ``label`` how messages name a place (``desk order 3``, ``orders.json: order 3``)."""

    orders: list[SignedDeskOrder]
    permits: list[SettlementPermit]
    settled: int = 0  # orders left out: settled before (their nonces used; skip_settled)
    relayed: int = 0  # permits left out: relayed before (their token nonces used)
    positions: list[int] = field(default_factory=list, repr=False)
    label: Callable[[int], str] = field(default=lambda n: f"desk order {n}", repr=False, compare=False)

    def name(self, index: int) -> str:
        """How messages name ``orders[index]``: ``orders.json: order 3 (0xHOLDER, nonce 2)``."""
        o = self.orders[index].order
        place = self.positions[index] if self.positions else index
        return f"{self.label(place)} ({o.holder}, nonce {o.nonce})"

    @cached_property
    def chunks(self) -> list[tuple[list[SignedDeskOrder], list[SettlementPermit]]]:
        """Its settleDeskOrders calls (:func:`chunk_with_permits`)."""
        return chunk_with_permits(self.orders, self.permits)


class DeskOrdersSettled(InvalidInput):
    """Orders checked without ``skip_settled`` were settled before (their nonces are used)."""

    def __init__(self, message: str, count: int, first: str):
        self.count, self.first = count, first
        super().__init__(message)


class DeskOrderRefused(InvalidInput):
    """The chain refuses a batch's first settleDeskOrders call (tried by a gas estimate; nothing was sent).
    ``index``: the first order it refuses, in the batch (None: it refuses the call without any order);
    ``error``: the chain's typed error."""

    def __init__(self, message: str, index: int | None, error: TransactionReverted):
        self.index, self.error = index, error
        super().__init__(message)


class DeskSettlementIncomplete(TransactionError):
    """A later settleDeskOrders call failed after earlier ones settled ``settled`` orders (they stand);
    ``error`` is the failure. Settling the same orders again with ``skip_settled`` does the rest."""

    def __init__(self, message: str, settled: int, error: Exception):
        self.settled, self.error = settled, error
        super().__init__(message)


# Gas per order and per relayed permit at their dearest (a holder new to the desk; docs/benchmarks.md,
# credit_desk_order_*: 81k and 127k with its permit), with a margin: fixed limits, so thousands of calls need no
# estimate each. A call's orders are bounded by MAX_DESK_ORDERS and by CALL_GAS_BUDGET (inside a 30M block).
ORDER_GAS = {SELL: 95_000, BUY: 95_000, BUY_AND_COVER: 105_000}
PERMIT_GAS = 55_000
BASE_GAS = 60_000
CALL_GAS_BUDGET = 25_000_000


def settle_gas(orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit]) -> int:
    """The gas limit of one settleDeskOrders call."""
    return BASE_GAS + sum(ORDER_GAS[o.order.kind] for o in orders) + PERMIT_GAS * len(permits)


def chunk_with_permits(orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit], *,
                       size: int = MAX_DESK_ORDERS, gas_budget: int = CALL_GAS_BUDGET,
                       ) -> list[tuple[list[SignedDeskOrder], list[SettlementPermit]]]:
    """Split into settleDeskOrders calls, in order: each permit rides with its owner's first order; permits
    whose owner has no order go first, on their own. A call holds at most ``size`` orders and ``size``
    permits, within ``gas_budget``."""
    holders = {o.order.holder for o in orders}
    pending: dict[str, list[SettlementPermit]] = {}
    stray: list[SettlementPermit] = []
    for p in permits:
        (pending.setdefault(p.owner, []) if p.owner in holders else stray).append(p)
    out: list[tuple[list[SignedDeskOrder], list[SettlementPermit]]] = []
    for start in range(0, len(stray), size):
        out.append(([], stray[start:start + size]))
    chunk: list[SignedDeskOrder] = []
    riding: list[SettlementPermit] = []
    gas = BASE_GAS
    for o in orders:
        mine = pending.pop(o.order.holder, [])
        cost = ORDER_GAS[o.order.kind] + PERMIT_GAS * len(mine)
        if chunk and (len(chunk) >= size or len(riding) + len(mine) > size or gas + cost > gas_budget):
            out.append((chunk, riding))
            chunk, riding, gas = [], [], BASE_GAS
        chunk.append(o)
        riding.extend(mine)
        gas += cost
    if chunk:
        out.append((chunk, riding))
    return out
