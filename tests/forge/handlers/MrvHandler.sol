// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {CheatBase, Vm} from "../lib/Cheats.sol";
import {RewardPenaltyCoin} from "../../../contracts/coin/RewardPenaltyCoin.sol";
import {AllowanceManager} from "../../../contracts/allowances/AllowanceManager.sol";
import {EmissionsMRV} from "../../../contracts/mrv/EmissionsMRV.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAllowanceManager, PeriodParams} from "../../../contracts/interfaces/IAllowanceManager.sol";
import {ReportStatus} from "../../../contracts/interfaces/IEmissionsMRV.sol";
import {RuleOutcome} from "../../../contracts/interfaces/IRewardPenaltyCoin.sol";

/// @notice Drives reports, reviews and audits (EmissionsMRV) with the default coin rules, and surrenders of allowances
/// against the audited emissions (AllowanceManager), and mirrors every report's status and every audit's final
/// quantity, so the invariants can check that the contract changed them only through these calls (M1, M3), that
/// the coin's supply moved only by the rules an audit applied (C1), and that no surrender exceeded the verified
/// emissions (A4). Each period the handler opens is allocated while TRADING and then moved to RECONCILIATION;
/// once every enterprise of the newest period has reported, the next submission opens the next period, so
/// audits never run out.
contract MrvHandler is CheatBase {
    RewardPenaltyCoin public immutable coin;
    AllowanceManager public immutable manager;
    EmissionsMRV public immutable mrv;
    address public immutable regulator;

    uint256 internal constant TONNE = 1e6; // grams
    uint256 internal constant BPS = 10_000;
    bytes32 internal constant RULE_APPLIED_TOPIC =
        keccak256("RuleApplied(address,uint8,bytes32,(uint256,uint256,uint256,uint256,int256,bytes32,address))");

    address[] public enterprises;
    address[] public verifiers; // one verification organisation: never the enterprises' own
    uint16[] public periods; // opened by the fixture or the handler, oldest first

    // Ghost mirror of the MRV state.
    mapping(uint16 period => mapping(address enterprise => uint16)) public ghostVersion;
    mapping(uint16 period => mapping(address enterprise => ReportStatus)) public ghostStatus;
    mapping(uint16 period => mapping(address enterprise => uint128)) public ghostCo2e;
    mapping(uint16 period => mapping(address enterprise => uint128)) public ghostVerifiedQuantity; // endorsement
    mapping(uint16 period => mapping(address enterprise => address)) public ghostVerifier;
    mapping(uint16 period => mapping(address enterprise => bool)) public ghostAudited;
    mapping(uint16 period => mapping(address enterprise => uint128)) public ghostFinal;
    mapping(address enterprise => uint16) internal _lastAuditedPeriod;
    mapping(address enterprise => uint128) internal _lastAuditedQuantity;

    mapping(uint16 period => uint256) public ghostAllocated; // allowances the handler allocated
    mapping(uint16 period => uint256) public ghostSurrendered; // and the enterprises surrendered
    uint256 public ghostSurrenderViolations; // a surrender above verified emissions went through (A4)
    uint256 public ghostCoinSupplyDrift; // supply changes outside the rules an audit applied
    uint256 public ghostRuleMismatches; // an audit applied other rules (or amounts) than the model expects
    uint256 private _nonce;

    constructor(
        RewardPenaltyCoin coin_,
        AllowanceManager manager_,
        EmissionsMRV mrv_,
        address regulator_,
        address[] memory enterprises_,
        address[] memory verifiers_,
        uint16 firstPeriod
    ) {
        coin = coin_;
        manager = manager_;
        mrv = mrv_;
        regulator = regulator_;
        enterprises = enterprises_;
        verifiers = verifiers_;
        periods.push(firstPeriod); // opened by the fixture, without allocations
        _openNextPeriod(uint256(keccak256("first allocations")));
    }

    // ------------------------------------------------------------------ views for the invariants

    function periodCount() external view returns (uint256) {
        return periods.length;
    }

    function enterpriseCount() external view returns (uint256) {
        return enterprises.length;
    }

    function verifierCount() external view returns (uint256) {
        return verifiers.length;
    }

    // ------------------------------------------------------------------ helpers

    modifier coinSupplyFrozen() {
        uint256 before = coin.totalSupply();
        _;
        if (coin.totalSupply() != before) ++ghostCoinSupplyDrift;
    }

    function _hash(string memory what) internal returns (bytes32) {
        return keccak256(abi.encode(what, ++_nonce));
    }

    /// @dev The first (period, enterprise) from `seed` on whose latest report has status `status` (NONE: no
    /// report yet), newest period first; found = false if there is none.
    function _find(uint256 seed, ReportStatus status) internal view returns (bool found, uint16 period, address who) {
        uint256 n = enterprises.length;
        for (uint256 p = periods.length; p > 0; --p) {
            period = periods[p - 1];
            for (uint256 i; i < n; ++i) {
                who = enterprises[(seed % n + i) % n];
                if (ghostStatus[period][who] == status) return (true, period, who);
            }
        }
    }

    /// @dev `x` moved by up to `maxBps` either way, by `seed`.
    function _perturb(uint256 x, uint256 seed, uint256 maxBps) internal pure returns (uint128) {
        uint256 bps = bound(seed, 0, 2 * maxBps);
        return uint128(x * (BPS - maxBps + bps) / BPS);
    }

    function _within(uint256 value, uint256 reference_) internal view returns (bool) {
        return _gap(value, reference_) * BPS <= uint256(mrv.toleranceBps()) * reference_;
    }

    // ------------------------------------------------------------------ actions

    /// @dev An audited enterprise surrenders allowances of the audited period, up to its verified emissions (A4);
    /// one call in four first tries one unit more than that, which must be refused.
    function surrender(uint256 seed, uint256 amount) external coinSupplyFrozen {
        (bool found, uint16 period, address who) = _find(seed, ReportStatus.AUDITED);
        if (!found) return;
        IERC20 allowance = IERC20(manager.getPeriod(period).allowance);
        uint256 balance = allowance.balanceOf(who);
        uint256 room = ghostFinal[period][who] - manager.complianceOf(period, who).surrendered;
        address[] memory tokens = new address[](1);
        tokens[0] = address(allowance);
        uint256[] memory amounts = new uint256[](1);
        if (seed % 4 == 0 && balance > room) {
            amounts[0] = room + 1;
            vm.prank(who);
            try manager.surrender(period, tokens, amounts) {
                ++ghostSurrenderViolations;
            } catch (bytes memory reason) {
                if (bytes4(reason) != IAllowanceManager.AllowancesSurrenderExceedsEmissions.selector) ++ghostSurrenderViolations;
            }
        }
        uint256 most = balance < room ? balance : room;
        if (most == 0) return;
        amounts[0] = bound(amount, 1, most);
        vm.prank(who);
        manager.surrender(period, tokens, amounts);
        ghostSurrendered[period] += amounts[0];
    }

    /// @dev An enterprise submits (or, after a dispute, resubmits) its report for a period in reconciliation.
    function submitReport(uint256 seed, uint256 tonnes) external coinSupplyFrozen {
        (bool found, uint16 period, address who) = _find(seed, ReportStatus.NONE);
        if (!found) (found, period, who) = _find(seed, ReportStatus.DISPUTED);
        if (!found) {
            period = _openNextPeriod(tonnes);
            who = enterprises[seed % enterprises.length];
        }
        uint256[] memory quantities = new uint256[](1); // the default table has one gas, CO2 (GWP 1)
        quantities[0] = bound(tonnes, 1, 100_000) * TONNE + seed % TONNE;
        vm.prank(who);
        (uint16 version, uint128 co2e) =
            mrv.submitReport(period, 1, quantities, _hash("readings"), _hash("report"));
        if (version != ghostVersion[period][who] + 1) ++ghostRuleMismatches; // M1: versions are consecutive
        ghostVersion[period][who] = version;
        ghostStatus[period][who] = ReportStatus.SUBMITTED;
        ghostCo2e[period][who] = co2e;
    }

    /// @dev A verifier of the other organisation endorses a pending report with its own quantity (within 10 %).
    function endorse(uint256 seed, uint256 deviation) external coinSupplyFrozen {
        (bool found, uint16 period, address who) = _find(seed, ReportStatus.SUBMITTED);
        if (!found) return;
        address verifier = verifiers[seed % verifiers.length];
        uint128 quantity = _perturb(ghostCo2e[period][who], deviation, 1_000);
        uint16 version = ghostVersion[period][who];
        vm.prank(verifier);
        mrv.endorse(period, who, version, quantity, _hash("endorsement"));
        ghostStatus[period][who] = ReportStatus.ENDORSED;
        ghostVerifiedQuantity[period][who] = quantity;
        ghostVerifier[period][who] = verifier;
    }

    /// @dev A verifier disputes a pending report (one call in three, so most reports reach an audit).
    function dispute(uint256 seed) external coinSupplyFrozen {
        if (seed % 3 != 0) return;
        (bool found, uint16 period, address who) = _find(seed / 3, ReportStatus.SUBMITTED);
        if (!found) return;
        uint16 version = ghostVersion[period][who];
        vm.prank(verifiers[seed % verifiers.length]);
        mrv.dispute(period, who, version, _hash("dispute"));
        ghostStatus[period][who] = ReportStatus.DISPUTED;
    }

    /// @dev The regulator audits an endorsed report, with or without its own finding; the coin rules it applies
    /// are read from the RuleApplied events and compared with the model (M3, C1).
    function audit(uint256 seed, bool withFinding, uint256 deviation) external {
        (bool found, uint16 period, address who) = _find(seed, ReportStatus.ENDORSED);
        if (!found) return;
        uint128 verified = ghostVerifiedQuantity[period][who];
        uint128 finding = _perturb(verified, deviation, 1_000);
        uint128 finalQuantity = withFinding ? finding : verified;
        uint256 supplyBefore = coin.totalSupply();
        vm.recordLogs();
        vm.prank(regulator);
        mrv.audit(period, who, withFinding, finding, _hash("audit"));
        int256 booked = _checkRules(period, who, withFinding, finalQuantity);
        if (int256(coin.totalSupply()) - int256(supplyBefore) != booked) ++ghostCoinSupplyDrift;
        ghostStatus[period][who] = ReportStatus.AUDITED;
        ghostAudited[period][who] = true;
        ghostFinal[period][who] = finalQuantity;
    }

    /// @dev Compares the audit's RuleApplied events with the rules it should apply (EmissionsMRV._applyOutcome),
    /// and returns what they minted minus what they burned.
    function _checkRules(uint16 period, address who, bool withFinding, uint128 finalQuantity)
        internal
        returns (int256 booked)
    {
        uint128 co2e = ghostCo2e[period][who];
        uint128 verified = ghostVerifiedQuantity[period][who];
        // Expected (subject, reason, quantity), at most three.
        address[3] memory subjects;
        uint8[3] memory reasons;
        uint256[3] memory quantities;
        uint256 expected;
        if (_within(co2e, finalQuantity)) (subjects[0], reasons[0], quantities[0]) = (who, 1, finalQuantity);
        else (subjects[0], reasons[0], quantities[0]) = (who, 3, _gap(co2e, finalQuantity));
        expected = 1;
        if (_lastAuditedPeriod[who] < period) {
            if (_lastAuditedPeriod[who] != 0 && finalQuantity < _lastAuditedQuantity[who]) {
                (subjects[expected], reasons[expected], quantities[expected]) =
                    (who, 2, _lastAuditedQuantity[who] - finalQuantity);
                ++expected;
            }
            _lastAuditedPeriod[who] = period;
            _lastAuditedQuantity[who] = finalQuantity;
        }
        if (withFinding && !_within(verified, finalQuantity)) {
            (subjects[expected], reasons[expected], quantities[expected]) =
                (ghostVerifier[period][who], 5, _gap(verified, finalQuantity));
            ++expected;
        }

        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 seen;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(coin) || logs[i].topics[0] != RULE_APPLIED_TOPIC) continue;
            RuleOutcome memory outcome = abi.decode(logs[i].data, (RuleOutcome));
            address subject = address(uint160(uint256(logs[i].topics[1])));
            uint8 reason = uint8(uint256(logs[i].topics[2]));
            if (
                seen >= expected || subject != subjects[seen] || reason != reasons[seen]
                    || outcome.quantity != quantities[seen] || outcome.amount != coin.ruleAmount(reason, quantities[seen])
                    || outcome.minted + outcome.burned > outcome.amount
            ) ++ghostRuleMismatches;
            booked += int256(outcome.minted) - int256(outcome.burned);
            ++seen;
        }
        if (seen != expected) ++ghostRuleMismatches;
    }

    function _gap(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a - b : b - a;
    }

    /// @dev Opens the next period, allocates each enterprise up to 50,000 t of it while it is TRADING (allocation
    /// is refused later), and moves it to RECONCILIATION at once (advancePhase), where reports are accepted.
    function _openNextPeriod(uint256 seed) internal returns (uint16 period) {
        period = periods[periods.length - 1] + 1;
        vm.startPrank(regulator);
        manager.openPeriod(
            PeriodParams({
                id: period,
                cap: uint128(1_000_000 * TONNE),
                tradingAt: uint40(block.timestamp),
                reconciliationAt: uint40(block.timestamp + 1 days),
                closesAt: uint40(block.timestamp + 365 days),
                offsetShareBps: 500,
                borrowShareBps: 0
            }),
            new uint32[](0),
            new uint128[](0)
        );
        uint256 n = enterprises.length;
        bytes32[] memory grants = new bytes32[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            uint256 amount = bound(uint256(keccak256(abi.encode(seed, i))), 1, 50_000) * TONNE;
            grants[i] = bytes32(uint256(uint160(enterprises[i])) << 96 | amount);
            total += amount;
        }
        manager.allocate(period, 0, grants);
        manager.advancePhase(period);
        vm.stopPrank();
        ghostAllocated[period] += total;
        periods.push(period);
    }
}
