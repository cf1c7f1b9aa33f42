"""What a strategy is, how one is found by name, and how its settings are read.

A :class:`Strategy` owns its indicators and its signals. It declares its indicators once
(``indicators(params)`` returns :mod:`quant_trading.indicators` objects, which compute in
batch, update bar by bar, and say how to be drawn) and derives its target position per bar
(+1 long, -1 short, 0 flat) from their values in ``positions(data, params)``, where ``data``
maps ``open, high, low, close, volume`` and every indicator column to a numpy array. The
backtest computes the indicators over the whole series; the live tracker and the paper
trader update them one bar at a time (:class:`StrategyStream`); both call the same
``positions``, so live and backtest see the same numbers.

Strategies are found in the top-level ``strategies/`` package (one module per strategy that
defines ``STRATEGY``), in the folders named by ``QT_STRATEGY_PATH`` / ``--strategy-path``, or
by reference as ``package.module:NAME``.

Settings come from ``strategy.env`` and the environment with the strategy's name as prefix
(``MACD_FAST=12``); every strategy also has ``<NAME>_TIMEFRAME`` and ``<NAME>_SYMBOLS``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import os
import pkgutil
import re
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .drawing import Drawing
from .indicators import Indicator, Shared
from .settings import split_symbols
from .timeframes import Timeframe, TimeframeError, parse_timeframe

__all__ = [
    "CompiledRule",
    "Parameter",
    "Strategy",
    "StrategyConfig",
    "StrategyError",
    "StrategyStream",
    "StreamPoint",
    "registered_strategies",
    "get_strategy",
    "configure",
    "STRATEGY_PATH_SETTING",
]

log = logging.getLogger(__name__)

#: Setting (environment or strategy.env) with extra strategy folders, os.pathsep-separated.
STRATEGY_PATH_SETTING = "QT_STRATEGY_PATH"
_BARS = ("open", "high", "low", "close", "volume")


class StrategyError(ValueError):
    """An unknown strategy or a bad setting; the message names it."""


@dataclass(frozen=True)
class Parameter:
    """One tunable setting. ``kind`` converts the text from strategy.env (int, float or str);
    a numeric parameter accepts values within ``bounds`` (inclusive; None on a side means
    unbounded there), or any positive value when it declares none."""

    name: str
    default: Any
    kind: type = int
    choices: tuple[str, ...] = ()
    help: str = ""
    bounds: tuple[float | None, float | None] | None = None

    def parse(self, text: str, setting: str) -> Any:
        """Convert ``text`` (the value of ``setting``) or raise StrategyError naming it."""
        value = text.strip()
        if self.choices:
            if value.lower() not in self.choices:
                raise StrategyError(f"{setting}={text!r}: choose one of {', '.join(self.choices)}")
            return value.lower()
        try:
            parsed = self.kind(value)
        except ValueError:
            raise StrategyError(f"{setting}={text!r} is not {_article(self.kind)}") from None
        problem = self.check(parsed)
        if problem:
            raise StrategyError(f"{setting}={text!r} {problem}")
        return parsed

    def check(self, value: Any) -> str:
        """'' if ``value`` is allowed, else why not (``must be between 2 and 100``)."""
        if self.choices:
            return "" if value in self.choices else f"must be one of {', '.join(self.choices)}"
        if self.kind not in (int, float):
            return ""
        if not math.isfinite(value):  # nan passes every comparison below
            return "must be a finite number"
        if self.bounds is None:
            return "" if value > 0 else "must be positive"
        low, high = self.bounds
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                return f"must be between {low:g} and {high:g}"
            return f"must be at least {low:g}" if low is not None else f"must be at most {high:g}"
        return ""


def _no_checks(params: Mapping[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class CompiledRule:
    """A strategy's ``positions`` for many parameter combinations in one compiled call, which
    a parameter search may use instead (``positions`` stays the reference: the strategy's
    tests prove the two give the same positions on real bars).

    ``group(params)`` says which combinations go together (those with equal keys, e.g.
    MACD's fast and slow periods, whose MACD line they share); ``positions(data, shared,
    combos, out)`` writes into row ``r`` of ``out`` (int8, one column per bar) what
    ``positions`` gives for ``combos[r]``, all of one group. ``data`` maps ``open, high,
    low, close, volume`` to arrays, and ``shared(key, make)`` is the search's memo of
    indicator parts (see :meth:`~quant_trading.indicators.Indicator.compute_shared`)."""

    group: Callable[[Mapping[str, Any]], Hashable]
    positions: Callable[
        [Mapping[str, np.ndarray], Shared, Sequence[Mapping[str, Any]], np.ndarray], None
    ]


@dataclass(frozen=True)
class Strategy:
    """A strategy: its name, parameters, indicators and position rule."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    #: params -> the indicators it uses (their columns are what ``positions`` reads).
    indicators: Callable[[Mapping[str, Any]], Sequence[Indicator]]
    #: (data, params) -> target position per bar (+1/0/-1), deciding bar t from bars <= t.
    positions: Callable[[Mapping[str, np.ndarray], Mapping[str, Any]], np.ndarray]
    default_symbols: tuple[str, ...] = ("SPY",)
    default_timeframe: str = "5m"
    #: Bar sizes it may run on; None: any size the data can be aggregated to (5m, 15m, 1h...).
    timeframes: tuple[str, ...] | None = None
    #: Checks across parameters (e.g. fast < slow); raises ValueError.
    validate: Callable[[Mapping[str, Any]], None] = _no_checks
    #: What a rise / a fall of the target means, for the live tracker's marks.
    signal_text: tuple[str, str] = ("{name}: target up to {side}", "{name}: target down to {side}")
    #: Optional: ``positions`` compiled for parameter searches (see :class:`CompiledRule`).
    compiled: CompiledRule | None = None

    @property
    def prefix(self) -> str:
        """Setting prefix: ``MACD`` for ``MACD_FAST``."""
        return self.name.upper()

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.parameters}


@dataclass(frozen=True)
class StrategyConfig:
    """A strategy with its settings resolved: what a backtest or the live tracker runs."""

    strategy: Strategy
    params: dict[str, Any]
    timeframe: Timeframe
    symbols: tuple[str, ...]

    @cached_property
    def indicators(self) -> tuple[Indicator, ...]:
        """The indicators these parameters make (checked: no two share a column)."""
        made = tuple(self.strategy.indicators(self.params))
        seen = set(_BARS)
        for indicator in made:
            for column in indicator.columns:
                if column in seen:
                    raise StrategyError(
                        f"{self.strategy.name}: indicator column {column!r} is used twice"
                    )
                seen.add(column)
        return made

    @property
    def warmup(self) -> int:
        """Bars the indicators need before all of them have values (0 without indicators)."""
        return max((indicator.warmup for indicator in self.indicators), default=0)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every indicator column, in declaration order."""
        return tuple(c for indicator in self.indicators for c in indicator.columns)

    @property
    def drawing(self) -> list[Drawing]:
        """How to draw each indicator (what the cache stores for the charts)."""
        return [indicator.drawing for indicator in self.indicators]

    def compute(self, bars: pd.DataFrame) -> dict[str, np.ndarray]:
        """Batch: the bars' OHLCV arrays plus every indicator column, all as long as ``bars``."""
        data = {c: np.ascontiguousarray(bars[c], dtype=np.float64) for c in _BARS}
        for indicator in self.indicators:
            data.update(indicator.compute(data))
        return data

    def positions_from(self, data: Mapping[str, np.ndarray]) -> np.ndarray:
        """Target position per bar from computed ``data`` (see :meth:`compute`), checked."""
        out = np.asarray(self.strategy.positions(data, self.params))
        n = len(data["close"])
        if out.shape != (n,):
            raise StrategyError(
                f"{self.strategy.name}: positions returned shape {out.shape}, expected ({n},)"
            )
        return out.astype(np.int8, copy=False)

    def positions(self, bars: pd.DataFrame) -> np.ndarray:
        """Target position per bar for ``bars``."""
        return self.positions_from(self.compute(bars))

    def stream(self) -> StrategyStream:
        """A fresh bar-by-bar runner of this strategy (see :class:`StrategyStream`)."""
        return StrategyStream(self)


@dataclass(frozen=True)
class StreamPoint:
    """The strategy after one more finished bar: its indicator values and target position."""

    values: dict[str, float]
    position: int
    previous: int  # the target before this bar


class StrategyStream:
    """The strategy bar by bar, for live bars: :meth:`update` takes one finished bar and
    returns the indicator values at it (from each indicator's streaming state, equal to the
    batch values) and the target position (``positions`` over the bars so far, which is the
    batch result at that bar since a strategy decides bar t from bars up to t)."""

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config
        self._states = [indicator.stream() for indicator in config.indicators]
        self._columns = [indicator.columns for indicator in config.indicators]
        self._data = {c: np.empty(256) for c in (*_BARS, *config.columns)}
        self._count = 0
        self.position = 0

    def __len__(self) -> int:
        return self._count

    def update(self, bar) -> StreamPoint:
        """Add a finished bar (anything with open/high/low/close/volume attributes or keys)."""
        row = {c: float(bar[c] if isinstance(bar, Mapping) else getattr(bar, c)) for c in _BARS}
        values: dict[str, float] = {}
        for state, columns in zip(self._states, self._columns):
            values.update(zip(columns, state.update(row), strict=True))
        if self._count == len(self._data["close"]):
            self._data = {c: np.resize(a, 2 * len(a)) for c, a in self._data.items()}
        for c, v in (*row.items(), *values.items()):
            self._data[c][self._count] = v
        self._count += 1
        previous = self.position
        self.position = int(self.config.positions_from(self.arrays())[-1])
        return StreamPoint(values, self.position, previous)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything seen so far as arrays (views, valid until the next update)."""
        return {c: a[: self._count] for c, a in self._data.items()}


# -- finding strategies --------------------------------------------------------------------


def _from_module(module, found: dict[str, Strategy], where: str) -> None:
    spec = getattr(module, "STRATEGY", None)
    if isinstance(spec, Strategy):
        key = spec.name.upper()
        if key in found:
            log.info("%s: strategy %s already found; keeping the first", where, key)
        else:
            found[key] = spec


#: The start of the module names strategy files from a --strategy-path folder get.
_FILE_MODULE = "_qt_strategy_"


def _load_file(path: Path):
    # A unique, importable name: worker processes (--jobs, Dask) find the functions by it.
    name = re.sub(r"\W", "_", f"{_FILE_MODULE}{path.parent.name}_{path.stem}")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise StrategyError(f"{path}: cannot load strategy ({type(exc).__name__}: {exc})") from None
    return module


def loaded_files(strategy: Strategy) -> dict[str, Path]:
    """The strategy files (from --strategy-path folders) that ``strategy``'s functions come
    from, by the module name they were loaded under; empty for a strategy of a package."""
    functions = [strategy.indicators, strategy.positions, strategy.validate]
    if strategy.compiled is not None:
        functions += [strategy.compiled.group, strategy.compiled.positions]
    found = {}
    for function in functions:
        name = getattr(function, "__module__", None) or ""
        module = sys.modules.get(name)
        if name.startswith(_FILE_MODULE) and getattr(module, "__file__", None):
            found[name] = Path(module.__file__)
    return found


def _strategy_dirs(
    settings: Mapping[str, str] | None = None, extra: Iterable[str] = ()
) -> list[Path]:
    """Folders searched besides ``strategies/``: ``extra`` (--strategy-path) first, then
    ``QT_STRATEGY_PATH`` from ``settings`` (or the environment)."""
    text = (settings if settings is not None else os.environ).get(STRATEGY_PATH_SETTING, "")
    return [Path(p) for p in (*extra, *text.split(os.pathsep)) if p and str(p).strip()]


def registered_strategies(dirs: Iterable[str | Path] = ()) -> dict[str, Strategy]:
    """All strategies by upper-case name: the ``strategies`` package, then ``dirs``."""
    import strategies

    found: dict[str, Strategy] = {}
    for info in pkgutil.iter_modules(strategies.__path__):
        if not info.name.startswith("_"):
            _from_module(importlib.import_module(f"strategies.{info.name}"), found, info.name)
    for folder in map(Path, dirs):
        if not folder.is_dir():
            raise StrategyError(f"strategy path {folder}: not a folder")
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                _from_module(_load_file(path), found, str(path))
    return found


def get_strategy(name: str | Strategy, dirs: Iterable[str | Path] = ()) -> Strategy:
    """The strategy ``name`` (any case; or ``package.module:NAME``), or StrategyError listing
    the known ones."""
    if isinstance(name, Strategy):
        return name
    if ":" in name:
        return _by_reference(name)
    known = registered_strategies(dirs)
    try:
        return known[name.strip().upper()]
    except KeyError:
        raise StrategyError(
            f"unknown strategy {name!r}; registered: {', '.join(sorted(known)) or 'none'}"
        ) from None


def _by_reference(reference: str) -> Strategy:
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name.strip())
    except ImportError as exc:
        raise StrategyError(
            f"strategy {reference!r}: cannot import {module_name} ({exc})"
        ) from None
    spec = getattr(module, attribute.strip() or "STRATEGY", None)
    if not isinstance(spec, Strategy):
        raise StrategyError(f"strategy {reference!r}: {attribute} is not a Strategy")
    return spec


def configure(
    name: str | Strategy,
    settings: Mapping[str, str],
    timeframe: str | Timeframe | None = None,
    symbols: Sequence[str] | None = None,
    source: str = "strategy.env",
    params: Mapping[str, Any] | None = None,
    strategy_path: Iterable[str] = (),
) -> StrategyConfig:
    """Resolve strategy ``name`` with ``settings`` (``PREFIX_PARAM`` keys); explicit
    ``timeframe``/``symbols``/``params`` (command-line flags, library calls) win over them."""
    strategy = get_strategy(name, _strategy_dirs(settings, strategy_path))
    prefix = strategy.prefix
    given = {k.upper(): v for k, v in (params or {}).items()}
    known = {p.name for p in strategy.parameters}
    if unknown := sorted(set(given) - known):
        raise StrategyError(
            f"{strategy.name} has no parameter {', '.join(unknown)}; "
            f"its parameters: {', '.join(sorted(known)) or 'none'}"
        )
    resolved: dict[str, Any] = {}
    for parameter in strategy.parameters:
        key = f"{prefix}_{parameter.name}"
        if parameter.name in given:
            value = given[parameter.name]
            value = parameter.parse(value, parameter.name) if isinstance(value, str) else value
            if problem := parameter.check(value):
                raise StrategyError(f"{parameter.name}={value!r} {problem}")
        else:
            text = settings.get(key)
            value = (
                parameter.default
                if text is None or not text.strip()
                else parameter.parse(text, key)
            )
        resolved[parameter.name] = value
    try:
        strategy.validate(resolved)
    except ValueError as exc:
        raise StrategyError(f"{source}: {exc}") from None

    where = "--timeframe" if timeframe else f"{prefix}_TIMEFRAME"
    tf_text = timeframe or settings.get(f"{prefix}_TIMEFRAME") or strategy.default_timeframe
    try:
        tf = parse_timeframe(tf_text)
    except TimeframeError as exc:
        raise StrategyError(f"{where}: {exc}") from None
    allowed = strategy.timeframes
    if allowed is not None and tf.name not in {parse_timeframe(t).name for t in allowed}:
        raise StrategyError(
            f"{where}={str(tf_text)!r}: {strategy.name} runs on {', '.join(allowed)} bars"
        )
    if allowed is None and not tf.clock_aligned:
        raise StrategyError(
            f"{where}={str(tf_text)!r}: bars must divide a day to be built from the data "
            "(1m, 3m, 5m, 10m, 15m, 30m, 1h, 1d, ...)"
        )
    chosen = symbols or split_symbols(settings.get(f"{prefix}_SYMBOLS", ""))
    config = StrategyConfig(
        strategy=strategy,
        params=resolved,
        timeframe=tf,
        symbols=tuple(s.upper() for s in chosen) or strategy.default_symbols,
    )
    try:
        config.indicators  # noqa: B018 - built once here so a bad declaration fails early
    except ValueError as exc:
        raise StrategyError(f"{strategy.name}: {exc}") from None
    return config


def _article(kind: type) -> str:
    return {int: "an integer", float: "a number"}.get(kind, f"a {kind.__name__}")
