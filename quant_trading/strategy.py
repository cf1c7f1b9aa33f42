"""What a strategy is, how one is found by name, and how its settings are read.

A strategy is one module in the top-level ``strategies/`` package that defines ``STRATEGY``,
a :class:`Strategy`. Its ``positions`` function is pure and vectorized: from a bars frame it
returns the target position per bar (+1 long, -1 short, 0 flat) decided on information up to
that bar's close. The backtest and the live tracker call the same function.

Settings come from ``strategy.env`` and the environment with the strategy's name as prefix
(``MACD_FAST=12``); every strategy also has ``<NAME>_TIMEFRAME`` and ``<NAME>_SYMBOLS``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .settings import split_symbols
from .timeframes import TimeframeError, parse_timeframe

__all__ = [
    "Parameter",
    "Strategy",
    "StrategyConfig",
    "StrategyError",
    "registered_strategies",
    "get_strategy",
    "configure",
]


class StrategyError(ValueError):
    """An unknown strategy or a bad setting; the message names it."""


@dataclass(frozen=True)
class Parameter:
    """One tunable setting. ``kind`` converts the text from strategy.env (int, float or str)."""

    name: str
    default: Any
    kind: type = int
    choices: tuple[str, ...] = ()
    help: str = ""

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
        if self.kind in (int, float) and parsed <= 0:
            raise StrategyError(f"{setting}={text!r} must be positive")
        return parsed


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: its name, parameters, defaults and position function."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    default_symbols: tuple[str, ...]
    default_timeframe: str
    #: (bars, params) -> target position per bar, an int8 array of -1/0/+1.
    positions: Callable[[pd.DataFrame, Mapping[str, Any]], np.ndarray]
    #: (bars, params) -> bars with the strategy's indicator columns added (for charts/cache).
    indicators: Callable[[pd.DataFrame, Mapping[str, Any]], pd.DataFrame]
    #: Timeframes the strategy may run on (e.g. the live tracker's aggregations).
    timeframes: tuple[str, ...] = ("1m", "3m", "5m", "10m")
    #: Checks across parameters (e.g. fast < slow); raises ValueError.
    validate: Callable[[Mapping[str, Any]], None] = field(default=lambda params: None)

    @property
    def prefix(self) -> str:
        """Setting prefix: ``MACD`` for ``MACD_FAST``."""
        return self.name.upper()


@dataclass(frozen=True)
class StrategyConfig:
    """A strategy with its settings resolved: what a backtest or the live tracker runs."""

    strategy: Strategy
    params: dict[str, Any]
    timeframe: str
    symbols: tuple[str, ...]

    def positions(self, bars: pd.DataFrame) -> np.ndarray:
        """Target position per bar for ``bars`` (see :class:`Strategy`)."""
        return self.strategy.positions(bars, self.params)

    def indicators(self, bars: pd.DataFrame) -> pd.DataFrame:
        """``bars`` with this strategy's indicator columns."""
        return self.strategy.indicators(bars, self.params)


def registered_strategies() -> dict[str, Strategy]:
    """All strategies in the ``strategies`` package, by upper-case name."""
    import strategies

    found: dict[str, Strategy] = {}
    for info in pkgutil.iter_modules(strategies.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"strategies.{info.name}")
        spec = getattr(module, "STRATEGY", None)
        if isinstance(spec, Strategy):
            found[spec.name.upper()] = spec
    return found


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name`` (any case), or StrategyError listing the known ones."""
    known = registered_strategies()
    try:
        return known[name.strip().upper()]
    except KeyError:
        raise StrategyError(
            f"unknown strategy {name!r}; registered: {', '.join(sorted(known)) or 'none'}"
        ) from None


def configure(
    name: str,
    settings: Mapping[str, str],
    timeframe: str | None = None,
    symbols: list[str] | None = None,
    source: str = "strategy.env",
) -> StrategyConfig:
    """Resolve strategy ``name`` with ``settings`` (``PREFIX_PARAM`` keys); explicit
    ``timeframe``/``symbols`` (command-line flags) win over the settings."""
    strategy = get_strategy(name)
    prefix = strategy.prefix
    params: dict[str, Any] = {}
    for parameter in strategy.parameters:
        key = f"{prefix}_{parameter.name}"
        text = settings.get(key)
        params[parameter.name] = (
            parameter.default if text is None or not text.strip() else parameter.parse(text, key)
        )
    try:
        strategy.validate(params)
    except ValueError as exc:
        raise StrategyError(f"{source}: {exc}") from None

    tf_setting = f"{prefix}_TIMEFRAME"
    tf_text = timeframe or settings.get(tf_setting) or strategy.default_timeframe
    try:
        tf = parse_timeframe(tf_text)
    except TimeframeError as exc:
        raise StrategyError(f"{'--timeframe' if timeframe else tf_setting}: {exc}") from None
    if tf.name not in strategy.timeframes:
        where = "--timeframe" if timeframe else tf_setting
        raise StrategyError(
            f"{where}={tf_text!r}: {strategy.name} runs on {', '.join(strategy.timeframes)} bars"
        )
    chosen = symbols or split_symbols(settings.get(f"{prefix}_SYMBOLS", ""))
    return StrategyConfig(
        strategy=strategy,
        params=params,
        timeframe=tf.name,
        symbols=tuple(s.upper() for s in chosen) or strategy.default_symbols,
    )


def _article(kind: type) -> str:
    return {int: "an integer", float: "a number"}.get(kind, f"a {kind.__name__}")
