"""What every page owes the customer, checked over every route the app serves: login
before anything personal, CSRF tokens on every form, the security headers, no inline
script or style, and readable error pages that reveal nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers
from werkzeug.routing import Rule

from tests.web.conftest import HTML, app_rules, log_in, page, path_of, rule_id, submit
from web.csrf import PROTECTED_BLUEPRINTS

PUBLIC_PAGES = {
    "web.home",
    "web.login_form",
    "web.login",
    "web.logout",
    "web.signup_form",
    "web.signup",
    "web.erased",
    "web.static",
    "web.developers",
}
"""Customer pages that need no login; every other ``web`` route must ask for one."""

TEMPLATES = Path(__file__).parents[2] / "web" / "templates"

GET_RULES = [rule for rule in app_rules() if "GET" in (rule.methods or ())]
WEB_RULES = [rule for rule in app_rules() if rule.endpoint.startswith("web.")]
PRIVATE_RULES = [rule for rule in WEB_RULES if rule.endpoint not in PUBLIC_PAGES]
FORM_POSTS = [
    (rule, method)
    for rule in app_rules()
    if rule.endpoint.split(".")[0] in PROTECTED_BLUEPRINTS
    for method in ("POST",)
    if method in (rule.methods or ())
]


@pytest.mark.parametrize("rule", PRIVATE_RULES, ids=rule_id)
def test_every_customer_page_requires_login(browser: FlaskClient, rule: Rule) -> None:
    path = path_of(rule)
    if "GET" in (rule.methods or ()):
        response = browser.get(path, headers=HTML)
    else:
        response = submit(browser, path)
    assert response.status_code == 303, rule
    has_page = any(
        other.rule == rule.rule and "GET" in (other.methods or ()) for other in WEB_RULES
    )
    expected = f"/login?next={path}" if has_page else "/login"
    assert response.headers["Location"] == expected


@pytest.mark.parametrize(("rule", "method"), FORM_POSTS, ids=lambda x: getattr(x, "rule", x))
def test_every_form_post_without_its_token_is_refused(
    customer: FlaskClient, rule: Rule, method: str
) -> None:
    path = path_of(rule)
    for data in ({}, {"csrf_token": "forged"}):
        response = customer.open(path, method=method, data=data, headers=HTML)
        assert response.status_code == 400, (path, data)
        assert "form expired or came from another site" in response.get_data(as_text=True)
    assert customer.get("/profile").status_code == 200  # still logged in: nothing happened


@pytest.mark.parametrize("rule", GET_RULES, ids=rule_id)
def test_every_page_carries_the_security_headers(customer: FlaskClient, rule: Rule) -> None:
    with customer.get(path_of(rule), headers=HTML) as response:
        assert response.status_code < 500, rule
        headers = response.headers
    policy = headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    if headers.get("Content-Type", "").startswith("text/html"):
        assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_templates_hold_no_inline_script_or_style(template: Path) -> None:
    text = template.read_text(encoding="utf-8")
    assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=", text, re.IGNORECASE)
    assert "http://" not in text
    assert "https://" not in text


def test_pages_load_only_the_projects_own_stylesheet(customer: FlaskClient) -> None:
    html = page(customer, "/profile")
    assert re.findall(r'<link[^>]+href="([^"]+)"', html) == ["/static/vault.css"]
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html


def test_not_found_is_a_readable_page(customer: FlaskClient) -> None:
    response = customer.get("/no-such-page", headers=HTML)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Page not found" in html
    assert 'href="/static/vault.css"' in html
    assert "Traceback" not in html


def test_bad_request_is_a_readable_page(customer: FlaskClient) -> None:
    response = customer.post("/profile", data={}, headers=HTML)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "That request could not be completed" in html
    assert "The form expired or came from another site; please try again." in html
    assert "Traceback" not in html


def test_header_marks_the_current_section(customer: FlaskClient) -> None:
    for path, label in (
        ("/profile", "Profile"),
        ("/profile/history", "Profile"),
        ("/grants", "Grants"),
        ("/account/password", "Account"),
    ):
        current = re.findall(r'aria-current="page">([^<]+)<', page(customer, path))
        assert current == [label], path


@pytest.mark.parametrize(
    "path",
    ["/profile", "/preferences", "/grants", "/access", "/export", "/account", "/erase"],
)
def test_every_section_has_the_full_navigation(customer: FlaskClient, path: str) -> None:
    html = page(customer, path)
    for link in ("/profile", "/preferences", "/grants", "/access", "/export", "/account"):
        assert f'href="{link}"' in html
    assert re.search(
        r'<form method="post" action="/logout"[^>]*>\s*<input type="hidden" name="csrf_token"', html
    )


INTERNAL_DETAIL = "/srv/vrm/secret-internal-path.py line 42"


@pytest.fixture
def failing(app: Flask, vault_id: str) -> FlaskClient:
    """A logged-in browser on an app that also has a page that refuses (403) and one that
    fails with an exception naming internals (500)."""

    def forbidden() -> str:
        abort(403)

    def broken() -> str:
        raise RuntimeError(INTERNAL_DETAIL)

    app.add_url_rule("/test-forbidden", "test_forbidden", forbidden)
    app.add_url_rule("/test-broken", "test_broken", broken)
    client = app.test_client()
    log_in(client)
    return client


def assert_security_headers(headers: Headers) -> None:
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"


def test_forbidden_is_a_readable_page(failing: FlaskClient) -> None:
    response = failing.get("/test-forbidden", headers=HTML)
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Error 403" in html
    assert "That request could not be completed" in html
    assert 'href="/static/vault.css"' in html
    assert "Traceback" not in html
    assert "werkzeug" not in html.lower()
    assert_security_headers(response.headers)
    assert response.headers["Cache-Control"] == "no-store"


def test_server_error_is_a_readable_page_that_reveals_nothing(
    failing: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = failing.get("/test-broken", headers=HTML)
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Something went wrong" in html
    assert "Something went wrong on the server." in html
    assert 'href="/static/vault.css"' in html
    for internal in (INTERNAL_DETAIL, "RuntimeError", "Traceback", "broken", "File &#34;"):
        assert internal not in html, internal
    assert_security_headers(response.headers)
    assert response.headers["Cache-Control"] == "no-store"
    assert INTERNAL_DETAIL in caplog.text  # kept for the operator, in the server's log


def test_errors_for_machines_are_json_that_reveals_nothing(failing: FlaskClient) -> None:
    forbidden = failing.get("/test-forbidden", headers={"Accept": "application/json"})
    assert forbidden.status_code == 403
    assert forbidden.get_json()["error"] == "invalid_request"
    broken = failing.get("/test-broken", headers={"Accept": "application/json"})
    assert broken.status_code == 500
    assert broken.get_json() == {
        "error": "server_error",
        "error_description": "something went wrong on the server",
    }
    for response in (forbidden, broken):
        assert_security_headers(response.headers)
