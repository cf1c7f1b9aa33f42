"""What is in a cache folder: ``<cache-dir>/<timeframe>/<SYMBOL>_backtest.json``.

Scanning only lists file names, so the window opens without reading every symbol; a file is
read (and kept) when it is first shown. A file that cannot be read is remembered as skipped,
with :class:`~quant_trading.backtesting.cache.CacheError`'s one-line reason naming it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..backtesting.cache import CachedBacktest, CacheError, read_cache
from ..timeframes import parse_timeframe

__all__ = ["CacheCatalog", "scan_cache", "run_backtest_hint", "SUFFIX"]

log = logging.getLogger(__name__)

SUFFIX = "_backtest.json"


def run_backtest_hint(cache_dir: Path, timeframe: str) -> str:
    """The command that fills ``cache_dir/timeframe``."""
    return (
        "python -m quant_trading.backtesting.run_backtest "
        f"--timeframe {timeframe} --data-dir market_data --cache-dir {cache_dir}"
    )


def _timeframe_key(name: str) -> tuple[int, str]:
    try:
        return parse_timeframe(name).seconds or 10**9, name
    except ValueError:
        return 10**10, name


@dataclass
class CacheCatalog:
    """Timeframe folders and their symbols' cache files, plus what could not be read."""

    root: Path
    files: dict[str, dict[str, Path]]  # timeframe -> symbol -> file, both sorted
    skipped: dict[Path, str] = field(default_factory=dict)  # file -> reason
    _loaded: dict[Path, tuple[int, CachedBacktest]] = field(default_factory=dict, repr=False)

    @property
    def timeframes(self) -> list[str]:
        """Timeframe folders present, shortest bars first."""
        return list(self.files)

    def default_timeframe(self) -> str:
        """5m (the seed's chart) when present, else the first folder found, else 5m."""
        return "5m" if "5m" in self.files else next(iter(self.files), "5m")

    def symbols(self, timeframe: str) -> list[str]:
        """Symbols with a readable (or not yet read) cache file for ``timeframe``."""
        return [s for s, p in self.files.get(timeframe, {}).items() if p not in self.skipped]

    def path(self, timeframe: str, symbol: str) -> Path:
        """The cache file of one symbol (KeyError if there is none)."""
        return self.files[timeframe][symbol]

    def load(self, timeframe: str, symbol: str) -> CachedBacktest:
        """Read one symbol's cache (kept in memory until the file changes).

        Raises CacheError naming the file; the file is then listed in ``skipped``.
        """
        path = self.path(timeframe, symbol)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError as exc:
            self.skipped[path] = f"{path}: cannot read ({exc.strerror})"
            raise CacheError(self.skipped[path]) from None
        kept = self._loaded.get(path)
        if kept and kept[0] == stamp:
            return kept[1]
        try:
            backtest = read_cache(path)
            if backtest.candles.empty:
                raise CacheError(f"{path}: holds no candles")
        except CacheError as exc:
            self.skipped[path] = str(exc)
            raise
        self._loaded[path] = (stamp, backtest)
        return backtest

    def missing_message(self, timeframe: str) -> str:
        """Why nothing can be shown for ``timeframe``, and what to run."""
        folder = self.root / timeframe
        if not self.root.is_dir():
            what = f"The cache folder {self.root} does not exist."
        elif not folder.is_dir():
            what = f"There is no {timeframe} folder in {self.root}."
        elif self.files.get(timeframe):
            what = f"No readable backtest cache in {folder} ({len(self.skipped)} file(s) skipped)."
        else:
            what = f"No *{SUFFIX} files in {folder}."
        others = [t for t in self.timeframes if t != timeframe and self.symbols(t)]
        also = f" Cached timeframes: {', '.join(others)}." if others else ""
        return f"{what} Run a backtest first:\n  {run_backtest_hint(self.root, timeframe)}{also}"


def scan_cache(root: str | Path) -> CacheCatalog:
    """List ``root``'s timeframe folders (names like ``5m``) and their ``*_backtest.json``
    files. A missing root gives an empty catalog; nothing is read yet."""
    root = Path(root)
    files: dict[str, dict[str, Path]] = {}
    if root.is_dir():
        folders = [p for p in root.iterdir() if p.is_dir()]
        for folder in sorted(folders, key=lambda p: _timeframe_key(p.name)):
            try:
                parse_timeframe(folder.name)
            except ValueError:
                log.debug("ignoring %s: not a timeframe folder", folder)
                continue
            found = sorted(folder.glob(f"*{SUFFIX}"))
            files[folder.name] = {p.name[: -len(SUFFIX)].upper(): p for p in found}
    return CacheCatalog(root=root, files=files)
