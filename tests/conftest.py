"""Session fixtures shared by every test directory.

``devcloud``: the real local OpenStack (one control plane per operator, see
docs/devcloud.md). Started once per test session at the default dir
($YUNSHANG_DEVCLOUD_DIR or ~/.local/share/yunshang/devcloud) — or reused when a
healthy one already runs there. At the end only the processes this session
started are stopped, and none when YUNSHANG_DEVCLOUD_KEEP=1.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class DevcloudHandle:
    clouds_file: str
    operators: list[str]
    dir: Path
    started: set[str] = field(default_factory=set)   # process names this session started
    control: object = None                            # yunshang.devcloud.Devcloud


def _keep() -> bool:
    return os.environ.get("YUNSHANG_DEVCLOUD_KEEP", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def devcloud() -> DevcloudHandle:
    from yunshang.devcloud import Devcloud, read_operator_specs

    existing = Devcloud()
    if existing.layout.operators and existing.healthy():
        dc = existing
        started: set[str] = set()
    else:
        ops = existing.layout.operators or read_operator_specs(None, 2)
        dc = Devcloud(operators=ops, progress=lambda m: print(f"[devcloud {time.strftime('%H:%M:%S')}] {m}",
                                                               file=sys.stderr, flush=True))
        dc.up()
        started = set(dc.started_names)      # decided under up()'s lock: never another session's processes
    handle = DevcloudHandle(clouds_file=str(dc.layout.clouds_file), operators=[o.name for o in dc.layout.operators],
                            dir=dc.dir, started=started, control=dc)
    yield handle
    if started and not _keep():
        dc.down(only=started)
