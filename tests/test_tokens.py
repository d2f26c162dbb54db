"""Sealed tokens: what a token carries comes back out of it, and nothing else opens."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault import tokens
from vault.tokens import ACCESS, CODE, REFRESH, InvalidToken, TokenClaims, TokenSealer

KEY = bytes(range(32))


def claims(kind: str = ACCESS, ident: str = "t1") -> TokenClaims:
    return TokenClaims(
        kind=kind,
        client_id="vnd_" + "0" * 24,
        token_id=ident,
        scopes=("profile:email", "profile:given_name"),
        issued_at=1_700_000_000,
        expires_at=1_700_000_900,
        vault_id="v" * 32,
        grant_id="g1",
        epoch=2,
        family="f1" if kind == REFRESH else None,
        counter=3 if kind == REFRESH else 0,
    )


@pytest.mark.parametrize("kind", [ACCESS, REFRESH, CODE])
def test_sealed_claims_open_back_every_time(kind: str) -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(claims(kind))

    assert sealer.open(token, kind) == claims(kind)
    assert sealer.open(token, kind) == claims(kind)


def test_an_access_token_opened_before_still_opens_only_as_itself() -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(claims())
    sealer.open(token, ACCESS)
    body = token.removeprefix("vrm_at_")
    altered = "vrm_at_" + body[:10] + ("A" if body[10] != "A" else "B") + body[11:]

    with pytest.raises(InvalidToken):
        sealer.open(altered, ACCESS)
    with pytest.raises(InvalidToken):
        sealer.open(token, REFRESH)
    with pytest.raises(InvalidToken):
        sealer.open("vrm_rt_" + body, REFRESH)
    with pytest.raises(InvalidToken):
        TokenSealer(bytes(32)).open(token, ACCESS)


def test_claims_of_an_opened_token_cannot_be_changed() -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(claims())
    opened = sealer.open(token, ACCESS)

    with pytest.raises(dataclasses.FrozenInstanceError):
        opened.expires_at = 2_000_000_000  # type: ignore[misc]
    assert sealer.open(token, ACCESS).expires_at == 1_700_000_900


def test_many_access_tokens_all_open_with_their_own_claims(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "OPENED_CAPACITY", 3)
    sealer = TokenSealer(KEY)
    sealed = {f"t{n}": sealer.seal(claims(ident=f"t{n}")) for n in range(8)}

    for _ in range(2):
        for ident, token in sealed.items():
            assert sealer.open(token, ACCESS) == claims(ident=ident)


def _body(token: str) -> bytes:
    text = token.split("_", 2)[2]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _subkey(info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(KEY)


@pytest.mark.parametrize("kind", [ACCESS, REFRESH, CODE])
def test_tokens_are_sealed_with_aes_gcm_siv(kind: str) -> None:
    # RFC 8452: a repeated random nonce must not give the token key away.
    body = _body(TokenSealer(KEY).seal(claims(kind)))
    assert body[0] == 2
    payload = AESGCMSIV(_subkey(b"vrm-vault tokens v2")).decrypt(
        body[1:13], body[13:], kind.encode()
    )
    assert json.loads(payload)["token_id"] == "t1"


@pytest.mark.parametrize("kind", [ACCESS, REFRESH, CODE])
def test_a_refresh_token_sealed_with_aes_gcm_before_still_opens(kind: str) -> None:
    payload = json.dumps(tokens._compact(claims(kind)), separators=(",", ":")).encode()
    nonce = bytes(12)
    sealed = AESGCM(_subkey(b"vrm-vault tokens v1")).encrypt(nonce, payload, kind.encode())
    blob = bytes([1]) + nonce + sealed
    token = f"vrm_{kind}_" + base64.urlsafe_b64encode(blob).decode().rstrip("=")

    if kind == REFRESH:
        assert TokenSealer(KEY).open(token, kind) == claims(kind)
    else:  # Access tokens and codes of the old format have long ended.
        with pytest.raises(InvalidToken):
            TokenSealer(KEY).open(token, kind)
    # The same bytes marked as the new format do not open, nor does an unknown format.
    for fmt in (2, 3):
        other = f"vrm_{kind}_" + base64.urlsafe_b64encode(bytes([fmt]) + blob[1:]).decode()
        with pytest.raises(InvalidToken):
            TokenSealer(KEY).open(other.rstrip("="), kind)
