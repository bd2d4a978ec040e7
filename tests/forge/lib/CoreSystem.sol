// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {CheatBase} from "./Cheats.sol";
import {ConsortiumRegistry} from "../../../contracts/registry/ConsortiumRegistry.sol";
import {SettlementToken} from "../../../contracts/settlement/SettlementToken.sol";
import {RewardPenaltyCoin} from "../../../contracts/coin/RewardPenaltyCoin.sol";
import {VintageTokenFactory} from "../../../contracts/allowances/VintageTokenFactory.sol";
import {AllowanceManager} from "../../../contracts/allowances/AllowanceManager.sol";
import {IRewardPenaltyCoin} from "../../../contracts/interfaces/IRewardPenaltyCoin.sol";
import {EmissionsMRV} from "../../../contracts/mrv/EmissionsMRV.sol";

/// @notice The core every campaign deploys, as carbon_sdk/deploy.py does (same order, wiring and the SDK's
/// default coin rules): registry, settlement token, coin, vintage factory, allowance manager and MRV. Each
/// campaign's fixture adds its own contracts (exchange, credit manager) and members.
abstract contract CoreSystem is CheatBase {
    ConsortiumRegistry internal registry;
    SettlementToken internal settlement;
    RewardPenaltyCoin internal coin;
    VintageTokenFactory internal factory;
    AllowanceManager internal manager;
    EmissionsMRV internal mrv;

    address internal regulator = vm.addr(0xBEEF);
    address internal platform = vm.addr(0xF00D);

    function _deployCore() internal {
        vm.warp(1_750_000_000);
        registry = new ConsortiumRegistry("National Carbon Market Regulator", regulator, keccak256("regulator"));
        settlement = new SettlementToken(registry, "Digital Yuan (settlement)", "DCNY", 2, "CNY", 1, 1);
        // The SDK's DEFAULT_RULES (carbon_sdk/coin.py): reasons 1-6, COIN = 1e6.
        uint8[] memory reasons = new uint8[](6);
        bool[] memory penalties = new bool[](6);
        uint128[] memory flats = new uint128[](6);
        uint128[] memory perTonne = new uint128[](6);
        (reasons[0], penalties[0], flats[0], perTonne[0]) = (1, false, 10e6, 0);
        (reasons[1], penalties[1], flats[1], perTonne[1]) = (2, false, 0, 0.5e6);
        (reasons[2], penalties[2], flats[2], perTonne[2]) = (3, true, 20e6, 2e6);
        (reasons[3], penalties[3], flats[3], perTonne[3]) = (4, true, 0, 10e6);
        (reasons[4], penalties[4], flats[4], perTonne[4]) = (5, true, 50e6, 2e6);
        (reasons[5], penalties[5], flats[5], perTonne[5]) = (6, true, 100e6, 0);
        coin = new RewardPenaltyCoin(registry, address(settlement), 1, 1_000, reasons, penalties, flats, perTonne);
        factory = new VintageTokenFactory(registry);
        manager = new AllowanceManager(registry, factory, IRewardPenaltyCoin(address(coin)));
        string[] memory gases = new string[](1);
        gases[0] = "CO2";
        uint32[] memory gwp = new uint32[](1);
        gwp[0] = 1000;
        mrv = new EmissionsMRV(registry, manager, IRewardPenaltyCoin(address(coin)), 500, "AR6-GWP100", gases, gwp, keccak256("AR6"));

        factory.bind(address(manager));
        vm.startPrank(regulator);
        manager.setMrv(address(mrv));
        address[] memory modules = new address[](2);
        (modules[0], modules[1]) = (address(mrv), address(manager));
        coin.authoriseModules(modules);
        registry.setDebtRecorder(address(coin));
        registry.registerSystemContract(address(coin), keccak256("reward-penalty coin conversion pool"));
        vm.stopPrank();
    }

    /// @dev The sum of `token`'s balances over `holders` (the supply checks: it must equal the total supply).
    function _sumBalances(address token, address[] memory holders) internal view returns (uint256 total) {
        for (uint256 i; i < holders.length; ++i) total += SettlementToken(token).balanceOf(holders[i]);
    }
}
