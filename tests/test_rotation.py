"""KEK rotation rewraps every data key; an interrupted rotation, even a killed one,
finishes when run again; a data key stored during or after a rotation, under a version it
looked up before, is never left under a destroyed version."""

from __future__ import annotations

import base64
import fcntl
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from keys import DataKey, Keyring, WrappedKey
from keys.envelope import RandomBytes
from keys.errors import RotationRunning
from keys.keyring import FileKekSource
from tests.conftest import PASSWORD, FakeClock
from vault import rotation
from vault.datakeys import TABLE, DataKeys
from vault.errors import StorageError
from vault.rotation import KeysLost, key_usage, rotate, rotation_running
from vault.storage.base import Document, Store
from vrm.services import Services, build_services


def _customers(services: Services, count: int) -> dict[str, str]:
    made = {}
    for i in range(count):
        vault_id = services.vaults.sign_up(f"customer{i}@example.org", PASSWORD)
        services.vaults.set_fields(vault_id, {"given_name": f"Customer {i}"})
        made[vault_id] = f"Customer {i}"
    return made


def test_after_rotation_every_vault_reads_with_the_new_kek_alone(
    services: Services, config: dict[str, Any], clock: FakeClock
) -> None:
    names = _customers(services, 12)
    report = rotate(services.store, services.keys.keyring)
    assert (report.new_version, report.rewrapped, report.retired) == (2, 12, [1])
    kek_dir = services.data_dir / "keys" / "kek"
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]

    fresh = build_services(config, clock=clock)
    try:
        for vault_id, name in names.items():
            assert fresh.vaults.profile(vault_id)["given_name"] == name
    finally:
        fresh.close()


def test_interrupted_rotation_finishes_when_run_again(services: Services) -> None:
    names = _customers(services, 10)

    def interrupt_after_four(done: int, total: int) -> None:
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate(services.store, services.keys.keyring, progress=interrupt_after_four)
    assert key_usage(services.store) == {1: 6, 2: 4}
    for vault_id, name in names.items():
        assert services.vaults.profile(vault_id)["given_name"] == name

    report = rotate(services.store, services.keys.keyring)
    assert report.new_version is None
    assert (report.current_version, report.rewrapped, report.retired) == (2, 6, [1])
    assert key_usage(services.store) == {2: 10}


def _child_env(data_dir: Path) -> dict[str, str]:
    plain = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    return {**plain, "VRM_DATA": str(data_dir), "VRM_AUDIT_SYNC": "none"}


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """Every line ``stream`` gives, then "" at its end, read on a thread of its own."""
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            found.put(line)
        found.put("")

    threading.Thread(target=pump, daemon=True).start()
    return found


class HeldRecord:
    """Holds a data key record's lock, as a concurrent writer would, until released."""

    def __init__(self, services: Services, vault_id: str) -> None:
        self._held = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(
            target=services.store.update, args=(TABLE, vault_id, self._hold)
        )

    def _hold(self, record: Document | None) -> Document | None:
        self._held.set()
        self._release.wait()
        return record

    def __enter__(self) -> HeldRecord:
        self._thread.start()
        self._held.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._thread.join()


@pytest.mark.slow
def test_killed_rotation_command_finishes_when_run_again(
    services: Services, config: dict[str, Any], clock: FakeClock, data_dir: Path
) -> None:
    """``vrm keys rotate`` killed with SIGKILL part-way, then run again.

    The rotation rewraps data keys in the order the store lists them. The last one's
    record is held locked, as a server writing it would, so the command reports progress
    on the keys before it and then waits: the kill always lands part-way, whatever the
    machine's speed.
    """
    names = _customers(services, 50)
    last = [vault_id for vault_id, _ in services.store.scan(TABLE)][-1]
    command = [sys.executable, "-m", "vrm.cli", "keys", "rotate"]
    with HeldRecord(services, last):
        with subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=_child_env(data_dir),
        ) as child:
            assert child.stderr is not None
            lines = _lines(child.stderr)
            try:
                progress = lines.get(timeout=120)
            finally:
                os.kill(child.pid, signal.SIGKILL)
                while lines.get(timeout=120):
                    pass
        assert child.returncode == -signal.SIGKILL
    assert progress.startswith("rewrapping data keys: 1/50 ")
    usage = key_usage(services.store)
    assert set(usage) == {1, 2}, usage

    again = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_child_env(data_dir),
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert f"rewrapped {usage[1]} data keys under version 2" in again.stdout
    assert "retired version 1" in again.stdout
    assert key_usage(services.store) == {2: 50}
    kek_dir = data_dir / "keys" / "kek"
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]
    fresh = build_services(config, clock=clock)
    try:
        for vault_id, name in names.items():
            assert fresh.vaults.profile(vault_id)["given_name"] == name
    finally:
        fresh.close()


def test_a_finished_rotation_is_followed_by_a_new_one(services: Services) -> None:
    _customers(services, 2)
    rotate(services.store, services.keys.keyring)
    report = rotate(services.store, services.keys.keyring)
    assert (report.new_version, report.retired) == (3, [2])


def test_vault_created_during_a_rotation_uses_the_new_version(services: Services) -> None:
    _customers(services, 3)

    def sign_up_midway(done: int, total: int) -> None:
        if done == 1:
            services.vaults.sign_up("late@example.org", PASSWORD)

    rotate(services.store, services.keys.keyring, progress=sign_up_midway)
    assert key_usage(services.store) == {2: 4}


def test_progress_is_reported_for_every_data_key(services: Services) -> None:
    _customers(services, 5)
    seen: list[tuple[int, int]] = []
    rotate(services.store, services.keys.keyring, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_rotation_with_env_keys_rewraps_and_names_what_to_remove(
    config: dict[str, Any], clock: FakeClock
) -> None:
    v1 = base64.b64encode(os.urandom(32)).decode()
    v2 = base64.b64encode(os.urandom(32)).decode()
    first = build_services({**config, "KEK": v1}, clock=clock)
    vault_id = first.vaults.sign_up("ada@example.org", PASSWORD)
    first.close()

    second = build_services({**config, "KEK": f"1:{v1},2:{v2}"}, clock=clock)
    report = rotate(second.store, second.keys.keyring)
    assert (report.rewrapped, report.unused_but_kept) == (1, [1])
    second.close()

    only_new = build_services({**config, "KEK": f"2:{v2}"}, clock=clock)
    assert only_new.vaults.authenticate("ada@example.org", PASSWORD) == vault_id
    assert only_new.vaults.profile(vault_id)["email"] == "ada@example.org"
    only_new.close()


def opens_afresh(config: dict[str, Any], clock: FakeClock, vault_id: str) -> bytes:
    """The data key of ``vault_id`` as a server started now opens it."""
    fresh = build_services(config, clock=clock)
    try:
        return fresh.vaults.datakeys.open(vault_id).raw
    finally:
        fresh.close()


class RetireWatcher:
    """A KEK source that calls ``before_destroying(version)`` as a version is retired."""

    def __init__(self, inner: FileKekSource, before_destroying: Callable[[int], None]) -> None:
        self._inner = inner
        self._before_destroying = before_destroying

    def versions(self) -> list[int]:
        return self._inner.versions()

    def load(self, version: int) -> bytes:
        return self._inner.load(version)

    def add_version(self) -> int:
        return self._inner.add_version()

    def retire(self, version: int) -> bool:
        self._before_destroying(version)
        return self._inner.retire(version)

    def retiring(self) -> dict[int, bytes | None]:
        return self._inner.retiring()

    def destroy_retired(self, version: int) -> str | None:
        return self._inner.destroy_retired(version)

    def describe(self) -> str:
        return self._inner.describe()


def test_a_data_key_stored_under_the_old_version_after_the_last_scan_survives_rotation(
    services: Services, config: dict[str, Any], clock: FakeClock
) -> None:
    """A running server looks up the current version, wraps a new vault's data key under
    it, and stores it a moment later. If it looked just before the rotation added a version
    and stores just after the rotation's final usage scan, the key is under a version the
    rotation believes unused, which it then destroys."""
    _customers(services, 3)
    late_vault = "ab" * 16
    dek = DataKey.generate()
    wrapped = services.keys.keyring.wrap(dek, late_vault)
    assert wrapped.kek_version == 1

    def server_stores_its_key(version: int) -> None:
        services.store.insert(TABLE, late_vault, wrapped.to_record())

    kek_dir = services.data_dir / "keys" / "kek"
    rotation_keyring = Keyring(RetireWatcher(FileKekSource(kek_dir), server_stores_its_key))
    report = rotate(services.store, rotation_keyring)

    assert report.retired == [1]
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]
    assert key_usage(services.store) == {2: 4}
    assert opens_afresh(config, clock, late_vault) == dek.raw


class Crash(Exception):
    """The rotation's process dying at this point."""


class DiesAfterSettingAside(FileKekSource):
    """KEK files whose first retirement stores a server's late data key under the version
    being retired (as in the test above), sets the version aside, and then dies."""

    def __init__(self, directory: Path, store_late_key: Callable[[], object]) -> None:
        super().__init__(directory)
        self._store_late_key = store_late_key

    def retire(self, version: int) -> bool:
        self._store_late_key()
        super().retire(version)
        raise Crash


def test_a_rotation_cut_short_after_setting_a_version_aside_is_finished_by_the_next_run(
    services: Services, config: dict[str, Any], clock: FakeClock
) -> None:
    """The set-aside file still holds the key, so the next run rewraps the late data key
    under it before destroying it; opening the keys meanwhile (a server starting) leaves
    it alone."""
    _customers(services, 3)
    late_vault = "ef" * 16
    dek = DataKey.generate()
    wrapped = services.keys.keyring.wrap(dek, late_vault)
    kek_dir = services.data_dir / "keys" / "kek"

    def server_stores_its_key() -> None:
        services.store.insert(TABLE, late_vault, wrapped.to_record())

    with pytest.raises(Crash):
        rotate(services.store, Keyring(DiesAfterSettingAside(kek_dir, server_stores_its_key)))
    assert sorted(p.name for p in kek_dir.iterdir()) == [".v1.key.destroy", "v2.key"]
    build_services(config, clock=clock).close()
    assert sorted(p.name for p in kek_dir.iterdir()) == [".v1.key.destroy", "v2.key"]

    report = rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert report.new_version is None
    assert (report.current_version, report.rewrapped, report.retired) == (2, 1, [1])
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]
    assert key_usage(services.store) == {2: 4}
    assert opens_afresh(config, clock, late_vault) == dek.raw


def test_a_set_aside_key_already_zeroed_is_destroyed_by_the_next_run_alone(
    services: Services,
) -> None:
    _customers(services, 2)
    rotate(services.store, services.keys.keyring)
    kek_dir = services.data_dir / "keys" / "kek"
    # A run cut short while zeroing the file it had set aside, after its last scan.
    zeroed_aside(kek_dir, 1)

    report = rotate(services.store, services.keys.keyring)

    assert (report.new_version, report.rewrapped, report.retired) == (None, 0, [1])
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]
    assert key_usage(services.store) == {2: 2}


def test_a_rotation_cut_short_before_its_last_scan_leaves_the_key_to_rescue_with(
    services: Services, config: dict[str, Any], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 sets version 1 aside, with a late data key under it, and dies in its last
    scan, before it destroys anything: the key file must still be there for run 2."""
    _customers(services, 2)
    late_vault = "fa" * 16
    dek = DataKey.generate()
    wrapped = services.keys.keyring.wrap(dek, late_vault)
    kek_dir = services.data_dir / "keys" / "kek"

    def server_stores_its_key(version: int) -> None:
        services.store.insert(TABLE, late_vault, wrapped.to_record())

    real = rotation._rewrap_stragglers

    def dies(*args: Any) -> None:
        raise Crash

    monkeypatch.setattr(rotation, "_rewrap_stragglers", dies)
    with pytest.raises(Crash):
        rotate(
            services.store, Keyring(RetireWatcher(FileKekSource(kek_dir), server_stores_its_key))
        )
    monkeypatch.setattr(rotation, "_rewrap_stragglers", real)

    report = rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert (report.new_version, report.rewrapped, report.retired) == (None, 1, [1])
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]
    assert opens_afresh(config, clock, late_vault) == dek.raw


def left_by_a_sign_up(services: Services, vault_id: str, dek: DataKey) -> None:
    """A data key for ``vault_id`` wrapped under version 1 just before a rotation and
    stored just after it, by a sign-up that has not (or never) looked at the versions
    again: a key under a destroyed version, with no vault."""
    record = services.keys.keyring.wrap(dek, vault_id).to_record()
    assert rotate(services.store, services.keys.keyring).retired == [1]
    services.store.insert(TABLE, vault_id, record)


def vault_key_lost(services: Services) -> tuple[str, Path]:
    """A vault whose data key is put back under version 1 once a rotation destroyed it;
    the vault, and the KEK directory."""
    victim = next(iter(_customers(services, 2)))
    lost = services.store.get(TABLE, victim)
    rotate(services.store, services.keys.keyring)
    services.store.update(TABLE, victim, lambda record: lost)
    return victim, services.data_dir / "keys" / "kek"


def test_a_key_left_under_a_destroyed_version_by_a_failed_sign_up_is_counted_not_fatal(
    services: Services,
) -> None:
    """A sign-up that died between storing its data key and checking the versions again
    leaves a key under a destroyed version, with no vault: rotations go on around it."""
    _customers(services, 2)
    orphan = "0f" * 16
    # Wrapped under version 1 just before a rotation, stored just after it, and then the
    # sign-up died before it looked at the versions again.
    record = services.keys.keyring.wrap(DataKey.generate(), orphan).to_record()
    assert rotate(services.store, services.keys.keyring).retired == [1]
    services.store.insert(TABLE, orphan, record)
    kek_dir = services.data_dir / "keys" / "kek"

    again = rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert (again.new_version, again.rewrapped, again.orphaned) == (3, 2, 1)
    assert again.retired == [2]
    assert key_usage(services.store) == {3: 2, 1: 1}


def test_a_lost_key_of_a_vault_that_exists_stops_the_rotation_before_it_changes_anything(
    services: Services,
) -> None:
    victim, kek_dir = vault_key_lost(services)

    with pytest.raises(KeysLost) as refused:
        rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert refused.value.lost == {victim: 1}
    assert "1 vault(s) have their data key under key-encryption key version(s) 1" in str(
        refused.value
    )
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]
    assert key_usage(services.store) == {2: 1, 1: 1}


def test_a_lost_key_under_a_half_destroyed_version_stops_the_run_before_it_destroys_it(
    services: Services,
) -> None:
    _, kek_dir = vault_key_lost(services)
    aside = zeroed_aside(kek_dir, 1)

    with pytest.raises(KeysLost):
        rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert aside.exists()
    assert sorted(p.name for p in kek_dir.iterdir()) == [".v1.key.destroy", "v2.key"]


def zeroed_aside(kek_dir: Path, version: int) -> Path:
    """A set-aside key file whose zeroing a crash cut short."""
    aside = kek_dir / f".v{version}.key.destroy"
    aside.write_bytes(b"\0" * 45)
    aside.chmod(0o600)
    return aside


def test_an_orphan_under_a_half_destroyed_version_is_counted_once(services: Services) -> None:
    _customers(services, 1)
    orphan = "0d" * 16
    left_by_a_sign_up(services, orphan, DataKey.generate())
    kek_dir = services.data_dir / "keys" / "kek"
    zeroed_aside(kek_dir, 1)

    report = rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert (report.new_version, report.retired, report.orphans) == (None, [1], {orphan})
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]


@pytest.mark.parametrize("finishes_at", [1, 2], ids=["at the first look", "after its rewrap"])
def test_a_sign_up_that_finishes_while_the_rotation_looks_at_its_key_is_not_a_loss(
    services: Services, monkeypatch: pytest.MonkeyPatch, finishes_at: int
) -> None:
    """Its key was under a destroyed version with no vault when the run read it; by the
    time the run looks for its vault (before it changes anything, or once its rewrap of
    the key failed), it has rewrapped its key and written its vault."""
    _customers(services, 1)
    late = "0c" * 16
    dek = DataKey.generate()
    left_by_a_sign_up(services, late, dek)
    kek_dir = services.data_dir / "keys" / "kek"
    real = rotation._has_document
    looks: list[str] = []

    def sign_up_finishes(store: Store, vault_id: str) -> bool:
        looks.append(vault_id)
        if vault_id == late and looks.count(late) == finishes_at:
            fresh = Keyring(FileKekSource(kek_dir)).wrap(dek, late).to_record()
            store.update(TABLE, late, lambda current: fresh)
            store.create_vault(late, {"profile": {}})
        return real(store, vault_id)

    monkeypatch.setattr(rotation, "_has_document", sign_up_finishes)
    report = rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert looks.count(late) == finishes_at
    assert (report.orphans, report.retired) == (set(), [2])
    assert key_usage(services.store) == {3: 2}


def test_a_vault_that_cannot_be_read_stops_the_rotation_rather_than_pass_for_an_orphan(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    _customers(services, 1)
    orphan = "0b" * 16
    left_by_a_sign_up(services, orphan, DataKey.generate())
    kek_dir = services.data_dir / "keys" / "kek"

    def unreadable(vault_id: str) -> Document:
        raise StorageError(f"cannot read {vault_id}")

    monkeypatch.setattr(services.store, "read_vault", unreadable)
    with pytest.raises(StorageError):
        rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]


def test_a_set_aside_key_that_is_a_link_is_unlinked_and_the_operator_told(
    services: Services, tmp_path: Path
) -> None:
    _customers(services, 1)
    rotate(services.store, services.keys.keyring)
    kek_dir = services.data_dir / "keys" / "kek"
    target = tmp_path / "mounted-key"
    target.write_bytes(b"the operator's own copy")
    target.chmod(0o600)
    (kek_dir / ".v1.key.destroy").symlink_to(os.path.relpath(target, kek_dir))

    report = rotate(services.store, services.keys.keyring)

    assert report.retired == [1]
    assert report.unlinked == {1: str(target)}
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]
    assert target.read_bytes() == b"the operator's own copy"


def test_a_set_aside_link_to_nothing_is_removed_too(services: Services, tmp_path: Path) -> None:
    _customers(services, 1)
    rotate(services.store, services.keys.keyring)
    kek_dir = services.data_dir / "keys" / "kek"
    (kek_dir / ".v1.key.destroy").symlink_to(tmp_path / "nothing")

    report = rotate(services.store, services.keys.keyring)

    assert (report.new_version, report.retired) == (None, [1])
    assert report.unlinked == {1: str(tmp_path / "nothing")}
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]


def test_a_listed_version_whose_key_file_is_damaged_stops_the_run_before_it_adds_one(
    services: Services,
) -> None:
    _customers(services, 2)
    kek_dir = services.data_dir / "keys" / "kek"
    (kek_dir / "v1.key").write_bytes(b"\0" * 45)

    with pytest.raises(KeysLost) as refused:
        rotate(services.store, Keyring(FileKekSource(kek_dir)))

    assert set(refused.value.lost.values()) == {1}
    assert sorted(p.name for p in kek_dir.iterdir()) == ["v1.key"]


def test_the_rotation_lock_seen_held_for_a_look_is_taken_on_a_later_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "rotation.lock"
    looking = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(looking, fcntl.LOCK_SH)  # rotation_running, caught in the act of looking
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        os.close(looking)  # The look is over.

    monkeypatch.setattr(rotation.time, "sleep", pause)
    with rotation.one_rotation(lock):
        assert rotation_running(lock)

    assert pauses == [rotation.LOCK_PAUSE]
    assert not rotation_running(lock)


def test_a_rotation_lock_held_throughout_is_refused_after_its_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "rotation.lock"
    pauses: list[float] = []
    monkeypatch.setattr(rotation.time, "sleep", pauses.append)
    with rotation.one_rotation(lock), pytest.raises(RotationRunning), rotation.one_rotation(lock):
        pass

    assert len(pauses) == rotation.LOCK_TRIES - 1


class StallsAfterLookingUp(Keyring):
    """A server's keyring that, the first time it wraps, stalls between looking up the
    current version and handing the wrapped key back, while ``meanwhile`` runs."""

    def __init__(self, source: FileKekSource, meanwhile: Callable[[], object]) -> None:
        super().__init__(source)
        self._meanwhile: Callable[[], object] | None = meanwhile

    def wrap(self, dek: DataKey, vault_id: str, rng: RandomBytes = os.urandom) -> WrappedKey:
        wrapped = super().wrap(dek, vault_id, rng)
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return wrapped


def test_a_data_key_stored_after_a_whole_rotation_is_rewrapped_by_its_creator(
    services: Services, config: dict[str, Any], clock: FakeClock
) -> None:
    """The server looks up version 1 before the rotation starts and stores the key after
    the rotation has destroyed version 1 and made its last scan."""
    _customers(services, 3)
    kek_dir = services.data_dir / "keys" / "kek"

    def whole_rotation() -> None:
        report = rotate(services.store, Keyring(FileKekSource(kek_dir)))
        assert report.retired == [1]

    late_vault = "cd" * 16
    server = DataKeys(services.store, StallsAfterLookingUp(FileKekSource(kek_dir), whole_rotation))
    dek = server.create(late_vault)

    assert sorted(p.name for p in kek_dir.iterdir()) == ["v2.key"]
    assert key_usage(services.store) == {2: 4}
    assert opens_afresh(config, clock, late_vault) == dek.raw


class OnceStored(FileKekSource):
    """KEK files whose version list, looked at once ``vault_id`` has a data key stored, is
    read only after ``meanwhile`` has run: what a server sees when it checks, after storing,
    whether its key's version still exists."""

    def __init__(
        self, directory: Path, store: Store, vault_id: str, meanwhile: Callable[[], object]
    ) -> None:
        super().__init__(directory)
        self._store, self._vault_id = store, vault_id
        self._meanwhile: Callable[[], object] | None = meanwhile

    def versions(self) -> list[int]:
        if self._meanwhile is not None and self._store.get(TABLE, self._vault_id) is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return super().versions()


def test_a_data_key_the_rotation_rewrapped_is_kept_as_the_rotation_stored_it(
    services: Services,
) -> None:
    """Stored before the rotation's scans, the key is rewrapped by the rotation; its
    creator, finding version 1 gone, leaves that wrapping as it is."""
    kek_dir = services.data_dir / "keys" / "kek"
    late_vault = "ef" * 16
    after_rotation: list[Document | None] = []

    def rotate_then_look() -> None:
        rotate(services.store, Keyring(FileKekSource(kek_dir)))
        after_rotation.append(services.store.get(TABLE, late_vault))

    source = OnceStored(kek_dir, services.store, late_vault, rotate_then_look)
    DataKeys(services.store, Keyring(source)).create(late_vault)

    rotated = after_rotation[0]
    assert rotated is not None
    assert rotated["kek_version"] == 2
    assert services.store.get(TABLE, late_vault) == rotated


def test_a_data_key_erased_while_its_creator_looks_stays_erased(services: Services) -> None:
    """Rewrapping a key whose version was destroyed never brings back an erased key."""
    kek_dir = services.data_dir / "keys" / "kek"
    late_vault = "fa" * 16

    def rotate_then_erase() -> None:
        rotate(services.store, Keyring(FileKekSource(kek_dir)))
        services.vaults.datakeys.destroy(late_vault)

    source = OnceStored(kek_dir, services.store, late_vault, rotate_then_erase)
    DataKeys(services.store, Keyring(source)).create(late_vault)

    assert services.store.get(TABLE, late_vault) is None
