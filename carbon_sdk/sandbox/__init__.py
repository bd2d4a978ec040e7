"""Policy sandbox (issue 6): a multi-period market simulation on the real contracts, written up as a report.

    from carbon_sdk.sandbox import load_scenario
    scenario = load_scenario("default")        # carbon_sdk/data/scenarios/default.yaml, validated
"""

from carbon_sdk.sandbox.scenario import (
    Cap,
    EnterpriseGroup,
    Group,
    Individuals,
    MarketRules,
    Platform,
    Policy,
    Region,
    Scenario,
    ScenarioError,
    Verifier,
    load_scenario,
    shipped_scenarios,
)

__all__ = [
    "Cap",
    "EnterpriseGroup",
    "Group",
    "Individuals",
    "MarketRules",
    "Platform",
    "Policy",
    "Region",
    "Scenario",
    "ScenarioError",
    "Verifier",
    "load_scenario",
    "shipped_scenarios",
]
