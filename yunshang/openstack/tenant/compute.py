"""Nova kinds: server_group, server."""
from __future__ import annotations

import base64

import openstack.exceptions

from yunshang.openstack.tenant.base import WAIT_SECONDS, ApplyContext, DestroyContext, KindEngine, ReadContext
from yunshang.tenant import MANAGED_BY, item


def _wanted(todo: dict, kind: str, actions=("create",)) -> bool:
    return any(c.kind == kind and c.action in actions for c in todo.values())


class ServerGroup(KindEngine):
    kind = "server_group"
    deleter = ("compute", "delete_server_group")

    def read(self, rc: ReadContext) -> None:
        group_of: dict[str, str] = rc.once("group_of", dict)  # type: ignore[assignment]
        for g in rc.conn.compute.server_groups(all_projects=True):
            if g.project_id != rc.pid:
                continue
            policy = g.policy or (g.policies or [""])[0]
            rc.obs.add(item("server_group", g.name, policy=policy), g.id, True)
            for m in g.member_ids or []:
                group_of[m] = g.name

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        if not _wanted(todo, self.kind):
            return
        pc = ac.project_conn()
        for g in ac.spec.server_groups:
            c = todo.get(("server_group", g.name))
            if c and c.action == "create":
                ac.made("server_group", g.name, pc.compute.create_server_group(name=g.name, policies=[g.policy]).id)



def _flavor_name(fl) -> str:
    if isinstance(fl, dict):
        return fl.get("original_name") or fl.get("name") or fl.get("id") or ""
    return getattr(fl, "original_name", None) or getattr(fl, "name", None) or getattr(fl, "id", "") or ""


class Server(KindEngine):
    kind = "server"

    def read(self, rc: ReadContext) -> None:
        conn = rc.conn
        port_of_server: dict = rc.once("port_of_server", dict)  # type: ignore[assignment]
        group_of: dict = rc.once("group_of", dict)  # type: ignore[assignment]
        server_name: dict = rc.once("server_name", dict)  # type: ignore[assignment]
        image_names: dict[str, str] = {}
        for s in conn.compute.servers(details=True, all_projects=True, project_id=rc.pid):
            server_name[s.id] = s.name
            img = (s.image or {}).get("id") if isinstance(s.image, dict) else getattr(s.image, "id", None)
            if img and img not in image_names:
                try:
                    image_names[img] = conn.image.get_image(img).name
                except openstack.exceptions.NotFoundException:
                    image_names[img] = img
            rc.obs.add(item("server", s.name, availability_zone=s.availability_zone or "",
                            flavor=_flavor_name(s.flavor), image=image_names.get(img, ""),
                            port=port_of_server.get(s.id, ""), server_group=group_of.get(s.id, "")),
                       s.id, (s.metadata or {}).get("managed-by") == MANAGED_BY)

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        if not _wanted(todo, self.kind):
            return
        spec, pc = ac.spec, ac.project_conn()
        created = []
        for s in spec.servers:
            if ("server", s.name) not in todo or todo[("server", s.name)].action != "create":
                continue
            hints = {"group": ac.ids[("server_group", s.server_group)]} if s.server_group else None
            kw: dict = {"scheduler_hints": hints} if hints else {}
            if s.user_data:
                kw["user_data"] = base64.b64encode(s.user_data.encode()).decode()
            srv = pc.compute.create_server(
                name=s.name, flavor_id=ac.ids[("flavor", s.flavor)], image_id=ac.pre["images"][s.image],
                availability_zone=s.availability_zone, networks=[{"port": ac.ids[("port", s.port_name)]}],
                metadata={"managed-by": MANAGED_BY, "department": spec.department, "request": s.request,
                          "role": s.role}, **kw)
            ac.made("server", s.name, srv.id)
            created.append(srv)
        for srv in created:
            pc.compute.wait_for_server(srv, status="ACTIVE", wait=WAIT_SECONDS)

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        dc.conn.compute.delete_server(ident)
        dc.waits.append(("server", ident))
        return True
