"""The error a bad setting raises: one line naming the variable, what was given and what is expected.

`manage.py` prints it as that one line and exits with status 2 instead of a traceback.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

CONFIGURATION_ERROR_EXIT_STATUS = 2


class ConfigurationError(ImproperlyConfigured):
    def __init__(self, variable: str, given: str | None, expected: str) -> None:
        self.variable = variable
        self.given = given
        self.expected = expected
        shown = "not set" if given is None else f"got {given!r}"
        super().__init__(f"{variable}: {shown}; expected {expected}")
