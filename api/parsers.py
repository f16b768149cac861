"""Request bodies: JSON parsed only when its nesting stays within API_MAX_JSON_DEPTH.

Python's parser recurses once per level, so a body of a few kilobytes of `[` would otherwise
exhaust the stack of the worker parsing it; the scan below is iterative and linear in the body.
"""

from __future__ import annotations

import codecs

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSERS:
            depth -= 1
    return deepest


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        limit = settings.API_MAX_JSON_DEPTH
        if json_depth(raw) > limit:
            raise ParseError(f"JSON nested deeper than {limit} levels")
        try:
            text = codecs.decode(raw, encoding)
            # DRF's loads refuses NaN and Infinity, which are not JSON.
            return json.loads(text)
        except (ValueError, RecursionError) as error:
            raise ParseError(f"JSON parse error - {error}") from None
