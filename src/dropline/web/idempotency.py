"""Run a JSON write endpoint under the Idempotency-Key rules (``idempotency.service``): the HTTP
side of idempotency (headers, stored responses, problem bodies), part of the HTTP floor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from dropline.errors import DomainError, RateLimited, RequestInFlight, ServiceUnavailable
from dropline.idempotency import service
from dropline.schemas import Input
from dropline.web.deps import Principal, Services
from dropline.web.problems import PROBLEM_JSON, domain_error_response

# Refusals that may change on retry are not stored: the same key can try again.
TRANSIENT = (ServiceUnavailable, RequestInFlight, RateLimited)


def run_idempotent(
    services: Services, *, request: Request, principal: Principal, key: str | None,
    body: Input, operation: Callable[[service.Claim], tuple[int, Any]],
) -> JSONResponse:
    key = service.validate_key(key)
    request_fingerprint = service.fingerprint(request.method, request.url.path, body)
    outcome = service.begin(
        services.db, clock=services.clock, principal=principal.key, key=key,
        request_fingerprint=request_fingerprint,
        lease_seconds=services.settings.idempotency.lease_seconds,
    )
    if isinstance(outcome, service.Replay):
        media_type = PROBLEM_JSON if outcome.status >= 400 else "application/json"
        return JSONResponse(outcome.body, status_code=outcome.status, media_type=media_type,
                            headers={"Idempotent-Replayed": "true"})
    claim = outcome
    try:
        status, payload = operation(claim)
    except TRANSIENT:
        service.release(services.db, claim=claim)
        raise
    except DomainError as exc:
        problem = jsonable_encoder(exc.to_problem(request.url.path))
        with services.db.transaction() as session:
            service.complete(session, clock=services.clock, claim=claim, status=exc.status,
                             body=problem)
        return domain_error_response(exc, request.url.path)
    except BaseException:
        service.release(services.db, claim=claim)
        raise
    payload = jsonable_encoder(payload)
    with services.db.transaction() as session:
        service.complete(session, clock=services.clock, claim=claim, status=status, body=payload)
    for hook in services.after_commit:
        hook()
    return JSONResponse(payload, status_code=status)
