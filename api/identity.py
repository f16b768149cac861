"""Who an anonymous watchlist user is: a fingerprint the frontend keeps in the browser.

Looked up in the order the contract gives (header, query parameter, cookie). There is no IP
fallback on purpose: behind a proxy every user shares one address, and the previous backend
merged all their watchlists into one.
"""

from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError

FINGERPRINT_HEADER = "X-User-Fingerprint"
FINGERPRINT_QUERY = "fingerprint"
FINGERPRINT_COOKIE = "user_fingerprint"
# At least 16 characters: a watchlist is only as private as its fingerprint is hard to guess.
FINGERPRINT_MIN_LENGTH = 16
_ACCEPTABLE = re.compile(rf"^[A-Za-z0-9._:=+/-]{{{FINGERPRINT_MIN_LENGTH},128}}$")


def fingerprint_raw(request) -> str:
    for value in (
        request.headers.get(FINGERPRINT_HEADER),
        request.GET.get(FINGERPRINT_QUERY),
        request.COOKIES.get(FINGERPRINT_COOKIE),
    ):
        if value and value.strip():
            return value.strip()
    return ""


def fingerprint_optional(request) -> str | None:
    """The caller's fingerprint, None when it sent none; 400 when it sent an unusable one."""
    value = fingerprint_raw(request)
    if not value:
        return None
    # Every fingerprint the request names must be usable, not only the one looked up first: a
    # malformed `?fingerprint=` beside a good header is a client bug worth saying so.
    queried = (request.GET.get(FINGERPRINT_QUERY) or "").strip()
    if not _ACCEPTABLE.match(value) or (queried and not _ACCEPTABLE.match(queried)):
        raise ValidationError(
            {"fingerprint": f"must be {FINGERPRINT_MIN_LENGTH}-128 characters of letters, digits and . _ : = + / -"}
        )
    return value


def fingerprint_required(request) -> str:
    value = fingerprint_optional(request)
    if value is None:
        raise ValidationError(
            {
                "fingerprint": f"required: send the {FINGERPRINT_HEADER} header, the "
                f"'{FINGERPRINT_QUERY}' query parameter or the '{FINGERPRINT_COOKIE}' cookie"
            }
        )
    return value
