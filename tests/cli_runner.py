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


def read_one_line_and_hang_up(
    module: str, *args: str, timeout: float = 120, cwd: Path = REPO_ROOT
) -> tuple[str, int, str]:
    """Run ``module`` as ``python -m module args | head -1`` would: read one line of its
    output, close the pipe, and let it run into the closed pipe. Returns (the line, the
    exit code, stderr)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_")}
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=environment,
    )
    try:
        line = process.stdout.readline()
        process.stdout.close()
        _, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return line, process.returncode, err
