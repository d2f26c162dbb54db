"""The operator's versioned key-encryption keys (KEKs) and the wrapping of data keys.

A data key is stored only wrapped by a KEK and tagged with that KEK's version. Rotation adds
a version, rewraps every data key under it, and retires an old version once no data key
uses it; profile data is never re-encrypted.

KEKs come from files (``<data>/keys/kek/v<N>.key``, mode 0600, created on first run) or from
the ``VRM_KEK`` environment variable: either one base64 key (version 1) or a
comma-separated list of ``<version>:<base64>`` entries, the highest version being current.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys.envelope import NONCE_BYTES, DataKey, RandomBytes
from keys.errors import (
    InvalidKeyMaterial,
    KeyringError,
    TamperedCiphertext,
    UnknownKeyVersion,
    UnsupportedFormat,
    WrongKey,
)
from keys.files import (
    KEY_BYTES,
    aside_path,
    decode_key,
    destroy_file,
    ensure_private_dir,
    read_key_file,
    remove_link,
    set_aside,
    write_key_file,
)

WRAP_FORMAT_V1 = 1
_ID_BYTES = 8
_HEADER_BYTES = 1 + 4 + _ID_BYTES
_VERSION_FILE = re.compile(r"^v([1-9][0-9]{0,8})\.key$")
_ASIDE_FILE = re.compile(r"^\.v([1-9][0-9]{0,8})\.key\.destroy$")


@dataclass(frozen=True)
class WrappedKey:
    """A data key sealed under one KEK version, as stored next to the vault."""

    kek_version: int
    blob: str

    def to_record(self) -> dict[str, Any]:
        """The JSON record the store keeps."""
        return {"kek_version": self.kek_version, "wrapped": self.blob}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> WrappedKey:
        """Read a record written by :meth:`to_record`."""
        try:
            return cls(int(record["kek_version"]), str(record["wrapped"]))
        except (KeyError, TypeError, ValueError):
            raise TamperedCiphertext("wrapped data key record is malformed") from None


class _Kek:
    """One KEK version, expanded into a wrapping key and a public key id."""

    def __init__(self, version: int, raw: bytes) -> None:
        okm = HKDF(hashes.SHA256(), 40, salt=None, info=b"vrm-vault kek v1").derive(raw)
        self.version = version
        self.aead = AESGCM(okm[:32])
        self.key_id = hmac.new(okm[32:], b"kek-id", sha256).digest()[:_ID_BYTES]


class KekSource(Protocol):
    """Where KEK versions come from."""

    def versions(self) -> list[int]:
        """Every available version, ascending."""
        ...

    def load(self, version: int) -> bytes:
        """The raw key of ``version``; raise UnknownKeyVersion if absent."""
        ...

    def add_version(self) -> int:
        """Create the next version and return it (files only)."""
        ...

    def retire(self, version: int) -> bool:
        """Take ``version`` out of use at once: from then on it is neither listed nor loaded.

        Return False where the operator must remove it by hand. Key files are only set
        aside here, still readable through :meth:`retiring`, until :meth:`destroy_retired`.
        """
        ...

    def retiring(self) -> dict[int, bytes | None]:
        """Versions retired and not yet destroyed (a rotation cut short), each with its key,
        or None where what is left of it is no longer a key."""
        ...

    def destroy_retired(self, version: int) -> str | None:
        """Destroy what :meth:`retire` set aside of ``version``, if anything is left.

        Return the path of a file left for the operator to wipe (what a set-aside symbolic
        link pointed at: the link is removed, never followed), else None.
        """
        ...

    def describe(self) -> str:
        """Where the keys live, for messages."""
        ...


class FileKekSource:
    """KEK versions as files ``v<N>.key`` in one private directory."""

    def __init__(self, directory: Path) -> None:
        self._dir = ensure_private_dir(directory)

    def versions(self) -> list[int]:
        found = (_VERSION_FILE.match(p.name) for p in self._dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def load(self, version: int) -> bytes:
        path = self._path(version)
        if not path.exists():
            raise UnknownKeyVersion(version)
        return read_key_file(path)

    def add_version(self) -> int:
        version = max(self.versions(), default=0) + 1
        write_key_file(self._path(version), os.urandom(KEY_BYTES))
        return version

    def retire(self, version: int) -> bool:
        set_aside(self._path(version))
        return True

    def retiring(self) -> dict[int, bytes | None]:
        found: dict[int, bytes | None] = {}
        for path in self._dir.iterdir():
            match = _ASIDE_FILE.match(path.name)
            if match is None:
                continue
            try:
                found[int(match.group(1))] = read_key_file(path)
            except InvalidKeyMaterial:  # Zeroed, or partly: its destruction was under way.
                found[int(match.group(1))] = None
            except FileNotFoundError:
                if path.is_symlink():  # A link to nothing: no key, and still to remove.
                    found[int(match.group(1))] = None
        return found

    def destroy_retired(self, version: int) -> str | None:
        aside = aside_path(self._path(version))
        if not aside.is_symlink():
            destroy_file(aside)
            return None
        # Zeroing through a link would reach a file outside the key directory: the link
        # goes, and what it points at is the operator's to wipe.
        target = os.path.normpath(os.path.join(aside.parent, os.readlink(aside)))
        remove_link(aside)
        return target

    def describe(self) -> str:
        return str(self._dir)

    def _path(self, version: int) -> Path:
        return self._dir / f"v{version}.key"


class EnvKekSource:
    """KEK versions given in ``VRM_KEK``; the operator adds and removes them by hand."""

    def __init__(self, value: str) -> None:
        self._keys = _parse_env_keks(value)

    def versions(self) -> list[int]:
        return sorted(self._keys)

    def load(self, version: int) -> bytes:
        try:
            return self._keys[version]
        except KeyError:
            raise UnknownKeyVersion(version) from None

    def add_version(self) -> int:
        raise KeyringError(
            "VRM_KEK holds the keys: add a new version to it (for example "
            f"'{max(self._keys) + 1}:<base64 of 32 random bytes>,...') and run again"
        )

    def retire(self, version: int) -> bool:
        return False

    def retiring(self) -> dict[int, bytes | None]:
        return {}

    def destroy_retired(self, version: int) -> str | None:
        return None

    def describe(self) -> str:
        return "VRM_KEK"


_VERSION = re.compile(r"[1-9][0-9]{0,8}")
"""A KEK version in VRM_KEK: ASCII digits, 1 to 999999999."""


def _parse_env_keks(value: str) -> dict[int, bytes]:
    entries = [e.strip() for e in value.split(",") if e.strip()]
    if len(entries) == 1 and ":" not in entries[0]:
        return {1: decode_key(entries[0], "VRM_KEK")}
    keys: dict[int, bytes] = {}
    for entry in entries:
        version, sep, text = entry.partition(":")
        if not sep or not _VERSION.fullmatch(version) or int(version) in keys:
            raise InvalidKeyMaterial(
                "VRM_KEK must be one base64 key or '<version>:<base64>,...' with distinct "
                "versions from 1 to 999999999"
            )
        key = decode_key(text, f"VRM_KEK version {version}")
        if key in keys.values():
            # A retired version would live on under another number, and with it every
            # backup wrapped under it.
            raise InvalidKeyMaterial(f"VRM_KEK version {version} repeats another version's key")
        keys[int(version)] = key
    if not keys:
        raise InvalidKeyMaterial("VRM_KEK is empty")
    return keys


class Keyring:
    """Wraps and unwraps data keys under versioned KEKs.

    The current version is the highest one available; it is looked up on every wrap, so a
    server that keeps running while ``vrm keys rotate`` adds a version wraps new data keys
    under the new version from then on.
    """

    def __init__(self, source: KekSource) -> None:
        self._source = source
        self._cache: dict[int, _Kek] = {}
        if not source.versions():
            source.add_version()

    @property
    def source(self) -> KekSource:
        """Where the KEKs come from."""
        return self._source

    def current_version(self) -> int:
        """The version new data keys are wrapped under."""
        versions = self._source.versions()
        if not versions:
            raise KeyringError(f"no key-encryption key in {self._source.describe()}")
        return versions[-1]

    def wrap(self, dek: DataKey, vault_id: str, rng: RandomBytes = os.urandom) -> WrappedKey:
        """Seal ``dek`` for ``vault_id`` under the current KEK version."""
        kek = self._kek(self.current_version())
        header = bytes([WRAP_FORMAT_V1]) + kek.version.to_bytes(4, "big") + kek.key_id
        nonce = rng(NONCE_BYTES)
        body = kek.aead.encrypt(nonce, dek.raw, _aad(vault_id, header))
        blob = base64.urlsafe_b64encode(header + nonce + body).decode("ascii")
        return WrappedKey(kek.version, blob)

    def unwrap(self, wrapped: WrappedKey, vault_id: str) -> DataKey:
        """Open a wrapped data key of ``vault_id``.

        Raises UnknownKeyVersion, WrongKey, UnsupportedFormat or TamperedCiphertext.
        """
        blob = _decode_wrapped(wrapped.blob)
        header = blob[:_HEADER_BYTES]
        nonce = blob[_HEADER_BYTES : _HEADER_BYTES + NONCE_BYTES]
        body = blob[_HEADER_BYTES + NONCE_BYTES :]
        version = int.from_bytes(header[1:5], "big")
        if version != wrapped.kek_version:
            raise TamperedCiphertext("the KEK version tag does not match the wrapped key")
        kek = self._kek(version)
        if not hmac.compare_digest(header[5:], kek.key_id):
            raise WrongKey(f"KEK version {version} is not the key this data key was wrapped under")
        try:
            return DataKey(kek.aead.decrypt(nonce, body, _aad(vault_id, header)))
        except InvalidTag:
            raise TamperedCiphertext("the wrapped data key failed authentication") from None

    def rewrap(self, wrapped: WrappedKey, vault_id: str) -> WrappedKey:
        """Return ``wrapped`` sealed under the current version (unchanged if it is already)."""
        if wrapped.kek_version == self.current_version():
            return wrapped
        return self.wrap(self.unwrap(wrapped, vault_id), vault_id)

    def _kek(self, version: int) -> _Kek:
        kek = self._cache.get(version)
        if kek is None:
            kek = self._cache[version] = _Kek(version, self._source.load(version))
        return kek


def _aad(vault_id: str, header: bytes) -> bytes:
    return b"vrm-dek\x00" + vault_id.encode() + b"\x00" + header


def _decode_wrapped(text: str) -> bytes:
    try:
        blob = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise TamperedCiphertext("the wrapped data key is not valid base64url") from None
    if not blob:
        raise TamperedCiphertext("the wrapped data key is empty")
    if blob[0] != WRAP_FORMAT_V1:
        raise UnsupportedFormat(f"wrapped key format {blob[0]} is not supported")
    if len(blob) < _HEADER_BYTES + NONCE_BYTES + 16:
        raise TamperedCiphertext("the wrapped data key is truncated")
    return blob
