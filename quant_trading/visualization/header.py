"""The chart's header: what was tested and how it did, from the cache's statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..backtesting.cache import CachedBacktest
from ..backtesting.statistics import LABELS

__all__ = ["ChartHeader"]


def _num(value: float, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


@dataclass(frozen=True)
class ChartHeader:
    """Header values, taken unchanged from the cache (the statistics are the backtest's own,
    so the chart and the ``run_backtest`` report always agree)."""

    symbol: str
    timeframe: str
    strategy: str  # "MACD (FAST=12, SLOW=26, SIGNAL=9, MODE=long_short)"
    period_start: pd.Timestamp
    period_end: pd.Timestamp
    trades: int
    net_profit: float
    return_pct: float
    max_drawdown_pct: float

    @classmethod
    def from_backtest(cls, backtest: CachedBacktest) -> ChartHeader:
        """Read the header values out of a cache file's contents."""
        params = ", ".join(f"{k}={v}" for k, v in backtest.strategy.get("params", {}).items())
        name = backtest.strategy.get("name", "?")
        stats = backtest.statistics
        return cls(
            symbol=backtest.symbol,
            timeframe=backtest.timeframe,
            strategy=f"{name} ({params})" if params else name,
            period_start=pd.Timestamp(backtest.period["start"]),
            period_end=pd.Timestamp(backtest.period["end"]),
            trades=int(stats.trades),
            net_profit=stats.net_profit,
            return_pct=stats.return_pct,
            max_drawdown_pct=stats.max_drawdown_pct,
        )

    @property
    def title(self) -> str:
        """``AAPL  5m  MACD (FAST=12, ...)``"""
        return f"{self.symbol}  ·  {self.timeframe}  ·  {self.strategy}"

    @property
    def period(self) -> str:
        """``2024-10-31 09:30 – 2026-10-30 15:55``"""
        return f"{self.period_start:%Y-%m-%d %H:%M} – {self.period_end:%Y-%m-%d %H:%M}"

    @property
    def summary(self) -> str:
        """Period and the headline statistics, labelled as the backtest report labels them."""
        return "   ".join(
            (
                f"Period {self.period}",
                f"Closed trades {self.trades:,}",
                f"{LABELS['net_profit']} {_num(self.net_profit, ',.2f')}",
                f"{LABELS['return_pct']} {_num(self.return_pct, '+.2f')}",
                f"{LABELS['max_drawdown_pct']} {_num(self.max_drawdown_pct, '.2f')}",
            )
        )
