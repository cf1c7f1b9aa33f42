"""numba's disk cache stays in step with the compiled sources (quant_trading.jit): a caller
compiled against another file's function is compiled again when that file changes, which
numba alone does not do (shown here on a two-module package in a temporary folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
