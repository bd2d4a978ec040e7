"""Offset projects and their credits: registration by national and regional regulators, issuance to active
members, one token per (project, vintage). (The offset share at surrender is in test_surrender.py.)"""

from __future__ import annotations

import pytest
from eth_account import Account

from carbon_sdk import Role, errors
from carbon_sdk.allowances import MAX_GRANTS, OffsetKind, TokenKind
from carbon_sdk.coin import to_bytes32
from carbon_sdk.errors import InvalidInput
from allowances_helpers import T, grants, raw, unchanged

NORTH, SOUTH = 11, 22


@pytest.fixture(scope="module")
def cast(market):
    return {
        "e": market.enterprise(),
        "north": market.enterprise(NORTH),
        "verifier": market.verifier(),
        "reg_north": market.regional_regulator(NORTH),
        "reg_south": market.regional_regulator(SOUTH),
    }


def _count(market) -> int:
    return market.regulator.allowances.contract.call("offsetProjectCount")


def test_national_regulator_registers_projects_of_any_region(market):
    allowances = market.regulator.allowances
    before = _count(market)
    national = allowances.register_offset_project("Inner Mongolia wind CCER", "ccer", document=b"PDD v3")
    regional = allowances.register_offset_project(
        "Lake reforestation", OffsetKind.FORESTRY_SINK, region=SOUTH
    )
    assert (national.project_id, regional.project_id) == (before + 1, before + 2)
    assert (national.name, national.kind, national.region, national.document_hash) == (
        "Inner Mongolia wind CCER",
        OffsetKind.CCER,
        0,
        to_bytes32(b"PDD v3"),
    )
    assert (regional.kind, regional.region) == (OffsetKind.FORESTRY_SINK, SOUTH)
    assert allowances.offset_project(regional.project_id) == regional
    assert allowances.offset_projects()[-2:] == [national, regional]
    [event] = [
        e for e in allowances.contract.logs(["OffsetProjectRegistered"]) if e.args["projectId"] == before + 1
    ]
    assert event.args["name"] == "Inner Mongolia wind CCER" and event.args["kind"] == OffsetKind.CCER


def test_regional_regulator_registers_only_in_its_region(market, cast):
    reg_north = cast["reg_north"]
    project = reg_north.allowances.register_offset_project("North mangroves", "forestry_sink", region=NORTH)
    assert project.region == NORTH
    count = _count(market)
    with unchanged(market):
        for region in (SOUTH, 0):
            with pytest.raises(errors.AllowancesRegionMismatch) as info:
                reg_north.allowances.register_offset_project("Elsewhere", "ccer", region=region)
            assert info.value.arguments == {"callerRegion": NORTH, "region": region}
        with pytest.raises(errors.GuardMissingRole) as info:
            cast["e"].allowances.register_offset_project("Mine", "other")
        assert info.value.arguments == {"account": cast["e"].address, "required": Role.REGULATOR}
        with pytest.raises(InvalidInput, match="needs a name"):
            market.regulator.allowances.register_offset_project("  ", "ccer")
        with pytest.raises(InvalidInput, match="unknown offset kind"):
            market.regulator.allowances.register_offset_project("X", "solar")
    assert _count(market) == count


def test_issue_creates_one_token_per_project_vintage_and_reuses_it(market, cast):
    allowances = market.regulator.allowances
    project = allowances.register_offset_project("Reuse CCER", "ccer").project_id
    e, verifier = cast["e"].address, cast["verifier"].address
    assert allowances.offset_token(project, 2001) is None

    first = allowances.issue_offsets(project, 2001, {e: T(10), verifier: T(1)})
    assert first.grants == {e: T(10), verifier: T(1)} and first.total == T(11)
    token = allowances.token(first.token)
    assert (token.call("name"), token.call("symbol")) == (f"Offset {project}-2001", f"OFS-{project}-2001")
    assert (token.call("vintage"), token.call("projectId"), token.call("decimals")) == (2001, project, 6)
    info = allowances.token_info(first.token)
    assert (info["kind"], info["vintage"], info["project_id"], info["issued"], info["surrendered"]) == (
        TokenKind.OFFSET,
        2001,
        project,
        T(11),
        0,
    )

    second = allowances.issue_offsets(project, 2001, {e: T(4)})
    assert second.token == first.token == allowances.offset_token(project, 2001)
    assert allowances.token_info(first.token)["issued"] == T(15) == token.call("totalSupply")
    assert allowances.balance(first.token, e) == T(14)

    other = allowances.issue_offsets(project, 2002, {e: T(1)})
    assert other.token != first.token and allowances.token_info(other.token)["vintage"] == 2002
    events = [x for x in allowances.contract.logs(["OffsetsIssued"]) if x.args["projectId"] == project]
    assert [(x.args["vintage"], x.args["token"], x.args["total"]) for x in events] == [
        (2001, first.token, T(11)),
        (2001, first.token, T(4)),
        (2002, other.token, T(1)),
    ]


def test_regional_regulator_issues_only_for_projects_of_its_region(market, cast):
    north_project = (
        cast["reg_north"]
        .allowances.register_offset_project("North peat", "forestry_sink", region=NORTH)
        .project_id
    )
    national_project = market.regulator.allowances.register_offset_project("National CCER", "ccer").project_id
    issued = cast["reg_north"].allowances.issue_offsets(north_project, 2001, {cast["north"].address: T(3)})
    assert market.regulator.allowances.balance(issued.token, cast["north"].address) == T(3)
    with unchanged(market, tokens=[issued.token], holders=list(cast.values())):
        for client, project, region in (
            (cast["reg_south"], north_project, NORTH),
            (cast["reg_north"], national_project, 0),
        ):
            with pytest.raises(errors.AllowancesRegionMismatch) as info:
                client.allowances.issue_offsets(project, 2001, {cast["e"].address: T(1)})
            assert info.value.arguments == {
                "callerRegion": client.registry.member(client.address).region,
                "region": region,
            }
        with pytest.raises(errors.GuardMissingRole) as info:
            cast["e"].allowances.issue_offsets(north_project, 2001, {cast["e"].address: T(1)})
        assert info.value.arguments == {"account": cast["e"].address, "required": Role.REGULATOR}
    assert market.regulator.allowances.offset_token(national_project, 2001) is None


def test_unknown_project_is_refused(market, cast):
    unknown = _count(market) + 1
    with unchanged(market, holders=[cast["e"]]):
        with pytest.raises(errors.AllowancesUnknownProject) as info:
            market.regulator.allowances.issue_offsets(unknown, 2001, {cast["e"].address: T(1)})
        assert info.value.arguments == {"projectId": unknown}
        with pytest.raises(errors.AllowancesUnknownProject) as info:
            raw(market.regulator, "issueOffsets", unknown, 2001, grants((cast["e"].address, T(1))))
        assert info.value.tx_hash is not None
    with pytest.raises(errors.AllowancesUnknownProject):
        market.regulator.allowances.offset_project(unknown)
    assert market.regulator.allowances.offset_token(unknown, 2001) is None


def test_offsets_go_only_to_active_members_in_valid_batches(market, cast):
    regulator = market.regulator
    project = regulator.allowances.register_offset_project("Checked CCER", "ccer").project_id
    token = regulator.allowances.issue_offsets(project, 2001, {cast["e"].address: T(1)}).token
    suspended, stranger = market.enterprise(), Account.create().address
    regulator.registry.suspend(suspended.address)
    e = cast["e"].address
    with unchanged(market, tokens=[token], holders=[cast["e"], suspended, stranger]):
        for bad in (suspended.address, stranger):
            with pytest.raises(errors.RegistryIneligibleMember) as info:
                regulator.allowances.issue_offsets(project, 2001, [(e, T(1)), (bad, T(1))])
            assert info.value.arguments == {"account": bad, "role": Role.NONE, "region": 0}
        with pytest.raises(errors.AllowancesZeroAmount) as info:
            raw(regulator, "issueOffsets", project, 2001, grants((e, T(1)), (e, 0)))
        assert info.value.arguments == {"index": 1}
        with pytest.raises(errors.AllowancesBatchSize) as info:
            raw(regulator, "issueOffsets", project, 2001, [])
        assert info.value.arguments == {"size": 0, "max": MAX_GRANTS}
        with pytest.raises(errors.AllowancesBatchSize) as info:
            raw(regulator, "issueOffsets", project, 2001, grants(*[(e, 1)] * (MAX_GRANTS + 1)), gas=5_000_000)
        assert info.value.arguments == {"size": MAX_GRANTS + 1, "max": MAX_GRANTS}
        with pytest.raises(InvalidInput, match="no grants given"):
            regulator.allowances.issue_offsets(project, 2001, [])
    # A refused first issue of a new vintage creates no token.
    with pytest.raises(errors.RegistryIneligibleMember):
        regulator.allowances.issue_offsets(project, 2002, {stranger: T(1)})
    assert regulator.allowances.offset_token(project, 2002) is None
