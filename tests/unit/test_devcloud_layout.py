"""Pure parts of the devcloud: operators from the catalog, ports, rendered configs, process ownership."""
from __future__ import annotations

import configparser
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from yunshang.devcloud import layout as L
from yunshang.devcloud import procs
from yunshang.devcloud.control import Devcloud, DevcloudFailed, dir_lock
from yunshang.errors import CatalogInvalid

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {2222, 5432, 9090, 9093, 3306, 5672, 4369, 25672} | set(range(9180, 9200))


def test_operators_come_from_the_catalog_cloud_names_and_zones():
    ops = L.read_operator_specs(ROOT / "examples" / "prefecture", 3)
    raw = yaml.safe_load((ROOT / "examples" / "prefecture" / "providers.yaml").read_text())["providers"]
    assert [o.name for o in ops] == [p["cloud"] for p in raw][:3]
    for o, p in zip(ops, raw, strict=False):        # the first three providers
        assert [z.name for z in o.zones] == [z["name"] for z in p["zones"]]
        for z, rz in zip(o.zones, p["zones"], strict=True):
            assert (z.vcpu, z.memory_mb, z.disk_gb) == (rz["vcpu"], rz["ram_gb"] * 1024, rz["disk_gb"])
            assert z.cpu_ratio == rz["overcommit"]["vcpu"]
        assert o.external_network == p.get("external_network", "public")


def test_ports_are_distinct_per_operator_and_avoid_reserved_ones():
    ops = L.read_operator_specs(ROOT / "examples" / "prefecture", 3)
    ports = [L.MARIADB_PORT, L.RABBIT_PORT, L.RABBIT_DIST_PORT, L.EPMD_PORT]
    for o in ops:
        ports += list(o.ports.values())
    assert len(ports) == len(set(ports))
    assert not FORBIDDEN & set(ports)
    assert ops[0].auth_url != ops[1].auth_url


@pytest.mark.parametrize("n", [0, 4])
def test_operator_count_bounds(n):
    with pytest.raises(ValueError):
        L.read_operator_specs(ROOT / "examples" / "prefecture", n)


def test_bad_providers_yaml_names_the_file(tmp_path):
    (tmp_path / "providers.yaml").write_text("providers:\n  - name: x\n    zones: [{name: az1, vcpu: lots}]\n")
    with pytest.raises(CatalogInvalid) as e:
        L.read_operator_specs(tmp_path, 1)
    assert str(tmp_path / "providers.yaml") in str(e.value)


def test_missing_catalog_falls_back_to_two_zones(tmp_path):
    ops = L.read_operator_specs(tmp_path, 2)
    assert [o.name for o in ops] == ["telecom", "unicom"] and all(len(o.zones) == 2 for o in ops)


def _fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    for f in ("nova/api-paste.ini", "glance/glance-api-paste.ini", "neutron/api-paste.ini", "cinder/api-paste.ini",
              "cinder/resource_filters.json"):
        (venv / "etc" / f).parent.mkdir(parents=True, exist_ok=True)
        (venv / "etc" / f).write_text("# paste\n")
    return venv


def test_configs_carry_zone_inventory_and_separate_credentials(tmp_path):
    ops = L.read_operator_specs(ROOT / "examples" / "prefecture", 2)
    dc = Devcloud(tmp_path / "dc", venv=_fake_venv(tmp_path), operators=ops)
    dc.write_shared_configs()
    for o in ops:
        dc.write_operator_configs(o)
    dc.write_clouds_yaml()
    secrets = json.loads((dc.dir / "secrets.json").read_text())
    assert secrets["telecom"]["admin_password"] != secrets["unicom"]["admin_password"]
    for f in (dc.dir / "secrets.json", dc.layout.clouds_file, dc.dir / "etc/telecom/nova/nova.conf"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read(dc.dir / "etc/unicom/nova-compute/az2.conf")
    assert cp["DEFAULT"]["host"] == "unicom-az2"
    assert cp["DEFAULT"]["compute_driver"] == "yunshang_fake.ZoneFakeDriver"
    assert cp["DEFAULT"]["cpu_allocation_ratio"] == "4.0"
    z = ops[1].zones[1]
    assert cp["yunshang_fake"]["vcpus"] == str(z.vcpu) and cp["yunshang_fake"]["memory_mb"] == str(z.ram_gb * 1024)
    assert "database" not in cp                      # nova-compute gets no DB credentials
    assert f":{ops[1].port('keystone')}" in cp["keystone_authtoken"]["auth_url"]
    ks = configparser.ConfigParser(interpolation=None)
    ks.read(dc.dir / "etc/telecom/keystone/keystone.conf")
    assert ks["database"]["connection"].endswith(f"127.0.0.1:{L.MARIADB_PORT}/telecom_keystone")
    assert "unicom" not in (dc.dir / "etc/telecom/nova/nova.conf").read_text()
    import yaml

    clouds = yaml.safe_load(dc.layout.clouds_file.read_text())["clouds"]
    people = yaml.safe_load((ROOT / "examples/prefecture/people.yaml").read_text())["people"]
    assert list(clouds) == ["telecom", "unicom", "center"] + [f"person-{p['name']}" for p in people]
    assert clouds["telecom"]["auth"]["password"] == secrets["telecom"]["admin_password"]
    assert clouds["center"]["auth"]["auth_url"] == f"http://127.0.0.1:{L.OPERATOR_PORT_BASE + 300}/v3"
    # a person: their own generated password, scoped to their department's project (or center)
    assert clouds["person-health-it"]["auth"]["password"] == secrets["people"]["health-it"]
    assert clouds["person-health-it"]["auth"]["project_name"] == "dept-health"
    assert clouds["person-center-auditor"]["auth"]["project_name"] == "center"
    assert len(set(secrets["people"].values())) == len(people)
    assert stat.S_IMODE(os.stat(dc.dir / "secrets.json").st_mode) == 0o600
    assert dc.env_lines() == [f"export OS_CLIENT_CONFIG_FILE={dc.layout.clouds_file}"]


def test_secrets_are_stable_across_runs(tmp_path):
    ops = L.read_operator_specs(ROOT / "examples" / "prefecture", 2)
    a = Devcloud(tmp_path, venv=tmp_path / "v", operators=ops).secrets
    b = Devcloud(tmp_path, venv=tmp_path / "v", operators=ops).secrets
    assert a == b


def test_process_ownership_and_stop_only_ours(tmp_path):
    pid = procs.start(tmp_path, "op/sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert procs.running_pid(tmp_path, "op/sleeper") == pid
        # a PID file pointing at a process we did not start is not ours
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        procs.pid_file(tmp_path, "intruder").write_text(f"{other.pid}\n")
        assert procs.running_pid(tmp_path, "intruder") is None
        assert procs.stop(tmp_path, "intruder") is False
        assert other.poll() is None                   # untouched
        other.kill()
        other.wait()
        assert procs.stop(tmp_path, "op/sleeper") is True
        assert procs.running_pid(tmp_path, "op/sleeper") is None
    finally:
        try:
            os.killpg(pid, 9)
        except ProcessLookupError:
            pass


def test_port_in_use_by_a_stranger_is_a_clear_error(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        dc = Devcloud(tmp_path, venv=tmp_path / "v", operators=())
        with pytest.raises(DevcloudFailed) as e:
            dc._ensure_port_free(port, "telecom/keystone")
        assert str(port) in str(e.value) and "did not start" in str(e.value)
    finally:
        s.close()


def test_dir_lock_is_exclusive(tmp_path):
    code = ("import sys, fcntl; fh = open(sys.argv[1], 'a+');\n"
            "try:\n fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB); print('got')\n"
            "except BlockingIOError: print('busy')")
    with dir_lock(tmp_path):
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path / ".lock")], capture_output=True, text=True)
        assert r.stdout.strip() == "busy"
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / ".lock")], capture_output=True, text=True)
    assert r.stdout.strip() == "got"


def test_recycled_pid_is_not_ours(tmp_path):
    """A PID file whose start time does not match the live process (PID reused) is ignored."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        procs.pid_file(tmp_path, "x").parent.mkdir(parents=True, exist_ok=True)
        procs.pid_file(tmp_path, "x").write_text(f"{other.pid} 1\n")
        assert procs.running_pid(tmp_path, "x") is None
        assert procs.stop(tmp_path, "x") is False and other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_service_that_dies_fails_up_naming_its_log(tmp_path):
    dc = Devcloud(tmp_path, venv=tmp_path / "v", operators=())
    dc._start("telecom/keystone", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    with pytest.raises(DevcloudFailed) as e:
        dc._wait("telecom/keystone", lambda: False, 30, "telecom keystone on 127.0.0.1:17000")
    log = procs.log_file(dc.dir, "telecom/keystone")
    assert str(log) in str(e.value) and "exited" in str(e.value)
    assert "boom" in log.read_text()
