"""The synchronizer token of the CSRF defence (``web.csrf``): derived from a per-browser cookie,
rendered into every form by ``csrf_field()`` (a global of the templates, ``web.templating``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request
from jinja2 import pass_context
from markupsafe import Markup, escape

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "csrf_field", "form_token", "secret_of"]

CSRF_COOKIE = "dl_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def form_token(secret: str, binding: str) -> str:
    """The synchronizer token of a browser's ``dl_csrf`` cookie value."""
    return hmac.new(secret.encode(), f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()


def secret_of(request: Request) -> str:
    return str(request.app.state.services.settings.web.secret_key)


@pass_context
def csrf_field(context: Any) -> Markup:
    """The hidden token field of a form (``{{ csrf_field() }}``). Empty on a page rendered
    without a request (a publicly cached page: see ``web.csrf.PUBLIC_FORM_TARGETS``)."""
    request = context.get("request")
    if not isinstance(request, Request):
        return Markup("")
    binding = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_new", None)
    if not binding:
        binding = secrets.token_urlsafe(24)
        request.state.csrf_new = binding  # CsrfGuard sets the cookie on the response
    token = form_token(secret_of(request), binding[:100])
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')
