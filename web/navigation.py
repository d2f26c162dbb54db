"""The header's navigation: the sections of a customer's vault and which one a page is in."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for

from web.pages import bp

SECTIONS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("web.profile", "Profile", frozenset({"web.history", "web.field_history"})),
    ("web.preferences", "Preferences", frozenset()),
    ("web.grants", "Grants", frozenset()),
    ("web.inbox", "Inbox", frozenset({"web.offer", "web.intents"})),
    ("web.access", "Access history", frozenset()),
    ("web.export_page", "Export", frozenset()),
    ("web.account", "Account", frozenset({"web.password_form", "web.erase_form"})),
)
"""Each section's page, its name in the header, and the other pages that belong to it."""


@dataclass(frozen=True)
class NavItem:
    """One link in the header."""

    url: str
    label: str
    current: bool


@bp.app_context_processor
def navigation() -> dict[str, object]:
    """Offer ``nav_items()`` to templates."""
    return {"nav_items": nav_items}


def nav_items() -> list[NavItem]:
    """The header's links, the one for this page's section marked current."""
    here = request.endpoint or ""
    return [
        NavItem(url_for(endpoint), label, here == endpoint or here in others)
        for endpoint, label, others in SECTIONS
    ]
