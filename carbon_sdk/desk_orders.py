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

``save_orders`` / ``load_orders`` carry signed orders between the app and the platform as a JSON file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import coincurve
from eth_utils import keccak

from carbon_sdk.abi import keccak256, to_checksum_address

from carbon_sdk.errors import InvalidInput
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
    def from_json(cls, data: dict[str, Any], where: str = "order") -> "SignedDeskOrder":
        try:
            kind = KINDS[data["kind"]]
            order = DeskOrder(data["holder"], data["platform"], kind, int(data["amount"]), int(data["limit_price"]),
                              int(data["nonce"]), int(data["deadline"]), int(data.get("period", 0)))
            return cls(order, int(data["v"]), _word(data["r"]), _word(data["s"]))
        except KeyError as missing:
            raise InvalidInput(f"{where}: missing or unknown field {missing}") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise InvalidInput(f"{where}: {error}") from None


@dataclass(frozen=True)
class SettlementPermit:
    """An EIP-2612 permit of the settlement token: ``owner`` lets ``spender`` (the credit manager) draw ``value``."""

    owner: str
    spender: str
    value: int
    deadline: int
    v: int
    r: bytes
    s: bytes

    def as_abi(self) -> tuple:  # the spender is the credit manager itself: it is not sent
        return (self.owner, self.value, self.deadline, self.v, self.r, self.s)


def _int_word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def encode_settle_args(orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit]) -> bytes:
    """The ABI encoding of settleDeskOrders' arguments (without the selector): both arrays hold static tuples,
    so this is their words in a row after two offsets; eth_abi's general encoder takes about 30 times as long
    (a test compares the two)."""
    out = bytearray()
    head = 64 + 32 + 32 * 11 * len(orders)  # where the permits start
    out += _int_word(64) + _int_word(head) + _int_word(len(orders))
    for signed in orders:
        o = signed.order
        out += eip712_words(o.holder, o.platform, o.kind, o.period, o.amount, o.limit_price, o.nonce, o.deadline,
                            signed.v, signed.r, signed.s)
    out += _int_word(len(permits))
    for p in permits:
        out += eip712_words(p.owner, p.value, p.deadline, p.v, p.r, p.s)
    return bytes(out)


def _word(text: str) -> bytes:
    raw = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    if len(raw) != 32:
        raise ValueError(f"a signature word has 32 bytes, not {len(raw)}")
    return raw


def sign_desk_order(key: str | bytes | coincurve.PrivateKey, order: DeskOrder, domain: bytes) -> SignedDeskOrder:
    """Sign ``order`` with the holder's ``key`` in the credit manager's ``domain`` (:func:`desk_domain`)."""
    v, r, s = sign_typed_digest(private_key(key), domain, order.struct_hash())
    return SignedDeskOrder(order, v, r, s)


def sign_permit(key: str | bytes | coincurve.PrivateKey, *, owner: str, spender: str, value: int, nonce: int,
                deadline: int, domain: bytes) -> SettlementPermit:
    """Sign an EIP-2612 permit with the owner's ``key`` in the token's ``domain`` (:func:`permit_domain`)."""
    owner, spender = _address(owner, "owner"), _address(spender, "spender")
    struct = keccak256(PERMIT_TYPEHASH + eip712_words(owner, spender, _uint(value, 256, "value"),
                                                   _uint(nonce, 256, "nonce"), _uint(deadline, 256, "deadline")))
    v, r, s = sign_typed_digest(private_key(key), domain, struct)
    return SettlementPermit(owner, spender, value, deadline, v, r, s)


def save_orders(path: str | Path, orders: Iterable[SignedDeskOrder], *, manager: str, chain_id: int) -> Path:
    """Write signed orders to a JSON file for the platform (the deployment they were signed for included)."""
    path = Path(path)
    path.write_text(json.dumps({"format": ORDERS_FORMAT, "manager": to_checksum_address(manager),
                                "chain_id": chain_id, "orders": [o.to_json() for o in orders]}, indent=1))
    return path


def load_orders(path: str | Path) -> tuple[list[SignedDeskOrder], str, int]:
    """Read a file of :func:`save_orders`: (orders, manager address, chain id). Every problem names its order."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read desk orders: {error}") from None
    if not isinstance(data, dict) or data.get("format") != ORDERS_FORMAT:
        raise InvalidInput(f"{path}: not a desk-orders file (format {ORDERS_FORMAT!r} expected)")
    orders = [SignedDeskOrder.from_json(item, f"{path}: order {n}") for n, item in enumerate(data.get("orders", []))]
    try:
        return orders, to_checksum_address(data["manager"]), int(data["chain_id"])
    except KeyError as missing:
        raise InvalidInput(f"{path}: missing field {missing}") from None
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{path}: bad manager or chain id: {error}") from None


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
