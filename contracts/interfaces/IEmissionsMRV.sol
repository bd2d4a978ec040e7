// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IVerifiedEmissions, PeriodPhase} from "./IAllowanceManager.sol";

/// @notice The state of one version of an emissions report.
enum ReportStatus {
    NONE,
    SUBMITTED, // waiting for a verifier
    ENDORSED, // a verifier endorsed it with its own quantity
    DISPUTED, // a verifier disputed it: the enterprise may submit a new version
    AUDITED // the regulator audited it: final
}

/// @notice One version of an enterprise's report for one period. Quantities have 6 decimals (grams).
struct ReportVersion {
    ReportStatus status;
    uint16 gwpVersion;
    uint40 submittedAt;
    uint40 reviewedAt;
    address verifier;
    uint128 co2e; // reported, computed on chain from the per-gas quantities and the GWP table
    uint128 verifiedQuantity; // the verifier's own quantity (endorsement)
    bytes32 readingsRoot; // Merkle root of the monitoring readings (kept off chain)
    bytes32 reportHash; // hash of the report document
    bytes32 evidenceHash; // the verifier's evidence (endorsement or dispute)
}

/// @notice The regulator's audit of a period's report.
struct AuditRecord {
    bool done;
    bool accurate; // reported within tolerance of the final quantity
    bool withFinding; // the regulator substituted its own finding for the verifier's quantity
    uint16 version;
    uint40 auditedAt;
    address auditor;
    uint128 finalQuantity; // the verified emissions used for compliance
    bytes32 evidenceHash;
}

/// @notice A versioned table of global warming potentials (GWP100), in thousandths (29.8 -> 29800).
struct GwpTable {
    bool exists;
    string name;
    bytes32 sourceHash;
    string[] gases;
    uint32[] gwpMilli;
}

/**
 * @title IEmissionsMRV
 * @notice Monitoring, reporting and verification (DESIGN.md section 2.2). Enterprises submit per-gas quantities,
 * converted on chain to CO2e with a versioned GWP table, with the Merkle root of their monitoring readings and a
 * report hash; verifiers endorse with their own quantity or dispute (the enterprise may then submit a new
 * version; every version is kept); the regulator audits against a tolerance, and the outcome applies the coin's
 * rules once per audit. All steps happen in the period's RECONCILIATION phase.
 */
interface IEmissionsMRV is IVerifiedEmissions {
    error MrvUnknownGwpTable(uint16 version);
    error MrvGwpTableExists(uint16 version);
    error MrvInvalidGwpTable(uint256 gases, uint256 values);
    error MrvQuantityCount(uint16 gwpVersion, uint256 expected, uint256 given);
    error MrvQuantityTooLarge(uint256 index, uint256 quantity);
    error MrvWrongPhase(uint16 period, PeriodPhase phase);
    error MrvReportExists(uint16 period, address enterprise, uint16 version, ReportStatus status);
    error MrvUnknownReport(uint16 period, address enterprise, uint16 version);
    error MrvNotLatestVersion(uint16 period, address enterprise, uint16 version, uint16 latest);
    error MrvReportNotPending(uint16 period, address enterprise, uint16 version, ReportStatus status);
    error MrvReportNotEndorsed(uint16 period, address enterprise, uint16 version, ReportStatus status);
    error MrvAlreadyAudited(uint16 period, address enterprise);
    error MrvConflictOfInterest(address verifier, address enterprise, uint32 orgId);
    error MrvMissingHash();
    error MrvInvalidTolerance(uint16 bps);

    event GwpTableRegistered(uint16 indexed version, string name, bytes32 sourceHash, string[] gases, uint32[] gwpMilli);
    event ReportSubmitted(
        uint16 indexed period,
        address indexed enterprise,
        uint16 version,
        uint16 gwpVersion,
        uint256 co2e,
        uint256[] quantities,
        bytes32 readingsRoot,
        bytes32 reportHash
    );
    event ReportEndorsed(
        uint16 indexed period, address indexed enterprise, uint16 version, address indexed verifier, uint256 verifiedQuantity, bytes32 evidenceHash
    );
    event ReportDisputed(
        uint16 indexed period, address indexed enterprise, uint16 version, address indexed verifier, bytes32 evidenceHash
    );
    /// @dev The regulator audited `enterprise`'s report: `reported` against the verifier's `verifierQuantity`,
    /// with the outcome in `record`.
    event ReportAudited(
        uint16 indexed period,
        address indexed enterprise,
        address indexed auditor,
        uint256 reported,
        uint256 verifierQuantity,
        AuditRecord record
    );

    /// @notice Registers GWP table `version` (national regulator). `gwpMilli[i]` is gas i's GWP100 x 1000.
    function registerGwpTable(
        uint16 version,
        string calldata name,
        string[] calldata gases,
        uint32[] calldata gwpMilli,
        bytes32 sourceHash
    ) external;

    /**
     * @notice Submits the caller's (an active ENTERPRISE) report for `period`: `quantities[i]` grams of the
     * table's gas i. A new version only after the latest was disputed. Returns the version (from 1) and CO2e
     * (sum of quantity x GWP / 1000, rounded down once).
     */
    function submitReport(
        uint16 period,
        uint16 gwpVersion,
        uint256[] calldata quantities,
        bytes32 readingsRoot,
        bytes32 reportHash
    ) external returns (uint16 version, uint128 co2e);

    /// @notice Endorses the latest, pending version with the verifier's own quantity (an active VERIFIER, not
    /// of the enterprise's organisation).
    function endorse(uint16 period, address enterprise, uint16 version, uint128 verifiedQuantity, bytes32 evidenceHash)
        external;

    /// @notice Disputes the latest, pending version (an active VERIFIER, not of the enterprise's organisation).
    function dispute(uint16 period, address enterprise, uint16 version, bytes32 evidenceHash) external;

    /**
     * @notice Audits the endorsed latest version (an active REGULATOR, national or of the enterprise's region).
     * The final quantity is the verifier's, or `finding` if `withFinding`. The enterprise is rewarded if its
     * report is within tolerance of it, else penalised per tonne of the gap; rewarded per tonne below its
     * previous audited period; with a finding beyond tolerance of the verifier's quantity, the verifier is
     * penalised per tonne of that gap. Once per (period, enterprise).
     */
    function audit(uint16 period, address enterprise, bool withFinding, uint128 finding, bytes32 evidenceHash)
        external;

    function toleranceBps() external view returns (uint16);
    function gwpTable(uint16 version) external view returns (GwpTable memory);
    function gwpVersions() external view returns (uint16[] memory);
    function co2eOf(uint16 gwpVersion, uint256[] calldata quantities) external view returns (uint128);
    function reportCount(uint16 period, address enterprise) external view returns (uint16);
    function getReport(uint16 period, address enterprise, uint16 version) external view returns (ReportVersion memory);
    function getAudit(uint16 period, address enterprise) external view returns (AuditRecord memory);
}
