"""Run a strategy over one symbol's bars, and add symbols up into a portfolio.

This is the library behind ``run_backtest`` and :func:`backtest`. No printing here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..bars import OHLCV
from ..settings import split_symbols
from ..strategy import Strategy, StrategyConfig, configure
from ..timeframes import Timeframe, parse_time
from .datafiles import MissingDataError, SymbolData, load_symbol
from .engine import Costs, Refused, Sizing, simulate
from .statistics import Statistics, compute_statistics

__all__ = [
    "BacktestOptions",
    "SymbolResult",
    "PortfolioResult",
    "RunResult",
    "backtest",
    "backtest_symbol",
    "combine",
    "run_symbols",
]

DEFAULT_YEARS = 2
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestOptions:
    """Everything about a run except the strategy and the data."""

    start: pd.Timestamp | None = None  # first bar traded (inclusive)
    end: pd.Timestamp | None = None  # last bar used (exclusive bound)
    capital: float = 100_000.0  # per symbol
    costs: Costs = field(default_factory=Costs)
    sizing: Sizing = field(default_factory=Sizing)
    flat_at_close: bool = False


@dataclass
class SymbolResult:
    """One symbol's backtest: the traded window's candles with indicators, equity, trades."""

    symbol: str
    config: StrategyConfig
    options: BacktestOptions
    data: SymbolData
    candles: pd.DataFrame  # OHLCV + indicators, traded window only
    equity: pd.Series
    position: np.ndarray
    trades: pd.DataFrame
    statistics: Statistics
    refused: Refused | None = None  # entries the cash could not pay for

    def refusal_message(self) -> str | None:
        """One line on the entries refused for lack of cash, or None if there were none."""
        r = self.refused
        if r is None:
            return None
        count = f"{r.count:,} entr{'y' if r.count == 1 else 'ies'} refused"
        first = f"first {r.first_time:%Y-%m-%d %H:%M}: {r.cost:,.2f} with commission"
        if self.options.sizing.fixed_shares:
            return (
                f"{self.symbol}: {count}: {r.shares:,g} shares cost more than the cash "
                f"({first}, cash {r.cash:,.2f}); there is no leverage, so lower the size "
                "or raise the capital"
            )
        return f"{self.symbol}: {count}: the cash buys no share ({first}, cash {r.cash:,.2f})"


@dataclass
class PortfolioResult:
    """The symbols added up: summed equity (each from its own capital) and statistics."""

    symbols: list[str]
    equity: pd.Series
    trades: pd.DataFrame
    statistics: Statistics


class WindowError(ValueError):
    """The requested period holds no bars."""


def _window(index: pd.DatetimeIndex, options: BacktestOptions) -> tuple[int, int]:
    """Positions [first traded bar, end) in ``index`` for the options' period."""
    stop = len(index) if options.end is None else int(index.searchsorted(options.end, "left"))
    if stop == 0:
        raise WindowError("no bars before the end of the period")
    last = index[stop - 1]
    start_time = options.start
    if start_time is None:
        start_time = last - pd.DateOffset(years=DEFAULT_YEARS)
        first = int(index.searchsorted(start_time, "right"))
    else:
        first = int(index.searchsorted(start_time, "left"))
    if first >= stop:
        raise WindowError("no bars in the period")
    return first, stop


def backtest_symbol(
    config: StrategyConfig, data: SymbolData, options: BacktestOptions
) -> SymbolResult:
    """Backtest ``config``'s strategy on one symbol. Bars before the window warm the
    indicators up but are not traded; bars after it are not used at all."""
    first, stop = _window(data.bars.index, options)
    bars = data.bars.iloc[:stop]
    # One batch computation serves the position rule and the cached candles alike.
    values = config.compute(bars)
    target = config.positions_from(values)
    sim = simulate(
        bars,
        target,
        start=first,
        capital=options.capital,
        costs=options.costs,
        sizing=options.sizing,
        flat_at_close=options.flat_at_close,
    )
    candles = (
        bars[list(OHLCV)]
        .iloc[first:]
        .assign(**{column: values[column][first:] for column in config.columns})
    )
    equity = pd.Series(sim.equity, index=candles.index, name=data.symbol)
    stats = compute_statistics(equity, sim.trades, candles["close"], options.capital, sim.position)
    trades = sim.trades.assign(symbol=data.symbol)
    return SymbolResult(
        symbol=data.symbol,
        config=config,
        options=options,
        data=data,
        candles=candles,
        equity=equity,
        position=sim.position,
        trades=trades,
        statistics=stats,
        refused=sim.refused,
    )


def combine(results: list[SymbolResult]) -> PortfolioResult:
    """Add the symbols' equity curves (each symbol trades its own capital) into one."""
    if not results:
        raise ValueError("no results to combine")
    capital = sum(r.options.capital for r in results)
    frame = pd.concat({r.symbol: r.equity for r in results}, axis=1).sort_index().ffill()
    for r in results:  # before a symbol's first bar its capital sits in cash
        frame[r.symbol] = frame[r.symbol].fillna(r.options.capital)
    equity = frame.sum(axis=1).rename("portfolio")
    held = pd.concat(
        {r.symbol: pd.Series(np.abs(r.position), index=r.equity.index) for r in results}, axis=1
    )
    held = held.reindex(equity.index).ffill().fillna(0).sum(axis=1).to_numpy()
    # Buy & hold of the basket: each symbol's capital held from its first to its last bar.
    basket = pd.concat(
        {
            r.symbol: r.candles["close"] / r.candles["close"].iloc[0] * r.options.capital
            for r in results
        },
        axis=1,
    ).reindex(equity.index)
    for r in results:
        basket[r.symbol] = basket[r.symbol].ffill().fillna(r.options.capital)
    trades = pd.concat([r.trades for r in results], ignore_index=True)
    trades = trades.sort_values(["exit_time", "symbol"], kind="stable", ignore_index=True)
    stats = compute_statistics(equity, trades, basket.sum(axis=1), capital, held)
    return PortfolioResult([r.symbol for r in results], equity, trades, stats)


def period_label(result: SymbolResult) -> str:
    """``2024-10-31 .. 2026-10-30`` for the traded window."""
    index = result.candles.index
    return f"{index[0]:%Y-%m-%d} .. {index[-1]:%Y-%m-%d}" if len(index) else "empty"


@dataclass
class RunResult:
    """A multi-symbol run: results per symbol, the portfolio, and the symbols skipped.
    ``print(run)`` shows what ``run_backtest`` prints (without the trade blotters)."""

    results: list[SymbolResult]
    portfolio: PortfolioResult
    skipped: dict[str, str]  # symbol -> why (no data)

    @property
    def statistics(self) -> Statistics:
        """The portfolio's statistics (one symbol: that symbol's)."""
        return self.portfolio.statistics

    @property
    def trades(self) -> pd.DataFrame:
        """Every round trip of every symbol, by exit time."""
        return self.portfolio.trades

    def report(self, trades: int = 10) -> str:
        """The console report: header, ``trades`` blotter lines per symbol (0 = all, None =
        no blotters), per-symbol summary, equity by month and totals."""
        from .report import full_report  # report imports this module

        return full_report(self, trades)

    def __str__(self) -> str:
        return self.report(trades=None)


def _run_one(config: StrategyConfig, data_dir: str, symbol: str, options: BacktestOptions):
    # Top-level so worker processes can pickle it.
    try:
        data = load_symbol(data_dir, symbol, config.timeframe)
    except MissingDataError as exc:
        return symbol, None, str(exc)
    try:
        return symbol, backtest_symbol(config, data, options), None
    except WindowError as exc:
        return symbol, None, f"{data.path}: {exc}"


def run_symbols(
    config: StrategyConfig,
    data_dir: str,
    options: BacktestOptions,
    jobs: int = 1,
    progress: bool | None = None,
) -> RunResult:
    """Backtest every symbol of ``config`` (in ``jobs`` processes). Symbols without data are
    skipped with the reason; a malformed file raises DataFileError; none at all raises
    MissingDataError."""
    if not Path(data_dir).is_dir():  # once, not once per symbol
        raise MissingDataError(f"{data_dir}: data folder not found")
    symbols = list(config.symbols)
    # tqdm's disable=None shows the bar only on a terminal; one symbol needs no bar.
    show = None if progress is None and len(symbols) > 1 else bool(progress)
    bar = tqdm(
        total=len(symbols),
        desc="backtest",
        unit="symbol",
        leave=False,
        disable=not show if show is not None else None,
    )
    outcomes = []
    if jobs > 1 and len(symbols) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(symbols))) as pool:
            futures = [pool.submit(_run_one, config, data_dir, s, options) for s in symbols]
            for future in futures:
                outcomes.append(future.result())
                bar.update()
    else:
        for symbol in symbols:
            outcomes.append(_run_one(config, data_dir, symbol, options))
            bar.update()
    bar.close()
    results = [r for _, r, _ in outcomes if r is not None]
    skipped = {s: why for s, r, why in outcomes if r is None}
    for result in results:  # here, not in the workers: their logging is not set up
        message = result.refusal_message()
        if message:
            log.warning("%s", message)
    if not results:
        reasons = "; ".join(skipped.values())
        raise MissingDataError(f"nothing to backtest: {reasons}")
    return RunResult(results, combine(results), skipped)


def backtest(
    strategy: Strategy | str,
    symbols: str | Sequence[str] | None = None,
    timeframe: str | Timeframe | None = None,
    *,
    data_dir: str | Path = "market_data",
    params: Mapping[str, Any] | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    capital: float = 100_000.0,
    commission: float = 0.005,
    slippage: float = 0.0,
    allocation: float = 1.0,
    size: float | None = None,
    fractional: bool = False,
    flat_at_close: bool = False,
    cache_dir: str | Path | None = None,
    jobs: int = 1,
) -> RunResult:
    """Backtest ``strategy`` (a :class:`~quant_trading.strategy.Strategy` object or a
    registered name) from a script, with the same engine and defaults as ``run_backtest``.

    ``params`` override the strategy's defaults (strategy.env is not read); ``start``/``end``
    take ``2025-01-31`` or ``2025-01-31 10:00`` (New York); with ``cache_dir`` each symbol's
    result is cached there for the visualizer. ``allocation`` is a fraction of equity (at
    most 1, commission included); ``size`` shares that the cash cannot pay for are not
    bought, with a warning per symbol. Raises StrategyError, MissingDataError or
    DataFileError with a one-line message, ValueError for a bad sizing.
    """
    if isinstance(symbols, str):
        symbols = split_symbols(symbols)
    config = configure(strategy, {}, timeframe=timeframe, symbols=symbols, params=params,
                       source="params")  # fmt: skip
    options = BacktestOptions(
        start=None if start is None else parse_time(str(start)),
        end=None if end is None else parse_time(str(end), end=True),
        capital=capital,
        costs=Costs(commission_per_share=commission, slippage=slippage),
        sizing=Sizing(allocation=allocation, fixed_shares=size, fractional=fractional),
        flat_at_close=flat_at_close,
    )
    run = run_symbols(config, str(data_dir), options, jobs=jobs, progress=False)
    if cache_dir is not None:
        from .cache import write_cache

        for result in run.results:
            write_cache(result, cache_dir)
    return run
