// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice The few forge cheatcodes the campaigns use. A local interface instead of forge-std: forge-std is not
/// published on npm in a usable form (the "forge-std" npm package is an old unofficial copy that needs ds-test),
/// and CI installs from registries only.
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function warp(uint256 timestamp) external;
    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
}

/// @notice The base of handlers and tests: the cheatcode handle, input bounding and failing checks.
abstract contract CheatBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    error CheckFailed(string what, uint256 left, uint256 right);

    /// @dev Maps any `x` into [min, max] (inclusive) without discarding runs.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (min > max) revert CheckFailed("bound: min > max", min, max);
        uint256 size = max - min + 1;
        return min + x % size;
    }

    function assertEq(uint256 left, uint256 right, string memory what) internal pure {
        if (left != right) revert CheckFailed(what, left, right);
    }

    function assertLe(uint256 left, uint256 right, string memory what) internal pure {
        if (left > right) revert CheckFailed(what, left, right);
    }
}
