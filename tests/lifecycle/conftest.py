"""Fixtures for the lifecycle tests: a REAL PostgreSQL server (Debian's postgresql-15
binaries, our own cluster in a temp dir on a free port) and a SQLite file."""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request as _ur

import pytest

from tests.lifecycle.pgcluster import PostgresMissing, free_port, throwaway_cluster


@pytest.fixture(scope="session")
def postgres_url():
    """postgresql:// URL of a throw-away cluster; stopped (by its own pg_ctl) at session end."""
    try:
        with throwaway_cluster("fsync=off", "max_connections=50") as url:
            yield url
    except PostgresMissing as exc:
        pytest.fail(str(exc))


_db_counter = [0]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty store URL on each backend (a new database per test on PostgreSQL)."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "lifecycle.db")
    import psycopg

    base = request.getfixturevalue("postgres_url")
    _db_counter[0] += 1
    name = f"t{os.getpid()}_{_db_counter[0]}_{int(time.time() * 1000) % 100000}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


# --------------------------------------------------------------------------- a real Prometheus with a month of data
UTC = _dt.timezone.utc
# Five days of probe data at a 5-minute interval (a backfill makes one TSDB block per 2 h, so a
# whole month would take minutes to write); gaps are not counted either way (yunshang.sla).
PROBE_START = _dt.datetime(2026, 11, 10, tzinfo=UTC)
PROBE_END = _dt.datetime(2026, 11, 15, tzinfo=UTC)       # data until here (exclusive)
PROBE_STEP = _dt.timedelta(minutes=5)
# health's portal on unicom fails 02:00-03:00 on the 10th; its telecom (backup) probe fails only
# inside telecom's declared maintenance window (14th 16:00-20:00) -> excluded.
PORTAL_DOWN = (_dt.datetime(2026, 11, 10, 2, tzinfo=UTC), _dt.datetime(2026, 11, 10, 3, tzinfo=UTC))
BACKUP_DOWN = (_dt.datetime(2026, 11, 14, 16, tzinfo=UTC), _dt.datetime(2026, 11, 14, 20, tzinfo=UTC))
# the operator API probe of unicom ('up'): down for the last 50 minutes of the data
UNICOM_DOWN_FROM = PROBE_END - _dt.timedelta(minutes=50)


def sample_times():
    t = PROBE_START
    while t < PROBE_END:
        yield t
        t += PROBE_STEP


def probe_value(series: str, t: _dt.datetime) -> int:
    if series == "portal":
        return 0 if PORTAL_DOWN[0] <= t < PORTAL_DOWN[1] else 1
    if series == "backup":
        return 0 if BACKUP_DOWN[0] <= t < BACKUP_DOWN[1] else 1
    if series == "unicom-up":
        return 0 if t >= UNICOM_DOWN_FROM else 1
    return 1


def _openmetrics() -> str:
    lines = ["# TYPE yunshang_probe_success gauge"]
    series = {
        "portal": ('yunshang_probe_success{operator="unicom",department="health",contract="WJ-2025-01",'
                   'probe="health-portal",kind="http"}'),
        "his": 'yunshang_probe_success{operator="unicom",department="health",contract="",probe="regional-his",kind="http"}',
        "backup": ('yunshang_probe_success{operator="telecom",department="health",contract="WJ-2025-02",'
                   'probe="his-standby",kind="tcp"}'),
    }
    up = {"unicom-up": 'yunshang_operator_up{operator="unicom"}', "telecom-up": 'yunshang_operator_up{operator="telecom"}'}
    for key, name in series.items():
        t = PROBE_START
        while t < PROBE_END:
            lines.append(f"{name} {probe_value(key, t)} {int(t.timestamp())}")
            t += PROBE_STEP
    lines.append("# TYPE yunshang_operator_up gauge")
    for key, name in up.items():
        t = PROBE_START
        while t < PROBE_END:
            lines.append(f"{name} {probe_value(key, t)} {int(t.timestamp())}")
            t += PROBE_STEP
    # quota usage: health has no server on unicom for the five days; tourism runs 2 there
    lines.append("# TYPE yunshang_quota_in_use gauge")
    for dept, n in (("health", 0), ("tourism", 2)):
        for t in sample_times():
            lines.append(f'yunshang_quota_in_use{{operator="unicom",department="{dept}",service="compute",'
                         f'resource="instances"}} {n} {int(t.timestamp())}')
    # health's primary contract breached its SLA at the end of September and of October
    lines.append("# TYPE yunshang_sla_breached gauge")
    for end in (_dt.datetime(2026, 10, 1, tzinfo=UTC), _dt.datetime(2026, 11, 1, tzinfo=UTC)):
        for m in range(10, 0, -1):
            t = end - _dt.timedelta(minutes=m)
            lines.append(f'yunshang_sla_breached{{operator="unicom",department="health",contract="WJ-2025-01"}} 1 '
                         f"{int(t.timestamp())}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def prometheus_month():
    """A real Prometheus (Debian package) serving November's probe data, backfilled with promtool."""
    prom, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prom or not promtool:
        pytest.fail("prometheus/promtool missing: run `bash tools/system-deps.sh` (Debian package prometheus)")
    base = tempfile.mkdtemp(prefix="yunshang-prom-")
    data = os.path.join(base, "data")
    src = os.path.join(base, "month.om")
    with open(src, "w") as fh:
        fh.write(_openmetrics())
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", src, data], check=True,
                   capture_output=True)
    cfg = os.path.join(base, "prometheus.yml")
    with open(cfg, "w") as fh:
        fh.write("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    port = free_port()
    log = open(os.path.join(base, "prometheus.log"), "w")
    p = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                          f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d"],
                         stdout=log, stderr=subprocess.STDOUT, cwd=base, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            _ur.urlopen(url + "/-/ready", timeout=2).read()
            break
        except OSError:
            if time.time() > deadline or p.poll() is not None:
                p.kill()
                raise RuntimeError("prometheus did not start: "
                                   + open(os.path.join(base, "prometheus.log")).read()[-2000:]) from None
            time.sleep(0.3)
    try:
        yield url
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def people_clouds(devcloud):
    """The devcloud's clouds.yaml, with `center` and a `person-<name>` entry per person of people.yaml."""
    import yaml

    clouds = yaml.safe_load(open(devcloud.clouds_file, encoding="utf-8"))["clouds"]
    assert "center" in clouds and "person-center-engineer" in clouds, "devcloud without the center's Keystone"
    return devcloud.clouds_file
