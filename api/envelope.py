"""The response envelope every /api/v1 answer carries: data, error, code, trace_id, meta.

Success carries `data` (error and code empty); failure carries `error` + `code` (data null).
`trace_id` is the request id the middleware also returns as `X-Request-ID`, so a user's report
of a failure can be matched with the log lines of that request.
"""

from __future__ import annotations

from django.http import JsonResponse
from rest_framework.response import Response

# The contract's codes by HTTP status. Statuses DRF can produce that the contract does not name
# (406, 413, 415) are the caller's fault too and share `bad_request`; 503 (a backing service
# down) is `unavailable`.
CODE_BY_STATUS = {
    400: "bad_request",
    401: "forbidden",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "bad_request",
    413: "bad_request",
    415: "bad_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
ERROR_CODES = sorted(set(CODE_BY_STATUS.values()))
INTERNAL_ERROR_MESSAGE = "internal error"

DISCLOSURES = [
    "Scores, labels and tiers are probabilistic estimates computed from public on-chain trades.",
    "Past performance does not predict future results. This is not investment advice.",
]
DISCLOSURES_ZH = [
    "评分、标签和分层是基于公开链上交易计算的概率性估计。",
    "过往表现不代表未来结果，本内容不构成投资建议。",
]


def envelope(request, *, data=None, error: str = "", code: str = "", meta: dict | None = None) -> dict:
    return {
        "data": data,
        "error": error,
        "code": code,
        "trace_id": getattr(request, "request_id", ""),
        "meta": meta or {},
    }


def ok(request, data, *, status: int = 200, meta: dict | None = None) -> Response:
    return Response(envelope(request, data=data, meta=meta), status=status)


def scored_meta(**extra) -> dict:
    """Meta of every payload that shows a score or a label: it carries the disclosures."""
    return {"disclosures": DISCLOSURES, "disclosures_zh": DISCLOSURES_ZH, **extra}


def error_body(request, *, status: int, message: str) -> dict:
    return envelope(request, error=message, code=CODE_BY_STATUS.get(status, "internal_error"))


def error_response(request, *, status: int, message: str) -> JsonResponse:
    """For plain Django views (handlers, the unknown-route catch-all), outside DRF."""
    return JsonResponse(error_body(request, status=status, message=message), status=status)
