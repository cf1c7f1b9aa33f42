"""Find and load a symbol's bars for a timeframe from a data folder.

Looks for, in order (for ``AAPL`` at ``5m``):

1. ``AAPL_5m_bars_macd.parquet``: the downloader's file with ``--format parquet``;
2. ``AAPL_5m_bars_macd.csv``: the downloader's and the live tracker's file;
3. ``AAPL_5m.parquet``: a plain OHLCV Parquet file;
4. ``AAPL_5m.csv``: a plain OHLCV CSV (the bundled samples);
5. the same four names for each finer timeframe that divides ``tf`` (coarsest first, as the
   longest history usually sits there), aggregated by the shared core.

Downloads come before plain files, and of two files with the same name Parquet comes first:
it exists only because someone asked for it. File names match regardless of case. The first
found is used; other files of its bar size are recorded (:attr:`SymbolData.unused`) so that
the report can say that a download now shadows a file.

CSVs are read through the parsed-bars cache (:mod:`quant_trading.bars_cache`), which keeps
their parsed bars in ``<data folder>/.qt_cache/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..bars import aggregate
from ..bars_cache import load_bars
from ..csv_store import DataFileError
from ..timeframes import Timeframe, parse_timeframe

__all__ = [
    "SymbolData",
    "find_bars_file",
    "load_symbol",
    "symbol_files",
    "MissingDataError",
    "estimate_rows",
]

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
        for stem in (f"{symbol}_{each}_bars_macd", f"{symbol}_{each}"):
            names += [(f"{stem}.parquet", each), (f"{stem}.csv", each)]
    return names


def _found_files(
    data_dir: str | Path, symbol: str, timeframe: Timeframe | str, present: dict | None = None
) -> list[tuple[Path, Timeframe]]:
    """Every candidate file present for the symbol, in precedence order. ``present``: the
    folder's listing from :func:`_listing`, when several symbols are looked up."""
    if present is None:
        present = _listing(data_dir)
    candidates = _candidates(symbol.upper(), parse_timeframe(timeframe))
    return [(present[name.lower()], tf) for name, tf in candidates if name.lower() in present]


def _listing(data_dir: str | Path) -> dict[str, Path]:
    """The folder's files by lower-case name."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise MissingDataError(f"{folder}: data folder not found")
    return {p.name.lower(): p for p in folder.iterdir() if p.is_file()}


def symbol_files(
    data_dir: str | Path, symbols: list[str], timeframe: Timeframe | str
) -> list[list[tuple[Path, Timeframe]]]:
    """Each symbol's candidate files (as :func:`load_symbol` takes them in ``found``), from one
    listing of the folder: a run over many symbols lists it once, not once per symbol (5 ms
    each in a folder of 400 files)."""
    present = _listing(data_dir)
    return [_found_files(data_dir, symbol, timeframe, present) for symbol in symbols]


def _missing(data_dir: str | Path, symbol: str, tf: Timeframe) -> MissingDataError:
    stem = f"{symbol.upper()}_{tf.name}"
    return MissingDataError(
        f"{Path(data_dir)}: no {tf.name} data for {symbol.upper()} (looked for "
        f"{stem}_bars_macd.parquet/.csv, {stem}.parquet/.csv or a finer file to aggregate)"
    )


def find_bars_file(
    data_dir: str | Path, symbol: str, timeframe: Timeframe | str
) -> tuple[Path, Timeframe]:
    """The file to use for ``symbol`` at ``timeframe`` and the file's own timeframe.

    Raises MissingDataError naming what was looked for.
    """
    found = _found_files(data_dir, symbol, timeframe)
    if found:
        return found[0]
    raise _missing(data_dir, symbol, parse_timeframe(timeframe))


def load_symbol(
    data_dir: str | Path,
    symbol: str,
    timeframe: Timeframe | str,
    found: list[tuple[Path, Timeframe]] | None = None,
) -> SymbolData:
    """Read the symbol's best file for ``timeframe`` and aggregate it if it is finer.
    ``found``: the symbol's files from :func:`symbol_files` (else the folder is listed).

    Indicator columns in the file are dropped: they are always recomputed.
    """
    tf = parse_timeframe(timeframe)
    if found is None:
        found = _found_files(data_dir, symbol, tf)
    if not found:
        raise _missing(data_dir, symbol, tf)
    path, source_tf = found[0]
    # Another file of the same bar size is what a download shadows (AAPL_5m_bars_macd.csv
    # over AAPL_5m.csv); finer files are always lower and not worth a mention.
    unused = tuple(other for other, other_tf in found[1:] if other_tf == source_tf)
    loaded = load_bars(path)
    bars = loaded.bars
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
        sha256=loaded.sha256,
        unused=unused,
    )


def estimate_rows(
    data_dir: str | Path, symbols: list[str], timeframe: Timeframe | str
) -> list[int]:
    """About how many rows each symbol's file holds (0 for none), without reading the files:
    the work a run faces, for sizing it before loading anything."""
    present = _listing(data_dir)
    rows = []
    for symbol in symbols:
        found = _found_files(data_dir, symbol, timeframe, present)
        rows.append(_estimate_rows(found[0][0]) if found else 0)
    return rows


def _estimate_rows(path: Path) -> int:
    """A Parquet file's row count from its footer; a CSV's size over its first lines' length."""
    sample = 1 << 14
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(sample)
    except (OSError, ValueError):  # an estimate; the load will say what is wrong
        return 0
    lines = head.count(b"\n")
    if len(head) < sample:
        return max(lines - 1, 0)  # the whole file, less its header
    return int(size / (len(head) / lines)) if lines else 0
