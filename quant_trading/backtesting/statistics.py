"""Performance statistics of an equity curve and its trades (pure; no I/O).

Conventions (peers disagree, so they are stated here and, with formulas, in the README). They
are backtesting.py's, so its numbers and ours agree on the same trades (a test checks which
agree exactly), except where noted:

* ratios (annualized return and volatility, Sharpe, Sortino, Calmar) use the equity curve's
  **daily** returns (last equity of each calendar day) with **252** trading days a year and a
  zero risk-free rate, whatever the bar size;
* annualized return is the geometric mean daily return compounded over 252 days; CAGR is
  the total growth over the **calendar** span (365.25-day years);
* Sortino is +inf when the return is positive and no day lost (a zero downside), NaN when
  neither; Sharpe, Calmar and Profit Factor are NaN when their denominator is zero;
* beta (and so alpha) uses per-bar log returns of the equity and of buy & hold;
* exposure counts the bars during which a position was held at any time (entry bar through
  exit bar);
* durations (test span, drawdowns, trades) are calendar time;
* drawdown is measured on the mark-to-market equity at each bar's close, and reported as a
  positive percentage (backtesting.py shows it negative);
* trade returns are net of commissions, relative to the entry value;
* differing on purpose: Profit Factor is in **dollars** (gross profit / gross loss, so it is
  above 1 exactly when the trades made money; backtesting.py sums percent returns), and
  Kelly uses trade **returns** (payoff per dollar staked, which is what the Kelly fraction of
  equity needs; backtesting.py uses dollar P&L, which grows with the account).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .engine import RoundTrips

__all__ = ["Statistics", "compute_statistics", "drawdown", "LABELS"]

TRADING_DAYS = 252
_DAY_NS = 86_400 * 10**9
_INFINITIES = ("Infinity", "-Infinity")  # how the JSON cache writes them


@dataclass
class Statistics:
    """Everything backtesting.py reports, plus USD drawdown with dates, net profit and the
    long/short split. Durations are in seconds, times ISO strings, ratios plain floats (NaN
    when undefined, e.g. no trades)."""

    start: str
    end: str
    duration_s: float
    exposure_pct: float
    equity_initial: float
    equity_final: float
    equity_peak: float
    net_profit: float
    commissions: float
    return_pct: float
    buy_hold_return_pct: float
    return_ann_pct: float
    volatility_ann_pct: float
    cagr_pct: float
    sharpe: float
    sortino: float
    calmar: float
    alpha_pct: float
    beta: float
    max_drawdown_pct: float
    avg_drawdown_pct: float
    max_drawdown_usd: float
    max_drawdown_peak: str | None
    max_drawdown_trough: str | None
    max_drawdown_duration_s: float
    avg_drawdown_duration_s: float
    trades: int
    long_trades: int
    short_trades: int
    win_rate_pct: float
    best_trade_pct: float
    worst_trade_pct: float
    avg_trade_pct: float
    max_trade_duration_s: float
    avg_trade_duration_s: float
    profit_factor: float
    expectancy_pct: float
    sqn: float
    kelly: float

    def as_dict(self) -> dict:
        """Plain dict (JSON-ready once NaN is mapped to null)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # all immutable values

    @classmethod
    def from_dict(cls, data: dict) -> Statistics:
        """Inverse of :meth:`as_dict`; missing numbers become NaN (older caches), and the
        cache's "Infinity" / "-Infinity" become floats again."""
        names = {f.name for f in fields(cls)}
        values = {
            k: math.nan if v is None else float(v) if v in _INFINITIES else v
            for k, v in data.items()
            if k in names
        }
        for name in names - values.keys():
            values[name] = math.nan
        return cls(**values)


#: Display labels, in backtesting.py's wording where it has one.
LABELS = {
    "start": "Start",
    "end": "End",
    "duration_s": "Duration",
    "exposure_pct": "Exposure Time [%]",
    "equity_initial": "Equity Initial [$]",
    "equity_final": "Equity Final [$]",
    "equity_peak": "Equity Peak [$]",
    "net_profit": "Net Profit [$]",
    "commissions": "Commissions [$]",
    "return_pct": "Return [%]",
    "buy_hold_return_pct": "Buy & Hold Return [%]",
    "return_ann_pct": "Return (Ann.) [%]",
    "volatility_ann_pct": "Volatility (Ann.) [%]",
    "cagr_pct": "CAGR [%]",
    "sharpe": "Sharpe Ratio",
    "sortino": "Sortino Ratio",
    "calmar": "Calmar Ratio",
    "alpha_pct": "Alpha [%]",
    "beta": "Beta",
    "max_drawdown_pct": "Max. Drawdown [%]",
    "avg_drawdown_pct": "Avg. Drawdown [%]",
    "max_drawdown_usd": "Max. Drawdown [$]",
    "max_drawdown_peak": "Max. Drawdown Peak",
    "max_drawdown_trough": "Max. Drawdown Trough",
    "max_drawdown_duration_s": "Max. Drawdown Duration",
    "avg_drawdown_duration_s": "Avg. Drawdown Duration",
    "trades": "# Trades",
    "long_trades": "# Long Trades",
    "short_trades": "# Short Trades",
    "win_rate_pct": "Win Rate [%]",
    "best_trade_pct": "Best Trade [%]",
    "worst_trade_pct": "Worst Trade [%]",
    "avg_trade_pct": "Avg. Trade [%]",
    "max_trade_duration_s": "Max. Trade Duration",
    "avg_trade_duration_s": "Avg. Trade Duration",
    "profit_factor": "Profit Factor",
    "expectancy_pct": "Expectancy [%]",
    "sqn": "SQN",
    "kelly": "Kelly Criterion",
}


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown at each point as a fraction of the running peak (0 at new highs)."""
    peak = np.maximum.accumulate(equity)
    return 1.0 - equity / peak


def day_ends(index: pd.DatetimeIndex) -> np.ndarray:
    """Position of each calendar day's last bar (the day in the index's own timezone; a
    tz-naive index counts each distinct time as a day), in time order: the bars whose
    equity the daily returns compare."""
    if not len(index):
        return np.empty(0, np.int64)
    if index.tz is None:
        days = index.as_unit("ns").asi8
    else:
        days = index.tz_localize(None).as_unit("ns").asi8 // _DAY_NS
    if (days[1:] >= days[:-1]).all():  # in time order, a day's bars are consecutive
        return np.flatnonzero(np.r_[days[1:] != days[:-1], True])
    _, first_from_end = np.unique(days[::-1], return_index=True)
    return (len(days) - 1 - first_from_end).astype(np.int64)


@dataclass(frozen=True)
class Market:
    """What beta and alpha need of buy & hold over some prices, the same for every equity
    curve measured against them (a parameter search computes it once per symbol): its
    per-bar log returns minus their mean, the sum of their squares and its total return."""

    centered: np.ndarray
    spread: float
    total: float

    @classmethod
    def of(cls, prices: np.ndarray) -> Market:
        """Buy & hold of ``prices``."""
        from ._statistics_jit import market_terms

        centered, spread, total = market_terms(readonly(prices, np.float64))
        return cls(centered, float(spread), float(total))


#: The Statistics fields that count (ints); the other numbers are floats.
COUNTS = ("trades", "long_trades", "short_trades")


def from_measured(out: np.ndarray, bars: int, iso: Callable[[int], str]) -> Statistics:
    """The :class:`Statistics` of :func:`._statistics_jit.measure`'s numbers for an equity
    curve of ``bars`` bars, whose times ``iso(position)`` gives as ISO strings."""
    from ._statistics_jit import FIELDS, PEAK, TROUGH

    values = dict(zip(FIELDS, out.tolist(), strict=False))
    for name in COUNTS:
        values[name] = int(values[name])
    peak, trough = int(out[PEAK]), int(out[TROUGH])
    return Statistics(
        start=iso(0) if bars else "",
        end=iso(bars - 1) if bars else "",
        max_drawdown_peak=iso(peak) if peak >= 0 else None,
        max_drawdown_trough=iso(trough) if trough >= 0 else None,
        **values,
    )


def readonly(values, dtype) -> np.ndarray:
    """``values`` as a contiguous array the compiled code (here and in the cache's encoders)
    only reads. numba compiles (and loads from its cache) one version of a kernel per
    combination of writeable and read-only arrays; marked read-only, every caller's arrays
    use the same one, whether they came from pandas (read-only views) or from numpy."""
    out = np.ascontiguousarray(values, dtype=dtype)
    if out.flags.writeable:
        out = out.view()
        out.flags.writeable = False
    return out


def epoch_ns(times) -> np.ndarray:
    """Epoch nanoseconds of a column (or index) of times."""
    values = times.array if isinstance(times, pd.Series) else times
    if not isinstance(values, pd.arrays.DatetimeArray | pd.DatetimeIndex):
        values = pd.DatetimeIndex(values)
    return values.as_unit("ns").asi8


def bars_at(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The position in ``times`` (in order) of each of ``at``, -1 where it is not one of
    them."""
    found = np.minimum(np.searchsorted(times, at), max(len(times) - 1, 0))
    if not len(times):
        return np.full(len(at), -1, np.int64)
    return np.where(times[found] == at, found, -1).astype(np.int64)


@dataclass(frozen=True)
class TradeArrays:
    """What the statistics need of a trades frame, as arrays: P&L, return in percent,
    commission, whether long, and entry and exit epoch nanoseconds."""

    pnl: np.ndarray
    return_pct: np.ndarray
    commission: np.ndarray
    long: np.ndarray
    entry_ns: np.ndarray
    exit_ns: np.ndarray

    @classmethod
    def of(cls, trades: pd.DataFrame) -> TradeArrays:
        """The arrays of a frame with the columns of :attr:`SimResult.trades
        <quant_trading.backtesting.engine.SimResult.trades>`."""
        if len(trades):
            entry_ns, exit_ns = epoch_ns(trades["entry_time"]), epoch_ns(trades["exit_time"])
        else:
            entry_ns = exit_ns = np.empty(0, np.int64)
        return cls(
            pnl=np.ascontiguousarray(trades["pnl"], dtype=np.float64),
            return_pct=np.ascontiguousarray(trades["return_pct"], dtype=np.float64),
            commission=np.ascontiguousarray(trades["commission"], dtype=np.float64),
            long=_is_long(trades["side"]),
            entry_ns=entry_ns,
            exit_ns=exit_ns,
        )

    @classmethod
    def of_round_trips(cls, trips: RoundTrips) -> TradeArrays:
        """The arrays of the engine's round trips (the same numbers as :meth:`of` their
        frame), without building the frame."""
        pnl = trips.pnl
        return cls(
            pnl=pnl,
            return_pct=trips.return_of(pnl, trips.entry_price, trips.shares),
            commission=np.ascontiguousarray(trips.commission, dtype=np.float64),
            long=trips.side > 0,
            entry_ns=epoch_ns(trips.entry_time),
            exit_ns=epoch_ns(trips.exit_time),
        )


def _is_long(side: pd.Series) -> np.ndarray:
    column = side.array
    if isinstance(column, pd.Categorical):  # the engine's: compare its codes, not strings
        categories = list(column.categories)
        if "long" not in categories:
            return np.zeros(len(column), bool)
        return column.codes == categories.index("long")
    return (side == "long").to_numpy(bool)


def compute_statistics(
    equity: pd.Series, trades: pd.DataFrame, close: pd.Series, capital: float, position=None
) -> Statistics:
    """Statistics of one equity curve (mark-to-market per bar, indexed by time) with its
    ``trades`` (as from :func:`~quant_trading.backtesting.engine.simulate`), the traded
    ``close`` prices over the same bars (for buy & hold, alpha and beta) and the starting
    ``capital``. ``position`` (shares held per bar) gives the exposure."""
    return measure_arrays(
        equity.index,
        equity.to_numpy(np.float64),
        TradeArrays.of(trades),
        close.to_numpy(np.float64),
        capital,
        position,
    )


def measure_arrays(
    index: pd.DatetimeIndex,
    equity: np.ndarray,
    trades: TradeArrays,
    close: np.ndarray,
    capital: float,
    position=None,
    exit_bars: np.ndarray | None = None,
) -> Statistics:
    """:func:`compute_statistics` of arrays: the equity at each bar of ``index``, the trades,
    the close prices over the same bars, the capital and the shares held per bar.
    ``exit_bars``: each exit's position in ``index`` (as :func:`bars_at` finds it), when the
    caller knows it already."""
    # Compiled code only here: a chart that only reads statistics never loads numba.
    from ._statistics_jit import SIZE, measure

    times = index.as_unit("ns").asi8
    market = Market.of(close)
    has_held = position is not None and len(position) > 0
    out = np.empty(SIZE)
    measure(
        readonly(equity, np.float64),
        readonly(times, np.int64),
        readonly(day_ends(index), np.int64),
        float(capital),
        readonly(market.centered, np.float64),
        market.spread,
        market.total,
        readonly(position if has_held else np.empty(0), np.float64),
        has_held,
        -1,
        readonly(trades.pnl, np.float64),
        readonly(trades.return_pct, np.float64),
        readonly(trades.commission, np.float64),
        readonly(trades.long, np.bool_),
        readonly(trades.entry_ns, np.int64),
        readonly(trades.exit_ns, np.int64),
        readonly(bars_at(times, trades.exit_ns) if exit_bars is None else exit_bars, np.int64),
        out,
    )
    return from_measured(out, len(index), lambda i: index[i].isoformat())
