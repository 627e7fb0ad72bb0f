"""``yunshang migrate``: survey -> plan -> run (wave by wave, resumable) -> status / rollback.

This module is the Ansible adapter: it turns the core's decisions
(``yunshang.migration``) into ``ansible_runner.run`` calls on ``playbooks/``
and the runner's event stream back into per-host, per-step state.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any

import click
import yaml

from cli.common import OutPath, echo_json, moment_type, output_option, table
from yunshang.errors import MigrationFailed, NotFound
from yunshang.migration.inventory import build_inventory
from yunshang.migration.plan import MigrationPlan, build_plan, plan_from_dict
from yunshang.migration.run import Orchestrator, StepOutcome
from yunshang.migration.state import PLAYBOOKS, ROLLBACK_PLAYBOOK, STEPS, StateStore, write_json_atomic
from yunshang.migration.survey import load_survey
from yunshang.migration.waves import WaveOptions
from yunshang.model import MIGRATION_HASH_ALGORITHMS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOKS_DIR = os.path.join(ROOT, "playbooks")
PROJECT_DIR = os.path.join(PLAYBOOKS_DIR, "project")
ROLE_OF = {"discover": "discover_hosts", "precheck": "precheck_destination", "sync": "sync_data",
           "convert": "convert_disk", "import": "import_image", "boot": "boot_server",
           "verify": "verify_server", "cutover": "cutover_host", "rollback": "rollback_host"}
DONE_TASK = "Record step done"
# Modules delegated to the controller start faster under the system Python than under the
# project venv (fewer site-packages to scan); they need nothing but the standard library.
LOCAL_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def state_dir_option(f):
    return click.option("--state-dir", envvar="YUNSHANG_MIGRATE_DIR", default=".yunshang-migrate", show_default=True,
                        type=click.Path(file_okay=False), metavar="DIR",
                        help="Where the run keeps its state (state.json), records, staged data and runner "
                             "artifacts. Env: YUNSHANG_MIGRATE_DIR.")(f)


def run_options(f):
    f = click.option("--ssh-key", "ssh_key", envvar="YUNSHANG_MIGRATE_SSH_KEY", required=True,
                     type=click.Path(dir_okay=False, exists=True), metavar="FILE",
                     help="SSH private key for the source hosts (referenced by path; never copied or logged). "
                          "Env: YUNSHANG_MIGRATE_SSH_KEY.")(f)
    f = click.option("--source-python", envvar="YUNSHANG_MIGRATE_SOURCE_PYTHON", default="", metavar="PATH",
                     help="Python interpreter on the source hosts (default: Ansible's discovery). "
                          "Env: YUNSHANG_MIGRATE_SOURCE_PYTHON.")(f)
    f = click.option("--clouds", "clouds_file", envvar="OS_CLIENT_CONFIG_FILE", required=True,
                     type=click.Path(dir_okay=False, exists=True), metavar="FILE",
                     help="clouds.yaml with one cloud per operator. Env: OS_CLIENT_CONFIG_FILE.")(f)
    return f


@click.group("migrate")
def migrate() -> None:
    """Migrate departmental servers into department tenants, wave by wave.

    \b
    1. yunshang migrate survey servers.csv --inventory-out hosts.yml   # validate, inventory
    2. yunshang migrate plan servers.csv -o json > plan.json           # waves (dependencies, caps, windows)
    3. yunshang migrate run plan.json --clouds clouds.yaml --ssh-key id_ed25519
    4. yunshang migrate status          5. yunshang migrate rollback HOST

    Each host goes through discover, precheck (the destination fits, before any
    copy), sync (rsync, every file hashed on both sides), convert (qemu-img -> qcow2), import (Glance),
    boot (Nova), verify and cutover. State is saved per host per step: run the
    same command again after an interruption and finished work is not redone.
    """


# --------------------------------------------------------------------------- survey
@migrate.command("survey")
@click.argument("survey_file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--inventory-out", type=OutPath(), metavar="PATH",
              help="Write the Ansible YAML inventory (groups department_* > system_*) here.")
@click.option("--ssh-key", "ssh_key", type=click.Path(dir_okay=False), metavar="FILE",
              help="Key path to put in the inventory as ansible_ssh_private_key_file.")
@output_option
def survey_cmd(survey_file: str, inventory_out: str | None, ssh_key: str | None, output: str) -> None:
    """Validate a server survey (CSV or YAML); every bad row is listed with its row number and field.

    Columns: hostname, address, ssh_user, ssh_port, os, vcpu, ram_gb, disk_gb,
    data_paths (;-separated), disk_image, services (name:port:check;...),
    business_system, depends_on (;-separated), maintenance_window, department,
    operator. Exit 2 when the survey is invalid (nothing is written then).
    """
    survey = load_survey(survey_file)
    if inventory_out:
        inv = build_inventory(survey, os.path.abspath(ssh_key) if ssh_key else "")
        _write_text_atomic(inventory_out, yaml.safe_dump(inv, sort_keys=False, default_flow_style=False))
    if output == "json":
        echo_json({"file": survey_file, "hosts": [h.to_dict() for h in survey.hosts], "inventory": inventory_out})
        return
    click.echo(table(["host", "department", "system", "vcpu", "ram_gb", "disk_gb", "depends_on", "window"],
                     [[h.hostname, h.department, h.business_system, h.vcpu, h.ram_gb, h.disk_gb,
                       ",".join(h.depends_on), h.maintenance_window] for h in survey.hosts]))
    click.echo(f"\n{len(survey.hosts)} hosts valid" + (f"; inventory written to {inventory_out}" if inventory_out else ""))


# --------------------------------------------------------------------------- plan
@migrate.command("plan")
@click.argument("survey_file", metavar="SURVEY", type=click.Path(dir_okay=False))
@click.option("--catalog", "catalog_dir", envvar="YUNSHANG_CATALOG", type=click.Path(file_okay=False), metavar="DIR",
              help="Catalog: each host goes to its department's primary contract's operator (else the survey's "
                   "operator column is required); its migration.yaml `hash_algorithm` (sha256|sm3) becomes the "
                   "plan's integrity digest. Env: YUNSHANG_CATALOG.")
@click.option("--max-per-wave", default=8, show_default=True, type=click.IntRange(1), help="Hosts in flight per wave.")
@click.option("--max-per-conversion-host", default=4, show_default=True, type=click.IntRange(1),
              help="Hosts one conversion host converts at a time.")
@click.option("--conversion-host", "conversion_hosts", multiple=True, default=("localhost",), show_default=True,
              help="Conversion host (repeat for several); runs rsync, qemu-img and the uploads.")
@click.option("--wave-minutes", default=120, show_default=True, type=click.IntRange(1, 10080),
              help="Time a wave needs inside its hosts' shared maintenance window.")
@click.option("--not-before", type=moment_type(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]),
              help="Schedule waves from this local time on (default: now).")
@click.option("--plan-out", type=OutPath(), metavar="PATH", help="Also write the plan (JSON) here.")
@output_option
def plan_cmd(survey_file: str, catalog_dir: str | None, max_per_wave: int, max_per_conversion_host: int,
             conversion_hosts: tuple[str, ...], wave_minutes: int, not_before: dt.datetime | None,
             plan_out: str | None, output: str) -> None:
    """Plan waves: a host moves after the hosts it depends on; caps per wave and per
    conversion host; each wave inside its hosts' shared maintenance window.

    ``-o json`` prints the plan file that ``migrate run`` executes.
    """
    survey = load_survey(survey_file)
    catalog = None
    if catalog_dir:
        from yunshang.catalog import load_catalog
        catalog = load_catalog(catalog_dir)
    options = WaveOptions(max_hosts_per_wave=max_per_wave, max_hosts_per_conversion_host=max_per_conversion_host,
                          conversion_hosts=tuple(conversion_hosts), wave_minutes=wave_minutes)
    start = (not_before or dt.datetime.now()).replace(second=0, microsecond=0)
    plan = build_plan(survey, options, start, catalog)
    if plan_out:
        _write_text_atomic(plan_out, json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n")
    if output == "json":
        echo_json(plan.to_dict())
        return
    rows = []
    for w in plan.waves:
        for h in w.hosts:
            d = plan.destination(h)
            rows.append([w.number, w.starts_at.strftime("%a %Y-%m-%d %H:%M"), h, plan.survey.host(h).business_system,
                         ",".join(plan.survey.host(h).depends_on), d.operator, d.project, w.conversion_host(h)])
    click.echo(table(["wave", "starts", "host", "system", "after", "operator", "project", "conversion"], rows))
    click.echo(f"\n{len(plan.waves)} waves, {len(plan.survey.hosts)} hosts; integrity evidence {plan.hash_algorithm}; "
               f"plan id {plan.plan_id}")


# --------------------------------------------------------------------------- the Ansible adapter
class AnsibleStepRunner:
    """Runs one step's playbook for some hosts with ansible_runner and reports per host from events."""

    def __init__(self, state_dir: str, plan: MigrationPlan, clouds_file: str, ssh_key: str,
                 on_output: Any = None, source_python: str = "", hash_algorithm: str = ""):
        self.state_dir = os.path.abspath(state_dir)
        self.plan = plan
        self.clouds_file = os.path.abspath(clouds_file)
        self.ssh_key = os.path.abspath(ssh_key)
        self.private_data_dir = os.path.join(self.state_dir, "runner")
        self.records_dir = os.path.join(self.state_dir, "records")
        self.staging_dir = os.path.join(self.state_dir, "staging")
        self.plan_file = os.path.join(self.state_dir, "plan.json")
        self.source_python = source_python
        self.hash_algorithm = hash_algorithm or plan.hash_algorithm    # the run's choice, else the catalog's
        self.cancelled = False
        self.on_output = on_output or (lambda line: None)
        self._prepare()

    def _prepare(self) -> None:
        for d in (self.private_data_dir, self.records_dir, self.staging_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        env_dir = os.path.join(self.private_data_dir, "env")
        os.makedirs(env_dir, exist_ok=True)
        for name in ("settings", "envvars"):
            shutil.copyfile(os.path.join(PLAYBOOKS_DIR, "env", name), os.path.join(env_dir, name))
        inv = build_inventory(self.plan.survey, self.ssh_key, self.plan)
        children = inv["all"]["children"]
        sources = {k: v for k, v in children.items() if k.startswith("department_")}
        waves = {k: v for k, v in children.items() if k.startswith("wave_")}
        conv_hosts = sorted({c for w in self.plan.waves for _, c in w.conversion})
        sources_vars = {"ansible_ssh_common_args": f"-o UserKnownHostsFile={self.state_dir}/known_hosts "
                                                   "-o StrictHostKeyChecking=accept-new"}
        if self.source_python:
            sources_vars["ansible_python_interpreter"] = self.source_python
        inv = {"all": {
            "children": {
                "migrate_sources": {"vars": sources_vars, "children": sources},
                **waves,
                "conversion_hosts": {"hosts": {c: ({"ansible_connection": "local",
                                                    "ansible_python_interpreter": LOCAL_PYTHON}
                                                   if c == "localhost" else None) for c in conv_hosts}},
            }}}
        inv_dir = os.path.join(self.private_data_dir, "inventory")
        os.makedirs(inv_dir, exist_ok=True)
        _write_text_atomic(os.path.join(inv_dir, "hosts.yml"), yaml.safe_dump(inv, sort_keys=False))

    def extravars(self) -> dict[str, Any]:
        return {"migrate_records_dir": self.records_dir, "migrate_staging_dir": self.staging_dir,
                "migrate_python": sys.executable, "migrate_clouds_file": self.clouds_file,
                "migrate_plan_file": self.plan_file, "migrate_known_hosts_file": f"{self.state_dir}/known_hosts",
                "migrate_hash_algorithm": self.hash_algorithm}

    def run_playbook(self, playbook: str, role: str, hosts: tuple[str, ...], ident: str
                     ) -> tuple[StepOutcome, set[str], dict[str, str]]:
        import ansible_runner

        done: set[str] = set()
        failures: dict[str, str] = {}

        def handler(ev: dict[str, Any]) -> bool:
            kind = ev.get("event", "")
            d = ev.get("event_data") or {}
            host = d.get("host")
            if kind == "runner_on_ok" and d.get("task") == DONE_TASK and d.get("role") == role and host:
                done.add(host)
                self.on_output(("done", host))
            elif kind == "runner_on_failed" and not d.get("ignore_errors") and host:
                failures.setdefault(host, _reason(d))
            elif kind == "runner_on_unreachable" and host:
                failures.setdefault(host, "unreachable: " + str((d.get("res") or {}).get("msg", "")).strip())
            return True

        cp_dir = tempfile.mkdtemp(prefix="ys-cp-")  # short: unix socket paths are limited to 108 bytes
        try:
            r = ansible_runner.run(
                private_data_dir=self.private_data_dir, project_dir=PROJECT_DIR, playbook=playbook,
                limit=",".join(hosts), forks=max(1, len(hosts)), extravars=self.extravars(), ident=ident,
                event_handler=handler, cancel_callback=lambda: self.cancelled, quiet=True,
                envvars={"ANSIBLE_SSH_CONTROL_PATH_DIR": cp_dir,
                         "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=30s",
                         "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")},
                rotate_artifacts=50)
            outcome = StepOutcome(r.status, r.rc if r.rc is not None else -1)
        finally:
            _reap_control_masters(cp_dir)
        return outcome, done, failures

    def __call__(self, step: str, hosts: tuple[str, ...], wave: int, reporter: Any) -> StepOutcome:
        ident = f"w{wave}-{step}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}"
        outcome, done, failures = self.run_playbook(PLAYBOOKS[step], ROLE_OF[step], hosts, ident)
        for h in hosts:
            if h in done:
                reporter.done(h)
            else:
                reporter.failed(h, failures.get(h) or f"{step} did not finish (playbook {outcome.status})")
        return outcome


def _reason(d: dict[str, Any]) -> str:
    res = d.get("res") or {}
    msg = str(res.get("msg", "")).strip()
    task = d.get("task", "")
    if res.get("stdout", "").startswith("{"):
        try:
            err = json.loads(res["stdout"]).get("error", "")
            msg = err or msg
        except ValueError:
            pass
    stderr = str(res.get("stderr", "")).strip().splitlines()
    if stderr and (not msg or msg.startswith("non-zero return code")):
        msg = stderr[-1]
    return f"{task}: {msg}"[:500]


def _reap_control_masters(cp_dir: str) -> None:
    """ControlPersist masters outlive the run: tell each to exit, then remove the directory."""
    for sock in glob.glob(os.path.join(cp_dir, "*")):
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "reap"], capture_output=True, timeout=10)
    shutil.rmtree(cp_dir, ignore_errors=True)


def _write_text_atomic(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _load_plan(path: str) -> MigrationPlan:
    from yunshang.yamlload import load_json

    data = load_json(path)     # size, UTF-8, duplicate keys, NaN, depth: InputInvalid (exit 2) with the line
    return plan_from_dict(data, path)


def _stored_plan(state_dir: str) -> MigrationPlan:
    path = os.path.join(state_dir, "plan.json")
    if not os.path.exists(path):
        raise NotFound(f"no migration in {state_dir}: start one with `yunshang migrate run PLAN`")
    return _load_plan(path)


# --------------------------------------------------------------------------- run
@migrate.command("run")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--wave", "waves", type=click.IntRange(1, 10_000), multiple=True,
              help="Run only this wave (repeatable). Default: all, in order.")
@click.option("--hash-algorithm", envvar="YUNSHANG_MIGRATE_HASH", type=click.Choice(list(MIGRATION_HASH_ALGORITHMS)),
              default=None,
              help="Digest of the data's integrity evidence (manifests, records): sha256, or sm3 "
                   "(GB/T 32905) where the sources' and conversion hosts' Python/OpenSSL has it (checked "
                   "before anything is copied). Default: the plan's, i.e. the catalog's migration.yaml "
                   "`hash_algorithm` when the plan was made with --catalog, else sha256. Changing it "
                   "between syncs re-hashes everything once. Env: YUNSHANG_MIGRATE_HASH.")
@run_options
@state_dir_option
@output_option
def run_cmd(plan_file: str, waves: tuple[int, ...], hash_algorithm: str, clouds_file: str, ssh_key: str,
            source_python: str, state_dir: str, output: str) -> None:
    """Run a plan (or some of its waves). Safe to re-run: finished host steps are skipped,
    interrupted ones redone, failed ones retried. Exit 5 when a host failed.

    The data is copied with rsync and every file verified on both sides (sync); at cutover only
    what changed since that verified sync is copied and re-hashed, the rest is shown unchanged
    by its stat against the manifest, so the window grows with the change, not the data."""
    plan = _load_plan(plan_file)
    store = StateStore(state_dir)
    store.lock()
    try:
        stored = os.path.join(state_dir, "plan.json")
        if os.path.exists(stored) and _stored_plan(state_dir).plan_id != plan.plan_id:
            raise MigrationFailed(f"{state_dir} holds a run of plan {_stored_plan(state_dir).plan_id}; "
                                  f"use another --state-dir for plan {plan.plan_id}")
        write_json_atomic(stored, plan.to_dict())
        total = sum(len(plan.waves[n - 1].hosts) for n in (waves or range(1, len(plan.waves) + 1))) * len(STEPS)
        bar_ctx = click.progressbar(length=total, label="migrating", show_pos=True, file=sys.stderr,
                                    item_show_func=lambda s: s)
        bar = bar_ctx.__enter__()
        quiet = output == "json"

        def on_event(host: str, step: str, status: str, reason: str) -> None:
            if status in ("done", "failed"):
                bar.update(1 if status == "done" else len(STEPS) - STEPS.index(step), f"{host} {step} {status}")
            if not quiet and status != "running":
                click.echo(f"\n  {host:<20} {step:<9} {status}{(': ' + reason) if reason else ''}", err=True)

        runner = AnsibleStepRunner(state_dir, plan, clouds_file, ssh_key, source_python=source_python,
                                   hash_algorithm=hash_algorithm)

        def cancel(signum, frame):  # SIGTERM/SIGINT: let ansible-runner stop the playbook cleanly
            runner.cancelled = True

        old = {s: signal.signal(s, cancel) for s in (signal.SIGTERM, signal.SIGINT)}
        orch = Orchestrator(plan, store, runner, on_event=on_event)
        try:
            # hosts already migrated count as progress
            bar.update(sum(1 for h in orch.state.hosts.values() for s in STEPS
                           if s in h.steps and h.step(s).status == "done"
                           and (not waves or h.wave in waves)))
            reports = orch.run(list(waves) or None)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            bar_ctx.__exit__(None, None, None)
        if runner.cancelled:
            raise MigrationFailed("run cancelled; run the same command again to resume")
    finally:
        store.unlock()
    failed = {h: why for r in reports for h, why in r.failed.items()}
    if output == "json":
        echo_json({"plan_id": plan.plan_id, "waves": [vars(r) for r in reports]})
    else:
        _print_status(plan, orch.state)
    if failed:
        raise MigrationFailed(f"{len(failed)} host(s) failed: " + "; ".join(f"{h}: {w}" for h, w in sorted(failed.items())))


# --------------------------------------------------------------------------- status / rollback
def _print_status(plan: MigrationPlan, state: Any) -> None:
    rows = []
    for w in plan.waves:
        for h in w.hosts:
            hs = state.host(h)
            marks = "".join({"done": "+", "failed": "x", "running": ">", "pending": "."}[hs.step(s).status] for s in STEPS)
            rows.append([w.number, h, hs.status, marks, hs.next_step or "-", hs.failure])
    click.echo(table(["wave", "host", "status", "steps", "next", "failure"], rows))
    click.echo("steps: " + " ".join(STEPS) + "   (+ done, > running, x failed, . pending)")


@migrate.command("status")
@state_dir_option
@output_option
def status_cmd(state_dir: str, output: str) -> None:
    """Per host: status, each step's state, what runs next and why it failed."""
    plan = _stored_plan(state_dir)
    store = StateStore(state_dir)
    state = store.load() if store.exists() else None
    if state is None:
        from yunshang.migration.state import new_state
        state = new_state(plan)
    if output == "json":
        from yunshang.migration.state import state_to_dict
        d = state_to_dict(state)
        for h, v in d["hosts"].items():
            v["status"] = state.host(h).status
        echo_json(d)
        return
    _print_status(plan, state)


@migrate.command("rollback")
@click.argument("hosts", nargs=-1, required=True, metavar="HOST...")
@run_options
@state_dir_option
def rollback_cmd(hosts: tuple[str, ...], clouds_file: str, ssh_key: str, source_python: str, state_dir: str) -> None:
    """Return each HOST's service to its source and delete the server, volume and image the
    migration created, and its staged copy (the source is never modified). Idempotent: running
    it again, or for a host never migrated, is fine. The hosts' steps are all pending afterwards."""
    plan = _stored_plan(state_dir)
    store = StateStore(state_dir)
    store.lock()
    try:
        orch = Orchestrator(plan, store, lambda *a: StepOutcome("skipped", 0))
        runner = AnsibleStepRunner(state_dir, plan, clouds_file, ssh_key, source_python=source_python)

        def run_rollback(hs: tuple[str, ...]):
            ident = f"rollback-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}"
            return runner.run_playbook(ROLLBACK_PLAYBOOK, ROLE_OF["rollback"], hs, ident)

        orch.rollback(hosts, run_rollback)
    finally:
        store.unlock()
    for h in hosts:
        click.echo(f"{h}: rolled back (server, volume, image and staged copy deleted; service stays on the source)")


__all__ = ["migrate", "AnsibleStepRunner"]
