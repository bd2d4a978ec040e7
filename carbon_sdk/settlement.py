"""The settlement token: the market's means of payment (a digital-currency stand-in).

    platform.settlement.issue(enterprise, 1_000_000, fiat_reference="bank transfer 2025-0001")
    client.settlement.balance(enterprise)
    platform.settlement.issue_many({alice: 5_000, bob: 7_500}, fiat_reference="wallet top-ups")  # 200 a tx
    permit = bob.settlement.sign_permit(manager_address)  # EIP-2612: an approval by signature, relayed by others
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping


from carbon_sdk.coin import to_bytes32
from carbon_sdk.desk_orders import SettlementPermit, permit_domain
from carbon_sdk.desk_orders import sign_permit as _sign_permit
from carbon_sdk.errors import InvalidInput
from carbon_sdk.registry import checked_address
from carbon_sdk.tx import Progress, per_item
from carbon_sdk.units import checked_amount as _amount

if TYPE_CHECKING:
    from carbon_sdk.client import CarbonClient

CONTRACT = "SettlementToken"
MAX_ISSUES = 200  # recipients per issueMany
ISSUE_GAS = 60_000  # per recipient of issueMany, at its dearest (a new holder), with a margin
UNLIMITED = 2**256 - 1


@dataclass(frozen=True)
class Issuance:
    to: str
    amount: int
    fiat_amount: int
    fiat_reference: bytes
    by: str
    tx_hash: str


class SettlementModule:
    """Issue, redeem, move and read the SettlementToken."""

    def __init__(self, client: "CarbonClient"):
        self._client = client

    @property
    def contract(self):
        return self._client.contract(CONTRACT)

    def decimals(self) -> int:
        return int(self.contract.call("decimals"))

    def balance(self, account: str) -> int:
        return int(self.contract.call("balanceOf", checked_address(account, "account")))

    def issue(self, to: str, amount: int, *, fiat_reference: bytes | str) -> Issuance:
        """Issue tokens against fiat received off chain (an active PLATFORM)."""
        receipt = self._client.transact(self.contract.tx(
            "issue", checked_address(to, "recipient"), _amount(amount, "amount"),
            to_bytes32(fiat_reference, "fiat reference")))
        args = next(e.args for e in self.contract.events(receipt) if e.name == "Issued")
        return Issuance(args["to"], args["amount"], args["fiatAmount"], args["fiatReference"], args["by"],
                        receipt.tx_hash)

    def issue_many(self, amounts: Mapping[str, int], *, fiat_reference: bytes | str,
                   progress: Progress | None = None) -> int:
        """Issue to many members against one fiat deposit (an active PLATFORM), ``MAX_ISSUES`` per transaction
        with a fixed gas limit. Every recipient and amount is checked before anything is sent. Returns the
        total issued."""
        reference = to_bytes32(fiat_reference, "fiat reference")
        items = [(checked_address(to, "recipient"), _amount(amount, "amount")) for to, amount in amounts.items()]
        if not items:
            raise InvalidInput("nothing to issue: no recipients given")
        chunks = [items[i:i + MAX_ISSUES] for i in range(0, len(items), MAX_ISSUES)]
        calls = [self.contract.tx("issueMany", [to for to, _ in c], [a for _, a in c], reference,
                                  gas=40_000 + ISSUE_GAS * len(c)) for c in chunks]
        self._client.transact_many(calls, progress=per_item(chunks, progress))
        return sum(a for _, a in items)

    def permit_nonce(self, owner: str) -> int:
        """The nonce ``owner``'s next permit must carry."""
        return int(self.contract.call("nonces", checked_address(owner, "owner")))

    def sign_permit(self, spender: str, value: int = UNLIMITED, *, valid_for: int = 86_400,
                    nonce: int | None = None) -> SettlementPermit:
        """An EIP-2612 permit, signed by this client's key, letting ``spender`` draw ``value`` (default:
        unlimited) from its balance; anyone may relay it (the credit manager does, with desk orders). Sends
        nothing; valid for ``valid_for`` seconds of chain time. Its ``nonce`` is the owner's next token nonce
        (:meth:`permit_nonce`) unless given (a permit to be relayed after others not relayed yet)."""
        sender = self._client._require_sender()
        domain = self.permit_domain()
        return _sign_permit(sender.signer.signing_key, owner=sender.address, spender=checked_address(spender, "spender"),
                            value=value, nonce=self.permit_nonce(sender.address) if nonce is None else nonce,
                            deadline=self._client.chain_time() + valid_for, domain=domain)

    def permit_domain(self) -> bytes:
        """The EIP-712 domain separator permits of this token are signed in."""
        return permit_domain(self._name(), self.contract.address, self._client.chain_id)

    def _name(self) -> str:
        if not hasattr(self, "_token_name"):
            self._token_name = str(self.contract.call("name"))
        return self._token_name

    def redeem(self, amount: int, *, fiat_reference: bytes | str) -> str:
        receipt = self._client.transact(self.contract.tx("redeem", _amount(amount, "amount"),
                                                         to_bytes32(fiat_reference, "fiat reference")))
        return receipt.tx_hash

    def transfer(self, to: str, amount: int) -> str:
        receipt = self._client.transact(self.contract.tx("transfer", checked_address(to, "recipient"),
                                                         _amount(amount, "amount")))
        return receipt.tx_hash

    def approve(self, spender: str, amount: int) -> str:
        receipt = self._client.transact(self.contract.tx("approve", checked_address(spender, "spender"),
                                                         _amount(amount, "amount", allow_zero=True)))
        return receipt.tx_hash
