"""The real server on loopback, for tests that talk to it over HTTP (a vendor's OAuth
client, a browser).

The app is the one ``create_app`` builds, on a data directory the test chooses, served by
werkzeug's threaded WSGI server on ``127.0.0.1``. The port is picked before the app is
built, so ``ISSUER`` is exactly the address the server listens on: the metadata, the
``iss`` of redirects and the audience of tokens all name it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from vrm.app import create_app
from vrm.config import load_config
from vrm.services import Services

SHUTDOWN_SECONDS = 10


@dataclass(frozen=True)
class LiveServer:
    """The running server: its issuer URL, and its services for the customer's side."""

    issuer: str
    services: Services

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.issuer + path


@contextmanager
def serving(data_dir: Path, overrides: Mapping[str, Any] | None = None) -> Iterator[LiveServer]:
    """Serve the app on a fresh loopback port until the block ends.

    ``overrides`` are configuration settings on top of the defaults (the environment is
    ignored, so a developer's ``VRM_`` variables never leak in); ``DATA`` and ``ISSUER``
    are set here.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        issuer = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = {**(overrides or {}), "DATA": str(data_dir), "ISSUER": issuer}
        app = create_app(load_config(settings, environ={}))
        # The server takes over a duplicate of the listening socket.
        server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, fd=listener.fileno()
        )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"live {issuer}"
    )
    thread.start()
    try:
        yield LiveServer(issuer, app.extensions["vrm"])
    finally:
        server.shutdown()
        thread.join(SHUTDOWN_SECONDS)
        server.server_close()
        app.extensions["vrm"].close()
