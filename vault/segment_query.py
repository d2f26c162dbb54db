"""Segment predicates: what a vendor may ask to count, checked before anything is read.

A predicate is JSON: ``{"all": [...]}`` or ``{"any": [...]}`` over other predicates, or a
condition on one segmentable attribute::

    {"field": "country", "equals": "GB"}
    {"field": "interests", "in": ["cycling", "photography"]}
    {"field": "birthdate", "age_band": "25-34"}          (or a list of bands)

Only attributes derived from fields a customer can mark segmentable exist; a condition on
any other field is refused with an error that names it. Sizes are bounded so a query costs
a bounded amount of work.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Union

from vault.errors import ValidationError

ATTRIBUTES: Mapping[str, str] = {
    "interests": "interests",
    "country": "postal_address",
    "region": "postal_address",
    "locale": "locale",
    "gender": "gender",
    "birthdate": "birthdate",
}
"""Each attribute a condition may name, and the profile field the customer marks."""

SEGMENTABLE_FIELDS = ("interests", "postal_address", "locale", "gender", "birthdate")
"""The profile fields a customer may make countable (each off until they turn it on)."""

AGE_BANDS: Mapping[str, tuple[int, int]] = {
    "18-24": (18, 24),
    "25-34": (25, 34),
    "35-44": (35, 44),
    "45-54": (45, 54),
    "55-64": (55, 64),
    "65+": (65, 130),
}
"""Age bands a vendor may ask for. Age is counted by birth year (this year minus the year
of birth), so a band maps to whole birth years and the birthdate itself is never indexed;
nobody under 18 by that count is in any band."""

MIN_AGE = 18
MAX_CONDITIONS = 32
MAX_DEPTH = 5
MAX_VALUES = 50
MAX_VALUE_CHARS = 100


class SegmentQueryError(ValidationError):
    """A predicate that breaks a rule; ``field`` names the member or attribute at fault."""


@dataclass(frozen=True)
class Condition:
    """One attribute matching any of a set of normalised values."""

    attribute: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class AllOf:
    """Every part must match."""

    parts: tuple[Predicate, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part must match."""

    parts: tuple[Predicate, ...]


Predicate = Union[Condition, AllOf, AnyOf]  # noqa: UP007 (a runtime alias of dataclasses)


def parse_predicate(value: object, *, today: date) -> Predicate:
    """Check a JSON predicate against every rule and return it normalised.

    ``today`` turns age bands into birth years. Raises SegmentQueryError.
    """
    counter = [0]
    return _parse(value, 1, counter, today)


def attributes_of(predicate: Predicate) -> tuple[str, ...]:
    """The attributes a predicate names, each once, in order of appearance."""
    if isinstance(predicate, Condition):
        return (predicate.attribute,)
    found: dict[str, None] = {}
    for part in predicate.parts:
        found.update(dict.fromkeys(attributes_of(part)))
    return tuple(found)


def normalise(attribute: str, value: str) -> str:
    """The form a value is indexed and queried in (case and spacing do not matter)."""
    text = " ".join(unicodedata.normalize("NFC", value).split())
    return text.upper() if attribute == "country" else text.casefold()


def birth_years(band: str, today: date) -> tuple[str, ...]:
    """The birth years whose people are in ``band`` this year."""
    low, high = AGE_BANDS[band]
    return tuple(str(today.year - age) for age in range(low, high + 1))


def _parse(value: object, depth: int, counter: list[int], today: date) -> Predicate:
    if depth > MAX_DEPTH:
        raise SegmentQueryError("segment", f"must nest at most {MAX_DEPTH} levels deep")
    if not isinstance(value, Mapping):
        raise SegmentQueryError("segment", "each part must be a JSON object")
    if set(value) in ({"all"}, {"any"}):
        (kind,) = value
        parts = value[kind]
        if not isinstance(parts, list) or not parts:
            raise SegmentQueryError("segment", f'"{kind}" must be a non-empty list')
        parsed = tuple(_parse(part, depth + 1, counter, today) for part in parts)
        return AllOf(parsed) if kind == "all" else AnyOf(parsed)
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise SegmentQueryError("segment", f"must have at most {MAX_CONDITIONS} conditions")
    return _condition(value, today)


def _condition(value: Mapping[object, object], today: date) -> Condition:
    field = value.get("field")
    if not isinstance(field, str):
        rule = 'a condition needs "field" and one of equals, in, age_band; or use all/any'
        raise SegmentQueryError("segment", rule)
    if field not in ATTRIBUTES:
        shown = field[:60]
        known = ", ".join(ATTRIBUTES)
        raise SegmentQueryError(shown, f"is not segmentable (segmentable: {known})")
    ops = set(value) - {"field"}
    allowed = {"age_band"} if field == "birthdate" else {"equals", "in"}
    if len(ops) != 1 or not ops <= allowed:
        wanted = " or ".join(sorted(allowed))
        raise SegmentQueryError(field, f"needs exactly one of: {wanted}")
    (op,) = ops
    if op == "age_band":
        bands = _strings(value[op], field, single_ok=True)
        unknown = [b for b in bands if b not in AGE_BANDS]
        if unknown:
            raise SegmentQueryError(field, f"age_band must be one of {', '.join(AGE_BANDS)}")
        years = {year: None for band in bands for year in birth_years(band, today)}
        return Condition(field, tuple(years))
    if op == "equals" and not isinstance(value[op], str):
        raise SegmentQueryError(field, "equals takes one string (use in for a list)")
    raw = _strings(value[op], field, single_ok=op == "equals")
    return Condition(field, tuple(dict.fromkeys(normalise(field, v) for v in raw)))


def _strings(value: object, field: str, *, single_ok: bool) -> Sequence[str]:
    items = [value] if single_ok and isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        form = "a non-empty list of strings"
        if single_ok:
            form = f"a string or {form}"
        raise SegmentQueryError(field, f"must be compared with {form}")
    if len(items) > MAX_VALUES:
        raise SegmentQueryError(field, f"may list at most {MAX_VALUES} values")
    for item in items:
        if not item.strip() or len(item) > MAX_VALUE_CHARS:
            raise SegmentQueryError(field, f"values must be 1 to {MAX_VALUE_CHARS} characters")
    return items
