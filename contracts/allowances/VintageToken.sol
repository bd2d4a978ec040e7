// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortiumRegistry} from "../interfaces/IConsortiumRegistry.sol";
import {PermissionedERC20} from "../tokens/PermissionedERC20.sol";

/**
 * @title VintageToken
 * @notice One vintage of carbon units as a plain ERC-20 with 6 decimals (1.000000 = 1 tCO2e): the allowances of
 * one compliance period, or the offset credits of one project and vintage. Created by the
 * {VintageTokenFactory} for the {AllowanceManager}, which alone mints (allocation, issuance) and burns
 * (surrender); transfers follow the registry's policy ({PermissionedERC20}).
 */
contract VintageToken is PermissionedERC20 {
    /// @dev `caller` is not the issuer (the allowance manager).
    error VintageNotIssuer(address caller);

    /// @notice The contract that mints and burns: the allowance manager.
    address public immutable issuer;

    /// @notice The compliance period (allowances) or the vintage year (offsets).
    uint16 public immutable vintage;

    /// @notice The offset project, or 0 for allowances.
    uint32 public immutable projectId;

    constructor(
        IConsortiumRegistry registry_,
        address issuer_,
        string memory name_,
        string memory symbol_,
        uint16 vintage_,
        uint32 projectId_
    ) PermissionedERC20(registry_, name_, symbol_, 6) {
        issuer = issuer_;
        vintage = vintage_;
        projectId = projectId_;
    }

    modifier onlyIssuer() {
        if (msg.sender != issuer) revert VintageNotIssuer(msg.sender);
        _;
    }

    /// @notice Mints `amount` to `to`. Only the issuer, which has checked `to` and the cap.
    function mint(address to, uint256 amount) external onlyIssuer {
        _mint(to, amount);
    }

    /**
     * @notice Mints one amount per grant; a grant packs the recipient in its high 160 bits and the amount in its
     * low 96 bits (32 bytes of calldata per recipient instead of 64). Only the issuer, which has checked every
     * recipient and the cap.
     */
    function mintGrants(bytes32[] calldata grants) external onlyIssuer {
        uint256 size = grants.length;
        for (uint256 i; i < size; ++i) {
            uint256 grant = uint256(grants[i]);
            _mint(address(uint160(grant >> 96)), uint96(grant));
        }
    }

    /// @notice Burns `amount` from `holder`. Only the issuer, on the holder's own surrender.
    function burnFrom(address holder, uint256 amount) external onlyIssuer {
        _burn(holder, amount);
    }
}
