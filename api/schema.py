"""OpenAPI description of the envelope: every documented response is wrapped the way it is sent.

`enveloped(X)` is the success envelope whose `data` is an X; `paged(X)` is the envelope whose
`data` is `{items: [X], pagination}`. Error responses share one `ErrorEnvelope` component.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from api.envelope import ERROR_CODES
from api.identity import FINGERPRINT_COOKIE, FINGERPRINT_HEADER, FINGERPRINT_QUERY

_components: dict[str, type[serializers.Serializer]] = {}


class PaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1)
    page_size = serializers.IntegerField(min_value=1, max_value=200)
    total = serializers.IntegerField(min_value=0)


class _EnvelopeBase(serializers.Serializer):
    error = serializers.CharField(help_text="Empty on success.")
    code = serializers.CharField(help_text="Empty on success.")
    trace_id = serializers.CharField(help_text="Equals the X-Request-ID response header.")
    meta = serializers.DictField(help_text="Disclosures on scored payloads; other context.")


class ErrorEnvelopeSerializer(serializers.Serializer):
    data = serializers.JSONField(allow_null=True, help_text="Always null on failure.")
    error = serializers.CharField(help_text="What went wrong, for people; never internal details.")
    code = serializers.ChoiceField(ERROR_CODES)
    trace_id = serializers.CharField(help_text="Equals the X-Request-ID response header; quote it when reporting.")
    meta = serializers.DictField()


def _component(name: str, bases: tuple, fields: dict) -> type[serializers.Serializer]:
    if name not in _components:
        _components[name] = type(name, bases, fields)
    return _components[name]


def _base_name(serializer_class) -> str:
    return serializer_class.__name__.removesuffix("Serializer")


def enveloped(data_serializer, *, many: bool = False, name: str | None = None) -> type[serializers.Serializer]:
    name = name or _base_name(data_serializer) + ("List" if many else "")
    return _component(f"{name}EnvelopeSerializer", (_EnvelopeBase,), {"data": data_serializer(many=many)})


def paged(item_serializer) -> type[serializers.Serializer]:
    base = _base_name(item_serializer)
    page = _component(
        f"{base}PageSerializer",
        (serializers.Serializer,),
        {"items": item_serializer(many=True), "pagination": PaginationSerializer()},
    )
    return _component(f"{base}PageEnvelopeSerializer", (_EnvelopeBase,), {"data": page()})


def _error(description: str, code: str, message: str) -> OpenApiResponse:
    return OpenApiResponse(
        response=ErrorEnvelopeSerializer,
        description=description,
        examples=[
            OpenApiExample(
                code,
                value={"data": None, "error": message, "code": code, "trace_id": "4f1c…", "meta": {}},
                response_only=True,
            )
        ],
    )


BAD_REQUEST = _error("Invalid parameter or body; `error` names the field and the reason.", "bad_request", "limit: …")
FORBIDDEN = _error("Staff only.", "forbidden", "authentication required")
RATE_LIMITED = _error("Too many requests from this client; see Retry-After.", "rate_limited", "rate limit exceeded")
SERVER_ERROR = _error("Unexpected failure; details are in the server log under trace_id.", "internal_error", "internal error")


def not_found(message: str) -> OpenApiResponse:
    return _error(f"`{message}`.", "not_found", message)


TOO_LARGE = _error("The request body is over API_MAX_BODY_BYTES (64 KB by default).", "bad_request", "request body over …")
UNSUPPORTED_MEDIA = _error("The body's Content-Type is not JSON, a form or multipart.", "bad_request", "Unsupported media type …")
UNAVAILABLE = _error("PostgreSQL is unreachable; retry shortly.", "unavailable", "database unavailable; try again shortly")
# Every route: more than API_MAX_FIELDS query parameters or a malformed Content-Length is a 400,
# a body over the limit a 413, a rate limit a 429, a database outage a 503.
COMMON_ERRORS = {400: BAD_REQUEST, 413: TOO_LARGE, 429: RATE_LIMITED, 500: SERVER_ERROR, 503: UNAVAILABLE}
# Routes that read a body.
BODY_ERRORS = {"e415": UNSUPPORTED_MEDIA}


def responses(ok_status: int | dict, ok=None, **errors) -> dict:
    """Success response(s) plus the errors every endpoint can answer, plus the given ones."""
    documented = ok_status if isinstance(ok_status, dict) else {ok_status: ok}
    given = {int(status.removeprefix("e")): response for status, response in errors.items()}
    return {**documented, **COMMON_ERRORS, **given}


FINGERPRINT_PARAMETERS = [
    OpenApiParameter(
        FINGERPRINT_HEADER,
        str,
        OpenApiParameter.HEADER,
        required=False,
        description="Anonymous watchlist identity (16-128 of A-Z a-z 0-9 . _ : = + / -). Looked up first; empty "
        "reads as not sent; never written to access logs.",
        pattern=r"^([A-Za-z0-9._:=+/-]{16,128})?$",
    ),
    OpenApiParameter(
        FINGERPRINT_QUERY,
        str,
        OpenApiParameter.QUERY,
        required=False,
        description=f"Used when the {FINGERPRINT_HEADER} header is absent; then the `{FINGERPRINT_COOKIE}` cookie. "
        "Empty reads as not sent; never written to access logs.",
        pattern=r"^([A-Za-z0-9._:=+/-]{16,128})?$",
    ),
]
# Writes need an identity: documented as the header the frontend sends (the query parameter and
# the cookie are accepted as well).
FINGERPRINT_REQUIRED_PARAMETERS = [
    OpenApiParameter(
        FINGERPRINT_HEADER,
        str,
        OpenApiParameter.HEADER,
        required=True,
        description="Anonymous watchlist identity (16-128 of A-Z a-z 0-9 . _ : = + / -); the `fingerprint` query "
        f"parameter or the `{FINGERPRINT_COOKIE}` cookie may stand in for it.",
        pattern=r"^[A-Za-z0-9._:=+/-]{16,128}$",
    ),
]


def wallet_id_parameter(name: str = "id") -> OpenApiParameter:
    return OpenApiParameter(name, int, OpenApiParameter.PATH, description="Wallet id.")
