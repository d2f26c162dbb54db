"""The ``vrm`` command: every command explains itself, acts, and fails in one clear line."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from tests.conftest import FAST_ARGON2, PASSWORD
from vault.errors import ValidationError
from vault.storage.tinydb import FORMAT
from vrm.cli import cli, main

EMAIL = "ada@example.org"
GROUPS = [
    "serve",
    "customer",
    "profile",
    "vault",
    "keys",
    "audit",
    "grant",
    "vendor",
    "auditor",
    "webhooks",
    "store",
]
SUBCOMMANDS = {
    "customer": ["create"],
    "profile": ["set", "unset", "show"],
    "vault": ["export", "erase"],
    "keys": ["rotate", "rotate-signing", "status"],
    "audit": ["checkpoint", "key", "export", "verify"],
    "grant": ["list", "revoke", "expire"],
    "vendor": ["list", "disable"],
    "auditor": ["create", "remove", "revoke-tokens", "token"],
    "webhooks": ["deliver", "list"],
    "store": ["upgrade"],
}
COMMANDS = [[], *([g] for g in GROUPS), *([g, c] for g, cs in SUBCOMMANDS.items() for c in cs)]


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"VRM_DATA": str(data_dir)} | {f"VRM_{k}": str(v) for k, v in FAST_ARGON2.items()}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def vrm(*args: str, stdin: str = PASSWORD + "\n") -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def run_real(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "vrm.cli", *args], env, stdin)


def _run(command: list[str], env: dict[str, str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "vrm")
def test_every_command_explains_itself(command: list[str]) -> None:
    result = vrm(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output
    assert len(result.output.splitlines()) > 3


def listed_commands(help_text: str) -> list[str]:
    """The names in the ``Commands:`` section of a help text."""
    section = help_text.split("\nCommands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ")]


def every_command(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every group and command under ``group``."""
    found = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if isinstance(command, click.Group):
            found.extend(every_command(command, (*path, name)))
    return found


def test_top_level_help_lists_every_command() -> None:
    assert sorted(listed_commands(vrm("--help").output)) == sorted(GROUPS)


@pytest.mark.parametrize("group", SUBCOMMANDS)
def test_group_help_lists_every_subcommand(group: str) -> None:
    assert sorted(listed_commands(vrm(group, "--help").output)) == sorted(SUBCOMMANDS[group])


def test_every_command_that_exists_has_its_help_tested() -> None:
    assert sorted(every_command(cli)) == sorted(tuple(c) for c in COMMANDS if c)


def test_customer_sets_shows_exports_and_erases_their_vault(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert vrm("customer", "create", "--email", EMAIL).exit_code == 0
    result = vrm(
        "profile",
        "set",
        "--email",
        EMAIL,
        "given_name=Ada",
        'postal_address={"street":"12 St James\'s Square","locality":"London","country":"GB"}',
        'interests=["mathematics"]',
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(vrm("profile", "show", "--email", EMAIL).output)
    assert shown["given_name"] == "Ada"
    assert shown["postal_address"]["country"] == "GB"

    out = tmp_path / "export.json"
    assert vrm("vault", "export", "--email", EMAIL, "--out", str(out)).exit_code == 0
    assert (out.stat().st_mode & 0o777) == 0o600
    assert json.loads(out.read_text())["profile"]["interests"] == ["mathematics"]

    assert vrm("vault", "erase", "--email", EMAIL, "--yes").exit_code == 0
    assert main(["profile", "show", "--email", EMAIL]) == 1


def test_export_holds_the_access_history(env: dict[str, str], tmp_path: Path) -> None:
    from tests.test_erasure_and_export import record_vendor_requests
    from vrm.config import load_config
    from vrm.services import build_services

    vrm("customer", "create", "--email", EMAIL)
    services = build_services(load_config())
    try:
        expected = record_vendor_requests(services, services.vaults.authenticate(EMAIL, PASSWORD))
    finally:
        services.close()
    out = tmp_path / "export.json"
    assert vrm("vault", "export", "--email", EMAIL, "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text())["access_history"] == expected


def test_an_export_over_an_existing_file_or_link_is_private(
    env: dict[str, str], tmp_path: Path
) -> None:
    vrm("customer", "create", "--email", EMAIL)
    existing = tmp_path / "existing.json"
    existing.write_text("something else")
    existing.chmod(0o644)
    assert vrm("vault", "export", "--email", EMAIL, "--out", str(existing)).exit_code == 0
    assert (existing.stat().st_mode & 0o777) == 0o600
    assert "profile" in json.loads(existing.read_text())

    victim = tmp_path / "victim.txt"
    victim.write_text("not to be touched")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    assert vrm("vault", "export", "--email", EMAIL, "--out", str(link)).exit_code == 0
    assert victim.read_text() == "not to be touched"
    assert not link.is_symlink()
    assert (link.stat().st_mode & 0o777) == 0o600


def test_an_export_that_cannot_be_written_is_not_made(env: dict[str, str], tmp_path: Path) -> None:
    vrm("customer", "create", "--email", EMAIL)
    data = Path(env["VRM_DATA"])
    before = (data / "audit" / "entries.jsonl").read_text().count("vault.exported")
    with pytest.raises(FileNotFoundError):
        vrm("vault", "export", "--email", EMAIL, "--out", str(tmp_path / "no" / "x"))
    after = (data / "audit" / "entries.jsonl").read_text().count("vault.exported")
    assert after == before


def run_closed(
    env: dict[str, str], fd: int, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """The real command with descriptor ``fd`` closed, as a shell's ``N>&-`` does."""
    script = f'exec "$0" -m vrm.cli "$@" {fd}>&-'
    return _run(["sh", "-c", script, sys.executable, *args], env, stdin)


@pytest.mark.parametrize(
    "command",
    [
        ["profile", "show", "--email", EMAIL],
        ["vault", "export", "--email", EMAIL],
        ["vault", "erase", "--yes", "--email", EMAIL],
        ["customer", "create", "--email", "another@example.org"],
        ["auditor", "token", "--email", EMAIL],
    ],
    ids=" ".join,
)
def test_a_closed_standard_input_is_said_plainly(env: dict[str, str], command: list[str]) -> None:
    vrm("customer", "create", "--email", EMAIL)
    result = run_closed(env, 0, *command)
    assert result.returncode == 1, result.stderr
    assert result.stderr == "error: standard input is closed: give the password on its first line\n"


def test_erasing_with_a_closed_standard_input_asks_for_yes(env: dict[str, str]) -> None:
    vrm("customer", "create", "--email", EMAIL)
    result = run_closed(env, 0, "vault", "erase", "--email", EMAIL)
    assert result.returncode == 1
    assert result.stderr == "error: erasing cannot be undone: pass --yes to confirm\n"


def test_a_rotation_with_a_closed_standard_error_still_runs(env: dict[str, str]) -> None:
    vrm("customer", "create", "--email", EMAIL)
    result = run_closed(env, 2, "keys", "rotate")
    assert result.returncode == 0
    assert "rewrapped 1 data keys under version 2" in result.stdout


def test_an_export_to_a_closed_standard_output_is_refused_and_not_logged(
    env: dict[str, str],
) -> None:
    vrm("customer", "create", "--email", EMAIL)
    exported = run_closed(env, 1, "vault", "export", "--email", EMAIL, stdin=PASSWORD + "\n")
    assert exported.returncode == 1
    assert exported.stderr == "error: standard output is closed: use --out FILE\n"
    assert "vault.exported" not in audit_event_types(env)


def test_an_auditor_token_is_not_made_for_a_closed_standard_output(env: dict[str, str]) -> None:
    assert vrm("auditor", "create", "--email", "auditor@example.org").exit_code == 0
    args = ("auditor", "token", "--email", "auditor@example.org")
    result = run_closed(env, 1, *args, stdin=PASSWORD + "\n")
    assert result.returncode == 1
    assert result.stderr == "error: standard output is closed: the token would be lost\n"
    revoked = vrm("auditor", "revoke-tokens", "--email", "auditor@example.org")
    assert revoked.output == "revoked 0 tokens of auditor@example.org\n"


def test_profile_unset_and_history(env: dict[str, str]) -> None:
    vrm("customer", "create", "--email", EMAIL)
    vrm("profile", "set", "--email", EMAIL, "phone=+44 7700 900123")
    assert vrm("profile", "unset", "--email", EMAIL, "phone").exit_code == 0
    history = json.loads(vrm("profile", "show", "--email", EMAIL, "--history").output)
    assert [v["value"] for v in history["phone"]] == ["+447700900123", None]


def audit_event_types(env: dict[str, str]) -> list[str]:
    from vault.audit import AuditLog

    with AuditLog(Path(env["VRM_DATA"]) / "audit") as log:
        return [entry["type"] for entry in log.entries()]


def test_showing_the_history_records_no_export(env: dict[str, str], tmp_path: Path) -> None:
    vrm("customer", "create", "--email", EMAIL)
    vrm("profile", "set", "--email", EMAIL, "given_name=Ada")
    shown = json.loads(vrm("profile", "show", "--email", EMAIL, "--history").output)
    assert "vault.exported" not in audit_event_types(env)

    out = tmp_path / "export.json"
    assert vrm("vault", "export", "--email", EMAIL, "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text())["history"] == shown
    assert audit_event_types(env).count("vault.exported") == 1


def test_erase_without_a_terminal_needs_yes(env: dict[str, str]) -> None:
    vrm("customer", "create", "--email", EMAIL)
    result = CliRunner().invoke(cli, ["vault", "erase", "--email", EMAIL], input=PASSWORD + "\n")
    assert result.exit_code != 0
    assert "--yes" in result.output
    assert vrm("profile", "show", "--email", EMAIL).exit_code == 0


def test_keys_rotate_reports_progress_and_versions(env: dict[str, str]) -> None:
    for i in range(3):
        vrm("customer", "create", "--email", f"c{i}@example.org")
    result = vrm("keys", "rotate")
    assert result.exit_code == 0
    assert "rewrapped 3 data keys under version 2" in result.output
    assert "retired version 1" in result.output
    assert "rewrapping data keys: 3/3 (100%)" in result.output
    status = vrm("keys", "status").output
    assert "version 2 (current): 3 data keys" in status
    from vault.audit import AuditLog

    with AuditLog(Path(env["VRM_DATA"]) / "audit") as log:
        rotated = [e for e in log.entries() if e["type"] == "keys.rotated"]
    assert rotated[0]["detail"]["rewrapped"] == 3
    assert rotated[0]["actor"] == "operator"


def rotate_while_held(env: dict[str, str], lock: Path) -> subprocess.CompletedProcess[str]:
    """Run ``vrm keys rotate`` while this process holds the rotation lock at ``lock`` (as a
    running rotation would: flock conflicts between separate open files)."""
    held = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        return run_real(env, "keys", "rotate")
    finally:
        os.close(held)


def test_a_second_key_rotation_while_one_runs_stops_and_changes_nothing(
    env: dict[str, str],
) -> None:
    vrm("customer", "create", "--email", EMAIL)
    keys = Path(env["VRM_DATA"]) / "keys"
    assert run_real(env, "keys", "rotate").returncode == 0
    lock = keys / "rotation.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    before = sorted(path.name for path in keys.rglob("*"))
    refused = rotate_while_held(env, lock)

    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: another key rotation is running (it holds {lock}); wait for it to finish, "
        "then run this one again if it is still needed"
    )
    assert sorted(path.name for path in keys.rglob("*")) == before
    assert "version 2 (current): 1 data keys" in vrm("keys", "status").output

    rotated = run_real(env, "keys", "rotate")

    assert rotated.returncode == 0, rotated.stderr
    assert "rewrapped 1 data keys under version 3" in rotated.stdout
    assert "version 3 (current): 1 data keys" in vrm("keys", "status").output


def test_keys_status_and_rotate_tell_of_set_aside_versions_and_orphaned_keys(
    env: dict[str, str],
) -> None:
    from keys import DataKey
    from vault.datakeys import TABLE
    from vrm.config import load_config
    from vrm.services import build_services

    vrm("customer", "create", "--email", EMAIL)
    kek = Path(env["VRM_DATA"]) / "keys" / "kek"
    old_key = (kek / "v1.key").read_bytes()
    services = build_services(load_config())
    try:
        # Two sign-ups that wrapped their keys under version 1 just before a rotation.
        late, orphan = "0e" * 16, "0f" * 16
        records = {
            vault_id: services.keys.keyring.wrap(DataKey.generate(), vault_id).to_record()
            for vault_id in (late, orphan)
        }
        assert run_real(env, "keys", "rotate").returncode == 0
        # The first stored its key after that rotation's last scan, which was cut short
        # before it destroyed version 1 (here: the file put back where it was set aside).
        services.store.insert(TABLE, late, records[late])
        aside = kek / ".v1.key.destroy"
        aside.write_bytes(old_key)
        aside.chmod(0o600)

        status = vrm("keys", "status").output
        assert (
            "  version 1: set aside by a rotation that was cut short "
            "(run 'vrm keys rotate' to finish it), 1 data keys\n"
        ) in status
        finished = run_real(env, "keys", "rotate")
        assert finished.returncode == 0, finished.stderr
        assert "new key-encryption key version" not in finished.stdout
        assert "rewrapped 1 data keys under version 2" in finished.stdout
        assert "retired version 1: its key file was destroyed" in finished.stdout

        # The second died after storing its key, once version 1 was gone for good.
        services.store.insert(TABLE, orphan, records[orphan])
    finally:
        services.close()
    assert (
        "  version 1: gone; 1 data keys under it belong to no vault (a sign-up that failed "
        "part-way), 0 to vaults that cannot be opened\n"
    ) in vrm("keys", "status").output

    rotated = run_real(env, "keys", "rotate")

    assert rotated.returncode == 0, rotated.stderr
    assert "rewrapped 2 data keys under version 3" in rotated.stdout
    assert (
        "left 1 data keys under a version that is gone: they belong to no vault "
        "(a sign-up that failed part-way, or one still under way)"
    ) in rotated.stdout
    from vault.audit import AuditLog

    with AuditLog(Path(env["VRM_DATA"]) / "audit") as log:
        rotated_events = [e["detail"] for e in log.entries() if e["type"] == "keys.rotated"]
    assert [(d["retired"], d["orphaned"], d["unlinked"]) for d in rotated_events] == [
        ("1", 0, ""),
        ("1", 0, ""),
        ("2", 1, ""),
    ]


def test_a_rotation_that_would_lose_a_vault_says_so_and_changes_nothing(
    env: dict[str, str],
) -> None:
    from vault.audit import AuditLog
    from vault.datakeys import TABLE
    from vrm.config import load_config
    from vrm.services import build_services

    vrm("customer", "create", "--email", EMAIL)
    services = build_services(load_config())
    try:
        vault_id = services.vaults.authenticate(EMAIL, PASSWORD)
        lost = services.store.get(TABLE, vault_id)
        assert run_real(env, "keys", "rotate").returncode == 0
        services.store.update(TABLE, vault_id, lambda record: lost)  # Its v1 key, gone.
    finally:
        services.close()
    kek = Path(env["VRM_DATA"]) / "keys" / "kek"

    refused = run_real(env, "keys", "rotate")

    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: 1 vault(s) have their data key under key-encryption key version(s) 1, "
        f"which are gone or cannot be read, so they cannot be opened ({vault_id}); nothing "
        "was changed. Put that version back (its key file keys/kek/v<N>.key, mode 0600, "
        "from a backup, or its entry in VRM_KEK) and run again"
    )
    assert sorted(path.name for path in kek.iterdir()) == ["v2.key"]
    with AuditLog(Path(env["VRM_DATA"]) / "audit") as log:
        assert sum(e["type"] == "keys.rotated" for e in log.entries()) == 1
    assert (
        "  version 1: gone; 0 data keys under it belong to no vault (a sign-up that failed "
        "part-way), 1 to vaults that cannot be opened\n"
    ) in vrm("keys", "status").output


def test_keys_status_names_a_version_a_running_rotation_is_retiring(
    env: dict[str, str],
) -> None:
    vrm("customer", "create", "--email", EMAIL)
    kek = Path(env["VRM_DATA"]) / "keys" / "kek"
    assert run_real(env, "keys", "rotate").returncode == 0
    (kek / ".v1.key.destroy").write_bytes((kek / "v2.key").read_bytes())
    (kek / ".v1.key.destroy").chmod(0o600)
    lock = Path(env["VRM_DATA"]) / "keys" / "rotation.lock"
    held = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        status = vrm("keys", "status").output
    finally:
        os.close(held)

    assert "  version 1: being retired by the rotation running now, 0 data keys\n" in status
    assert "cut short" in vrm("keys", "status").output


def test_a_key_rotation_refused_for_the_lock_opens_nothing(
    env: dict[str, str], data_dir: Path
) -> None:
    keys = data_dir / "keys"
    keys.mkdir(parents=True, mode=0o700)
    lock = keys / "rotation.lock"
    refused = rotate_while_held(env, lock)

    assert refused.returncode == 1
    assert "another key rotation is running" in refused.stderr
    assert sorted(path.name for path in data_dir.rglob("*")) == ["keys", "rotation.lock"]


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["profile", "show", "--email", EMAIL], "wrong password!!\n", "email or password is wrong"),
        (["profile", "set", "--email", EMAIL, "birthdate=tomorrow"], PASSWORD + "\n", "birthdate"),
        (["profile", "set", "--email", EMAIL, "nonsense"], PASSWORD + "\n", "FIELD=VALUE"),
        (["profile", "set", "--email", EMAIL, "colour=blue"], PASSWORD + "\n", "colour"),
        (["customer", "create", "--email", EMAIL], PASSWORD + "\n", "exists already"),
        (["customer", "create", "--email", "b@example.org"], "", "standard input"),
    ],
)
def test_errors_are_one_line_without_traceback(
    env: dict[str, str], args: list[str], stdin: str, expected: str
) -> None:
    vrm("customer", "create", "--email", EMAIL)
    result = run_real(env, *args, stdin=stdin)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_serve_bounds_slow_and_large_requests(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import waitress
    from waitress.adjustments import Adjustments

    from vrm import worker

    seen: dict[str, Any] = {}
    monkeypatch.setattr(waitress, "serve", lambda app, **kwargs: seen.update(kwargs))
    monkeypatch.setattr(worker.Scheduler, "start", lambda self: [])
    assert vrm("serve", "--port", "0").exit_code == 0
    Adjustments(**seen)  # Every setting is one waitress knows.
    assert seen == {
        "host": "127.0.0.1",
        "port": 0,
        "ident": "vrm-vault",
        "max_request_body_size": 1024 * 1024,
        "max_request_header_size": 64 * 1024,
        "connection_limit": 400,
        "channel_timeout": 30,
        "cleanup_interval": 10,
    }


def test_server_refuses_to_start_with_a_readable_key_file(
    env: dict[str, str], data_dir: Path
) -> None:
    vrm("customer", "create", "--email", EMAIL)
    key = data_dir / "keys" / "kek" / "v1.key"
    key.chmod(0o640)
    result = run_real(env, "serve", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: key file {key} has mode 0640; it must be readable by its owner only "
        f"(run: chmod 600 {key})"
    ]


def test_a_store_of_an_earlier_format_is_refused_until_upgraded(
    env: dict[str, str], data_dir: Path
) -> None:
    vrm("customer", "create", "--email", EMAIL)
    marker = data_dir / "store" / "store.json"
    marker.write_text(json.dumps({"format": 1, "shards": 256}))

    result = run_real(env, "serve", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: the store at {data_dir / 'store'} has format 1, written by an earlier "
        "version of vrm-vault; stop every vrm process of that version, then run "
        "`vrm store upgrade`"
    ]
    shown = run_real(env, "profile", "show", "--email", EMAIL, stdin=PASSWORD + "\n")
    assert shown.returncode == 1
    assert "`vrm store upgrade`" in shown.stderr
    assert json.loads(marker.read_text())["format"] == 1

    upgraded = vrm("store", "upgrade")
    assert upgraded.output == (
        f"upgraded the store at {data_dir / 'store'} from format 1 to format {FORMAT}\n"
    )
    assert json.loads(vrm("profile", "show", "--email", EMAIL).output) == {"email": EMAIL}
    assert vrm("store", "upgrade").output == (
        f"the store at {data_dir / 'store'} is already at format {FORMAT}\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["vendor", "list"],
        ["keys", "status"],
        ["keys", "rotate"],
        ["keys", "rotate-signing"],
        ["audit", "checkpoint"],
        ["audit", "key"],
        ["grant", "expire"],
        ["webhooks", "deliver"],
        ["auditor", "remove", "--email", "a@example.org"],
    ],
)
def test_a_data_directory_without_a_vault_is_refused_and_left_as_it_was(
    env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    mistyped = tmp_path / "vrm-dta"
    result = run_real({**env, "VRM_DATA": str(mistyped)}, *command)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {mistyped} holds no vault (it has no keys folder): check --data or "
        "VRM_DATA (`vrm serve` or `vrm customer create` makes a vault there)\n"
    )
    assert not mistyped.exists()


@pytest.mark.parametrize("command", [["customer", "create", "--email", "b@example.org"], ["serve"]])
@pytest.mark.parametrize(
    ("moved", "lacking"),
    [
        ("keys", "index.key, signing-ed25519.pem, kek/"),
        ("keys/index.key", "index.key"),
        ("keys/kek", "kek/"),
    ],
)
def test_a_vault_whose_keys_are_missing_is_not_given_new_ones(
    env: dict[str, str], data_dir: Path, command: list[str], moved: str, lacking: str
) -> None:
    created = run_real(env, "customer", "create", "--email", "a@example.org", stdin=PASSWORD)
    assert created.returncode == 0
    (data_dir / moved).rename(data_dir.parent / "moved-elsewhere")
    result = run_real(env, *command, stdin=PASSWORD)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {data_dir} holds store and audit but its keys folder lacks {lacking}: put "
        "its keys back there (new keys would leave what it holds unreadable)\n"
    )
    assert not (data_dir / moved).exists()


def test_empty_store_and_audit_folders_made_beforehand_are_no_vault_to_protect(
    env: dict[str, str], data_dir: Path
) -> None:
    (data_dir / "store").mkdir(parents=True)
    (data_dir / "audit").mkdir()
    created = run_real(env, "customer", "create", "--email", "a@example.org", stdin=PASSWORD)
    assert created.returncode == 0, created.stderr


def test_upgrading_without_a_store_says_so_and_creates_nothing(
    env: dict[str, str], data_dir: Path
) -> None:
    result = run_real(env, "store", "upgrade")
    assert result.returncode == 1
    assert result.stderr == f"error: no store at {data_dir / 'store'} (no store.json)\n"
    assert not data_dir.exists()


def test_bad_environment_setting_is_named(env: dict[str, str]) -> None:
    result = run_real({**env, "VRM_PORT": "eighty"}, "keys", "status")
    assert result.returncode == 1
    assert result.stderr == "error: VRM_PORT must be a whole number, not 'eighty'\n"


def withdraw(grant_id: str, *fields: str) -> Result:
    """``vrm grant revoke`` of ``fields`` (each as a ``--field``) from the grant."""
    chosen = [arg for name in fields for arg in ("--field", name)]
    return vrm("grant", "revoke", "--email", EMAIL, grant_id, *chosen)


def test_customer_lists_and_withdraws_grants(env: dict[str, str]) -> None:
    from vrm.config import load_config
    from vrm.services import build_services

    vrm("customer", "create", "--email", EMAIL)
    services = build_services(load_config())
    vendor, _ = services.vendors.register(
        {
            "client_name": "Example Shop",
            "redirect_uris": ["https://shop.example/cb"],
            "scope": "profile:email profile:given_name",
            "vrm_field_purposes": {"email": "receipts", "given_name": "greeting"},
        }
    )
    vault_id = services.vaults.authenticate(EMAIL, PASSWORD)
    grant = services.consents.give(vault_id, vendor.client_id, ["email", "given_name"])
    services.close()

    listed = json.loads(vrm("grant", "list", "--email", EMAIL).output)
    assert listed[0]["vendor_name"] == "Example Shop"
    assert listed[0]["fields"] == {"email": "receipts", "given_name": "greeting"}

    # A field that is not in the grant refuses the whole command, before anything changes.
    with pytest.raises(ValidationError, match="nosuch: not part of this grant"):
        withdraw(grant.grant_id, "email", "nosuch")
    assert len(json.loads(vrm("grant", "list", "--email", EMAIL).output)[0]["fields"]) == 2

    result = withdraw(grant.grant_id, "given_name", "given_name")
    assert "withdrew given_name" in result.output
    assert json.loads(vrm("grant", "list", "--email", EMAIL).output)[0]["fields"] == {
        "email": "receipts"
    }
    vrm("grant", "revoke", "--email", EMAIL, grant.grant_id)
    assert json.loads(vrm("grant", "list", "--email", EMAIL).output)[0]["status"] == "revoked"
