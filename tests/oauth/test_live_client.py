"""End to end: a real OAuth client library against the real server on loopback.

The server is the app from ``create_app``, on a temporary data directory, served by
werkzeug's threaded WSGI server on ``127.0.0.1`` with ``ISSUER`` set to exactly the address
it listens on (``tests.live``). The vendor is Authlib's ``OAuth2Session`` over
``requests``: it finds every endpoint in the RFC 8414 metadata, registers by RFC 7591, and
runs the authorization code flow with S256 PKCE. The customer is a separate
``requests.Session`` that plays the browser: it follows redirects, keeps cookies, and fills
in the login and consent forms it parses from the HTML. Nothing listens on the vendor's
redirect URI; the browser stops at the redirect and hands its location to the vendor, as a
real callback handler would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from tests.conftest import FAST_ARGON2, FAST_AUDIT, PASSWORD
from tests.live import LiveServer, serving

EMAIL = "grace@example.org"
REDIRECT = "http://127.0.0.1/vendor/callback"
PURPOSES = {
    "email": "send your order confirmations",
    "given_name": "greet you by name",
    "postal_address": "deliver what you order",
}
SCOPE = " ".join(f"profile:{name}" for name in PURPOSES)
ADDRESS = {"street": "1 Harvard Way", "locality": "Cambridge", "country": "US"}
TIMEOUT = 10


# The server.


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The app on a loopback port picked first, so ``ISSUER`` is exactly where it listens."""
    with serving(tmp_path / "vrm-data", {**FAST_ARGON2, **FAST_AUDIT}) as server:
        yield server


@pytest.fixture
def customer(live_server: LiveServer) -> str:
    """A customer with a few profile fields filled in; returns the vault id."""
    vaults = live_server.services.vaults
    vault_id = vaults.sign_up(EMAIL, PASSWORD)
    vaults.set_fields(vault_id, {"given_name": "Grace", "postal_address": ADDRESS})
    return vault_id


@pytest.fixture
def metadata(live_server: LiveServer) -> dict[str, Any]:
    """The server's RFC 8414 metadata, the vendor's only starting point."""
    url = live_server.issuer + "/.well-known/oauth-authorization-server"
    with requests.Session() as http:
        response = http.get(url, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


# The vendor.


def register(metadata: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Register a vendor at the advertised registration endpoint (RFC 7591)."""
    client_metadata = {
        "client_name": "Live Shop",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": SCOPE,
        "vrm_field_purposes": PURPOSES,
        **overrides,
    }
    with requests.Session() as http:
        response = http.post(
            metadata["registration_endpoint"], json=client_metadata, timeout=TIMEOUT
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def vendor_session(client: dict[str, Any], metadata: dict[str, Any]) -> OAuth2Session:
    """An OAuth2Session configured from the registration response and the metadata."""
    return OAuth2Session(
        client_id=client["client_id"],
        client_secret=client.get("client_secret"),
        token_endpoint_auth_method=client["token_endpoint_auth_method"],
        revocation_endpoint_auth_method=client["token_endpoint_auth_method"],
        scope=client["scope"],
        redirect_uri=client["redirect_uris"][0],
        code_challenge_method="S256",
        token_endpoint=metadata["token_endpoint"],
        default_timeout=TIMEOUT,
    )


def profile_url(metadata: dict[str, Any]) -> str:
    """The profile resource (DESIGN section 6), on the server the metadata describes."""
    return urljoin(metadata["issuer"], "/api/v1/profile")


# The browser.


@dataclass
class Form:
    """An HTML form as a browser sees it: where it goes and what it would send."""

    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    checkboxes: list[tuple[str, str, bool]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)

    def submission(self, filled: dict[str, str], button: tuple[str, str] | None = None) -> Any:
        """What submitting the form sends: its fields as they stand (ticked boxes
        included), ``filled`` typed into named inputs, and the button pressed."""
        unknown = set(filled) - set(self.inputs)
        assert not unknown, f"the form has no inputs {unknown}"
        data = [(name, filled.get(name, value)) for name, value in self.fields]
        data += [(name, value) for name, value, checked in self.checkboxes if checked]
        if button is not None:
            assert button in self.buttons, f"the form has no button {button}"
            data.append(button)
        return data


class FormParser(HTMLParser):
    """Collects the forms of a page: inputs, ticked checkboxes, selects, submit buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(given.get("action", ""), given.get("method", "get").lower()))
        elif self.forms:
            self._form_control(self.forms[-1], tag, given, "checked" in dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None and self._first_option is not None:
            if self._select not in dict(self.forms[-1].fields):
                self.forms[-1].fields.append((self._select, self._first_option))
            self._select = None

    def _form_control(self, form: Form, tag: str, given: dict[str, str], checked: bool) -> None:
        name, value, kind = given.get("name"), given.get("value", ""), given.get("type", "")
        if tag == "input" and name and kind == "checkbox":
            form.checkboxes.append((name, value or "on", checked))
        elif tag == "input" and name and kind not in ("submit", "button", "image"):
            form.fields.append((name, value))
            form.inputs[name] = kind or "text"
        elif tag in ("button", "input") and name and kind in ("submit", ""):
            form.buttons.append((name, value))
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = value
            if "selected" in given:
                form.fields.append((self._select, value))


def the_form(html: str, *, having: str) -> Form:
    """The one form on the page a person would use here: the one with a ``having`` input
    or button (pages carry other forms too, such as the log-out button)."""
    parser = FormParser()
    parser.feed(html)
    parser.close()
    found = [
        form
        for form in parser.forms
        if having in form.inputs or any(name == having for name, _ in form.buttons)
    ]
    assert len(found) == 1, f"expected one form with {having!r}, found {len(found)}"
    return found[0]


def approve_in_browser(authorization_url: str, vendor_name: str, *, email: str = EMAIL) -> str:
    """Play the customer: open the link, log in, allow everything on the consent page.

    Returns where the server sends the browser back to the vendor (not followed: nothing
    listens there).
    """
    with requests.Session() as browser:
        login_page = browser.get(authorization_url, timeout=TIMEOUT)
        assert login_page.status_code == 200
        assert urlsplit(login_page.url).path == "/login"
        assert [r.status_code for r in login_page.history] == [303]
        login = the_form(login_page.text, having="password")
        assert login.method == "post"
        assert login.inputs["password"] == "password"
        consent_page = browser.post(
            urljoin(login_page.url, login.action),
            data=login.submission({"email": email, "password": PASSWORD}),
            timeout=TIMEOUT,
        )
        assert consent_page.status_code == 200, consent_page.text
        assert f"{vendor_name}</bdi> asks to read" in consent_page.text
        consent = the_form(consent_page.text, having="decision")
        assert consent.checkboxes, "the consent page offers no fields"
        assert all(checked for _, _, checked in consent.checkboxes)
        answer = browser.post(
            urljoin(consent_page.url, consent.action),
            data=consent.submission({}, ("decision", "allow")),
            allow_redirects=False,
            timeout=TIMEOUT,
        )
    assert answer.status_code in (302, 303), answer.text
    location: str = answer.headers["Location"]
    return location


def start_flow(vendor: OAuth2Session, metadata: dict[str, Any]) -> tuple[str, str, str]:
    """The vendor's authorization URL with S256 PKCE: (url, state, code_verifier)."""
    verifier = generate_token(64)
    url, state = vendor.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0] != verifier
    return url, state, verifier


def assert_callback(location: str, state: str, issuer: str) -> None:
    """The redirect goes to the registered URI with a code, our ``state`` and the issuer."""
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    assert query["iss"] == [issuer]
    assert len(query["code"]) == 1


# The flow.


def test_metadata_describes_this_server(live_server: LiveServer, metadata: dict[str, Any]) -> None:
    assert metadata["issuer"] == live_server.issuer
    AuthorizationServerMetadata(metadata).validate()
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "jwks_uri",
    ):
        assert metadata[name].startswith(live_server.issuer + "/"), name
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(SCOPE.split()) <= set(metadata["scopes_supported"])
    with requests.Session() as http:
        keys = http.get(metadata["jwks_uri"], timeout=TIMEOUT).json()
    assert keys["keys"]


def test_vendor_registers_reads_refreshes_and_loses_access_on_revocation(
    live_server: LiveServer, metadata: dict[str, Any], customer: str
) -> None:
    client = register(metadata)
    assert client["client_secret"]
    with vendor_session(client, metadata) as vendor:
        url, state, verifier = start_flow(vendor, metadata)
        callback = approve_in_browser(url, client["client_name"])
        assert_callback(callback, state, live_server.issuer)

        token = vendor.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        assert token["token_type"] == "Bearer"
        assert sorted(token["scope"].split()) == sorted(SCOPE.split())
        assert 0 < token["expires_in"] <= 900

        first = vendor.get(profile_url(metadata))
        assert first.status_code == 200
        profile = first.json()
        assert set(profile) == {"sub", *PURPOSES}
        assert profile["email"] == EMAIL
        assert profile["given_name"] == "Grace"
        assert profile["postal_address"]["locality"] == "Cambridge"
        consents = live_server.services.consents
        assert profile["sub"] == consents.subject(customer, client["client_id"])
        assert profile["sub"] != consents.subject(customer, "vnd_" + "0" * 24)
        assert customer not in profile["sub"]

        refreshed = vendor.refresh_token(metadata["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert refreshed["access_token"] != token["access_token"]
        assert sorted(refreshed["scope"].split()) == sorted(SCOPE.split())

        second = vendor.get(profile_url(metadata))
        assert second.status_code == 200
        assert second.json() == profile

        (grant,) = consents.grants(customer)
        consents.revoke(customer, grant.grant_id)

        refused = vendor.get(profile_url(metadata))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert refused.json()["error_description"]
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge


def test_confidential_client_with_client_secret_post(
    live_server: LiveServer, metadata: dict[str, Any], customer: str
) -> None:
    client = register(
        metadata,
        client_name="Post Shop",
        token_endpoint_auth_method="client_secret_post",
        scope="profile:email",
        vrm_field_purposes={"email": "send your receipts"},
    )
    with vendor_session(client, metadata) as vendor:
        url, state, verifier = start_flow(vendor, metadata)
        callback = approve_in_browser(url, client["client_name"])
        assert_callback(callback, state, live_server.issuer)
        token = vendor.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        profile = vendor.get(profile_url(metadata)).json()
        assert set(profile) == {"sub", "email"}

        described = vendor.introspect_token(
            metadata["introspection_endpoint"], token=token["access_token"]
        ).json()
        assert described["active"] is True
        assert described["client_id"] == client["client_id"]
        assert described["scope"] == "profile:email"
        assert described["sub"] == profile["sub"]

        refreshed = vendor.refresh_token(metadata["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert vendor.get(profile_url(metadata)).json() == profile


def test_public_client_completes_the_flow_with_pkce(
    live_server: LiveServer, metadata: dict[str, Any], customer: str
) -> None:
    client = register(metadata, client_name="Phone App", token_endpoint_auth_method="none")
    assert "client_secret" not in client
    with vendor_session(client, metadata) as vendor:
        url, state, verifier = start_flow(vendor, metadata)
        callback = approve_in_browser(url, client["client_name"])
        assert_callback(callback, state, live_server.issuer)
        token = vendor.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        assert set(vendor.get(profile_url(metadata)).json()) == {"sub", *PURPOSES}

        refreshed = vendor.refresh_token(metadata["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert vendor.get(profile_url(metadata)).status_code == 200

        revoked = vendor.revoke_token(
            metadata["revocation_endpoint"],
            token=refreshed["refresh_token"],
            token_type_hint="refresh_token",
        )
        assert revoked.status_code == 200
        refused = vendor.get(profile_url(metadata))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"


def test_public_client_without_the_code_verifier_gets_no_token(
    live_server: LiveServer, metadata: dict[str, Any], customer: str
) -> None:
    client = register(metadata, client_name="Phone App", token_endpoint_auth_method="none")
    with vendor_session(client, metadata) as vendor:
        url, _, _ = start_flow(vendor, metadata)
        callback = approve_in_browser(url, client["client_name"])
        code = parse_qs(urlsplit(callback).query)["code"][0]
        with requests.Session() as http:
            response = http.post(
                metadata["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT,
                    "client_id": client["client_id"],
                },
                timeout=TIMEOUT,
            )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
