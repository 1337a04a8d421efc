"""The fast lane: ``POST /api/v1/drops/{id}/purchase`` served before FastAPI's routing.

During a drop nearly every request is this one. Through the full stack it paid for matching
~300 routes, the dependency machinery and four middlewares before any drop code ran: ~11 % of a
worker's CPU in the profile of ``bench/drop_sellout.py``. This pure ASGI middleware (installed
last, so it sits inside FastAPI's own error and body-limit middleware) recognises the path,
validates the body with the same pydantic model, and calls the same ``drops.hot.respond`` as the
FastAPI route, so the answers are the same: problem+json refusals, 400 for malformed JSON, 422
with FastAPI's ``loc`` for invalid fields.

Everything else, and this path too when the gate is off (no Redis, or SQLite), goes on to
FastAPI, where the documented route (OpenAPI) serves it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from dropline.drops.api import early_access_for
from dropline.drops.hot import hot_path, respond
from dropline.drops.schemas import PurchaseCreate
from dropline.errors import PROBLEM_BASE
from dropline.web.problems import problem_response, validation_problem

# A positive id that fits a bigint; anything else goes to FastAPI, whose path check says why.
PURCHASE_PATH = re.compile(r"/api/v1/drops/([1-9][0-9]{0,17})/purchase")
MAX_BODY = 64 * 1024


class DropPurchaseLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = PURCHASE_PATH.fullmatch(scope["path"])
            state = scope["app"].state if match and "app" in scope else None
            hot = hot_path(state) if state is not None else None
            if hot is not None:
                response = await self._serve(hot, state, scope, receive, int(match[1]))
                if response is not None:
                    await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, hot: Any, state: Any, scope: Scope, receive: Receive,
                     drop_id: int) -> Any:
        path = scope["path"]
        raw = bytearray()
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
            body = PurchaseCreate.model_validate_json(bytes(raw))
        except ValidationError as exc:
            return validation_problem(
                [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()], path)
        cookie = key = None
        cookie_name = hot.settings.session_cookie_name
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = cookie_parser(value.decode("latin-1")).get(cookie_name)
            elif name == b"idempotency-key":
                key = value.decode("latin-1")
        client = scope.get("client")
        return await respond(hot, drop_id=drop_id, body=body, path=path, session_token=cookie,
                             idempotency_key=key, ip=client[0] if client else "unknown",
                             early_access=early_access_for(state))
