"""``--export``: the chart of one symbol's cache drawn into an image file, no window."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..backtesting.cache import CacheError
from .catalog import scan_cache
from .chart import render_png
from .viewport import default_width, first_window

__all__ = ["ExportedChart", "export_chart", "IMAGE_SUFFIXES"]

log = logging.getLogger(__name__)

#: File types matplotlib writes that make sense for a chart.
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ExportedChart:
    """What was written: the file and the window of bars it shows."""

    path: Path
    symbol: str
    timeframe: str
    first: pd.Timestamp  # first bar's start time
    last: pd.Timestamp  # last bar's start time
    bars: int
    markers: int


def export_chart(
    cache_dir: str | Path,
    path: str | Path,
    symbol: str,
    timeframe: str | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> ExportedChart:
    """Draw ``symbol``'s cached backtest into ``path``: bars from ``start`` (inclusive) to
    ``end`` (exclusive); with one of them a week from ``start`` or up to ``end``, with
    neither the last week.

    Raises CacheError (one line, naming the file or saying what to run) when there is no
    usable cache, ValueError for a request the cache cannot answer (unknown symbol, a period
    without bars, an unknown file type), OSError when the file cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: use a .png (or .svg, .pdf, .jpg) file")
    catalog = scan_cache(cache_dir)
    timeframe = timeframe or catalog.default_timeframe()
    symbol = symbol.upper()
    symbols = catalog.symbols(timeframe)
    if not symbols:
        raise CacheError(catalog.missing_message(timeframe).replace("\n  ", " "))
    if symbol not in symbols:
        have = ", ".join(symbols)
        raise ValueError(f"no {timeframe} cache for {symbol} in {cache_dir} (have: {have})")
    backtest = catalog.load(timeframe, symbol)
    index = backtest.candles.index
    first, stop = first_window(
        None if start is None else int(index.searchsorted(start)),
        None if end is None else int(index.searchsorted(end)),
        default_width(timeframe, len(index)),
        len(index),
    )
    if stop <= first:
        covered = f"{backtest.period['start'][:10]} .. {backtest.period['end'][:10]}"
        raise ValueError(f"no {symbol} bars in that period (the cache covers {covered})")
    chart = render_png(backtest, path, first, stop)
    first, stop = chart.window
    return ExportedChart(
        path=path,
        symbol=symbol,
        timeframe=timeframe,
        first=chart.time_of(first),
        last=chart.time_of(stop - 1),
        bars=stop - first,
        markers=len(chart.visible_markers()),
    )
