"""MACD crossover: long when MACD crosses above Signal, short when it crosses below.

A cross at bar t means Hist[t] > 0 while the last non-zero Hist before t was < 0 (or the
reverse). The first position is taken at the first cross, not at the first bar where MACD
exists. ``MODE`` picks ``long_short`` (flip at every cross), ``long_only`` (flat on a down
cross) or ``short_only``.

``positions`` is the rule; :data:`COMPILED` is the same rule for a parameter search, many
signal periods over one MACD line in one compiled pass (tests/test_optimize_fast.py proves
the two equal on real bars).
"""

from __future__ import annotations

import numpy as np

from quant_trading.indicators import MACD
from quant_trading.jit import njit
from quant_trading.macd import check_periods
from quant_trading.signals import MODES, crosses, hold, limit_sides
from quant_trading.strategy import CompiledRule, Parameter, Strategy


def indicators(params):
    """MACD, Signal and Hist for the configured periods."""
    return [MACD(params["FAST"], params["SLOW"], params["SIGNAL"])]


def positions(data, params):
    """The side of the latest MACD/Signal cross (0 before the first), limited by ``MODE``."""
    return limit_sides(hold(crosses(data["Hist"])), params["MODE"])


def validate(params):
    """Reject fast >= slow and other impossible periods."""
    check_periods(params["FAST"], params["SLOW"], params["SIGNAL"])


@njit(cache=True, nogil=True)
def _step(value, ema, last, side, mode):  # pragma: no cover - compiled
    # One bar of positions(): Hist = MACD - Signal, its cross, the side held, the mode's limit.
    hist = value - ema
    sign = 1 if hist > 0 else (-1 if hist < 0 else 0)  # NaN: no sign
    if sign != 0:
        if last == -sign:
            side = sign
        last = sign
    if mode == 1:
        return last, side, max(side, 0)
    if mode == 2:
        return last, side, min(side, 0)
    return last, side, side


@njit(cache=True, nogil=True)
def _cross_positions(line, start, signals, modes, out):  # pragma: no cover - compiled
    # Row r of out: positions() for Signal period signals[r] and MODES[modes[r]] over the
    # MACD line (first value at start). Each Signal is macd_of_line's EMA, the same
    # arithmetic in the same order; the periods step through the bars together, so their
    # EMAs (each waiting on its previous value) overlap in the processor.
    n, k = len(line), len(signals)
    ema, gain = np.empty(k), np.empty(k)
    last, side = np.zeros(k, np.int64), np.zeros(k, np.int64)
    together = start + signals.max() - 1
    for r in range(k):  # each period alone up to the last one's first Signal
        first = start + signals[r] - 1
        out[r, : min(first, n)] = 0
        if first >= n:
            continue
        seed = line[start]
        for i in range(start + 1, first + 1):
            seed += line[i]
        ema[r] = seed / signals[r]
        gain[r] = 2.0 / (signals[r] + 1)
        for i in range(first, min(together, n)):
            if i > first:
                ema[r] += gain[r] * (line[i] - ema[r])
            last[r], side[r], out[r, i] = _step(line[i], ema[r], last[r], side[r], modes[r])
    for i in range(together, n):
        value = line[i]
        for r in range(k):
            if i > start + signals[r] - 1:
                ema[r] += gain[r] * (value - ema[r])
            last[r], side[r], out[r, i] = _step(value, ema[r], last[r], side[r], modes[r])


def _group(params):
    return params["FAST"], params["SLOW"]


def _compiled_positions(data, shared, combos, out):
    """positions() of each of ``combos`` (one fast and slow period) into the rows of ``out``."""
    first = combos[0]
    line = MACD(first["FAST"], first["SLOW"]).line(data, shared)
    signals = np.array([c["SIGNAL"] for c in combos], np.int64)
    modes = np.array([MODES.index(c["MODE"]) for c in combos], np.int64)
    if line.start >= len(line.values):
        out[:] = 0
    else:
        _cross_positions(line.values, line.start, signals, modes, out)


COMPILED = CompiledRule(group=_group, positions=_compiled_positions)

STRATEGY = Strategy(
    name="MACD",
    description="MACD/Signal crossover (TA-Lib MACD definition)",
    parameters=(
        Parameter("FAST", 12, int, help="fast EMA period", bounds=(1, 200)),
        Parameter("SLOW", 26, int, help="slow EMA period", bounds=(2, 400)),
        Parameter("SIGNAL", 9, int, help="signal EMA period", bounds=(1, 200)),
        Parameter("MODE", "long_short", str, choices=MODES, help="which sides to trade"),
    ),
    indicators=indicators,
    positions=positions,
    default_symbols=("AAPL", "MSFT", "SPY"),
    default_timeframe="5m",
    validate=validate,
    signal_text=("MACD crossed above Signal", "MACD crossed below Signal"),
    compiled=COMPILED,
)
