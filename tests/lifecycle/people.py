"""People for tests beyond the sample's people.yaml: a requester and a department head for a test's
own department, created in the center's Keystone, and a clouds.yaml that names them too."""
from __future__ import annotations

import json
import os
import secrets
import tempfile

import yaml

_cache: dict[tuple[str, str], str] = {}


def clouds_with_department_people(clouds_file: str, department: str) -> str:
    """A copy of ``clouds_file`` plus person-<department>-it (requester) and person-<department>-head."""
    from yunshang.openstack.identity import ensure_person

    key = (clouds_file, department)
    if key in _cache:
        return _cache[key]
    data = yaml.safe_load(open(clouds_file, encoding="utf-8"))
    center = data["clouds"]["center"]
    for suffix, role in (("it", "requester"), ("head", "department-head")):
        name = f"{department}-{suffix}"
        pw = secrets.token_urlsafe(16)
        ensure_person(clouds_file, "center", name, f"dept-{department}", [role], pw)
        entry = json.loads(json.dumps(center))
        entry["auth"].update(username=name, password=pw, project_name=f"dept-{department}")
        data["clouds"][f"person-{name}"] = entry
    fd, path = tempfile.mkstemp(prefix=f"clouds-{department}-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh)
    _cache[key] = path
    return path


def run_to_approved(y, db: str, request_file: str, clouds_file: str, live: bool = False) -> str:
    """submit -> endorse -> review -> approve through the CLI as the right people; the request id."""
    dept = yaml.safe_load(open(request_file, encoding="utf-8"))["department"]
    clouds = clouds_with_department_people(clouds_file, dept)
    base = ["request", "--db", db]
    c = ["--clouds", clouds]
    before = os.environ.get("OS_CLIENT_CONFIG_FILE")
    os.environ["OS_CLIENT_CONFIG_FILE"] = clouds
    try:
        rid = str(json.loads(y(base + ["submit", request_file, "--os-cloud", f"person-{dept}-it", "-o", "json"])
                             .stdout)["id"])
        y(base + ["endorse", rid, "--os-cloud", f"person-{dept}-head"])
        y(base + ["review", rid, *c, "--os-cloud", "person-center-reviewer"] + (["--live"] if live else []))
        for approver in ("person-center-approver-1", "person-center-approver-2"):
            out = json.loads(y(base + ["approve", rid, "--os-cloud", approver, "--reason", "test", "-o", "json"])
                             .stdout)
            if out["state"] == "approved":
                break
    finally:                 # the caller's clouds.yaml again (a test may have set its own)
        if before is None:
            os.environ.pop("OS_CLIENT_CONFIG_FILE", None)
        else:
            os.environ["OS_CLIENT_CONFIG_FILE"] = before
    return rid
