"""A working local card provider behind the payment port (``dropline.payments.provider``).

The local provider behaves like a card network with idempotent requests: it remembers every
charge by idempotency key in its own ledger (its own transaction, apart from the shop's), so a
retried charge returns the first outcome and never takes money twice.

Cards reach it the way they reach a real provider: the shopper's browser sends the card to its
tokenising endpoint (``web.local_pay``, with ``/static/pay/local.js``), which calls
``tokenise_card`` and answers a payment method reference (``pm_...``); the shop's own routes only
ever see that reference. The ledger keeps of each token how its card behaves when charged, its
last four digits and its fingerprint, never the number.

Test cards (any future expiry, any CVC):

    4242 4242 4242 4242   succeeds
    4000 0000 0000 0002   declined (card_declined)
    4000 0000 0000 9995   declined (insufficient_funds)
    4000 0000 0000 0119   the provider fails transiently on the first try of each
                          idempotency key; retrying the same key succeeds
    4000 0025 0000 3155   the bank asks for 3-D Secure on every charge: ``requires_action``
                          (off-session: declined ``authentication_required``), the charge
                          waiting in the ledger (``pending``) until the shopper answers on the
                          provider's bank page (``web.local_pay``: ``/pay/local/authenticate``)
                          or the shop withdraws it (``withdraw_charge``)

Stripe's test payment methods name the same cards without tokenising, in the local provider
as in Stripe's test mode (so a test written with them runs against either):

    pm_card_visa                                  4242 ... succeeds
    pm_card_visa_chargeDeclined                   0002 ... card_declined
    pm_card_visa_chargeDeclinedInsufficientFunds  9995 ... insufficient_funds
    pm_card_chargeDeclinedProcessingError         0119 ... transient here (Stripe declines it)
    pm_card_authenticationRequired                3155 ... 3-D Secure on every charge

Any other number passing the Luhn check succeeds; one failing it is refused at tokenisation
(``CardRefused("invalid_number")``). Saved cards (renewals, charged off-session) are the same
tokens: ``save_card`` checks the token and ``charge_saved`` charges it with the outcomes of the
card it stands for.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dropline import bulk
from dropline.clock import Clock
from dropline.errors import UnknownPaymentMethod
from dropline.payments.models import LocalProviderCharge
from dropline.payments.provider import (
    CONTACTLESS_LIMIT,
    CardRefused,
    CardToken,
    ChargeRequest,
    ChargeResult,
    ListedCharge,
    ProviderUnavailable,
    SavedCard,
    TerminalReading,
    charge_each,
)

SUCCEEDS = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
TRANSIENT_FAILURE = "4000000000000119"
AUTHENTICATE = "4000002500003155"
PENDING = "pending"  # a charge's outcome in the ledger while the bank waits for the shopper


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


def _behaviour_of(number: str) -> str:
    """What charging the card does: an outcome, or "transient" (fails once per key)."""
    return {DECLINED: "declined:card_declined", INSUFFICIENT_FUNDS: "declined:insufficient_funds",
            TRANSIENT_FAILURE: "transient", AUTHENTICATE: "authenticate"}.get(number, "succeeded")


def card_fingerprint(number: str) -> str:
    # Same card -> same fingerprint, for linking accounts in risk scoring; never the number.
    return hashlib.sha256(f"card:{number}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Token:
    behaviour: str
    card: CardToken


def _test_method(reference: str, number: str) -> tuple[str, _Token]:
    return reference, _Token(_behaviour_of(number),
                             CardToken(reference, number[-4:], card_fingerprint(number)))


TEST_PAYMENT_METHODS = dict([
    _test_method("pm_card_visa", SUCCEEDS),
    _test_method("pm_card_visa_chargeDeclined", DECLINED),
    _test_method("pm_card_visa_chargeDeclinedInsufficientFunds", INSUFFICIENT_FUNDS),
    _test_method("pm_card_chargeDeclinedProcessingError", TRANSIENT_FAILURE),
    _test_method("pm_card_authenticationRequired", AUTHENTICATE),
])


class LocalCardProvider:
    name = "local"

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, *,
                 secret: str = "local-provider") -> None:
        """``secret`` keys the client secrets of charges waiting for 3-D Secure (the
        composition root passes the app's secret key)."""
        self._sessions = sessions
        self._clock = clock
        self._secret = secret
        self._transient_seen: set[str] = set()
        # Tokens never change once written, so each process keeps those it has read.
        self._tokens: dict[str, _Token] = dict(TEST_PAYMENT_METHODS)

    def tokenise_card(self, *, number: str, exp_month: int, exp_year: int, cvc: str
                      ) -> CardToken:
        """The provider's side of tokenisation (what Stripe.js does against Stripe): checks the
        card and answers a reference to it. Raises ``CardRefused("invalid_number")`` for a
        number failing the Luhn check, ``CardRefused("invalid_expiry")`` for an impossible
        expiry. The CVC is checked for shape and forgotten."""
        number = number.replace(" ", "").replace("-", "")
        if not luhn_valid(number):
            raise CardRefused("invalid_number")
        if not (1 <= exp_month <= 12 and 2000 <= exp_year <= 2100):
            raise CardRefused("invalid_expiry")
        if not (cvc.isdigit() and 3 <= len(cvc) <= 4):
            raise CardRefused("invalid_cvc")
        token = CardToken(reference=f"pm_{uuid.uuid4().hex[:24]}", last4=number[-4:],
                          fingerprint=card_fingerprint(number))
        behaviour = _behaviour_of(number)
        with self._sessions() as session:
            session.add(LocalProviderCharge(
                kind="card", idempotency_key=f"card_{token.reference}",
                reference=token.reference, outcome=behaviour, amount=0, currency="XXX",
                card_last4=token.last4, card_fingerprint=token.fingerprint,
                created_at=self._clock.now()))
            session.commit()
        self._tokens[token.reference] = _Token(behaviour, token)
        return token

    def _read_tokens(self, references: Iterable[str]) -> dict[str, _Token]:
        wanted = set(references)
        missing = wanted - self._tokens.keys()
        if missing:
            with self._sessions() as session:
                for row in session.scalars(select(LocalProviderCharge).where(
                        LocalProviderCharge.kind == "card",
                        LocalProviderCharge.reference.in_(missing))):
                    self._tokens[row.reference] = _Token(row.outcome, CardToken(
                        row.reference, row.card_last4 or "", row.card_fingerprint or ""))
        return {ref: self._tokens[ref] for ref in wanted if ref in self._tokens}

    def describe_card(self, reference: str) -> CardToken:
        token = self._read_tokens([reference]).get(reference)
        if token is None:
            raise UnknownPaymentMethod(
                "unknown payment method: tokenise the card first (POST /pay/local/tokens)",
                field="payment_method")
        return token.card

    def known_card(self, reference: str) -> CardToken | None:
        """``payments.provider.KnownCards``: a token this process has read or issued (tokens
        never change once written), without touching the database."""
        token = self._tokens.get(reference)
        return None if token is None else token.card

    def _behaviour(self, reference: str) -> str | None:
        token = self._read_tokens([reference]).get(reference)
        return None if token is None else token.behaviour

    def _remembered(self, idempotency_key: str) -> ChargeResult | None:
        with self._sessions() as session:
            row = session.scalar(
                select(LocalProviderCharge).where(
                    LocalProviderCharge.idempotency_key == idempotency_key)
            )
            if row is None:
                return None
            return self._result(row.reference, row.outcome)

    def _result(self, reference: str, outcome: str) -> ChargeResult:
        if outcome == "succeeded":
            return ChargeResult("succeeded", reference)
        if outcome == PENDING:
            return ChargeResult("requires_action", reference,
                                client_secret=self.client_secret(reference))
        return ChargeResult("declined", reference, outcome.split(":", 1)[1])

    def client_secret(self, reference: str) -> str:
        """What lets the shopper's browser answer the bank for one waiting charge (as a
        PaymentIntent's client secret does at Stripe): keyed, so a charge's reference alone
        does not open its bank page."""
        digest = hmac.new(self._secret.encode(), f"3ds:{reference}".encode(), hashlib.sha256)
        return f"{reference}_secret_{digest.hexdigest()[:24]}"

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

    def charge(self, *, amount: int, currency: str, card: CardToken,
               idempotency_key: str) -> ChargeResult:
        return self._charge_token(amount=amount, currency=currency, reference=card.reference,
                                  idempotency_key=idempotency_key)

    def _charge_token(self, *, amount: int, currency: str, reference: str,
                      idempotency_key: str) -> ChargeResult:
        if (remembered := self._remembered(idempotency_key)) is not None:
            return remembered
        behaviour = self._behaviour(reference)
        if behaviour is None:
            outcome = "declined:unknown_payment_method"
        elif behaviour == "transient":
            if idempotency_key not in self._transient_seen:
                self._transient_seen.add(idempotency_key)
                raise ProviderUnavailable("processor timeout (simulated); retry with the same key")
            outcome = "succeeded"
        elif behaviour == "authenticate":
            outcome = PENDING
        else:
            outcome = behaviour
        self._record(kind="charge", key=idempotency_key, outcome=outcome, amount=amount,
                     currency=currency)
        result = self._remembered(idempotency_key)
        assert result is not None
        return result

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        found = self._remembered(idempotency_key)
        return None if found is None or found.status == "requires_action" else found

    def list_charges(self, *, since: datetime, until: datetime) -> list[ListedCharge]:
        """The ledger's charges made in [since, until) (its own list API)."""
        with self._sessions() as session:
            rows = session.scalars(select(LocalProviderCharge).where(
                LocalProviderCharge.kind == "charge", LocalProviderCharge.created_at >= since,
                LocalProviderCharge.created_at < until).order_by(LocalProviderCharge.id)).all()
        return [ListedCharge(row.reference, row.idempotency_key,
                             "succeeded" if row.outcome == "succeeded" else
                             "pending" if row.outcome == PENDING else "declined",
                             row.amount, row.currency, row.created_at) for row in rows]

    def charge_status(self, reference: str) -> ChargeResult | None:
        """A known charge's outcome; None while its bank waits for the shopper (3-D Secure)."""
        outcome = self._outcome(reference)
        if outcome is None or outcome == PENDING:
            return None
        return self._result(reference, outcome)

    def _outcome(self, reference: str) -> str | None:
        with self._sessions() as session:
            return session.scalar(select(LocalProviderCharge.outcome).where(
                LocalProviderCharge.reference == reference,
                LocalProviderCharge.kind == "charge"))

    # -- 3-D Secure: the bank's side ---------------------------------------------------------

    def answer_bank(self, reference: str, *, client_secret: str, approved: bool) -> bool:
        """The shopper's answer on the bank's page (``web.local_pay``): a waiting charge is
        decided, succeeded or declined ``authentication_failed``. One conditional UPDATE, so
        a charge withdrawn meanwhile (``withdraw_charge``) stays withdrawn; False when the
        charge was not waiting (or the secret is wrong) and nothing changed."""
        if not hmac.compare_digest(client_secret, self.client_secret(reference)):
            return False
        return self._decide(reference, "succeeded" if approved
                            else "declined:authentication_failed")

    def _decide(self, reference: str, outcome: str) -> bool:
        with self._sessions() as session:
            moved = session.execute(update(LocalProviderCharge).where(
                LocalProviderCharge.reference == reference,
                LocalProviderCharge.kind == "charge",
                LocalProviderCharge.outcome == PENDING).values(outcome=outcome)).rowcount
            session.commit()
        return moved == 1

    def authentication_secret(self, reference: str) -> tuple[str, str]:
        """The waiting charge's client secret (and no payment method: the ledger knows it)."""
        return self.client_secret(reference), ""

    def authentication_redirect(self, reference: str, *, return_url: str) -> str | None:
        """``payments.provider.BankRedirect``: the provider's bank page for a waiting charge,
        which comes back to ``return_url``'s path; None for a charge not waiting."""
        if self._outcome(reference) != PENDING:
            return None
        return (f"/pay/local/authenticate?client_secret={self.client_secret(reference)}"
                f"&return_to={quote(urlsplit(return_url).path, safe='')}")

    def withdraw_charge(self, reference: str) -> ChargeResult | None:
        """A waiting charge is declined ``withdrawn`` (it can no longer succeed); a decided
        one is reported as it is. The same conditional UPDATE as the bank's answer, so
        exactly one of them decides it."""
        if self._decide(reference, "declined:withdrawn"):
            return ChargeResult("declined", reference, "withdrawn")
        outcome = self._outcome(reference)
        if outcome is None:
            return ChargeResult("declined", reference, "withdrawn")
        return self._result(reference, outcome)

    def charge_present(self, *, amount: int, currency: str, reading: TerminalReading,
                       idempotency_key: str) -> ChargeResult:
        """Card present, through the simulated terminal: the same ledger and the same test
        tokens as ``charge``; a tap above ``CONTACTLESS_LIMIT`` is declined (insert the card)."""
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
        tokens = self._read_tokens(r.card.reference for r in requests)
        if any(r.card.reference not in tokens
               or tokens[r.card.reference].behaviour in ("transient", "authenticate")
               for r in requests) or len({r.idempotency_key for r in requests}) != len(requests):
            return charge_each(self, requests)
        now = self._clock.now()
        fresh = {r.idempotency_key: (tokens[r.card.reference].behaviour,
                                     f"ch_{uuid.uuid4().hex[:24]}") for r in requests}
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

    def save_card(self, *, card: CardToken) -> SavedCard:
        """Keeps the card for later as a token of its own (as a provider attaches a payment
        method to one customer): a copy of the token's ledger row under a new reference."""
        token = self._read_tokens([card.reference]).get(card.reference)
        if token is None:
            raise CardRefused("unknown_payment_method")
        saved = CardToken(f"pm_{uuid.uuid4().hex[:24]}", token.card.last4, token.card.fingerprint)
        with self._sessions() as session:
            session.add(LocalProviderCharge(
                kind="card", idempotency_key=f"card_{saved.reference}",
                reference=saved.reference, outcome=token.behaviour, amount=0, currency="XXX",
                card_last4=saved.last4, card_fingerprint=saved.fingerprint,
                created_at=self._clock.now()))
            session.commit()
        self._tokens[saved.reference] = _Token(token.behaviour, saved)
        return SavedCard(token=saved.reference, last4=saved.last4, fingerprint=saved.fingerprint)

    def charge_saved(self, *, amount: int, currency: str, token: str,
                     idempotency_key: str) -> ChargeResult:
        result = self._charge_token(amount=amount, currency=currency, reference=token,
                                    idempotency_key=idempotency_key)
        if result.status == "requires_action":
            # Off-session nobody can answer the bank now: declined as Stripe declines it, the
            # charge kept waiting for the member to confirm it (the dunning notice's link).
            return ChargeResult("declined", result.reference, "authentication_required")
        return result

    def refund(self, *, charge_reference: str, amount: int, currency: str,
               idempotency_key: str) -> str:
        return self._record(kind="refund", key=idempotency_key, outcome="succeeded",
                            amount=amount, currency=currency, charge_reference=charge_reference)
