"""Key files, the versioned KEK keyring, wrapping of data keys, and the signing key."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import OKPKey

from keys import DataKey, Keyring, check_key_dir, files, open_keys
from keys.errors import (
    InsecureKeyDirectory,
    InsecureKeyFile,
    InvalidKeyMaterial,
    KeyringError,
    TamperedCiphertext,
    UnknownKeyVersion,
    WrongKey,
)
from keys.keyring import EnvKekSource, FileKekSource

VAULT = "0" * 32


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_creates_every_key_owner_only(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    open_keys(keys_dir)
    files = [p for p in keys_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {
        "v1.key",
        "signing-ed25519.pem",
        "index.key",
        "session.key",
        "token.key",
    }
    assert all(_mode(p) == 0o600 for p in files)
    assert _mode(keys_dir) == 0o700


def test_keys_survive_a_restart(tmp_path: Path) -> None:
    first = open_keys(tmp_path / "keys")
    second = open_keys(tmp_path / "keys")
    assert first.index_key == second.index_key
    assert first.signing.current().kid == second.signing.current().kid
    wrapped = first.keyring.wrap(DataKey(bytes(32)), VAULT)
    assert second.keyring.unwrap(wrapped, VAULT).raw == bytes(32)


@pytest.mark.parametrize("name", ["kek/v1.key", "index.key", "signing-ed25519.pem"])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, name: str) -> None:
    open_keys(tmp_path / "keys")
    path = tmp_path / "keys" / name
    path.chmod(0o644)
    with pytest.raises(InsecureKeyFile) as caught:
        open_keys(tmp_path / "keys")
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "chmod 600" in message


def test_a_key_file_removed_while_the_directory_is_checked_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_keys(tmp_path / "keys")
    gone = tmp_path / "keys" / "kek" / ".v1.key.destroy"
    gone.write_bytes(b"k")
    gone.chmod(0o600)
    real_is_file = Path.is_file

    def is_file(path: Path) -> bool:
        found = real_is_file(path)
        if path == gone:
            path.unlink()  # A rotation destroys it between the listing and the check.
        return found

    monkeypatch.setattr(Path, "is_file", is_file)
    check_key_dir(tmp_path / "keys")

    assert not gone.exists()


def test_wrapped_key_opens_only_for_its_vault(tmp_path: Path) -> None:
    keyring = Keyring(FileKekSource(tmp_path / "kek"))
    wrapped = keyring.wrap(DataKey(os.urandom(32)), VAULT)
    with pytest.raises(TamperedCiphertext):
        keyring.unwrap(wrapped, "1" * 32)


def test_wrapped_key_under_another_kek_is_wrong_key() -> None:
    mine = Keyring(EnvKekSource(_b64(b"a" * 32)))
    theirs = Keyring(EnvKekSource(_b64(b"b" * 32)))
    with pytest.raises(WrongKey):
        theirs.unwrap(mine.wrap(DataKey(bytes(32)), VAULT), VAULT)


def test_new_version_becomes_current_and_old_still_unwraps(tmp_path: Path) -> None:
    keyring = Keyring(FileKekSource(tmp_path / "kek"))
    old = keyring.wrap(DataKey(bytes(32)), VAULT)
    keyring.source.add_version()
    assert keyring.current_version() == 2
    new = keyring.rewrap(old, VAULT)
    assert new.kek_version == 2
    assert keyring.unwrap(old, VAULT).raw == keyring.unwrap(new, VAULT).raw


def test_retired_version_cannot_unwrap(tmp_path: Path) -> None:
    source = FileKekSource(tmp_path / "kek")
    keyring = Keyring(source)
    old = keyring.wrap(DataKey(bytes(32)), VAULT)
    source.add_version()
    source.retire(1)
    assert not (tmp_path / "kek" / "v1.key").exists()
    with pytest.raises(UnknownKeyVersion):
        Keyring(source).unwrap(old, VAULT)


def two_versions(directory: Path) -> FileKekSource:
    """KEK files in ``directory`` holding versions 1 and 2."""
    source = FileKekSource(directory)
    source.add_version()
    source.add_version()
    return source


def test_retiring_sets_the_key_aside_until_it_is_destroyed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "kek"
    source = two_versions(directory)
    raw = source.load(1)

    assert source.retire(1)

    assert source.versions() == [2]
    with pytest.raises(UnknownKeyVersion):
        source.load(1)
    assert source.retiring() == {1: raw}
    assert FileKekSource(directory).retiring() == {1: raw}  # An open leaves it be.
    aside = directory / ".v1.key.destroy"
    seen: list[bytes] = []
    real_unlink = Path.unlink

    def unlink(path: Path, missing_ok: bool = False) -> None:
        seen.append(path.read_bytes())
        real_unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    source.destroy_retired(1)

    assert seen == [bytes(len(seen[0]))]
    assert len(seen[0]) > 0
    assert not aside.exists()
    assert source.retiring() == {}
    source.destroy_retired(1)  # Nothing left: nothing to do.
    assert sorted(p.name for p in directory.iterdir()) == ["v2.key"]


def test_setting_aside_and_destroying_are_each_made_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "kek"
    source = two_versions(directory)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    source.retire(1)
    assert synced == ["kek"]
    synced.clear()

    source.destroy_retired(1)
    assert synced == [".v1.key.destroy", "kek"]


def test_a_key_set_aside_and_partly_zeroed_reads_as_no_key(tmp_path: Path) -> None:
    directory = tmp_path / "kek"
    source = two_versions(directory)
    source.retire(1)
    aside = directory / ".v1.key.destroy"
    aside.write_bytes(b"\0" * 10 + aside.read_bytes()[10:])

    assert source.retiring() == {1: None}


def test_destroying_a_key_file_never_follows_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"not a key")
    link = tmp_path / ".v1.key.destroy"
    link.symlink_to(target)

    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        files.destroy_file(link)

    assert target.read_bytes() == b"not a key"


def test_env_kek_takes_one_key_or_a_versioned_list() -> None:
    assert EnvKekSource(_b64(bytes(32))).versions() == [1]
    source = EnvKekSource(f"1:{_b64(bytes(32))}, 3:{_b64(b'c' * 32)}")
    assert source.versions() == [1, 3]
    assert Keyring(source).current_version() == 3


@pytest.mark.parametrize(
    "value",
    [
        "",
        "short",
        _b64(b"x" * 16),
        f"0:{_b64(bytes(32))}",
        f"1:{_b64(bytes(32))},1:{_b64(bytes(32))}",
        f"\u00b2:{_b64(bytes(32))}",
        f"\u0661:{_b64(bytes(32))}",
        f"4294967296:{_b64(bytes(32))}",
        f"1:{_b64(b'k' * 32)},2:{_b64(b'k' * 32)}",
    ],
    ids=[
        "empty",
        "short",
        "16-bytes",
        "version-0",
        "repeated-version",
        "superscript-digit",
        "arabic-indic-digit",
        "version-too-large",
        "repeated-key",
    ],
)
def test_malformed_env_kek_is_refused(value: str) -> None:
    with pytest.raises(InvalidKeyMaterial):
        EnvKekSource(value)


def test_env_kek_cannot_add_versions_itself() -> None:
    with pytest.raises(KeyringError, match="VRM_KEK"):
        EnvKekSource(_b64(bytes(32))).add_version()


def test_signing_key_jwks_verifies_its_signatures(tmp_path: Path) -> None:
    signing = open_keys(tmp_path / "keys").signing.current()
    jwks = signing.jwks()
    (public,) = jwks["keys"]
    assert public["kid"] == signing.kid
    assert public["alg"] == "Ed25519"
    assert "d" not in public
    token = jws.serialize_compact(
        {"alg": "Ed25519", "kid": signing.kid}, b'{"ok":true}', signing.jwk, algorithms=["Ed25519"]
    )
    verified = jws.deserialize_compact(
        token, OKPKey.import_key(json.loads(json.dumps(public))), algorithms=["Ed25519"]
    )
    assert verified.payload == b'{"ok":true}'


def test_a_key_directory_that_is_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    keys_dir = tmp_path / "keys"
    keys_dir.symlink_to(elsewhere)
    with pytest.raises(InsecureKeyDirectory, match="symbolic link"):
        files.ensure_private_dir(keys_dir)
    assert list(elsewhere.iterdir()) == []


def test_a_key_directory_others_may_open_is_made_private(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o755)
    keys_dir.chmod(0o777)
    files.ensure_private_dir(keys_dir)
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700


def test_a_secret_file_leaves_no_temporary_file(tmp_path: Path) -> None:
    files.write_secret_file(tmp_path / "k" / "token.key", b"secret")
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["token.key"]
