"""Register one operator's services, users and endpoints in its own Keystone.

Runs under the services venv (`yunshang devcloud up` calls it). Reads a JSON spec
on stdin (passwords never go on the command line). Idempotent.
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
    proj = c.identity.find_project("service") or c.identity.create_project(name="service", domain_id="default")
    admin = c.identity.find_role("admin")
    service_role = c.identity.find_role("service") or c.identity.create_role(name="service")
    for user, stype, url in spec["endpoints"]:
        u = c.identity.find_user(user)
        if u is None:
            u = c.identity.create_user(name=user, password=spec["service_password"], domain_id="default")
        else:
            c.identity.update_user(u, password=spec["service_password"])
        for r in (admin, service_role):
            c.identity.assign_project_role_to_user(proj, u, r)
        names = [(user, stype)] + ([("cinderv3", "volumev3")] if stype == "block-storage" else [])
        for name, typ in names:
            s = c.identity.find_service(name) or c.identity.create_service(name=name, type=typ)
            have = {e.interface: e for e in c.identity.endpoints(service_id=s.id)}
            for iface in ("public", "internal", "admin"):
                if iface not in have:
                    c.identity.create_endpoint(service_id=s.id, interface=iface, url=url, region_id="RegionOne")
                elif have[iface].url != url:
                    c.identity.update_endpoint(have[iface], url=url)
    print("catalog ok")


if __name__ == "__main__":
    main()
