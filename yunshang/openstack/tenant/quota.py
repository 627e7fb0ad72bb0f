"""Quotas (Nova, Neutron, Cinder): only the fields the spec names are read, compared and set."""
from __future__ import annotations

from yunshang.openstack.tenant.base import ApplyContext, DestroyContext, KindEngine, ReadContext, rest_json
from yunshang.tenant import Item


def _endpoints(conn, pid: str):
    """(service, adapter, path, body key): raw REST, so the fields are the APIs' own names."""
    return (("compute", conn.compute, f"/os-quota-sets/{pid}", "quota_set"),
            ("network", conn.network, f"/quotas/{pid}", "quota"),
            ("volume", conn.block_storage, f"/os-quota-sets/{pid}", "quota_set"))


class Quota(KindEngine):
    kind = "quota"
    update = "in-place"

    def read(self, rc: ReadContext) -> None:
        fields = rc.quota_fields or {}
        data = {service: rest_json(adapter.get(path))[key] for service, adapter, path, key in _endpoints(rc.conn, rc.pid)}
        for service, values in data.items():
            names = fields.get(service)
            if names is None:
                continue
            rc.obs.add(Item("quota", service, tuple(sorted((k, int(values[k])) for k in names if k in values))),
                       rc.pid)

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        q = ac.spec.quotas.as_dict()
        for service, adapter, path, key in _endpoints(ac.conn, ac.pid):
            if ("quota", service) in todo:
                rest_json(adapter.put(path, json={key: q[service]}))
                ac.say(f"  set {service} quota {q[service]}")

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        return False  # go with the project
