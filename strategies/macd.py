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

from quant_trading.bars import with_macd
from quant_trading.macd import check_periods, macd
from quant_trading.strategy import Parameter, Strategy

MODES = ("long_short", "long_only", "short_only")


def crosses(hist: np.ndarray) -> np.ndarray:
    """+1 where Hist crosses above zero, -1 where it crosses below, else 0 (int8)."""
    sign = np.sign(np.nan_to_num(hist, nan=0.0)).astype(np.int8)
    # The last non-zero sign before each bar: zeros (and warm-up NaNs) do not end a trend.
    nonzero = np.flatnonzero(sign)
    last = np.zeros(len(sign), dtype=np.int8)
    if nonzero.size:
        carried = np.maximum.accumulate(np.where(sign != 0, np.arange(len(sign)), -1))
        last = np.where(carried >= 0, sign[np.maximum(carried, 0)], 0).astype(np.int8)
    before = np.r_[np.int8(0), last[:-1]]
    return np.where((sign != 0) & (before == -sign), sign, 0).astype(np.int8)


def positions(bars: pd.DataFrame, params: Mapping[str, Any]) -> np.ndarray:
    """Target position per bar (+1/0/-1, int8) from MACD crosses on ``bars['close']``."""
    hist = macd(
        bars["close"].to_numpy(np.float64), params["FAST"], params["SLOW"], params["SIGNAL"]
    ).hist
    return positions_from_crosses(crosses(hist), params["MODE"])


def positions_from_crosses(cross: np.ndarray, mode: str) -> np.ndarray:
    """Hold the side of the latest cross (0 before the first); apply the long/short mode."""
    at = np.flatnonzero(cross)
    held = np.zeros(len(cross), dtype=np.int8)
    if at.size:
        latest = np.maximum.accumulate(np.where(cross != 0, np.arange(len(cross)), -1))
        held = np.where(latest >= 0, cross[np.maximum(latest, 0)], 0).astype(np.int8)
    if mode == "long_only":
        return np.maximum(held, 0)
    if mode == "short_only":
        return np.minimum(held, 0)
    return held


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
