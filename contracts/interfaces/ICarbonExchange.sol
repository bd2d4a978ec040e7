// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Role} from "./IConsortiumRegistry.sol";

/// @notice The side of an order.
enum Side {
    BID,
    ASK
}

/// @notice How the call auction prices matched pairs: each at its own midpoint (the seed design), or all at
/// the midpoint of the last matched pair.
enum Pricing {
    MIDPOINT,
    UNIFORM
}

/// @notice A limit order rests what it cannot fill; a market order never rests.
enum OrderKind {
    LIMIT,
    MARKET
}

/// @notice A session's phase: CALL until the call deadline, CLEARING until the auction is cleared,
/// CONTINUOUS until the session closes, then CLOSED. NONE: no such session.
enum SessionPhase {
    NONE,
    CALL,
    CLEARING,
    CONTINUOUS,
    CLOSED
}

/// @notice Why an order's remaining quantity was cancelled.
enum CancelReason {
    OWNER,
    SELF_TRADE
}

/// @notice What a platform gives to create a market. See docs/exchange.md for the units.
struct MarketParams {
    address asset; // the carbon token traded (an allowance vintage, offsets, personal credits)
    address settlement; // the means of payment
    uint64 lotSize; // asset units per lot
    uint64 tickSize; // settlement units per tonne per tick
    uint24 minLots;
    uint16 buyerFeeBps;
    uint16 sellerFeeBps;
    uint16 marginBps;
    Pricing pricing;
    uint32 region; // 0: national
    uint16 sellerRoles; // bit 1 << role for each role that may sell
    uint16 buyerRoles; // bit 1 << role for each role that may buy
}

/// @notice A market as stored, with its operator (the fee recipient) and current session.
struct MarketInfo {
    MarketParams params;
    address operator;
    uint32 session;
    uint256 feesAccrued; // settlement units owed to the operator
}

/// @notice A session's schedule and auction result.
struct SessionInfo {
    SessionPhase phase;
    bool isSealed; // call-phase orders only by commit and reveal (see SealedAuction)
    uint40 callDeadline;
    uint40 closesAt;
    bool cleared;
    uint32 uniformPrice2; // UNIFORM markets: the auction price in half-ticks, once cleared
    uint16 lastBidTick; // the last matched pair so far
    uint16 lastAskTick;
}

/// @notice One order, as `orderOf` returns it. Quantities in lots; `value` in settlement units (fills
/// priced when they happen); `auctionLots` are the lots filled in the call auction.
struct OrderInfo {
    address owner;
    uint32 market;
    uint32 session;
    Side side;
    uint16 tick;
    uint64 index;
    uint32 lots;
    uint32 openLots;
    uint32 filledLots;
    uint32 auctionLots;
    uint96 value;
    bool claimed;
}

/// @notice One order of a batch.
struct OrderInput {
    Side side;
    OrderKind kind;
    uint32 lots;
    uint16 tick; // limit price (LIMIT) or worst price (MARKET), in ticks
}

/**
 * @title ICarbonExchange
 * @notice The two-stage exchange (DESIGN.md section 2.5; rules in docs/exchange.md): markets of (asset,
 * settlement token) run sessions of a call double auction followed by continuous limit and market orders, on
 * funds deposited in the exchange. Every amount is exact (see docs/exchange.md, Units); nothing is created or
 * lost (docs/invariants.md, E1-E4).
 */
interface ICarbonExchange {
    error ExchangeUnknownMarket(uint32 market);
    error ExchangeInvalidMarket(uint8 field);
    error ExchangeNotOperator(address caller, uint32 market);
    error ExchangeNotMarketCreator(address caller);
    error ExchangeSessionOpen(uint32 market, uint32 session);
    error ExchangeInvalidSchedule(uint40 timestamp, uint40 callDeadline, uint40 closesAt);
    error ExchangeWrongPhase(uint32 market, uint32 session, SessionPhase phase);
    error ExchangeUnknownToken(address token);
    error ExchangeZeroAmount();
    error ExchangeInsufficientFree(address account, address token, uint256 free, uint256 needed);
    error ExchangeTraderInactive(address account);
    error ExchangeTraderInDebt(address account);
    error ExchangeRoleNotAllowed(address account, Role role, Side side);
    error ExchangeRegionMismatch(address account, uint32 region, uint32 marketRegion);
    error ExchangeBadQuantity(uint32 lots, uint24 minLots);
    error ExchangeBadPrice(uint16 tick);
    error ExchangeMarketOrderInCall(uint32 market);
    error ExchangeUnknownOrder(uint256 orderId);
    error ExchangeNotOrderOwner(address caller, uint256 orderId);
    error ExchangeOrderClosed(uint256 orderId);
    error ExchangeNothingToClaim(uint256 orderId);
    error ExchangeBatchSize(uint256 size, uint256 max);
    error ExchangeSealedSession(uint32 market, uint32 session);
    error ExchangeNotSealer(address caller);

    event MarketCreated(uint32 indexed market, address indexed operator, MarketParams params);
    event SessionOpened(uint32 indexed market, uint32 indexed session, uint40 callDeadline, uint40 closesAt, bool isSealed);
    event SealerBound(address indexed sealer);
    event Deposited(address indexed account, address indexed token, uint256 amount);
    event Withdrawn(address indexed account, address indexed token, uint256 amount);
    event OrderPlaced(
        uint256 indexed orderId, address indexed owner, uint32 indexed market, Side side, uint16 tick, uint32 lots
    );
    event OrderCancelled(uint256 indexed orderId, uint32 lots, CancelReason reason);
    /// @dev `lots` traded at `price2` half-ticks (0 in a UNIFORM auction: see AuctionCleared) worth `value`.
    /// The new order of a continuous trade (the taker) appears as 0: if it rests, the OrderPlaced event of the
    /// same transaction gives its id; if not, TakerSettled reports it.
    event Trade(
        uint32 indexed market, uint32 indexed session, uint256 bidOrder, uint256 askOrder, uint32 lots, uint32 price2,
        uint256 value
    );
    event AuctionCleared(uint32 indexed market, uint32 indexed session, uint32 uniformPrice2);
    event OrderClaimed(uint256 indexed orderId, address indexed owner, uint256 asset, uint256 settlement, uint256 fee);
    event TakerSettled(
        uint32 indexed market, address indexed taker, Side side, OrderKind kind, uint32 lots, uint32 filledLots,
        uint256 value, uint256 fee
    );
    event FeesCollected(uint32 indexed market, address indexed operator, uint256 amount);

    /// @notice Creates a market operated by the caller (an active PLATFORM or REGULATOR), who receives its fees.
    function createMarket(MarketParams calldata params) external returns (uint32 market);

    /// @notice Opens the market's next session (its operator), after the previous one closed. In a sealed
    /// session the call phase takes orders only as revealed commitments (SealedAuction).
    function openSession(uint32 market, uint40 callDeadline, uint40 closesAt, bool isSealed)
        external
        returns (uint32 session);

    /// @notice Binds the sealed-bid contract, once, by the deployer.
    function bindSealer(address sealer) external;

    /// @notice The sealed-bid contract that places revealed orders.
    function sealer() external view returns (address);

    /// @notice Places `owner`'s revealed order in a sealed session's call phase, with every entry check made
    /// on `owner` and funds locked from `owner`'s deposit. Only the sealer.
    function placeRevealed(address owner, uint32 market, OrderInput calldata order) external returns (uint256 orderId);

    /// @notice Moves `amount` of `token` (a market's asset or settlement token) from the caller into its deposit.
    function deposit(address token, uint256 amount) external;

    /// @notice Moves `amount` of the caller's free `token` out of the exchange.
    function withdraw(address token, uint256 amount) external;

    /// @notice Places one order in the market's current session; returns its id (0 for a taker that filled
    /// at once, or a market order). `maxFills` bounds the resting orders a continuous order walks.
    function placeOrder(uint32 market, OrderInput calldata order, uint256 maxFills) external returns (uint256 orderId);

    /// @notice Places several orders in one call (same checks, one entry check).
    function placeOrders(uint32 market, OrderInput[] calldata orders, uint256 maxFills)
        external
        returns (uint256[] memory orderIds);

    /// @notice Cancels the remaining quantity of the caller's own order, in any phase; its funds come back by
    /// `claim`.
    function cancel(uint256 orderId) external;

    /// @notice Clears the call auction after the deadline: at most `maxSteps` matching steps. Anyone.
    /// Returns whether clearing is done.
    function clear(uint32 market, uint256 maxSteps) external returns (bool done);

    /// @notice Settles closed orders (fully filled or cancelled, or any order once its session closed) into
    /// their owners' deposits. Anyone, for any orders; orders settled already or not claimable yet are
    /// skipped, and a call that settles none is refused. Returns how many it settled.
    function claim(uint256[] calldata orderIds) external returns (uint256 settled);

    /// @notice Moves the market's accrued fees into its operator's deposit. Anyone.
    function collectFees(uint32 market) external;

    function marketCount() external view returns (uint32);
    function marketOf(uint32 market) external view returns (MarketInfo memory);
    function sessionOf(uint32 market, uint32 session) external view returns (SessionInfo memory);
    function orderOf(uint256 orderId) external view returns (OrderInfo memory);
    function freeBalance(address account, address token) external view returns (uint256);

    /// @notice Whether `token` belongs to a market (only such tokens may be deposited).
    function tokenListed(address token) external view returns (bool);
}
