"""MACD crossover: long when MACD crosses above Signal, short when it crosses below.

A cross at bar t means Hist[t] > 0 while the last non-zero Hist before t was < 0 (or the
reverse). The first position is taken at the first cross, not at the first bar where MACD
exists. ``MODE`` picks ``long_short`` (flip at every cross), ``long_only`` (flat on a down
cross) or ``short_only``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from quant_trading.bars import with_macd
from quant_trading.macd import check_periods, macd
from quant_trading.strategy import Parameter, Strategy

MODES = ("long_short", "long_only", "short_only")


_MODE_CODES = {mode: i for i, mode in enumerate(MODES)}


@njit(cache=True, nogil=True)
def _cross_kernel(hist, mode, cross, held):  # pragma: no cover - compiled
    # One pass: the sign of the last non-zero Hist (zeros and warm-up NaNs do not end a
    # trend), a cross where the sign flips, and the side held since the latest cross.
    last = 0
    side = 0
    for i in range(len(hist)):
        h = hist[i]
        sign = 1 if h > 0 else (-1 if h < 0 else 0)  # NaN compares false: no sign
        c = 0
        if sign != 0:
            if last == -sign:
                c = sign
                side = sign
            last = sign
        cross[i] = c
        if mode == 1:
            held[i] = side if side > 0 else 0
        elif mode == 2:
            held[i] = side if side < 0 else 0
        else:
            held[i] = side


def crosses(hist: np.ndarray) -> np.ndarray:
    """+1 where Hist crosses above zero, -1 where it crosses below, else 0 (int8)."""
    return signals(hist)[0]


def positions(bars: pd.DataFrame, params: Mapping[str, Any]) -> np.ndarray:
    """Target position per bar (+1/0/-1, int8) from MACD crosses on ``bars['close']``:
    the side of the latest cross (0 before the first), limited by ``MODE``."""
    close = bars["close"].to_numpy(np.float64)
    hist = macd(close, params["FAST"], params["SLOW"], params["SIGNAL"]).hist
    return signals(hist, params["MODE"])[1]


def signals(hist: np.ndarray, mode: str = "long_short") -> tuple[np.ndarray, np.ndarray]:
    """(cross, held) per bar from a MACD histogram: crosses as :func:`crosses`, and the
    position held since the latest cross under ``mode`` (both int8)."""
    values = np.ascontiguousarray(hist, dtype=np.float64)
    cross = np.empty(len(values), np.int8)
    held = np.empty(len(values), np.int8)
    _cross_kernel(values, _MODE_CODES[mode], cross, held)
    return cross, held


def indicators(bars: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """``bars`` with MACD, Signal and Hist for the configured periods."""
    return with_macd(bars, params["FAST"], params["SLOW"], params["SIGNAL"])


def validate(params: Mapping[str, Any]) -> None:
    """Reject fast >= slow and other impossible periods."""
    check_periods(params["FAST"], params["SLOW"], params["SIGNAL"])


STRATEGY = Strategy(
    name="MACD",
    description="MACD/Signal crossover (TA-Lib MACD definition)",
    parameters=(
        Parameter("FAST", 12, int, help="fast EMA period"),
        Parameter("SLOW", 26, int, help="slow EMA period"),
        Parameter("SIGNAL", 9, int, help="signal EMA period"),
        Parameter("MODE", "long_short", str, choices=MODES, help="which sides to trade"),
    ),
    default_symbols=("AAPL", "MSFT", "SPY"),
    default_timeframe="5m",
    positions=positions,
    indicators=indicators,
    validate=validate,
)
