"""The person a CLI command acts as, in the unit tier (no services, so no Keystone).

The CLI asks the center's Keystone who a clouds.yaml entry is (``yunshang.openstack.identity.
identity_of_cloud``); here that one question is answered with a fixed identity so that the commands'
own work (reading the store, rendering) can be tested offline. Whether Keystone's answer is asked
for and enforced is tested against the real Keystone in tests/api/test_cli_people.py."""
from __future__ import annotations

from yunshang.authz import Identity


def act_as(monkeypatch, name: str, *roles: str, department: str = "") -> Identity:
    """Every ``--os-cloud`` of this test is ``name`` with ``roles`` (of ``department``)."""
    me = Identity(f"unit-{name}", name, frozenset(roles), department)
    monkeypatch.setattr("yunshang.openstack.identity.identity_of_cloud", lambda clouds_file, cloud: me)
    return me
