"""Request-time access to the services the app factory built."""

from __future__ import annotations

from typing import cast

from flask import current_app

from vrm.services import Services


def services() -> Services:
    """The services of the app handling the current request."""
    return cast(Services, current_app.extensions["vrm"])
