"""Action plugin: write a JSON record on the controller, atomically (temp file + fsync + rename)."""
from __future__ import annotations

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def write_json_atomic(path: str, data, dry_run: bool = False) -> bool:
    """Write ``data`` as JSON to ``path`` (temp file + fsync + rename, mode 0600) unless it is
    already there; returns whether it changed."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
    except FileNotFoundError:
        old = None
    if old != text and not dry_run:
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_path, 0o600)
            os.replace(tmp_path, path)
        except BaseException:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            raise
    return old != text


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "data"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        path = self._task.args.get("path")
        if not path or not os.path.isabs(str(path)):
            raise AnsibleActionFail("write_record: path must be an absolute path")
        path = str(path)
        changed = write_json_atomic(path, self._task.args.get("data"), dry_run=self._task.check_mode)
        result.update(changed=changed, path=path)
        return result
