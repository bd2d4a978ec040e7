// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {CoreSystem} from "./lib/CoreSystem.sol";
import {MrvHandler} from "./handlers/MrvHandler.sol";
import {CreditsHandler} from "./handlers/CreditsHandler.sol";
import {Role} from "../../contracts/interfaces/IConsortiumRegistry.sol";
import {SettlementToken} from "../../contracts/settlement/SettlementToken.sol";
import {PeriodParams, PeriodInfo} from "../../contracts/interfaces/IAllowanceManager.sol";
import {CreditManager} from "../../contracts/credits/CreditManager.sol";
import {CreditBatch} from "../../contracts/interfaces/ICreditManager.sol";

/// @notice The part of carbon_sdk/deploy.py these campaigns need (registry, settlement token, coin with the
/// SDK's default rules, allowances, MRV, CreditManager), wired the same way, plus the members they act as: a
/// platform organisation (two platforms, enterprises, individuals, merchants) and a separate verification
/// organisation, so its verifiers may review the enterprises (M4).
abstract contract CreditsFixture is CoreSystem {
    CreditManager internal credits;

    uint16 internal constant PERIOD = 2025;
    uint256 internal constant PCC = 1e6;
    address internal verifierAdmin = vm.addr(0xFEED);
    address[] internal platforms;
    address[] internal enterprises;
    address[] internal verifiers;
    address[] internal merchants;
    uint256[] internal individualKeys;
    uint16[] internal creditPeriods;
    uint32[] internal projects;

    function _deploySystem() internal {
        _deployCore();
        credits = new CreditManager(registry, settlement);
        vm.startPrank(regulator);
        registry.registerSystemContract(address(credits), keccak256("personal credit desks"));
        uint16 roles = uint16(
            1 << uint8(Role.ENTERPRISE) | 1 << uint8(Role.PLATFORM) | 1 << uint8(Role.INDIVIDUAL)
                | 1 << uint8(Role.MERCHANT)
        );
        registry.registerOrganisation("Industry", platform, Role.PLATFORM, 0, roles, keccak256("platform"));
        registry.registerOrganisation(
            "Verifiers", verifierAdmin, Role.VERIFIER, 0, uint16(1 << uint8(Role.VERIFIER)), keccak256("verifiers")
        );
        // Reporting happens in RECONCILIATION: the first period is opened there directly.
        manager.openPeriod(
            PeriodParams({
                id: PERIOD,
                cap: uint128(1_000_000 * PCC),
                tradingAt: uint40(block.timestamp),
                reconciliationAt: uint40(block.timestamp),
                closesAt: uint40(block.timestamp + 365 days),
                offsetShareBps: 500,
                borrowShareBps: 0
            }),
            new uint32[](0),
            new uint128[](0)
        );
        vm.stopPrank();

        verifiers.push(verifierAdmin);
        vm.startPrank(verifierAdmin);
        for (uint256 i; i < 2; ++i) {
            address v = vm.addr(0xE000 + i + 1);
            registry.enrol(v, Role.VERIFIER, 0, keccak256(abi.encode("verifier", i)));
            verifiers.push(v);
        }
        vm.stopPrank();

        platforms.push(platform);
        vm.startPrank(platform);
        address second = vm.addr(0xF00E);
        registry.enrol(second, Role.PLATFORM, 0, keccak256("second platform"));
        platforms.push(second);
        for (uint256 i; i < 4; ++i) {
            address e = vm.addr(0xA000 + i + 1);
            registry.enrol(e, Role.ENTERPRISE, 0, keccak256(abi.encode("enterprise", i)));
            enterprises.push(e);
        }
        for (uint256 i; i < 6; ++i) {
            uint256 key = 0xC000 + i + 1;
            registry.enrol(vm.addr(key), Role.INDIVIDUAL, 0, keccak256(abi.encode("individual", i)));
            individualKeys.push(key);
        }
        for (uint256 i; i < 2; ++i) {
            address m = vm.addr(0xD000 + i + 1);
            registry.enrol(m, Role.MERCHANT, 0, keccak256(abi.encode("merchant", i)));
            merchants.push(m);
        }
        vm.stopPrank();

        // Credits: a methodology, two periods with quotas, offset ratios and ceilings, one welfare project.
        creditPeriods.push(PERIOD);
        creditPeriods.push(PERIOD + 1);
        projects.push(1);
        projects.push(2);
        vm.startPrank(regulator);
        credits.registerMethodology(1, keccak256("methodology v1"), "ipfs://methodology-v1");
        for (uint256 p; p < creditPeriods.length; ++p) {
            credits.setQuota(creditPeriods[p], 0, uint128(5 * PCC));
            credits.setOffsetRatio(creditPeriods[p], 5_000);
            for (uint256 i; i < platforms.length; ++i) {
                credits.setIssuanceCeiling(creditPeriods[p], platforms[i], uint128(2_000 * PCC));
            }
        }
        credits.registerProject(1, vm.addr(0xB001), 0, "Trees");
        credits.registerProject(2, vm.addr(0xB002), 0, "Wetlands");
        vm.stopPrank();

        // Desks: posted prices, merchant rates and settlement allowances for the credit manager (it pays as an
        // approved spender, P4).
        for (uint256 i; i < platforms.length; ++i) {
            vm.startPrank(platforms[i]);
            credits.postPrices(uint128(40_00 + 5_00 * i), uint128(50_00 + 5_00 * i));
            for (uint256 m; m < merchants.length; ++m) credits.setMerchantRate(merchants[m], uint128(30_00));
            settlement.approve(address(credits), type(uint256).max);
            vm.stopPrank();
        }
        for (uint256 i; i < individualKeys.length; ++i) {
            vm.prank(vm.addr(individualKeys[i]));
            settlement.approve(address(credits), type(uint256).max);
        }
    }
}

/// @notice MRV (docs/invariants.md M1, M3, C1, C3) and compliance (A1, A4): reports, reviews, audits,
/// allocations and surrenders in random order.
/// Its checks scan every period opened so far, so a call costs more as a run deepens: `make fuzz` (depth 800)
/// runs it 20 times (48,000 calls) rather than the profile's 200.
/// forge-config: deep.invariant.runs = 20
contract MrvInvariants is CreditsFixture {
    MrvHandler internal handler;

    function setUp() public {
        _deploySystem();
        handler = new MrvHandler(coin, manager, mrv, regulator, enterprises, verifiers, PERIOD);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// M1, M3: every report's latest version and status, and every audited quantity, are exactly what the
    /// handler's submissions, reviews and audits made them; nothing else sets verified emissions.
    function invariant_verifiedEmissionsOnlyThroughReviewAndAudit() public view {
        uint256 periods = handler.periodCount();
        uint256 n = handler.enterpriseCount();
        for (uint256 p; p < periods; ++p) {
            uint16 period = handler.periods(p);
            for (uint256 i; i < n; ++i) {
                address e = handler.enterprises(i);
                uint16 version = mrv.reportCount(period, e);
                assertEq(version, handler.ghostVersion(period, e), "report version moved outside submitReport");
                if (version != 0) {
                    assertEq(
                        uint256(mrv.getReport(period, e, version).status),
                        uint256(handler.ghostStatus(period, e)),
                        "report status moved outside a review or audit"
                    );
                }
                (bool done, uint128 verified) = mrv.verifiedEmissions(period, e);
                assertEq(done ? 1 : 0, handler.ghostAudited(period, e) ? 1 : 0, "audit flag set outside audit");
                assertEq(verified, handler.ghostFinal(period, e), "verified emissions set outside audit");
            }
        }
    }

    /// A1, A4: each period's allowances issued = circulating + surrendered, exactly what the handler allocated and
    /// surrendered; no enterprise surrendered more than its verified emissions.
    function invariant_surrenderWithinVerifiedEmissions() public view {
        assertEq(handler.ghostSurrenderViolations(), 0, "a surrender above verified emissions went through");
        uint256 periods = handler.periodCount();
        uint256 n = handler.enterpriseCount();
        for (uint256 q; q < periods; ++q) {
            uint16 period = handler.periods(q);
            PeriodInfo memory p = manager.getPeriod(period);
            assertEq(p.allocated, handler.ghostAllocated(period), "allocated != the handler's allocations");
            assertEq(p.surrendered, handler.ghostSurrendered(period), "surrendered != the handler's surrenders");
            assertEq(p.allocated, SettlementToken(p.allowance).totalSupply() + p.surrendered, "issued != supply + surrendered");
            for (uint256 i; i < n; ++i) {
                address e = handler.enterprises(i);
                (, uint128 verified) = mrv.verifiedEmissions(period, e);
                assertLe(manager.complianceOf(period, e).surrendered, verified, "surrendered above verified emissions");
            }
        }
    }

    /// C1, C3: the coin's supply moves only by the rules an audit applies (those the model expects, with the
    /// rule's amount), it equals the sum of balances, and total debt the sum of debts.
    function invariant_coinSupplyOnlyThroughAuditRules() public view {
        assertEq(handler.ghostCoinSupplyDrift(), 0, "coin supply moved outside the rules");
        assertEq(handler.ghostRuleMismatches(), 0, "an audit applied other coin rules than expected");
        uint256 balances;
        uint256 debts;
        uint256 n = handler.enterpriseCount();
        for (uint256 i; i < n; ++i) {
            balances += coin.balanceOf(handler.enterprises(i));
            debts += coin.debtOf(handler.enterprises(i));
        }
        n = handler.verifierCount();
        for (uint256 i; i < n; ++i) {
            balances += coin.balanceOf(handler.verifiers(i));
            debts += coin.debtOf(handler.verifiers(i));
        }
        assertEq(coin.totalSupply(), balances, "coin supply != sum of balances");
        assertEq(coin.totalDebt(), debts, "total debt != sum of debts");
    }
}

/// @notice Personal credits (docs/invariants.md P1-P4): batches, claims, desk trades, signed desk orders,
/// deficit cover, redemptions and donations in random order.
/// CI runs each of its six campaigns 12 times (7,200 calls in all, about 7 s) and `make fuzz` 40 times
/// (192,000 calls, about 90 s on 2 cores), so that it costs no more than the exchange campaign.
/// forge-config: ci.invariant.runs = 12
/// forge-config: deep.invariant.runs = 40
contract CreditsInvariants is CreditsFixture {
    CreditsHandler internal handler;

    function setUp() public {
        _deploySystem();
        handler = new CreditsHandler(
            credits, settlement, regulator, platforms, individualKeys, merchants, creditPeriods, projects, 1
        );
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// P1: PCC supply = Σ balances of every holder, = minted − burned; minted = what the batches' claims minted.
    function invariant_pccSupplyEqualsBalancesAndMintedMinusBurned() public view {
        uint256 supply = credits.totalSupply();
        assertEq(supply, _sumBalances(address(credits), handler.holders()), "PCC supply != sum of balances");
        assertEq(handler.ghostMinted() - handler.ghostBurned(), supply, "PCC minted - burned != supply");
        assertEq(handler.ghostSupplyDrift(), 0, "PCC supply moved by a trade or transfer");
        uint256 claimed;
        uint256 n = handler.batchCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.batchIds(i);
            (,, uint64 total,) = handler.batchGhost(id);
            claimed += total - credits.batchOf(id).remaining;
        }
        assertEq(claimed, handler.ghostMinted(), "batches' claimed totals != minted");
    }

    /// P1: every burn is a deficit cover, a redemption or a donation (covered and donated read from the
    /// contract's own records, the redemptions from the handler's).
    function invariant_burnedEqualsCoveredRedeemedDonated() public view {
        uint256 covered;
        uint256 periods = handler.periodCount();
        uint256 n = handler.individualCount();
        for (uint256 p; p < periods; ++p) {
            for (uint256 i; i < n; ++i) {
                (, uint256 c) = credits.deficitOf(handler.periods(p), handler.individuals(i));
                covered += c;
            }
        }
        uint256 donated;
        for (uint256 i; i < handler.projectCount(); ++i) donated += credits.projectOf(handler.projects(i)).retired;
        assertEq(covered, handler.ghostCovered(), "covered != covers made");
        assertEq(donated, handler.ghostDonated(), "retired by projects != donations made");
        assertEq(handler.ghostBurned(), covered + handler.ghostRedeemed() + donated, "burned != covered + redeemed + donated");
    }

    /// P2: no batch mints beyond its committed total; a platform's committed total is the sum of its batches,
    /// was within its ceiling at every commit, and never exceeds the highest ceiling it was given.
    function invariant_batchesWithinTotalsAndCeilings() public view {
        uint256 n = handler.batchCount();
        for (uint256 i; i < n; ++i) {
            uint256 id = handler.batchIds(i);
            (address p, uint16 period, uint64 total, uint256 claimed) = handler.batchGhost(id);
            CreditBatch memory b = credits.batchOf(id);
            assertEq(uint160(b.platform), uint160(p), "batch platform");
            assertEq(b.period, period, "batch period");
            assertLe(claimed, total, "batch minted beyond its total");
            assertEq(uint256(b.remaining) + claimed, total, "batch remaining + claimed != total");
        }
        uint256 periods = handler.periodCount();
        for (uint256 q; q < periods; ++q) {
            uint16 period = handler.periods(q);
            for (uint256 i; i < handler.platformCount(); ++i) {
                address p = handler.platforms(i);
                (uint128 committed,) = credits.issuedBy(period, p);
                assertEq(committed, handler.ghostCommitted(period, p), "committed != sum of batch totals");
                assertLe(committed, handler.ghostHighestCeiling(period, p), "committed above every ceiling given");
            }
        }
        assertEq(handler.ghostViolations(), 0, "a refused-by-design operation went through");
    }

    /// P1/P3: a deficit's covered amount never exceeds what is owed, and owed is exactly the claims' deficits at
    /// the period's offset ratio.
    function invariant_deficitCoveredNeverExceedsOwed() public view {
        uint256 periods = handler.periodCount();
        uint256 n = handler.individualCount();
        for (uint256 p; p < periods; ++p) {
            uint16 period = handler.periods(p);
            for (uint256 i; i < n; ++i) {
                address who = handler.individuals(i);
                (uint256 owed, uint256 covered) = credits.deficitOf(period, who);
                assertLe(covered, owed, "deficit covered above owed");
                assertEq(owed, handler.ghostOwed(period, who), "deficit owed != claims' deficits at the ratio");
            }
        }
    }

    /// P4: the credit manager holds neither settlement tokens nor PCC; the settlement token's supply equals the
    /// sum of balances (every payment is one transfer between members); desk payments are exact, the seller's
    /// rounded down and the buyer's up.
    function invariant_managerHoldsNothingAndSettlementConserved() public view {
        assertEq(handler.ghostPaymentMismatches(), 0, "a desk payment differs from amount x price (rounded against the trader)");
        assertEq(settlement.balanceOf(address(credits)), 0, "credit manager holds settlement tokens");
        assertEq(credits.balanceOf(address(credits)), 0, "credit manager holds PCC");
        assertEq(settlement.totalSupply(), _sumBalances(address(settlement), handler.holders()), "settlement supply != sum of balances");
    }

    /// Desk orders: each nonce settles once (replays refused), and a holder's nonce counts its settled orders.
    function invariant_deskOrderNonceUsedOnce() public view {
        assertEq(handler.ghostViolations(), 0, "a replayed order, second claim or over-ceiling commit went through");
        uint256 n = handler.individualCount();
        for (uint256 i; i < n; ++i) {
            address who = handler.individuals(i);
            assertEq(credits.nonces(who), handler.ghostOrdersSettled(who), "nonce != orders settled");
        }
    }
}
