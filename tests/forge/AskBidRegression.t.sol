// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SystemFixture} from "./Invariants.t.sol";
import {MarketHandler} from "./handlers/MarketHandler.sol";
import {MarketParams, OrderInfo, SessionInfo, SessionPhase} from "../../contracts/interfaces/ICarbonExchange.sol";

/// @notice Regression for the deep campaign's E3 failure ("a trade priced outside [ask, bid]", 1 violation):
/// a UNIFORM call auction emits its Trade events with price 0 and announces the one price in AuctionCleared
/// (docs/exchange.md, the call auction), and the handler compared the 0 against [ask, bid]. The contract was
/// right (price 215 half-ticks for a bid at 110 and an ask at 105); the handler now prices an auction's pairs
/// with AuctionCleared, across clear() calls. These tests drive the same handler on the same deployment.
contract AskBidRegression is SystemFixture {
    MarketHandler internal handler;

    uint256 internal constant MIN_TICK = 90; // MarketHandler.placeOrder bounds ticks to [90, 110]
    uint256 internal constant FUNDS = 100_000; // settlement units issued to each trader (1,000.00)
    uint256 internal constant TONNES = 100; // allowance issued to each trader, in tonnes

    function setUp() public {
        _deploySystem();
        handler = new MarketHandler(
            registry, settlement, coin, manager, exchange, PERIOD, marketId, regulator, platform, enterprises
        );
    }

    // ------------------------------------------------------------------ driving the handler with exact inputs

    /// @dev Gives enterprise `i` FUNDS settlement units and TONNES of allowance, all deposited in the exchange.
    /// The handler bounds its inputs as `min + x % size`, so each raw input below is chosen to land exactly.
    function _fund(uint256 i) internal {
        handler.issueSettlement(i, FUNDS - 1);
        handler.allocate(i, TONNES * 1e6 - 1);
        handler.deposit(i, false, settlement.balanceOf(enterprises[i]) - 1);
        handler.deposit(i, true, _allowance().balanceOf(enterprises[i]) - 1);
    }

    /// @dev A limit order of `lots` (at most 20) at `tick` (90-110) by enterprise `i`, in the call phase.
    function _place(uint256 i, bool bid, uint256 lots, uint256 tick) internal returns (uint256 id) {
        uint256 before = handler.orderCount();
        handler.placeOrder(i, bid, false, lots - 1, tick - MIN_TICK, 0);
        assertEq(handler.orderCount(), before + 1, "order not placed");
        id = handler.orderIds(before);
        OrderInfo memory o = exchange.orderOf(id);
        assertEq(o.owner == enterprises[i] ? 1 : 0, 1, "order placed for another trader");
        assertEq(o.tick, tick, "order tick");
        assertEq(o.lots, lots, "order lots");
    }

    function _toClearing() internal {
        uint40 deadline = exchange.sessionOf(marketId, 1).callDeadline;
        handler.warp(deadline - block.timestamp - 1); // warp adds 1 + x
        assertEq(uint256(_session().phase), uint256(SessionPhase.CLEARING), "not clearing");
    }

    function _session() internal view returns (SessionInfo memory) {
        return exchange.sessionOf(marketId, exchange.marketOf(marketId).session);
    }

    // ------------------------------------------------------------------ tests

    /// The campaign's shrunk failure: a bid of 1 lot at 110 and an ask of 4 at 105 cross in a UNIFORM auction.
    function test_uniformAuction_pricesThePairWithinAskBid() public {
        _fund(0);
        _fund(1);
        uint256 bidId = _place(0, true, 1, 110);
        uint256 askId = _place(1, false, 4, 105);
        _toClearing();
        handler.clear(63); // 64 steps: the whole auction in one call

        SessionInfo memory s = _session();
        assertEq(s.cleared ? 1 : 0, 1, "auction not cleared");
        assertEq(handler.ghostTrades(), 1, "matched pairs seen");
        assertEq(handler.ghostAuctionsPriced(), 1, "auction price checked");
        assertEq(handler.pendingAuctionPairs(), 0, "pairs left unpriced");
        assertEq(handler.ghostPriceViolations(), 0, "price outside [ask, bid]");
        // The rule: the midpoint of the last matched pair, within the pair's [2 * 105, 2 * 110].
        assertEq(s.uniformPrice2, 110 + 105, "uniform price is not the last pair's midpoint");
        assertLe(2 * 105, s.uniformPrice2, "uniform price below the ask");
        assertLe(s.uniformPrice2, 2 * 110, "uniform price above the bid");
        // What the old check compared: the event's 0, outside any [ask, bid].
        assertEq(handler.pricedWithin(0, 105, 110) ? 1 : 0, 0, "price 0 within [105, 110]");

        // Settlement pays the fill at the uniform price, not at either limit.
        MarketParams memory p = exchange.marketOf(marketId).params;
        uint256 unit = uint256(p.lotSize) * p.tickSize / 1e6;
        uint256 value = 1 * s.uniformPrice2 * unit / 2;
        uint256 bidLimitValue = 1 * 110 * unit;
        uint256 askLimitValue = 4 * 105 * unit;
        address buyer = enterprises[0];
        address seller = enterprises[1];
        uint256 buyerFree = exchange.freeBalance(buyer, address(settlement));
        uint256 sellerFree = exchange.freeBalance(seller, address(settlement));
        uint256 sellerAsset = exchange.freeBalance(seller, address(_allowance()));
        // Cleared at the call deadline, so the session is in continuous trading (before closesAt).
        assertEq(uint256(_session().phase), uint256(SessionPhase.CONTINUOUS), "not continuous after clearing");
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (bidId, askId);
        // The ask still has 3 lots open: only the filled bid is claimable until the session closes.
        assertEq(exchange.claim(ids), 1, "orders settled in the continuous phase");
        uint256 bidLock = bidLimitValue + bidLimitValue * p.buyerFeeBps / 10_000 + bidLimitValue * p.marginBps / 10_000;
        assertEq(
            exchange.freeBalance(buyer, address(settlement)) - buyerFree,
            bidLock - value - value * p.buyerFeeBps / 10_000,
            "buyer refund"
        );
        vm.prank(seller);
        exchange.cancel(askId);
        assertEq(exchange.claim(ids), 1, "cancelled ask not settled");
        assertEq(
            exchange.freeBalance(seller, address(settlement)) - sellerFree,
            value - value * p.sellerFeeBps / 10_000 + askLimitValue * p.marginBps / 10_000,
            "seller proceeds"
        );
        assertEq(exchange.freeBalance(seller, address(_allowance())) - sellerAsset, 3 * p.lotSize, "unsold asset");
    }

    /// The deep campaign's shrunk sequence, call for call (its 31 handler calldatas, as forge persisted them;
    /// refused calls are part of it, as in the campaign). The last clear() matches a bid at 110 with an ask at
    /// 105 in session 2 and emits Trade(price2 0) then AuctionCleared(215): the handler used to flag the 0.
    function test_replayOfDeepCampaignFailure() public {
        bytes[] memory calls = new bytes[](31);
        calls[0] = hex"28d85f0300000000000000000001e625fe3f4e57613b829bf14545ae90e5e7529fe7a13b"; // enrol
        calls[1] = hex"54a4cbac00000000000000000000000000000000000000000000000000000000000003e8000000000000000000000000000000000000000000000000000000000000006e00000000000000000000000000000000000000000000000000000000de242ff4"; // applyRule
        calls[2] = hex"e5d6bf020000000000000000000006cf7e1a13bf573b46914b42220070d806103c6d6882"; // warp
        calls[3] = hex"e5d6bf020000000000000000000000000000000000000000000000000001db2e35e61666"; // warp
        calls[4] = hex"e5d6bf02fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc"; // warp
        calls[5] = hex"28d85f03000000000000000000000000000000021a929eaa35db3ecd46b3692ffadc0ada"; // enrol
        calls[6] = hex"28d85f030000000000000000000000000000000000000000000000000000002d9c4fbd2c"; // enrol
        calls[7] = hex"e5d6bf02000000000000000000000000000000001aabdbd4991717efdacd318e94b63c55"; // warp
        calls[8] = hex"e5d6bf020000000000000000000000000000000000000000000000000000000000001582"; // warp
        calls[9] = hex"28d85f030000000000000000000000000000000000000000000000000000000000000014"; // enrol
        calls[10] = hex"54a4cbac00000000000000000000000000000000003b3d2462dad709d3253bb18f69bacd00000000000000000000000000000000000100cfc93923f43894583c443a7d2a0000000000000000000a34e7806fdbe7ed9fc37205c60db015348c6f528fe4df"; // applyRule
        calls[11] = hex"28d85f0300000000000000000000000000000000000000000000000000000bf49dda86c9"; // enrol
        calls[12] = hex"54a4cbac000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000001f40000000000000000000000000000000000000000000000000000000000002e17"; // applyRule
        calls[13] = hex"172cfa4c0000000000000000000000000000007b33eb2aabd99d4c7c17c3a99a3b81f4b700000000000000000000000000000000000000000000000083ba5cca564cc512"; // allocate
        calls[14] = hex"28d85f030000000000000000000000000000000000000000000000000000000000989680"; // enrol
        calls[15] = hex"54a4cbac00000000000000000000000000000171222ec2a2ab4613b910071889536208af000000000000000000002437b73254cdede852c9ca1f308ec658ac41106b0b500000000000000000000000000000000001a03c17f042b08b2b75e2845aeb0d7b"; // applyRule
        calls[16] = hex"54a4cbac000000000000000000000000000d6a12d902e4d24c1209a65e3ec8b93e0dd5e400000000000000000000000000000000000000000000000000033b09c4e9e887000000000000000000000000000000000000000009f78b4e511277569b48732c"; // applyRule
        calls[17] = hex"54a4cbac00000000000055eb0d21a5cb95f7462851f657c16ddccc56992fcf6ef2ce5802000000000000000000000000000000000000000000000000036ed32ed62a48b500000000000000000000000000000000000000000000030c63add15bb908f7de"; // applyRule
        calls[18] = hex"5203109bfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc0000000000000000000000000000000000000000000000001e959758f1f9e416000000000000000000000000000000000000000000000001b727d9f246a0fb65"; // transferAllowance
        calls[19] = hex"f014beec00000000000000000000000000000000000000000000000000000000000000c800000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000989680"; // deposit
        calls[20] = hex"c51cdd12000000000000000000000000000000000000000000000000000000000000000b0000000000000000000000000000000000000000000000000000000000001de9"; // issueSettlement
        calls[21] = hex"412ea36f0000000000000000000000000000000000002eda8f2e386404ee0fbca117e7d700000000000000000000000000003ae0368e17c3fc0920c495dee846dfa4b32700000000000000000000000000005383685ae8d9d01cd9da709691f7ff21c34a"; // transferSettlement
        calls[22] = hex"f014beec0000000000000000000000000000031970f64369ebb13b82c6e1468b1f9fdbca000000000000000000000000000000000000000000000000000000000000000000000000000000001bf134c844544ce0875d7e9610e2b8633a133049dba6e3ea"; // deposit
        calls[23] = hex"f014beec00000000000000000000000000000000000000000000000000000000000046da000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001f4"; // deposit
        calls[24] = hex"e5d6bf02000000000000000000000002cbe8adb2a4dc4fa7086a379bf48852ef9daabf3e"; // warp
        calls[25] = hex"c0fe1af8000000000000000000000000000000000000000000000000000000010b4ba10c"; // clear
        calls[26] = hex"e5d6bf020000000000000000000000000000000000000000000000000000000000000064"; // warp
        calls[27] = hex"f0a6d14e0000000000000000000000000506048b8a5751fa5cbbc5d471daea8b3829b7b700000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000010e223a83b53900e6e3d7557fd5e451353aa0d2525bb588798e75ccbf6df5330000000000000000000ecbba6cca9f0e795c4b6dd1230100279d2eabd975e7ca0000000000000000000000000000000000000000000000018ca83abd6675cc97"; // placeOrder
        calls[28] = hex"f0a6d14e0000000000000000000000000000000000000000000000000000001b781fd236000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000003ca1373ae506a492e9bffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0000000000100ee447f8d144f3195cc5c613c9db8d1155b1d66dd7644ad3b50b"; // placeOrder
        calls[29] = hex"e5d6bf020000000000000000000000000000000000000371153f155cd8fc078c9c60aa4e"; // warp
        calls[30] = hex"c0fe1af8000000000000000026115db9c5c2289952859e969f3e1567eeeed0a96eb54f69"; // clear
        for (uint256 i; i < calls.length; ++i) {
            (bool ok,) = address(handler).call(calls[i]);
            ok; // a refused call is simply part of the sequence
        }
        uint32 session = exchange.marketOf(marketId).session;
        assertEq(session, 2, "the sequence clears its second session");
        assertEq(handler.ghostPriceViolations(), 0, "price outside [ask, bid]");
        assertEq(handler.ghostTrades(), 1, "matched pairs seen");
        assertEq(handler.ghostAuctionsPriced(), 1, "auction price checked");
        assertEq(exchange.sessionOf(marketId, session).uniformPrice2, 110 + 105, "uniform price");
    }

    /// An auction cleared one step per call: its pairs wait for the price, which must lie in every pair's range.
    function test_uniformAuctionAcrossClearCalls_pricesEveryPairWithinAskBid() public {
        for (uint256 i; i < 4; ++i) _fund(i);
        _place(0, true, 2, 110);
        _place(1, true, 2, 104);
        _place(2, false, 2, 100);
        _place(3, false, 3, 103);
        _toClearing();

        handler.clear(0); // one step: (110, 100)
        assertEq(handler.pendingAuctionPairs(), 1, "first pair not pending");
        assertEq(handler.ghostAuctionsPriced(), 0, "priced before AuctionCleared");
        assertEq(uint256(_session().phase), uint256(SessionPhase.CLEARING), "cleared after one step");
        handler.clear(0); // (104, 103)
        assertEq(handler.pendingAuctionPairs(), 2, "second pair not pending");
        assertEq(handler.pendingHighestAsk(), 103, "tightest ask");
        assertEq(handler.pendingLowestBid(), 104, "tightest bid");
        handler.clear(0); // no bid left: done, AuctionCleared

        SessionInfo memory s = _session();
        assertEq(s.cleared ? 1 : 0, 1, "auction not cleared");
        assertEq(handler.ghostTrades(), 2, "matched pairs seen");
        assertEq(handler.ghostAuctionsPriced(), 1, "auction price checked");
        assertEq(handler.pendingAuctionPairs(), 0, "pairs left unpriced");
        assertEq(handler.ghostPriceViolations(), 0, "price outside [ask, bid]");
        assertEq(s.uniformPrice2, uint256(s.lastBidTick) + s.lastAskTick, "uniform price is not the last midpoint");
        assertEq(s.uniformPrice2, 104 + 103, "last matched pair");
        // Within both pairs: [200, 220] and [206, 208].
        assertEq(handler.pricedWithin(s.uniformPrice2, 100, 110) ? 1 : 0, 1, "outside the first pair");
        assertEq(handler.pricedWithin(s.uniformPrice2, 103, 104) ? 1 : 0, 1, "outside the second pair");
    }

    /// The bound check itself: inclusive at both ends, in half-ticks, refusing anything outside.
    function test_pricedWithin_isInclusiveInHalfTicks() public view {
        assertEq(handler.pricedWithin(210, 105, 110) ? 1 : 0, 1, "ask end");
        assertEq(handler.pricedWithin(220, 105, 110) ? 1 : 0, 1, "bid end");
        assertEq(handler.pricedWithin(215, 105, 110) ? 1 : 0, 1, "half tick between");
        assertEq(handler.pricedWithin(209, 105, 110) ? 1 : 0, 0, "half a tick under the ask");
        assertEq(handler.pricedWithin(221, 105, 110) ? 1 : 0, 0, "half a tick over the bid");
        assertEq(handler.pricedWithin(210, 106, 105) ? 1 : 0, 0, "uncrossed pair");
    }

    function _allowance() internal view returns (IERC20) {
        return IERC20(manager.getPeriod(PERIOD).allowance);
    }
}
