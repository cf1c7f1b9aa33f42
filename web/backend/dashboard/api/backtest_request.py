"""The body of ``POST /api/backtests/``, checked field by field into a
:class:`~dashboard.api.backtest_runs.BacktestRequest`.

The fields mirror ``run_backtest``'s flags, with the same defaults (taken from the engine's
own option classes) and the same rules; strategy, parameters and timeframe are resolved by
the registry's :func:`~quant_trading.strategy.configure`. What the CLI would read from
``strategy.env`` comes from the strategy's declared defaults instead (those that
``GET /api/strategies/`` lists), so the same request always runs the same backtest.

Only two things from a request ever reach a file name: ticker symbols (letters and digits,
with ``.`` or ``-`` between them: ``BRK.B``) and a timeframe once the toolkit has parsed it
(``5m``); anything else is refused before a file is looked at.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from quant_trading.backtesting.datafiles import MissingDataError, find_bars_file
from quant_trading.backtesting.engine import Costs, Sizing
from quant_trading.backtesting.runner import BacktestOptions
from quant_trading.settings import split_symbols
from quant_trading.strategy import Parameter, Strategy, StrategyError, configure
from quant_trading.timeframes import Timeframe, TimeframeError, parse_time, parse_timeframe

from .backtest_runs import BacktestRequest
from .chart_params import SYMBOL_RE  # one ticker rule for every endpoint
from .strategies import available_strategies

__all__ = ["MAX_SYMBOLS", "NewBacktestSerializer"]

#: A ticker symbol; it becomes part of a file name, so nothing else may pass.
#: Symbols per request: each one's whole data file is read into memory.
MAX_SYMBOLS = 50

# run_backtest's defaults are the engine's option classes' defaults.
_DEFAULT_OPTIONS, _DEFAULT_COSTS, _DEFAULT_SIZING = BacktestOptions(), Costs(), Sizing()


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string", "example": "AAPL MSFT SPY"},
        ]
    }
)
class SymbolsField(serializers.Field):
    """Ticker symbols as a list or as one string separated by spaces or commas; upper-cased,
    duplicates dropped, order kept."""

    default_error_messages = {
        "type": "a list of ticker symbols or one string of them, separated by spaces or commas",
        "ticker": "not a ticker symbol: {value!r}",
        "too_many": f"at most {MAX_SYMBOLS} symbols per backtest",
    }

    def get_value(self, dictionary):
        # A form posts a list as repeated fields.
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            values = dictionary.getlist(self.field_name)
            return values if len(values) > 1 else values[0]
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> list[str]:
        if isinstance(data, str):
            parts = [data]
        elif isinstance(data, list) and all(isinstance(item, str) for item in data):
            parts = data
        else:
            self.fail("type")
        symbols = split_symbols(" ".join(parts))
        for symbol in symbols:
            if not SYMBOL_RE.fullmatch(symbol):
                self.fail("ticker", value=symbol)
        if len(symbols) > MAX_SYMBOLS:
            self.fail("too_many")
        return symbols

    def to_representation(self, value: list[str]) -> list[str]:
        return value


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string"}]})
class ParamValueField(serializers.Field):
    """A parameter's value as sent; :meth:`NewBacktestSerializer.validate` checks it
    against the strategy's declaration."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _param_value(parameter: Parameter, value: Any) -> Any:
    """``value`` converted to the parameter's kind and checked against its choices and
    bounds; ValueError says what is wrong. Numbers may come as JSON numbers or as text."""
    if parameter.choices or parameter.kind is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string{_one_of(parameter)}")
        # Choices match in any case, as in strategy.env.
        value = value.strip().lower() if parameter.choices else value
    else:
        wrong = f"must be {_kind_text(parameter.kind)}"
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(wrong)
        if parameter.kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(wrong)  # int() would silently cut 10.5 to 10
        try:
            value = parameter.kind(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(wrong) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite number, not {value}")
    if problem := parameter.check(value):
        raise ValueError(problem)
    return value


def _kind_text(kind: type) -> str:
    return {int: "a whole number", float: "a number"}.get(kind, f"a {kind.__name__}")


def _one_of(parameter: Parameter) -> str:
    return f" (one of {', '.join(parameter.choices)})" if parameter.choices else ""


def _time_or_none(text: str | None, end: bool) -> pd.Timestamp | None:
    """``2025-01-31`` or ``2025-01-31 10:00`` (New York unless an offset is given), as
    ``run_backtest --start/--end`` read it; ValueError when it is no date."""
    if text is None or not text.strip():
        return None
    try:
        stamp = parse_time(text.strip(), end=end)
    except (ValueError, TypeError, OverflowError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise ValueError(f"{text!r} is not a date or time (use e.g. 2025-01-31)")
    return stamp


class NewBacktestSerializer(serializers.Serializer):
    """A backtest to run: ``run_backtest``'s flags as JSON fields, same defaults."""

    strategy = serializers.CharField(
        max_length=100, help_text="a registered strategy's name (GET /api/strategies/), any case"
    )
    symbols = SymbolsField(
        required=False,
        help_text="list, or one string separated by spaces or commas (default: the "
        "strategy's default symbols)",
    )
    timeframe = serializers.CharField(
        required=False,
        max_length=20,
        help_text="bar size: 1m, 3m, 5m, 10m, 15m, 30m, 1h, ... (default: the strategy's)",
    )
    params = serializers.DictField(
        child=ParamValueField(),
        required=False,
        default=dict,
        help_text='the strategy\'s parameters by name, any case, e.g. {"fast": 10}; the '
        "others keep their defaults",
    )
    start = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=40,
        help_text="first day or time traded, New York time: 2025-01-31 or "
        '"2025-01-31 10:00" (default: two years before the end)',
    )
    end = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=40,
        help_text="last day (included) or time used (default: the last bar in the data)",
    )
    initial_capital = serializers.FloatField(
        default=_DEFAULT_OPTIONS.capital, help_text="USD per symbol; the portfolio adds them up"
    )
    commission = serializers.FloatField(
        default=_DEFAULT_COSTS.commission_per_share,
        min_value=0,
        help_text="USD per share, IBKR fixed pricing (min 1.00, max 1% of value per order); "
        "0 = none",
    )
    slippage = serializers.FloatField(
        default=_DEFAULT_COSTS.slippage, min_value=0, help_text="USD per share against every fill"
    )
    allocation = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text=f"fraction of equity per entry, commission included, 0 < x <= 1 (default: "
        f"{_DEFAULT_SIZING.allocation:g}); not with size",
    )
    size = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="a fixed number of shares per entry, > 0; not with allocation",
    )
    fractional = serializers.BooleanField(default=False, help_text="allow fractional shares")
    flat_at_close = serializers.BooleanField(
        default=False, help_text="close positions at each session's last bar"
    )
    write_cache = serializers.BooleanField(
        default=True,
        help_text="write backtest_results/<timeframe>/<SYMBOL>_backtest.json for the charts, "
        "as run_backtest does by default",
    )

    def validate_strategy(self, value: str) -> Strategy:
        # Registered names only: a "package.module:NAME" reference would import any module.
        known = available_strategies()
        strategy = known.get(value.strip().upper())
        if strategy is None:
            raise serializers.ValidationError(
                f"unknown strategy {value!r}; registered: {', '.join(sorted(known)) or 'none'}"
            )
        return strategy

    def validate_timeframe(self, value: str) -> Timeframe:
        try:
            return parse_timeframe(value)
        except TimeframeError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_initial_capital(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError("must be greater than 0")
        return value

    def validate_allocation(self, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 1:
            raise serializers.ValidationError(
                "must be greater than 0 and at most 1 (a fraction of equity; no leverage)"
            )
        return value

    def validate_size(self, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise serializers.ValidationError("must be greater than 0")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Cross-field rules; returns ``{"backtest": BacktestRequest}``."""
        errors: dict[str, Any] = {}
        strategy: Strategy = attrs["strategy"]

        params, param_errors = self._params(strategy, attrs.get("params") or {})
        if param_errors:
            errors["params"] = param_errors

        bounds = {}
        for name in ("start", "end"):
            try:
                bounds[name] = _time_or_none(attrs.get(name), end=name == "end")
            except ValueError as exc:
                errors[name] = [str(exc)]
        start, end = bounds.get("start"), bounds.get("end")
        if start is not None and end is not None and start >= end:
            errors["start"] = [f"must be before end ({attrs['end'].strip()})"]

        allocation, size = attrs.get("allocation"), attrs.get("size")
        if allocation is not None and size is not None:
            message = "give allocation or size, not both"
            errors["allocation"] = errors["size"] = [message]
        elif size is not None and not attrs["fractional"] and not float(size).is_integer():
            errors["size"] = ["whole shares only, unless fractional is true"]
        if errors:
            raise serializers.ValidationError(errors)

        try:
            config = configure(
                strategy,
                {},
                timeframe=attrs.get("timeframe"),
                symbols=attrs.get("symbols") or None,
                source="params",
                params=params,
            )
        except StrategyError as exc:
            raise serializers.ValidationError(_configure_error(str(exc))) from None
        self._check_data(config.symbols, config.timeframe)

        options = BacktestOptions(
            start=start,
            end=end,
            capital=attrs["initial_capital"],
            costs=Costs(commission_per_share=attrs["commission"], slippage=attrs["slippage"]),
            sizing=Sizing(
                allocation=_DEFAULT_SIZING.allocation if allocation is None else allocation,
                fixed_shares=size,
                fractional=attrs["fractional"],
            ),
            flat_at_close=attrs["flat_at_close"],
        )
        stored = {
            "start": (attrs.get("start") or "").strip() or None,
            "end": (attrs.get("end") or "").strip() or None,
            "initial_capital": options.capital,
            "commission": options.costs.commission_per_share,
            "slippage": options.costs.slippage,
            "allocation": None if size is not None else options.sizing.allocation,
            "size": size,
            "fractional": options.sizing.fractional,
            "flat_at_close": options.flat_at_close,
            "write_cache": attrs["write_cache"],
        }
        return {"backtest": BacktestRequest(config, options, attrs["write_cache"], stored)}

    @staticmethod
    def _params(
        strategy: Strategy, given: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, list[str]] | list[str]]:
        """The given parameters by declared name, converted and checked one by one, then
        together by the strategy's own ``validate``; and the errors (by the name as sent, or
        a list for a rule across parameters)."""
        declared = {p.name.upper(): p for p in strategy.parameters}
        params: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for key, value in given.items():
            parameter = declared.get(str(key).strip().upper())
            if parameter is None:
                names = ", ".join(p.name for p in strategy.parameters) or "none"
                errors[key] = [f"{strategy.name} has no parameter {key!r}; its parameters: {names}"]
                continue
            try:
                params[parameter.name] = _param_value(parameter, value)
            except ValueError as exc:
                errors[key] = [str(exc)]
        if errors:
            return params, errors
        try:
            strategy.validate({**strategy.defaults(), **params})
        except ValueError as exc:
            return params, [str(exc)]
        return params, {}

    @staticmethod
    def _check_data(symbols: tuple[str, ...], timeframe: Timeframe) -> None:
        """Every symbol needs a data file at the timeframe or a finer one to aggregate."""
        missing = []
        for symbol in symbols:
            if not SYMBOL_RE.fullmatch(symbol):  # a default too
                missing.append(f"not a ticker symbol: {symbol!r}")
                continue
            try:
                find_bars_file(settings.DATA_DIR, symbol, timeframe)
            except MissingDataError as exc:
                # The message starts with the server's folder; the client needs the rest.
                missing.append(str(exc).removeprefix(f"{settings.DATA_DIR}: "))
        if missing:
            raise serializers.ValidationError({"symbols": missing})


def _configure_error(message: str) -> dict[str, list[str]]:
    """A StrategyError from configure() under the field it is about. Parameters were checked
    before, so what is left is the timeframe (``--timeframe='7m': bars must divide a day``)
    or the strategy's own declaration."""
    if message.startswith("--timeframe"):
        return {"timeframe": [message.split(": ", 1)[-1]]}
    return {"non_field_errors": [message]}
