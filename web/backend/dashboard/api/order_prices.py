"""Where the simulated-orders summary gets the price that marks an open position.

:class:`CachedBacktestPrices` answers with the close of the newest bar any cached backtest
holds for the symbol (any timeframe). It is one :data:`~.positions.PriceSource`; a live
feed (the market data tracker, TWS) can be another, passed to
:func:`~.positions.summarize` in its place.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from quant_trading.timeframes import parse_timeframe

from .chart_store import STORE, ChartStore, cache_files
from .positions import PriceQuote

__all__ = ["CachedBacktestPrices"]

log = logging.getLogger(__name__)

SOURCE = "backtest cache"


class CachedBacktestPrices:
    """Symbol -> the close of its newest cached backtest bar, or None.

    "Newest" compares when bars end (label + bar size), so a daily bar and the last
    5-minute bar of the same session tie; then the shorter bar size wins. Unreadable files
    are skipped (the chart listing reports them)."""

    def __init__(self, cache_dir: str | Path, store: ChartStore = STORE) -> None:
        self.cache_dir = Path(cache_dir)
        self.store = store

    def __call__(self, symbol: str) -> PriceQuote | None:
        best = None
        for file in cache_files(self.cache_dir, symbol=symbol):
            summary = self.store.summary(file)
            if summary.error is not None or summary.last_time is None or summary.last_close is None:
                continue
            length = pd.Timedelta(seconds=parse_timeframe(file.timeframe).seconds or 0)
            key = (summary.last_time + length, -length)
            if best is None or key > best[0]:
                best = (key, summary)
        if best is None:
            log.debug("no cached backtest bar for %s", symbol)
            return None
        summary = best[1]
        return PriceQuote(
            price=summary.last_close,
            time=summary.last_time.to_pydatetime(),
            source=SOURCE,
            detail=f"close of the {summary.file.timeframe} bar at "
            f"{summary.last_time:%Y-%m-%d %H:%M} in {summary.file.name}",
        )
