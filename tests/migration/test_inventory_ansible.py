"""The generated inventory is what Ansible itself reads: groups and host variables via ansible-inventory."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from cli.main import cli

CSV = """hostname,address,ssh_user,ssh_port,os,vcpu,ram_gb,disk_gb,data_paths,services,business_system,department,operator
db-01,10.1.0.1,admin,2200,debian12,2,4,40,/srv/pg,pg:5432:tcp,his,health,telecom
app-01,10.1.0.2,root,22,debian12,2,4,40,/srv/app;/etc/app,web:80:http /health,his,health,telecom
gw-01,10.1.0.3,root,22,debian12,1,2,20,,ssh:22:tcp,gateway,public-security,unicom
"""


def test_ansible_reads_the_inventory(tmp_path):
    (tmp_path / "s.csv").write_text(CSV)
    r = CliRunner().invoke(cli, ["migrate", "survey", str(tmp_path / "s.csv"), "--inventory-out", str(tmp_path / "inv.yml")])
    assert r.exit_code == 0, r.output
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    out = subprocess.run([exe, "-i", str(tmp_path / "inv.yml"), "--list"], capture_output=True, text=True, check=True)
    inv = json.loads(out.stdout)
    assert sorted(inv["department_health"]["children"]) == ["system_health__his"]
    assert sorted(inv["system_health__his"]["hosts"]) == ["app-01", "db-01"]
    assert inv["system_public_security__gateway"]["hosts"] == ["gw-01"]
    db = inv["_meta"]["hostvars"]["db-01"]
    assert (db["ansible_host"], db["ansible_port"], db["ansible_user"]) == ("10.1.0.1", 2200, "admin")
    assert inv["_meta"]["hostvars"]["app-01"]["migrate_data_paths"] == ["/srv/app", "/etc/app"]
