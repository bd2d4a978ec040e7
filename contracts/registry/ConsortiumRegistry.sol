// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {
    IConsortiumRegistry,
    Member,
    MemberStatus,
    Organisation,
    Role
} from "../interfaces/IConsortiumRegistry.sol";

/**
 * @title ConsortiumRegistry
 * @notice The consortium's membership service (DESIGN.md section 1): the source of truth for who may do what in
 * every other contract of the market and for the devnet gateway. It deliberately uses no AccessControl: the
 * regulators, organisation admins and members it records are the access control.
 * @dev Organisation 1 is the national regulator, created by the constructor. Each member takes two storage
 * slots: (orgId, role, status, region, enrolledAt) packed in one, the identity hash in the other. An admin is
 * always a member of the organisation it administers, so an address administers at most one organisation.
 */
contract ConsortiumRegistry is IConsortiumRegistry {
    /// @inheritdoc IConsortiumRegistry
    uint256 public constant MAX_BATCH = 500;

    /// @dev Bits 1..7: the roles an organisation may allow (bit 0 is NONE).
    uint16 private constant _VALID_ROLE_BITS = 0xFE;

    /// @dev The region code of national organisations and regulators.
    uint32 private constant _NATIONAL = 0;

    uint32 private _organisationCount;
    mapping(uint32 orgId => Organisation) private _organisations;
    mapping(address account => Member) private _members;
    mapping(address admin => uint32 orgId) private _adminOrgs;
    address private _debtRecorder;

    /// @dev Organisation 1, the national regulator's, which also holds the SYSTEM members.
    uint32 private constant _REGULATOR_ORG = 1;

    /**
     * @notice Creates organisation 1, the national regulator (region 0, allowed roles REGULATOR and OBSERVER),
     * with `regulatorAdmin` as its admin and first active REGULATOR.
     * @dev Reverts with {RegistryZeroAddress} if `regulatorAdmin` is the zero address.
     */
    constructor(string memory regulatorName, address regulatorAdmin, bytes32 regulatorIdentityHash) {
        uint16 roles = uint16((1 << uint8(Role.REGULATOR)) | (1 << uint8(Role.OBSERVER)));
        _registerOrganisation(regulatorName, regulatorAdmin, Role.REGULATOR, _NATIONAL, roles, regulatorIdentityHash);
    }

    // ---------------------------------------------------------------- organisations

    /// @inheritdoc IConsortiumRegistry
    function registerOrganisation(
        string calldata name,
        address admin,
        Role adminRole,
        uint32 region,
        uint16 allowedRoles,
        bytes32 adminIdentityHash
    ) external returns (uint32 orgId) {
        _requireRegulatorFor(msg.sender, region);
        return _registerOrganisation(name, admin, adminRole, region, allowedRoles, adminIdentityHash);
    }

    /// @inheritdoc IConsortiumRegistry
    function setAllowedRoles(uint32 orgId, uint16 allowedRoles) external {
        Organisation storage org = _existingOrganisation(orgId);
        _requireRegulatorFor(msg.sender, org.region);
        _requireValidRoleSet(allowedRoles);
        uint16 previousRoles = org.allowedRoles;
        org.allowedRoles = allowedRoles;
        emit OrganisationRolesChanged(orgId, previousRoles, allowedRoles);
    }

    /// @inheritdoc IConsortiumRegistry
    function setOrganisationAdmin(uint32 orgId, address newAdmin) external {
        Organisation storage org = _existingOrganisation(orgId);
        _requireRegulatorFor(msg.sender, org.region);
        if (newAdmin == address(0)) revert RegistryZeroAddress();
        Member storage candidate = _members[newAdmin];
        if (candidate.orgId != orgId || candidate.status != MemberStatus.ACTIVE) {
            revert RegistryNotOrganisationMember(orgId, newAdmin);
        }
        address previousAdmin = org.admin;
        delete _adminOrgs[previousAdmin];
        org.admin = newAdmin;
        _adminOrgs[newAdmin] = orgId;
        emit OrganisationAdminChanged(orgId, previousAdmin, newAdmin);
    }

    // ---------------------------------------------------------------- members

    /// @inheritdoc IConsortiumRegistry
    function enrol(address account, Role role, uint32 region, bytes32 identityHash) external {
        uint32 orgId = _requireEnrolmentRights(msg.sender, role, region);
        _enrol(account, orgId, role, region, identityHash);
    }

    /// @inheritdoc IConsortiumRegistry
    function enrolBatch(address[] calldata accounts, Role role, uint32 region, bytes32[] calldata identityHashes)
        external
    {
        uint256 size = accounts.length;
        if (size != identityHashes.length) revert RegistryBatchLengthMismatch(size, identityHashes.length);
        if (size > MAX_BATCH) revert RegistryBatchSize(size, MAX_BATCH);
        // The caller, the role and the region are the same for the whole batch: check them once.
        uint32 orgId = _requireEnrolmentRights(msg.sender, role, region);
        for (uint256 i; i < size; ++i) {
            _enrol(accounts[i], orgId, role, region, identityHashes[i]);
        }
    }

    /// @inheritdoc IConsortiumRegistry
    function suspend(address account) external {
        _changeStatus(account, MemberStatus.SUSPENDED);
    }

    /// @inheritdoc IConsortiumRegistry
    function reinstate(address account) external {
        _changeStatus(account, MemberStatus.ACTIVE);
    }

    /// @inheritdoc IConsortiumRegistry
    function revoke(address account) external {
        _changeStatus(account, MemberStatus.REVOKED);
    }

    /// @inheritdoc IConsortiumRegistry
    function registerSystemContract(address account, bytes32 descriptionHash) external {
        // Region 0: a regional regulator is refused with RegistryRegionMismatch.
        _requireRegulatorFor(msg.sender, _NATIONAL);
        if (account.code.length == 0) revert RegistryNotAContract(account);
        _enrol(account, _REGULATOR_ORG, Role.SYSTEM, _NATIONAL, descriptionHash);
    }

    /// @inheritdoc IConsortiumRegistry
    function setDebtRecorder(address recorder) external {
        // Region 0: a regional regulator is refused with RegistryRegionMismatch.
        _requireRegulatorFor(msg.sender, _NATIONAL);
        if (recorder == address(0)) revert RegistryZeroAddress();
        if (_debtRecorder != address(0)) revert RegistryDebtRecorderAlreadySet(_debtRecorder);
        _debtRecorder = recorder;
        emit DebtRecorderSet(recorder, msg.sender);
    }

    /// @inheritdoc IConsortiumRegistry
    function setInDebt(address account, bool inDebt) external {
        if (msg.sender != _debtRecorder) revert RegistryNotDebtRecorder(msg.sender);
        Member storage member = _members[account];
        if (member.status == MemberStatus.NONE) revert RegistryNotMember(account);
        if (member.inDebt == inDebt) return;
        member.inDebt = inDebt;
        emit MemberDebtChanged(account, inDebt);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IConsortiumRegistry
    function getMember(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @inheritdoc IConsortiumRegistry
    function getOrganisation(uint32 orgId) external view returns (Organisation memory) {
        return _existingOrganisation(orgId);
    }

    /// @inheritdoc IConsortiumRegistry
    function organisationCount() external view returns (uint32) {
        return _organisationCount;
    }

    /// @inheritdoc IConsortiumRegistry
    function adminOrgOf(address admin) external view returns (uint32) {
        return _adminOrgs[admin];
    }

    /// @inheritdoc IConsortiumRegistry
    function isActive(address account) external view returns (bool) {
        return _members[account].status == MemberStatus.ACTIVE;
    }

    /// @inheritdoc IConsortiumRegistry
    function hasActiveRole(address account, Role role) external view returns (bool) {
        Member storage member = _members[account];
        return member.status == MemberStatus.ACTIVE && member.role == role;
    }

    /// @inheritdoc IConsortiumRegistry
    /// @dev Bounded by the caller's own input (and the eth_call gas limit); it writes nothing.
    function statusesOf(address[] calldata accounts) external view returns (MemberStatus[] memory statuses) {
        statuses = new MemberStatus[](accounts.length);
        for (uint256 i; i < accounts.length; ++i) {
            statuses[i] = _members[accounts[i]].status;
        }
    }

    /// @inheritdoc IConsortiumRegistry
    function roleAllowed(uint32 orgId, Role role) external view returns (bool) {
        return _organisations[orgId].allowedRoles & _roleBit(role) != 0;
    }

    /// @inheritdoc IConsortiumRegistry
    function debtRecorder() external view returns (address) {
        return _debtRecorder;
    }

    /// @inheritdoc IConsortiumRegistry
    function profileOf(address account)
        external
        view
        returns (Role role, MemberStatus status, uint32 region, bool inDebt)
    {
        Member storage member = _members[account];
        return (member.role, member.status, member.region, member.inDebt);
    }

    /// @inheritdoc IConsortiumRegistry
    function canTrade(address account) external view returns (bool) {
        return _canTrade(_members[account]);
    }

    /// @inheritdoc IConsortiumRegistry
    function canTradePair(address from, address to) external view returns (bool) {
        return _canTrade(_members[from]) && _canTrade(_members[to]);
    }

    /// @inheritdoc IConsortiumRegistry
    /// @dev One storage read per account; bounded by the caller's own input.
    function checkMembers(address[] calldata accounts, Role role, uint32 region) external view {
        uint256 size = accounts.length;
        for (uint256 i; i < size; ++i) {
            Member storage member = _members[accounts[i]];
            if (
                member.status != MemberStatus.ACTIVE || (role != Role.NONE && member.role != role)
                    || (region != _NATIONAL && member.region != region)
            ) revert RegistryIneligibleMember(accounts[i], role, region);
        }
    }

    // ---------------------------------------------------------------- internals

    function _canTrade(Member storage member) private view returns (bool) {
        return member.status == MemberStatus.ACTIVE && !member.inDebt;
    }

    function _registerOrganisation(
        string memory name,
        address admin,
        Role adminRole,
        uint32 region,
        uint16 allowedRoles,
        bytes32 adminIdentityHash
    ) private returns (uint32 orgId) {
        _requireValidRoleSet(allowedRoles);
        if (admin == address(0)) revert RegistryZeroAddress();
        // Overflow needs 2^32 organisations, far beyond any consortium; checked arithmetic reverts anyway.
        orgId = ++_organisationCount;
        if (allowedRoles & _roleBit(adminRole) == 0) revert RegistryRoleNotAllowed(orgId, adminRole);

        _organisations[orgId] =
            Organisation({admin: admin, region: region, allowedRoles: allowedRoles, exists: true, name: name});
        _adminOrgs[admin] = orgId;
        emit OrganisationRegistered(orgId, admin, name, region, allowedRoles);
        _enrol(admin, orgId, adminRole, region, adminIdentityHash);
    }

    /// @dev Writes a new member; the caller has checked the organisation, the role and the region.
    function _enrol(address account, uint32 orgId, Role role, uint32 region, bytes32 identityHash) private {
        if (account == address(0)) revert RegistryZeroAddress();
        Member storage member = _members[account];
        if (member.status != MemberStatus.NONE) revert RegistryAlreadyEnrolled(account);
        member.orgId = orgId;
        member.role = role;
        member.status = MemberStatus.ACTIVE;
        member.region = region;
        // block.timestamp fits in 40 bits until the year 36812.
        member.enrolledAt = uint40(block.timestamp);
        member.identityHash = identityHash;
        emit MemberEnrolled(account, orgId, role, region, identityHash);
    }

    /// @dev Checks that `caller` may enrol members with `role` and `region`; returns the caller's organisation.
    function _requireEnrolmentRights(address caller, Role role, uint32 region) private view returns (uint32 orgId) {
        orgId = _adminOrgs[caller];
        if (orgId == 0) revert RegistryNotOrganisationAdmin(caller);
        if (_members[caller].status != MemberStatus.ACTIVE) revert RegistryCallerNotActive(caller);
        Organisation storage org = _organisations[orgId];
        if (org.allowedRoles & _roleBit(role) == 0) revert RegistryRoleNotAllowed(orgId, role);
        uint32 orgRegion = org.region;
        if (orgRegion != _NATIONAL && region != orgRegion) revert RegistryRegionMismatch(orgRegion, region);
    }

    function _changeStatus(address account, MemberStatus to) private {
        Member storage member = _members[account];
        MemberStatus from = member.status;
        if (from == MemberStatus.NONE) revert RegistryNotMember(account);
        if (account == msg.sender && to != MemberStatus.ACTIVE) revert RegistrySelfLockout(account);
        _requireStatusAuthority(msg.sender, account, member.orgId, member.region);

        bool valid = to == MemberStatus.ACTIVE
            ? from == MemberStatus.SUSPENDED
            : to == MemberStatus.SUSPENDED ? from == MemberStatus.ACTIVE : from != MemberStatus.REVOKED;
        if (!valid) revert RegistryInvalidStatusTransition(account, from, to);

        member.status = to;
        emit MemberStatusChanged(account, from, to, msg.sender);
    }

    /**
     * @dev `caller` may change the status of `account` (a member of `orgId` in `region`) if it is active and either
     * a REGULATOR whose region is national or `region`, or the admin of `orgId`. An admin never reaches its own
     * status this way: suspending or revoking oneself is refused before, and a suspended admin cannot call.
     */
    function _requireStatusAuthority(address caller, address account, uint32 orgId, uint32 region) private view {
        Member storage callerMember = _members[caller];
        if (callerMember.status != MemberStatus.ACTIVE) revert RegistryCallerNotActive(caller);
        if (callerMember.role == Role.REGULATOR) {
            uint32 callerRegion = callerMember.region;
            if (callerRegion == _NATIONAL || callerRegion == region) return;
        }
        if (_organisations[orgId].admin == caller) return;
        revert RegistryNotAuthorisedFor(caller, account);
    }

    /// @dev Reverts unless `caller` is an active REGULATOR allowed to act on `region`.
    function _requireRegulatorFor(address caller, uint32 region) private view {
        Member storage member = _members[caller];
        if (member.role != Role.REGULATOR) revert RegistryNotRegulator(caller);
        if (member.status != MemberStatus.ACTIVE) revert RegistryCallerNotActive(caller);
        uint32 callerRegion = member.region;
        if (callerRegion != _NATIONAL && callerRegion != region) revert RegistryRegionMismatch(callerRegion, region);
    }

    function _existingOrganisation(uint32 orgId) private view returns (Organisation storage org) {
        org = _organisations[orgId];
        if (!org.exists) revert RegistryUnknownOrganisation(orgId);
    }

    function _requireValidRoleSet(uint16 allowedRoles) private pure {
        if (allowedRoles & ~_VALID_ROLE_BITS != 0) revert RegistryInvalidRoleSet(allowedRoles);
    }

    function _roleBit(Role role) private pure returns (uint16) {
        return uint16(1 << uint8(role));
    }
}
