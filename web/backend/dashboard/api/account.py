"""The paper account, the TWS connection and the server's health:

* ``GET /api/portfolio/``: cash by currency, open positions, market values, P&L and its
  ratios, read from the paper TWS (over the held connection, else a one-off one);
* ``GET /api/connection/``: the held connection's state; ``POST {"connected": true|false}``
  opens or closes it (the dashboard's toggle);
* ``GET /api/health/``: version, database and whether TWS is reachable.

TWS that cannot answer is a 503 (``tws_unavailable``) with one line saying why, within
``IBKR_TIMEOUT``; a TWS logged into a live account is a 403 (``live_account``).

P&L ratios: a position's ``unrealized_pnl_ratio`` is its unrealized P&L over its cost basis
(``|quantity| x average cost``); the account's ``pnl.unrealized_ratio`` is the unrealized P&L
over the net liquidation value, i.e. the share of the account's equity not yet locked in
(gross position value would say the same of the invested part only, and is 0 for an account
in cash). Both are None where the denominator is not positive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

import quant_trading
from quant_trading.core.portfolio_tracker import PortfolioItem, PortfolioSnapshot

from . import tws
from .errors import ErrorSerializer, TWSUnavailable, error_body
from .models import BacktestRun

log = logging.getLogger(__name__)


class LiveAccountRefused(exceptions.APIException):
    """TWS is logged into a live account: the dashboard reads paper accounts only."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "live_account"
    default_detail = "TWS is logged into a live account; the dashboard reads paper accounts only"


def _ask_tws(call, *args):
    """``call(*args)`` with TWS's failures as API errors (503, or 403 for a live account)."""
    try:
        return call(*args)
    except tws.LiveAccountError as exc:
        raise LiveAccountRefused(str(exc)) from None
    except tws.TWSError as exc:
        raise TWSUnavailable(str(exc)) from None


# -------------------------------------------------------------------------- the records


@dataclass(frozen=True)
class PositionReport:
    """One open position valued at TWS's price."""

    symbol: str
    sec_type: str
    currency: str
    quantity: float
    average_cost: float
    cost_basis: float
    market_price: float
    market_value: float
    unrealized_pnl: float
    unrealized_pnl_ratio: float | None
    realized_pnl: float


@dataclass(frozen=True)
class Totals:
    """Account-wide values in the base currency."""

    net_liquidation: float | None
    total_cash: float | None
    market_value: float | None
    gross_position_value: float | None


@dataclass(frozen=True)
class PnLReport:
    """The account's P&L in the base currency (``daily`` is None when TWS did not say)."""

    daily: float | None
    unrealized: float | None
    realized: float | None
    unrealized_ratio: float | None


@dataclass(frozen=True)
class PortfolioReport:
    """What ``GET /api/portfolio/`` answers."""

    account: str
    accounts: tuple[str, ...]
    account_time: str
    base_currency: str
    paper: bool
    cash_balances: dict[str, float]
    market_value_by_currency: dict[str, float]
    totals: Totals
    pnl: PnLReport
    positions: list[PositionReport]
    source: tws.Source


@dataclass(frozen=True)
class DatabaseHealth:
    """Whether the database answered (and if not, why)."""

    ok: bool
    error: str | None


@dataclass(frozen=True)
class Health:
    """What ``GET /api/health/`` answers."""

    status: str  # ok, degraded (TWS not reachable), error (database not usable)
    version: str
    database: DatabaseHealth
    tws: tws.TWSProbe


def _ratio(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole is not None and whole > 0 else None


def _position(item: PortfolioItem) -> PositionReport:
    cost_basis = abs(item.quantity * item.average_cost)
    return PositionReport(
        symbol=item.symbol,
        sec_type=item.sec_type,
        currency=item.currency,
        quantity=item.quantity,
        average_cost=item.average_cost,
        cost_basis=cost_basis,
        market_price=item.market_price,
        market_value=item.market_value,
        unrealized_pnl=item.unrealized_pnl,
        unrealized_pnl_ratio=_ratio(item.unrealized_pnl, cost_basis),
        realized_pnl=item.realized_pnl,
    )


def _market_value_total(snap: PortfolioSnapshot, by_currency: dict[str, float]) -> float | None:
    """The holdings' market values in the base currency, at TWS's exchange rates."""
    total = 0.0
    for currency, value in by_currency.items():
        rate = 1.0 if currency == snap.base_currency else snap.value("ExchangeRate", currency)
        if rate is None:
            return None
        total += value * rate
    return total


def portfolio_report(reading: tws.AccountReading) -> PortfolioReport:
    """The response document for one account reading (ratios: see the module doc)."""
    snap, pnl = reading.snapshot, reading.pnl
    by_currency = snap.market_value_by_currency()
    totals = Totals(
        net_liquidation=snap.total("NetLiquidation"),
        total_cash=snap.total("TotalCashValue"),
        market_value=_market_value_total(snap, by_currency),
        gross_position_value=snap.total("GrossPositionValue"),
    )
    # reqPnL first (TWS's own daily figure); the account values when it did not answer.
    unrealized = pnl.unrealized if pnl and pnl.unrealized is not None else None
    realized = pnl.realized if pnl and pnl.realized is not None else None
    if unrealized is None:
        unrealized = snap.total("UnrealizedPnL")
    if realized is None:
        realized = snap.total("RealizedPnL")
    cash = {ccy: value for ccy, value in snap.by_currency("CashBalance").items() if ccy != "BASE"}
    return PortfolioReport(
        account=snap.account,
        accounts=reading.accounts,
        account_time=snap.account_time,
        base_currency=snap.base_currency,
        paper=snap.is_paper,
        cash_balances=cash,
        market_value_by_currency=by_currency,
        totals=totals,
        pnl=PnLReport(
            daily=pnl.daily if pnl else None,
            unrealized=unrealized,
            realized=realized,
            unrealized_ratio=_ratio(unrealized, totals.net_liquidation),
        ),
        positions=[_position(item) for item in snap.items if item.quantity != 0],
        source=reading.source,
    )


# ---------------------------------------------------------------------------- serializers


def _money(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=help_text)


class PortfolioSourceSerializer(serializers.Serializer):
    connection = serializers.ChoiceField(
        ["held", "one-off"],
        help_text="the held connection (client id IBKR_CLIENT_ID) or a one-off one",
    )
    host = serializers.CharField()
    port = serializers.IntegerField()
    client_id = serializers.IntegerField()
    fetched_at = serializers.DateTimeField(help_text="when the account was read")


class PortfolioPositionSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    sec_type = serializers.CharField(help_text="STK, OPT, FUT, CASH, ...")
    currency = serializers.CharField()
    quantity = serializers.FloatField(help_text="negative for a short position")
    average_cost = serializers.FloatField(help_text="per share (per contract for derivatives)")
    cost_basis = serializers.FloatField(help_text="|quantity| x average cost")
    market_price = serializers.FloatField()
    market_value = serializers.FloatField()
    unrealized_pnl = serializers.FloatField()
    unrealized_pnl_ratio = _money("unrealized P&L / cost basis")
    realized_pnl = serializers.FloatField()


class PortfolioTotalsSerializer(serializers.Serializer):
    net_liquidation = _money("net liquidation value, base currency")
    total_cash = _money("all cash, base currency")
    market_value = _money("the positions' market values, base currency")
    gross_position_value = _money("sum of |market value|, base currency")


class PortfolioPnLSerializer(serializers.Serializer):
    daily = _money("today's P&L against the previous close (null when TWS did not say)")
    unrealized = _money("unrealized P&L, base currency")
    realized = _money("realized P&L today, base currency")
    unrealized_ratio = _money("unrealized P&L / net liquidation value")


class PortfolioSerializer(serializers.Serializer):
    account = serializers.CharField(help_text="the account read (the login's first)")
    accounts = serializers.ListField(child=serializers.CharField(), help_text="the login's")
    account_time = serializers.CharField(help_text="TWS's time of the account values (HH:MM)")
    base_currency = serializers.CharField()
    paper = serializers.BooleanField()
    cash_balances = serializers.DictField(child=serializers.FloatField(),
                                          help_text="cash by currency")  # fmt: skip
    market_value_by_currency = serializers.DictField(
        child=serializers.FloatField(), help_text="the positions' market values by currency"
    )
    totals = PortfolioTotalsSerializer()
    pnl = PortfolioPnLSerializer()
    positions = PortfolioPositionSerializer(many=True)
    source = PortfolioSourceSerializer()


class ConnectionStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(["disconnected", "connecting", "connected", "reconnecting"])
    connected = serializers.BooleanField()
    host = serializers.CharField()
    port = serializers.IntegerField()
    client_id = serializers.IntegerField()
    accounts = serializers.ListField(child=serializers.CharField())
    since = serializers.DateTimeField(allow_null=True, help_text="when it entered this state")
    last_error = serializers.CharField(allow_null=True)


class ConnectionToggleSerializer(serializers.Serializer):
    connected = serializers.BooleanField(help_text="true: connect to TWS; false: disconnect")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        ["ok", "degraded", "error"],
        help_text="degraded: TWS is not reachable; error: the database is not usable",
    )
    version = serializers.CharField(help_text="quant_trading's version")
    database = inline_serializer(
        "HealthDatabase",
        {"ok": serializers.BooleanField(), "error": serializers.CharField(allow_null=True)},
    )
    tws = inline_serializer(
        "HealthTWS",
        {
            "host": serializers.CharField(),
            "port": serializers.IntegerField(),
            "reachable": serializers.BooleanField(),
            "error": serializers.CharField(allow_null=True),
            "held_connection": ConnectionStateSerializer(),
        },
    )


_TWS_ERRORS = {
    403: ErrorSerializer,  # logged into a live account
    503: ErrorSerializer,  # not reachable, refused, too slow, or the held connection is lost
}


# --------------------------------------------------------------------------------- views


class PortfolioView(APIView):
    """The paper account as TWS reports it."""

    @extend_schema(
        summary="The paper account: cash, positions, market values, P&L",
        responses={200: PortfolioSerializer, **_TWS_ERRORS},
    )
    def get(self, request):
        reading = _ask_tws(tws.read_account)
        return Response(PortfolioSerializer(portfolio_report(reading)).data)


class ConnectionView(APIView):
    """The held connection to the paper TWS, and the dashboard's toggle for it."""

    @extend_schema(summary="The held TWS connection's state",
                   responses={200: ConnectionStateSerializer})  # fmt: skip
    def get(self, request):
        return Response(ConnectionStateSerializer(tws.HELD.state()).data)

    @extend_schema(
        summary="Connect or disconnect the held TWS connection",
        request=ConnectionToggleSerializer,
        responses={200: ConnectionStateSerializer, 400: ErrorSerializer, **_TWS_ERRORS},
        examples=[OpenApiExample("connect", value={"connected": True}, request_only=True)],
    )
    def post(self, request):
        toggle = ConnectionToggleSerializer(data=request.data)
        toggle.is_valid(raise_exception=True)
        if toggle.validated_data["connected"]:
            state = _ask_tws(tws.HELD.connect)
        else:
            state = _ask_tws(tws.HELD.disconnect)
        return Response(ConnectionStateSerializer(state).data)


def _database_error() -> str | None:
    """None when the database answers a query on the API's tables, else why not."""
    try:
        BacktestRun.objects.exists()
    except DatabaseError as exc:
        log.error("health check: the database is not usable: %s", exc)
        return f"{type(exc).__name__}: {exc}"
    return None


class HealthView(APIView):
    """Version, database and TWS reachability, for monitoring and the dashboard's header."""

    @extend_schema(
        summary="Is the server healthy?",
        description="200 also when TWS is down (tws.reachable says so); 503 when the "
        "database is not usable: the same document with status error, plus the API's "
        "``error`` member (code database_unavailable).",
        responses={200: HealthSerializer, 503: HealthSerializer},
    )
    def get(self, request):
        db_error = _database_error()
        probe = tws.probe()
        health = Health(
            status="error" if db_error else "ok" if probe.reachable else "degraded",
            version=quant_trading.__version__,
            database=DatabaseHealth(ok=db_error is None, error=db_error),
            tws=probe,
        )
        document = HealthSerializer(health).data
        if db_error is None:
            return Response(document)
        message = f"the database is not usable: {db_error}"
        return Response(
            {**error_body(503, "database_unavailable", message), **document},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
