"""``/api/charts/``: the backtests ``run_backtest`` cached, for the dashboard's chart.

* ``GET /api/charts/?timeframe=5m&symbol=AAPL`` lists ``<CACHE_DIR>/<timeframe>/<SYMBOL>_
  backtest.json`` files, paginated, with each one's strategy, period and headline numbers; a
  file that cannot be read is listed with its ``error``.
* ``GET /api/charts/<timeframe>/<symbol>/?start=&end=&limit=`` returns a window of one
  backtest: candles with indicator values, equity and position as column arrays, the drawing
  hints, the trades in the window, and the statistics (see :mod:`.chart_payload`). Without a
  window it returns the newest ``limit`` bars (2,000 by default), and says how many the
  period holds, so a browser never downloads years of bars at once.

Errors: 400 for a bad timeframe, symbol, date or limit; 404 when nothing is cached for the
pair; 409 (``cache_unreadable``) when the file exists but cannot be read (damaged, or written
by an unknown version): the request was fine, the file needs the backtest run again.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from quant_trading.backtesting.cache import CacheError
from quant_trading.visualization.catalog import run_backtest_hint

from .backtest_records import display_path
from .chart_params import BadParameter, parse_chart_timeframe, parse_symbol
from .chart_payload import chart_document, select
from .chart_serializers import (
    ChartListQuerySerializer,
    ChartQuerySerializer,
    ChartSerializer,
    ChartSummarySerializer,
)
from .chart_store import STORE, NoCache, cache_files, chart_file
from .errors import ErrorSerializer
from .pagination import Pagination

__all__ = ["ChartList", "ChartDetail", "CacheUnreadable"]


class CacheUnreadable(exceptions.APIException):
    """A cache file that exists but cannot be read; the message names it and the fix."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "cache_unreadable"
    default_detail = "the cached backtest cannot be read"


class FastJSONRenderer(JSONRenderer):
    """JSON by orjson: a chart window is mostly long float arrays, which the standard
    encoder takes ~25x longer to write (2,000 bars: 48 ms vs 2 ms; 20,000: 234 vs 14 ms).
    Same output otherwise (NaN never reaches it: the payload maps it to null)."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class ChartList(APIView):
    """The cached backtests, shortest bars first, then by symbol."""

    pagination_class = Pagination

    @extend_schema(
        summary="List cached backtests",
        parameters=[ChartListQuerySerializer],
        responses={200: ChartSummarySerializer(many=True), 400: _error("bad filter")},
    )
    def get(self, request: Request) -> Response:
        """One page of cache files; only the files on the page are read (once per change)."""
        query = ChartListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data
        files = cache_files(settings.CACHE_DIR, wanted.get("timeframe"), wanted.get("symbol"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(files, request, view=self)
        summaries = [STORE.summary(file) for file in page]
        return paginator.get_paginated_response(ChartSummarySerializer(summaries, many=True).data)


class ChartDetail(APIView):
    """A window of one cached backtest."""

    renderer_classes = [
        FastJSONRenderer,
        *(r for r in api_settings.DEFAULT_RENDERER_CLASSES if r is not JSONRenderer),
    ]

    @extend_schema(
        summary="A window of a cached backtest",
        parameters=[
            OpenApiParameter(
                "timeframe",
                str,
                OpenApiParameter.PATH,
                description="bar size: 5m, 1h, ... (or IB's '5 mins')",
            ),
            OpenApiParameter("symbol", str, OpenApiParameter.PATH, description="ticker, any case"),
            ChartQuerySerializer,
        ],
        responses={
            200: ChartSerializer,
            400: _error("bad timeframe, symbol, start, end or limit"),
            404: _error("nothing cached for this timeframe and symbol"),
            409: _error("the cache file cannot be read: run the backtest again"),
        },
    )
    def get(self, request: Request, timeframe: str, symbol: str) -> Response:
        """Bars ``start`` .. ``end`` (at most ``limit``) with their trades and indicators."""
        problems: dict[str, list[str]] = {}
        try:
            frame = parse_chart_timeframe(timeframe)
        except BadParameter as exc:
            problems["timeframe"] = [str(exc)]
        try:
            symbol = parse_symbol(symbol)
        except BadParameter as exc:
            problems["symbol"] = [str(exc)]
        if problems:
            raise exceptions.ValidationError(problems)
        query = ChartQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data.get("start"), query.validated_data.get("end")
        limit = query.validated_data["limit"]
        try:
            file = chart_file(settings.CACHE_DIR, frame, symbol)
            backtest, summary = STORE.load(file)
        except NoCache as exc:
            raise exceptions.NotFound(str(exc)) from None
        except FileNotFoundError:  # removed between the check and the read
            raise exceptions.NotFound(f"no cached {frame.name} backtest for {symbol}") from None
        except CacheError as exc:
            hint = run_backtest_hint(settings.CACHE_DIR, frame.name)
            raise CacheUnreadable(
                f"{exc}; run the backtest again: {hint} --symbols {symbol}"
            ) from None
        except OSError as exc:  # unreadable: permissions, a directory, ...
            raise CacheUnreadable(f"{file.path}: cannot read ({exc.strerror})") from None
        window = select(backtest.candles.index, start, end, limit)
        body = chart_document(backtest, summary, window, start=start, end=end, limit=limit)
        if "file" in body["data"]:  # as the backtests endpoint shows it, not this server's path
            body["data"] = {**body["data"], "file": display_path(body["data"]["file"])}
        return Response(body)
