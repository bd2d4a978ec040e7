// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAllowanceManager, PeriodPhase} from "../interfaces/IAllowanceManager.sol";
import {IConsortiumRegistry, Member, MemberStatus, Role} from "../interfaces/IConsortiumRegistry.sol";
import {AuditRecord, GwpTable, IEmissionsMRV, ReportStatus, ReportVersion} from "../interfaces/IEmissionsMRV.sol";
import {
    IRewardPenaltyCoin,
    REASON_ACCURATE_REPORT,
    REASON_FALSE_VERIFICATION,
    REASON_MISREPORT,
    REASON_VERIFIED_REDUCTION
} from "../interfaces/IRewardPenaltyCoin.sol";
import {RegistryGuard} from "../registry/RegistryGuard.sol";

/**
 * @title EmissionsMRV
 * @notice See {IEmissionsMRV}.
 * @dev The audit key of (period, enterprise) is `keccak256(abi.encode(address(this), period, enterprise))`; the
 * coin refuses any (reason, subject, key) twice, and {audit} refuses a second audit before that.
 */
contract EmissionsMRV is IEmissionsMRV, RegistryGuard {
    uint16 private constant _BPS = 10_000;
    uint256 private constant _MILLI = 1_000;

    struct LastAudit {
        uint16 period;
        uint128 quantity;
    }

    IAllowanceManager public immutable manager;
    IRewardPenaltyCoin public immutable coin;

    /// @inheritdoc IEmissionsMRV
    uint16 public immutable toleranceBps;

    mapping(uint16 version => GwpTable) private _gwpTables;
    uint16[] private _gwpVersions;
    mapping(uint16 period => mapping(address enterprise => uint16)) private _reportCounts;
    mapping(uint16 period => mapping(address enterprise => mapping(uint16 version => ReportVersion))) private _reports;
    mapping(uint16 period => mapping(address enterprise => AuditRecord)) private _audits;
    mapping(address enterprise => LastAudit) private _lastAudits;

    /// @dev The `default*` arguments install GWP table version 1 (IPCC AR6 GWP100 in the default deployment).
    constructor(
        IConsortiumRegistry registry_,
        IAllowanceManager manager_,
        IRewardPenaltyCoin coin_,
        uint16 toleranceBps_,
        string memory defaultTableName,
        string[] memory defaultGases,
        uint32[] memory defaultGwpMilli,
        bytes32 defaultSourceHash
    ) RegistryGuard(registry_) {
        if (toleranceBps_ > _BPS) revert MrvInvalidTolerance(toleranceBps_);
        manager = manager_;
        coin = coin_;
        toleranceBps = toleranceBps_;
        _registerGwpTable(1, defaultTableName, defaultGases, defaultGwpMilli, defaultSourceHash);
    }

    // ---------------------------------------------------------------- GWP tables

    /// @inheritdoc IEmissionsMRV
    function registerGwpTable(
        uint16 version,
        string calldata name,
        string[] calldata gases,
        uint32[] calldata gwpMilli,
        bytes32 sourceHash
    ) external {
        _requireRegulatorOf(0); // national: a regional regulator's region is never 0
        _registerGwpTable(version, name, gases, gwpMilli, sourceHash);
    }

    // ---------------------------------------------------------------- reports

    /// @inheritdoc IEmissionsMRV
    function submitReport(
        uint16 period,
        uint16 gwpVersion,
        uint256[] calldata quantities,
        bytes32 readingsRoot,
        bytes32 reportHash
    ) external onlyRole(Role.ENTERPRISE) returns (uint16 version, uint128 co2e) {
        _requireReconciliation(period);
        if (readingsRoot == bytes32(0) || reportHash == bytes32(0)) revert MrvMissingHash();
        uint16 latest = _reportCounts[period][msg.sender];
        if (latest != 0) {
            ReportStatus status = _reports[period][msg.sender][latest].status;
            if (status != ReportStatus.DISPUTED) revert MrvReportExists(period, msg.sender, latest, status);
        }
        co2e = _co2e(gwpVersion, quantities);
        version = latest + 1;
        _reportCounts[period][msg.sender] = version;
        ReportVersion storage r = _reports[period][msg.sender][version];
        r.status = ReportStatus.SUBMITTED;
        r.gwpVersion = gwpVersion;
        r.submittedAt = uint40(block.timestamp);
        r.co2e = co2e;
        r.readingsRoot = readingsRoot;
        r.reportHash = reportHash;
        emit ReportSubmitted(period, msg.sender, version, gwpVersion, co2e, quantities, readingsRoot, reportHash);
    }

    /// @inheritdoc IEmissionsMRV
    function endorse(uint16 period, address enterprise, uint16 version, uint128 verifiedQuantity, bytes32 evidenceHash)
        external
    {
        ReportVersion storage r = _pendingForReview(period, enterprise, version, evidenceHash);
        r.status = ReportStatus.ENDORSED;
        r.verifiedQuantity = verifiedQuantity;
        emit ReportEndorsed(period, enterprise, version, msg.sender, verifiedQuantity, evidenceHash);
    }

    /// @inheritdoc IEmissionsMRV
    function dispute(uint16 period, address enterprise, uint16 version, bytes32 evidenceHash) external {
        ReportVersion storage r = _pendingForReview(period, enterprise, version, evidenceHash);
        r.status = ReportStatus.DISPUTED;
        emit ReportDisputed(period, enterprise, version, msg.sender, evidenceHash);
    }

    /// @inheritdoc IEmissionsMRV
    function audit(uint16 period, address enterprise, bool withFinding, uint128 finding, bytes32 evidenceHash)
        external
    {
        (,, uint32 region,) = registry.profileOf(enterprise);
        _requireRegulatorOf(region);
        _requireReconciliation(period);
        if (evidenceHash == bytes32(0)) revert MrvMissingHash();
        if (_audits[period][enterprise].done) revert MrvAlreadyAudited(period, enterprise);
        uint16 version = _reportCounts[period][enterprise];
        if (version == 0) revert MrvUnknownReport(period, enterprise, 0);
        ReportVersion storage r = _reports[period][enterprise][version];
        if (r.status != ReportStatus.ENDORSED) revert MrvReportNotEndorsed(period, enterprise, version, r.status);

        AuditRecord memory record = AuditRecord({
            done: true,
            accurate: false,
            withFinding: withFinding,
            version: version,
            auditedAt: uint40(block.timestamp),
            auditor: msg.sender,
            finalQuantity: withFinding ? finding : r.verifiedQuantity,
            evidenceHash: evidenceHash
        });
        record.accurate = _within(r.co2e, record.finalQuantity);
        _audits[period][enterprise] = record;
        r.status = ReportStatus.AUDITED;
        emit ReportAudited(period, enterprise, msg.sender, r.co2e, r.verifiedQuantity, record);
        _applyOutcome(period, enterprise, r, record);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IEmissionsMRV
    function gwpTable(uint16 version) external view returns (GwpTable memory) {
        return _gwpTables[version];
    }

    /// @inheritdoc IEmissionsMRV
    function gwpVersions() external view returns (uint16[] memory) {
        return _gwpVersions;
    }

    /// @inheritdoc IEmissionsMRV
    function co2eOf(uint16 gwpVersion, uint256[] calldata quantities) external view returns (uint128) {
        return _co2e(gwpVersion, quantities);
    }

    /// @inheritdoc IEmissionsMRV
    function reportCount(uint16 period, address enterprise) external view returns (uint16) {
        return _reportCounts[period][enterprise];
    }

    /// @inheritdoc IEmissionsMRV
    function getReport(uint16 period, address enterprise, uint16 version) external view returns (ReportVersion memory) {
        return _reports[period][enterprise][version];
    }

    /// @inheritdoc IEmissionsMRV
    function getAudit(uint16 period, address enterprise) external view returns (AuditRecord memory) {
        return _audits[period][enterprise];
    }

    /// @notice Whether `enterprise`'s report for `period` was audited, and the final (verified) quantity.
    function verifiedEmissions(uint16 period, address enterprise) external view returns (bool, uint128) {
        AuditRecord storage record = _audits[period][enterprise];
        return (record.done, record.finalQuantity);
    }

    // ---------------------------------------------------------------- internals

    function _registerGwpTable(
        uint16 version,
        string memory name,
        string[] memory gases,
        uint32[] memory gwpMilli,
        bytes32 sourceHash
    ) private {
        if (version == 0) revert MrvUnknownGwpTable(version);
        if (_gwpTables[version].exists) revert MrvGwpTableExists(version);
        if (gases.length == 0 || gases.length != gwpMilli.length || gases.length > 64) {
            revert MrvInvalidGwpTable(gases.length, gwpMilli.length);
        }
        GwpTable storage table = _gwpTables[version];
        table.exists = true;
        table.name = name;
        table.sourceHash = sourceHash;
        for (uint256 i; i < gases.length; ++i) {
            table.gases.push(gases[i]);
            table.gwpMilli.push(gwpMilli[i]);
        }
        _gwpVersions.push(version);
        emit GwpTableRegistered(version, name, sourceHash, gases, gwpMilli);
    }

    /// @dev Sum of quantity x GWP (thousandths), divided by 1000 once: rounded down by less than one gram.
    function _co2e(uint16 gwpVersion, uint256[] calldata quantities) private view returns (uint128) {
        GwpTable storage table = _gwpTables[gwpVersion];
        if (!table.exists) revert MrvUnknownGwpTable(gwpVersion);
        uint256 count = table.gwpMilli.length;
        if (quantities.length != count) revert MrvQuantityCount(gwpVersion, count, quantities.length);
        uint256 total;
        for (uint256 i; i < count; ++i) {
            // Each quantity below 2^128 grams: the products (< 2^160) and their sum (< 2^166) cannot overflow.
            if (quantities[i] > type(uint128).max) revert MrvQuantityTooLarge(i, quantities[i]);
            total += quantities[i] * table.gwpMilli[i];
        }
        uint256 co2e = total / _MILLI;
        if (co2e > type(uint128).max) revert MrvQuantityTooLarge(count, co2e);
        return uint128(co2e);
    }

    /// @dev Checks a review (endorse or dispute) and records its reviewer and time; the caller sets the status.
    function _pendingForReview(uint16 period, address enterprise, uint16 version, bytes32 evidenceHash)
        private
        returns (ReportVersion storage r)
    {
        Member memory verifier = registry.getMember(msg.sender);
        if (verifier.role != Role.VERIFIER || verifier.status != MemberStatus.ACTIVE) {
            revert GuardMissingRole(msg.sender, Role.VERIFIER);
        }
        if (registry.getMember(enterprise).orgId == verifier.orgId) {
            revert MrvConflictOfInterest(msg.sender, enterprise, verifier.orgId);
        }
        _requireReconciliation(period);
        if (evidenceHash == bytes32(0)) revert MrvMissingHash();
        uint16 latest = _reportCounts[period][enterprise];
        if (version == 0 || version > latest) revert MrvUnknownReport(period, enterprise, version);
        if (version != latest) revert MrvNotLatestVersion(period, enterprise, version, latest);
        r = _reports[period][enterprise][version];
        if (r.status != ReportStatus.SUBMITTED) revert MrvReportNotPending(period, enterprise, version, r.status);
        r.verifier = msg.sender;
        r.reviewedAt = uint40(block.timestamp);
        r.evidenceHash = evidenceHash;
    }

    function _requireReconciliation(uint16 period) private view {
        PeriodPhase phase = manager.phaseOf(period);
        if (phase != PeriodPhase.RECONCILIATION) revert MrvWrongPhase(period, phase);
    }

    /// @dev Reverts unless the caller is an active REGULATOR, national or of `region`.
    function _requireRegulatorOf(uint32 region) private view {
        (bool isRegulator, uint32 callerRegion) = _regulatorRegion(msg.sender);
        if (!isRegulator || (callerRegion != 0 && callerRegion != region)) {
            revert GuardMissingRole(msg.sender, Role.REGULATOR);
        }
    }

    function _within(uint256 value, uint256 reference_) private view returns (bool) {
        return _gap(value, reference_) * _BPS <= uint256(toleranceBps) * reference_;
    }

    function _gap(uint256 a, uint256 b) private pure returns (uint256) {
        return a > b ? a - b : b - a;
    }

    /// @dev The coin rules an audit applies: accurate report or misreport, verified reduction, false verification.
    function _applyOutcome(uint16 period, address enterprise, ReportVersion storage r, AuditRecord memory record)
        private
    {
        bytes32 auditKey = keccak256(abi.encode(address(this), period, enterprise));
        bytes32 evidence = record.evidenceHash;
        uint128 finalQuantity = record.finalQuantity;
        if (record.accurate) _apply(enterprise, REASON_ACCURATE_REPORT, finalQuantity, auditKey, evidence);
        else _apply(enterprise, REASON_MISREPORT, _gap(r.co2e, finalQuantity), auditKey, evidence);

        LastAudit storage last = _lastAudits[enterprise];
        if (last.period < period) {
            if (last.period != 0 && finalQuantity < last.quantity) {
                _apply(enterprise, REASON_VERIFIED_REDUCTION, last.quantity - finalQuantity, auditKey, evidence);
            }
            last.period = period;
            last.quantity = finalQuantity;
        }
        if (record.withFinding && !_within(r.verifiedQuantity, finalQuantity)) {
            _apply(r.verifier, REASON_FALSE_VERIFICATION, _gap(r.verifiedQuantity, finalQuantity), auditKey, evidence);
        }
    }

    /// @dev Applies a coin rule if this deployment has one for `reason`.
    function _apply(address subject, uint8 reason, uint256 quantity, bytes32 auditKey, bytes32 evidenceHash) private {
        if (coin.rule(reason).exists) coin.applyRule(subject, reason, quantity, auditKey, evidenceHash);
    }
}
