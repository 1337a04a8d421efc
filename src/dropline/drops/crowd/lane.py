"""The fast lane: a drop's purchases and admissions served before FastAPI's own machinery.

During a drop nearly every request is a purchase. Through the full stack it would pay for
matching ~300 routes, the dependency machinery and four middlewares before any drop code ran (a
tenth of a worker's CPU under a crowd), and FastAPI's own ``__call__`` reads the environment on
every request to see whether telemetry is on. ``LaneFastAPI`` is FastAPI with one check in
front: a purchase of a drop is recognised by its path, its body is validated with the same
pydantic model, and the same ``drops.crowd.purchase.respond`` as the FastAPI route answers it,
so the answers are the same: problem+json refusals, 413 for a body over ``MAX_BODY``, 400 for
malformed JSON, 422 with FastAPI's ``loc`` for invalid fields.

``POST /api/v1/drops/{id}/admission`` takes the lane too (``drops.crowd.admission``): at a
drop's start the whole waiting room asks for its tokens at once, and the lane answers them in
batches, with the route's answers.

Everything else, and these paths too when the gate is off (no Redis, or SQLite), goes on to
FastAPI, where the documented routes (OpenAPI) serve them. So does a purchase that picks a
delivery window (the gate's batch writer books no windows): its body, already read, is
replayed to the route.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from http.cookies import _unquote  # type: ignore[attr-defined]
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dropline.drops.crowd.admission import Ask, token_json
from dropline.drops.crowd.purchase import EncodedJSON, problem_json, respond
from dropline.drops.crowd.wiring import early_access_for, hot_path
from dropline.drops.schemas import PurchaseCreate
from dropline.errors import PROBLEM_BASE, DomainError, ServiceUnavailable
from dropline.web.problems import problem_response, validation_problem

# A positive id that fits a bigint; anything else goes to FastAPI, whose path check says why.
LANE_PATH = re.compile(r"/api/v1/drops/([1-9][0-9]{0,17})/(purchase|admission)")
MAX_BODY = 64 * 1024
log = logging.getLogger("dropline.drops")


class LaneFastAPI(FastAPI):
    """FastAPI, with the drop purchase lane ahead of its middleware and routing.

    ``lane_guard``, when the app sets one, sees every lane request first and may answer it
    instead (the app's cross-origin guard, ``web.csrf``, the same checks as for every other
    request); ``lane_headers`` are appended to every lane answer, refusals included."""

    lane_guard: Callable[[Scope], Response | None] | None = None
    # Raw header pairs added to every lane answer: the app's security headers
    # (``web.security_headers``), whose middleware the lane does not pass through.
    lane_headers: list[tuple[bytes, bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self.serve_lane(scope, receive, send):
            await super().__call__(scope, receive, send)

    async def serve_lane(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answers a lane request (True); anything else is left to the caller (False)."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        match = LANE_PATH.fullmatch(scope["path"])
        hot = hot_path(self.state) if match is not None else None
        if hot is None:
            return False
        scope["app"] = self
        response = self.lane_guard(scope) if self.lane_guard is not None else None
        if response is None:
            serve = _serve if match[2] == "purchase" else _serve_admission
            response = await serve(hot, self.state, scope, receive, int(match[1]))
        if isinstance(response, _ToRoute):
            await super().__call__(scope, response.receive_from(receive), send)
            return True
        if response is not None:
            response.raw_headers += self.lane_headers  # built per answer: never shared
            await response(scope, receive, send)
        return True


class _ToRoute:
    """A lane request left to its FastAPI route, with the body the lane already read."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    def receive_from(self, receive: Receive) -> Receive:
        """The body first, then whatever the connection says (its disconnect)."""
        pending = [{"type": "http.request", "body": self._raw, "more_body": False}]

        async def replay() -> Any:
            return pending.pop() if pending else await receive()

        return replay


async def _serve_admission(hot: Any, state: Any, scope: Scope, receive: Receive,
                           drop_id: int) -> Any:
    """The admission route's answers (``drops.crowd.admission``); the body, which it ignores, is
    left to the server to discard."""
    path = scope["path"]
    cookie, _ = session_cookie(scope["headers"], hot.settings.web.session_cookie_name)
    client = scope.get("client")
    try:
        customer_id, digest = await hot.customer(cookie)
        ask = await hot.admissions.submit(Ask(drop_id=drop_id, customer_id=customer_id,
                                              ip=client[0] if client else "unknown"))
    except DomainError as exc:
        return problem_json(exc, path)
    except Exception:  # the database or the limiter's Redis failed: nothing was issued
        log.exception("drop %d: admission batch failed", drop_id)
        return problem_json(ServiceUnavailable(
            "admission tokens cannot be issued at the moment; retry in a moment",
            retry_after=1), path)
    if ask.error is not None:
        return problem_json(ask.error, path)
    await hot.prepared(drop_id)  # the purchase follows: its gate keys now
    return EncodedJSON(token_json(ask, secret=hot.settings.web.secret_key, session_digest=digest),
                       200, "application/json", headers={"Cache-Control": "no-store"})


def session_cookie(headers: Any, name: str) -> tuple[str | None, str | None]:
    """(session cookie, Idempotency-Key) from the raw headers, without parsing every cookie:
    the same value ``starlette.requests.cookie_parser`` would give for that name."""
    cookie = key = None
    for header, value in headers:
        if header == b"cookie":
            for chunk in value.decode("latin-1").split(";"):
                cookie_name, equals, cookie_value = chunk.partition("=")
                if equals and cookie_name.strip() == name:
                    cookie = _unquote(cookie_value.strip())
        elif header == b"idempotency-key":
            key = value.decode("latin-1")
    return cookie, key


async def _serve(hot: Any, state: Any, scope: Scope, receive: Receive, drop_id: int) -> Any:
    path = scope["path"]
    raw = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None  # the client went away; nothing was done
        raw += message.get("body", b"")
        if len(raw) > MAX_BODY:
            return problem_response(413, {
                "type": PROBLEM_BASE + "body-too-large",
                "title": "Body too large", "status": 413, "instance": path,
                "detail": f"a purchase body is at most {MAX_BODY} bytes"})
        if not message.get("more_body", False):
            break
    try:
        body = PurchaseCreate.model_validate_json(raw)
    except ValidationError as exc:
        return validation_problem(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()], path)
    if body.delivery is not None:
        return _ToRoute(raw)
    cookie, key = session_cookie(scope["headers"], hot.settings.web.session_cookie_name)
    client = scope.get("client")
    return await respond(hot, drop_id=drop_id, body=body, path=path, session_token=cookie,
                         idempotency_key=key, ip=client[0] if client else "unknown",
                         early_access=early_access_for(state))
