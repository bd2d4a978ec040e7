"""The one transaction path: every state change the SDK makes goes through :class:`TransactionSender`.

For each call: estimate gas (a revert here raises the contract's typed error before anything is sent),
take the next nonce, sign locally, send, wait for the receipt and check it. Many calls go out as JSON-RPC
batches, which is how one process reaches hundreds of mined transactions per second.

Guarantees:
- Nonces: one lock per sender covers "take nonce, sign, send", so threads sharing a key get consecutive
  nonces with no gaps and no duplicates. Waiting for receipts happens outside the lock.
- Never sending twice: a signed transaction is resent only as the *same bytes* (same nonce, same hash),
  which the chain can include at most once. If a send is refused after later nonces were already sent,
  the gap is filled with a zero-value self-transfer rather than by re-signing anything.
- Receipts are checked: a reverted transaction raises its decoded custom error carrying the tx hash.

Faults (see also RetryPolicy in carbon_sdk.rpc):
- The node or gateway unreachable for a while: requests are retried within the RetryPolicy, then
  NodeUnreachable. Transactions sent before are still waited for (and re-sent as the same bytes if the node
  lost them).
- A transaction that vanished (dropped from the pool, lost in a restart, or reorganised out of the chain)
  is noticed when its receipt is late (``drop_check_after`` seconds) and re-sent as the same signed bytes,
  same nonce, or reported as TransactionDropped / TransactionReorganised with ``resend_dropped=False``.
- ``confirmations=N``: a receipt is returned only once N blocks were mined on top of its block and it is
  still there; one reorganised out is re-sent (or reported) and confirmed again.
- A chain reset (a block seen before has another hash now, or the latest block went below one seen, deeper
  than the confirmations): ChainResetError, and nothing more is sent. Checked at the start of every transact_many
  (in the same request as the gas estimates and the fee, so no extra round trip) and after any retried
  request.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, Sized

import coincurve
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from carbon_sdk.errors import (
    ChainResetError,
    InvalidInput,
    PermissionDenied,
    RpcError,
    TransactionDropped,
    TransactionError,
    TransactionReorganised,
    TransactionReverted,
    TransactionTimeout,
    decode_revert,
)
from carbon_sdk.rpc import LIMIT_EXCEEDED, RpcClient
from carbon_sdk.signing import sign_eip1559

Progress = Callable[[int], None]  # called with the number of transactions just completed


def per_item(chunks: Sequence[Sized], progress: Progress | None) -> Progress | None:
    """Turn transaction-count progress into item-count progress, for calls that each carry a chunk of items
    (enrolments, grants, claims...)."""
    if progress is None:
        return None
    sent = 0

    def done(transactions: int) -> None:
        nonlocal sent
        progress(sum(len(c) for c in chunks[sent:sent + transactions]))
        sent += transactions

    return done


@dataclass(frozen=True)
class Call:
    """One state change to make: a contract call, or a deployment when ``to`` is None."""

    to: str | None
    data: bytes
    value: int = 0
    gas: int | None = None  # None: estimate (and surface reverts before sending)
    label: str = ""  # what this call does, for error messages

    def __post_init__(self) -> None:
        # A fixed gas limit below what the call data alone costs is accepted into anvil's pool and never mined:
        # the sender would wait out its receipt timeout. Refuse it here, with the reason.
        if self.gas is not None and self.gas < intrinsic_gas(self.data, self.to):
            what = f" ({self.label})" if self.label else ""
            raise InvalidInput(f"gas limit {self.gas:,} is below the {intrinsic_gas(self.data, self.to):,} gas this "
                               f"call's data costs before it runs{what}: raise it, or leave gas to be estimated")


def intrinsic_gas(data: bytes, to: str | None) -> int:
    """The gas a transaction costs before any code runs: the base, a creation's surcharge, and its call data,
    at least the EIP-7623 floor (Prague) of 10 gas per data token (a zero byte is one token, others four)."""
    zeros = bytes(data).count(0)
    nonzero = len(data) - zeros
    base = 21_000 + (32_000 + 2 * ((len(data) + 31) // 32) if to is None else 0)
    return max(base + 4 * zeros + 16 * nonzero, 21_000 + 10 * (zeros + 4 * nonzero))


@dataclass(frozen=True)
class Receipt:
    """A mined, successful transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    sender: str
    nonce: int
    contract_address: str | None
    logs: tuple[dict[str, Any], ...] = field(repr=False)


class NonceManager:
    """Hands out consecutive nonces for one sender; safe when many threads share it."""

    def __init__(self, rpc: RpcClient, address: str):
        self._rpc = rpc
        self.address = address
        self.lock = threading.RLock()
        self._next: int | None = None

    def peek(self) -> int:
        with self.lock:
            if self._next is None:
                self._next = int(self._rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)
            return self._next

    def advance(self, count: int) -> None:
        with self.lock:
            self._next = self.peek() + count

    def set_next(self, nonce: int) -> None:
        """After a partly refused batch: the next nonce to use is ``nonce``."""
        with self.lock:
            self._next = nonce

    def forget(self) -> None:
        """Re-read the next nonce from the node when next asked (a nonce was freed, or the chain changed)."""
        with self.lock:
            self._next = None


class LocalSigner:
    """Signs with a private key held in this process.

    EIP-1559 transactions are signed by :func:`carbon_sdk.signing.sign_eip1559` (coincurve directly, about
    20 times faster than eth-account's general path, byte-identical: both sign RFC 6979-deterministically).
    Other transaction shapes go through eth-account.
    """

    def __init__(self, private_key: str | bytes):
        try:
            self._account: LocalAccount = Account.from_key(private_key)
        except Exception as exc:
            raise InvalidInput(f"not a valid private key: {exc}") from None
        self.address: str = self._account.address
        self._key = coincurve.PrivateKey(bytes(self._account.key))

    @property
    def signing_key(self) -> coincurve.PrivateKey:
        """The key, for signing messages other than transactions (EIP-712 orders and permits)."""
        return self._key

    def sign(self, tx: dict[str, Any]) -> tuple[bytes, str]:
        if tx.get("type") != 2 or tx.get("accessList"):
            signed = self._account.sign_transaction(tx)
            return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()
        return sign_eip1559(self._key, tx)


# Call data per JSON-RPC batch: hex doubles it and a signed transaction repeats it, so 1 MB of data stays
# well inside the gateway's 5 MB request limit.
BATCH_BYTES = 1_000_000

_ALREADY_SENT = ("already known", "known transaction", "already imported", "nonce too low")


class TransactionSender:
    """Sends calls for one signer through one node. Create one per key and share it between threads."""

    def __init__(
        self,
        rpc: RpcClient,
        signer: LocalSigner,
        chain_id: int,
        *,
        gas_margin: float = 1.25,
        priority_fee: int = 0,
        receipt_timeout: float = 120.0,
        batch_size: int = 100,
        max_in_flight: int = 400,
        nonces: NonceManager | None = None,
        confirmations: int = 0,
        resend_dropped: bool = True,
        drop_check_after: float = 1.0,
    ):
        self.rpc = rpc
        self.signer = signer
        self.address = signer.address
        self.chain_id = chain_id
        self.gas_margin = gas_margin
        self.priority_fee = priority_fee
        self.receipt_timeout = receipt_timeout
        self.batch_size = batch_size
        self.max_in_flight = max(max_in_flight, batch_size)
        # Shared by every sender of this key on this chain, through whichever URL (see shared_sender).
        self.nonces = nonces or NonceManager(rpc, signer.address)
        self._base_fee: tuple[float, int] | None = None
        self._gas_limit: int | None = None
        if confirmations < 0:
            raise InvalidInput(f"confirmations must be 0 or more, not {confirmations}")
        # Blocks mined on top of a transaction's block before its receipt is returned (0: at once).
        self.confirmations = confirmations
        # A transaction the node no longer knows: re-send its same bytes (True) or raise TransactionDropped.
        self.resend_dropped = resend_dropped
        # Seconds without a receipt before asking the node whether it still knows the transaction.
        self.drop_check_after = drop_check_after
        # What this sender knows of its chain, to notice a reset (see _check_chain): the highest block seen,
        # and (number, hash) of a block seen at the last check.
        self.highest_block = 0
        self.checkpoint: tuple[int, str] | None = None
        self._faults_seen = rpc.faults
        self.resent = 0  # transactions re-sent as the same bytes after they vanished (for reports and tests)

    # -- public -------------------------------------------------------------------------------------------

    def transact(self, call: Call) -> Receipt:
        """Send one call and return its checked receipt."""
        return self.transact_many([call])[0]

    def transact_many(self, calls: Sequence[Call], progress: Progress | None = None) -> list[Receipt]:
        """Send many calls in JSON-RPC batches; return their receipts in order.

        Every call without an explicit gas limit is estimated first, so a call that would revert raises its
        typed error before any of them is sent. Calls that depend on an earlier call in the same list
        (and so cannot be estimated yet) must carry ``gas``.
        """
        calls = list(calls)
        sizes = [len(c.data) for c in calls]
        estimate_chunks = self._send_chunks([0] * len(calls), 0, sizes)
        # 1. Estimate everything first: a call that would revert stops the whole list before anything is sent.
        gases: list[int] = []
        for n, chunk in enumerate(estimate_chunks):
            # The first request also checks the chain and reads the fee: no round trip of its own.
            gases.extend(self._estimate([calls[i] for i in chunk], check_chain=n == 0))
        # 2. Send, pipelined within a block of gas (see _pipeline); 3. the receipts, checked, in order.
        block_limit = self._block_gas_limit() if len(calls) > 1 else 0
        return _pipeline(
            self._send_chunks(gases, block_limit, sizes), gases, block_limit, self.max_in_flight,
            send=lambda chunk: self._sign_and_send([calls[i] for i in chunk], [gases[i] for i in chunk]),
            wait=lambda chunk, sent: self._wait([calls[i] for i in chunk], *sent), progress=progress)

    def estimate(self, call: Call) -> int:
        return self._estimate([call])[0]

    def simulate(self, call: Call) -> None:
        """Run ``call`` from this sender on the latest state, within its gas limit, without sending it: one
        eth_call. Raises the contract's typed error if the chain would refuse it. For a stream of alike calls
        with fixed gas limits, trying the first is the cheap check (an estimate runs a call many times)."""
        fields = self._tx_fields(call)
        if call.gas:
            fields["gas"] = hex(call.gas)
        try:
            self.rpc.call("eth_call", [fields, "latest"])
        except RpcError as error:
            raise self._explain(error, call) from None

    def _send_chunks(self, gases: list[int], block_limit: int, sizes: list[int] | None = None) -> list[range]:
        """Consecutive calls grouped into JSON-RPC batches: at most ``batch_size`` calls and about
        ``BATCH_BYTES`` of call data a group (nodes and the gateway bound a request's size), and, with a block
        gas limit, at most a block's worth of gas (one call alone may fill either)."""
        sizes = sizes or [0] * len(gases)
        chunks: list[range] = []
        start, gas, size = 0, 0, 0
        for i, (g, n) in enumerate(zip(gases, sizes)):
            if i > start and (i - start >= self.batch_size or size + n > BATCH_BYTES
                              or (block_limit and gas + g > block_limit)):
                chunks.append(range(start, i))
                start, gas, size = i, 0, 0
            gas += g
            size += n
        if gases:
            chunks.append(range(start, len(gases)))
        return chunks

    def _check_chain(self, extra: list[tuple[str, list[Any]]] | None = None) -> list[Any]:
        """Raise ChainResetError unless the node still serves the chain this sender saw; ``extra`` requests
        ride in the same batch (their results are returned). Also refreshes the fee and the block gas limit.

        The chain is recognised by a block seen at the previous check (``confirmations`` below the latest, so
        a reorganisation the sender handles itself is not a reset), not by the genesis block: anvil 1.7.1
        reloading a dumped chain of a few hundred blocks makes a new genesis block, the rest unchanged."""
        faults = self.rpc.faults
        # Only blocks seen before this request bound its answer (other threads may see newer ones meanwhile).
        seen, checkpoint = self.highest_block, self.checkpoint
        known = hex(checkpoint[0]) if checkpoint else "latest"
        block, latest, *results = self.rpc.batch(
            [("eth_getBlockByNumber", [known, False]), ("eth_getBlockByNumber", ["latest", False]), *(extra or [])])
        for answer in (block, latest):
            if isinstance(answer, RpcError):
                raise TransactionError(f"cannot read the chain's blocks at {self.rpc.url}: {answer}")
        number = int(latest["number"], 16)
        if number + self.confirmations < seen:
            self._forget_chain()
            raise ChainResetError(self.rpc.url, f"latest block {number}, below block {seen} seen before")
        if checkpoint and block is not None and block["hash"] != checkpoint[1]:
            self._forget_chain()
            raise ChainResetError(self.rpc.url, f"block {checkpoint[0]} is now {block['hash']}, was {checkpoint[1]}")
        self._faults_seen = faults
        self.highest_block = max(self.highest_block, number)
        if number - self.confirmations > (checkpoint[0] if checkpoint else -1):
            settled = latest if not self.confirmations else None
            if settled is None:  # one more read, only when the checkpoint moves under confirmations
                settled = self.rpc.call("eth_getBlockByNumber", [hex(number - self.confirmations), False])
            if settled is not None:
                self.checkpoint = (int(settled["number"], 16), settled["hash"])
        self._base_fee = (time.monotonic(), int(latest.get("baseFeePerGas", "0x0"), 16))
        self._gas_limit = int(latest.get("gasLimit", "0x0"), 16)
        return results

    def _forget_chain(self) -> None:
        """After a reset: nonces are re-read, and shared_sender builds new senders for this URL. This sender
        keeps what it saw, so it refuses every later call rather than send to the new chain."""
        self.nonces.forget()
        with _shared_lock:
            _genesis.pop(self.rpc.url, None)
            # Every sender of this URL (any key, any settings) knew the old chain; each refuses its own later calls.
            for key in [k for k, v in _shared.items() if v is self or k[0] == self.rpc.url]:
                del _shared[key]

    def _check_chain_after_fault(self) -> None:
        """A request needed retries since the last check (the node may have restarted): check the chain again."""
        if self.rpc.faults != self._faults_seen:
            self._check_chain()

    def _block_gas_limit(self) -> int:
        """The latest block's gas limit (read once per sender; 0 if the node does not say)."""
        if self._gas_limit is None:
            try:
                self._gas_limit = int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["gasLimit"], 16)
            except Exception:  # noqa: BLE001 - an odd node: fall back to the count limits only
                self._gas_limit = 0
        return self._gas_limit

    # -- steps --------------------------------------------------------------------------------------------

    def _tx_fields(self, call: Call) -> dict[str, Any]:
        fields: dict[str, Any] = {"from": self.address, "data": "0x" + call.data.hex(), "value": hex(call.value)}
        if call.to is not None:
            fields["to"] = call.to
        return fields

    def _estimate(self, calls: list[Call], check_chain: bool = False) -> list[int]:
        todo = [i for i, c in enumerate(calls) if c.gas is None]
        gases = [c.gas or 0 for c in calls]
        requests = [("eth_estimateGas", [self._tx_fields(calls[i])]) for i in todo]
        if check_chain:
            results = self._check_chain(requests)
        elif not todo:
            return gases
        else:
            results = self.rpc.batch(requests)
        for i, result in zip(todo, results):
            if isinstance(result, RpcError):
                raise self._explain(result, calls[i])
            gases[i] = _with_margin(int(result, 16), self.gas_margin, self._block_gas_limit())
        return gases

    def _explain(self, error: RpcError, call: Call, tx_hash: str | None = None) -> Exception:
        """An estimate or send error -> the contract's typed error when there is revert data."""
        if error.revert_data is not None:
            return decode_revert(error.revert_data, tx_hash=tx_hash)
        if isinstance(error, PermissionDenied):
            return error
        what = f" ({call.label})" if call.label else ""
        return TransactionError(f"{error}{what}")

    def _fees(self) -> tuple[int, int]:
        now = time.monotonic()
        if self._base_fee is None or now - self._base_fee[0] > 2.0:
            block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
            self._base_fee = (now, int(block.get("baseFeePerGas", "0x0"), 16))
        base = self._base_fee[1]
        return 2 * base + self.priority_fee, self.priority_fee

    def _sign_and_send(self, calls: list[Call], gases: list[int]) -> tuple[list[str], list[int], list[bytes]]:
        self._check_chain_after_fault()
        max_fee, priority = self._fees()
        with self.nonces.lock:
            first = self.nonces.peek()
            raws, hashes = [], []
            for offset, (call, gas) in enumerate(zip(calls, gases)):
                tx = {
                    "chainId": self.chain_id,
                    "nonce": first + offset,
                    "gas": gas,
                    "maxFeePerGas": max_fee,
                    "maxPriorityFeePerGas": priority,
                    "value": call.value,
                    "data": call.data,
                    "type": 2,
                }
                if call.to is not None:
                    tx["to"] = to_checksum_address(call.to)
                raw, tx_hash = self.signer.sign(tx)
                raws.append(raw)
                hashes.append(tx_hash)
            results = self._send_raw(raws)
            accepted = [self._accepted(res, h) for res, h in zip(results, hashes)]
            if all(accepted):
                self.nonces.advance(len(calls))
                return hashes, [first + i for i in range(len(calls))], raws
            # Some were refused. Everything up to the last accepted nonce is now used on chain; refused
            # nonces below it are holes that would stall the accepted ones behind them: fill each hole
            # with a zero-value self-transfer (never a re-signed copy of the refused call).
            last = max((i for i, ok in enumerate(accepted) if ok), default=-1)
            for i in range(last):
                if not accepted[i]:
                    self._fill_nonce(first + i, max_fee, priority)
            self.nonces.set_next(first + last + 1)
            failed = next(i for i, ok in enumerate(accepted) if not ok)
            raise self._explain(results[failed], calls[failed])

    def _send_raw(self, raws: list[bytes]) -> list[Any]:
        """Send signed transactions; while the node's pool is full, wait and resend the *same* bytes."""
        results: list[Any] = [None] * len(raws)
        todo = list(range(len(raws)))
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.01
        while todo:
            answers = self.rpc.batch([("eth_sendRawTransaction", ["0x" + raws[i].hex()]) for i in todo])
            busy = []
            for i, answer in zip(todo, answers):
                results[i] = answer
                if isinstance(answer, RpcError) and answer.code == LIMIT_EXCEEDED:
                    busy.append(i)
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            todo = busy
        return results

    def _accepted(self, result: Any, tx_hash: str) -> bool:
        if not isinstance(result, RpcError):
            return True
        # A retried send whose first attempt got through: the node already has these exact bytes.
        if any(s in result.rpc_message.lower() for s in _ALREADY_SENT):
            return self.rpc.call("eth_getTransactionByHash", [tx_hash]) is not None
        return False

    def _fill_nonce(self, nonce: int, max_fee: int, priority: int) -> None:
        tx = {"chainId": self.chain_id, "nonce": nonce, "gas": 21_000, "maxFeePerGas": max_fee,
              "maxPriorityFeePerGas": priority, "value": 0, "to": self.address, "data": b"", "type": 2}
        raw, _ = self.signer.sign(tx)
        self.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])

    def _wait(self, calls: list[Call], hashes: list[str], nonces: list[int],
              raws: list[bytes] | None = None) -> list[Receipt]:
        found = self._receipts(hashes, nonces, raws)
        while self.confirmations:
            target = max(int(r["blockNumber"], 16) for r in found.values()) + self.confirmations
            self._wait_for_block(target)
            # Still where they were mined? A reorganisation moves or removes them.
            moved = {i: r for i, r in zip(found, self._read_receipts([hashes[i] for i in found]))
                     if r is None or r["blockHash"] != found[i]["blockHash"]}
            if not moved:
                break
            for i, receipt in moved.items():
                if receipt is None and (raws is None or not self.resend_dropped):
                    self.nonces.forget()  # its nonce is free again: re-read it from the node
                    raise TransactionReorganised(hashes[i], nonces[i], "was mined, then reorganised out of the chain "
                                                 f"before {self.confirmations} confirmations")
            gone = [i for i, r in moved.items() if r is None]
            if gone:
                assert raws is not None
                self._resend([hashes[i] for i in gone], [nonces[i] for i in gone], [raws[i] for i in gone])
            again = self._receipts([hashes[i] for i in moved], [nonces[i] for i in moved],
                                   [raws[i] for i in moved] if raws else None)
            for n, i in enumerate(moved):
                found[i] = again[n]
        for receipt in found.values():
            self.highest_block = max(self.highest_block, int(receipt["blockNumber"], 16))
        receipts = []
        for i, call in enumerate(calls):
            raw = found[i]
            if int(raw["status"], 16) != 1:
                raise self._revert_reason(call, raw)
            receipts.append(
                Receipt(
                    tx_hash=raw["transactionHash"],
                    block_number=int(raw["blockNumber"], 16),
                    gas_used=int(raw["gasUsed"], 16),
                    sender=self.address,
                    nonce=nonces[i],
                    contract_address=(to_checksum_address(raw["contractAddress"])
                                      if raw.get("contractAddress") else None),
                    logs=tuple(raw.get("logs", [])),
                )
            )
        return receipts

    def _read_receipts(self, hashes: Sequence[str]) -> list[dict[str, Any] | None]:
        """The node's receipts of ``hashes`` (None: not mined), in one batch."""
        results = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        for tx_hash, result in zip(hashes, results):
            if isinstance(result, RpcError):
                raise TransactionError(f"cannot read receipt of {tx_hash}: {result}")
        return results

    def _receipts(self, hashes: list[str], nonces: list[int], raws: list[bytes] | None) -> dict[int, dict[str, Any]]:
        """The receipts of sent transactions, by position. One late past ``drop_check_after`` s is looked up:
        if the node no longer knows it, it is re-sent as the same bytes (or TransactionDropped is raised)."""
        pending = dict(enumerate(hashes))
        found: dict[int, dict[str, Any]] = {}
        now = time.monotonic()
        deadline = now + self.receipt_timeout
        check_at, check_every = now + self.drop_check_after, self.drop_check_after
        delay = 0.002
        while pending:
            items = list(pending.items())
            for (i, _), result in zip(items, self._read_receipts([h for _, h in items])):
                if result is not None:
                    found[i] = result
                    del pending[i]
            if not pending:
                break
            now = time.monotonic()
            if now > deadline:
                raise TransactionTimeout(next(iter(pending.values())), self.receipt_timeout)
            if now >= check_at:
                self._recover_vanished(pending, nonces, raws)
                check_every = min(check_every * 2, 10.0)
                check_at = time.monotonic() + check_every
                delay = 0.002
                continue
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        return found

    def _recover_vanished(self, pending: dict[int, str], nonces: list[int], raws: list[bytes] | None) -> None:
        """Late receipts: re-send (same bytes) the transactions the node no longer knows."""
        self._check_chain_after_fault()  # a node that restarted without its chain must not get them
        items = list(pending.items())
        known = self.rpc.batch([("eth_getTransactionByHash", [h]) for _, h in items])
        gone = [i for (i, _), k in zip(items, known) if k is None]
        if not gone:
            return
        if raws is None or not self.resend_dropped:
            self.nonces.forget()  # its nonce is free again: the next call re-reads it from the node
            i = gone[0]
            raise TransactionDropped(pending[i], nonces[i], "vanished from the node (dropped from its pool or lost "
                                     "in a restart) before it was mined")
        self._resend([pending[i] for i in gone], [nonces[i] for i in gone], [raws[i] for i in gone])

    def _resend(self, hashes: list[str], nonces: list[int], raws: list[bytes]) -> None:
        """Send vanished transactions again, as the same signed bytes: the chain can include each at most once."""
        self._check_chain_after_fault()
        for tx_hash, nonce, result in zip(hashes, nonces, self._send_raw(raws)):
            if self._accepted(result, tx_hash):
                continue
            if self.rpc.call("eth_getTransactionReceipt", [tx_hash]) is not None:
                continue  # mined meanwhile
            self.nonces.forget()  # re-read: this nonce is free again, or was taken by another transaction
            raise TransactionDropped(tx_hash, nonce, f"vanished from the node and its re-send was refused ({result})")
        self.resent += len(raws)

    def _wait_for_block(self, number: int) -> None:
        """Until the chain reaches block ``number`` (within the receipt timeout)."""
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.01
        while int(self.rpc.call("eth_blockNumber"), 16) < number:
            if time.monotonic() > deadline:
                raise TransactionError(f"the chain at {self.rpc.url} did not reach block {number} within "
                                       f"{self.receipt_timeout:.0f} s, needed for {self.confirmations} "
                                       "confirmations: is anything mining blocks?")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _revert_reason(self, call: Call, raw: dict[str, Any]) -> TransactionReverted:
        """Replay a reverted transaction as a call on the state before its block to recover the error.

        The replay carries the mined block's number and timestamp as block overrides, so a revert that depends
        on them (a deadline passed in that very block) is reproduced; a node without block overrides gets the
        plain replay."""
        tx_hash = raw["transactionHash"]
        block = int(raw["blockNumber"], 16)
        fields = self._tx_fields(call)
        replays = [[fields, hex(block - 1)]]
        try:
            header = self.rpc.call("eth_getBlockByNumber", [hex(block), False])
            at = {"number": hex(block), "time": header["timestamp"]}
            # First on the block's own final state: it includes what the sender's earlier transactions in the
            # same block did (an approval before a deposit), which the state before the block lacks. A
            # reverted transaction changed nothing, so the same call fails there for the same reason, unless
            # a later transaction in the block changed it: then the state before the block tells.
            replays = [[fields, hex(block), {}, at], [fields, hex(block - 1), {}, at], *replays]
        except (RpcError, KeyError, TypeError):
            pass
        for params in replays:
            try:
                self.rpc.call("eth_call", params)
            except RpcError as error:
                explained = self._explain(error, call, tx_hash=tx_hash)
                if isinstance(explained, TransactionReverted):
                    return explained
        return TransactionReverted(f"transaction {tx_hash} reverted in block {block}"
                                   + (f" ({call.label})" if call.label else ""), tx_hash=tx_hash)


_shared: dict[tuple[Any, ...], TransactionSender] = {}  # (URL, address, chain id, settings) -> sender
_genesis: dict[str, str] = {}  # node URL -> its genesis hash (forgotten when a sender sees the chain reset)
_shared_lock = threading.Lock()
_nonce_managers: dict[tuple[str, str], NonceManager] = {}


def _with_margin(estimate: int, margin: float, block_limit: int) -> int:
    """The gas limit for a call estimated at ``estimate``: the margin on top, but a call that fits a block is
    never taken beyond it by the margin (``block_limit`` 0: unknown)."""
    gas = int(estimate * margin) + 10_000
    return block_limit if block_limit and estimate <= block_limit < gas else gas


def shared_sender(rpc: RpcClient | str, private_key: str | bytes, chain_id: int | None = None,
                  **options: Any) -> TransactionSender:
    """The process-wide sender for (node URL, key, settings). Senders of one key on one chain share one nonce
    manager even through different URLs (a gateway and the node behind it) or with different settings, so
    none hands out a nonce another has used. A chain is recognised by its genesis block's hash.

    The settings are ``options`` (TransactionSender's keyword arguments) and the RPC client's timeout, retry
    policy and headers: asking again with other settings gives a sender with those settings (sharing the
    nonces), never the earlier one with its own."""
    rpc = rpc if isinstance(rpc, RpcClient) else RpcClient(rpc)
    signer = LocalSigner(private_key)
    if chain_id is None:
        chain_id = int(rpc.call("eth_chainId"), 16)
    settings = (rpc.timeout, rpc.retry, tuple(sorted(rpc.headers.items())), tuple(sorted(options.items())))
    key = (rpc.url, signer.address, chain_id, settings)
    with _shared_lock:
        if key not in _shared:
            if rpc.url not in _genesis:
                _genesis[rpc.url] = rpc.call("eth_getBlockByNumber", ["0x0", False])["hash"]
            genesis = _genesis[rpc.url]
            nonces = _nonce_managers.setdefault((genesis, signer.address), NonceManager(rpc, signer.address))
            _shared[key] = TransactionSender(rpc, signer, chain_id, nonces=nonces, **options)
        return _shared[key]


def transact_from_many(rpc: RpcClient | str, chain_id: int, items: Sequence[tuple[str | bytes, Call]], *,
                       progress: Progress | None = None, max_in_flight: int = 2_000) -> list[Receipt]:
    """Send calls each signed by its own key, many keys per JSON-RPC batch; return the receipts in order.

    For a platform that signs for its users' custodial wallets (thousands of one-off transactions from as
    many accounts): sending them one client at a time costs a round trip each, this costs a few per hundred.
    Every key's calls keep their order and consecutive nonces, from the same nonce manager its own client
    uses. Calls without ``gas`` are estimated first, so a call that would revert raises its typed error
    before anything is sent; a call that depends on an earlier one in the list must carry ``gas``.
    """
    rpc = rpc if isinstance(rpc, RpcClient) else RpcClient(rpc)
    # One sender per distinct key: building a signer derives the key's address, too dear to repeat per call.
    by_key = {key: shared_sender(rpc, key, chain_id) for key in dict.fromkeys(key for key, _ in items)}
    senders = [by_key[key] for key, _ in items]
    calls = [call for _, call in items]
    if not calls:
        return []
    # Nonces of senders seen for the first time, in one batch rather than one request each.
    fresh = list({id(s.nonces): s for s in senders if s.nonces._next is None}.values())
    for start in range(0, len(fresh), 500):
        chunk = fresh[start:start + 500]
        counts = rpc.batch([("eth_getTransactionCount", [s.address, "pending"]) for s in chunk])
        for sender, count in zip(chunk, counts):
            if isinstance(count, RpcError):
                raise TransactionError(f"cannot read the nonce of {sender.address}: {count}")
            with sender.nonces.lock:
                if sender.nonces._next is None:
                    sender.nonces.set_next(int(count, 16))
    # 1. Estimates (each from its own sender), in batches.
    gases = [c.gas or 0 for c in calls]
    todo = [i for i, c in enumerate(calls) if c.gas is None]
    for start in range(0, len(todo), 200):
        chunk = todo[start:start + 200]
        results = rpc.batch([("eth_estimateGas", [senders[i]._tx_fields(calls[i])]) for i in chunk])
        for i, result in zip(chunk, results):
            if isinstance(result, RpcError):
                raise senders[i]._explain(result, calls[i])
            gases[i] = _with_margin(int(result, 16), senders[i].gas_margin, senders[0]._block_gas_limit())
    # 2. Sign and send chunk by chunk (no more than a block of gas or ~1 MB of data a request), keeping up to
    #    `max_in_flight` calls and a block of gas unconfirmed, so the node mines one chunk while the next is
    #    signed; 3. receipts, in order.
    head = senders[0]
    head._check_chain()  # also reads the fee and the block gas limit
    block_limit = head._block_gas_limit()
    max_fee, priority = head._fees()

    def send(chunk: range) -> tuple[list[str], list[int], list[bytes]]:
        head._check_chain_after_fault()
        raws, hashes, nonces = [], [], []
        for i in chunk:
            sender, call = senders[i], calls[i]
            with sender.nonces.lock:
                nonce = sender.nonces.peek()
                sender.nonces.advance(1)
            tx = {"chainId": chain_id, "nonce": nonce, "gas": gases[i], "maxFeePerGas": max_fee,
                  "maxPriorityFeePerGas": priority, "value": call.value, "data": call.data, "type": 2}
            if call.to is not None:
                tx["to"] = to_checksum_address(call.to)
            raw, tx_hash = sender.signer.sign(tx)
            raws.append(raw)
            hashes.append(tx_hash)
            nonces.append(nonce)
        results = head._send_raw(raws)
        refused = [(i, r) for i, r, h in zip(chunk, results, hashes) if not senders[i]._accepted(r, h)]
        if refused:
            # Let the accepted ones land, forget the nonces of every key involved (re-read next time), report.
            accepted = [(i, h, n, raw) for i, h, n, r, raw in zip(chunk, hashes, nonces, results, raws)
                        if (i, r) not in refused]
            head._wait([calls[i] for i, _, _, _ in accepted], [h for _, h, _, _ in accepted],
                       [n for _, _, n, _ in accepted], [raw for _, _, _, raw in accepted])
            for i in chunk:
                senders[i].nonces.forget()
            i, result = refused[0]
            raise senders[i]._explain(result, calls[i])
        return hashes, nonces, raws

    return _pipeline(head._send_chunks(gases, block_limit, [len(c.data) for c in calls]), gases, block_limit,
                     max_in_flight, send=send,
                     wait=lambda chunk, sent: _wait_each(senders, calls, chunk, *sent), progress=progress)


def _pipeline(chunks: Sequence[range], gases: Sequence[int], block_limit: int, max_in_flight: int, *,
              send: Callable[[range], Any], wait: Callable[[range, Any], list[Receipt]],
              progress: Progress | None) -> list[Receipt]:
    """Send chunk after chunk without waiting for each, so the node mines one while the next is signed, but keep
    at most ``max_in_flight`` calls and (with a block gas limit) a block of gas unconfirmed: a node's pool is not
    a queue of unbounded size, and automining anvil mines what fits when a transaction arrives and leaves the
    rest pending. Receipts come back checked, in order. If sending fails, what was sent is seen mined first."""
    sent: list[tuple[range, Any, int]] = []
    receipts: list[Receipt] = []
    in_flight = in_flight_gas = 0

    def settle_oldest() -> None:
        nonlocal in_flight, in_flight_gas
        chunk, handle, gas = sent.pop(0)
        receipts.extend(wait(chunk, handle))
        in_flight -= len(chunk)
        in_flight_gas -= gas
        if progress:
            progress(len(chunk))

    try:
        for chunk in chunks:
            gas = sum(gases[i] for i in chunk)
            while sent and (in_flight + len(chunk) > max_in_flight or (block_limit and in_flight_gas + gas > block_limit)):
                settle_oldest()
            sent.append((chunk, send(chunk), gas))
            in_flight += len(chunk)
            in_flight_gas += gas
    except Exception:
        for chunk, handle, _ in sent:  # what was sent is on its way: see it mined before reporting
            wait(chunk, handle)
        raise
    while sent:
        settle_oldest()
    return receipts


def _wait_each(senders: list[TransactionSender], calls: list[Call], chunk: range, hashes: list[str],
               nonces: list[int], raws: list[bytes]) -> list[Receipt]:
    """Receipts of a chunk sent by several senders: waited for together, checked and attributed each."""
    head = senders[chunk[0]]
    try:
        receipts = head._wait([calls[i] for i in chunk], hashes, nonces, raws)
    except TransactionReverted as reverted:
        first = reverted
    else:
        first = None
    if first is not None:
        # Which one reverted, and why: check each with its own sender (the replay needs the right `from`).
        for i, tx_hash, nonce, raw in zip(chunk, hashes, nonces, raws):
            senders[i]._wait([calls[i]], [tx_hash], [nonce], [raw])
        raise first
    return [dataclasses.replace(r, sender=senders[i].address) for i, r in zip(chunk, receipts)]
