// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {IConsortiumRegistry} from "../interfaces/IConsortiumRegistry.sol";
import {VintageToken} from "./VintageToken.sol";

/**
 * @title VintageTokenFactory
 * @notice Creates the ERC-20 of each allowance vintage and each offset project vintage, for one allowance
 * manager. Keeping the token's bytecode here keeps the manager under the contract size limit.
 */
contract VintageTokenFactory {
    /// @dev `caller` is not the deployer (for {bind}) or the bound manager (for {create}).
    error FactoryUnauthorised(address caller);

    /// @dev The factory is bound already, to `manager`.
    error FactoryAlreadyBound(address manager);

    /// @dev `token` was created for `manager`, with the given vintage and project (0 for allowances).
    event VintageTokenCreated(
        address indexed token, address indexed manager, uint16 vintage, uint32 projectId, string name, string symbol
    );

    /// @dev The factory was bound to `manager`.
    event FactoryBound(address indexed manager);

    IConsortiumRegistry public immutable registry;
    address public immutable deployer;
    address public manager;

    constructor(IConsortiumRegistry registry_) {
        registry = registry_;
        deployer = msg.sender;
    }

    /// @notice Binds the factory to its allowance manager, once, by the deployer.
    function bind(address manager_) external {
        if (msg.sender != deployer) revert FactoryUnauthorised(msg.sender);
        if (manager != address(0)) revert FactoryAlreadyBound(manager);
        manager = manager_;
        emit FactoryBound(manager_);
    }

    /**
     * @notice Creates a vintage token issued by the manager (only the manager): the allowances of period
     * `vintage` if `projectId` is 0 ("Allowance 2025", "CEA-2025"), else the offsets of that project and
     * vintage ("Offset 3-2025", "OFS-3-2025").
     */
    function create(uint16 vintage, uint32 projectId) external returns (address token) {
        if (msg.sender != manager || manager == address(0)) revert FactoryUnauthorised(msg.sender);
        string memory label = Strings.toString(vintage);
        string memory name;
        string memory symbol;
        if (projectId == 0) {
            (name, symbol) = (string.concat("Allowance ", label), string.concat("CEA-", label));
        } else {
            label = string.concat(Strings.toString(projectId), "-", label);
            (name, symbol) = (string.concat("Offset ", label), string.concat("OFS-", label));
        }
        token = address(new VintageToken(registry, msg.sender, name, symbol, vintage, projectId));
        emit VintageTokenCreated(token, msg.sender, vintage, projectId, name, symbol);
    }
}
