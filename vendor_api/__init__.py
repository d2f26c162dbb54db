"""The vendor-facing side: OAuth 2.0 server, discovery, and the JSON API."""

from __future__ import annotations

from flask import Flask

from vendor_api import (
    auditor_api,
    consent,
    discovery,
    endpoints,
    openapi,
    reach,
    resources,
    transparency,
)
from vendor_api.oauth import build_server
from vrm.services import Services, issuer_of


def init_app(app: Flask) -> None:
    """Register the authorization server and the vendor endpoints on ``app``."""
    services: Services = app.extensions["vrm"]
    app.extensions["vrm_oauth"] = build_server(
        app, vendors=services.vendors, access=services.access, issuer=issuer_of(services.config)
    )
    blueprints = (discovery.bp, endpoints.bp, consent.bp, resources.bp, openapi.bp)
    for blueprint in (*blueprints, reach.bp, transparency.bp, auditor_api.bp):
        app.register_blueprint(blueprint)
