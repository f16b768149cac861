"""Serving views. Thin: validate parameters, call one selector, wrap the envelope."""

from api.envelope import error_response


def unknown_route(request, *args, **kwargs):
    # The frontend parses the envelope on every /api/v1 response, so even an unknown route
    # answers JSON rather than Django's HTML 404 page.
    return error_response(request, status=404, code="not_found", message="route not found")
