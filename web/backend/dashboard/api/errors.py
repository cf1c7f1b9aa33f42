"""One JSON shape for every API error:

    {"error": {"status": 400, "code": "invalid", "message": "symbols: no data for XYZ",
               "fields": {"symbols": ["no data for XYZ"]}}}

``message`` is one line a person can read; ``fields`` (validation errors only) maps each bad
field to its messages, nested fields as ``"params.fast"``.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger("dashboard.api")


class TWSUnavailable(exceptions.APIException):
    """TWS cannot be reached, refused us, or did not answer in time."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "tws_unavailable"
    default_detail = "TWS is not reachable"


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field.sub": [messages]}``."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def error_body(status_code: int, code: str, message: str, fields=None) -> dict:
    """The error document (see the module docstring)."""
    body = {"status": status_code, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def exception_handler(exc, context):
    """DRF's handler, reshaped into :func:`error_body`; unexpected errors become a logged
    500 with the same shape instead of an HTML page."""
    response = drf_exception_handler(exc, context)
    if response is None:
        log.exception("unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            error_body(500, "server_error", "internal server error"),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "; ".join(
            f"{name}: {messages[0]}" if name != "non_field_errors" else messages[0]
            for name, messages in fields.items()
        )
        response.data = error_body(response.status_code, "invalid", message, fields)
    else:
        # DRF answers Django's own Http404 and PermissionDenied as its NotFound and
        # PermissionDenied; name them alike.
        if isinstance(exc, Http404):
            exc = exceptions.NotFound(str(exc) or None)
        elif isinstance(exc, PermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        detail = getattr(exc, "detail", str(exc))
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = error_body(
            response.status_code, codes if isinstance(codes, str) else "error", str(detail)
        )
    return response


def not_found(request, exception=None):
    """Django's 404 for URLs no view matches, in the API's shape."""
    return JsonResponse(error_body(404, "not_found", f"no such URL: {request.path}"), status=404)


def server_error(request):
    """Django's 500 outside DRF views, in the API's shape."""
    return JsonResponse(error_body(500, "server_error", "internal server error"), status=500)


@extend_schema_serializer(component_name="ApiErrorBody")
class _ErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="the HTTP status again")
    code = serializers.CharField(
        help_text="invalid, parse_error, not_found, not_authenticated, throttled, busy, "
        "conflict, cache_unreadable, data_error, tws_unavailable, live_account, ..."
    )
    message = serializers.CharField(help_text="one line a person can read")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='validation errors only: each bad field\'s messages ("params.fast")',
    )


@extend_schema_serializer(component_name="ApiError")
class ErrorSerializer(serializers.Serializer):
    """The error document (see the module docstring), for the OpenAPI schema."""

    error = _ErrorBodySerializer()
