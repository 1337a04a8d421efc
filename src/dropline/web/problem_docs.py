"""The API's error answers, documented in its OpenAPI document in one place.

Every refusal is an RFC 9457 ``application/problem+json`` body (``web.problems``,
``web.csrf``, the drop lane), so every operation lists the statuses it can be refused with,
each as a ``Problem``. Which statuses an operation lists follows from what the HTTP floor
does to it, read from the route rather than written on each one:

* any operation: 422 (a value refused by validation or by the domain), 503 (the database or
  a dependency is busy, with ``Retry-After``);
* an operation with a path parameter, or an unsafe one (its body names other objects): 404;
* an unsafe one (POST, PUT, PATCH, DELETE): 400 (a body that is not JSON), 403 (the
  cross-origin guard), 409 (the state forbids it now), 415 (a cookie call that does not send
  JSON) and 429 (throttles and rate limits);
* one that depends on a signed-in customer or an API token (``web.deps``): 401 and 403.

Statuses a route declares itself (``responses={402: ...}``) are kept and given the same
schema, and FastAPI's default 422 (``HTTPValidationError``, which no answer here has) is
replaced by the problem."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from dropline.problem_json import PROBLEM_JSON
from dropline.web.deps import is_authentication

__all__ = ["PROBLEM_SCHEMA", "document_problems", "problem_statuses"]

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. Extension members add context: `errors` (each "
                   "invalid field's `loc`, `msg` and `type`), `field`, `retry_after`, `scope`.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "description": "a URI naming the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "instance": {"type": "string", "description": "the path refused"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "properties": {"loc": {"type": "array", "items": {
                               "anyOf": [{"type": "string"}, {"type": "integer"}]}},
                           "msg": {"type": "string"}, "type": {"type": "string"}},
        }},
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": True,
}


def _dependencies(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependencies(sub)


def problem_statuses(*, methods: set[str], path_params: bool, authenticated: bool) -> set[int]:
    statuses = {422, 503}
    if path_params or methods & UNSAFE:
        statuses.add(404)
    if methods & UNSAFE:
        statuses |= {400, 403, 409, 415, 429}
    if authenticated:
        statuses |= {401, 403}
    return statuses


def _problem_response(status: int) -> dict[str, Any]:
    return {"description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def _document(schema: dict[str, Any], app: FastAPI) -> None:
    paths = schema.get("paths", {})
    for context in routing.iter_route_contexts(app.routes):
        if not isinstance(context.original_route, routing.APIRoute) \
                or not context.include_in_schema:
            continue
        operations = paths.get(context.path_format, {})
        authenticated = any(is_authentication(call)
                            for call in _dependencies(context.dependant))
        for method in context.methods:
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in problem_statuses(methods={method},
                                           path_params=bool(context.dependant.path_params),
                                           authenticated=authenticated):
                responses[str(status)] = _problem_response(status)
            for status, response in responses.items():  # the ones a route declared itself
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
                    response.setdefault("description", HTTPStatus(int(status)).phrase)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's default 422 body
        components.pop(unused, None)


def document_problems(app: FastAPI) -> None:
    """Makes ``app.openapi()`` list every operation's problem answers (see the module)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document(generate(), app)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
