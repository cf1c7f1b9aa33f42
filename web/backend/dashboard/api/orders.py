"""``/api/simulated-orders/``: the paper-trade blotter (fills logged from the dashboard or
posted by the paper trader).

* ``GET /api/simulated-orders/`` newest first, paginated, filtered by ``symbol``,
  ``strategy``, ``side``, ``since``, ``until``;
* ``POST /api/simulated-orders/`` stores a fill (201). Posting the same ``client_order_id``
  again returns the stored fill (200) instead of a second one, also when two posts race
  (the database's unique constraint decides); if the repeat's fields differ: 409;
* ``GET``/``DELETE /api/simulated-orders/<id>/``;
* ``GET /api/simulated-orders/summary/?strategy=&symbol=``: each symbol's position, average
  cost, realized and unrealized P&L (see :mod:`.positions` for the accounting).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from .errors import ErrorSerializer
from .models import SimulatedOrder
from .order_prices import CachedBacktestPrices
from .order_serializers import (
    COMPARED_FIELDS,
    OrderFilter,
    OrderSummaryQuerySerializer,
    OrderSummarySerializer,
    SimulatedOrderSerializer,
)
from .positions import Fill, PriceSource, summarize, totals

__all__ = ["OrderListCreate", "OrderDetail", "OrderSummary", "OrderConflict"]

log = logging.getLogger(__name__)

ACCOUNTING = (
    "average cost: adds update the average fill price; reductions realize (price - average) "
    "x shares (reversed for shorts); a flip opens the remainder at the fill price; "
    "realized_pnl is net of every commission paid; unrealized_pnl marks the open position "
    "to the price shown"
)


class OrderConflict(exceptions.APIException):
    """A repeated ``client_order_id`` whose fields differ from the stored fill's."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "client_order_id is already stored with different fields"


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


def _fill(order: SimulatedOrder) -> Fill:
    """A stored order as the position arithmetic takes it (its time in New York)."""
    return Fill(
        order.symbol,
        order.side,
        order.quantity,
        order.price,
        order.commission,
        executed_at=timezone.localtime(order.executed_at),
    )


def _differences(order: SimulatedOrder, data: dict[str, Any], sent: set[str]) -> list[str]:
    """The fields a repeated post sent that differ from the stored fill (``field new
    (stored old)``); fields it left out are not compared."""
    out = []
    for name in COMPARED_FIELDS:
        if name in sent and data[name] != getattr(order, name):
            out.append(f"{name} {data[name]} (stored {getattr(order, name)})")
    return out


def store_order(data: dict[str, Any], sent: set[str]) -> tuple[SimulatedOrder, bool]:
    """Store a validated fill; returns ``(order, created)``. With a ``client_order_id``
    already stored, returns that fill (``created`` False), or raises :class:`OrderConflict`
    when the fields ``sent`` differ.

    The insert is always tried and the unique constraint decides, so a repeat and a race
    (two posts of one id at once) take the same path: the second insert fails and returns
    the fill the first one stored."""
    data = {**data, "executed_at": data.get("executed_at") or timezone.now()}
    key = data.get("client_order_id")
    try:
        with transaction.atomic():
            return SimulatedOrder.objects.create(**data), True
    except IntegrityError:
        order = SimulatedOrder.objects.filter(client_order_id=key).first() if key else None
        if order is None:  # some other constraint
            raise
    differences = _differences(order, data, sent)
    if differences:
        raise OrderConflict(
            f"client_order_id {key!r} is already stored as order {order.id} with different "
            f"fields: {', '.join(differences)}"
        )
    log.info("simulated order %s: client_order_id %r posted again", order.id, key)
    return order, False


@extend_schema_view(
    get=extend_schema(summary="List simulated fills, newest first"),
    post=extend_schema(
        summary="Log a simulated fill",
        responses={
            201: OpenApiResponse(SimulatedOrderSerializer, description="stored"),
            200: OpenApiResponse(
                SimulatedOrderSerializer,
                description="this client_order_id was already stored: that fill",
            ),
            400: _error("invalid fields"),
            409: _error("this client_order_id is stored with different fields"),
        },
    ),
)
class OrderListCreate(generics.ListCreateAPIView):
    """The blotter: list (newest first) and log fills."""

    queryset = SimulatedOrder.objects.all()
    serializer_class = SimulatedOrderSerializer
    filterset_class = OrderFilter

    def create(self, request: Request, *args, **kwargs) -> Response:
        """201 with the new fill, 200 with the stored one for a repeated client_order_id."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order, created = store_order(serializer.validated_data, sent=set(request.data))
        return Response(
            self.get_serializer(order).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema_view(
    get=extend_schema(
        summary="One simulated fill",
        responses={200: SimulatedOrderSerializer, 404: _error("no such fill")},
    ),
    delete=extend_schema(
        summary="Delete a simulated fill", responses={204: None, 404: _error("no such fill")}
    ),
)
class OrderDetail(generics.RetrieveDestroyAPIView):
    """One fill: read it or delete it."""

    queryset = SimulatedOrder.objects.all()
    serializer_class = SimulatedOrderSerializer

    def get_object(self) -> SimulatedOrder:
        """The fill, or a 404 saying which one is missing."""
        try:
            return self.get_queryset().get(pk=self.kwargs["pk"])
        except SimulatedOrder.DoesNotExist:
            raise exceptions.NotFound(f"no simulated order {self.kwargs['pk']}") from None


class OrderSummary(generics.GenericAPIView):
    """Positions and P&L per symbol from the stored fills."""

    serializer_class = OrderSummarySerializer
    pagination_class = None

    def price_source(self) -> PriceSource:
        """Where open positions get their price: the newest cached backtest bar (a live
        feed can replace this)."""
        return CachedBacktestPrices(settings.CACHE_DIR)

    @extend_schema(
        summary="Positions and P&L from the simulated fills",
        parameters=[OrderSummaryQuerySerializer],
        responses={200: OrderSummarySerializer, 400: _error("bad filter")},
    )
    def get(self, request: Request) -> Response:
        """Every symbol's position (optionally of one strategy's fills), marked to the
        latest known price."""
        query = OrderSummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        strategy = query.validated_data.get("strategy")
        symbol = query.validated_data.get("symbol")
        orders = SimulatedOrder.objects.order_by("executed_at", "id")
        if strategy is not None:
            orders = orders.filter(strategy=strategy)
        if symbol is not None:
            orders = orders.filter(symbol=symbol)
        rows = summarize((_fill(order) for order in orders.iterator()), self.price_source())
        body = {
            "strategy": strategy,
            "symbol": symbol,
            "accounting": ACCOUNTING,
            "positions": rows,
            "totals": totals(rows),
        }
        return Response(self.get_serializer(body).data)
