"""Security headers on every answer: pages, API answers and errors alike.

* ``Content-Security-Policy``: scripts only from this origin and never inline (the templates
  keep their scripts in ``static/``; JSON data blocks are not scripts), no plugins, forms post
  only here, and no page may be framed (``frame-ancestors 'none'``, with ``X-Frame-Options:
  DENY`` for older browsers), so the console's sign-in cannot be clickjacked. Inline styles stay
  allowed: server-rendered charts and a few pages carry them, and a style cannot run code.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: strict-origin-when-cross-origin``.
* ``Strict-Transport-Security`` when ``cookie_secure`` says the site is served over HTTPS.

A page may widen the policy for itself only: ``allow_sources(request, script_src=[...])``
adds origins to named directives of that one answer's policy (the payment pages add the card
provider's script, API and frames: ``web.payment_page``); every other answer keeps the base
policy. A pure ASGI middleware (no per-request task or body buffering); a header a route set
itself is kept.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityHeadersMiddleware", "allow_sources",
           "content_security_policy", "security_headers"]

_DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "worker-src 'self' blob:",  # ReDoc's search runs in a worker built from a blob
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]
CONTENT_SECURITY_POLICY = "; ".join(_DIRECTIVES)
_STATE_KEY = "csp_sources"  # in the request's state (the ASGI scope's "state")
HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(extra: dict[str, Iterable[str]] | None = None) -> str:
    """The base policy with ``extra`` origins added to the named directives (``script-src``,
    ``connect-src``, ``frame-src`` ...); a directive the base lacks is added."""
    if not extra:
        return CONTENT_SECURITY_POLICY
    directives = [d.split(" ", 1) for d in _DIRECTIVES]
    names = [name for name, _ in directives]
    for name in extra:
        if name not in names:
            directives.append([name, "'self'"])
            names.append(name)
    return "; ".join(
        " ".join([name, value, *sorted(set(extra.get(name, ())))]) for name, value in directives)


def allow_sources(request: Request, directives: dict[str, Iterable[str]]) -> None:
    """Widens this one answer's policy (``{"script-src": ["https://js.stripe.com"]}``)."""
    sources: dict[str, set[str]] = request.scope.setdefault("state", {}).setdefault(
        _STATE_KEY, {})
    for name, origins in directives.items():
        sources.setdefault(name, set()).update(origins)


def security_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
    ]
    if https:
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Made here, so the routes below share this very dict (``allow_sources`` writes to it).
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                headers = self.headers
                widened = state.get(_STATE_KEY)
                if widened:
                    policy = content_security_policy(widened).encode()
                    headers = [(k, policy if k == b"content-security-policy" else v)
                               for k, v in headers]
                extra = [(k, v) for k, v in headers if k not in present]
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
