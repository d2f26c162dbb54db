"""Builds the vault's services from settings; shared by the web app and the command line."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from keys import KeySet, open_keys
from keys.errors import MissingKeys
from keys.files import ensure_private_dir
from keys.signing import SIGNING_FILE
from vault.access import EndedChains, VendorAccess
from vault.access_export import full_export
from vault.access_history import AccessHistory
from vault.accounts import LoginPolicy
from vault.audit import AuditLog, AuditSink
from vault.audit.signer import CheckpointSigner
from vault.auditors import Auditors
from vault.clock import Clock, system_clock
from vault.datakeys import DataKeys
from vault.events import EventSink, FanOut
from vault.grants import Consents, ConsentSettings
from vault.intents import IntentBoard
from vault.offers import Offers
from vault.passwords import PasswordHasher
from vault.segment_counts import CountPolicy, SegmentCounts
from vault.segments import SegmentIndex, SegmentUpdater
from vault.service import Vaults, VaultService
from vault.storage import Store, open_store
from vault.tokens import TokenSealer
from vault.vendors import VendorRegistry
from vault.webhooks import HttpTransport, Transport, Webhooks

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
    vendors: VendorRegistry
    consents: Consents
    access: VendorAccess
    clock: Clock
    audit: AuditLog
    history: AccessHistory
    checkpoints: CheckpointSigner
    auditors: Auditors
    segments: SegmentCounts
    segment_index: SegmentIndex
    webhooks: Webhooks
    intents: IntentBoard
    offers: Offers

    def export(self, vault_id: str) -> dict[str, Any]:
        """Everything a customer's export holds (see ``vault.access_export``); the web page
        and ``vrm vault export`` both give exactly this. Grants past their end are marked
        expired first, with their receipts, so the export shows them as they stand."""
        self.consents.expire_due(vault_id)
        return full_export(
            self.vaults, self.history, vault_id, offers=self.offers, intents=self.intents
        )

    def close(self) -> None:
        """Release the store and the log."""
        self.store.close()
        self.audit.close()


def store_root(config: Mapping[str, Any]) -> Path:
    """Where a file-based store keeps its files: ``store`` under the data directory."""
    return Path(config["DATA"]).expanduser() / "store"


def key_dir(config: Mapping[str, Any]) -> Path:
    """Where the operator's keys are: ``keys`` under the data directory, made private
    (with the data directory) if it is not there yet."""
    data_dir = ensure_private_dir(Path(config["DATA"]).expanduser(), may_be_link=True)
    return ensure_private_dir(data_dir / "keys")


#: The keys without which what a data directory holds cannot be read or checked: made anew,
#: they would not open the vaults' data keys (the KEK), find a vault's records (the index
#: key) or sign as the log and the receipts did (the signing key).
_KEYS_OF_DATA = ("index.key", SIGNING_FILE)


def _check_keys_of_data(data_dir: Path, *, kek_from_environment: bool) -> None:
    """Raise MissingKeys if ``data_dir`` holds a store or an audit log but a key its data
    needs is missing (keys restored apart from the data, say), rather than making new
    keys beside it."""
    held = [part for part in ("store", "audit") if _non_empty(data_dir / part)]
    if not held:
        return
    keys = data_dir / "keys"
    missing = [name for name in _KEYS_OF_DATA if not (keys / name).is_file()]
    if not kek_from_environment and not _non_empty(keys / "kek"):
        missing.append("kek/")
    if missing:
        raise MissingKeys(
            f"{data_dir} holds {' and '.join(held)} but its keys folder lacks "
            f"{', '.join(missing)}: put its keys back there (new keys would leave what it "
            "holds unreadable)"
        )


def _non_empty(directory: Path) -> bool:
    try:
        return any(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False


def build_services(
    config: Mapping[str, Any],
    *,
    clock: Clock = system_clock,
    events: EventSink | None = None,
    transport: Transport | None = None,
) -> Services:
    """Open keys and storage under the configured data directory (created on first run)."""
    data_dir = ensure_private_dir(Path(config["DATA"]).expanduser(), may_be_link=True)
    _check_keys_of_data(data_dir, kek_from_environment=bool(config["KEK"]))
    keys = open_keys(key_dir(config), kek=config["KEK"] or None)
    if config["STORE"] == "memory":
        log.warning("STORE=memory keeps everything in memory and loses it on exit: tests only")
    store = open_store(config["STORE"], root=store_root(config))
    audit = AuditLog(data_dir / "audit", sync=config["AUDIT_SYNC"])
    for note in audit.recovered:
        log.warning("audit log repaired on open: %s", note)
    sink: EventSink = AuditSink(audit) if events is None else FanOut(AuditSink(audit), events)
    hasher = PasswordHasher(
        memory_kib=config["ARGON2_MEMORY_KIB"],
        iterations=config["ARGON2_ITERATIONS"],
        lanes=config["ARGON2_LANES"],
    )
    policy = LoginPolicy(
        free_attempts=config["LOGIN_FREE_ATTEMPTS"],
        base_delay=config["LOGIN_BASE_DELAY"],
        max_delay=config["LOGIN_MAX_DELAY"],
    )
    vendors = VendorRegistry(store, clock=clock, events=sink)
    webhooks = Webhooks(
        store=store,
        vendors=vendors,
        signing=keys.signing,
        issuer=issuer_of(config),
        index_key=keys.index_key,
        transport=transport or HttpTransport(allow_private=webhooks_may_reach_private(config)),
        events=sink,
        clock=clock,
    )
    consents = Consents(
        store=store,
        vendors=vendors,
        signing=keys.signing,
        index_key=keys.index_key,
        settings=ConsentSettings(issuer=issuer_of(config), jurisdiction=config["JURISDICTION"]),
        events=sink,
        clock=clock,
        rng=os.urandom,
        observers=(EndedChains(store), webhooks),
    )
    datakeys = DataKeys(store, keys.keyring)
    access = VendorAccess(
        store=store,
        vendors=vendors,
        consents=consents,
        datakeys=datakeys,
        sealer=TokenSealer(keys.token_key),
        events=sink,
        clock=clock,
    )
    segment_index = SegmentIndex(store, key=keys.index_key)
    segments = SegmentCounts(
        index=segment_index,
        store=store,
        key=keys.index_key,
        policy=CountPolicy(
            k=config["SEGMENT_K"],
            noise=config["SEGMENT_NOISE"],
            daily_queries=config["SEGMENT_DAILY_QUERIES"],
        ),
        events=sink,
        clock=clock,
    )
    intents = IntentBoard(
        store=store, datakeys=datakeys, index_key=keys.index_key, events=sink, clock=clock
    )
    offers = Offers(
        store=store,
        vendors=vendors,
        index=segment_index,
        counts=segments,
        consents=consents,
        codes=access,
        intents=intents,
        datakeys=datakeys,
        webhooks=webhooks,
        index_key=keys.index_key,
        events=sink,
        clock=clock,
        cap_default=config["OFFER_CAP_DEFAULT"],
    )
    vaults = VaultService(
        Vaults(
            store=store,
            keyring=keys.keyring,
            index_key=keys.index_key,
            hasher=hasher,
            events=sink,
            clock=clock,
            login_policy=policy,
            observers=(
                SegmentUpdater(segment_index, key=keys.index_key),
                webhooks,
                offers,
                intents,
            ),
        )
    )
    history = AccessHistory(audit, keys.index_key)
    configured = any(str(config.get(name) or "").strip() for name in ("AUDIT_ORIGIN", "ISSUER"))
    checkpoints = CheckpointSigner(
        audit, keys.signing, audit_origin(config), keep_recorded=not configured
    )
    auditors = Auditors(store, index_key=keys.index_key, hasher=hasher, clock=clock, policy=policy)
    parts = (vaults, vendors, consents, access, clock, audit, history, checkpoints, auditors)
    extra = (segments, segment_index, webhooks, intents, offers)
    return Services(config, data_dir, store, keys, sink, *parts, *extra)


def audit_origin(config: Mapping[str, Any]) -> str:
    """The checkpoint origin (also the note key name): AUDIT_ORIGIN, else derived from the
    issuer as ``<host[:port][/path]>/vrm-vault/audit``.

    With neither AUDIT_ORIGIN nor ISSUER set, the issuer is only where this process would
    listen, which ``vrm serve --port`` and the commands see differently: the checkpoint
    signer then keeps the origin the log was last signed under (see CheckpointSigner).
    """
    origin = str(config.get("AUDIT_ORIGIN") or "").strip()
    if origin:
        return origin
    return f"{issuer_of(config).split('://', 1)[-1].rstrip('/')}/vrm-vault/audit"


def issuer_of(config: Mapping[str, Any]) -> str:
    """The server's issuer URL: ``ISSUER`` if set, else where ``vrm serve`` listens."""
    issuer = str(config["ISSUER"]).rstrip("/")
    host = str(config["HOST"])
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # An IPv6 address, as a URL writes it.
    return issuer or f"http://{host}:{config['PORT']}"


def webhooks_may_reach_private(config: Mapping[str, Any]) -> bool:
    """Whether webhooks may go to loopback and private addresses: WEBHOOK_ALLOW_PRIVATE if
    set, else only when the server itself runs on loopback (a developer's machine)."""
    setting = str(config.get("WEBHOOK_ALLOW_PRIVATE") or "").strip().lower()
    if setting:
        return setting in ("1", "true", "yes", "on")
    host = urlsplit(issuer_of(config)).hostname or ""
    return host in ("127.0.0.1", "::1", "localhost")
