"""Combinations of a parameter search, from target positions to statistics, without
pandas: the fill loop and the statistics of a whole batch of combinations run as one
compiled call over arrays prepared once per symbol.

It is the same arithmetic as :func:`~.runner.backtest_symbol` and :func:`~.runner.combine`
(the engine's own compiled loop, :func:`._statistics_jit.measure` which
``compute_statistics`` calls too, the portfolio summed in the same order), so a row of the
search equals its backtest to the bit; what is left out is only what a row does not need:
candle frames, trade frames, equity series and the cache file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quant_trading.jit import njit

from ._statistics_jit import SIZE, measure
from .datafiles import SymbolData
from .engine import _simulate_kernel, session_last_bars
from .runner import BacktestOptions, _carry, _PortfolioPart, _PortfolioSum, trading_window
from .statistics import Market, day_ends

__all__ = ["Measured", "SymbolArrays", "measure_targets"]

_OHLCV = ("open", "high", "low", "close", "volume")


@dataclass
class SymbolArrays:
    """What every combination shares of one symbol: the bars up to the window's end as
    float arrays, the window, and what the statistics need of its times and prices."""

    symbol: str
    bars: pd.DataFrame  # up to the window's end (indicators warm up before its start)
    data: dict[str, np.ndarray]  # the OHLCV columns of ``bars``
    start: int  # the window's first bar
    session_last: np.ndarray  # flat_at_close's session ends, else all False
    times: np.ndarray  # epoch ns of ``bars``
    index: pd.DatetimeIndex  # the window's bars
    day_last: np.ndarray  # each day's last bar in the window
    market: Market  # buy & hold over the window
    basket: np.ndarray  # buy & hold's equity over the window (for the portfolio)
    _iso: dict[int, str] = field(default_factory=dict, repr=False)

    def iso(self, position: int) -> str:
        """The window's bar at ``position`` as an ISO string (kept: drawdowns' peaks and
        troughs fall on the same bars in many combinations)."""
        text = self._iso.get(position)
        if text is None:
            text = self._iso[position] = self.index[position].isoformat()
        return text

    @classmethod
    def of(cls, data: SymbolData, options: BacktestOptions) -> SymbolArrays:
        first, stop = trading_window(data.bars.index, options)
        bars = data.bars.iloc[:stop]
        arrays = {c: np.ascontiguousarray(bars[c], dtype=np.float64) for c in _OHLCV}
        index = bars.index[first:]
        close = arrays["close"][first:]
        flags = session_last_bars(bars.index) if options.flat_at_close else np.zeros(stop, bool)
        return cls(
            symbol=data.symbol,
            bars=bars,
            data=arrays,
            start=first,
            session_last=np.ascontiguousarray(flags, dtype=np.bool_),
            times=bars.index.as_unit("ns").asi8,
            index=index,
            day_last=day_ends(index),
            market=Market.of(close),
            basket=close / close[0] * options.capital,
        )


@njit(cache=True, nogil=True)
def _trades(table, times, start):  # pragma: no cover - compiled
    # The engine's trade table as the statistics read it (SimResult.trades' formulas), and
    # each exit's bar in the window.
    count = table.shape[0]
    pnl = np.empty(count)
    returns = np.empty(count)
    commission = np.empty(count)
    long = np.empty(count, np.bool_)
    entry_ns = np.empty(count, np.int64)
    exit_ns = np.empty(count, np.int64)
    exit_bars = np.empty(count, np.int64)
    for k in range(count):
        side = table[k, 0]
        entry_price, exit_price, shares = table[k, 3], table[k, 4], table[k, 5]
        commission[k] = table[k, 6]
        pnl[k] = side * (exit_price - entry_price) * shares - commission[k]
        returns[k] = pnl[k] / (entry_price * shares) * 100
        long[k] = side > 0
        entry_ns[k] = times[np.int64(table[k, 1])]
        exit_bars[k] = np.int64(table[k, 2])
        exit_ns[k] = times[exit_bars[k]]
        exit_bars[k] -= start
    return pnl, returns, commission, long, entry_ns, exit_ns, exit_bars


@njit(cache=True, nogil=True)
def _measure_rows(  # pragma: no cover - compiled
    open_, close, targets, session_last, start, capital, per_share, minimum, max_fraction,
    slippage, allocation, fixed_shares, fractional, flat_at_close, times, day_last, market,
    spread, buy_hold, out,
):  # fmt: skip
    # Row r of out: the statistics of filling targets[r], as backtest_symbol measures them.
    window = times[start:]
    for r in range(targets.shape[0]):
        equity, held, table, _, exposed = _simulate_kernel(
            open_, close, targets[r], session_last, start, capital, per_share, minimum,
            max_fraction, slippage, allocation, fixed_shares, fractional, flat_at_close,
        )  # fmt: skip
        pnl, returns, commission, long, entry_ns, exit_ns, exit_bars = _trades(table, times, start)
        measure(equity, window, day_last, capital, market, spread, buy_hold, held, True,
                exposed, pnl, returns, commission, long, entry_ns, exit_ns, exit_bars,
                out[r])  # fmt: skip


@njit(cache=True, nogil=True)
def _fill(  # pragma: no cover - compiled
    open_, close, target, session_last, start, capital, per_share, minimum, max_fraction,
    slippage, allocation, fixed_shares, fractional, flat_at_close, times,
):  # fmt: skip
    equity, held, table, _, _ = _simulate_kernel(
        open_, close, target, session_last, start, capital, per_share, minimum, max_fraction,
        slippage, allocation, fixed_shares, fractional, flat_at_close,
    )  # fmt: skip
    return equity, np.abs(held), _trades(table, times, start)


def _engine_args(options: BacktestOptions) -> tuple:
    costs, sizing = options.costs, options.sizing
    return (
        float(options.capital),
        float(costs.commission_per_share),
        float(costs.commission_min),
        float(costs.commission_max_pct) / 100,
        float(costs.slippage),
        float(sizing.allocation),
        float(sizing.fixed_shares or 0.0),
        bool(sizing.fractional),
        bool(options.flat_at_close),
    )


@dataclass
class _Union:
    """What every combination of a portfolio shares: the union of the symbols' bars, its
    days and buy & hold (summed as :func:`~.runner.combine` sums them), and where each
    symbol's bars fall in it."""

    index: pd.DatetimeIndex
    times: np.ndarray  # epoch ns of ``index``
    day_last: np.ndarray
    market: Market
    #: Per symbol: its bar at or before each of the union's (-1: none yet), None when its
    #: bars are the union's (then its series add as they are).
    carried: list[np.ndarray | None]
    where: list[np.ndarray]  # per symbol: the union's bar of each of its bars
    ranks: list[int]  # per symbol: its name's rank (combine() orders equal exits by it)
    _iso: dict[int, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, symbols: list[SymbolArrays], capital: float) -> _Union:
        total = _PortfolioSum()
        for s in symbols:
            window = s.times[s.start :]
            total.add(_PortfolioPart(window, s.basket, np.zeros(len(window)), s.basket,
                                     capital, s.index.tz, s.index.name))  # fmt: skip
        index = pd.DatetimeIndex(total.times.view("M8[ns]"), name=total.name)
        if total.tz is not None:
            index = index.tz_localize("UTC").tz_convert(total.tz)
        carried, where = [], []
        for s in symbols:
            window = s.times[s.start :]
            same = np.array_equal(window, total.times)
            carried.append(None if same else np.searchsorted(window, total.times, "right") - 1)
            where.append(np.arange(len(window)) if same else np.searchsorted(total.times, window))
        names = sorted({s.symbol for s in symbols})
        return cls(index, total.times, day_ends(index), Market.of(total.basket), carried, where,
                   [names.index(s.symbol) for s in symbols])  # fmt: skip

    def iso(self, position: int) -> str:
        text = self._iso.get(position)
        if text is None:
            text = self._iso[position] = self.index[position].isoformat()
        return text

    def add(self, total: np.ndarray | None, i: int, values: np.ndarray, before: float):
        """``total`` plus symbol ``i``'s ``values`` (a fill's own array, free to reuse) on
        the union's bars, ``before`` before its first bar, as
        :class:`~.runner._PortfolioSum` adds them; the first symbol's (``total`` None)
        alone."""
        at = self.carried[i]
        if at is not None:
            values = _carry(values, at, before)
        if total is None:
            return values
        total += values
        return total


@dataclass
class Measured:
    """Rows of statistics: ``values[r]`` is what :func:`._statistics_jit.measure` writes
    for combination ``r`` (the drawdown's peak and trough as bars), ``iso`` names a bar of
    the equity curve the rows measure (of ``bars`` bars) as an ISO string."""

    values: np.ndarray  # (rows, SIZE)
    iso: Callable[[int], str]
    bars: int


def measure_targets(
    symbols: list[SymbolArrays],
    targets: list[np.ndarray],
    options: BacktestOptions,
    cache: dict[str, Any],
) -> Measured:
    """The statistics backtests of these targets report, one row per combination:
    ``targets[i]`` holds symbol ``i``'s target positions, one row per combination. One
    symbol: its own statistics, in one compiled call; several: the portfolio's (as
    :func:`~.runner.combine` adds them up). ``cache`` keeps what the portfolio's bars give
    every combination alike."""
    args = _engine_args(options)
    rows = targets[0].shape[0]
    out = np.empty((rows, SIZE))
    if len(symbols) == 1:
        s = symbols[0]
        _measure_rows(s.data["open"], s.data["close"], targets[0], s.session_last, s.start,
                      *args, s.times, s.day_last, s.market.centered, s.market.spread,
                      s.market.total, out)  # fmt: skip
        return Measured(out, s.iso, len(s.index))
    union = None
    for r in range(rows):
        union = _measure_portfolio(symbols, [t[r] for t in targets], args, options, cache, out[r])
    if union is None:
        return Measured(out, str, 0)
    return Measured(out, union.iso, len(union.index))


def _measure_portfolio(
    symbols: list[SymbolArrays],
    targets: list[np.ndarray],
    args: tuple,
    options: BacktestOptions,
    cache: dict[str, Any],
    out: np.ndarray,
) -> _Union:
    union = cache.get("union")
    if union is None:
        union = cache["union"] = _Union.of(symbols, options.capital)
    capital = 0.0
    equity = held = None
    trades, keys = [], []
    for i, (s, target) in enumerate(zip(symbols, targets)):
        values, shares, made = _fill(s.data["open"], s.data["close"], target, s.session_last,
                                     s.start, *args, s.times)  # fmt: skip
        equity = union.add(equity, i, values, options.capital)
        held = union.add(held, i, shares, 0.0)
        capital += options.capital
        trades.append(made[:6])
        # combine() sorts the trades by exit time, then symbol name (stable): the exit's bar
        # in the union stands for its time, and with the rank it makes one number to sort.
        keys.append(union.where[i][made[6]] * len(symbols) + union.ranks[i])
    pnl, returns, commission, long, entry_ns, exit_ns = (
        np.concatenate(column) for column in zip(*trades)
    )
    keys = np.concatenate(keys)
    order = np.argsort(keys, kind="stable")
    exit_bars = keys[order] // len(symbols)
    market = union.market
    measure(equity, union.times, union.day_last, capital, market.centered, market.spread,
            market.total, held, True, -1, pnl[order], returns[order], commission[order],
            long[order], entry_ns[order], exit_ns[order], exit_bars, out)  # fmt: skip
    return union
