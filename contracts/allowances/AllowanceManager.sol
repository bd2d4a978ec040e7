// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {
    ComplianceState,
    ComplianceStatus,
    IAllowanceManager,
    IVerifiedEmissions,
    OffsetKind,
    OffsetProject,
    PeriodInfo,
    PeriodParams,
    PeriodPhase,
    RegionalCap,
    TokenInfo,
    TokenKind
} from "../interfaces/IAllowanceManager.sol";
import {IConsortiumRegistry, Member, Role} from "../interfaces/IConsortiumRegistry.sol";
import {
    IRewardPenaltyCoin, REASON_SHORT_SURRENDER, REASON_UNREPORTED
} from "../interfaces/IRewardPenaltyCoin.sol";
import {RegistryGuard} from "../registry/RegistryGuard.sol";
import {VintageToken} from "./VintageToken.sol";
import {VintageTokenFactory} from "./VintageTokenFactory.sol";

/**
 * @title AllowanceManager
 * @notice See {IAllowanceManager}.
 * @dev Cap accounting (docs/invariants.md, A1-A4): per period, `nationalAllocated <= cap - regionalCapTotal`, each
 * region's `allocated <= cap`, and the regional caps sum to `regionalCapTotal`; every mint goes through
 * {_consumeCap} first, so `allocated <= cap` whatever the path. Per token, `issued = totalSupply + surrendered`:
 * the manager mints only after adding to `issued` and burns only while adding to `surrendered`.
 */
contract AllowanceManager is IAllowanceManager, RegistryGuard {
    /// @inheritdoc IAllowanceManager
    uint256 public constant MAX_GRANTS = 500;

    /// @dev The most tokens one surrender names.
    uint256 public constant MAX_SURRENDER_TOKENS = 32;

    uint16 private constant _BPS = 10_000;
    uint32 private constant _NATIONAL = 0;

    struct Period {
        address allowance;
        uint40 openedAt;
        uint40 tradingAt;
        uint16 previous;
        uint16 next;
        uint40 reconciliationAt;
        uint40 closesAt;
        uint16 offsetShareBps;
        uint16 borrowShareBps;
        uint128 cap;
        uint128 allocated;
        uint128 regionalCapTotal;
        uint128 nationalAllocated;
    }

    struct Tally {
        uint256 surrendered;
        uint256 offsets;
        uint256 borrowed;
    }

    struct Compliance {
        uint128 surrendered;
        uint128 offsets;
        uint128 borrowed;
        uint128 shortfall;
        bool settled;
        ComplianceState settledState;
    }

    VintageTokenFactory public immutable factory;
    IRewardPenaltyCoin public immutable coin;
    IVerifiedEmissions public mrv;

    /// @inheritdoc IAllowanceManager
    uint16 public lastPeriod;

    mapping(uint16 period => Period) private _periods;
    mapping(uint16 period => mapping(uint32 region => RegionalCap)) private _regionalCaps;
    mapping(uint16 period => uint32[]) private _periodRegions;
    mapping(uint16 period => mapping(uint32 region => bool)) private _regionListed;
    mapping(address token => TokenInfo) private _tokens;
    mapping(address token => uint128) private _issued;
    mapping(uint32 projectId => OffsetProject) private _projects;
    uint32 private _projectCount;
    mapping(uint32 projectId => mapping(uint16 vintage => address)) private _offsetTokens;
    mapping(uint16 period => mapping(address enterprise => Compliance)) private _compliance;

    constructor(IConsortiumRegistry registry_, VintageTokenFactory factory_, IRewardPenaltyCoin coin_)
        RegistryGuard(registry_)
    {
        factory = factory_;
        coin = coin_;
    }

    // ---------------------------------------------------------------- periods

    /// @inheritdoc IAllowanceManager
    function openPeriod(PeriodParams calldata params, uint32[] calldata regions, uint128[] calldata regionalCaps)
        external
        returns (address allowance)
    {
        _requireRegulatorFor(_NATIONAL);
        uint16 previous = lastPeriod;
        _checkPeriodParams(params, previous);
        if (regions.length != regionalCaps.length) revert AllowancesLengthMismatch(regions.length, regionalCaps.length);
        if (regions.length > MAX_GRANTS) revert AllowancesBatchSize(regions.length, MAX_GRANTS);

        allowance = _createPeriod(params, previous);
        _setInitialRegionalCaps(params.id, params.cap, regions, regionalCaps);
    }

    /// @inheritdoc IAllowanceManager
    function setRegionalCap(uint16 period, uint32 region, uint128 cap) external {
        _requireRegulatorFor(_NATIONAL);
        Period storage p = _existing(period);
        PeriodPhase phase = _phase(p);
        if (phase == PeriodPhase.CLOSED) revert AllowancesWrongPhase(period, phase);
        if (region == _NATIONAL) revert AllowancesDuplicateRegion(region);
        RegionalCap storage rc = _regionalCaps[period][region];
        if (cap < rc.allocated) revert AllowancesRegionalCapBelowAllocated(period, region, cap, rc.allocated);
        uint256 total = p.regionalCapTotal - rc.cap + cap;
        // The national reserve's allocations stay covered: regional caps + national allocations <= cap.
        if (total + p.nationalAllocated > p.cap) {
            revert AllowancesRegionalCapsExceedCap(period, total, p.cap - p.nationalAllocated);
        }
        if (!_regionListed[period][region]) {
            _regionListed[period][region] = true;
            _periodRegions[period].push(region);
        }
        rc.cap = cap;
        p.regionalCapTotal = uint128(total);
        emit RegionalCapSet(period, region, cap);
    }

    /// @inheritdoc IAllowanceManager
    function advancePhase(uint16 period) external returns (PeriodPhase phase) {
        _requireRegulatorFor(_NATIONAL);
        Period storage p = _existing(period);
        phase = _phase(p);
        uint40 nowTs = uint40(block.timestamp);
        if (phase == PeriodPhase.OPEN) p.tradingAt = nowTs;
        else if (phase == PeriodPhase.TRADING) p.reconciliationAt = nowTs;
        else if (phase == PeriodPhase.RECONCILIATION) p.closesAt = nowTs;
        else revert AllowancesWrongPhase(period, phase);
        phase = _phase(p);
        emit PeriodPhaseAdvanced(period, phase, nowTs, msg.sender);
    }

    // ---------------------------------------------------------------- allocation

    /// @inheritdoc IAllowanceManager
    function allocate(uint16 period, uint32 region, bytes32[] calldata grants) external returns (uint256 total) {
        Period storage p = _allocatable(period);
        _requireRegulatorFor(region);
        address[] memory recipients;
        (recipients, total) = _unpackGrants(grants);
        // One call for the whole batch: reverts with RegistryIneligibleMember naming the first bad recipient.
        registry.checkMembers(recipients, Role.ENTERPRISE, region);
        _consumeCap(period, p, region, total);
        VintageToken(p.allowance).mintGrants(grants);
        emit Allocated(period, region, msg.sender, recipients.length, total, false);
    }

    /// @inheritdoc IAllowanceManager
    function allocateForSale(uint16 period, uint32 region, uint128 amount) external {
        if (amount == 0) revert AllowancesZeroAmount(0);
        Period storage p = _allocatable(period);
        _requireRegulatorFor(region);
        _consumeCap(period, p, region, amount);
        VintageToken(p.allowance).mint(msg.sender, amount);
        emit Allocated(period, region, msg.sender, 1, amount, true);
    }

    // ---------------------------------------------------------------- offsets

    /// @inheritdoc IAllowanceManager
    function registerOffsetProject(string calldata name, OffsetKind kind, uint32 region, bytes32 documentHash)
        external
        returns (uint32 projectId)
    {
        _requireRegulatorFor(region);
        projectId = ++_projectCount;
        _projects[projectId] =
            OffsetProject({exists: true, kind: kind, region: region, documentHash: documentHash, name: name});
        emit OffsetProjectRegistered(projectId, kind, region, documentHash, name);
    }

    /// @inheritdoc IAllowanceManager
    function issueOffsets(uint32 projectId, uint16 vintage, bytes32[] calldata grants) external returns (address token) {
        OffsetProject storage project = _projects[projectId];
        if (!project.exists) revert AllowancesUnknownProject(projectId);
        _requireRegulatorFor(project.region);
        (address[] memory recipients, uint256 total) = _unpackGrants(grants);
        registry.checkMembers(recipients, Role.NONE, _NATIONAL);

        token = _offsetTokens[projectId][vintage];
        if (token == address(0)) {
            token = factory.create(vintage, projectId);
            _offsetTokens[projectId][vintage] = token;
            _tokens[token] = TokenInfo({kind: TokenKind.OFFSET, vintage: vintage, projectId: projectId, surrendered: 0});
        }
        _issued[token] += uint128(total);
        VintageToken(token).mintGrants(grants);
        emit OffsetsIssued(projectId, vintage, token, recipients.length, total, msg.sender);
    }

    // ---------------------------------------------------------------- compliance

    /// @inheritdoc IAllowanceManager
    function surrender(uint16 period, address[] calldata tokens, uint256[] calldata amounts) external {
        uint256 size = tokens.length;
        if (size != amounts.length) revert AllowancesLengthMismatch(size, amounts.length);
        if (size == 0 || size > MAX_SURRENDER_TOKENS) revert AllowancesBatchSize(size, MAX_SURRENDER_TOKENS);
        Period storage p = _existing(period);
        PeriodPhase phase = _phase(p);
        if (phase != PeriodPhase.RECONCILIATION) revert AllowancesWrongPhase(period, phase);
        _requireRole(msg.sender, Role.ENTERPRISE);
        (bool audited, uint128 verified) = _verified(period, msg.sender);
        if (!audited) revert AllowancesNotVerified(period, msg.sender);

        Compliance storage c = _compliance[period][msg.sender];
        Tally memory tally = Tally(c.surrendered, c.offsets, c.borrowed);
        uint16 next = p.next;
        for (uint256 i; i < size; ++i) {
            if (amounts[i] == 0) revert AllowancesZeroAmount(i);
            _surrenderOne(period, next, tokens[i], amounts[i], tally);
        }
        uint256 offsetLimit = uint256(verified) * p.offsetShareBps / _BPS;
        if (tally.offsets > offsetLimit) {
            revert AllowancesOffsetLimitExceeded(period, msg.sender, offsetLimit, tally.offsets);
        }
        uint256 borrowLimit = uint256(verified) * p.borrowShareBps / _BPS;
        if (tally.borrowed > borrowLimit) {
            revert AllowancesBorrowLimitExceeded(period, msg.sender, borrowLimit, tally.borrowed);
        }
        if (tally.surrendered > verified) {
            revert AllowancesSurrenderExceedsEmissions(period, msg.sender, verified, tally.surrendered);
        }
        c.surrendered = uint128(tally.surrendered);
        c.offsets = uint128(tally.offsets);
        c.borrowed = uint128(tally.borrowed);
    }

    /// @inheritdoc IAllowanceManager
    function settle(uint16 period, address[] calldata enterprises) external {
        uint32 callerRegion = _callerRegulatorRegion();
        uint256 size = enterprises.length;
        if (size == 0 || size > MAX_GRANTS) revert AllowancesBatchSize(size, MAX_GRANTS);
        Period storage p = _existing(period);
        PeriodPhase phase = _phase(p);
        if (phase != PeriodPhase.CLOSED) revert AllowancesWrongPhase(period, phase);
        bool penaliseShort = coin.rule(REASON_SHORT_SURRENDER).exists;
        bool penaliseUnreported = coin.rule(REASON_UNREPORTED).exists;
        for (uint256 i; i < size; ++i) {
            _requireSubject(period, p.closesAt, enterprises[i], callerRegion);
            _settleOne(period, enterprises[i], penaliseShort, penaliseUnreported);
        }
    }

    /// @inheritdoc IAllowanceManager
    function setMrv(address mrv_) external {
        _requireRegulatorFor(_NATIONAL);
        if (address(mrv) != address(0)) revert AllowancesMrvAlreadySet(address(mrv));
        mrv = IVerifiedEmissions(mrv_);
        emit MrvSet(mrv_);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IAllowanceManager
    function getPeriod(uint16 period) external view returns (PeriodInfo memory info) {
        Period storage p = _periods[period];
        info = PeriodInfo({
            id: period,
            phase: _phase(p),
            allowance: p.allowance,
            openedAt: p.openedAt,
            tradingAt: p.tradingAt,
            reconciliationAt: p.reconciliationAt,
            closesAt: p.closesAt,
            offsetShareBps: p.offsetShareBps,
            borrowShareBps: p.borrowShareBps,
            previous: p.previous,
            next: p.next,
            cap: p.cap,
            allocated: p.allocated,
            regionalCapTotal: p.regionalCapTotal,
            nationalAllocated: p.nationalAllocated,
            surrendered: _tokens[p.allowance].surrendered
        });
    }

    /// @inheritdoc IAllowanceManager
    function phaseOf(uint16 period) external view returns (PeriodPhase) {
        return _phase(_periods[period]);
    }

    /// @inheritdoc IAllowanceManager
    function regionalCap(uint16 period, uint32 region) external view returns (RegionalCap memory) {
        return _regionalCaps[period][region];
    }

    /// @inheritdoc IAllowanceManager
    function periodRegions(uint16 period) external view returns (uint32[] memory) {
        return _periodRegions[period];
    }

    /// @inheritdoc IAllowanceManager
    function tokenInfo(address token) external view returns (TokenInfo memory) {
        return _tokens[token];
    }

    /// @notice Everything minted into `token`: issued = totalSupply + surrendered (docs/invariants.md).
    function issuedOf(address token) external view returns (uint256) {
        TokenInfo storage info = _tokens[token];
        return info.kind == TokenKind.ALLOWANCE ? _periods[info.vintage].allocated : _issued[token];
    }

    /// @inheritdoc IAllowanceManager
    function offsetProject(uint32 projectId) external view returns (OffsetProject memory) {
        return _projects[projectId];
    }

    /// @inheritdoc IAllowanceManager
    function offsetProjectCount() external view returns (uint32) {
        return _projectCount;
    }

    /// @inheritdoc IAllowanceManager
    function offsetToken(uint32 projectId, uint16 vintage) external view returns (address) {
        return _offsetTokens[projectId][vintage];
    }

    /// @inheritdoc IAllowanceManager
    function complianceOf(uint16 period, address enterprise) public view returns (ComplianceStatus memory status) {
        Period storage p = _periods[period];
        Compliance storage c = _compliance[period][enterprise];
        status.phase = _phase(p);
        (status.verified, status.verifiedEmissions) = _verified(period, enterprise);
        status.surrendered = c.surrendered;
        status.offsets = c.offsets;
        status.borrowed = c.borrowed;
        status.settled = c.settled;
        status.offsetLimit = uint128(uint256(status.verifiedEmissions) * p.offsetShareBps / _BPS);
        status.borrowLimit = uint128(uint256(status.verifiedEmissions) * p.borrowShareBps / _BPS);
        if (c.settled) {
            status.state = c.settledState;
            status.shortfall = c.shortfall;
        } else if (!status.verified) {
            status.state = status.phase == PeriodPhase.CLOSED ? ComplianceState.UNREPORTED : ComplianceState.NOT_VERIFIED;
        } else if (status.surrendered >= status.verifiedEmissions) {
            status.state = ComplianceState.COMPLIANT;
        } else if (status.phase == PeriodPhase.CLOSED) {
            status.state = ComplianceState.SHORTFALL;
            status.shortfall = status.verifiedEmissions - status.surrendered;
        } else {
            status.state = ComplianceState.DUE;
        }
    }

    /// @inheritdoc IAllowanceManager
    function complianceOfMany(uint16 period, address[] calldata enterprises)
        external
        view
        returns (ComplianceStatus[] memory statuses)
    {
        statuses = new ComplianceStatus[](enterprises.length);
        for (uint256 i; i < enterprises.length; ++i) {
            statuses[i] = complianceOf(period, enterprises[i]);
        }
    }

    // ---------------------------------------------------------------- internals

    /// @dev Checks that `token` may be surrendered for `period`, adds `amount` to the tally, burns it.
    function _surrenderOne(uint16 period, uint16 next, address token, uint256 amount, Tally memory tally) private {
        TokenInfo storage info = _tokens[token];
        TokenKind kind = info.kind;
        uint16 vintage = info.vintage;
        if (kind == TokenKind.ALLOWANCE) {
            // Banking: own or earlier vintages. Borrowing: the next period's vintage only.
            if (vintage > period) {
                if (vintage != next) revert AllowancesIneligibleVintage(token, vintage, period);
                tally.borrowed += amount;
            }
        } else if (kind == TokenKind.OFFSET) {
            if (vintage > period) revert AllowancesIneligibleVintage(token, vintage, period);
            tally.offsets += amount;
        } else {
            revert AllowancesUnknownToken(token);
        }
        tally.surrendered += amount;
        info.surrendered += uint128(amount);
        // Reverts with ERC20InsufficientBalance if the caller holds less.
        VintageToken(token).burnFrom(msg.sender, amount);
        emit Surrendered(period, msg.sender, token, kind, vintage, amount);
    }

    function _createPeriod(PeriodParams calldata params, uint16 previous) private returns (address allowance) {
        uint16 id = params.id;
        allowance = factory.create(id, 0);
        Period storage p = _periods[id];
        p.allowance = allowance;
        p.openedAt = uint40(block.timestamp);
        p.tradingAt = params.tradingAt;
        p.reconciliationAt = params.reconciliationAt;
        p.closesAt = params.closesAt;
        p.offsetShareBps = params.offsetShareBps;
        p.borrowShareBps = params.borrowShareBps;
        p.cap = params.cap;
        p.previous = previous;
        if (previous != 0) _periods[previous].next = id;
        lastPeriod = id;
        _tokens[allowance] = TokenInfo({kind: TokenKind.ALLOWANCE, vintage: id, projectId: 0, surrendered: 0});
        emit PeriodOpened(
            id,
            allowance,
            params.cap,
            params.tradingAt,
            params.reconciliationAt,
            params.closesAt,
            params.offsetShareBps,
            params.borrowShareBps
        );
    }

    function _setInitialRegionalCaps(uint16 id, uint128 cap, uint32[] calldata regions, uint128[] calldata caps)
        private
    {
        uint256 regionalTotal;
        for (uint256 i; i < regions.length; ++i) {
            uint32 region = regions[i];
            if (region == _NATIONAL || _regionalCaps[id][region].cap != 0) revert AllowancesDuplicateRegion(region);
            if (caps[i] == 0) revert AllowancesZeroAmount(i);
            _regionalCaps[id][region].cap = caps[i];
            _periodRegions[id].push(region);
            _regionListed[id][region] = true;
            regionalTotal += caps[i];
            emit RegionalCapSet(id, region, caps[i]);
        }
        if (regionalTotal > cap) revert AllowancesRegionalCapsExceedCap(id, regionalTotal, cap);
        _periods[id].regionalCapTotal = uint128(regionalTotal);
    }

    /// @dev The recipients and total of a batch of packed grants (recipient << 96 | amount): 1 to MAX_GRANTS
    /// grants, none of zero amount.
    function _unpackGrants(bytes32[] calldata grants)
        private
        pure
        returns (address[] memory recipients, uint256 total)
    {
        uint256 size = grants.length;
        if (size == 0 || size > MAX_GRANTS) revert AllowancesBatchSize(size, MAX_GRANTS);
        recipients = new address[](size);
        for (uint256 i; i < size; ++i) {
            uint256 grant = uint256(grants[i]);
            uint256 amount = uint96(grant);
            if (amount == 0) revert AllowancesZeroAmount(i);
            recipients[i] = address(uint160(grant >> 96));
            total += amount;
        }
    }

    function _checkPeriodParams(PeriodParams calldata params, uint16 previous) private view {
        if (params.id <= previous) revert AllowancesPeriodOrder(params.id, previous);
        if (params.cap == 0) revert AllowancesZeroCap();
        uint40 nowTs = uint40(block.timestamp);
        if (
            params.tradingAt < nowTs || params.reconciliationAt < params.tradingAt
                || params.closesAt < params.reconciliationAt || params.closesAt <= nowTs
        ) revert AllowancesInvalidSchedule(nowTs, params.tradingAt, params.reconciliationAt, params.closesAt);
        if (params.offsetShareBps > _BPS) revert AllowancesInvalidShare(params.offsetShareBps);
        if (params.borrowShareBps > _BPS) revert AllowancesInvalidShare(params.borrowShareBps);
    }

    /// @dev Records one enterprise's outcome; the coin's audit key is (this contract, period, enterprise).
    function _settleOne(uint16 period, address enterprise, bool penaliseShort, bool penaliseUnreported) private {
        Compliance storage c = _compliance[period][enterprise];
        if (c.settled) revert AllowancesAlreadySettled(period, enterprise);
        c.settled = true;
        (bool audited, uint128 verified) = _verified(period, enterprise);
        uint128 surrendered = c.surrendered;
        bytes32 auditKey = keccak256(abi.encode(address(this), period, enterprise));
        bytes32 evidence = keccak256(abi.encode(period, enterprise, audited, verified, surrendered));
        ComplianceState state = ComplianceState.COMPLIANT;
        uint128 shortfall;
        if (!audited) {
            state = ComplianceState.UNREPORTED;
            if (penaliseUnreported) coin.applyRule(enterprise, REASON_UNREPORTED, 0, auditKey, evidence);
        } else if (surrendered < verified) {
            state = ComplianceState.SHORTFALL;
            shortfall = verified - surrendered;
            c.shortfall = shortfall;
            if (penaliseShort) coin.applyRule(enterprise, REASON_SHORT_SURRENDER, shortfall, auditKey, evidence);
        }
        c.settledState = state;
        emit ComplianceSettled(period, enterprise, state, verified, surrendered, shortfall);
    }

    function _phase(Period storage p) private view returns (PeriodPhase) {
        if (p.allowance == address(0)) return PeriodPhase.NONE;
        uint256 ts = block.timestamp;
        if (ts < p.tradingAt) return PeriodPhase.OPEN;
        if (ts < p.reconciliationAt) return PeriodPhase.TRADING;
        if (ts < p.closesAt) return PeriodPhase.RECONCILIATION;
        return PeriodPhase.CLOSED;
    }

    function _existing(uint16 period) private view returns (Period storage p) {
        p = _periods[period];
        if (p.allowance == address(0)) revert AllowancesUnknownPeriod(period);
    }

    /// @dev The period, if allocation is open (OPEN or TRADING).
    function _allocatable(uint16 period) private view returns (Period storage p) {
        p = _existing(period);
        PeriodPhase phase = _phase(p);
        if (phase != PeriodPhase.OPEN && phase != PeriodPhase.TRADING) revert AllowancesWrongPhase(period, phase);
    }

    /// @dev Takes `amount` from `region`'s cap (0: the national reserve) or reverts with AllowancesCapExceeded.
    function _consumeCap(uint16 period, Period storage p, uint32 region, uint256 amount) private {
        if (region == _NATIONAL) {
            uint256 available = p.cap - p.regionalCapTotal - p.nationalAllocated;
            if (amount > available) revert AllowancesCapExceeded(period, region, available, amount);
            p.nationalAllocated += uint128(amount);
        } else {
            RegionalCap storage rc = _regionalCaps[period][region];
            uint256 available = rc.cap - rc.allocated;
            if (amount > available) revert AllowancesCapExceeded(period, region, available, amount);
            rc.allocated += uint128(amount);
        }
        p.allocated += uint128(amount);
    }

    /// @dev Reverts unless the caller is an active REGULATOR, national or of `region`.
    function _requireRegulatorFor(uint32 region) private view {
        uint32 callerRegion = _callerRegulatorRegion();
        if (callerRegion != _NATIONAL && callerRegion != region) revert AllowancesRegionMismatch(callerRegion, region);
    }

    /// @dev The caller's region; reverts unless the caller is an active REGULATOR.
    function _callerRegulatorRegion() private view returns (uint32 region) {
        bool isRegulator;
        (isRegulator, region) = _regulatorRegion(msg.sender);
        if (!isRegulator) revert GuardMissingRole(msg.sender, Role.REGULATOR);
    }

    /// @dev `account` is subject to `period`'s compliance: an ENTERPRISE member (in any status) enrolled by
    /// the deadline, within the settling regulator's region.
    function _requireSubject(uint16 period, uint40 closesAt, address account, uint32 callerRegion) private view {
        Member memory member = registry.getMember(account);
        if (member.role != Role.ENTERPRISE || member.enrolledAt > closesAt) {
            revert AllowancesNotSubject(period, account);
        }
        if (callerRegion != _NATIONAL && callerRegion != member.region) {
            revert AllowancesRegionMismatch(callerRegion, member.region);
        }
    }

    function _verified(uint16 period, address enterprise) private view returns (bool, uint128) {
        if (address(mrv) == address(0)) return (false, 0);
        return mrv.verifiedEmissions(period, enterprise);
    }
}
