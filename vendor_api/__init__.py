"""The vendor-facing JSON API: key discovery now; the OAuth server and resources build on it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from vrm.app_context import services

bp = Blueprint("vendor_api", __name__)


@bp.get("/jwks.json")
def jwks() -> dict[str, Any]:
    """The server's public signing keys (receipts and log checkpoints are signed by them)."""
    return services().keys.signing.jwks()


@bp.get("/healthz")
def health() -> dict[str, Any]:
    """Liveness: the process answers and can reach its store."""
    services().store.count_vaults()
    return {"status": "ok"}


def init_app(app: Flask) -> None:
    """Register the vendor API on ``app``."""
    app.register_blueprint(bp)
