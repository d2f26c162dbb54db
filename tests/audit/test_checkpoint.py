"""Signed checkpoints: the C2SP tlog-checkpoint body in a C2SP signed note (Ed25519).

The fixed vector below is built by hand from the specifications' text, with an
independent computation of the key hash and signature; the published vector is the Go
``golang.org/x/mod/sumdb/note`` example the signed-note format comes from.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.signing import SigningKey
from vault.audit import (
    AuditError,
    CheckpointError,
    note_key_id,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
)
from vault.audit.checkpoint import open_note

SEED = bytes(range(32))
NAME = "example.org/vrm-vault/audit"
ROOT = hashlib.sha256(b"a root").digest()

# Published: the example note of golang.org/x/mod/sumdb/note (the signed-note origin).
GO_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
GO_NOTE = (
    "This is an example message.\n"
    "\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3"
    "mFXmRKuwHjG1Yu72IneyaQM=\n"
)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.from_private_bytes(SEED))


def test_fixed_vector_built_from_the_spec_text(key: SigningKey) -> None:
    public = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
    body = f"{NAME}\n1000\n{base64.b64encode(ROOT).decode()}\n".encode()
    key_hash = hashlib.sha256(NAME.encode() + b"\n" + b"\x01" + public).digest()[:4]
    signature = Ed25519PrivateKey.from_private_bytes(SEED).sign(body)
    expected = (
        body.decode()
        + "\n"
        + "\u2014 "
        + NAME
        + " "
        + base64.b64encode(key_hash + signature).decode()
        + "\n"
    )
    note = sign_checkpoint(NAME, 1000, ROOT, key, NAME)
    assert note == expected
    assert note.encode().count("\u2014".encode()) == 1
    assert "\u2014".encode() == b"\xe2\x80\x94"
    assert note_key_id(NAME, public) == key_hash
    assert verifier_key(NAME, public) == (
        NAME + "+" + key_hash.hex() + "+" + base64.b64encode(b"\x01" + public).decode()
    )


def test_published_go_vector_verifies() -> None:
    name, public = parse_verifier_key(GO_VKEY)
    assert name == "example.com/foo"
    assert note_key_id(name, public).hex() == "530d903a"
    assert verifier_key(name, public) == GO_VKEY
    assert open_note(GO_NOTE, public, name) == "This is an example message.\n"
    with pytest.raises(CheckpointError):
        open_note(GO_NOTE.replace("example message", "exemplary message"), public, name)


def test_round_trip(key: SigningKey) -> None:
    note = sign_checkpoint(NAME, 7, ROOT, key, NAME)
    checkpoint = verify_checkpoint(note, key.public_raw(), NAME)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (NAME, 7, ROOT)
    assert [s.key_name for s in checkpoint.signatures] == [NAME]
    assert checkpoint.signatures[0].key_id == note_key_id(NAME, key.public_raw())
    assert parse_checkpoint(note) == checkpoint
    assert checkpoint.body() == note.split("\n\n")[0] + "\n"


def test_empty_tree(key: SigningKey) -> None:
    empty = hashlib.sha256(b"").digest()
    checkpoint = verify_checkpoint(
        sign_checkpoint(NAME, 0, empty, key, NAME), key.public_raw(), NAME
    )
    assert checkpoint.size == 0


def test_wrong_key_is_refused(key: SigningKey) -> None:
    note = sign_checkpoint(NAME, 7, ROOT, key, NAME)
    other = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(32))).public_raw()
    with pytest.raises(CheckpointError, match="no signature"):
        verify_checkpoint(note, other, NAME)
    with pytest.raises(CheckpointError, match="no signature"):
        verify_checkpoint(note, key.public_raw(), "someone.else/log")


@pytest.mark.parametrize(
    ("old", "new"),
    [("\n7\n", "\n8\n"), (NAME + "\n", "evil.example/log\n")],
    ids=["size", "origin"],
)
def test_edited_body_is_refused(key: SigningKey, old: str, new: str) -> None:
    note = sign_checkpoint(NAME, 7, ROOT, key, NAME).replace(old, new, 1)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(note, key.public_raw(), NAME)


def test_edited_root_is_refused(key: SigningKey) -> None:
    note = sign_checkpoint(NAME, 7, ROOT, key, NAME)
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(
            note.replace(base64.b64encode(ROOT).decode(), other), key.public_raw(), NAME
        )


def test_signature_by_a_known_key_that_fails_rejects_even_with_a_good_one(key: SigningKey) -> None:
    note = sign_checkpoint(NAME, 7, ROOT, key, NAME)
    good_line = note.split("\n\n")[1]
    raw = bytearray(base64.b64decode(good_line.split(" ")[2]))
    raw[10] ^= 1
    bad_line = f"\u2014 {NAME} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(note + bad_line, key.public_raw(), NAME)


def test_unknown_signers_are_ignored(key: SigningKey) -> None:
    witness = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(32)))
    note = sign_checkpoint(NAME, 7, ROOT, key, NAME)
    cosigned = sign_checkpoint(NAME, 7, ROOT, witness, "witness.example")
    note += cosigned.split("\n\n")[1]
    checkpoint = verify_checkpoint(note, key.public_raw(), NAME)
    assert len(checkpoint.signatures) == 2
    assert verify_checkpoint(note, witness.public_raw(), "witness.example").size == 7


@pytest.mark.parametrize(
    "text",
    [
        "",
        "origin\n7\n",
        "origin\n7\nAAAA\n\n",
        "origin\n07\n{root}\n\n\u2014 n AAAAAAAA\n",
        "origin\n-7\n{root}\n\n\u2014 n AAAAAAAA\n",
        "origin\n7\nnot base64!\n\n\u2014 n AAAAAAAA\n",
        "origin\n7\nAAAA\n\n\u2014 n AAAAAAAA\n",
        "origin\n7\n{root}\n\n-- n AAAAAAAA\n",
        "origin\n7\n{root}\n\n\u2014 n AAAAAAAA",
        "\n7\n{root}\n\n\u2014 n AAAAAAAA\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(text.replace("{root}", base64.b64encode(ROOT).decode()))


def test_checkpoint_error_is_an_audit_error() -> None:
    assert issubclass(CheckpointError, AuditError)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "name+530d903a",
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+zz0d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(CheckpointError):
        parse_verifier_key(vkey)


def test_bad_names_and_origins_are_refused(key: SigningKey) -> None:
    with pytest.raises(CheckpointError):
        sign_checkpoint("two\nlines", 1, ROOT, key, NAME)
    with pytest.raises(CheckpointError):
        sign_checkpoint(NAME, 1, ROOT, key, "has space")
    with pytest.raises(CheckpointError):
        sign_checkpoint(NAME, 1, ROOT[:31], key, NAME)
    with pytest.raises(CheckpointError):
        sign_checkpoint(NAME, -1, ROOT, key, NAME)
