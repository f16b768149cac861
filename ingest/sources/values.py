"""Value parsers every source shares: exact numbers, Unix times, ids, text, flags.

Each takes one upstream value as decoded from JSON and returns a typed value, or raises
`MalformedRow` whose message names the upstream field and the problem (``"price: not a number:
'abc'"``). Callers dead-letter on `MalformedRow` and can treat any other exception as a bug.

Pure standard library and no Django, so the hot path stays cheap (the ingest budget is a few
microseconds per fill) and the parsers can be reused by replay tools and benchmarks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final


class MalformedRow(ValueError):
    """An upstream row that cannot become a record. The message names the field and the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedBody(Exception):
    """A response body that is not the shape its endpoint promises (no envelope, a broken
    pagination object, an error body where data was expected).

    Not a `MalformedRow` (nor a ValueError) on purpose: a bad body says nothing about any row. It
    is a transient upstream fault to retry, never a dead letter and never a reason to move a cursor.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# 2100-01-01T00:00:00Z. Anything later is a unit mistake or garbage, never a real fill.
_LAST_PLAUSIBLE_UNIX_SECONDS: Final = 4_102_444_800
# Unix *milliseconds* pass 1e11 in March 1973, so a value between that and 2100-in-milliseconds is
# almost certainly milliseconds sent where seconds were expected; say so rather than "too large".
_SMALLEST_MILLISECOND_TIMESTAMP: Final = 100_000_000_000
_LAST_PLAUSIBLE_UNIX_MILLISECONDS: Final = _LAST_PLAUSIBLE_UNIX_SECONDS * 1000

# Compiled once: the patterns run for every fill. Inputs are lower-cased before matching.
TX_HASH_PATTERN: Final = re.compile(r"0x[0-9a-f]{64}")
WALLET_PATTERN: Final = re.compile(r"0x[0-9a-f]{40}")

# Data API sentinel for "unknown / not applicable" (global feed, rewards, rebates).
_UNKNOWN_OUTCOME_INDEX: Final = 999
# Stored as a smallint; real markets have a handful of outcomes.
_LARGEST_OUTCOME_INDEX: Final = 32_767
ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
HALF: Final = Decimal("0.5")
_MAX_DECIMAL_EXPONENT: Final = 60
_MAX_TOKEN_ID_BITS: Final = 256
# Decimal text of 2**256 - 1 (78 digits). Digit strings of equal length compare like the numbers.
_LARGEST_TOKEN_ID_TEXT: Final = str(2**_MAX_TOKEN_ID_BITS - 1)
# Protocol V2 condition ids are bytes31. The API serves them right-padded to 32 bytes (the bytes31
# value in the high-order bytes, as Solidity widens bytesN) and answers 400 to the bare 62-hex form
# (fixture data-v2-resolutions-62hex-invalid.json), so the 64-hex text is the one form every
# endpoint takes back; a 62-hex id that turns up anyway is widened the same way.
_BYTES31_ID_PATTERN: Final = re.compile(r"0x[0-9a-f]{62}")
# Whole numbers sent as digit strings are length-capped, so int() never meets Python's
# 4300-digit conversion limit; 18 digits hold any block number, offset or log index.
_MAX_WHOLE_NUMBER_DIGITS: Final = 18
_LARGEST_PLAIN_INT: Final = 10**_MAX_DECIMAL_EXPONENT


def show(value: object) -> str:
    """A short repr for error messages: rows can carry long strings and must not flood logs."""
    try:
        text = repr(value)
    except Exception:  # an int past Python's 4300-digit str limit, or an object with a broken repr
        return f"<unprintable {type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def to_decimal(value: object, *, field: str) -> Decimal:
    """An exact Decimal from a JSON number, a numeric string or a Decimal.

    Floats go through their shortest repr (``0.9809999989`` stays ``0.9809999989``), never through
    their binary expansion. Booleans, NaN, infinities, empty strings, anything non-numeric and
    magnitudes no amount or time can have raise `MalformedRow` naming `field`.
    """
    # Exact type checks first: they are the hot path, and bool is an int subclass to keep out.
    if type(value) is float:
        number = _decimal_from_text(repr(value), value, field)
    elif type(value) is int:
        number = Decimal(value)
    elif type(value) is str:
        text = value.strip()
        if not text:
            raise MalformedRow(f"{field}: empty")
        # Decimal() also takes "1_000" and non-ASCII digits; no API sends those, so they are noise.
        if not text.isascii() or "_" in text:
            raise MalformedRow(f"{field}: not a number: {show(value)}")
        number = _decimal_from_text(text, value, field)
    elif value is None:
        raise MalformedRow(f"{field}: missing")
    elif isinstance(value, bool):
        raise MalformedRow(f"{field}: a boolean is not a number: {value!r}")
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(int(value))
    else:
        raise MalformedRow(f"{field}: not a number: {show(value)}")
    if not number.is_finite():
        raise MalformedRow(f"{field}: not a finite number: {show(value)}")
    # "1e999999999" is a valid Decimal, but formatting it would build a gigabyte string and
    # arithmetic on it overflows; nothing we ingest comes near 10**±60.
    if not -_MAX_DECIMAL_EXPONENT <= number.adjusted() <= _MAX_DECIMAL_EXPONENT:
        raise MalformedRow(f"{field}: out of range: {show(value)}")
    return number


def _decimal_from_text(text: str, original: object, field: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise MalformedRow(f"{field}: not a number: {show(original)}") from None


def canonical_number(number: Decimal) -> str:
    """Fixed-point text without trailing zeros or exponent, so 3, 3.0, "3" and 3.00 all read "3".

    Not `Decimal.normalize()`: that rounds to the context precision (28 digits) and would make
    the key depend on the context.
    """
    if not number:
        return "0"  # also folds -0 into 0
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def number_with_key_text(value: object, *, field: str) -> tuple[Decimal, str]:
    """`to_decimal` plus the canonical key text of the number, from one float repr.

    The hot path of every fill: JSON floats like 0.979 or 17.27 already repr as the canonical text
    (shortest round-trip, no exponent, trailing zeros only as ".0"), which saves a format pass.
    """
    if type(value) is float:
        text = repr(value)
        if "e" not in text and "n" not in text and value:  # not 1e-05, nan, inf, 0.0 or -0.0
            return Decimal(text), text[:-2] if text.endswith(".0") else text
    elif type(value) is int and -_LARGEST_PLAIN_INT < value < _LARGEST_PLAIN_INT:
        return Decimal(value), str(value)
    number = to_decimal(value, field=field)
    return number, canonical_number(number)


def unix_seconds(value: object, *, field: str) -> int | Decimal:
    """Unix seconds as an int (or an exact Decimal when the upstream sent a fraction)."""
    seconds: int | Decimal
    if type(value) is int:
        seconds = value
    else:
        number = to_decimal(value, field=field)
        seconds = int(number) if number == number.to_integral_value() else number
    if seconds <= 0:
        raise MalformedRow(f"{field}: not a positive Unix time in seconds: {show(value)}")
    if seconds > _LAST_PLAUSIBLE_UNIX_SECONDS:
        if _SMALLEST_MILLISECOND_TIMESTAMP <= seconds <= _LAST_PLAUSIBLE_UNIX_MILLISECONDS:
            raise MalformedRow(f"{field}: looks like milliseconds, expected Unix seconds: {show(value)}")
        raise MalformedRow(f"{field}: after the year 2100, not a Unix time in seconds: {show(value)}")
    return seconds


def datetime_from_unix_seconds(seconds: int | Decimal) -> datetime:
    if isinstance(seconds, int):
        return datetime.fromtimestamp(seconds, UTC)
    # Exact to the microsecond; a float would round 1787241322.123 to …122999.
    return UNIX_EPOCH + timedelta(microseconds=int(seconds * 1_000_000))


def unix_seconds_of_datetime(moment: datetime) -> Decimal:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elapsed = moment - UNIX_EPOCH
    return Decimal(elapsed.days * 86_400 + elapsed.seconds) + Decimal(elapsed.microseconds).scaleb(-6)


def require_text(value: object, *, field: str) -> str:
    if type(value) is str:
        if value and not value.isspace():
            return value
        raise MalformedRow(f"{field}: empty")
    if value is None:
        raise MalformedRow(f"{field}: missing")
    raise MalformedRow(f"{field}: not a string: {show(value)}")


def optional_text(value: object, *, field: str) -> str | None:
    """The string as sent, or None for missing, null, empty or blank (the API's ways of saying "unknown")."""
    if type(value) is str:
        return value if value and not value.isspace() else None
    if value is None:
        return None
    raise MalformedRow(f"{field}: not a string: {show(value)}")


def parse_hex_id(value: object, *, field: str, pattern: re.Pattern[str], expected: str) -> str:
    lowered = require_text(value, field=field).lower()
    if pattern.fullmatch(lowered) is None:
        raise MalformedRow(f"{field}: not {expected}: {show(value)}")
    return lowered


def parse_condition_id(value: object, *, field: str) -> str:
    """A condition id as 0x + 64 lower-case hex digits.

    A 62-hex (bytes31, Protocol V2) id is right-padded with ``00`` to the 64-hex form the API
    serves for it, so the same market never carries two ids.
    """
    lowered = require_text(value, field=field).lower()
    if TX_HASH_PATTERN.fullmatch(lowered) is not None:  # the form served: checked first, it runs per fill
        return lowered
    if _BYTES31_ID_PATTERN.fullmatch(lowered) is not None:
        return lowered + "00"
    raise MalformedRow(f"{field}: not 0x + 64 hex digits (nor a 62-hex bytes31 id): {show(value)}")


def parse_token_id(value: object, *, field: str) -> str:
    """A CTF token / Protocol V2 position id as decimal digits.

    Kept as text: the ids are 75-78 digits, far past 64 bits. Anything past uint256 is refused.
    """
    if type(value) is int:
        if value < 0 or value.bit_length() > _MAX_TOKEN_ID_BITS:
            raise MalformedRow(f"{field}: not a uint256 token id: {show(value)}")
        return str(value)
    text = require_text(value, field=field)
    if not (text.isascii() and text.isdigit()):
        raise MalformedRow(f"{field}: not a decimal token id: {show(value)}")
    if len(text) >= len(_LARGEST_TOKEN_ID_TEXT) and (len(text) > len(_LARGEST_TOKEN_ID_TEXT) or text > _LARGEST_TOKEN_ID_TEXT):
        raise MalformedRow(f"{field}: not a uint256 token id: {show(value)}")
    return text


def optional_token_id(value: object, *, field: str) -> str | None:
    """A token id, or None where the API says "none" with null or "" (rewards, rebates)."""
    if value is None or value == "":
        return None
    return parse_token_id(value, field=field)


def optional_condition_id(value: object, *, field: str) -> str | None:
    """A condition id, or None where the API says "none" with null or "" (rewards, rebates)."""
    if value is None or value == "":
        return None
    return parse_condition_id(value, field=field)


def optional_decimal(value: object, *, field: str) -> Decimal | None:
    """`to_decimal`, with null, missing and "" read as unknown."""
    if value is None or value == "":
        return None
    return to_decimal(value, field=field)


def parse_whole_number(value: object, *, field: str) -> int:
    """A non-negative whole number sent as a JSON int, an integral float or a digit string."""
    if type(value) is int:
        number = value
    elif (type(value) is str and 0 < len(value) <= _MAX_WHOLE_NUMBER_DIGITS and value.isascii() and value.isdigit()) or (
        type(value) is float and value.is_integer() and abs(value) < 10.0**_MAX_WHOLE_NUMBER_DIGITS
    ):
        number = int(value)
    elif value is None:
        raise MalformedRow(f"{field}: missing")
    else:
        raise MalformedRow(f"{field}: not a whole number: {show(value)}")
    if number < 0:
        raise MalformedRow(f"{field}: negative: {show(value)}")
    return number


def optional_whole_number(value: object, *, field: str) -> int | None:
    if value is None or value == "":
        return None
    return parse_whole_number(value, field=field)


def parse_outcome_index(value: object, *, field: str) -> int | None:
    if value is None or value == "":
        return None
    if type(value) is int:
        index = value
    # Digit strings are length-capped so int() never meets Python's 4300-digit conversion limit.
    elif (type(value) is str and len(value) <= 9 and value.isascii() and value.isdigit()) or (
        type(value) is float and value.is_integer() and abs(value) < 1e9
    ):
        index = int(value)
    else:
        raise MalformedRow(f"{field}: not a whole number: {show(value)}")
    if index == _UNKNOWN_OUTCOME_INDEX:
        return None
    if index < 0:
        raise MalformedRow(f"{field}: negative: {show(value)}")
    if index > _LARGEST_OUTCOME_INDEX:
        raise MalformedRow(f"{field}: too large for an outcome index: {show(value)}")
    return index


def optional_flag(value: object, *, field: str) -> bool | None:
    """`parse_flag`, except that a missing flag stays unknown (None) instead of False."""
    if value is None:
        return None
    return parse_flag(value, field=field)


def parse_flag(value: object, *, field: str) -> bool:
    """A JSON boolean; missing means False. "true"/"false" strings are tolerated, 1/0 are not."""
    if type(value) is bool:
        return bool(value)
    if value is None:
        return False
    if value == "true":
        return True
    if value == "false":
        return False
    raise MalformedRow(f"{field}: not a boolean: {show(value)}")


def parse_rfc3339_or_gamma_time(value: object, *, field: str = "time") -> datetime | None:
    """A tz-aware UTC datetime from RFC 3339 / ISO 8601 text, or None for missing/empty.

    Takes Gamma's non-ISO ``"2024-11-06 15:17:41+00"`` (space separator, hour-only offset), a
    trailing ``Z``, 1-9 fractional digits (kept to the microsecond) and bare dates (midnight UTC).
    Text without an offset is taken as UTC. Garbage raises `MalformedRow` naming `field`.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif type(value) is str:
        text = value.strip()
        if not text:
            return None
        try:
            # Python 3.11's fromisoformat covers every form Gamma sends, including "+00" and "Z".
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise MalformedRow(f"{field}: not an RFC 3339 date/time: {show(value)}") from None
    else:
        raise MalformedRow(f"{field}: not a date/time string: {show(value)}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise MalformedRow(f"{field}: out of range: {show(value)}") from None


def parse_unix_or_rfc3339_time(value: object, *, field: str) -> datetime | None:
    """A UTC datetime from Unix seconds (a number or a digit string) or RFC 3339 text; None for
    missing or "". The Data API sends both forms in the same field (`last_update_timestamp`)."""
    if value is None or value == "":
        return None
    if type(value) is str and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        return parse_rfc3339_or_gamma_time(value, field=field)
    return datetime_from_unix_seconds(unix_seconds(value, field=field))
