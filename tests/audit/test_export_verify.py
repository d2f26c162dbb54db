"""Exporting the audit log and verifying the export offline: every single edit, deletion,
swap of neighbours, insertion and truncation of a 1,000-event export is found at its index,
a rewrite is caught by an older checkpoint, and the ``vrm audit`` commands.

The log is built and exported once per module; each tamper changes a copy of its lines.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.signing import SigningKey
from tests.conftest import PASSWORD, command_environment
from vault.audit import (
    AuditLog,
    CheckpointError,
    canonical_json,
    export_log,
    leaf_hash,
    parse_checkpoint,
    sign_checkpoint,
    verifier_key,
    verify_export,
)
from vault.audit.export import (
    EntryLine,
    ReadExport,
    VerifyReport,
    check_export,
    prefix_ranges,
    read_export,
)
from vrm.app import create_app
from vrm.cli import cli, main

N = 1000
NAME = "test.example/vrm-vault/audit"
KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
PUBLIC = KEY.public_raw()


def event(i: int, *, actor: str = "operator") -> dict[str, Any]:
    return {
        "type": "data.read",
        "at": f"2026-11-25T09:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "actor": actor,
        "n": i,
        "fields": ["given_name", "email"][: 1 + i % 2],
    }


def build_log(directory: Path, events: list[dict[str, Any]]) -> AuditLog:
    log = AuditLog(directory, sync="none")
    for each in events:
        log.append(each)
    return log


def checkpoint_of(log: AuditLog, size: int | None = None) -> str:
    size = log.size() if size is None else size
    return sign_checkpoint(NAME, size, log.root(size), KEY, NAME)


@dataclass(frozen=True)
class Exported:
    lines: list[str]
    old_checkpoint: str  # of the first 600 events

    def write(self, path: Path, lines: list[str] | None = None) -> Path:
        path.write_text("".join(line + "\n" for line in (lines or self.lines)), "utf-8")
        return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("audit")
    with build_log(root / "log", [event(i) for i in range(N)]) as log:
        out = root / "export.jsonl"
        assert export_log(log, out, checkpoint_of(log)) == N
        old = checkpoint_of(log, 600)
    return Exported(out.read_text("utf-8").splitlines(), old)


def verify(path: Path, previous: str | None = None) -> VerifyReport:
    return verify_export(path, PUBLIC, NAME, previous)


def entry_line(i: int, entry: dict[str, Any], leaf: bytes | None = None) -> str:
    leaf = leaf_hash(canonical_json(entry)) if leaf is None else leaf
    return json.dumps({"index": i, "entry": entry, "leaf": leaf.hex()})


def test_an_untouched_export_verifies(exported: Exported, tmp_path: Path) -> None:
    path = exported.write(tmp_path / "x.jsonl")
    report = verify(path)
    assert report.ok, report.problems
    assert report.entries == N
    assert report.checkpoint is not None
    assert report.checkpoint.size == N
    header = json.loads(exported.lines[0])
    assert header == {"format": "vrm-audit-export/1", "since": 0, "size": N, "prefix": []}
    assert json.loads(exported.lines[-1])["checkpoint"].startswith(NAME + "\n1000\n")


def test_export_file_is_private(tmp_path: Path) -> None:
    with build_log(tmp_path / "log", [event(i) for i in range(3)]) as log:
        export_log(log, tmp_path / "e.jsonl", checkpoint_of(log))
    assert ((tmp_path / "e.jsonl").stat().st_mode & 0o777) == 0o600


def test_verifies_with_an_older_checkpoint_of_the_same_log(
    exported: Exported, tmp_path: Path
) -> None:
    assert verify(exported.write(tmp_path / "x.jsonl"), exported.old_checkpoint).ok


# Every single tamper, at every position. Each export line is parsed and hashed once
# (read_export); each tamper then rearranges the read lines and runs every check on them
# (check_export), which is what verify_export does after reading a file.


@pytest.fixture(scope="module")
def read(exported: Exported) -> ReadExport:
    return read_export(exported.lines)


def check(read: ReadExport, entries: list[EntryLine]) -> VerifyReport:
    return check_export(dataclasses.replace(read, entries=entries), PUBLIC, NAME)


def read_line(exported: Exported, line: str) -> EntryLine:
    (entry,) = read_export([exported.lines[0], line]).entries
    return entry


def test_reading_then_checking_is_verifying(exported: Exported, tmp_path: Path) -> None:
    lines = exported.lines[:501] + exported.lines[502:]
    report = verify(exported.write(tmp_path / "x.jsonl", lines))
    assert report.problems == check_export(read_export(lines), PUBLIC, NAME).problems
    assert report.first_bad_index == 500


def test_every_edited_event_is_reported_at_its_index(exported: Exported, read: ReadExport) -> None:
    for i in range(N):
        doc = json.loads(exported.lines[i + 1])
        doc["entry"]["actor"] = "someone else"
        entries = list(read.entries)
        entries[i] = read_line(exported, json.dumps(doc))
        report = check(read, entries)
        assert [(p.index, "edited" in p.message) for p in report.problems] == [(i, True)], i


def test_every_deleted_event_is_reported_at_its_index(read: ReadExport) -> None:
    for i in range(N):
        report = check(read, read.entries[:i] + read.entries[i + 1 :])
        assert not report.ok, i
        assert report.first_bad_index == i, (i, report.problems)
        assert report.problems[0].index == i, i


def test_every_swap_of_neighbours_is_reported_at_the_first(read: ReadExport) -> None:
    for i in range(N - 1):
        entries = list(read.entries)
        entries[i], entries[i + 1] = entries[i + 1], entries[i]
        report = check(read, entries)
        assert report.first_bad_index == i, (i, report.problems)
        assert "out of sequence" in report.problems[0].message, i


def test_every_inserted_event_is_reported_at_its_index(
    exported: Exported, read: ReadExport
) -> None:
    for i in range(N + 1):
        forged = read_line(exported, entry_line(i, event(i, actor="forger")))
        report = check(read, [*read.entries[:i], forged, *read.entries[i:]])
        assert not report.ok, i
        assert report.first_bad_index == i, (i, report.problems)


def test_every_truncation_is_reported_at_the_first_missing_index(read: ReadExport) -> None:
    for keep in range(N):
        report = check(read, read.entries[:keep])
        assert report.first_bad_index == keep, (keep, report.problems)
        missing = f"entry {keep}: missing: the checkpoint commits to {N} entries"
        assert missing in map(str, report.problems), keep


def test_insertion_that_renumbers_the_rest_breaks_size_and_root(
    exported: Exported, tmp_path: Path
) -> None:
    i = 300
    later = []
    for line in exported.lines[i + 1 : -1]:
        doc = json.loads(line)
        doc["index"] += 1
        later.append(json.dumps(doc))
    lines = [*exported.lines[: i + 1], entry_line(i, event(i, actor="forger")), *later]
    report = verify(exported.write(tmp_path / "x.jsonl", [*lines, exported.lines[-1]]))
    messages = [str(p) for p in report.problems]
    assert f"entry {N}: beyond the checkpoint's {N} entries" in messages
    assert any("does not match the signed checkpoint" in m for m in messages)


def test_truncation_with_a_lying_header_is_still_found(exported: Exported, tmp_path: Path) -> None:
    header = json.loads(exported.lines[0]) | {"size": 900}
    lines = [json.dumps(header), *exported.lines[1:901], exported.lines[-1]]
    assert verify(exported.write(tmp_path / "x.jsonl", lines)).first_bad_index == 900


def test_dropped_checkpoint_line_fails(exported: Exported, tmp_path: Path) -> None:
    report = verify(exported.write(tmp_path / "x.jsonl", exported.lines[:-1]))
    assert [str(p) for p in report.problems] == ["the export does not end with a checkpoint line"]


def test_rewritten_leaf_hash_is_caught_by_the_root(exported: Exported, tmp_path: Path) -> None:
    lines = list(exported.lines)
    lines[43] = entry_line(42, event(42, actor="forger"))
    report = verify(exported.write(tmp_path / "x.jsonl", lines))
    assert [p.index for p in report.problems] == [None]
    assert "does not match the signed checkpoint" in report.problems[0].message


def test_another_key_is_refused(exported: Exported, tmp_path: Path) -> None:
    other = SigningKey(Ed25519PrivateKey.generate()).public_raw()
    report = verify_export(exported.write(tmp_path / "x.jsonl"), other, NAME)
    assert not report.ok
    assert "the checkpoint is refused" in report.problems[0].message


def test_an_operator_rewrite_is_exposed_by_an_older_checkpoint(
    exported: Exported, tmp_path: Path
) -> None:
    """The operator holds the key: they rewrite event 300 and re-sign the whole log. The
    new export is self-consistent; only the auditor's older checkpoint exposes it."""
    events = [event(i) for i in range(N)]
    events[300] = event(300, actor="rewritten")
    with build_log(tmp_path / "rewritten", events) as log:
        export_log(log, tmp_path / "x.jsonl", checkpoint_of(log))
    assert verify(tmp_path / "x.jsonl").ok
    report = verify(tmp_path / "x.jsonl", exported.old_checkpoint)
    assert [str(p) for p in report.problems] == [
        "entries 0 to 599 do not match the previous checkpoint: history was rewritten"
    ]


def test_a_shrunk_log_is_exposed_by_an_older_checkpoint(exported: Exported, tmp_path: Path) -> None:
    with build_log(tmp_path / "short", [event(i) for i in range(500)]) as log:
        export_log(log, tmp_path / "x.jsonl", checkpoint_of(log))
    report = verify(tmp_path / "x.jsonl", exported.old_checkpoint)
    assert "the log shrank" in report.problems[0].message


def test_previous_checkpoint_by_another_key_is_refused(exported: Exported, tmp_path: Path) -> None:
    other = SigningKey(Ed25519PrivateKey.generate())
    note = sign_checkpoint(NAME, 1, bytes(32), other, NAME)
    report = verify(exported.write(tmp_path / "x.jsonl"), note)
    assert "the previous checkpoint is refused" in report.problems[0].message


@pytest.mark.parametrize("since", [1, 2, 3, 600, 777, N - 1, N])
def test_partial_export_recomputes_the_root_from_the_prefix(tmp_path: Path, since: int) -> None:
    with build_log(tmp_path / "log", [event(i) for i in range(N)]) as log:
        export_log(log, tmp_path / "x.jsonl", checkpoint_of(log), since)
        at_since = checkpoint_of(log, since)
        earlier = checkpoint_of(log, since // 2)
        later = checkpoint_of(log, (since + N) // 2)
    lines = (tmp_path / "x.jsonl").read_text("utf-8").splitlines()
    assert len(json.loads(lines[0])["prefix"]) == len(prefix_ranges(since)) == since.bit_count()
    assert verify(tmp_path / "x.jsonl").ok
    assert verify(tmp_path / "x.jsonl", at_since).ok
    assert verify(tmp_path / "x.jsonl", later).ok
    if since // 2 < since:
        report = verify(tmp_path / "x.jsonl", earlier)
        assert "export with a smaller --since" in report.problems[0].message
    if since < N:
        doc = json.loads(lines[1])
        doc["entry"]["actor"] = "x"
        lines[1] = json.dumps(doc)
        edited = tmp_path / "y.jsonl"
        edited.write_text("\n".join(lines) + "\n", "utf-8")
        assert verify(edited).first_bad_index == since


def test_a_forged_prefix_hash_fails_the_root(tmp_path: Path) -> None:
    with build_log(tmp_path / "log", [event(i) for i in range(20)]) as log:
        export_log(log, tmp_path / "x.jsonl", checkpoint_of(log), 5)
    lines = (tmp_path / "x.jsonl").read_text("utf-8").splitlines()
    header = json.loads(lines[0])
    header["prefix"][0] = "00" * 32
    (tmp_path / "x.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert (
        "does not match the signed checkpoint" in verify(tmp_path / "x.jsonl").problems[0].message
    )


def test_export_refuses_a_checkpoint_of_another_log(tmp_path: Path) -> None:
    with build_log(tmp_path / "log", [event(i) for i in range(5)]) as log:
        with pytest.raises(CheckpointError):
            export_log(log, tmp_path / "x.jsonl", sign_checkpoint(NAME, 5, bytes(32), KEY, NAME))
        with pytest.raises(CheckpointError):
            export_log(log, tmp_path / "x.jsonl", checkpoint_of(log), since=6)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda lines: ["not json", *lines[1:]],
        lambda lines: ['{"format": "other"}', *lines[1:]],
        lambda lines: [lines[0], "[1, 2]", *lines[1:]],
        lambda lines: [lines[0], '{"index": 0}', *lines[2:]],
        lambda lines: [],
    ],
    ids=["header-not-json", "wrong-format", "not-an-object", "no-entry", "empty"],
)
def test_malformed_exports_fail(
    exported: Exported, tmp_path: Path, mangle: Callable[[list[str]], list[str]]
) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("".join(line + "\n" for line in mangle(exported.lines[:5])), "utf-8")
    assert not verify(path).ok


def test_a_line_that_repeats_a_key_is_refused_not_read(exported: Exported, tmp_path: Path) -> None:
    """json keeps the last of two values, a reader may show the first: the line that
    repeats a key could show one event and hash another, so it is reported."""
    genuine = json.loads(exported.lines[3])
    forged = '{"index": 2, "entry": {"actor": "nobody", ' + json.dumps(genuine["entry"])[1:]
    forged = forged[:-1] + ', "leaf": "' + genuine["leaf"] + '"}'
    lines = [*exported.lines[:3], forged, *exported.lines[4:]]
    report = verify(exported.write(tmp_path / "x.jsonl", lines))
    assert not report.ok
    assert "line 4 repeats the key 'actor'" in [p.message for p in report.problems]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda lines: [json.dumps({**json.loads(lines[0]), "since": 2**1100 - 1}), *lines[1:]],
        lambda lines: [lines[0], "[" * 100_000, *lines[1:]],
        lambda lines: [
            *lines[:-1],
            json.dumps(
                {
                    "checkpoint": json.loads(lines[-1])["checkpoint"].replace(
                        "\n1000\n", "\n" + "9" * 5000 + "\n", 1
                    )
                }
            ),
        ],
    ],
    ids=["huge-since", "deep-nesting", "huge-checkpoint-size"],
)
def test_absurd_input_is_reported_not_a_crash(
    exported: Exported, tmp_path: Path, mangle: Callable[[list[str]], list[str]]
) -> None:
    report = verify(exported.write(tmp_path / "x.jsonl", mangle(exported.lines)))
    assert not report.ok
    assert report.problems


def test_a_checkpoint_of_another_origin_is_refused(tmp_path: Path) -> None:
    """Signed by the right key under the expected name, but for another log."""
    with build_log(tmp_path / "log", [event(i) for i in range(5)]) as log:
        out = tmp_path / "x.jsonl"
        export_log(log, out, checkpoint_of(log))
        other = sign_checkpoint("evil.example/other-log", 5, log.root(5), KEY, NAME)
    lines = out.read_text("utf-8").splitlines()
    lines[-1] = json.dumps({"checkpoint": other})
    report = verify(Exported(lines, "").write(tmp_path / "y.jsonl"))
    assert not report.ok
    assert any("another log" in problem.message for problem in report.problems)


def test_an_entry_with_a_key_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    """json would write {10: .., 9: ..} as {"9":..,"10":..}: not canonical once read."""
    with build_log(tmp_path / "log", [event(0)]) as log:
        with pytest.raises(TypeError):
            log.append({"type": "x", "detail": {10: "a", 9: "b"}})
        assert log.size() == 1


# The command line.


@pytest.fixture
def env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    command_environment(data_dir, monkeypatch)
    for i in range(3):
        assert vrm("customer", "create", "--email", f"c{i}@example.org").exit_code == 0
    return data_dir


def vrm(*args: str, stdin: str = PASSWORD + "\n") -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def audit_size(data_dir: Path) -> int:
    with AuditLog(data_dir / "audit", sync="none") as log:
        return log.size()


@pytest.mark.parametrize("command", ["checkpoint", "key", "export", "verify"])
def test_audit_commands_explain_themselves(command: str) -> None:
    result = vrm("audit", command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output
    assert "audit" in vrm("--help").output


def test_key_checkpoint_export_and_verify(env: Path, tmp_path: Path) -> None:
    vkey_file = tmp_path / "vrm.vkey"
    key = vrm("audit", "key", "--out", str(vkey_file))
    assert key.exit_code == 0
    vkey = key.stdout.strip()
    assert vkey.startswith("127.0.0.1:8000/vrm-vault/audit+")
    assert vkey_file.read_text().strip() == vkey

    before = vrm("audit", "checkpoint")
    assert before.exit_code == 0
    checkpoint = parse_checkpoint(before.stdout)
    assert checkpoint.origin == "127.0.0.1:8000/vrm-vault/audit"
    assert checkpoint.size == audit_size(env) > 0
    old = tmp_path / "old.checkpoint"
    old.write_text(before.stdout, "utf-8")

    vrm("customer", "create", "--email", "later@example.org")
    out = tmp_path / "audit.jsonl"
    exported = vrm("audit", "export", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert (out.stat().st_mode & 0o777) == 0o600
    assert "exporting the audit log" in exported.stderr
    assert f"to {out}" in exported.stderr

    verified = vrm("audit", "verify", str(out), "--key", str(vkey_file), "--previous", str(old))
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.startswith(f"verified {audit_size(env)} entries")


def test_verify_needs_no_data_directory(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vrm("audit", "key", "--out", str(tmp_path / "k"))
    vrm("audit", "export", "--out", str(tmp_path / "e"))
    missing = tmp_path / "no-such-data"
    monkeypatch.setenv("VRM_DATA", str(missing))
    result = vrm("audit", "verify", str(tmp_path / "e"), "--key", str(tmp_path / "k"))
    assert result.exit_code == 0
    assert not missing.exists()


def test_verify_reports_a_tampered_event_and_exits_1(env: Path, tmp_path: Path) -> None:
    vrm("audit", "key", "--out", str(tmp_path / "k"))
    vrm("audit", "export", "--out", str(tmp_path / "e"))
    lines = (tmp_path / "e").read_text("utf-8").splitlines()
    doc = json.loads(lines[2])
    doc["entry"]["type"] = "something.else"
    lines[2] = json.dumps(doc)
    (tmp_path / "e").write_text("\n".join(lines) + "\n", "utf-8")
    result = vrm("audit", "verify", str(tmp_path / "e"), "--key", str(tmp_path / "k"))
    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert problems[0] == "problem: entry 1: the event does not match its leaf hash (edited)"
    assert problems[-1].endswith("verification FAILED (1 problems)")
    assert result.stdout == ""


def test_verify_reports_a_dropped_event_at_its_index_and_exits_1(env: Path, tmp_path: Path) -> None:
    vrm("audit", "key", "--out", str(tmp_path / "k"))
    vrm("audit", "export", "--out", str(tmp_path / "e"))
    lines = (tmp_path / "e").read_text("utf-8").splitlines()
    del lines[2]  # entry 1
    (tmp_path / "e").write_text("\n".join(lines) + "\n", "utf-8")
    result = vrm("audit", "verify", str(tmp_path / "e"), "--key", str(tmp_path / "k"))
    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert problems[0].startswith("problem: entry 1: out of sequence: line 3 holds index 2")
    assert "verification FAILED" in problems[-1]
    assert result.stdout == ""


def test_export_since_and_errors(env: Path, tmp_path: Path) -> None:
    assert vrm("audit", "export", "--since", "2", "--out", str(tmp_path / "e")).exit_code == 0
    vrm("audit", "key", "--out", str(tmp_path / "k"))
    assert vrm("audit", "verify", str(tmp_path / "e"), "--key", str(tmp_path / "k")).exit_code == 0
    too_far = vrm("audit", "export", "--since", "100000", "--out", str(tmp_path / "f"))
    assert too_far.exit_code == 2
    assert "--since" in too_far.output
    assert not (tmp_path / "f").exists()


def test_bad_key_file_is_one_line(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vrm("audit", "export", "--out", str(tmp_path / "e"))
    (tmp_path / "k").write_text("not a key\n")
    assert main(["audit", "verify", str(tmp_path / "e"), "--key", str(tmp_path / "k")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_verify_with_the_wrong_key_fails(env: Path, tmp_path: Path) -> None:
    vrm("audit", "export", "--out", str(tmp_path / "e"))
    other = SigningKey(Ed25519PrivateKey.generate()).public_raw()
    (tmp_path / "k").write_text(verifier_key("127.0.0.1:8000/vrm-vault/audit", other))
    result = vrm("audit", "verify", str(tmp_path / "e"), "--key", str(tmp_path / "k"))
    assert result.exit_code == 1
    assert "the checkpoint is refused" in result.stderr


def test_audit_origin_setting(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRM_AUDIT_ORIGIN", "audit.example.org/log")
    assert vrm("audit", "checkpoint").stdout.startswith("audit.example.org/log\n")
    monkeypatch.setenv("VRM_AUDIT_ORIGIN", "")
    monkeypatch.setenv("VRM_ISSUER", "https://vault.example.org/")
    assert vrm("audit", "checkpoint").stdout.startswith("vault.example.org/vrm-vault/audit\n")
    assert vrm("audit", "key").stdout.startswith("vault.example.org/vrm-vault/audit+")


def test_a_server_on_another_port_and_the_commands_sign_under_one_origin(
    env: Path, tmp_path: Path
) -> None:
    # `vrm serve --port 9100` without VRM_ISSUER: the commands, which know nothing of the
    # port, must still sign and check under the origin the server's checkpoints carry.
    app = create_app({"PORT": 9100})
    try:
        served = app.test_client().get("/audit/checkpoint").get_data(as_text=True)
    finally:
        app.extensions["vrm"].close()
    assert parse_checkpoint(served).origin == "127.0.0.1:9100/vrm-vault/audit"
    previous = tmp_path / "served.checkpoint"
    previous.write_text(served, "utf-8")

    vrm("customer", "create", "--email", "later@example.org")
    key, out = tmp_path / "vrm.vkey", tmp_path / "audit.jsonl"
    assert vrm("audit", "key", "--out", str(key)).stdout.startswith("127.0.0.1:9100/vrm-vault/")
    assert vrm("audit", "export", "--out", str(out)).exit_code == 0
    verified = vrm("audit", "verify", str(out), "--key", str(key), "--previous", str(previous))
    assert verified.exit_code == 0, verified.output


def test_a_server_and_a_command_that_start_before_any_checkpoint_agree(
    env: Path, tmp_path: Path
) -> None:
    # Both derive their origin before either has signed: the first signature decides.
    app = create_app({"PORT": 9100})
    try:
        assert app.extensions["vrm"].checkpoints.origin == "127.0.0.1:9100/vrm-vault/audit"
        assert vrm("audit", "checkpoint").stdout.startswith("127.0.0.1:8000/vrm-vault/audit\n")
        served = app.test_client().get("/audit/checkpoint").get_data(as_text=True)
        assert parse_checkpoint(served).origin == "127.0.0.1:8000/vrm-vault/audit"
    finally:
        app.extensions["vrm"].close()


def test_main_exit_codes(env: Path, tmp_path: Path) -> None:
    assert main(["audit", "export", "--out", str(tmp_path / "e")]) == 0
    assert main(["audit", "key", "--out", str(tmp_path / "k")]) == 0
    assert main(["audit", "verify", str(tmp_path / "e"), "--key", str(tmp_path / "k")]) == 0
    with (tmp_path / "e").open("a", encoding="utf-8") as handle:
        handle.write("garbage\n")
    assert main(["audit", "verify", str(tmp_path / "e"), "--key", str(tmp_path / "k")]) == 1
    assert os.path.exists(tmp_path / "e")
