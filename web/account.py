"""The customer's account: sign up, the account page, changing the password, and erasing
the vault."""

from __future__ import annotations

import os

from flask import flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from vault.errors import AlreadyExists, AuthenticationFailed, LoginThrottled, ValidationError
from vault.passwords import MIN_PASSWORD_CHARS
from vault.profile import ProfileCipher
from vault.service import LOGIN_EMAIL
from vrm.app_context import services
from web.customer_session import (
    current_vault,
    end_other_sessions,
    log_in,
    log_out,
    login_required,
    signed_in_vault,
)
from web.forms import Errors, page, rule_message, sentence
from web.pages import bp

_ERASED = "erased"
_PASSWORDS_DIFFER = "The two passwords are not the same; type the same password twice."


def login_email(vault_id: str) -> str:
    """The email the customer logs in with (which the profile's email may differ from).

    Stands in for a ``VaultService.login_email`` the domain does not offer yet: it opens the
    sealed login note with the vault's own key, as the export does, without the export's
    audit event.
    """
    vaults = services().vaults
    cipher = ProfileCipher(vault_id, vaults.datakeys.open(vault_id), os.urandom)
    return cipher.open_note(LOGIN_EMAIL, services().store.read_vault(vault_id)["login_email"])


@bp.get("/signup")
def signup_form() -> str | Response:
    """The sign-up form (a logged-in customer goes to their profile instead)."""
    if current_vault() is not None:
        return redirect(url_for("web.profile"), code=303)
    return render_template("signup.html", email="", errors={}, min_chars=MIN_PASSWORD_CHARS)


@bp.post("/signup")
def signup() -> tuple[str, int] | Response:
    """Create the account and its vault, log in and continue to the profile."""
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    vault_id, errors = _open_vault(email, password, request.form.get("password_again", ""))
    if vault_id is None:
        return page("signup.html", errors, email=email, min_chars=MIN_PASSWORD_CHARS)
    log_in(vault_id)
    flash("Your vault is ready. Fill in as much or as little as you like.", "success")
    return redirect(url_for("web.profile"), code=303)


def _open_vault(email: str, password: str, again: str) -> tuple[str | None, Errors]:
    """The new vault's id, or None and what to fix, by input."""
    if password != again:
        return None, {"password_again": _PASSWORDS_DIFFER}
    try:
        return services().vaults.sign_up(email, password), {}
    except ValidationError as error:
        label = "Password" if error.field == "password" else "Email address"
        return None, {error.field: rule_message(label, error)}
    except AlreadyExists:
        return None, {"email": "An account with this email exists already: log in instead."}


@bp.get("/account")
@login_required
def account() -> str:
    """The login email, and the ways to change the password, export and erase."""
    return render_template("account.html", email=login_email(signed_in_vault()))


@bp.get("/account/password")
@login_required
def password_form() -> str:
    """The form to change the password."""
    return render_template("password.html", errors={}, alert=None, min_chars=MIN_PASSWORD_CHARS)


@bp.post("/account/password")
@login_required
def change_password() -> tuple[str, int] | Response:
    """Check the current password, then set the new one."""
    new = request.form.get("new", "")
    if new != request.form.get("confirm", ""):
        return _password_page({"confirm": _PASSWORDS_DIFFER})
    email = login_email(signed_in_vault())
    try:
        services().vaults.change_password(email, request.form.get("current", ""), new)
    except LoginThrottled as error:
        page_text = render_template(
            "password.html", errors={}, alert=sentence(str(error)), min_chars=MIN_PASSWORD_CHARS
        )
        return page_text, 429
    except AuthenticationFailed:
        return _password_page({"current": "This is not your current password."})
    except ValidationError as error:
        return _password_page({"new": rule_message("The new password", error)})
    end_other_sessions()
    flash(
        "Your password is changed. Use the new one next time you log in. "
        "Every other place you were logged in is logged out.",
        "success",
    )
    return redirect(url_for("web.account"), code=303)


def _password_page(errors: Errors) -> tuple[str, int]:
    return page("password.html", errors, alert=None, min_chars=MIN_PASSWORD_CHARS)


@bp.get("/erase")
@login_required
def erase_form() -> str:
    """What erasing does, and the confirmation form."""
    return render_template("erase.html", email=login_email(signed_in_vault()), errors={})


@bp.post("/erase")
@login_required
def erase() -> tuple[str, int] | Response:
    """Erase the vault once the customer typed their email exactly; end the session."""
    vault_id = signed_in_vault()
    email = login_email(vault_id)
    if request.form.get("email", "").strip() != email:
        message = f"To erase your vault, type {email} exactly as shown."
        return page("erase.html", {"email": message}, email=email)
    services().vaults.erase(vault_id)
    log_out()
    session[_ERASED] = True
    return redirect(url_for("web.erased"), code=303)


@bp.get("/erased")
def erased() -> str | Response:
    """Confirms the erasure to the browser that asked for it."""
    if not session.get(_ERASED):
        return redirect(url_for("web.home"), code=303)
    return render_template("erased.html")
