"""The web tests' app, customer and browsers, and the command line's environment."""

from __future__ import annotations

from tests.test_cli import env
from tests.web.conftest import app, browser, customer, vault, vault_id

__all__ = ["app", "browser", "customer", "env", "vault", "vault_id"]
