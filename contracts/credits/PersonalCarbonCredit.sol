// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IConsortiumRegistry} from "../interfaces/IConsortiumRegistry.sol";
import {PermissionedERC20} from "../tokens/PermissionedERC20.sol";

/**
 * @title PersonalCarbonCredit
 * @notice Personal carbon credits (PCC): individuals' surplus quota and low-carbon behaviour, 6 decimals
 * (1.000000 = 1 tCO2e), with the registry's transfer policy ({PermissionedERC20}). Only the credit manager
 * mints (claims of committed batches), burns (deficit cover, redemption, donation) and moves
 * credits between a holder and a platform's desk at its posted prices.
 */
contract PersonalCarbonCredit is PermissionedERC20 {
    /// @dev `caller` is not the credit manager.
    error CreditNotIssuer(address caller);

    /// @notice The credit manager, which alone mints and burns.
    address public immutable issuer;

    constructor(IConsortiumRegistry registry_, address issuer_)
        PermissionedERC20(registry_, "Personal Carbon Credit", "PCC", 6)
    {
        issuer = issuer_;
    }

    modifier onlyIssuer() {
        if (msg.sender != issuer) revert CreditNotIssuer(msg.sender);
        _;
    }

    /// @notice Mints `amount` to `to`. Only the credit manager, for a verified claim.
    function mint(address to, uint256 amount) external onlyIssuer {
        _mint(to, amount);
    }

    /// @notice Moves `amount` from `from` to `to` under the transfer policy. Only the credit manager, on the
    /// caller's own call (a sale to or a purchase from a platform at its posted price).
    function moveFor(address from, address to, uint256 amount) external onlyIssuer {
        _transfer(from, to, amount);
    }

    /// @notice Burns `amount` from `holder`. Only the credit manager, on the holder's own call.
    function burnFrom(address holder, uint256 amount) external onlyIssuer {
        _burn(holder, amount);
    }
}
