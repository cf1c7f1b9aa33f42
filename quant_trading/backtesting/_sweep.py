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

from ._statistics_jit import SIZE, exit_order, measure
from .datafiles import SymbolData
from .engine import _simulate_kernel, session_last_bars
from .runner import BacktestOptions, _PortfolioPart, _PortfolioSum, trading_window
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
    """What every combination of a portfolio shares: the symbols' arrays one after the
    other (symbol ``i``'s bars at ``bounds[i]:bounds[i + 1]``, its window from
    ``starts[i]``), the union of their windows' bars with its days and buy & hold (summed as
    :func:`~.runner.combine` sums them), and where each symbol's bars fall in it."""

    index: pd.DatetimeIndex
    times: np.ndarray  # epoch ns of ``index``
    day_last: np.ndarray
    market: Market
    open: np.ndarray
    close: np.ndarray
    session_last: np.ndarray
    bar_times: np.ndarray  # epoch ns of every symbol's bars
    bounds: np.ndarray
    starts: np.ndarray
    #: Per symbol, ``len(times)`` each: its window's bar at or before each union bar (-1:
    #: none yet).
    carried: np.ndarray
    #: Per symbol, one per bar of its window: that bar's position in the union.
    where: np.ndarray
    by_name: np.ndarray  # the symbols in order of name (combine() orders equal exits so)
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
        windows = [s.times[s.start :] for s in symbols]
        return cls(
            index=index,
            times=total.times,
            day_last=day_ends(index),
            market=Market.of(total.basket),
            open=np.concatenate([s.data["open"] for s in symbols]),
            close=np.concatenate([s.data["close"] for s in symbols]),
            session_last=np.concatenate([s.session_last for s in symbols]),
            bar_times=np.concatenate([s.times for s in symbols]),
            bounds=np.cumsum([0] + [len(s.times) for s in symbols]),
            starts=np.array([s.start for s in symbols], np.int64),
            carried=np.concatenate([np.searchsorted(w, total.times, "right") - 1 for w in windows]),
            where=np.concatenate([np.searchsorted(total.times, w) for w in windows]),
            by_name=np.argsort([s.symbol for s in symbols], kind="stable"),
        )

    def iso(self, position: int) -> str:
        text = self._iso.get(position)
        if text is None:
            text = self._iso[position] = self.index[position].isoformat()
        return text


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
    union = cache.get("union")
    if union is None:
        union = cache["union"] = _Union.of(symbols, options.capital)
    market = union.market
    _measure_portfolio_rows(union.open, union.close, np.hstack(targets), union.session_last,
                            union.bar_times, union.bounds, union.starts, *args, union.times,
                            union.day_last, market.centered, market.spread, market.total,
                            union.carried, union.where, union.by_name, out)  # fmt: skip
    return Measured(out, union.iso, len(union.index))


@njit(cache=True, nogil=True)
def _measure_portfolio_rows(  # pragma: no cover - compiled
    open_, close, targets, session_last, times, bounds, starts, capital, per_share, minimum,
    max_fraction, slippage, allocation, fixed_shares, fractional, flat_at_close, union,
    day_last, market, spread, buy_hold, carried, where, by_name, out,
):  # fmt: skip
    # Row r of out: the statistics of the portfolio of filling targets[r] (symbol i's part
    # at bounds[i]:bounds[i + 1]), as combine() measures it: each symbol's equity and shares
    # held carried onto the union's bars (its capital in cash before its first bar) and
    # added in symbol order, and the trades in order of exit bar, then symbol name.
    count, size = len(starts), len(union)
    for r in range(targets.shape[0]):
        equity, held = np.empty(size), np.empty(size)
        total = 0.0
        parts = []
        trades = 0
        window = 0  # where symbol i's window starts in ``where``
        for i in range(count):
            lo, hi, start = bounds[i], bounds[i + 1], starts[i]
            values, shares, table, _, _ = _simulate_kernel(
                open_[lo:hi], close[lo:hi], targets[r, lo:hi], session_last[lo:hi], start,
                capital, per_share, minimum, max_fraction, slippage, allocation, fixed_shares,
                fractional, flat_at_close,
            )  # fmt: skip
            carry = carried[i * size : (i + 1) * size]
            for u in range(size):
                j = carry[u]
                value = values[j] if j >= 0 else capital
                shares_held = abs(shares[j]) if j >= 0 else 0.0
                if i == 0:
                    equity[u], held[u] = value, shares_held
                else:
                    equity[u] += value
                    held[u] += shares_held
            total += capital
            made = _trades(table, times[lo:hi], start)
            bars = np.empty(len(made[0]), np.int64)
            for k in range(len(bars)):
                bars[k] = where[window + made[6][k]]
            parts.append((made[0], made[1], made[2], made[3], made[4], made[5], bars))
            trades += len(bars)
            window += hi - lo - start
        # The symbols' trades one after the other, then in order of exit bar, then name.
        pnl, returns, commission = np.empty(trades), np.empty(trades), np.empty(trades)
        long = np.empty(trades, np.bool_)
        entry_ns, exit_ns = np.empty(trades, np.int64), np.empty(trades, np.int64)
        exit_bars = np.empty(trades, np.int64)
        edges = np.zeros(count + 1, np.int64)
        for i in range(count):
            part = parts[i]
            lo = edges[i]
            hi = edges[i + 1] = lo + len(part[0])
            pnl[lo:hi], returns[lo:hi], commission[lo:hi] = part[0], part[1], part[2]
            long[lo:hi], entry_ns[lo:hi], exit_ns[lo:hi] = part[3], part[4], part[5]
            exit_bars[lo:hi] = part[6]
        order = exit_order(exit_bars, edges, by_name, size)
        pnl, returns, commission = pnl[order], returns[order], commission[order]
        long, entry_ns, exit_ns = long[order], entry_ns[order], exit_ns[order]
        exit_bars = exit_bars[order]
        measure(equity, union, day_last, total, market, spread, buy_hold, held, True, -1, pnl,
                returns, commission, long, entry_ns, exit_ns, exit_bars, out[r])  # fmt: skip
