"""Live bars for one symbol on several timeframes: history first, then 5-second bars.

Pure (no I/O, no ibapi): the market data tracker feeds it and prints what comes out. Each
timeframe keeps its finished bars and an incremental MACD over them, so the numbers equal
:func:`quant_trading.macd.macd` over the same bars, i.e. what the backtest computes.

A live bar is trusted only if the 5-second feed covered it from its first second. The first
bar after subscribing (or after a reconnect) usually is not: its start happened before the
feed. :meth:`LiveBars.add_realtime_bar` then reports that history is needed up to that bar,
and the caller fetches it and hands it to :meth:`LiveBars.add_history`, so no bar is lost,
doubled, or built from half its trades.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ..bars import OHLCV, Bar, BarAggregator
from ..macd import MacdPoint, MacdState
from ..timeframes import parse_timeframe

__all__ = ["FinishedBar", "LiveBars", "TimeframeBars"]


@dataclass(frozen=True)
class FinishedBar:
    """A bar ready to show: its MACD values and whether MACD crossed Signal on it."""

    symbol: str
    timeframe: str
    bar: Bar
    macd: MacdPoint
    cross: int  # +1 crossed above Signal, -1 below, 0 none
    source: str  # "history" or "live"


@dataclass
class TimeframeBars:
    """One timeframe's finished bars and MACD state."""

    timeframe: str
    fast: int = 12
    slow: int = 26
    signal: int = 9
    bars: list[Bar] = field(default_factory=list)
    points: list[MacdPoint] = field(default_factory=list)
    aggregator: BarAggregator = field(init=False)
    _macd: MacdState = field(init=False)
    _last_sign: int = 0  # sign of the last non-zero Hist, for the cross rule

    def __post_init__(self) -> None:
        self.aggregator = BarAggregator(self.timeframe)
        self._macd = MacdState(self.fast, self.slow, self.signal)

    @property
    def last_time(self) -> pd.Timestamp | None:
        """Start time of the newest finished bar."""
        return self.bars[-1].time if self.bars else None

    @property
    def seconds(self) -> int:
        """Bar length in seconds."""
        return parse_timeframe(self.timeframe).seconds

    def append(self, bar: Bar) -> tuple[MacdPoint, int] | None:
        """Add a finished bar unless it is not newer than the last one; returns its MACD
        point and cross (same rule as the MACD strategy), or None if it was a duplicate."""
        if self.bars and bar.time <= self.bars[-1].time:
            return None
        point = self._macd.update(bar.close)
        self.bars.append(bar)
        self.points.append(point)
        sign = (
            0 if math.isnan(point.hist) else (1 if point.hist > 0 else -1 if point.hist < 0 else 0)
        )
        cross = sign if sign != 0 and self._last_sign == -sign else 0
        if sign != 0:
            self._last_sign = sign
        return point, cross

    def frame(self) -> pd.DataFrame:
        """The finished bars with MACD, Signal and Hist, as the canonical bars frame."""
        index = pd.DatetimeIndex([b.time for b in self.bars], name="time")
        frame = pd.DataFrame({c: [getattr(b, c) for b in self.bars] for c in OHLCV}, index=index)
        frame["MACD"] = [p.macd for p in self.points]
        frame["Signal"] = [p.signal for p in self.points]
        frame["Hist"] = [p.hist for p in self.points]
        return frame.astype(float)


class LiveBars:
    """All timeframes of one symbol."""

    def __init__(self, symbol: str, timeframes: list[str], fast=12, slow=26, signal=9) -> None:
        self.symbol = symbol
        self.timeframes = {
            parse_timeframe(tf).name: TimeframeBars(parse_timeframe(tf).name, fast, slow, signal)
            for tf in timeframes
        }
        self.live_since = math.inf  # epoch seconds from which the 5-second feed is complete

    def restart_feed(self) -> None:
        """The live feed stopped (disconnect, resubscribe): drop half-built bars; the next
        live bar will need history again."""
        self.live_since = math.inf
        for tf in self.timeframes.values():
            tf.aggregator = BarAggregator(tf.timeframe)

    def add_history(
        self, timeframe: str, bars: pd.DataFrame, through: pd.Timestamp | None = None
    ) -> list[FinishedBar]:
        """Add historical bars (canonical frame) newer than the last finished one, up to and
        including ``through`` (later, unfinished bars are left to the live feed)."""
        tf = self.timeframes[timeframe]
        out = []
        for time, row in bars[OHLCV].iterrows():
            if through is not None and time > through:
                break
            bar = Bar(time, *(float(v) for v in row))
            added = tf.append(bar)
            if added is not None:
                out.append(FinishedBar(self.symbol, timeframe, bar, added[0], added[1], "history"))
        return out

    def add_realtime_bar(
        self, time: float, open: float, high: float, low: float, close: float, volume: float
    ) -> tuple[list[FinishedBar], dict[str, pd.Timestamp]]:
        """Feed one 5-second bar (epoch seconds). Returns the bars it finished and, per
        timeframe, the start of a finished bar the feed did not fully cover (fetch history
        through it and pass it to :meth:`add_history`)."""
        if time < self.live_since:
            self.live_since = time
        finished, gaps = [], {}
        for name, tf in self.timeframes.items():
            bar = tf.aggregator.add_bar(time, open, high, low, close, volume)
            if bar is None:
                continue
            if bar.time.timestamp() < self.live_since or self._missing_before(tf, bar):
                gaps[name] = bar.time
                continue
            added = tf.append(bar)
            if added is not None:
                finished.append(FinishedBar(self.symbol, name, bar, added[0], added[1], "live"))
        return finished, gaps

    def add_trade(
        self, time: float, price: float, size: float
    ) -> tuple[list[FinishedBar], dict[str, pd.Timestamp]]:
        """Like :meth:`add_realtime_bar` for a single trade (delayed data has no 5-second
        bars, only ticks)."""
        return self.add_realtime_bar(time, price, price, price, price, size)

    @staticmethod
    def _missing_before(tf: TimeframeBars, bar: Bar) -> bool:
        # A live bar right after a gap in our series (e.g. bars missed while the history
        # request was in flight) must come from history too, or MACD would skip bars.
        if tf.last_time is None:
            return False
        expected_next = tf.last_time + pd.Timedelta(seconds=tf.seconds)
        return bar.time > expected_next and _same_session(tf.last_time, bar.time)


def _same_session(a: pd.Timestamp, b: pd.Timestamp) -> bool:
    return a.tz_convert("America/New_York").date() == b.tz_convert("America/New_York").date()
