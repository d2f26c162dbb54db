"""Sealed field values open only with the right key, in the right place, unaltered."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys.envelope import Context, DataKey
from keys.errors import (
    DecryptionError,
    MisplacedCiphertext,
    TamperedCiphertext,
    UnsupportedFormat,
    WrongKey,
)

DEK = DataKey(bytes(range(32)))
HERE = Context("a" * 32, "email", 3)

contexts = st.builds(
    Context,
    vault_id=st.text("0123456789abcdef", min_size=32, max_size=32),
    field=st.sampled_from(["email", "given_name", "postal_address", "x-shoe-size"]),
    version=st.integers(min_value=1, max_value=10_000),
)


def _flip(sealed: str, index: int, bit: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    raw[index % len(raw)] ^= 1 << bit
    return base64.urlsafe_b64encode(bytes(raw)).decode()


@given(plaintext=st.binary(max_size=4096), context=contexts)
def test_sealed_value_opens_to_the_same_bytes(plaintext: bytes, context: Context) -> None:
    assert DEK.open(DEK.seal(plaintext, context), context) == plaintext


@given(
    plaintext=st.binary(max_size=256),
    index=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_flipped_bit_is_refused(plaintext: bytes, index: int, bit: int) -> None:
    tampered = _flip(DEK.seal(plaintext, HERE), index, bit)
    with pytest.raises(DecryptionError):
        DEK.open(tampered, HERE)


@given(plaintext=st.binary(max_size=256), index=st.integers(min_value=29), bit=st.integers(0, 7))
def test_flipped_body_bit_is_reported_as_tampering(plaintext: bytes, index: int, bit: int) -> None:
    sealed = DEK.seal(plaintext, HERE)
    body_len = len(base64.urlsafe_b64decode(sealed)) - 29
    tampered = _flip(sealed, 29 + (index - 29) % body_len, bit)
    with pytest.raises(TamperedCiphertext):
        DEK.open(tampered, HERE)


@given(plaintext=st.binary(max_size=256), source=contexts, target=contexts)
def test_value_moved_to_another_field_or_vault_is_misplaced(
    plaintext: bytes, source: Context, target: Context
) -> None:
    if source == target:
        return
    with pytest.raises(MisplacedCiphertext):
        DEK.open(DEK.seal(plaintext, source), target)


@given(plaintext=st.binary(max_size=256), other=st.binary(min_size=32, max_size=32))
def test_value_opened_with_another_key_is_wrong_key(plaintext: bytes, other: bytes) -> None:
    if other == bytes(range(32)):
        return
    with pytest.raises(WrongKey):
        DataKey(other).open(DEK.seal(plaintext, HERE), HERE)


def test_unknown_format_version_is_refused() -> None:
    raw = bytearray(base64.urlsafe_b64decode(DEK.seal(b"x", HERE)))
    raw[0] = 2
    with pytest.raises(UnsupportedFormat):
        DEK.open(base64.urlsafe_b64encode(bytes(raw)).decode(), HERE)


@pytest.mark.parametrize("junk", ["", "AA", "not base64 at all!", "é", "AQ=="])
def test_junk_is_refused_as_tampering(junk: str) -> None:
    with pytest.raises(TamperedCiphertext):
        DEK.open(junk, HERE)


def test_two_seals_of_one_value_differ() -> None:
    assert DEK.seal(b"same", HERE) != DEK.seal(b"same", HERE)


def test_custom_field_digest_depends_on_the_key() -> None:
    assert DEK.mac(b"x") != DataKey(bytes(32)).mac(b"x")
