"""Action plugin: run the sync_data role's verified_sync.py on the (delegated) host, no module.

The script is sent in the command line (``python3 -c BOOT <base64>``) and run over the task's
connection with ``_low_level_execute_command``: on a local conversion host that is one process
start, not Ansible's module start-up (~0.4 s per task here), which would otherwise be most of a
cutover window whose work takes a fraction of a second.
"""
from __future__ import annotations

import base64
import json
import os
import shlex
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.yunshang.migration.plugins.action.write_record import write_json_atomic

BOOT = ("import base64,sys;b=sys.argv.pop(1);"
        "exec(compile(base64.b64decode(b),'verified_sync','exec'),{'__name__':'__main__','SELF_B64':b})")
OPTIONS = ("algorithm", "racy_seconds", "copy_racy_seconds", "mode", "dest", "ssh", "source", "source_python")
EMPTY = {"files": 0, "verified": 0, "changed_items": 0, "differ": [], "source": {"hashed": 0, "carried": 0},
         "copy": {"hashed": 0, "carried": 0}, "manifest_digest": "", "seconds": {}}


def step_record(summary: dict, mode: str, paths: list, algorithm: str) -> dict:
    """The sync step's record (sync.json / cutover-sync.json) from the script's summary line."""
    s = {**EMPTY, **summary}
    rec = {"mode": mode, "paths": paths, "algorithm": s.get("algorithm") or algorithm,
           "files": s["files"], "verified": s["verified"],
           "hashed": {"source": s["source"]["hashed"], "copy": s["copy"]["hashed"]},
           "carried": {"source": s["source"]["carried"], "copy": s["copy"]["carried"]},
           "changed_items": s["changed_items"], "changed_during_copy": s["differ"],
           "manifest_digest": s["manifest_digest"], "seconds": s["seconds"]}
    if mode != "warm":
        rec.update(stopped_at=s.get("stopped_at"), services_stopped=s.get("services_stopped", 0))
    return rec


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("command", "python", "paths", "stop_commands", "record_path") + OPTIONS)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        command = args.get("command", "sync")
        if command not in ("sync", "check"):
            raise AnsibleActionFail("verified_sync: command must be sync or check")
        script = self._find_needle("files", "verified_sync.py")
        with open(script, "rb") as fh:
            b64 = base64.b64encode(fh.read()).decode()
        argv = [str(args.get("python") or "python3"), "-c", BOOT, b64, command]
        for opt in OPTIONS:
            if args.get(opt) not in (None, ""):
                argv += ["--" + opt.replace("_", "-"), str(args[opt])]
        stops = args.get("stop_commands") or []
        if not isinstance(stops, list) or not all(isinstance(c, str) and c.strip() for c in stops):
            raise AnsibleActionFail("verified_sync: stop_commands must be a list of shell commands (strings)")
        if stops and args.get("mode") == "warm":
            raise AnsibleActionFail("verified_sync: stop_commands are for the final sync (mode: final)")
        paths = args.get("paths") or []
        if command == "sync":
            if not isinstance(paths, list):
                raise AnsibleActionFail("verified_sync: paths must be a list of absolute directories")
            if stops:
                argv += ["--stop-b64", base64.b64encode(json.dumps(stops).encode()).decode()]
            argv += ["--", *map(str, paths)]
        if self._task.check_mode:
            result.update(changed=False, skipped=True, msg="check mode: nothing copied")
            return result
        if command == "sync" and not paths:
            return self._no_data(result, args, stops)
        res = self._low_level_execute_command(" ".join(map(shlex.quote, argv)))
        stdout, stderr = res.get("stdout", ""), res.get("stderr", "")
        try:
            summary = json.loads(stdout.splitlines()[0]) if stdout.strip() else {}
        except ValueError:
            summary = {}
        result.update(rc=res.get("rc"), stdout=stdout, stderr=stderr, summary=summary,
                      changed=bool(summary.get("changed_items")))
        if res.get("rc") != 0:
            last = (stderr.strip().splitlines() or [f"verified_sync {command} exited {res.get('rc')}"])[-1]
            result.update(failed=True, msg=last)
        elif command == "sync":
            self._record(result, step_record(summary, str(args.get("mode")), paths, str(args.get("algorithm") or "")))
        return result

    def _record(self, result: dict, record: dict) -> None:
        result["record"] = record
        path = self._task.args.get("record_path")
        if path:                # written here (the controller), so the cutover needs no task for it
            if not os.path.isabs(str(path)):
                raise AnsibleActionFail("verified_sync: record_path must be an absolute path")
            write_json_atomic(str(path), record)

    def _no_data(self, result: dict, args: dict, stops: list) -> dict:
        """A host without data paths: nothing to copy; the final sync still stops its services."""
        stopped_at = time.time()
        for i, cmd in enumerate(stops):
            ssh = shlex.split(str(args.get("ssh") or "ssh")) + [str(args.get("source")), cmd]
            res = self._low_level_execute_command(" ".join(map(shlex.quote, ssh)))
            if res.get("rc") != 0:
                last = (str(res.get("stderr", "")).strip().splitlines() or [""])[-1][:300]
                result.update(failed=True, msg=f"stopping the source's services: command {i + 1} of {len(stops)} "
                                               f"({cmd[:200]}) exited {res.get('rc')}: {last}")
                return result
        summary = {"algorithm": str(args.get("algorithm") or ""), "services_stopped": len(stops),
                   "stopped_at": stopped_at if args.get("mode") != "warm" else None}
        result.update(changed=bool(stops), summary=summary)
        self._record(result, step_record(summary, str(args.get("mode") or "warm"), [], summary["algorithm"]))
        return result
