"""Envelope encryption: one data key (DEK) per vault, each field value sealed under it.

A sealed value is a base64url string of::

    format (1 byte, 0x01) | key id (8) | context tag (8) | nonce (12) | AES-256-GCM output

The context is the vault id, the field name and the field version. It is bound into the
GCM associated data, so a value moved to another vault, field or version fails to open;
the key id and context tag are keyed digests that let a failure say *why* (wrong key,
misplaced value, or tampering) without revealing anything about the key or the context.
Every ciphertext carries its format version, so the format can change without a flag day.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys.errors import (
    InvalidKeyMaterial,
    MisplacedCiphertext,
    TamperedCiphertext,
    UnsupportedFormat,
    WrongKey,
)

FORMAT_V1 = 1
NONCE_BYTES = 12
TAG_BYTES = 8
HEADER_BYTES = 1 + TAG_BYTES + TAG_BYTES
DEK_BYTES = 32

RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True)
class Context:
    """Where a value belongs: the vault, the field and the field's version."""

    vault_id: str
    field: str
    version: int

    def encode(self) -> bytes:
        """Unambiguous bytes for the associated data."""
        return json.dumps(["vrm-field", self.vault_id, self.field, self.version]).encode()


class DataKey:
    """A vault's data key: seals and opens that vault's field values.

    Build one with :meth:`generate` or from the bytes a keyring unwrapped. The raw key is
    expanded with HKDF into an encryption key and a MAC key, so the digests in the header
    never use the encryption key itself.
    """

    __slots__ = ("_aead", "_key_id", "_mac_key", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != DEK_BYTES:
            raise InvalidKeyMaterial(f"a data key is {DEK_BYTES} bytes, not {len(raw)}")
        okm = HKDF(hashes.SHA256(), 64, salt=None, info=b"vrm-vault dek v1").derive(raw)
        self._raw = raw
        self._aead = AESGCM(okm[:32])
        self._mac_key = okm[32:]
        self._key_id = self._digest(b"key-id")

    @classmethod
    def generate(cls, rng: RandomBytes = os.urandom) -> DataKey:
        """Return a fresh random data key."""
        return cls(rng(DEK_BYTES))

    @property
    def raw(self) -> bytes:
        """The key bytes, for wrapping under a key-encryption key only."""
        return self._raw

    def mac(self, data: bytes) -> bytes:
        """A 32-byte keyed digest of ``data`` under this vault's MAC key.

        Used to name things inside the vault (custom field slots) without revealing the
        name to anyone who lacks the data key.
        """
        return hmac.new(self._mac_key, data, sha256).digest()

    def seal(self, plaintext: bytes, context: Context, rng: RandomBytes = os.urandom) -> str:
        """Encrypt ``plaintext`` for ``context``; return the sealed value as ASCII."""
        header = bytes([FORMAT_V1]) + self._key_id + self._digest(context.encode())
        nonce = rng(NONCE_BYTES)
        body = self._aead.encrypt(nonce, plaintext, header + context.encode())
        return base64.urlsafe_b64encode(header + nonce + body).decode("ascii")

    def open(self, sealed: str, context: Context) -> bytes:
        """Decrypt a value sealed for ``context``.

        Raises UnsupportedFormat, WrongKey, MisplacedCiphertext or TamperedCiphertext.
        """
        blob = _decode(sealed)
        header, nonce, body = _split(blob)
        aad = context.encode()
        expected = bytes([FORMAT_V1]) + self._key_id + self._digest(aad)
        if not hmac.compare_digest(header, expected):
            # The header is authenticated as associated data: if the value opens under the
            # header it should have had, it was sealed here and only the header was altered.
            if self._opens(nonce, body, expected + aad):
                raise TamperedCiphertext("the value's header was altered")
            if not hmac.compare_digest(header[1:9], self._key_id):
                raise WrongKey("the value was sealed under another data key")
            raise MisplacedCiphertext(
                f"the value does not belong to field {context.field!r} version "
                f"{context.version} of this vault"
            )
        try:
            return self._aead.decrypt(nonce, body, header + aad)
        except InvalidTag:
            raise TamperedCiphertext("the value failed authentication") from None

    def _opens(self, nonce: bytes, body: bytes, aad: bytes) -> bool:
        try:
            self._aead.decrypt(nonce, body, aad)
        except InvalidTag:
            return False
        return True

    def _digest(self, data: bytes) -> bytes:
        return self.mac(data)[:TAG_BYTES]


def _decode(sealed: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(sealed.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise TamperedCiphertext("the value is not valid base64url") from None


def _split(blob: bytes) -> tuple[bytes, bytes, bytes]:
    if not blob:
        raise TamperedCiphertext("the value is empty")
    if blob[0] != FORMAT_V1:
        raise UnsupportedFormat(f"ciphertext format {blob[0]} is not supported")
    if len(blob) < HEADER_BYTES + NONCE_BYTES + 16:
        raise TamperedCiphertext("the value is truncated")
    header = blob[:HEADER_BYTES]
    nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    return header, nonce, blob[HEADER_BYTES + NONCE_BYTES :]
