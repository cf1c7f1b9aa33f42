"""``GET /api/strategies/``: the strategies a backtest can run, for the dashboard's picker.

They are the registry's (:func:`quant_trading.strategy.registered_strategies`): the bundled
ones in ``strategies/`` plus those in the folders named by ``QT_STRATEGY_PATH`` (os.pathsep
separated) in the server's environment. ``strategy.env`` is not read: what this endpoint shows
as a default is what ``POST /api/backtests/`` uses when a field is left out.
"""

from __future__ import annotations

import os

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from quant_trading.strategy import (
    STRATEGY_PATH_SETTING,
    Parameter,
    Strategy,
    StrategyError,
    registered_strategies,
)

from .errors import ErrorSerializer

__all__ = ["StrategyList", "StrategySerializer", "available_strategies", "strategy_dirs"]

#: JSON Schema type of each parameter kind a strategy may declare.
PARAMETER_TYPES = {int: "integer", float: "number", str: "string"}


class StrategyPathError(APIException):
    """``QT_STRATEGY_PATH`` names a folder that is missing or holds a broken strategy file:
    the server's configuration, not the request, is wrong."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_code = "strategy_path"


def strategy_dirs() -> list[str]:
    """The extra strategy folders: ``QT_STRATEGY_PATH`` from the server's environment."""
    text = os.environ.get(STRATEGY_PATH_SETTING, "")
    return [part for part in text.split(os.pathsep) if part.strip()]


def available_strategies() -> dict[str, Strategy]:
    """Every registered strategy by upper-case name; :class:`StrategyPathError` (500) when
    an extra folder cannot be read."""
    try:
        return registered_strategies(strategy_dirs())
    except StrategyError as exc:
        raise StrategyPathError(str(exc)) from None


class ParameterSerializer(serializers.Serializer):
    """One tunable parameter of a strategy (a :class:`~quant_trading.strategy.Parameter`)."""

    name = serializers.CharField(help_text="as declared, e.g. FAST; requests may use any case")
    type = serializers.SerializerMethodField(help_text="integer, number or string")
    default = serializers.JSONField(help_text="the value used when the request leaves it out")
    choices = serializers.ListField(
        child=serializers.CharField(), help_text="the allowed values of a string; [] for numbers"
    )
    bounds = serializers.SerializerMethodField(
        help_text="[minimum, maximum] inclusive, null on an open side; null: a number needs "
        "only to be positive (or the parameter is a string)"
    )
    help = serializers.CharField()

    def get_type(self, parameter: Parameter) -> str:
        return PARAMETER_TYPES.get(parameter.kind, "string")

    def get_bounds(self, parameter: Parameter) -> list[float | None] | None:
        return None if parameter.bounds is None else list(parameter.bounds)


class StrategySerializer(serializers.Serializer):
    """A registered strategy: what it is, its parameters, and where it runs by default."""

    name = serializers.CharField()
    description = serializers.CharField()
    parameters = ParameterSerializer(many=True)
    default_timeframe = serializers.CharField()
    timeframes = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="the only bar sizes it runs on; null: any size the data can be aggregated "
        "to that divides a day (1m, 3m, 5m, 10m, 15m, 30m, 1h, 1d, ...)",
    )
    default_symbols = serializers.ListField(child=serializers.CharField())


class StrategyList(APIView):
    """``GET /api/strategies/``: every registered strategy, by name.

    Not paginated: a plain JSON list (there are a handful of strategies, and the picker needs
    them all at once).
    """

    @extend_schema(
        summary="Registered strategies",
        responses={200: StrategySerializer(many=True), 500: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        """The strategies sorted by name."""
        strategies = sorted(available_strategies().values(), key=lambda s: s.name)
        return Response(StrategySerializer(strategies, many=True).data)
