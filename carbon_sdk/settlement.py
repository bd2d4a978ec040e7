"""The settlement token: the market's means of payment (a digital-currency stand-in).

    platform.settlement.issue(enterprise, 1_000_000, fiat_reference="bank transfer 2025-0001")
    client.settlement.balance(enterprise)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from carbon_sdk.coin import to_bytes32
from carbon_sdk.registry import checked_address
from carbon_sdk.units import checked_amount as _amount

if TYPE_CHECKING:
    from carbon_sdk.client import CarbonClient

CONTRACT = "SettlementToken"


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
