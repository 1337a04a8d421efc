"""Builders for drop tests: a drop over fresh variants, shoppers with sessions, early access."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.customers.service import start_session
from dropline.db import Database
from dropline.drops import service
from dropline.drops.flows import Shopper
from dropline.security import hash_password, token_digest
from tests.builders import DECLINED_PM, card_of, make_location, make_product

REDIS_URL = os.environ.get("DROPLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
CARD = card_of()
DECLINED_CARD = card_of(DECLINED_PM)


@dataclass(frozen=True)
class DropWorld:
    drop_id: int
    variant_ids: list[int]


def make_drop(
    db: Database, clock: Clock, *, cap: int = 10, limit: int = 2, variants: int = 1,
    variant_caps: list[int | None] | None = None, queue: bool = False, starts_in: float = 0,
    lasts: float = 120, early_access_minutes: int = 0, hold_ttl: int = 600,
    offer_ttl: int = 900, per_minute: int = 600, slots: int = 8, price: int = 4200,
    with_location: bool = True,
) -> DropWorld:
    """A drop over ``variants`` fresh variants sharing ``cap`` units (or with ``variant_caps``),
    starting ``starts_in`` minutes from the clock's now."""
    if with_location:
        make_location(db)
    variant_ids = [make_product(db, clock, price=price, stock=0)[1] for _ in range(variants)]
    caps = variant_caps or [None] * variants
    starts = clock.now() + timedelta(minutes=starts_in)
    with db.transaction() as session:
        drop = service.create_drop(
            session, clock=clock, slug=f"drop-{uuid.uuid4().hex[:8]}", name="Midnight Fig",
            variants=[service.VariantCap(v, c) for v, c in zip(variant_ids, caps, strict=True)],
            shared_cap=cap if any(c is None for c in caps) else 0, per_person_limit=limit,
            schedule=service.DropSchedule(
                starts_at=starts, ends_at=starts + timedelta(minutes=lasts),
                early_access_minutes=early_access_minutes, admission_per_minute=per_minute,
                queue_enabled=queue, hold_ttl_seconds=hold_ttl, offer_ttl_seconds=offer_ttl),
            slots=slots, location_code="central" if with_location else None)
        return DropWorld(drop.id, variant_ids)


_HASH = hash_password("long enough password")  # once: argon2 is slow on purpose


def make_shopper(db: Database, clock: Clock) -> Shopper:
    """A customer (written directly, with one precomputed password hash) and a session."""
    with db.transaction() as session:
        customer = Customer(email=f"shopper-{uuid.uuid4().hex[:10]}@example.com",
                            password_hash=_HASH, created_at=clock.now())
        session.add(customer)
        session.flush()
        token = start_session(session, clock=clock, customer=customer, days=30)
        return Shopper(customer.id, token_digest(token))


class LeadTimes:
    """A stand-in for the memberships perk: minutes of early access per customer."""

    def __init__(self, minutes: dict[int, int] | None = None) -> None:
        self.minutes = minutes or {}

    def __call__(self, session, *, customer_id: int, at: datetime) -> int:
        return self.minutes.get(customer_id, 0)
