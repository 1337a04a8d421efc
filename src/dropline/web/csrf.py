"""Cross-site request forgery defence for every cookie-authenticated write (issue 20).

Two checks, both skipped for API calls that carry ``Authorization: Bearer`` (a browser never
attaches that header across sites, so such calls cannot be forged):

* ``CsrfGuard`` (pure ASGI, in front of everything, the drop purchase lane included): an
  unsafe request (POST, PUT, PATCH, DELETE) is refused with 403 when the browser says it comes
  from another origin (``Sec-Fetch-Site: cross-site`` or ``same-site``, an ``Origin`` or
  ``Referer`` naming another host, or ``Origin: null``), sign-in included (login CSRF); and a
  cookie-authenticated call must send JSON to the API (``application/json``, or multipart to
  an upload, which the form token guards), or a form or JSON to a page, never ``text/plain``
  (a content type a cross-site form can send): 415.
* ``require_form_token`` (an app-wide dependency): every form post (urlencoded or multipart)
  carries the synchronizer token that ``csrf_field()`` renders as a hidden field, or sends it
  as ``X-CSRF-Token``. The token is an HMAC, under the app's secret key, of a random per-browser
  cookie (``dl_csrf``), set when a page first renders a form; it outlives a sign-in, so a form
  queued offline still replays. The forms of the publicly cached pages (add to cart, join a
  drop's queue or wait list) cannot carry a per-browser token; those few targets accept,
  instead, a positive same-origin proof from the browser (``Sec-Fetch-Site: same-origin`` or a
  matching ``Origin``).

Refusals are problem+json for the API and a page with the message for forms.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropline.web.formtoken import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, form_token, secret_of
from dropline.web.problems import refusal

__all__ = ["CsrfGuard", "Refused", "on_refused", "refusal", "require_form_token"]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Form targets posted from publicly cached pages (rendered with nothing about the visitor).
PUBLIC_FORM_TARGETS = re.compile(r"/cart/lines|/drops/\d{1,19}/(queue|waitlist)")
# Form targets authenticated by a token in their path, not by a cookie, so exempt from the
# form token by design: the one-click unsubscribe of marketing mail (RFC 8058), which a
# receiving mail system POSTs with no cookie and no page. The token is signed and works once
# (``notifications.service.unsubscribe``), so a forger who lacks it can do nothing; a
# cross-site browser post is still refused by the guard's header checks.
TOKEN_AUTHENTICATED_FORM_TARGETS = re.compile(r"/unsubscribe/[A-Za-z0-9_.-]{1,200}")


class Refused(Exception):
    """A request refused before its endpoint runs (a missing form token, a throttle): answered
    by ``on_refused`` as problem+json for the API and as a page with the message for forms."""

    def __init__(self, status: int, message: str, *, slug: str, title: str,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.message = message
        self.slug = slug
        self.title = title
        self.headers = headers


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return "\x00"  # unparsable: matches no host


# The request headers the checks and a refusal read; the others are not decoded.
_READ = frozenset({b"authorization", b"sec-fetch-site", b"origin", b"referer", b"host",
                   b"x-forwarded-host", b"cookie", b"content-type", b"content-length",
                   b"transfer-encoding", b"accept"})


# The headers by which a browser tells where a request comes from (``cross_origin``).
_ORIGIN_HEADERS = frozenset({b"sec-fetch-site", b"origin", b"referer"})


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
            if (name := k.lower()) in _READ}


def _is_bearer(headers: dict[str, str]) -> bool:
    return headers.get("authorization", "").lower().startswith("bearer ")


def cross_origin(headers: dict[str, str]) -> bool:
    """What the browser says about where the request comes from; absent headers (a script, an
    old browser) say nothing, and the token check stands alone."""
    site = headers.get("sec-fetch-site", "")
    if site in ("cross-site", "same-site"):
        return True
    origin = headers.get("origin")
    if origin is not None:
        return origin == "null" or _host_of(origin) not in _own_hosts(headers)
    referer = headers.get("referer")
    return referer is not None and _host_of(referer) not in _own_hosts(headers)


def _own_hosts(headers: dict[str, str]) -> set[str]:
    """The host the browser addressed: ``Host``, or the one a proxy forwarded (a header a
    cross-site page cannot set on a browser's request)."""
    hosts = {headers.get("host", "").lower()}
    forwarded = headers.get("x-forwarded-host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip().lower())
    return hosts - {""}


def same_origin_proven(headers: dict[str, str]) -> bool:
    if headers.get("sec-fetch-site") == "same-origin":
        return True
    origin = headers.get("origin")
    return origin is not None and origin != "null" and _host_of(origin) in _own_hosts(headers)


def _has_body(headers: dict[str, str]) -> bool:
    return headers.get("content-length", "0") not in ("", "0") or \
        "transfer-encoding" in headers


def _content_refused(path: str, headers: dict[str, str]) -> bool:
    """A cookie-authenticated call with a body a cross-site form could have sent."""
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if not kind:
        return _has_body(headers)
    is_json = kind == "application/json" or kind.endswith("+json")
    if path.startswith("/api/"):
        # Multipart (the media uploads' documented type) passes on: a form type, so the
        # synchronizer token is required of it (``require_form_token``) like any form post.
        return not (is_json or kind == "multipart/form-data")
    return not (is_json or kind in FORM_TYPES)


class CsrfGuard:
    """The header checks, before any routing. ``session_cookies`` are the cookies that
    authenticate a browser (the storefront's and the console's sessions); ``refusal_headers``
    are added to the guard's own refusals."""

    def __init__(self, app: ASGIApp, *, session_cookies: tuple[str, ...], shop_name: str,
                 cookie_secure: bool, cookie_days: int,
                 refusal_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.app = app
        # Added to the guard's own refusals, which are answered before the app's middleware
        # (the app's security headers).
        self.refusal_headers = refusal_headers or []
        self.session_cookies = session_cookies
        self._cookie_marks = tuple(f"{name}=" for name in session_cookies)
        self.shop_name = shop_name
        self.cookie_secure = cookie_secure
        self.cookie_days = cookie_days

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # where csrf_field() leaves a new cookie's value
        refused = self.refusal_for(scope)
        if refused is not None:
            refused.raw_headers += self.refusal_headers
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, self._with_cookie(scope, send))

    def refusal_for(self, scope: Scope) -> Response | None:
        """The answer to an HTTP request the header checks refuse, or None. The drop lane
        calls it for its own requests, which render no form and so need no cookie set.

        One pass over the raw headers decides the common API calls without decoding any: a
        bearer call passes, and so does a JSON body that names no origin (no
        ``Sec-Fetch-Site``, ``Origin`` or ``Referer``), as the full checks would decide
        them (the last value of a repeated header counts, as in ``_headers``). Anything else
        takes the full checks."""
        if scope["method"] not in UNSAFE_METHODS:
            return None
        authorization = kind = None
        names_origin = False
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"content-type":
                kind = value
            elif name == b"authorization":
                authorization = value
            elif name in _ORIGIN_HEADERS:
                names_origin = True
        if authorization is not None and authorization[:7].lower() == b"bearer ":
            return None
        if not names_origin and kind is not None and kind.lower() == b"application/json":
            return None
        headers = _headers(scope)
        return self._check(scope["path"], headers)

    def _check(self, path: str, headers: dict[str, str]) -> Response | None:
        if cross_origin(headers):
            return refusal(path, headers, status=403, slug="cross-origin-refused",
                           title="Request refused",
                           message="This request came from another site, so it was refused. "
                                   "Use the form on this site.", shop_name=self.shop_name)
        cookies = headers.get("cookie", "")
        signed_in = any(mark in cookies for mark in self._cookie_marks)
        if signed_in and _content_refused(path, headers):
            return refusal(path, headers, status=415, slug="unsupported-media-type",
                           title="Unsupported media type",
                           message="Send JSON (Content-Type: application/json).",
                           shop_name=self.shop_name)
        return None

    def _with_cookie(self, scope: Scope, send: Send) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                binding = scope.get("state", {}).get("csrf_new")
                if binding:
                    cookie = (f"{CSRF_COOKIE}={binding}; Path=/; Max-Age="
                              f"{self.cookie_days * 86400}; HttpOnly; SameSite=Lax")
                    if self.cookie_secure:
                        cookie += "; Secure"
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"],
                                          (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)
        return sending


async def require_form_token(request: Request) -> None:
    """Every form post carries its page's token (field or header); see the module's text."""
    if request.method not in UNSAFE_METHODS:
        return
    headers = {k.lower(): v for k, v in request.headers.items()}
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in FORM_TYPES or _is_bearer(headers) or \
            TOKEN_AUTHENTICATED_FORM_TARGETS.fullmatch(request.url.path):
        return
    sent = headers.get(CSRF_HEADER)
    if not sent:
        field = (await request.form()).get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    binding = request.cookies.get(CSRF_COOKIE, "")[:100]
    if sent and binding and hmac.compare_digest(sent[:100], form_token(secret_of(request),
                                                                       binding)):
        return
    if PUBLIC_FORM_TARGETS.fullmatch(request.url.path) and same_origin_proven(headers):
        return
    raise Refused(403, "This form has expired or did not come from this site. "
                       "Reload the page and try again.", slug="csrf-token-missing",
                  title="Request refused")


def on_refused(request: Request, exc: Refused) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    return refusal(request.url.path, headers, status=exc.status, slug=exc.slug,
                   title=exc.title, message=exc.message, extra_headers=exc.headers,
                   shop_name=request.app.state.services.settings.shop.name)
