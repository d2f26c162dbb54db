"""Finding a consent receipt by its id for an auditor, and checking its signature.

Receipts live in the grants of vault documents; the lookup reads only the grants, never a
profile, and a receipt names pseudonyms, the vendor and field names, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vault.receipts import InvalidReceipt, verify_receipt
from vault.storage.base import Store


@dataclass(frozen=True)
class FoundReceipt:
    """A receipt, its claims, and whether it verifies against the server's keys."""

    receipt_id: str
    event: str
    at: str
    claims: dict[str, Any]
    verifies: bool
    problem: str | None


def find_receipt(store: Store, receipt_id: str, jwks: Mapping[str, Any]) -> FoundReceipt | None:
    """The receipt with ``receipt_id`` in any vault, checked against ``jwks``; else None."""
    wanted = receipt_id.strip().lower()
    if not wanted:
        return None
    for vault_id in store.vault_ids():
        for grant in store.read_vault(vault_id).get("grants", {}).values():
            for receipt in grant.get("receipts", ()):
                if str(receipt["id"]).lower() == wanted:
                    return _checked(receipt, jwks)
    return None


def _checked(receipt: Mapping[str, Any], jwks: Mapping[str, Any]) -> FoundReceipt:
    try:
        claims, verifies, problem = verify_receipt(receipt["jws"], jwks), True, None
    except InvalidReceipt as error:
        claims, verifies, problem = {}, False, str(error)
    return FoundReceipt(
        str(receipt["id"]), str(receipt["event"]), str(receipt["at"]), claims, verifies, problem
    )
