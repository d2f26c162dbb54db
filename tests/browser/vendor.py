"""A vendor as the browser tests need one: it registers over HTTP (RFC 7591), builds the
authorization URL with S256 PKCE (RFC 7636), exchanges the code and reads the profile,
all with plain ``requests`` so each protocol step is visible."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

TIMEOUT = 10


@dataclass(frozen=True)
class Authorization:
    """One authorization request: the URL the customer opens and what the vendor keeps."""

    url: str
    state: str
    verifier: str


@dataclass(frozen=True)
class Vendor:
    """A registered confidential client."""

    name: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str
    metadata: dict[str, Any]

    @classmethod
    def register(
        cls, issuer: str, name: str, purposes: Mapping[str, str], redirect_uri: str
    ) -> Vendor:
        """Find the endpoints in the server's metadata (RFC 8414), then register."""
        metadata = _json(
            requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=TIMEOUT), 200
        )
        scope = " ".join(f"profile:{name}" for name in purposes)
        client = _json(
            requests.post(
                metadata["registration_endpoint"],
                json={
                    "client_name": name,
                    "redirect_uris": [redirect_uri],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "scope": scope,
                    "vrm_field_purposes": dict(purposes),
                },
                timeout=TIMEOUT,
            ),
            201,
        )
        return cls(
            name, client["client_id"], client["client_secret"], redirect_uri, scope, metadata
        )

    def authorization(self) -> Authorization:
        """A fresh authorization URL asking for every registered field."""
        state = secrets.token_urlsafe(16)
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return Authorization(f"{self.metadata['authorization_endpoint']}?{query}", state, verifier)

    def exchange(self, callback: str, authorization: Authorization) -> dict[str, Any]:
        """Check the callback the browser was sent to, then trade its code for tokens."""
        assert callback.startswith(self.redirect_uri + "?"), callback
        query = parse_qs(urlsplit(callback).query)
        assert query["state"] == [authorization.state]
        assert query["iss"] == [self.metadata["issuer"]]
        response = requests.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": self.redirect_uri,
                "code_verifier": authorization.verifier,
            },
            auth=(self.client_id, self.client_secret),
            timeout=TIMEOUT,
        )
        return _json(response, 200)

    def read_profile(self, token: Mapping[str, Any]) -> requests.Response:
        """GET /api/v1/profile with the access token."""
        return requests.get(
            self.metadata["issuer"] + "/api/v1/profile",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=TIMEOUT,
        )


def _json(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body
