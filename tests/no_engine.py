"""An environment where no Pulumi engine can be found, for tests that see `configure --engine pulumi`
refused (the engine is looked up where `stack up` looks: $YUNSHANG_PULUMI_DIR or the venv's bin, then PATH)."""
from __future__ import annotations

import os
from pathlib import Path


def no_engine_env(where: Path) -> dict:
    """The environment with no Pulumi engine to find (an empty YUNSHANG_PULUMI_DIR, PATH without one):
    these tests post configure --engine pulumi to see it refused, never to run a real apply."""
    empty = where / "no-pulumi"
    empty.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not os.path.exists(os.path.join(d, "pulumi")))
    return {**os.environ, "YUNSHANG_PULUMI_DIR": str(empty), "PATH": path}
