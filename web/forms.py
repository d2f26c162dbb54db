"""What form pages share: error messages that name the field, and the status a page with
errors is answered with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import render_template

from vault.errors import ValidationError

Errors = dict[str, str]
"""Error text by the name of the input it belongs next to."""

INVALID = 400


def sentence(text: str) -> str:
    """``text`` with a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def rule_message(label: str, error: ValidationError) -> str:
    """The domain's rule, led by what the customer calls the field."""
    return sentence(f"{label} {error.rule}")


def page(template: str, errors: Mapping[str, str], **context: Any) -> tuple[str, int]:
    """A form page, with 400 when it shows errors (so tools see the post was refused)."""
    status = INVALID if errors else 200
    return render_template(template, errors=errors, **context), status
