"""A working local card provider behind the payment port (``dropline.payments.provider``).

The local provider behaves like a card network with idempotent requests: it remembers every
charge by idempotency key in its own ledger (its own transaction, apart from the shop's), so a
retried charge returns the first outcome and never takes money twice.

Test cards (any future expiry, any CVC):

    4242 4242 4242 4242   succeeds
    4000 0000 0000 0002   declined (card_declined)
    4000 0000 0000 9995   declined (insufficient_funds)
    4000 0000 0000 0119   the provider fails transiently on the first try of each
                          idempotency key; retrying the same key succeeds

Saved cards (for renewals, charged off-session): ``save_card`` returns a token with the card's
last4 and fingerprint, which is all the shop keeps; ``charge_saved`` charges the token with an
idempotency key and gives the same outcomes as the card it stands for.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dropline import bulk
from dropline.clock import Clock
from dropline.payments.models import LocalProviderCharge
from dropline.payments.provider import (
    CONTACTLESS_LIMIT,
    Card,
    CardRefused,
    ChargeRequest,
    ChargeResult,
    ProviderUnavailable,
    SavedCard,
    TerminalReading,
    charge_each,
)

SUCCEEDS = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
TRANSIENT_FAILURE = "4000000000000119"


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _outcome_of(number: str) -> str:
    if number == DECLINED:
        return "declined:card_declined"
    if number == INSUFFICIENT_FUNDS:
        return "declined:insufficient_funds"
    if not luhn_valid(number):
        return "declined:invalid_number"
    return "succeeded"


class LocalCardProvider:
    name = "local"

    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self._transient_seen: set[str] = set()

    def _remembered(self, idempotency_key: str) -> ChargeResult | None:
        with self._sessions() as session:
            row = session.scalar(
                select(LocalProviderCharge).where(
                    LocalProviderCharge.idempotency_key == idempotency_key)
            )
            if row is None:
                return None
            if row.outcome == "succeeded":
                return ChargeResult("succeeded", row.reference)
            return ChargeResult("declined", row.reference, row.outcome.split(":", 1)[1])

    def _record(self, *, kind: str, key: str, outcome: str, amount: int, currency: str,
                charge_reference: str | None = None) -> str:
        reference = f"{'ch' if kind == 'charge' else 're'}_{uuid.uuid4().hex[:24]}"
        with self._sessions() as session:
            session.add(LocalProviderCharge(
                kind=kind, idempotency_key=key, reference=reference, outcome=outcome,
                amount=amount, currency=currency, charge_reference=charge_reference,
                created_at=self._clock.now(),
            ))
            try:
                session.commit()
            except IntegrityError:  # a concurrent retry of the same key recorded first
                session.rollback()
                existing = session.scalar(select(LocalProviderCharge.reference).where(
                    LocalProviderCharge.idempotency_key == key))
                assert existing is not None
                return existing
        return reference

    def charge(self, *, amount: int, currency: str, card: Card, idempotency_key: str) -> ChargeResult:
        if (remembered := self._remembered(idempotency_key)) is not None:
            return remembered
        if card.number == TRANSIENT_FAILURE and idempotency_key not in self._transient_seen:
            self._transient_seen.add(idempotency_key)
            raise ProviderUnavailable("processor timeout (simulated); retry with the same key")
        outcome = _outcome_of(card.number)
        self._record(kind="charge", key=idempotency_key, outcome=outcome, amount=amount,
                     currency=currency)
        result = self._remembered(idempotency_key)
        assert result is not None
        return result

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        return self._remembered(idempotency_key)

    def charge_present(self, *, amount: int, currency: str, reading: TerminalReading,
                       idempotency_key: str) -> ChargeResult:
        """Card present, through the simulated terminal: the same ledger and the same test
        cards as ``charge``; a tap above ``CONTACTLESS_LIMIT`` is declined (insert the card)."""
        if (remembered := self._remembered(idempotency_key)) is not None:
            return remembered
        if not reading.terminal_id.startswith("term_"):
            outcome = "declined:unknown_terminal"
        elif reading.entry_mode == "contactless" and amount > CONTACTLESS_LIMIT:
            outcome = "declined:contactless_limit"
        else:
            return self.charge(amount=amount, currency=currency, card=reading.card,
                               idempotency_key=idempotency_key)
        self._record(kind="charge", key=idempotency_key, outcome=outcome, amount=amount,
                     currency=currency)
        result = self._remembered(idempotency_key)
        assert result is not None
        return result

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult]:
        """The batched charge (what a card network's batch API would do): same outcomes as
        ``charge`` per key. On PostgreSQL one statement records every new key and skips the
        remembered ones (``ON CONFLICT DO NOTHING``), whose outcomes are then read back; on
        SQLite one read of remembered keys and one multi-row insert. The simulated transient
        card keeps its one-request behaviour, and a clash with a concurrent writer falls back
        to ``charge`` per key (which replays the remembered outcome)."""
        if any(r.card.number == TRANSIENT_FAILURE for r in requests) or \
                len({r.idempotency_key for r in requests}) != len(requests):
            return charge_each(self, requests)
        now = self._clock.now()
        fresh = {r.idempotency_key: (_outcome_of(r.card.number), f"ch_{uuid.uuid4().hex[:24]}")
                 for r in requests}
        with self._sessions() as session:
            try:
                if session.get_bind().dialect.name == "postgresql":
                    known = self._record_many_pg(session, requests, fresh, now)
                else:
                    known = {row.idempotency_key: (row.outcome, row.reference)
                             for row in session.scalars(select(LocalProviderCharge).where(
                                 LocalProviderCharge.idempotency_key.in_(fresh)))}
                    rows = [{"kind": "charge", "idempotency_key": r.idempotency_key,
                             "reference": fresh[r.idempotency_key][1],
                             "outcome": fresh[r.idempotency_key][0], "amount": r.amount,
                             "currency": r.currency, "charge_reference": None,
                             "created_at": now}
                            for r in requests if r.idempotency_key not in known]
                    if rows:
                        session.execute(insert(LocalProviderCharge), rows)
                session.commit()
            except IntegrityError:  # a concurrent retry recorded some key first
                session.rollback()
                return charge_each(self, requests)
        results = []
        for r in requests:
            outcome, reference = known.get(r.idempotency_key) or fresh[r.idempotency_key]
            results.append(ChargeResult("succeeded", reference) if outcome == "succeeded"
                           else ChargeResult("declined", reference, outcome.split(":", 1)[1]))
        return results

    @staticmethod
    def _record_many_pg(session: Session, requests: Sequence[ChargeRequest],
                        fresh: dict[str, tuple[str, str]], now: datetime
                        ) -> dict[str, tuple[str, str]]:
        """Inserts the new keys; returns (outcome, reference) of keys recorded earlier."""
        inserted = {row[0] for row in bulk.insert_unnest(session, "local_provider_charges", [
            ("kind", "text"), ("idempotency_key", "text"), ("reference", "text"),
            ("outcome", "text"), ("amount", "bigint"), ("currency", "text"),
            ("created_at", "timestamptz")], [
            ("charge", r.idempotency_key, fresh[r.idempotency_key][1],
             fresh[r.idempotency_key][0], r.amount, r.currency, now) for r in requests],
            suffix="ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key")}
        if len(inserted) == len(requests):
            return {}
        return {key: (outcome, reference) for key, outcome, reference in bulk.execute(
            session, "SELECT idempotency_key, outcome, reference FROM local_provider_charges "
            "WHERE idempotency_key = ANY(%s)",
            ([r.idempotency_key for r in requests if r.idempotency_key not in inserted],))}

    def save_card(self, *, card: Card) -> SavedCard:
        """The local vault keeps only how the test card behaves (a ledger row of kind "card"),
        not its number: charging the token later reproduces the card's behaviour."""
        if not luhn_valid(card.number):
            raise CardRefused("invalid_number")
        behaviour = {DECLINED: "declined:card_declined",
                     INSUFFICIENT_FUNDS: "declined:insufficient_funds",
                     TRANSIENT_FAILURE: "transient"}.get(card.number, "succeeded")
        token = f"pm_{uuid.uuid4().hex[:24]}"
        with self._sessions() as session:
            session.add(LocalProviderCharge(
                kind="card", idempotency_key=f"vault_{token}", reference=token,
                outcome=behaviour, amount=0, currency="XXX", created_at=self._clock.now()))
            session.commit()
        return SavedCard(token=token, last4=card.last4, fingerprint=card.fingerprint)

    def charge_saved(self, *, amount: int, currency: str, token: str,
                     idempotency_key: str) -> ChargeResult:
        if (remembered := self._remembered(idempotency_key)) is not None:
            return remembered
        with self._sessions() as session:
            behaviour = session.scalar(select(LocalProviderCharge.outcome).where(
                LocalProviderCharge.kind == "card", LocalProviderCharge.reference == token))
        if behaviour is None:
            outcome = "declined:unknown_payment_method"
        elif behaviour == "transient":
            if idempotency_key not in self._transient_seen:
                self._transient_seen.add(idempotency_key)
                raise ProviderUnavailable("processor timeout (simulated); retry with the same key")
            outcome = "succeeded"
        else:
            outcome = behaviour
        self._record(kind="charge", key=idempotency_key, outcome=outcome, amount=amount,
                     currency=currency)
        result = self._remembered(idempotency_key)
        assert result is not None
        return result

    def refund(self, *, charge_reference: str, amount: int, currency: str,
               idempotency_key: str) -> str:
        return self._record(kind="refund", key=idempotency_key, outcome="succeeded",
                            amount=amount, currency=currency, charge_reference=charge_reference)
