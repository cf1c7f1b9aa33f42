"""Find and load a symbol's bars for a timeframe from a data folder.

Looks for, in order: ``<SYMBOL>_<tf>_bars_macd.csv`` (the downloader's files),
``<SYMBOL>_<tf>.csv``, then the same names for finer timeframes that divide ``tf``
(coarsest first, as the longest history usually sits there), aggregated by the shared core.
File names match regardless of case. The first found is used; other files of its bar size
are recorded (:attr:`SymbolData.unused`) so that the report can say that a download now
shadows a file.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..bars import OHLCV, aggregate
from ..csv_store import DataFileError, read_bars
from ..timeframes import Timeframe, parse_timeframe

__all__ = ["SymbolData", "find_bars_file", "load_symbol", "MissingDataError"]

log = logging.getLogger(__name__)

# Finer sizes the loader may aggregate from, in IB's bar-size ladder.
_LADDER = tuple(map(parse_timeframe, ("1m", "2m", "3m", "5m", "10m", "15m", "20m", "30m", "1h")))


class MissingDataError(DataFileError):
    """No file for the symbol at this or any finer timeframe."""


@dataclass(frozen=True)
class SymbolData:
    """A symbol's bars at the requested timeframe and where they came from."""

    symbol: str
    timeframe: Timeframe
    bars: pd.DataFrame
    path: Path
    source_timeframe: Timeframe  # the file's own bar size (finer when aggregated)
    sha256: str
    unused: tuple[Path, ...] = ()  # other files of the same bar size, lower in precedence


def _candidates(symbol: str, tf: Timeframe) -> list[tuple[str, Timeframe]]:
    finer = [f for f in reversed(_LADDER) if f.seconds < tf.seconds and tf.seconds % f.seconds == 0]
    names = []
    for each in [tf, *finer]:
        names += [(f"{symbol}_{each}_bars_macd.csv", each), (f"{symbol}_{each}.csv", each)]
    return names


def _found_files(
    data_dir: str | Path, symbol: str, timeframe: Timeframe | str
) -> list[tuple[Path, Timeframe]]:
    """Every candidate file present for the symbol, in precedence order."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise MissingDataError(f"{folder}: data folder not found")
    present = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    candidates = _candidates(symbol.upper(), parse_timeframe(timeframe))
    return [(present[name.lower()], tf) for name, tf in candidates if name.lower() in present]


def find_bars_file(
    data_dir: str | Path, symbol: str, timeframe: Timeframe | str
) -> tuple[Path, Timeframe]:
    """The file to use for ``symbol`` at ``timeframe`` and the file's own timeframe.

    Raises MissingDataError naming what was looked for.
    """
    found = _found_files(data_dir, symbol, timeframe)
    if found:
        return found[0]
    tf = parse_timeframe(timeframe)
    folder = Path(data_dir)
    raise MissingDataError(
        f"{folder}: no {tf.name} data for {symbol.upper()} "
        f"(looked for {symbol.upper()}_{tf.name}_bars_macd.csv, {symbol.upper()}_{tf.name}.csv "
        "or a finer file to aggregate)"
    )


def load_symbol(data_dir: str | Path, symbol: str, timeframe: Timeframe | str) -> SymbolData:
    """Read the symbol's best file for ``timeframe`` and aggregate it if it is finer.

    Indicator columns in the file are dropped: they are always recomputed.
    """
    tf = parse_timeframe(timeframe)
    found = _found_files(data_dir, symbol, tf)
    path, source_tf = found[0] if found else find_bars_file(data_dir, symbol, tf)  # raises
    # Another file of the same bar size is what a download shadows (AAPL_5m_bars_macd.csv
    # over AAPL_5m.csv); finer files are always lower and not worth a mention.
    unused = tuple(other for other, other_tf in found[1:] if other_tf == source_tf)
    content = path.read_bytes()
    bars = read_bars(path)[OHLCV]
    if source_tf != tf:
        log.info("%s: aggregating %s bars to %s", path.name, source_tf, tf)
        try:
            bars = aggregate(bars, tf)
        except ValueError as exc:
            raise DataFileError(f"{path}: {exc}") from None
    return SymbolData(
        symbol=symbol.upper(),
        timeframe=tf,
        bars=bars,
        path=path,
        source_timeframe=source_tf,
        sha256=hashlib.sha256(content).hexdigest(),
        unused=unused,
    )
