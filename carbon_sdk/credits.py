"""Personal carbon accounts: methodologies, quotas, offset ratio, credit batches and their claims (DESIGN 2.4).

    regulator.credits.register_methodology(1, methodology.content_hash, uri="ipfs://...")
    regulator.credits.set_quota(2025, region=44, per_capita=tonnes("2.5"))
    regulator.credits.set_offset_ratio(2025, delta_bps=5_000)
    regulator.credits.set_issuance_ceiling(2025, platform.address, tonnes(1_000_000))

    batch = platform.credits.build_batch([(alice, tonnes("0.31"), 0), (bob, 0, tonnes("0.2"))])
    platform.credits.commit_batch(batch, period=2025, methodology=1)
    platform.credits.claim_many(batch)                  # every entry, 200 per transaction
    bob_client.credits.cover_deficit(2025, owed)        # surrender PCC at the offset ratio

A batch is one OpenZeppelin StandardMerkleTree of ``(uint256 index, address account, uint128 amount,
uint128 deficit, uint256 batchId, address manager, uint256 chainId)``: a leaf is valid for one account, in one
batch, of one deployment on one chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from carbon_sdk.coin import to_bytes32
from carbon_sdk.errors import InvalidInput
from carbon_sdk.merkle import StandardMerkleTree
from carbon_sdk.registry import _region, checked_address
from carbon_sdk.tx import Progress, per_item
from carbon_sdk.units import checked_amount

if TYPE_CHECKING:
    from carbon_sdk.client import BoundContract, CarbonClient

CONTRACT = "CreditManager"
TOKEN = "PersonalCarbonCredit"
LEAF_ENCODING = ("uint256", "address", "uint128", "uint128", "uint256", "address", "uint256")
MAX_CLAIMS = 200  # entries per claimMany


@dataclass(frozen=True)
class CreditEntry:
    index: int
    account: str
    amount: int  # PCC units (grams) to mint
    deficit: int  # grams above the quota


@dataclass
class CreditBatchTree:
    """A batch built off chain: its entries and tree, bound to the batch id it will be committed as."""

    batch_id: int
    entries: list[CreditEntry]
    tree: StandardMerkleTree
    committed: bool = False

    @property
    def root(self) -> str:
        return self.tree.root

    @property
    def total(self) -> int:
        return sum(e.amount for e in self.entries)

    def proof(self, index: int) -> list[bytes]:
        return [bytes.fromhex(p[2:]) for p in self.tree.get_proof(index)]

    def claim_args(self, index: int) -> tuple[int, str, int, int, list[bytes]]:
        e = self.entries[index]
        return (e.index, e.account, e.amount, e.deficit, self.proof(index))


class CreditsModule:
    """Methodologies, quotas, batches and claims on the CreditManager contract, and the PCC token."""

    def __init__(self, client: "CarbonClient"):
        self._client = client

    @property
    def contract(self) -> "BoundContract":
        return self._client.contract(CONTRACT)

    @property
    def token(self) -> "BoundContract":
        return self._client.bind(TOKEN, self.contract.call("credit"), self._client.manifest.abi(TOKEN))

    # -- regulator ----------------------------------------------------------------------------------------

    def register_methodology(self, version: int, content_hash: bytes | str, uri: str = "") -> dict[str, Any]:
        self._client.transact(self.contract.tx("registerMethodology", version, to_bytes32(content_hash), uri))
        return self.methodology(version)

    def methodology(self, version: int) -> dict[str, Any]:
        raw = self.contract.call("methodologyOf", version)
        return {"version": version, "content_hash": raw["contentHash"], "registered_at": raw["registeredAt"],
                "uri": raw["uri"]}

    def set_quota(self, period: int, *, region: int, per_capita: int) -> int:
        self._client.transact(self.contract.tx("setQuota", period, _region(region),
                                               checked_amount(per_capita, "per_capita", allow_zero=True, bits=128)))
        return int(self.contract.call("quotaOf", period, region))

    def set_offset_ratio(self, period: int, *, delta_bps: int) -> int:
        if not isinstance(delta_bps, int) or not 0 <= delta_bps <= 10_000:
            raise InvalidInput(f"delta_bps {delta_bps!r} must be basis points from 0 to 10000")
        self._client.transact(self.contract.tx("setOffsetRatio", period, delta_bps))
        return int(self.contract.call("offsetRatioOf", period))

    def set_issuance_ceiling(self, period: int, platform: str, ceiling: int) -> tuple[int, int]:
        self._client.transact(self.contract.tx("setIssuanceCeiling", period, checked_address(platform, "platform"),
                                               checked_amount(ceiling, "ceiling", allow_zero=True, bits=128)))
        return self.issued(period, platform)

    def issued(self, period: int, platform: str) -> tuple[int, int]:
        """(committed, ceiling) of a platform's batches in a period."""
        committed, ceiling = self.contract.call("issuedBy", period, checked_address(platform, "platform"))
        return int(committed), int(ceiling)

    # -- batches ------------------------------------------------------------------------------------------

    def build_batch(self, entries: Sequence[tuple[str, int, int]], batch_id: int | None = None) -> CreditBatchTree:
        """Build a batch's tree from ``(account, amount, deficit)`` entries, for the next batch id by default."""
        if not entries:
            raise InvalidInput("a batch needs at least one entry")
        batch_id = int(self.contract.call("nextBatchId")) if batch_id is None else batch_id
        manager, chain = self.contract.address, self._client.chain_id
        out: list[CreditEntry] = []
        for i, item in enumerate(entries):
            try:
                account, amount, deficit = item
            except (TypeError, ValueError):
                raise InvalidInput(f"entry #{i} must be (account, amount, deficit), got {item!r}") from None
            out.append(CreditEntry(i, checked_address(account, f"entry #{i} account"),
                                   checked_amount(amount, f"entry #{i} amount", allow_zero=True, bits=64),
                                   checked_amount(deficit, f"entry #{i} deficit", allow_zero=True, bits=128)))
        tree = StandardMerkleTree.of([(e.index, e.account, e.amount, e.deficit, batch_id, manager, chain)
                                      for e in out], LEAF_ENCODING)
        return CreditBatchTree(batch_id, out, tree)

    def commit_batch(self, batch: CreditBatchTree, *, period: int, methodology: int) -> dict[str, Any]:
        """Commit a built batch (a PLATFORM); refused if its id is no longer the next one (rebuild it)."""
        self._client.transact(self.contract.tx("commitBatch", batch.batch_id, period, methodology,
                                               bytes.fromhex(batch.root[2:]), batch.total, len(batch.entries)))
        batch.committed = True
        return self.batch(batch.batch_id)

    def batch(self, batch_id: int) -> dict[str, Any]:
        raw = self.contract.call("batchOf", batch_id)
        committed = self.contract.logs(["BatchCommitted"], topics=["0x" + batch_id.to_bytes(32, "big").hex()])
        total = committed[0].args["total"] if committed else 0
        entries = committed[0].args["entries"] if committed else 0
        return {"batch_id": batch_id, "platform": raw["platform"], "period": raw["period"],
                "methodology": raw["methodology"], "entries": entries, "total": total,
                "claimed": total - raw["remaining"], "remaining": raw["remaining"], "root": "0x" + raw["root"].hex()}

    def claim(self, batch: CreditBatchTree, index: int) -> str:
        """Claim one entry (its account, or the batch's platform)."""
        receipt = self._client.transact(self.contract.tx("claim", batch.batch_id, batch.claim_args(index)))
        return receipt.tx_hash

    def claim_many(self, batch: CreditBatchTree, indexes: Sequence[int] | None = None, *,
                   per_transaction: int = MAX_CLAIMS, progress: Progress | None = None) -> int:
        """Claim many entries (the batch's platform), ``per_transaction`` per transaction; skips the ones
        claimed already. Returns the number claimed."""
        todo = list(range(len(batch.entries))) if indexes is None else list(indexes)
        claimed = self.contract.call_many("isClaimed", [(batch.batch_id, i) for i in todo])
        todo = [i for i, done in zip(todo, claimed) if not done]
        chunks = [todo[s:s + per_transaction] for s in range(0, len(todo), per_transaction)]
        calls = [self.contract.tx("claimMany", batch.batch_id, [batch.claim_args(i) for i in c]) for c in chunks]
        if calls:
            self._client.transact_many(calls, progress=per_item(chunks, progress))
        return len(todo)

    def is_claimed(self, batch_id: int, index: int) -> bool:
        return bool(self.contract.call("isClaimed", batch_id, index))

    # -- accounts -----------------------------------------------------------------------------------------

    def balance(self, account: str) -> int:
        return int(self.token.call("balanceOf", checked_address(account, "account")))

    def deficit(self, period: int, account: str) -> dict[str, int]:
        owed, covered = self.contract.call("deficitOf", period, checked_address(account, "account"))
        return {"owed": owed, "covered": covered, "outstanding": owed - covered}

    def cover_deficit(self, period: int, amount: int) -> dict[str, int]:
        self._client.transact(self.contract.tx("coverDeficit", period, checked_amount(amount, "amount")))
        return self.deficit(period, self._client.address)
