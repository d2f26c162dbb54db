"""The customer's full export: what the vault file holds, and the access history.

``vrm vault export`` and the export page both give exactly this, so the two never differ.
The vault service exports the vault file; the access history lives in the audit log, which
the service does not read, so the two are joined here.
"""

from __future__ import annotations

from typing import Any

from vault.access_history import AccessHistory
from vault.clock import isoformat
from vault.intents import IntentBoard
from vault.offers import Offers
from vault.service import VaultService

ACCESS_HISTORY = "access_history"


def full_export(
    vaults: VaultService,
    history: AccessHistory,
    vault_id: str,
    *,
    offers: Offers | None = None,
    intents: IntentBoard | None = None,
) -> dict[str, Any]:
    """Everything the vault holds (see ``VaultService.export``) plus its access history,
    and, when given, its mailbox of offers and the intents it published."""
    document = vaults.export(vault_id)
    document[ACCESS_HISTORY] = access_history_json(history, vault_id)
    document["segmentable"] = list(vaults.segmentable(vault_id))
    if offers is not None:
        document["offers"] = offers.export(vault_id)
    if intents is not None:
        document["intents"] = [intent.to_json() for intent in intents.mine(vault_id)]
    return document


def access_history_json(history: AccessHistory, vault_id: str) -> list[dict[str, Any]]:
    """Every vendor read of the vault and every refused vendor request, oldest first.

    Each entry keeps its index in the audit log, so the customer can later ask for the
    proof that it is in the log an auditor checks (``/audit/proof/inclusion``).
    """
    return [
        {
            "at": isoformat(entry.at),
            "vendor": entry.vendor_id,
            "kind": entry.kind,
            "fields": list(entry.fields),
            "reason": entry.reason,
            "log_index": entry.log_index,
        }
        for entry in reversed(history.entries(vault_id))
    ]
