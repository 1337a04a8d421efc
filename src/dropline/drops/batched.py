"""The database path's express purchase, written in batches (PostgreSQL without Redis).

``flows.purchase`` writes each purchase in transactions of its own: under a crowd every request
pays its own round trips, slot-row locks and commits, and the requests queue on the slot rows.
Here the purchases in flight in one process are written together (group commit):

1. Each request checks what is its own, in one short read (``screen``): no order yet for its
   checkout reference, the window and early access (``service.ensure_open``) or, with a
   waiting room, the admission token's signature, the variants, the shopper's count (no hold of
   their own, room under the limit) and the drop's committed units (short: expired holds are
   reclaimed and offered to the waitlist first, as ``flows`` does, then "sold out" if still
   short).
2. It hands a ``writer.Job`` to the process's ``PurchaseBatcher`` and waits. One of the waiting
   requests' threads writes every waiting job with ``drops.crowd.writer.write_batch``, the
   flash-crowd engine's batch writer, whose guarded statements decide in PostgreSQL whatever
   the read in step 1 may have raced with: the per-person counts, the admission token's single
   use, the units from the spread slot rows (a batch that comes up short reclaims expired holds,
   then writes its jobs one by one, so nobody is told "sold out" while the rows hold enough),
   then the orders, the charges and the settlement.
3. A paid order's answer is the batch's own (the order as the API reads it); a declined card or
   a sell-out decided by the rows is answered as ``flows`` words it. Anything else the batch
   refused (a limit reached, a token used, an order written meanwhile by a concurrent attempt
   with the same key) is left to ``flows.purchase`` (``purchase`` returns None), which decides
   it with its own transactions, as before.

So the rules are ``flows.purchase``'s, and only a purchase that goes through is batched. One
difference in kind: a shopper who places a hold while their own purchase is in a batch may end
up with both, within the per-person limit (which the batch's guarded count enforces).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.config import Settings
from dropline.db import Database
from dropline.drops import rules, service
from dropline.drops.crowd.writer import Job, write_batch
from dropline.drops.errors import AdmissionRefused, SoldOut
from dropline.drops.flows import Shopper, in_transaction
from dropline.drops.models import DropBuyer, DropQueueEntry, HoldSource
from dropline.errors import DomainError, PaymentDeclined
from dropline.orders.service import find_by_checkout_reference
from dropline.payments.provider import CardToken, PaymentProvider

# Jobs written by one batch at most, and batches written at once by one process (each holds a
# connection and, while it takes units, a few slot rows).
MAX_BATCH = 500
PARALLEL_BATCHES = 2


class _Waiting:
    __slots__ = ("done", "error", "job")

    def __init__(self, job: Job) -> None:
        self.job, self.done, self.error = job, False, None


class PurchaseBatcher:
    """Group commit for blocking callers: ``submit`` blocks until its job is written. The
    first caller finding a free batch slot writes every job waiting then (up to
    ``max_batch``), so a lone purchase is written at once and batches grow with the load."""

    def __init__(self, write: Callable[[list[Job]], None], *, max_batch: int = MAX_BATCH,
                 parallel: int = PARALLEL_BATCHES) -> None:
        self._write = write
        self._max, self._parallel = max_batch, parallel
        self._writing = 0
        self._waiting: list[_Waiting] = []
        self._changed = threading.Condition()

    def submit(self, job: Job) -> None:
        """Returns once ``job.outcome`` is set; raises what writing its batch raised."""
        mine = _Waiting(job)
        with self._changed:
            self._waiting.append(mine)
        while True:
            with self._changed:
                while not mine.done and not (self._waiting and self._writing < self._parallel):
                    self._changed.wait()
                if mine.done:
                    if mine.error is not None:
                        raise mine.error
                    return
                batch = self._waiting[:self._max]
                del self._waiting[:self._max]
                self._writing += 1
            try:
                self._write([waiting.job for waiting in batch])
            except BaseException as exc:  # every caller of the batch learns why
                for waiting in batch:
                    waiting.error = exc
            finally:
                with self._changed:
                    self._writing -= 1
                    for waiting in batch:
                        waiting.done = True
                    self._changed.notify_all()


def batcher_for(db: Database, *, clock: Clock, settings: Settings,
                provider: PaymentProvider) -> PurchaseBatcher:
    """A process's batcher: each drop's jobs written by ``write_batch``."""
    def write(jobs: list[Job]) -> None:
        by_drop: dict[int, list[Job]] = defaultdict(list)
        for job in jobs:
            by_drop[job.drop_id].append(job)
        for drop_jobs in by_drop.values():
            try:
                write_batch(db, clock=clock, settings=settings, provider=provider,
                            jobs=drop_jobs)
            except (IntegrityError, psycopg.IntegrityError):  # raw statements raise psycopg's
                # A concurrent batch committed an order with one of these checkout
                # references first (the same attempt twice in flight): the batch rolled back
                # whole, and written again that job is found existing (left to flows).
                write_batch(db, clock=clock, settings=settings, provider=provider,
                            jobs=drop_jobs)

    return PurchaseBatcher(write)


@dataclass(frozen=True)
class _Screened:
    pools: dict[int, int]  # pool -> units
    token_n: int
    source: HoldSource
    short: bool  # the committed slot rows hold fewer units than asked
    name: str


def screen(session: Session, *, clock: Clock, settings: Settings, drop_id: int,
           shopper: Shopper, lines: Sequence[service.HoldLine], admission_token: str | None,
           checkout_reference: str, early_access: service.EarlyAccess) -> _Screened | None:
    """Step 1 (see the module's text): raises the refusals ``flows.purchase`` would raise
    first; None when this purchase is not the batch's to decide."""
    if find_by_checkout_reference(session, checkout_reference) is not None:
        return None  # a retry: flows.purchase resumes the order
    drop = service.get_drop(session, drop_id)
    now = clock.now()
    token_n = 0
    if drop.queue_enabled:
        if not admission_token:
            raise AdmissionRefused("this drop has a waiting room: join it and ask for an "
                                   "admission token (POST /api/v1/drops/{id}/admission)")
        try:
            token_n = rules.verify_admission(
                admission_token[:1000], secret=settings.web.secret_key, drop_id=drop.id,
                customer_id=shopper.customer_id,
                session=rules.session_binding(shopper.session_digest), now=now).n
        except rules.BadToken as exc:
            raise AdmissionRefused(str(exc)) from None
        entry = session.execute(select(DropQueueEntry.tokens_used, DropQueueEntry.tokens_issued)
                                .where(DropQueueEntry.drop_id == drop.id,
                                       DropQueueEntry.customer_id == shopper.customer_id)
                                ).first()
        if entry is None or not entry.tokens_used < token_n <= entry.tokens_issued:
            return None  # a used token: flows.purchase refuses it as it words it
    else:
        service.ensure_open(session, clock=clock, drop=drop, customer_id=shopper.customer_id,
                            early_access=early_access)
    wanted = service.pools_for(session, drop=drop, lines=lines)
    quantity = sum(wanted.values())
    buyer = session.get(DropBuyer, (drop.id, shopper.customer_id))
    if buyer is not None and (buyer.holding or buyer.units + quantity > drop.per_person_limit) \
            or quantity > drop.per_person_limit or now >= drop.ends_at:
        return None  # refused by flows.purchase, with its own wording (and reclaim)
    remaining = service.remaining_by_pool(session, drop.id)
    return _Screened(pools=wanted, token_n=token_n,
                     source=HoldSource.queue if drop.queue_enabled else HoldSource.direct,
                     short=any(remaining.get(pool, 0) < q for pool, q in wanted.items()),
                     name=drop.name)


def _sold_out(screened: _Screened, drop_id: int) -> SoldOut:
    quantity = next(iter(sorted(screened.pools.items())))[1]
    return SoldOut(f"{screened.name} has not {quantity} left; join the waitlist",
                   drop_id=drop_id)


def _still_short(db: Database, *, clock: Clock, drop_id: int, pools: dict[int, int],
                 early_access: service.EarlyAccess) -> bool:
    """The committed rows were short: expired holds reclaimed (and offered to the waitlist
    first), as ``flows`` does before it says "sold out"; whether the rows are still short."""
    def reclaim(session: Session) -> bool:
        service.reclaim_and_offer(session, clock=clock, drop=service.get_drop(session, drop_id),
                                  early_access=early_access)
        remaining = service.remaining_by_pool(session, drop_id)
        return any(remaining.get(pool, 0) < q for pool, q in pools.items())

    return in_transaction(db, reclaim)


def purchase(
    db: Database, *, clock: Clock, settings: Settings, batcher: PurchaseBatcher, drop_id: int,
    shopper: Shopper, lines: Sequence[service.HoldLine], admission_token: str | None,
    card: CardToken, shipping_address: dict[str, Any], checkout_reference: str,
    early_access: service.EarlyAccess, discount_code: str = "",
    delivery: object | None = None,
) -> Any | None:
    """The paid order (as the API reads it), or a refusal raised; None leaves the purchase to
    ``flows.purchase`` (see the module's text), as is any purchase with a ``delivery`` window
    (the batch books no windows). The request's Idempotency-Key is the caller's (its record
    written before, its answer stored after, as for ``flows.purchase``)."""
    if delivery is not None:
        return None
    screened = in_transaction(db, lambda session: screen(
        session, clock=clock, settings=settings, drop_id=drop_id, shopper=shopper, lines=lines,
        admission_token=admission_token, checkout_reference=checkout_reference,
        early_access=early_access))
    if screened is None:
        return None
    if screened.short and _still_short(db, clock=clock, drop_id=drop_id, pools=screened.pools,
                                       early_access=early_access):
        raise _sold_out(screened, drop_id)
    by_variant: dict[int, int] = defaultdict(int)
    for line in lines:
        by_variant[line.variant_id] += line.quantity
    job = Job(drop_id=drop_id, customer_id=shopper.customer_id,
              lines=sorted(by_variant.items()), pools=screened.pools, card=card,
              shipping_address=shipping_address, reference=checkout_reference,
              token_n=screened.token_n, source=screened.source,
              discount_code=discount_code.strip())
    batcher.submit(job)
    kind, detail = job.outcome or ("refused", None)
    if kind == "paid":
        return detail
    if kind == "declined":
        raise PaymentDeclined(f"the card was declined ({detail['decline_code']}); nothing "
                              "was charged", **detail)
    if (kind, detail) == ("refused", "soldout"):
        raise _sold_out(screened, drop_id)
    if kind == "refused" and isinstance(detail, DomainError):
        raise detail  # the discount code's refusal, decided in the batch
    return None
