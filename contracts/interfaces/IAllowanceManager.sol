// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice A compliance period's phase, from its timestamps: OPEN (allocation) until `tradingAt`, TRADING until
/// `reconciliationAt`, RECONCILIATION (reports, verification, audit, surrender) until `closesAt` (the true-up
/// deadline), CLOSED from then on. NONE: no such period.
enum PeriodPhase {
    NONE,
    OPEN,
    TRADING,
    RECONCILIATION,
    CLOSED
}

/// @notice What a token registered with the manager is.
enum TokenKind {
    NONE,
    ALLOWANCE,
    OFFSET
}

/// @notice The type of an offset project.
enum OffsetKind {
    CCER,
    FORESTRY_SINK,
    OTHER
}

/// @notice An enterprise's compliance for one period. NOT_VERIFIED: no audited emissions yet; DUE: verified, not
/// fully surrendered, before the deadline; COMPLIANT: surrendered its verified emissions; SHORTFALL: the deadline
/// passed with less surrendered; UNREPORTED: the deadline passed without audited emissions.
enum ComplianceState {
    NOT_VERIFIED,
    DUE,
    COMPLIANT,
    SHORTFALL,
    UNREPORTED
}

/// @notice What the regulator gives to open a period. Amounts have 6 decimals (1.000000 = 1 tCO2e).
struct PeriodParams {
    uint16 id; // the period's label, e.g. 2025; strictly increasing
    uint128 cap; // the national cap
    uint40 tradingAt;
    uint40 reconciliationAt;
    uint40 closesAt; // the true-up deadline
    uint16 offsetShareBps; // offsets may cover at most this share of verified emissions (500 = 5 %)
    uint16 borrowShareBps; // the next vintage may cover at most this share (0: no borrowing)
}

/// @notice A compliance period as stored, with its phase now.
struct PeriodInfo {
    uint16 id;
    PeriodPhase phase;
    address allowance; // the vintage's ERC-20
    uint40 openedAt;
    uint40 tradingAt;
    uint40 reconciliationAt;
    uint40 closesAt;
    uint16 offsetShareBps;
    uint16 borrowShareBps;
    uint16 previous; // the period opened before (0 if none)
    uint16 next; // the period opened after (0 until then): its vintage is the one borrowed from
    uint128 cap;
    uint128 allocated; // everything minted into this vintage, all regions
    uint128 regionalCapTotal; // the sum of regional caps; the national reserve is cap - regionalCapTotal
    uint128 nationalAllocated; // allocated from the national reserve
    uint128 surrendered; // this vintage's allowances surrendered, for any period
}

/// @notice A region's share of a period's cap.
struct RegionalCap {
    uint128 cap;
    uint128 allocated;
}

/// @notice A registered offset project.
struct OffsetProject {
    bool exists;
    OffsetKind kind;
    uint32 region;
    bytes32 documentHash; // the hash of the project's registration document
    string name;
}

/// @notice What the manager knows of a token it created.
struct TokenInfo {
    TokenKind kind;
    uint16 vintage; // period (allowances) or vintage year (offsets)
    uint32 projectId; // offsets only
    uint128 surrendered;
}

/// @notice An enterprise's compliance for one period, as {IAllowanceManager-complianceOf} returns it.
struct ComplianceStatus {
    ComplianceState state;
    PeriodPhase phase;
    bool verified;
    uint128 verifiedEmissions;
    uint128 surrendered; // allowances and offsets
    uint128 offsets; // of which offsets
    uint128 borrowed; // of which the next vintage's allowances
    uint128 shortfall; // verified - surrendered, once the deadline passed
    uint128 offsetLimit; // the most offsets may cover
    uint128 borrowLimit; // the most the next vintage may cover
    bool settled; // settle() recorded the outcome (and applied the penalty)
}

/// @notice What the manager asks the MRV contract.
interface IVerifiedEmissions {
    /// @notice Whether the regulator audited `enterprise`'s report for `period`, and the audited quantity.
    function verifiedEmissions(uint16 period, address enterprise) external view returns (bool audited, uint128 quantity);
}

/**
 * @title IAllowanceManager
 * @notice Compliance periods and their allowance vintages, offsets, and compliance (DESIGN.md sections 2.1 and
 * 2.6). The regulator opens a period with a national cap, optionally split into regional caps; a factory creates
 * the period's ERC-20. Allocation is free (in batches) or for sale (minted to the regulator, who sells it in a
 * market session); no path mints beyond a cap. Enterprises surrender allowances of their period or an earlier
 * one (banking), of the next one up to a share (borrowing), and offsets up to a share, against their audited
 * emissions; after the deadline a shortfall is recorded and penalised through the reward-penalty coin.
 *
 * Regulators: a national regulator (region 0) does everything; a regional regulator allocates within its
 * region's cap, to enterprises of its region, and registers and issues offset projects of its region.
 */
interface IAllowanceManager {
    error AllowancesUnknownPeriod(uint16 period);
    error AllowancesPeriodOrder(uint16 period, uint16 last);
    error AllowancesInvalidSchedule(uint40 timestamp, uint40 tradingAt, uint40 reconciliationAt, uint40 closesAt);
    error AllowancesInvalidShare(uint16 bps);
    error AllowancesZeroCap();
    error AllowancesDuplicateRegion(uint32 region);
    /// @dev The regional caps would total `regionalTotal`, more than `cap` leaves them (the national cap, less
    /// what the national reserve already allocated).
    error AllowancesRegionalCapsExceedCap(uint16 period, uint256 regionalTotal, uint256 cap);
    error AllowancesRegionalCapBelowAllocated(uint16 period, uint32 region, uint256 cap, uint256 allocated);
    error AllowancesWrongPhase(uint16 period, PeriodPhase phase);
    error AllowancesCapExceeded(uint16 period, uint32 region, uint256 available, uint256 requested);
    error AllowancesRegionMismatch(uint32 callerRegion, uint32 region);
    error AllowancesBatchSize(uint256 size, uint256 max);
    error AllowancesZeroAmount(uint256 index);
    error AllowancesLengthMismatch(uint256 tokens, uint256 amounts);
    error AllowancesUnknownProject(uint32 projectId);
    error AllowancesUnknownToken(address token);
    error AllowancesIneligibleVintage(address token, uint16 vintage, uint16 period);
    error AllowancesOffsetLimitExceeded(uint16 period, address enterprise, uint256 limit, uint256 requested);
    error AllowancesBorrowLimitExceeded(uint16 period, address enterprise, uint256 limit, uint256 requested);
    error AllowancesSurrenderExceedsEmissions(uint16 period, address enterprise, uint256 verified, uint256 requested);
    error AllowancesNotVerified(uint16 period, address enterprise);
    error AllowancesAlreadySettled(uint16 period, address enterprise);
    error AllowancesMrvAlreadySet(address mrv);
    /// @dev `account` is not an enterprise member that was enrolled before `period` closed.
    error AllowancesNotSubject(uint16 period, address account);
    error AllowancesMrvNotSet();

    event PeriodOpened(
        uint16 indexed period,
        address allowance,
        uint256 cap,
        uint40 tradingAt,
        uint40 reconciliationAt,
        uint40 closesAt,
        uint16 offsetShareBps,
        uint16 borrowShareBps
    );
    event RegionalCapSet(uint16 indexed period, uint32 indexed region, uint256 cap);
    event PeriodPhaseAdvanced(uint16 indexed period, PeriodPhase phase, uint40 at, address indexed by);
    /// @dev `total` allowances of `period` minted to `recipients` accounts (the vintage's Transfer events name
    /// them) from `region`'s cap (0: the national reserve); `forSale`: minted to the regulator to sell.
    event Allocated(
        uint16 indexed period, uint32 indexed region, address indexed by, uint256 recipients, uint256 total, bool forSale
    );
    event OffsetProjectRegistered(uint32 indexed projectId, OffsetKind kind, uint32 region, bytes32 documentHash, string name);
    event OffsetsIssued(
        uint32 indexed projectId, uint16 indexed vintage, address token, uint256 recipients, uint256 total, address by
    );
    event Surrendered(
        uint16 indexed period, address indexed enterprise, address indexed token, TokenKind kind, uint16 vintage, uint256 amount
    );
    event ComplianceSettled(
        uint16 indexed period,
        address indexed enterprise,
        ComplianceState state,
        uint256 verifiedEmissions,
        uint256 surrendered,
        uint256 shortfall
    );
    event MrvSet(address indexed mrv);

    /// @notice Opens a period and creates its vintage token. National regulator; `id` above every earlier
    /// period; now <= tradingAt <= reconciliationAt <= closesAt, closesAt > now; shares <= 10000;
    /// regional caps for distinct non-zero regions, summing to at most `cap`.
    function openPeriod(PeriodParams calldata params, uint32[] calldata regions, uint128[] calldata regionalCaps)
        external
        returns (address allowance);

    /// @notice Sets `region`'s cap in `period` (not CLOSED): at least what it allocated, all regions within the cap.
    function setRegionalCap(uint16 period, uint32 region, uint128 cap) external;

    /// @notice Ends the current phase of `period` now (national regulator); returns the new phase.
    function advancePhase(uint16 period) external returns (PeriodPhase);

    /// @notice Free allocation: mints each grant (recipient << 96 | amount) from `region`'s cap (0: national
    /// reserve). OPEN or TRADING; at most MAX_GRANTS; recipients are active ENTERPRISEs of `region` (any if 0).
    function allocate(uint16 period, uint32 region, bytes32[] calldata grants) external returns (uint256 total);

    /// @notice Paid allocation: mints `amount` to the calling regulator, to sell in a market session. Same cap.
    function allocateForSale(uint16 period, uint32 region, uint128 amount) external;

    /// @notice Registers an offset project (a regulator of `region`, or national). Returns its number.
    function registerOffsetProject(string calldata name, OffsetKind kind, uint32 region, bytes32 documentHash)
        external
        returns (uint32 projectId);

    /// @notice Issues offset credits of `projectId` and `vintage` to active members (grants as in {allocate});
    /// creates the project-vintage token on first issue. A regulator of the project's region, or national.
    function issueOffsets(uint32 projectId, uint16 vintage, bytes32[] calldata grants) external returns (address token);

    /**
     * @notice Surrenders the caller's `amounts` of `tokens` for `period` (RECONCILIATION, audited emissions):
     * allowances of `period` or earlier, of the next period up to `borrowShareBps` of verified emissions, offsets
     * of vintage <= `period` up to `offsetShareBps`; in total at most the verified emissions. Burns them.
     */
    function surrender(uint16 period, address[] calldata tokens, uint256[] calldata amounts) external;

    /// @notice After the deadline, records each enterprise's outcome and applies the coin's penalty to a
    /// shortfall (per tonne) or a missing audited report. A REGULATOR, national or of every listed
    /// enterprise's region; each listed account an ENTERPRISE member enrolled before the deadline; each once.
    function settle(uint16 period, address[] calldata enterprises) external;

    /// @notice Binds the MRV contract whose audits give verified emissions. Once, national regulator.
    function setMrv(address mrv) external;

    function MAX_GRANTS() external view returns (uint256);
    function lastPeriod() external view returns (uint16);
    function getPeriod(uint16 period) external view returns (PeriodInfo memory);
    function phaseOf(uint16 period) external view returns (PeriodPhase);
    function regionalCap(uint16 period, uint32 region) external view returns (RegionalCap memory);
    function periodRegions(uint16 period) external view returns (uint32[] memory);
    function tokenInfo(address token) external view returns (TokenInfo memory);
    function offsetProject(uint32 projectId) external view returns (OffsetProject memory);
    function offsetProjectCount() external view returns (uint32);
    function offsetToken(uint32 projectId, uint16 vintage) external view returns (address);
    function complianceOf(uint16 period, address enterprise) external view returns (ComplianceStatus memory);
    function complianceOfMany(uint16 period, address[] calldata enterprises)
        external
        view
        returns (ComplianceStatus[] memory);
}
