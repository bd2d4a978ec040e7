"""Personal carbon accounts: methodologies, quotas, offset ratio, credit batches and their claims (DESIGN 2.4).

    regulator.credits.register_methodology(1, methodology.content_hash, uri="ipfs://...")
    regulator.credits.set_quota(2025, region=44, per_capita=tonnes("2.5"))
    regulator.credits.set_offset_ratio(2025, delta_bps=5_000)
    regulator.credits.set_issuance_ceiling(2025, platform.address, tonnes(1_000_000))

    batch = platform.credits.build_batch([(alice, tonnes("0.31"), 0), (bob, 0, tonnes("0.2"))])
    platform.credits.commit_batch(batch, period=2025, methodology=1)
    platform.credits.claim_many(batch)                  # every entry, 200 per transaction
    bob_client.credits.cover_deficit(2025, owed)        # surrender PCC at the offset ratio

    platform.credits.post_model_prices(N=800, e=120, D=6_000, W="0.4", c=5, period=2025)  # economics, posted
    platform.credits.fund_desk(settlement_units)        # what its desk and merchants may draw
    alice_client.credits.sell_to_platform(platform.address, tonnes("0.2"))
    bob_client.credits.buy_from_platform(platform.address, tonnes("0.1"))
    alice_client.credits.redeem(platform.address, merchant, tonnes("0.05"), receipt="till 42 #1007")
    alice_client.credits.donate(project_id=7, amount=tonnes("0.01"))

    # Signed desk orders, settled 200 per transaction by the platform (carbon_sdk.desk_orders):
    signed = alice_client.credits.sign_desk_order(alice_client.credits.desk_order(platform.address, "sell", amount))
    platform.credits.settle_desk_orders([signed, ...], permits=[...])

A batch is one OpenZeppelin StandardMerkleTree of ``(uint256 index, address account, uint128 amount,
uint128 deficit, uint256 batchId, address manager, uint256 chainId)``: a leaf is valid for one account, in one
batch, of one deployment on one chain.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence


from carbon_sdk.abi import Event, to_checksum_address
from carbon_sdk.signing import eip712_words

from carbon_sdk.activities import BatchTotals
from carbon_sdk.coin import to_bytes32
from carbon_sdk.desk_orders import (
    KINDS,
    SELL,
    DeskBatch,
    DeskOrder,
    DeskOrderRefused,
    DeskOrdersFile,
    DeskOrdersSettled,
    DeskSettlementIncomplete,
    SettlementPermit,
    SignedDeskOrder,
    encode_settle_args,
    load_orders,
    next_free,
    settle_gas,
    desk_domain,
    sign_desk_order,
    time_text,
)
from carbon_sdk.economics import Number, PlatformPrices, platform_prices
from carbon_sdk.errors import (
    InvalidInput,
    TransactionError,
    TransactionReverted,
    contract_error,
)
from carbon_sdk.merkle import StandardMerkleTree
from carbon_sdk.registry import _region, checked_address
from carbon_sdk.tx import Call, Progress, per_item
from carbon_sdk.units import checked_amount

if TYPE_CHECKING:
    from carbon_sdk.client import BoundContract, CarbonClient

CONTRACT = "CreditManager"
LEAF_ENCODING = ("uint256", "address", "uint128", "uint128", "uint256", "address", "uint256")
MAX_CLAIMS = 200  # entries per claimMany
# claimMany's gas limit: per entry at its dearest (a new holder's first credits and a deficit recorded, about
# 115k measured; docs/benchmarks.md), so 200 entries stay inside a 30M block.
CLAIM_GAS = 130_000
CLAIM_BASE_GAS = 60_000
UNIT = 10**6  # PCC units per whole credit (1 tCO2e); desk prices and merchant rates are per whole credit


@dataclass(frozen=True)
class CreditEntry:
    index: int
    account: str
    amount: int  # PCC units (grams) to mint
    deficit: int  # grams above the quota


BATCH_FORMAT = "carbon-credit-batch-v1"


def credit_entries(totals: BatchTotals, quota: int | Mapping[str, int]) -> list[tuple[str, int, int]]:
    """Each account's ``(account, amount, deficit)`` for a batch, from its emissions and reductions.

    ``quota`` is the per-capita quota in grams for the batch's span (one number for everyone, or a mapping
    account -> grams, e.g. by each account's region). Credits = surplus quota (quota − emissions, when
    positive) + green-behaviour reductions; deficit = emissions − quota, when positive (it owes deficit × δ
    PCC once claimed). 1 gram = 1 PCC unit (6 decimals: 1.000000 PCC = 1 tCO2e).
    """
    out = []
    for account, t in totals.accounts.items():
        if isinstance(quota, Mapping):
            try:
                q = quota[account]
            except KeyError:
                raise InvalidInput(f"no quota given for account {account}") from None
        else:
            q = quota
        if not isinstance(q, int) or isinstance(q, bool) or q < 0:
            raise InvalidInput(f"quota of {account} must be a non-negative integer of grams, got {q!r}")
        out.append((account, max(q - t.emissions, 0) + t.reductions, max(t.emissions - q, 0)))
    return out


def issuance_ceiling(totals: BatchTotals, quota: int | Mapping[str, int]) -> int:
    """What the methodology and the quota allow a platform to issue for these totals: the sum of its
    accounts' credits (:func:`credit_entries`). A regulator sets it with ``credits.set_issuance_ceiling``
    after checking the totals (e.g. recomputing them from the platform's activity file)."""
    return sum(amount for _, amount, _ in credit_entries(totals, quota))


@dataclass
class CreditBatchTree:
    """A batch built off chain: its entries and tree, bound to the batch id, deployment and chain it will be
    committed on (the leaves include all three)."""

    batch_id: int
    entries: list[CreditEntry]
    tree: StandardMerkleTree
    committed: bool = False
    manager: str = ""
    chain_id: int = 0
    methodology: int = 0  # version the entries were computed with (0: not recorded)

    @classmethod
    def build(cls, entries: Sequence[tuple[str, int, int]], *, batch_id: int, manager: str, chain_id: int,
              methodology: int = 0) -> "CreditBatchTree":
        """The tree of ``(account, amount, deficit)`` entries, numbered in order."""
        if not entries:
            raise InvalidInput("a batch needs at least one entry")
        out: list[CreditEntry] = []
        for i, item in enumerate(entries):
            try:
                account, amount, deficit = item
            except (TypeError, ValueError):
                raise InvalidInput(f"entry #{i} must be (account, amount, deficit), got {item!r}") from None
            out.append(CreditEntry(i, checked_address(account, f"entry #{i} account"),
                                   checked_amount(amount, f"entry #{i} amount", allow_zero=True, bits=64),
                                   checked_amount(deficit, f"entry #{i} deficit", allow_zero=True, bits=128)))
        if sum(e.amount for e in out) >= 2**64:
            raise InvalidInput("the batch's total does not fit in uint64: split it")
        manager = to_checksum_address(manager)
        tree = StandardMerkleTree.of([(e.index, e.account, e.amount, e.deficit, batch_id, manager, chain_id)
                                      for e in out], LEAF_ENCODING)
        return cls(batch_id, out, tree, manager=manager, chain_id=chain_id, methodology=methodology)

    def save(self, path: str | Path) -> Path:
        """Write the batch (entries and root; the tree is rebuilt on load) as JSON."""
        path = Path(path)
        path.write_text(json.dumps({
            "format": BATCH_FORMAT, "batchId": self.batch_id, "manager": self.manager, "chainId": self.chain_id,
            "methodology": self.methodology, "root": self.root, "total": str(self.total),
            "entries": [[e.account, str(e.amount), str(e.deficit)] for e in self.entries]}))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CreditBatchTree":
        """A batch saved by :meth:`save`; its tree is rebuilt and must give the saved root."""
        try:
            data = json.loads(Path(path).read_text())
            if data.get("format") != BATCH_FORMAT:
                raise InvalidInput(f"{path} is not a credit batch file (format {data.get('format')!r})")
            entries = [(a, int(amount), int(deficit)) for a, amount, deficit in data["entries"]]
            batch = cls.build(entries, batch_id=int(data["batchId"]), manager=data["manager"],
                              chain_id=int(data["chainId"]), methodology=int(data.get("methodology", 0)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"cannot read credit batch {path}: {exc}") from None
        if batch.root != data["root"]:
            raise InvalidInput(f"{path}: its entries give root {batch.root}, not the saved {data['root']}")
        return batch

    def write_claims(self, path: str | Path) -> Path:
        """One JSON line per entry with its proof: what each individual needs to claim by himself."""
        path = Path(path)
        proofs = self.tree.all_proofs()
        with path.open("w", encoding="utf-8") as handle:
            for e, proof in zip(self.entries, proofs):
                handle.write(json.dumps({"batchId": self.batch_id, "index": e.index, "account": e.account,
                                         "amount": str(e.amount), "deficit": str(e.deficit),
                                         "proof": ["0x" + p.hex() for p in proof]}) + "\n")
        return path

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


def encode_claims(batch_id: int, claims: Sequence[tuple[int, str, int, int, Sequence[bytes]]]) -> bytes:
    """The ABI encoding of claimMany's arguments (without the selector), written out directly: each claim is
    four words, an offset and its proof; eth_abi's general encoder takes about 20 times as long (a test
    compares the two)."""
    out = bytearray(eip712_words(batch_id, 64, len(claims)))
    offset = 32 * len(claims)
    tails = bytearray()
    for index, account, amount, deficit, proof in claims:
        out += eip712_words(offset)
        tail = eip712_words(index, account, amount, deficit, 160, len(proof)) + b"".join(proof)
        tails += tail
        offset += len(tail)
    return bytes(out + tails)


@dataclass(frozen=True)
class DeskPrices:
    """A platform's posted prices, settlement units per whole credit (0: that side is closed)."""

    platform: str
    buy_back: int
    sale: int


@dataclass(frozen=True)
class DeskTrade:
    """A sale to (``side == "sell"``) or a purchase from (``"buy"``) a platform's desk."""

    side: str
    platform: str
    account: str
    amount: int  # PCC units
    price: int  # settlement units per whole credit
    paid: int  # settlement units
    tx_hash: str
    covered: int = 0  # PCC units surrendered against a deficit right after the purchase (a buy-and-cover order)


@dataclass(frozen=True)
class Redemption:
    redemption_id: int
    holder: str
    merchant: str
    platform: str
    amount: int  # PCC units burned
    merchant_paid: int  # settlement units the platform paid the merchant
    receipt: bytes
    tx_hash: str


@dataclass(frozen=True)
class Donation:
    project_id: int
    donor: str
    beneficiary: str
    amount: int  # PCC units retired
    tx_hash: str


@dataclass(frozen=True)
class WelfareProject:
    project_id: int
    beneficiary: str
    region: int
    open: bool
    retired: int  # PCC units donated to it
    name: str


def desk_payment(amount: int, price: int, *, round_up: bool) -> int:
    """What ``amount`` PCC units cost at ``price`` settlement units per whole credit, rounded as the contract
    does: down when the platform or a merchant is paid, up when a buyer pays."""
    return -(-amount * price // UNIT) if round_up else amount * price // UNIT


class CreditsModule:
    """Methodologies, quotas, batches and claims on the CreditManager contract, and the PCC token."""

    def __init__(self, client: "CarbonClient"):
        self._client = client

    @property
    def contract(self) -> "BoundContract":
        return self._client.contract(CONTRACT)

    @property
    def token(self) -> "BoundContract":
        return self.contract  # the credit manager is the PCC token itself

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

    def quota(self, period: int, region: int) -> int:
        """The per-capita quota (grams) a regulator set for ``region`` in ``period`` (0 if none)."""
        return int(self.contract.call("quotaOf", period, _region(region)))

    def offset_ratio(self, period: int) -> int:
        """The offset ratio δ of ``period`` in basis points (0 if none is set)."""
        return int(self.contract.call("offsetRatioOf", period))

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

    def build_batch(self, entries: Sequence[tuple[str, int, int]], batch_id: int | None = None, *,
                    methodology: int = 0) -> CreditBatchTree:
        """Build a batch's tree from ``(account, amount, deficit)`` entries, for the next batch id by default."""
        if not entries:
            raise InvalidInput("a batch needs at least one entry")
        batch_id = int(self.contract.call("nextBatchId")) if batch_id is None else batch_id
        return CreditBatchTree.build(entries, batch_id=batch_id, manager=self.contract.address,
                                     chain_id=self._client.chain_id, methodology=methodology)

    def build_batch_from_activities(self, totals: BatchTotals, quota: int | Mapping[str, int]) -> CreditBatchTree:
        """The next batch from a methodology's per-account totals (``activities.batch_totals``) and the quota
        (see :func:`credit_entries`); accounts with neither credits nor deficit are left out."""
        entries = [e for e in credit_entries(totals, quota) if e[1] or e[2]]
        return self.build_batch(entries, methodology=totals.methodology_version)

    def commit_batch(self, batch: CreditBatchTree, *, period: int, methodology: int | None = None) -> dict[str, Any]:
        """Commit a built batch (a PLATFORM); refused if its id is no longer the next one (rebuild it), or if it
        was built for another deployment or chain. ``methodology`` defaults to the version it was built with."""
        self._check_target(batch)
        if methodology is None:
            if not batch.methodology:
                raise InvalidInput("say which methodology version the batch was computed with")
            methodology = batch.methodology
        expected = int(self.contract.call("nextBatchId"))
        if batch.batch_id != expected:
            raise contract_error("CreditsBatchIdMismatch", expected=batch.batch_id, next=expected)
        committed, ceiling = self.issued(period, self._client.address)
        if committed + batch.total > ceiling:
            raise contract_error("CreditsCeilingExceeded", period=period, platform=self._client.address,
                                 ceiling=ceiling, requested=committed + batch.total)
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

    def _check_target(self, batch: CreditBatchTree) -> None:
        if batch.manager and (batch.manager.lower() != self.contract.address.lower()
                              or batch.chain_id != self._client.chain_id):
            raise InvalidInput(f"batch {batch.batch_id} was built for credit manager {batch.manager} on chain "
                               f"{batch.chain_id}, not {self.contract.address} on chain {self._client.chain_id}")

    def claim(self, batch: CreditBatchTree, index: int) -> str:
        """Claim one entry (its account, or the batch's platform)."""
        receipt = self._client.transact(self.contract.tx("claim", batch.batch_id, batch.claim_args(index)))
        return receipt.tx_hash

    def claim_many(self, batch: CreditBatchTree, indexes: Sequence[int] | None = None, *,
                   per_transaction: int = MAX_CLAIMS, progress: Progress | None = None) -> int:
        """Claim many entries (the batch's platform), ``per_transaction`` per transaction; skips the ones
        claimed already. Returns the number claimed.

        The first transaction is tried (one eth_call) before any is sent, so a wrong batch, a caller that is
        not its platform or an entry that does not belong raises its typed error with nothing claimed; the
        rest go with a fixed gas limit (CLAIM_GAS each), as their entries are alike."""
        if not 1 <= per_transaction <= MAX_CLAIMS:
            raise InvalidInput(f"per_transaction must be from 1 to {MAX_CLAIMS}")
        todo = list(range(len(batch.entries))) if indexes is None else list(indexes)
        words = sorted({i >> 8 for i in todo})  # claimed flags come 256 to a word: one read per word
        bits = dict(zip(words, self.contract.call_many("claimedBits", [(batch.batch_id, w) for w in words])))
        todo = [i for i in todo if not bits[i >> 8] >> (i & 255) & 1]
        if not todo:
            return 0
        proofs = batch.tree.all_proofs() if len(todo) * 8 > len(batch.entries) else None
        selector = self.contract.abi.function("claimMany").selector

        def claim(i: int) -> tuple[int, str, int, int, Sequence[bytes]]:
            e = batch.entries[i]
            return (e.index, e.account, e.amount, e.deficit, proofs[i] if proofs is not None else batch.proof(i))

        chunks = [todo[s:s + per_transaction] for s in range(0, len(todo), per_transaction)]
        calls = [Call(to=self.contract.address, data=selector + encode_claims(batch.batch_id, [claim(i) for i in c]),
                      gas=CLAIM_BASE_GAS + CLAIM_GAS * len(c), label="CreditManager.claimMany") for c in chunks]
        self._client._require_sender().simulate(calls[0])  # raises the typed error of a refused first call
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
        amount = checked_amount(amount, "amount")
        self._require_balance(amount)
        self._client.transact(self.contract.tx("coverDeficit", period, amount))
        return self.deficit(period, self._client.address)

    # -- platform desk and merchants ----------------------------------------------------------------------

    def post_prices(self, buy_back: int, sale: int) -> DeskPrices:
        """Post this platform's buy-back and sale prices (settlement units per whole credit; 0 closes a side)."""
        buy_back = checked_amount(buy_back, "buy_back", allow_zero=True, bits=128)
        sale = checked_amount(sale, "sale", allow_zero=True, bits=128)
        if sale and buy_back > sale:
            raise contract_error("CreditsPricesCrossed", buyBack=buy_back, sale=sale)
        self._client.transact(self.contract.tx("postPrices", buy_back, sale))
        return self.prices(self._client.address)

    def post_model_prices(self, *, N: Number, e: Number, D: Number, W: Number, c: Number = 0,
                          delta: Number | None = None, period: int | None = None) -> tuple[PlatformPrices, DeskPrices]:
        """Price from the model (``economics.platform_prices``) and post it, in one call.

        δ is ``delta`` or, when omitted, the offset ratio the regulator set for ``period``. The model's prices
        (currency per tonne) become settlement units per whole credit at the settlement token's decimals:
        buy-back rounded down, sale up (``economics.posted_prices``).
        """
        if delta is None:
            if period is None:
                raise InvalidInput("say delta=..., or period=... to use the offset ratio set on chain")
            bps = self.offset_ratio(period)
            if bps == 0:
                raise InvalidInput(f"no offset ratio is set for period {period}: pass delta=...")
            delta = f"{bps / 10_000}"
        model = platform_prices(N, delta, e, D, W, c)
        decimals = int(self._client.contract("SettlementToken").call("decimals"))
        posted = model.posted(decimals)
        return model, self.post_prices(posted.buy_back, posted.sale)

    def prices(self, platform: str) -> DeskPrices:
        raw = self.contract.call("pricesOf", checked_address(platform, "platform"))
        return DeskPrices(checked_address(platform, "platform"), int(raw["buyBack"]), int(raw["sale"]))

    def fund_desk(self, amount: int) -> int:
        """Let the desk and merchant payments draw up to ``amount`` settlement units from this platform
        (an ERC-20 approval of the credit manager, replacing the previous one). Returns the allowance."""
        self._client.settlement.approve(self.contract.address, amount)
        return self.desk_allowance(self._client.address)

    def desk_allowance(self, platform: str) -> int:
        """Settlement units the credit manager may still draw from ``platform`` (buy-backs, merchants)."""
        return int(self._settlement.call("allowance", checked_address(platform, "platform"), self.contract.address))

    def set_merchant_rate(self, merchant: str, rate: int) -> int:
        """Pay ``merchant`` ``rate`` settlement units per whole credit redeemed there (a PLATFORM; 0 stops)."""
        self._client.transact(self.contract.tx("setMerchantRate", checked_address(merchant, "merchant"),
                                               checked_amount(rate, "rate", allow_zero=True, bits=128)))
        return self.merchant_rate(self._client.address, merchant)

    def merchant_rate(self, platform: str, merchant: str) -> int:
        return int(self.contract.call("merchantRateOf", checked_address(platform, "platform"),
                                      checked_address(merchant, "merchant")))

    # -- welfare projects ---------------------------------------------------------------------------------

    def register_project(self, project_id: int, beneficiary: str, *, name: str, region: int = 0) -> WelfareProject:
        """Register a public-welfare project credits can be donated to (a regulator)."""
        if not name or not isinstance(name, str):
            raise InvalidInput("a project needs a name")
        self._client.transact(self.contract.tx("registerProject", _project_id(project_id),
                                               checked_address(beneficiary, "beneficiary"), _region(region), name))
        return self.project(project_id)

    def close_project(self, project_id: int) -> WelfareProject:
        self._client.transact(self.contract.tx("closeProject", _project_id(project_id)))
        return self.project(project_id)

    def project(self, project_id: int) -> WelfareProject:
        raw = self.contract.call("projectOf", _project_id(project_id))
        if int(raw["beneficiary"], 16) == 0:
            raise contract_error("CreditsUnknownProject", projectId=project_id)
        return WelfareProject(project_id, raw["beneficiary"], int(raw["region"]), bool(raw["open"]),
                              int(raw["retired"]), raw["name"])

    # -- using credits ------------------------------------------------------------------------------------

    def sell_to_platform(self, platform: str, amount: int, *, min_price: int | None = None) -> DeskTrade:
        """Sell ``amount`` PCC units to ``platform`` at its posted buy-back price (at least ``min_price``,
        by default the price read now, so a price cut in between is refused)."""
        platform, amount = checked_address(platform, "platform"), checked_amount(amount, "amount")
        posted = self.prices(platform).buy_back
        if posted == 0:
            raise contract_error("CreditsDeskClosed", platform=platform)
        limit = posted if min_price is None else checked_amount(min_price, "min_price", allow_zero=True)
        if posted < limit:
            raise contract_error("CreditsPriceMoved", platform=platform, posted=posted, limit=limit)
        self._require_balance(amount)
        receipt = self._client.transact(self.contract.tx("sellToPlatform", platform, amount, limit))
        return desk_trades(self.contract.events(receipt), receipt.tx_hash)[0]

    def buy_from_platform(self, platform: str, amount: int, *, max_price: int | None = None) -> DeskTrade:
        """Buy ``amount`` PCC units from ``platform`` at its posted sale price (at most ``max_price``, by default
        the price read now). Approves the credit manager for the cost first when needed."""
        platform, amount = checked_address(platform, "platform"), checked_amount(amount, "amount")
        posted = self.prices(platform).sale
        if posted == 0:
            raise contract_error("CreditsDeskClosed", platform=platform)
        limit = posted if max_price is None else checked_amount(max_price, "max_price")
        if posted > limit:
            raise contract_error("CreditsPriceMoved", platform=platform, posted=posted, limit=limit)
        cost = desk_payment(amount, limit, round_up=True)
        held = self.balance(platform)
        if held < amount:
            raise contract_error("ERC20InsufficientBalance", sender=platform, balance=held, needed=amount)
        me = self._client.address
        cash = int(self._settlement.call("balanceOf", me))
        if cash < cost:
            raise contract_error("ERC20InsufficientBalance", sender=me, balance=cash, needed=cost)
        if int(self._settlement.call("allowance", me, self.contract.address)) < cost:
            self._client.settlement.approve(self.contract.address, cost)
        receipt = self._client.transact(self.contract.tx("buyFromPlatform", platform, amount, limit))
        return desk_trades(self.contract.events(receipt), receipt.tx_hash)[0]

    def redeem(self, platform: str, merchant: str, amount: int, *, receipt: bytes | str = b"") -> Redemption:
        """Redeem (burn) ``amount`` PCC units at ``merchant`` under ``platform``'s rules; the platform pays the
        merchant its rate. ``receipt``: the merchant's receipt or order id (up to 32 bytes)."""
        platform, merchant = checked_address(platform, "platform"), checked_address(merchant, "merchant")
        amount = checked_amount(amount, "amount")
        if self.merchant_rate(platform, merchant) == 0:
            raise contract_error("CreditsMerchantNotAccepted", platform=platform, merchant=merchant)
        self._require_balance(amount)
        tx = self._client.transact(self.contract.tx("redeem", platform, merchant, amount,
                                                    to_bytes32(receipt, "receipt") if receipt else b"\0" * 32))
        args = self.contract.event_args(tx, "CreditsRedeemed")
        return Redemption(args["redemptionId"], args["holder"], args["merchant"], args["platform"], args["amount"],
                          args["merchantPaid"], args["receipt"], tx.tx_hash)

    def donate(self, project_id: int, amount: int) -> Donation:
        """Donate (burn, retiring them in the beneficiary's name) ``amount`` PCC units to an open project."""
        amount = checked_amount(amount, "amount")
        project = self.project(project_id)
        if not project.open:
            raise contract_error("CreditsProjectClosed", projectId=project_id)
        self._require_balance(amount)
        tx = self._client.transact(self.contract.tx("donate", project_id, amount))
        args = self.contract.event_args(tx, "CreditsDonated")
        return Donation(args["projectId"], args["donor"], args["beneficiary"], args["amount"], tx.tx_hash)

    # -- signed desk orders (carbon_sdk.desk_orders) ---------------------------------------------------------

    def order_nonce(self, holder: str) -> int:
        """The nonce ``holder``'s next desk order must carry."""
        return int(self.contract.call("nonces", checked_address(holder, "holder")))

    @property
    def order_domain(self) -> bytes:
        """The EIP-712 domain separator desk orders of this deployment are signed in."""
        return desk_domain(self.contract.address, self._client.chain_id)

    def desk_order(self, platform: str, kind: str | int, amount: int, *, limit_price: int | None = None,
                   period: int = 0, valid_for: int = 3_600, nonce: int | None = None) -> DeskOrder:
        """An order of this client's account (unsigned): ``kind`` "sell", "buy" or "buy-and-cover" (with the
        deficit's ``period``). By default its limit is the price posted now, its nonce the next one on chain and
        it is valid for an hour of chain time."""
        code = KINDS.get(kind, kind) if isinstance(kind, str) else kind
        if code not in KINDS.values():
            raise InvalidInput(f"order kind must be one of {sorted(KINDS)}, not {kind!r}")
        platform = checked_address(platform, "platform")
        if limit_price is None:
            posted = self.prices(platform)
            limit_price = posted.buy_back if code == SELL else posted.sale
            if limit_price == 0:
                raise contract_error("CreditsDeskClosed", platform=platform)
        elif limit_price == 0 and code != SELL:
            raise InvalidInput("a buy order with a limit price of 0 could never be settled")
        me = self._client.address
        return DeskOrder(me, platform, code, checked_amount(amount, "amount"), limit_price,
                         self.order_nonce(me) if nonce is None else nonce,
                         self._client.chain_time() + checked_amount(valid_for, "valid_for"), period)

    def sign_desk_order(self, order: DeskOrder) -> SignedDeskOrder:
        """Sign ``order`` with this client's key (it must be the order's holder). Sends nothing."""
        sender = self._client._require_sender()
        if order.holder != sender.address:
            raise InvalidInput(f"this client's key is {sender.address}'s, not the order holder {order.holder}'s")
        return sign_desk_order(sender.signer.signing_key, order, self.order_domain)

    def open_desk_file(self, path: str | Path) -> DeskOrdersFile:
        """The desk-orders file at ``path`` (:func:`~carbon_sdk.desk_orders.load_orders`), which must be for this
        deployment; a new, empty one (not written yet) if there is none."""
        path = Path(path)
        if not path.exists():
            return DeskOrdersFile(path, [], [], self.contract.address, self._client.chain_id)
        desk = load_orders(path)
        desk.check_deployment(self.contract.address, self._client.chain_id)
        return desk

    def add_desk_order(self, desk: DeskOrdersFile, platform: str, kind: str | int, amount: int, *,
                       limit_price: int | None = None, period: int = 0, valid_for: int = 3_600,
                       permit: bool = False) -> tuple[SignedDeskOrder, SettlementPermit | None]:
        """Sign an order of this client's account (:meth:`desk_order`) into ``desk`` (a file of this deployment;
        not written), with the nonce after the holder's orders already in it; with ``permit``, also an unlimited
        settlement-token permit for the credit manager, valid as long (after the holder's permits in it). Sends
        nothing. Returns the order and the permit (or None)."""
        manager = self.contract.address
        desk.check_deployment(manager, self._client.chain_id)
        me = self._client.address
        code = KINDS.get(kind, kind) if isinstance(kind, str) else kind
        if permit and code == SELL:
            raise InvalidInput("a permit is for buy orders: a seller pays nothing")
        nonce = next_free(self.order_nonce(me), (s.order.nonce for s in desk.orders if s.order.holder == me))
        signed = self.sign_desk_order(self.desk_order(platform, kind, amount, limit_price=limit_price,
                                                      period=period, valid_for=valid_for, nonce=nonce))
        signed_permit = None
        if permit:
            settlement = self._client.settlement
            permit_nonce = next_free(settlement.permit_nonce(me), (p.nonce for p in desk.permits if p.owner == me))
            signed_permit = settlement.sign_permit(manager, valid_for=valid_for, nonce=permit_nonce)
        desk.orders.append(signed)
        if signed_permit is not None:
            desk.permits.append(signed_permit)
        return signed, signed_permit

    def check_desk_orders(self, orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit] = (), *,
                          skip_settled: bool = False) -> DeskBatch:
        """Check signed orders and permits against the chain before anything is sent, as this platform would
        settle them. Each order: this platform's, settled before (its nonce used: left out with
        ``skip_settled``, else DeskOrdersSettled), not expired (a deadline at or before the chain's time is),
        nonces in sequence per holder, signed by its holder for this deployment. Each permit: for the credit
        manager, relayed before (left out: its allowance stands), signed by its owner for this deployment's
        settlement token, token nonces in sequence per owner, not expired. A problem raises InvalidInput naming
        the order (``desk order N (holder, nonce)``) or permit (``permit N (owner, nonce)``). Returns the
        :class:`DeskBatch` to send."""
        return self._check_desk(orders, permits, skip_settled, lambda n: f"desk order {n}", lambda n: f"permit {n}")

    def check_desk_files(self, files: Sequence[DeskOrdersFile], *, skip_settled: bool = False) -> DeskBatch:
        """:meth:`check_desk_orders` for files' orders and permits, in turn, once each file is found to be for
        this deployment; messages name the file and the position (``orders.json: order 3 (holder, nonce)``)."""
        for desk in files:
            desk.check_deployment(self.contract.address, self._client.chain_id)
        order_places = [f"{desk.path}: order {n}" for desk in files for n in range(len(desk.orders))]
        permit_places = [f"{desk.path}: permit {n}" for desk in files for n in range(len(desk.permits))]
        return self._check_desk([s for desk in files for s in desk.orders],
                                [p for desk in files for p in desk.permits], skip_settled,
                                order_places.__getitem__, permit_places.__getitem__)

    def preflight_desk_batch(self, batch: DeskBatch) -> None:
        """Run the batch's first settleDeskOrders call on the current state, as this client, without sending it.
        If the chain refuses it (a price moved, a balance or allowance short, a cover above the deficit...),
        raise DeskOrderRefused naming the first order it refuses: the last of the shortest refused prefix, found
        by bisection (permits never make the call fail: the contract skips a failing one)."""
        if not batch.chunks:
            return
        first, riding = batch.chunks[0]
        try:
            self._try_settle(first, riding)
        except TransactionReverted as refused:
            index = None
            if first:
                low, high = 1, len(first)  # the shortest refused prefix is in [low, high]
                while low < high:
                    middle = (low + high) // 2
                    try:
                        self._try_settle(first[:middle], riding)
                        low = middle + 1
                    except TransactionReverted:
                        high = middle
                index = low - 1
            which = f" at {batch.name(index)}" if index is not None else ""
            raise DeskOrderRefused(f"the chain refuses the first settlement transaction{which}: "
                                   f"{type(refused).__name__}: {refused}", index, refused) from None

    def settle_desk_orders(self, orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit] = (), *,
                           skip_settled: bool = False, progress: Progress | None = None) -> list[DeskTrade]:
        """Settle holders' signed orders at this platform's desk, ``MAX_DESK_ORDERS`` per transaction, relaying
        ``permits`` with each owner's first order. Everything is checked first (:meth:`check_desk_orders`): a
        bad order or permit raises InvalidInput naming it and nothing is sent; permits relayed before are left
        out, and orders settled before too with ``skip_settled``. Then :meth:`settle_desk_batch`. Returns the
        trades, in order (``covered`` set for buy-and-cover orders)."""
        return self.settle_desk_batch(self.check_desk_orders(orders, permits, skip_settled=skip_settled),
                                      progress=progress)

    def settle_desk_batch(self, batch: DeskBatch, *, progress: Progress | None = None,
                          tried: bool = False) -> list[DeskTrade]:
        """Send a checked batch (:meth:`check_desk_orders`): its calls (:func:`chunk_with_permits`), directly
        encoded, with fixed gas limits (:func:`settle_gas`). The first is tried before any is sent: a refusal
        raises the chain's typed error with nothing settled. If a later one fails, the ones before it stand:
        DeskSettlementIncomplete says how many orders they settled (the failure itself is raised if none).
        ``progress(n)`` is told as orders settle; ``tried``: the caller has just run :meth:`preflight_desk_batch`,
        so the first call is not tried again. Returns the trades, in order."""
        if not batch.chunks:
            return []
        calls = [self._settle_call(c, ps) for c, ps in batch.chunks]
        # The first call is tried before any is sent (a price moved, a balance or allowance short...): its typed
        # error is raised with nothing settled. The rest go with fixed gas limits, as their orders are alike.
        if not tried:
            self._client._require_sender().simulate(calls[0])
        try:
            receipts = self._client.transact_many(calls, progress=per_item([c for c, _ in batch.chunks], progress))
        except TransactionError as failed:
            nonces = self._order_nonces({s.order.holder for s in batch.orders})
            done = sum(1 for s in batch.orders if s.order.nonce < nonces[s.order.holder])
            if not done:
                raise
            total = len(batch.orders)
            raise DeskSettlementIncomplete(
                f"{type(failed).__name__}: {failed}; the transactions before it settled {done} of the {total} "
                f"order{'' if total == 1 else 's'}", done, failed) from failed
        return [trade for r in receipts for trade in desk_trades(self.contract.events(r), r.tx_hash)]

    def _settle_call(self, orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit]) -> Call:
        """A settleDeskOrders call, directly encoded, with its fixed gas limit."""
        return Call(to=self.contract.address, data=self._settle_selector + encode_settle_args(orders, permits),
                    gas=settle_gas(orders, permits), label="CreditManager.settleDeskOrders")

    def _try_settle(self, orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit]) -> None:
        """Run a settleDeskOrders call on the current state without sending it (one eth_call); raises the chain's
        typed error if it is refused."""
        self._client._require_sender().simulate(self._settle_call(orders, permits))

    @property
    def _settle_selector(self) -> bytes:
        return self.contract.abi.function("settleDeskOrders").selector

    def _order_nonces(self, holders: Iterable[str]) -> dict[str, int]:
        """The holders' next desk-order nonces, read 2,000 to a call (``noncesOf``)."""
        holders = sorted(holders)
        out: dict[str, int] = {}
        for start in range(0, len(holders), 2_000):
            part = holders[start:start + 2_000]
            out.update(zip(part, (int(n) for n in self.contract.call("noncesOf", part))))
        return out

    def _permit_nonces(self, owners: Iterable[str], token: "BoundContract") -> dict[str, int]:
        """The owners' next settlement-token (permit) nonces: one eth_call each (the token has no batch view),
        encoded directly, 500 to a JSON-RPC batch."""
        owners = sorted(owners)
        selector = "0x" + token.abi.function("nonces").selector.hex() + "0" * 24
        out: dict[str, int] = {}
        for start in range(0, len(owners), 500):
            part = owners[start:start + 500]
            results = self._client.rpc.batch([("eth_call", [{"to": token.address, "data": selector + o[2:].lower()},
                                                             "latest"]) for o in part])
            for owner, result in zip(part, results):
                if isinstance(result, Exception):
                    raise result
                out[owner] = int(result, 16)
        return out

    def _check_desk(self, orders: Sequence[SignedDeskOrder], permits: Sequence[SettlementPermit],
                    skip_settled: bool, order_place: Callable[[int], str],
                    permit_place: Callable[[int], str]) -> DeskBatch:
        me, manager = self._client.address, self.contract.address
        domain, now = self.order_domain, self._client.chain_time()
        owners = {p.owner for p in permits}
        with ThreadPoolExecutor(max_workers=1) as reader:
            # The token has no batch view of its nonces (one call per owner): read them while orders are checked.
            token_nonces = reader.submit(self._permit_nonces, owners, self._settlement) if owners else None
            batch = self._check_orders(orders, skip_settled, order_place, me, domain, now)
            relayed = token_nonces.result() if token_nonces else {}
        token_domain = self._client.settlement.permit_domain() if permits else b""
        next_permit = dict(relayed)
        kept_permits: list[SettlementPermit] = []
        for n, p in enumerate(permits):
            where = f"{permit_place(n)} ({p.owner}, nonce {p.nonce})"
            if p.spender != manager:
                raise InvalidInput(f"{where} lets {p.spender} draw, not the credit manager {manager}")
            if p.nonce < relayed[p.owner]:
                continue  # relayed before: its allowance stands (the chain would skip it)
            if p.signer(token_domain) != p.owner:
                raise InvalidInput(f"{where} is not signed by its owner for this deployment's settlement token")
            if p.nonce != next_permit[p.owner]:
                raise InvalidInput(f"{where}: the owner's next permit nonce is {next_permit[p.owner]}")
            if p.deadline <= now:
                raise InvalidInput(f"{where} expired at {time_text(p.deadline)} (chain time {time_text(now)}): its "
                                   "owner must sign it again")
            next_permit[p.owner] += 1
            kept_permits.append(p)
        return replace(batch, permits=kept_permits, relayed=len(permits) - len(kept_permits))

    def _check_orders(self, orders: Sequence[SignedDeskOrder], skip_settled: bool, order_place: Callable[[int], str],
                      me: str, domain: bytes, now: int) -> DeskBatch:
        used = self._order_nonces({s.order.holder for s in orders})  # one read for two thousand holders
        expected = dict(used)
        kept: list[SignedDeskOrder] = []
        positions: list[int] = []
        settled: list[int] = []
        for n, signed in enumerate(orders):
            o = signed.order
            if o.platform != me:
                raise InvalidInput(f"{order_place(n)} ({o.holder}, nonce {o.nonce}) is for platform {o.platform}, "
                                   f"not the signer {me}")
            if o.nonce < used[o.holder]:  # settled before (or its nonce spent otherwise): it cannot be again
                settled.append(n)
                continue
            if o.deadline <= now:  # the next block is later than the latest
                raise InvalidInput(f"{order_place(n)} ({o.holder}, nonce {o.nonce}) expired at "
                                   f"{time_text(o.deadline)} (chain time {time_text(now)}): its holder must sign "
                                   "it again")
            if o.nonce != expected[o.holder]:
                raise InvalidInput(f"{order_place(n)} ({o.holder}, nonce {o.nonce}): the holder's next nonce is "
                                   f"{expected[o.holder]}")
            if signed.signer(domain) != o.holder:
                raise InvalidInput(f"{order_place(n)} ({o.holder}, nonce {o.nonce}) is not signed by its holder "
                                   "for this deployment")
            expected[o.holder] += 1
            kept.append(signed)
            positions.append(n)
        if settled and not skip_settled:
            first = f"{order_place(settled[0])} ({orders[settled[0]].order.holder}, nonce " \
                    f"{orders[settled[0]].order.nonce})"
            raise DeskOrdersSettled(f"{len(settled)} of the {len(orders)} order{'' if len(orders) == 1 else 's'} "
                                    f"were settled before (their nonces are used; the first: {first})",
                                    len(settled), first)
        return DeskBatch(kept, [], len(settled), 0, positions, order_place)

    # -- internals ----------------------------------------------------------------------------------------

    @property
    def _settlement(self) -> "BoundContract":
        return self._client.contract("SettlementToken")

    def _require_balance(self, amount: int) -> None:
        me = self._client.address
        held = self.balance(me)
        if held < amount:
            raise contract_error("ERC20InsufficientBalance", sender=me, balance=held, needed=amount)


def desk_trades(events: Iterable[Event], tx_hash: str) -> list[DeskTrade]:
    """The desk trades among a transaction's credit-manager events, in order. A DeficitCovered after a purchase
    is that purchase's cover (a buy-and-cover order)."""
    trades: list[DeskTrade] = []
    for event in events:
        args = event.args
        if event.name in ("SoldToPlatform", "BoughtFromPlatform"):
            sold = event.name == "SoldToPlatform"
            trades.append(DeskTrade("sell" if sold else "buy", args["platform"], args["seller" if sold else "buyer"],
                                    args["amount"], args["price"], args["paid"], tx_hash))
        elif event.name == "DeficitCovered" and trades and trades[-1].side == "buy":
            trades[-1] = replace(trades[-1], covered=args["amount"])
    return trades


def _project_id(project_id: int) -> int:
    if not isinstance(project_id, int) or isinstance(project_id, bool) or not 0 <= project_id < 2**32:
        raise InvalidInput(f"project id {project_id!r} must be an integer from 0 to 2^32 - 1")
    return project_id
