"""The response envelope every /api/v1 answer carries: data, error, code, trace_id, meta."""

from __future__ import annotations

from django.http import JsonResponse


def envelope(request, *, data=None, error: str = "", code: str = "", meta: dict | None = None) -> dict:
    return {
        "data": data,
        "error": error,
        "code": code,
        "trace_id": getattr(request, "request_id", ""),
        "meta": meta or {},
    }


def error_response(request, *, status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(envelope(request, error=message, code=code), status=status)
