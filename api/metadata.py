"""OPTIONS on an API route: the methods it accepts, in the envelope and in the `Allow` header."""

from __future__ import annotations

from rest_framework.metadata import BaseMetadata

from api.envelope import envelope


class AllowedMethodsMetadata(BaseMetadata):
    def determine_metadata(self, request, view):
        # DRF sets the Allow header from the same list on every response of the view.
        return envelope(request, data={"methods": list(view.allowed_methods)})
