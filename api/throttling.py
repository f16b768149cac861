"""Per-client rate limits shared by every web process.

DRF keeps throttle history in the default cache, which is Redis here, so all gunicorn workers on
all machines count against the same window. A client is its watchlist fingerprint when it sends
one (many users can share an office IP), else its address. Rates are read at request time from
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], so a settings change applies without a restart of the
class definitions (and tests can override them).
"""

from __future__ import annotations

import hashlib

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from api.identity import fingerprint_raw


class ClientRateThrottle(SimpleRateThrottle):
    scope = ""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        fingerprint = fingerprint_raw(request)
        if fingerprint:
            # Hashed: the key length stays bounded and raw identifiers stay out of Redis.
            ident = "fp:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
        else:
            # No address at all (a unix-socket server without a proxy header): one shared bucket.
            ident = "ip:" + (self.get_ident(request) or "unknown")
        return f"throttle:{self.scope}:{ident}"


class BurstRateThrottle(ClientRateThrottle):
    scope = "burst"


class SustainedRateThrottle(ClientRateThrottle):
    scope = "sustained"
