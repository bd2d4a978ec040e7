"""RegistryGuard, the mixin every later contract uses to ask the registry who may act."""

from __future__ import annotations

import pytest
from eth_account import Account

from carbon_sdk import Role, errors


def test_active_member_passes_only_active(make_org, probe_for):
    handle = make_org(Role.ENTERPRISE)
    probe = probe_for(handle.admin)
    before = probe.call("count")
    receipt = handle.admin.transact(probe.tx("ping"))
    (event,) = probe.events(receipt)
    assert event.name == "Pinged" and event.args == {"by": handle.admin.address, "count": before + 1}


def test_suspended_member_is_refused_by_the_guard(make_org, client_for, probe_for):
    handle = make_org(Role.ENTERPRISE)
    staff = Account.create()
    handle.admin.registry.enrol(staff.address, Role.ENTERPRISE)
    handle.admin.registry.suspend(staff.address)
    probe = probe_for(client_for(staff))
    before = probe.call("count")
    with pytest.raises(errors.GuardInactiveMember) as caught:
        client_for(staff).transact(probe.tx("ping"))
    assert caught.value.arguments == {"account": staff.address}
    assert probe.call("count") == before


def test_only_role_requires_the_role(make_org, regulator, probe_for):
    handle = make_org(Role.ENTERPRISE)
    probe = probe_for(handle.admin)
    before = probe.call("count")
    with pytest.raises(errors.GuardMissingRole) as caught:
        handle.admin.transact(probe.tx("regulatorPing"))
    assert caught.value.arguments == {"account": handle.admin.address, "required": int(Role.REGULATOR)}
    assert probe.call("count") == before
    regulator.transact(probe_for(regulator).tx("regulatorPing"))
    assert probe.call("count") == before + 1
