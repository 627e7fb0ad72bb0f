"""Cinder volumes, each attached to its server."""
from __future__ import annotations

from yunshang.openstack.tenant.base import MARK, WAIT_SECONDS, ApplyContext, DestroyContext, KindEngine, ReadContext
from yunshang.tenant import MANAGED_BY, item


class Volume(KindEngine):
    kind = "volume"
    update = "if-managed"          # ours: resized (grown) and re-attached

    def read(self, rc: ReadContext) -> None:
        server_name: dict = rc.once("server_name", dict)  # type: ignore[assignment]
        for v in rc.conn.block_storage.volumes(details=True, all_projects=True, project_id=rc.pid):
            att = [a.get("server_id") for a in v.attachments or []]
            rc.obs.add(item("volume", v.name, server=server_name.get(att[0], att[0]) if att else "", size_gb=v.size),
                       v.id, (v.metadata or {}).get("managed-by") == MANAGED_BY)

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        if not any(c.kind == self.kind and c.action in ("create", "update") for c in todo.values()):
            return
        pc = ac.project_conn()
        vols = []
        for v in ac.spec.volumes:
            c = todo.get(("volume", v.name))
            if c and c.action == "create":
                vol = pc.block_storage.create_volume(name=v.name, size=v.size_gb, description=f"{MARK} volume of {v.server}",
                                                     metadata={"managed-by": MANAGED_BY})
                ac.made("volume", v.name, vol.id)
                vols.append((v, vol))
            elif c and c.action == "update":
                vols.append((v, pc.block_storage.get_volume(ac.ids[("volume", v.name)])))
        for v, vol in vols:
            vol = pc.block_storage.wait_for_status(vol, status="available", failures=["error"], wait=WAIT_SECONDS) \
                if vol.status != "in-use" else vol
            if vol.size < v.size_gb:
                pc.block_storage.extend_volume(vol, v.size_gb)
            if not vol.attachments:
                pc.compute.create_volume_attachment(ac.ids[("server", v.server)], volume_id=vol.id)
                pc.block_storage.wait_for_status(vol, status="in-use", failures=["error"], wait=WAIT_SECONDS)
                ac.say(f"  attached volume {v.name} to {v.server}")

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        conn = dc.conn
        vol = conn.block_storage.get_volume(ident)
        for a in vol.attachments or []:
            conn.compute.delete_volume_attachment(a["server_id"], ident)
        if vol.attachments:
            conn.block_storage.wait_for_status(vol, status="available", failures=["error"], wait=WAIT_SECONDS)
        conn.block_storage.delete_volume(ident)
        dc.waits.append(("volume", ident))
        return True
