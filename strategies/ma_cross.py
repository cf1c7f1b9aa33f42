"""Moving-average cross: long when the fast average crosses above the slow one, short when
it crosses below.

``MA`` picks simple (``sma``) or exponential (``ema``, seeded with the SMA as TA-Lib does)
averages of the close over ``FAST`` and ``SLOW`` bars. A cross at bar t means fast[t] > slow[t]
while at the last bar before t where they differed fast was below slow (or the reverse), so
touching without crossing is no cross. The first position is taken at the first cross, not at
the first bar where both averages exist. ``MODE`` picks ``long_short`` (flip at every cross),
``long_only`` (flat on a down cross) or ``short_only`` (flat on an up cross).
"""

from __future__ import annotations

from quant_trading.indicators import EMA, SMA
from quant_trading.signals import MODES, crosses, hold, limit_sides
from quant_trading.strategy import Parameter, Strategy

_AVERAGES = {"sma": SMA, "ema": EMA}
FAST_COLOR = "#f08c00"  # orange
SLOW_COLOR = "#1c7ed6"  # blue


def indicators(params):
    """The fast and slow averages of the close, drawn over the candles."""
    average = _AVERAGES[params["MA"]]
    return [
        average(params["FAST"], name="fast", color=FAST_COLOR),
        average(params["SLOW"], name="slow", color=SLOW_COLOR),
    ]


def positions(data, params):
    """The side of the latest fast/slow cross (0 before the first), limited by ``MODE``."""
    return limit_sides(hold(crosses(data["fast"], data["slow"])), params["MODE"])


def validate(params):
    """Reject a fast average that is not shorter than the slow one."""
    if params["FAST"] >= params["SLOW"]:
        raise ValueError(
            f"MA_CROSS fast period ({params['FAST']}) must be shorter than "
            f"slow period ({params['SLOW']})"
        )


STRATEGY = Strategy(
    name="MA_CROSS",
    description="Fast/slow moving-average crossover (SMA or EMA, TA-Lib definitions)",
    parameters=(
        Parameter("FAST", 10, int, help="fast average period in bars", bounds=(1, 500)),
        Parameter("SLOW", 30, int, help="slow average period in bars", bounds=(2, 1000)),
        Parameter("MA", "sma", str, choices=tuple(_AVERAGES), help="sma or ema"),
        Parameter("MODE", "long_short", str, choices=MODES, help="which sides to trade"),
    ),
    indicators=indicators,
    positions=positions,
    default_symbols=("AAPL", "MSFT", "SPY"),
    default_timeframe="5m",
    timeframes=None,
    validate=validate,
    signal_text=("fast MA crossed above slow MA", "fast MA crossed below slow MA"),
)
