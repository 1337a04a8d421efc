"""The payment provider's webhook endpoint: ``POST /webhooks/stripe``.

The request's ``Stripe-Signature`` is verified by the provider's SDK against the endpoint's
signing secret before anything in the body is read; a request that does not verify is 400 and
changes nothing. A verified event is stored once by its id and drives the payment it names
(``dropline.payment_events``): a repeated or out-of-order delivery is answered 200 and changes
nothing more. The composition root mounts this route only when the provider reports by webhooks
(``payments.provider.EventVerifier``: Stripe)."""

from __future__ import annotations

from typing import cast

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dropline.payment_events import apply_provider_event
from dropline.payments.provider import EventVerifier, SignatureRefused
from dropline.services import Services
from dropline.web.problems import problem_response

__all__ = ["router"]

router = APIRouter(tags=["payments"])
MAX_BODY = 512 * 1024  # Stripe's events are a few kilobytes
PROBLEM = {"content": {"application/problem+json": {}}}


@router.post("/webhooks/stripe", summary="Stripe's events (signed)",
             responses={400: PROBLEM},
             description="For Stripe only: the body is Stripe's event, verified by its "
                         "`Stripe-Signature` header.")
async def stripe_events(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    verifier = cast(EventVerifier, services.payments)
    payload = await request.body()
    try:
        if len(payload) > MAX_BODY:
            raise SignatureRefused("body too large")
        event = verifier.verify_event(payload, request.headers.get("stripe-signature", ""))
    except SignatureRefused:
        return problem_response(400, {
            "type": "https://dropline.dev/problems/bad-signature", "title": "Bad signature",
            "status": 400, "detail": "the Stripe-Signature header does not verify with this "
                                     "endpoint's signing secret; nothing was changed",
            "instance": request.url.path})
    outcome = await anyio.to_thread.run_sync(lambda: apply_provider_event(
        services.db, clock=services.clock, provider_name=services.payments.name, event=event,
        policy=services.checkout))
    for hook in services.after_commit:
        hook()
    return JSONResponse({"received": event.id, "outcome": outcome})
