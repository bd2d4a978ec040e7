// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ICarbonExchange, MarketInfo, OrderInput, SessionInfo, SessionPhase} from "../interfaces/ICarbonExchange.sol";
import {IConsortiumRegistry} from "../interfaces/IConsortiumRegistry.sol";
import {RegistryGuard} from "../registry/RegistryGuard.sol";

/**
 * @title SealedAuction
 * @notice Sealed bids and asks for a sealed session's call auction (DESIGN.md 2.5): until the commit deadline
 * a trader commits the hash of its order with a bond in the market's settlement token; from then until the
 * call deadline it reveals the order, which the exchange places for it (every entry check and lock on the
 * trader) and its bond comes back. A commitment not revealed by the call deadline forfeits its bond to the
 * market's operator. Nobody sees an order before the commit deadline, and nobody can change it afterwards.
 * @dev The commitment binds the trader, this contract, the chain, the market, the session, the order and a
 * salt, so a reveal can be replayed neither by another account nor in another session or deployment.
 */
contract SealedAuction is RegistryGuard, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    error SealedNotOperator(address caller, uint32 market);
    error SealedNotSealedCall(uint32 market, uint32 session);
    error SealedRoundExists(uint32 market, uint32 session);
    error SealedUnknownRound(uint32 market, uint32 session);
    error SealedInvalidDeadline(uint40 commitDeadline, uint40 callDeadline);
    error SealedCommitClosed(uint32 market, uint32 session, uint40 commitDeadline);
    error SealedRevealClosed(uint32 market, uint32 session);
    error SealedDuplicateCommitment(bytes32 commitment);
    error SealedUnknownCommitment(bytes32 commitment);
    error SealedNotForfeitable(bytes32 commitment);

    event RoundConfigured(uint32 indexed market, uint32 indexed session, uint40 commitDeadline, uint256 bond);
    event Committed(bytes32 indexed commitment, address indexed trader, uint32 indexed market, uint32 session, uint256 bond);
    event Revealed(bytes32 indexed commitment, address indexed trader, uint256 orderId);
    event Forfeited(bytes32 indexed commitment, address indexed trader, address indexed beneficiary, uint256 bond);

    struct Round {
        uint40 commitDeadline;
        uint40 callDeadline;
        uint128 bond;
        address bondToken;
        address beneficiary;
    }

    struct Commitment {
        address trader;
        uint32 market;
        uint32 session;
        uint128 bond;
        bool closed; // revealed or forfeited
    }

    ICarbonExchange public immutable exchange;
    mapping(uint256 roundKey => Round) private _rounds;
    mapping(bytes32 commitment => Commitment) private _commitments;

    constructor(IConsortiumRegistry registry_, ICarbonExchange exchange_) RegistryGuard(registry_) {
        exchange = exchange_;
    }

    /// @notice Sets the commit deadline and the bond of the current sealed session of `market` (its operator).
    function configure(uint32 market, uint40 commitDeadline, uint128 bond) external {
        MarketInfo memory info = exchange.marketOf(market);
        if (msg.sender != info.operator) revert SealedNotOperator(msg.sender, market);
        SessionInfo memory session = exchange.sessionOf(market, info.session);
        if (!session.isSealed || session.phase != SessionPhase.CALL) revert SealedNotSealedCall(market, info.session);
        Round storage round = _rounds[_key(market, info.session)];
        if (round.commitDeadline != 0) revert SealedRoundExists(market, info.session);
        if (commitDeadline <= block.timestamp || commitDeadline >= session.callDeadline) {
            revert SealedInvalidDeadline(commitDeadline, session.callDeadline);
        }
        _rounds[_key(market, info.session)] = Round({
            commitDeadline: commitDeadline,
            callDeadline: session.callDeadline,
            bond: bond,
            bondToken: info.params.settlement,
            beneficiary: info.operator
        });
        emit RoundConfigured(market, info.session, commitDeadline, bond);
    }

    /// @notice Commits to an order of the current sealed session of `market`, paying the round's bond (the
    /// caller approves the settlement token first). `commitment` is {commitmentOf} of the order.
    function commit(uint32 market, uint32 session, bytes32 commitment) external nonReentrant onlyActive {
        Round storage round = _round(market, session);
        if (block.timestamp >= round.commitDeadline) revert SealedCommitClosed(market, session, round.commitDeadline);
        if (_commitments[commitment].trader != address(0)) revert SealedDuplicateCommitment(commitment);
        _commitments[commitment] =
            Commitment({trader: msg.sender, market: market, session: session, bond: round.bond, closed: false});
        if (round.bond != 0) IERC20(round.bondToken).safeTransferFrom(msg.sender, address(this), round.bond);
        emit Committed(commitment, msg.sender, market, session, round.bond);
    }

    /// @notice Reveals the caller's committed order: the exchange places it, and the bond comes back.
    function reveal(uint32 market, uint32 session, OrderInput calldata order, bytes32 salt)
        external
        nonReentrant
        returns (uint256 orderId)
    {
        Round storage round = _round(market, session);
        if (block.timestamp < round.commitDeadline || block.timestamp >= round.callDeadline) {
            revert SealedRevealClosed(market, session);
        }
        bytes32 commitment = commitmentOf(msg.sender, market, session, order, salt);
        Commitment storage c = _commitments[commitment];
        if (c.trader == address(0) || c.closed) revert SealedUnknownCommitment(commitment);
        c.closed = true;
        orderId = exchange.placeRevealed(msg.sender, market, order);
        if (c.bond != 0) IERC20(round.bondToken).safeTransfer(msg.sender, c.bond);
        emit Revealed(commitment, msg.sender, orderId);
    }

    /// @notice Sends the bonds of commitments not revealed by the call deadline to the market's operator.
    /// Anyone, for any commitments (at most 100).
    function forfeit(bytes32[] calldata commitments) external nonReentrant {
        if (commitments.length > 100) revert SealedNotForfeitable(bytes32(commitments.length));
        for (uint256 i; i < commitments.length; ++i) {
            Commitment storage c = _commitments[commitments[i]];
            Round storage round = _rounds[_key(c.market, c.session)];
            if (c.trader == address(0) || c.closed || block.timestamp < round.callDeadline) {
                revert SealedNotForfeitable(commitments[i]);
            }
            c.closed = true;
            if (c.bond != 0) IERC20(round.bondToken).safeTransfer(round.beneficiary, c.bond);
            emit Forfeited(commitments[i], c.trader, round.beneficiary, c.bond);
        }
    }

    /// @notice The commitment of `trader`'s order: what {commit} takes and {reveal} checks.
    function commitmentOf(address trader, uint32 market, uint32 session, OrderInput calldata order, bytes32 salt)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(block.chainid, address(this), trader, market, session, order.side, order.kind, order.lots, order.tick, salt)
        );
    }

    /// @notice A round's deadlines and bond.
    function roundOf(uint32 market, uint32 session) external view returns (Round memory) {
        return _rounds[_key(market, session)];
    }

    /// @notice A commitment's trader, session, bond and whether it was revealed or forfeited.
    function commitmentInfo(bytes32 commitment) external view returns (Commitment memory) {
        return _commitments[commitment];
    }

    function _round(uint32 market, uint32 session) private view returns (Round storage round) {
        round = _rounds[_key(market, session)];
        if (round.commitDeadline == 0) revert SealedUnknownRound(market, session);
    }

    function _key(uint32 market, uint32 session) private pure returns (uint256) {
        return uint256(market) << 32 | session;
    }
}
