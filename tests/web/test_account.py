"""Signing up, logging in and out, and changing the password, through the forms."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, FakeClock
from tests.web.conftest import (
    EMAIL,
    cookie_copy,
    error_next_to,
    follow,
    log_in,
    page,
    submit,
    value_of,
)
from vrm.services import Services

NEW_PASSWORD = "a much longer new passphrase"


def sign_up(browser: FlaskClient, email: str, password: str, again: str | None = None) -> object:
    data = {"email": email, "password": password, "password_again": again or password}
    return submit(browser, "/signup", data)


def test_sign_up_logs_in_and_opens_the_profile(browser: FlaskClient, vault: Services) -> None:
    response = sign_up(browser, "grace@example.org", PASSWORD)
    assert response.headers["Location"] == "/profile"
    html = follow(browser, response)
    assert "Your vault is ready" in html
    assert value_of(html, "f-email") == "grace@example.org"
    assert vault.vaults.authenticate("grace@example.org", PASSWORD)


def test_sign_up_refuses_passwords_that_differ(browser: FlaskClient, vault: Services) -> None:
    response = sign_up(browser, "grace@example.org", PASSWORD, "something else entirely")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "not the same" in error_next_to(html, "f-password_again")
    assert value_of(html, "f-email") == "grace@example.org"
    assert page(browser, "/signup")  # still logged out: the form, not the profile


def test_sign_up_refuses_a_short_password(browser: FlaskClient) -> None:
    response = sign_up(browser, "grace@example.org", "short")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert error_next_to(html, "f-password") == "Password must be at least 10 characters."


def test_sign_up_refuses_a_taken_email(browser: FlaskClient, vault_id: str) -> None:
    response = sign_up(browser, EMAIL.upper(), PASSWORD)
    assert response.status_code == 400
    assert "exists already" in error_next_to(response.get_data(as_text=True), "f-email")


def test_sign_up_refuses_what_is_not_an_email(browser: FlaskClient) -> None:
    response = sign_up(browser, "not an address", PASSWORD)
    assert "like name@example.com" in error_next_to(response.get_data(as_text=True), "f-email")


def test_logged_in_customer_skips_the_sign_up_form(customer: FlaskClient) -> None:
    response = customer.get("/signup")
    assert response.status_code == 303
    assert response.headers["Location"] == "/profile"


def test_login_without_next_continues_to_the_profile(browser: FlaskClient, vault_id: str) -> None:
    assert log_in(browser).headers["Location"] == "/profile"


def test_login_returns_to_the_page_that_asked(browser: FlaskClient, vault_id: str) -> None:
    first = browser.get("/grants")
    assert first.headers["Location"] == "/login?next=/grants"
    form = page(browser, first.headers["Location"])
    assert 'name="next" value="/grants"' in form
    response = submit(browser, "/login", {"email": EMAIL, "password": PASSWORD, "next": "/grants"})
    assert response.headers["Location"] == "/grants"


def test_login_never_continues_to_another_site(browser: FlaskClient, vault_id: str) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        data = {"email": EMAIL, "password": PASSWORD, "next": target}
        assert submit(browser, "/login", data).headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/profile\r\nX-Injected: 1", "/grants\n", "/x\x00y", "/\x7f"])
def test_a_next_with_a_control_character_continues_to_the_start_page(
    browser: FlaskClient, vault_id: str, target: str
) -> None:
    data = {"email": EMAIL, "password": PASSWORD, "next": target}
    response = submit(browser, "/login", data)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_wrong_password_is_refused_on_the_page(browser: FlaskClient, vault_id: str) -> None:
    response = submit(browser, "/login", {"email": EMAIL, "password": "wrong password!"})
    assert response.status_code == 401
    assert "The email or password is wrong." in response.get_data(as_text=True)


def test_repeated_failures_show_the_wait(
    app: Flask, browser: FlaskClient, vault_id: str, clock: FakeClock
) -> None:
    for _ in range(app.config["LOGIN_FREE_ATTEMPTS"] + 1):
        submit(browser, "/login", {"email": EMAIL, "password": "wrong password!"})
    response = submit(browser, "/login", {"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed logins; try again in" in response.get_data(as_text=True)
    clock.advance(app.config["LOGIN_MAX_DELAY"])
    log_in(browser)


def test_log_out_is_a_button_in_the_header_and_ends_the_session(customer: FlaskClient) -> None:
    html = page(customer, "/profile")
    assert '<form method="post" action="/logout"' in html
    response = submit(customer, "/logout")
    assert "You are logged out." in follow(customer, response)
    assert customer.get("/profile").status_code == 303


def test_logged_out_header_offers_log_in_and_sign_up(browser: FlaskClient) -> None:
    html = page(browser, "/")
    assert 'href="/login"' in html
    assert 'href="/signup"' in html
    assert 'action="/logout"' not in html


def test_change_password(customer: FlaskClient, vault: Services) -> None:
    data = {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    response = submit(customer, "/account/password", data)
    assert "Your password is changed" in follow(customer, response)
    assert vault.vaults.authenticate(EMAIL, NEW_PASSWORD)


def test_change_password_needs_the_current_one(customer: FlaskClient, vault: Services) -> None:
    data = {"current": "not my password", "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    response = submit(customer, "/account/password", data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert error_next_to(html, "f-current") == "This is not your current password."
    assert vault.vaults.authenticate(EMAIL, PASSWORD)


def test_change_password_needs_the_new_one_twice(customer: FlaskClient) -> None:
    data = {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"}
    response = submit(customer, "/account/password", data)
    assert "not the same" in error_next_to(response.get_data(as_text=True), "f-confirm")


def test_change_password_keeps_the_length_rule(customer: FlaskClient) -> None:
    response = submit(
        customer, "/account/password", {"current": PASSWORD, "new": "short", "confirm": "short"}
    )
    html = response.get_data(as_text=True)
    assert error_next_to(html, "f-new") == "The new password must be at least 10 characters."


def test_account_page_shows_the_login_email(customer: FlaskClient) -> None:
    html = page(customer, "/account")
    assert EMAIL in html
    assert 'href="/account/password"' in html
    assert 'href="/erase"' in html


def test_login_cookie_is_http_only_same_site_and_expires(
    browser: FlaskClient, vault_id: str
) -> None:
    cookie = log_in(browser).headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Expires=" in cookie


def test_a_copy_of_the_cookie_is_refused_after_logging_out(
    app: Flask, browser: FlaskClient, vault_id: str
) -> None:
    log_in(browser)
    thief = cookie_copy(app, browser)
    assert thief.get("/profile").status_code == 200

    submit(browser, "/logout")

    assert thief.get("/profile").status_code == 303


def test_changing_the_password_logs_out_every_other_session(
    app: Flask, browser: FlaskClient, vault_id: str
) -> None:
    other = app.test_client()
    log_in(other)
    log_in(browser)
    new = "a brand new passphrase"
    answer = submit(browser, "/account/password", {"current": PASSWORD, "new": new, "confirm": new})
    assert answer.status_code == 303

    assert other.get("/profile").status_code == 303
    assert browser.get("/profile").status_code == 200
