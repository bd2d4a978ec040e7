"""Fast EIP-1559 signing and sender recovery must agree with eth-account exactly."""

from __future__ import annotations

import random

import pytest
from eth_account import Account

from carbon_sdk.errors import InvalidInput
from carbon_sdk.signing import recover_sender
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
    assert recover_sender(ours_raw) == account.address


def test_bad_key_is_a_clear_error():
    with pytest.raises(InvalidInput, match="private key"):
        LocalSigner("0x1234")


def test_recovery_falls_back_for_other_transaction_types():
    account = Account.create()
    legacy = Account.sign_transaction({"nonce": 3, "gasPrice": 1, "gas": 21_000, "to": account.address,
                                       "value": 5, "data": b"", "chainId": 47001}, account.key)
    assert recover_sender(bytes(legacy.raw_transaction)) == account.address
    with_access_list = Account.sign_transaction({
        "type": 2, "chainId": 47001, "nonce": 0, "gas": 50_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
        "to": account.address, "value": 0, "data": b"",
        "accessList": [{"address": account.address, "storageKeys": ["0x" + "00" * 32]}]}, account.key)
    assert recover_sender(bytes(with_access_list.raw_transaction)) == account.address


@pytest.mark.parametrize("raw", [b"", b"\x02", b"\x02\xc0", b"\x02" + b"\xff" * 40, b"\x05abc"])
def test_garbage_is_a_value_error(raw):
    with pytest.raises(ValueError):
        recover_sender(raw)


def test_tampered_transaction_recovers_a_different_sender():
    account = Account.create()
    raw, _ = LocalSigner(account.key).sign({"type": 2, "chainId": 47001, "nonce": 1, "gas": 30_000,
                                            "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "value": 0,
                                            "data": b"\x01\x02", "to": account.address})
    tampered = raw.replace(b"\x01\x02", b"\x01\x03")
    assert recover_sender(tampered) != account.address
