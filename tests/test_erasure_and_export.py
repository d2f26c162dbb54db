"""Export gives the customer everything; erasure leaves nothing that can be read or found."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from keys import WrappedKey
from keys.envelope import Context
from keys.errors import DecryptionError
from tests.conftest import PASSWORD, FakeClock, email_grant
from tests.test_profile import EVERY_FIELD
from vault.access_export import full_export
from vault.clock import isoformat
from vault.errors import AuthenticationFailed, NotFound, StorageError
from vault.events import Event, ListSink
from vault.offers import Offers
from vrm.services import Services

EMAIL = "ada@example.org"
SHOP = "vnd_" + "5" * 24


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [str(value)]


def distinctive_values(values: dict[str, Any]) -> set[str]:
    """Every string leaf long enough that finding it in a file cannot be chance.

    Two-letter codes ("GB") and booleans turn up by accident inside base64 text, so
    searching for them would prove nothing either way.
    """
    return {leaf for leaf in _leaves(values) if len(leaf) >= 5} | {EMAIL, "Lovelace"}


def every_file_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


def assert_nowhere(root: Path, needles: set[str]) -> None:
    for path, content in every_file_bytes(root):
        lowered = content.lower()
        for needle in needles:
            for form in {needle, needle.lower(), needle.upper()}:
                assert form.encode().lower() not in lowered, f"{needle!r} found in {path}"


def test_no_value_email_or_name_appears_in_any_file(services: Services) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    services.vaults.set_fields(vault_id, EVERY_FIELD)
    services.vaults.set_fields(vault_id, {"given_name": "Augusta Ada"})
    needles = distinctive_values(EVERY_FIELD) | {"Augusta Ada"}
    assert "12 St James's Square" in needles
    assert_nowhere(services.data_dir, needles)


def test_export_holds_the_profile_history_and_login(services: Services, events: ListSink) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    services.vaults.set_fields(vault_id, EVERY_FIELD)
    services.vaults.set_fields(vault_id, {"given_name": "Augusta"})
    exported = services.vaults.export(vault_id)
    assert exported["format"] == "vrm-vault-export/1"
    assert exported["account"] == {"email": EMAIL}
    assert exported["profile"] == {**EVERY_FIELD, "given_name": "Augusta"}
    assert [v["value"] for v in exported["history"]["given_name"]] == ["Ada", "Augusta"]
    assert "vault.exported" in events.types()


def record_vendor_requests(services: Services, vault_id: str) -> list[dict[str, Any]]:
    """A vendor reads two fields of the vault, is refused once, and reads another vault;
    return the vault's access history as every export must give it, oldest first."""
    pseudonym = services.vaults.pseudonym(vault_id)
    at = services.clock()
    size = services.audit.size()
    requests = [
        Event("data.read", at, "vendor", vault=pseudonym, vendor=SHOP, fields=("email", "phone")),
        Event(
            "request.refused",
            at,
            "vendor",
            vault=pseudonym,
            vendor=SHOP,
            detail={"reason": "the grant was revoked", "path": "/api/v1/profile"},
        ),
        Event("data.read", at, "vendor", vault="0" * 32, vendor=SHOP, fields=("email",)),
    ]
    for event in requests:
        services.events.emit(event)
    when = isoformat(at)
    read = {"at": when, "vendor": SHOP, "kind": "read", "fields": ["email", "phone"]}
    refused = {"at": when, "vendor": SHOP, "kind": "refused", "fields": []}
    return [
        {**read, "reason": None, "log_index": size},
        {**refused, "reason": "the grant was revoked", "log_index": size + 1},
    ]


def test_export_shows_a_grant_past_its_end_as_expired_with_its_receipt(
    services: Services, clock: FakeClock
) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    email_grant(services, vault_id, days=7)
    clock.advance(8 * 24 * 3600)

    (grant,) = services.export(vault_id)["grants"]

    assert grant["status"] == "expired"
    assert [r["event"] for r in grant["receipts"]] == ["given", "expired"]


def test_export_holds_every_vendor_read_and_refusal_from_the_log(services: Services) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    expected = record_vendor_requests(services, vault_id)
    exported = full_export(
        services.vaults,
        services.history,
        vault_id,
        offers=services.offers,
        intents=services.intents,
    )
    assert exported["access_history"] == expected
    assert expected[0]["at"] == "2026-11-25T09:00:00.000000Z"
    assert exported["profile"] == {"email": EMAIL}
    for entry in expected:
        assert services.audit.entry(entry["log_index"])["vault"] == services.vaults.pseudonym(
            vault_id
        )


def test_after_erasure_nothing_of_the_vault_can_be_read_or_found(services: Services) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    keep = services.vaults.sign_up("grace@example.org", PASSWORD)
    services.vaults.set_fields(vault_id, EVERY_FIELD)
    backup = services.data_dir.parent / "backup"
    shutil.copytree(services.data_dir / "store", backup)

    services.vaults.erase(vault_id)

    with pytest.raises(AuthenticationFailed):
        services.vaults.authenticate(EMAIL, PASSWORD)
    with pytest.raises(NotFound):
        services.vaults.profile(vault_id)
    assert services.store.get("deks", vault_id) is None
    assert vault_id not in set(services.store.vault_ids())
    assert not any(vault_id in str(p) for p, _ in every_file_bytes(services.data_dir))
    assert_nowhere(services.data_dir, distinctive_values(EVERY_FIELD))
    assert services.vaults.authenticate("grace@example.org", PASSWORD) == keep
    _assert_backup_unreadable(services, backup, vault_id)


def test_an_erasure_cut_short_is_finished_by_the_repair_pass(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step failing after the login is gone would leave a vault nobody can log in to
    erase again: the erasure mark lets the server's repair pass finish it."""
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    services.vaults.set_fields(vault_id, EVERY_FIELD)

    def full_disk(*_: Any) -> None:
        raise StorageError("no space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Offers, "vault_erasing", full_disk)
        with pytest.raises(StorageError):
            services.vaults.erase(vault_id)
    with pytest.raises(AuthenticationFailed):
        services.vaults.authenticate(EMAIL, PASSWORD)
    assert services.store.get("deks", vault_id) is not None  # Not finished yet.

    assert services.vaults.repair_derived() == 1

    assert services.store.get("deks", vault_id) is None
    assert vault_id not in set(services.store.vault_ids())
    assert list(services.store.scan("erasing")) == []
    assert services.vaults.repair_derived() == 0


def _assert_backup_unreadable(services: Services, backup: Path, vault_id: str) -> None:
    """A copy taken before erasure holds ciphertext no remaining key opens."""
    copied = next(backup.rglob(f"{vault_id}.json")).read_text()
    sealed = copied.split('"value": "')[1].split('"')[0]
    for _, record in services.store.scan("deks"):
        for candidate_vault, _ in services.store.scan("deks"):
            try:
                dek = services.keys.keyring.unwrap(WrappedKey.from_record(record), candidate_vault)
            except DecryptionError:
                continue
            with pytest.raises(DecryptionError):
                dek.open(sealed, Context(vault_id, "email", 1))


def test_erasure_is_recorded_as_an_event_without_the_email(
    services: Services, events: ListSink
) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    services.vaults.erase(vault_id)
    erased = [e for e in events.events if e.type == "vault.erased"]
    assert len(erased) == 1
    assert erased[0].vault == services.vaults.pseudonym(vault_id)
    assert EMAIL not in str(erased[0].to_json())
