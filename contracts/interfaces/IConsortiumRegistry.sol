// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice A member's role in the consortium (DESIGN.md section 1). `NONE` marks an address that is not enrolled.
/// @dev The numeric values are part of the ABI: an organisation's `allowedRoles` holds bit `1 << uint8(role)`
/// for each role it may enrol. Append new roles at the end only. `SYSTEM` marks a contract of the market that
/// holds tokens for members (the coin's conversion pool, the exchange's deposits); only a national regulator
/// enrols one, with {IConsortiumRegistry-registerSystemContract}, and no organisation may allow it.
enum Role {
    NONE,
    REGULATOR,
    VERIFIER,
    ENTERPRISE,
    PLATFORM,
    INDIVIDUAL,
    MERCHANT,
    OBSERVER,
    SYSTEM
}

/// @notice A member's status. `NONE`: never enrolled. `REVOKED` is final: a revoked address is never re-used.
enum MemberStatus {
    NONE,
    ACTIVE,
    SUSPENDED,
    REVOKED
}

/// @notice One enrolled account. The first six fields share one storage slot, so a token's transfer check reads
/// one slot per party; `identityHash` (the hash of the off-chain identity record, never personal data) takes a
/// second. `inDebt` is set by the debt recorder (the reward-penalty coin) while the member owes a penalty.
struct Member {
    uint32 orgId;
    Role role;
    MemberStatus status;
    uint32 region;
    uint40 enrolledAt;
    bool inDebt;
    bytes32 identityHash;
}

/// @notice An organisation of the consortium. Organisations are numbered from 1 (0 means none) and never removed.
/// @dev `allowedRoles` holds bit `1 << uint8(role)` for each role the organisation's admin may enrol; bit 0
/// (`NONE`) and bits above 7 are never set. `region` 0 means national: its members may carry any region code.
struct Organisation {
    address admin;
    uint32 region;
    uint16 allowedRoles;
    bool exists;
    string name;
}

/**
 * @title IConsortiumRegistry
 * @notice The consortium's membership service: organisations, their admins and their members, each with a role,
 * a region, a status and an identity hash. Every other contract of the market asks it who may do what (see
 * {RegistryGuard}), and the devnet gateway asks {isActive} who may send transactions.
 *
 * Authority:
 * - an active REGULATOR registers organisations, sets their allowed roles and their admin; a regional regulator
 *   (member region != 0) acts only on organisations and members of its own region;
 * - an organisation's admin, while active, enrols members of its organisation under the allowed roles;
 * - member status (suspend, reinstate, revoke) is changed by the admin of the member's organisation or by a
 *   regulator; an admin's own status only by a regulator; nobody suspends or revokes itself.
 */
interface IConsortiumRegistry {
    // ---------------------------------------------------------------- errors

    /// @dev An address argument that must be set is the zero address.
    error RegistryZeroAddress();

    /// @dev `caller` is not a member with the REGULATOR role.
    error RegistryNotRegulator(address caller);

    /// @dev `caller` is not the admin of any organisation.
    error RegistryNotOrganisationAdmin(address caller);

    /// @dev `caller` holds the needed role or office but is not an active member.
    error RegistryCallerNotActive(address caller);

    /// @dev `role` is not in the allowed roles of organisation `orgId` (NONE never is).
    error RegistryRoleNotAllowed(uint32 orgId, Role role);

    /// @dev `allowedRoles` sets bit 0 (NONE) or a bit above 7.
    error RegistryInvalidRoleSet(uint16 allowedRoles);

    /// @dev A region code differs from the one required: the organisation's region for a member, the regional
    /// regulator's region for what it acts on.
    error RegistryRegionMismatch(uint32 expected, uint32 given);

    /// @dev `account` has been enrolled before (in any status, revoked included).
    error RegistryAlreadyEnrolled(address account);

    /// @dev `account` has never been enrolled.
    error RegistryNotMember(address account);

    /// @dev No organisation is numbered `orgId`.
    error RegistryUnknownOrganisation(uint32 orgId);

    /// @dev `account` cannot go from status `from` to status `to`.
    error RegistryInvalidStatusTransition(address account, MemberStatus from, MemberStatus to);

    /// @dev `caller` may not change the status of `account`.
    error RegistryNotAuthorisedFor(address caller, address account);

    /// @dev A batch's arrays differ in length.
    error RegistryBatchLengthMismatch(uint256 accounts, uint256 identityHashes);

    /// @dev A batch holds `size` entries, more than `max`.
    error RegistryBatchSize(uint256 size, uint256 max);

    /// @dev `account` tried to suspend or revoke itself.
    error RegistrySelfLockout(address account);

    /// @dev `account` is not an active member of organisation `orgId`.
    error RegistryNotOrganisationMember(uint32 orgId, address account);

    /// @dev `account` has no code: only contracts are enrolled as SYSTEM members.
    error RegistryNotAContract(address account);

    /// @dev `caller` is not the debt recorder.
    error RegistryNotDebtRecorder(address caller);

    /// @dev The debt recorder is set once, and already is (`current`).
    error RegistryDebtRecorderAlreadySet(address current);

    /// @dev `account` is not an active member with role `role` (any role if NONE) in region `region` (any
    /// region if 0).
    error RegistryIneligibleMember(address account, Role role, uint32 region);

    // ---------------------------------------------------------------- events

    /// @dev Organisation `orgId` was registered, with `admin` enrolled as its first member.
    event OrganisationRegistered(uint32 indexed orgId, address indexed admin, string name, uint32 region, uint16 allowedRoles);

    /// @dev The allowed roles of organisation `orgId` changed from `previousRoles` to `allowedRoles`.
    event OrganisationRolesChanged(uint32 indexed orgId, uint16 previousRoles, uint16 allowedRoles);

    /// @dev The admin of organisation `orgId` changed from `previousAdmin` to `newAdmin`.
    event OrganisationAdminChanged(uint32 indexed orgId, address indexed previousAdmin, address indexed newAdmin);

    /// @dev `account` was enrolled as an active member of organisation `orgId`.
    event MemberEnrolled(address indexed account, uint32 indexed orgId, Role role, uint32 region, bytes32 identityHash);

    /// @dev The status of `account` changed from `previous` to `current`, by `by`.
    event MemberStatusChanged(address indexed account, MemberStatus previous, MemberStatus current, address indexed by);

    /// @dev `recorder` became the debt recorder, set by `by`.
    event DebtRecorderSet(address indexed recorder, address indexed by);

    /// @dev The debt flag of `account` changed to `inDebt`.
    event MemberDebtChanged(address indexed account, bool inDebt);

    // ---------------------------------------------------------------- organisations

    /**
     * @notice Registers an organisation and enrols `admin` as its first, active member with `adminRole` and the
     * organisation's region. Returns the new organisation's number.
     *
     * Requirements:
     * - the caller is an active REGULATOR; a regional regulator registers only organisations of its own region;
     * - `allowedRoles` sets neither bit 0 (NONE) nor a bit above 7;
     * - `adminRole` is in `allowedRoles`;
     * - `admin` is not the zero address and has never been enrolled.
     *
     * Emits an {OrganisationRegistered} event and a {MemberEnrolled} event.
     */
    function registerOrganisation(
        string calldata name,
        address admin,
        Role adminRole,
        uint32 region,
        uint16 allowedRoles,
        bytes32 adminIdentityHash
    ) external returns (uint32 orgId);

    /**
     * @notice Replaces the roles organisation `orgId` may enrol. Existing members keep their roles; 0 stops new
     * enrolments.
     *
     * Requirements:
     * - the caller is an active REGULATOR; a regional regulator acts only on organisations of its own region;
     * - organisation `orgId` exists;
     * - `allowedRoles` sets neither bit 0 (NONE) nor a bit above 7.
     *
     * Emits an {OrganisationRolesChanged} event.
     */
    function setAllowedRoles(uint32 orgId, uint16 allowedRoles) external;

    /**
     * @notice Hands the administration of organisation `orgId` to `newAdmin`, e.g. after its admin was revoked.
     * The previous admin stays a member with its role and status.
     *
     * Requirements:
     * - the caller is an active REGULATOR; a regional regulator acts only on organisations of its own region;
     * - organisation `orgId` exists;
     * - `newAdmin` is an active member of organisation `orgId`.
     *
     * Emits an {OrganisationAdminChanged} event.
     */
    function setOrganisationAdmin(uint32 orgId, address newAdmin) external;

    // ---------------------------------------------------------------- members

    /**
     * @notice Enrols `account` as an active member of the caller's organisation.
     *
     * Requirements:
     * - the caller is the admin of an organisation and an active member;
     * - `role` is allowed for that organisation;
     * - if the organisation's region is not 0, `region` equals it;
     * - `account` is not the zero address and has never been enrolled.
     *
     * Emits a {MemberEnrolled} event.
     */
    function enrol(address account, Role role, uint32 region, bytes32 identityHash) external;

    /**
     * @notice Enrols every account of `accounts` as an active member of the caller's organisation, all with the
     * same `role` and `region`, the i-th with `identityHashes[i]`. All or none are enrolled.
     *
     * Requirements:
     * - as for {enrol}, for every account;
     * - `accounts` and `identityHashes` have the same length, at most `MAX_BATCH`;
     * - `accounts` holds no address twice.
     *
     * Emits one {MemberEnrolled} event per account.
     */
    function enrolBatch(address[] calldata accounts, Role role, uint32 region, bytes32[] calldata identityHashes)
        external;

    /**
     * @notice Suspends the active member `account`; {reinstate} undoes it.
     *
     * Requirements:
     * - `account` is a member, and not the caller;
     * - the caller is active and is either the admin of the member's organisation (unless `account` is that
     *   admin) or a REGULATOR (a regional regulator only for members of its region);
     * - `account` is ACTIVE.
     *
     * Emits a {MemberStatusChanged} event.
     */
    function suspend(address account) external;

    /**
     * @notice Makes the suspended member `account` active again.
     *
     * Requirements:
     * - `account` is a member;
     * - the caller is authorised as for {suspend};
     * - `account` is SUSPENDED.
     *
     * Emits a {MemberStatusChanged} event.
     */
    function reinstate(address account) external;

    /**
     * @notice Revokes the membership of `account` for good; the address can never be enrolled again.
     *
     * Requirements:
     * - `account` is a member, and not the caller;
     * - the caller is authorised as for {suspend};
     * - `account` is ACTIVE or SUSPENDED.
     *
     * Emits a {MemberStatusChanged} event.
     */
    function revoke(address account) external;

    /**
     * @notice Enrols the contract `account` as an active SYSTEM member of organisation 1 (region 0), so that it
     * may hold and move permissioned tokens (e.g. the coin's conversion pool, the exchange's deposits).
     *
     * Requirements:
     * - the caller is an active national REGULATOR (region 0);
     * - `account` has code and has never been enrolled.
     *
     * Emits a {MemberEnrolled} event with role SYSTEM.
     */
    function registerSystemContract(address account, bytes32 descriptionHash) external;

    /**
     * @notice Names the one contract that may set members' debt flags (the reward-penalty coin). Set once.
     *
     * Requirements:
     * - the caller is an active national REGULATOR;
     * - `recorder` is not the zero address; no recorder was set before.
     *
     * Emits a {DebtRecorderSet} event.
     */
    function setDebtRecorder(address recorder) external;

    /**
     * @notice Sets or clears the debt flag of member `account`; a member in debt cannot trade ({canTrade}).
     *
     * Requirements:
     * - the caller is the debt recorder;
     * - `account` is a member.
     *
     * Emits a {MemberDebtChanged} event when the flag changes.
     */
    function setInDebt(address account, bool inDebt) external;

    // ---------------------------------------------------------------- views

    /// @notice The largest batch {enrolBatch} accepts.
    function MAX_BATCH() external view returns (uint256);

    /// @notice The member record of `account`; all zero (status NONE) if it was never enrolled.
    function getMember(address account) external view returns (Member memory);

    /**
     * @notice The organisation numbered `orgId`.
     *
     * Requirements:
     * - organisation `orgId` exists.
     */
    function getOrganisation(uint32 orgId) external view returns (Organisation memory);

    /// @notice The number of organisations, which is also the number of the last one.
    function organisationCount() external view returns (uint32);

    /// @notice The organisation that `admin` administers, or 0 if none.
    function adminOrgOf(address admin) external view returns (uint32);

    /// @notice Whether `account` is an active member (the devnet gateway calls this by selector).
    function isActive(address account) external view returns (bool);

    /// @notice Whether `account` is an active member with role `role`.
    function hasActiveRole(address account, Role role) external view returns (bool);

    /// @notice The status of each account of `accounts`, in order (NONE for addresses never enrolled).
    function statusesOf(address[] calldata accounts) external view returns (MemberStatus[] memory);

    /// @notice Whether organisation `orgId` may enrol members with role `role` (false for unknown organisations).
    function roleAllowed(uint32 orgId, Role role) external view returns (bool);

    /// @notice The contract that sets debt flags, or the zero address before {setDebtRecorder}.
    function debtRecorder() external view returns (address);

    /// @notice The fields of `account`'s record that trading checks (role, status, region, debt), from one
    /// storage slot: what an exchange asks on every order.
    function profileOf(address account) external view returns (Role role, MemberStatus status, uint32 region, bool inDebt);

    /// @notice Whether `account` may trade: an active member without debt. Every trading entry point asks this.
    function canTrade(address account) external view returns (bool);

    /// @notice {canTrade} for both parties of a transfer, in one call (one storage slot per party).
    function canTradePair(address from, address to) external view returns (bool);

    /**
     * @notice Reverts with {RegistryIneligibleMember} for the first account that is not an active member with
     * role `role` (any role if NONE) and region `region` (any region if 0); returns if all are.
     */
    function checkMembers(address[] calldata accounts, Role role, uint32 region) external view;
}
