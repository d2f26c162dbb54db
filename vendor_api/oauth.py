"""The OAuth 2.0 authorization server, on Authlib's Flask integration.

Authlib parses requests, authenticates clients and shapes responses and errors; the vault's
own rules live in ``vault.access`` and ``vault.grants``. The adapters below close the gaps
Authlib leaves open by default: scopes outside the registered set are refused rather than
dropped, PKCE is required of every client and only with S256, codes are single-use,
refresh tokens rotate, access tokens live 15 minutes, and a refresh asking for more than
the grant still allows gets what it allows (its ``scope`` says so), never more.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask
from flask import request as flask_request

from vault.access import (
    ACCESS_TTL,
    OFFER_CODE_METHOD,
    CheckedRefresh,
    CodeUse,
    Principal,
    VendorAccess,
    principal_of,
)
from vault.errors import ValidationError
from vault.fields import spec_for
from vault.tokens import InvalidToken, TokenClaims
from vault.vendors import PROFILE_SCOPE_PREFIX, VENDOR_SCOPES, Vendor, VendorRegistry

CONFIDENTIAL_METHODS = ["client_secret_basic", "client_secret_post"]
OFFER_GRANT_TYPE = "urn:vrm-vault:params:oauth:grant-type:offer-acceptance"
"""Exchanges the code of an accepted offer for the new grant's tokens (see vault.offers)."""
ALL_METHODS = [*CONFIDENTIAL_METHODS, "none"]

#: RFC 7636 section 4.1: 43 to 128 unreserved characters.
CODE_VERIFIER_PATTERN = re.compile(r"[A-Za-z0-9._~-]{43,128}")


@dataclass(frozen=True)
class ConsentedUser:
    """What the consent step hands Authlib as the "user": the grant and the scopes the
    customer actually chose, which may be fewer than the vendor asked for."""

    principal: Principal
    scopes: tuple[str, ...]


class VendorClient(ClientMixin):  # type: ignore[misc]
    """A registered vendor as Authlib sees a client."""

    def __init__(self, vendor: Vendor) -> None:
        self.vendor = vendor

    def get_client_id(self) -> str:
        return self.vendor.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous registration lets a request omit redirect_uri.
        uris = self.vendor.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested profile scopes if all are registered; None (invalid_scope) if not."""
        registered = [s for s in self.vendor.scopes if s.startswith(PROFILE_SCOPE_PREFIX)]
        requested = scope_to_list(scope) if scope else registered
        if not requested or any(s not in registered for s in requested):
            return None
        return " ".join(dict.fromkeys(requested))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.vendor.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.vendor.secret_matches(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.vendor.is_public:
            return method == "none"
        return method in CONFIDENTIAL_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.vendor.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == OFFER_GRANT_TYPE:
            # Any confidential vendor that can hold profile grants can receive one by offer.
            return "authorization_code" in self.vendor.grant_types and not self.vendor.is_public
        return grant_type in self.vendor.grant_types


@dataclass(frozen=True)
class ClaimedCode:
    """A claimed code as Authlib's code grant and PKCE extension read it, with the
    scopes its grant still allows at the exchange."""

    use: CodeUse
    scopes: tuple[str, ...]

    def get_redirect_uri(self) -> str:
        return self.use.redirect_uri

    def get_scope(self) -> str:
        return " ".join(self.scopes)


@dataclass(frozen=True)
class RefreshCredential:
    """A checked refresh token, as Authlib's refresh grant carries it between its steps."""

    checked: CheckedRefresh

    @property
    def claims(self) -> TokenClaims:
        return self.checked.claims

    @property
    def granted(self) -> tuple[str, ...]:
        """The scopes its grant still allows."""
        return self.checked.granted

    def check_client(self, client: VendorClient) -> bool:
        return self.claims.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.claims.scope


class S256Challenge(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, S256 only: ``plain`` and missing challenges are refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, code: ClaimedCode) -> str:
        return code.use.challenge

    def get_authorization_code_challenge_method(self, code: ClaimedCode) -> str:
        return code.use.method


class _IssuerRequest(FlaskOAuth2Request):  # type: ignore[misc]
    """Flask's OAuth 2 request with its URL set from the issuer (see VaultServer)."""

    def __init__(self, request: Any, issuer: str) -> None:
        # Authlib uses this URL only to refuse plain http. Whether the vault is reached
        # over TLS is the operator's to say, by the issuer (``vrm serve`` warns when it is
        # plain http on a host that is not loopback), not something a request can show
        # from behind a proxy: so the URL is the issuer's, with https.
        secure = "https://" + issuer.split("://", 1)[-1]
        uri = secure + request.full_path.rstrip("?")
        OAuth2Request.__init__(self, method=request.method, uri=uri, headers=request.headers)
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


class VaultServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask authorization server, bound to the vault's vendors and tokens."""

    def __init__(
        self, app: Flask, *, vendors: VendorRegistry, access: VendorAccess, issuer: str
    ) -> None:
        self.vendors = vendors
        self.access = access
        self.issuer = issuer
        super().__init__(app)
        self.register_token_generator("default", self._generate_token)

    def create_oauth2_request(self, request: Any) -> FlaskOAuth2Request:
        """Authlib's request, its URL made from the configured issuer and the path asked
        for, not from the Host header: behind a TLS proxy (or reached by another name)
        the request arrives as plain http for another host, which Authlib would refuse as
        insecure transport; and no header a client sends can change what the server
        takes its own address to be."""
        return _IssuerRequest(flask_request, self.issuer)

    def query_client(self, client_id: str) -> VendorClient | None:
        vendor = self.vendors.get(client_id) if isinstance(client_id, str) else None
        if vendor is None or vendor.disabled:
            return None
        return VendorClient(vendor)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing to save: tokens are sealed, and their state lives in the grant."""

    def validate_requested_scope(self, scope: str | None) -> None:
        for item in scope_to_list(scope) or []:
            if not is_known_scope(item):
                raise InvalidScopeError("a requested scope is not one this server offers")

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        """Every OAuth error answer says why, as DESIGN section 6 promises."""
        if not error.description:
            error.description = ERROR_DESCRIPTIONS.get(error.error, "the request was refused")
        return super().handle_error_response(request, error)

    def _generate_token(
        self,
        grant_type: str,
        client: VendorClient,
        user: ConsentedUser | Principal | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        principal = user.principal if isinstance(user, ConsentedUser) else user
        scopes = tuple(scope_to_list(scope) or [])
        token, _ = self.access.access_token(client.get_client_id(), scopes, principal)
        response = bearer(token, scopes)
        if include_refresh_token and principal is not None:
            refresh = self.access.start_refresh(principal, client.get_client_id(), scopes)
            response["refresh_token"] = refresh
        return response


ERROR_DESCRIPTIONS = {
    "invalid_request": "the request is missing a parameter or has a malformed one",
    "invalid_client": "client authentication failed",
    "invalid_grant": "the code or refresh token is invalid, expired, used or revoked",
    "unauthorized_client": "this client is not registered for that grant type",
    "unsupported_grant_type": "the grant type is not supported by this server",
    "unsupported_response_type": "only response_type=code is supported",
    "invalid_scope": "a requested scope is unknown or not registered for this client",
    "access_denied": "the customer or the server refused the request",
    "unsupported_token_type": "that token type cannot be revoked or introspected here",
}


def bearer(access_token: str, scopes: tuple[str, ...]) -> dict[str, Any]:
    """The token response body (RFC 6749 section 5.1); ``scope`` is always stated."""
    return {
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": ACCESS_TTL,
        "scope": " ".join(scopes),
    }


def is_known_scope(scope: str) -> bool:
    """Whether a scope names a profile field or a vendor-level capability."""
    if scope in VENDOR_SCOPES:
        return True
    if not scope.startswith(PROFILE_SCOPE_PREFIX):
        return False
    try:
        spec_for(scope[len(PROFILE_SCOPE_PREFIX) :])
    except ValidationError:
        return False
    return True


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """Authorization code: the code is issued by the vault, single-use, 60 seconds."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    @property
    def _access(self) -> VendorAccess:
        return self.server.access  # type: ignore[no-any-return]

    def generate_authorization_code(self) -> str:
        request = self.request
        user: ConsentedUser = request.user
        data = request.payload.data
        return self._access.issue_code(
            user.principal,
            request.client.get_client_id(),
            scopes=user.scopes,
            redirect_uri=request.payload.redirect_uri or "",
            challenge=data["code_challenge"],
            method=data["code_challenge_method"],
        )

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Already recorded in the grant by generate_authorization_code."""

    def query_authorization_code(self, code: str, client: VendorClient) -> ClaimedCode:
        """Claim the code, after the request proved it holds it rightfully (RFC 7636's
        verifier, the same redirect URI): a request that does not changes nothing.

        The scopes are what the grant allows now: a field the customer withdrew since
        the code was issued is not in the tokens. An offer's acceptance code has no PKCE
        challenge: claim_code refuses it here, untouched, since it is redeemed only
        through its own grant type.
        """
        verifier = self.request.form.get("code_verifier") or ""
        if not verifier:
            raise InvalidRequestError("Missing 'code_verifier'")
        if not CODE_VERIFIER_PATTERN.fullmatch(verifier):
            raise InvalidRequestError("Invalid 'code_verifier'")
        redirect_uri = self.request.payload.redirect_uri

        def proof(use: CodeUse) -> None:
            if use.redirect_uri and redirect_uri != use.redirect_uri:
                raise InvalidToken("the redirect_uri is not the one the code was issued for")
            expected = create_s256_code_challenge(verifier)
            if not hmac.compare_digest(expected.encode(), use.challenge.encode()):
                raise InvalidToken("the code_verifier does not match the code's challenge")

        try:
            use = self._access.claim_code(code, client.get_client_id(), proof=proof)
            scopes = self._access.granted_now(use.claims)
        except InvalidToken as error:
            raise InvalidGrantError(str(error)) from None
        if not scopes:
            raise InvalidGrantError("nothing the code was issued for is still granted")
        return ClaimedCode(use, scopes)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        # A revocation or a reuse landing between the claim and the issue ends the tokens'
        # epoch: the answer is then invalid_grant, as for any dead code.
        try:
            return super().create_token_response()  # type: ignore[no-any-return]
        except InvalidToken as error:
            raise InvalidGrantError(str(error)) from None

    def delete_authorization_code(self, authorization_code: ClaimedCode) -> None:
        """Claiming it used it up."""

    def authenticate_user(self, authorization_code: ClaimedCode) -> Principal:
        return authorization_code.use.principal


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation and reuse detection; scope narrowed to what is still granted."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def _access(self) -> VendorAccess:
        return self.server.access  # type: ignore[no-any-return]

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        try:
            checked = self._access.check_refresh(refresh_token, self.request.client.get_client_id())
        except InvalidToken as error:
            raise InvalidGrantError(str(error)) from None
        return RefreshCredential(checked)

    def _validate_token_scope(self, token: RefreshCredential) -> None:
        requested = scope_to_list(self.request.payload.scope) or list(token.claims.scopes)
        allowed = tuple(s for s in dict.fromkeys(requested) if s in token.granted)
        if not allowed:
            raise InvalidScopeError("nothing requested is still granted")
        self.request.scope = " ".join(allowed)

    def authenticate_user(self, refresh_token: RefreshCredential) -> Principal:
        return principal_of(refresh_token.claims)

    def issue_token(self, user: Principal, refresh_token: RefreshCredential) -> dict[str, Any]:
        scopes = tuple(scope_to_list(self.request.scope))
        client_id = self.request.client.get_client_id()
        try:
            token, rotated = self._access.refresh(refresh_token.checked, client_id, scopes)
        except InvalidToken as error:
            raise InvalidGrantError(str(error)) from None
        return {**bearer(token, scopes), "refresh_token": rotated}

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        """Rotation already retired it."""


class VendorCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
    """Client credentials, for vendor-level scopes only (segments, offers, intents)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        vendor: Vendor = self.request.client.vendor
        registered = [s for s in vendor.scopes if s in VENDOR_SCOPES]
        requested = scope_to_list(self.request.payload.scope) or registered
        if not requested or any(s not in registered for s in requested):
            raise InvalidScopeError("request only vendor-level scopes registered for this client")
        self.request.scope = " ".join(dict.fromkeys(requested))

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class OfferAcceptanceGrant(grants.BaseGrant, grants.TokenEndpointMixin):  # type: ignore[misc]
    """A customer accepted the vendor's offer: the vendor, authenticating as itself,
    exchanges the acceptance code (single-use, from the webhook or the acceptances list)
    for an access token and a refresh token of the new grant."""

    GRANT_TYPE = OFFER_GRANT_TYPE
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self) -> None:
        client: VendorClient = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("this client cannot receive grants by offer")
        code = self.request.payload.data.get("code")
        if not code:
            raise InvalidRequestError("send the acceptance code in the 'code' parameter")
        access: VendorAccess = self.server.access
        try:
            use = access.claim_code(code, client.get_client_id(), kind=OFFER_CODE_METHOD)
            scopes = access.granted_now(use.claims)
        except InvalidToken as error:
            raise InvalidGrantError(str(error)) from None
        if not scopes:
            raise InvalidGrantError("nothing the customer accepted is still granted")
        self.request.client = client
        self.request.user = use.principal
        # What the grant allows now: the customer may have narrowed it since accepting.
        self.request.scope = " ".join(scopes)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        try:
            token = self.generate_token(
                user=self.request.user,
                scope=self.request.scope,
                include_refresh_token=self.request.client.check_grant_type("refresh_token"),
            )
        except InvalidToken as error:
            raise InvalidGrantError(str(error)) from None
        return 200, token, self.TOKEN_RESPONSE_HEADER


def check_token_param(request: Any) -> None:
    """A token endpoint request must name its token; ``token_type_hint`` is only a hint
    and is ignored (RFC 7009 section 2.1, RFC 7662 section 2.1): tokens name their kind."""
    if not request.form.get("token"):
        raise InvalidRequestError("send the token to act on in the 'token' parameter")


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 for every token the server issues; public clients identify by client_id."""

    CLIENT_AUTH_METHODS = ALL_METHODS

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        client = self.authenticate_endpoint_client(request)
        check_token_param(request)
        self.server.access.revoke(request.form["token"], client.get_client_id())
        return 200, {}, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662 for confidential vendors, each seeing only its own tokens."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        client = self.authenticate_endpoint_client(request)
        check_token_param(request)
        body = self.server.access.introspect(request.form["token"], client.get_client_id())
        return 200, body, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


class Issuer(IssuerParameter):  # type: ignore[misc]
    """RFC 9207: ``iss`` in every authorization response, errors included."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    def get_issuer(self) -> str:
        return self._issuer


def build_server(
    app: Flask, *, vendors: VendorRegistry, access: VendorAccess, issuer: str
) -> VaultServer:
    """The configured authorization server for ``app``."""
    server = VaultServer(app, vendors=vendors, access=access, issuer=issuer)
    server.register_grant(CodeGrant, [S256Challenge(required=True)])
    server.register_grant(RefreshGrant)
    server.register_grant(VendorCredentials)
    server.register_grant(OfferAcceptanceGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_extension(Issuer(issuer))
    return server
