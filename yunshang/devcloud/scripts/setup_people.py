"""The center's people in the center's own Keystone: roles, projects, one user per person.

Runs under the services venv (`yunshang devcloud up` calls it). Reads a JSON spec on stdin
(passwords never go on the command line). Idempotent: a person's roles on their project are
made exactly those of people.yaml (a role removed there is revoked here).
"""
import json
import sys

import openstack


def main() -> None:
    spec = json.load(sys.stdin)
    c = openstack.connect(auth_url=spec["auth_url"], username="admin", password=spec["admin_password"],
                          project_name="admin", user_domain_name="Default", project_domain_name="Default",
                          region_name="RegionOne", identity_api_version="3", load_yaml_config=False,
                          load_envvars=False)
    roles = {r: c.identity.find_role(r) or c.identity.create_role(name=r) for r in spec["roles"]}
    projects = {}
    for p in spec["people"]:
        name = p["project"]
        if name not in projects:
            projects[name] = (c.identity.find_project(name, domain_id="default")
                              or c.identity.create_project(name=name, domain_id="default",
                                                           description="yunshang center identity"))
        u = c.identity.find_user(p["name"], domain_id="default")
        fields = {"password": p["password"], "description": p["display_name"], "email": p["email"] or None}
        if u is None:
            u = c.identity.create_user(name=p["name"], domain_id="default", **fields)
        else:
            c.identity.update_user(u, **fields)
        proj = projects[name]
        have = {a.role["id"] for a in c.identity.role_assignments(user_id=u.id, scope_project_id=proj.id)}
        for r, role in roles.items():
            if r in p["roles"] and role.id not in have:
                c.identity.assign_project_role_to_user(proj, u, role)
            elif r not in p["roles"] and role.id in have:
                c.identity.unassign_project_role_from_user(proj, u, role)
    print(f"people ok: {len(spec['people'])}")


if __name__ == "__main__":
    main()
