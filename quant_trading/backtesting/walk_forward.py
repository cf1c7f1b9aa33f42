"""Walk-forward optimization: choose the parameters on a past window, trade them on the next.

    python -m quant_trading.backtesting.optimize --symbols AAPL --timeframe 5m \\
        --param FAST=8:14:2 --param SLOW=20:30:5 --walk-forward 6M:1M

The period is cut into windows: an in-sample window (``6M``) on which every combination is
backtested, as :func:`~.optimize.optimize` does, followed by an out-of-sample window
(``1M``) on which the best combination is traded. The next window starts one out-of-sample
length later (rolling), or at the same place with a longer in-sample window (anchored). An
in-sample search reads no bar at or after its window's end: the bars are cut there (the
runner's ``end``), so what comes later cannot change what was chosen.

Each out-of-sample window is a backtest of its own (the engine's ``start``: bars before the
window only warm the indicators up; the position opens at the first signal inside it and is
closed at its last close), starting from the equity the previous window ended with. Their
equity curves, stitched, are the out-of-sample result, with statistics computed as for any
backtest; beside the in-sample statistics they show how much of the in-sample score was
over-fitting.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..strategy import Strategy, StrategyConfig
from ..timeframes import Timeframe
from .datafiles import SymbolData
from .optimize import (
    OBJECTIVES,
    OptimizeError,
    OptimizeResult,
    SearchSpace,
    _cluster,
    _combinations,
    _load,
    _prepared,
    _Search,
    _search_table,
)
from .runner import (
    BacktestOptions,
    SymbolResult,
    WindowError,
    _PortfolioPart,
    _PortfolioSum,
    backtest_symbol,
    combine,
    trading_window,
)
from .statistics import Statistics, compute_statistics

__all__ = [
    "Span",
    "Window",
    "WindowResult",
    "WalkForwardResult",
    "parse_walk_forward",
    "walk_forward",
    "windows",
]

log = logging.getLogger(__name__)

#: A window length's unit: its letter and the calendar offset it stands for.
_UNITS = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}
_SPAN = re.compile(r"^\s*(\d+)\s*([DWMY])\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    """A window's length in calendar units: ``6M`` is six months, ``2W`` two weeks."""

    count: int
    unit: str  # D, W, M or Y

    def offset(self, times: int = 1) -> pd.DateOffset:
        """``times`` of this length, as a calendar offset (months keep the day of month)."""
        return pd.DateOffset(**{_UNITS[self.unit]: self.count * times})

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def parse_walk_forward(text: str) -> tuple[Span, Span]:
    """``IN:OUT`` (``6M:1M``, ``10D:2D``; units D, W, M, Y) as (in-sample, out-of-sample)
    lengths; OptimizeError with the spelling if it is not one."""
    parts = text.split(":")
    found = [_SPAN.match(p) for p in parts]
    if len(parts) != 2 or not all(found) or any(int(m[1]) <= 0 for m in found):
        raise OptimizeError(
            f"--walk-forward {text}: use IN:OUT, each a positive number of days, weeks, "
            "months or years (D, W, M, Y), e.g. 6M:1M or 10D:2D"
        )
    first, second = (Span(int(m[1]), m[2].upper()) for m in found)
    return first, second


@dataclass(frozen=True)
class Window:
    """One step of the walk: its in-sample and out-of-sample periods, each [start, end)."""

    number: int  # from 1
    in_start: pd.Timestamp
    in_end: pd.Timestamp
    out_start: pd.Timestamp  # == in_end
    out_end: pd.Timestamp

    def span(self, part: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The first and last day of the ``in`` or ``out`` period (midnights)."""
        if part == "in":
            start, end = self.in_start, self.in_end
        else:
            start, end = self.out_start, self.out_end
        return start.normalize(), (end - pd.Timedelta(1, "ns")).normalize()

    def label(self, part: str) -> str:
        """``2025-01-01..2025-06-30``: the days of the ``in`` or ``out`` period."""
        first, last = self.span(part)
        return f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"


def windows(
    start: pd.Timestamp,
    end: pd.Timestamp,
    in_sample: Span,
    out_of_sample: Span,
    anchored: bool = False,
) -> list[Window]:
    """The windows from ``start`` to ``end`` (exclusive): the first in-sample window starts at
    ``start``; each next one a step of ``out_of_sample`` later (anchored: it keeps its start
    and grows). Every length is counted from ``start``, so months do not drift (Jan 31 + 1M
    is Feb 28, + 2M is Mar 31). The last out-of-sample window is cut at ``end``."""
    found: list[Window] = []
    for step in range(1_000_000):
        in_start = start if anchored else start + out_of_sample.offset(step)
        in_end = _after(start, in_sample, out_of_sample, step)
        if in_end >= end:
            break
        out_end = min(_after(start, in_sample, out_of_sample, step + 1), end)
        found.append(Window(len(found) + 1, in_start, in_end, in_end, out_end))
    return found


def _after(start: pd.Timestamp, first: Span, then: Span, times: int) -> pd.Timestamp:
    """``start`` + ``first`` + ``times`` x ``then``, as one offset when the units agree (Jan
    31 + 7M is Aug 31; + 6M and then + 1M would be Aug 30)."""
    if first.unit == then.unit:
        return start + Span(first.count + times * then.count, first.unit).offset()
    return start + first.offset() + then.offset(times)


@dataclass
class WindowResult:
    """One window walked: its in-sample search, the parameters chosen (None: no combination
    was eligible, and the window stayed in cash) and its out-of-sample statistics."""

    window: Window
    search: OptimizeResult  # the in-sample search, ranked
    out_of_sample: Statistics | None  # the window traded alone, from the equity carried in

    @property
    def params(self) -> dict[str, Any] | None:
        """Every parameter chosen on the in-sample window."""
        return self.search.best_params

    @property
    def in_sample(self) -> Statistics | None:
        """The chosen combination's in-sample statistics."""
        return self.search.best


@dataclass
class WalkForwardResult:
    """A finished (or interrupted) walk: each window's choice and results, and the stitched
    out-of-sample equity, trades and statistics (``statistics``; one symbol: its own)."""

    strategy: str
    timeframe: Timeframe
    symbols: tuple[str, ...]
    objective: str
    maximize: bool
    min_trades: int
    method: str
    seed: int | None
    space: SearchSpace
    in_sample: Span
    out_of_sample: Span
    anchored: bool
    windows: list[WindowResult]
    equity: pd.Series  # stitched out-of-sample equity (portfolio), empty if nothing traded
    trades: pd.DataFrame  # every out-of-sample round trip
    statistics: Statistics | None  # of the stitched out-of-sample equity
    capital: float  # the starting equity (all symbols)
    interrupted: bool = False  # Ctrl-C: the windows walked so far
    skipped: dict[str, str] = field(default_factory=dict)  # symbol -> why (no data)

    def in_sample_mean(self) -> dict[str, float]:
        """Each numeric statistic of the chosen combinations, averaged over the windows
        (NaN and infinities left out): what the in-sample searches promised."""
        chosen = [w.in_sample for w in self.windows if w.in_sample is not None]
        return {name: _mean([getattr(s, name) for s in chosen]) for name in OBJECTIVES}

    def table(self) -> pd.DataFrame:
        """One row per window: its dates, the parameters chosen and every statistic
        in-sample (``is_`` prefix) and out-of-sample (``oos_``); index: window number."""
        rows = []
        for w in self.windows:
            row: dict[str, Any] = {
                "in_start": w.window.in_start.isoformat(),
                "in_end": w.window.in_end.isoformat(),
                "out_start": w.window.out_start.isoformat(),
                "out_end": w.window.out_end.isoformat(),
            }
            params = w.params or {}
            row.update({name: params.get(name) for name in self.space.values})
            row["combinations"] = len(w.search.table)
            for prefix, stats in (("is_", w.in_sample), ("oos_", w.out_of_sample)):
                values = stats.as_dict() if stats is not None else {}
                row.update({prefix + f.name: values.get(f.name) for f in fields(Statistics)})
            rows.append(row)
        table = pd.DataFrame(rows)
        table.index = pd.RangeIndex(1, len(table) + 1, name="window")
        return table


def _mean(values: list[float]) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def walk_forward(
    strategy: Strategy | str,
    symbols: str | Sequence[str] | None = None,
    timeframe: str | Timeframe | None = None,
    *,
    in_sample: str | Span = "6M",
    out_of_sample: str | Span = "1M",
    anchored: bool = False,
    data_dir: str | Path = "market_data",
    grid: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    objective: str = "sharpe",
    maximize: bool = True,
    min_trades: int = 1,
    method: str = "grid",
    trials: int | None = None,
    seed: int | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    capital: float = 100_000.0,
    commission: float = 0.005,
    slippage: float = 0.0,
    allocation: float = 1.0,
    size: float | None = None,
    fractional: bool = False,
    flat_at_close: bool = False,
    progress: bool | None = False,
    jobs: int = 1,
    scheduler: str | None = None,
    config: StrategyConfig | None = None,
) -> WalkForwardResult:
    """Walk ``strategy`` forward: on each ``in_sample`` window (``"6M"``, ``"2W"``, ``"10D"``)
    search ``grid`` as :func:`~.optimize.optimize` does (same arguments), then trade the
    best combination on the following ``out_of_sample`` window; the next window starts one
    out-of-sample length later (``anchored``: the in-sample windows all start at the
    period's start and grow). The period is ``start``..``end``, as for a backtest (default:
    the data's last two years); the first window starts at ``start`` (or the first bar's
    day). Windows holding no bar in-sample or out-of-sample are left out.

    Out-of-sample windows are traded one after the other, each from the equity the previous
    one ended with (per symbol), and their equity stitched into ``equity`` with
    ``statistics``. Raises OptimizeError (a bad length, windows that do not fit the data,
    a bad search), StrategyError, MissingDataError, DataFileError or ClusterError with a
    one-line message. Ctrl-C stops the walk after the windows done (``interrupted``).
    """
    config, space, options = _prepared(
        strategy, symbols, timeframe, params, config, grid, objective, min_trades, method,
        trials, seed,
        BacktestOptions.of(start, end, capital, commission, slippage, allocation, size,
                           fractional, flat_at_close),
    )  # fmt: skip
    if isinstance(in_sample, str) or isinstance(out_of_sample, str):
        spans = parse_walk_forward(f"{in_sample}:{out_of_sample}")
        in_sample, out_of_sample = spans
    datas, skipped = _load(config, str(data_dir), options)
    plan = _plan(datas, options, in_sample, out_of_sample, anchored)

    walked: list[WindowResult] = []
    interrupted = False
    stitched = _Stitched(len(datas), options.capital)
    with _cluster(scheduler, jobs, method) as cluster:
        for window in plan:
            window_options = replace(options, start=window.in_start, end=window.in_end)
            inside = [d for d in datas if _has_bars(d, window.in_start, window.in_end)]
            # A new search per window: its indicator memo holds columns of this window's bars.
            search = _Search(config, inside, window_options, tuple(space.values))
            planned, combos = _combinations(space, method, trials, seed)
            table, rejected, stopped = _search_table(
                search, space, combos, planned, method, seed, objective, maximize, min_trades,
                jobs, progress, cluster,
            )  # fmt: skip
            if stopped:
                interrupted = True
                break
            found = OptimizeResult(
                strategy=config.strategy.name,
                timeframe=config.timeframe,
                symbols=tuple(d.symbol for d in inside),
                objective=objective,
                maximize=maximize,
                min_trades=min_trades,
                method=method,
                seed=seed,
                space=space,
                table=table,
                planned=planned,
                rejected=rejected,
            )
            chosen = found.best_params
            log.info("window %d %s: %s", window.number, window.label("in"), chosen)
            out = stitched.trade(config, chosen, datas, options, window)
            walked.append(WindowResult(window, found, out))
    equity, trades, statistics = stitched.result([d.symbol for d in datas])
    return WalkForwardResult(
        strategy=config.strategy.name,
        timeframe=config.timeframe,
        symbols=tuple(d.symbol for d in datas),
        objective=objective,
        maximize=maximize,
        min_trades=min_trades,
        method=method,
        seed=seed,
        space=space,
        in_sample=in_sample,
        out_of_sample=out_of_sample,
        anchored=anchored,
        windows=walked,
        equity=equity,
        trades=trades,
        statistics=statistics,
        capital=options.capital * len(datas),
        interrupted=interrupted,
        skipped=skipped,
    )


def _has_bars(data: SymbolData, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    index = data.bars.index
    return int(index.searchsorted(start, "left")) < int(index.searchsorted(end, "left"))


def _plan(
    datas: list[SymbolData],
    options: BacktestOptions,
    in_sample: Span,
    out_of_sample: Span,
    anchored: bool,
) -> list[Window]:
    """The windows over the period the options give (each symbol's, joined), without those
    holding no bar of any symbol in-sample or out-of-sample; OptimizeError if none is left."""
    firsts, lasts = [], []
    for data in datas:
        first, stop = trading_window(data.bars.index, options)
        firsts.append(data.bars.index[first])
        lasts.append(data.bars.index[stop - 1])
    first, last = min(firsts), max(lasts)
    start = options.start if options.start is not None else first.normalize()
    # Without an end, the period ends with the last bar's day (a whole day, for the dates).
    end = options.end if options.end is not None else last.normalize() + pd.DateOffset(days=1)
    spelled = f"--walk-forward {in_sample}:{out_of_sample}"
    found = windows(start, end, in_sample, out_of_sample, anchored)
    if not found:
        raise OptimizeError(
            f"{spelled}: the data from {first:%Y-%m-%d} to {last:%Y-%m-%d} is too short for "
            f"a {in_sample} in-sample window and an out-of-sample one after it"
        )
    kept = [
        w
        for w in found
        if any(_has_bars(d, w.in_start, w.in_end) for d in datas)
        and any(_has_bars(d, w.out_start, w.out_end) for d in datas)
    ]
    if not kept:
        raise OptimizeError(f"{spelled}: no window holds bars both in- and out-of-sample")
    if len(kept) < len(found):
        log.info("%d window(s) without bars left out", len(found) - len(kept))
    return [replace(w, number=i) for i, w in enumerate(kept, 1)]


class _Stitched:
    """The out-of-sample windows traded one after the other, each symbol from the equity it
    ended the previous window with, and their per-bar series joined per symbol."""

    def __init__(self, symbols: int, capital: float) -> None:
        self.capital = capital
        self.carried = [capital] * symbols  # each symbol's equity so far
        self.parts: list[list[_Piece]] = [[] for _ in range(symbols)]

    def trade(
        self,
        config: StrategyConfig,
        chosen: dict[str, Any] | None,
        datas: list[SymbolData],
        options: BacktestOptions,
        window: Window,
    ) -> Statistics | None:
        """Trade ``chosen`` (None: stay in cash) on ``window``'s out-of-sample period; its
        statistics, or None when nothing was traded."""
        results: list[SymbolResult] = []
        for i, data in enumerate(datas):
            here = replace(
                options, start=window.out_start, end=window.out_end, capital=self.carried[i]
            )
            try:
                first, stop = trading_window(data.bars.index, here)
            except WindowError:
                continue  # no bars of this symbol here: its equity waits in cash
            if chosen is None:
                bars = data.bars.iloc[first:stop]
                flat = np.full(len(bars), self.carried[i])
                self.parts[i].append(_Piece(bars.index, flat, bars["close"], np.zeros(len(bars))))
                continue
            result = backtest_symbol(replace(config, params=chosen), data, here)
            results.append(result)
            self.parts[i].append(
                _Piece(result.equity.index, result.equity.to_numpy(), result.candles["close"],
                       np.asarray(result.position, np.float64), result.trades)
            )  # fmt: skip
            self.carried[i] = float(result.equity.iloc[-1])
        if not results:
            return None
        return results[0].statistics if len(datas) == 1 else combine(results).statistics

    def result(self, symbols: list[str]) -> tuple[pd.Series, pd.DataFrame, Statistics | None]:
        """The stitched equity (all symbols), trades and statistics."""
        joined = [_Piece.join(pieces) for pieces in self.parts]
        present = [(s, p) for s, p in zip(symbols, joined) if p is not None]
        # No window traded (none had an eligible combination): nothing to measure.
        if not any(p.trades is not None for _, p in present):
            return pd.Series(dtype=float, name="equity"), pd.DataFrame(), None
        if len(symbols) == 1:  # one symbol: its own statistics, as a backtest of it reports
            piece = present[0][1]
            equity = pd.Series(piece.equity, index=piece.index, name="equity")
            stats = compute_statistics(equity, piece.trades, piece.close, self.capital,
                                       piece.held)  # fmt: skip
            return equity, piece.trades, stats
        total = _PortfolioSum()
        for _, piece in present:
            total.add(piece.part(self.capital))
        trades = [p.trades for _, p in present if p.trades is not None]
        portfolio = total.portfolio([s for s, _ in present], trades)
        return portfolio.equity.rename("equity"), portfolio.trades, portfolio.statistics


@dataclass
class _Piece:
    """One symbol's series over one out-of-sample window (or several, joined)."""

    index: pd.DatetimeIndex
    equity: np.ndarray
    close: pd.Series
    held: np.ndarray
    trades: pd.DataFrame | None = None  # None: not traded (no combination was eligible)

    @classmethod
    def join(cls, pieces: list[_Piece]) -> _Piece | None:
        if not pieces:
            return None
        traded = [p.trades for p in pieces if p.trades is not None]
        return cls(
            index=pieces[0].index.append([p.index for p in pieces[1:]]),
            equity=np.concatenate([p.equity for p in pieces]),
            close=pd.concat([p.close for p in pieces]),
            held=np.concatenate([p.held for p in pieces]),
            trades=pd.concat(traded, ignore_index=True) if traded else None,
        )

    def part(self, capital: float) -> _PortfolioPart:
        """As the portfolio sum takes a symbol (buy & hold from the first out-of-sample bar)."""
        close = self.close.to_numpy(np.float64)
        return _PortfolioPart(
            times=self.index.as_unit("ns").asi8,
            equity=self.equity.astype(np.float64),
            held=np.abs(self.held),
            basket=close / close[0] * capital,
            capital=capital,
            tz=self.index.tz,
            name=self.index.name,
        )
