"""Refusals specific to drops, each a kind of the shared error tree (so one handler renders
them as problem+json with their status):

    Conflict (409)
    ├── NotOpenYet          the drop (or this shopper's early-access window) has not opened
    ├── DropEnded           the drop is over
    ├── NotAdmittedYet      still waiting in the queue; carries the ETA and Retry-After
    ├── HoldAlreadyActive   one active hold per person
    ├── LimitReached        the per-person limit, counted across holds and orders
    ├── HoldExpired         the hold lapsed before it was paid; its units went back
    └── OutOfStock
        └── SoldOut         nothing left to hold (join the waitlist)
    PermissionDenied (403)
    └── AdmissionRefused    missing, forged, expired, shared or replayed admission token
"""

from __future__ import annotations

from dropline.errors import Conflict, OutOfStock, PermissionDenied


class NotOpenYet(Conflict):
    slug = "drop-not-open"
    title = "This drop is not open to you yet"


class DropEnded(Conflict):
    slug = "drop-ended"
    title = "This drop has ended"


class NotAdmittedYet(Conflict):
    slug = "not-admitted-yet"
    title = "Still in the waiting room"


class HoldAlreadyActive(Conflict):
    slug = "hold-already-active"
    title = "You already hold units in this drop"


class LimitReached(Conflict):
    slug = "per-person-limit"
    title = "Per-person limit reached"


class HoldExpired(Conflict):
    slug = "hold-expired"
    title = "The hold has expired"


class SoldOut(OutOfStock):
    slug = "sold-out"
    title = "Sold out"


class AdmissionRefused(PermissionDenied):
    slug = "admission-refused"
    title = "Admission token refused"
