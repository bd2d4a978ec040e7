"""CarbonClient: the SDK's facade, one module per capability.

From any Python application (no ape needed)::

    from carbon_sdk import CarbonClient
    client = CarbonClient("http://127.0.0.1:8545", "deployments/carbon-devnet.json", private_key=key)
    member = client.registry.member("0x...")

Inside an ape script or test::

    client = CarbonClient.from_ape("deployments/local.json", account=accounts.test_accounts[0])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from eth_utils import to_checksum_address

from carbon_sdk.abi import ContractABI, Event
from carbon_sdk.errors import (
    ChainMismatch,
    ConfigurationError,
    InvalidInput,
    RpcError,
    decode_revert,
    register_abi,
)
from carbon_sdk.manifest import Manifest
from carbon_sdk.rpc import RetryPolicy, RpcClient
from carbon_sdk.tx import Call, Progress, Receipt, TransactionSender, shared_sender

LOG_CHUNK = 5_000  # blocks per eth_getLogs request


class BoundContract:
    """A deployed contract: its ABI bound to an address and a client."""

    def __init__(self, client: "CarbonClient", name: str, address: str, abi: list[dict[str, Any]]):
        self.client = client
        self.name = name
        self.address = to_checksum_address(address)
        self.abi = ContractABI(name, abi)

    def call(self, function: str, *args: Any, block: str | int = "latest") -> Any:
        """Run a view function and return its decoded result."""
        fn = self.abi.function(function)
        tag = hex(block) if isinstance(block, int) else block
        try:
            result = self.client.rpc.call("eth_call", [{"to": self.address, "data": "0x" + fn.encode(*args).hex()}, tag])
        except RpcError as error:
            if error.revert_data is not None:
                raise decode_revert(error.revert_data) from None
            raise
        return fn.decode_output(bytes.fromhex(result[2:]))

    def tx(self, function: str, *args: Any, value: int = 0, gas: int | None = None) -> Call:
        """Build (not send) a state-changing call."""
        fn = self.abi.function(function)
        return Call(to=self.address, data=fn.encode(*args), value=value, gas=gas,
                    label=f"{self.name}.{function}")

    def call_many(self, function: str, arguments: Sequence[Sequence[Any]], chunk: int = 500) -> list[Any]:
        """Run a view function once per argument tuple, in JSON-RPC batches of ``chunk`` calls."""
        fn = self.abi.function(function)
        out: list[Any] = []
        for start in range(0, len(arguments), chunk):
            part = arguments[start:start + chunk]
            results = self.client.rpc.batch([
                ("eth_call", [{"to": self.address, "data": "0x" + fn.encode(*args).hex()}, "latest"]) for args in part])
            for result in results:
                if isinstance(result, RpcError) and result.revert_data is not None:
                    raise decode_revert(result.revert_data)
                if isinstance(result, Exception):
                    raise result
                out.append(fn.decode_output(bytes.fromhex(result[2:])))
        return out

    def events(self, receipt: Receipt) -> list[Event]:
        """This contract's events in a receipt."""
        return self.abi.decode_logs(receipt.logs, address=self.address)

    def event_args(self, receipt: Receipt, name: str) -> dict[str, Any]:
        """The arguments of this contract's first ``name`` event in a receipt."""
        for event in self.events(receipt):
            if event.name == name:
                return event.args
        raise InvalidInput(f"transaction {receipt.tx_hash} emitted no {name} event")

    def logs(self, names: Sequence[str] = (), from_block: int | None = None,
             to_block: int | str = "latest", topics: list[Any] | None = None) -> list[Event]:
        """This contract's past events (all, or those named), from the deployment block by default."""
        start = self.client.manifest.block if from_block is None else from_block
        end = int(self.client.rpc.call("eth_blockNumber"), 16) if to_block == "latest" else int(to_block)
        wanted = ["0x" + self.abi.event_topics[n].hex() for n in names] if names else None
        first_topic: Any = wanted if wanted else None
        out: list[Event] = []
        block = start
        while block <= end:
            last = min(block + LOG_CHUNK - 1, end)
            query = {"address": self.address, "fromBlock": hex(block), "toBlock": hex(last),
                     "topics": [first_topic, *(topics or [])]}
            out.extend(self.abi.decode_logs(self.client.rpc.call("eth_getLogs", [query])))
            block = last + 1
        return out


class CarbonClient:
    """Connects one key (optional: read-only without it) to one deployment of the carbon market.

    Fault tolerance knobs: ``retry`` (how long an unreachable node is retried, then NodeUnreachable),
    ``confirmations`` (blocks on top of a transaction's block before its receipt is returned; a transaction
    reorganised out meanwhile is re-sent), ``resend_dropped`` (re-send, as the same signed bytes, a transaction
    the node lost; False: raise TransactionDropped). A chain reset raises ChainResetError."""

    def __init__(
        self,
        rpc_url: str,
        manifest: Manifest | str | Path,
        private_key: str | bytes | None = None,
        *,
        check_chain: bool = True,
        retry: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
        receipt_timeout: float = 120.0,
        batch_size: int = 100,
        confirmations: int = 0,
        resend_dropped: bool = True,
    ):
        self.rpc = RpcClient(rpc_url, retry=retry, headers=headers)
        self.manifest = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
        self.chain_id = self.manifest.chain_id
        if check_chain:
            self.check_chain()
        self.sender: TransactionSender | None = None
        if private_key is not None:
            # Shared per (node, key, settings) in this process; all clients of one key share its nonce manager.
            self.sender = shared_sender(self.rpc, private_key, self.chain_id,
                                        receipt_timeout=receipt_timeout, batch_size=batch_size,
                                        confirmations=confirmations, resend_dropped=resend_dropped)
        self._contracts: dict[str, BoundContract] = {}

        # Every contract error of the deployment becomes a typed exception up front, so a revert from a
        # contract reached through another (a vintage token inside a surrender) is decoded too.
        for record in self.manifest.contracts.values():
            register_abi(record.abi)
        for abi in self.manifest.abis.values():
            register_abi(abi)

        from carbon_sdk.allowances import AllowancesModule
        from carbon_sdk.coin import CoinModule
        from carbon_sdk.credits import CreditsModule
        from carbon_sdk.exchange import ExchangeModule
        from carbon_sdk.mrv import MrvModule
        from carbon_sdk.registry import RegistryModule
        from carbon_sdk.settlement import SettlementModule

        self.registry = RegistryModule(self)
        self.allowances = AllowancesModule(self)
        self.mrv = MrvModule(self)
        self.coin = CoinModule(self)
        self.settlement = SettlementModule(self)
        self.exchange = ExchangeModule(self)
        self.credits = CreditsModule(self)

    @classmethod
    def from_ape(cls, manifest: Manifest | str | Path, account: Any = None, **options: Any) -> "CarbonClient":
        """A client on ape's connected provider, signing as an ape account that exposes its key
        (ape's test accounts do)."""
        import ape  # only here: the SDK does not need ape otherwise

        provider = ape.chain.provider
        uri = getattr(provider, "uri", None) or getattr(provider, "http_uri", None)
        if not uri:
            raise ConfigurationError(f"ape provider {provider.name} has no HTTP URI")
        key = None
        if account is not None:
            key = getattr(account, "private_key", None)
            if key is None:
                raise ConfigurationError(
                    f"ape account {account.address} does not expose its key; use a test account or pass private_key"
                )
        return cls(uri, manifest, key, **options)

    # -- chain --------------------------------------------------------------------------------------------

    def check_chain(self) -> None:
        """Raise :class:`ChainMismatch` unless the node serves the manifest's chain (same id, same genesis)."""
        chain_id, genesis = self.rpc.batch([("eth_chainId", []), ("eth_getBlockByNumber", ["0x0", False])])
        if isinstance(chain_id, Exception):
            raise chain_id
        if int(chain_id, 16) != self.manifest.chain_id:
            raise ChainMismatch(f"the node at {self.rpc.url} serves chain {int(chain_id, 16)}, "
                                f"but the deployment is on chain {self.manifest.chain_id}")
        if isinstance(genesis, dict) and self.manifest.genesis_hash and genesis["hash"] != self.manifest.genesis_hash:
            raise ChainMismatch(f"the chain at {self.rpc.url} was reset (genesis {genesis['hash']}, "
                                f"the deployment knew {self.manifest.genesis_hash}): redeploy")

    def block_number(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)

    def chain_time(self) -> int:
        """The latest block's timestamp: the clock that periods, sessions and deadlines follow."""
        return int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def block_times(self, blocks: Iterable[int]) -> dict[int, int]:
        """Timestamps of many blocks, in JSON-RPC batches of 500."""
        ordered = sorted(set(blocks))
        out: dict[int, int] = {}
        for s in range(0, len(ordered), 500):
            part = ordered[s:s + 500]
            results = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in part])
            for number, block in zip(part, results):
                if isinstance(block, Exception):
                    raise block
                out[number] = int(block["timestamp"], 16)
        return out

    # -- contracts and transactions -----------------------------------------------------------------------

    def contract(self, name: str) -> BoundContract:
        if name not in self._contracts:
            record = self.manifest.contract(name)
            self._contracts[name] = BoundContract(self, name, record.address, record.abi)
        return self._contracts[name]

    def bind(self, name: str, address: str, abi: list[dict[str, Any]]) -> BoundContract:
        """A contract that is not part of the manifest (e.g. a test probe), by address and ABI."""
        return BoundContract(self, name, address, abi)

    @property
    def address(self) -> str:
        """The address this client signs as."""
        return self._require_sender().address

    def _require_sender(self) -> TransactionSender:
        if self.sender is None:
            raise InvalidInput("this client is read-only: create it with a private key to send transactions")
        return self.sender

    def transact(self, call: Call) -> Receipt:
        return self._require_sender().transact(call)

    def transact_many(self, calls: Sequence[Call], progress: Progress | None = None) -> list[Receipt]:
        return self._require_sender().transact_many(calls, progress=progress)
