"""The API against real parts: the devcloud's center Keystone (people of people.yaml), a throw-away
PostgreSQL cluster, and `yunshang api serve` processes (uvicorn) on free loopback ports."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.no_engine import no_engine_env
from tests.lifecycle.pgcluster import PostgresMissing, free_port, throwaway_cluster

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "prefecture"
PEOPLE = [p["name"] for p in yaml.safe_load((SAMPLE / "people.yaml").read_text())["people"]]
YUNSHANG = str(Path(sys.executable).parent / "yunshang")


@pytest.fixture(scope="session")
def pg_base():
    try:
        with throwaway_cluster("fsync=off", "max_connections=300") as url:
            yield url
    except PostgresMissing as exc:
        pytest.fail(str(exc))


_n = [0]


def new_db(base: str) -> str:
    import psycopg

    # unique whatever the counter: this module is imported both as pytest's conftest and as
    # tests.api.conftest (by test modules), each with its own counter
    _n[0] += 1
    name = f"api{os.getpid()}_{_n[0]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def clouds(devcloud):
    data = yaml.safe_load(open(devcloud.clouds_file, encoding="utf-8"))["clouds"]
    assert "center" in data, "the devcloud has no center Keystone (run `yunshang devcloud up`)"
    return devcloud.clouds_file


@pytest.fixture(scope="session")
def tokens(clouds):
    """A Keystone token of the center's Keystone per person of people.yaml."""
    from yunshang.openstack.identity import token_of_cloud

    return {p: token_of_cloud(clouds, f"person-{p}") for p in PEOPLE}


class Server:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log

    def call(self, method: str, path: str, token: str | None = None, json_body=None, data: bytes | None = None,
             headers: dict | None = None, timeout: float = 60):
        import httpx

        h = dict(headers or {})
        if token:
            h["X-Auth-Token"] = token
        return httpx.request(method, self.url + path, headers=h, json=json_body, content=data, timeout=timeout)


def start_server(catalog: Path, clouds_file: str, db: str, log_dir: Path, cache_seconds: float = 10.0,
                 extra: tuple = ()) -> Server:
    port = free_port()
    log = log_dir / f"api-{port}.log"
    proc = subprocess.Popen([YUNSHANG, "api", "serve", "--listen", f"127.0.0.1:{port}", "--catalog", str(catalog),
                             "--clouds", clouds_file, "--db", db, "--token-cache-seconds", str(cache_seconds),
                             "--session-secret-file", str(log_dir / "session.secret"), "--no-cookie-secure",
                             *extra],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            env=no_engine_env(log_dir))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/api/v1/openapi.json", timeout=2)
            return Server(url, proc, log)
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"api serve exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"api serve did not come up: {log.read_text()[-2000:]}")


def stop_server(s: Server) -> None:
    s.proc.terminate()
    try:
        s.proc.wait(10)
    except subprocess.TimeoutExpired:
        s.proc.kill()


@pytest.fixture(scope="module")
def api_pair(clouds, pg_base, tmp_path_factory):
    """Two API processes on one PostgreSQL database, over the sample catalog."""
    db = new_db(pg_base)
    logs = tmp_path_factory.mktemp("api-logs")
    a = start_server(SAMPLE, clouds, db, logs, cache_seconds=1.0)
    b = start_server(SAMPLE, clouds, db, logs, cache_seconds=1.0)
    yield {"a": a, "b": b, "db": db, "logs": logs}
    stop_server(a)
    stop_server(b)


@pytest.fixture(scope="session")
def artifacts():
    d = ROOT / "out" / "test-artifacts" / "api"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True, exist_ok=True)
    return d
