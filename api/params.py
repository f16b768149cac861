"""Query-parameter serializers: each list endpoint validates its parameters with one of these.

Paging and sorting are lenient by contract (a bad page is page 1, an unknown sort is the default
sort); filters are strict (a bad value is a 400 that names the parameter), because silently
ignoring a filter would show the user a list they did not ask for.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal, InvalidOperation

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from ingest.models import RunStatus
from scoring.models import FeedEventType, InfoEdgeLevel, PoolTier, Severity

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200
# Ids are PostgreSQL bigints: a larger number must be a 400, not a driver overflow error (a 500).
MAX_ID = 2**63 - 1
# Past the last row a page is empty anyway; the cap keeps OFFSET within a bigint.
MAX_PAGE = 10_000_000


class CoercedPositiveIntegerField(serializers.IntegerField):
    """An integer that falls back to its default when invalid or ≤ 0, capped at `max_value`."""

    def __init__(self, *, fallback: int, cap: int | None = None, **kwargs):
        self.fallback = fallback
        self.cap = cap
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", fallback)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            number = int(str(data).strip())
        except (TypeError, ValueError):
            return self.fallback
        if number <= 0:
            return self.fallback
        if self.cap is not None:
            return min(number, self.cap)
        return number


class LenientChoiceField(serializers.ChoiceField):
    """A choice that falls back to its default for an unknown value (sorting is lenient)."""

    def __init__(self, choices, *, fallback: str, **kwargs):
        self.fallback = fallback
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", fallback)
        super().__init__(choices, **kwargs)

    def to_internal_value(self, data):
        value = str(data).strip()
        return value if value in self.choices else self.fallback


class FreeTextFilterField(serializers.CharField):
    """A filter a person types (a type, a style, a category): any text is accepted and a value no
    row has answers an empty list, as the frontend's original backend did, instead of a 400."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 120)
        # An empty box is no filter at all.
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data).strip().lower() or None


# The frontend colours alerts by a number and its filter sends 1, 2, 3; "critical" is the top of
# the scale too, so 3 selects both.
SEVERITY_NUMBERS = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 3}
SEVERITIES_BY_NUMBER = {1: [Severity.LOW], 2: [Severity.MEDIUM], 3: [Severity.HIGH, Severity.CRITICAL]}


SEVERITY_FILTER_VALUES = ["1", "2", "3", *Severity.values]


@extend_schema_field({"type": "string", "enum": SEVERITY_FILTER_VALUES})
class SeverityFilterField(serializers.Field):
    """1-3 (1 low, 2 medium, 3 high and critical) or a level's name; the levels it selects, comma-separated."""

    default_error_messages = {"invalid": "must be 1, 2, 3 or one of low, medium, high, critical"}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        text = str(data).strip().lower()
        if text.isdigit() and int(text) in SEVERITIES_BY_NUMBER:
            return ",".join(str(level) for level in SEVERITIES_BY_NUMBER[int(text)])
        if text in Severity.values:
            return text
        self.fail("invalid")

    def to_representation(self, value):
        return value


class RoundedDecimalField(serializers.DecimalField):
    """A decimal filter value rounded to the column's places: a bound finer than the column
    stores selects the same rows, so it is no reason for a 400."""

    def validate_precision(self, value):
        # Too many digits to round: the check below refuses it with its own message.
        with contextlib.suppress(InvalidOperation):
            value = value.quantize(Decimal(1).scaleb(-self.decimal_places))
        return super().validate_precision(value)


class LenientFieldSchema(OpenApiSerializerFieldExtension):
    """Paging and sorting take any text (a value they cannot use reads as the default), and the
    published schema says so: the documented values, or any string."""

    target_class = "api.params.CoercedPositiveIntegerField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        documented = {"type": "integer", "minimum": 1}
        if field.cap is not None:
            documented["maximum"] = field.cap
        return {"oneOf": [documented, {"type": "string"}], "default": field.fallback}


class LenientChoiceSchema(OpenApiSerializerFieldExtension):
    target_class = "api.params.LenientChoiceField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        return {"oneOf": [{"type": "string", "enum": list(field.choices)}, {"type": "string"}], "default": field.fallback}


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only: `0`, `"no"` or `"off"` in a JSON body are more likely a client bug
    than a wish to undo."""

    default_error_messages = {"invalid": "must be true or false"}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid")


class PagingParams(serializers.Serializer):
    page = CoercedPositiveIntegerField(
        fallback=1,
        cap=MAX_PAGE,
        help_text="1-based page number; an invalid value or one ≤ 0 reads as 1. Pages start at most "
        "API_MAX_PAGING_DEPTH items deep (10,000 by default): a deeper page is a 400.",
    )
    page_size = CoercedPositiveIntegerField(
        fallback=DEFAULT_PAGE_SIZE,
        cap=MAX_PAGE_SIZE,
        help_text=f"Items per page (default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}); an invalid value or one ≤ 0 "
        f"reads as {DEFAULT_PAGE_SIZE}.",
    )

    def validate(self, values):
        # OFFSET makes PostgreSQL walk and drop every row before the page: a crawler asking for
        # page 2,500 of 200 held a web worker for five seconds. Past the documented depth the
        # answer is a 400 that says how to get there instead (filters narrow, sorting reverses).
        depth = settings.API_MAX_PAGING_DEPTH
        if values["page"] > 1 and (values["page"] - 1) * values["page_size"] >= depth:
            raise ValidationError(
                {
                    "page": f"pages reach at most {depth:,} items deep ({depth // values['page_size']:,} pages of "
                    f"{values['page_size']}); narrow the list with its filters or reverse its order"
                }
            )
        return values


ORDER_HELP = "Sort direction; anything but `asc` reads as `desc`. Ties are broken by id in the same direction."


def sorting(allowed: list[str], default: str) -> type[serializers.Serializer]:
    """A mixin with `sort_by` (from the endpoint's allow-list) and `order`."""

    class SortingParams(serializers.Serializer):
        sort_by = LenientChoiceField(
            allowed, fallback=default, help_text=f"One of the listed values; an unknown value sorts by `{default}`."
        )
        order = LenientChoiceField(["asc", "desc"], fallback="desc", help_text=ORDER_HELP)

    return SortingParams


class WalletListParams(PagingParams, sorting(["id", "created_at", "updated_at", "first_seen_at", "pseudonym"], "id")):
    sort_by = LenientChoiceField(
        ["id", "created_at", "updated_at", "first_seen_at", "pseudonym"],
        fallback="",
        help_text="One of the listed values. Without one (or with an unknown one) a pseudonym search (`q`) lists its "
        "hits by pseudonym, A to Z, anything else sorts by `id`, newest first.",
    )
    order = LenientChoiceField(["asc", "desc"], fallback="", help_text=ORDER_HELP + " A pseudonym order reads `asc`.")
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Pseudonym prefix (case-insensitive) or an address prefix (0x…); empty: no search.",
    )
    tracked = serializers.BooleanField(required=False, allow_null=True, default=None)
    pool_tier = serializers.ChoiceField(PoolTier.choices, required=False, allow_blank=True)


POTENTIAL_SORTS = ["trade_count", "realized_pnl", "smart_score", "last_analyzed_at", "wallet_id"]


class PotentialParams(PagingParams, sorting(POTENTIAL_SORTS, "smart_score")):
    min_trades = serializers.IntegerField(required=False, default=100, min_value=0, max_value=10_000_000)
    min_realized_pnl = RoundedDecimalField(
        required=False,
        default=0,
        max_digits=30,
        decimal_places=12,
        coerce_to_string=False,
        help_text="Minimum realised PnL in USDC (default 0).",
    )
    strategy_type = FreeTextFilterField(help_text="Strategy label (e.g. arbitrage); a label no wallet has gives an empty list.")
    pool_tier = serializers.ChoiceField(PoolTier.choices, required=False, allow_blank=True)
    has_ai_report = serializers.BooleanField(required=False, allow_null=True, default=None)


class FeedParams(PagingParams):
    type = serializers.ChoiceField(
        FeedEventType.choices, required=False, allow_blank=True, help_text="Only events of this kind (empty: all)."
    )


MARKET_STATUSES = [(0, "pending"), (1, "active"), (2, "closed"), (3, "resolved")]


class MarketListParams(PagingParams, sorting(["id", "created_at", "updated_at", "volume", "liquidity"], "id")):
    category = FreeTextFilterField(help_text="Category, case-insensitive; one no market has gives an empty list.")
    status = serializers.ChoiceField(
        MARKET_STATUSES,
        required=False,
        help_text="0 metadata pending, 1 active, 2 closed awaiting resolution, 3 resolved.",
    )
    closed = serializers.BooleanField(required=False, allow_null=True, default=None)
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Words in the title or the slug.")


class LeaderboardParams(PagingParams, sorting(["smart_score", "scored_at"], "smart_score")):
    pool_tier = serializers.ChoiceField(PoolTier.choices, required=False, allow_blank=True)
    strategy_type = FreeTextFilterField(help_text="Strategy label; a label no wallet has gives an empty list.")


class HighlightsParams(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=5, min_value=1, max_value=20)


class AnomalyListParams(PagingParams):
    severity = SeverityFilterField(help_text="1 low, 2 medium, 3 high (and critical), or the level's name.")
    type = FreeTextFilterField(help_text="Alert type, as typed; a type no alert has gives an empty list.")
    acknowledged = serializers.BooleanField(required=False, allow_null=True, default=None)
    wallet_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class AcknowledgeBody(serializers.Serializer):
    acknowledged = StrictBooleanField(
        required=False, default=True, help_text="false undoes an acknowledgement (as DELETE does)."
    )


class AnalyzeParams(serializers.Serializer):
    force = serializers.BooleanField(
        required=False, default=False, help_text="Write a new report even when a cached one (< 24 h) exists."
    )


class ReportHistoryParams(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)


class IngestRunParams(PagingParams):
    job = serializers.CharField(required=False, max_length=100, help_text="Job name, with or without `ingest.`.")
    status = serializers.ChoiceField(RunStatus.choices, required=False)


class WatchlistFollowBody(serializers.Serializer):
    wallet_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class WatchlistBatchBody(serializers.Serializer):
    wallet_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), allow_empty=False, min_length=1, max_length=MAX_PAGE_SIZE
    )


# Labels of the enums the frontend renders, exported for the schema.
INFO_EDGE_LEVELS = [value for value, _ in InfoEdgeLevel.choices]


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ValidationError(serializer.errors)
    return dict(serializer.validated_data)
