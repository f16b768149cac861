"""Every error under /api/v1 becomes the envelope, with the contract's code and a safe message.

Two entry points: the DRF exception handler (errors raised in API views) and the Django-level
handlers (errors outside DRF: unknown routes, middleware, a view that is not DRF). Unexpected
exceptions answer a generic message: the previous backend put SQL and driver text in its 500s.
The details go to the log with the request id, which the client sees as `trace_id`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from api.envelope import INTERNAL_ERROR_MESSAGE, error_body, error_response

logger = logging.getLogger(__name__)
API_PREFIX = "/api/v1/"


def _reason(detail) -> str:
    """One readable line from DRF's nested error detail, naming the field at fault."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            text = _reason(value)
            parts.append(text if field == "non_field_errors" else f"{field}: {text}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return " ".join(_reason(item) for item in detail)
    return str(detail)


def api_exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "not found")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.APIException):
        headers = {}
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, exceptions.Throttled):
            message = "rate limit exceeded" + (f"; retry in {int(exc.wait)} s" if exc.wait is not None else "")
        elif isinstance(exc, exceptions.NotAuthenticated):
            message = "authentication required"
        else:
            message = _reason(exc.detail)
        set_rollback()
        return Response(error_body(request, status=exc.status_code, message=message), status=exc.status_code, headers=headers)

    if isinstance(exc, RequestDataTooBig):
        return _refused(request, 413, f"request body over {settings.API_MAX_BODY_BYTES} bytes")
    if isinstance(exc, TooManyFieldsSent):
        return _refused(request, 400, f"more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields")
    if isinstance(exc, SuspiciousOperation):
        return _refused(request, 400, "bad request")
    if isinstance(exc, OperationalError | InterfaceError):
        # The connection failed (PostgreSQL down or restarting, no free slots, a statement
        # timeout): the client may retry, nothing of it is the client's fault or a bug of ours.
        logger.warning("PostgreSQL unreachable while serving %s: %s", getattr(request, "path", "?"), exc)
        return _refused(request, 503, "database unavailable; try again shortly")

    # Anything else is a bug or an outage: log it in full, answer nothing of it.
    logger.exception("unhandled error in %s", getattr(request, "path", "?"))
    set_rollback()
    return Response(error_body(request, status=500, message=INTERNAL_ERROR_MESSAGE), status=500)


def _refused(request, status: int, message: str) -> Response:
    set_rollback()
    return Response(error_body(request, status=status, message=message), status=status)


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def handler400(request, exception=None):
    if _is_api(request):
        return error_response(request, status=400, message="bad request")
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return error_response(request, status=403, message="forbidden")
    return defaults.permission_denied(request, exception)


def handler404(request, exception=None):
    if _is_api(request):
        return error_response(request, status=404, message="route not found")
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return error_response(request, status=500, message=INTERNAL_ERROR_MESSAGE)
    return defaults.server_error(request)
