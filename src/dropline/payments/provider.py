"""The payment port: what the shop asks of a card provider, and the values it gets back.

Domains (orders, memberships, pop-ups, drops, risk) speak only to these Protocols; which
provider stands behind them (``adapters.payments.LocalCardProvider``, ``adapters.stripe``) is
the composition root's choice. Every request carries an idempotency key: a retried charge
returns the first outcome and never takes money twice.

No card number ever reaches the shop: the shopper's browser (or a card reader) hands the card
to the provider, which answers with a payment method reference (``pm_...``); the shop sends
that reference and learns the card only as ``CardToken`` (reference, last4, fingerprint).

    PaymentProvider             describe_card, charge, charge_many, refund, find_charge,
                                charge_status (checkout, recovery, the return from 3-D Secure),
                                list_charges (reconciliation)
    KnownCards                  known_card: a card described without I/O, if the provider
                                holds it (optional; the drop engine's purchase asks it first)
    ├── RecurringPaymentProvider  save_card, charge_saved (membership renewals), withdraw_charge
    │                             (a renewal held for the member, withdrawn before a new try)
    └── CardPresentProvider       charge_present through a reader (pop-up counters)
    HostedCardEntry             start_card_entry, finish_card_entry: the provider's own hosted
                                card page, reached by redirect (no JavaScript; Stripe Checkout)
    BankRedirect                authentication_redirect: the bank's 3-D Secure page for a
                                browser without JavaScript
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

__all__ = [
    "BankRedirect",
    "CONTACTLESS_LIMIT",
    "CardPresentProvider",
    "CardRefused",
    "CardToken",
    "ChargeRequest",
    "ChargeResult",
    "EventVerifier",
    "HostedCardEntry",
    "KnownCards",
    "ListedCharge",
    "PaymentProvider",
    "ProviderEvent",
    "ProviderUnavailable",
    "RecurringPaymentProvider",
    "SavedCard",
    "SignatureRefused",
    "TerminalReading",
    "charge_each",
]


class ProviderUnavailable(Exception):
    """Transient: nothing was decided; retry with the same idempotency key."""


@dataclass(frozen=True)
class CardToken:
    """A card as the shop knows it: the provider's payment method reference, its last four
    digits and the provider's fingerprint (same card -> same fingerprint, for linking accounts
    in risk scoring). Never the number or the CVC."""

    reference: str
    last4: str
    fingerprint: str


@dataclass(frozen=True)
class ChargeResult:
    """``requires_action``: the bank wants the shopper to authenticate (3-D Secure); nothing is
    decided yet. ``client_secret`` lets the provider's script in the page finish it, and the
    provider reports the outcome later (a webhook); the payment stays pending meanwhile."""

    status: Literal["succeeded", "declined", "requires_action"]
    reference: str
    decline_code: str | None = None
    client_secret: str | None = None


@dataclass(frozen=True)
class ListedCharge:
    """A charge as the provider's list shows it: its reference, the idempotency key Dropline
    made it with (``""`` for a charge made outside Dropline), its state (``pending``: still
    deciding), amount, currency and when it was made."""

    reference: str
    idempotency_key: str
    status: Literal["succeeded", "declined", "pending"]
    amount: int
    currency: str
    created: datetime


@dataclass(frozen=True)
class SavedCard:
    """What the shop stores of a saved card: the provider's token, never the number."""

    token: str
    last4: str
    fingerprint: str


class CardRefused(Exception):
    """The provider would not save the card (e.g. an impossible number)."""

    def __init__(self, decline_code: str) -> None:
        self.decline_code = decline_code
        super().__init__(decline_code)


@dataclass(frozen=True)
class ChargeRequest:
    amount: int
    currency: str
    card: CardToken
    idempotency_key: str


class PaymentProvider(Protocol):
    name: str

    def describe_card(self, reference: str) -> CardToken:
        """The card behind a payment method reference; raises
        ``dropline.errors.UnknownPaymentMethod`` for a reference the provider does not know."""
        ...

    def charge(self, *, amount: int, currency: str, card: CardToken,
               idempotency_key: str) -> ChargeResult:
        ...

    def charge_many(self, requests: Sequence[ChargeRequest]) -> list[ChargeResult]:
        """Charges several cards, each with its own idempotency key (batched drop orders).
        Providers without a batch API use ``charge_each``."""
        ...

    def refund(self, *, charge_reference: str, amount: int, currency: str,
               idempotency_key: str) -> str:
        """Returns the refund reference."""
        ...

    def find_charge(self, *, idempotency_key: str) -> ChargeResult | None:
        """The outcome of the charge made with this key, or None if none was made; never
        charges. What settles a payment whose settlement never ran (a crashed worker)."""
        ...

    def list_charges(self, *, since: datetime, until: datetime) -> list[ListedCharge]:
        """Every charge the provider made for this shop in [since, until), by its list API
        (what reconciliation compares with the shop's orders); never charges. Raises
        ``ProviderUnavailable`` if the list cannot be read whole."""
        ...

    def charge_status(self, reference: str) -> ChargeResult | None:
        """The outcome of the charge with this provider reference, or None while it is still
        undecided (or unknown); never charges. What the shopper's return to the order settles
        by, after authenticating in the page or on the bank's page (3-D Secure)."""
        ...


class KnownCards(Protocol):
    """Optional: a provider that keeps the cards it has described in memory answers for them
    without I/O. The drop engine's purchase runs on the event loop and asks this first, so the
    common case needs no thread for ``describe_card`` (a thread hop costs the loop more than
    the rest of a purchase's screening)."""

    def known_card(self, reference: str) -> CardToken | None:
        """The card, if known without I/O; None says nothing (ask ``describe_card``)."""
        ...


class RecurringPaymentProvider(PaymentProvider, Protocol):
    """A provider that can also keep a card and charge it later without the customer present
    (membership renewals). Checkout needs only ``PaymentProvider``."""

    def save_card(self, *, card: CardToken) -> SavedCard:
        """Keeps the card for charges without the shopper present; raises ``CardRefused``."""
        ...

    def charge_saved(self, *, amount: int, currency: str, token: str,
                     idempotency_key: str) -> ChargeResult:
        ...

    def withdraw_charge(self, reference: str) -> ChargeResult | None:
        """Withdraws a charge still waiting for its customer (held for authentication), so it
        can no longer succeed, before a new attempt is charged. Returns ``succeeded`` if it
        was paid after all (settle with it; charge nothing new), ``declined`` if it can no
        longer be paid (withdrawn now, or failed before), None if the provider is still
        deciding it (try later). Never charges."""
        ...


class HostedCardEntry(Protocol):
    """A provider whose hosted card page is reached by redirect (Stripe Checkout): the
    no-JavaScript way to give a card. The local provider's own page is ``web.local_pay``."""

    def start_card_entry(self, *, success_url: str, cancel_url: str, owner: str,
                         currency: str) -> str:
        """The address of a hosted page collecting one card for ``owner``; it comes back to
        ``success_url`` (or ``cancel_url``)."""
        ...

    def finish_card_entry(self, session_id: str, *, owner: str) -> str | None:
        """The payment method reference the page collected, asked of the provider; None for
        a session unknown, unfinished or started for someone else."""
        ...


class BankRedirect(Protocol):
    """A provider that can send a browser without JavaScript to the bank's 3-D Secure page."""

    def authentication_redirect(self, reference: str, *, return_url: str) -> str | None:
        """The address of the bank's page for this charge, which comes back to
        ``return_url``; None when the charge waits for nothing (already decided)."""
        ...


class SignatureRefused(Exception):
    """A provider's webhook request whose signature does not verify: nothing in it is read."""


@dataclass(frozen=True)
class ProviderEvent:
    """What the shop reads of a provider's event (a webhook): its id (stored once), its type,
    the payment it is about (the charge's ``reference``) and, by type, the amount refunded or
    disputed, the decline code, the dispute's reason."""

    id: str
    type: str
    payment_reference: str
    created: int = 0  # the provider's clock, seconds since the epoch
    amount: int = 0
    decline_code: str | None = None
    dispute_reason: str | None = None


class EventVerifier(Protocol):
    """A provider that reports outcomes by signed webhooks (Stripe)."""

    def verify_event(self, payload: bytes, signature: str) -> ProviderEvent:
        """The event, once the signature verifies; raises ``SignatureRefused``."""
        ...


@dataclass(frozen=True)
class TerminalReading:
    """What a card reader at a counter hands over: the card it read (tapped or inserted, as the
    provider's reference: the reader talks to the provider, never the shop) and the reader's
    id. The local provider's simulated terminal accepts ids starting ``term_``."""

    terminal_id: str
    card: CardToken
    entry_mode: Literal["contactless", "chip"] = "contactless"


class CardPresentProvider(PaymentProvider, Protocol):
    """A provider that can also take a card in person, through a reader (pop-up counters)."""

    def charge_present(self, *, amount: int, currency: str, reading: TerminalReading,
                       idempotency_key: str) -> ChargeResult:
        ...


CONTACTLESS_LIMIT = 10_000  # minor units: above this a tap is refused and the card inserted


def charge_each(provider: PaymentProvider, requests: Sequence[ChargeRequest]
                ) -> list[ChargeResult]:
    """The default ``charge_many``: one ``charge`` per request, in order."""
    return [provider.charge(amount=r.amount, currency=r.currency, card=r.card,
                            idempotency_key=r.idempotency_key) for r in requests]
