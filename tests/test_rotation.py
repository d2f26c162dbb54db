"""KEK rotation rewraps every data key; an interrupted rotation finishes when run again."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from tests.conftest import PASSWORD, FakeClock
from vault.rotation import key_usage, rotate
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
