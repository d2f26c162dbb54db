"""Key providers, envelope encryption and signing keys.

``open_keys`` is the one entry point: it loads (creating on first run) every key a server
needs from ``<data>/keys/``, refusing any key file that others could read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from keys.envelope import Context, DataKey
from keys.errors import InsecureKeyFile, KeyringError
from keys.files import check_private, ensure_private_dir, load_or_create_key
from keys.keyring import EnvKekSource, FileKekSource, KekSource, Keyring, WrappedKey
from keys.signing import (
    SIGNING_FILE,
    SigningKey,
    SigningKeyFile,
    SigningKeys,
    finish_signing_rotation,
    rotate_signing_key,
    signing_rotation_pending,
)

__all__ = [
    "Context",
    "DataKey",
    "InsecureKeyFile",
    "KeySet",
    "Keyring",
    "KeyringError",
    "SigningKey",
    "SigningKeyFile",
    "SigningKeys",
    "WrappedKey",
    "finish_signing_rotation",
    "open_keys",
    "rotate_signing_key",
    "signing_rotation_pending",
]


@dataclass(frozen=True)
class KeySet:
    """Every key the server uses."""

    keyring: Keyring
    #: Follows rotations: take ``signing.current()`` for each thing to sign.
    signing: SigningKeyFile
    index_key: bytes
    session_key: bytes
    token_key: bytes


def open_keys(keys_dir: Path, *, kek: str | None = None) -> KeySet:
    """Load the keys under ``keys_dir``, creating missing ones with mode 0600.

    ``kek`` is the value of ``VRM_KEK`` if the operator set it; the KEK files are then not
    used. Raises InsecureKeyFile if any key file is readable by group or others.
    """
    ensure_private_dir(keys_dir)
    check_key_dir(keys_dir)
    source: KekSource = EnvKekSource(kek) if kek else FileKekSource(keys_dir / "kek")
    return KeySet(
        keyring=Keyring(source),
        signing=SigningKeyFile(keys_dir / SIGNING_FILE),
        index_key=load_or_create_key(keys_dir / "index.key"),
        session_key=load_or_create_key(keys_dir / "session.key"),
        token_key=load_or_create_key(keys_dir / "token.key"),
    )


def check_key_dir(keys_dir: Path) -> None:
    """Raise InsecureKeyFile for the first key file that group or others can read."""
    for path in sorted(keys_dir.rglob("*")):
        try:
            if path.is_file():
                check_private(path)
        except FileNotFoundError:  # Removed since it was listed (a key being retired).
            continue
