// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IConsortiumRegistry, Role} from "../interfaces/IConsortiumRegistry.sol";
import {PermissionedERC20} from "../tokens/PermissionedERC20.sol";

/**
 * @title SettlementToken
 * @notice The market's means of payment, a stand-in for a digital currency: issued by PLATFORM members against
 * fiat at the rate this deployment records, redeemed by burning, and transferable only between accounts that
 * may trade ({PermissionedERC20}). Holders can approve by signature (EIP-2612 {permit}), so a platform can relay
 * its users' payments without their sending a transaction ({ICreditManager-settleDeskOrders}).
 */
contract SettlementToken is PermissionedERC20, ERC20Permit {
    /// @notice The most recipients one {issueMany} takes.
    uint256 public constant MAX_ISSUES = 200;

    /// @dev A zero amount was given.
    error SettlementZeroAmount();

    /// @dev {issueMany} got `recipients` recipients and `amounts` amounts, or more than {MAX_ISSUES}.
    error SettlementBatchSize(uint256 recipients, uint256 amounts);

    /// @dev `caller` is not the registry's debt recorder.
    error SettlementNotDebtRecorder(address caller);

    /// @dev `to` received `amount`, issued by `by` against `fiatAmount` fiat minor units (reference `fiatReference`).
    event Issued(address indexed to, uint256 amount, uint256 fiatAmount, bytes32 fiatReference, address indexed by);

    /// @dev `holder` redeemed `amount` for `fiatAmount` fiat minor units (reference `fiatReference`).
    event Redeemed(address indexed holder, uint256 amount, uint256 fiatAmount, bytes32 fiatReference);

    /// @notice The fiat currency's code (e.g. "CNY").
    string public fiatCurrency;

    /// @notice Fiat minor units per `fiatRateDenominator` token units.
    uint256 public immutable fiatRateNumerator;

    /// @notice See {fiatRateNumerator}.
    uint256 public immutable fiatRateDenominator;

    constructor(
        IConsortiumRegistry registry_,
        string memory name_,
        string memory symbol_,
        uint8 decimals_,
        string memory fiatCurrency_,
        uint256 fiatRateNumerator_,
        uint256 fiatRateDenominator_
    ) PermissionedERC20(registry_, name_, symbol_, decimals_) ERC20Permit(name_) {
        if (fiatRateNumerator_ == 0 || fiatRateDenominator_ == 0) revert SettlementZeroAmount();
        fiatCurrency = fiatCurrency_;
        fiatRateNumerator = fiatRateNumerator_;
        fiatRateDenominator = fiatRateDenominator_;
    }

    /// @notice The fiat minor units that `amount` tokens stand for, rounded down.
    function fiatValue(uint256 amount) public view returns (uint256) {
        return amount * fiatRateNumerator / fiatRateDenominator;
    }

    /// @notice Issues `amount` to the active member `to` against fiat received off chain. Only active PLATFORMs.
    function issue(address to, uint256 amount, bytes32 fiatReference) external onlyRole(Role.PLATFORM) {
        if (amount == 0) revert SettlementZeroAmount();
        _requireActive(to);
        _mint(to, amount);
        emit Issued(to, amount, fiatValue(amount), fiatReference, msg.sender);
    }

    /// @notice Issues `amounts[i]` to each active member `recipients[i]` against one fiat deposit (reference
    /// `fiatReference`), e.g. a platform topping up its users' wallets. Only active PLATFORMs; all or nothing.
    function issueMany(address[] calldata recipients, uint256[] calldata amounts, bytes32 fiatReference)
        external
        onlyRole(Role.PLATFORM)
    {
        uint256 size = recipients.length;
        if (size == 0 || size != amounts.length || size > MAX_ISSUES) revert SettlementBatchSize(size, amounts.length);
        for (uint256 i; i < size; ++i) {
            uint256 amount = amounts[i];
            address to = recipients[i];
            if (amount == 0) revert SettlementZeroAmount();
            _requireActive(to);
            _mint(to, amount);
            emit Issued(to, amount, fiatValue(amount), fiatReference, msg.sender);
        }
    }

    /// @inheritdoc PermissionedERC20
    function decimals() public view override(ERC20, PermissionedERC20) returns (uint8) {
        return super.decimals();
    }

    /// @dev The registry's transfer policy ({PermissionedERC20-_update}).
    function _update(address from, address to, uint256 value) internal override(ERC20, PermissionedERC20) {
        super._update(from, to, value);
    }

    /// @dev The spender must be allowed to trade ({PermissionedERC20-_spendAllowance}).
    function _spendAllowance(address owner, address spender, uint256 value)
        internal
        override(ERC20, PermissionedERC20)
    {
        super._spendAllowance(owner, spender, value);
    }

    /**
     * @notice Moves `amount` from `payer` to the caller, the registry's debt recorder (the reward-penalty coin),
     * as the payment of a coin debt: the one movement a member in debt may make, since paying is how it gets
     * out of debt. Spends `payer`'s allowance to the caller like `transferFrom`.
     */
    function collectDebtPayment(address payer, uint256 amount) external {
        if (msg.sender != registry.debtRecorder()) revert SettlementNotDebtRecorder(msg.sender);
        if (amount == 0) revert SettlementZeroAmount();
        _spendAllowance(payer, msg.sender, amount);
        // Past the policy hook on purpose: the payer may be in debt; the receiver is the coin's pool.
        ERC20._update(payer, msg.sender, amount);
    }

    /// @notice Burns `amount` of the caller's tokens, to be paid out in fiat off chain.
    function redeem(uint256 amount, bytes32 fiatReference) external onlyActive {
        if (amount == 0) revert SettlementZeroAmount();
        _burn(msg.sender, amount);
        emit Redeemed(msg.sender, amount, fiatValue(amount), fiatReference);
    }
}
