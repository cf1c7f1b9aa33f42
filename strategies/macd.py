"""MACD crossover: long when MACD crosses above Signal, short when it crosses below.

A cross at bar t means Hist[t] > 0 while the last non-zero Hist before t was < 0 (or the
reverse). The first position is taken at the first cross, not at the first bar where MACD
exists. ``MODE`` picks ``long_short`` (flip at every cross), ``long_only`` (flat on a down
cross) or ``short_only``.
"""

from __future__ import annotations

from quant_trading.indicators import MACD
from quant_trading.macd import check_periods
from quant_trading.signals import MODES, crosses, hold, limit_sides
from quant_trading.strategy import Parameter, Strategy


def indicators(params):
    """MACD, Signal and Hist for the configured periods."""
    return [MACD(params["FAST"], params["SLOW"], params["SIGNAL"])]


def positions(data, params):
    """The side of the latest MACD/Signal cross (0 before the first), limited by ``MODE``."""
    return limit_sides(hold(crosses(data["Hist"])), params["MODE"])


def validate(params):
    """Reject fast >= slow and other impossible periods."""
    check_periods(params["FAST"], params["SLOW"], params["SIGNAL"])


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
)
