"""What ``vrm serve`` does by itself: deliver webhooks every few seconds and expire grants
hourly, decided by the clock (moved by hand here), and the commands that do the same."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import PASSWORD, FakeClock
from vault.events import ListSink
from vrm.cli import cli
from vrm.services import Services
from vrm.worker import EXPIRY_EVERY, WEBHOOK_EVERY, Scheduler

PURPOSES = {"email": "send receipts"}


def grant_for_a_week(services: Services) -> str:
    vault_id = services.vaults.sign_up("ada@example.org", PASSWORD)
    vendor, _ = services.vendors.register(
        {
            "client_name": "Shop",
            "redirect_uris": ["https://shop.example/cb"],
            "scope": "profile:email",
            "vrm_field_purposes": PURPOSES,
        }
    )
    services.consents.give(vault_id, vendor.client_id, ["email"], days=7)
    return vault_id


def test_each_pass_runs_when_due(services: Services, clock: FakeClock) -> None:
    scheduler = Scheduler(services)

    assert scheduler.tick() == ["webhooks", "expiry"]
    assert scheduler.tick() == []
    clock.advance(WEBHOOK_EVERY.total_seconds())
    assert scheduler.tick() == ["webhooks"]
    clock.advance(EXPIRY_EVERY.total_seconds())
    assert scheduler.tick() == ["webhooks", "expiry"]


def test_the_hourly_pass_expires_a_grant_nobody_looked_at(
    services: Services, clock: FakeClock, events: ListSink
) -> None:
    vault_id = grant_for_a_week(services)
    scheduler = Scheduler(services)
    scheduler.tick()
    clock.advance(timedelta(days=7, minutes=30).total_seconds())

    scheduler.tick()

    assert "grant.expired" in events.types()
    doc = services.store.read_vault(vault_id)
    assert [g["status"] for g in doc["grants"].values()] == ["expired"]


def test_the_hourly_pass_forgets_revocations_of_tokens_that_expired(
    services: Services, clock: FakeClock
) -> None:
    vendor, _ = services.vendors.register(
        {"client_name": "Counter", "grant_types": ["client_credentials"], "scope": "segments:query"}
    )
    token, _ = services.access.access_token(vendor.client_id, ("segments:query",))
    services.access.revoke(token, vendor.client_id)
    scheduler = Scheduler(services)
    scheduler.tick()
    assert len(list(services.store.scan("revoked_tokens"))) == 1  # Still live: kept.

    clock.advance(EXPIRY_EVERY.total_seconds())
    scheduler.tick()

    assert list(services.store.scan("revoked_tokens")) == []


def test_a_failing_pass_is_logged_and_the_schedule_goes_on(
    services: Services,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(services.webhooks, "deliver_due", broken)
    scheduler = Scheduler(services)

    assert scheduler.tick() == ["webhooks", "expiry"]
    assert "scheduled webhooks pass failed" in caplog.text


def test_vrm_grant_expire_and_webhooks_commands(
    services: Services, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VRM_DATA", str(data_dir))
    runner = CliRunner()

    expired = runner.invoke(cli, ["grant", "expire"], catch_exceptions=False)
    delivered = runner.invoke(cli, ["webhooks", "deliver"], catch_exceptions=False)
    listed = runner.invoke(cli, ["webhooks", "list"], catch_exceptions=False)

    assert expired.exit_code == 0
    assert "0 grants expired" in expired.output
    assert delivered.exit_code == 0
    assert "0 delivered, 0 to retry, 0 given up" in delivered.output
    assert listed.output.strip() == "[]"


def test_derived_records_a_crash_left_behind_are_repaired(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that died after the vault write but before the mailbox and index followed:
    the vault stays marked pending, and the next pass brings them in line."""
    vault_id = services.vaults.sign_up("ada@example.org", PASSWORD)
    services.vaults.set_fields(vault_id, {"channel_preferences": {"email": True}})
    assert services.offers.export(vault_id)["channels"] == ["email"]

    def died(*_: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(services.offers, "vault_changed", died)
    with pytest.raises(SystemExit):
        services.vaults.set_fields(vault_id, {"channel_preferences": {"email": False}})
    monkeypatch.undo()
    assert services.offers.export(vault_id)["channels"] == ["email"]  # Stale.

    assert services.vaults.repair_derived() == 1

    assert services.offers.export(vault_id)["channels"] == []
    assert services.vaults.repair_derived() == 0


def test_changes_no_observer_follows_leave_no_mark(services: Services) -> None:
    vault_id = services.vaults.sign_up("ada@example.org", PASSWORD)
    services.vaults.set_fields(vault_id, {"given_name": "Ada"})
    assert list(services.store.scan("derived_pending")) == []
