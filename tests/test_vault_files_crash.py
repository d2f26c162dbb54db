"""A writer killed with SIGKILL while it updates an encrypted vault leaves the vault
readable at its old or its new version, and no torn file under the data directory.

The writer is a child process (the "spawn" start method) that builds its own services on
the test's data directory, as a server worker would, and updates one vault through
VaultService: several fields at once, including ones the segment index and the offer
mailbox follow, so each update rewrites three files. It reports each update on a pipe once
set_fields has returned, and the parent kills it after a chosen number of reports, so no
test waits on the clock. The parent then reopens the services from disk and decrypts
everything.

The store's documentation allows two kinds of extra file: ``<file>.lock`` sidecars, and a
``<file>.tmp`` left by a writer that died before its rename, which the next writer of
that file removes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from tests.kills import SPAWN, ReportingWriter
from vrm.services import Services, build_services

ROUNDS = 2
PASSWORD = "correct horse battery staple"
CHANNELS = ("email", "sms", "phone", "post")


def values_at(n: int) -> dict[str, Any]:
    """What update ``n`` writes: every value says ``n``, and the size varies with it so
    kills land in different steps of a write."""
    return {
        "x-counter": n,
        "given_name": f"Customer {n}",
        "interests": [f"topic {n % 7}", f"round {n}"],
        "channel_preferences": {
            "email": n % 2 == 0,
            "sms": n % 3 == 0,
            "phone": False,
            "post": True,
        },
        "x-padding": "p" * (97 * (n % 41)),
    }


def channels_at(n: int) -> set[str]:
    prefs = values_at(n)["channel_preferences"]
    return {channel for channel in CHANNELS if prefs.get(channel)}


@contextmanager
def opened(config: dict[str, Any]) -> Iterator[Services]:
    services = build_services(config)
    try:
        yield services
    finally:
        services.close()


def new_vault(config: dict[str, Any]) -> str:
    """A vault at update 0, whose interests are countable (so the segment index follows)."""
    with opened(config) as services:
        vault_id = services.vaults.sign_up("crash@example.org", PASSWORD)
        services.vaults.set_segmentable(vault_id, ["interests"])
        services.vaults.set_fields(vault_id, values_at(0))
    return vault_id


def update_for_ever(config: dict[str, Any], vault_id: str, start: int, sender: Connection) -> None:
    """Write updates start + 1, start + 2, ... and report each once it returned."""
    with opened(config) as services:
        for n in itertools.count(start + 1):
            services.vaults.set_fields(vault_id, values_at(n))
            sender.send(n)


def assert_vault_at_old_or_new(config: dict[str, Any], vault_id: str, last: int) -> int:
    """Reopen the services and decrypt everything the vault holds: the profile, every
    version of every field and the mailbox. Return the update the vault is at, which must
    be ``last`` (the last one reported) or the next one, with every field from that one."""
    with opened(config) as services:
        profile = services.vaults.profile(vault_id)
        history = services.vaults.history(vault_id)
        mailbox = services.offers.export(vault_id)
    at = profile["x-counter"]
    assert at in (last, last + 1), f"vault at update {at}, last reported {last}"
    assert profile == {"email": "crash@example.org", **values_at(at)}
    assert [version.value for version in history["x-counter"]] == list(range(at + 1))
    # The mailbox is written after the vault file, so a kill between the two leaves it one
    # update behind the vault; either way it is whole and opens.
    assert any(set(mailbox["channels"]) == channels_at(n) for n in (at - 1, at))
    return int(at)


def assert_files_whole(data_dir: Path, *, temp_allowed: bool) -> None:
    """Every JSON file under the data directory parses; the store holds data files, their
    lock sidecars and (only where allowed) a crashed writer's temp file. A temp file may
    stand alone: the write it belonged to would have created its file, or refilled one
    emptied and removed (as a pending mark's shard is each time the mark is cleared)."""
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        if path.name.endswith(".json"):
            json.loads(path.read_bytes())
        elif path.name.endswith(".jsonl"):
            for line in path.read_bytes().splitlines():
                json.loads(line)
        if data_dir / "store" in path.parents:
            assert path.name.endswith((".json", ".json.lock", ".json.tmp")), path
            if path.name.endswith(".tmp"):
                assert temp_allowed, f"temp file left behind: {path}"


def vault_file(config: dict[str, Any], vault_id: str) -> Path:
    return config_dir(config) / "store" / "vaults" / vault_id[:2] / f"{vault_id}.json"


def shard_file(config: dict[str, Any], table: str, key: str) -> Path:
    shard = hashlib.sha256(key.encode()).digest()[0]
    return config_dir(config) / "store" / "tables" / table / f"{shard:02x}.json"


def temp_of(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp")


def config_dir(config: dict[str, Any]) -> Path:
    return Path(config["DATA"])


Moment = Callable[[dict[str, Any], str], Callable[[], bool]]

#: When the parent kills the writer: at its next report, or when the parent sees a step of
#: an update on disk (vault file, then segment index shard, then mailbox shard).
MOMENTS: dict[str, Moment] = {
    "next_report": lambda config, vault_id: lambda: False,
    "vault_temp_written": lambda config, vault_id: temp_of(vault_file(config, vault_id)).exists,
    "vault_renamed": lambda config, vault_id: renamed(vault_file(config, vault_id)),
    "index_temp_written": lambda config, vault_id: (
        temp_of(shard_file(config, "segments", vault_id)).exists
    ),
    "mailbox_temp_written": lambda config, vault_id: (
        temp_of(shard_file(config, "mailboxes", vault_id)).exists
    ),
}


def renamed(path: Path) -> Callable[[], bool]:
    """Whether a new file has been renamed over ``path`` since this was called."""
    inode = path.stat().st_ino
    return lambda: path.stat().st_ino != inode


def kill_at(writer: ReportingWriter, at: int, seen: Callable[[], bool], patience: int) -> int:
    """Kill the writer once ``seen()`` holds or it reports ``patience`` more updates,
    whichever comes first, watching without a clock; return the last update it reported."""
    last = at
    while not seen() and last < at + patience:
        if writer.ready():
            last = next(writer.reports)
    return max(writer.kill(), default=last)


#: How many more updates the parent lets through if it never sees its moment (it may
#: miss a short one); the kill then lands wherever the writer is.
PATIENCE = 50


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_writer_killed_at_varied_points_leaves_the_vault_at_old_or_new(
    config: dict[str, Any], moment: str
) -> None:
    vault_id = new_vault(config)
    at = 0
    for _ in range(ROUNDS):
        writer = ReportingWriter(update_for_ever, config, vault_id, at)
        # The first report says the writer is under way; the moment is looked for after.
        first = next(writer.reports)
        patience = 1 if moment == "next_report" else PATIENCE
        last = kill_at(writer, first, MOMENTS[moment](config, vault_id), patience)

        assert writer.process.exitcode == -signal.SIGKILL
        at = assert_vault_at_old_or_new(config, vault_id, last)
        assert_files_whole(config_dir(config), temp_allowed=True)

    with opened(config) as services:
        services.vaults.set_fields(vault_id, values_at(at + 1))
    assert assert_vault_at_old_or_new(config, vault_id, at + 1) == at + 1
    assert_files_whole(config_dir(config), temp_allowed=False)


# Kills at chosen steps of the vault file's write: the child arms a stand-in for one
# system call and SIGKILLs itself when its update reaches it.


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def in_vaults(path: str) -> bool:
    """Whether a path is in the store's vault directory (other writes, such as the mark
    that derived records are pending, go on as usual)."""
    return f"{os.sep}vaults{os.sep}" in path


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def die_in_temp_write(fd: int) -> None:
    """Stand-in for os.fsync: cut the temp file in half and die before it is synced."""
    if stat.S_ISREG(os.fstat(fd).st_mode) and in_vaults(fd_path(fd)):
        os.ftruncate(fd, os.fstat(fd).st_size // 2)
        die()
    FSYNC(fd)


def die_before_rename(source: str, target: str, *args: object, **kwargs: object) -> None:
    if in_vaults(str(target)):
        die()
    REPLACE(source, target, *args, **kwargs)  # type: ignore[arg-type]


def die_after_rename(fd: int) -> None:
    """Stand-in for os.fsync: die when the vault's directory is synced, the rename done."""
    if stat.S_ISDIR(os.fstat(fd).st_mode) and in_vaults(fd_path(fd) + os.sep):
        die()
    FSYNC(fd)


FSYNC = os.fsync
REPLACE = os.replace

#: Each step: the os function replaced, its stand-in, and whether the update survives.
STEPS: dict[str, tuple[str, Callable[..., None], bool]] = {
    "in_temp_write": ("fsync", die_in_temp_write, False),
    "before_rename": ("replace", die_before_rename, False),
    "after_rename": ("fsync", die_after_rename, True),
}


def update_then_die(config: dict[str, Any], vault_id: str, n: int, step: str) -> None:
    with opened(config) as services:
        services.vaults.datakeys.open(vault_id)
        name, stand_in, _ = STEPS[step]
        setattr(os, name, stand_in)
        services.vaults.set_fields(vault_id, values_at(n))


@pytest.mark.slow
@pytest.mark.parametrize("step", sorted(STEPS))
def test_writer_killed_at_a_step_of_the_vault_write_leaves_old_or_new(
    config: dict[str, Any], step: str
) -> None:
    vault_id = new_vault(config)
    writer = SPAWN.Process(target=update_then_die, args=(config, vault_id, 1, step))
    writer.start()
    writer.join(timeout=60)

    assert writer.exitcode == -signal.SIGKILL
    survives = STEPS[step][2]
    at = assert_vault_at_old_or_new(config, vault_id, 0)
    assert at == (1 if survives else 0)
    assert temp_of(vault_file(config, vault_id)).exists() == (not survives)
    assert_files_whole(config_dir(config), temp_allowed=True)
    with opened(config) as services:
        services.vaults.set_fields(vault_id, values_at(at + 1))
    assert assert_vault_at_old_or_new(config, vault_id, at + 1) == at + 1
    assert_files_whole(config_dir(config), temp_allowed=False)
