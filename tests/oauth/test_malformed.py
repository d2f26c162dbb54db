"""Bad input never gives a 500 or a stack trace.

Every JSON endpoint answers malformed requests (bad JSON, huge bodies, wrong content types,
junk Unicode, missing, repeated or absurdly long parameters, wrong methods) with a 4xx and
a JSON ``{"error": ..., "error_description": ...}`` body. The authorization endpoint, which
people reach in a browser, may answer with a readable page when it cannot send the error
back to the vendor, but never with a 500 or a traceback.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from tests.conftest import FAST_ARGON2, PASSWORD
from tests.oauth.conftest import (
    EMAIL,
    ISSUER,
    REDIRECT,
    Vendor,
    authorize_url,
    csrf_of,
    log_in,
    pkce_pair,
    register,
    tokens_for,
)
from vrm.app import create_app
from vrm.config import load_config

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MIB = 1024 * 1024
ALL = "profile:email profile:given_name profile:postal_address"

TOKEN, REVOKE, INTROSPECT, REGISTER = (
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/register",
)
AUTHORIZE = "/oauth/authorize"
METADATA = "/.well-known/oauth-authorization-server"
API = ("/api/v1/profile", "/api/v1/grant", "/api/v1/grant/receipt")
FORM_ENDPOINTS = (TOKEN, REVOKE, INTROSPECT)
POST_ENDPOINTS = (*FORM_ENDPOINTS, REGISTER)

# Raw bytes as WSGI carries them (latin-1 code points), and the same as Python text.
LONE_SURROGATE_BYTES = b"\xed\xa0\x80"
JUNK_TEXT = [
    "\x00",
    "nul\x00inside",
    "\u202eevil\u202c",
    "\u2066isolate\u2069",
    "\ufeffbom",
    "\ufffd",
    "\U0001f600",
    "e\u0301\u0301\u0301",
    "\r\nInjected: header",
]
JUNK_BYTES = [LONE_SURROGATE_BYTES, b"\xff\xfe", b"\xc0\xaf", b"%ED%A0%80", b"%00", b"%ZZ", b"%"]


# Helpers.


def assert_json_error(response: TestResponse, status: int | None = None) -> dict[str, Any]:
    """A 4xx JSON error with an ``error`` code; never a 500 or a traceback.

    Whether ``error_description`` is always present is pinned down separately, in
    ``test_every_oauth_error_says_what_went_wrong``.
    """
    text = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, (response.status_code, text[:300])
    if status is not None:
        assert response.status_code == status, text[:300]
    assert "Traceback" not in text
    assert response.mimetype == JSON, response.mimetype
    body = json.loads(text)
    assert isinstance(body, dict)
    assert isinstance(body.get("error"), str), body
    assert body["error"], body
    assert isinstance(body.get("error_description", "-"), str)
    return body


def assert_described_json_error(response: TestResponse) -> dict[str, Any]:
    """The full contract: a 4xx JSON ``error`` with a non-empty ``error_description``."""
    body = assert_json_error(response)
    assert body.get("error_description"), body
    return body


def assert_refused_or_ignored(response: TestResponse) -> None:
    """A JSON error, or the answer RFC 7009 and RFC 7662 give for a token the server does
    not know: revoked (``{}``) or inactive (``{"active": false}``)."""
    if response.status_code == 200:
        assert response.get_json() in ({}, {"active": False})
    else:
        assert_json_error(response)


def assert_authorize_refused(response: TestResponse, *, may_ask_to_log_in: bool = False) -> None:
    """The authorization endpoint refuses: back to the vendor's registered redirect URI
    with an ``error``, or a 4xx here (JSON, or a page for people); never a 500.

    ``may_ask_to_log_in``: the junk is in a value the server need not understand (the
    vendor's opaque ``state``), so going on to the login page is right too.
    """
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    if may_ask_to_log_in and response.status_code == 303:
        assert response.headers["Location"].startswith("/login?next=")
        return
    if response.status_code in (302, 303):
        location = response.headers["Location"]
        assert location.startswith(REDIRECT + "?"), location
        assert "error=" in location, location
        return
    assert 400 <= response.status_code < 500, (response.status_code, text[:300])
    if response.mimetype == JSON:
        assert_json_error(response)
    else:
        assert response.mimetype == "text/html"


def raw_form(client: FlaskClient, path: str, body: bytes, **kwargs: Any) -> TestResponse:
    return client.post(path, data=body, content_type=FORM, **kwargs)


def raw_query(client: FlaskClient, path: str, query: bytes, **kwargs: Any) -> TestResponse:
    """A GET whose query string is exactly these bytes, undecoded."""
    return client.get(path, environ_overrides={"QUERY_STRING": query.decode("latin-1")}, **kwargs)


def basic(user: bytes, password: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user + b":" + password).decode()}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One server for the whole module: no test here changes what another one sees, and
    hundreds of malformed requests would otherwise each pay for a new data directory."""
    data: Path = tmp_path_factory.mktemp("malformed") / "vrm-data"
    config = load_config({"DATA": str(data), "ISSUER": ISSUER, **FAST_ARGON2}, environ={})
    application = create_app(config)
    application.config["TESTING"] = True
    yield application
    application.extensions["vrm"].close()


@pytest.fixture(scope="module")
def customer(app: Flask) -> str:
    """The customer of the flows here (``log_in`` logs in as them); returns the vault id."""
    vault_id: str = app.extensions["vrm"].vaults.sign_up(EMAIL, PASSWORD)
    return vault_id


@pytest.fixture(scope="module")
def shop(app: Flask) -> Vendor:
    """The module's vendor for the authorization code flow."""
    return register(app.test_client())


@pytest.fixture(scope="module")
def confidential(app: Flask) -> Vendor:
    """A vendor that may also use client credentials."""
    return register(
        app.test_client(),
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scope="profile:email segments:query",
        vrm_field_purposes={"email": "send your order confirmations"},
    )


# Bad JSON, and bodies of the wrong type or size.


@pytest.mark.parametrize(
    "body",
    [
        b'{"client_name":',
        b"{'client_name': 'single quotes'}",
        b'{"a": 1,}',
        b"[1, 2, 3]",
        b"null",
        b'"just a string"',
        b"",
        b"\x00\x01\x02",
        b'{"client_name": "' + LONE_SURROGATE_BYTES + b'"}',
        b"\xff\xfe{\x00}\x00",
        b'{"a": 1e999999, "b": NaN, "c": -Infinity}',
        b'{"a": 1' + b"0" * 5000 + b"}",
    ],
)
def test_bad_json_is_a_json_error(client: FlaskClient, body: bytes) -> None:
    for path in POST_ENDPOINTS:
        assert_json_error(client.post(path, data=body, content_type=JSON))
    for path in API:
        assert_described_json_error(client.get(path, data=body, content_type=JSON))
    assert_authorize_refused(client.post(AUTHORIZE, data=body, content_type=JSON))


@pytest.mark.parametrize("path", [*FORM_ENDPOINTS, AUTHORIZE])
def test_form_over_one_mib_is_413_json(client: FlaskClient, path: str) -> None:
    body = b"grant_type=client_credentials&token=" + b"a" * MIB
    assert_json_error(raw_form(client, path, body), 413)


def test_registration_over_one_mib_is_413_json(client: FlaskClient) -> None:
    body = json.dumps({"client_name": "a" * MIB}).encode()
    assert_json_error(client.post(REGISTER, data=body, content_type=JSON), 413)


@pytest.mark.parametrize("content_type", [FORM, JSON, "text/plain", "application/octet-stream"])
def test_any_body_over_one_mib_is_a_json_error(client: FlaskClient, content_type: str) -> None:
    """Whatever its type: refused as too large (413) or, unread, as the wrong type."""
    body = b"{" + b"a" * (2 * MIB) + b"}"
    for path in (*POST_ENDPOINTS, AUTHORIZE):
        response = client.post(path, data=body, content_type=content_type)
        assert response.status_code in (400, 413), path
        assert_json_error(response)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded; charset=utf-16",
        "",
        "*/*",
        "application/json" + "; a=b" * 2000,
    ],
)
def test_wrong_content_type_is_a_json_error(client: FlaskClient, content_type: str) -> None:
    body = b'--x\r\n{"grant_type": "client_credentials", "token": "t"}'
    for path in POST_ENDPOINTS:
        assert_json_error(client.post(path, data=body, headers={"Content-Type": content_type}))


def test_token_request_as_json_is_refused(client: FlaskClient, confidential: Vendor) -> None:
    body = {"grant_type": "client_credentials", "scope": "segments:query"}
    assert_json_error(client.post(TOKEN, json=body, auth=confidential.auth))


def test_registration_as_a_form_is_invalid_client_metadata(client: FlaskClient) -> None:
    response = client.post(REGISTER, data={"client_name": "Form Shop"})
    assert assert_json_error(response, 400)["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(
    "nesting", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000]
)
def test_deeply_nested_json_is_a_json_error(client: FlaskClient, nesting: bytes) -> None:
    assert_json_error(client.post(REGISTER, data=nesting, content_type=JSON), 400)


# Junk Unicode.


@pytest.mark.parametrize("junk", JUNK_BYTES)
def test_junk_bytes_in_a_form_are_a_json_error(
    client: FlaskClient, confidential: Vendor, junk: bytes
) -> None:
    body = b"grant_type=" + junk + b"&token=" + junk + b"&scope=" + junk + b"&code=" + junk
    for path in FORM_ENDPOINTS:
        assert_refused_or_ignored(raw_form(client, path, body, auth=confidential.auth))
        assert_json_error(raw_form(client, path, body + b"&client_id=" + junk))


@pytest.mark.parametrize("junk", JUNK_TEXT)
def test_junk_text_in_a_form_is_a_json_error(
    client: FlaskClient, confidential: Vendor, junk: str
) -> None:
    data = {"grant_type": junk, "token": junk, "refresh_token": junk, "client_id": junk}
    for path in FORM_ENDPOINTS:
        assert_json_error(client.post(path, data=data))
        assert_json_error(client.post(path, data={**data, "client_secret": junk}))
        refresh = {**data, "grant_type": "refresh_token"}
        assert_refused_or_ignored(client.post(path, data=refresh, auth=confidential.auth))


MEMBERS = (
    "client_name",
    "redirect_uris",
    "scope",
    "grant_types",
    "token_endpoint_auth_method",
    "vrm_field_purposes",
    "vrm_webhook_uri",
    "contacts",
)
VALID_METADATA: dict[str, Any] = {
    "client_name": "Junk Shop",
    "redirect_uris": ["https://junk.example/cb"],
    "scope": "profile:email",
    "vrm_field_purposes": {"email": "send receipts"},
}


def with_junk(member: str, junk: str) -> dict[str, Any]:
    """Valid client metadata with ``junk`` inside one member's value."""
    value: Any = "x" + junk + "x"
    if member in ("redirect_uris", "grant_types", "contacts"):
        value = [value]
    elif member == "vrm_field_purposes":
        value = {"email": value}
    # Each registration its own name: a second vendor may not take another's.
    name = f"Junk in {member} {secrets.token_hex(4)}"
    return {**VALID_METADATA, "client_name": name, member: value}


@pytest.mark.parametrize("junk", JUNK_TEXT)
def test_junk_text_in_registration_is_refused_or_kept_harmless(
    client: FlaskClient, junk: str
) -> None:
    """Junk is refused, naming the member; text that is merely unusual (an emoji,
    combining marks) may be kept, but never with control or bidirectional characters."""
    for member in MEMBERS:
        response = client.post(REGISTER, json=with_junk(member, junk))
        if response.status_code == 201:
            assert member in ("client_name", "vrm_field_purposes")
            shown = json.dumps(response.get_json()[member], ensure_ascii=False)
            assert not any(c in shown for c in "\x00\r\n\u202e\u202c\u2066\u2069")
            continue
        body = assert_described_json_error(response)
        assert response.status_code == 400
        assert body["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
        assert body["error_description"].startswith(member), body


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800\\ud800", "\\u0000", "\\u202e"])
def test_escaped_lone_surrogates_in_registration_are_refused(
    client: FlaskClient, escape: str
) -> None:
    for member in ("client_name", "scope", "vrm_webhook_uri", "contacts"):
        value = f'["{escape}@a.example"]' if member == "contacts" else f'"a{escape}"'
        body = (
            '{"client_name": "Shop", "redirect_uris": ["https://junk.example/cb"], '
            '"scope": "profile:email", "vrm_field_purposes": {"email": "send receipts"}, '
            f'"{member}": {value}}}'
        )
        response = client.post(REGISTER, data=body.encode(), content_type=JSON)
        assert assert_described_json_error(response)["error_description"].startswith(member)


PERCENT_JUNK = [b"%ED%A0%80", b"%FF%FE", b"%C0%AF", b"%00", b"%E2%80%AE", b"%ZZ", b"%"]
RAW_JUNK = [LONE_SURROGATE_BYTES, b"\xff\xfe", b"\xc0\xaf"]
# Where junk goes in an otherwise valid authorization query. The server need not
# understand the vendor's opaque "state" nor a parameter it does not know, so those
# requests may go on to the login page.
PLACES = [
    "client_id",
    "scope",
    "another scope",
    "state",
    "code_challenge_method",
    "code_challenge",
    "response_type",
    "another redirect_uri",
    "a name",
    "the whole query",
]

# Junk that decodes to text outside RFC 6749's error_description character set.
UNDESCRIBABLE = (b"%00", b"%E2%80%AE")


def junk_authorization_query(shop: Vendor, junk: bytes, place: str) -> bytes:
    """A valid authorization query for ``shop`` with ``junk`` put in one place."""
    _, challenge = pkce_pair()
    valid = authorize_url(shop, ALL, challenge).split("?", 1)[1].encode()
    if place in ("scope", "state", "code_challenge_method", "code_challenge", "response_type"):
        name = place.encode() + b"="
        start = valid.index(b"&" + name) + 1 if not valid.startswith(name) else 0
        end = valid.find(b"&", start)
        return valid[:start] + name + junk + (valid[end:] if end != -1 else b"")
    if place.startswith("another "):
        return valid + b"&" + place.split()[1].encode() + b"=" + junk
    return {
        "client_id": b"response_type=code&client_id=" + junk,
        "a name": valid + b"&" + junk + b"=1",
        "the whole query": junk,
    }[place]


@pytest.mark.parametrize("junk", PERCENT_JUNK, ids=bytes.decode)
def test_percent_encoded_junk_in_the_authorization_query_is_refused(
    client: FlaskClient, shop: Vendor, junk: bytes
) -> None:
    for place in PLACES:
        if junk in UNDESCRIBABLE and place in ("scope", "response_type"):
            continue  # Known 500s, pinned down by the two tests below.
        response = raw_query(client, AUTHORIZE, junk_authorization_query(shop, junk, place))
        assert_authorize_refused(response, may_ask_to_log_in=place in ("state", "a name"))


@pytest.mark.parametrize("junk", UNDESCRIBABLE, ids=bytes.decode)
@pytest.mark.parametrize(
    "place",
    [
        "scope",
        "response_type",
    ],
)
def test_undescribable_junk_in_scope_or_response_type_is_refused(
    client: FlaskClient, shop: Vendor, junk: bytes, place: str
) -> None:
    response = raw_query(client, AUTHORIZE, junk_authorization_query(shop, junk, place))
    assert_authorize_refused(response)


@pytest.mark.parametrize("scope", ["profile:café", "it's"])
def test_unknown_scope_with_any_characters_is_invalid_scope(
    client: FlaskClient, confidential: Vendor, scope: str
) -> None:
    _, challenge = pkce_pair()
    response = client.get(authorize_url(confidential, scope, challenge))
    assert "error=invalid_scope" in response.headers.get("Location", "")
    data = {"grant_type": "client_credentials", "scope": scope}
    response = client.post(TOKEN, data=data, auth=confidential.auth)
    assert assert_json_error(response, 400)["error"] == "invalid_scope"


@pytest.mark.parametrize("response_type", ["c\u00f3de", "code\u0000", "\u202etoken"])
def test_unsupported_response_type_with_any_characters_is_refused(
    client: FlaskClient, response_type: str
) -> None:
    response = client.get(AUTHORIZE + "?" + urlencode({"response_type": response_type}))
    assert_json_error(response, 400)


@pytest.mark.parametrize("path", [AUTHORIZE, TOKEN])
@pytest.mark.parametrize("junk", RAW_JUNK)
def test_raw_non_utf8_bytes_in_the_query_are_refused(
    client: FlaskClient, shop: Vendor, path: str, junk: bytes
) -> None:
    query = b"response_type=code&grant_type=refresh_token&client_id=" + junk
    if path == AUTHORIZE:
        assert_authorize_refused(raw_query(client, path, query))
    else:
        response = client.post(
            path,
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            auth=shop.auth,
            environ_overrides={"QUERY_STRING": query.decode("latin-1")},
        )
        assert_json_error(response)


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
@pytest.mark.parametrize("junk", RAW_JUNK)
def test_a_form_body_that_is_not_utf8_is_refused_for_what_it_is(
    client: FlaskClient, confidential: Vendor, path: str, junk: bytes
) -> None:
    body = b"grant_type=client_credentials&scope=segments:query&token=" + junk
    response = client.post(
        path, data=body, content_type="application/x-www-form-urlencoded", auth=confidential.auth
    )
    assert assert_json_error(response, 400) == {
        "error": "invalid_request",
        "error_description": "the form body is not valid UTF-8",
    }


@pytest.mark.parametrize("junk", JUNK_TEXT)
def test_junk_text_in_the_state_is_echoed_safely(
    client: FlaskClient, shop: Vendor, junk: str
) -> None:
    _, challenge = pkce_pair()
    response = client.get(authorize_url(shop, "profile:unknown", challenge, state=junk))
    assert_authorize_refused(response)
    assert "\r" not in response.headers["Location"]
    assert "\n" not in response.headers["Location"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer \xed\xa0\x80",
        "Bearer \x00",
        "Bearer vrm_at_\u202e",
        "Bearer vrm_at_!!!!",
        "Bearer vrm_at_AAAA",
        "Bearer vrm_rt_AAAA",
        "Bearer " + "a" * 100_000,
        "Bearer vrm_at_" + "A" * 100_000,
        "Bearer a b",
        "Bearer",
        "Bearer ",
        "bearer\tx",
        "Basic YTpi",
        "Digest x",
        "\xff\xfe",
        "",
    ],
)
def test_malformed_bearer_headers_are_a_json_error(client: FlaskClient, header: str) -> None:
    for path in API:
        response = client.get(path, headers={"Authorization": header})
        assert response.status_code in (400, 401)
        assert_described_json_error(response)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("query", [b"access_token=vrm_at_AAAA", LONE_SURROGATE_BYTES, b"%ZZ"])
def test_junk_queries_on_get_endpoints_are_harmless(client: FlaskClient, query: bytes) -> None:
    for path in API:
        assert_described_json_error(raw_query(client, path, query))
    metadata = raw_query(client, METADATA, query)
    assert metadata.status_code == 200
    assert metadata.get_json()["issuer"] == ISSUER


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
@pytest.mark.parametrize("user", [b"\xff\xfe", LONE_SURROGATE_BYTES, b"vnd_\xc0\xaf"])
def test_non_utf8_basic_credentials_are_invalid_client(
    client: FlaskClient, path: str, user: bytes
) -> None:
    data = {"grant_type": "client_credentials", "token": "vrm_at_AAAA"}
    response = client.post(path, data=data, headers=basic(user, b"secret"))
    assert assert_json_error(response, 401)["error"] == "invalid_client"


@pytest.mark.parametrize(
    "credentials",
    [b"no-colon", b":", b"vnd_:", b":secret", b"\x00:\x00", "\u202e:\u202e".encode()],
)
def test_odd_basic_credentials_are_invalid_client(client: FlaskClient, credentials: bytes) -> None:
    header = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
    data = {"grant_type": "client_credentials", "token": "vrm_at_AAAA"}
    for path in FORM_ENDPOINTS:
        response = client.post(path, data=data, headers=header)
        assert assert_json_error(response, 401)["error"] == "invalid_client"


@pytest.mark.parametrize("separator", ["\t", "\t ", " \t", "  "])
def test_non_utf8_basic_credentials_after_any_whitespace_are_invalid_client(
    client: FlaskClient, separator: str
) -> None:
    header = {"Authorization": "Basic" + separator + base64.b64encode(b"\xff:x").decode()}
    data = {"grant_type": "client_credentials", "token": "vrm_at_AAAA"}
    for path in FORM_ENDPOINTS:
        response = client.post(path, data=data, headers=header)
        assert assert_json_error(response, 401)["error"] == "invalid_client"


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
def test_parameters_in_the_url_are_refused(
    client: FlaskClient, confidential: Vendor, path: str
) -> None:
    """Authlib reads the query before the form, so a parameter in the URL could override
    the body; parameters belong in the body (RFC 6749 section 3.2), and go nowhere else."""
    form = {"grant_type": "client_credentials", "token": "vrm_at_AAAA"}
    response = client.post(path + "?grant_type=refresh_token", data=form, auth=confidential.auth)
    body = assert_json_error(response, 400)
    assert body["error"] == "invalid_request"
    assert "not the URL" in body["error_description"]


@pytest.mark.parametrize("header", ["Basic !!!", "Basic", "Basic a", "Basic " + "QUFB" * 20_000])
def test_undecodable_basic_credentials_are_invalid_client(client: FlaskClient, header: str) -> None:
    data = {"grant_type": "client_credentials", "token": "vrm_at_AAAA"}
    for path in FORM_ENDPOINTS:
        response = client.post(path, data=data, headers={"Authorization": header})
        assert assert_json_error(response, 401)["error"] == "invalid_client"


# Missing parameters.


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "unsupported_grant_type"),
        ({"grant_type": ""}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "implicit"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "authorization_code", "code": ""}, "invalid_request invalid_grant"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": ""}, "invalid_request invalid_grant"),
    ],
)
def test_missing_token_parameters_are_refused(
    client: FlaskClient, shop: Vendor, data: dict[str, str], error: str
) -> None:
    """An empty value counts as missing (RFC 6749 section 3.1); treating it as a wrong
    value (``invalid_grant``) refuses it as surely."""
    response = client.post(TOKEN, data=data, auth=shop.auth)
    assert assert_json_error(response, 400)["error"] in error.split()


def test_token_request_without_client_authentication_is_invalid_client(
    client: FlaskClient, shop: Vendor
) -> None:
    response = client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert assert_json_error(response, 401)["error"] == "invalid_client"


@pytest.mark.parametrize("path", [REVOKE, INTROSPECT])
@pytest.mark.parametrize("data", [{}, {"token_type_hint": "access_token"}])
def test_missing_token_to_revoke_or_introspect_is_invalid_request(
    client: FlaskClient, shop: Vendor, path: str, data: dict[str, str]
) -> None:
    response = client.post(path, data=data, auth=shop.auth)
    assert assert_json_error(response, 400)["error"] == "invalid_request"


@pytest.mark.parametrize("member", ["client_name", "redirect_uris", "scope", "vrm_field_purposes"])
def test_registration_missing_a_member_is_refused(client: FlaskClient, member: str) -> None:
    metadata = {
        "client_name": "Shop",
        "redirect_uris": ["https://shop.example/cb"],
        "scope": "profile:email",
        "vrm_field_purposes": {"email": "send receipts"},
    }
    del metadata[member]
    assert_described_json_error(client.post(REGISTER, json=metadata))


def test_registration_of_nothing_is_refused(client: FlaskClient) -> None:
    assert_described_json_error(client.post(REGISTER, json={}))


def _without(url: str, name: str) -> str:
    params = dict(pair.split("=", 1) for pair in url.split("?", 1)[1].split("&"))
    del params[name]
    return AUTHORIZE + "?" + "&".join(f"{k}={v}" for k, v in params.items())


@pytest.mark.parametrize("missing", ["client_id", "everything"])
def test_authorization_request_without_a_client_is_answered_here(
    client: FlaskClient, shop: Vendor, missing: str
) -> None:
    _, challenge = pkce_pair()
    url = (
        AUTHORIZE
        if missing == "everything"
        else _without(authorize_url(shop, ALL, challenge), missing)
    )
    response = client.get(url)
    assert "Location" not in response.headers
    assert_described_json_error(response)


def test_authorization_request_without_a_response_type_goes_back_with_an_error(
    client: FlaskClient, shop: Vendor
) -> None:
    _, challenge = pkce_pair()
    response = client.get(_without(authorize_url(shop, ALL, challenge), "response_type"))
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    assert "error=unsupported_response_type" in location or "error=invalid_request" in location
    assert "state=xyz-state" in location


# Repeated parameters.


@pytest.mark.parametrize(
    "name",
    [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    ],
)
def test_repeated_authorization_parameters_are_invalid_request(
    client: FlaskClient, shop: Vendor, name: str
) -> None:
    _, challenge = pkce_pair()
    url = authorize_url(shop, ALL, challenge)
    params = dict(pair.split("=", 1) for pair in url.split("?", 1)[1].split("&"))
    response = client.get(url + f"&{name}={params[name]}")
    assert_authorize_refused(response)
    if "Location" in response.headers:
        assert "error=invalid_request" in response.headers["Location"]
    else:
        assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("name", ["grant_type", "scope", "client_id"])
def test_repeated_token_parameters_are_invalid_request(
    client: FlaskClient, confidential: Vendor, name: str
) -> None:
    first = {"grant_type": "client_credentials", "scope": "segments:query"}
    pairs = [*first.items(), ("client_id", confidential.client_id)]
    pairs.append((name, dict(pairs)[name]))
    response = client.post(TOKEN, data=MultiDict(pairs), auth=confidential.auth)
    assert assert_json_error(response, 400)["error"] == "invalid_request"


@pytest.mark.parametrize("path", [REVOKE, INTROSPECT])
def test_repeated_tokens_to_revoke_or_introspect_are_harmless(
    app: Flask, client: FlaskClient, shop: Vendor, customer: str, path: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    pairs = [("token", "vrm_at_AAAA"), ("token", tokens["access_token"])]
    response = client.post(path, data=MultiDict(pairs), auth=shop.auth)
    assert response.status_code in (200, 400)
    profile = client.get(
        "/api/v1/profile", headers={"Authorization": "Bearer " + tokens["access_token"]}
    )
    assert profile.status_code == 200


# Absurdly long values.


LONG = 200_000


@pytest.mark.parametrize(
    "name", ["grant_type", "code", "refresh_token", "scope", "redirect_uri", "code_verifier"]
)
def test_absurdly_long_token_parameters_are_refused(
    client: FlaskClient, shop: Vendor, name: str
) -> None:
    data = {"grant_type": "authorization_code", "code": "vrm_ac_AAAA", name: "x" * LONG}
    if name == "refresh_token":
        data["grant_type"] = "refresh_token"
    assert_json_error(client.post(TOKEN, data=data, auth=shop.auth))


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
def test_absurdly_long_client_credentials_are_invalid_client(
    client: FlaskClient, path: str
) -> None:
    """Basic credentials get 401 (RFC 6749 section 5.2); form credentials 400 or 401."""
    data = {"grant_type": "client_credentials", "token": "t"}
    for auth in (("a" * LONG, "b"), ("vnd_" + "0" * 24, "s" * LONG)):
        response = client.post(path, data=data, auth=auth)
        assert assert_json_error(response, 401)["error"] == "invalid_client"
    response = client.post(path, data={**data, "client_id": "a" * LONG, "client_secret": "b"})
    assert assert_json_error(response)["error"] == "invalid_client"


@pytest.mark.parametrize("path", [REVOKE, INTROSPECT])
def test_absurdly_long_tokens_to_revoke_or_introspect_are_harmless(
    client: FlaskClient, confidential: Vendor, path: str
) -> None:
    for token in ("vrm_at_" + "A" * LONG, "vrm_rt_" + "A" * LONG, "x" * LONG):
        response = client.post(path, data={"token": token}, auth=confidential.auth)
        assert response.status_code == 200
        assert response.get_json() in ({}, {"active": False})


@pytest.mark.parametrize(
    "member", ["client_name", "redirect_uris", "scope", "vrm_field_purposes", "contacts"]
)
def test_absurdly_long_registration_values_are_refused(client: FlaskClient, member: str) -> None:
    metadata: dict[str, Any] = {
        "client_name": "Shop",
        "redirect_uris": ["https://shop.example/cb"],
        "scope": "profile:email",
        "vrm_field_purposes": {"email": "send receipts"},
    }
    long = "a" * LONG
    metadata[member] = {
        "client_name": long,
        "redirect_uris": ["https://shop.example/" + long],
        "scope": "profile:email " + " ".join(f"profile:x-{i}" for i in range(5000)),
        "vrm_field_purposes": {"email": long},
        "contacts": [f"{long}@example.org"],
    }[member]
    assert_described_json_error(client.post(REGISTER, json=metadata))


@pytest.mark.parametrize("name", ["client_id", "redirect_uri", "scope", "state", "code_challenge"])
def test_absurdly_long_authorization_parameters_are_refused(
    client: FlaskClient, shop: Vendor, name: str
) -> None:
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": shop.client_id,
        "redirect_uri": REDIRECT,
        "scope": ALL,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        name: "a" * LONG,
    }
    if name == "scope":
        params[name] = " ".join(["profile:email"] * (LONG // 14))
    response = client.get(AUTHORIZE + "?" + urlencode(params))
    # A long state is the vendor's business, and a scope repeated many times is still
    # one scope: both requests may go on to the login page.
    assert_authorize_refused(response, may_ask_to_log_in=name in ("state", "scope"))


# Wrong HTTP methods.


WRONG_METHODS = {
    **dict.fromkeys(POST_ENDPOINTS, ("GET", "PUT", "DELETE", "PATCH")),
    **dict.fromkeys((*API, METADATA), ("POST", "PUT", "DELETE", "PATCH")),
    AUTHORIZE: ("PUT", "DELETE", "PATCH"),
}


@pytest.mark.parametrize("path", WRONG_METHODS)
def test_wrong_method_is_a_json_405(client: FlaskClient, path: str) -> None:
    for method in WRONG_METHODS[path]:
        response = client.open(path, method=method, data={"token": "x"})
        body = assert_json_error(response, 405)
        assert body["error"] == "method_not_allowed"
        assert body["error_description"]


@pytest.mark.parametrize(("method", "path"), [("GET", TOKEN), ("POST", API[0]), ("PUT", AUTHORIZE)])
def test_wrong_method_says_which_methods_are_allowed(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.headers.get("Allow")


def test_wrong_method_shows_people_a_page(client: FlaskClient) -> None:
    response = client.delete(AUTHORIZE, headers={"Accept": "text/html"})
    assert response.status_code == 405
    assert response.mimetype == "text/html"
    assert b"Traceback" not in response.data


# The authorization endpoint, with a customer logged in.


@pytest.fixture
def consent_page(app: Flask, customer: str) -> tuple[FlaskClient, str, str]:
    """A logged-in browser on the consent page of a vendor the customer has not answered
    yet: (browser, the page's URL, its CSRF token)."""
    shop = register(app.test_client())
    browser = app.test_client()
    log_in(browser)
    _, challenge = pkce_pair()
    url = authorize_url(shop, ALL, challenge)
    page = browser.get(url)
    assert page.status_code == 200
    return browser, url, csrf_of(page.get_data(as_text=True))


@pytest.mark.parametrize(
    "form",
    [
        {"decision": "allow", "duration": "90", "field": "shoe_size"},
        {"decision": "allow", "duration": "-90", "field": "email"},
        {"decision": "allow", "duration": "", "field": "email"},
        {"decision": "allow", "duration": "90\x00", "field": "email"},
        {"decision": "allow", "duration": "\u202e90", "field": "email"},
        {"decision": "allow", "duration": "1e3", "field": "email"},
        {"decision": "allow", "field": ""},
        {"decision": "\u202eallow", "duration": "90", "field": "email"},
        {"decision": "", "duration": "90"},
        {},
    ],
)
def test_junk_consent_forms_are_refused(
    consent_page: tuple[FlaskClient, str, str], form: dict[str, str]
) -> None:
    browser, url, token = consent_page
    response = browser.post(url, data={**form, "csrf_token": token})
    assert_authorize_refused(response)


def test_consent_post_without_its_csrf_token_is_refused(
    consent_page: tuple[FlaskClient, str, str],
) -> None:
    browser, url, _ = consent_page
    response = browser.post(url, data={"decision": "allow", "duration": "90", "field": "email"})
    assert_json_error(response, 400)


@pytest.mark.parametrize("duration", ["\u00b2", "\u2460", "9" * 5000])
def test_undecodable_consent_duration_is_refused(
    consent_page: tuple[FlaskClient, str, str], duration: str
) -> None:
    browser, url, token = consent_page
    data = {"csrf_token": token, "decision": "allow", "duration": duration, "field": "email"}
    assert_authorize_refused(browser.post(url, data=data))


# Every error says what went wrong.


def test_unknown_token_type_hint_is_ignored(client: FlaskClient, confidential: Vendor) -> None:
    response = client.post(
        REVOKE, data={"token": "x", "token_type_hint": "id_token"}, auth=confidential.auth
    )
    assert response.status_code == 200
    assert response.get_json() == {}


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (TOKEN, {"grant_type": "password"}),
        (TOKEN, {}),
        (REVOKE, {}),
        (INTROSPECT, {}),
        (TOKEN, {"grant_type": "authorization_code"}),
        (TOKEN, {"grant_type": "authorization_code", "code": "vrm_ac_AAAA"}),
        (TOKEN, {"grant_type": "client_credentials", "scope": "profile:email"}),
        (TOKEN, {"grant_type": "client_credentials", "scope": "nonsense"}),
    ],
)
def test_every_oauth_error_says_what_went_wrong(
    client: FlaskClient, confidential: Vendor, path: str, data: dict[str, str]
) -> None:
    assert_described_json_error(client.post(path, data=data, auth=confidential.auth))


@pytest.mark.parametrize("path", [REVOKE, INTROSPECT])
def test_unknown_token_type_hint_is_not_a_client_authentication_failure(
    client: FlaskClient, confidential: Vendor, path: str
) -> None:
    data = {"token": "vrm_at_AAAA", "token_type_hint": "id_token"}
    response = client.post(path, data=data, auth=confidential.auth)
    assert response.status_code in (200, 400)


# Anything at all.


_TOKEN_NAMES = st.sampled_from(
    [
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "token",
        "token_type_hint",
    ]
)
_TOKEN_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["profile:café", "it's", "segments:query offers:send", "a\\b", "\u202e"]),
    st.sampled_from(
        [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "segments:query",
            "profile:email",
            "vrm_at_AAAA",
            "vrm_rt_AAAA",
            "vrm_ac_AAAA",
            REDIRECT,
            "",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=5000),
)
_FORMS = st.lists(
    st.tuples(st.one_of(_TOKEN_NAMES, st.text(max_size=10)), _TOKEN_VALUES), max_size=8
)


_AUTH = st.one_of(
    st.none(),
    st.just("valid"),
    st.tuples(st.text(max_size=30), st.text(max_size=30)),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pairs=_FORMS, auth=_AUTH)
def test_arbitrary_forms_at_the_token_endpoint_never_fail_the_server(
    client: FlaskClient, confidential: Vendor, pairs: list[tuple[str, str]], auth: Any
) -> None:
    credentials = confidential.auth if auth == "valid" else auth
    response = client.post(TOKEN, data=MultiDict(pairs), auth=credentials)
    if response.status_code == 200:
        assert response.get_json()["access_token"]
        return
    assert_json_error(response)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.binary(max_size=300), path=st.sampled_from(FORM_ENDPOINTS))
def test_arbitrary_bytes_at_the_form_endpoints_never_fail_the_server(
    client: FlaskClient, confidential: Vendor, body: bytes, path: str
) -> None:
    assert_refused_or_ignored(raw_form(client, path, body, auth=confidential.auth))


_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "profile:email",
            "profile:email segments:query",
            "authorization_code",
            "client_credentials",
            "none",
            "https://shop.example/cb",
            "http://127.0.0.1/cb",
            "ops@shop.example",
        ]
    ),
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_MEMBERS = st.sampled_from(
    [
        "client_name",
        "redirect_uris",
        "grant_types",
        "response_types",
        "token_endpoint_auth_method",
        "scope",
        "vrm_field_purposes",
        "vrm_webhook_uri",
        "client_uri",
        "policy_uri",
        "contacts",
    ]
)
_METADATA = st.one_of(
    _JSON_VALUES,
    st.dictionaries(st.one_of(_MEMBERS, st.text(max_size=12)), _JSON_VALUES, max_size=10),
    st.builds(
        lambda base, changes: {**base, **changes},
        st.just(
            {
                "client_name": "Shop",
                "redirect_uris": ["https://shop.example/cb"],
                "scope": "profile:email",
                "vrm_field_purposes": {"email": "send receipts"},
            }
        ),
        st.dictionaries(_MEMBERS, _JSON_VALUES, max_size=3),
    ),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(metadata=_METADATA)
def test_arbitrary_json_at_the_registration_endpoint_never_fails_the_server(
    client: FlaskClient, metadata: Any
) -> None:
    response = client.post(REGISTER, json=metadata)
    if response.status_code == 201:
        assert response.get_json()["client_id"].startswith("vnd_")
        return
    assert_described_json_error(response)
    assert response.get_json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")


def test_a_request_for_another_host_name_is_served_as_the_issuer_says(
    client: FlaskClient, confidential: Vendor
) -> None:
    """Behind a TLS proxy the vault sees plain http for its public name: the OAuth
    endpoints go by the configured issuer, not by the Host header."""
    form = {"grant_type": "client_credentials"}
    for host in ("vault.example.com", "10.0.0.7:8000"):
        response = client.post(
            "/oauth/token", data=form, auth=confidential.auth, base_url=f"http://{host}"
        )
        assert response.status_code == 200, (host, response.get_json())


@pytest.mark.parametrize("junk", ['"', "\\", "\u00e9"])
def test_a_redirect_uri_with_characters_oauth_errors_cannot_carry_is_a_400(
    client: FlaskClient, confidential: Vendor, junk: str
) -> None:
    query = {
        "response_type": "code",
        "client_id": confidential.client_id,
        "redirect_uri": f"https://shop.example/{junk}",
        "code_challenge": "A" * 43,
        "code_challenge_method": "S256",
    }
    response = client.get("/oauth/authorize", query_string=query)
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/api/v1/profile", "/oauth/token", "/api/v1/grant"])
def test_api_answers_are_never_stored(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers={"Authorization": "Bearer nothing"})
    assert response.headers["Cache-Control"] == "no-store"


def test_malformed_basic_credentials_name_the_scheme_to_use(client: FlaskClient) -> None:
    """RFC 6749 section 5.2: a 401 from the token endpoint carries WWW-Authenticate."""
    data = {"grant_type": "client_credentials"}
    response = client.post("/oauth/token", data=data, headers={"Authorization": "Basic !!!"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("path", ["/api/v1/profile", "/api/v1/audit/log", "/oauth/introspect"])
def test_machine_endpoints_answer_json_even_to_a_browser(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.mimetype == "application/json", path


def test_two_ways_of_client_authentication_at_once_are_refused(
    client: FlaskClient, confidential: Vendor
) -> None:
    """RFC 6749 section 2.3: Basic credentials and a client_secret in the form together."""
    form = {"grant_type": "client_credentials", "client_secret": "anything"}
    response = client.post("/oauth/token", data=form, auth=confidential.auth)
    body = assert_json_error(response, 400)
    assert body["error"] == "invalid_request"
    assert "not both" in body["error_description"]
