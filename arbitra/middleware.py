"""Request id (taken from X-Request-ID when the caller sent a sane one, else generated) and the
request limits every route shares."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent

from arbitra.logging import request_id_var

_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(header_value: str | None) -> str:
    if header_value and _ACCEPTABLE_REQUEST_ID.match(header_value):
        return header_value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_from(request.headers.get("X-Request-ID"))
        token = request_id_var.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class RequestLimitsMiddleware:
    """Refuses oversized requests before anything parses them, with the API's envelope.

    A body larger than API_MAX_BODY_BYTES (by its Content-Length) is a 413 before a byte of it
    is read; a query string of more than DATA_UPLOAD_MAX_NUMBER_FIELDS parameters is a 400.
    Bodies sent without a length are bounded by Django itself (DATA_UPLOAD_MAX_MEMORY_SIZE is set
    to the same limit) and the form-field count by the same setting; the API's exception
    handler turns both into the same envelopes.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from api.envelope import error_response

        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(request, status=400, message="Content-Length must be a number")
        limit = settings.API_MAX_BODY_BYTES
        if length > limit:
            return error_response(request, status=413, message=f"request body over {limit} bytes")
        try:
            request.GET  # noqa: B018 - parsing it here applies Django's field limit once, up front
        except TooManyFieldsSent:
            return error_response(
                request,
                status=400,
                message=f"more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} query parameters",
            )
        return self.get_response(request)


API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    """Security headers on every response, including those other middleware answer early.

    Django's SecurityMiddleware adds HSTS, nosniff, the referrer and opener policies to the
    responses that pass through it; this one, outside it, makes sure none leaves without
    nosniff and a frame policy, and gives API answers (JSON, never a page) a policy that loads
    nothing at all.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY or "same-origin")
        if request.path.startswith("/api/v1/") or request.path in {"/healthz", "/readyz"}:
            response.headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
        return response
