"""The pages' Content-Security-Policy, and the one change some forms need."""

from __future__ import annotations

from urllib.parse import urlsplit


def content_security_policy(form_may_lead_to: str | None = None) -> str:
    """The pages' policy. With ``form_may_lead_to`` (a URI), its origin is added to
    form-action: browsers hold every redirect that follows a form's post to it, so a form
    whose answer may redirect to a vendor (consent, or a login that resumes an
    authorization) must name the vendor's redirect origin."""
    allowed = "'self'"
    if form_may_lead_to:
        allowed += " " + origin_of(form_may_lead_to)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"form-action {allowed}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


def origin_of(uri: str) -> str:
    """``scheme://host[:port]`` of ``uri``, rebuilt from its parsed parts, so nothing else
    the URI holds can reach a header."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
