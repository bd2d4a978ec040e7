// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @dev Reason codes of the rules (DESIGN.md section 2.3). A deployment may leave some out or add others.
uint8 constant REASON_ACCURATE_REPORT = 1; // reward: report within tolerance of the verified quantity
uint8 constant REASON_VERIFIED_REDUCTION = 2; // reward per tonne below the previous audited period
uint8 constant REASON_MISREPORT = 3; // penalty per tonne of the gap beyond tolerance
uint8 constant REASON_SHORT_SURRENDER = 4; // penalty per tonne not surrendered by the deadline
uint8 constant REASON_FALSE_VERIFICATION = 5; // penalty (verifiers) per tonne of the gap to the audit's finding
uint8 constant REASON_UNREPORTED = 6; // penalty: no audited report by the deadline

/// @notice One rule: `flat + perTonne * quantity / 1e6` coin units, a reward or a penalty.
struct CoinRule {
    bool exists;
    bool penalty;
    uint128 flat;
    uint128 perTonne;
}

/// @notice What applying a rule did: `amount` computed from `quantity`; `minted` and `burned` changed the
/// subject's balance, `debtChange` its debt (positive: added; negative: repaid from a reward).
struct RuleOutcome {
    uint256 quantity;
    uint256 amount;
    uint256 minted;
    uint256 burned;
    int256 debtChange;
    bytes32 evidenceHash;
    address by;
}

/**
 * @title IRewardPenaltyCoin
 * @notice The reward-penalty credit coin (DESIGN.md section 2.3): used instead of administrative fines. Rules are
 * fixed at deployment; a regulator (or a bound module: MRV audits, compliance settlement) applies a rule to an
 * enterprise or verifier with an evidence hash, and the contract computes the amount. A key (reason, subject,
 * audit key) is applied at most once. A penalty beyond the balance leaves a debt, mirrored in the registry so
 * that every trading entry point refuses the debtor. The coin is not transferable; it converts into the
 * settlement token at a fixed rate from a pool the regulator funds, and a debt can be repaid into that pool.
 */
interface IRewardPenaltyCoin {
    /// @dev `reason` has no rule in this deployment.
    error CoinUnknownReason(uint8 reason);

    /// @dev The rule arrays given at deployment differ in length, or repeat reason `reason` (0 is invalid).
    error CoinInvalidRules(uint8 reason);

    /// @dev The conversion rate is zero in its numerator or denominator.
    error CoinInvalidRate();

    /// @dev `caller` may not apply rules: neither an active REGULATOR (of the subject's region) nor a module.
    error CoinNotAuthorised(address caller);

    /// @dev `subject` is not an enterprise or a verifier member.
    error CoinInvalidSubject(address subject);

    /// @dev A rule needs an evidence hash.
    error CoinMissingEvidence();

    /// @dev Rule `reason` was applied to `subject` for `auditKey` already.
    error CoinRuleAlreadyApplied(uint8 reason, address subject, bytes32 auditKey);

    /// @dev Modules are bound once, and already were.
    error CoinModulesLocked();

    /// @dev The coin moves only by rules, conversion and penalties, never by transfer.
    error CoinNotTransferable();

    /// @dev A zero amount was given.
    error CoinZeroAmount();

    /// @dev `account` holds `balance` coin, less than `needed`.
    error CoinInsufficientBalance(address account, uint256 balance, uint256 needed);

    /// @dev The conversion pool holds `available` settlement tokens, less than `needed`.
    error CoinPoolInsufficient(uint256 available, uint256 needed);

    /// @dev Converting `coinAmount` would pay nothing at the rate; at least `minimum` is needed.
    error CoinConversionTooSmall(uint256 coinAmount, uint256 minimum);

    /// @dev `debtor` owes `debt`, less than `amount`.
    error CoinDebtExceeded(address debtor, uint256 debt, uint256 amount);

    /// @dev Rule `reason` was applied to `subject` for `auditKey`, with the given outcome.
    event RuleApplied(address indexed subject, uint8 indexed reason, bytes32 indexed auditKey, RuleOutcome outcome);

    /// @dev `module` may apply rules (bound once at deployment).
    event ModuleAuthorised(address indexed module);

    /// @dev `funder` added `amount` settlement tokens to the conversion pool.
    event PoolFunded(address indexed funder, uint256 amount);

    /// @dev `holder` converted `coinAmount` coin into `paid` settlement tokens.
    event Converted(address indexed holder, uint256 coinAmount, uint256 paid);

    /// @dev `payer` repaid `coinAmount` of the debt of `debtor` with `paid` settlement tokens.
    event DebtRepaid(address indexed debtor, address indexed payer, uint256 coinAmount, uint256 paid);

    /**
     * @notice Binds the contracts that apply rules automatically (the MRV audit and compliance settlement). Once.
     * @dev Requires an active national REGULATOR. Emits one {ModuleAuthorised} per module.
     */
    function authoriseModules(address[] calldata modules) external;

    /**
     * @notice Applies rule `reason` to `subject`; returns the computed amount.
     * @param quantity the tonnage the rule is per (6 decimals), ignored by flat rules.
     * @param auditKey what the rule is applied for (e.g. one audit); each (reason, subject, auditKey) once.
     * @param evidenceHash the hash of the evidence; required.
     *
     * Requirements: the caller is a bound module or an active REGULATOR (national, or of the subject's region);
     * the rule exists; `subject` is an ENTERPRISE or VERIFIER member; `evidenceHash` is not zero; the key is new.
     *
     * A reward first repays any debt, then mints. A penalty burns up to the balance; the rest becomes debt.
     * Emits a {RuleApplied} event.
     */
    function applyRule(address subject, uint8 reason, uint256 quantity, bytes32 auditKey, bytes32 evidenceHash)
        external
        returns (uint256 amount);

    /// @notice Moves `amount` settlement tokens from the caller (an active REGULATOR) into the conversion pool.
    function fundPool(uint256 amount) external;

    /// @notice Burns `coinAmount` of the caller's coin and pays `coinAmount * rate` settlement tokens (rounded
    /// down) from the pool. Returns the amount paid.
    function convert(uint256 coinAmount) external returns (uint256 paid);

    /// @notice Repays `coinAmount` of `debtor`'s debt: the caller (the debtor itself or anyone) pays
    /// `coinAmount * rate` settlement tokens (rounded up) into the pool, having approved the coin for them.
    /// Returns the amount paid.
    function repayDebt(address debtor, uint256 coinAmount) external returns (uint256 paid);

    /// @notice The rule for `reason` (exists false if none).
    function rule(uint8 reason) external view returns (CoinRule memory);

    /// @notice The reason codes this deployment has rules for, in deployment order.
    function reasons() external view returns (uint8[] memory);

    /// @notice What rule `reason` would compute for `quantity`.
    function ruleAmount(uint8 reason, uint256 quantity) external view returns (uint256);

    /// @notice The coin `account` owes.
    function debtOf(address account) external view returns (uint256);

    /// @notice The total debt owed by all members.
    function totalDebt() external view returns (uint256);

    /// @notice Whether rule `reason` was applied to `subject` for `auditKey`.
    function isApplied(uint8 reason, address subject, bytes32 auditKey) external view returns (bool);

    /// @notice Whether `account` is a bound module.
    function isModule(address account) external view returns (bool);

    /// @notice The settlement token the coin converts into.
    function settlementToken() external view returns (address);

    /// @notice Settlement-token units per coin unit: `rateNumerator / rateDenominator`.
    function rateNumerator() external view returns (uint256);

    /// @notice See {rateNumerator}.
    function rateDenominator() external view returns (uint256);
}
