"""RSI mean reversion: long when oversold, short when overbought, hold in between.

At each bar's close, with Wilder's RSI over ``PERIOD`` bars (TA-Lib's definition, first value
at bar ``PERIOD``):

* RSI < ``LOWER`` (oversold): the target is long;
* RSI > ``UPPER`` (overbought): the target is short;
* otherwise the target stays what it was (flat before the first oversold/overbought bar).

Both comparisons are strict: RSI exactly at a level changes nothing. ``MODE`` limits the sides:
``long_only`` goes flat instead of short when overbought, ``short_only`` flat instead of long
when oversold. The chart draws the RSI panel with the strategy's own ``LOWER``/``UPPER`` levels.
"""

from __future__ import annotations

import numpy as np

from quant_trading.indicators import RSI
from quant_trading.signals import MODES, hold, limit_sides
from quant_trading.strategy import Parameter, Strategy


def indicators(params):
    """RSI of the close, in its own panel with the LOWER and UPPER levels."""
    return [RSI(params["PERIOD"], levels=(params["LOWER"], params["UPPER"]))]


def positions(data, params):
    """Long after an oversold bar, short after an overbought one, limited by ``MODE``."""
    rsi = data["RSI"]
    # NaN (warm-up) compares false on both sides: no event.
    events = np.where(rsi < params["LOWER"], 1, np.where(rsi > params["UPPER"], -1, 0))
    return limit_sides(hold(events), params["MODE"])


def validate(params):
    """Reject levels that leave no neutral zone."""
    if params["LOWER"] >= params["UPPER"]:
        raise ValueError(
            f"RSI lower level ({params['LOWER']:g}) must be below upper level ({params['UPPER']:g})"
        )


STRATEGY = Strategy(
    name="RSI",
    description="RSI mean reversion: long below LOWER, short above UPPER (Wilder's RSI)",
    parameters=(
        Parameter("PERIOD", 14, int, help="RSI period in bars", bounds=(2, 500)),
        Parameter("LOWER", 30.0, float, help="oversold level: long below it", bounds=(0, 100)),
        Parameter("UPPER", 70.0, float, help="overbought level: short above it", bounds=(0, 100)),
        Parameter("MODE", "long_short", str, choices=MODES, help="which sides to trade"),
    ),
    indicators=indicators,
    positions=positions,
    default_symbols=("AAPL", "MSFT", "SPY"),
    default_timeframe="5m",
    timeframes=None,
    validate=validate,
    signal_text=("RSI below LOWER (oversold)", "RSI above UPPER (overbought)"),
)
