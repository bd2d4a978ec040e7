// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortiumRegistry, Role} from "../interfaces/IConsortiumRegistry.sol";
import {RegistryGuard} from "../registry/RegistryGuard.sol";

/**
 * @title GuardedProbe
 * @notice Test helper, not part of the market: the smallest contract guarded by {RegistryGuard}, so tests can
 * prove the modifiers and the SDK's decoding of the guard's typed errors.
 */
contract GuardedProbe is RegistryGuard {
    /// @notice How many guarded calls succeeded.
    uint256 public count;

    /// @dev `by` called {ping} or {regulatorPing}; `count` is the new total.
    event Pinged(address indexed by, uint256 count);

    constructor(IConsortiumRegistry registry_) RegistryGuard(registry_) {}

    /// @notice Counts a call from an active member and returns the new count.
    /// @dev Reverts with {GuardInactiveMember}. Emits a {Pinged} event.
    function ping() external onlyActive returns (uint256) {
        return _ping();
    }

    /// @notice Counts a call from an active REGULATOR and returns the new count.
    /// @dev Reverts with {GuardMissingRole}. Emits a {Pinged} event.
    function regulatorPing() external onlyRole(Role.REGULATOR) returns (uint256) {
        return _ping();
    }

    function _ping() private returns (uint256 newCount) {
        newCount = ++count;
        emit Pinged(msg.sender, newCount);
    }
}
