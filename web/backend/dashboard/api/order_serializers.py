"""Serializers and filters of the simulated-orders endpoints: a fill as posted and stored, the
list's filters, and the position summary."""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .chart_params import BadParameter, parse_symbol, parse_when
from .chart_serializers import SymbolField
from .models import SimulatedOrder

__all__ = [
    "OrderFilter",
    "SimulatedOrderSerializer",
    "OrderSummaryQuerySerializer",
    "OrderSummarySerializer",
    "COMPARED_FIELDS",
]

#: The fields a repeated post (same client_order_id) must not contradict.
COMPARED_FIELDS = (
    "executed_at",
    "symbol",
    "side",
    "quantity",
    "price",
    "commission",
    "strategy",
    "note",
)


class SideField(serializers.ChoiceField):
    """BUY or SELL, in any case (``buy`` is stored as ``BUY``)."""

    def __init__(self, **kwargs):
        super().__init__(choices=SimulatedOrder.SIDES, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = data.strip().upper()
        return super().to_internal_value(data)


class PositiveFloatField(serializers.FloatField):
    """A finite number above zero."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value > 0:
            raise serializers.ValidationError("must be greater than 0")
        return value


class SimulatedOrderSerializer(serializers.ModelSerializer):
    """A paper-trade fill. ``executed_at`` defaults to now; a date-time without an offset is
    New York time. A repeated post with the same ``client_order_id`` returns the stored fill
    (200) instead of storing a second one (201), or 409 if its fields differ."""

    symbol = SymbolField(help_text="ticker, stored upper case")
    side = SideField(help_text="BUY or SELL (any case)")
    quantity = PositiveFloatField(help_text="shares, > 0 (fractions allowed)")
    price = PositiveFloatField(help_text="fill price per share, > 0")
    commission = serializers.FloatField(
        min_value=0, required=False, default=0.0, help_text="USD, >= 0 (default 0)"
    )
    executed_at = serializers.DateTimeField(
        required=False, help_text="when it filled (default: now); no offset = New York time"
    )
    strategy = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="free text, e.g. the strategy's name (not checked against the registry)",
    )
    note = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="", trim_whitespace=False
    )
    # Declared here, so no unique validator: a repeat is answered by the view, not refused.
    client_order_id = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="the client's id for this fill; posting it again returns the stored fill",
    )

    class Meta:
        model = SimulatedOrder
        fields = [
            "id",
            "created",
            "executed_at",
            "symbol",
            "side",
            "quantity",
            "price",
            "commission",
            "strategy",
            "note",
            "client_order_id",
        ]
        read_only_fields = ["id", "created"]

    def validate_client_order_id(self, value):
        return value or None  # "" means none (and must not collide with another "")


# --- filters --------------------------------------------------------------------------------


class _SymbolFormField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_symbol(value)
        except BadParameter as exc:
            raise forms.ValidationError(str(exc)) from None


class _WhenFormField(forms.CharField):
    def __init__(self, *args, end: bool = False, **kwargs):
        self.end = end
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_when(value, end=self.end).to_pydatetime()
        except BadParameter as exc:
            raise forms.ValidationError(str(exc)) from None


class _SideFormField(forms.ChoiceField):
    def __init__(self, *args, **kwargs):
        kwargs["choices"] = [("", "any"), *SimulatedOrder.SIDES]
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        return super().to_python(value).strip().upper()


class _SideFilter(filters.CharFilter):
    field_class = _SideFormField


class _SymbolFilter(filters.CharFilter):
    field_class = _SymbolFormField


@extend_schema_field(OpenApiTypes.STR)
class _WhenFilter(filters.Filter):
    field_class = _WhenFormField


class OrderFilter(filters.FilterSet):
    """``?symbol=AAPL&strategy=MACD&side=BUY&since=2026-01-01&until=2026-01-31``; dates are
    New York time, ``until`` a bare date includes that whole day."""

    symbol = _SymbolFilter(help_text="ticker, any case")
    strategy = filters.CharFilter(help_text="exactly as stored")
    side = _SideFilter(help_text="BUY or SELL, any case")
    since = _WhenFilter(
        field_name="executed_at",
        lookup_expr="gte",
        help_text="executed at or after: 2026-01-31, 2026-01-31 10:00 (New York) or ISO 8601",
    )
    until = _WhenFilter(
        field_name="executed_at",
        lookup_expr="lt",
        end=True,
        help_text="executed before; a bare date includes that whole day",
    )

    class Meta:
        model = SimulatedOrder
        fields = ["symbol", "strategy", "side", "since", "until"]

    def is_valid(self):
        valid = super().is_valid()
        since, until = (self.form.cleaned_data.get(k) for k in ("since", "until"))
        if valid and since is not None and until is not None and since >= until:
            self.form.add_error("until", "must be after since")
            return False
        return valid


# --- the summary ----------------------------------------------------------------------------


class OrderSummaryQuerySerializer(serializers.Serializer):
    """``GET /api/simulated-orders/summary/`` filters."""

    strategy = serializers.CharField(
        required=False, help_text="only fills logged with this strategy (exactly as stored)"
    )
    symbol = SymbolField(required=False, help_text="only this symbol")


class PriceQuoteSerializer(serializers.Serializer):
    """The price an open position is marked with."""

    value = serializers.FloatField(source="price")
    time = serializers.DateTimeField(help_text="when the price was seen (a bar's start)")
    source = serializers.CharField(help_text='"backtest cache" (later: a live feed)')
    detail = serializers.CharField(help_text="which file and bar")


class PositionSummarySerializer(serializers.Serializer):
    """One symbol's position from its fills, average-cost accounting."""

    symbol = serializers.CharField(source="position.symbol")
    position = serializers.FloatField(
        source="position.quantity", help_text="signed shares: > 0 long, < 0 short, 0 flat"
    )
    average_cost = serializers.FloatField(
        source="position.average_cost",
        allow_null=True,
        help_text="average fill price of the open position (commissions not included); "
        "null when flat",
    )
    realized_pnl = serializers.FloatField(
        source="position.realized_pnl",
        help_text="closed P&L net of every commission paid (also of still-open fills)",
    )
    unrealized_pnl = serializers.FloatField(
        allow_null=True,
        help_text="(price - average cost) x position; null when no price is known (see note)",
    )
    market_value = serializers.FloatField(allow_null=True, help_text="position x price")
    price = PriceQuoteSerializer(source="quote", allow_null=True)
    note = serializers.CharField(allow_null=True, help_text="why unrealized_pnl is null")
    commission = serializers.FloatField(source="position.commission", help_text="total, USD")
    fills = serializers.IntegerField(source="position.fills")
    first_fill = serializers.DateTimeField(source="position.first_fill")
    last_fill = serializers.DateTimeField(source="position.last_fill")


class SummaryTotalsSerializer(serializers.Serializer):
    """All symbols added up."""

    realized_pnl = serializers.FloatField()
    unrealized_pnl = serializers.FloatField(
        allow_null=True, help_text="null when any open position has no price"
    )
    commission = serializers.FloatField()
    fills = serializers.IntegerField()


class OrderSummarySerializer(serializers.Serializer):
    """``GET /api/simulated-orders/summary/``."""

    strategy = serializers.CharField(allow_null=True, help_text="the filter, if any")
    symbol = serializers.CharField(allow_null=True, help_text="the filter, if any")
    accounting = serializers.CharField(help_text="how the numbers are computed")
    positions = PositionSummarySerializer(many=True, help_text="by symbol")
    totals = SummaryTotalsSerializer()
