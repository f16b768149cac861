"""Gamma market and event rows → typed markets and events, or exactly why not.

A market's outcome ids are chosen by its protocol `version`, never by which field is present:
"v1" → `clobTokenIds` (a JSON-encoded string), "v2" (Protocol V2) → `positionIds` (a plain array,
`clobTokenIds` null). Condition ids are stored 64-hex (a bytes31 id right-padded with ``00``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from ingest.sources.values import (
    HALF,
    ONE,
    ZERO,
    MalformedRow,
    optional_text,
    parse_condition_id,
    parse_flag,
    parse_rfc3339_or_gamma_time,
    parse_token_id,
    require_text,
    show,
    to_decimal,
)

_VOID_PRICE_TOLERANCE: Final = Decimal("0.01")
# Where each protocol version keeps a market's outcome ids. A row with no `version` is read as v1:
# `version` came with Protocol V2, and every V2 market carries "v2" (its ids live only in
# `positionIds`), while rows without the field are v1 markets — Gamma's from before the field, and
# Arbitra's own stored Gamma landing records (the emulator served no `version` before issue 11).
# The recorded Gamma markets (2024's election markets, re-fetched since, and a 2026 one) all say
# "v1". Should a V2 row ever lack it, the v1 reading fails on its null `clobTokenIds` and the row
# becomes a dead letter: it is never paired with the wrong ids.
_OUTCOME_IDS_FIELD_BY_VERSION: Final = {"v1": "clobTokenIds", "v2": "positionIds"}
_VERSION_OF_UNVERSIONED_ROWS: Final = "v1"


@dataclass(frozen=True, slots=True)
class ParsedMarket:
    """One Gamma `/markets` row, with the resolution already decided."""

    gamma_id: str
    condition_id: str
    question: str | None
    slug: str | None
    description: str | None
    category: str | None
    event_slug: str | None
    event_title: str | None
    tags: list[str]
    outcomes: list[str]
    outcome_prices: list[Decimal]
    token_ids: list[str]
    volume: Decimal
    liquidity: Decimal
    active: bool
    closed: bool
    archived: bool
    end_date: datetime | None
    closed_time: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    uma_resolution_status: str | None
    winner_index: int | None
    is_void: bool
    is_resolved: bool
    resolved_at: datetime | None
    fees_enabled: bool | None = None
    protocol_version: str = _VERSION_OF_UNVERSIONED_ROWS


@dataclass(frozen=True, slots=True)
class ParsedGammaEvent:
    """One Gamma `/events` row (or an event nested in a market row)."""

    gamma_id: str
    slug: str | None
    title: str | None
    category: str | None
    tags: list[str]
    closed: bool
    closed_time: datetime | None
    created_at: datetime | None
    market_condition_ids: list[str]


def _json_list(value: object, *, field: str) -> list[Any]:
    """Gamma sends `outcomes`, `outcomePrices` and `clobTokenIds` as JSON-encoded strings
    ("[\\"Yes\\", \\"No\\"]") and `positionIds` as a real list; accept either form for any of
    them. Missing, null or "" is an empty list."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if type(value) is not str:
        raise MalformedRow(f"{field}: not a list or a JSON-encoded list: {show(value)}")
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError):
        raise MalformedRow(f"{field}: not valid JSON: {show(value)}") from None
    if decoded is None:
        return []
    if not isinstance(decoded, list):
        raise MalformedRow(f"{field}: JSON is not a list: {show(value)}")
    return decoded


def _amount_or_zero(row: dict[str, Any], text_field: str, number_field: str) -> Decimal:
    """Gamma's string amount (exact), else its float twin, else 0."""
    value = row.get(text_field)
    field = text_field
    if value is None or value == "":
        value = row.get(number_field)
        field = number_field
    if value is None or value == "":
        return ZERO
    return to_decimal(value, field=field)


def _tag_labels(tags: object, *, field: str) -> list[str]:
    """Labels of a Gamma `tags` array (objects with `label`; plain strings tolerated)."""
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise MalformedRow(f"{field}: not a list: {show(tags)}")
    labels: list[str] = []
    for position, tag in enumerate(tags):
        label = tag.get("label") if isinstance(tag, dict) else tag
        label = optional_text(label, field=f"{field}[{position}].label")
        if label is not None:
            labels.append(label)
    return labels


def _nested_events(row: dict[str, Any]) -> list[dict[str, Any]]:
    events = row.get("events")
    if events is None:
        return []
    if not isinstance(events, list) or not all(isinstance(event, dict) for event in events):
        raise MalformedRow(f"events: not a list of objects: {show(events)}")
    return events


def _gamma_id(value: object, *, field: str = "id") -> str:
    if type(value) is int and value.bit_length() <= 64:
        return str(value)
    return require_text(value, field=field).strip()


def _resolution(closed: bool, prices: list[Decimal], uma_resolution_status: str | None) -> tuple[int | None, bool]:
    """(winner_index, is_void) from Gamma's final prices.

    Resolved only when closed and either exactly one price is 1 and the rest 0 (that outcome won),
    or every price is 0.5 ± 0.01 and UMA says "resolved" (void: refunded at 0.5). `active`,
    `archived` and `lastTradePrice` say nothing about resolution and are not consulted.
    """
    if not closed or len(prices) < 2:
        return None, False
    winners = [index for index, price in enumerate(prices) if price == ONE]
    if len(winners) == 1 and all(price == ZERO for index, price in enumerate(prices) if index != winners[0]):
        return winners[0], False
    uma_says_resolved = (uma_resolution_status or "").strip().lower() == "resolved"
    if uma_says_resolved and all(abs(price - HALF) <= _VOID_PRICE_TOLERANCE for price in prices):
        return None, True
    return None, False


def _protocol_version(row: dict[str, Any]) -> str:
    version = row.get("version")
    if version is None:
        return _VERSION_OF_UNVERSIONED_ROWS
    if type(version) is not str:
        raise MalformedRow(f"version: not a string: {show(version)}")
    known = version.strip().lower()
    if known not in _OUTCOME_IDS_FIELD_BY_VERSION:
        raise MalformedRow(f"version: not a protocol version this parser knows ('v1', 'v2'): {show(version)}")
    return known


def _outcome_ids(row: dict[str, Any], version: str, outcome_count: int) -> list[str]:
    """The outcome ids of a market from the field its version names, parallel to its outcomes."""
    ids_field = _OUTCOME_IDS_FIELD_BY_VERSION[version]
    token_ids = [
        parse_token_id(token_id, field=f"{ids_field}[{position}]")
        for position, token_id in enumerate(_json_list(row.get(ids_field), field=ids_field))
    ]
    # Outcomes, prices and tokens are parallel arrays; a length mismatch would pair a token with
    # the wrong outcome (and settle it at the wrong price).
    if len(token_ids) != outcome_count:
        if not token_ids:
            raise MalformedRow(f"{ids_field}: missing for {outcome_count} outcomes of a {version} market")
        raise MalformedRow(f"{ids_field}: {len(token_ids)} token ids for {outcome_count} outcomes")
    if len(set(token_ids)) != len(token_ids):
        raise MalformedRow(f"{ids_field}: the same id for two outcomes: {show(token_ids)}")
    return token_ids


def parse_gamma_market(row: dict[str, Any]) -> ParsedMarket:
    """A market from a Gamma `/markets` (or `/markets/keyset`) row, v1 or Protocol V2.

    An unknown `version`, or outcome ids missing or not one per outcome, is a `MalformedRow`. A
    market still being set up lists no outcomes and no ids, and parses with empty lists.
    """
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {show(row)}")
    gamma_id = _gamma_id(row.get("id"))
    version = _protocol_version(row)
    condition_id = parse_condition_id(row.get("conditionId"), field="conditionId")

    outcomes = [
        require_text(outcome, field=f"outcomes[{position}]")
        for position, outcome in enumerate(_json_list(row.get("outcomes"), field="outcomes"))
    ]
    outcome_prices: list[Decimal] = []
    for position, raw_price in enumerate(_json_list(row.get("outcomePrices"), field="outcomePrices")):
        price = to_decimal(raw_price, field=f"outcomePrices[{position}]")
        if not ZERO <= price <= ONE:
            raise MalformedRow(f"outcomePrices[{position}]: outside [0, 1]: {show(raw_price)}")
        outcome_prices.append(price)
    token_ids = _outcome_ids(row, version, len(outcomes))
    if outcome_prices and len(outcome_prices) != len(outcomes):
        raise MalformedRow(f"outcomePrices: {len(outcome_prices)} prices for {len(outcomes)} outcomes")

    events = _nested_events(row)
    first_event = events[0] if events else {}
    tags = _tag_labels(row.get("tags"), field="tags")
    for position, event in enumerate(events):
        for label in _tag_labels(event.get("tags"), field=f"events[{position}].tags"):
            if label not in tags:
                tags.append(label)
    category = (
        optional_text(row.get("category"), field="category")
        or optional_text(first_event.get("category"), field="events[0].category")
        or (tags[0] if tags else None)
    )

    closed = parse_flag(row.get("closed"), field="closed")
    closed_time = parse_rfc3339_or_gamma_time(row.get("closedTime"), field="closedTime")
    uma_resolution_status = optional_text(row.get("umaResolutionStatus"), field="umaResolutionStatus")
    winner_index, is_void = _resolution(closed, outcome_prices, uma_resolution_status)
    is_resolved = winner_index is not None or is_void

    return ParsedMarket(
        gamma_id=gamma_id,
        condition_id=condition_id,
        question=optional_text(row.get("question"), field="question"),
        slug=optional_text(row.get("slug"), field="slug"),
        description=optional_text(row.get("description"), field="description"),
        category=category,
        event_slug=optional_text(first_event.get("slug"), field="events[0].slug"),
        event_title=optional_text(first_event.get("title"), field="events[0].title"),
        tags=tags,
        outcomes=outcomes,
        outcome_prices=outcome_prices,
        token_ids=token_ids,
        volume=_amount_or_zero(row, "volume", "volumeNum"),
        liquidity=_amount_or_zero(row, "liquidity", "liquidityNum"),
        active=parse_flag(row.get("active"), field="active"),
        closed=closed,
        archived=parse_flag(row.get("archived"), field="archived"),
        end_date=parse_rfc3339_or_gamma_time(row.get("endDate"), field="endDate"),
        closed_time=closed_time,
        created_at=parse_rfc3339_or_gamma_time(row.get("createdAt"), field="createdAt"),
        updated_at=parse_rfc3339_or_gamma_time(row.get("updatedAt"), field="updatedAt"),
        uma_resolution_status=uma_resolution_status,
        winner_index=winner_index,
        is_void=is_void,
        is_resolved=is_resolved,
        resolved_at=closed_time if is_resolved else None,
        # Unknown stays unknown: older Gamma rows have no fee flag at all.
        fees_enabled=None if row.get("feesEnabled") is None else parse_flag(row.get("feesEnabled"), field="feesEnabled"),
        protocol_version=version,
    )


def parse_gamma_event(row: dict[str, Any]) -> ParsedGammaEvent:
    """An event from a Gamma `/events` row, with the condition ids of the markets it lists."""
    if not isinstance(row, dict):
        raise MalformedRow(f"row: not an object: {show(row)}")
    tags = _tag_labels(row.get("tags"), field="tags")
    markets = row.get("markets")
    if markets is None:
        markets = []
    elif not isinstance(markets, list) or not all(isinstance(market, dict) for market in markets):
        raise MalformedRow(f"markets: not a list of objects: {show(markets)}")
    market_condition_ids: list[str] = []
    for position, market in enumerate(markets):
        raw_condition_id = market.get("conditionId")
        # Markets still being set up are listed with an empty conditionId: nothing to link yet.
        if raw_condition_id is None or raw_condition_id == "":
            continue
        condition_id = parse_condition_id(raw_condition_id, field=f"markets[{position}].conditionId")
        if condition_id not in market_condition_ids:
            market_condition_ids.append(condition_id)

    created_at = parse_rfc3339_or_gamma_time(row.get("createdAt"), field="createdAt")
    if created_at is None:
        created_at = parse_rfc3339_or_gamma_time(row.get("creationDate"), field="creationDate")

    return ParsedGammaEvent(
        gamma_id=_gamma_id(row.get("id")),
        slug=optional_text(row.get("slug"), field="slug"),
        title=optional_text(row.get("title"), field="title"),
        category=optional_text(row.get("category"), field="category") or (tags[0] if tags else None),
        tags=tags,
        closed=parse_flag(row.get("closed"), field="closed"),
        closed_time=parse_rfc3339_or_gamma_time(row.get("closedTime"), field="closedTime"),
        created_at=created_at,
        market_condition_ids=market_condition_ids,
    )
