"""Builders and a scripted payment provider for the membership tests."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.db import Database
from dropline.memberships import flows, service
from dropline.memberships.config import MembershipConfig
from dropline.memberships.rules import Interval
from dropline.memberships.service import TierSpec
from dropline.payments.provider import CardToken, ChargeResult, SavedCard
from tests.builders import DECLINED_PM, NO_FUNDS_PM, card_of

GOOD = card_of()
DECLINED = card_of(DECLINED_PM)
NO_FUNDS = card_of(NO_FUNDS_PM)
CONFIG = MembershipConfig()


def make_customer(db: Database, clock: Clock, *, email: str | None = None) -> int:
    """A customer row without the argon2 cost of sign-up (tests make many)."""
    with db.transaction() as session:
        customer = Customer(email=email or f"m-{uuid.uuid4().hex[:10]}@example.com",
                            name="Member", password_hash="x", acquisition_source="direct",
                            acquisition_campaign="", created_at=clock.now())
        session.add(customer)
        session.flush()
        return customer.id


def make_tier(db: Database, clock: Clock, *, slug: str | None = None, price: int = 1000,
              interval: Interval = Interval.monthly, **perks) -> int:
    slug = slug or f"tier-{uuid.uuid4().hex[:6]}"
    with db.transaction() as session:
        return service.create_tier(session, clock=clock, spec=TierSpec(
            slug=slug, name=slug.replace("-", " ").title(), interval=interval,
            price_amount=price, currency="GBP", **perks)).id


def join(db: Database, clock: Clock, provider, *, customer_id: int, tier_id: int,
         card: CardToken = GOOD, config: MembershipConfig = CONFIG) -> int:
    return flows.subscribe(db, clock=clock, config=config, provider=provider,
                           request=flows.SubscribeRequest(customer_id, tier_id, card,
                                                          f"signup-{uuid.uuid4().hex}"))


@dataclass
class ScriptedProvider:
    """A hand-written fake of the outside world: saved-card charges answer from a script
    (``"ok"`` or a decline code), in order, then ``"ok"``; it remembers answers by key, as the
    real interface promises, and counts what it actually took."""

    script: list[str] = field(default_factory=list)
    name: str = "scripted"
    taken: list[tuple[str, int]] = field(default_factory=list)  # (key, amount) per success
    calls: int = 0
    _answers: dict[str, ChargeResult] = field(default_factory=dict)
    _refs: itertools.count = field(default_factory=itertools.count)

    def then(self, outcomes: Iterable[str]) -> None:
        self.script.extend(outcomes)

    def save_card(self, *, card: CardToken) -> SavedCard:
        return SavedCard(f"tok_{uuid.uuid4().hex[:12]}", card.last4, card.fingerprint)

    def charge_saved(self, *, amount: int, currency: str, token: str,
                     idempotency_key: str) -> ChargeResult:
        if idempotency_key in self._answers:
            return self._answers[idempotency_key]
        self.calls += 1
        outcome = self.script.pop(0) if self.script else "ok"
        ref = f"ch_{next(self._refs)}"
        if outcome == "ok":
            result = ChargeResult("succeeded", ref)
            self.taken.append((idempotency_key, amount))
        else:
            result = ChargeResult("declined", ref, outcome)
        self._answers[idempotency_key] = result
        return result

    def charge(self, **_: object) -> ChargeResult:  # checkout is not under test here
        raise NotImplementedError

    def refund(self, **_: object) -> str:
        raise NotImplementedError

    def withdraw_charge(self, reference: str) -> ChargeResult:
        """Nothing of this fake waits for a member: a held charge is simply withdrawn."""
        return ChargeResult("declined", reference, "withdrawn")
