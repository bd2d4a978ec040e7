"""The consortium's membership registry: organisations, members, roles and statuses.

    org = client.registry.register_organisation("Acme Steel", admin, Role.ENTERPRISE,
                                                 allowed_roles=[Role.ENTERPRISE], region=11)
    members = platform.registry.enrol_batch(addresses, Role.INDIVIDUAL, region=11)
    platform.registry.suspend(members[0].address)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from eth_utils import keccak

from carbon_sdk.abi import to_checksum_address

from carbon_sdk.errors import InvalidInput
from carbon_sdk.tx import Progress, Receipt, per_item
from carbon_sdk.types import (
    Member,
    MemberStatus,
    Organisation,
    Role,
    StatusChange,
    roles_from_mask,
    roles_mask,
    timestamp,
)

if TYPE_CHECKING:
    from carbon_sdk.client import CarbonClient

CONTRACT = "ConsortiumRegistry"
MAX_BATCH = 500  # the contract's bound per enrolBatch call
DEFAULT_BATCH = 200  # members per transaction: well inside a 30M-gas block
ZERO_ADDRESS = "0x" + "00" * 20
UINT32_MAX = 2**32 - 1


def identity_hash(record: bytes | str | dict[str, Any]) -> bytes:
    """keccak256 of an off-chain identity record; only this hash is ever written on chain.

    A dict is hashed as canonical JSON (sorted keys, no spaces); a 32-byte value is taken as already hashed.
    """
    if isinstance(record, bytes) and len(record) == 32:
        return record
    if isinstance(record, str) and record.startswith("0x") and len(record) == 66:
        return bytes.fromhex(record[2:])
    if isinstance(record, dict):
        record = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return keccak(record.encode() if isinstance(record, str) else record)


def checked_address(value: str, what: str = "address") -> str:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        address = to_checksum_address(value)
    except ValueError:
        raise InvalidInput(f"{what} {value!r} is not an Ethereum address") from None
    # A mixed-case address must carry its own checksum (EIP-55), as eth_utils.is_address requires.
    if value[-40:] != address[-40:] and not value[-40:].islower() and not value[-40:].isupper():
        raise InvalidInput(f"{what} {value!r} is not an Ethereum address (wrong EIP-55 checksum)")
    if address == ZERO_ADDRESS:
        raise InvalidInput(f"{what} must not be the zero address")
    return address


def _region(region: int) -> int:
    if not isinstance(region, int) or not 0 <= region <= UINT32_MAX:
        raise InvalidInput(f"region {region!r} must be an integer from 0 (national) to {UINT32_MAX}")
    return region


def _role(role: Role | str | int) -> Role:
    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if parsed is Role.NONE:
        raise InvalidInput("a member needs a role other than NONE")
    return parsed


class RegistryModule:
    """Enrolment, status changes and lookups on the ConsortiumRegistry contract."""

    def __init__(self, client: "CarbonClient"):
        self._client = client

    @property
    def contract(self):
        return self._client.contract(CONTRACT)

    # -- organisations ------------------------------------------------------------------------------------

    def register_organisation(
        self,
        name: str,
        admin: str,
        admin_role: Role | str,
        *,
        allowed_roles: Iterable[Role | str],
        region: int = 0,
        admin_identity: bytes | str | dict[str, Any] = b"",
    ) -> Organisation:
        """Register an organisation and enrol its admin (regulator only)."""
        if not name or not name.strip():
            raise InvalidInput("an organisation needs a name")
        roles = tuple(_role(r) for r in allowed_roles)
        role = _role(admin_role)
        if role not in roles:
            raise InvalidInput(f"the admin's role {role.name} must be one of the organisation's allowed roles")
        receipt = self._client.transact(self.contract.tx(
            "registerOrganisation", name, checked_address(admin, "admin"), int(role), _region(region),
            roles_mask(roles), identity_hash(admin_identity or admin.lower())))
        event = self.contract.event_args(receipt, "OrganisationRegistered")
        return self.organisation(event["orgId"])

    def set_allowed_roles(self, org_id: int, roles: Iterable[Role | str]) -> Organisation:
        self._client.transact(self.contract.tx("setAllowedRoles", org_id, roles_mask([_role(r) for r in roles])))
        return self.organisation(org_id)

    def set_organisation_admin(self, org_id: int, new_admin: str) -> Organisation:
        self._client.transact(self.contract.tx("setOrganisationAdmin", org_id, checked_address(new_admin)))
        return self.organisation(org_id)

    def organisation(self, org_id: int) -> Organisation:
        """One organisation; an unknown id raises ``errors.RegistryUnknownOrganisation``."""
        raw = self.contract.call("getOrganisation", org_id)
        return Organisation(org_id=org_id, name=raw["name"], admin=raw["admin"], region=raw["region"],
                            allowed_roles=roles_from_mask(raw["allowedRoles"]))

    def organisations(self) -> list[Organisation]:
        return [self.organisation(i) for i in range(1, self.contract.call("organisationCount") + 1)]

    # -- members ------------------------------------------------------------------------------------------

    def enrol(self, account: str, role: Role | str, *, region: int = 0,
              identity: bytes | str | dict[str, Any] = b"") -> Member:
        """Enrol one member into the caller's organisation."""
        account = checked_address(account, "account")
        receipt = self._client.transact(self.contract.tx(
            "enrol", account, int(_role(role)), _region(region), identity_hash(identity or account.lower())))
        return self._members_from([receipt])[0]

    def enrol_batch(
        self,
        accounts: Sequence[str],
        role: Role | str,
        *,
        region: int = 0,
        identities: Sequence[bytes | str | dict[str, Any]] | None = None,
        batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None,
    ) -> list[Member]:
        """Enrol many members with one role and region, ``batch_size`` per transaction.

        Every transaction is checked (gas estimated) before the first is sent, so a bad entry anywhere
        rejects the whole call with nothing enrolled. ``progress`` is called with the members done.
        """
        if not accounts:
            raise InvalidInput("enrol_batch needs at least one account")
        if not 1 <= batch_size <= MAX_BATCH:
            raise InvalidInput(f"batch_size must be from 1 to {MAX_BATCH}")
        if identities is not None and len(identities) != len(accounts):
            raise InvalidInput(f"{len(accounts)} accounts but {len(identities)} identities")
        checked = [checked_address(a, f"account #{i}") for i, a in enumerate(accounts)]
        seen: dict[str, int] = {}
        for i, address in enumerate(checked):
            if address in seen:
                raise InvalidInput(f"account {address} appears twice (#{seen[address]} and #{i})")
            seen[address] = i
        hashes = [identity_hash(identities[i] if identities else a.lower()) for i, a in enumerate(checked)]
        role_value, region = int(_role(role)), _region(region)
        chunks = [range(s, min(s + batch_size, len(checked))) for s in range(0, len(checked), batch_size)]
        calls = [self.contract.tx("enrolBatch", [checked[i] for i in c], role_value, region, [hashes[i] for i in c])
                 for c in chunks]
        receipts = self._client.transact_many(calls, progress=per_item(chunks, progress))  # counts members
        return self._members_from(receipts)

    def suspend(self, account: str) -> StatusChange:
        return self._status_change("suspend", account)

    def reinstate(self, account: str) -> StatusChange:
        return self._status_change("reinstate", account)

    def revoke(self, account: str) -> StatusChange:
        return self._status_change("revoke", account)

    def member(self, account: str) -> Member | None:
        """The member at ``account``, or None if it was never enrolled."""
        raw = self.contract.call("getMember", checked_address(account, "account"))
        if MemberStatus(raw["status"]) is MemberStatus.NONE:
            return None
        return self._member(to_checksum_address(account), raw)

    def can_trade(self, account: str) -> bool:
        """Whether ``account`` may trade: an active member without coin debt (every token transfer asks this)."""
        return bool(self.contract.call("canTrade", checked_address(account, "account")))

    def register_system_contract(self, address: str, description: bytes | str | dict[str, Any] = b"") -> Member:
        """Enrol a contract of the market as a SYSTEM member, so it may hold tokens (national regulator)."""
        address = checked_address(address, "contract")
        receipt = self._client.transact(self.contract.tx(
            "registerSystemContract", address, identity_hash(description or address.lower())))
        return self._members_from([receipt])[0]

    def is_active(self, account: str) -> bool:
        return bool(self.contract.call("isActive", checked_address(account, "account")))

    def statuses(self, accounts: Sequence[str]) -> list[MemberStatus]:
        """Statuses of many accounts in one call per 1,000."""
        out: list[MemberStatus] = []
        checked = [checked_address(a) for a in accounts]
        for s in range(0, len(checked), 1000):
            out.extend(MemberStatus(v) for v in self.contract.call("statusesOf", checked[s:s + 1000]))
        return out

    def members(self, *, status: MemberStatus | None = None, role: Role | None = None,
                org_id: int | None = None) -> list[Member]:
        """Every member ever enrolled (from the registry's events), with current statuses, filtered."""
        enrolled = self.contract.logs(["MemberEnrolled"])
        addresses = [e.args["account"] for e in enrolled]
        statuses = self.statuses(addresses) if addresses else []
        blocks = self._client.block_times({e.block_number for e in enrolled})
        out = []
        for event, current in zip(enrolled, statuses):
            args = event.args
            member = Member(address=args["account"], org_id=args["orgId"], role=Role(args["role"]), status=current,
                            region=args["region"], enrolled_at=timestamp(blocks[event.block_number]),
                            identity_hash=args["identityHash"])
            if status is not None and member.status is not status:
                continue
            if role is not None and member.role is not role:
                continue
            if org_id is not None and member.org_id != org_id:
                continue
            out.append(member)
        return out

    # -- Besu -----------------------------------------------------------------------------------------

    def besu_allowlist(self, extra: Iterable[str] = ()) -> list[str]:
        """Active members' addresses (plus ``extra``, e.g. the bootstrap admin), sorted, deduplicated."""
        # SYSTEM members are contracts: they never sign transactions, so nodes need not admit them.
        active = {m.address for m in self.members(status=MemberStatus.ACTIVE) if m.role is not Role.SYSTEM}
        active.update(checked_address(a) for a in extra)
        return sorted(active, key=str.lower)

    def export_besu_allowlist(self, path: str | Path, extra: Iterable[str] = ()) -> Path:
        """Write Besu's permissions configuration file (TOML): ``accounts-allowlist=[...]``.

        Besu reads it with ``--permissions-accounts-config-file-enabled`` and
        ``--permissions-accounts-config-file=<path>``; see the README.
        """
        accounts = self.besu_allowlist(extra)
        body = ",\n".join(f'  "{a}"' for a in accounts)
        text = ("# Besu local account permissioning, exported from the ConsortiumRegistry's active members.\n"
                f"# Registry {self.contract.address} on chain {self._client.chain_id}, "
                f"block {self._client.block_number()}.\n"
                f"accounts-allowlist=[\n{body}\n]\n")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    # -- parsing --------------------------------------------------------------------------------------

    def _status_change(self, function: str, account: str) -> StatusChange:
        receipt = self._client.transact(self.contract.tx(function, checked_address(account, "account")))
        args = self.contract.event_args(receipt, "MemberStatusChanged")
        return StatusChange(address=args["account"], previous=MemberStatus(args["previous"]),
                            current=MemberStatus(args["current"]), by=args["by"], tx_hash=receipt.tx_hash,
                            block_number=receipt.block_number)

    def _members_from(self, receipts: Sequence[Receipt]) -> list[Member]:
        """The members the MemberEnrolled events of the receipts enrolled, in order."""
        times = self._client.block_times({r.block_number for r in receipts})  # one request for all blocks
        members = []
        for r in receipts:
            for event in self.contract.events(r):
                if event.name == "MemberEnrolled":
                    args = event.args
                    members.append(Member(
                        address=args["account"], org_id=args["orgId"], role=Role(args["role"]),
                        status=MemberStatus.ACTIVE, region=args["region"], enrolled_at=timestamp(times[r.block_number]),
                        identity_hash=args["identityHash"]))
        return members

    @staticmethod
    def _member(address: str, raw: dict[str, Any]) -> Member:
        return Member(address=address, org_id=raw["orgId"], role=Role(raw["role"]),
                      status=MemberStatus(raw["status"]), region=raw["region"],
                      enrolled_at=timestamp(raw["enrolledAt"]), identity_hash=raw["identityHash"],
                      in_debt=raw["inDebt"])
