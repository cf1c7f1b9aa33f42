"""What the backtest endpoints answer: a stored :class:`~dashboard.api.models.BacktestRun`.

The run's records are stored as JSON (see :mod:`.backtest_records`) and returned as stored,
without a pass through serializer fields (a run can hold thousands of trades). The record
serializers here describe them for the OpenAPI schema (``/api/schema/``); the tests check
that the answers carry exactly their keys.
"""

from __future__ import annotations

from dataclasses import fields

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from quant_trading.backtesting.engine import EXIT_REASONS
from quant_trading.backtesting.statistics import LABELS, Statistics

from .models import BacktestRun

__all__ = [
    "DETAIL_ONLY",
    "BacktestRunSerializer",
    "BacktestRunSummarySerializer",
    "DataFileSerializer",
    "MonthlyEquitySerializer",
    "RunSettingsSerializer",
    "StatisticsSerializer",
    "SymbolMetricsSerializer",
    "RoundTripSerializer",
    "TradeSerializer",
]

#: A statistic: a number, null when undefined (NaN), or "Infinity"/"-Infinity".
STATISTIC_SCHEMA = {
    "oneOf": [{"type": "number"}, {"type": "string", "enum": ["Infinity", "-Infinity"]}],
    "nullable": True,
}

#: A strategy's parameters: name -> number or string.
PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": {"oneOf": [{"type": "number"}, {"type": "string"}]},
}


@extend_schema_field(STATISTIC_SCHEMA)
class StatisticField(serializers.Field):
    """A statistic as stored (see :data:`STATISTIC_SCHEMA`)."""

    def to_representation(self, value):
        return value


def _statistics_fields() -> dict[str, serializers.Field]:
    # One field per Statistics field, so the schema follows the dataclass.
    out: dict[str, serializers.Field] = {}
    for field in fields(Statistics):
        label = LABELS.get(field.name, field.name)
        if field.type == "int":
            out[field.name] = serializers.IntegerField(help_text=label)
        elif field.type == "float":
            unit = " (seconds)" if field.name.endswith("_s") else ""
            out[field.name] = StatisticField(help_text=label + unit)
        else:  # times: ISO 8601, null when there is none (no drawdown)
            out[field.name] = serializers.CharField(allow_null=True, help_text=label)
    return out


class StatisticsSerializer(serializers.Serializer):
    """Every statistic of an equity curve and its trades (backtesting.py's set, plus net
    profit, USD drawdown and the long/short split)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {**super().get_fields(), **_statistics_fields()}


class SymbolMetricsSerializer(StatisticsSerializer):
    """One symbol's row: its statistics (the CLI's per-symbol summary columns among them),
    the bars traded, and the warning about entries the cash could not pay for."""

    symbol = serializers.CharField()
    bars = serializers.IntegerField(help_text="bars in the traded window")
    warning = serializers.CharField(allow_null=True)


class RoundTripSerializer(serializers.Serializer):
    """One round trip: entered at a bar's open, left at an open (or a close for
    ``session close`` and ``end of data``)."""

    side = serializers.ChoiceField(choices=["long", "short"])
    entry_time = serializers.DateTimeField()
    entry_price = serializers.FloatField()
    exit_time = serializers.DateTimeField()
    exit_price = serializers.FloatField()
    shares = serializers.FloatField()
    commission = serializers.FloatField(help_text="entry and exit, USD")
    pnl = serializers.FloatField(help_text="net of commissions, USD")
    return_pct = serializers.FloatField(
        allow_null=True, help_text="net, relative to the entry value (null when undefined)"
    )
    bars_held = serializers.IntegerField()
    exit_reason = serializers.ChoiceField(
        choices=EXIT_REASONS, help_text="session close and end of data exit at the bar's close"
    )


class TradeSerializer(RoundTripSerializer):
    """A round trip of one of the run's symbols."""

    symbol = serializers.CharField()


class MonthlyEquitySerializer(serializers.Serializer):
    """The portfolio's equity at a month's end, as ``run_backtest`` prints it."""

    month = serializers.CharField(help_text="YYYY-MM, New York time")
    equity = serializers.FloatField()
    month_pct = serializers.FloatField(help_text="change from the previous month's end")
    max_drawdown_pct = serializers.FloatField(help_text="deepest drawdown within the month")


class DataFileSerializer(serializers.Serializer):
    """The file a symbol's bars were read from."""

    symbol = serializers.CharField()
    file = serializers.CharField(help_text="relative to the repository root, or absolute")
    sha256 = serializers.CharField()
    source_timeframe = serializers.CharField(help_text="the file's bar size (finer: aggregated)")
    rows = serializers.IntegerField(help_text="bars at the run's timeframe")
    first_bar = serializers.DateTimeField(allow_null=True)
    last_bar = serializers.DateTimeField(allow_null=True)


class RunSettingsSerializer(serializers.Serializer):
    """How a run was set up besides strategy, parameters, symbols and timeframe."""

    start = serializers.CharField(allow_null=True, help_text="as requested")
    end = serializers.CharField(allow_null=True, help_text="as requested")
    initial_capital = serializers.FloatField(help_text="USD per symbol")
    commission = serializers.FloatField(help_text="USD per share")
    slippage = serializers.FloatField(help_text="USD per share")
    allocation = serializers.FloatField(allow_null=True, help_text="null when size is set")
    size = serializers.FloatField(allow_null=True)
    fractional = serializers.BooleanField()
    flat_at_close = serializers.BooleanField()
    write_cache = serializers.BooleanField()


def _stored(schema, help_text: str = "") -> serializers.Field:
    """A read-only field that returns the stored JSON as is, documented as ``schema``."""
    field_class = type("StoredField", (serializers.JSONField,), {})
    return extend_schema_field(schema)(field_class)(read_only=True, help_text=help_text)


_RUN_FIELDS = [
    "id", "created", "duration_seconds", "requested_by", "strategy", "params", "symbols",
    "timeframe", "settings", "summary", "symbol_metrics", "monthly_equity", "trades",
    "data_files", "skipped", "cache_files",
]  # fmt: skip
#: What the list leaves out (the bulk of a run); ``GET /api/backtests/<id>/`` has them.
DETAIL_ONLY = ("symbol_metrics", "monthly_equity", "trades", "data_files", "cache_files")


class BacktestRunSerializer(serializers.ModelSerializer):
    """A stored backtest run with everything it produced."""

    duration_seconds = serializers.FloatField(
        read_only=True, help_text="the engine run and the cache writes"
    )
    requested_by = serializers.CharField(read_only=True, help_text="the client's address")
    strategy = serializers.CharField(read_only=True, help_text="the strategy's registered name")
    params = _stored(PARAMS_SCHEMA, "every parameter by its declared name, defaults filled in")
    symbols = _stored({"type": "array", "items": {"type": "string"}}, "as run, upper case")
    settings = _stored(RunSettingsSerializer)
    summary = _stored(StatisticsSerializer, "the portfolio's statistics")
    symbol_metrics = _stored(SymbolMetricsSerializer(many=True), "one row per symbol run")
    monthly_equity = _stored(MonthlyEquitySerializer(many=True))
    trades = _stored(TradeSerializer(many=True), "every round trip, by exit time")
    data_files = _stored(DataFileSerializer(many=True))
    skipped = _stored(
        {"type": "object", "additionalProperties": {"type": "string"}},
        "symbol -> why it was not run (e.g. no bars in the period)",
    )
    cache_files = _stored(
        {"type": "array", "items": {"type": "string"}},
        "the cache files written (relative to the repository root, or absolute)",
    )

    class Meta:
        model = BacktestRun
        fields = _RUN_FIELDS
        read_only_fields = _RUN_FIELDS


class BacktestRunSummarySerializer(BacktestRunSerializer):
    """A stored run without its trades and other bulk: what the run list shows."""

    class Meta(BacktestRunSerializer.Meta):
        fields = [name for name in _RUN_FIELDS if name not in DETAIL_ONLY]
        read_only_fields = fields
