"""The composition root: settings -> adapters -> services.

The only place that chooses and constructs adapters (payment provider, geocoder, route solver,
mailer). The web app (``dropline.web.app.create_app``), the background worker and the CLI are
all built from ``build_services``."""

from __future__ import annotations

from dropline.adapters.email import sender_for
from dropline.adapters.geocoding import LondonDistrictGeocoder
from dropline.adapters.payments import LocalCardProvider, PaymentProvider
from dropline.adapters.routing import PyVRPSolver
from dropline.clock import Clock, SystemClock
from dropline.config import Settings, get_settings
from dropline.db import Database
from dropline.services import Services

__all__ = ["build_services"]


def build_services(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    payments: PaymentProvider | None = None,
) -> Services:
    """The process's services from its settings; tests pass their own clock, database or
    payment provider."""
    settings = settings or get_settings()
    clock = clock or SystemClock()
    db = db or Database(settings.database.url)
    return Services(
        settings=settings, db=db, clock=clock,
        payments=payments or LocalCardProvider(db.sessions, clock),
        geocoder=LondonDistrictGeocoder(),
        solver=PyVRPSolver(),
        mailer=sender_for(settings.mail),
    )
