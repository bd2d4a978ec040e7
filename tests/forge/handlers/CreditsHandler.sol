// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {CheatBase} from "../lib/Cheats.sol";
import {SettlementToken} from "../../../contracts/settlement/SettlementToken.sol";
import {CreditManager} from "../../../contracts/credits/CreditManager.sol";
import {IConsortiumRegistry} from "../../../contracts/interfaces/IConsortiumRegistry.sol";
import {RegistryGuard} from "../../../contracts/registry/RegistryGuard.sol";
import {PermissionedERC20} from "../../../contracts/tokens/PermissionedERC20.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {
    CreditClaim, DeskOrder, ICreditManager, PostedPrices, SettlementPermit, SignedDeskOrder
} from "../../../contracts/interfaces/ICreditManager.sol";

/// @notice Drives personal credits (CreditManager, the PCC token) through random sequences: batches of small
/// Merkle trees built here (OpenZeppelin-compatible, leaves from `leafOf`) committed within the platforms'
/// ceilings, single and bulk claims, desk trades at posted prices (direct, and as signed EIP-712 orders whose
/// buyers pay by approval or by EIP-2612 permit), deficit cover, redemptions at merchants, donations, transfers,
/// suspensions of individuals and the regulator's settings (methodologies, quotas, ratios, ceilings, projects). Ghost state records
/// what the handler minted, burned (by use), committed and signed, for P1-P4 of docs/invariants.md.
/// Deliberately refused operations (a claim past a batch's total, a second claim of a leaf, a replayed desk
/// order, a commit above the ceiling, a suspended member's claim, sale or transfer, a donation to a closed project)
/// run under try/catch: if one succeeds, or fails with another error than expected, a violation counter moves.
contract CreditsHandler is CheatBase {
    CreditManager public immutable credits;
    SettlementToken public immutable settlement;
    address public immutable regulator;
    address public immutable settlementIssuer; // the platform organisation's admin (PLATFORM) issues settlement

    uint256 internal constant PCC = 1e6; // PCC units per credit (1 tCO2e)
    uint256 internal constant BPS = 10_000;
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    uint256 internal constant MAX_LEAVES = 6;
    uint8 internal constant SELL = 0;
    uint8 internal constant BUY = 1;
    uint8 internal constant BUY_AND_COVER = 2;

    address[] public platforms;
    address[] public individuals;
    uint256[] internal _keys; // individuals' private keys, same order
    address[] public merchants;
    uint16[] public periods; // credit periods the handler uses
    uint32[] public projects; // every project registered, open or closed
    uint16 public methodologies; // versions 1..methodologies are registered

    struct Leaf {
        address account;
        uint128 amount;
        uint128 deficit;
    }

    struct BatchGhost {
        address platform;
        uint16 period;
        uint64 total;
        uint256 claimed; // PCC minted by this batch's claims
    }

    uint256[] public batchIds;
    mapping(uint256 batchId => BatchGhost) public batchGhost;
    mapping(uint256 batchId => Leaf[]) internal _leaves;
    uint256[] internal _pending; // unclaimed leaves: batchId << 8 | index

    // Ghost state.
    uint256 public ghostMinted;
    uint256 public ghostBurned; // supply decreases measured around covers, redemptions, donations, desk orders
    uint256 public ghostCovered;
    uint256 public ghostRedeemed;
    uint256 public ghostDonated;
    uint256 public ghostSupplyDrift; // supply moved by an operation that must not change it (trades, transfers)
    uint256 public ghostViolations; // a refused-by-design operation went through, or failed for another reason
    uint256 public ghostPaymentMismatches; // P4: a desk payment other than amount x price, seller floor, buyer ceiling
    mapping(address individual => bool) public suspended; // by the handler, through the registry
    uint256 public suspendedCount;
    mapping(uint16 period => mapping(address platform => uint256)) public ghostCommitted;
    mapping(uint16 period => mapping(address platform => uint256)) public ghostHighestCeiling;
    mapping(uint16 period => mapping(address account => uint256)) public ghostOwed;
    mapping(address holder => uint256) public ghostOrdersSettled;
    mapping(address holder => mapping(uint64 nonce => bool)) public ghostNonceUsed;
    SignedDeskOrder internal _lastSettled; // holder 0 until a desk order settles
    uint256 private _nonce;

    constructor(
        CreditManager credits_,
        SettlementToken settlement_,
        address regulator_,
        address[] memory platforms_,
        uint256[] memory individualKeys,
        address[] memory merchants_,
        uint16[] memory periods_,
        uint32[] memory projects_,
        uint16 methodologies_
    ) {
        credits = credits_;
        settlement = settlement_;
        regulator = regulator_;
        settlementIssuer = platforms_[0];
        platforms = platforms_;
        for (uint256 i; i < individualKeys.length; ++i) {
            _keys.push(individualKeys[i]);
            individuals.push(vm.addr(individualKeys[i]));
        }
        merchants = merchants_;
        periods = periods_;
        projects = projects_;
        methodologies = methodologies_;
        for (uint256 p; p < periods_.length; ++p) {
            for (uint256 i; i < platforms_.length; ++i) {
                (, uint128 ceiling) = credits_.issuedBy(periods_[p], platforms_[i]);
                ghostHighestCeiling[periods_[p]][platforms_[i]] = ceiling;
            }
        }
    }

    // ------------------------------------------------------------------ views for the invariants

    function platformCount() external view returns (uint256) {
        return platforms.length;
    }

    function individualCount() external view returns (uint256) {
        return individuals.length;
    }

    function periodCount() external view returns (uint256) {
        return periods.length;
    }

    function projectCount() external view returns (uint256) {
        return projects.length;
    }

    function batchCount() external view returns (uint256) {
        return batchIds.length;
    }

    /// @dev Every address that may hold PCC or settlement tokens in this campaign.
    function holders() public view returns (address[] memory all) {
        uint256 n = platforms.length + individuals.length + merchants.length;
        all = new address[](n + 2);
        uint256 k;
        for (uint256 i; i < platforms.length; ++i) all[k++] = platforms[i];
        for (uint256 i; i < individuals.length; ++i) all[k++] = individuals[i];
        for (uint256 i; i < merchants.length; ++i) all[k++] = merchants[i];
        all[k++] = regulator;
        all[k] = address(credits);
    }

    // ------------------------------------------------------------------ helpers

    /// @dev Wraps an operation that moves credits without burning or minting them.
    modifier supplyUnchanged() {
        uint256 before = credits.totalSupply();
        _;
        if (credits.totalSupply() != before) ++ghostSupplyDrift;
    }

    /// @dev Wraps an operation that may burn credits: records the burn.
    modifier measuresBurn() {
        uint256 before = credits.totalSupply();
        _;
        uint256 afterwards = credits.totalSupply();
        if (afterwards > before) ++ghostSupplyDrift;
        else ghostBurned += before - afterwards;
    }

    /// @dev The first active (not suspended) individual from `seed` on; at most two of six are suspended.
    function _individual(uint256 seed) internal view returns (address who, uint256 key) {
        uint256 n = individuals.length;
        for (uint256 i; i < n; ++i) {
            uint256 k = (seed % n + i) % n;
            if (!suspended[individuals[k]]) return (individuals[k], _keys[k]);
        }
    }

    /// @dev The first individual from `seed` on holding at least `least` PCC units, else the seed's.
    function _holderOf(uint256 seed, uint256 least) internal view returns (address who, uint256 key) {
        uint256 n = individuals.length;
        for (uint256 i; i < n; ++i) {
            uint256 k = (seed % n + i) % n; // seed % n first: seed + i may overflow
            if (credits.balanceOf(individuals[k]) >= least && !suspended[individuals[k]]) return (individuals[k], _keys[k]);
        }
        return _individual(seed);
    }

    /// @dev Tops up `who`'s settlement balance to at least `amount` (the platform organisation issues it).
    function _fund(address who, uint256 amount) internal {
        uint256 balance = settlement.balanceOf(who);
        if (balance >= amount) return;
        vm.prank(settlementIssuer);
        settlement.issue(who, amount - balance + 1_000_00, keccak256(abi.encode("fund", ++_nonce)));
    }

    /// @dev The smallest amount a trade at `price` may carry (it must pay at least one settlement unit).
    function _minTrade(uint256 price) internal pure returns (uint256) {
        return (PCC + price - 1) / price;
    }

    /// @dev Root of `leaves` and the proof of leaf `index`: pairs hashed sorted (OpenZeppelin's
    /// commutativeKeccak256), an odd node promoted unchanged, so MerkleProof.verify accepts the proof.
    function _tree(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32 root, bytes32[] memory proof) {
        proof = new bytes32[](8);
        uint256 depth;
        bytes32[] memory layer = leaves;
        while (layer.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < layer.length) proof[depth++] = layer[sibling];
            bytes32[] memory next = new bytes32[]((layer.length + 1) / 2);
            for (uint256 i; i < next.length; ++i) {
                next[i] = 2 * i + 1 < layer.length ? Hashes.commutativeKeccak256(layer[2 * i], layer[2 * i + 1]) : layer[2 * i];
            }
            layer = next;
            index >>= 1;
        }
        root = layer[0];
        assembly ("memory-safe") {
            mstore(proof, depth)
        }
    }

    function _hashedLeaves(uint256 batchId) internal view returns (bytes32[] memory hashed) {
        Leaf[] storage leaves = _leaves[batchId];
        hashed = new bytes32[](leaves.length);
        for (uint256 i; i < leaves.length; ++i) {
            hashed[i] = credits.leafOf(batchId, i, leaves[i].account, leaves[i].amount, leaves[i].deficit);
        }
    }

    function _entry(uint256 batchId, uint256 index, bytes32[] memory hashed) internal view returns (CreditClaim memory) {
        Leaf storage leaf = _leaves[batchId][index];
        (, bytes32[] memory proof) = _tree(hashed, index);
        return CreditClaim({index: index, account: leaf.account, amount: leaf.amount, deficit: leaf.deficit, proof: proof});
    }

    /// @dev Mirrors a successful claim: mint, batch counter and deficit at the period's current ratio.
    function _recordClaim(uint256 batchId, Leaf memory leaf) internal {
        BatchGhost storage b = batchGhost[batchId];
        b.claimed += leaf.amount;
        ghostMinted += leaf.amount;
        ghostOwed[b.period][leaf.account] += uint256(leaf.deficit) * credits.offsetRatioOf(b.period) / BPS;
    }

    /// @dev A refusal the handler provoked on purpose: it must carry the expected custom error.
    function _refused(bytes memory reason, bytes4 expected) internal {
        if (reason.length < 4 || bytes4(reason) != expected) ++ghostViolations;
    }

    function _removePending(uint256 slot) internal {
        _pending[slot] = _pending[_pending.length - 1];
        _pending.pop();
    }

    // ------------------------------------------------------------------ regulator

    function registerMethodology(uint256 seed) external supplyUnchanged {
        if (methodologies >= 8) return;
        vm.prank(regulator);
        credits.registerMethodology(methodologies + 1, keccak256(abi.encode("methodology", seed)), "ipfs://methodology");
        ++methodologies;
    }

    function setOffsetRatio(uint256 seed, uint256 bps) external supplyUnchanged {
        uint16 period = periods[seed % periods.length];
        vm.prank(regulator);
        credits.setOffsetRatio(period, uint16(bound(bps, 0, BPS)));
    }

    function setQuota(uint256 seed, uint256 perCapita) external supplyUnchanged {
        uint16 period = periods[seed % periods.length];
        perCapita = bound(perCapita, 0, 20 * PCC);
        vm.prank(regulator);
        credits.setQuota(period, 0, uint128(perCapita));
        if (credits.quotaOf(period, 0) != perCapita) ++ghostViolations;
    }

    /// @dev Raises a ceiling (seven times in eight) or freezes the platform at or below what it committed; a
    /// frozen platform's next commit must be refused.
    function setCeiling(uint256 seed, uint256 extra) external supplyUnchanged {
        uint16 period = periods[seed % periods.length];
        address platform = platforms[(seed >> 8) % platforms.length];
        (uint128 committed,) = credits.issuedBy(period, platform);
        uint256 ceiling = (seed >> 16) % 8 == 0 ? bound(extra, 0, committed) : committed + bound(extra, 100 * PCC, 2_000 * PCC);
        vm.prank(regulator);
        credits.setIssuanceCeiling(period, platform, uint128(ceiling));
        if (ceiling > ghostHighestCeiling[period][platform]) ghostHighestCeiling[period][platform] = ceiling;
        if (ceiling < committed + 1) {
            // P2: nothing more fits; a commit of one unit must be refused.
            uint256 id = credits.nextBatchId();
            vm.prank(platform);
            try credits.commitBatch(id, period, 1, keccak256("root"), 1, 1) {
                ++ghostViolations;
            } catch (bytes memory reason) {
                _refused(reason, ICreditManager.CreditsCeilingExceeded.selector);
            }
        }
    }

    // ------------------------------------------------------------------ platforms

    /// @dev A platform commits a batch of 1-6 leaves for random individuals; its total is what the leaves mint
    /// plus some slack, or (one batch in six) less, so a late claim must hit the batch's total.
    function commitBatch(uint256 seed, uint256 size, uint256 amounts) external supplyUnchanged {
        address platform = platforms[seed % platforms.length];
        uint16 period = periods[(seed >> 8) % periods.length];
        (uint128 committed, uint128 ceiling) = credits.issuedBy(period, platform);
        if (ceiling <= committed) return; // frozen: setCeiling checks the refusal
        uint256 batchId = credits.nextBatchId();
        size = bound(size, 1, MAX_LEAVES);
        uint256 total = _makeLeaves(batchId, size, amounts);
        total = (seed >> 16) % 6 == 0 ? total / 2 : total + bound(amounts, 0, 10 * PCC);
        if (total > ceiling - committed) total = ceiling - committed; // within the ceiling: may under-commit
        _commit(platform, period, batchId, seed, total, size);
    }

    function _commit(address platform, uint16 period, uint256 batchId, uint256 seed, uint256 total, uint256 size)
        internal
    {
        (bytes32 root,) = _tree(_hashedLeaves(batchId), 0);
        uint16 methodology = uint16(1 + (seed >> 24) % methodologies);
        vm.prank(platform);
        uint256 id = credits.commitBatch(batchId, period, methodology, root, uint64(total), uint32(size));
        batchIds.push(id);
        batchGhost[id] = BatchGhost(platform, period, uint64(total), 0);
        ghostCommitted[period][platform] += total;
        (uint128 committedAfter, uint128 ceilingAfter) = credits.issuedBy(period, platform);
        if (committedAfter > ceilingAfter) ++ghostViolations;
        for (uint256 i; i < size; ++i) _pending.push(id << 8 | i);
    }

    /// @dev Random leaves (amount up to 50 PCC; a deficit of up to 20 t for one in three) for batch `batchId`.
    function _makeLeaves(uint256 batchId, uint256 size, uint256 seed) internal returns (uint256 sum) {
        for (uint256 i; i < size; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            uint128 amount = uint128(bound(r, 0, 50 * PCC));
            uint128 deficit = (r >> 128) % 3 == 0 ? uint128(bound(r >> 130, 1, 20 * PCC)) : 0;
            address account = individuals[(r >> 64) % individuals.length];
            _leaves[batchId].push(Leaf(account, amount, deficit));
            sum += amount;
        }
    }

    function postPrices(uint256 seed, uint256 buyBack, uint256 spread) external supplyUnchanged {
        address platform = platforms[seed % platforms.length];
        buyBack = bound(buyBack, 1_00, 80_00); // 1.00 to 80.00 per credit
        uint256 sale = buyBack + bound(spread, 0, 20_00);
        vm.prank(platform);
        credits.postPrices(uint128(buyBack), uint128(sale));
    }

    function setMerchantRate(uint256 seed, uint256 rate) external supplyUnchanged {
        address platform = platforms[seed % platforms.length];
        address merchant = merchants[(seed >> 8) % merchants.length];
        vm.prank(platform);
        credits.setMerchantRate(merchant, uint128(bound(rate, 1_00, 60_00)));
    }

    // ------------------------------------------------------------------ claims

    /// @dev One pending leaf claimed by its account or its platform. A leaf beyond what its batch has left must
    /// be refused (P2); after a successful claim, a second one of the same leaf must be refused too (P3).
    function claim(uint256 seed, bool byPlatform) external {
        if (_pending.length == 0) return;
        uint256 slot = seed % _pending.length;
        uint256 batchId = _pending[slot] >> 8;
        uint256 index = _pending[slot] & 0xff;
        Leaf memory leaf = _leaves[batchId][index];
        CreditClaim memory entry = _entry(batchId, index, _hashedLeaves(batchId));
        address caller = byPlatform ? batchGhost[batchId].platform : leaf.account;
        uint256 supplyBefore = credits.totalSupply();
        if (suspended[leaf.account]) {
            // Only an active individual may receive credits: refused, and the leaf stays claimable.
            vm.prank(caller);
            try credits.claim(batchId, entry) {
                ++ghostViolations;
            } catch (bytes memory reason) {
                _refused(reason, ICreditManager.CreditsIneligibleAccount.selector);
            }
            if (credits.totalSupply() != supplyBefore) ++ghostSupplyDrift;
            return;
        }
        if (leaf.amount > credits.batchOf(batchId).remaining) {
            vm.prank(caller);
            try credits.claim(batchId, entry) {
                ++ghostViolations;
            } catch (bytes memory reason) {
                _refused(reason, ICreditManager.CreditsBatchTotalExceeded.selector);
            }
            _removePending(slot);
            if (credits.totalSupply() != supplyBefore) ++ghostSupplyDrift;
            return;
        }
        vm.prank(caller);
        credits.claim(batchId, entry);
        _recordClaim(batchId, leaf);
        _removePending(slot);
        if (credits.totalSupply() != supplyBefore + leaf.amount) ++ghostSupplyDrift;
        if (seed % 4 == 0) {
            vm.prank(leaf.account);
            try credits.claim(batchId, entry) {
                ++ghostViolations;
            } catch (bytes memory reason) {
                _refused(reason, ICreditManager.CreditsAlreadyClaimed.selector);
            }
        }
    }

    /// @dev The platform claims every pending leaf of one batch in one call (those that fit its total).
    function claimMany(uint256 seed) external {
        if (_pending.length == 0) return;
        uint256 batchId = _pending[seed % _pending.length] >> 8;
        bytes32[] memory hashed = _hashedLeaves(batchId);
        CreditClaim[] memory entries = new CreditClaim[](MAX_LEAVES);
        uint256 count;
        uint256 remaining = credits.batchOf(batchId).remaining;
        uint256 minted;
        for (uint256 slot = _pending.length; slot > 0; --slot) {
            uint256 packed = _pending[slot - 1];
            if (packed >> 8 != batchId) continue;
            Leaf memory leaf = _leaves[batchId][packed & 0xff];
            if (suspended[leaf.account]) continue; // it would refuse the whole call: left for later
            _removePending(slot - 1); // claimed now, or (past the total) never claimable: claim() checks that
            if (leaf.amount > remaining) continue;
            remaining -= leaf.amount;
            minted += leaf.amount;
            entries[count++] = _entry(batchId, packed & 0xff, hashed);
            _recordClaim(batchId, leaf);
        }
        if (count == 0) return;
        assembly ("memory-safe") {
            mstore(entries, count)
        }
        uint256 supplyBefore = credits.totalSupply();
        vm.prank(batchGhost[batchId].platform);
        credits.claimMany(batchId, entries);
        if (credits.totalSupply() != supplyBefore + minted) ++ghostSupplyDrift;
    }

    /// @dev Covers part of an outstanding deficit with the holder's own credits.
    function coverDeficit(uint256 seed, uint256 amount) external measuresBurn {
        uint256 n = individuals.length;
        for (uint256 i; i < n * periods.length; ++i) {
            address who = individuals[(seed % n + i) % n];
            uint16 period = periods[(seed % periods.length + i / n) % periods.length];
            (uint256 owed, uint256 covered) = credits.deficitOf(period, who);
            uint256 most = owed - covered;
            uint256 balance = credits.balanceOf(who);
            if (balance < most) most = balance;
            if (most == 0) continue;
            amount = bound(amount, 1, most);
            vm.prank(who);
            credits.coverDeficit(period, amount);
            ghostCovered += amount;
            return;
        }
    }

    // ------------------------------------------------------------------ using credits

    function sellToPlatform(uint256 seed, uint256 amount) external supplyUnchanged {
        address platform = platforms[seed % platforms.length];
        uint256 price = credits.pricesOf(platform).buyBack;
        uint256 least = _minTrade(price);
        (address who,) = _holderOf(seed >> 8, least);
        uint256 balance = credits.balanceOf(who);
        if (balance < least) return;
        amount = bound(amount, least, balance);
        _fund(platform, amount * price / PCC);
        uint256 before = settlement.balanceOf(who);
        vm.prank(who);
        uint256 paid = credits.sellToPlatform(platform, amount, price);
        uint256 expected = amount * price / PCC; // rounded down: never in the seller's favour
        if (paid != expected || settlement.balanceOf(who) != before + expected) ++ghostPaymentMismatches;
    }

    function buyFromPlatform(uint256 seed, uint256 amount) external supplyUnchanged {
        address platform = platforms[seed % platforms.length];
        uint256 price = credits.pricesOf(platform).sale;
        uint256 least = _minTrade(price);
        uint256 stock = credits.balanceOf(platform);
        if (stock < least) return;
        amount = bound(amount, least, stock);
        (address who,) = _individual(seed >> 8);
        _fund(who, amount * price / PCC + 1);
        if (settlement.allowance(who, address(credits)) < amount * price / PCC + 1) {
            vm.prank(who); // a desk order paid by permit left it without a standing approval
            settlement.approve(address(credits), type(uint256).max);
        }
        uint256 before = settlement.balanceOf(who);
        vm.prank(who);
        uint256 paid = credits.buyFromPlatform(platform, amount, price);
        uint256 expected = (amount * price + PCC - 1) / PCC; // rounded up: never in the buyer's favour
        if (paid != expected || settlement.balanceOf(who) != before - expected) ++ghostPaymentMismatches;
    }

    /// @dev A platform settles 1-3 desk orders signed by distinct individuals (sell, buy, buy-and-cover), then
    /// now and then tries to settle the last one again, which its used nonce must refuse.
    function settleDeskOrders(uint256 seed, uint256 count, uint256 amounts) external measuresBurn {
        address platform = platforms[seed % platforms.length];
        (SignedDeskOrder[] memory orders, SettlementPermit[] memory permits, uint256 platformPays) =
            _signedOrders(platform, seed >> 8, bound(count, 1, 3), amounts);
        if (orders.length == 0) return;
        _fund(platform, platformPays);
        vm.prank(platform);
        credits.settleDeskOrders(orders, permits);
        // P4: a permit for exactly the payment leaves no allowance behind.
        for (uint256 i; i < permits.length; ++i) {
            if (settlement.allowance(permits[i].owner, address(credits)) != 0) ++ghostPaymentMismatches;
        }
        for (uint256 i; i < orders.length; ++i) {
            DeskOrder memory o = orders[i].order;
            if (ghostNonceUsed[o.holder][o.nonce]) ++ghostViolations;
            ghostNonceUsed[o.holder][o.nonce] = true;
            ++ghostOrdersSettled[o.holder];
            if (o.kind == BUY_AND_COVER) ghostCovered += o.amount;
        }
        _lastSettled = orders[orders.length - 1];
    }

    /// @dev Up to `count` orders of distinct individuals (from `first` on) for `platform`, signed, with the
    /// permits of the buyers that pay by permit, and what the platform pays the sellers.
    function _signedOrders(address platform, uint256 first, uint256 count, uint256 amounts)
        internal
        returns (SignedDeskOrder[] memory orders, SettlementPermit[] memory permits, uint256 platformPays)
    {
        orders = new SignedDeskOrder[](count);
        permits = new SettlementPermit[](count);
        OrderBuild memory b = OrderBuild(platform, credits.pricesOf(platform), credits.balanceOf(platform), 0, 0, 0);
        for (uint256 i; i < count; ++i) {
            _addOrder(b, orders, permits, first + i, uint256(keccak256(abi.encode(amounts, i))));
        }
        (uint256 made, uint256 permitted) = (b.made, b.permitted);
        assembly ("memory-safe") {
            mstore(orders, made)
            mstore(permits, permitted)
        }
        platformPays = b.platformPays;
    }

    struct OrderBuild {
        address platform;
        PostedPrices prices;
        uint256 stock; // the platform's credits not yet promised to a buyer of this call
        uint256 made;
        uint256 permitted;
        uint256 platformPays;
    }

    function _addOrder(
        OrderBuild memory b,
        SignedDeskOrder[] memory orders,
        SettlementPermit[] memory permits,
        uint256 individual,
        uint256 r
    ) internal {
        uint256 k = individual % individuals.length; // not _individual: holders of one call must be distinct
        (address holder, uint256 key) = (individuals[k], _keys[k]);
        if (suspended[holder]) return;
        DeskOrder memory o = _deskOrder(holder, b.platform, b.prices, r, b.stock);
        if (o.amount == 0) return;
        if (o.kind == SELL) {
            b.platformPays += uint256(o.amount) * b.prices.buyBack / PCC;
        } else {
            b.stock -= o.amount;
            // One buyer in two pays through a permit for exactly its payment instead of a standing approval.
            if ((r >> 250) & 1 == 1) {
                permits[b.permitted++] = _permit(holder, key, (uint256(o.amount) * b.prices.sale + PCC - 1) / PCC);
            }
        }
        orders[b.made++] = _sign(o, key);
    }

    function _sign(DeskOrder memory o, uint256 key) internal view returns (SignedDeskOrder memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, credits.deskOrderDigest(o));
        return SignedDeskOrder(o, v, r, s);
    }

    /// @dev One order for `holder`, sized to what it and the platform can do; amount 0 if none fits.
    function _deskOrder(address holder, address platform, PostedPrices memory prices, uint256 r, uint256 stock)
        internal
        returns (DeskOrder memory o)
    {
        o.holder = holder;
        o.platform = platform;
        o.nonce = uint64(credits.nonces(holder));
        o.deadline = uint64(block.timestamp + 1 hours);
        o.kind = uint8(r % 3);
        if (o.kind == SELL) {
            uint256 leastSold = _minTrade(prices.buyBack);
            uint256 balance = credits.balanceOf(holder);
            if (balance < leastSold) return o; // amount 0: skipped
            o.amount = uint128(bound(r >> 8, leastSold, balance));
            o.limitPrice = prices.buyBack;
            return o;
        }
        uint256 least = _minTrade(prices.sale);
        uint256 most = stock;
        if (o.kind == BUY_AND_COVER) {
            o.period = periods[(r >> 200) % periods.length];
            (uint256 owed, uint256 covered) = credits.deficitOf(o.period, holder);
            if (owed - covered < most) most = owed - covered;
            if (most < least) {
                o.kind = BUY; // nothing (enough) to cover: a plain buy
                most = stock;
            }
        }
        if (most < least) return o;
        o.amount = uint128(bound(r >> 8, least, most));
        o.limitPrice = prices.sale;
        _fund(holder, uint256(o.amount) * prices.sale / PCC + 1); // distinct holders: one order each
        // A standing approval, or none if the holder pays through a permit (settleDeskOrders signs it).
        vm.prank(holder);
        settlement.approve(address(credits), (r >> 250) & 1 == 1 ? 0 : type(uint256).max);
    }

    /// @dev `holder`'s EIP-2612 permit of `value` settlement units to the credit manager.
    function _permit(address holder, uint256 key, uint256 value) internal view returns (SettlementPermit memory p) {
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, holder, address(credits), value, settlement.nonces(holder), deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", settlement.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        p = SettlementPermit({owner: holder, value: value, deadline: deadline, v: v, r: r, s: s});
    }

    /// @dev Replays the last settled desk order: its nonce is used, so it must be refused (once per order).
    function replayDeskOrder(uint256 seed) external supplyUnchanged {
        if (_lastSettled.order.holder == address(0) || seed % 2 != 0) return;
        SignedDeskOrder[] memory orders = new SignedDeskOrder[](1);
        orders[0] = _lastSettled;
        vm.prank(_lastSettled.order.platform);
        try credits.settleDeskOrders(orders, new SettlementPermit[](0)) {
            ++ghostViolations;
        } catch (bytes memory reason) {
            _refused(reason, Nonces.InvalidAccountNonce.selector);
        }
    }

    function redeem(uint256 seed, uint256 amount) external measuresBurn {
        address platform = platforms[seed % platforms.length];
        address merchant = merchants[(seed >> 8) % merchants.length];
        uint256 rate = credits.merchantRateOf(platform, merchant);
        if (rate == 0) return;
        (address who,) = _holderOf(seed >> 16, 1);
        uint256 balance = credits.balanceOf(who);
        if (balance == 0) return;
        amount = bound(amount, 1, balance);
        _fund(platform, amount * rate / PCC);
        uint256 merchantBefore = settlement.balanceOf(merchant);
        vm.prank(who);
        credits.redeem(platform, merchant, amount, keccak256(abi.encode("receipt", ++_nonce)));
        ghostRedeemed += amount;
        if (settlement.balanceOf(merchant) != merchantBefore + amount * rate / PCC) ++ghostViolations; // P4
    }

    /// @dev Donates to a project; a closed one must refuse the donation.
    function donate(uint256 seed, uint256 amount) external measuresBurn {
        uint32 project = projects[seed % projects.length];
        (address who,) = _holderOf(seed >> 8, 1);
        uint256 balance = credits.balanceOf(who);
        if (balance == 0) return;
        amount = bound(amount, 1, balance);
        if (!credits.projectOf(project).open) {
            vm.prank(who);
            try credits.donate(project, amount) {
                ++ghostViolations;
            } catch (bytes memory reason) {
                _refused(reason, ICreditManager.CreditsProjectClosed.selector);
            }
            return;
        }
        vm.prank(who);
        credits.donate(project, amount);
        ghostDonated += amount;
    }

    /// @dev Now and then (one call in four) the regulator closes an open project and registers a new one.
    function closeProject(uint256 seed) external supplyUnchanged {
        if (seed % 4 != 0) return;
        uint32 project = projects[(seed >> 8) % projects.length];
        if (!credits.projectOf(project).open) return;
        uint32 next = projects[projects.length - 1] + 1;
        vm.startPrank(regulator);
        credits.closeProject(project);
        credits.registerProject(next, vm.addr(0xB000 + next), 0, "Project");
        vm.stopPrank();
        projects.push(next);
    }

    /// @dev The platform organisation suspends an individual (at most two at a time); a suspended member may
    /// not receive credits (claims, transfers) nor trade at a desk.
    function suspendIndividual(uint256 seed) external supplyUnchanged {
        if (suspendedCount >= 2) return;
        address who = individuals[seed % individuals.length];
        if (suspended[who]) return;
        IConsortiumRegistry registry = credits.registry();
        vm.prank(settlementIssuer);
        registry.suspend(who);
        suspended[who] = true;
        ++suspendedCount;
        uint256 price = credits.pricesOf(platforms[0]).buyBack;
        uint256 balance = credits.balanceOf(who);
        if (balance >= _minTrade(price)) {
            _fund(platforms[0], balance * price / PCC); // so that only the suspension can refuse the sale
            vm.prank(who);
            try credits.sellToPlatform(platforms[0], balance, price) {
                ++ghostViolations;
            } catch (bytes memory reason) {
                _refused(reason, RegistryGuard.GuardInactiveMember.selector);
            }
        }
    }

    function reinstateIndividual(uint256 seed) external supplyUnchanged {
        uint256 n = individuals.length;
        for (uint256 i; i < n; ++i) {
            address who = individuals[(seed % n + i) % n];
            if (!suspended[who]) continue;
            IConsortiumRegistry registry = credits.registry();
            vm.prank(settlementIssuer);
            registry.reinstate(who);
            suspended[who] = false;
            --suspendedCount;
            return;
        }
    }

    /// @dev A plain ERC-20 transfer between individuals and merchants.
    function transferCredits(uint256 seed, uint256 toSeed, uint256 amount) external supplyUnchanged {
        (address from,) = _holderOf(seed, 1);
        uint256 balance = credits.balanceOf(from);
        if (balance == 0) return;
        amount = bound(amount, 1, balance);
        address to = toSeed % 4 == 0 ? merchants[toSeed % merchants.length] : individuals[toSeed % individuals.length];
        if (suspended[to] || suspended[from]) {
            vm.prank(from);
            try credits.transfer(to, amount) {
                ++ghostViolations; // the registry's transfer policy (A3) applies to PCC too
            } catch (bytes memory reason) {
                _refused(reason, PermissionedERC20.TokenTransferRefused.selector);
            }
            return;
        }
        vm.prank(from);
        credits.transfer(to, amount);
    }
}
