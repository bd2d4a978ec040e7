"""ConsortiumRegistry through the SDK on the real devnet: behaviour, then every rejection with its named
custom error and the registry left exactly as it was."""

from __future__ import annotations

import pytest
from eth_account import Account

from carbon_sdk import MemberStatus, Role, errors
from carbon_sdk.errors import InvalidInput
from carbon_sdk.registry import identity_hash

ZERO = "0x" + "00" * 20


# -- behaviour ------------------------------------------------------------------------------------------


def test_deployment_bootstraps_the_national_regulator(regulator, devnet):
    org = regulator.registry.organisation(1)
    assert org.admin == devnet.bootstrap_address
    assert org.region == 0 and Role.REGULATOR in org.allowed_roles
    member = regulator.registry.member(devnet.bootstrap_address)
    assert member.role is Role.REGULATOR and member.status is MemberStatus.ACTIVE and member.org_id == 1


def test_registering_an_organisation_enrols_its_admin(make_org):
    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL), region=31)
    assert handle.org.allowed_roles == (Role.PLATFORM, Role.INDIVIDUAL)
    admin = handle.admin.registry.member(handle.admin.address)
    assert (admin.role, admin.status, admin.org_id, admin.region) == (
        Role.PLATFORM, MemberStatus.ACTIVE, handle.org.org_id, 31)
    assert handle.admin.registry.contract.call("adminOrgOf", handle.admin.address) == handle.org.org_id


def test_enrol_records_role_region_status_and_only_the_identity_hash(make_org):
    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL), region=44)
    person = Account.create().address
    record = {"national_id_digest": "c0ffee", "app": "green-commute"}
    member = handle.admin.registry.enrol(person, Role.INDIVIDUAL, region=44, identity=record)
    assert member.identity_hash == identity_hash(record)
    stored = handle.admin.registry.member(person)
    assert stored == member
    assert stored.status is MemberStatus.ACTIVE and stored.org_id == handle.org.org_id
    assert handle.admin.registry.is_active(person)


def test_batch_enrols_200_members_in_one_transaction(make_org):
    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL), region=7)
    people = [Account.create().address for _ in range(200)]
    seen = []
    members = handle.admin.registry.enrol_batch(people, Role.INDIVIDUAL, region=7, progress=seen.append)
    assert [m.address for m in members] == people
    assert sum(seen) == 200 and len(seen) == 1  # one transaction
    assert handle.admin.registry.statuses(people) == [MemberStatus.ACTIVE] * 200
    assert {m.role for m in members} == {Role.INDIVIDUAL}


def test_large_batches_are_split_into_bounded_transactions(make_org):
    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL))
    people = [Account.create().address for _ in range(450)]
    done = []
    nonce = handle.admin.sender.nonces.peek()
    members = handle.admin.registry.enrol_batch(people, Role.INDIVIDUAL, batch_size=200, progress=done.append)
    assert sum(done) == 450
    assert handle.admin.sender.nonces.peek() == nonce + 3  # 200 + 200 + 50
    assert len(members) == 450 and all(s is MemberStatus.ACTIVE for s in handle.admin.registry.statuses(people))


def test_status_life_cycle_and_events(make_org):
    handle = make_org(Role.ENTERPRISE, allowed=(Role.ENTERPRISE,))
    worker = Account.create().address
    handle.admin.registry.enrol(worker, Role.ENTERPRISE)
    change = handle.admin.registry.suspend(worker)
    assert (change.previous, change.current, change.by) == (
        MemberStatus.ACTIVE, MemberStatus.SUSPENDED, handle.admin.address)
    assert not handle.admin.registry.is_active(worker)
    assert handle.admin.registry.reinstate(worker).current is MemberStatus.ACTIVE
    assert handle.admin.registry.revoke(worker).current is MemberStatus.REVOKED
    with pytest.raises(errors.RegistryInvalidStatusTransition) as caught:
        handle.admin.registry.reinstate(worker)
    assert caught.value.arguments["account"] == worker
    assert caught.value.arguments["from"] == MemberStatus.REVOKED


def test_regulator_changes_allowed_roles_and_admin(regulator, make_org, new_account):
    handle = make_org(Role.ENTERPRISE, allowed=(Role.ENTERPRISE,))
    org = regulator.registry.set_allowed_roles(handle.org.org_id, [Role.ENTERPRISE, Role.OBSERVER])
    assert org.allowed_roles == (Role.ENTERPRISE, Role.OBSERVER)
    deputy = new_account()
    handle.admin.registry.enrol(deputy.address, Role.OBSERVER)
    org = regulator.registry.set_organisation_admin(handle.org.org_id, deputy.address)
    assert org.admin == deputy.address
    assert regulator.registry.contract.call("adminOrgOf", handle.admin.address) == 0


def test_members_listing_and_filters(make_org):
    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL))
    people = [Account.create().address for _ in range(3)]
    handle.admin.registry.enrol_batch(people, Role.INDIVIDUAL)
    handle.admin.registry.suspend(people[0])
    in_org = handle.admin.registry.members(org_id=handle.org.org_id)
    assert {m.address for m in in_org} == {*people, handle.admin.address}
    active = handle.admin.registry.members(org_id=handle.org.org_id, status=MemberStatus.ACTIVE)
    assert {m.address for m in active} == {people[1], people[2], handle.admin.address}


# -- rejections: named custom error, nothing changed ---------------------------------------------------


def test_only_a_regulator_registers_organisations(make_org, unchanged):
    enterprise = make_org(Role.ENTERPRISE)
    with unchanged([enterprise.admin.address]), pytest.raises(errors.RegistryNotRegulator) as caught:
        enterprise.admin.registry.register_organisation("Rogue", Account.create().address, Role.ENTERPRISE,
                                                        allowed_roles=[Role.ENTERPRISE])
    assert caught.value.arguments == {"caller": enterprise.admin.address}


def test_org_admin_cannot_enrol_a_role_its_org_may_not(make_org, unchanged):
    handle = make_org(Role.ENTERPRISE, allowed=(Role.ENTERPRISE,))
    outsider = Account.create().address
    with unchanged([outsider]), pytest.raises(errors.RegistryRoleNotAllowed) as caught:
        handle.admin.registry.enrol(outsider, Role.VERIFIER)
    assert caught.value.arguments == {"orgId": handle.org.org_id, "role": int(Role.VERIFIER)}


def test_a_plain_member_cannot_enrol(make_org, client_for, unchanged):
    handle = make_org(Role.ENTERPRISE, allowed=(Role.ENTERPRISE,))
    staff = Account.create()
    handle.admin.registry.enrol(staff.address, Role.ENTERPRISE)
    outsider = Account.create().address
    with unchanged([outsider]), pytest.raises(errors.RegistryNotOrganisationAdmin) as caught:
        client_for(staff).registry.enrol(outsider, Role.ENTERPRISE)
    assert caught.value.arguments == {"caller": staff.address}


def test_a_revoked_admin_can_no_longer_enrol(regulator, make_org, unchanged):
    handle = make_org(Role.ENTERPRISE, allowed=(Role.ENTERPRISE,))
    regulator.registry.revoke(handle.admin.address)
    outsider = Account.create().address
    with unchanged([outsider]), pytest.raises(errors.ContractCustomError) as caught:
        # Caught while estimating gas: the contract's rule, before the gateway would refuse the sender.
        handle.admin.registry.enrol(outsider, Role.ENTERPRISE)
    assert caught.value.name == "RegistryCallerNotActive"
    assert caught.value.arguments == {"caller": handle.admin.address}


def test_zero_address_is_refused_before_sending_and_by_the_contract(make_org, unchanged):
    handle = make_org(Role.ENTERPRISE, allowed=(Role.ENTERPRISE,))
    nonce = handle.admin.sender.nonces.peek()
    with pytest.raises(InvalidInput, match="zero address"):
        handle.admin.registry.enrol(ZERO, Role.ENTERPRISE)
    assert handle.admin.sender.nonces.peek() == nonce  # nothing was sent
    # Bypass the SDK's check with a fixed gas limit: the contract itself refuses, on chain.
    call = handle.admin.registry.contract.tx("enrol", ZERO, int(Role.ENTERPRISE), 0, b"\x01" * 32, gas=300_000)
    with unchanged([ZERO]), pytest.raises(errors.RegistryZeroAddress) as caught:
        handle.admin.transact(call)
    assert caught.value.tx_hash is not None  # mined and reverted, decoded from the chain


def test_duplicate_enrolment_and_reuse_of_a_revoked_address(make_org, unchanged):
    handle = make_org(Role.ENTERPRISE, allowed=(Role.ENTERPRISE,))
    worker = Account.create().address
    handle.admin.registry.enrol(worker, Role.ENTERPRISE)
    with unchanged([worker]), pytest.raises(errors.RegistryAlreadyEnrolled) as caught:
        handle.admin.registry.enrol(worker, Role.ENTERPRISE)
    assert caught.value.account == worker
    handle.admin.registry.revoke(worker)
    with unchanged([worker]), pytest.raises(errors.RegistryAlreadyEnrolled):
        handle.admin.registry.enrol(worker, Role.ENTERPRISE)


def test_a_batch_with_one_bad_entry_enrols_nobody(make_org, unchanged):
    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL))
    existing = Account.create().address
    handle.admin.registry.enrol(existing, Role.INDIVIDUAL)
    fresh = [Account.create().address for _ in range(5)]
    with pytest.raises(InvalidInput, match="appears twice"):
        handle.admin.registry.enrol_batch([*fresh, fresh[0]], Role.INDIVIDUAL)
    with unchanged([*fresh, existing]), pytest.raises(errors.RegistryAlreadyEnrolled) as caught:
        handle.admin.registry.enrol_batch([*fresh, existing], Role.INDIVIDUAL)
    assert caught.value.account == existing
    # Across transactions too: the second chunk's duplicate is caught before the first chunk is sent.
    with unchanged(fresh), pytest.raises(errors.RegistryAlreadyEnrolled):
        handle.admin.registry.enrol_batch([*fresh, existing], Role.INDIVIDUAL, batch_size=3)


def test_batch_size_is_bounded_on_chain(make_org, unchanged):
    handle = make_org(Role.PLATFORM, allowed=(Role.PLATFORM, Role.INDIVIDUAL))
    people = [Account.create().address for _ in range(501)]
    call = handle.admin.registry.contract.tx("enrolBatch", people, int(Role.INDIVIDUAL), 0, [b"\x02" * 32] * 501)
    with unchanged(people[:3]), pytest.raises(errors.RegistryBatchSize) as caught:
        handle.admin.transact(call)
    assert caught.value.arguments == {"size": 501, "max": 500}


def test_region_must_match_a_regional_organisation(make_org, unchanged):
    handle = make_org(Role.ENTERPRISE, allowed=(Role.ENTERPRISE,), region=11)
    worker = Account.create().address
    with unchanged([worker]), pytest.raises(errors.RegistryRegionMismatch) as caught:
        handle.admin.registry.enrol(worker, Role.ENTERPRISE, region=12)
    assert caught.value.arguments == {"expected": 11, "given": 12}


def test_an_admin_cannot_change_another_organisations_member(make_org, unchanged):
    first, second = make_org(Role.ENTERPRISE), make_org(Role.ENTERPRISE)
    worker = Account.create().address
    first.admin.registry.enrol(worker, Role.ENTERPRISE)
    with unchanged([worker]), pytest.raises(errors.RegistryNotAuthorisedFor) as caught:
        second.admin.registry.suspend(worker)
    assert caught.value.arguments == {"caller": second.admin.address, "account": worker}


def test_nobody_can_lock_themselves_out(regulator, make_org, unchanged, devnet):
    with unchanged([devnet.bootstrap_address]), pytest.raises(errors.RegistrySelfLockout):
        regulator.registry.suspend(devnet.bootstrap_address)


def test_regional_regulator_acts_only_in_its_region(make_org, unchanged):
    regional = make_org(Role.REGULATOR, allowed=(Role.REGULATOR,), region=5)
    inside = make_org(Role.ENTERPRISE, region=5, by=regional.admin)
    assert inside.org.region == 5
    before_count = regional.admin.registry.contract.call("organisationCount")
    with unchanged([]), pytest.raises(errors.RegistryRegionMismatch):
        make_org(Role.ENTERPRISE, region=6, by=regional.admin)
    assert regional.admin.registry.contract.call("organisationCount") == before_count
    outside = make_org(Role.ENTERPRISE, region=6)
    with unchanged([outside.admin.address]), pytest.raises(errors.ContractCustomError):
        regional.admin.registry.suspend(outside.admin.address)


def test_invalid_inputs_are_rejected_before_sending(regulator):
    with pytest.raises(InvalidInput, match="not an Ethereum address"):
        regulator.registry.enrol("0x1234", Role.ENTERPRISE)
    with pytest.raises(InvalidInput, match="unknown role"):
        regulator.registry.enrol(Account.create().address, "astronaut")
    with pytest.raises(InvalidInput, match="region"):
        regulator.registry.enrol(Account.create().address, Role.OBSERVER, region=-1)
    with pytest.raises(InvalidInput, match="allowed roles"):
        regulator.registry.register_organisation("X", Account.create().address, Role.VERIFIER,
                                                 allowed_roles=[Role.ENTERPRISE])


def test_an_unknown_organisation_is_a_typed_error(regulator):
    count = regulator.registry.contract.call("organisationCount")
    with pytest.raises(errors.RegistryUnknownOrganisation) as caught:
        regulator.registry.organisation(count + 1)
    assert caught.value.arguments == {"orgId": count + 1}
