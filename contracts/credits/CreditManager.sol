// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {
    CreditBatch, CreditClaim, DeskOrder, ICreditManager, MethodologyRecord, PostedPrices, SettlementPermit,
    SignedDeskOrder, WelfareProject
} from "../interfaces/ICreditManager.sol";
import {IConsortiumRegistry, MemberStatus, Role} from "../interfaces/IConsortiumRegistry.sol";
import {PermissionedERC20} from "../tokens/PermissionedERC20.sol";

/**
 * @title CreditManager
 * @notice See {ICreditManager}. This contract is also the personal carbon credit (PCC) token: an ERC-20 with
 * 6 decimals (1.000000 PCC = 1 tCO2e) and the registry's transfer policy ({PermissionedERC20}), which only it
 * mints (claims of committed batches), burns (deficit cover, redemption, donation, each on the holder's call)
 * and moves outside transfers (desk trades, on the holder's call). One contract rather than a manager calling
 * a token saves a claim the cross-contract call (~4.5k gas; docs/benchmarks.md).
 * @dev Claims are marked in a bitmap per batch (256 entries a slot), so a claim writes one warm-ish slot, not a
 * new one. PCC conservation: a batch mints at most its committed total (`claimed <= total`), and all a
 * platform's batches of a period at most its ceiling; credits are burned only on their holder's own call
 * (deficit cover, redemption, donation) and moved only between the caller and a platform at its posted prices.
 * Using credits: every payment is a transfer of the settlement token between members (platform to seller or
 * merchant, buyer to platform) that this contract makes as an approved spender; it never holds any.
 */
contract CreditManager is ICreditManager, PermissionedERC20, EIP712, Nonces {
    using SafeERC20 for IERC20;

    uint16 private constant _BPS = 10_000;
    uint256 private constant _UNIT = 1e6; // PCC units per whole credit (1 tCO2e): prices are per whole credit
    uint256 public constant MAX_CLAIMS = 200;
    uint256 public constant MAX_DESK_ORDERS = 200;
    uint8 private constant _SELL = 0;
    uint8 private constant _BUY = 1;
    uint8 private constant _BUY_AND_COVER = 2;
    bytes32 private constant _DESK_ORDER_TYPEHASH = keccak256(
        "DeskOrder(address holder,address platform,uint8 kind,uint16 period,uint128 amount,uint128 limitPrice,"
        "uint64 nonce,uint64 deadline)"
    );

    struct Issuance {
        uint128 committed;
        uint128 ceiling;
    }

    struct Deficit {
        uint128 owed; // PCC units to surrender
        uint128 covered;
    }

    IERC20 private immutable _settlement;
    uint256 public nextBatchId = 1;
    uint256 public redemptions;
    mapping(uint256 batchId => CreditBatch) private _batches;
    mapping(uint256 batchId => mapping(uint256 word => uint256 bits)) private _claimed;
    mapping(uint16 version => MethodologyRecord) private _methodologies;
    mapping(uint16 period => mapping(uint32 region => uint128)) private _quotas;
    mapping(uint16 period => uint16) private _offsetRatios;
    mapping(uint16 period => mapping(address platform => Issuance)) private _issuance;
    mapping(uint16 period => mapping(address account => Deficit)) private _deficits;
    mapping(address platform => PostedPrices) private _prices;
    mapping(address platform => mapping(address merchant => uint128 rate)) private _merchantRates;
    mapping(uint32 projectId => WelfareProject) private _projects;

    constructor(IConsortiumRegistry registry_, IERC20 settlement_)
        PermissionedERC20(registry_, "Personal Carbon Credit", "PCC", 6)
        EIP712("CreditManager", "1")
    {
        _settlement = settlement_;
    }

    // ---------------------------------------------------------------- regulator

    /// @inheritdoc ICreditManager
    function registerMethodology(uint16 version, bytes32 contentHash, string calldata uri) external {
        _requireRegulatorFor(0);
        if (contentHash == bytes32(0)) revert CreditsZeroHash();
        MethodologyRecord storage record = _methodologies[version];
        if (record.contentHash != bytes32(0)) revert CreditsMethodologyExists(version);
        _methodologies[version] =
            MethodologyRecord({contentHash: contentHash, registeredAt: uint40(block.timestamp), uri: uri});
        emit MethodologyRegistered(version, contentHash, uri);
    }

    /// @inheritdoc ICreditManager
    function setQuota(uint16 period, uint32 region, uint128 perCapita) external {
        _requireRegulatorFor(region);
        _quotas[period][region] = perCapita;
        emit QuotaSet(period, region, perCapita);
    }

    /// @inheritdoc ICreditManager
    function setOffsetRatio(uint16 period, uint16 deltaBps) external {
        _requireRegulatorFor(0);
        if (deltaBps > _BPS) revert CreditsInvalidRatio(deltaBps);
        _offsetRatios[period] = deltaBps;
        emit OffsetRatioSet(period, deltaBps);
    }

    /// @inheritdoc ICreditManager
    function setIssuanceCeiling(uint16 period, address platform, uint128 ceiling) external {
        (, , uint32 region,) = registry.profileOf(platform);
        _requireRegulatorFor(region);
        _issuance[period][platform].ceiling = ceiling;
        emit IssuanceCeilingSet(period, platform, ceiling);
    }

    /// @inheritdoc ICreditManager
    function registerProject(uint32 projectId, address beneficiary, uint32 region, string calldata name) external {
        _requireRegulatorFor(region);
        if (beneficiary == address(0)) revert CreditsZeroAddress();
        WelfareProject storage project = _projects[projectId];
        if (project.beneficiary != address(0)) revert CreditsProjectExists(projectId);
        _projects[projectId] =
            WelfareProject({beneficiary: beneficiary, region: region, open: true, retired: 0, name: name});
        emit ProjectRegistered(projectId, beneficiary, region, name);
    }

    /// @inheritdoc ICreditManager
    function closeProject(uint32 projectId) external {
        WelfareProject storage project = _project(projectId);
        _requireRegulatorFor(project.region);
        if (!project.open) revert CreditsProjectClosed(projectId);
        project.open = false;
        emit ProjectClosed(projectId);
    }

    // ---------------------------------------------------------------- platforms

    /// @inheritdoc ICreditManager
    function postPrices(uint128 buyBack, uint128 sale) external onlyRole(Role.PLATFORM) {
        if (sale != 0 && buyBack > sale) revert CreditsPricesCrossed(buyBack, sale);
        _prices[msg.sender] = PostedPrices({buyBack: buyBack, sale: sale});
        emit PricesPosted(msg.sender, buyBack, sale);
    }

    /// @inheritdoc ICreditManager
    function setMerchantRate(address merchant, uint128 rate) external onlyRole(Role.PLATFORM) {
        if (rate != 0) _requireMerchant(merchant);
        _merchantRates[msg.sender][merchant] = rate;
        emit MerchantRateSet(msg.sender, merchant, rate);
    }

    /// @inheritdoc ICreditManager
    function commitBatch(uint256 expectedId, uint16 period, uint16 methodology, bytes32 root, uint64 total, uint32 entries)
        external
        onlyRole(Role.PLATFORM)
        returns (uint256 batchId)
    {
        batchId = nextBatchId;
        if (expectedId != batchId) revert CreditsBatchIdMismatch(expectedId, batchId);
        if (_methodologies[methodology].contentHash == bytes32(0)) revert CreditsUnknownMethodology(methodology);
        if (root == bytes32(0)) revert CreditsZeroHash();
        Issuance storage issuance = _issuance[period][msg.sender];
        uint256 committed = uint256(issuance.committed) + total;
        if (committed > issuance.ceiling) {
            revert CreditsCeilingExceeded(period, msg.sender, issuance.ceiling, committed);
        }
        issuance.committed = uint128(committed);
        nextBatchId = batchId + 1;
        _batches[batchId] =
            CreditBatch({platform: msg.sender, period: period, methodology: methodology, remaining: total, root: root});
        emit BatchCommitted(batchId, msg.sender, period, methodology, root, total, entries);
    }

    // ---------------------------------------------------------------- claims

    /// @inheritdoc ICreditManager
    function claim(uint256 batchId, CreditClaim calldata entry) external {
        CreditBatch storage batch = _batch(batchId);
        if (msg.sender != entry.account && msg.sender != batch.platform) {
            revert CreditsNotClaimant(msg.sender, entry.account);
        }
        _claim(batch, batchId, entry);
    }

    /// @inheritdoc ICreditManager
    function claimMany(uint256 batchId, CreditClaim[] calldata entries) external {
        uint256 size = entries.length;
        if (size == 0 || size > MAX_CLAIMS) revert CreditsBatchSize(size, MAX_CLAIMS);
        CreditBatch storage batch = _batch(batchId);
        if (msg.sender != batch.platform) revert CreditsNotClaimant(msg.sender, entries[0].account);
        for (uint256 i; i < size; ++i) {
            _claim(batch, batchId, entries[i]);
        }
    }

    /// @inheritdoc ICreditManager
    function coverDeficit(uint16 period, uint256 amount) external {
        _cover(period, msg.sender, amount);
    }

    // ---------------------------------------------------------------- using credits

    /// @inheritdoc ICreditManager
    function sellToPlatform(address platform, uint256 amount, uint256 minPrice)
        external
        onlyActive
        returns (uint256 paid)
    {
        return _sell(msg.sender, platform, amount, minPrice);
    }

    /// @inheritdoc ICreditManager
    function buyFromPlatform(address platform, uint256 amount, uint256 maxPrice)
        external
        onlyActive
        returns (uint256 paid)
    {
        return _buy(msg.sender, platform, amount, maxPrice);
    }

    /// @inheritdoc ICreditManager
    function settleDeskOrders(SignedDeskOrder[] calldata orders, SettlementPermit[] calldata permits)
        external
        onlyRole(Role.PLATFORM)
    {
        uint256 size = orders.length;
        if (size + permits.length == 0 || size > MAX_DESK_ORDERS) revert CreditsBatchSize(size, MAX_DESK_ORDERS);
        if (permits.length > MAX_DESK_ORDERS) revert CreditsBatchSize(permits.length, MAX_DESK_ORDERS);
        for (uint256 i; i < permits.length; ++i) {
            SettlementPermit calldata p = permits[i];
            // A permit someone already relayed fails here; the allowance it gave stands, so carry on.
            try IERC20Permit(address(_settlement)).permit(p.owner, address(this), p.value, p.deadline, p.v, p.r, p.s)
            {} catch {}
        }
        for (uint256 i; i < size; ++i) {
            SignedDeskOrder calldata signed = orders[i];
            DeskOrder calldata o = signed.order;
            if (o.platform != msg.sender) revert CreditsOrderPlatform(i, o.platform, msg.sender);
            if (block.timestamp > o.deadline) revert CreditsOrderExpired(i, o.deadline);
            (address signer, ECDSA.RecoverError failure,) =
                ECDSA.tryRecover(deskOrderDigest(o), signed.v, signed.r, signed.s);
            if (failure != ECDSA.RecoverError.NoError || signer != o.holder) {
                revert CreditsOrderSignature(i, o.holder);
            }
            _useCheckedNonce(o.holder, o.nonce);
            _requireActive(o.holder); // as {onlyActive} does for a holder's own call
            if (o.kind == _SELL) {
                _sell(o.holder, msg.sender, o.amount, o.limitPrice);
            } else if (o.kind == _BUY || o.kind == _BUY_AND_COVER) {
                _buy(o.holder, msg.sender, o.amount, o.limitPrice);
                if (o.kind == _BUY_AND_COVER) _cover(o.period, o.holder, o.amount);
            } else {
                revert CreditsOrderKind(i, o.kind);
            }
            emit DeskOrderSettled(o.holder, msg.sender, o.nonce, o.kind);
        }
    }

    /// @inheritdoc ICreditManager
    function redeem(address platform, address merchant, uint256 amount, bytes32 receipt)
        external
        onlyActive
        returns (uint256 redemptionId)
    {
        if (amount == 0) revert CreditsZeroAmount();
        uint256 rate = _merchantRates[platform][merchant];
        if (rate == 0) revert CreditsMerchantNotAccepted(platform, merchant);
        _requireMerchant(merchant); // still an active merchant
        uint256 merchantPaid = Math.mulDiv(amount, rate, _UNIT);
        redemptionId = ++redemptions;
        _burn(msg.sender, amount);
        if (merchantPaid != 0) _settlement.safeTransferFrom(platform, merchant, merchantPaid);
        emit CreditsRedeemed(redemptionId, msg.sender, merchant, platform, amount, merchantPaid, receipt);
    }

    /// @inheritdoc ICreditManager
    function donate(uint32 projectId, uint256 amount) external onlyActive {
        if (amount == 0) revert CreditsZeroAmount();
        WelfareProject storage project = _project(projectId);
        if (!project.open) revert CreditsProjectClosed(projectId);
        project.retired += uint128(amount); // checked: the burn below bounds amount by a uint256 balance
        _burn(msg.sender, amount);
        emit CreditsDonated(projectId, msg.sender, project.beneficiary, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICreditManager
    function deskOrderDigest(DeskOrder calldata o) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(
            _DESK_ORDER_TYPEHASH, o.holder, o.platform, o.kind, o.period, o.amount, o.limitPrice, o.nonce, o.deadline
        )));
    }

    /// @inheritdoc ICreditManager
    function nonces(address holder) public view override(ICreditManager, Nonces) returns (uint256) {
        return super.nonces(holder);
    }

    /// @inheritdoc ICreditManager
    function noncesOf(address[] calldata holders) external view returns (uint256[] memory next) {
        next = new uint256[](holders.length);
        for (uint256 i; i < holders.length; ++i) {
            next[i] = nonces(holders[i]);
        }
    }

    /// @inheritdoc ICreditManager
    function claimedBits(uint256 batchId, uint256 word) external view returns (uint256) {
        return _claimed[batchId][word];
    }

    /// @inheritdoc ICreditManager
    function credit() external view returns (address) {
        return address(this);
    }

    /// @inheritdoc ICreditManager
    function settlement() external view returns (address) {
        return address(_settlement);
    }

    /// @inheritdoc ICreditManager
    function pricesOf(address platform) external view returns (PostedPrices memory) {
        return _prices[platform];
    }

    /// @inheritdoc ICreditManager
    function merchantRateOf(address platform, address merchant) external view returns (uint128) {
        return _merchantRates[platform][merchant];
    }

    /// @inheritdoc ICreditManager
    function projectOf(uint32 projectId) external view returns (WelfareProject memory) {
        return _projects[projectId];
    }

    /// @inheritdoc ICreditManager
    function batchOf(uint256 batchId) external view returns (CreditBatch memory) {
        return _batches[batchId];
    }

    /// @inheritdoc ICreditManager
    function isClaimed(uint256 batchId, uint256 index) public view returns (bool) {
        return _claimed[batchId][index >> 8] & (1 << (index & 0xff)) != 0;
    }

    /// @inheritdoc ICreditManager
    function methodologyOf(uint16 version) external view returns (MethodologyRecord memory) {
        return _methodologies[version];
    }

    /// @inheritdoc ICreditManager
    function quotaOf(uint16 period, uint32 region) external view returns (uint128) {
        return _quotas[period][region];
    }

    /// @inheritdoc ICreditManager
    function offsetRatioOf(uint16 period) external view returns (uint16) {
        return _offsetRatios[period];
    }

    /// @inheritdoc ICreditManager
    function issuedBy(uint16 period, address platform) external view returns (uint128 committed, uint128 ceiling) {
        Issuance storage issuance = _issuance[period][platform];
        return (issuance.committed, issuance.ceiling);
    }

    /// @inheritdoc ICreditManager
    function deficitOf(uint16 period, address account) external view returns (uint256 owed, uint256 covered) {
        Deficit storage d = _deficits[period][account];
        return (d.owed, d.covered);
    }

    /// @inheritdoc ICreditManager
    function leafOf(uint256 batchId, uint256 index, address account, uint128 amount, uint128 deficit)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            bytes.concat(keccak256(abi.encode(index, account, amount, deficit, batchId, address(this), block.chainid)))
        );
    }

    // ---------------------------------------------------------------- internals

    /// @dev Verifies and records one entry, and mints its credits within the batch's total.
    function _claim(CreditBatch storage batch, uint256 batchId, CreditClaim calldata entry) private {
        uint256 index = entry.index;
        uint256 word = index >> 8;
        uint256 bit = 1 << (index & 0xff);
        uint256 bits = _claimed[batchId][word];
        if (bits & bit != 0) revert CreditsAlreadyClaimed(batchId, index);
        address account = entry.account;
        bytes32 leaf = leafOf(batchId, index, account, entry.amount, entry.deficit);
        if (!MerkleProof.verifyCalldata(entry.proof, batch.root, leaf)) {
            revert CreditsInvalidProof(batchId, index, account);
        }
        (Role role, MemberStatus status,,) = registry.profileOf(account);
        if (role != Role.INDIVIDUAL || status != MemberStatus.ACTIVE) revert CreditsIneligibleAccount(account);
        _claimed[batchId][word] = bits | bit;
        uint256 amount = entry.amount;
        uint256 remaining = batch.remaining;
        if (amount > remaining) revert CreditsBatchTotalExceeded(batchId, remaining, amount);
        batch.remaining = uint64(remaining - amount);
        if (amount != 0) _mint(account, amount);
        if (entry.deficit != 0) _recordDeficit(batch.period, account, entry.deficit);
        emit CreditsClaimed(batchId, account, index, amount, entry.deficit, msg.sender);
    }

    /// @dev `holder` sells `amount` to `platform` at its buy-back price, at least `minPrice`.
    function _sell(address holder, address platform, uint256 amount, uint256 minPrice) private returns (uint256 paid) {
        uint256 price = _prices[platform].buyBack;
        if (price == 0) revert CreditsDeskClosed(platform);
        if (price < minPrice) revert CreditsPriceMoved(platform, price, minPrice);
        paid = _payment(amount, price, Math.Rounding.Floor);
        _transfer(holder, platform, amount); // reverts if the seller holds less
        _settlement.safeTransferFrom(platform, holder, paid); // reverts if the platform has not funded it
        emit SoldToPlatform(platform, holder, amount, price, paid);
    }

    /// @dev `holder` buys `amount` from `platform` at its sale price, at most `maxPrice`.
    function _buy(address holder, address platform, uint256 amount, uint256 maxPrice) private returns (uint256 paid) {
        uint256 price = _prices[platform].sale;
        if (price == 0) revert CreditsDeskClosed(platform);
        if (price > maxPrice) revert CreditsPriceMoved(platform, price, maxPrice);
        paid = _payment(amount, price, Math.Rounding.Ceil);
        _settlement.safeTransferFrom(holder, platform, paid);
        _transfer(platform, holder, amount); // reverts if the platform holds less
        emit BoughtFromPlatform(platform, holder, amount, price, paid);
    }

    /// @dev Burns `amount` of `holder`'s credits against its outstanding deficit of `period`.
    function _cover(uint16 period, address holder, uint256 amount) private {
        Deficit storage d = _deficits[period][holder];
        uint256 outstanding = d.owed - d.covered;
        if (outstanding == 0) revert CreditsNothingToCover(period, holder);
        if (amount == 0 || amount > outstanding) revert CreditsCoverExceedsDeficit(period, holder, outstanding, amount);
        d.covered += uint128(amount);
        _burn(holder, amount); // reverts with ERC20InsufficientBalance if the holder holds less
        emit DeficitCovered(period, holder, amount, outstanding - amount);
    }

    function _recordDeficit(uint16 period, address account, uint256 grams) private {
        uint256 owed = grams * _offsetRatios[period] / _BPS;
        _deficits[period][account].owed += uint128(owed);
        emit DeficitRecorded(period, account, grams, owed);
    }

    /// @dev The transfer policy, plus: credits sent to this contract would be lost, so that is refused too.
    function _update(address from, address to, uint256 value) internal override {
        if (to == address(this)) revert TokenTransferRefused(from, to);
        super._update(from, to, value);
    }

    /// @dev What `amount` PCC units cost at `price` settlement units per whole credit; never a free trade.
    function _payment(uint256 amount, uint256 price, Math.Rounding rounding) private pure returns (uint256 paid) {
        if (amount == 0) revert CreditsZeroAmount();
        paid = Math.mulDiv(amount, price, _UNIT, rounding);
        if (paid == 0) revert CreditsPaymentRoundsToZero(amount, price);
    }

    function _requireMerchant(address merchant) private view {
        (Role role, MemberStatus status,,) = registry.profileOf(merchant);
        if (role != Role.MERCHANT || status != MemberStatus.ACTIVE) revert CreditsNotMerchant(merchant);
    }

    function _project(uint32 projectId) private view returns (WelfareProject storage project) {
        project = _projects[projectId];
        if (project.beneficiary == address(0)) revert CreditsUnknownProject(projectId);
    }

    function _batch(uint256 batchId) private view returns (CreditBatch storage batch) {
        batch = _batches[batchId];
        if (batch.root == bytes32(0)) revert CreditsUnknownBatch(batchId);
    }

    function _requireRegulatorFor(uint32 region) private view {
        (bool isRegulator, uint32 callerRegion) = _regulatorRegion(msg.sender);
        if (!isRegulator) revert GuardMissingRole(msg.sender, Role.REGULATOR);
        if (callerRegion != 0 && callerRegion != region) revert CreditsRegionMismatch(callerRegion, region);
    }
}
