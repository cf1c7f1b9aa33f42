"""Serializers of the chart endpoints: their query parameters, and the response bodies (the
listing is rendered by them; the chart body is built by :mod:`.chart_payload` for speed and
described here for the OpenAPI schema, with a test keeping the two equal). The statistics are
the backtest endpoints' serializer, so the schema has one ``Statistics``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .backtest_serializers import RoundTripSerializer, StatisticsSerializer
from .chart_params import BadParameter, parse_chart_timeframe, parse_symbol, parse_when
from .chart_payload import DEFAULT_LIMIT, MAX_LIMIT
from .jsonable import json_number

# --- query parameters -----------------------------------------------------------------------


class SymbolField(serializers.CharField):
    """A ticker, upper-cased (``aapl`` -> ``AAPL``)."""

    def to_internal_value(self, data):
        try:
            return parse_symbol(super().to_internal_value(data))
        except BadParameter as exc:
            raise serializers.ValidationError(str(exc)) from None


class TimeframeField(serializers.CharField):
    """A bar size (``5m``, ``5 mins``), as its canonical name."""

    def to_internal_value(self, data):
        try:
            return parse_chart_timeframe(super().to_internal_value(data)).name
        except BadParameter as exc:
            raise serializers.ValidationError(str(exc)) from None


@extend_schema_field(OpenApiTypes.STR)
class WhenField(serializers.CharField):
    """A date or date-time in New York time (see :func:`.chart_params.parse_when`);
    ``end=True`` reads a bare date as the end of that day."""

    def __init__(self, *, end: bool = False, **kwargs):
        self.end = end
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return parse_when(super().to_internal_value(data), end=self.end)
        except BadParameter as exc:
            raise serializers.ValidationError(str(exc)) from None


class ChartListQuerySerializer(serializers.Serializer):
    """``GET /api/charts/`` filters."""

    timeframe = TimeframeField(required=False, help_text="only this bar size (5m, 1h, ...)")
    symbol = SymbolField(required=False, help_text="only this symbol")


class ChartQuerySerializer(serializers.Serializer):
    """``GET /api/charts/<timeframe>/<symbol>/`` window parameters."""

    start = WhenField(
        required=False,
        help_text="first bar (inclusive): 2026-01-31, 2026-01-31 10:00 or ISO 8601; New York "
        "time unless an offset is given. With start, the window is the first `limit` bars "
        "from it.",
    )
    end = WhenField(
        end=True,
        required=False,
        help_text="end of the window (exclusive); a bare date includes that whole day. "
        "Without start, the window is the last `limit` bars before it (or before the end "
        "of the data).",
    )
    limit = serializers.IntegerField(
        required=False,
        default=DEFAULT_LIMIT,
        min_value=1,
        max_value=MAX_LIMIT,
        help_text=f"most bars returned (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
    )

    def validate(self, attrs):
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"end": ["must be after start"]})
        return attrs


# --- the listing ----------------------------------------------------------------------------


@extend_schema_field({"type": "number", "nullable": True})
class JsonNumberField(serializers.Field):
    """A float that may be NaN (``null``) or infinite (``"Infinity"``)."""

    def to_representation(self, value):
        return json_number(value)


class HeadlineSerializer(serializers.Serializer):
    """The headline numbers of a cached backtest (``null`` when undefined)."""

    net_profit = JsonNumberField()
    return_pct = JsonNumberField()
    buy_hold_return_pct = JsonNumberField()
    max_drawdown_pct = JsonNumberField()
    win_rate_pct = JsonNumberField()
    trades = serializers.IntegerField()


class ChartSummarySerializer(serializers.Serializer):
    """One cache file in ``GET /api/charts/``. A file that cannot be read has ``error`` set
    and nulls for what only its contents tell."""

    timeframe = serializers.CharField(source="file.timeframe")
    symbol = serializers.CharField(source="file.symbol")
    file = serializers.CharField(source="file.name", help_text="relative to the cache folder")
    size = serializers.IntegerField(help_text="bytes")
    modified = serializers.DateTimeField(help_text="when the file was written")
    error = serializers.CharField(allow_null=True, help_text="why the file cannot be read")
    strategy = serializers.CharField(allow_null=True)
    params = serializers.DictField(allow_null=True, help_text="the strategy's parameters")
    period_start = serializers.CharField(allow_null=True, help_text="first traded bar, ISO")
    period_end = serializers.CharField(allow_null=True, help_text="last bar, ISO")
    bars = serializers.IntegerField(allow_null=True)
    headline = HeadlineSerializer(allow_null=True)


# --- the chart (schema only) ----------------------------------------------------------------


class ChartStrategySerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    params = serializers.DictField()


class ChartFileSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="relative to the cache folder")
    size = serializers.IntegerField()
    modified = serializers.DateTimeField()


class ChartPeriodSerializer(serializers.Serializer):
    start = serializers.CharField(help_text="first traded bar of the backtest, ISO")
    end = serializers.CharField(help_text="last bar, ISO")
    bars = serializers.IntegerField(help_text="bars in the whole backtest")


class ChartRequestSerializer(serializers.Serializer):
    start = serializers.CharField(allow_null=True)
    end = serializers.CharField(allow_null=True)
    limit = serializers.IntegerField()


class ChartWindowSerializer(serializers.Serializer):
    requested = ChartRequestSerializer(help_text="start/end as understood (New York time)")
    start = serializers.CharField(allow_null=True, help_text="first bar returned, ISO")
    end = serializers.CharField(allow_null=True, help_text="last bar returned, ISO")
    bars = serializers.IntegerField(help_text="bars returned")
    available = serializers.IntegerField(help_text="bars in the requested period")
    truncated = serializers.BooleanField(help_text="the limit left bars of the period out")
    previous_end = serializers.CharField(
        allow_null=True, help_text="pass as `end` for the bars before this window"
    )
    next_start = serializers.CharField(
        allow_null=True, help_text="pass as `start` for the bars after this window"
    )


class ChartLineSerializer(serializers.Serializer):
    column = serializers.CharField(help_text="the key of its values in `candles`")
    label = serializers.CharField()
    style = serializers.ChoiceField(choices=["line", "histogram"])
    color = serializers.CharField(allow_null=True, help_text="null: pick one from a palette")


class ChartIndicatorSerializer(serializers.Serializer):
    panel = serializers.CharField(help_text='"price": over the candles; else a panel below')
    levels = serializers.ListField(child=serializers.FloatField())
    limits = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    lines = ChartLineSerializer(many=True)


class ChartSerializer(serializers.Serializer):
    """``GET /api/charts/<timeframe>/<symbol>/``: a window of a cached backtest."""

    timeframe = serializers.CharField()
    symbol = serializers.CharField()
    timezone = serializers.CharField(allow_null=True, help_text="of the bar labels")
    strategy = ChartStrategySerializer()
    settings = serializers.DictField(help_text="capital, costs, sizing, ... as cached")
    data = serializers.DictField(help_text="the data file: file, sha256, rows, ...")
    file = ChartFileSerializer()
    period = ChartPeriodSerializer()
    window = ChartWindowSerializer()
    indicators = ChartIndicatorSerializer(many=True, help_text="how to draw indicator columns")
    candles = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="column arrays aligned with `time` (epoch seconds, UTC; bars are labelled "
        "by their start): open, high, low, close, volume, each indicator column, equity "
        "and position (signed shares); null where undefined",
    )
    trades = RoundTripSerializer(many=True, help_text="round trips overlapping the window")
    trades_total = serializers.IntegerField(help_text="round trips in the whole backtest")
    statistics = StatisticsSerializer(help_text="the backtest's statistics")
