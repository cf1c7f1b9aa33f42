"""A cached backtest as the chart endpoint's JSON: a window of its bars, capped, with the
trades in that window (pure: no Django, no I/O).

Candles go out as **column arrays** aligned with ``time`` (epoch seconds, UTC), which is what
a browser chart library such as lightweight-charts takes (``time`` as ``UTCTimestamp``) and
about half the size of row records; ``candles[line.column]`` is the series an indicator's line
draws. NaN is ``null``; an infinite statistic is ``"Infinity"``/``"-Infinity"`` (as in the
cache file; JavaScript's ``Number()`` reads it). Other times are ISO 8601 in New York time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quant_trading.backtesting.cache import CachedBacktest

from .chart_store import ChartSummary
from .jsonable import json_number

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Window", "chart_document", "select"]

DEFAULT_LIMIT = 2_000  # about a month of 5-minute bars
MAX_LIMIT = 20_000
_OHLCV = ("open", "high", "low", "close", "volume")


def _floats(values: np.ndarray) -> list:
    """A float column as JSON: NaN -> None, infinities as strings (see :func:`json_number`)."""
    values = np.asarray(values, dtype=np.float64)
    if np.isfinite(values).all():
        return values.tolist()
    return [json_number(v) for v in values.tolist()]


def _iso(stamp: pd.Timestamp | None) -> str | None:
    return None if stamp is None else stamp.isoformat()


@dataclass(frozen=True)
class Window:
    """Bars ``[first, stop)`` of a backtest's candles, out of ``available`` in the
    requested period; ``truncated`` when the cap left some of them out."""

    first: int
    stop: int
    available: int
    truncated: bool

    @property
    def bars(self) -> int:
        """How many bars the window holds."""
        return self.stop - self.first


def select(
    index: pd.DatetimeIndex,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Window:
    """The bars from ``start`` (inclusive) to ``end`` (exclusive), at most ``limit`` of them:
    the first ``limit`` from ``start`` when it is given (paging forward), else the last
    ``limit`` before ``end`` or the end of the data (the newest bars by default)."""
    lo = 0 if start is None else int(index.searchsorted(start, "left"))
    hi = len(index) if end is None else int(index.searchsorted(end, "left"))
    hi = max(hi, lo)
    available = hi - lo
    if available <= limit:
        return Window(lo, hi, available, False)
    if start is not None:
        return Window(lo, lo + limit, available, True)
    return Window(hi - limit, hi, available, True)


def _trades(backtest: CachedBacktest, first: pd.Timestamp, last: pd.Timestamp) -> list[dict]:
    """The round trips overlapping the bars ``first`` .. ``last``, oldest first, as records
    (built column by column: a two-year window holds thousands)."""
    trades = backtest.trades
    if trades.empty:
        return []
    shown = trades[(trades["entry_time"] <= last) & (trades["exit_time"] >= first)]
    columns: dict[str, list] = {}
    for name in shown.columns:
        values = shown[name]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            columns[name] = [stamp.isoformat() for stamp in values]
        elif name == "bars_held":
            columns[name] = values.astype(np.int64).tolist()
        elif pd.api.types.is_float_dtype(values.dtype):
            columns[name] = _floats(values.to_numpy())
        else:
            columns[name] = values.tolist()
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def chart_document(
    backtest: CachedBacktest,
    summary: ChartSummary,
    window: Window,
    *,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    limit: int,
) -> dict[str, Any]:
    """The chart endpoint's body for ``window`` of ``backtest`` (see the module docstring;
    the fields are described by :class:`.chart_serializers.ChartSerializer`)."""
    candles = backtest.candles
    part = candles.iloc[window.first : window.stop]
    index = part.index
    columns: dict[str, list] = {"time": index.as_unit("s").asi8.tolist()}
    for name in (*_OHLCV, *(c for c in candles.columns if c not in _OHLCV)):
        if name in part.columns:
            columns[name] = _floats(part[name].to_numpy())
    total = len(candles)
    shown = len(index) > 0
    return {
        "timeframe": summary.file.timeframe,
        "symbol": summary.file.symbol,
        "timezone": str(candles.index.tz) if candles.index.tz is not None else None,
        "strategy": backtest.strategy,
        "settings": backtest.settings,
        "data": backtest.data,
        "file": {
            "name": summary.file.name,
            "size": summary.size,
            "modified": summary.modified.isoformat(),
        },
        "period": {
            "start": backtest.period.get("start"),
            "end": backtest.period.get("end"),
            "bars": total,
        },
        "window": {
            "requested": {"start": _iso(start), "end": _iso(end), "limit": limit},
            "start": _iso(index[0]) if shown else None,
            "end": _iso(index[-1]) if shown else None,
            "bars": window.bars,
            "available": window.available,
            "truncated": window.truncated,
            # Paging: pass previous_end as ``end`` for the bars before, next_start as
            # ``start`` for the bars after (``end`` is exclusive, ``start`` inclusive).
            "previous_end": (
                _iso(candles.index[window.first]) if 0 < window.first < total else None
            ),
            "next_start": _iso(candles.index[window.stop]) if window.stop < total else None,
        },
        "indicators": [drawing.as_dict() for drawing in backtest.indicators],
        "candles": columns,
        "trades": _trades(backtest, index[0], index[-1]) if shown else [],
        "trades_total": len(backtest.trades),
        "statistics": {k: json_number(v) for k, v in backtest.statistics.as_dict().items()},
    }
