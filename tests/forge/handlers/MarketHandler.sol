// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {CheatBase, Vm} from "../lib/Cheats.sol";
import {ConsortiumRegistry} from "../../../contracts/registry/ConsortiumRegistry.sol";
import {Role, MemberStatus} from "../../../contracts/interfaces/IConsortiumRegistry.sol";
import {SettlementToken} from "../../../contracts/settlement/SettlementToken.sol";
import {RewardPenaltyCoin} from "../../../contracts/coin/RewardPenaltyCoin.sol";
import {AllowanceManager} from "../../../contracts/allowances/AllowanceManager.sol";
import {CarbonExchange} from "../../../contracts/exchange/CarbonExchange.sol";
import {
    Side, OrderKind, OrderInput, OrderInfo, Pricing, SessionPhase, SessionInfo
} from "../../../contracts/interfaces/ICarbonExchange.sol";

/// @notice Drives random sequences of operations by random members over the registry, the settlement token,
/// allowances, the coin and the exchange, and keeps the ghost state the invariants compare against.
/// Inputs are bounded to what is plausible so that most calls succeed; a refused call is simply counted
/// (forge's metrics table reports calls and reverts per action).
contract MarketHandler is CheatBase {
    ConsortiumRegistry public immutable registry;
    SettlementToken public immutable settlement;
    RewardPenaltyCoin public immutable coin;
    AllowanceManager public immutable manager;
    CarbonExchange public immutable exchange;
    IERC20 public immutable allowance; // the vintage of `period`
    uint16 public immutable period;
    uint32 public immutable market;
    bool public immutable uniform; // the market's auction prices every pair at one price (Pricing.UNIFORM)
    address public immutable regulator;
    address public immutable platform; // organisation admin: enrols, issues settlement tokens, runs the market

    uint256 internal constant MAX_ACTORS = 12;
    uint256 internal constant UNIT = 1e6; // one tonne, in allowance units
    bytes32 internal constant TRADE_TOPIC = keccak256("Trade(uint32,uint32,uint256,uint256,uint32,uint32,uint256)");
    bytes32 internal constant AUCTION_CLEARED_TOPIC = keccak256("AuctionCleared(uint32,uint32,uint32)");

    address[] public actors; // enrolled enterprises, in enrolment order
    uint256[] public orderIds; // every order placed that may still rest or be claimable

    // Ghost state.
    uint256 public ghostExchangeIn; // per token: deposits - withdrawals, as seen by the handler
    uint256 public ghostExchangeSettlementIn;
    uint256 public ghostAllocated; // allowances minted by allocate
    uint256 public ghostTrades; // Trade events checked
    uint256 public ghostPriceViolations; // fills priced outside their pair's [ask, bid]
    uint256 public ghostAuctionsPriced; // UNIFORM auctions whose one price was checked against all their pairs
    // A UNIFORM auction's Trade events carry price 0: its price comes with AuctionCleared, in the clear() call
    // that finishes it, which may be a later call than the pairs'. So the pairs matched so far are kept as the
    // tightest bounds the price must meet: the highest ask and the lowest bid matched.
    uint256 public pendingAuctionPairs;
    uint256 public pendingHighestAsk;
    uint256 public pendingLowestBid;
    uint256 public ghostCrossesPlaced; // crossing bid/ask pairs placed by crossInCall in a call phase
    uint256 public ghostAuctionClears; // clear() calls made by clearAtDeadline
    uint256 public ghostSessionsOpened; // sessions opened after the fixture's first one
    uint256 public ghostCoinSupplyDrift; // coin supply changes outside rule applications and repayments
    uint256 private _ruleNonce;

    constructor(
        ConsortiumRegistry registry_,
        SettlementToken settlement_,
        RewardPenaltyCoin coin_,
        AllowanceManager manager_,
        CarbonExchange exchange_,
        uint16 period_,
        uint32 market_,
        address regulator_,
        address platform_,
        address[] memory actors_
    ) {
        registry = registry_;
        settlement = settlement_;
        coin = coin_;
        manager = manager_;
        exchange = exchange_;
        period = period_;
        allowance = IERC20(manager_.getPeriod(period_).allowance);
        market = market_;
        uniform = exchange_.marketOf(market_).params.pricing == Pricing.UNIFORM;
        regulator = regulator_;
        platform = platform_;
        for (uint256 i; i < actors_.length; ++i) actors.push(actors_[i]);
    }

    // ------------------------------------------------------------------ views for the invariants

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function orderCount() external view returns (uint256) {
        return orderIds.length;
    }

    /// @dev Every address that may hold a token of the system.
    function holders() public view returns (address[] memory all) {
        all = new address[](actors.length + 4);
        for (uint256 i; i < actors.length; ++i) all[i] = actors[i];
        all[actors.length] = regulator;
        all[actors.length + 1] = platform;
        all[actors.length + 2] = address(exchange);
        all[actors.length + 3] = address(coin);
    }

    // ------------------------------------------------------------------ helpers

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    /// @dev The first actor from `seed` on that may trade (active, not in debt), else `seed`'s actor: keeps
    /// most calls meaningful while suspended and indebted members still get picked now and then.
    function _trader(uint256 seed) internal view returns (address) {
        uint256 n = actors.length;
        for (uint256 i; i < n; ++i) {
            address a = actors[(seed % n + i) % n];
            if (registry.canTrade(a)) return a;
        }
        return _actor(seed);
    }

    /// @dev The first actor from `seed` on with status `status`, else `seed`'s actor.
    function _withStatus(uint256 seed, MemberStatus status) internal view returns (address) {
        uint256 n = actors.length;
        for (uint256 i; i < n; ++i) {
            address a = actors[(seed % n + i) % n];
            if (registry.getMember(a).status == status) return a;
        }
        return _actor(seed);
    }

    /// @dev Wraps every operation so the coin's supply is checked to move only through the rules (C1).
    modifier coinSupplyFrozen() {
        uint256 before = coin.totalSupply();
        _;
        if (coin.totalSupply() != before) ++ghostCoinSupplyDrift;
    }

    // ------------------------------------------------------------------ registry

    function enrol(uint256 seed) external coinSupplyFrozen {
        if (actors.length >= MAX_ACTORS) return;
        address account = vm.addr(0xA000 + actors.length + 1);
        vm.prank(platform);
        registry.enrol(account, Role.ENTERPRISE, 0, keccak256(abi.encode("enterprise", seed)));
        actors.push(account);
    }

    function suspend(uint256 seed) external coinSupplyFrozen {
        address account = _withStatus(seed, MemberStatus.ACTIVE);
        vm.prank(platform);
        registry.suspend(account);
    }

    function reinstate(uint256 seed) external coinSupplyFrozen {
        address account = _withStatus(seed, MemberStatus.SUSPENDED);
        vm.prank(platform);
        registry.reinstate(account);
    }

    /// @dev Rare on purpose (revocation is final): only when the seed's low byte is 0.
    function revoke(uint256 seed) external coinSupplyFrozen {
        if (seed & 0xff != 0 || actors.length < 6) return;
        address account = _actor(seed >> 8);
        vm.prank(platform);
        registry.revoke(account);
    }

    // ------------------------------------------------------------------ settlement token and allowances

    function issueSettlement(uint256 seed, uint256 amount) external coinSupplyFrozen {
        amount = bound(amount, 1, 1_000_000_00); // up to 1,000,000.00
        address to = _withStatus(seed, MemberStatus.ACTIVE); // before the prank: a view call would consume it
        vm.prank(platform);
        settlement.issue(to, amount, bytes32(seed));
    }

    function allocate(uint256 seed, uint256 amount) external coinSupplyFrozen {
        amount = bound(amount, 1, 50_000 * UNIT);
        address to = _withStatus(seed, MemberStatus.ACTIVE);
        bytes32[] memory grants = new bytes32[](1);
        grants[0] = bytes32(uint256(uint160(to)) << 96 | amount);
        vm.prank(regulator);
        manager.allocate(period, 0, grants);
        ghostAllocated += amount;
    }

    function transferAllowance(uint256 fromSeed, uint256 toSeed, uint256 amount) external coinSupplyFrozen {
        address from = _trader(fromSeed);
        amount = bound(amount, 0, allowance.balanceOf(from));
        address to = _trader(toSeed);
        vm.prank(from);
        allowance.transfer(to, amount);
    }

    function transferSettlement(uint256 fromSeed, uint256 toSeed, uint256 amount) external coinSupplyFrozen {
        address from = _trader(fromSeed);
        amount = bound(amount, 0, settlement.balanceOf(from));
        address to = _trader(toSeed);
        vm.prank(from);
        settlement.transfer(to, amount);
    }

    // ------------------------------------------------------------------ coin

    /// @dev A regulator applies a rule by hand (reasons 1-6 of the default rules) with a fresh audit key.
    function applyRule(uint256 seed, uint256 reason, uint256 quantity) external {
        reason = bound(reason, 1, 6);
        quantity = bound(quantity, 0, 1_000 * UNIT);
        bytes32 key = keccak256(abi.encode("hand-applied", ++_ruleNonce));
        address subject = _actor(seed);
        vm.prank(regulator);
        coin.applyRule(subject, uint8(reason), quantity, key, keccak256(abi.encode(key)));
    }

    /// @dev A debtor repays part of its debt with settlement tokens approved to the coin.
    function repayDebt(uint256 seed, uint256 coinAmount) external coinSupplyFrozen {
        address debtor = _actor(seed);
        uint256 debt = coin.debtOf(debtor);
        if (debt == 0) return;
        coinAmount = bound(coinAmount, 1, debt);
        // One prank per call: a startPrank left open by a refused call would refuse every later prank.
        vm.prank(debtor);
        settlement.approve(address(coin), type(uint256).max);
        vm.prank(debtor);
        coin.repayDebt(debtor, coinAmount);
    }

    // ------------------------------------------------------------------ exchange

    function deposit(uint256 seed, bool asset, uint256 amount) external coinSupplyFrozen {
        address who = _trader(seed);
        IERC20 token = asset ? allowance : settlement;
        uint256 balance = token.balanceOf(who);
        if (balance == 0) return;
        amount = bound(amount, 1, balance);
        vm.prank(who); // one prank per call (see repayDebt)
        token.approve(address(exchange), amount);
        vm.prank(who);
        exchange.deposit(address(token), amount);
        if (asset) ghostExchangeIn += amount;
        else ghostExchangeSettlementIn += amount;
    }

    function withdraw(uint256 seed, bool asset, uint256 amount) external coinSupplyFrozen {
        address who = _actor(seed);
        IERC20 token = asset ? allowance : settlement;
        uint256 free = exchange.freeBalance(who, address(token));
        if (free == 0) return;
        amount = bound(amount, 1, free);
        vm.prank(who);
        exchange.withdraw(address(token), amount);
        if (asset) ghostExchangeIn -= amount;
        else ghostExchangeSettlementIn -= amount;
    }

    function placeOrder(uint256 seed, bool bid, bool isMarket, uint256 lots, uint256 tick, uint256 maxFills)
        external
        coinSupplyFrozen
    {
        address who = _trader(seed);
        tick = bound(tick, 90, 110); // a narrow band so that books cross often
        maxFills = bound(maxFills, 1, 8);
        // At most what the free balances can lock (docs/exchange.md): a bid locks value + fee + margin in
        // settlement units (value = lots * tick * 2 here, fee 0.1 %, margin 5 %: under 1.1 * value + 2), an ask
        // its lots of asset plus the margin.
        uint256 freeSettlement = exchange.freeBalance(who, address(settlement));
        uint256 perLot = bid ? tick * 2 * 11 / 10 + 2 : tick * 2 / 10 + 2;
        uint256 most = freeSettlement / perLot;
        if (!bid) {
            uint256 assetLots = exchange.freeBalance(who, address(allowance)) / UNIT;
            if (assetLots < most) most = assetLots;
        }
        if (most == 0) return;
        lots = bound(lots, 1, most < 20 ? most : 20);
        OrderInput memory order = OrderInput({
            side: bid ? Side.BID : Side.ASK,
            kind: isMarket ? OrderKind.MARKET : OrderKind.LIMIT,
            lots: uint32(lots),
            tick: uint16(tick)
        });
        vm.recordLogs();
        vm.prank(who);
        uint256 id = exchange.placeOrder(market, order, maxFills);
        _checkTrades(tick, false);
        if (id != 0) orderIds.push(id);
    }

    function cancel(uint256 seed) external coinSupplyFrozen {
        if (orderIds.length == 0) return;
        uint256 id = orderIds[seed % orderIds.length];
        OrderInfo memory o = exchange.orderOf(id);
        if (o.openLots == 0) return;
        // In a call phase the book is often just crossInCall's pair: withdrawing from the auction is kept to
        // one pick in four so that most crossing books live to be cleared.
        if ((seed >> 128) % 4 != 0 && _sessionInfo().phase == SessionPhase.CALL) return;
        vm.prank(o.owner);
        exchange.cancel(id);
    }

    function claim(uint256 seed) external coinSupplyFrozen {
        if (orderIds.length == 0) return;
        uint256 index = seed % orderIds.length;
        uint256 id = orderIds[index];
        OrderInfo memory o = exchange.orderOf(id);
        uint256[] memory ids = new uint256[](1);
        ids[0] = id;
        vm.prank(o.owner);
        exchange.claim(ids);
        if (exchange.orderOf(id).claimed) {
            // Settled for good: forget it so later picks hit live orders.
            orderIds[index] = orderIds[orderIds.length - 1];
            orderIds.pop();
        }
    }

    /// @dev Clears the call auction (anyone may), in bounded steps.
    function clear(uint256 steps) external coinSupplyFrozen {
        steps = bound(steps, 1, 64);
        uint32 session = exchange.marketOf(market).session;
        if (exchange.sessionOf(market, session).phase != SessionPhase.CLEARING) return;
        vm.recordLogs();
        exchange.clear(market, steps);
        _checkTrades(0, true);
    }

    /// @dev Moves the clock by up to six hours; opens the next session once the current one is closed.
    function warp(uint256 seconds_) external coinSupplyFrozen {
        vm.warp(block.timestamp + bound(seconds_, 1, 6 hours));
        uint32 session = exchange.marketOf(market).session;
        if (exchange.sessionOf(market, session).phase == SessionPhase.CLOSED) _openSession();
    }

    // ------------------------------------------------------------------ call auctions
    // Random warps of up to six hours rarely leave a session in its two-hour call phase long enough for both
    // sides of a crossing book to be funded, deposited and placed, and a clear to follow: these two actions
    // make matched, priced UNIFORM auctions a regular part of the campaign (E3's uniform-price check).
    // Two actions out of nineteen, so the other operations keep most of the calls.

    /// @dev In the call phase, tops up two distinct traders (issuing, allocating and depositing only what is
    /// missing) and places a crossing pair: a bid of 1-10 lots at tick 100-110 and an ask of the same lots 0-10
    /// ticks under it; a no-op unless two members may trade. A session in continuous trading is first closed
    /// (warp to its end) and the next one opened, so its call phase is live; a clearing session is left alone.
    function crossInCall(uint256 buyerSeed, uint256 sellerSeed, uint256 lots, uint256 bidTick, uint256 spread)
        external
        coinSupplyFrozen
    {
        // Two members who may trade, or nothing to cross (refusals of the others are placeOrder's business).
        address buyer = _trader(buyerSeed);
        if (!registry.canTrade(buyer)) return;
        address seller = _otherTrader(sellerSeed, buyer);
        if (seller == address(0)) return;
        SessionInfo memory s = _sessionInfo();
        if (s.phase == SessionPhase.CLEARING) return;
        if (s.phase == SessionPhase.CONTINUOUS) vm.warp(s.closesAt);
        if (s.phase != SessionPhase.CALL) _openSession();
        lots = bound(lots, 1, 10);
        bidTick = bound(bidTick, 100, 110);
        uint256 askTick = bidTick - bound(spread, 0, 10);
        // The same per-lot locks as placeOrder: a bid locks value + fee + margin, an ask its asset + margin.
        _topUp(buyer, false, lots * (bidTick * 2 * 11 / 10 + 2));
        _topUp(seller, false, lots * (askTick * 2 / 10 + 2));
        _topUp(seller, true, lots * UNIT);
        _placeLimit(buyer, Side.BID, lots, bidTick);
        _placeLimit(seller, Side.ASK, lots, askTick);
        ++ghostCrossesPlaced;
    }

    /// @dev Ends the call phase: warps to 0-10 minutes past the call deadline and clears in 1-64 steps; in a
    /// session already clearing it only clears. Otherwise it does nothing.
    function clearAtDeadline(uint256 lateBy, uint256 steps) external coinSupplyFrozen {
        SessionInfo memory s = _sessionInfo();
        if (s.phase == SessionPhase.CALL) vm.warp(s.callDeadline + bound(lateBy, 0, 10 minutes));
        else if (s.phase != SessionPhase.CLEARING) return;
        steps = bound(steps, 1, 64);
        vm.recordLogs();
        exchange.clear(market, steps);
        _checkTrades(0, true);
        ++ghostAuctionClears;
    }

    function _sessionInfo() internal view returns (SessionInfo memory) {
        return exchange.sessionOf(market, exchange.marketOf(market).session);
    }

    function _openSession() internal {
        vm.prank(platform);
        exchange.openSession(market, uint40(block.timestamp + 2 hours), uint40(block.timestamp + 1 days), false);
        ++ghostSessionsOpened;
    }

    /// @dev The first actor from `seed` on, other than `other`, that may trade; else address(0).
    function _otherTrader(uint256 seed, address other) internal view returns (address) {
        uint256 n = actors.length;
        for (uint256 i; i < n; ++i) {
            address a = actors[(seed % n + i) % n];
            if (a != other && registry.canTrade(a)) return a;
        }
        return address(0);
    }

    /// @dev Makes `who`'s free exchange balance of the asset (or settlement token) at least `needed`: deposits
    /// from its wallet, allocating or issuing only what the wallet lacks.
    function _topUp(address who, bool asset, uint256 needed) internal {
        IERC20 token = asset ? allowance : settlement;
        uint256 free = exchange.freeBalance(who, address(token));
        if (free >= needed) return;
        uint256 missing = needed - free;
        uint256 wallet = token.balanceOf(who);
        if (wallet < missing) {
            uint256 amount = missing - wallet;
            if (asset) {
                bytes32[] memory grants = new bytes32[](1);
                grants[0] = bytes32(uint256(uint160(who)) << 96 | amount);
                vm.prank(regulator);
                manager.allocate(period, 0, grants);
                ghostAllocated += amount;
            } else {
                vm.prank(platform);
                settlement.issue(who, amount, keccak256(abi.encode("call auction", who, block.timestamp)));
            }
        }
        vm.prank(who); // one prank per call (see repayDebt)
        token.approve(address(exchange), missing);
        vm.prank(who);
        exchange.deposit(address(token), missing);
        if (asset) ghostExchangeIn += missing;
        else ghostExchangeSettlementIn += missing;
    }

    function _placeLimit(address who, Side side, uint256 lots, uint256 tick) internal {
        OrderInput memory order =
            OrderInput({side: side, kind: OrderKind.LIMIT, lots: uint32(lots), tick: uint16(tick)});
        vm.recordLogs();
        vm.prank(who);
        uint256 id = exchange.placeOrder(market, order, 8);
        _checkTrades(tick, false); // none in the call phase; checked all the same
        if (id != 0) orderIds.push(id);
    }

    /// @dev Whether `price2` (half-ticks) lies within [askTick, bidTick].
    function pricedWithin(uint256 price2, uint256 askTick, uint256 bidTick) public pure returns (bool) {
        return price2 >= 2 * askTick && price2 <= 2 * bidTick;
    }

    /// @dev E3: every fill recorded since recordLogs is priced within its pair's [ask, bid] (docs/exchange.md).
    /// An order id holds its tick in bits 64-79; a continuous fill names the taker as 0, whose limit (a market
    /// order's worst price) is `takerTick`. A continuous fill and a MIDPOINT auction fill carry their price; a
    /// UNIFORM auction fill carries 0 and is priced by the AuctionCleared event that ends the auction, so its
    /// pair joins the pending bounds until then.
    function _checkTrades(uint256 takerTick, bool auction) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(exchange)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic == TRADE_TOPIC) {
                (uint256 bidId, uint256 askId,, uint32 price2,) =
                    abi.decode(logs[i].data, (uint256, uint256, uint32, uint32, uint256));
                uint256 bidTick = bidId == 0 ? takerTick : uint16(bidId >> 64);
                uint256 askTick = askId == 0 ? takerTick : uint16(askId >> 64);
                ++ghostTrades;
                if (auction && uniform) {
                    if (price2 != 0) ++ghostPriceViolations; // the documented event says 0: the price is not per pair
                    if (pendingAuctionPairs == 0 || askTick > pendingHighestAsk) pendingHighestAsk = askTick;
                    if (pendingAuctionPairs == 0 || bidTick < pendingLowestBid) pendingLowestBid = bidTick;
                    ++pendingAuctionPairs;
                } else if (!pricedWithin(price2, askTick, bidTick)) {
                    ++ghostPriceViolations;
                }
            } else if (topic == AUCTION_CLEARED_TOPIC && pendingAuctionPairs != 0) {
                uint32 uniformPrice2 = abi.decode(logs[i].data, (uint32));
                if (!pricedWithin(uniformPrice2, pendingHighestAsk, pendingLowestBid)) ++ghostPriceViolations;
                ++ghostAuctionsPriced;
                (pendingAuctionPairs, pendingHighestAsk, pendingLowestBid) = (0, 0, 0);
            }
        }
    }
}
