// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {
    CancelReason,
    ICarbonExchange,
    MarketInfo,
    MarketParams,
    OrderInfo,
    OrderInput,
    OrderKind,
    Pricing,
    SessionInfo,
    SessionPhase,
    Side
} from "../interfaces/ICarbonExchange.sol";
import {IConsortiumRegistry, MemberStatus, Role} from "../interfaces/IConsortiumRegistry.sol";
import {RegistryGuard} from "../registry/RegistryGuard.sol";

/**
 * @title CarbonExchange
 * @notice See {ICarbonExchange} and docs/exchange.md.
 * @dev The book of a (market, session, side) is a two-level bitmap of the ticks that hold orders, and per tick
 * a FIFO of orders (`Level.head` .. `Level.next`). An order is one storage slot. A fill that closes the order
 * at a FIFO's head moves the head past it and retires the tick when the FIFO is empty; cancelled orders stay
 * in their FIFO with no open lots until a walk (a taker, the clearing) skips them, and that walk retires the
 * tick it empties. Every walk is bounded by the caller's own `maxSteps`/`maxFills`.
 *
 * Order ids pack where the order lives: `market << 120 | session << 88 | side << 80 | tick << 64 | index`.
 * Token movements and the accounting they keep are tagged `E1` (tokens in and out) and `E2` (what the exchange
 * owes), with the conservation proof in docs/invariants.md.
 */
contract CarbonExchange is ICarbonExchange, RegistryGuard, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint256 private constant _TONNE = 1e6;
    uint256 private constant _BPS = 10_000;
    uint16 private constant _MAX_FEE_BPS = 1_000;
    uint256 public constant MAX_BATCH = 100;
    uint8 private constant _CLAIMED = 1;

    struct Market {
        // slot 0: what every order reads
        uint48 unitValue; // settlement units of one lot at one tick: lotSize * tickSize / 1e6 (even)
        uint24 minLots;
        uint16 buyerFeeBps;
        uint16 sellerFeeBps;
        uint16 marginBps;
        Pricing pricing;
        uint16 sellerRoles;
        uint16 buyerRoles;
        uint16 assetId;
        uint16 settlementId;
        uint32 region;
        uint32 session;
        // slot 1
        uint64 lotSize;
        uint64 tickSize;
        uint128 feesAccrued;
        // slot 2
        address operator;
    }

    struct Session {
        uint40 callDeadline;
        uint40 closesAt;
        bool cleared;
        bool isSealed; // CALL-phase orders only through the sealer's reveals
        uint32 uniformPrice2;
        uint16 lastBidTick;
        uint16 lastAskTick;
    }

    struct Order {
        uint24 account;
        uint32 lots;
        uint32 openLots;
        uint32 filledLots;
        uint32 auctionLots;
        uint96 value;
        uint8 flags;
    }

    struct Level {
        uint64 next;
        uint64 head;
    }

    struct Balance {
        uint24 account; // the owner's account number, kept beside each balance so one read gives both
        uint232 free;
    }

    /// @dev What a taker did while walking the book.
    struct Take {
        uint256 wanted;
        uint256 filled;
        uint256 value;
        bool exhausted; // the walk ran out of `maxFills` before the order stopped crossing
    }

    /// @dev Where an order is placed, and for whom.
    struct Context {
        uint32 market;
        uint32 session;
        SessionPhase phase;
        uint256 maxFills;
        address trader;
    }

    /// @dev What a clearing call works on.
    struct Clearing {
        uint32 market;
        uint32 session;
        uint256 bidBook;
        uint256 askBook;
        bool midpoint;
        uint256 unit;
    }

    /// @dev How many more steps a walk of the book may take in this call: a matched pair or fill, a self-trade
    /// cancellation, a skipped cancelled order, or a tick retired by the walk.
    struct Budget {
        uint256 left;
    }

    uint32 private _marketCount;
    mapping(uint32 market => Market) private _markets;
    mapping(uint256 sessionKey => Session) private _sessions;
    mapping(uint256 orderId => Order) private _orders;
    mapping(uint256 levelKey => Level) private _levels;
    mapping(uint256 book => uint256) private _topBits;
    mapping(uint256 wordKey => uint256) private _tickBits;
    mapping(address token => uint16) private _tokenIds;
    address[] private _tokens;
    mapping(address account => mapping(uint16 tokenId => Balance)) private _balances;
    mapping(address account => uint24) private _accountIds;
    mapping(uint24 account => address) private _owners;
    uint24 private _accountCount;

    /// @inheritdoc ICarbonExchange
    address public sealer;
    address private immutable _deployer;

    constructor(IConsortiumRegistry registry_) RegistryGuard(registry_) {
        _deployer = msg.sender;
    }

    /// @inheritdoc ICarbonExchange
    function bindSealer(address sealer_) external {
        if (msg.sender != _deployer || sealer != address(0)) revert ExchangeNotOperator(msg.sender, 0);
        sealer = sealer_;
        emit SealerBound(sealer_);
    }

    // ---------------------------------------------------------------- markets and sessions

    /// @inheritdoc ICarbonExchange
    function createMarket(MarketParams calldata params) external returns (uint32 market) {
        (Role role, MemberStatus status,,) = registry.profileOf(msg.sender);
        if (status != MemberStatus.ACTIVE || (role != Role.PLATFORM && role != Role.REGULATOR)) {
            revert ExchangeNotMarketCreator(msg.sender);
        }
        uint256 unit = _checkParams(params);
        market = ++_marketCount;
        Market storage m = _markets[market];
        m.unitValue = uint48(unit);
        m.minLots = params.minLots;
        m.buyerFeeBps = params.buyerFeeBps;
        m.sellerFeeBps = params.sellerFeeBps;
        m.marginBps = params.marginBps;
        m.pricing = params.pricing;
        m.sellerRoles = params.sellerRoles;
        m.buyerRoles = params.buyerRoles;
        m.assetId = _registerToken(params.asset);
        m.settlementId = _registerToken(params.settlement);
        m.region = params.region;
        m.lotSize = params.lotSize;
        m.tickSize = params.tickSize;
        m.operator = msg.sender;
        _accountId(msg.sender);
        emit MarketCreated(market, msg.sender, params);
    }

    /// @inheritdoc ICarbonExchange
    function openSession(uint32 market, uint40 callDeadline, uint40 closesAt, bool isSealed)
        external
        returns (uint32 session)
    {
        Market storage m = _market(market);
        if (msg.sender != m.operator) revert ExchangeNotOperator(msg.sender, market);
        uint32 current = m.session;
        if (current != 0) {
            SessionPhase phase = _phase(_sessions[_sessionKey(market, current)]);
            if (phase != SessionPhase.CLOSED) revert ExchangeSessionOpen(market, current);
        }
        if (callDeadline < block.timestamp || closesAt <= callDeadline) {
            revert ExchangeInvalidSchedule(uint40(block.timestamp), callDeadline, closesAt);
        }
        session = current + 1;
        m.session = session;
        Session storage s = _sessions[_sessionKey(market, session)];
        s.callDeadline = callDeadline;
        s.closesAt = closesAt;
        s.isSealed = isSealed;
        emit SessionOpened(market, session, callDeadline, closesAt, isSealed);
    }

    // ---------------------------------------------------------------- deposits

    /// @inheritdoc ICarbonExchange
    function deposit(address token, uint256 amount) external nonReentrant {
        uint16 id = _knownToken(token);
        if (amount == 0) revert ExchangeZeroAmount();
        Balance storage b = _balances[msg.sender][id];
        if (b.account == 0) b.account = _accountId(msg.sender);
        // E1: tokens in, credited to the depositor. Fee-on-transfer tokens are not supported: the exchange
        // credits what it asked for, so the token must move exactly that.
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        b.free += uint232(amount);
        emit Deposited(msg.sender, token, amount);
    }

    /// @inheritdoc ICarbonExchange
    function withdraw(address token, uint256 amount) external nonReentrant {
        uint16 id = _knownToken(token);
        if (amount == 0) revert ExchangeZeroAmount();
        Balance storage b = _balances[msg.sender][id];
        if (b.free < amount) revert ExchangeInsufficientFree(msg.sender, token, b.free, amount);
        b.free -= uint232(amount); // E1: debited before the tokens leave (checks-effects-interactions)
        IERC20(token).safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, token, amount);
    }

    // ---------------------------------------------------------------- orders

    /// @inheritdoc ICarbonExchange
    function placeOrder(uint32 market, OrderInput calldata order, uint256 maxFills)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        Market storage m = _market(market);
        Context memory ctx = _tradingContext(m, market, maxFills, msg.sender, false);
        _checkTrader(m, order.side, msg.sender);
        orderId = _place(m, ctx, order);
    }

    /// @inheritdoc ICarbonExchange
    function placeRevealed(address owner, uint32 market, OrderInput calldata order)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        if (msg.sender != sealer) revert ExchangeNotSealer(msg.sender);
        Market storage m = _market(market);
        Context memory ctx = _tradingContext(m, market, 0, owner, true);
        _checkTrader(m, order.side, owner);
        orderId = _place(m, ctx, order);
    }

    /// @inheritdoc ICarbonExchange
    function placeOrders(uint32 market, OrderInput[] calldata orders, uint256 maxFills)
        external
        nonReentrant
        returns (uint256[] memory orderIds)
    {
        uint256 size = orders.length;
        if (size == 0 || size > MAX_BATCH) revert ExchangeBatchSize(size, MAX_BATCH);
        Market storage m = _market(market);
        Context memory ctx = _tradingContext(m, market, maxFills, msg.sender, false);
        orderIds = new uint256[](size);
        bool checkedBid;
        bool checkedAsk;
        for (uint256 i; i < size; ++i) {
            Side side = orders[i].side;
            if (side == Side.BID ? !checkedBid : !checkedAsk) {
                _checkTrader(m, side, msg.sender);
                (checkedBid, checkedAsk) = side == Side.BID ? (true, checkedAsk) : (checkedBid, true);
            }
            orderIds[i] = _place(m, ctx, orders[i]);
        }
    }

    /// @inheritdoc ICarbonExchange
    function cancel(uint256 orderId) external {
        Order storage o = _orders[orderId];
        if (o.account == 0) revert ExchangeUnknownOrder(orderId);
        if (_owners[o.account] != msg.sender) revert ExchangeNotOrderOwner(msg.sender, orderId);
        // Any phase: a cancelled order is only skipped by matching, and its funds come back by the claim,
        // which waits for the auction's price while clearing runs.
        uint32 open = o.openLots;
        if (open == 0) revert ExchangeOrderClosed(orderId);
        o.openLots = 0; // the funds stay locked until the claim (E2)
        emit OrderCancelled(orderId, open, CancelReason.OWNER);
    }

    // ---------------------------------------------------------------- the call auction

    /// @inheritdoc ICarbonExchange
    function clear(uint32 market, uint256 maxSteps) external nonReentrant returns (bool done) {
        Market storage m = _market(market);
        uint32 session = m.session;
        Session storage s = _sessions[_sessionKey(market, session)];
        SessionPhase phase = _phase(s);
        if (phase != SessionPhase.CLEARING) revert ExchangeWrongPhase(market, session, phase);
        if (maxSteps == 0) revert ExchangeBatchSize(0, type(uint256).max);
        Clearing memory c = Clearing({
            market: market,
            session: session,
            bidBook: _book(market, session, Side.BID),
            askBook: _book(market, session, Side.ASK),
            midpoint: m.pricing == Pricing.MIDPOINT,
            unit: m.unitValue
        });
        // Every matched pair, self-trade cancellation, skipped cancelled order and tick the walk retires costs
        // one step (a tick emptied by a fill is retired with it, free).
        Budget memory budget = Budget(maxSteps);
        while (budget.left != 0 && !done) {
            done = _clearStep(c, s, budget);
        }
        if (done) {
            s.cleared = true;
            if (!c.midpoint) s.uniformPrice2 = uint32(s.lastBidTick) + s.lastAskTick;
            emit AuctionCleared(market, session, s.uniformPrice2);
        }
    }

    /// @dev One step of the auction (docs/exchange.md, the call auction); returns whether clearing is done.
    function _clearStep(Clearing memory c, Session storage s, Budget memory budget) private returns (bool) {
        (uint256 bidId, bool hasBid) = _bestOrder(c.bidBook, true, budget);
        (uint256 askId, bool hasAsk) = _bestOrder(c.askBook, false, budget);
        if (budget.left == 0) return false; // out of steps while skipping: the next call goes on
        if (!hasBid || !hasAsk || uint16(bidId >> 64) < uint16(askId >> 64)) return true;
        --budget.left;
        _matchPair(c, s, bidId, askId);
        return false;
    }

    function _matchPair(Clearing memory c, Session storage s, uint256 bidId, uint256 askId) private {
        Order storage bid = _orders[bidId];
        Order storage ask = _orders[askId];
        if (bid.account == ask.account) {
            // Self-trade: the ask's remainder is cancelled (rule 3).
            emit OrderCancelled(askId, ask.openLots, CancelReason.SELF_TRADE);
            ask.openLots = 0;
            return;
        }
        uint16 bidTick = uint16(bidId >> 64);
        uint16 askTick = uint16(askId >> 64);
        uint32 lots = bid.openLots < ask.openLots ? bid.openLots : ask.openLots;
        uint32 price2 = c.midpoint ? uint32(bidTick) + askTick : 0;
        uint256 value = uint256(lots) * price2 * c.unit / 2; // exact: the unit value is even
        _fill(bid, lots, value, true);
        _fill(ask, lots, value, true);
        // A closed order is at the head of its level (the best order is): move the head past it now.
        if (bid.openLots == 0) _advanceHead(bidId);
        if (ask.openLots == 0) _advanceHead(askId);
        (s.lastBidTick, s.lastAskTick) = (bidTick, askTick);
        emit Trade(c.market, c.session, bidId, askId, lots, price2, value);
    }

    // ---------------------------------------------------------------- claims and fees

    /// @inheritdoc ICarbonExchange
    function claim(uint256[] calldata orderIds) external nonReentrant returns (uint256 settled) {
        uint256 size = orderIds.length;
        if (size == 0 || size > MAX_BATCH) revert ExchangeBatchSize(size, MAX_BATCH);
        for (uint256 i; i < size; ++i) {
            uint256 orderId = orderIds[i];
            Order storage o = _orders[orderId];
            if (o.account == 0) revert ExchangeUnknownOrder(orderId);
            // Orders settled already or not claimable yet are skipped, so that nobody can make a bulk claim
            // fail by settling one of its orders first; a call that settles nothing is refused.
            if (o.flags & _CLAIMED != 0) continue;
            uint32 market = uint32(orderId >> 120);
            uint32 session = uint32(orderId >> 88);
            Session storage s = _sessions[_sessionKey(market, session)];
            SessionPhase phase = _phase(s);
            if (phase == SessionPhase.CLEARING) continue;
            if (o.openLots != 0) {
                // An open order is claimable once its session closed: its remainder is refunded.
                if (phase != SessionPhase.CLOSED) continue;
                o.openLots = 0;
            }
            _settleOrder(_markets[market], s, orderId, o, _owners[o.account]);
            ++settled;
        }
        if (settled == 0) revert ExchangeNothingToClaim(orderIds[0]);
    }

    /// @inheritdoc ICarbonExchange
    function collectFees(uint32 market) external {
        Market storage m = _market(market);
        uint256 amount = m.feesAccrued;
        if (amount == 0) revert ExchangeZeroAmount();
        m.feesAccrued = 0;
        _credit(m.operator, m.settlementId, amount); // E2: accrued fees to the operator's deposit
        emit FeesCollected(market, m.operator, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICarbonExchange
    function marketCount() external view returns (uint32) {
        return _marketCount;
    }

    /// @inheritdoc ICarbonExchange
    function marketOf(uint32 market) external view returns (MarketInfo memory info) {
        Market storage m = _market(market);
        info.params = MarketParams({
            asset: _tokens[m.assetId - 1],
            settlement: _tokens[m.settlementId - 1],
            lotSize: m.lotSize,
            tickSize: m.tickSize,
            minLots: m.minLots,
            buyerFeeBps: m.buyerFeeBps,
            sellerFeeBps: m.sellerFeeBps,
            marginBps: m.marginBps,
            pricing: m.pricing,
            region: m.region,
            sellerRoles: m.sellerRoles,
            buyerRoles: m.buyerRoles
        });
        info.operator = m.operator;
        info.session = m.session;
        info.feesAccrued = m.feesAccrued;
    }

    /// @inheritdoc ICarbonExchange
    function sessionOf(uint32 market, uint32 session) external view returns (SessionInfo memory info) {
        Session storage s = _sessions[_sessionKey(market, session)];
        info = SessionInfo({
            phase: _phase(s),
            isSealed: s.isSealed,
            callDeadline: s.callDeadline,
            closesAt: s.closesAt,
            cleared: s.cleared,
            uniformPrice2: s.uniformPrice2,
            lastBidTick: s.lastBidTick,
            lastAskTick: s.lastAskTick
        });
    }

    /// @inheritdoc ICarbonExchange
    function orderOf(uint256 orderId) external view returns (OrderInfo memory info) {
        Order storage o = _orders[orderId];
        if (o.account == 0) revert ExchangeUnknownOrder(orderId);
        info = OrderInfo({
            owner: _owners[o.account],
            market: uint32(orderId >> 120),
            session: uint32(orderId >> 88),
            side: Side(uint8(orderId >> 80)),
            tick: uint16(orderId >> 64),
            index: uint64(orderId),
            lots: o.lots,
            openLots: o.openLots,
            filledLots: o.filledLots,
            auctionLots: o.auctionLots,
            value: o.value,
            claimed: o.flags & _CLAIMED != 0
        });
    }

    /// @inheritdoc ICarbonExchange
    function tokenListed(address token) external view returns (bool) {
        return _tokenIds[token] != 0;
    }

    /// @inheritdoc ICarbonExchange
    function freeBalance(address account, address token) external view returns (uint256) {
        uint16 id = _tokenIds[token];
        return id == 0 ? 0 : _balances[account][id].free;
    }

    // ---------------------------------------------------------------- placing

    function _place(Market storage m, Context memory ctx, OrderInput calldata input) private returns (uint256 orderId) {
        uint32 lots = input.lots;
        if (lots < m.minLots || lots == 0) revert ExchangeBadQuantity(lots, m.minLots);
        if (input.tick == 0) revert ExchangeBadPrice(input.tick);
        bool isMarket = input.kind == OrderKind.MARKET;
        if (isMarket && ctx.phase != SessionPhase.CONTINUOUS) revert ExchangeMarketOrderInCall(ctx.market);
        uint24 account = _lock(m, input.side, lots, input.tick, ctx.trader);

        Take memory take;
        if (ctx.phase == SessionPhase.CONTINUOUS) take = _take(m, ctx, input, account);
        uint256 open = lots - take.filled;
        // An order that ran out of fills while it may still cross never rests: a crossed book is refused.
        if (isMarket || open == 0 || take.exhausted) {
            _settleTaker(m, ctx, input, account, take);
            return 0;
        }
        uint256 book = _book(ctx.market, ctx.session, input.side);
        uint256 levelKey = book << 16 | input.tick;
        Level storage level = _levels[levelKey];
        uint64 index = level.next;
        level.next = index + 1;
        if (index == level.head) _setTick(book, input.tick); // the tick's FIFO was empty
        orderId = levelKey << 64 | index;
        _orders[orderId] = Order({
            account: account,
            lots: lots,
            openLots: uint32(open),
            filledLots: uint32(take.filled),
            auctionLots: 0,
            value: uint96(take.value),
            flags: 0
        });
        emit OrderPlaced(orderId, ctx.trader, ctx.market, input.side, input.tick, lots);
    }

    /// @dev Locks what an order needs from the caller's free balances (E2); returns the caller's account.
    function _lock(Market storage m, Side side, uint256 lots, uint16 tick, address trader)
        private
        returns (uint24 account)
    {
        uint256 value = lots * tick * m.unitValue;
        uint256 margin = value * m.marginBps / _BPS;
        if (side == Side.BID) {
            account = _debit(trader, m.settlementId, value + value * m.buyerFeeBps / _BPS + margin);
        } else {
            account = _debit(trader, m.assetId, lots * m.lotSize);
            if (margin != 0) _debit(trader, m.settlementId, margin);
        }
    }

    /// @dev Continuous trading: the new order takes from the other side while it crosses, at the resting
    /// orders' prices, visiting at most `maxFills` resting orders.
    function _take(Market storage m, Context memory ctx, OrderInput calldata input, uint24 account)
        private
        returns (Take memory take)
    {
        bool buying = input.side == Side.BID;
        uint256 book = _book(ctx.market, ctx.session, buying ? Side.ASK : Side.BID);
        Budget memory budget = Budget(ctx.maxFills);
        Session storage s = _sessions[_sessionKey(ctx.market, ctx.session)];
        take.wanted = input.lots;
        while (take.filled < take.wanted) {
            if (budget.left == 0) {
                // Out of fills: the rest may rest only if the best opposite tick does not cross it.
                (bool any, uint16 best) = _bestTick(book, !buying);
                take.exhausted = any && (buying ? best <= input.tick : best >= input.tick);
                break;
            }
            (uint256 makerId, bool found) = _bestOrder(book, !buying, budget);
            if (!found) {
                if (budget.left == 0) continue; // out of fills while skipping: decided above
                break; // the other side is empty
            }
            uint16 tick = uint16(makerId >> 64);
            if (buying ? tick > input.tick : tick < input.tick) break;
            --budget.left;
            _takeFrom(m, ctx, s, makerId, account, take);
        }
    }

    function _takeFrom(
        Market storage m,
        Context memory ctx,
        Session storage s,
        uint256 makerId,
        uint24 account,
        Take memory take
    ) private {
        Order storage maker = _orders[makerId];
        if (maker.account == account) {
            // Self-trade prevention: the taker's own resting order is cancelled (and settled).
            emit OrderCancelled(makerId, maker.openLots, CancelReason.SELF_TRADE);
            maker.openLots = 0;
            _settleOrder(m, s, makerId, maker, ctx.trader);
            return;
        }
        uint256 lots = Math.min(maker.openLots, take.wanted - take.filled);
        uint256 tick = uint16(makerId >> 64);
        uint256 value = lots * tick * m.unitValue;
        _fill(maker, uint32(lots), value, false);
        take.filled += lots;
        take.value += value;
        bool makerBids = uint8(makerId >> 80) == uint8(Side.BID);
        emit Trade(
            ctx.market, ctx.session, makerBids ? makerId : 0, makerBids ? 0 : makerId, uint32(lots), uint32(tick * 2), value
        );
        if (maker.openLots == 0) {
            // The taker settles the resting order it completes (its claim is included), and moves the price
            // level past it (retiring the tick if that was its last order), so no walk reads it again.
            _advanceHead(makerId);
            _settleOrder(m, s, makerId, maker, _owners[maker.account]);
        }
    }

    /// @dev E2: a fill moves `value` and `lots` between a bid's and an ask's payouts; nothing leaves or enters.
    function _fill(Order storage o, uint32 lots, uint256 value, bool auction) private {
        o.openLots -= lots;
        o.filledLots += lots;
        if (auction) o.auctionLots += lots;
        o.value += uint96(value);
    }

    /// @dev A taker that filled completely (or a market order) is settled at once, never stored.
    function _settleTaker(Market storage m, Context memory ctx, OrderInput calldata input, uint24 account, Take memory take)
        private
    {
        (uint256 asset, uint256 settlement, uint256 fee) =
            _payout(m, input.side, input.lots, input.tick, take.filled, take.value);
        _creditAccount(ctx.trader, m.assetId, asset, account);
        _creditAccount(ctx.trader, m.settlementId, settlement, account);
        m.feesAccrued += uint128(fee);
        emit TakerSettled(ctx.market, ctx.trader, input.side, input.kind, input.lots, uint32(take.filled), take.value, fee);
    }

    /// @dev Pays a closed order's owner what its lock and fills come to, and its fee to the market (E2), once.
    function _settleOrder(Market storage m, Session storage s, uint256 orderId, Order storage o, address owner)
        private
    {
        uint256 value = o.value;
        if (m.pricing == Pricing.UNIFORM && o.auctionLots != 0) {
            value += uint256(o.auctionLots) * s.uniformPrice2 * m.unitValue / 2;
        }
        Side side = Side(uint8(orderId >> 80));
        (uint256 asset, uint256 settlement, uint256 fee) =
            _payout(m, side, o.lots, uint16(orderId >> 64), o.filledLots, value);
        o.flags |= _CLAIMED;
        _creditAccount(owner, m.assetId, asset, o.account);
        _creditAccount(owner, m.settlementId, settlement, o.account);
        m.feesAccrued += uint128(fee);
        emit OrderClaimed(orderId, owner, asset, settlement, fee);
    }

    /**
     * @dev What a closed order of `lots` at `tick` that filled `filled` lots for `value` returns to its owner,
     * and the fee it pays. A bid locked `v + fee(v) + margin(v)` at its limit (v = value of all its lots at the
     * limit): it gets the filled asset and the lock less `value + fee(value)`. An ask locked its asset and
     * `margin(v)`: it gets `value - fee(value) + margin(v)` and its unfilled asset. (docs/exchange.md)
     */
    function _payout(Market storage m, Side side, uint256 lots, uint16 tick, uint256 filled, uint256 value)
        private
        view
        returns (uint256 asset, uint256 settlement, uint256 fee)
    {
        uint256 limitValue = lots * tick * m.unitValue;
        uint256 margin = limitValue * m.marginBps / _BPS;
        if (side == Side.BID) {
            fee = value * m.buyerFeeBps / _BPS;
            asset = filled * m.lotSize;
            settlement = limitValue + limitValue * m.buyerFeeBps / _BPS + margin - value - fee;
        } else {
            fee = value * m.sellerFeeBps / _BPS;
            asset = (lots - filled) * m.lotSize;
            settlement = value - fee + margin;
        }
    }

    // ---------------------------------------------------------------- the book

    /// @dev The best open order of a book (highest bid or lowest ask, earliest first), skipping and
    /// retiring exhausted orders and ticks on the way, each at the cost of one unit of `budget`. Not found
    /// with budget left: the book is empty; with none left: the caller's next call goes on from here.
    function _bestOrder(uint256 book, bool highest, Budget memory budget)
        private
        returns (uint256 orderId, bool found)
    {
        while (budget.left != 0) {
            (bool any, uint16 tick) = _bestTick(book, highest);
            if (!any) return (0, false);
            uint256 levelKey = book << 16 | tick;
            Level storage level = _levels[levelKey];
            (uint64 start, uint64 next) = (level.head, level.next);
            uint64 head = start;
            while (head < next) {
                orderId = levelKey << 64 | head;
                if (_orders[orderId].openLots != 0) {
                    if (head != start) level.head = head;
                    return (orderId, true);
                }
                ++head;
                if (--budget.left == 0) {
                    level.head = head;
                    return (0, false);
                }
            }
            level.head = head;
            _clearTick(book, tick);
            --budget.left;
        }
        return (0, false);
    }

    /// @dev Moves the FIFO of the order's price level past it (the order is at its head), and retires the
    /// tick when that empties the level.
    function _advanceHead(uint256 orderId) private {
        Level storage level = _levels[orderId >> 64];
        uint64 head = uint64(orderId) + 1;
        level.head = head;
        if (head == level.next) _clearTick(orderId >> 80, uint16(orderId >> 64));
    }

    function _bestTick(uint256 book, bool highest) private view returns (bool any, uint16 tick) {
        uint256 top = _topBits[book];
        if (top == 0) return (false, 0);
        uint256 word = highest ? Math.log2(top) : Math.log2(top & (~top + 1));
        uint256 bits = _tickBits[book << 8 | word];
        uint256 bit = highest ? Math.log2(bits) : Math.log2(bits & (~bits + 1));
        return (true, uint16(word << 8 | bit));
    }

    function _setTick(uint256 book, uint16 tick) private {
        uint256 key = book << 8 | (tick >> 8);
        uint256 bits = _tickBits[key];
        if (bits == 0) _topBits[book] |= 1 << (tick >> 8);
        _tickBits[key] = bits | (1 << (tick & 0xff));
    }

    function _clearTick(uint256 book, uint16 tick) private {
        uint256 key = book << 8 | (tick >> 8);
        uint256 bits = _tickBits[key] & ~(1 << (tick & 0xff));
        _tickBits[key] = bits;
        if (bits == 0) _topBits[book] &= ~(1 << (tick >> 8));
    }

    // ---------------------------------------------------------------- accounts and balances

    function _debit(address trader, uint16 tokenId, uint256 amount) private returns (uint24 account) {
        Balance storage b = _balances[trader][tokenId];
        uint256 free = b.free;
        if (free < amount) revert ExchangeInsufficientFree(trader, _tokens[tokenId - 1], free, amount);
        b.free = uint232(free - amount);
        account = b.account;
    }

    function _credit(address owner, uint16 tokenId, uint256 amount) private {
        _creditAccount(owner, tokenId, amount, _accountIds[owner]);
    }

    function _creditAccount(address owner, uint16 tokenId, uint256 amount, uint24 account) private {
        if (amount == 0) return;
        Balance storage b = _balances[owner][tokenId];
        if (b.account == 0) b.account = account;
        b.free += uint232(amount);
    }

    function _accountId(address owner) private returns (uint24 id) {
        id = _accountIds[owner];
        if (id == 0) {
            id = ++_accountCount;
            _owners[id] = owner;
            _accountIds[owner] = id;
        }
    }

    function _registerToken(address token) private returns (uint16 id) {
        id = _tokenIds[token];
        if (id == 0) {
            _tokens.push(token);
            id = uint16(_tokens.length);
            _tokenIds[token] = id;
        }
    }

    function _knownToken(address token) private view returns (uint16 id) {
        id = _tokenIds[token];
        if (id == 0) revert ExchangeUnknownToken(token);
    }

    // ---------------------------------------------------------------- checks

    function _checkParams(MarketParams calldata p) private pure returns (uint256 unit) {
        if (p.asset == address(0) || p.settlement == address(0) || p.asset == p.settlement) {
            revert ExchangeInvalidMarket(0);
        }
        if (p.lotSize == 0 || p.tickSize == 0) revert ExchangeInvalidMarket(1);
        uint256 product = uint256(p.lotSize) * p.tickSize;
        // Every value at a whole or half tick is an exact integer (docs/exchange.md, Units).
        if (product % (2 * _TONNE) != 0) revert ExchangeInvalidMarket(2);
        unit = product / _TONNE;
        if (unit > type(uint48).max) revert ExchangeInvalidMarket(3);
        if (p.minLots == 0) revert ExchangeInvalidMarket(4);
        if (p.buyerFeeBps > _MAX_FEE_BPS || p.sellerFeeBps > _MAX_FEE_BPS) revert ExchangeInvalidMarket(5);
        if (p.marginBps > _BPS) revert ExchangeInvalidMarket(6);
        if (p.sellerRoles & 0x1FE == 0 || p.buyerRoles & 0x1FE == 0 || (p.sellerRoles | p.buyerRoles) & ~uint16(0x1FE) != 0)
        {
            revert ExchangeInvalidMarket(7);
        }
    }

    function _checkTrader(Market storage m, Side side, address trader) private view {
        (Role role, MemberStatus status, uint32 region, bool inDebt) = registry.profileOf(trader);
        if (status != MemberStatus.ACTIVE) revert ExchangeTraderInactive(trader);
        if (inDebt) revert ExchangeTraderInDebt(trader);
        uint16 roles = side == Side.BID ? m.buyerRoles : m.sellerRoles;
        if (roles & (uint16(1) << uint8(role)) == 0) revert ExchangeRoleNotAllowed(trader, role, side);
        uint32 marketRegion = m.region;
        if (marketRegion != 0 && region != marketRegion) revert ExchangeRegionMismatch(trader, region, marketRegion);
    }

    /// @dev The current session, if it takes orders now: a sealed session's call phase only through reveals.
    function _tradingContext(Market storage m, uint32 market, uint256 maxFills, address trader, bool revealed)
        private
        view
        returns (Context memory ctx)
    {
        uint32 session = m.session;
        Session storage s = _sessions[_sessionKey(market, session)];
        SessionPhase phase = _phase(s);
        if (revealed ? phase != SessionPhase.CALL || !s.isSealed : phase != SessionPhase.CALL && phase != SessionPhase.CONTINUOUS) {
            revert ExchangeWrongPhase(market, session, phase);
        }
        if (!revealed && phase == SessionPhase.CALL && s.isSealed) revert ExchangeSealedSession(market, session);
        ctx = Context({market: market, session: session, phase: phase, maxFills: maxFills, trader: trader});
    }

    function _phase(Session storage s) private view returns (SessionPhase) {
        uint40 deadline = s.callDeadline;
        if (deadline == 0) return SessionPhase.NONE;
        if (block.timestamp < deadline) return SessionPhase.CALL;
        if (!s.cleared) return SessionPhase.CLEARING;
        if (block.timestamp < s.closesAt) return SessionPhase.CONTINUOUS;
        return SessionPhase.CLOSED;
    }

    function _market(uint32 market) private view returns (Market storage m) {
        m = _markets[market];
        if (m.unitValue == 0) revert ExchangeUnknownMarket(market);
    }

    function _book(uint32 market, uint32 session, Side side) private pure returns (uint256) {
        return uint256(market) << 40 | uint256(session) << 8 | uint256(uint8(side));
    }

    function _sessionKey(uint32 market, uint32 session) private pure returns (uint256) {
        return uint256(market) << 32 | session;
    }
}
