"""numba's ``njit``, with the disk cache of this package's compiled code kept in step with
its sources. Every compiled module imports ``njit`` from here.

numba keys a cached function on its own source file only. A compiled function that calls
one of another file (the optimizer's sweep calls the engine's fill loop and the statistics
kernel) keeps, in its cache, the callee it was compiled with: after an update that changes
only the callee's file, the caller would still run the old code, and a parameter search
would no longer equal its backtests. So the first import compares the compiled sources'
sizes and modification times with a stamp and, when any changed, removes the package's
cached machine code (each function is compiled again once, by the next call).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from numba import njit

__all__ = ["COMPILED", "is_cached", "njit", "refresh_cache"]

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parent
#: The modules with compiled code (a test checks the list is whole), and the folders whose
#: caches hold it: the package and the bundled strategies.
COMPILED = (
    "quant_trading/backtesting/_packing_jit.py",
    "quant_trading/backtesting/_statistics_jit.py",
    "quant_trading/backtesting/_sweep.py",
    "quant_trading/backtesting/engine.py",
    "quant_trading/bars.py",
    "quant_trading/indicators.py",
    "quant_trading/macd.py",
    "quant_trading/signals.py",
    "strategies/macd.py",
)
_ROOTS = (_PACKAGE, _PACKAGE.parent / "strategies")
_STAMP = _PACKAGE / "__pycache__" / "numba-sources.stamp"


def _fingerprint(sources: Iterable[Path]) -> str:
    lines = []
    for path in sources:
        try:
            stat = path.stat()
        except OSError:
            continue
        lines.append(f"{path} {stat.st_size} {stat.st_mtime_ns}")
    return "\n".join(lines) + "\n"


def refresh_cache(
    sources: Iterable[Path] = tuple(_PACKAGE.parent / name for name in COMPILED),
    roots: Iterable[Path] = _ROOTS,
    stamp: Path = _STAMP,
) -> bool:
    """Remove numba's cached code under ``roots`` when one of ``sources`` changed since
    ``stamp`` was written (or there is no stamp), then write it. Returns whether it removed
    anything. A folder that cannot be written (an installed copy) is left as it is."""
    current = _fingerprint(sources)
    try:
        if stamp.read_text(encoding="utf-8") == current:
            return False
    except OSError:
        pass
    removed = 0
    for root in roots:
        for cache in root.rglob("__pycache__") if root.is_dir() else ():
            for path in cache.iterdir():
                if path.suffix in (".nbi", ".nbc"):
                    try:
                        path.unlink()
                        removed += 1
                    except OSError:
                        continue
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        temporary = stamp.with_name(f"{stamp.name}.{os.getpid()}")
        temporary.write_text(current, encoding="utf-8")
        temporary.replace(stamp)
    except OSError as exc:
        log.debug("cannot write %s: %s", stamp, exc)
    if removed:
        log.info("compiled sources changed: removed %d cached numba file(s)", removed)
    return bool(removed)


def is_cached(*functions) -> bool:
    """Whether numba's disk cache holds machine code for each of ``functions`` (compiled
    with ``cache=True``). False means their next call compiles them first: half a minute
    for the backtest engine, once after installing or updating. A function whose cache
    cannot be looked up counts as cached (nothing is claimed about it)."""
    for function in functions:
        try:  # numba keeps where it would load from in private attributes
            index = function._cache._cache_file._index_path
        except AttributeError:
            continue
        if not os.path.exists(index):
            return False
    return True


refresh_cache()
