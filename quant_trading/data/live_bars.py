"""Live bars for one symbol on several timeframes, run through a strategy: history first,
then 5-second bars.

Pure (no I/O, no ibapi): the market data tracker feeds it and prints what comes out. Each
timeframe keeps its finished bars in its own :class:`~quant_trading.strategy.StrategyStream`,
so every finished bar comes with the strategy's indicator values at it and the strategy's
target position on that timeframe: the numbers the backtest computes over the same bars.

A live bar is trusted only if the 5-second feed covered it from its first second. The first
bar after subscribing (or after a reconnect) usually is not: its start happened before the
feed. :meth:`LiveBars.add_realtime_bar` then reports that history is needed up to that bar,
and the caller fetches it and hands it to :meth:`LiveBars.add_history`, so no bar is lost,
doubled, or built from half its trades.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from ..bars import EXCHANGE_TZ, OHLCV, Bar, BarAggregator
from ..strategy import StrategyConfig, StrategyStream
from ..timeframes import Timeframe, parse_timeframe

__all__ = ["FinishedBar", "LiveBars", "TimeframeBars"]


@dataclass(frozen=True)
class FinishedBar:
    """A bar ready to show, with the strategy's indicator values at it (column -> value,
    NaN while warming up) and its target position on this timeframe after and before it."""

    symbol: str
    timeframe: Timeframe
    bar: Bar
    values: dict[str, float]
    position: int  # +1 long, -1 short, 0 flat
    previous: int  # the target before this bar
    source: str  # "history" or "live"


class TimeframeBars:
    """One timeframe's finished bars, each fed to the strategy as it is added."""

    def __init__(self, timeframe: Timeframe | str, strategy: StrategyConfig) -> None:
        self.timeframe = parse_timeframe(timeframe)
        self.stream: StrategyStream = strategy.stream()
        self.times: list[pd.Timestamp] = []
        self.aggregator = BarAggregator(self.timeframe)

    @property
    def last_time(self) -> pd.Timestamp | None:
        """Start time of the newest finished bar."""
        return self.times[-1] if self.times else None

    @property
    def seconds(self) -> int:
        """Bar length in seconds."""
        return self.timeframe.seconds

    def append(self, bar: Bar, symbol: str, source: str) -> FinishedBar | None:
        """Add a finished bar and run the strategy on it; None (and nothing added) if it is
        not newer than the last one."""
        if self.times and bar.time <= self.times[-1]:
            return None
        self.times.append(bar.time)
        point = self.stream.update(bar)
        return FinishedBar(
            symbol, self.timeframe, bar, point.values, point.position, point.previous, source
        )

    def frame(self) -> pd.DataFrame:
        """The finished bars with the strategy's indicator columns, as the canonical frame."""
        index = pd.DatetimeIndex(self.times, name="time")
        return pd.DataFrame({c: a.copy() for c, a in self.stream.arrays().items()}, index=index)


class LiveBars:
    """All timeframes of one symbol, each running ``strategy``."""

    def __init__(
        self, symbol: str, timeframes: Iterable[Timeframe | str], strategy: StrategyConfig
    ) -> None:
        self.symbol = symbol
        self.timeframes = {
            tf.name: TimeframeBars(tf, strategy) for tf in map(parse_timeframe, timeframes)
        }
        self.live_since = math.inf  # epoch seconds from which the 5-second feed is complete

    def restart_feed(self) -> None:
        """The live feed stopped (disconnect, resubscribe): drop half-built bars; the next
        live bar will need history again."""
        self.live_since = math.inf
        for tf in self.timeframes.values():
            tf.aggregator = BarAggregator(tf.timeframe)

    def add_history(
        self, timeframe: Timeframe | str, bars: pd.DataFrame, through: pd.Timestamp | None = None
    ) -> list[FinishedBar]:
        """Add historical bars (canonical frame) newer than the last finished one, up to and
        including ``through`` (later, unfinished bars are left to the live feed)."""
        tf = self.timeframes[parse_timeframe(timeframe).name]
        out = []
        for time, row in bars[OHLCV].iterrows():
            if through is not None and time > through:
                break
            added = tf.append(Bar(time, *(float(v) for v in row)), self.symbol, "history")
            if added is not None:
                out.append(added)
        return out

    def add_realtime_bar(
        self,
        time: float,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        seconds: float = 5.0,
    ) -> tuple[list[FinishedBar], dict[str, pd.Timestamp]]:
        """Feed one ``seconds``-long bar starting at epoch ``time`` (IB's 5-second bar).
        Returns the bars it finished and, per timeframe name, the start of a finished bar the
        feed did not fully cover (fetch history through it and pass it to
        :meth:`add_history`).

        A bar that ends with this input is finished at once: IB sends 5-second bars in order,
        so nothing later can fall into it. That way a bar shows when its time is up, and the
        session's last bars show at the close instead of the next morning.

        Input older than every timeframe's newest bar is left out: delayed data's first
        tick is the last trade it knows (the previous session's close at the open), whose
        bars the history already holds."""
        finished: list[FinishedBar] = []
        gaps: dict[str, pd.Timestamp] = {}
        if self._covered(time):
            return finished, gaps
        if time < self.live_since:
            self.live_since = time
        for name, tf in self.timeframes.items():
            bar = tf.aggregator.add_bar(time, open, high, low, close, volume)
            if bar is not None:
                self._finish(name, tf, bar, finished, gaps)
            if seconds > 0:
                done = tf.aggregator.flush(time + seconds)
                if done is not None:
                    self._finish(name, tf, done, finished, gaps)
        return finished, gaps

    def add_trade(
        self, time: float, price: float, size: float
    ) -> tuple[list[FinishedBar], dict[str, pd.Timestamp]]:
        """Like :meth:`add_realtime_bar` for a single trade (delayed data has no 5-second
        bars, only ticks). A trade finishes no bar of its own: more may follow in its
        second."""
        return self.add_realtime_bar(time, price, price, price, price, size, seconds=0.0)

    def close(self, through: float) -> tuple[list[FinishedBar], dict[str, pd.Timestamp]]:
        """The market closed at epoch ``through``: finish every open bar that ends by then
        (with trades as input nothing else would finish them before the next session).
        Returns what :meth:`add_realtime_bar` returns."""
        finished: list[FinishedBar] = []
        gaps: dict[str, pd.Timestamp] = {}
        for name, tf in self.timeframes.items():
            done = tf.aggregator.flush(through)
            if done is not None:
                self._finish(name, tf, done, finished, gaps)
        return finished, gaps

    def _covered(self, time: float) -> bool:
        """Whether epoch ``time`` falls before the end of every timeframe's newest bar."""
        return all(
            tf.last_time is not None and time < tf.last_time.timestamp() + tf.seconds
            for tf in self.timeframes.values()
        )

    def _finish(
        self,
        name: str,
        tf: TimeframeBars,
        bar: Bar,
        finished: list[FinishedBar],
        gaps: dict[str, pd.Timestamp],
    ) -> None:
        """Append a bar the aggregator finished, or mark it as a gap for history when the
        feed did not see all of it (not when our series has it already)."""
        if tf.last_time is not None and bar.time <= tf.last_time:
            return
        if bar.time.timestamp() < self.live_since or self._missing_before(tf, bar):
            gaps[name] = bar.time
            return
        added = tf.append(bar, self.symbol, "live")
        if added is not None:
            finished.append(added)

    @staticmethod
    def _missing_before(tf: TimeframeBars, bar: Bar) -> bool:
        # A live bar right after a gap in our series (e.g. bars missed while the history
        # request was in flight) must come from history too, or the indicators would skip
        # bars.
        if tf.last_time is None:
            return False
        expected_next = tf.last_time + pd.Timedelta(seconds=tf.seconds)
        return bar.time > expected_next and _same_session(tf.last_time, bar.time)


def _same_session(a: pd.Timestamp, b: pd.Timestamp) -> bool:
    return a.tz_convert(EXCHANGE_TZ).date() == b.tz_convert(EXCHANGE_TZ).date()
