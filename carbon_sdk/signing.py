"""Fast EIP-1559 signing and sender recovery (coincurve + RLP), with eth-account as the fallback.

eth-account validates and normalises every field on each call, which costs about a millisecond per
transaction; the SDK signs hundreds per second and the devnet's gateway recovers the sender of each.
These two functions do the same work directly for type-2 transactions without an access list (what the
SDK sends), and hand everything else to eth-account. Tests compare their output with eth-account's.
"""

from __future__ import annotations

from typing import Any

import coincurve
import rlp
from eth_account import Account
from eth_utils import keccak

from carbon_sdk.abi import keccak256, to_checksum_address

EIP1559 = 0x02
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def sign_eip1559(key: coincurve.PrivateKey, tx: dict[str, Any]) -> tuple[bytes, str]:
    """Sign a type-2 transaction dict (no access list); return (raw bytes, 0x-hash)."""
    to = tx.get("to")
    fields = [
        tx["chainId"], tx["nonce"], tx["maxPriorityFeePerGas"], tx["maxFeePerGas"], tx["gas"],
        bytes.fromhex(to[2:]) if to else b"", tx["value"], bytes(tx["data"]), [],
    ]
    signature = key.sign_recoverable(keccak256(bytes([EIP1559]) + rlp.encode(fields)), hasher=None)
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    raw = bytes([EIP1559]) + rlp.encode([*fields, v, r, s])
    return raw, "0x" + keccak256(raw).hex()


def recover_sender(raw: bytes) -> str:
    """The checksummed address that signed a raw transaction. Raises ValueError if it cannot be decoded."""
    if not raw or raw[0] != EIP1559:
        return _recover_slowly(raw)
    try:
        items = rlp.decode(raw[1:])
    except rlp.exceptions.DecodingError as error:
        raise ValueError(f"not an RLP-encoded EIP-1559 transaction: {error}") from None
    if not isinstance(items, list) or len(items) != 12:
        raise ValueError(f"an EIP-1559 transaction has 12 fields, this one {len(items) if isinstance(items, list) else 0}")
    if items[8]:  # an access list: eth-account's general path
        return _recover_slowly(raw)
    if not all(isinstance(x, bytes) for x in items[9:12]):
        raise ValueError("invalid signature fields")
    v, r, s = (int.from_bytes(x, "big") for x in items[9:12])
    if v > 1 or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:  # EIP-2: low s only
        raise ValueError("invalid signature values")
    digest = keccak256(bytes([EIP1559]) + rlp.encode(items[:9]))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    return to_checksum_address(keccak256(public.format(compressed=False)[1:])[-20:])


def _recover_slowly(raw: bytes) -> str:
    try:
        return Account.recover_transaction(raw)
    except Exception as error:  # eth-account raises several types for undecodable input
        raise ValueError(f"cannot decode the signed transaction: {str(error)[:200]}") from None


# -- EIP-712 typed data ---------------------------------------------------------------------------------------
# The SDK signs tens of thousands of desk orders and permits at once (a platform relaying its users' orders);
# eth-account's encode_typed_data parses a JSON schema per message (~1 ms). Orders and permits have fixed,
# static types, so their struct hashes are a few words hashed directly (tests compare with eth-account).

EIP712_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


def eip712_domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """The domain separator of an OpenZeppelin EIP712 contract (name, version, chain id, its address)."""
    return keccak(EIP712_DOMAIN_TYPEHASH + keccak(text=name) + keccak(text=version)
                  + chain_id.to_bytes(32, "big") + bytes(12) + bytes.fromhex(verifying_contract[2:]))


def eip712_words(*values: int | str | bytes) -> bytes:
    """ABI-encode static values, one word each: ints (unsigned), 0x-addresses, and 32-byte strings."""
    out = bytearray()
    for value in values:
        if isinstance(value, str):  # an address
            out += bytes(12) + bytes.fromhex(value[2:])
        elif isinstance(value, bytes):
            out += value.rjust(32, b"\0")
        else:
            out += value.to_bytes(32, "big")
    return bytes(out)


def sign_typed_digest(key: coincurve.PrivateKey, domain_separator: bytes, struct_hash: bytes) -> tuple[int, bytes, bytes]:
    """Sign the EIP-712 digest of ``struct_hash`` in ``domain_separator``'s domain: (v, r, s), v = 27 or 28."""
    signature = key.sign_recoverable(keccak256(b"\x19\x01" + domain_separator + struct_hash), hasher=None)
    return 27 + signature[64], signature[:32], signature[32:64]


def recover_typed_signer(domain_separator: bytes, struct_hash: bytes, v: int, r: bytes, s: bytes) -> str | None:
    """The address that signed the digest, or None when the signature is malformed."""
    if v not in (27, 28) or not 0 < int.from_bytes(s, "big") <= SECP256K1_N // 2:
        return None
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            bytes(r) + bytes(s) + bytes([v - 27]), keccak256(b"\x19\x01" + domain_separator + struct_hash), hasher=None)
    except Exception:  # noqa: BLE001 - coincurve raises ValueError or its own errors for invalid points
        return None
    return to_checksum_address(keccak256(public.format(compressed=False)[1:])[-20:])


def private_key(key: str | bytes | coincurve.PrivateKey) -> coincurve.PrivateKey:
    """A coincurve key from a 0x-hex or raw private key."""
    if isinstance(key, coincurve.PrivateKey):
        return key
    raw = bytes.fromhex(key[2:] if key.startswith("0x") else key) if isinstance(key, str) else bytes(key)
    return coincurve.PrivateKey(raw)
