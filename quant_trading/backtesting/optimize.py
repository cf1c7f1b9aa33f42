"""Search a strategy's parameters for the best backtest: grid or random, on stored bars.

    python -m quant_trading.backtesting.optimize --strategy MACD --symbols AAPL --timeframe 5m \\
        --param FAST=5:20 --param SLOW=20:60:2 --objective sharpe

:func:`optimize` is the library call beside :func:`~quant_trading.backtesting.runner.backtest`
(same arguments, plus the search). Every combination runs the arithmetic ``run_backtest``
runs (the engine's fill loop, the same compiled statistics, the portfolio summed in the same
order; :mod:`._sweep`), so the best combination re-run through ``run_backtest`` gives the
same statistics to the bit. What is shared across combinations is what cannot change with
the parameters: each symbol's bars are read once, each indicator part is computed once per
symbol and reused by every combination that declares it, and buy & hold's side of the
statistics is computed once. Combinations go in batches: one compiled call fills and
measures a batch's targets, and a strategy with a compiled rule
(:class:`~quant_trading.strategy.CompiledRule`, e.g. MACD) computes a group's targets in one
call too. Rows go straight into a table allocated for every planned combination.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..settings import split_symbols
from ..strategy import Parameter, Strategy, StrategyConfig, StrategyError, configure
from ..timeframes import Timeframe
from ._statistics_jit import FIELDS, PEAK, TROUGH
from ._sweep import SymbolArrays, measure_targets
from .datafiles import MissingDataError, SymbolData, load_symbol
from .runner import BacktestOptions, WindowError, trading_window
from .statistics import COUNTS, Statistics

if TYPE_CHECKING:
    from .cluster import DaskCluster

__all__ = [
    "MAX_GRID",
    "OBJECTIVES",
    "OptimizeError",
    "OptimizeResult",
    "SearchSpace",
    "heatmap",
    "optimize",
    "parse_values",
    "search_space",
]

log = logging.getLogger(__name__)

#: A grid larger than this needs ``method="random"``.
MAX_GRID = 10_000_000
#: Statistics an objective may name: every numeric one.
OBJECTIVES = tuple(f.name for f in fields(Statistics) if f.type in ("float", "int", float, int))
METHODS = ("grid", "random", "optuna")
#: Values a float range without a step takes per unit.
_DEFAULT_STEP = 1


class OptimizeError(ValueError):
    """A bad search (unknown parameter or objective, empty or out-of-bounds range, a grid too
    large); the message is one line that names it."""


# -- the search space ----------------------------------------------------------------------


def parse_values(parameter: Parameter, text: str) -> tuple[Any, ...]:
    """The values ``text`` names for ``parameter``: ``5:20`` or ``20:60:2`` (inclusive; numeric
    parameters) or a comma list ``5,9,13`` (choices too), each checked against the
    parameter's declared bounds or choices."""
    name = parameter.name
    text = text.strip()
    if not text:
        raise OptimizeError(f"--param {name}=: no values")
    if ":" in text:
        if parameter.choices or parameter.kind not in (int, float):
            raise OptimizeError(f"--param {name}={text}: a range needs a numeric parameter")
        parts = text.split(":")
        if len(parts) > 3:
            raise OptimizeError(f"--param {name}={text}: use start:stop or start:stop:step")
        start, stop = (_number(parameter, p, text) for p in parts[:2])
        step = _number(parameter, parts[2], text) if len(parts) == 3 else _DEFAULT_STEP
        values = _arange(parameter, start, stop, step, text)
    else:
        values = tuple(_one(parameter, p, text) for p in text.split(","))
    return _checked(parameter, values, text)


def _one(parameter: Parameter, part: str, text: str) -> Any:
    try:
        return parameter.parse(part, parameter.name)
    except StrategyError as exc:
        raise OptimizeError(f"--param {parameter.name}={text}: {exc}") from None


def _number(parameter: Parameter, part: str, text: str) -> float:
    try:
        value = parameter.kind(part.strip())
    except ValueError:
        kind = "whole numbers" if parameter.kind is int else "numbers"
        raise OptimizeError(f"--param {parameter.name}={text}: {part!r}: need {kind}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise OptimizeError(f"--param {parameter.name}={text}: {part!r} is not finite")
    return value


def _arange(parameter: Parameter, start, stop, step, text: str) -> tuple[Any, ...]:
    if step <= 0:
        raise OptimizeError(f"--param {parameter.name}={text}: the step must be positive")
    if start > stop:
        raise OptimizeError(f"--param {parameter.name}={text}: empty range (start > stop)")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_GRID:
        raise OptimizeError(f"--param {parameter.name}={text}: more than {MAX_GRID:,} values")
    if parameter.kind is int:
        return tuple(range(int(start), int(stop) + 1, int(step)))
    # Rounded so 0.1 steps give 0.3, not 0.30000000000000004 (what a user types in strategy.env).
    return tuple(round(start + i * step, 10) for i in range(count))


def _checked(parameter: Parameter, values: tuple[Any, ...], text: str) -> tuple[Any, ...]:
    for value in values:
        if problem := parameter.check(value):
            raise OptimizeError(f"--param {parameter.name}={text}: {value!r} {problem}")
    return tuple(dict.fromkeys(values))  # a value listed twice is tried once


def _declared(parameter: Parameter) -> tuple[Any, ...]:
    """The values a parameter's declaration allows: its choices, or its bounds in steps of 1."""
    if parameter.choices:
        return parameter.choices
    low, high = parameter.bounds or (None, None)
    if low is None or high is None:
        raise OptimizeError(
            f"{parameter.name} declares no bounds to search; give --param {parameter.name}=..."
        )
    if parameter.kind is int:
        low, high = math.ceil(low), math.floor(high)
    return _arange(parameter, low, high, _DEFAULT_STEP, f"{low:g}:{high:g}")


@dataclass(frozen=True)
class SearchSpace:
    """The values searched per parameter (in the strategy's order); the others stay fixed."""

    values: dict[str, tuple[Any, ...]]
    fixed: dict[str, Any]
    order: tuple[str, ...] = ()  # every parameter, as the strategy declares them

    @property
    def size(self) -> int:
        """Combinations in the full grid (before the strategy's own checks)."""
        return math.prod(len(v) for v in self.values.values())

    def at(self, flat: int) -> dict[str, Any]:
        """The ``flat``-th combination of the grid (the last parameter varies fastest)."""
        chosen: dict[str, Any] = {}
        for name, values in reversed(self.values.items()):
            flat, i = divmod(flat, len(values))
            chosen[name] = values[i]
        return self.complete(chosen)

    def complete(self, searched: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter, in declaration order: ``searched`` values and the fixed ones."""
        merged = {**self.fixed, **searched}
        return {n: merged[n] for n in self.order or merged}


def search_space(
    strategy: Strategy, base: Mapping[str, Any], grid: Mapping[str, Any] | None
) -> SearchSpace:
    """The space searched: ``grid`` maps parameter names (any case) to a range text
    (``"5:20"``, ``"5,9,13"``) or a sequence of values; without a grid, every numeric
    parameter over its declared bounds. The rest keep their ``base`` values."""
    parameters = {p.name: p for p in strategy.parameters}
    if grid:
        given = {str(k).strip().upper(): v for k, v in grid.items()}
        if unknown := sorted(set(given) - set(parameters)):
            raise OptimizeError(
                f"{strategy.name} has no parameter {', '.join(unknown)}; "
                f"its parameters: {', '.join(parameters) or 'none'}"
            )
        values = {}
        for name, parameter in parameters.items():
            if name not in given:
                continue
            spec = given[name]
            if isinstance(spec, str):
                values[name] = parse_values(parameter, spec)
            else:
                spec = tuple(spec)
                if not spec:
                    raise OptimizeError(f"--param {name}: no values")
                values[name] = _checked(parameter, spec, ",".join(map(str, spec)))
    else:
        values = {
            name: _declared(p)
            for name, p in parameters.items()
            if not p.choices and p.kind in (int, float)
        }
        if not values:
            raise OptimizeError(f"{strategy.name} has no numeric parameter to search")
    fixed = {name: base[name] for name in parameters if name not in values}
    return SearchSpace(values, fixed, tuple(parameters))


def _combinations(
    space: SearchSpace, method: str, trials: int | None, seed: int | None
) -> tuple[int, Iterator[dict[str, Any]]]:
    """(how many, the combinations to try), in grid order or in the random draw's order."""
    size = space.size
    if method == "grid":
        if size > MAX_GRID:
            raise OptimizeError(
                f"the grid has {size:,} combinations (more than {MAX_GRID:,}); narrow the "
                "--param ranges or use --method random --trials N"
            )
        return size, (space.at(i) for i in range(size))
    if method == "optuna":  # asks as it goes: see _tpe_batches
        return min(trials or 100, size), iter(())
    if method != "random":
        raise OptimizeError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    count = min(trials or 100, size)
    # Distinct flat indices, drawn without enumerating the grid: the same seed, the same draw.
    picks = np.random.default_rng(seed).choice(size, size=count, replace=False)
    return count, (space.at(int(i)) for i in picks)


# -- running -------------------------------------------------------------------------------


class _IndicatorMemo:
    """Indicator parts already computed, per symbol, least recently used dropped first once
    they pass ``budget`` bytes: a grid over two EMA periods reuses each EMA many times (and
    a grid over MACD's signal period each MACD line), while a grid in which every
    combination is a new indicator must not keep them all. A part is keyed by what its
    indicator says it depends on (:meth:`~quant_trading.indicators.Indicator.compute_shared`):
    the whole indicator by default, ``("MACD line", source, fast, slow)`` for MACD's line."""

    def __init__(self, budget: int = 256 << 20) -> None:
        self.budget = budget
        self._parts: OrderedDict[tuple[int, Hashable], Any] = OrderedDict()
        self._bytes = 0

    def part(self, symbol: int, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()`` for ``symbol``'s bars, computed once per ``key`` while it is kept."""
        found = self._parts.get((symbol, key))
        if found is not None:
            self._parts.move_to_end((symbol, key))
            return found
        found = self._parts[(symbol, key)] = make()
        self._bytes += _nbytes(found)
        while self._bytes > self.budget and len(self._parts) > 1:
            _, dropped = self._parts.popitem(last=False)
            self._bytes -= _nbytes(dropped)
        return found

    def columns(self, symbol: int, indicator, data: Mapping[str, np.ndarray]):
        """``indicator``'s columns over ``symbol``'s ``data``, its parts from this memo."""
        return indicator.compute_shared(data, lambda key, make: self.part(symbol, key, make))


def _nbytes(part: Any) -> int:
    if isinstance(part, Mapping):
        return sum(a.nbytes for a in part.values())
    return int(getattr(part, "nbytes", 0))


@dataclass
class OptimizeResult:
    """A finished (or interrupted) search. ``table`` has one row per combination run:
    the searched parameters, every statistic of the portfolio (``run.statistics``; one
    symbol: its own, ``run.results[0].statistics``, as in its cache file) and
    ``eligible`` (at least ``min_trades`` trades), ranked by the objective, best first
    (index = rank from 1; ineligible rows and NaN objectives last)."""

    strategy: str
    timeframe: Timeframe
    symbols: tuple[str, ...]  # those with data in the window
    objective: str
    maximize: bool
    min_trades: int
    method: str
    seed: int | None
    space: SearchSpace
    table: pd.DataFrame
    planned: int  # combinations the method chose
    rejected: int  # of those, refused by the strategy's validate
    interrupted: bool = False  # Ctrl-C: the table holds what was done
    skipped: dict[str, str] = field(default_factory=dict)  # symbol -> why (no data)

    @property
    def best_params(self) -> dict[str, Any] | None:
        """Every parameter of the best eligible combination, or None if none is eligible."""
        if self.table.empty:
            return None
        row = self.table.iloc[0]
        if not row["eligible"] or pd.isna(row[self.objective]):
            return None
        return self.space.complete({n: _plain(row[n]) for n in self.space.values})

    @property
    def best(self) -> Statistics | None:
        """The best combination's statistics, or None."""
        if self.best_params is None:
            return None
        row = self.table.iloc[0]
        return Statistics(**{f.name: _plain(row[f.name]) for f in fields(Statistics)})

    def env_lines(self) -> list[str]:
        """The best parameters as strategy.env lines (``MACD_FAST=8``), every parameter."""
        prefix = self.strategy.upper()
        return [f"{prefix}_{k}={v}" for k, v in (self.best_params or {}).items()]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def optimize(
    strategy: Strategy | str,
    symbols: str | Sequence[str] | None = None,
    timeframe: str | Timeframe | None = None,
    *,
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
) -> OptimizeResult:
    """Backtest ``strategy`` for every combination of ``grid`` (or ``trials`` random ones of
    it with ``method="random"``, reproducible with ``seed``) and rank them by ``objective``
    (a :class:`~.statistics.Statistics` field: ``sharpe``, ``return_pct``,
    ``max_drawdown_pct``...), largest first unless ``maximize=False``.

    ``grid`` maps parameter names to ``"5:20"`` / ``"20:60:2"`` (inclusive) / ``"5,9,13"`` or
    to a sequence of values; without it every numeric parameter is searched over its
    declared bounds. Parameters not searched take ``params`` or their defaults (strategy.env
    is not read; the CLI passes a ``config`` resolved from it). Combinations the strategy's
    ``validate`` refuses (fast >= slow) are skipped and counted in ``rejected``; those with
    fewer than ``min_trades`` trades rank last. Window, costs and sizing are
    :func:`~.runner.backtest`'s. ``jobs`` > 1 runs combinations in that many processes (same
    table). ``scheduler`` runs them on a Dask cluster instead (same table): the address of
    its scheduler (``tcp://host:8786``), or ``"local"`` for a ``LocalCluster`` of ``jobs``
    workers (default: one per core) started for this search. ``progress`` shows a bar
    (None: on a terminal). Ctrl-C stops the search and returns what was done
    (``interrupted``). Raises OptimizeError, StrategyError, MissingDataError, DataFileError
    or (an unreachable scheduler) ClusterError with a one-line message.
    """
    config, space, options = _prepared(
        strategy, symbols, timeframe, params, config, grid, objective, min_trades, method,
        trials, seed,
        BacktestOptions.of(start, end, capital, commission, slippage, allocation, size,
                           fractional, flat_at_close),
    )  # fmt: skip
    planned, combos = _combinations(space, method, trials, seed)
    datas, skipped = _load(config, str(data_dir), options)

    search = _Search(config, datas, options, tuple(space.values))
    with _cluster(scheduler, jobs, method) as cluster:
        table, rejected, interrupted = _search_table(
            search, space, combos, planned, method, seed, objective, maximize, min_trades,
            jobs, progress, cluster,
        )  # fmt: skip
    return OptimizeResult(
        strategy=config.strategy.name,
        timeframe=config.timeframe,
        symbols=tuple(d.symbol for d in datas),
        objective=objective,
        maximize=maximize,
        min_trades=min_trades,
        method=method,
        seed=seed,
        space=space,
        table=table,
        planned=planned,
        rejected=rejected,
        interrupted=interrupted,
        skipped=skipped,
    )


def _prepared(
    strategy: Strategy | str,
    symbols: str | Sequence[str] | None,
    timeframe: str | Timeframe | None,
    params: Mapping[str, Any] | None,
    config: StrategyConfig | None,
    grid: Mapping[str, Any] | None,
    objective: str,
    min_trades: int,
    method: str,
    trials: int | None,
    seed: int | None,
    options: BacktestOptions,
) -> tuple[StrategyConfig, SearchSpace, BacktestOptions]:
    """The strategy resolved (unless ``config`` is), its search space and the options, with
    every argument of a search checked before any bar is read (see :func:`optimize`)."""
    if config is None:
        if isinstance(symbols, str):
            symbols = split_symbols(symbols)
        config = configure(
            strategy, {}, timeframe=timeframe, symbols=symbols, params=params, source="params"
        )
    if objective not in OBJECTIVES:
        raise OptimizeError(
            f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}"
        )
    if min_trades < 0:
        raise OptimizeError("--min-trades must not be negative")
    space = search_space(config.strategy, config.params, grid)
    _combinations(space, method, trials, seed)  # a bad method or a grid too large
    if options.start is not None and options.end is not None and options.start >= options.end:
        raise OptimizeError("--start must be before --end")
    return config, space, options


def _cluster(scheduler: str | None, jobs: int, method: str):
    """The Dask cluster ``scheduler`` names, connected for the ``with`` block, or nothing."""
    if scheduler is None:
        return nullcontext()
    if method == "optuna":
        raise OptimizeError("--method optuna asks for one trial at a time; --scheduler needs "
                            "--method grid or random")  # fmt: skip
    from .cluster import DaskCluster  # dask only when a cluster is asked for

    return DaskCluster(scheduler, workers=jobs if jobs > 1 else None)


def _search_table(
    search: _Search,
    space: SearchSpace,
    combos: Iterator[dict[str, Any]],
    planned: int,
    method: str,
    seed: int | None,
    objective: str,
    maximize: bool,
    min_trades: int,
    jobs: int,
    progress: bool | None,
    cluster: DaskCluster | None = None,
) -> tuple[pd.DataFrame, int, bool]:
    """Run ``combos`` on ``search``: (the ranked table, combinations refused, interrupted)."""
    rows = _Table(planned, tuple(space.values))
    rejected = 0
    interrupted = False
    from tqdm import tqdm

    bar = tqdm(
        total=planned,
        desc="optimize",
        unit="combo",
        leave=False,
        disable=None if progress is None else not progress,
    )
    try:
        if method == "optuna":
            batches = _tpe_batches(search, space, planned, seed, objective, maximize, min_trades)
        else:
            batches = _batches(search, combos, planned, jobs, cluster)
        for done, batch in batches:
            first = not len(rows) and not rejected
            rows.add(batch)  # kept before anything else: Ctrl-C may come at any moment
            rejected += batch.rejected
            if first:
                log.info("first combinations done; %d to go", planned - done)
            bar.update(done)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: %d of %d combinations done", len(rows) + rejected, planned)
    finally:
        bar.close()
    table = _ranked(rows.frame(), objective, maximize, min_trades)
    return table, rejected, interrupted


#: Rows a search table has room for at first (a grid may plan millions of combinations).
_ROOM = 1 << 16


@dataclass
class _Rows:
    """Rows of the search table from one batch of combinations, as arrays: the searched
    values of each combination run, :func:`._statistics_jit.measure`'s numbers for it, and
    its drawdown's peak and trough as times; ``done`` counts the refused ones too."""

    searched: list[tuple[Any, ...]]
    values: np.ndarray  # (rows, at least len(FIELDS))
    peaks: list[str | None]
    troughs: list[str | None]
    start: str
    end: str
    done: int

    @classmethod
    def none(cls, done: int = 0) -> _Rows:
        """No rows (``done`` combinations refused)."""
        return cls([], np.empty((0, len(FIELDS))), [], [], "", "", done)

    def __len__(self) -> int:
        return self.done

    @property
    def rejected(self) -> int:
        """Combinations of the batch the strategy refused."""
        return self.done - len(self.searched)

    def statistic(self, row: int, name: str) -> float:
        """Statistic ``name`` (a number) of row ``row``."""
        return float(self.values[row, FIELDS.index(name)])


class _Table:
    """The search table, filled batch by batch into arrays allocated for the planned
    combinations (no dict per row); a very large plan starts with room for
    :data:`_ROOM` rows and doubles it as rows come."""

    def __init__(self, planned: int, searched: tuple[str, ...]) -> None:
        room = max(1, min(planned, _ROOM))
        self.names = searched
        self.searched = np.empty((room, len(searched)), object)
        self.values = np.empty((room, len(FIELDS)))
        self.peaks = np.empty(room, object)
        self.troughs = np.empty(room, object)
        self.start = self.end = ""
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, rows: _Rows) -> None:
        """Append ``rows``."""
        if not rows.searched:
            return
        at, stop = self._count, self._count + len(rows.searched)
        if stop > len(self.values):
            self._grow(max(stop, 2 * len(self.values)))
        self.searched[at:stop] = rows.searched
        self.values[at:stop] = rows.values[:, : len(FIELDS)]
        self.peaks[at:stop] = rows.peaks
        self.troughs[at:stop] = rows.troughs
        self.start, self.end = rows.start, rows.end
        self._count = stop

    def _grow(self, room: int) -> None:
        for name in ("searched", "values", "peaks", "troughs"):
            old = getattr(self, name)
            new = np.empty((room, *old.shape[1:]), old.dtype)
            new[: self._count] = old[: self._count]
            setattr(self, name, new)

    def frame(self) -> pd.DataFrame:
        """The rows so far: the searched parameters, then every Statistics field."""
        count = self._count
        columns: dict[str, Any] = {
            name: self.searched[:count, i].tolist() for i, name in enumerate(self.names)
        }
        numbers = self.values[:count]
        for f in fields(Statistics):
            if f.name in ("start", "end"):
                columns[f.name] = [getattr(self, f.name)] * count
            elif f.name == "max_drawdown_peak":
                columns[f.name] = self.peaks[:count]
            elif f.name == "max_drawdown_trough":
                columns[f.name] = self.troughs[:count]
            elif f.name in COUNTS:
                columns[f.name] = numbers[:, FIELDS.index(f.name)].astype(np.int64)
            else:
                columns[f.name] = numbers[:, FIELDS.index(f.name)]
        return pd.DataFrame(columns)


@dataclass
class _Search:
    """What every combination shares: the bars, read once, each symbol's arrays and the
    indicator memo. A batch of combinations costs their indicators' new parts, their
    targets (the strategy's compiled rule, one call per group, or its ``positions`` per
    combination) and one compiled call from the fills to the statistics (:mod:`._sweep`);
    no pandas, no backtest objects."""

    config: StrategyConfig
    datas: list[SymbolData]
    options: BacktestOptions
    searched: tuple[str, ...]
    memo: _IndicatorMemo = field(default_factory=_IndicatorMemo)
    _symbols: list[SymbolArrays] | None = field(default=None, init=False, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # A worker (Dask) rebuilds the arrays and memo from the bars rather than unpickling
        # them: half the bytes on the wire.
        state = dict(self.__dict__)
        state.update(memo=_IndicatorMemo(self.memo.budget), _symbols=None, _cache={})
        return state

    @property
    def symbols(self) -> list[SymbolArrays]:
        """Each symbol's arrays, prepared on first use (in the process that runs it)."""
        if self._symbols is None:
            self._symbols = [SymbolArrays.of(d, self.options) for d in self.datas]
        return self._symbols

    def run(self, chosen: dict[str, Any]) -> _Rows:
        """The row of one combination (none if the strategy refuses it)."""
        return self.run_batch([chosen])

    def run_batch(self, batch: Sequence[dict[str, Any]]) -> _Rows:
        """The rows of ``batch``'s combinations, in its order, leaving out those the strategy
        refuses. The targets of all of them go to one compiled call per symbol; a strategy
        with a :class:`~quant_trading.strategy.CompiledRule` computes each group's targets
        in one call too, else its ``positions`` runs once per combination."""
        accepted: list[StrategyConfig] = []
        for chosen in batch:
            try:
                self.config.strategy.validate(chosen)
                combo = StrategyConfig(self.config.strategy, chosen, self.config.timeframe,
                                       self.config.symbols)  # fmt: skip
                combo.indicators  # noqa: B018 - an impossible period fails here
            except ValueError as exc:
                log.debug("%s refused: %s", chosen, exc)
                continue
            accepted.append(combo)
        if not accepted:
            return _Rows.none(len(batch))
        rule = self.config.strategy.compiled
        groups: dict[Hashable, list[int]] = {}
        for r, combo in enumerate(accepted):
            key = rule.group(combo.params) if rule is not None else None
            groups.setdefault(key, []).append(r)
        values = np.empty((len(accepted), len(FIELDS) + 2))
        for members in groups.values():
            combos = [accepted[r] for r in members]
            targets = [self._targets(i, s, combos) for i, s in enumerate(self.symbols)]
            measured = measure_targets(self.symbols, targets, self.options, self._cache)
            values[members] = measured.values
        iso, bars = measured.iso, measured.bars
        return _Rows(
            searched=[tuple(c.params[n] for n in self.searched) for c in accepted],
            values=values,
            peaks=[iso(int(p)) if p >= 0 else None for p in values[:, PEAK]],
            troughs=[iso(int(t)) if t >= 0 else None for t in values[:, TROUGH]],
            start=iso(0) if bars else "",
            end=iso(bars - 1) if bars else "",
            done=len(batch),
        )

    def _targets(self, i: int, symbol: SymbolArrays, combos: list[StrategyConfig]) -> np.ndarray:
        """Symbol ``i``'s target positions of ``combos`` (one row each)."""
        out = np.empty((len(combos), len(symbol.data["close"])), np.int8)
        rule = self.config.strategy.compiled
        if rule is not None:
            shared = lambda key, make: self.memo.part(i, key, make)  # noqa: E731
            rule.positions(symbol.data, shared, [c.params for c in combos], out)
            return out
        for r, combo in enumerate(combos):
            data = dict(symbol.data)  # as StrategyConfig.compute builds it
            for indicator in combo.indicators:
                data.update(self.memo.columns(i, indicator, data))
            out[r] = combo.positions_from(data)
        return out


#: Combinations per batch of a strategy with a compiled rule: large enough for its groups
#: to fill, small enough to keep the progress bar moving and lose little to Ctrl-C.
_BATCH = 64

#: The search a worker process runs (inherited when forked, else set by its initializer).
_WORKER: _Search | None = None


def _start_worker(search: _Search | None) -> None:
    import signal

    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if search is not None:
        _WORKER = search


def _run_batch(batch: list[dict[str, Any]]) -> _Rows:
    return _WORKER.run_batch(batch)


def _batches(
    search: _Search,
    combos: Iterator[dict[str, Any]],
    planned: int,
    jobs: int,
    cluster: DaskCluster | None = None,
) -> Iterator[tuple[int, _Rows]]:
    """(combinations done, their rows) in batches, in the order of ``combos``, computed
    here, in ``jobs`` processes or on a Dask ``cluster``."""
    if cluster is not None:
        yield from cluster.batches(search, combos, planned)
        return
    compiled = search.config.strategy.compiled is not None
    if jobs <= 1 or planned < 2:
        # A compiled rule takes a batch in one call (a grid's neighbours share a group:
        # MACD's signal periods of one fast and slow); ``positions`` goes one combination at
        # a time, so Ctrl-C keeps every one finished.
        size = _BATCH if compiled else 1
        for batch in iter(lambda: list(islice(combos, size)), []):
            yield len(batch), search.run_batch(batch)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _WORKER
    # Small batches keep the bar moving and lose little to Ctrl-C; large enough to make the
    # trip to a process worth it.
    size = max(1, min(_BATCH if compiled else 16, planned // (jobs * 8)))
    fork = "fork" in multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if fork else "spawn")
    _WORKER = search  # forked workers inherit the bars instead of unpickling them
    todo = iter(lambda: list(islice(combos, size)), [])
    try:
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_start_worker,
            initargs=(None if fork else search,),
        ) as pool:
            pending = deque(pool.submit(_run_batch, b) for b in islice(todo, 4 * jobs))
            try:
                while pending:
                    batch = pending.popleft().result()
                    pending.extend(pool.submit(_run_batch, b) for b in islice(todo, 1))
                    yield len(batch), batch
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        _WORKER = None


def _tpe_batches(
    search: _Search,
    space: SearchSpace,
    trials: int,
    seed: int | None,
    objective: str,
    maximize: bool,
    min_trades: int,
) -> Iterator[tuple[int, _Rows]]:
    """Optuna's TPE sampler (seeded: the same trials each time) proposes ``trials``
    combinations of ``space``, one at a time, each told its objective. A combination proposed
    again is told its earlier value and not run twice (so it adds no row); refused ones,
    too few trades and undefined objectives are failed trials, which TPE leaves aside."""
    try:
        import optuna
    except ImportError:
        raise OptimizeError("--method optuna needs Optuna: pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=sampler)
    seen: dict[tuple, float | None] = {}
    for _ in range(trials):
        trial = study.ask()
        chosen = space.complete({n: _suggest(trial, n, v) for n, v in space.values.items()})
        key = tuple(chosen[n] for n in space.values)
        if key in seen:
            rows = _Rows.none()
            value = seen[key]
        else:
            rows = search.run(chosen)
            value = None
            if rows.searched and rows.statistic(0, "trades") >= min_trades:
                score = rows.statistic(0, objective)
                value = score if math.isfinite(score) else None
            seen[key] = value
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
        yield 1, rows


def _suggest(trial, name: str, values: tuple[Any, ...]) -> Any:
    """An evenly stepped integer range as an ordered one (TPE learns which region is good);
    anything else, floats included, as categorical over the exact values the grid has."""
    steps = {b - a for a, b in zip(values, values[1:])}
    if len(values) > 2 and all(type(v) is int for v in values) and len(steps) == 1:
        return trial.suggest_int(name, values[0], values[-1], step=steps.pop())
    return trial.suggest_categorical(name, list(values))


def _load(
    config: StrategyConfig, data_dir: str, options: BacktestOptions
) -> tuple[list[SymbolData], dict[str, str]]:
    """Each symbol's bars, read once; symbols without data (or none in the window) are
    skipped with the reason, as run_backtest skips them."""
    if not Path(data_dir).is_dir():
        raise MissingDataError(f"{data_dir}: data folder not found")
    datas: list[SymbolData] = []
    skipped: dict[str, str] = {}
    for symbol in config.symbols:
        try:
            data = load_symbol(data_dir, symbol, config.timeframe)
            trading_window(data.bars.index, options)
        except MissingDataError as exc:
            skipped[symbol] = str(exc)
            continue
        except WindowError as exc:
            skipped[symbol] = f"{data.path}: {exc}"
            continue
        datas.append(data)
    if not datas:
        raise MissingDataError(f"nothing to backtest: {'; '.join(skipped.values())}")
    return datas, skipped


def _ranked(table: pd.DataFrame, objective: str, maximize: bool, min_trades: int) -> pd.DataFrame:
    table["eligible"] = table["trades"] >= min_trades
    score = pd.to_numeric(table[objective], errors="coerce").astype(float)
    key = score if maximize else -score
    order = np.lexsort(
        (
            np.arange(len(table)),
            -key.fillna(-np.inf).to_numpy(),
            key.isna().to_numpy(),
            ~table["eligible"].to_numpy(),
        )
    )
    table = table.iloc[order].reset_index(drop=True)
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    return table


def heatmap(result: OptimizeResult, x: str, y: str, path: str | Path) -> Path:
    """Draw the objective over searched parameters ``x`` (across) and ``y`` (up), the other
    searched parameters at their best values, as a PNG at ``path`` (written atomically);
    blank where a combination was refused, not run, or had too few trades. Returns the path."""
    best = result.best_params
    if best is None:
        raise OptimizeError("no best combination to draw a heatmap around")
    for name in (x, y):
        if name not in result.space.values:
            raise OptimizeError(f"heatmap: {name} is not a searched parameter")
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    from ..atomic import atomic_write

    table = result.table[result.table["eligible"]]
    for name in result.space.values:
        if name not in (x, y):
            table = table[table[name] == best[name]]
    xs, ys = result.space.values[x], result.space.values[y]
    grid = (
        table.pivot_table(index=y, columns=x, values=result.objective, aggfunc="first")
        .reindex(index=list(ys), columns=list(xs))
        .to_numpy(dtype=float, copy=True)
    )
    grid[~np.isfinite(grid)] = np.nan
    fig, ax = plt.subplots(figsize=(max(5.0, 0.25 * len(xs) + 3), max(4.0, 0.25 * len(ys) + 2)))
    try:
        image = ax.imshow(
            grid, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest"
        )
        fig.colorbar(image, ax=ax, label=result.objective)
        ax.set_xticks(_ticks(len(xs)), [f"{xs[i]:g}" for i in _ticks(len(xs))])
        ax.set_yticks(_ticks(len(ys)), [f"{ys[i]:g}" for i in _ticks(len(ys))])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.plot(xs.index(best[x]), ys.index(best[y]), marker="*", color="red", markersize=14)
        others = ", ".join(f"{k}={v}" for k, v in best.items() if k not in (x, y))
        ax.set_title(
            f"{result.strategy} {result.timeframe.name} {' '.join(result.symbols)}: "
            f"{result.objective} ({'max' if result.maximize else 'min'})"
            + (f"\n{others}" if others else ""),
            fontsize=9,
        )
        fig.tight_layout()
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=100)
    finally:
        plt.close(fig)
    return Path(path)


def _ticks(count: int, most: int = 20) -> list[int]:
    """At most ``most`` evenly spaced tick positions out of ``count``."""
    return list(range(0, count, max(1, math.ceil(count / most))))


if __name__ == "__main__":
    from ..cli import exit_with
    from ..cli.optimize import main

    exit_with(main)
