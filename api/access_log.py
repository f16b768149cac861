"""Access logs without watchlist fingerprints.

A fingerprint is the only key to an anonymous watchlist, so it must not land in log files or log
pipelines. The frontend sends it as a header, which access logs leave out by default, but a
client may send it as `?fingerprint=`, which is part of the request line every log format
prints. Both the gunicorn access log and Django's development server log go through here.
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger as GunicornLogger

from api.identity import FINGERPRINT_HEADER, FINGERPRINT_QUERY

REDACTED = "[redacted]"
_QUERY_VALUE = re.compile(rf"(?i)((?:^|[?&;]){re.escape(FINGERPRINT_QUERY)}=)[^&;#\s\"]*")
_HEADER_ATOMS = {f"{{{FINGERPRINT_HEADER.lower()}}}i", "{cookie}i", "{http_x_user_fingerprint}e", "{http_cookie}e"}


def redact(text: str) -> str:
    """The text with every `fingerprint=` query value replaced."""
    return _QUERY_VALUE.sub(r"\1" + REDACTED, text) if text else text


class RedactingAccessLogger(GunicornLogger):
    """gunicorn's logger (`--logger-class api.access_log.RedactingAccessLogger`)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "q"):
            if atoms.get(name):
                atoms[name] = redact(atoms[name])
        for name in _HEADER_ATOMS:
            if name in atoms:
                atoms[name] = REDACTED
        for name in list(atoms):
            if name.startswith("{raw_uri}") or name.startswith("{query_string}"):
                atoms[name] = redact(atoms[name])
        return atoms


class RedactFingerprintFilter(logging.Filter):
    """For `django.server` (runserver): the request line is one of the record's arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True

