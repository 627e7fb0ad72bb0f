"""Private flavors of the project (Nova flavor names are cloud-wide: ``dept-<department>.*``)."""
from __future__ import annotations

from yunshang.openstack.tenant.base import ApplyContext, KindEngine, ReadContext
from yunshang.tenant import item


class Flavor(KindEngine):
    kind = "flavor"
    update = "if-managed"          # ours and different: replaced
    deleter = ("compute", "delete_flavor")

    def read(self, rc: ReadContext) -> None:
        for f in rc.conn.compute.flavors(details=True, is_public=None):
            if f.name.startswith(f"{rc.project_name}."):
                rc.obs.add(item("flavor", f.name, disk_gb=f.disk, ram_mb=f.ram, vcpus=f.vcpus), f.id, True)

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        compute = ac.conn.compute
        for f in ac.spec.flavors:
            c = todo.get(("flavor", f.name))
            if c and c.action == "update":
                compute.delete_flavor(ac.ids[("flavor", f.name)])
            if c and c.action in ("create", "update"):
                fl = compute.create_flavor(name=f.name, vcpus=f.vcpus, ram=f.ram_mb, disk=f.disk_gb, is_public=False)
                compute.flavor_add_tenant_access(fl, ac.pid)
                ac.made("flavor", f.name, fl.id)
            elif ("flavor", f.name) in ac.ids:
                fid = ac.ids[("flavor", f.name)]
                if not any(x.get("tenant_id") == ac.pid for x in compute.get_flavor_access(fid)):
                    compute.flavor_add_tenant_access(fid, ac.pid)

