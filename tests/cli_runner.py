"""Running the toolkit's commands as a user would: ``python -m <module> args...`` from the
repository root, with a timeout so no test can hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_module(
    module: str,
    *args: str,
    python: str = sys.executable,
    drop: tuple[str, ...] = ("IBKR_",),
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path = REPO_ROOT,
) -> subprocess.CompletedProcess:
    """Run ``module`` and capture its output. Environment variables whose names start with
    a prefix in ``drop`` are removed (so a developer's settings do not leak in); ``env``
    then adds or overrides variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    environment.update(env or {})
    return subprocess.run(
        [python, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environment,
    )
