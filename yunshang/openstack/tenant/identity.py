"""Keystone kinds: project, user, role_assignment."""
from __future__ import annotations

import openstack.exceptions

from yunshang.capacity import PROJECT_TAG
from yunshang.openstack.tenant.base import ApplyContext, DestroyContext, KindEngine, ReadContext, desc_managed
from yunshang.tenant import OPERATOR_ACCESS_ROLE, item


def _identity(rc: ReadContext) -> tuple[dict, list, set]:
    """(users by id in the tenant's scope, [(user id, role name)] assigned on the project, assigned ids)."""
    def load():
        conn = rc.conn
        me = conn.current_user_id
        roles = {r.id: r.name for r in conn.identity.roles()}
        prefix = f"{rc.department}." if rc.department else None
        users = {u.id: u for u in conn.identity.users() if prefix and u.name.startswith(prefix)}
        assigned, ids = [], set()
        for a in conn.identity.role_assignments(scope_project_id=rc.pid):
            uid = (a.user or {}).get("id")
            rid = (a.role or {}).get("id")
            if not uid or uid == me:
                continue  # the engine's own access role is not part of the tenant
            ids.add(uid)
            if uid not in users:
                try:
                    users[uid] = conn.identity.get_user(uid)
                except openstack.exceptions.NotFoundException:
                    continue
            assigned.append((uid, rid, roles.get(rid, rid)))
        return users, assigned, ids
    return rc.once("identity", load)  # type: ignore[return-value]


class Project(KindEngine):
    kind = "project"
    update = "in-place"

    def read(self, rc: ReadContext) -> None:
        p = rc.project
        rc.obs.raw["project"] = p
        rc.obs.add(item("project", p.name, description=p.description or "", tags=tuple(sorted(p.tags or ()))),
                   p.id, PROJECT_TAG in (p.tags or ()))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        conn, p = ac.conn, ac.spec.project
        c = todo.get(("project", p.name))
        if c and c.action == "create":
            proj = conn.identity.create_project(name=p.name, description=p.description, tags=list(p.tags),
                                                domain_id=p.domain, is_enabled=True)
            ac.made("project", p.name, proj.id)
        elif c and c.action == "update":
            conn.identity.update_project(ac.pid, description=p.description, tags=list(p.tags))
            ac.say(f"  updated project {p.name}")
        # the engine's own access to act inside the project (not part of the tenant's inventory)
        me = conn.current_user_id
        admin_role = ac.pre["roles"][OPERATOR_ACCESS_ROLE]
        if not conn.identity.validate_user_has_project_role(ac.pid, me, admin_role):
            conn.identity.assign_project_role_to_user(ac.pid, me, admin_role)

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        dc.wait_gone("volume")
        dc.conn.identity.delete_project(ident)
        return True


class User(KindEngine):
    kind = "user"
    update = "in-place"
    deleter = ("identity", "delete_user")

    def read(self, rc: ReadContext) -> None:
        users, _, assigned = _identity(rc)
        for uid, u in users.items():
            if rc.department is None and uid not in assigned:
                continue
            rc.obs.add(item("user", u.name, email=getattr(u, "email", None) or ""), uid, desc_managed(u))

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        conn, p = ac.conn, ac.spec.project
        for u in ac.spec.users:
            c = todo.get(("user", u.name))
            if c and c.action == "create":
                kw = {"email": u.email} if u.email else {}
                user = conn.identity.create_user(name=u.name, description=u.description, default_project_id=ac.pid,
                                                 domain_id=p.domain, is_enabled=True, **kw)
                ac.made("user", u.name, user.id)
            elif c and c.action == "update":
                conn.identity.update_user(ac.ids[("user", u.name)], email=u.email, description=u.description)
                ac.say(f"  updated user {u.name}")



class RoleAssignment(KindEngine):
    kind = "role_assignment"

    def read(self, rc: ReadContext) -> None:
        users, assigned, _ = _identity(rc)
        for uid, rid, role in assigned:
            rc.obs.add(item("role_assignment", f"{users[uid].name}/{role}"), f"{uid}/{rid}")

    def apply(self, ac: ApplyContext, todo: dict) -> None:
        for a in ac.spec.role_assignments:
            c = todo.get(("role_assignment", f"{a.user}/{a.role}"))
            if c and c.action == "create":
                uid, rid = ac.ids[("user", a.user)], ac.pre["roles"][a.role]
                ac.conn.identity.assign_project_role_to_user(ac.pid, uid, rid)
                ac.made("role_assignment", f"{a.user}/{a.role}", f"{uid}/{rid}")

    def delete(self, dc: DestroyContext, name: str, ident: str) -> bool:
        return False  # removed with the user/project
