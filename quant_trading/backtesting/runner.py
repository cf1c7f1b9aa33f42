"""Run a strategy over one symbol's bars, and add symbols up into a portfolio.

This is the library behind ``run_backtest`` and :func:`backtest`. No printing here.

Memory stays flat however many symbols run: as soon as a symbol's result is computed (and its
cache file written, by the process that computed it) it is reduced to a
:class:`SymbolSummary` (trades and statistics, no per-bar arrays) and its equity, shares held
and buy & hold are added into the portfolio's running sums; the per-bar arrays are dropped,
and without ``keep_series`` no per-bar frame is ever built. The sums add the symbols in the
order they were asked for, whichever process finished first, so ``jobs`` never changes a
number.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, fields
from datetime import tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..bars import OHLCV
from ..settings import split_symbols
from ..strategy import Strategy, StrategyConfig, configure
from ..timeframes import Timeframe, parse_time
from .cache import CacheStage, CandleArrays, stage_file
from .datafiles import MissingDataError, SymbolData, load_symbol, symbol_files
from .engine import Costs, Refused, RoundTrips, Sizing, simulate
from .statistics import Statistics, TradeArrays, bars_at, compute_statistics, measure_arrays

__all__ = [
    "BacktestOptions",
    "DataSource",
    "SymbolSummary",
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

    @classmethod
    def of(
        cls,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        capital: float = 100_000.0,
        commission: float = 0.005,
        slippage: float = 0.0,
        allocation: float = 1.0,
        size: float | None = None,
        fractional: bool = False,
        flat_at_close: bool = False,
    ) -> BacktestOptions:
        """The options from the flat settings a script passes (``start``/``end`` as
        ``2025-01-31`` or ``2025-01-31 10:00`` New York, ``end`` inclusive of its day)."""
        return cls(
            start=None if start is None else parse_time(str(start)),
            end=None if end is None else parse_time(str(end), end=True),
            capital=capital,
            costs=Costs(commission_per_share=commission, slippage=slippage),
            sizing=Sizing(allocation=allocation, fixed_shares=size, fractional=fractional),
            flat_at_close=flat_at_close,
        )


@dataclass(frozen=True)
class DataSource:
    """The file a symbol's bars were read from and what it held (not the bars themselves)."""

    path: Path
    timeframe: Timeframe  # of the bars backtested
    source_timeframe: Timeframe  # the file's own bar size (finer when aggregated)
    sha256: str
    rows: int  # bars at ``timeframe``, the whole file (not only the window)
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    unused: tuple[Path, ...] = ()  # other files of the same bar size, lower in precedence

    @classmethod
    def of(cls, data: SymbolData) -> DataSource:
        index = data.bars.index
        return cls(
            path=data.path,
            timeframe=data.timeframe,
            source_timeframe=data.source_timeframe,
            sha256=data.sha256,
            rows=len(index),
            first=index[0] if len(index) else None,
            last=index[-1] if len(index) else None,
            unused=data.unused,
        )


@dataclass
class SymbolSummary:
    """One symbol's backtest without its per-bar arrays: the trades, statistics and where its
    data came from. What :attr:`RunResult.results` holds when the series are not kept."""

    symbol: str
    config: StrategyConfig
    options: BacktestOptions
    source: DataSource
    first_bar: pd.Timestamp  # the traded window's first bar
    last_bar: pd.Timestamp  # and its last
    bar_count: int  # bars in the traded window
    round_trips: RoundTrips  # the trades as arrays, named by the symbol
    statistics: Statistics
    refused: Refused | None = None  # entries the cash could not pay for

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per round trip, with the symbol (:meth:`RoundTrips.frame`), built on
        first use: a run's report and cache read the arrays."""
        return self.round_trips.frame()

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
class SymbolResult(SymbolSummary):
    """One symbol's whole backtest: the summary plus the traded window's candles with
    indicators, the equity and the shares held at each bar's close, and the bars read."""

    _: KW_ONLY
    data: SymbolData
    candles: pd.DataFrame  # OHLCV + indicators, traded window only
    equity: pd.Series
    position: np.ndarray

    def summary(self) -> SymbolSummary:
        """The result without its per-bar arrays."""
        return SymbolSummary(**{f.name: getattr(self, f.name) for f in fields(SymbolSummary)})


@dataclass(init=False)
class PortfolioResult:
    """The symbols added up: summed equity (each from its own capital), every trade by exit
    time (:attr:`trades`), and statistics."""

    symbols: list[str]
    equity: pd.Series
    _trades: pd.DataFrame | _SortedTrades = field(repr=False, compare=False)
    statistics: Statistics

    def __init__(
        self,
        symbols: list[str],
        equity: pd.Series,
        trades: pd.DataFrame | _SortedTrades,
        statistics: Statistics,
    ) -> None:
        self.symbols, self.equity, self._trades, self.statistics = (
            symbols, equity, trades, statistics,
        )  # fmt: skip

    @property
    def trades(self) -> pd.DataFrame:
        """Every round trip of every symbol, by exit time, then symbol. A run assembles this
        frame on first use only: reporting the statistics does not need it."""
        if isinstance(self._trades, _SortedTrades):
            self._trades = self._trades.frame()
        return self._trades


@dataclass(frozen=True)
class _SortedTrades:
    """The symbols' trades frames and the rows of their concatenation by exit time, then
    symbol: :attr:`PortfolioResult.trades` before it is assembled."""

    frames: Sequence[pd.DataFrame | RoundTrips]
    order: np.ndarray

    def frame(self) -> pd.DataFrame:
        trades = pd.concat(_frames(self.frames), ignore_index=True)
        return trades.take(self.order).reset_index(drop=True)


def _frames(trades: Sequence[pd.DataFrame | RoundTrips]) -> list[pd.DataFrame]:
    """Trades frames, built from any round trips given as arrays."""
    return [t.frame() if isinstance(t, RoundTrips) else t for t in trades]


class WindowError(ValueError):
    """The requested period holds no bars."""


def trading_window(index: pd.DatetimeIndex, options: BacktestOptions) -> tuple[int, int]:
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
    return _backtest_arrays(config, data, options).result()


@dataclass
class _Computed:
    """One symbol's backtest before any per-bar frame is built: its summary and its per-bar
    arrays, from which its cache file, its part of the portfolio and (when asked for) its
    :class:`SymbolResult` are made. A run that keeps no series never builds the frames."""

    summary: SymbolSummary
    candles: CandleArrays
    data: SymbolData
    bars: pd.DataFrame  # the bars read, up to the window's end
    first: int  # the window's first bar in ``bars``
    values: dict[str, np.ndarray]  # the strategy's computed columns over ``bars``

    def result(self) -> SymbolResult:
        """The whole result, with the candles and the equity as frames."""
        summary, first = self.summary, self.first
        candles = (
            self.bars[list(OHLCV)]
            .iloc[first:]
            .assign(**{column: self.values[column][first:] for column in summary.config.columns})
        )
        equity = pd.Series(self.candles.equity, index=candles.index, name=summary.symbol)
        return SymbolResult(
            **{f.name: getattr(summary, f.name) for f in fields(SymbolSummary)},
            data=self.data,
            candles=candles,
            equity=equity,
            position=self.candles.position,
        )


def _backtest_arrays(
    config: StrategyConfig, data: SymbolData, options: BacktestOptions
) -> _Computed:
    first, stop = trading_window(data.bars.index, options)
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
    index = bars.index[first:]
    columns = {c: np.asarray(values[c][first:], np.float64) for c in (*OHLCV, *config.columns)}
    trips = sim.round_trips.named(data.symbol)
    stats = measure_arrays(index, sim.equity, TradeArrays.of_round_trips(trips),
                           columns["close"], options.capital, sim.position)  # fmt: skip
    summary = SymbolSummary(
        symbol=data.symbol,
        config=config,
        options=options,
        source=DataSource.of(data),
        first_bar=index[0],
        last_bar=index[-1],
        bar_count=len(index),
        round_trips=trips,
        statistics=stats,
        refused=sim.refused,
    )
    candles = CandleArrays(index, columns, sim.equity, sim.position)
    return _Computed(summary, candles, data, bars, first, values)


@dataclass
class _PortfolioPart:
    """What the portfolio needs of one symbol's per-bar arrays (kept only until added)."""

    times: np.ndarray  # epoch nanoseconds of the traded bars
    equity: np.ndarray
    held: np.ndarray  # shares held (either side) at each close
    basket: np.ndarray  # buy & hold: the symbol's capital in its shares from the first bar
    capital: float
    tz: tzinfo | None
    name: str | None  # the index's name

    @classmethod
    def of(cls, result: SymbolResult) -> _PortfolioPart:
        return cls.of_arrays(CandleArrays.of(result), result.options.capital)

    @classmethod
    def of_arrays(cls, candles: CandleArrays, capital: float) -> _PortfolioPart:
        """A symbol's part from its per-bar arrays, and the capital it trades."""
        index = candles.index
        close = candles.columns["close"]
        return cls(
            times=index.as_unit("ns").asi8,
            equity=np.asarray(candles.equity, np.float64),
            held=np.abs(np.asarray(candles.position, np.float64)),
            basket=close / close[0] * capital,
            capital=capital,
            tz=index.tz,
            name=index.name,
        )


def _carry(values: np.ndarray, at: np.ndarray, before: float) -> np.ndarray:
    """``values`` at positions ``at`` (the last bar at or before each time), ``before`` where
    there is none yet."""
    out = values[np.maximum(at, 0)]
    out[at < 0] = before
    return out


class _PortfolioSum:
    """The portfolio's per-bar series, added up one symbol at a time on the union of their
    bars. Between a symbol's bars its last value carries on, and before its first bar its
    capital sits in cash (buy & hold too; no shares held). Symbols are added in order, each
    onto the sum of those before it: the same additions, in the same order, as summing a
    frame of all the symbols' columns row by row, so the result is that frame's to the bit."""

    def __init__(self) -> None:
        self.times: np.ndarray | None = None
        self.capital = 0.0
        self.tz: tzinfo | None = None
        self.name: str | None = None

    def add(self, part: _PortfolioPart) -> None:
        """Add one symbol's series."""
        if self.times is None:
            self.times, self.tz, self.name = part.times, part.tz, part.name
            self.equity, self.held = part.equity.copy(), part.held.copy()
            self.basket = part.basket.copy()
            self.capital += part.capital
            return
        equity, held, basket = part.equity, part.held, part.basket
        if not np.array_equal(self.times, part.times):
            union = np.union1d(self.times, part.times)
            at = np.searchsorted(self.times, union, "right") - 1
            self.equity = _carry(self.equity, at, self.capital)
            self.held = _carry(self.held, at, 0.0)
            self.basket = _carry(self.basket, at, self.capital)
            at = np.searchsorted(part.times, union, "right") - 1
            equity = _carry(equity, at, part.capital)
            held = _carry(held, at, 0.0)
            basket = _carry(basket, at, part.capital)
            self.times = union
        self.equity += equity
        self.held += held
        self.basket += basket
        self.capital += part.capital

    def portfolio(
        self, symbols: list[str], trades: Sequence[pd.DataFrame | RoundTrips]
    ) -> PortfolioResult:
        """The portfolio of the symbols added, with their ``trades``: round trips (the
        statistics then come from their arrays, and the frame of all trades is built only if
        asked for) or frames with a symbol column (a walk-forward's stitched windows)."""
        if self.times is None:
            raise ValueError("no results to combine")
        index = pd.DatetimeIndex(self.times.view("M8[ns]"), name=self.name)
        if self.tz is not None:
            index = index.tz_localize("UTC").tz_convert(self.tz)
        equity = pd.Series(self.equity, index=index, name="portfolio")
        times = self.times
        found = None
        if trades and all(isinstance(t, RoundTrips) for t in trades):
            measured = [TradeArrays.of_round_trips(t) for t in trades]
            found = _exit_order(symbols, measured, times)
        if found is None:
            frame = _by_exit(pd.concat(_frames(trades), ignore_index=True))
            basket = pd.Series(self.basket, index=index)
            stats = compute_statistics(equity, frame, basket, self.capital, self.held)
            return PortfolioResult(symbols, equity, frame, stats)
        order, exit_bars = found
        every = TradeArrays(**{
            f.name: np.concatenate([getattr(arrays, f.name) for arrays in measured])[order]
            for f in fields(TradeArrays)
        })  # fmt: skip
        stats = measure_arrays(index, self.equity, every, self.basket, self.capital, self.held,
                               exit_bars)  # fmt: skip
        return PortfolioResult(symbols, equity, _SortedTrades(trades, order), stats)


def _exit_order(
    symbols: list[str], measured: list[TradeArrays], times: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows of the symbols' trades, one after the other, in :func:`_by_exit`'s order,
    and the bar of each (sorted) exit in ``times``; None unless every exit is one of
    ``times`` and they rise (then pandas' rules apply, for missing times too)."""
    from ._statistics_jit import exit_order  # numba: measure_arrays loads it anyway

    exits = np.concatenate([arrays.exit_ns for arrays in measured])
    bars = bars_at(times, exits)
    if (bars < 0).any() or not (times[1:] > times[:-1]).all():
        return None
    edges = np.cumsum([0] + [len(arrays.exit_ns) for arrays in measured])
    order = exit_order(bars, edges, np.argsort(symbols, kind="stable"), len(times))
    return order, bars[order]


def _by_exit(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades sorted by exit time, then symbol name, keeping their order where both are
    the same: ``sort_values(["exit_time", "symbol"], kind="stable")``, but sorting integers
    (exit nanoseconds, each symbol's rank by name) rather than hundreds of thousands of
    strings, several times quicker."""
    exit_time, symbol = trades["exit_time"], trades["symbol"]
    if not isinstance(exit_time.dtype, pd.DatetimeTZDtype | np.dtypes.DateTime64DType) or (
        exit_time.hasnans or symbol.hasnans
    ):  # missing values sort last there; keep pandas' own rule for them
        return trades.sort_values(["exit_time", "symbol"], kind="stable", ignore_index=True)
    codes, names = pd.factorize(symbol)
    rank = np.empty(len(names), np.int64)
    rank[np.argsort(np.asarray(names, dtype=object), kind="stable")] = np.arange(len(names))
    order = np.lexsort((rank[codes], exit_time.array.as_unit("ns").asi8))
    return trades.take(order).reset_index(drop=True)


def combine(results: list[SymbolResult]) -> PortfolioResult:
    """Add the symbols' equity curves (each symbol trades its own capital) into one."""
    total = _PortfolioSum()
    for result in results:
        total.add(_PortfolioPart.of(result))
    return total.portfolio([r.symbol for r in results], [r.round_trips for r in results])


def period_label(result: SymbolSummary) -> str:
    """``2024-10-31 .. 2026-10-30`` for the traded window."""
    if not result.bar_count:
        return "empty"
    return f"{result.first_bar:%Y-%m-%d} .. {result.last_bar:%Y-%m-%d}"


@dataclass
class RunResult:
    """A multi-symbol run: results per symbol, the portfolio, and the symbols skipped.
    ``print(run)`` shows what ``run_backtest`` prints (without the trade blotters)."""

    results: list[SymbolSummary]  # SymbolResults (with candles, equity) if series are kept
    portfolio: PortfolioResult
    skipped: dict[str, str]  # symbol -> why (no data)
    cache_files: list[Path] = field(default_factory=list)  # written by this run, in order

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


@dataclass
class _Outcome:
    """One symbol's run as the process that ran it hands it over (a worker process pickled):
    reduced, unless series are kept."""

    symbol: str
    result: SymbolSummary | None = None
    part: _PortfolioPart | None = None
    staged: str | None = None  # its cache file's name in the stage folder
    why: str | None = None  # skipped: why


def _run_one(
    task: tuple[str, list[tuple[Path, Timeframe]]],
    config: StrategyConfig,
    data_dir: str,
    options: BacktestOptions,
    stage_folder: Path | None,
    keep_series: bool,
) -> _Outcome:
    # Top-level so worker processes can pickle it. ``task``: the symbol and its files.
    symbol, found = task
    try:
        data = load_symbol(data_dir, symbol, config.timeframe, found)
    except MissingDataError as exc:
        return _Outcome(symbol, why=str(exc))
    try:
        computed = _backtest_arrays(config, data, options)
    except WindowError as exc:
        return _Outcome(symbol, why=f"{data.path}: {exc}")
    summary, candles = computed.summary, computed.candles
    staged = None if stage_folder is None else stage_file(summary, stage_folder, candles)
    kept = computed.result() if keep_series else summary
    part = _PortfolioPart.of_arrays(candles, options.capital)
    return _Outcome(symbol, kept, part, staged)


def _outcomes(tasks: list[tuple], jobs: int, *args) -> Iterator[_Outcome]:
    """Each task's outcome (a symbol and its files), in order, from ``jobs`` processes: this
    one and ``jobs - 1`` workers. The workers are handed a few tasks ahead, not all, and this
    process runs the next ones itself while theirs are not done: no process sits idle, and
    the outcomes it computes need no pickling. Finished outcomes wait in memory for their
    turn."""
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield _run_one(task, *args)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # The first symbol runs here: it loads the compiled kernels, which forked workers then
    # inherit instead of each spending ~0.7 s of CPU loading them again.
    first = _run_one(tasks[0], *args)
    fork = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork") if fork else None
    workers = min(jobs - 1, len(tasks) - 1)
    given: dict[int, Any] = {}  # task -> its future in a worker
    ready: dict[int, _Outcome] = {}  # task -> its outcome, waiting for its turn
    todo = 1  # the first task not started yet
    # What this process holds now (modules, compiled code) a worker shares with it until
    # either writes to a page, and the garbage collector writes to every object it scans:
    # frozen while the workers live, those objects are not scanned, and their pages stay
    # shared rather than copied (20-30 MB less per worker).
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            try:

                def hand_out() -> None:
                    # Two tasks per worker not done yet: one to run, the next ready for it.
                    nonlocal todo
                    busy = sum(not future.done() for future in given.values())
                    while todo < len(tasks) and busy < 2 * workers:
                        given[todo] = pool.submit(_run_one, tasks[todo], *args)
                        todo, busy = todo + 1, busy + 1

                hand_out()
                # Only now, with the workers forked, may the caller start threads (the cache
                # stage's flushing): a fork copies no thread, nor a lock one of them held.
                yield first
                for turn in range(1, len(tasks)):
                    while turn not in ready:
                        if turn in given and (given[turn].done() or todo == len(tasks)):
                            ready[turn] = given.pop(turn).result()
                        else:  # the worker's is not done: run the next task here meanwhile
                            ready[todo] = _run_one(tasks[todo], *args)
                            todo += 1
                        hand_out()
                    yield ready.pop(turn)
            except BaseException:  # workers still writing finish before the stage is removed
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        gc.unfreeze()


def run_symbols(
    config: StrategyConfig,
    data_dir: str,
    options: BacktestOptions,
    jobs: int = 1,
    progress: bool | None = None,
    *,
    cache_dir: str | Path | None = None,
    keep_series: bool = True,
) -> RunResult:
    """Backtest every symbol of ``config`` (in ``jobs`` processes). Symbols without data are
    skipped with the reason; a malformed file raises DataFileError; none at all raises
    MissingDataError.

    With ``cache_dir`` each symbol's cache file is written as soon as it is computed (by the
    process that computed it), into a hidden folder of ``<cache_dir>/<timeframe>/``, and all
    of them are moved into place only when the whole run succeeded: a failed run leaves the
    cache as it was (CacheWriteError if a file cannot be written). ``keep_series=False``
    keeps only each symbol's :class:`SymbolSummary`, so memory does not grow with the
    symbols' bars; the report and the portfolio are the same either way.
    """
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
    stage = None
    try:
        stage = CacheStage(cache_dir, config.timeframe) if cache_dir is not None else None
        results: list[SymbolSummary] = []
        skipped: dict[str, str] = {}
        total = _PortfolioSum()
        folder = stage.folder if stage else None
        # The folder is listed once, here, and each symbol's files travel with it.
        tasks = list(zip(symbols, symbol_files(data_dir, symbols, config.timeframe)))
        for outcome in _outcomes(tasks, jobs, config, data_dir, options, folder, keep_series):
            bar.update()
            if outcome.result is None:
                skipped[outcome.symbol] = outcome.why
                continue
            total.add(outcome.part)
            results.append(outcome.result)
            if stage:
                stage.add(outcome.staged)
        bar.close()
        for result in results:  # here, not in the workers: their logging is not set up
            message = result.refusal_message()
            if message:
                log.warning("%s", message)
        if not results:
            reasons = "; ".join(skipped.values())
            raise MissingDataError(f"nothing to backtest: {reasons}")
        portfolio = total.portfolio([r.symbol for r in results], [r.round_trips for r in results])
        # Results are complete before any cache file is touched.
        written = stage.commit() if stage else []
    except BaseException:
        if stage:
            stage.discard()
        raise
    finally:
        bar.close()
    return RunResult(results, portfolio, skipped, written)


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
    keep_series: bool = True,
) -> RunResult:
    """Backtest ``strategy`` (a :class:`~quant_trading.strategy.Strategy` object or a
    registered name) from a script, with the same engine and defaults as ``run_backtest``.

    ``params`` override the strategy's defaults (strategy.env is not read); ``start``/``end``
    take ``2025-01-31`` or ``2025-01-31 10:00`` (New York); with ``cache_dir`` each symbol's
    result is cached there for the visualizer. ``run.results`` holds each symbol's
    :class:`SymbolResult` (candles with indicators, equity, trades, statistics), or with
    ``keep_series=False`` its :class:`SymbolSummary` only (trades, statistics), which keeps
    memory flat over many symbols. ``allocation`` is a fraction of equity (at
    most 1, commission included); ``size`` shares that the cash cannot pay for are not
    bought, with a warning per symbol. Raises StrategyError, MissingDataError or
    DataFileError with a one-line message, ValueError for a bad sizing.
    """
    if isinstance(symbols, str):
        symbols = split_symbols(symbols)
    config = configure(strategy, {}, timeframe=timeframe, symbols=symbols, params=params,
                       source="params")  # fmt: skip
    options = BacktestOptions.of(start, end, capital, commission, slippage, allocation, size,
                                 fractional, flat_at_close)  # fmt: skip
    return run_symbols(config, str(data_dir), options, jobs=jobs, progress=False,
                       cache_dir=cache_dir, keep_series=keep_series)  # fmt: skip
