"""The reward-penalty credit coin: rules fixed at deployment, applied by regulators and audits.

    coin = client.coin
    coin.rules()                                     # {Reason.MISREPORT: CoinRuleSpec(...), ...}
    regulator.coin.apply_rule(enterprise, Reason.MISREPORT, quantity=tonnes(3), audit_key="inspection-17",
                              evidence=b"site inspection report")
    coin.debt(enterprise)                            # a member in debt cannot trade
    enterprise_client.coin.convert(coin.balance(me)) # into settlement tokens, from the regulator's pool
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import keccak

from carbon_sdk.errors import InvalidInput, contract_error
from carbon_sdk.registry import checked_address
from carbon_sdk.tx import Receipt
from carbon_sdk.types import ParsableEnum, Role
from carbon_sdk.units import checked_amount as _amount

if TYPE_CHECKING:
    from carbon_sdk.client import CarbonClient

CONTRACT = "RewardPenaltyCoin"
COIN = 10**6  # the coin has 6 decimals


class Reason(ParsableEnum):
    """Reason codes (mirror the constants in IRewardPenaltyCoin.sol)."""

    ACCURATE_REPORT = 1
    VERIFIED_REDUCTION = 2
    MISREPORT = 3
    SHORT_SURRENDER = 4
    FALSE_VERIFICATION = 5
    UNREPORTED = 6


@dataclass(frozen=True)
class CoinRuleSpec:
    """A rule: ``flat + per_tonne * quantity / 1e6`` coin units (6 decimals), a reward or a penalty."""

    reason: Reason
    penalty: bool
    flat: int
    per_tonne: int

    def amount(self, quantity: int = 0) -> int:
        return self.flat + self.per_tonne * quantity // 10**6


# The default deployment's rules. With 1 coin = 10.00 CNY (SystemConfig.coin_rate), a short surrender costs
# 100 CNY per tonne, above any plausible allowance price, so surrendering is always cheaper than the penalty.
DEFAULT_RULES: tuple[CoinRuleSpec, ...] = (
    CoinRuleSpec(Reason.ACCURATE_REPORT, penalty=False, flat=10 * COIN, per_tonne=0),
    CoinRuleSpec(Reason.VERIFIED_REDUCTION, penalty=False, flat=0, per_tonne=COIN // 2),
    CoinRuleSpec(Reason.MISREPORT, penalty=True, flat=20 * COIN, per_tonne=2 * COIN),
    CoinRuleSpec(Reason.SHORT_SURRENDER, penalty=True, flat=0, per_tonne=10 * COIN),
    CoinRuleSpec(Reason.FALSE_VERIFICATION, penalty=True, flat=50 * COIN, per_tonne=2 * COIN),
    CoinRuleSpec(Reason.UNREPORTED, penalty=True, flat=100 * COIN, per_tonne=0),
)


@dataclass(frozen=True)
class RuleApplication:
    """One application of a rule, from its RuleApplied event."""

    subject: str
    reason: Reason
    audit_key: bytes
    quantity: int
    amount: int
    minted: int
    burned: int
    debt_change: int  # positive: debt added; negative: debt repaid from a reward
    evidence_hash: bytes
    by: str
    tx_hash: str
    block_number: int

    @property
    def penalty(self) -> bool:
        return self.burned > 0 or self.debt_change > 0


@dataclass(frozen=True)
class Conversion:
    holder: str
    coin_amount: int
    paid: int  # settlement-token units
    tx_hash: str


@dataclass(frozen=True)
class DebtRepayment:
    debtor: str
    payer: str
    coin_amount: int
    paid: int
    tx_hash: str


def to_bytes32(value: bytes | str, what: str = "value") -> bytes:
    """A 32-byte hash: given as is (bytes32 or 0x-hex of 32 bytes), else keccak256 of the text or bytes.
    An all-zero hash (what the contracts read as "missing") is refused."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66 and set(value[2:]) <= {"0"}:
        raise InvalidInput(f"{what} must not be the zero hash")
    if isinstance(value, bytes):
        if value == bytes(32) or not value:
            raise InvalidInput(f"{what} must not be empty or the zero hash")
        return value if len(value) == 32 else keccak(value)
    if isinstance(value, str):
        if value.startswith("0x") and len(value) == 66:
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                pass
        if not value:
            raise InvalidInput(f"{what} must not be empty")
        return keccak(text=value)
    raise InvalidInput(f"{what} must be bytes or text, got {type(value).__name__}")


def repayment_cost(coin_amount: int, rate: tuple[int, int]) -> int:
    """Settlement tokens that repaying ``coin_amount`` of debt costs at ``rate`` (:meth:`CoinModule.rate`):
    rounded up, as the contract does."""
    numerator, denominator = rate
    return -(-coin_amount * numerator // denominator)


def application_from_event(event: Any) -> RuleApplication:
    args, outcome = event.args, event.args["outcome"]
    return RuleApplication(
        subject=args["subject"], reason=Reason(args["reason"]), audit_key=args["auditKey"],
        quantity=outcome["quantity"], amount=outcome["amount"], minted=outcome["minted"],
        burned=outcome["burned"], debt_change=outcome["debtChange"], evidence_hash=outcome["evidenceHash"],
        by=outcome["by"], tx_hash=event.tx_hash, block_number=event.block_number)


class CoinModule:
    """Rules, balances, debts, conversion and repayment on the RewardPenaltyCoin contract."""

    def __init__(self, client: "CarbonClient"):
        self._client = client

    @property
    def contract(self):
        return self._client.contract(CONTRACT)

    # -- rules ------------------------------------------------------------------------------------------

    def rules(self) -> dict[Reason, CoinRuleSpec]:
        """This deployment's rules, read from the chain."""
        out = {}
        for code in self.contract.call("reasons"):
            raw = self.contract.call("rule", code)
            reason = Reason(code)
            out[reason] = CoinRuleSpec(reason, raw["penalty"], raw["flat"], raw["perTonne"])
        return out

    def rule_amount(self, reason: Reason | str | int, quantity: int = 0) -> int:
        return int(self.contract.call("ruleAmount", int(Reason.parse(reason)), _amount(quantity, "quantity", True)))

    def apply_rule(self, subject: str, reason: Reason | str | int, *, evidence: bytes | str,
                   audit_key: bytes | str, quantity: int = 0) -> RuleApplication:
        """Apply a rule by hand (a regulator): ``evidence`` and ``audit_key`` are hashed unless already 32 bytes.
        The same (reason, subject, audit key) is refused with ``errors.CoinRuleAlreadyApplied``."""
        call = self.contract.tx("applyRule", checked_address(subject, "subject"), int(Reason.parse(reason)),
                                _amount(quantity, "quantity", True), to_bytes32(audit_key, "audit key"),
                                to_bytes32(evidence, "evidence"))
        return self.applications_in(self._client.transact(call))[0]

    def applications_in(self, receipt: Receipt) -> list[RuleApplication]:
        """The rule applications a transaction made (an audit or a settlement may make several)."""
        return [application_from_event(e) for e in self._client.contract(CONTRACT).abi.decode_logs(
            receipt.logs, address=self.contract.address) if e.name == "RuleApplied"]

    def applications(self, subject: str | None = None, from_block: int | None = None) -> list[RuleApplication]:
        """Every rule applied (to ``subject``, if given), from the chain's events."""
        topics = [None if subject is None else "0x" + "00" * 12 + checked_address(subject)[2:].lower()]
        return [application_from_event(e)
                for e in self.contract.logs(["RuleApplied"], from_block=from_block, topics=topics)]

    def is_applied(self, reason: Reason | str | int, subject: str, audit_key: bytes | str) -> bool:
        return bool(self.contract.call("isApplied", int(Reason.parse(reason)), checked_address(subject),
                                       to_bytes32(audit_key, "audit key")))

    # -- balances ---------------------------------------------------------------------------------------

    def balance(self, account: str) -> int:
        return int(self.contract.call("balanceOf", checked_address(account, "account")))

    def debt(self, account: str) -> int:
        return int(self.contract.call("debtOf", checked_address(account, "account")))

    def total_supply(self) -> int:
        return int(self.contract.call("totalSupply"))

    def total_debt(self) -> int:
        return int(self.contract.call("totalDebt"))

    # -- conversion -------------------------------------------------------------------------------------

    def rate(self) -> tuple[int, int]:
        """Settlement-token units per coin unit, as (numerator, denominator)."""
        return int(self.contract.call("rateNumerator")), int(self.contract.call("rateDenominator"))

    def quote_conversion(self, coin_amount: int) -> int:
        """Settlement tokens that converting ``coin_amount`` pays (rounded down, as the contract does)."""
        numerator, denominator = self.rate()
        return _amount(coin_amount, "coin amount") * numerator // denominator

    def pool_balance(self) -> int:
        return self._client.settlement.balance(self.contract.address)

    def fund_pool(self, amount: int) -> int:
        """Move settlement tokens into the conversion pool (a regulator): approves, then funds. What the
        contract would refuse is checked first, so a refused call sends no approval either."""
        amount = _amount(amount, "amount")
        me = self._client.address
        if not self._client.registry.contract.call("hasActiveRole", me, int(Role.REGULATOR)):
            raise contract_error("GuardMissingRole", account=me, required=int(Role.REGULATOR))
        self._require_settlement_balance(me, amount)
        self._client.settlement.approve(self.contract.address, amount)
        self._client.transact(self.contract.tx("fundPool", amount))
        return self.pool_balance()

    def convert(self, coin_amount: int) -> Conversion:
        receipt = self._client.transact(self.contract.tx("convert", _amount(coin_amount, "coin amount")))
        args = self.contract.event_args(receipt, "Converted")
        return Conversion(args["holder"], args["coinAmount"], args["paid"], receipt.tx_hash)

    def repay_debt(self, debtor: str, coin_amount: int) -> DebtRepayment:
        """Pay settlement tokens into the pool to clear (part of) ``debtor``'s debt: approves, then repays."""
        coin_amount = _amount(coin_amount, "coin amount")
        debtor = checked_address(debtor, "debtor")
        debt = self.debt(debtor)
        if debt < coin_amount:  # checked before the approval, so a refused repayment sends nothing
            raise contract_error("CoinDebtExceeded", debtor=debtor, debt=debt, amount=coin_amount)
        cost = repayment_cost(coin_amount, self.rate())
        self._require_settlement_balance(self._client.address, cost)
        self._client.settlement.approve(self.contract.address, cost)
        receipt = self._client.transact(self.contract.tx("repayDebt", checked_address(debtor, "debtor"), coin_amount))
        args = self.contract.event_args(receipt, "DebtRepaid")
        return DebtRepayment(args["debtor"], args["payer"], args["coinAmount"], args["paid"], receipt.tx_hash)

    def _require_settlement_balance(self, account: str, amount: int) -> None:
        balance = self._client.settlement.balance(account)
        if balance < amount:
            raise contract_error("ERC20InsufficientBalance", sender=account, balance=balance, needed=amount)

