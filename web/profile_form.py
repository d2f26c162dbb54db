"""The profile form: what the customer typed, turned into the values to save and the
fields to clear, with an error for each input that breaks a rule.

Every input is text. A field whose inputs were left as they were is not touched, so a
value the form cannot show exactly (a custom field's JSON) never changes by being saved
again; an input emptied clears its field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from vault.errors import ValidationError
from vault.fields import STANDARD_FIELDS, JSONValue, is_custom, parse_text_value, validate_field
from web.forms import Errors, rule_message, sentence

EDITABLE = tuple(name for name in STANDARD_FIELDS if name != "channel_preferences")
"""The standard fields the profile form edits (contact preferences have their own page)."""

ADDRESS = "postal_address"
ADDRESS_PARTS: tuple[tuple[str, str, str], ...] = (
    ("street", "Street and number", "street-address"),
    ("locality", "Town or city", "address-level2"),
    ("region", "Region, state or county (optional)", "address-level1"),
    ("postal_code", "Postal code (optional)", "postal-code"),
    ("country", "Country", "country"),
)
"""Each part of the address: its key, its label, and its autocomplete token."""

NEW_NAME, NEW_VALUE = "new_name", "new_value"
"""The inputs that add a custom field."""

Typed = dict[str, str]
"""What is (or would be) in each input, by input name."""


@dataclass
class Changes:
    """What a submitted form asks for: values to set, fields to clear, errors."""

    values: dict[str, JSONValue] = field(default_factory=dict)
    cleared: list[str] = field(default_factory=list)
    errors: Errors = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether there is nothing to save."""
        return not self.values and not self.cleared


def address_key(part: str) -> str:
    """The input name of one part of the postal address."""
    return f"{ADDRESS}.{part}"


def custom_names(profile: Iterable[str]) -> list[str]:
    """The custom fields among ``profile``'s field names."""
    return [name for name in profile if is_custom(name)]


def typed_from_profile(profile: Mapping[str, JSONValue]) -> Typed:
    """The inputs filled with the profile's current values."""
    typed: Typed = {}
    for name, value in profile.items():
        if name == ADDRESS and isinstance(value, dict):
            typed.update({address_key(p): str(value.get(p, "")) for p, _, _ in ADDRESS_PARTS})
        elif name in EDITABLE or is_custom(name):
            typed[name] = as_text(name, value)
    return typed


def typed_from_form(form: Mapping[str, str], customs: Iterable[str]) -> Typed:
    """The inputs as submitted; only the fields the form shows are read."""
    keys = [*_input_keys(EDITABLE), *customs, NEW_NAME, NEW_VALUE]
    return {key: form.get(key, "") for key in keys}


def as_text(name: str, value: JSONValue) -> str:
    """A value as the customer edits it: interests as tags separated by commas, text as
    it is, anything else as JSON."""
    if name == "interests" and isinstance(value, list):
        return ", ".join(str(tag) for tag in value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def changes(typed: Typed, current: Typed, customs: Iterable[str], today: date) -> Changes:
    """Compare the submitted inputs with the current ones and validate what changed."""
    result = Changes()
    for name in [*EDITABLE, *customs]:
        keys = _input_keys([name])
        if all(typed.get(k, "") == current.get(k, "") for k in keys):
            continue
        if all(not typed.get(k, "").strip() for k in keys):
            result.cleared.append(name)
            continue
        _validate(result, name, typed, today)
    _add_new_field(result, typed, today, customs)
    return result


def _input_keys(names: Iterable[str]) -> list[str]:
    keys: list[str] = []
    for name in names:
        if name == ADDRESS:
            keys.extend(address_key(p) for p, _, _ in ADDRESS_PARTS)
        else:
            keys.append(name)
    return keys


def _validate(result: Changes, name: str, typed: Typed, today: date) -> None:
    try:
        result.values[name] = validate_field(name, _raw(name, typed), today=today)
    except ValidationError as error:
        key, message = _placed(name, error)
        result.errors[key] = message


def _raw(name: str, typed: Typed) -> object:
    """The value a field's inputs stand for, before validation."""
    if name == ADDRESS:
        parts = {p: typed.get(address_key(p), "") for p, _, _ in ADDRESS_PARTS}
        return {p: text for p, text in parts.items() if text.strip()}
    text = typed.get(name, "")
    if name == "interests":
        return [tag.strip() for tag in text.split(",") if tag.strip()]
    if is_custom(name):
        return parse_text_value(name, text)
    return text


def _placed(name: str, error: ValidationError) -> tuple[str, str]:
    """Which input an error belongs next to, and what it says there."""
    if name == ADDRESS:
        for part, label, _ in ADDRESS_PARTS:
            if error.rule.startswith(f"{part} "):
                short = label.removesuffix(" (optional)")
                return address_key(part), sentence(f"{short} {error.rule[len(part) + 1 :]}")
    if is_custom(name):
        return name, sentence(f"The value {error.rule}")
    return name, rule_message(STANDARD_FIELDS[name].label, error)


def _add_new_field(result: Changes, typed: Typed, today: date, customs: Iterable[str]) -> None:
    text_name, text_value = typed.get(NEW_NAME, "").strip(), typed.get(NEW_VALUE, "")
    if not text_name and not text_value.strip():
        return
    if not text_name:
        result.errors[NEW_NAME] = "Give the new field a name."
    if not text_value.strip():
        result.errors[NEW_VALUE] = "Give the new field a value."
    if not text_name or not text_value.strip():
        return
    name = custom_field_name(text_name)
    if name in set(customs):
        # Its own input above already says what becomes of it; two answers would clash.
        result.errors[NEW_NAME] = "You have a field of this name already: change it above."
        return
    try:
        result.values[name] = validate_field(name, parse_text_value(name, text_value), today=today)
    except ValidationError as error:
        key = NEW_VALUE if is_custom(name) else NEW_NAME
        subject = "The value" if key == NEW_VALUE else "The name"
        result.errors[key] = sentence(f"{subject} {error.rule}")


def custom_field_name(text: str) -> str:
    """The custom field a typed name stands for: lowercase, spaces as hyphens, ``x-`` in
    front (``Shoe size`` is ``x-shoe-size``)."""
    name = "-".join(text.strip().lower().split())
    return name if name.startswith("x-") else f"x-{name}"
