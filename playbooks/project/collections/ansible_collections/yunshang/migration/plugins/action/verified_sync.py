"""Action plugin: run the sync_data role's verified_sync.py on the (delegated) host, no module.

The script is sent in the command line (``python3 -c BOOT <base64>``) and run over the task's
connection with ``_low_level_execute_command``: on a local conversion host that is one process
start, not Ansible's module start-up (~0.4 s per task here), which would otherwise be most of a
cutover window whose work takes a fraction of a second.
"""
from __future__ import annotations

import base64
import json
import shlex

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

BOOT = ("import base64,sys;b=sys.argv.pop(1);"
        "exec(compile(base64.b64decode(b),'verified_sync','exec'),{'__name__':'__main__','SELF_B64':b})")
OPTIONS = ("algorithm", "racy_seconds", "copy_racy_seconds", "mode", "dest", "ssh", "source", "source_python")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("command", "python", "paths") + OPTIONS)

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
        if command == "sync":
            paths = args.get("paths") or []
            if not isinstance(paths, list) or not paths:
                raise AnsibleActionFail("verified_sync: paths must be a non-empty list of absolute directories")
            argv += ["--", *map(str, paths)]
        if self._task.check_mode:
            result.update(changed=False, skipped=True, msg="check mode: nothing copied")
            return result
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
        return result
