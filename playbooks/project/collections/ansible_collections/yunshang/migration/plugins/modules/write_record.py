"""Documentation stub: the work is done by the action plugin of the same name, on the controller."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: write_record
short_description: Write a per-host migration record (JSON) on the controller
description:
  - Writes O(data) as JSON to O(path) on the Ansible controller, atomically
    (temporary file, fsync, rename), mode 0600; creates the directory.
  - Runs entirely in the controller (action plugin); no module is executed on any host.
options:
  path:
    description: Absolute path of the record file on the controller.
    type: path
    required: true
  data:
    description: The record (any JSON-serialisable value).
    type: raw
    required: true
author:
  - yunshang
"""

EXAMPLES = r"""
- name: Record step done
  yunshang.migration.write_record:
    path: "{{ migrate_records_dir }}/{{ inventory_hostname }}/sync.json"
    data: "{{ sync_data_record }}"
"""

RETURN = r"""
path:
  description: The record file written.
  type: str
  returned: always
"""

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit("yunshang.migration.write_record runs as an action plugin on the controller")
