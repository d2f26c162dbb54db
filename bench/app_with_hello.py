"""The production app plus ``GET /bench/hello``, for ``bench/oauth_throughput.py``.

The hello-world route is the benchmark's yardstick: it goes through the same gunicorn
workers, the same Flask app, its request hooks (sessions, CSRF check, security headers)
and JSON encoding as the real endpoints, but does no OAuth or vault work. It lives here,
not in ``vrm/``, so the production app never has it. Configuration comes from ``VRM_``
environment variables, as for ``vrm serve``.

    gunicorn --pythonpath .,bench app_with_hello:app
"""

from __future__ import annotations

from typing import Any

from vrm.app import create_app

app = create_app()


@app.get("/bench/hello")
def hello() -> dict[str, Any]:
    """A tiny JSON body, and nothing else."""
    return {"hello": "world"}
