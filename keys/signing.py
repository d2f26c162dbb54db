"""The server's Ed25519 signing key, published as a JWKS.

It signs consent receipts and vendor webhooks (JWS, alg ``Ed25519`` per RFC 9864) and log
checkpoints. The
private key is a PKCS#8 PEM file with mode 0600; its ``kid`` is the RFC 7638 thumbprint.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc import jws
from joserfc.jwk import OKPKey

from keys.errors import InvalidKeyMaterial
from keys.files import read_secret_file, write_secret_file

JWS_ALG = "Ed25519"


class SigningKey:
    """An Ed25519 key pair with its JWK view."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._jwk = OKPKey.import_key(pem)
        self.kid: str = self._jwk.thumbprint()

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Load the key at ``path``, generating and storing one on first use."""
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # Another process may create it first; then use theirs.
            with contextlib.suppress(FileExistsError):
                write_secret_file(path, pem)
        return cls.from_pem(read_secret_file(path), str(path))

    @classmethod
    def from_pem(cls, pem: bytes, where: str = "signing key") -> SigningKey:
        """Read a PKCS#8 PEM Ed25519 private key."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise InvalidKeyMaterial(f"{where}: not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidKeyMaterial(f"{where}: not an Ed25519 key")
        return cls(key)

    @property
    def jwk(self) -> OKPKey:
        """The joserfc key, for signing JWS."""
        return self._jwk

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, for verifiers."""
        return self._private.public_key()

    def public_raw(self) -> bytes:
        """The 32-byte raw public key (used by signed notes)."""
        return self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM, for auditors and vendors."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes) -> bytes:
        """A raw Ed25519 signature over ``data``."""
        return self._private.sign(data)

    def compact_jws(self, payload: bytes | str, typ: str) -> str:
        """``payload`` as a compact JWS signed with this key; the header holds exactly
        ``alg``, ``kid`` and ``typ`` (what a verifier needs to find the key in the JWKS and
        to tell one kind of signed object from another)."""
        header = {"alg": JWS_ALG, "kid": self.kid, "typ": typ}
        return jws.serialize_compact(header, payload, self._jwk, algorithms=[JWS_ALG])

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK with ``kid``, ``use`` and ``alg``."""
        jwk: dict[str, Any] = self._jwk.as_dict(private=False)
        jwk.update(kid=self.kid, use="sig", alg=JWS_ALG)
        return jwk

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set to publish at ``jwks_uri``."""
        return {"keys": [self.public_jwk()]}
