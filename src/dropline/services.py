"""The application's services: what the composition root (``dropline.bootstrap``) builds once
per process and hands to the web app, the background worker and the CLI alike.

Fields are typed by the ports the domains define; which adapter stands behind each port is the
root's decision, never a domain's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.edge import EdgePurger
from dropline.fulfilment.ports import Geocoder, RouteSolver
from dropline.mail import EmailSender
from dropline.orders.carriers import Carrier
from dropline.media.ports import MediaStore
from dropline.orders.policy import CheckoutPolicy, CreditNoteIssuer
from dropline.payments.provider import PaymentProvider
from dropline.ratelimit import MemoryRateLimiter, RateLimiter
from dropline.tax.ports import VatNumberChecker
from dropline.tax.service import OfflineVatChecker

__all__ = ["Services"]


@dataclass
class Services:
    """Everything a request, a job or a command needs from the process."""

    settings: Settings
    db: Database
    clock: Clock
    payments: PaymentProvider
    geocoder: Geocoder
    solver: RouteSolver
    mailer: EmailSender
    checkout: CheckoutPolicy  # member prices and delivery windows for the cart checkout
    media: MediaStore  # product, variant, drop and tier images (a folder or an S3 bucket)
    credit_notes: CreditNoteIssuer  # every refund's credit note, issued as it is settled
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # Throttles sign-in, sign-up and checkout (web.throttle); in process unless the root
    # gives it Redis.
    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)
    # The carriers orders ship with, by name (``orders.carriers``); the root builds them.
    carriers: Mapping[str, Carrier] = field(default_factory=dict)
    # Background jobs the root registers (the order mail outbox ...); the worker runs each on
    # its jobs timer. Each owns its transactions and is idempotent.
    jobs: list[Callable[[], object]] = field(default_factory=list)
    # The edge cache in front of the storefront (Varnish), purged by surrogate key after each
    # commit that changes a public page; None: only the in-process page cache.
    edge: EdgePurger | None = None
    # Business buyers' VAT numbers (reverse charge): offline unless the root wires VIES.
    vat_checker: VatNumberChecker = field(default_factory=OfflineVatChecker)
