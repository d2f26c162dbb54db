"""Pages for people (customers, auditors): security headers on every response, error pages,
and the front page."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, render_template

bp = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/static"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@bp.get("/")
def home() -> str:
    """What this server is, for a person who opens it in a browser."""
    return render_template("home.html")


def add_security_headers(response: Response) -> Response:
    """Set the headers every response carries, page or JSON."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Register the pages and the headers on ``app``."""
    app.register_blueprint(bp)
    app.after_request(add_security_headers)
