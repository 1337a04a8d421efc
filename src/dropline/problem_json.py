"""RFC 9457 ``application/problem+json``: the media type and the headers a refusal carries.

Below the HTTP floor so the drop engine (``drops.crowd``), which answers refusals without going
through FastAPI, and ``dropline.web.problems`` encode refusals the same way."""

from __future__ import annotations

from dropline.errors import DomainError

PROBLEM_JSON = "application/problem+json"


def problem_headers(exc: DomainError) -> dict[str, str]:
    """The headers a refusal carries besides its body: Retry-After, and for a 401 the scheme."""
    headers = {}
    if "retry_after" in exc.extensions:
        headers["Retry-After"] = str(exc.extensions["retry_after"])
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers
