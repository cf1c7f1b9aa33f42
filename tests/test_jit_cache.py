"""numba's disk cache stays in step with the compiled sources (quant_trading.jit): a caller
compiled against another file's function is compiled again when that file changes, which
numba alone does not do (shown here on a two-module package in a temporary folder)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quant_trading import jit

REPO = Path(__file__).resolve().parent.parent

CALLEE = """\
from numba import njit

@njit(cache=True)
def value():
    return {value}
"""

CALLER = """\
from numba import njit
from pkg.callee import value

@njit(cache=True)
def twice():
    return 2 * value()
"""

RUN = """\
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
sys.path.insert(0, {repo!r})
if {refresh}:
    from quant_trading.jit import refresh_cache
    package = Path({root!r}) / "pkg"
    refresh_cache([package / "callee.py", package / "caller.py"], [package],
                  package / "__pycache__" / "numba-sources.stamp")
from pkg.caller import twice
print(twice())
"""


def _package(root: Path, value: int) -> None:
    package = root / "pkg"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    callee = package / "callee.py"
    callee.write_text(CALLEE.format(value=value))
    # A later modification time than any earlier version, whatever the clock's resolution.
    stamp = 1_700_000_000 + value
    os.utime(callee, (stamp, stamp))
    caller = package / "caller.py"
    if not caller.exists():  # only the callee's file changes
        caller.write_text(CALLER)


def _twice(root: Path, refresh: bool) -> int:
    code = RUN.format(root=str(root), repo=str(REPO), refresh=refresh)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return int(done.stdout.split()[-1])


def test_numba_alone_keeps_a_stale_callee_and_the_refresh_recompiles(tmp_path):
    plain, refreshed = tmp_path / "plain", tmp_path / "refreshed"
    for root in (plain, refreshed):
        _package(root, 1)
    assert _twice(plain, refresh=False) == 2
    assert _twice(refreshed, refresh=True) == 2
    for root in (plain, refreshed):
        _package(root, 5)
    # numba alone: the caller's cache still holds the callee it was compiled with.
    assert _twice(plain, refresh=False) == 2
    assert _twice(refreshed, refresh=True) == 10
    # Unchanged sources: the cache is kept (nothing removed, the same answer).
    assert _twice(refreshed, refresh=True) == 10
    assert any((refreshed / "pkg" / "__pycache__").glob("*.nbi"))


def test_refresh_removes_only_when_a_source_changed(tmp_path):
    source = tmp_path / "kernel.py"
    source.write_text("x = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    stamp = cache / "numba-sources.stamp"
    compiled = [cache / "kernel.f-1.py311.nbi", cache / "kernel.f-1.py311.1.nbc"]
    kept = cache / "kernel.cpython-311.pyc"
    for path in [*compiled, kept]:
        path.write_bytes(b"x")
    assert jit.refresh_cache([source], [tmp_path], stamp)  # no stamp yet
    assert not any(p.exists() for p in compiled) and kept.exists()
    for path in compiled:
        path.write_bytes(b"x")
    assert not jit.refresh_cache([source], [tmp_path], stamp)
    assert all(p.exists() for p in compiled)
    source.write_text("x = 22\n")  # another size
    assert jit.refresh_cache([source], [tmp_path], stamp)
    assert not any(p.exists() for p in compiled)


def test_every_compiled_module_is_listed():
    found = set()
    for folder in ("quant_trading", "strategies"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name != "jit.py" and "@njit" in text:
                found.add(path.relative_to(REPO).as_posix())
    assert found == set(jit.COMPILED), textwrap.shorten(str(found ^ set(jit.COMPILED)), 300)


SAY = """\
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {repo!r})
from quant_trading.cli import say_if_compiling
from pkg.caller import twice
say_if_compiling("prog", twice)
print(twice())
"""


def _on_terminal(command: list[str], env: dict[str, str] | None = None, cwd: Path = REPO):
    """Run ``command`` with its stderr on a pseudo-terminal (as in a shell window) and its
    stdout captured; returns (exit code, stdout, stderr)."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=follower, text=True,
                              timeout=300, cwd=cwd, env={**os.environ, **(env or {})})  # fmt: skip
    finally:
        os.close(follower)
    seen = b""
    try:
        while chunk := os.read(leader, 4096):
            seen += chunk
    except OSError:  # the terminal's other end is closed: all is read
        pass
    finally:
        os.close(leader)
    return done.returncode, done.stdout, seen.decode().replace("\r\n", "\n")


def test_a_first_call_on_a_terminal_is_announced_and_a_cached_or_redirected_one_is_not(tmp_path):
    _package(tmp_path, 3)
    command = [sys.executable, "-c", SAY.format(root=str(tmp_path), repo=str(REPO))]
    redirected = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert (redirected.returncode, redirected.stdout, redirected.stderr) == (0, "6\n", "")
    for cache in (tmp_path / "pkg" / "__pycache__").glob("*.nb[ic]"):
        cache.unlink()  # compiled above: back to a first run
    code, out, err = _on_terminal(command)
    assert (code, out) == (0, "6\n")
    assert err == (
        "prog: compiling the engine for its first run (about half a minute, once; "
        "later runs load it from disk)...\n"
    )
    assert _on_terminal(command) == (0, "6\n", "")  # compiled and cached by the run before


@pytest.mark.slow
def test_the_quick_start_backtest_says_it_compiles_on_its_first_run_only(tmp_path):
    """The README's first command on a terminal: the first run, which compiles for about
    half a minute, says so before anything else; the next one loads from disk, silently."""
    command = [sys.executable, "-m", "quant_trading.backtesting.run_backtest", "--timeframe",
               "5m", "--data-dir", "market_data", "--no-cache"]  # fmt: skip
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}  # an empty cache: as after installing
    first = _on_terminal(command, env)
    assert first[0] == 0 and first[1].startswith("MACD backtest on 5m bars")
    assert first[2] == (
        "run_backtest: compiling the engine for its first run (about half a minute, once; "
        "later runs load it from disk)...\n"
    )
    assert _on_terminal(command, env) == (0, first[1], "")
