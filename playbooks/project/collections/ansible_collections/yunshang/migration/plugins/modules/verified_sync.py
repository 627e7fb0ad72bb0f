"""Documentation stub: the work is done by the action plugin of the same name."""
from __future__ import annotations

DOCUMENTATION = r"""
---
module: verified_sync
short_description: Verified rsync of a host's data paths, every file accounted for
description:
  - Runs the calling role's C(files/verified_sync.py) on the task's (delegated) host over its
    connection, without Ansible's module start-up.
  - C(sync) rsyncs O(paths) from O(source) into O(dest) and compares a manifest of both sides
    (digest with O(algorithm); files unchanged since the last manifest by their stat key are
    carried, the rest hashed); C(check) re-hashes the copy against its manifest.
options:
  command:
    description: C(sync) or C(check).
    type: str
    default: sync
  python:
    description: Python 3 interpreter on the task's host.
    type: str
    default: python3
  mode:
    description: C(warm) (repeatable, changes recorded) or C(final) (every file must match).
    type: str
  dest:
    description: The copy's directory on the task's host (the manifest is kept beside it).
    type: path
  paths:
    description: Absolute data directories on the source.
    type: list
    elements: str
  source:
    description: C(user@address) of the source.
    type: str
  ssh:
    description: ssh command line used by rsync and for the source's side.
    type: str
  source_python:
    description: Python 3 interpreter on the source.
    type: str
  algorithm:
    description: C(sha256) or C(sm3) (where the hosts' OpenSSL has it).
    type: str
  racy_seconds:
    description: A source file changed this recently is re-hashed next time even if its stat is the same.
    type: float
  copy_racy_seconds:
    description: The copy's files are hashed once this much older than their last change.
    type: float
  stop_commands:
    description:
      - Final sync only. Shell commands run on the source, over the source side's ssh session, once
        that session and rsync's are open; the cutover window opens there (its time is recorded as
        C(stopped_at)). A failing command fails the task naming it, before anything is copied.
    type: list
    elements: str
    default: []
  record_path:
    description: Absolute path on the controller where the step's record (the returned C(record)) is written atomically.
    type: path
author:
  - yunshang
"""

EXAMPLES = r"""
- name: Copy and verify the data paths
  yunshang.migration.verified_sync:
    mode: warm
    dest: /var/lib/migrate/staging/app-01/data
    paths: [/srv/app]
    source: root@10.0.0.5
    ssh: ssh -p 22 -i /keys/id_ed25519 -o BatchMode=yes
"""

RETURN = r"""
summary:
  description: The sync's JSON summary (files, verified, hashed/carried per side, differ, manifest_digest, seconds).
  type: dict
  returned: always
record:
  description: The step's record (mode, paths, algorithm, files, verified, hashed, carried, changed_items,
    changed_during_copy, manifest_digest, seconds; final also stopped_at, services_stopped).
  type: dict
  returned: success
"""

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit("yunshang.migration.verified_sync runs as an action plugin")
