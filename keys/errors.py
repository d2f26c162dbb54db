"""Errors raised by key handling and envelope encryption."""

from __future__ import annotations


class KeyringError(Exception):
    """Base class of every error raised by the keys package."""


class InsecureKeyFile(KeyringError):
    """A key file can be read by group or others; the server refuses to use it."""

    def __init__(self, path: str, mode: int) -> None:
        super().__init__(
            f"key file {path} has mode {mode:04o}; it must be readable by its owner only "
            f"(run: chmod 600 {path})"
        )
        self.path = path
        self.mode = mode


class InsecureKeyDirectory(KeyringError):
    """A directory that holds keys is a symbolic link or belongs to someone else."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path} {why}; keys must be kept in a directory of your own")
        self.path = path


class RotationRunning(KeyringError):
    """Another key rotation holds the rotation lock; two at once could retire a key in use."""

    def __init__(self, lock: str) -> None:
        super().__init__(
            f"another key rotation is running (it holds {lock}); wait for it to finish, "
            "then run this one again if it is still needed"
        )
        self.lock = lock


class MissingKeys(KeyringError):
    """The data directory holds stored data but no keys: new keys would leave it unreadable."""


class InvalidKeyMaterial(KeyringError):
    """A key (file or VRM_KEK) is not in the expected format."""


class UnknownKeyVersion(KeyringError):
    """Data is wrapped under a key version this keyring does not hold (retired or missing)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"key-encryption key version {version} is not available")
        self.version = version


class DecryptionError(KeyringError):
    """A ciphertext could not be decrypted; subclasses say why."""


class UnsupportedFormat(DecryptionError):
    """The ciphertext carries a format version this code does not read."""


class WrongKey(DecryptionError):
    """The ciphertext was made under a different key than the one offered."""


class MisplacedCiphertext(DecryptionError):
    """The ciphertext belongs to another vault, field or field version."""


class TamperedCiphertext(DecryptionError):
    """The ciphertext or its header was altered: authentication failed."""
