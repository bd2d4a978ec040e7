"""The permissioned devnet: anvil on a loopback port behind a permissioning JSON-RPC gateway.

>>> from carbon_sdk.devnet import Devnet
>>> with Devnet.start(Path("/tmp/chain"), port=None) as devnet:  # doctest: +SKIP
...     print(devnet.rpc_url, devnet.bootstrap_address)

``node`` starts and stops the processes, ``gateway`` is the gateway's server, ``folder`` the files of a
devnet folder (keys, token, devnet.json, logs).
"""

from carbon_sdk.devnet.folder import DevnetError, DevnetFolder
from carbon_sdk.devnet.node import (
    DEFAULT_CHAIN_ID,
    DEFAULT_FOLDER,
    DEFAULT_PORT,
    AnvilNotFound,
    Devnet,
    DevnetAlreadyRunning,
    DevnetNotRunning,
    DevnetRpcError,
    DevnetStatus,
    PortInUse,
    find_anvil,
)

__all__ = [
    "DEFAULT_CHAIN_ID",
    "DEFAULT_FOLDER",
    "DEFAULT_PORT",
    "AnvilNotFound",
    "Devnet",
    "DevnetAlreadyRunning",
    "DevnetError",
    "DevnetFolder",
    "DevnetNotRunning",
    "DevnetRpcError",
    "DevnetStatus",
    "PortInUse",
    "find_anvil",
]
