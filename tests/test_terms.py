"""A customer's personal terms: chosen from a fixed set, kept sealed, exported."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from vault.errors import ValidationError
from vault.terms import TERMS, known_terms
from vrm.services import Services


def test_chosen_terms_are_kept_in_catalogue_order(services: Services) -> None:
    vault_id = services.vaults.sign_up("ada@example.org", PASSWORD)
    assert services.vaults.terms(vault_id) == ()
    chosen = services.vaults.set_terms(vault_id, ["sd-base:no-tracking", "sd-base:service-only"])
    assert chosen == ("sd-base:service-only", "sd-base:no-tracking")
    assert services.vaults.terms(vault_id) == chosen
    assert services.vaults.export(vault_id)["terms"] == list(chosen)


def test_unknown_term_is_refused_and_nothing_changes(services: Services) -> None:
    vault_id = services.vaults.sign_up("ada@example.org", PASSWORD)
    services.vaults.set_terms(vault_id, ["sd-base:no-tracking"])
    with pytest.raises(ValidationError, match="terms"):
        services.vaults.set_terms(vault_id, ["sd-base:no-tracking", "be-nice"])
    assert services.vaults.terms(vault_id) == ("sd-base:no-tracking",)


def test_chosen_terms_are_not_stored_in_clear(services: Services) -> None:
    vault_id = services.vaults.sign_up("ada@example.org", PASSWORD)
    services.vaults.set_terms(vault_id, [t.term_id for t in TERMS])
    for path in services.data_dir.rglob("*.json"):
        assert b"sd-base" not in path.read_bytes()


def test_known_terms_drops_unknown_and_repeats() -> None:
    assert known_terms(["x", "sd-base:no-tracking", "sd-base:no-tracking"]) == (
        "sd-base:no-tracking",
    )
