"""The server's Ed25519 signing key, published as a JWKS.

It signs consent receipts and vendor webhooks (JWS, alg ``Ed25519`` per RFC 9864) and log
checkpoints. The private key is a PKCS#8 PEM file with mode 0600; its ``kid`` is the RFC
7638 thumbprint.

:func:`rotate_signing_key` replaces it with a new one. The key it replaces is retired: its
public half is kept under ``signing-retired/<kid>.pem`` and published in the JWKS beside
the current key, so everything it signed (receipts, webhooks, checkpoints) still verifies,
and its private half is destroyed. A key that leaked is retired without being published.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc import jws
from joserfc.jwk import OKPKey

from keys.errors import InvalidKeyMaterial
from keys.files import (
    aside_path,
    destroy_file,
    ensure_private_dir,
    link_aside,
    read_secret_file,
    replace_secret_file,
    write_secret_file,
)

JWS_ALG = "Ed25519"
SIGNING_FILE = "signing-ed25519.pem"
RETIRED_DIR = "signing-retired"


class VerifyingKey:
    """The public half of a signing key: the current key's, or a retired key's, kept so
    its signatures verify. Its ``kid`` is the RFC 7638 thumbprint."""

    def __init__(self, public_key: Ed25519PublicKey) -> None:
        self.public_key = public_key
        self._jwk = OKPKey.import_key(self.public_pem())
        self.kid: str = self._jwk.thumbprint()

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

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK with ``kid``, ``use`` and ``alg``."""
        jwk: dict[str, Any] = self._jwk.as_dict(private=False)
        jwk.update(kid=self.kid, use="sig", alg=JWS_ALG)
        return jwk


class SigningKey:
    """An Ed25519 key pair with its JWK view."""

    def __init__(
        self, private_key: Ed25519PrivateKey, retired: tuple[VerifyingKey, ...] = ()
    ) -> None:
        self._private = private_key
        #: Keys this one replaced, newest first: published, never used to sign.
        self.retired = retired
        #: This key's public half.
        self.verifying = VerifyingKey(private_key.public_key())
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._jwk = OKPKey.import_key(pem)
        self.kid: str = self.verifying.kid

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

    def current(self) -> SigningKey:
        """This key: a key held in memory does not change (see :class:`SigningKeyFile`)."""
        return self

    @property
    def jwk(self) -> OKPKey:
        """The joserfc key, for signing JWS."""
        return self._jwk

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, for verifiers."""
        return self.verifying.public_key

    def public_raw(self) -> bytes:
        """The 32-byte raw public key (used by signed notes)."""
        return self.verifying.public_raw()

    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM, for auditors and vendors."""
        return self.verifying.public_pem()

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
        return self.verifying.public_jwk()

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set to publish at ``jwks_uri``: this key first, then the
        retired ones, so what they signed still verifies."""
        return {"keys": [self.public_jwk(), *(key.public_jwk() for key in self.retired)]}


class SigningKeys(Protocol):
    """Where a signer gets its key: a :class:`SigningKey`, or a :class:`SigningKeyFile`
    that follows rotations. Take one :meth:`current` key for each thing signed, so the
    signature and the key id it names are of the same key."""

    def current(self) -> SigningKey:
        """The key to sign with now."""
        ...


class SigningKeyFile:
    """The signing key its file holds now, with the keys it replaced.

    The key is loaded when this is made (and generated and stored first, on first use).
    After that, each :meth:`current` compares the key file (a digest of its bytes, and its
    mode) and the names in the retired keys' folder with what it loaded, and loads them again when
    either changed: a read of a small file and a folder listing, which no reuse of an
    inode or coarse file time can fool. So ``vrm keys rotate-signing``, run beside a server,
    takes effect in it at its next signature or JWKS: it signs with the new key and
    publishes what the rotation left, and a key withdrawn as compromised is neither used
    nor published any more. A key file that has gone missing leaves the key in use as it
    was (a rotation never leaves the name empty); one that cannot be read, or that holds
    no key, is refused (InvalidKeyMaterial, or InsecureKeyFile) at every use until it is
    put right, rather than signing with a key the operator replaced.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._retired_dir = path.parent / RETIRED_DIR
        self._lock = threading.Lock()
        if not path.exists():
            # Another process may create it first; then use theirs.
            with contextlib.suppress(FileExistsError):
                write_secret_file(path, _new_private_pem())
        self._stamp = self._stamp_now()
        self._key = self._load()

    def current(self) -> SigningKey:
        """The key to sign with now: the file's, loaded again if it changed."""
        if self._stamp_now() == self._stamp:
            return self._key
        with self._lock:
            stamp = self._stamp_now()
            if stamp != self._stamp and stamp[0] is not None:
                self._key = self._load()
            self._stamp = stamp
            return self._key

    def _load(self) -> SigningKey:
        key = SigningKey.from_pem(read_secret_file(self.path), str(self.path))
        key.retired = load_retired(self._retired_dir, current=key.kid)
        return key

    def _stamp_now(self) -> tuple[tuple[int, bytes] | None, tuple[str, ...]]:
        return _contents(self.path), _listing(self._retired_dir)


def _contents(path: Path) -> tuple[int, bytes] | None:
    """A file's mode and the SHA-256 of its bytes, or None if there is none (a change
    between the two reads only makes the next comparison load it again)."""
    try:
        return path.stat().st_mode, hashlib.sha256(path.read_bytes()).digest()
    except FileNotFoundError:
        return None


def _listing(directory: Path) -> tuple[str, ...]:
    """The names in a folder, sorted (none if it does not exist)."""
    try:
        return tuple(sorted(os.listdir(directory)))
    except FileNotFoundError:
        return ()


def load_retired(directory: Path, *, current: str = "") -> tuple[VerifyingKey, ...]:
    """The retired public keys in ``directory`` (none if it does not exist), newest first.

    Each file is named after its key's ``kid``; a file whose key has another thumbprint,
    or that holds no Ed25519 public key, is refused (InvalidKeyMaterial) rather than
    published. The current key, retired by a rotation cut short, is left out.
    """
    if not directory.is_dir():
        return ()
    found = []
    for path in directory.glob("*.pem"):
        where = str(path)
        try:
            pem, retired_at = read_secret_file(path), path.stat().st_mtime_ns
        except FileNotFoundError:
            continue  # Withdrawn since the folder was listed.
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError):
            raise InvalidKeyMaterial(f"{where}: not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidKeyMaterial(f"{where}: not an Ed25519 key")
        retired = VerifyingKey(key)
        if retired.kid != path.stem:
            raise InvalidKeyMaterial(f"{where}: the key's id is {retired.kid}, not its name")
        if retired.kid != current:
            found.append((retired_at, retired))
    found.sort(key=lambda pair: (-pair[0], pair[1].kid))
    return tuple(retired for _, retired in found)


ROTATION_MARK = ".signing-rotation.json"
"""Beside the key while a rotation is under way: the key it retires, and whether that key
is to be withdrawn (compromised) rather than published."""


@dataclass(frozen=True)
class SigningRotation:
    """What a signing-key rotation did."""

    retired: str
    current: str
    published: bool
    #: True when this run only finished a rotation cut short: it made no new key.
    finished_earlier: bool = False


def rotate_signing_key(keys_dir: Path, *, publish_old: bool = True) -> SigningRotation:
    """Replace the signing key under ``keys_dir`` with a new one.

    The caller holds the rotation lock, and calls :func:`finish_signing_rotation` once the
    rotation is recorded. A mark names the key being retired and whether it is withdrawn
    (``publish_old`` False: a key that leaked is not vouched for any more; a run cut short
    stays withdrawn whatever the next run says). The old key's public half is written to
    ``signing-retired/<kid>.pem`` (or removed from there, if withdrawn); the old key file
    gets a second name beside it; the new key is renamed over the old name; and only then
    is the old key overwritten and removed. The key file's name never stands empty, so a
    process starting meanwhile finds one key or the other and never makes its own. Until
    the mark is cleared, running this again finishes the same rotation, never another.
    """
    path = keys_dir / SIGNING_FILE
    aside, mark = aside_path(path), keys_dir / ROTATION_MARK
    for each in (path, aside, mark):
        if each.is_symlink():
            raise InvalidKeyMaterial(f"{each} is a symbolic link: put the file itself there")
    retired_dir = keys_dir / RETIRED_DIR
    load_retired(retired_dir)  # A damaged directory stops the rotation before it starts.
    if not path.exists():
        raise InvalidKeyMaterial(f"no signing key at {path}: the server makes one on first run")
    current = SigningKey.from_pem(read_secret_file(path), str(path))
    state = _read_mark(mark) or {"retired": current.kid, "withdrawn": False}
    retired = str(state["retired"])
    if current.kid not in (retired, state.get("replacement")):
        raise InvalidKeyMaterial(
            f"{mark} is the mark of a rotation of {retired}, but the signing key is "
            f"{current.kid}: if the keys were restored from a backup, remove the mark"
        )
    state["withdrawn"] = bool(state["withdrawn"]) or not publish_old
    published = retired_dir / f"{retired}.pem"
    finishing = current.kid != retired  # The new key has the name already.
    pem = b""
    if not finishing:
        pem = _new_private_pem()
        state["replacement"] = SigningKey.from_pem(pem).kid
    replace_secret_file(mark, json.dumps(state).encode())
    if state["withdrawn"]:
        _withdraw(published)
    if not finishing:  # The old key still has the name: replace it.
        if not state["withdrawn"]:
            ensure_private_dir(retired_dir)
            with contextlib.suppress(FileExistsError):
                write_secret_file(published, current.public_pem())
        if aside.exists() and not os.path.samefile(aside, path):
            destroy_file(aside)  # Not this key's second name: left by something else.
        if not aside.exists():
            link_aside(path)
        replace_secret_file(path, pem)
        current = SigningKey.from_pem(read_secret_file(path), str(path))
    destroy_file(aside)  # Its only name now (or left zeroed by a run cut short).
    return SigningRotation(retired, current.kid, published.exists(), finishing)


def _withdraw(published: Path) -> None:
    """Stop publishing a retired key: its file leaves the published names (``*.pem``) in
    one rename, so a server reading the folder meanwhile finds it whole or not at all,
    and is then zeroed and removed (a run cut short in between is finished by the next)."""
    withdrawn = published.with_suffix(".withdrawn")
    with contextlib.suppress(FileNotFoundError):
        os.replace(published, withdrawn)
    destroy_file(withdrawn)


def finish_signing_rotation(keys_dir: Path) -> None:
    """Clear the mark of a rotation that is done and recorded."""
    destroy_file(keys_dir / ROTATION_MARK)


def signing_rotation_pending(keys_dir: Path) -> bool:
    """Whether a signing-key rotation was begun and not finished."""
    return (keys_dir / ROTATION_MARK).exists()


def _read_mark(mark: Path) -> dict[str, object] | None:
    if not mark.exists():
        return None
    try:
        state = json.loads(read_secret_file(mark))
    except ValueError:
        state = None
    kid = re.compile(r"[A-Za-z0-9_-]{43}")
    well_formed = (
        isinstance(state, dict)
        and isinstance(state.get("retired"), str)
        and kid.fullmatch(state["retired"]) is not None
        and isinstance(state.get("withdrawn"), bool)
        and (
            state.get("replacement") is None
            or (isinstance(state["replacement"], str) and kid.fullmatch(state["replacement"]))
        )
    )
    if not well_formed:
        raise InvalidKeyMaterial(f"{mark}: not the mark of a signing-key rotation")
    return dict(state)


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
