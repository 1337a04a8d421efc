"""Refusals of the notifications domain.

    DomainError
    ├── NotFound
    │   └── UnsubscribeLinkInvalid   forged, altered or unknown unsubscribe token
    └── Conflict
        └── UnsubscribeLinkUsed      the link of that mail was used already (it works once)
"""

from __future__ import annotations

from dropline.errors import Conflict, NotFound

__all__ = ["UnsubscribeLinkInvalid", "UnsubscribeLinkUsed"]


class UnsubscribeLinkInvalid(NotFound):
    slug = "unsubscribe-link-invalid"
    title = "This unsubscribe link is not valid"


class UnsubscribeLinkUsed(Conflict):
    slug = "unsubscribe-link-used"
    title = "This unsubscribe link was used already"
