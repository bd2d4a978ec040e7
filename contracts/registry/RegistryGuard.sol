// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortiumRegistry, MemberStatus, Role} from "../interfaces/IConsortiumRegistry.sol";

/**
 * @title RegistryGuard
 * @notice The mixin through which every contract of the market asks the {IConsortiumRegistry} who may call it.
 *
 * Usage:
 * ```solidity
 * contract Allowances is RegistryGuard {
 *     constructor(IConsortiumRegistry registry_) RegistryGuard(registry_) {}
 *
 *     function openPeriod(...) external onlyRole(Role.REGULATOR) { ... }      // an active regulator
 *     function report(...) external onlyActive { ... }                        // any active member
 *     function _update(address from, address to, ...) internal {
 *         _requireActive(to);                                                 // checks on other accounts
 *     }
 * }
 * ```
 * Each check is one external view call to the registry (one cold storage read there), made at call time: a
 * suspension or revocation takes effect at once in every guarded contract.
 *
 * Note: the `onlyRole` modifier takes a {Role}; a contract that also inherits OpenZeppelin's AccessControl
 * (whose `onlyRole` takes a `bytes32`) cannot inherit this guard as well.
 */
abstract contract RegistryGuard {
    /// @dev `account` is not an active member of the consortium.
    error GuardInactiveMember(address account);

    /// @dev `account` is not an active member with role `required` (whether it lacks the role or is inactive).
    error GuardMissingRole(address account, Role required);

    /// @dev The registry given to the constructor is the zero address.
    error GuardZeroRegistry();

    /// @notice The registry this contract asks; fixed at deployment.
    IConsortiumRegistry public immutable registry;

    /// @dev Reverts with {GuardZeroRegistry} if `registry_` is the zero address.
    constructor(IConsortiumRegistry registry_) {
        if (address(registry_) == address(0)) revert GuardZeroRegistry();
        registry = registry_;
    }

    /// @dev Lets only active members call. Reverts with {GuardInactiveMember}.
    modifier onlyActive() {
        _requireActive(msg.sender);
        _;
    }

    /// @dev Lets only active members with role `role` call. Reverts with {GuardMissingRole}.
    modifier onlyRole(Role role) {
        _requireRole(msg.sender, role);
        _;
    }

    /// @dev Reverts with {GuardInactiveMember} unless `account` is an active member.
    function _requireActive(address account) internal view {
        if (!registry.isActive(account)) revert GuardInactiveMember(account);
    }

    /// @dev Reverts with {GuardMissingRole} unless `account` is an active member with role `role`.
    function _requireRole(address account, Role role) internal view {
        if (!registry.hasActiveRole(account, role)) revert GuardMissingRole(account, role);
    }

    /// @dev Whether `account` is an active REGULATOR, and its region (0: national), from one registry read;
    /// each contract compares the region with what it acts on and reverts with its own error.
    function _regulatorRegion(address account) internal view returns (bool isRegulator, uint32 region) {
        (Role role, MemberStatus status, uint32 memberRegion,) = registry.profileOf(account);
        return (role == Role.REGULATOR && status == MemberStatus.ACTIVE, memberRegion);
    }
}
