// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IConsortiumRegistry, MemberStatus, Role} from "../interfaces/IConsortiumRegistry.sol";
import {CoinRule, IRewardPenaltyCoin, RuleOutcome} from "../interfaces/IRewardPenaltyCoin.sol";
import {RegistryGuard} from "../registry/RegistryGuard.sol";
import {SettlementToken} from "../settlement/SettlementToken.sol";

/**
 * @title RewardPenaltyCoin
 * @notice See {IRewardPenaltyCoin}. 6 decimals, like the carbon units its per-tonne rules count.
 * @dev Supply changes only in {applyRule} (reward mints, penalty burns) and {convert} (burns): see
 * docs/invariants.md. The coin is the registry's debt recorder, so a debt here is a debt flag there.
 */
contract RewardPenaltyCoin is IRewardPenaltyCoin, ERC20, RegistryGuard, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint256 private constant _TONNE = 1e6;

    address public immutable settlementToken;
    uint256 public immutable rateNumerator;
    uint256 public immutable rateDenominator;

    mapping(uint8 reason => CoinRule) private _rules;
    uint8[] private _reasons;
    mapping(address account => uint256) private _debts;
    uint256 public totalDebt;
    mapping(bytes32 key => bool) private _applied;
    mapping(address account => bool) private _modules;
    bool private _modulesBound;

    /**
     * @param reasons_ reason codes; `penalties_`, `flats_` and `perTonnes_` give each one's rule.
     * @param rateNumerator_ settlement-token units per `rateDenominator_` coin units.
     */
    constructor(
        IConsortiumRegistry registry_,
        address settlementToken_,
        uint256 rateNumerator_,
        uint256 rateDenominator_,
        uint8[] memory reasons_,
        bool[] memory penalties_,
        uint128[] memory flats_,
        uint128[] memory perTonnes_
    ) ERC20("Reward-Penalty Credit Coin", "RPC") RegistryGuard(registry_) {
        if (rateNumerator_ == 0 || rateDenominator_ == 0) revert CoinInvalidRate();
        uint256 count = reasons_.length;
        if (penalties_.length != count || flats_.length != count || perTonnes_.length != count) {
            revert CoinInvalidRules(0);
        }
        for (uint256 i; i < count; ++i) {
            uint8 reason = reasons_[i];
            if (reason == 0 || _rules[reason].exists) revert CoinInvalidRules(reason);
            _rules[reason] = CoinRule({exists: true, penalty: penalties_[i], flat: flats_[i], perTonne: perTonnes_[i]});
            _reasons.push(reason);
        }
        settlementToken = settlementToken_;
        rateNumerator = rateNumerator_;
        rateDenominator = rateDenominator_;
    }

    /// @inheritdoc ERC20
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    // ---------------------------------------------------------------- rules

    /// @inheritdoc IRewardPenaltyCoin
    function authoriseModules(address[] calldata modules) external {
        _requireNationalRegulator(msg.sender);
        if (_modulesBound) revert CoinModulesLocked();
        _modulesBound = true;
        for (uint256 i; i < modules.length; ++i) {
            _modules[modules[i]] = true;
            emit ModuleAuthorised(modules[i]);
        }
    }

    /// @inheritdoc IRewardPenaltyCoin
    function applyRule(address subject, uint8 reason, uint256 quantity, bytes32 auditKey, bytes32 evidenceHash)
        external
        returns (uint256 amount)
    {
        CoinRule memory r = _rules[reason];
        if (!r.exists) revert CoinUnknownReason(reason);
        (Role role, MemberStatus status, uint32 region,) = registry.profileOf(subject);
        if (status == MemberStatus.NONE || (role != Role.ENTERPRISE && role != Role.VERIFIER)) {
            revert CoinInvalidSubject(subject);
        }
        if (!_modules[msg.sender]) _requireRegulatorOf(msg.sender, region);
        if (evidenceHash == bytes32(0)) revert CoinMissingEvidence();
        bytes32 key = _key(reason, subject, auditKey);
        if (_applied[key]) revert CoinRuleAlreadyApplied(reason, subject, auditKey);
        _applied[key] = true;

        amount = r.flat + r.perTonne * quantity / _TONNE;
        RuleOutcome memory outcome = RuleOutcome({
            quantity: quantity,
            amount: amount,
            minted: 0,
            burned: 0,
            debtChange: 0,
            evidenceHash: evidenceHash,
            by: msg.sender
        });
        _book(subject, r.penalty, outcome);
        emit RuleApplied(subject, reason, auditKey, outcome);
    }

    /// @dev A reward repays debt first, then mints; a penalty burns up to the balance, the rest is debt.
    function _book(address subject, bool penalty, RuleOutcome memory outcome) private {
        uint256 amount = outcome.amount;
        uint256 debt = _debts[subject];
        if (!penalty) {
            uint256 repaid = Math.min(debt, amount);
            outcome.minted = amount - repaid;
            outcome.debtChange = -int256(repaid);
            if (repaid > 0) _setDebt(subject, debt - repaid);
            if (outcome.minted > 0) _mint(subject, outcome.minted);
        } else {
            outcome.burned = Math.min(balanceOf(subject), amount);
            uint256 added = amount - outcome.burned;
            outcome.debtChange = int256(added);
            if (outcome.burned > 0) _burn(subject, outcome.burned);
            if (added > 0) _setDebt(subject, debt + added);
        }
    }

    // ---------------------------------------------------------------- conversion and repayment

    /// @inheritdoc IRewardPenaltyCoin
    function fundPool(uint256 amount) external nonReentrant {
        _requireRole(msg.sender, Role.REGULATOR);
        if (amount == 0) revert CoinZeroAmount();
        IERC20(settlementToken).safeTransferFrom(msg.sender, address(this), amount);
        emit PoolFunded(msg.sender, amount);
    }

    /// @inheritdoc IRewardPenaltyCoin
    function convert(uint256 coinAmount) external nonReentrant returns (uint256 paid) {
        if (coinAmount == 0) revert CoinZeroAmount();
        uint256 balance = balanceOf(msg.sender);
        if (balance < coinAmount) revert CoinInsufficientBalance(msg.sender, balance, coinAmount);
        // Rounded down: the pool never pays more than the rate.
        paid = Math.mulDiv(coinAmount, rateNumerator, rateDenominator);
        if (paid == 0) revert CoinConversionTooSmall(coinAmount, Math.ceilDiv(rateDenominator, rateNumerator));
        uint256 available = IERC20(settlementToken).balanceOf(address(this));
        if (available < paid) revert CoinPoolInsufficient(available, paid);
        _burn(msg.sender, coinAmount);
        IERC20(settlementToken).safeTransfer(msg.sender, paid);
        emit Converted(msg.sender, coinAmount, paid);
    }

    /// @inheritdoc IRewardPenaltyCoin
    function repayDebt(address debtor, uint256 coinAmount) external nonReentrant returns (uint256 paid) {
        if (coinAmount == 0) revert CoinZeroAmount();
        uint256 debt = _debts[debtor];
        if (debt < coinAmount) revert CoinDebtExceeded(debtor, debt, coinAmount);
        // Rounded up: the pool never receives less than the rate.
        paid = Math.mulDiv(coinAmount, rateNumerator, rateDenominator, Math.Rounding.Ceil);
        _setDebt(debtor, debt - coinAmount);
        // Not transferFrom: the payer may be the debtor, whom the token's policy refuses while in debt.
        SettlementToken(settlementToken).collectDebtPayment(msg.sender, paid);
        emit DebtRepaid(debtor, msg.sender, coinAmount, paid);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IRewardPenaltyCoin
    function rule(uint8 reason) external view returns (CoinRule memory) {
        return _rules[reason];
    }

    /// @inheritdoc IRewardPenaltyCoin
    function reasons() external view returns (uint8[] memory) {
        return _reasons;
    }

    /// @inheritdoc IRewardPenaltyCoin
    function ruleAmount(uint8 reason, uint256 quantity) external view returns (uint256) {
        CoinRule memory r = _rules[reason];
        if (!r.exists) revert CoinUnknownReason(reason);
        return r.flat + r.perTonne * quantity / _TONNE;
    }

    /// @inheritdoc IRewardPenaltyCoin
    function debtOf(address account) external view returns (uint256) {
        return _debts[account];
    }

    /// @inheritdoc IRewardPenaltyCoin
    function isApplied(uint8 reason, address subject, bytes32 auditKey) external view returns (bool) {
        return _applied[_key(reason, subject, auditKey)];
    }

    /// @inheritdoc IRewardPenaltyCoin
    function isModule(address account) external view returns (bool) {
        return _modules[account];
    }

    // ---------------------------------------------------------------- internals

    /// @dev Mints and burns only: the coin is a credit record, not a means of payment between members.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) revert CoinNotTransferable();
        super._update(from, to, value);
    }

    function _setDebt(address account, uint256 debt) private {
        uint256 previous = _debts[account];
        _debts[account] = debt;
        totalDebt = totalDebt + debt - previous;
        if ((previous == 0) != (debt == 0)) registry.setInDebt(account, debt != 0);
    }

    function _key(uint8 reason, address subject, bytes32 auditKey) private pure returns (bytes32) {
        return keccak256(abi.encode(reason, subject, auditKey));
    }

    function _requireRegulatorOf(address caller, uint32 region) private view {
        (bool isRegulator, uint32 callerRegion) = _regulatorRegion(caller);
        if (!isRegulator || (callerRegion != 0 && callerRegion != region)) revert CoinNotAuthorised(caller);
    }

    function _requireNationalRegulator(address caller) private view {
        _requireRegulatorOf(caller, 0);
    }
}
