"""The composition root: settings -> adapters -> services.

The only place that chooses and constructs adapters (payment provider, geocoder, route solver,
mailer, media store), and that registers what listens to the process's writes (``install_listeners``). The
web app (``dropline.web.app.create_app``), the background worker and the CLI are all built
from ``build_services``."""

from __future__ import annotations

import functools

from dropline.adapters.carriers import build_carriers
from dropline.adapters.email import sender_for
from dropline.adapters.geocoding import (
    ChainGeocoder,
    LondonDistrictGeocoder,
    NominatimGeocoder,
    PostcodeFileGeocoder,
)
from dropline.adapters.payments import LocalCardProvider
from dropline.adapters.routing import PyVRPSolver
from dropline.adapters.stripe_payments import StripeProvider
from dropline.adapters.varnish import VarnishXkeyPurger
from dropline.adapters.vies import ViesVatChecker
from dropline.adapters.storage import media_store_for
from dropline.audit import Audited
from dropline.audit import install as install_audit_trail
from dropline.catalog.models import Product, StockAdjustment, Variant
from dropline.checkout_policy import (
    build_checkout_policy,
    customer_delivery_facts,
    orders_in_live_drops,
)
from dropline.clock import Clock, SystemClock
from dropline.config import (
    EdgeSettings,
    FulfilmentSettings,
    PaymentSettings,
    Settings,
    get_settings,
)
from dropline.db import Database, pool_options
from dropline.drops.mails import queue_drop_mail, queue_early_access_mails
from dropline.drops.models import Drop
from dropline.edge import BackgroundPurger, EdgePurger
from dropline.events.service import subscribe
from dropline.fulfilment.batch import decide_undecided_orders
from dropline.fulfilment.ports import Geocoder, RouteSolver
from dropline.invoices.service import CreditNotes, seller_of
from dropline.tax.ports import VatNumberChecker
from dropline.tax.service import OfflineVatChecker
from dropline.media.ports import MediaStore
from dropline.memberships.models import Membership
from dropline.console.versions import snapshot_playbooks
from dropline.notifications.jobs import queue_out_for_delivery, send_mail_outbox
from dropline.notifications.service import queue_mail
from dropline.orders.models import Order, Shipment
from dropline.admin.models import AdminUser
from dropline.customers.models import Customer
from dropline.notes.models import StaffNote
from dropline.payments.models import Payment, Refund
from dropline.payments.provider import PaymentProvider
from dropline.ratelimit import make_limiter
from dropline.risk.models import (
    Chargeback,
    ReturnPolicy,
    ReturnRequest,
    RiskCase,
    RiskSetting,
    SerialUnit,
)
from dropline.services import Services
from dropline.webhooks.service import enqueue_deliveries

__all__ = ["AUDITED_MODELS", "build_edge", "build_payments", "build_services", "build_solver",
           "install_listeners"]


def build_geocoder(settings: FulfilmentSettings) -> Geocoder:
    """The demo's London districts, then the brand's postcode file, then a Nominatim service,
    as configured (``fulfilment.*`` settings)."""
    geocoders: list[Geocoder] = [LondonDistrictGeocoder()]
    if settings.postcode_file:
        geocoders.append(PostcodeFileGeocoder.from_file(settings.postcode_file))
    if settings.nominatim_url:
        geocoders.append(NominatimGeocoder(settings.nominatim_url,
                                           user_agent=settings.nominatim_user_agent))
    return geocoders[0] if len(geocoders) == 1 else ChainGeocoder(geocoders)


def build_services(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    payments: PaymentProvider | None = None,
    media: MediaStore | None = None,
) -> Services:
    """The process's services from its settings; tests pass their own clock, database,
    payment provider or media store."""
    install_listeners()
    settings = settings or get_settings()
    clock = clock or SystemClock()
    db = db or Database(settings.database.url, **pool_options(
        threads=settings.web.threads, workers=settings.web.workers,
        max_connections=settings.database.max_connections,
        timeout_seconds=settings.database.pool_timeout))
    geocoder = build_geocoder(settings.fulfilment)
    mailer = sender_for(settings.mail)
    services = Services(
        settings=settings, db=db, clock=clock,
        payments=payments or build_payments(
            settings.payments, db=db, clock=clock, secret_key=settings.web.secret_key),
        geocoder=geocoder,
        solver=build_solver(),
        mailer=mailer,
        checkout=build_checkout_policy(geocoder=geocoder,
                                       steering=settings.fulfilment.steering),
        media=media or media_store_for(settings.media),
        credit_notes=CreditNotes(seller_of(settings)),
        limiter=make_limiter(settings.drops.redis_url),
        carriers=build_carriers(),
        edge=build_edge(settings.edge),
        vat_checker=build_vat_checker(settings),
    )
    # Paid orders nobody decided (drop purchases after their drop, counter sales, consumables).
    services.jobs.append(functools.partial(
        decide_undecided_orders, db, clock=clock, geocoder=geocoder,
        customer_facts=customer_delivery_facts, held_back=orders_in_live_drops))
    # This week's snapshot of each playbook (once a week; what changed shows in the console).
    services.jobs.append(functools.partial(snapshot_playbooks, db, clock=clock,
                                           currency=settings.shop.currency))
    # The mails due at a time rather than on a write first, then the outbox drained.
    services.jobs.append(functools.partial(queue_out_for_delivery, db, clock=clock))
    services.jobs.append(functools.partial(queue_early_access_mails, db, clock=clock))
    services.jobs.append(functools.partial(
        send_mail_outbox, db, clock=clock, sender=mailer, shop_name=settings.shop.name,
        public_url=settings.web.mail_base_url(), secret_key=settings.web.secret_key,
        max_attempts=settings.mail.max_attempts, lease_seconds=settings.mail.lease_seconds))
    return services


def build_payments(settings: PaymentSettings, *, db: Database, clock: Clock,
                   secret_key: str = "local-provider") -> PaymentProvider:
    """The card provider the settings name: the local one (offline, its test cards only) by
    default, Stripe with its keys. ``secret_key`` (the app's) keys the local provider's 3-D
    Secure client secrets."""
    if settings.provider == "stripe":
        if not settings.stripe_secret_key:
            raise ValueError("DROPLINE_PAYMENTS=stripe needs DROPLINE_PAYMENTS_STRIPE_SECRET_KEY")
        return StripeProvider(secret_key=settings.stripe_secret_key,
                              webhook_secret=settings.stripe_webhook_secret,
                              api_base=settings.stripe_api_base,
                              timeout_seconds=settings.stripe_timeout_seconds,
                              batch_concurrency=settings.stripe_batch_concurrency)
    return LocalCardProvider(db.sessions, clock, secret=secret_key)


def build_edge(settings: EdgeSettings) -> EdgePurger | None:
    """The edge cache's purger when one is configured: Varnish's xkey, sent off the request's
    thread (``edge.BackgroundPurger``)."""
    if not settings.purge_url:
        return None
    return BackgroundPurger(VarnishXkeyPurger(settings.purge_url,
                                              timeout=settings.purge_timeout))


def build_solver() -> RouteSolver:
    """The route solver, alone: for commands that plan routes without a database."""
    return PyVRPSolver()


# What the audit trail records: each audited model and its column rules. Personal data (an
# order's email and address, a customer's email and name, a note's text) is never copied into
# the append-only trail, so erasing a customer (``customers.erasure``) leaves none behind.
AUDITED_MODELS: dict[type, Audited] = {
    Order: Audited(ignore=("shipping_address", "email")),
    Customer: Audited(columns=("acquisition_source", "erased_at")),
    AdminUser: Audited(columns=("role", "deactivated_at")),
    StaffNote: Audited(columns=("subject_type", "subject_id", "author")),
    Payment: Audited(ignore=("card_fingerprint",)),
    Refund: Audited(),
    Shipment: Audited(),
    Variant: Audited(columns=("sku", "price_amount", "currency", "condition_grade",
                              "condition_disclosure", "final_sale", "active")),
    Product: Audited(columns=("name", "slug", "status", "family_id")),
    StockAdjustment: Audited(),
    Drop: Audited(),
    Membership: Audited(),
    ReturnRequest: Audited(ignore=("note", "device_id")),
    ReturnPolicy: Audited(),
    RiskCase: Audited(columns=("status", "score", "threshold")),
    RiskSetting: Audited(),
    SerialUnit: Audited(),
    Chargeback: Audited(),
}


def build_vat_checker(settings: Settings) -> VatNumberChecker:
    """Offline (format and check digits) unless VIES is asked for
    (``DROPLINE_SHOP_VAT_CHECKER=vies``; it needs the internet)."""
    if settings.shop.vat_checker == "vies":
        return ViesVatChecker(offline=OfflineVatChecker())
    return OfflineVatChecker()


def install_listeners() -> None:
    """Registers what listens to the process's writes, in the writing transaction: webhooks
    subscribe to domain events (a delivery queued per subscribed endpoint), and the audit
    trail's session listeners record changes to ``AUDITED_MODELS``; order events queue their
    mails (``notifications.service.queue_mail``), and a new drop or a waitlist offer theirs
    (``drops.mails.queue_drop_mail``). Idempotent; called by ``build_services``, the CLI and
    the test set-up."""
    subscribe(enqueue_deliveries)
    subscribe(queue_mail)
    subscribe(queue_drop_mail)
    install_audit_trail(AUDITED_MODELS)
