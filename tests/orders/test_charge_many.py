"""The local provider's batched charge (``charge_many``, used by drop batches) answers exactly
as ``charge`` would per key: new keys are recorded once, remembered keys replay their first
outcome, declines keep their code. Runs on SQLite and on PostgreSQL (its own fast path)."""

from __future__ import annotations

from sqlalchemy import func, select

from dropline.adapters.payments import LocalCardProvider
from dropline.payments.models import LocalProviderCharge
from dropline.payments.provider import ChargeRequest
from tests.builders import DECLINED_PM, card_of

GOOD = card_of()
DECLINED = card_of(DECLINED_PM)


def _ledger_rows(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(LocalProviderCharge))


def test_a_batch_records_new_keys_and_replays_remembered_ones(db, clock):
    provider = LocalCardProvider(db.sessions, clock)
    earlier = provider.charge(amount=500, currency="GBP", card=DECLINED,
                              idempotency_key="key-earlier")
    assert earlier.status == "declined"

    results = provider.charge_many([
        ChargeRequest(amount=1000, currency="GBP", card=GOOD, idempotency_key="key-a"),
        # remembered: declined the first time, so declined again, even with a good card now
        ChargeRequest(amount=500, currency="GBP", card=GOOD, idempotency_key="key-earlier"),
        ChargeRequest(amount=700, currency="GBP", card=DECLINED, idempotency_key="key-b"),
    ])

    assert [r.status for r in results] == ["succeeded", "declined", "declined"]
    assert results[1].reference == earlier.reference
    assert results[1].decline_code == earlier.decline_code
    assert results[2].decline_code == "card_declined"
    assert _ledger_rows(db) == 3  # key-earlier was not written twice

    again = provider.charge_many([
        ChargeRequest(amount=1000, currency="GBP", card=GOOD, idempotency_key="key-a"),
        ChargeRequest(amount=700, currency="GBP", card=DECLINED, idempotency_key="key-b")])
    assert [(r.status, r.reference) for r in again] == \
        [(r.status, r.reference) for r in results[::2]]
    assert provider.charge(amount=1000, currency="GBP", card=GOOD,
                           idempotency_key="key-a").reference == results[0].reference
    assert _ledger_rows(db) == 3
