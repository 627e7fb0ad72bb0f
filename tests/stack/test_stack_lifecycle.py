"""One stack's life against the devcloud, through `yunshang stack ...` and the real Pulumi engine.

ypl-web on telecom (file:// backend): up -> `tenant verify` clean -> export (explicit providers,
no secret in clear) -> up again changes nothing -> out-of-band changes (a rule added, a server
deleted by hand) shown by preview --refresh / refresh and repaired by up -> count 2 -> 3 is one
new server with its port, volume, attachment and IP, nothing replaced; a second `up` of the
stack while one runs is refused -> destroy leaves nothing (openstacksdk).
The steps share one stack: each costs real minutes of the devcloud.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

from tests.stack.conftest import DAY, PASSPHRASE, YUNSHANG, conn, leftovers, run_cli, save_plan, store_url

DEPT, OP = "ypl-web", "telecom"
STACK = f"{DEPT}.{OP}"


def _args(verb: str, catalog: Path, clouds: str, *extra: str) -> list[str]:
    return ["stack", verb, DEPT, "--catalog", str(catalog), "--date", DAY.isoformat(), "--clouds", clouds,
            "--operator", OP, *extra]


def _json(r: subprocess.CompletedProcess):
    return json.loads(r.stdout)


def _passwords(state: Path) -> list[str]:
    """The initial passwords yunshang generated, read with the real CLI from the stack's config."""
    import os

    work = state / "pulumi" / STACK / "work"
    env = {**os.environ, "PULUMI_HOME": str(state / "pulumi" / "home"), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
           "PULUMI_SKIP_UPDATE_CHECK": "true"}
    r = subprocess.run([str(Path(YUNSHANG).parent / "pulumi"), "config", "--show-secrets", "--json", "--stack", STACK],
                       cwd=work, env=env, capture_output=True, text=True, check=True)
    return list(json.loads(json.loads(r.stdout)["yunshang:initialPasswords"]["value"]).values())


def test_stack_lifecycle(clouds, catalog_copy, tmp_path):
    state = tmp_path / "state"
    c = conn(OP, clouds)
    assert leftovers(OP, clouds, DEPT) == [], "a previous run left ypl-web resources behind"
    transcript = []
    try:
        # ---- up builds the tenant of the recorded plan; the SDK engine's drift check agrees
        save_plan(state, catalog_copy, clouds)
        r = run_cli(state, *_args("up", catalog_copy, clouds), timeout=1200)
        transcript.append(r.stdout + r.stderr)
        assert f"{STACK}: up succeeded" in r.stdout
        v = run_cli(state, "tenant", "verify", DEPT, "--operator", OP, "--catalog", str(catalog_copy),
                    "--date", DAY.isoformat(), "--clouds", clouds, check=False)
        assert v.returncode == 0 and "no drift" in v.stdout, v.stdout

        # ---- the state: every OpenStack resource on an explicit provider of the operator's cloud
        r = run_cli(state, "stack", "export", DEPT, "--operator", OP, "--catalog", str(catalog_copy),
                    "--date", DAY.isoformat(), "--clouds", clouds)
        transcript.append(r.stdout)
        resources = _json(r)["resources"]
        providers = {x["urn"]: x for x in resources if x["type"] == "pulumi:providers:openstack"}
        assert providers and all("default" not in u.rsplit("::", 1)[-1] for u in providers)
        assert {p["inputs"]["cloud"] for p in providers.values()} == {OP, f"{OP}/dept-{DEPT}"}
        custom = [x for x in resources if x["type"].startswith("openstack:")]
        assert len(custom) > 20
        for x in custom:
            urn = x.get("provider", "").rsplit("::", 1)[0]
            assert urn in providers, f"{x['urn']} is not on an explicit openstack provider: {x.get('provider')}"

        # ---- a second up changes nothing
        r = _json(run_cli(state, *_args("up", catalog_copy, clouds, "--output", "json"), timeout=1200))[0]
        assert r["result"] == "succeeded" and set(r["changes"]) == {"same"}, r["changes"]
        assert r["steps"] == [] and r["extra_rules_deleted"] == []

        # ---- out of band: a rule added by hand, a server deleted by hand
        project = c.identity.find_project(f"dept-{DEPT}")
        sg = next(c.network.security_groups(name=f"dept-{DEPT}-ypl-web", project_id=project.id))
        c.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", ethertype="IPv4",
                                             protocol="tcp", port_range_min=8080, port_range_max=8080,
                                             remote_ip_prefix="0.0.0.0/0")
        victim = c.compute.find_server(f"{DEPT}-web-01", all_projects=True)
        c.compute.delete_server(victim)
        c.compute.wait_for_delete(victim, wait=300)

        p = _json(run_cli(state, *_args("preview", catalog_copy, clouds, "--refresh", "--output", "json")))[0]
        created = {(s["type"], s["name"]) for s in p["steps"] if s["op"] == "create"}
        assert ("openstack:compute/instance:Instance", f"{DEPT}-web-01") in created, p["steps"]
        assert [x["rule"] for x in p["extra_rules"]] == [f"dept-{DEPT}-ypl-web.ingress.ipv4.tcp.8080.0.0.0.0_0"]
        f = _json(run_cli(state, *_args("refresh", catalog_copy, clouds, "--output", "json")))[0]
        assert f["result"] == "succeeded" and f["extra_rules"] == p["extra_rules"]
        assert f["changes"].get("delete", 0) >= 1, f  # the server (and its attachment) read as gone

        r = _json(run_cli(state, *_args("up", catalog_copy, clouds, "--output", "json"), timeout=1200))[0]
        assert r["result"] == "succeeded" and [x["rule"] for x in r["extra_rules_deleted"]] == \
            [f"dept-{DEPT}-ypl-web.ingress.ipv4.tcp.8080.0.0.0.0_0"]
        v = run_cli(state, "tenant", "verify", DEPT, "--operator", OP, "--catalog", str(catalog_copy),
                    "--date", DAY.isoformat(), "--clouds", clouds, check=False)
        assert v.returncode == 0 and "no drift" in v.stdout, v.stdout

        # ---- the catalog changes: count 2 -> 3 is exactly one new server, nothing replaced
        dept_file = catalog_copy / "departments" / f"{DEPT}.yaml"
        doc = yaml.safe_load(dept_file.read_text())
        doc["requests"][0]["count"] = 3
        dept_file.write_text(yaml.safe_dump(doc, allow_unicode=True))
        r = run_cli(state, *_args("preview", catalog_copy, clouds), check=False)   # the recorded plan no longer fits
        assert r.returncode == 2 and f"request {DEPT}/web changed since the plan: count 2 -> 3" in r.stderr, r.stderr
        save_plan(state, catalog_copy, clouds)                                               # a new plan: 3 servers
        p = _json(run_cli(state, *_args("preview", catalog_copy, clouds, "--output", "json")))[0]
        assert not any(k in p["changes"] for k in ("replace", "delete", "create-replacement", "delete-replaced")), p
        creates = sorted((s["type"].rsplit(":", 1)[-1], s["name"]) for s in p["steps"] if s["op"] == "create")
        new = f"{DEPT}-web-03"
        assert creates == sorted([("FloatingIp", f"{new}-fip1"), ("Instance", new), ("Port", f"{new}-port"),
                                  ("Volume", f"{new}-data"), ("VolumeAttach", f"{new}-data/attach")]), creates
        assert {s["op"] for s in p["steps"]} <= {"create", "update"}, p["steps"]

        # ---- two `up` of one stack at once: the second is refused, the first goes on
        first = subprocess.Popen([YUNSHANG, *_args("up", catalog_copy, clouds)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True,
                                 env={**_env(state)})
        lock = state / "pulumi" / "backend" / ".yunshang" / "locks" / f"{STACK}.lock"
        deadline = time.time() + 300
        while time.time() < deadline and not (lock.exists() and f"pid {first.pid} " in lock.read_text()):
            time.sleep(0.2)
        second = run_cli(state, *_args("up", catalog_copy, clouds), check=False)
        out, _ = first.communicate(timeout=1200)
        transcript.append(out)
        assert first.returncode == 0 and f"{STACK}: up succeeded" in out, out
        assert second.returncode == 4, second.stdout + second.stderr
        assert f"stack {STACK} is being changed by yunshang pid {first.pid}" in second.stderr, second.stderr
        v = run_cli(state, "tenant", "verify", DEPT, "--operator", OP, "--catalog", str(catalog_copy),
                    "--date", DAY.isoformat(), "--clouds", clouds, check=False)
        assert v.returncode == 0 and "no drift" in v.stdout, v.stdout
        assert len([s for s in c.compute.servers(all_projects=True, project_id=project.id)]) == 3

        # ---- secrets: the generated initial passwords are in no output and no export
        pw = _passwords(state)
        assert len(pw) == 1 and len(pw[0]) >= 16
        for text in transcript:
            assert pw[0] not in text
        for f in state.rglob("*"):  # the state backend, the workspaces, the engine's logs
            if f.is_file():
                assert pw[0].encode() not in f.read_bytes(), f"initial password in clear in {f}"
    finally:
        d = run_cli(state, *_args("destroy", catalog_copy, clouds, "--yes"), check=False, timeout=1200)
    assert d.returncode == 0, d.stdout + d.stderr
    assert leftovers(OP, clouds, DEPT) == []


def _env(state: Path) -> dict:
    import os

    e = {**os.environ, "YUNSHANG_STATE_DIR": str(state), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
         "YUNSHANG_DB": store_url(state)}
    e.pop("OS_CLOUD", None)
    return e
