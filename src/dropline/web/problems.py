"""Render every refusal as RFC 9457 ``application/problem+json``, or for a browser's page or
form as a page with the message (``refusal``). Nothing a client sends may surface as a 500:
validation, malformed JSON, unknown routes and out-of-range values all map to a 4xx here."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from dropline.errors import PROBLEM_BASE, DomainError, ServiceUnavailable
from dropline.problem_json import PROBLEM_JSON, problem_headers
from dropline.schemas import CARD_DATA_ERROR, TOKENISE_HINT
from dropline.web.allow import allowed_methods
from dropline.web.templating import templates

__all__ = ["PROBLEM_JSON", "problem_headers", "refusal", "wants_json"]
log = logging.getLogger("dropline.web")
DATABASE_RETRY_AFTER_SECONDS = 2


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                     ) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON,
                        headers=headers)


def _problem(status: int, slug: str, title: str, detail: str, instance: str,
             **extra: Any) -> dict[str, Any]:
    return {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail,
            "instance": instance, **extra}


def wants_json(path: str, headers: Mapping[str, str]) -> bool:
    """An API call or a script (it sends or asks for JSON); else a browser's page or form."""
    return path.startswith("/api/") or "json" in headers.get("content-type", "") \
        or "json" in headers.get("accept", "")


def refusal(path: str, headers: Mapping[str, str], *, status: int, slug: str, title: str,
            message: str, shop_name: str, extra_headers: dict[str, str] | None = None
            ) -> Response:
    """A refusal as problem+json (API, script) or as a page with the message (a form)."""
    if wants_json(path, headers):
        return problem_response(status, {
            "type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": message,
            "instance": path}, extra_headers)
    html = templates.get_template("refused.html").render(
        shop_name=shop_name, title=title, message=message,
        back=path if path.startswith("/") and not path.startswith("//") else "/")
    response = HTMLResponse(html, status_code=status, headers=extra_headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def domain_error_response(exc: DomainError, instance: str) -> JSONResponse:
    return problem_response(exc.status, exc.to_problem(instance), problem_headers(exc))


def validation_problem(raw_errors: Sequence[Any], instance: str) -> JSONResponse:
    """400 for a body that is not JSON, else 422 with every field's error (``loc`` as
    FastAPI reports it, e.g. ``["body", "lines", 0, "quantity"]``)."""
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
        for err in raw_errors
    ]
    if any(err["type"] == CARD_DATA_ERROR for err in errors):
        return problem_response(422, _problem(
            422, "card-data-refused", "Card data refused", TOKENISE_HINT, instance,
            errors=[e for e in errors if e["type"] == CARD_DATA_ERROR]))
    if any(err["type"] == "json_invalid" for err in errors):
        return problem_response(400, _problem(
            400, "malformed-json", "Malformed JSON",
            "the request body is not valid JSON", instance, errors=errors))
    return problem_response(422, _problem(
        422, "validation-failed", "Validation failed",
        "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)[:2000],
        instance, errors=errors))


def form_errors(raw_errors: Sequence[Any]) -> str:
    """Each invalid field once, by its name: ``quantity: Field required``."""
    messages: dict[str, str] = {}
    for err in raw_errors:
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path")]
        messages.setdefault(".".join(loc) or "request", err.get("msg", "invalid"))
    return "; ".join(f"{name}: {msg}" for name, msg in messages.items())[:1000]


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def on_domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        path = request.url.path
        if wants_json(path, request.headers):
            return validation_problem(exc.errors(), path)
        # A browser's form (or page address) with a missing or malformed field: a page that
        # says which, with the way back to the form, rather than a body the browser would
        # show as raw JSON.
        return refusal(path, request.headers, status=422, slug="validation-failed",
                       title="Please check the form", message=form_errors(exc.errors()),
                       shop_name=request.app.state.services.settings.shop.name)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and (allowed := allowed_methods(request.app, request.scope)):
            headers["Allow"] = ", ".join(allowed)
        return problem_response(exc.status_code, _problem(
            exc.status_code, slug, title, detail, request.url.path), headers)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(OperationalError)
    async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The pool stayed empty for its timeout, or the server refused a connection ("too
        # many clients", a restart): a moment's overload, not a bug, so 503 and when to
        # retry. The request's transaction, if it had one, has rolled back.
        log.warning("database unavailable for %s: %s", request.url.path, exc)
        return domain_error_response(ServiceUnavailable(
            "the database is busy; nothing was changed. Retry in a moment (with the same "
            "Idempotency-Key for a write)", retry_after=DATABASE_RETRY_AFTER_SECONDS),
            request.url.path)

    @app.exception_handler(DataError)
    async def on_data_error(request: Request, exc: DataError) -> JSONResponse:
        # Validation bounds every value; this is the net under it (e.g. an overflow on an
        # engine with narrower types). The transaction has already rolled back.
        log.warning("DataError reached the handler: %s", exc)
        return problem_response(422, _problem(
            422, "value-out-of-range", "Value out of range",
            "a value is outside what can be stored", request.url.path))
