"""Fixtures shared by every test: a clock that tests move by hand, cheap password hashing,
and services on a real data directory in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from vault.events import ListSink
from vault.grants import Grant
from vrm.app import create_app
from vrm.config import load_config
from vrm.services import Services, build_services

# Argon2id at its production cost takes ~0.2 s a hash; tests use the smallest legal cost.
FAST_ARGON2 = {"ARGON2_MEMORY_KIB": 8, "ARGON2_ITERATIONS": 1, "ARGON2_LANES": 1}
PASSWORD = "correct horse battery staple"


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "vrm-data"


# The audit log's durability is tested in tests/audit; elsewhere fsync would only slow
# tests down.
FAST_AUDIT = {"AUDIT_SYNC": "none"}


@pytest.fixture
def config(data_dir: Path) -> dict[str, Any]:
    return load_config({"DATA": str(data_dir), **FAST_ARGON2, **FAST_AUDIT}, environ={})


@pytest.fixture
def events() -> ListSink:
    return ListSink()


def make_app(config: dict[str, Any], clock: FakeClock, events: ListSink) -> Flask:
    """The app over services with the test's clock and event list."""
    built = build_services(config, clock=clock, events=events)
    application = create_app(config, services=built)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def services(config: dict[str, Any], clock: FakeClock, events: ListSink) -> Iterator[Services]:
    built = build_services(config, clock=clock, events=events)
    yield built
    built.close()


def command_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Set the ``VRM_`` variables the commands read (this data directory, no fsync of the
    log, a fast password hash); return the data directory."""
    values = {"VRM_DATA": str(data_dir), "VRM_AUDIT_SYNC": "none"}
    values |= {f"VRM_{k}": str(v) for k, v in FAST_ARGON2.items()}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return data_dir


def email_grant(services: Services, vault_id: str, days: int = 90) -> Grant:
    """A new vendor ("Shop", reading the email for receipts) and the vault's grant to it."""
    vendor, _ = services.vendors.register(
        {
            "client_name": "Shop",
            "redirect_uris": ["https://shop.example/cb"],
            "scope": "profile:email",
            "vrm_field_purposes": {"email": "receipts"},
        }
    )
    return services.consents.give(vault_id, vendor.client_id, ["email"], days=days)
