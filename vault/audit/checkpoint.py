"""Signed checkpoints of the audit log, in the C2SP ``tlog-checkpoint`` signed-note format.

A checkpoint commits to the log's tree of ``size`` entries by its root hash. Its body is
three lines, each ending in ``"\\n"`` (https://c2sp.org/tlog-checkpoint)::

    <origin>
    <tree size, decimal, no leading zeros>
    <root hash, standard base64>

It is a signed note (https://c2sp.org/signed-note): the body, a blank line, then one line
per signature, ``"\\u2014 <key name> <base64(key hash || signature)>\\n"``. For Ed25519 the
signature covers the body bytes (with their final newline) and the key hash is the first
four bytes of ``SHA-256(key name || "\\n" || 0x01 || 32-byte public key)``. A verifier key
("vkey") is ``<key name>+<hex key hash>+<base64(0x01 || public key)>``.

Verification follows the signed-note rules: signatures by other keys are ignored, one by
the expected key (name and key hash) must be present, and one that fails rejects the note.
Every failure raises :class:`CheckpointError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from keys.signing import SigningKey
from vault.audit.errors import CheckpointError
from vault.audit.merkle import HASH_SIZE

ED25519_TYPE = 0x01
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space
_KEY_HASH_SIZE = 4
_ED25519_SIZE = 64
_PUBLIC_SIZE = 32
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
"""A tree size: a decimal number of at most 20 digits (a uint64, as C2SP says)."""
_MAX_SIGNATURES = 100


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key's name, its 4-byte key hash, and the signature."""

    key_name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint; ``extensions`` are any body lines after the root hash."""

    origin: str
    size: int
    root: bytes
    signatures: tuple[NoteSignature, ...]
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The signed text: origin, size, root and extension lines, each ending in newline."""
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def note_key_id(key_name: str, public_raw: bytes) -> bytes:
    """The 4-byte key hash of an Ed25519 note key: SHA-256(name \\n 0x01 key)[:4]."""
    _check_key_name(key_name)
    _check_public(public_raw)
    data = key_name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public_raw
    return hashlib.sha256(data).digest()[:_KEY_HASH_SIZE]


def verifier_key(key_name: str, public_raw: bytes) -> str:
    """The vkey string auditors are given: ``name+hexkeyhash+base64(0x01||key)``."""
    key_id = note_key_id(key_name, public_raw)
    return f"{key_name}+{key_id.hex()}+{_b64(bytes([ED25519_TYPE]) + public_raw)}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """The key name and raw public key of a vkey string; checks its key hash."""
    name, sep, rest = vkey.strip().partition("+")
    hex_id, sep2, encoded = rest.partition("+")
    if not (sep and sep2) or not name:
        raise CheckpointError("verifier key is not <name>+<key hash>+<key>")
    try:
        key_id = bytes.fromhex(hex_id)
        typed = _unb64(encoded)
    except (ValueError, CheckpointError):
        raise CheckpointError("verifier key: bad hex key hash or base64 key") from None
    if len(key_id) != _KEY_HASH_SIZE or len(hex_id) != 2 * _KEY_HASH_SIZE:
        raise CheckpointError("verifier key: the key hash is not 4 bytes")
    if len(typed) != 1 + _PUBLIC_SIZE or typed[0] != ED25519_TYPE:
        raise CheckpointError("verifier key: not an Ed25519 key")
    public_raw = typed[1:]
    if note_key_id(name, public_raw) != key_id:
        raise CheckpointError("verifier key: the key hash does not match the name and key")
    return name, public_raw


def sign_checkpoint(
    origin: str, size: int, root: bytes, signing_key: SigningKey, key_name: str
) -> str:
    """The signed note of the checkpoint of a tree of ``size`` entries with ``root``."""
    _check_origin(origin)
    if size < 0:
        raise CheckpointError(f"tree size {size} is negative")
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"root hash is {len(root)} bytes, not {HASH_SIZE}")
    body = Checkpoint(origin, size, root, ()).body()
    signature = signing_key.sign(body.encode("utf-8"))
    key_id = note_key_id(key_name, signing_key.public_raw())
    return f"{body}\n{SIGNATURE_PREFIX}{key_name} {_b64(key_id + signature)}\n"


def split_note(text: str) -> tuple[str, tuple[NoteSignature, ...]]:
    """A signed note's body (with its final newline) and its signature lines, unchecked."""
    if not text.endswith("\n"):
        raise CheckpointError("signed note does not end in a newline")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise CheckpointError("signed note has no blank line before its signatures")
    body, block = text[: cut + 1], text[cut + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise CheckpointError("signed note has no signature lines")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointError(f"signed note has more than {_MAX_SIGNATURES} signatures")
    return body, tuple(_parse_signature(line) for line in lines)


def open_note(text: str, public_raw: bytes, key_name: str) -> str:
    """The body of a signed note once its signature by ``key_name`` checks out."""
    body, signatures = split_note(text)
    _check_signed(body, signatures, public_raw, key_name)
    return body


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a signed checkpoint without checking its signatures."""
    body, signatures = split_note(text)
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint body has fewer than three lines")
    origin, size_text, root_text, *extensions = lines
    _check_origin(origin)
    if not _DECIMAL.fullmatch(size_text):
        raise CheckpointError(f"checkpoint tree size {size_text!r} is not a decimal number")
    root = _unb64(root_text)
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root hash is {len(root)} bytes, not {HASH_SIZE}")
    if any(not line for line in extensions):
        raise CheckpointError("checkpoint has an empty extension line")
    return Checkpoint(origin, int(size_text), root, signatures, tuple(extensions))


#: One raw Ed25519 public key, or several (the current one and those retired before it).
PublicKeys = bytes | Sequence[bytes]


def verify_checkpoint(text: str, public_key_raw: PublicKeys, key_name: str) -> Checkpoint:
    """Parse a checkpoint and check its signature by ``key_name``; CheckpointError if not.

    With several keys, a signature by any of them will do: every signature on the note by
    one of them must verify.
    """
    checkpoint = parse_checkpoint(text)
    body, signatures = split_note(text)
    _check_signed(body, signatures, public_key_raw, key_name)
    return checkpoint


def _check_signed(
    body: str, signatures: tuple[NoteSignature, ...], public_keys: PublicKeys, key_name: str
) -> None:
    raws = [public_keys] if isinstance(public_keys, bytes) else list(public_keys)
    by_id = {note_key_id(key_name, raw): raw for raw in raws}
    mine = [s for s in signatures if s.key_name == key_name and s.key_id in by_id]
    if not mine:
        raise CheckpointError(f"no signature by key {key_name!r} on the note")
    for each in mine:
        if len(each.signature) != _ED25519_SIZE:
            raise CheckpointError(f"signature by {key_name!r} is not an Ed25519 signature")
        try:
            public = Ed25519PublicKey.from_public_bytes(by_id[each.key_id])
            public.verify(each.signature, body.encode("utf-8"))
        except InvalidSignature:
            raise CheckpointError(f"signature by {key_name!r} does not verify") from None


def _parse_signature(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise CheckpointError("signature line does not start with an em dash and a space")
    name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or not name or " " in encoded:
        raise CheckpointError("signature line is not '\u2014 <name> <signature>'")
    raw = _unb64(encoded)
    if len(raw) <= _KEY_HASH_SIZE:
        raise CheckpointError("signature is too short to hold a key hash")
    return NoteSignature(name, raw[:_KEY_HASH_SIZE], raw[_KEY_HASH_SIZE:])


def _check_key_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise CheckpointError(f"key name {name!r} is empty or holds '+' or whitespace")


def _check_public(public_raw: bytes) -> None:
    if len(public_raw) != _PUBLIC_SIZE:
        raise CheckpointError(f"Ed25519 public key is {len(public_raw)} bytes, not 32")


def _check_origin(origin: str) -> None:
    if not origin or "\n" in origin:
        raise CheckpointError("checkpoint origin is empty or holds a newline")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise CheckpointError(f"{text[:20]!r} is not standard base64") from None
