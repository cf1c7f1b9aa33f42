"""The backtest cache as the web API sees it: which files exist, and their contents, parsed
once and kept while the file is unchanged.

Everything is read through :func:`quant_trading.backtesting.cache.read_cache` (the file format
belongs to the toolkit). A parsed two-year 5-minute file takes ~80 ms to read and ~4 MB of
memory, so the last few files shown are kept whole (paging through a chart's windows does not
re-read it), and every file's small :class:`ChartSummary` is kept for the listing. Both are
keyed by the file's path, modification time and size, so a re-run backtest is read afresh.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from quant_trading.backtesting.cache import CachedBacktest, CacheError, cache_path, read_cache
from quant_trading.timeframes import EXCHANGE_TZ, Timeframe
from quant_trading.visualization.catalog import run_backtest_hint, scan_cache

from .chart_params import BadParameter, parse_chart_timeframe, parse_symbol

__all__ = [
    "CacheFile",
    "ChartStore",
    "ChartSummary",
    "Headline",
    "NoCache",
    "STORE",
    "cache_files",
    "chart_file",
]

log = logging.getLogger(__name__)
_NEW_YORK = ZoneInfo(EXCHANGE_TZ)
_warned: set[Path] = set()  # a skipped file is reported once, not at every listing


def _warn_once(path: Path, message: str, *args) -> None:
    if path not in _warned:
        _warned.add(path)
        log.warning(message, *args)


def _inside(root: Path, path: Path) -> bool:
    """True when ``path``, symlinks followed, is under ``root``; warns once when not."""
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except OSError:  # a symlink loop
        inside = False
    if not inside:
        _warn_once(path, "charts: refusing %s: it resolves outside %s", path, root)
    return inside


class NoCache(LookupError):
    """No cached backtest for a timeframe and symbol; the message says what to run."""


@dataclass(frozen=True)
class CacheFile:
    """One ``<timeframe>/<SYMBOL>_backtest.json`` under the cache folder."""

    timeframe: str  # canonical name, as in the folder
    symbol: str
    path: Path

    @property
    def name(self) -> str:
        """The path relative to the cache folder, ``5m/AAPL_backtest.json``."""
        return f"{self.path.parent.name}/{self.path.name}"


@dataclass(frozen=True)
class _Stamp:
    """What identifies one version of a file."""

    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path) -> _Stamp:
        """The file's stamp; FileNotFoundError/OSError when it cannot be seen."""
        info = os.stat(path)
        return cls(info.st_mtime_ns, info.st_size)

    @property
    def modified(self) -> dt.datetime:
        """The modification time, New York time like every other time of the API."""
        return dt.datetime.fromtimestamp(self.mtime_ns / 1e9, _NEW_YORK)


@dataclass(frozen=True)
class Headline:
    """The numbers a list of backtests shows (NaN when undefined, e.g. no trades)."""

    net_profit: float
    return_pct: float
    buy_hold_return_pct: float
    max_drawdown_pct: float
    win_rate_pct: float
    trades: int


@dataclass(frozen=True)
class ChartSummary:
    """What the listing says about one cache file: either its contents in brief, or
    ``error`` (CacheError's one line) when it cannot be read."""

    file: CacheFile
    size: int
    modified: dt.datetime
    error: str | None = None
    strategy: str | None = None
    params: dict[str, Any] | None = None
    period_start: str | None = None
    period_end: str | None = None
    bars: int | None = None
    headline: Headline | None = None
    last_time: pd.Timestamp | None = None  # the newest bar's label (start) time
    last_close: float | None = None


def _summarize(file: CacheFile, stamp: _Stamp, backtest: CachedBacktest) -> ChartSummary:
    stats = backtest.statistics
    candles = backtest.candles
    last_close = float(candles["close"].iloc[-1]) if len(candles) else math.nan
    return ChartSummary(
        file=file,
        size=stamp.size,
        modified=stamp.modified,
        strategy=str(backtest.strategy.get("name", "")),
        params=dict(backtest.strategy.get("params") or {}),
        period_start=backtest.period.get("start"),
        period_end=backtest.period.get("end"),
        bars=len(candles),
        headline=Headline(
            net_profit=stats.net_profit,
            return_pct=stats.return_pct,
            buy_hold_return_pct=stats.buy_hold_return_pct,
            max_drawdown_pct=stats.max_drawdown_pct,
            win_rate_pct=stats.win_rate_pct,
            trades=int(stats.trades),
        ),
        last_time=candles.index[-1] if len(candles) else None,
        last_close=None if math.isnan(last_close) else last_close,
    )


class ChartStore:
    """Parsed cache files, kept while unchanged: the ``max_backtests`` most recently used
    files whole, and up to ``max_summaries`` summaries. Safe to share between threads (two
    threads asking for the same new file may both read it; the results are equal)."""

    def __init__(self, max_backtests: int = 8, max_summaries: int = 4096) -> None:
        self.max_backtests = max_backtests
        self.max_summaries = max_summaries
        self._lock = threading.Lock()
        self._backtests: OrderedDict[Path, tuple[_Stamp, CachedBacktest]] = OrderedDict()
        self._summaries: OrderedDict[Path, tuple[_Stamp, ChartSummary]] = OrderedDict()
        self.reads = 0  # read_cache calls made, for tests and measurements

    @staticmethod
    def _get(table: OrderedDict, path: Path, stamp: _Stamp):
        kept = table.get(path)
        if kept is None or kept[0] != stamp:
            return None
        table.move_to_end(path)
        return kept[1]

    @staticmethod
    def _put(table: OrderedDict, path: Path, stamp: _Stamp, value, limit: int) -> None:
        table[path] = (stamp, value)
        table.move_to_end(path)
        while len(table) > limit:
            table.popitem(last=False)

    def _read(self, path: Path) -> CachedBacktest:
        with self._lock:
            self.reads += 1
        return read_cache(path)

    def load(self, file: CacheFile) -> tuple[CachedBacktest, ChartSummary]:
        """The file parsed, and its summary. FileNotFoundError when it is gone; CacheError
        (naming the file) when it cannot be read."""
        stamp = _Stamp.of(file.path)
        with self._lock:
            backtest = self._get(self._backtests, file.path, stamp)
        if backtest is None:
            backtest = self._read(file.path)
        summary = _summarize(file, stamp, backtest)
        with self._lock:
            self._put(self._backtests, file.path, stamp, backtest, self.max_backtests)
            self._put(self._summaries, file.path, stamp, summary, self.max_summaries)
        return backtest, summary

    def summary(self, file: CacheFile) -> ChartSummary:
        """The file in brief; a file that cannot be read gives a summary with ``error`` set
        (and a logged warning), never an exception. The whole file is not kept."""
        try:
            stamp = _Stamp.of(file.path)
        except OSError as exc:
            now = dt.datetime.now(_NEW_YORK)
            return ChartSummary(file, 0, now, error=f"{file.path}: cannot read ({exc.strerror})")
        with self._lock:
            summary = self._get(self._summaries, file.path, stamp)
        if summary is not None:
            return summary
        try:
            summary = _summarize(file, stamp, self._read(file.path))
        except CacheError as exc:
            log.warning("charts: skipping %s", exc)
            summary = ChartSummary(file, stamp.size, stamp.modified, error=str(exc))
        with self._lock:
            self._put(self._summaries, file.path, stamp, summary, self.max_summaries)
        return summary

    def clear(self) -> None:
        """Forget everything kept."""
        with self._lock:
            self._backtests.clear()
            self._summaries.clear()


#: The process's store (each server worker process keeps its own).
STORE = ChartStore()


def chart_file(cache_dir: Path, timeframe: Timeframe, symbol: str) -> CacheFile:
    """The cache file of a validated timeframe and symbol (see :mod:`.chart_params`).

    Raises :class:`NoCache` when there is none, or when the path would leave ``cache_dir``
    (a symlink pointing elsewhere is not followed out of it)."""
    root = Path(cache_dir)
    path = cache_path(root, timeframe.name, symbol)
    file = CacheFile(timeframe.name, symbol, path)
    if not _inside(root, path):
        raise NoCache(f"no cached {timeframe.name} backtest for {symbol}")
    if not path.is_file():
        raise NoCache(
            f"no cached {timeframe.name} backtest for {symbol} in {root}; run one first: "
            f"{run_backtest_hint(root, timeframe.name)} --symbols {symbol}"
        )
    return file


def cache_files(
    cache_dir: Path, timeframe: str | None = None, symbol: str | None = None
) -> list[CacheFile]:
    """The cache files under ``cache_dir`` (shortest bars first, then by symbol), optionally
    of one timeframe (canonical name) and/or symbol. Only files the chart endpoint can open
    are listed: a folder not named by a canonical timeframe (``5 mins``), a file not named
    by a ticker, or one that resolves outside ``cache_dir`` (a symlink) is skipped with a
    logged warning."""
    root = Path(cache_dir)
    files = []
    catalog = scan_cache(root)
    for folder, symbols in catalog.files.items():
        try:
            canonical = parse_chart_timeframe(folder).name
        except BadParameter:
            canonical = None
        if canonical != folder:
            path = root / folder
            _warn_once(path, "charts: skipping %s: not a canonical timeframe name", path)
            continue
        if timeframe is not None and folder != timeframe:
            continue
        for name, path in symbols.items():
            try:
                valid = parse_symbol(name) == name and path == cache_path(root, folder, name)
            except BadParameter:
                valid = False
            if not valid:
                _warn_once(path, "charts: skipping %s: not named <SYMBOL>_backtest.json", path)
                continue
            if (symbol is None or name == symbol) and _inside(root, path):
                files.append(CacheFile(folder, name, path))
    return files
