"""Builds the vault's services from settings; shared by the web app and the command line."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keys import KeySet, open_keys
from keys.files import ensure_private_dir
from vault.accounts import LoginPolicy
from vault.clock import Clock, system_clock
from vault.events import EventSink, NullSink
from vault.passwords import PasswordHasher
from vault.service import Vaults, VaultService
from vault.storage import Store, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """Everything a request or a command works with."""

    config: Mapping[str, Any]
    data_dir: Path
    store: Store
    keys: KeySet
    events: EventSink
    vaults: VaultService

    def close(self) -> None:
        """Release the store."""
        self.store.close()


def build_services(
    config: Mapping[str, Any], *, clock: Clock = system_clock, events: EventSink | None = None
) -> Services:
    """Open keys and storage under the configured data directory (created on first run)."""
    data_dir = ensure_private_dir(Path(config["DATA"]).expanduser())
    keys = open_keys(data_dir / "keys", kek=config["KEK"] or None)
    if config["STORE"] == "memory":
        log.warning("STORE=memory keeps everything in memory and loses it on exit: tests only")
    store = open_store(config["STORE"], root=data_dir / "store")
    sink = events if events is not None else NullSink()
    vaults = VaultService(
        Vaults(
            store=store,
            keyring=keys.keyring,
            index_key=keys.index_key,
            hasher=PasswordHasher(
                memory_kib=config["ARGON2_MEMORY_KIB"],
                iterations=config["ARGON2_ITERATIONS"],
                lanes=config["ARGON2_LANES"],
            ),
            events=sink,
            clock=clock,
            login_policy=LoginPolicy(
                free_attempts=config["LOGIN_FREE_ATTEMPTS"],
                base_delay=config["LOGIN_BASE_DELAY"],
                max_delay=config["LOGIN_MAX_DELAY"],
            ),
        )
    )
    return Services(config, data_dir, store, keys, sink, vaults)
