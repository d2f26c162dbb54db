"""The export page: everything the vault holds, as one JSON file the customer downloads."""

from __future__ import annotations

import json

from flask import Response, render_template

from vrm.app_context import services
from web.customer_session import login_required, signed_in_vault
from web.pages import bp


@bp.get("/export")
@login_required
def export_page() -> str:
    """What the export holds, and the download button."""
    return render_template("export.html")


@bp.post("/export")
@login_required
def export_download() -> Response:
    """The full export as a JSON attachment that no cache keeps.

    A form post (with its CSRF token) rather than a link, because making an export is
    recorded in the log: another site must not be able to cause one.
    """
    document = services().export(signed_in_vault())
    day = str(document["exported_at"])[:10]
    body = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="vrm-vault-export-{day}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response
