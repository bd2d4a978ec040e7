"""carbon_sdk: a Python SDK for the permissioned EVM carbon market.

    from carbon_sdk import CarbonClient, Role
    client = CarbonClient(rpc_url, "deployments/carbon-devnet.json", private_key=key)
"""

from carbon_sdk.client import BoundContract, CarbonClient
from carbon_sdk.manifest import Manifest
from carbon_sdk.tx import Call, Receipt
from carbon_sdk.types import Member, MemberStatus, Organisation, Role, StatusChange

__version__ = "0.1.0"

__all__ = [
    "BoundContract",
    "Call",
    "CarbonClient",
    "Manifest",
    "Member",
    "MemberStatus",
    "Organisation",
    "Receipt",
    "Role",
    "StatusChange",
]
