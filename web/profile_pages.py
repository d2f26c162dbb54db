"""The profile pages: view and edit every field, add and remove custom fields, and see
each field's history."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vault.errors import ValidationError
from vault.fields import STANDARD_FIELDS, is_custom
from vrm.app_context import services
from web.countries import countries_by_name
from web.customer_session import login_required, signed_in_vault
from web.forms import Errors, page, rule_message
from web.pages import bp
from web.profile_form import (
    ADDRESS_PARTS,
    Typed,
    changes,
    custom_names,
    typed_from_form,
    typed_from_profile,
)


@bp.get("/profile")
@login_required
def profile() -> str:
    """Every field with its current value, ready to edit."""
    current = services().vaults.profile(signed_in_vault())
    return _profile_page(typed_from_profile(current), custom_names(current), {})[0]


@bp.post("/profile")
@login_required
def save_profile() -> tuple[str, int] | Response:
    """Save what changed; if any input breaks a rule, save nothing and show why."""
    vault_id = signed_in_vault()
    current = services().vaults.profile(vault_id)
    customs = custom_names(current)
    typed = typed_from_form(request.form, customs)
    found = changes(typed, typed_from_profile(current), customs, services().clock().date())
    if found.errors:
        return _profile_page(typed, customs, found.errors)
    try:
        if found.values:
            services().vaults.set_fields(vault_id, found.values)
    except ValidationError as error:
        return _profile_page(typed, customs, {"profile": rule_message("Your profile", error)})
    if found.cleared:
        services().vaults.clear_fields(vault_id, found.cleared)
    flash("Nothing changed." if found.empty else "Your profile is saved.", "success")
    return redirect(url_for("web.profile"), code=303)


@bp.post("/profile/fields/remove")
@login_required
def remove_custom_field() -> Response:
    """Remove one custom field (its earlier values stay in its history)."""
    vault_id = signed_in_vault()
    name = request.form.get("field", "")
    if is_custom(name) and name in services().vaults.profile(vault_id):
        services().vaults.clear_fields(vault_id, [name])
        flash(f"Removed {name}. Its earlier values stay in its history.", "success")
    else:
        flash("That field had no value to remove.", "info")
    return redirect(url_for("web.profile"), code=303)


@bp.get("/profile/history")
@login_required
def history() -> str:
    """Every version of every field, newest first."""
    found = services().vaults.history(signed_in_vault())
    ordered = sorted(found, key=lambda name: (is_custom(name), _standard_rank(name), name))
    fields = [(name, list(reversed(found[name]))) for name in ordered]
    return render_template("history.html", fields=fields, single=None)


@bp.get("/profile/history/<field_name>")
@login_required
def field_history(field_name: str) -> str:
    """Every version of one field, newest first."""
    versions = services().vaults.history(signed_in_vault()).get(field_name)
    if versions is None and field_name not in STANDARD_FIELDS:
        abort(404, description="You have no field of that name.")
    return render_template(
        "history.html", fields=[(field_name, list(reversed(versions or [])))], single=field_name
    )


def _profile_page(typed: Typed, customs: list[str], errors: Errors) -> tuple[str, int]:
    return page(
        "profile.html",
        errors,
        typed=typed,
        customs=customs,
        fields=STANDARD_FIELDS,
        address_parts=ADDRESS_PARTS,
        countries=countries_by_name(),
    )


def _standard_rank(name: str) -> int:
    names = list(STANDARD_FIELDS)
    return names.index(name) if name in names else len(names)
