"""``GET /openapi.json``: a valid OpenAPI 3.1 document that covers every JSON route the app
registers, and whose schemas the server's real answers satisfy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from tests.conftest import PASSWORD
from tests.oauth.conftest import EMAIL, PURPOSES, REDIRECT, bearer, register, tokens_for
from vault.fields import STANDARD_FIELDS
from vault.vendors import VENDOR_SCOPES
from vrm.app import create_app

ISSUER = "http://vault.test"
DOCUMENT_URI = "urn:vrm-vault:openapi"
# Pages for people, not JSON endpoints: every route of the people-facing blueprint (web/:
# /, /login, /logout, the customer's pages and forms) and the authorization endpoint, which
# the document mentions only as the browser endpoint; and the auditor's pages (auditor/).
# A JSON route anywhere else must be in the document.
PAGE_BLUEPRINTS = {"web", "auditor"}
BROWSER_ENDPOINTS = {"consent.authorize"}
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
PROFILE_SCOPE = "profile:email profile:given_name"


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    application = create_app({**config, "ISSUER": ISSUER})
    application.config["TESTING"] = True
    yield application
    application.extensions["vrm"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


@pytest.fixture
def customer(app: Flask) -> str:
    services = app.extensions["vrm"]
    vault_id: str = services.vaults.sign_up(EMAIL, PASSWORD)
    services.vaults.set_fields(vault_id, {"given_name": "Ada"})
    return vault_id


def conforms(document: dict[str, Any], path: str, method: str, response: TestResponse) -> None:
    """Assert ``response`` is documented for ``method path`` and matches its schema and
    its constant headers."""
    responses = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    key = status if status in responses else status[0] + "XX"
    assert key in responses, f"{method.upper()} {path} does not document {status}"
    pointer = ["paths", path, method, "responses", key]
    documented = responses[key]
    if "$ref" in documented:
        pointer = documented["$ref"].removeprefix("#/").split("/")
        documented = _at(document, pointer)
    assert response.mimetype in documented["content"], f"{status} is not {response.mimetype}"
    pointer += ["content", response.mimetype, "schema"]
    errors = [e.message for e in _validator(document, pointer).iter_errors(response.get_json())]
    assert not errors, f"{method.upper()} {path} {status}: {errors}"
    for name, header in documented.get("headers", {}).items():
        expected = (
            _at(document, header["$ref"].removeprefix("#/").split("/"))
            if ("$ref" in header)
            else header
        )
        if "const" in expected["schema"]:
            assert response.headers.get(name) == expected["schema"]["const"], name


def _at(document: dict[str, Any], pointer: list[str]) -> Any:
    node: Any = document
    for part in pointer:
        node = node[part]
    return node


def _validator(document: dict[str, Any], pointer: list[str]) -> Draft202012Validator:
    escaped = "/".join(p.replace("~", "~0").replace("/", "~1") for p in pointer)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return Draft202012Validator({"$ref": f"{DOCUMENT_URI}#/{escaped}"}, registry=registry)


def is_json_route(rule: Rule) -> bool:
    """Whether a route answers machines in JSON (not a page, the browser endpoint or a file)."""
    blueprint, _, name = rule.endpoint.rpartition(".")
    return not (
        name == "static" or blueprint in PAGE_BLUEPRINTS or rule.endpoint in BROWSER_ENDPOINTS
    )


def client_credentials_vendor(client: FlaskClient) -> tuple[str, str]:
    response = client.post(
        "/oauth/register",
        json={
            "client_name": "Segment Counter",
            "grant_types": ["client_credentials"],
            "scope": "segments:query offers:send",
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    return body["client_id"], body["client_secret"]


# The document itself.


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_server_url_is_the_issuer(document: dict[str, Any]) -> None:
    assert [server["url"] for server in document["servers"]] == [ISSUER]
    flows = document["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["authorizationCode"]["authorizationUrl"] == ISSUER + "/oauth/authorize"
    assert flows["clientCredentials"]["tokenUrl"] == ISSUER + "/oauth/token"


def test_every_json_route_is_documented_with_its_methods(
    app: Flask, document: dict[str, Any]
) -> None:
    for rule in app.url_map.iter_rules():
        if not is_json_route(rule):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        assert path in document["paths"], (
            f"{path} is not in the OpenAPI document: describe it in vendor_api/openapi.py"
        )
        for method in (rule.methods or set()) - IMPLICIT_METHODS:
            assert method.lower() in document["paths"][path], f"{method} {path} undocumented"


def test_document_names_only_routes_the_app_serves(app: Flask, document: dict[str, Any]) -> None:
    served = {
        (rule.rule.replace("<", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - IMPLICIT_METHODS
    }
    for path, item in document["paths"].items():
        for method in set(item) & {"get", "post", "put", "patch", "delete"}:
            assert (path, method) in served, f"{method.upper()} {path} is documented, not served"


def test_pages_for_people_are_left_out(app: Flask) -> None:
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    for page in ("/", "/login", "/logout", "/oauth/authorize"):
        assert not is_json_route(rules[page])
    assert is_json_route(rules["/api/v1/profile"])


def test_authorize_is_documented_as_the_browser_endpoint(document: dict[str, Any]) -> None:
    authorize = document["paths"]["/oauth/authorize"]
    assert authorize["get"]["tags"] == ["browser"]
    names = {p["name"]: p for p in authorize["parameters"]}
    assert set(names) >= {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    }
    assert names["code_challenge_method"]["schema"] == {"const": "S256"}


def test_oauth2_scheme_lists_every_scope_the_metadata_offers(
    client: FlaskClient, document: dict[str, Any]
) -> None:
    flows = document["components"]["securitySchemes"]["oauth2"]["flows"]
    profile = set(flows["authorizationCode"]["scopes"])
    vendor = set(flows["clientCredentials"]["scopes"])
    assert profile == {f"profile:{name}" for name in STANDARD_FIELDS}
    assert vendor == VENDOR_SCOPES
    metadata = client.get("/.well-known/oauth-authorization-server").get_json()
    assert set(metadata["scopes_supported"]) == profile | vendor


def test_error_schema_is_shared(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"error", "error_description"}


# Real answers against their documented schemas.


def test_discovery_answers_conform(client: FlaskClient, document: dict[str, Any]) -> None:
    metadata = client.get("/.well-known/oauth-authorization-server")
    conforms(document, "/.well-known/oauth-authorization-server", "get", metadata)
    described = document["components"]["schemas"]["ServerMetadata"]["properties"]
    assert set(metadata.get_json()) <= set(described), "a metadata member is undocumented"
    conforms(document, "/jwks.json", "get", client.get("/jwks.json"))
    conforms(document, "/healthz", "get", client.get("/healthz"))


def test_registration_answers_conform(client: FlaskClient, document: dict[str, Any]) -> None:
    confidential = {
        "client_name": "Example Shop",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "profile:email",
        "vrm_field_purposes": {"email": PURPOSES["email"]},
        "vrm_webhook_uri": "https://shop.example/hooks/vrm",
        "contacts": ["privacy@shop.example"],
    }
    created = client.post("/oauth/register", json=confidential)
    assert created.status_code == 201
    assert "client_secret" in created.get_json()
    conforms(document, "/oauth/register", "post", created)
    public = {**confidential, "token_endpoint_auth_method": "none"}
    created = client.post("/oauth/register", json=public)
    assert "client_secret" not in created.get_json()
    conforms(document, "/oauth/register", "post", created)


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ({"client_name": "No scope"}, "invalid_client_metadata"),
        (
            {
                "client_name": "Plain http",
                "redirect_uris": ["http://shop.example/cb"],
                "scope": "profile:email",
                "vrm_field_purposes": {"email": "receipts"},
            },
            "invalid_redirect_uri",
        ),
    ],
)
def test_registration_refusals_conform(
    client: FlaskClient, document: dict[str, Any], metadata: dict[str, Any], code: str
) -> None:
    refused = client.post("/oauth/register", json=metadata)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == code
    conforms(document, "/oauth/register", "post", refused)


def test_registration_without_the_initial_access_token_conforms(
    config: dict[str, Any], document: dict[str, Any]
) -> None:
    guarded = create_app({**config, "ISSUER": ISSUER, "REGISTRATION_TOKEN": "operator-only"})
    try:
        refused = guarded.test_client().post("/oauth/register", json={"client_name": "x"})
    finally:
        guarded.extensions["vrm"].close()
    assert refused.status_code == 401
    conforms(document, "/oauth/register", "post", refused)


def test_token_answers_conform(client: FlaskClient, document: dict[str, Any]) -> None:
    vendor = client_credentials_vendor(client)
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=vendor)
    assert token.status_code == 200
    conforms(document, "/oauth/token", "post", token)
    wrong_secret = (vendor[0], "not-the-secret")
    for answer in (
        client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=wrong_secret),
        client.post("/oauth/token", data={"grant_type": "password"}, auth=vendor),
        client.post(
            "/oauth/token", data={"grant_type": "client_credentials", "scope": "nope"}, auth=vendor
        ),
    ):
        assert answer.status_code in (400, 401)
        conforms(document, "/oauth/token", "post", answer)


@pytest.mark.usefixtures("customer")
def test_code_and_refresh_answers_conform(
    app: Flask, client: FlaskClient, document: dict[str, Any]
) -> None:
    shop = register(client)
    issued = tokens_for(app, shop, PROFILE_SCOPE)
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=shop.auth,
    )
    assert refreshed.status_code == 200
    conforms(document, "/oauth/token", "post", refreshed)
    reused = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=shop.auth,
    )
    assert reused.get_json()["error"] == "invalid_grant"
    conforms(document, "/oauth/token", "post", reused)


@pytest.mark.usefixtures("customer")
def test_resource_answers_conform(
    app: Flask, client: FlaskClient, document: dict[str, Any]
) -> None:
    shop = register(client)
    access = tokens_for(app, shop, PROFILE_SCOPE)["access_token"]
    profile = client.get("/api/v1/profile", headers=bearer(access))
    assert profile.get_json()["given_name"] == "Ada"
    conforms(document, "/api/v1/profile", "get", profile)
    conforms(document, "/api/v1/grant", "get", client.get("/api/v1/grant", headers=bearer(access)))
    receipt = client.get("/api/v1/grant/receipt", headers=bearer(access))
    conforms(document, "/api/v1/grant/receipt", "get", receipt)


def test_resource_refusals_conform(client: FlaskClient, document: dict[str, Any]) -> None:
    vendor_token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=client_credentials_vendor(client),
    ).get_json()["access_token"]
    for headers, status in (
        ({}, 401),
        (bearer("not-a-token"), 401),
        ({"Authorization": "Basic YTpi"}, 400),
        (bearer(vendor_token), 403),
    ):
        refused = client.get("/api/v1/profile", headers=headers)
        assert refused.status_code == status
        assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
        conforms(document, "/api/v1/profile", "get", refused)


@pytest.mark.usefixtures("customer")
def test_introspection_and_revocation_answers_conform(
    app: Flask, client: FlaskClient, document: dict[str, Any]
) -> None:
    shop = register(client)
    access = tokens_for(app, shop, PROFILE_SCOPE)["access_token"]
    for token in (access, "not-a-token"):
        answer = client.post("/oauth/introspect", data={"token": token}, auth=shop.auth)
        conforms(document, "/oauth/introspect", "post", answer)
    revoked = client.post("/oauth/revoke", data={"token": access}, auth=shop.auth)
    assert revoked.status_code == 200
    conforms(document, "/oauth/revoke", "post", revoked)
    missing = client.post("/oauth/revoke", data={}, auth=shop.auth)
    conforms(document, "/oauth/revoke", "post", missing)
    anonymous = client.post("/oauth/introspect", data={"token": access})
    assert anonymous.status_code == 401
    conforms(document, "/oauth/introspect", "post", anonymous)


UNKNOWN = {"client_id": "vnd_unknown"}


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/oauth/token", {"grant_type": "client_credentials", **UNKNOWN, "client_secret": "s"}),
        ("/oauth/token", {"grant_type": "authorization_code", "code": "c", **UNKNOWN}),
        ("/oauth/introspect", {"token": "t", **UNKNOWN, "client_secret": "s"}),
        ("/oauth/revoke", {"token": "t", **UNKNOWN, "client_secret": "s"}),
        ("/oauth/revoke", {"token": "t", **UNKNOWN}),
    ],
)
def test_an_unknown_client_in_the_form_is_a_documented_400(
    client: FlaskClient, document: dict[str, Any], path: str, form: dict[str, str]
) -> None:
    answer = client.post(path, data=form)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_client"
    conforms(document, path, "post", answer)


def test_audit_proof_answers_conform(
    app: Flask, client: FlaskClient, document: dict[str, Any]
) -> None:
    services = app.extensions["vrm"]
    for i in range(3):
        services.vaults.sign_up(f"c{i}@example.org", PASSWORD)
    signed = client.get("/audit/proof/inclusion?index=1")
    assert "checkpoint" in signed.get_json()
    conforms(document, "/audit/proof/inclusion", "get", signed)
    at_size = client.get("/audit/proof/inclusion?index=0&size=2")
    conforms(document, "/audit/proof/inclusion", "get", at_size)
    conforms(document, "/audit/proof/inclusion", "get", client.get("/audit/proof/inclusion"))
    consistency = client.get("/audit/proof/consistency?old=1&new=3")
    conforms(document, "/audit/proof/consistency", "get", consistency)


def test_auditor_api_answers_conform(
    app: Flask, client: FlaskClient, document: dict[str, Any], customer: str
) -> None:
    services = app.extensions["vrm"]
    shop = register(client)
    tokens_for(app, shop, PROFILE_SCOPE)
    receipt_id = services.consents.grants(customer)[0].receipts[0].receipt_id
    auditor = services.auditors.create("audit@example.org", PASSWORD)
    auth = {"Authorization": f"Bearer {services.auditors.issue_api_token(auditor)}"}
    prefix = "/api/v1/audit"
    for path, query in (
        ("/log", "?start=0&end=3"),
        ("/log", "?start=9&end=1"),
        ("/vendors", ""),
        ("/receipts", f"?id={receipt_id}"),
        ("/receipts", "?id=nothing"),
        ("/receipts", ""),
    ):
        conforms(document, prefix + path, "get", client.get(prefix + path + query, headers=auth))
        conforms(document, prefix + path, "get", client.get(prefix + path + query))


# Requests: what the schemas let through is what the server takes.


def request_validator(document: dict[str, Any], path: str, method: str) -> Draft202012Validator:
    """The schema of the request body of ``method path`` (its only media type)."""
    content = document["paths"][path][method]["requestBody"]["content"]
    (media,) = content
    return _validator(document, ["paths", path, method, "requestBody", "content", media, "schema"])


def parameter_validator(
    document: dict[str, Any], path: str, method: str, name: str
) -> Draft202012Validator:
    """The schema of query parameter ``name`` of ``method path``."""
    parameters = document["paths"][path][method]["parameters"]
    (position,) = [i for i, p in enumerate(parameters) if p["name"] == name]
    return _validator(document, ["paths", path, method, "parameters", str(position), "schema"])


def shop_metadata(**changes: Any) -> dict[str, Any]:
    return {
        "client_name": "Example Shop",
        "redirect_uris": [REDIRECT],
        "scope": "profile:email",
        "vrm_field_purposes": {"email": PURPOSES["email"]},
        **changes,
    }


@pytest.mark.parametrize(
    "metadata",
    [
        shop_metadata(),
        shop_metadata(
            scope="profile:email profile:x-shoe-size",
            vrm_field_purposes={"email": "receipts", "x-shoe-size": "fitting"},
        ),
        {
            "client_name": "Counter",
            "grant_types": ["client_credentials"],
            "scope": "segments:query offers:send intents:read",
        },
    ],
    ids=["profile field", "custom field", "vendor scopes"],
)
def test_registration_metadata_the_server_accepts_fits_the_schema(
    client: FlaskClient, document: dict[str, Any], metadata: dict[str, Any]
) -> None:
    assert client.post("/oauth/register", json=metadata).status_code == 201
    assert request_validator(document, "/oauth/register", "post").is_valid(metadata)


@pytest.mark.parametrize(
    "metadata",
    [
        shop_metadata(client_name="   "),
        shop_metadata(scope=""),
        shop_metadata(scope="profile:email \x7f"),
        shop_metadata(vrm_field_purposes={"email": " \t "}),
        shop_metadata(scope="profile:email openid"),
        shop_metadata(scope="profile:shoe_size"),
    ],
    ids=[
        "blank name",
        "empty scope",
        "scope with a control character",
        "blank purpose",
        "unknown scope",
        "unknown field",
    ],
)
def test_registration_metadata_the_server_refuses_is_outside_the_schema(
    client: FlaskClient, document: dict[str, Any], metadata: dict[str, Any]
) -> None:
    assert client.post("/oauth/register", json=metadata).status_code == 400
    assert not request_validator(document, "/oauth/register", "post").is_valid(metadata)


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_token_hint_requests_match_their_schema(
    app: Flask, client: FlaskClient, document: dict[str, Any], path: str
) -> None:
    shop = register(client)
    schema = request_validator(document, path, "post")
    empty = {"token": ""}
    assert client.post(path, data=empty, auth=shop.auth).status_code == 400
    assert not schema.is_valid(empty)
    # RFC 7009 lets a server ignore the hint, and this one does, whatever it says.
    hinted = {"token": "not-a-token", "token_type_hint": "device_code"}
    assert client.post(path, data=hinted, auth=shop.auth).status_code == 200
    assert schema.is_valid(hinted)


@pytest.mark.parametrize(
    ("segment", "accepted"),
    [
        ({"field": "birthdate", "age_band": ["25-34"]}, True),
        ({"field": "birthdate", "age_band": []}, False),
        ({"field": "interests", "equals": "cycling"}, True),
        ({"field": "interests", "equals": "  "}, False),
        ({"field": "interests", "in": ["cycling", "x" * 101]}, False),
        ({"field": "interests", "equals": "cycling", "note": "x"}, False),
        ({"any": [{"field": "interests", "equals": "cycling"}], "why": 1}, False),
    ],
)
def test_segment_conditions_the_server_refuses_are_outside_the_schema(
    client: FlaskClient, document: dict[str, Any], segment: dict[str, Any], accepted: bool
) -> None:
    vendor = client_credentials_vendor(client)
    issued = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "segments:query"},
        auth=vendor,
    )
    token = issued.get_json()["access_token"]
    answer = client.post("/api/v1/segments/count", json={"segment": segment}, headers=bearer(token))
    assert answer.status_code == (200 if accepted else 400), answer.get_json()
    schema = request_validator(document, "/api/v1/segments/count", "post")
    assert schema.is_valid({"segment": segment}) is accepted


@pytest.mark.parametrize(
    ("path", "query", "refused"),
    [
        ("/audit/proof/consistency", {"old": 0, "new": 1}, "old"),
        ("/audit/proof/inclusion", {"index": 0, "size": 0}, "size"),
    ],
)
def test_proof_sizes_the_server_refuses_are_outside_the_schema(
    app: Flask,
    client: FlaskClient,
    document: dict[str, Any],
    path: str,
    query: dict[str, int],
    refused: str,
) -> None:
    app.extensions["vrm"].vaults.sign_up("c@example.org", PASSWORD)
    assert client.get(path, query_string=query).status_code == 400
    for name, value in query.items():
        valid = parameter_validator(document, path, "get", name).is_valid(value)
        assert valid is (name != refused), name
