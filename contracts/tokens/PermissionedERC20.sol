// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IConsortiumRegistry} from "../interfaces/IConsortiumRegistry.sol";
import {RegistryGuard} from "../registry/RegistryGuard.sol";

/**
 * @title PermissionedERC20
 * @notice An OpenZeppelin ERC-20 whose transfers are allowed only between accounts that may trade: active members
 * of the consortium without credit-coin debt, or SYSTEM contracts (see {IConsortiumRegistry-canTradePair}).
 * @dev The one policy hook of every token of the market is {_update}: a transfer (neither side the zero address)
 * asks the registry once about both parties. Mints and burns are not transfers: the issuing contract checks its
 * recipients itself (allocation to enterprises, issuance to members) and burns only on the holder's own call.
 */
abstract contract PermissionedERC20 is ERC20, RegistryGuard {
    /// @dev A transfer from `from` to `to` was refused: one of them is not an active member or is in debt.
    error TokenTransferRefused(address from, address to);

    /// @dev `spender` may not move others' tokens: it is not an active member or is in debt.
    error TokenSpenderRefused(address spender);

    uint8 private immutable _decimals;

    constructor(IConsortiumRegistry registry_, string memory name_, string memory symbol_, uint8 decimals_)
        ERC20(name_, symbol_)
        RegistryGuard(registry_)
    {
        _decimals = decimals_;
    }

    /// @inheritdoc ERC20
    function decimals() public view virtual override returns (uint8) {
        return _decimals;
    }

    /// @dev The policy hook: every transfer between two accounts needs both to be allowed to trade.
    function _update(address from, address to, uint256 value) internal virtual override {
        if (from != address(0) && to != address(0) && !_canTradePair(from, to)) revert TokenTransferRefused(from, to);
        super._update(from, to, value);
    }

    /// @dev `transferFrom` also needs the spender to be allowed to trade: an old approval held by a member since
    /// suspended, revoked or in debt moves nothing.
    function _spendAllowance(address owner, address spender, uint256 value) internal virtual override {
        if (!registry.canTrade(spender)) revert TokenSpenderRefused(spender);
        super._spendAllowance(owner, spender, value);
    }

    /// @dev `registry.canTradePair(from, to)` as a raw staticcall: the same call without the ABI helper's memory
    /// work, because this check runs on every transfer (DESIGN 5: a transfer to a new holder within 60k gas).
    /// Anything but a successful call returning the word 1 refuses the transfer.
    function _canTradePair(address from, address to) private view returns (bool allowed) {
        address target = address(registry);
        bytes4 selector = IConsortiumRegistry.canTradePair.selector;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, selector) // bytes4 values sit in the high-order bytes of the word
            mstore(add(ptr, 0x04), and(from, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(ptr, 0x24), and(to, 0xffffffffffffffffffffffffffffffffffffffff))
            // Two statements on purpose: Yul evaluates arguments right to left, so the result must be read
            // only after the call has returned.
            let ok := staticcall(gas(), target, ptr, 0x44, 0x00, 0x20)
            allowed := and(ok, and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1)))
        }
    }
}
