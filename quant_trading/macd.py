"""MACD(fast, slow, signal) by TA-Lib's definition, batch and incremental.

Pure: no I/O. The live tracker feeds :class:`MacdState` one close at a time; the backtest calls
:func:`macd` on a whole series. Both give the same numbers (to 1e-9), so a strategy sees the
same values live and in a backtest.

TA-Lib's definition, which this module follows exactly (and which pandas ``ewm`` and several
libraries do not: they differ by up to ~1e-3 over the first few hundred bars):

* both EMAs start at index ``slow - 1``; the slow one is seeded with the mean of closes
  ``0 .. slow-1``, the fast one with the mean of its last ``fast`` closes
  ``slow-fast .. slow-1``; after that ``ema += k * (close - ema)`` with ``k = 2 / (period + 1)``;
* MACD = fast EMA - slow EMA, defined from index ``slow - 1``;
* the signal EMA over MACD is seeded with the mean of the first ``signal`` MACD values, so
  Signal and Hist (MACD - Signal) start at index ``slow + signal - 2`` (33 for 12/26/9).

Before those indices the values are NaN. (TA-Lib itself also blanks MACD before index 33; here
the MACD line is kept from index 25, where it is already fully defined.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quant_trading.jit import njit

__all__ = [
    "MacdLine",
    "MacdResult",
    "MacdPoint",
    "MacdState",
    "macd",
    "macd_line",
    "macd_of_line",
    "check_periods",
]


@dataclass(frozen=True, slots=True)
class MacdResult:
    """Batch result: three float arrays as long as the input, NaN where not yet defined."""

    macd: np.ndarray
    signal: np.ndarray
    hist: np.ndarray


@dataclass(frozen=True, slots=True)
class MacdPoint:
    """One incremental result; fields are NaN until defined."""

    macd: float
    signal: float
    hist: float


def check_periods(fast: int, slow: int, signal: int) -> None:
    """Raise ValueError unless 1 <= fast < slow and signal >= 1 (all integers)."""
    for name, value in (("fast", fast), ("slow", slow), ("signal", signal)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"MACD {name} period must be a positive integer, got {value!r}")
    if fast >= slow:
        raise ValueError(f"MACD fast period ({fast}) must be shorter than slow period ({slow})")


@njit(cache=True, nogil=True)
def _line_kernel(x, fast, slow, line):  # pragma: no cover - compiled
    # The EMA recurrences are sequential, so numpy cannot vectorize them; in machine code
    # both EMAs in one pass stay within a small factor of TA-Lib.
    n = len(x)
    start = slow - 1
    for i in range(min(n, start)):
        line[i] = np.nan
    if n <= start:
        return
    total = 0.0
    for i in range(slow):
        total += x[i]
    slow_ema = total / slow
    total = 0.0
    for i in range(slow - fast, slow):
        total += x[i]
    fast_ema = total / fast
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    line[start] = fast_ema - slow_ema
    for i in range(start + 1, n):
        fast_ema += kf * (x[i] - fast_ema)
        slow_ema += ks * (x[i] - slow_ema)
        line[i] = fast_ema - slow_ema


@njit(cache=True, nogil=True)
def _signal_kernel(line, start, signal, sig, hist):  # pragma: no cover - compiled
    # The signal EMA of the line from ``start`` (its first value), seeded with the mean of
    # its first ``signal`` values.
    n = len(line)
    sig_start = start + signal - 1
    for i in range(min(n, sig_start)):
        sig[i] = np.nan
        hist[i] = np.nan
    if n <= sig_start:
        return
    seed = line[start]
    for i in range(start + 1, sig_start + 1):
        seed += line[i]
    sig_ema = seed / signal
    sig[sig_start] = sig_ema
    hist[sig_start] = line[sig_start] - sig_ema
    kg = 2.0 / (signal + 1)
    for i in range(sig_start + 1, n):
        value = line[i]
        sig_ema += kg * (value - sig_ema)
        sig[i] = sig_ema
        hist[i] = value - sig_ema


@dataclass(frozen=True, slots=True)
class MacdLine:
    """The MACD line alone (fast EMA - slow EMA) and the index of its first value: the part
    of MACD that does not depend on the signal period, so a parameter search computes it
    once for every signal period."""

    values: np.ndarray
    start: int

    @property
    def nbytes(self) -> int:
        return self.values.nbytes


def macd_line(close, fast: int = 12, slow: int = 26) -> MacdLine:
    """The MACD line of ``close`` by TA-Lib's definition (see :func:`macd`)."""
    check_periods(fast, slow, 1)
    x = np.ascontiguousarray(close, dtype=np.float64)
    n = len(x)
    line = np.empty(n)
    # Like TA-Lib, leading NaNs (e.g. a series padded at its start) are skipped: the warm-up
    # counts from the first real close.
    first = 0 if n == 0 or not np.isnan(x[0]) else int(np.argmax(~np.isnan(x))) or n
    line[:first] = np.nan
    _line_kernel(x[first:], int(fast), int(slow), line[first:])
    return MacdLine(line, first + int(slow) - 1)


def macd_of_line(line: MacdLine, signal: int = 9) -> MacdResult:
    """MACD, Signal and Hist from a :func:`macd_line` (the line array is shared, not
    copied)."""
    values = line.values
    sig, hist = np.empty(len(values)), np.empty(len(values))
    if line.start >= len(values):
        sig[:] = hist[:] = np.nan
    else:
        _signal_kernel(values, line.start, int(signal), sig, hist)
    return MacdResult(values, sig, hist)


def macd(close, fast: int = 12, slow: int = 26, signal: int = 9) -> MacdResult:
    """MACD, Signal and Hist of ``close`` (array-like or pandas Series) by TA-Lib's definition.

    Returns float arrays of the input's length; NaN before index ``slow-1`` (MACD) and
    ``slow+signal-2`` (Signal, Hist).
    """
    check_periods(fast, slow, signal)
    return macd_of_line(macd_line(close, fast, slow), signal)


class MacdState:
    """Incremental MACD: :meth:`update` takes one close and returns the values at that bar.

    Same definition and same numbers as :func:`macd` on the series seen so far.
    """

    __slots__ = (
        "fast", "slow", "signal", "_kf", "_ks", "_kg", "_count",
        "_closes", "_fast_ema", "_slow_ema", "_macds", "_signal_ema",
    )  # fmt: skip

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        check_periods(fast, slow, signal)
        self.fast, self.slow, self.signal = fast, slow, signal
        self._kf = 2.0 / (fast + 1)
        self._ks = 2.0 / (slow + 1)
        self._kg = 2.0 / (signal + 1)
        self._count = 0
        self._closes: list[float] = []  # only the first `slow` closes, for the seeds
        self._macds: list[float] = []  # only the first `signal` MACD values, for the seed
        self._fast_ema = math.nan
        self._slow_ema = math.nan
        self._signal_ema = math.nan

    @property
    def count(self) -> int:
        """Number of closes seen."""
        return self._count

    def update(self, close: float) -> MacdPoint:
        """Add the next close; return MACD, Signal and Hist at it (NaN while warming up)."""
        close = float(close)
        self._count += 1
        if self._count < self.slow:
            self._closes.append(close)
            return MacdPoint(math.nan, math.nan, math.nan)
        if self._count == self.slow:
            self._closes.append(close)
            seeds = np.asarray(self._closes)
            self._slow_ema = float(seeds.mean())
            self._fast_ema = float(seeds[self.slow - self.fast :].mean())
            self._closes = []
        else:
            self._fast_ema += self._kf * (close - self._fast_ema)
            self._slow_ema += self._ks * (close - self._slow_ema)
        line = self._fast_ema - self._slow_ema
        if len(self._macds) < self.signal:
            self._macds.append(line)
            if len(self._macds) < self.signal:
                return MacdPoint(line, math.nan, math.nan)
            self._signal_ema = float(np.asarray(self._macds).mean())
        else:
            self._signal_ema += self._kg * (line - self._signal_ema)
        return MacdPoint(line, self._signal_ema, line - self._signal_ema)
