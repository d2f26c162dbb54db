"""The one place that wires the server together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

import vendor_api
import web
from vrm.config import load_config
from vrm.http_errors import register_error_handlers
from vrm.services import Services, build_services, issuer_of

MAX_REQUEST_BYTES = 1024 * 1024


def create_app(
    config: Mapping[str, Any] | None = None, *, services: Services | None = None
) -> Flask:
    """Build the Flask app from defaults, instance file, environment, then ``config``.

    ``services`` lets a caller (tests, tools) bring services it built itself, with its own
    clock or event sink; by default they are built from the settings.
    """
    settings = load_config(config)
    services = services or build_services(settings)
    app = Flask("vrm", instance_path=str(services.data_dir.resolve()), static_folder=None)
    app.config.from_mapping(settings)
    app.config.update(
        SECRET_KEY=services.keys.session_key,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Over https (the issuer says where people reach the server) the session cookie is
        # never sent in plain http, whatever VRM_SECURE_COOKIES says.
        SESSION_COOKIE_SECURE=bool(settings["SECURE_COOKIES"])
        or urlsplit(issuer_of(settings)).scheme.lower() == "https",
    )
    app.extensions["vrm"] = services
    register_error_handlers(app)
    vendor_api.init_app(app)
    web.init_app(app)
    return app
