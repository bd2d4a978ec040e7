// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice A committed batch of personal credits: one Merkle root over any number of entries. Two storage
/// slots, so a commit costs the same whatever the size; its total and entry count are in BatchCommitted.
struct CreditBatch {
    address platform;
    uint16 period;
    uint16 methodology;
    uint64 remaining; // PCC units the batch's leaves may still mint (its total, less what was claimed)
    bytes32 root;
}

/// @notice One leaf of a batch, as a claim presents it (see {ICreditManager-leafOf}).
struct CreditClaim {
    uint256 index;
    address account;
    uint128 amount; // PCC units to mint: surplus quota and green-behaviour reductions
    uint128 deficit; // grams of emissions above the quota, to cover with PCC at the offset ratio
    bytes32[] proof;
}

/// @notice A platform's posted prices, in settlement-token units per whole PCC (1 tCO2e); 0 closes that side.
struct PostedPrices {
    uint128 buyBack; // paid to a holder who sells credits to the platform
    uint128 sale; // charged to a buyer of the platform's credits
}

/// @notice A desk trade that a holder signs (EIP-712, domain "CreditManager" version "1") and its platform
/// settles in bulk ({ICreditManager-settleDeskOrders}): the holder needs no gas and sends no transaction, and
/// its consent (kind, amount, price limit, platform) is checked on chain by its signature.
struct DeskOrder {
    address holder; // who signs, sells or buys
    address platform; // the only platform that may settle it
    uint8 kind; // 0 sell to the platform, 1 buy from it, 2 buy from it and cover the deficit of `period`
    uint16 period; // the deficit's period (kind 2 only)
    uint128 amount; // PCC units
    uint128 limitPrice; // sell: the least buy-back price accepted; buy: the most sale price accepted
    uint64 nonce; // the holder's next order nonce ({ICreditManager-nonces}): each order settles once, in order
    uint64 deadline; // unix time after which the order is void
}

/// @notice A {DeskOrder} with its holder's secp256k1 signature of the EIP-712 digest.
struct SignedDeskOrder {
    DeskOrder order;
    uint8 v;
    bytes32 r;
    bytes32 s;
}

/// @notice An EIP-2612 permit of the settlement token by `owner` for this contract, relayed with desk orders so
/// a buyer never sends its own approval transaction.
struct SettlementPermit {
    address owner;
    uint256 value;
    uint256 deadline;
    uint8 v;
    bytes32 r;
    bytes32 s;
}

/// @notice A registered public-welfare project (e.g. tree planting) that credits can be donated to.
struct WelfareProject {
    address beneficiary; // who the retired credits are credited to
    uint32 region;
    bool open; // closed projects take no more donations
    uint128 retired; // PCC units donated and retired in its name
    string name;
}

/// @notice A versioned methodology: the hash of its canonical content (carbon_sdk.methodology).
struct MethodologyRecord {
    bytes32 contentHash;
    uint40 registeredAt;
    string uri;
}

/**
 * @title ICreditManager
 * @notice Personal carbon accounts (DESIGN.md section 2.4): methodology versions, per-capita quotas per region
 * and period, the offset ratio, platforms' issuance ceilings, and batches of personal credits committed as one
 * Merkle root each (OpenZeppelin StandardMerkleTree) and claimed by individuals or, in bulk, by their
 * platform. A claim mints the entry's credits and records its deficit, which the individual covers by
 * surrendering credits at the offset ratio.
 *
 * A leaf is `keccak256(bytes.concat(keccak256(abi.encode(index, account, amount, deficit, batchId, manager,
 * chainId))))`, so a leaf is valid for one account, in one batch, of one deployment on one chain; each index
 * is claimed once.
 */
interface ICreditManager {
    error CreditsUnknownMethodology(uint16 version);
    error CreditsMethodologyExists(uint16 version);
    error CreditsZeroHash();
    error CreditsInvalidRatio(uint16 bps);
    error CreditsBatchIdMismatch(uint256 expected, uint256 next);
    error CreditsCeilingExceeded(uint16 period, address platform, uint256 ceiling, uint256 requested);
    error CreditsUnknownBatch(uint256 batchId);
    error CreditsNotClaimant(address caller, address account);
    error CreditsIneligibleAccount(address account);
    error CreditsAlreadyClaimed(uint256 batchId, uint256 index);
    error CreditsInvalidProof(uint256 batchId, uint256 index, address account);
    error CreditsBatchTotalExceeded(uint256 batchId, uint256 remaining, uint256 requested);
    error CreditsBatchSize(uint256 size, uint256 max);
    error CreditsNothingToCover(uint16 period, address account);
    error CreditsCoverExceedsDeficit(uint16 period, address account, uint256 outstanding, uint256 amount);
    error CreditsRegionMismatch(uint32 callerRegion, uint32 region);
    error CreditsZeroAmount();
    error CreditsPricesCrossed(uint256 buyBack, uint256 sale);
    error CreditsDeskClosed(address platform);
    error CreditsPriceMoved(address platform, uint256 posted, uint256 limit);
    error CreditsPaymentRoundsToZero(uint256 amount, uint256 price);
    error CreditsNotMerchant(address merchant);
    error CreditsMerchantNotAccepted(address platform, address merchant);
    error CreditsUnknownProject(uint32 projectId);
    error CreditsProjectExists(uint32 projectId);
    error CreditsProjectClosed(uint32 projectId);
    error CreditsZeroAddress();
    error CreditsOrderExpired(uint256 index, uint64 deadline);
    error CreditsOrderSignature(uint256 index, address holder);
    error CreditsOrderPlatform(uint256 index, address platform, address caller);
    error CreditsOrderKind(uint256 index, uint8 kind);

    event MethodologyRegistered(uint16 indexed version, bytes32 contentHash, string uri);
    event QuotaSet(uint16 indexed period, uint32 indexed region, uint256 perCapita);
    event OffsetRatioSet(uint16 indexed period, uint16 deltaBps);
    event IssuanceCeilingSet(uint16 indexed period, address indexed platform, uint256 ceiling);
    event BatchCommitted(
        uint256 indexed batchId, address indexed platform, uint16 indexed period, uint16 methodology, bytes32 root,
        uint256 total, uint32 entries
    );
    event CreditsClaimed(
        uint256 indexed batchId, address indexed account, uint256 index, uint256 amount, uint256 deficit, address by
    );
    event DeficitRecorded(uint16 indexed period, address indexed account, uint256 deficitGrams, uint256 owed);
    event DeficitCovered(uint16 indexed period, address indexed account, uint256 amount, uint256 outstanding);
    event PricesPosted(address indexed platform, uint256 buyBack, uint256 sale);
    event MerchantRateSet(address indexed platform, address indexed merchant, uint256 rate);
    event ProjectRegistered(uint32 indexed projectId, address indexed beneficiary, uint32 region, string name);
    event ProjectClosed(uint32 indexed projectId);
    event SoldToPlatform(address indexed platform, address indexed seller, uint256 amount, uint256 price, uint256 paid);
    event BoughtFromPlatform(address indexed platform, address indexed buyer, uint256 amount, uint256 price, uint256 paid);
    event CreditsRedeemed(
        uint256 indexed redemptionId, address indexed holder, address indexed merchant, address platform,
        uint256 amount, uint256 merchantPaid, bytes32 receipt
    );
    event DeskOrderSettled(address indexed holder, address indexed platform, uint64 nonce, uint8 kind);
    event CreditsDonated(
        uint32 indexed projectId, address indexed donor, address indexed beneficiary, uint256 amount
    );

    /// @notice Registers methodology `version` by its content hash (national regulator). Once per version.
    function registerMethodology(uint16 version, bytes32 contentHash, string calldata uri) external;

    /// @notice Sets the per-capita quota of `region` in `period` (a regulator of the region, or national).
    function setQuota(uint16 period, uint32 region, uint128 perCapita) external;

    /// @notice Sets the offset ratio δ of `period` (national regulator): a deficit of d grams owes d·δ PCC.
    function setOffsetRatio(uint16 period, uint16 deltaBps) external;

    /// @notice Sets how many PCC `platform` may issue in `period` in all its batches (a regulator): what the
    /// methodology and the quota allow it, computed off chain from its users (docs/credits.md).
    function setIssuanceCeiling(uint16 period, address platform, uint128 ceiling) external;

    /// @notice Commits a batch (an active PLATFORM): its root, methodology, total and number of entries, within
    /// the platform's ceiling. `expectedId` must be {nextBatchId}: the leaves include the batch id.
    function commitBatch(uint256 expectedId, uint16 period, uint16 methodology, bytes32 root, uint64 total, uint32 entries)
        external
        returns (uint256 batchId);

    /// @notice Claims one entry: by the account itself or by the batch's platform. Mints its credits to the
    /// account (an active INDIVIDUAL) and records its deficit.
    function claim(uint256 batchId, CreditClaim calldata entry) external;

    /// @notice Claims many entries of one batch in one transaction (the batch's platform; at most 200).
    function claimMany(uint256 batchId, CreditClaim[] calldata entries) external;

    /// @notice Surrenders `amount` PCC of the caller against its outstanding deficit of `period`.
    function coverDeficit(uint16 period, uint256 amount) external;

    /// @notice Posts the caller's (an active PLATFORM) buy-back and sale prices, in settlement units per whole
    /// PCC; 0 closes that side. A buy-back above the sale price is refused. Payments come from and go to the
    /// platform's own settlement balance: it approves this contract for what its desk and merchants may draw.
    function postPrices(uint128 buyBack, uint128 sale) external;

    /// @notice Sets what the caller (an active PLATFORM) pays `merchant` (an active MERCHANT) per whole PCC
    /// redeemed there, in settlement units; 0 stops accepting redemptions at that merchant for this platform.
    function setMerchantRate(address merchant, uint128 rate) external;

    /// @notice Registers public-welfare project `projectId` (a regulator of `region`, or national). Once per id.
    function registerProject(uint32 projectId, address beneficiary, uint32 region, string calldata name) external;

    /// @notice Closes a project to further donations (a regulator of its region, or national).
    function closeProject(uint32 projectId) external;

    /// @notice Sells `amount` PCC of the caller to `platform` at its posted buy-back price, which must be at
    /// least `minPrice`; the platform pays `amount × price / 10^6` settlement units (rounded down).
    function sellToPlatform(address platform, uint256 amount, uint256 minPrice) external returns (uint256 paid);

    /// @notice Buys `amount` PCC from `platform`'s holdings at its posted sale price, which must be at most
    /// `maxPrice`; the caller pays `amount × price / 10^6` settlement units (rounded up), approved to this
    /// contract beforehand.
    function buyFromPlatform(address platform, uint256 amount, uint256 maxPrice) external returns (uint256 paid);

    /// @notice Settles desk orders signed by their holders (the caller, an active PLATFORM, must be each order's
    /// platform; at most 200 orders and 200 permits): first relays `permits` (one that fails, e.g. because it
    /// was already used, is skipped: the payment then needs an allowance as before), then settles each order
    /// exactly as if its holder had called {sellToPlatform}, {buyFromPlatform} or both {buyFromPlatform} and
    /// {coverDeficit}, at the posted prices within the order's limit. All or nothing: one invalid order (bad
    /// signature, expired, wrong nonce, wrong platform, price beyond its limit, balance short) reverts the call.
    function settleDeskOrders(SignedDeskOrder[] calldata orders, SettlementPermit[] calldata permits) external;

    /// @notice The EIP-712 digest that `order`'s holder signs.
    function deskOrderDigest(DeskOrder calldata order) external view returns (bytes32);

    /// @notice The nonce `holder`'s next desk order must carry.
    function nonces(address holder) external view returns (uint256);

    /// @notice The next desk-order nonce of each of `holders` (one call for a platform's whole list).
    function noncesOf(address[] calldata holders) external view returns (uint256[] memory);

    /// @notice Redeems (burns) `amount` PCC of the caller at `merchant`, under `platform`'s rules: the platform
    /// pays the merchant its rate (rounded down). `receipt` is the merchant's receipt or order id.
    function redeem(address platform, address merchant, uint256 amount, bytes32 receipt)
        external
        returns (uint256 redemptionId);

    /// @notice Donates (burns, retiring them in the beneficiary's name) `amount` PCC of the caller to an open
    /// project.
    function donate(uint32 projectId, uint256 amount) external;

    /// @notice The PCC token: this contract itself (an ERC-20 with the registry's transfer policy).
    function credit() external view returns (address);
    function settlement() external view returns (address);
    function pricesOf(address platform) external view returns (PostedPrices memory);
    function merchantRateOf(address platform, address merchant) external view returns (uint128);
    function projectOf(uint32 projectId) external view returns (WelfareProject memory);
    function redemptions() external view returns (uint256);
    function nextBatchId() external view returns (uint256);
    function batchOf(uint256 batchId) external view returns (CreditBatch memory);
    function isClaimed(uint256 batchId, uint256 index) external view returns (bool);
    /// @notice Claimed flags of entries `256 × word` to `256 × word + 255` of a batch, bit i for entry 256·word + i.
    function claimedBits(uint256 batchId, uint256 word) external view returns (uint256);
    function methodologyOf(uint16 version) external view returns (MethodologyRecord memory);
    function quotaOf(uint16 period, uint32 region) external view returns (uint128);
    function offsetRatioOf(uint16 period) external view returns (uint16);
    function issuedBy(uint16 period, address platform) external view returns (uint128 committed, uint128 ceiling);
    function deficitOf(uint16 period, address account) external view returns (uint256 owed, uint256 covered);
    function leafOf(uint256 batchId, uint256 index, address account, uint128 amount, uint128 deficit)
        external
        view
        returns (bytes32);
}
