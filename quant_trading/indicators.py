"""Indicators a strategy declares: computed over a whole series (batch), updated one bar at a
time (streaming), and told how to be drawn.

Pure: no I/O. Each indicator is a small frozen dataclass (its settings are its identity, so
equal indicators can be computed once and shared) with

* :meth:`Indicator.compute`: arrays in (``open, high, low, close, volume``), one float array
  per output column out, NaN while warming up;
* :meth:`Indicator.stream`: a state whose ``update(bar)`` returns the same values for the
  newest bar, equal to the batch result to 1e-9 (the tests check every indicator);
* :attr:`Indicator.lines` and :attr:`Indicator.plot`: drawing hints that the backtest cache
  stores, so a chart draws them without importing the strategy.

Definitions follow TA-Lib (tests compare against it): SMA and EMA start at index
``period - 1`` (EMA seeded with the SMA), RSI is Wilder's from index ``period``, MACD is
:mod:`quant_trading.macd`, Highest/Lowest are TA-Lib's MAX/MIN over the last ``period`` bars.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from quant_trading.jit import njit

from .drawing import PRICE_PANEL, Drawing, Line, Plot, macd_drawing
from .macd import MacdLine, MacdState, check_periods, macd, macd_line, macd_of_line

__all__ = [
    "Line",
    "Plot",
    "Indicator",
    "IndicatorStream",
    "SMA",
    "EMA",
    "RSI",
    "MACD",
    "Highest",
    "Lowest",
    "PRICE_PANEL",
]

Source = Literal["open", "high", "low", "close", "volume"]


#: ``shared(key, make)``: the memo :meth:`Indicator.compute_shared` takes parts from.
Shared = Callable[[Hashable, Callable[[], Any]], Any]


class IndicatorStream(Protocol):
    """Streaming form of an indicator: one finished bar in, the values at it out."""

    def update(self, bar: Mapping[str, float]) -> tuple[float, ...]: ...


class Indicator:
    """Base class. Subclasses are frozen dataclasses that set :attr:`lines` and :attr:`plot`
    and implement :meth:`compute` and :meth:`stream`."""

    lines: tuple[Line, ...]
    plot: Plot

    @property
    def drawing(self) -> Drawing:
        """Plot hints and lines together (what the cache stores)."""
        return Drawing(self.plot, self.lines)

    @property
    def warmup(self) -> int:
        """Bars needed before every column has a value (the first value is at this many
        bars, counting from 1)."""
        raise NotImplementedError

    @property
    def columns(self) -> tuple[str, ...]:
        """Output column names, in the order :meth:`compute` and ``update`` give them."""
        return tuple(line.column for line in self.lines)

    def compute(self, data: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Batch values over whole arrays: one float array per column."""
        raise NotImplementedError

    def compute_shared(
        self, data: Mapping[str, np.ndarray], shared: Shared
    ) -> dict[str, np.ndarray]:
        """:meth:`compute`, taking the parts other indicators may share from ``shared``
        (a memo over the same bars: ``shared(key, make)`` returns ``make()``, computed once
        per key). A parameter search passes one, so e.g. every MACD with the same fast and
        slow periods reuses one MACD line. By default the whole indicator is the part."""
        return shared(self, lambda: self.compute(data))

    def stream(self) -> IndicatorStream:
        """A fresh streaming state (no bars seen yet)."""
        raise NotImplementedError


def _check_period(kind: str, period: int, least: int = 1) -> None:
    if not isinstance(period, int | np.integer) or period < least:
        raise ValueError(f"{kind} period must be an integer >= {least}, got {period!r}")


def _source(data: Mapping[str, np.ndarray], source: str) -> np.ndarray:
    return np.ascontiguousarray(data[source], dtype=np.float64)


@dataclass(frozen=True)
class _OneLine(Indicator):
    """An indicator of one column over one source series and a period: subclasses name their
    compiled batch ``_kernel(x, period, out)``, streaming ``_stream_type(period, source)``
    and legend ``_label``."""

    period: int
    name: str = ""
    source: Source = "close"
    color: str | None = None

    _label: ClassVar[str]
    _kernel: ClassVar[Callable]
    _stream_type: ClassVar[Callable[[int, str], IndicatorStream]]
    plot = Plot()

    def __post_init__(self) -> None:
        _check_period(type(self).__name__, self.period)

    @property
    def warmup(self) -> int:
        return self.period

    @property
    def lines(self) -> tuple[Line, ...]:
        label = self._label.format(period=self.period, source=self.source)
        return (Line(self.name, label, color=self.color),)

    def compute(self, data):
        x = _source(data, self.source)
        out = np.empty(len(x))
        type(self)._kernel(x, int(self.period), out)
        return {self.name: out}

    def stream(self):
        return type(self)._stream_type(int(self.period), self.source)


# -- simple moving average -----------------------------------------------------------------


@njit(cache=True, nogil=True)
def _sma_kernel(x, period, out):  # pragma: no cover - compiled
    # TA-Lib's running total: add the newest, divide, then drop the oldest. The streaming
    # state does the same operations in the same order, so both give identical bits.
    total = 0.0
    for i in range(len(x)):
        total += x[i]
        if i < period - 1:
            out[i] = np.nan
            continue
        out[i] = total / period
        total -= x[i - period + 1]


class _SmaStream:
    __slots__ = ("period", "source", "_window", "_total")

    def __init__(self, period: int, source: str) -> None:
        self.period, self.source = period, source
        self._window: deque[float] = deque()
        self._total = 0.0

    def update(self, bar: Mapping[str, float]) -> tuple[float, ...]:
        x = float(bar[self.source])
        self._total += x
        self._window.append(x)
        if len(self._window) < self.period:
            return (math.nan,)
        value = self._total / self.period
        self._total -= self._window.popleft()
        return (value,)


@dataclass(frozen=True)
class SMA(_OneLine):
    """Simple moving average of ``source`` over ``period`` bars, in column ``name``."""

    name: str = "SMA"
    _label = "SMA({period})"
    _kernel = _sma_kernel
    _stream_type = _SmaStream


# -- exponential moving average ------------------------------------------------------------


@njit(cache=True, nogil=True)
def _ema_kernel(x, period, out):  # pragma: no cover - compiled
    k = 2.0 / (period + 1)
    total = 0.0
    ema = 0.0
    for i in range(len(x)):
        if i < period - 1:
            total += x[i]
            out[i] = np.nan
        elif i == period - 1:
            total += x[i]
            ema = total / period
            out[i] = ema
        else:
            ema += k * (x[i] - ema)
            out[i] = ema


class _EmaStream:
    __slots__ = ("period", "source", "_k", "_count", "_total", "_ema")

    def __init__(self, period: int, source: str) -> None:
        self.period, self.source = period, source
        self._k = 2.0 / (period + 1)
        self._count = 0
        self._total = 0.0
        self._ema = math.nan

    def update(self, bar: Mapping[str, float]) -> tuple[float, ...]:
        x = float(bar[self.source])
        self._count += 1
        if self._count <= self.period:
            self._total += x
            if self._count < self.period:
                return (math.nan,)
            self._ema = self._total / self.period
        else:
            self._ema += self._k * (x - self._ema)
        return (self._ema,)


@dataclass(frozen=True)
class EMA(_OneLine):
    """Exponential moving average (k = 2 / (period + 1), seeded with the SMA of the first
    ``period`` values, as TA-Lib) of ``source``, in column ``name``."""

    name: str = "EMA"
    _label = "EMA({period})"
    _kernel = _ema_kernel
    _stream_type = _EmaStream


# -- relative strength index ---------------------------------------------------------------


@njit(cache=True, nogil=True)
def _rsi_kernel(x, period, out):  # pragma: no cover - compiled
    # Wilder's smoothing as TA-Lib computes it (unstable period 0): the first averages are
    # plain means of the first `period` gains and losses; the first value is at `period`.
    # No move at all gives 0, as the current TA-Lib C library (0.8) does; 0.4 also zeroed
    # sums below 1e-14, which turned a long flat stretch after a rise from 100 into 0.
    n = len(x)
    gain = 0.0
    loss = 0.0
    for i in range(min(n, period + 1)):
        out[i] = np.nan
    if n <= period:
        return
    for i in range(1, period + 1):
        d = x[i] - x[i - 1]
        if d < 0:
            loss -= d
        else:
            gain += d
    gain /= period
    loss /= period
    total = gain + loss
    out[period] = 100.0 * (gain / total) if total != 0.0 else 0.0
    for i in range(period + 1, n):
        d = x[i] - x[i - 1]
        loss *= period - 1
        gain *= period - 1
        if d < 0:
            loss -= d
        else:
            gain += d
        loss /= period
        gain /= period
        total = loss + gain
        out[i] = 100.0 * (gain / total) if total != 0.0 else 0.0


class _RsiStream:
    __slots__ = ("period", "source", "_count", "_prev", "_gain", "_loss")

    def __init__(self, period: int, source: str) -> None:
        self.period, self.source = period, source
        self._count = 0
        self._prev = math.nan
        self._gain = self._loss = 0.0

    def update(self, bar: Mapping[str, float]) -> tuple[float, ...]:
        x = float(bar[self.source])
        self._count += 1
        prev, self._prev = self._prev, x
        if self._count == 1:
            return (math.nan,)
        d = x - prev
        p = self.period
        if self._count <= p + 1:  # the first `period` moves: plain sums, then means
            if d < 0:
                self._loss -= d
            else:
                self._gain += d
            if self._count < p + 1:
                return (math.nan,)
            self._gain /= p
            self._loss /= p
            total = self._gain + self._loss
        else:
            self._loss *= p - 1
            self._gain *= p - 1
            if d < 0:
                self._loss -= d
            else:
                self._gain += d
            self._loss /= p
            self._gain /= p
            total = self._loss + self._gain
        return (100.0 * (self._gain / total) if total != 0.0 else 0.0,)


@dataclass(frozen=True)
class RSI(_OneLine):
    """Wilder's relative strength index (0..100) of ``source`` over ``period`` bars, drawn in
    its own panel with reference ``levels`` (e.g. the strategy's 30/70)."""

    period: int = 14
    name: str = "RSI"
    color: str | None = "#7048e8"
    levels: tuple[float, ...] = (30.0, 70.0)
    _label = "RSI({period})"
    _kernel = _rsi_kernel
    _stream_type = _RsiStream

    @property
    def warmup(self) -> int:
        return self.period + 1  # the first move needs two closes

    @property
    def plot(self) -> Plot:
        return Plot(panel=self.name, levels=tuple(float(v) for v in self.levels), limits=(0, 100))


# -- MACD ----------------------------------------------------------------------------------


class _MacdStream:
    __slots__ = ("_state", "source")

    def __init__(self, fast: int, slow: int, signal: int, source: str) -> None:
        self._state = MacdState(fast, slow, signal)
        self.source = source

    def update(self, bar: Mapping[str, float]) -> tuple[float, ...]:
        point = self._state.update(bar[self.source])
        return (point.macd, point.signal, point.hist)


@dataclass(frozen=True)
class MACD(Indicator):
    """MACD, Signal and Hist by TA-Lib's definition (:mod:`quant_trading.macd`), in a panel
    of their own with a zero line; Hist is drawn as a histogram."""

    fast: int = 12
    slow: int = 26
    signal: int = 9
    names: tuple[str, str, str] = ("MACD", "Signal", "Hist")
    source: Source = "close"

    def __post_init__(self) -> None:
        check_periods(self.fast, self.slow, self.signal)

    @property
    def lines(self) -> tuple[Line, ...]:
        return macd_drawing(self.names).lines

    @property
    def plot(self) -> Plot:
        return macd_drawing(self.names).plot

    @property
    def warmup(self) -> int:
        return self.slow + self.signal - 1  # Signal and Hist start at index slow + signal - 2

    def compute(self, data):
        result = macd(_source(data, self.source), self.fast, self.slow, self.signal)
        return dict(zip(self.names, (result.macd, result.signal, result.hist), strict=True))

    def line(self, data: Mapping[str, np.ndarray], shared: Shared) -> MacdLine:
        """The MACD line alone from ``shared`` (computed once per fast and slow period)."""
        key = ("MACD line", self.source, self.fast, self.slow)
        return shared(key, lambda: macd_line(_source(data, self.source), self.fast, self.slow))

    def compute_shared(self, data, shared):
        # The line depends on fast and slow only: a search over the signal period computes
        # it once. macd() is the same two steps, so the values are the same to the bit.
        result = macd_of_line(self.line(data, shared), self.signal)
        return dict(zip(self.names, (result.macd, result.signal, result.hist), strict=True))

    def stream(self):
        return _MacdStream(self.fast, self.slow, self.signal, self.source)


# -- highest / lowest ----------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _extreme_kernel(x, period, highest, out):  # pragma: no cover - compiled
    # Monotonic deque of indices: each value enters and leaves once, O(n) for any period.
    n = len(x)
    queue = np.empty(n, np.int64)
    head = 0
    tail = 0
    for i in range(n):
        v = x[i]
        while tail > head and ((x[queue[tail - 1]] <= v) if highest else (x[queue[tail - 1]] >= v)):
            tail -= 1
        queue[tail] = i
        tail += 1
        if queue[head] <= i - period:
            head += 1
        out[i] = x[queue[head]] if i >= period - 1 else np.nan


@njit(cache=True, nogil=True)
def _highest_kernel(x, period, out):  # pragma: no cover - compiled
    _extreme_kernel(x, period, True, out)


@njit(cache=True, nogil=True)
def _lowest_kernel(x, period, out):  # pragma: no cover - compiled
    _extreme_kernel(x, period, False, out)


class _ExtremeStream:
    __slots__ = ("period", "source", "_pick", "_window")

    def __init__(self, period: int, source: str, highest: bool) -> None:
        self.period, self.source = period, source
        self._pick = max if highest else min
        self._window: deque[float] = deque(maxlen=period)

    def update(self, bar: Mapping[str, float]) -> tuple[float, ...]:
        self._window.append(float(bar[self.source]))
        if len(self._window) < self.period:
            return (math.nan,)
        return (self._pick(self._window),)


@dataclass(frozen=True)
class Highest(_OneLine):
    """Highest ``source`` of the last ``period`` bars, this one included (TA-Lib MAX); with
    :class:`Lowest` the Donchian channel."""

    name: str = "highest"
    source: Source = "high"
    color: str | None = "#2b8a3e"
    _label = "highest {source}({period})"
    _kernel = _highest_kernel
    _stream_type = partial(_ExtremeStream, highest=True)


@dataclass(frozen=True)
class Lowest(_OneLine):
    """Lowest ``source`` of the last ``period`` bars, this one included (TA-Lib MIN)."""

    name: str = "lowest"
    source: Source = "low"
    color: str | None = "#c92a2a"
    _label = "lowest {source}({period})"
    _kernel = _lowest_kernel
    _stream_type = partial(_ExtremeStream, highest=False)
