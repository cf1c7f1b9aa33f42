"""``/api/backtests/``: run a backtest with the toolkit's engine, and browse past runs.

* ``POST /api/backtests/`` runs one (body: :class:`.backtest_request.NewBacktestSerializer`)
  and answers 201 with the stored run, trades included (:class:`BacktestRunSerializer`);
  throttled per client address (scope ``backtests``, ``DJANGO_BACKTEST_RATE``).
* ``GET /api/backtests/`` lists the stored runs, newest first, paginated
  (``?page=2&page_size=20``) and filterable (``?strategy=MACD&timeframe=5m``), without
  their bulk (trades, per-symbol rows, months, files).
* ``GET /api/backtests/<id>/`` is one run with everything.
"""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from .backtest_request import NewBacktestSerializer
from .backtest_runs import run_backtest
from .backtest_serializers import (
    DETAIL_ONLY,
    BacktestRunSerializer,
    BacktestRunSummarySerializer,
)
from .errors import ErrorSerializer
from .models import BacktestRun

__all__ = ["BacktestDetail", "BacktestListCreate", "BacktestRateThrottle"]


class BacktestRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, keyed by the client's address alone.

    ``REMOTE_ADDR`` rather than DRF's default identity: that one trusts a client's own
    X-Forwarded-For header (so a forged one would dodge the limit), and with an API token it
    wants the user's primary key, which token callers do not have. The rate is read from
    ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` at each request, not once at import.
    """

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view) -> str:
        ident = request.META.get("REMOTE_ADDR", "")
        return self.cache_format % {"scope": self.scope, "ident": ident}


_ERRORS = {
    code: OpenApiResponse(ErrorSerializer, description=description)
    for code, description in (
        (400, "invalid request; `fields` says which"),
        (422, "a data file is malformed"),
        (429, "too many backtests; see Retry-After"),
        (503, "every engine slot is busy; see Retry-After"),
    )
}


class BacktestListCreate(generics.ListAPIView):
    """Past runs (GET, paginated, newest first) and new runs (POST, throttled)."""

    queryset = BacktestRun.objects.defer(*DETAIL_ONLY)
    serializer_class = BacktestRunSummarySerializer
    filterset_fields = ["strategy", "timeframe"]
    throttle_scope = "backtests"

    def get_throttles(self):
        """Only running a backtest costs anything; reading the list is not throttled."""
        return [BacktestRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(summary="Past backtest runs, newest first")
    def get(self, request: Request, *args, **kwargs) -> Response:
        """The stored runs, paginated, without trades."""
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Run a backtest",
        request=NewBacktestSerializer,
        responses={201: BacktestRunSerializer, **_ERRORS},
    )
    def post(self, request: Request) -> Response:
        """Check the request, run the engine, store the run and answer it (201)."""
        serializer = NewBacktestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = run_backtest(
            serializer.validated_data["backtest"],
            requested_by=request.META.get("REMOTE_ADDR", ""),
        )
        return Response(
            BacktestRunSerializer(run).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("backtest", args=[run.pk])},
        )


class BacktestDetail(generics.RetrieveAPIView):
    """One stored run with its trades."""

    queryset = BacktestRun.objects.all()
    serializer_class = BacktestRunSerializer

    @extend_schema(
        summary="One backtest run with its trades",
        responses={200: BacktestRunSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        """The run, or 404 in the API's error shape."""
        return super().get(request, *args, **kwargs)

    def get_object(self) -> BacktestRun:
        try:
            return super().get_object()
        except Http404:
            raise NotFound(f"no backtest run with id {self.kwargs['pk']}") from None
