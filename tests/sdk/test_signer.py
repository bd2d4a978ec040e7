"""The fast EIP-1559 signer must produce exactly eth-account's bytes."""

from __future__ import annotations

import random

import pytest
from eth_account import Account

from carbon_sdk.errors import InvalidInput
from carbon_sdk.tx import LocalSigner


@pytest.mark.parametrize("seed", range(25))
def test_fast_signer_matches_eth_account_byte_for_byte(seed):
    rng = random.Random(seed)
    account = Account.create()
    tx = {
        "type": 2,
        "chainId": rng.choice([1, 47001, 2**31]),
        "nonce": rng.randrange(0, 2**40),
        "gas": rng.randrange(21_000, 30_000_000),
        "maxFeePerGas": rng.choice([0, rng.randrange(1, 10**12)]),
        "maxPriorityFeePerGas": rng.choice([0, rng.randrange(1, 10**9)]),
        "value": rng.choice([0, rng.randrange(1, 10**24)]),
        "data": bytes(rng.randrange(256) for _ in range(rng.choice([0, 4, 68, 1000]))),
    }
    if seed % 5:
        tx["to"] = Account.create().address
    else:
        tx["to"] = None  # contract creation
    ours_raw, ours_hash = LocalSigner(account.key).sign(dict(tx))
    reference = dict(tx)
    if reference["to"] is None:
        del reference["to"]
    signed = Account.sign_transaction(reference, account.key)
    assert ours_raw == bytes(signed.raw_transaction)
    assert ours_hash == "0x" + bytes(signed.hash).hex()
    assert Account.recover_transaction(ours_raw) == account.address


def test_bad_key_is_a_clear_error():
    with pytest.raises(InvalidInput, match="private key"):
        LocalSigner("0x1234")
