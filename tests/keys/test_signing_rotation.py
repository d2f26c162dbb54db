"""Rotating the server's signing key: what the old key signed still verifies."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from keys import (
    finish_signing_rotation,
    open_keys,
    rotate_signing_key,
    signing_rotation_pending,
)
from keys import signing as signing_module
from keys.errors import InsecureKeyFile, InvalidKeyMaterial, RotationRunning
from keys.files import aside_path, link_aside, replace_secret_file
from keys.signing import RETIRED_DIR, ROTATION_MARK, SIGNING_FILE, SigningKey
from tests.conftest import (
    PASSWORD,
    FakeClock,
    ListSink,
    command_environment,
    email_grant,
    make_app,
)
from vault.audit import parse_checkpoint, verifier_key, verify_checkpoint
from vault.receipts import InvalidReceipt, verify_receipt
from vrm.cli import cli
from vrm.services import Services, build_services

EMAIL = "ada@example.org"


@contextmanager
def opened_services(config: dict[str, Any]) -> Iterator[Services]:
    services = build_services(config, clock=FakeClock(), events=ListSink())
    try:
        yield services
    finally:
        services.close()


def give_a_grant(services: Services) -> str:
    """A grant's receipt (a JWS signed by the current key)."""
    grant = email_grant(services, services.vaults.sign_up(EMAIL, PASSWORD))
    return grant.receipts[-1].jws


def test_a_rotation_retires_the_key_and_keeps_it_published(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    before = open_keys(keys_dir).signing.current()

    done = rotate_signing_key(keys_dir)
    old, new = done.retired, done.current
    assert done.published
    assert signing_rotation_pending(keys_dir)  # Until the rotation is logged.
    finish_signing_rotation(keys_dir)
    assert not signing_rotation_pending(keys_dir)

    after = open_keys(keys_dir).signing.current()
    assert (old, new) == (before.kid, after.kid)
    assert new != old
    assert [key.kid for key in after.retired] == [old]
    assert [key["kid"] for key in after.jwks()["keys"]] == [new, old]
    assert all("d" not in key for key in after.jwks()["keys"])
    retired_file = keys_dir / RETIRED_DIR / f"{old}.pem"
    assert stat.S_IMODE(retired_file.stat().st_mode) == 0o600
    assert b"PRIVATE" not in retired_file.read_bytes()
    assert not aside_path(keys_dir / SIGNING_FILE).exists()


def test_what_the_old_key_signed_still_verifies_and_new_receipts_use_the_new_key(
    config: dict[str, Any],
) -> None:
    with opened_services(config) as services:
        old_receipt = give_a_grant(services)
        old_kid = services.keys.signing.current().kid
    rotate_signing_key(Path(config["DATA"]) / "keys")

    with opened_services(config) as services:
        jwks = services.keys.signing.current().jwks()
        assert verify_receipt(old_receipt, jwks)["piiPrincipalId"]
        vault_id = services.vaults.authenticate(EMAIL, PASSWORD)
        (grant,) = services.consents.grants(vault_id)
        services.consents.remove_field(vault_id, grant.grant_id, "email")
        (grant,) = services.consents.grants(vault_id)
        newest = grant.receipts[-1].jws
        verify_receipt(newest, jwks)
        assert services.keys.signing.current().kid != old_kid
        # A receipt of the new key does not verify against the old key alone.
        with pytest.raises(InvalidReceipt):
            verify_receipt(newest, {"keys": [jwks["keys"][1]]})


def test_checkpoints_are_signed_anew_by_the_new_key(config: dict[str, Any]) -> None:
    with opened_services(config) as services:
        give_a_grant(services)
        old_note = services.checkpoints.sign()
        old_raw = services.keys.signing.current().public_raw()
    rotate_signing_key(Path(config["DATA"]) / "keys")

    with opened_services(config) as services:
        origin = services.checkpoints.origin
        assert services.checkpoints.latest() is None  # The last note is the old key's.
        note = services.checkpoints.sign()
        assert note != old_note
        assert parse_checkpoint(note).size == parse_checkpoint(old_note).size
        verify_checkpoint(note, services.keys.signing.current().public_raw(), origin)
        both = (services.keys.signing.current().public_raw(), old_raw)
        verify_checkpoint(old_note, both, origin)
        verify_checkpoint(note, both, origin)
        assert services.checkpoints.latest() == note


def kid_of(compact: str) -> str:
    header = compact.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def narrow_the_grant(services: Services) -> str:
    """The receipt of a change to the grant give_a_grant made, signed now."""
    vault_id = services.vaults.authenticate(EMAIL, PASSWORD)
    (grant,) = services.consents.grants(vault_id)
    services.consents.remove_field(vault_id, grant.grant_id, "email")
    (grant,) = services.consents.grants(vault_id)
    return grant.receipts[-1].jws


def test_a_running_server_signs_with_the_new_key_from_its_next_signature(
    config: dict[str, Any],
) -> None:
    with opened_services(config) as services:
        old_receipt = give_a_grant(services)
        old_note = services.checkpoints.sign()
        old = services.keys.signing.current()
        # As `vrm keys rotate-signing` does beside a running server: the server is not
        # opened again.
        done = rotate_signing_key(Path(config["DATA"]) / "keys")
        finish_signing_rotation(Path(config["DATA"]) / "keys")

        now = services.keys.signing.current()
        assert now.kid == done.current != old.kid
        jwks = now.jwks()
        assert [key["kid"] for key in jwks["keys"]] == [done.current, old.kid]
        verify_receipt(old_receipt, jwks)
        newest = narrow_the_grant(services)
        assert kid_of(newest) == done.current
        verify_receipt(newest, {"keys": [jwks["keys"][0]]})
        assert services.checkpoints.latest() is None  # The last note is the old key's.
        note = services.checkpoints.sign()
        assert note != old_note
        verify_checkpoint(note, now.public_raw(), services.checkpoints.origin)


def test_a_running_server_stops_using_and_publishing_a_compromised_key(
    config: dict[str, Any],
) -> None:
    with opened_services(config) as services:
        old_receipt = give_a_grant(services)
        leaked = services.keys.signing.current().kid
        done = rotate_signing_key(Path(config["DATA"]) / "keys", publish_old=False)

        jwks = services.keys.signing.current().jwks()
        assert [key["kid"] for key in jwks["keys"]] == [done.current]
        with pytest.raises(InvalidReceipt):
            verify_receipt(old_receipt, jwks)
        assert kid_of(narrow_the_grant(services)) == done.current != leaked


def test_a_retired_key_deleted_by_hand_is_withdrawn_from_a_running_server(
    config: dict[str, Any],
) -> None:
    with opened_services(config) as services:
        old = services.keys.signing.current().kid
        rotate_signing_key(Path(config["DATA"]) / "keys")
        assert len(services.keys.signing.current().jwks()["keys"]) == 2
        (Path(config["DATA"]) / "keys" / RETIRED_DIR / f"{old}.pem").unlink()
        kids = [key["kid"] for key in services.keys.signing.current().jwks()["keys"]]
        assert old not in kids
        assert len(kids) == 1


def test_jwks_of_a_running_app_follows_the_rotation_command(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(config, FakeClock(), ListSink())
    client = app.test_client()
    before = client.get("/jwks.json").get_json()["keys"]
    command_environment(Path(config["DATA"]), monkeypatch)
    rotated = vrm("keys", "rotate-signing", "--compromised")
    assert rotated.exit_code == 0, rotated.output
    after = client.get("/jwks.json").get_json()["keys"]
    assert len(before) == len(after) == 1
    assert after[0]["kid"] != before[0]["kid"]
    assert after[0]["kid"] in rotated.output


def test_a_key_file_rewritten_in_place_with_its_times_kept_is_still_noticed(
    tmp_path: Path,
) -> None:
    keys_dir = tmp_path / "keys"
    signing = open_keys(keys_dir).signing
    path = keys_dir / SIGNING_FILE
    before, times = signing.current().kid, path.stat()
    other = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    assert len(other) == len(path.read_bytes())
    with path.open("r+b") as file:  # Same inode, same size.
        file.write(other)
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert signing.current().kid == SigningKey.from_pem(other).kid != before


def test_a_server_reading_the_keys_during_a_withdrawal_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_dir = tmp_path / "keys"
    signing = open_keys(keys_dir).signing
    first = rotate_signing_key(keys_dir)  # Published, but cut short before it was logged;
    assert [key.kid for key in signing.current().retired] == [first.retired]
    seen: list[list[str]] = []

    def zero_then_read_then_remove(path: Path) -> None:
        # The moment destroy_file leaves: the file zeroed, not yet removed.
        if path.exists():
            path.write_bytes(bytes(path.stat().st_size))
        seen.append([key.kid for key in signing.current().retired])
        path.unlink(missing_ok=True)

    monkeypatch.setattr(signing_module, "destroy_file", zero_then_read_then_remove)
    rotate_signing_key(keys_dir, publish_old=False)  # then finished as compromised.
    assert seen
    assert all(first.retired not in kids for kids in seen)
    assert signing.current().retired == ()


def test_a_key_file_gone_missing_leaves_the_key_in_use(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    signing = open_keys(keys_dir).signing
    kid = signing.current().kid
    (keys_dir / SIGNING_FILE).unlink()
    assert signing.current().kid == kid
    assert not (keys_dir / SIGNING_FILE).exists()  # Nothing was made in its place.


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: replace_secret_file(path, b"not a key"), id="not-a-key"),
        pytest.param(lambda path: path.chmod(0o644), id="readable-by-others"),
    ],
)
def test_a_key_file_that_cannot_be_used_stops_signing_until_it_is_put_right(
    tmp_path: Path, damage: Any
) -> None:
    keys_dir = tmp_path / "keys"
    signing = open_keys(keys_dir).signing
    path = keys_dir / SIGNING_FILE
    good = path.read_bytes()
    kid = signing.current().kid
    damage(path)
    with pytest.raises((InvalidKeyMaterial, InsecureKeyFile)):
        signing.current()
    with pytest.raises((InvalidKeyMaterial, InsecureKeyFile)):
        signing.current()  # Still refused: not the key it had before.
    replace_secret_file(path, good)
    assert signing.current().kid == kid


def test_a_rotation_cut_short_before_the_new_key_is_finished_by_the_next(
    tmp_path: Path,
) -> None:
    keys_dir = tmp_path / "keys"
    before = open_keys(keys_dir).signing.current().kid
    # The run stopped once the old key had its second name, the new one not yet written.
    link_aside(keys_dir / SIGNING_FILE)
    assert open_keys(keys_dir).signing.current().kid == before  # Meanwhile the key is still there.

    done = rotate_signing_key(keys_dir)
    old, new = done.retired, done.current

    assert old == before != new
    signing = open_keys(keys_dir).signing.current()
    assert (signing.kid, [key.kid for key in signing.retired]) == (new, [before])
    assert not aside_path(keys_dir / SIGNING_FILE).exists()


def test_a_rotation_cut_short_at_any_step_is_finished_without_another_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_dir = tmp_path / "keys"
    before = open_keys(keys_dir).signing.current().kid
    # Each step, by the function and which of its calls: the mark, the second name, the
    # new key, the old key's destruction.
    steps = [
        ("replace_secret_file", 1),
        ("link_aside", 1),
        ("replace_secret_file", 2),
        ("destroy_file", 1),
    ]
    for step, nth in steps:
        real = getattr(signing_module, step)
        calls = [0]

        def stop_after(
            *args: Any, real: Any = real, calls: list[int] = calls, nth: int = nth
        ) -> None:
            real(*args)
            calls[0] += 1
            if calls[0] == nth:
                raise KeyboardInterrupt  # Killed right after this step.

        with monkeypatch.context() as patch:
            patch.setattr(signing_module, step, stop_after)
            with pytest.raises(KeyboardInterrupt):
                rotate_signing_key(keys_dir)
        # A key under the name whatever the step; once it is the new one, the run that
        # finishes the rotation makes no other.
        under_the_name = open_keys(keys_dir).signing.current().kid
        done = rotate_signing_key(keys_dir)
        if (step, nth) in steps[2:]:
            assert done.current == under_the_name
        finish_signing_rotation(keys_dir)
        assert done.retired == before
        signing = open_keys(keys_dir).signing.current()
        assert signing.kid == done.current != before
        assert [key.kid for key in signing.retired] == [before]
        assert not aside_path(keys_dir / SIGNING_FILE).exists()
        # The next rotation is a new one, retiring this step's key.
        before = signing.kid
        for retired in (keys_dir / RETIRED_DIR).glob("*.pem"):
            retired.unlink()


def test_a_rotation_cut_short_while_zeroing_the_old_key_is_finished(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    before = open_keys(keys_dir).signing.current().kid
    done = rotate_signing_key(keys_dir)
    aside = aside_path(keys_dir / SIGNING_FILE)
    aside.write_bytes(bytes(119))  # Zeroed, not yet removed, and the mark still there.
    aside.chmod(0o600)
    again = rotate_signing_key(keys_dir)
    assert (again.retired, again.current) == (before, done.current)
    assert not aside.exists()


def test_a_rotation_left_unrecorded_is_finished_not_repeated_and_says_so(
    tmp_path: Path,
) -> None:
    keys_dir = tmp_path / "keys"
    first = open_keys(keys_dir).signing.current().kid
    done = rotate_signing_key(keys_dir)  # Its event never logged: the mark stays.
    again = rotate_signing_key(keys_dir, publish_old=False)
    assert (again.retired, again.current, again.finished_earlier) == (first, done.current, True)
    assert open_keys(keys_dir).signing.current().kid == done.current  # Still the key in use.


def test_a_mark_of_another_key_stops_the_rotation(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    open_keys(keys_dir)
    rotate_signing_key(keys_dir)
    # Keys restored from a backup, the mark of the rotation left behind.
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    replace_secret_file(keys_dir / SIGNING_FILE, pem)
    with pytest.raises(InvalidKeyMaterial, match="restored from a backup"):
        rotate_signing_key(keys_dir)
    assert open_keys(keys_dir).signing.current().kid == SigningKey.from_pem(pem).kid


@pytest.mark.parametrize(
    "mark",
    [
        {"retired": "../signing-ed25519", "withdrawn": True},
        {"retired": "A" * 43},
        {"retired": "A" * 43, "withdrawn": "yes"},
        ["A" * 43],
    ],
)
def test_a_mark_that_is_not_one_is_refused_before_anything_changes(
    tmp_path: Path, mark: object
) -> None:
    keys_dir = tmp_path / "keys"
    before = open_keys(keys_dir).signing.current().kid
    (keys_dir / RETIRED_DIR).mkdir(mode=0o700)
    replace_secret_file(keys_dir / ROTATION_MARK, json.dumps(mark).encode())
    with pytest.raises(InvalidKeyMaterial, match="not the mark"):
        rotate_signing_key(keys_dir)
    assert open_keys(keys_dir).signing.current().kid == before


def test_a_stale_second_name_of_another_key_is_not_taken_for_this_one(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    before = open_keys(keys_dir).signing.current().kid
    aside = aside_path(keys_dir / SIGNING_FILE)
    other = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    replace_secret_file(aside, other)  # Left by something else, not a link to the key.
    done = rotate_signing_key(keys_dir)
    assert done.retired == before
    assert not aside.exists()


def test_a_withdrawal_cut_short_stays_a_withdrawal(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    leaked = open_keys(keys_dir).signing.current().kid
    rotate_signing_key(keys_dir, publish_old=False)
    # Run again without --compromised: the leaked key is still not published.
    done = rotate_signing_key(keys_dir)
    assert (done.retired, done.published) == (leaked, False)
    assert open_keys(keys_dir).signing.current().retired == ()


def test_a_rotation_begun_published_and_finished_compromised_withdraws_the_key(
    tmp_path: Path,
) -> None:
    keys_dir = tmp_path / "keys"
    leaked = open_keys(keys_dir).signing.current().kid
    rotate_signing_key(keys_dir)
    done = rotate_signing_key(keys_dir, publish_old=False)
    assert (done.retired, done.published) == (leaked, False)
    assert open_keys(keys_dir).signing.current().retired == ()


def test_a_signing_key_file_that_is_a_link_is_not_rotated(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    open_keys(keys_dir)
    path = keys_dir / SIGNING_FILE
    real = tmp_path / "elsewhere.pem"
    path.rename(real)
    path.symlink_to(real)
    with pytest.raises(InvalidKeyMaterial, match="symbolic link"):
        rotate_signing_key(keys_dir)
    assert not aside_path(path).exists()
    assert not (keys_dir / RETIRED_DIR).exists()


def test_a_compromised_key_is_retired_without_being_published(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    open_keys(keys_dir)
    done = rotate_signing_key(keys_dir, publish_old=False)
    old, new = done.retired, done.current
    signing = open_keys(keys_dir).signing.current()
    assert signing.kid == new != old
    assert signing.retired == ()
    assert [key["kid"] for key in signing.jwks()["keys"]] == [new]


def test_a_retired_key_under_another_name_is_refused(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    open_keys(keys_dir)
    planted = Ed25519PrivateKey.generate().public_key()
    retired = keys_dir / RETIRED_DIR
    retired.mkdir(mode=0o700)
    path = retired / "not-its-kid.pem"
    path.write_bytes(planted.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    path.chmod(0o600)
    with pytest.raises(InvalidKeyMaterial, match="not its name"):
        open_keys(keys_dir)


def test_a_retired_file_that_holds_a_private_key_is_refused(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    signing = open_keys(keys_dir).signing.current()
    other = SigningKey(Ed25519PrivateKey.generate())
    retired = keys_dir / RETIRED_DIR
    retired.mkdir(mode=0o700)
    path = retired / f"{other.kid}.pem"
    path.write_bytes((keys_dir / SIGNING_FILE).read_bytes())
    path.chmod(0o600)
    assert signing.kid != other.kid
    with pytest.raises(InvalidKeyMaterial, match="not a PEM public key"):
        open_keys(keys_dir)


# The commands.


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    command_environment(data_dir, monkeypatch)
    assert vrm("customer", "create", "--email", EMAIL).exit_code == 0
    return data_dir


def vrm(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), input=PASSWORD + "\n", catch_exceptions=False)


def test_an_export_after_a_rotation_verifies_against_a_checkpoint_from_before(
    env: Path, tmp_path: Path
) -> None:
    old_key = tmp_path / "old.vkey"
    assert vrm("audit", "key", "--out", str(old_key)).exit_code == 0
    before = tmp_path / "before.checkpoint"
    before.write_text(vrm("audit", "checkpoint").stdout, "utf-8")

    rotated = vrm("keys", "rotate-signing")
    assert rotated.exit_code == 0, rotated.output
    assert "a running server signs with it from its next signature on" in rotated.output
    assert "retired signing key id" in vrm("keys", "status").output

    vrm("customer", "create", "--email", "later@example.org")
    keys = tmp_path / "all.vkey"
    assert vrm("audit", "key", "--all", "--out", str(keys)).exit_code == 0
    assert len(keys.read_text().splitlines()) == 2
    assert keys.read_text().splitlines()[1] == old_key.read_text().strip()
    out = tmp_path / "audit.jsonl"
    assert vrm("audit", "export", "--out", str(out)).exit_code == 0

    verified = vrm("audit", "verify", str(out), "--key", str(keys), "--previous", str(before))
    assert verified.exit_code == 0, verified.output
    new_key = tmp_path / "new.vkey"
    vrm("audit", "key", "--out", str(new_key))
    again = ("--key", str(new_key), "--key", str(old_key), "--previous", str(before))
    assert vrm("audit", "verify", str(out), *again).exit_code == 0
    # The current key alone cannot check the checkpoint the old key signed.
    alone = vrm("audit", "verify", str(out), "--key", str(new_key), "--previous", str(before))
    assert alone.exit_code == 1
    assert "the previous checkpoint is refused" in alone.stderr

    from vault.audit import AuditLog

    with AuditLog(env / "audit", sync="none") as log:
        (event,) = [e for e in log.entries() if e["type"] == "keys.signing_rotated"]
    assert event["actor"] == "operator"
    assert event["detail"]["retired"] != event["detail"]["current"]
    assert event["detail"]["published"] is True
    assert event["detail"]["log_size"] > 0


def test_verifier_keys_of_two_logs_are_refused(env: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.vkey"
    vrm("audit", "key", "--out", str(mine))
    other = tmp_path / "other.vkey"
    raw = SigningKey(Ed25519PrivateKey.generate()).public_raw()
    other.write_text(verifier_key("elsewhere.example/vrm-vault/audit", raw))
    out = tmp_path / "audit.jsonl"
    vrm("audit", "export", "--out", str(out))
    result = CliRunner().invoke(
        cli, ["audit", "verify", str(out), "--key", str(mine), "--key", str(other)]
    )
    assert result.exit_code == 1
    assert "name different logs" in result.output


def test_a_compromised_key_is_dropped_from_the_keys_auditors_are_given(env: Path) -> None:
    old = vrm("audit", "key").stdout
    rotated = vrm("keys", "rotate-signing", "--compromised")
    assert rotated.exit_code == 0
    assert "no longer published" in rotated.output
    assert vrm("audit", "key", "--all").stdout.splitlines() == [vrm("audit", "key").stdout.strip()]
    assert vrm("audit", "key").stdout != old


def test_a_signing_rotation_waits_for_no_other_rotation(env: Path) -> None:
    from vault.rotation import LOCK_NAME, one_rotation

    before = vrm("audit", "key").stdout
    with one_rotation(env / "keys" / LOCK_NAME):
        refused = CliRunner().invoke(cli, ["keys", "rotate-signing"])
    assert isinstance(refused.exception, RotationRunning)
    assert vrm("audit", "key").stdout == before
