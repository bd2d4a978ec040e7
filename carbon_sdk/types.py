"""Domain types shared by the SDK modules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import IntEnum


class Role(IntEnum):
    """A member's role in the consortium (mirrors `Role` in IConsortiumRegistry.sol)."""

    NONE = 0
    REGULATOR = 1
    VERIFIER = 2
    ENTERPRISE = 3
    PLATFORM = 4
    INDIVIDUAL = 5
    MERCHANT = 6
    OBSERVER = 7
    SYSTEM = 8  # a contract of the market that holds tokens (coin pool, exchange); enrolled by the regulator

    @classmethod
    def parse(cls, value: "str | int | Role") -> "Role":
        if isinstance(value, Role):
            return value
        try:
            return cls[value.upper()] if isinstance(value, str) else cls(value)
        except (KeyError, ValueError):
            names = ", ".join(r.name.lower() for r in cls if r is not cls.NONE)
            raise ValueError(f"unknown role {value!r}: expected one of {names}") from None


class MemberStatus(IntEnum):
    """Mirrors `MemberStatus` in IConsortiumRegistry.sol."""

    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3


class ParsableEnum(IntEnum):
    """An IntEnum that parses its member, its value, or its name in any case (``forestry-sink``)."""

    @classmethod
    def parse(cls, value: "ParsableEnum | str | int"):
        if isinstance(value, cls):
            return value
        try:
            return cls[value.upper().replace("-", "_")] if isinstance(value, str) else cls(value)
        except (KeyError, ValueError):
            from carbon_sdk.errors import InvalidInput

            noun = "".join(f" {c.lower()}" if c.isupper() else c for c in cls.__name__).strip()  # OffsetKind
            names = ", ".join(m.name.lower() for m in cls)
            raise InvalidInput(f"unknown {noun} {value!r}: expected one of {names}") from None


def roles_mask(roles: "list[Role] | tuple[Role, ...] | set[Role]") -> int:
    mask = 0
    for role in roles:
        mask |= 1 << int(role)
    return mask


def roles_from_mask(mask: int) -> tuple[Role, ...]:
    return tuple(r for r in Role if r is not Role.NONE and mask & (1 << int(r)))


@dataclass(frozen=True)
class Organisation:
    org_id: int
    name: str
    admin: str
    region: int
    allowed_roles: tuple[Role, ...]


@dataclass(frozen=True)
class Member:
    address: str
    org_id: int
    role: Role
    status: MemberStatus
    region: int
    enrolled_at: datetime
    identity_hash: bytes
    in_debt: bool = False  # owes reward-penalty coin: may not trade

    @property
    def active(self) -> bool:
        return self.status is MemberStatus.ACTIVE


@dataclass(frozen=True)
class StatusChange:
    address: str
    previous: MemberStatus
    current: MemberStatus
    by: str
    tx_hash: str
    block_number: int


def timestamp(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


# ---------------------------------------------------------------- the exchange (mirror ICarbonExchange.sol)


class Side(ParsableEnum):
    BID = 0
    ASK = 1


class Pricing(ParsableEnum):
    MIDPOINT = 0  # each matched pair at its own midpoint (the seed design)
    UNIFORM = 1  # every pair at the midpoint of the last matched pair


class OrderKind(ParsableEnum):
    LIMIT = 0
    MARKET = 1


class SessionPhase(ParsableEnum):
    NONE = 0  # no session opened yet
    CALL = 1
    CLEARING = 2
    CONTINUOUS = 3
    CLOSED = 4


class CancelReason(IntEnum):
    OWNER = 0
    SELF_TRADE = 1


def pack_order_id(market: int, session: int, side: int, tick: int, index: int) -> int:
    """The contract's order id: ``market << 120 | session << 88 | side << 80 | tick << 64 | index``."""
    return market << 120 | session << 88 | int(side) << 80 | tick << 64 | index


def order_parts(order_id: int) -> dict[str, int]:
    """What an order id says: market, session, side, tick, index."""
    return {"market": order_id >> 120, "session": (order_id >> 88) & 0xFFFFFFFF, "side": (order_id >> 80) & 0xFF,
            "tick": (order_id >> 64) & 0xFFFF, "index": order_id & (2**64 - 1)}
