"""The domain error tree. Services raise these; the web layer renders them as RFC 9457
``application/problem+json`` (or a page), the CLI as a readable message. Services never raise
HTTP exceptions.

    DomainError                     400  generic refusal of a well-formed request
    ├── InvalidInput                422  the request is understood but its values are not acceptable
    │   ├── IdempotencyKeyReused    422  same Idempotency-Key, different request body
    │   └── UnknownPaymentMethod    422  a payment method reference the provider does not know
    ├── NotAuthenticated            401  no or bad credentials
    ├── PermissionDenied            403  authenticated, but not allowed (scope, ownership)
    ├── NotFound                    404  unknown id (also used for objects the caller may not see)
    ├── Conflict                    409  state forbids it now
    │   ├── AlreadyExists           409
    │   ├── OutOfStock              409
    │   ├── RequestInFlight         409  same Idempotency-Key still being processed
    │   └── InvalidState            409  e.g. refunding an unpaid order
    ├── PaymentDeclined             402  the card was declined: nothing was charged
    ├── PaymentRequiresAction       402  the bank asks the shopper to authenticate (3-D Secure)
    ├── RateLimited                 429
    └── ServiceUnavailable          503  a dependency (payment provider) failed transiently; retry
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://dropline.dev/problems/"


class DomainError(Exception):
    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        self.detail = detail or self.title
        self.extensions = extensions
        super().__init__(self.detail)

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            problem["instance"] = instance
        problem.update(self.extensions)
        return problem


class InvalidInput(DomainError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class UnknownPaymentMethod(InvalidInput):
    slug = "unknown-payment-method"
    title = "Unknown payment method"


class IdempotencyKeyReused(InvalidInput):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"


class NotAuthenticated(DomainError):
    status = 401
    slug = "not-authenticated"
    title = "Authentication required"


class PermissionDenied(DomainError):
    status = 403
    slug = "permission-denied"
    title = "Permission denied"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class AlreadyExists(Conflict):
    slug = "already-exists"
    title = "Already exists"


class OutOfStock(Conflict):
    slug = "out-of-stock"
    title = "Out of stock"


class RequestInFlight(Conflict):
    slug = "request-in-flight"
    title = "A request with this Idempotency-Key is still being processed"


class InvalidState(Conflict):
    slug = "invalid-state"
    title = "Not allowed in the current state"


class PaymentDeclined(DomainError):
    status = 402
    slug = "payment-declined"
    title = "Payment declined"


class PaymentRequiresAction(DomainError):
    """Not a decline: the payment waits for the shopper to authenticate with their bank; the
    problem carries the provider's ``client_secret`` for the page to hand to the provider's
    script. The payment stays pending until the provider reports its outcome."""

    status = 402
    slug = "payment-requires-action"
    title = "Payment requires authentication"


class RateLimited(DomainError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(DomainError):
    status = 503
    slug = "service-unavailable"
    title = "Service temporarily unavailable"


__all__ = [
    "PROBLEM_BASE",
    "AlreadyExists",
    "Conflict",
    "DomainError",
    "IdempotencyKeyReused",
    "InvalidInput",
    "InvalidState",
    "NotAuthenticated",
    "NotFound",
    "OutOfStock",
    "PaymentDeclined",
    "PermissionDenied",
    "RateLimited",
    "RequestInFlight",
    "ServiceUnavailable",
]
