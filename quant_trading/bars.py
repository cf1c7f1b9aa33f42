"""OHLCV bars: the canonical frame, batch aggregation and the streaming aggregator.

Pure: no I/O. The rules (DESIGN.md) are the same for both paths, and a test proves the two
agree: a bar is labelled by its start time, bins are aligned to the exchange's wall clock
(09:30, 09:35, ... for 5 minutes), a bin with no trades gives no bar, and open/high/low/close/
volume are first/max/min/last/sum.

The canonical bars frame has a tz-aware ``DatetimeIndex`` named ``time`` and float columns
``open, high, low, close, volume`` (optionally ``MACD, Signal, Hist``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from quant_trading.jit import njit

from .macd import macd
from .timeframes import EXCHANGE_TZ, Timeframe, parse_timeframe

__all__ = [
    "EXCHANGE_TZ",
    "OHLCV",
    "Bar",
    "BarAggregator",
    "aggregate",
    "bars_to_frame",
    "with_macd",
]

OHLCV = ["open", "high", "low", "close", "volume"]
MACD_COLUMNS = ["MACD", "Signal", "Hist"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One finished bar, labelled by its start time."""

    time: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float


def _width(timeframe: Timeframe | str) -> int:
    tf = parse_timeframe(timeframe)
    if not tf.clock_aligned:
        raise ValueError(
            f"cannot align {tf.name} bars to the clock: use a size that divides a day "
            "(1m, 3m, 5m, 10m, 15m, 30m, 1h, 1d, ...)"
        )
    return tf.seconds


def _wall_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Local wall-clock times as nanoseconds since the epoch (as if the wall time were UTC)."""
    return index.tz_localize(None).as_unit("ns").asi8


def _utc_floor_is_local(index: pd.DatetimeIndex, width_ns: int) -> bool:
    """True if flooring UTC times to ``width_ns`` also floors the local clock: the width
    divides the UTC offset (New York's offsets are whole hours, so 1/3/5/10/15/30 minutes and
    an hour qualify). Checking the span's two ends is enough in practice: offsets change only
    at DST, and both sides of a change are whole hours."""
    if len(index) == 0:
        return True
    ends = index[[0, -1]]
    offsets = _wall_ns(ends) - ends.as_unit("ns").asi8
    return all(int(offset) % width_ns == 0 for offset in offsets)


@njit(cache=True, nogil=True)
def _aggregate_kernel(utc_ns, local_ns, width, o, h, lo, c, v):  # pragma: no cover - compiled
    # One pass over sorted input. Besides the output arrays it returns the grid the input
    # times sit on (gcd of their times of day), to reject a source coarser than the target,
    # or -1 if the input is not sorted.
    n = len(utc_ns)
    labels = np.empty(n, np.int64)
    oo, hh, ll, cc, vv = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    grid = np.int64(0)
    day = np.int64(86_400_000_000_000)
    k = -1
    key = np.int64(0)
    for i in range(n):
        if i > 0 and utc_ns[i] < utc_ns[i - 1]:
            return labels[:0], oo[:0], hh[:0], ll[:0], cc[:0], vv[:0], np.int64(-1)
        a, b = grid, local_ns[i] % day
        while b:
            a, b = b, a % b
        grid = a
        this = local_ns[i] // width
        if k < 0 or this != key:
            k += 1
            key = this
            labels[k] = utc_ns[i] - (local_ns[i] - this * width)
            oo[k], hh[k], ll[k], cc[k], vv[k] = o[i], h[i], lo[i], c[i], v[i]
        else:
            if h[i] > hh[k]:
                hh[k] = h[i]
            if lo[i] < ll[k]:
                ll[k] = lo[i]
            cc[k] = c[i]
            vv[k] += v[i]
    k += 1
    return labels[:k], oo[:k], hh[:k], ll[:k], cc[:k], vv[:k], grid


def aggregate(bars: pd.DataFrame, timeframe: Timeframe | str) -> pd.DataFrame:
    """Aggregate a bars frame (or trades as bars) into ``timeframe`` bars aligned to the clock.

    ``bars`` must be sorted by time and at least as fine as the target: 1-minute bars make
    3/5/10-minute bars, not the other way round (ValueError). Extra columns are dropped.
    """
    tf = parse_timeframe(timeframe)
    width_ns = _width(tf) * 10**9
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("bars need a tz-aware DatetimeIndex")
    utc_ns = index.as_unit("ns").asi8
    local_ns = utc_ns if _utc_floor_is_local(index, width_ns) else _wall_ns(index)
    columns = [np.ascontiguousarray(bars[c], dtype=np.float64) for c in OHLCV]
    *result, grid = _aggregate_kernel(utc_ns, local_ns, width_ns, *columns)
    if grid < 0:
        raise ValueError("bars must be sorted by time before aggregation")
    # e.g. 5-minute bars cannot make 3-minute bars. A grid that is a multiple of the width
    # passes: few or sparse bars (one bar at 13:30 has a 13.5 h grid) are no evidence of a
    # coarse source.
    if grid > 0 and width_ns % grid and grid % width_ns:
        raise ValueError(
            f"cannot build {tf.name} bars from bars on a {grid / 1e9:g}s grid: "
            "the source must be finer than the target and divide it"
        )
    labels, *values = result
    index = pd.DatetimeIndex(labels, tz="UTC").tz_convert(index.tz).rename("time")
    return pd.DataFrame(dict(zip(OHLCV, values, strict=True)), index=index)


def with_macd(bars: pd.DataFrame, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """Return a copy of ``bars`` with ``MACD``, ``Signal`` and ``Hist`` computed on ``close``."""
    result = macd(bars["close"].to_numpy(np.float64), fast, slow, signal)
    out = bars.copy()
    out["MACD"], out["Signal"], out["Hist"] = result.macd, result.signal, result.hist
    return out


def bars_to_frame(bars: list[Bar], tz: str = EXCHANGE_TZ) -> pd.DataFrame:
    """Turn a list of :class:`Bar` into the canonical bars frame."""
    index = pd.DatetimeIndex([b.time for b in bars], name="time")
    index = index.tz_localize(tz) if index.tz is None else index.tz_convert(tz)
    return pd.DataFrame(
        {c: np.array([getattr(b, c) for b in bars], dtype=np.float64) for c in OHLCV},
        index=index.as_unit("ns"),
    )


class BarAggregator:
    """Streaming aggregator: feed trades or finer bars in time order, get each finished bar once.

    :meth:`add_trade` and :meth:`add_bar` return the bar that the new input finished (the input
    fell into a later bin), else None. :meth:`flush` finishes the open bar when the clock has
    passed its end, which is how a live feed closes a bar without waiting for the next trade.
    Times are epoch seconds (UTC). Input older than the open bar cannot change an already
    emitted bar; it is dropped and counted in :attr:`late`.
    """

    __slots__ = (
        "timeframe", "tz", "late", "_zone", "_width",
        "_start", "_end", "_floor", "_open", "_high", "_low", "_close", "_volume",
    )  # fmt: skip

    def __init__(self, timeframe: Timeframe | str, tz: str = EXCHANGE_TZ) -> None:
        self.timeframe = parse_timeframe(timeframe)
        self._width = _width(self.timeframe)
        self.tz = tz
        self._zone = ZoneInfo(tz)
        self.late = 0
        self._start = math.inf  # no open bar: every input takes the slow path
        self._end = -math.inf
        self._floor = -math.inf  # end of the last finished bar: nothing may land before it
        self._open = self._high = self._low = self._close = math.nan
        self._volume = 0.0

    @property
    def has_open_bar(self) -> bool:
        """True while a bar has input but is not finished yet."""
        return self._end != -math.inf

    @property
    def open_bar(self) -> Bar | None:
        """The bar being built (not finished), or None."""
        return self._make_bar() if self.has_open_bar else None

    def add_trade(self, time: float, price: float, size: float) -> Bar | None:
        """Add one trade at epoch seconds ``time``; return the bar it finished, if any."""
        if self._start <= time < self._end:  # hot path: same bin
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
            self._close = price
            self._volume += size
            return None
        return self._roll(time, price, price, price, price, size)

    def add_bar(
        self, time: float, open: float, high: float, low: float, close: float, volume: float
    ) -> Bar | None:
        """Add a finer bar (e.g. IB's 5-second bar) starting at epoch seconds ``time``."""
        if self._start <= time < self._end:
            if high > self._high:
                self._high = high
            if low < self._low:
                self._low = low
            self._close = close
            self._volume += volume
            return None
        return self._roll(time, open, high, low, close, volume)

    def flush(self, now: float | None = None) -> Bar | None:
        """Finish the open bar if ``now`` (epoch seconds) is at or past its end, or always if
        ``now`` is None; return it."""
        if not self.has_open_bar or (now is not None and now < self._end):
            return None
        bar = self._make_bar()
        self._floor = self._end
        self._start, self._end = math.inf, -math.inf
        return bar

    def _roll(self, time, open, high, low, close, volume) -> Bar | None:
        if time < (self._start if self.has_open_bar else self._floor):
            self.late += 1  # belongs to a bar already emitted or skipped: too late to count
            return None
        finished = None
        if self.has_open_bar:
            finished = self._make_bar()
            self._floor = self._end
        offset = self._zone.utcoffset(datetime.fromtimestamp(time, self._zone)).total_seconds()
        start = time - (time + offset) % self._width
        self._start, self._end = start, start + self._width
        self._open, self._high, self._low, self._close = open, high, low, close
        self._volume = volume
        return finished

    def _make_bar(self) -> Bar:
        return Bar(
            pd.Timestamp(self._start, unit="s", tz="UTC").tz_convert(self.tz),
            self._open, self._high, self._low, self._close, self._volume,
        )  # fmt: skip
