"""One symbol on one timeframe, traded on paper by the backtest's engine as bars come in.

Pure (no I/O, no ibapi). A :class:`PaperBook` keeps every finished bar it was given and the
strategy's target at it, and asks the engine (:func:`~quant_trading.backtesting.engine.simulate`,
the very function the backtest runs) for the orders those bars make from the book's window
start on. So the paper fills are the backtest's fills by construction, whatever order the
bars arrived in (live, or filled in from history after a gap or a restart): the caller keeps
the orders it has not seen yet, by their client order ids.

Two things only a live caller knows are passed in:

* the next bar's open, as soon as its first trade is in (:meth:`PaperBook.fills` with
  ``next_open``): the order a signal makes is filled then, not when that bar finishes;
* whether the newest bar ends its session (it does when it ends at the exchange's close for
  that day, see :func:`session_close`): the backtest knows it from the next bar's date.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..backtesting.engine import EXIT_REASONS, simulate
from ..backtesting.runner import BacktestOptions
from ..bars import EXCHANGE_TZ, Bar
from ..sessions import session_close
from ..timeframes import Timeframe
from .orders import PaperFill, fills_from_trades

__all__ = ["BookStatus", "PaperBook"]


@dataclass(frozen=True)
class BookStatus:
    """Where a book stands after its newest bar."""

    position: float  # signed shares
    entry_price: float  # of the open position (NaN when flat)
    realized: float  # P&L of closed trades, commissions included
    unrealized: float  # the open position at the last close (its entry commission included)
    equity: float
    last_close: float


class PaperBook:
    """The bars, targets and window of one paper-traded symbol and timeframe.

    ``options.start`` is the window start: the first bar at or after it is the first one
    traded, the bars before it only warm the strategy up (as ``run_backtest --start``).
    ``closes(day)`` gives a session's closing time (:func:`session_close` by default)."""

    def __init__(
        self,
        tag: str,
        symbol: str,
        timeframe: Timeframe,
        options: BacktestOptions,
        closes: Callable[[pd.Timestamp], pd.Timestamp] | None = None,
    ) -> None:
        if options.start is None:
            raise ValueError("a paper book needs its window start (options.start)")
        self.tag, self.symbol, self.timeframe, self.options = tag, symbol, timeframe, options
        self.closes = closes or session_close
        self._ns = np.empty(256, np.int64)  # bar starts, UTC nanoseconds
        self._count = 0
        self._open = np.empty(256)
        self._close = np.empty(256)
        self._target = np.empty(256, np.int8)
        self.status = BookStatus(0.0, math.nan, 0.0, 0.0, options.capital, math.nan)
        self._final = 0  # trades the engine closed for good: their orders are known
        self._realized = 0.0  # their P&L

    def __len__(self) -> int:
        return self._count

    @property
    def last_time(self) -> pd.Timestamp | None:
        """Start of the newest bar."""
        return _stamp(self._ns[self._count - 1]) if self._count else None

    def add(self, bar: Bar, target: int) -> None:
        """A finished bar (newer than the last) and the strategy's target at its close."""
        n, ns = self._count, bar.time.value
        if n and ns <= self._ns[n - 1]:
            raise ValueError(f"{self.symbol} {self.timeframe}: bar {bar.time} is not newer")
        if n == len(self._open):
            self._ns, self._target = np.resize(self._ns, 2 * n), np.resize(self._target, 2 * n)
            self._open, self._close = np.resize(self._open, 2 * n), np.resize(self._close, 2 * n)
        self._ns[n], self._target[n] = ns, target
        self._open[n], self._close[n] = bar.open, bar.close
        self._count += 1

    def follows(self, time: pd.Timestamp) -> bool:
        """True if a bar starting at ``time`` comes right after the newest bar: the next one
        of its session, or the first of a later session (so no bar lies between them)."""
        last = self.last_time
        if last is None:
            return False
        if time == last + pd.Timedelta(seconds=self.timeframe.seconds):
            return True
        return time.tz_convert(EXCHANGE_TZ).date() != last.tz_convert(EXCHANGE_TZ).date()

    def fills(self, next_open: tuple[pd.Timestamp, float] | None = None) -> list[PaperFill]:
        """Every order the engine makes on the bars so far, from the window start on; with
        ``next_open`` (the start and open price of the bar after the newest, whose first
        trade is in) also those filled at that open. Updates :attr:`status` (from the
        finished bars only)."""
        n = self._count
        times, opens, closes, target = (self._ns[:n], self._open[:n], self._close[:n],
                                        self._target[:n])  # fmt: skip
        last_ends_session = n > 0 and self._ends_session(self.last_time)
        if next_open is not None:
            times = np.append(times, next_open[0].value)
            opens = np.append(opens, next_open[1])
            closes = np.append(closes, next_open[1])  # not used: nothing fills at its close
            target = np.append(target, 0)
        index = pd.DatetimeIndex(times, tz="UTC").tz_convert(EXCHANGE_TZ)
        first = int(index.searchsorted(self.options.start, "left"))
        if first >= len(index):
            return []
        bars = pd.DataFrame({"open": opens, "close": closes}, index=index)
        # A bar ends its session when the next bar falls on another day (the backtest's rule)
        # or, for the newest finished bar, when it ends at the exchange's close.
        days = index.tz_convert(EXCHANGE_TZ).normalize()
        session_last = np.r_[days[1:] != days[:-1], False]
        if n:
            session_last[n - 1] = session_last[n - 1] or last_ends_session
        o = self.options
        sim = simulate(bars, target, start=first, capital=o.capital, costs=o.costs,
                       sizing=o.sizing, flat_at_close=o.flat_at_close,
                       session_last=session_last)  # fmt: skip
        # Trades closed before are final (appending bars cannot change them): only the
        # newer ones are turned into orders. The newest bar's close (the provisional bar's
        # too) ends a trade only as "end of data", which is no order, unless it truly ends
        # its session.
        r = {k: v[self._final :] for k, v in sim.records.items()}
        trades = {
            "side": np.where(r["side"] > 0, "long", "short"),
            "entry_time": index[r["entry_bar"]],
            "entry_price": r["entry_price"],
            "exit_time": index[r["exit_bar"]],
            "exit_price": r["exit_price"],
            "shares": r["shares"],
            "exit_reason": np.asarray(EXIT_REASONS)[r["reason"]],
        }
        if next_open is None:
            closed = int((trades["exit_reason"] != "end of data").sum())
            pnl = r["side"] * (r["exit_price"] - r["entry_price"]) * r["shares"] - r["commission"]
            self._realized += float(pnl[:closed].sum())
            self._final += closed
            self.status = self._status(r, closed, closes[-1] if n else math.nan)
        return fills_from_trades(trades, tag=self.tag, symbol=self.symbol,
                                 timeframe=self.timeframe, costs=o.costs)  # fmt: skip

    def _status(self, records: dict[str, np.ndarray], closed: int, last_close: float):
        """The book after its newest bar (``records`` from the first trade not final before,
        of which ``closed`` are now)."""
        capital, realized = self.options.capital, self._realized
        if len(records["side"]) == closed:  # flat
            return BookStatus(0.0, math.nan, realized, 0.0, capital + realized, last_close)
        side = float(records["side"][-1])
        shares, entry = float(records["shares"][-1]), float(records["entry_price"][-1])
        # Only the entry's commission has been paid (the trade's total holds the exit's too).
        fee = self.options.costs.commission(shares, entry)
        unrealized = side * shares * (last_close - entry) - fee
        return BookStatus(side * shares, entry, realized, unrealized,
                          capital + realized + unrealized, last_close)  # fmt: skip

    def _ends_session(self, time: pd.Timestamp) -> bool:
        end = time + pd.Timedelta(seconds=self.timeframe.seconds)
        return end >= self.closes(time)


def _stamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC").tz_convert(EXCHANGE_TZ)
