"""Drop use cases: create and schedule drops, take and return units, holds, per-person caps,
early access. Session first, keyword-only arguments after; flush, never commit.

The hot path (why no checkout waits on one row)
-----------------------------------------------
A drop's units are pre-split over N ``drop_slots`` rows per pool (N = 32 by default). Taking q
units is first one statement: ``UPDATE drop_slots SET remaining = remaining - q`` on the first
slot from a random place that has q units and that no other transaction holds (``SKIP LOCKED``
on PostgreSQL), ``AND remaining >= q``. Only if that misses do we read the pool's committed
slots and take from them, waiting for locks: a whole slot, or a split over several when no
single one has enough (in slot order, so split takes lock rows in one order on PostgreSQL). A
pass that misses because a slot was emptied meanwhile is rolled back to a savepoint and the
slots are read again, so "sold out" is said only when the committed slots hold fewer than q.
Each row's ``remaining`` never goes below zero (the WHERE, and a CHECK), so their sum cannot
either: no oversell, on SQLite (which serialises writers) as on PostgreSQL (where N rows let N
checkouts commit concurrently instead of queueing on one row lock). The express purchase takes
its units after writing the order, so a slot row stays locked only for the take, the hold's
INSERT and the commit.

Why pre-split rows: one hot row makes every checkout of a drop queue on one lock; a row per
unit would cost cap rows per drop and a SKIP LOCKED scan that SQLite does not have. Pre-split
rows let N checkouts commit concurrently on PostgreSQL, and the embedded SQLite default runs
the very same code.

This module is the source of truth for a drop's units, holds, per-person counts and admission
tokens: units, holds, counters and orders change in one database transaction. With Redis
configured (PostgreSQL only), the flash-crowd engine (``drops.crowd``) keeps a second, derived
copy of that state in Redis and decides each purchase there first (its gate), then commits it
here in batches with guarded statements on these same rows, which refuse whatever the rows
cannot give. So Redis may be ahead or behind, never authoritative: when the two disagree, the
engine rebuilds the drop's Redis keys from these tables (``drops.crowd.gate.reconcile``, also
run by the drops job and ``dropline drops reconcile``), and a crash between the gate and the
commit holds units in Redis only until the purchase's lease lapses, never oversells.

Holds and the per-person cap
----------------------------
A hold takes units and raises the person's ``drop_buyers`` row by one conditional upsert
(``units + q <= limit AND NOT holding``), in the same transaction, so the limit holds across
parallel requests and there is at most one active hold each. Expiry needs no sweeper: a hold is
converted only by ``UPDATE ... WHERE status = 'active' AND expires_at > now``, so an expired
hold's units can never be sold, and expired holds are reclaimed (units back to their slots,
counters lowered) whenever a take misses, when their owner asks for a new hold, and by the
periodic job, which only makes units come back sooner.

Lock order on PostgreSQL (deadlock freedom): a new hold locks its owner's counter, then one slot.
A reclaim locks the expired holds in id order, then slots in (pool, slot) order, then counters
in customer order; the counters it touches
belong to people whose ``holding`` is set, whose own new-hold attempts fail at the counter and
roll back without waiting on anything else. The flows retry a transaction PostgreSQL still
chose as a deadlock victim (bounded).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dropline.catalog.models import Variant
from dropline.catalog.service import get_location_by_code
from dropline.clock import Clock
from dropline.drops import rules
from dropline.drops.errors import (
    DropEnded,
    HoldAlreadyActive,
    HoldExpired,
    LimitReached,
    NotOpenYet,
    SoldOut,
)
from dropline.drops.models import (
    SHARED_POOL,
    Drop,
    DropBuyer,
    DropHold,
    DropSlot,
    DropVariant,
    DropWaitlistEntry,
    HoldSource,
    HoldStatus,
    WaitlistStatus,
)
from dropline.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidState,
    NotFound,
    ServiceUnavailable,
)
from dropline.events.service import record_event
from dropline.memberships.perks import early_access_minutes
from dropline.orders.models import Order

MAX_RECLAIM = 500  # expired holds reclaimed per pass: bounded work inside a shopper's request
# Passes of a take that missed: each miss follows another take's commit, so this is a bound
# for a runaway, never reached by a crowd on a cap.
MAX_TAKE_PASSES = 1000
_rng = random.SystemRandom()


# --- early access: the seam to memberships ----------------------------------------------------


class EarlyAccess(Protocol):
    """Minutes before the public start this customer may buy (0 for non-members)."""

    def __call__(self, session: Session, *, customer_id: int, at: datetime) -> int: ...


def membership_early_access(session: Session, *, customer_id: int, at: datetime) -> int:
    """The default: the lead the customer's membership tier gives (0 for non-members)."""
    return int(early_access_minutes(session, customer_id=customer_id, at=at))


# --- drops --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantCap:
    variant_id: int
    cap: int | None = None  # None: shares the drop's cap


@dataclass(frozen=True)
class DropSchedule:
    starts_at: datetime
    ends_at: datetime
    early_access_minutes: int = 0
    admission_per_minute: int = 600
    queue_enabled: bool = True
    hold_ttl_seconds: int = 600
    offer_ttl_seconds: int = 900


def _validate_schedule(schedule: DropSchedule) -> None:
    if schedule.ends_at <= schedule.starts_at:
        raise InvalidInput("a drop must end after it starts", field="ends_at")
    if not 0 <= schedule.early_access_minutes <= 7 * 24 * 60:
        raise InvalidInput("early access is 0 to 10080 minutes", field="early_access_minutes")
    if not 1 <= schedule.admission_per_minute <= 1_000_000:
        raise InvalidInput("admission rate must be 1 to 1,000,000 per minute",
                           field="admission_per_minute")
    for name in ("hold_ttl_seconds", "offer_ttl_seconds"):
        if not 10 <= getattr(schedule, name) <= 86_400:
            raise InvalidInput(f"{name} must be 10 to 86400", field=name)


def create_drop(
    session: Session, *, clock: Clock, slug: str, name: str, variants: Sequence[VariantCap],
    shared_cap: int, per_person_limit: int, schedule: DropSchedule,
    slots: int = rules.DEFAULT_SLOTS, location_code: str | None = None, actor: str = "system",
) -> Drop:
    _validate_schedule(schedule)
    if session.scalar(select(Drop.id).where(Drop.slug == slug)) is not None:
        raise AlreadyExists(f"a drop with slug {slug!r} exists", field="slug")
    if not variants:
        raise InvalidInput("a drop needs at least one variant", field="variants")
    ids = [v.variant_id for v in variants]
    if len(set(ids)) != len(ids):
        raise InvalidInput("variants must be distinct", field="variants")
    found = set(session.scalars(select(Variant.id).where(Variant.id.in_(ids))))
    if missing := sorted(set(ids) - found):
        raise NotFound(f"variant(s) not found: {', '.join(map(str, missing))}")
    if shared_cap < 0 or any(v.cap is not None and v.cap < 0 for v in variants):
        raise InvalidInput("caps cannot be negative", field="cap")
    if per_person_limit < 1:
        raise InvalidInput("the per-person limit is at least 1", field="per_person_limit")
    total = shared_cap + sum(v.cap or 0 for v in variants)
    if total < 1:
        raise InvalidInput("a drop needs at least one unit", field="cap")
    location_id = get_location_by_code(session, location_code).id if location_code else None

    drop = Drop(slug=slug, name=name, shared_cap=shared_cap, per_person_limit=per_person_limit,
                starts_at=schedule.starts_at, ends_at=schedule.ends_at,
                early_access_minutes=schedule.early_access_minutes,
                hold_ttl_seconds=schedule.hold_ttl_seconds,
                offer_ttl_seconds=schedule.offer_ttl_seconds,
                admission_per_minute=schedule.admission_per_minute,
                queue_enabled=schedule.queue_enabled,
                slot_count=rules.slots_for(total, slots), location_id=location_id,
                created_at=clock.now())
    session.add(drop)
    session.flush()
    session.add_all([DropVariant(drop_id=drop.id, variant_id=v.variant_id, cap=v.cap)
                     for v in variants])
    pools = {v.variant_id: v.cap for v in variants if v.cap is not None}
    if any(v.cap is None for v in variants):
        pools[SHARED_POOL] = shared_cap
    for pool, cap in pools.items():
        session.add_all([DropSlot(drop_id=drop.id, pool=pool, slot_no=i, remaining=units)
                         for i, units in enumerate(rules.spread_units(cap, drop.slot_count))])
    session.flush()
    record_event(session, clock=clock, type="drop.created", subject_type="drop",
                 subject_id=drop.id, payload={"slug": slug, "cap": total, "actor": actor,
                                              "starts_at": drop.starts_at.isoformat()})
    return drop


def reschedule_drop(session: Session, *, clock: Clock, drop: Drop, schedule: DropSchedule,
                    actor: str = "system") -> Drop:
    _validate_schedule(schedule)
    for field in ("starts_at", "ends_at", "early_access_minutes", "admission_per_minute",
                  "queue_enabled", "hold_ttl_seconds", "offer_ttl_seconds"):
        setattr(drop, field, getattr(schedule, field))
    session.flush()
    record_event(session, clock=clock, type="drop.scheduled", subject_type="drop",
                 subject_id=drop.id, payload={"starts_at": drop.starts_at.isoformat(),
                                              "ends_at": drop.ends_at.isoformat(),
                                              "actor": actor})
    return drop


def started_drop_days(session: Session, now: datetime) -> set[date]:
    """The days on which drops started, up to ``now`` (memberships' frequency segments count
    them as event days: ``memberships.segments.DropDays``)."""
    return {at.date() for at in session.scalars(select(Drop.starts_at)
                                                  .where(Drop.starts_at <= now))}


def get_drop(session: Session, drop_id: int) -> Drop:
    drop = session.get(Drop, drop_id)
    if drop is None:
        raise NotFound(f"drop {drop_id} not found")
    return drop


def find_drop(session: Session, ref: str) -> Drop:
    """By slug, or by id when ``ref`` is all digits (the CLI accepts either)."""
    drop = session.scalar(select(Drop).where(Drop.slug == ref))
    if drop is None and ref.isdigit() and len(ref) < 16:
        drop = session.get(Drop, int(ref))
    if drop is None:
        raise NotFound(f"drop {ref!r} not found")
    return drop


def list_drops(session: Session, *, limit: int = 100, offset: int = 0) -> list[Drop]:
    return list(session.scalars(select(Drop).order_by(Drop.starts_at.desc(), Drop.id.desc())
                                .limit(limit).offset(offset)))


def drop_variants(session: Session, drop_id: int) -> list[DropVariant]:
    return list(session.scalars(select(DropVariant).where(DropVariant.drop_id == drop_id)
                                .order_by(DropVariant.variant_id)))


def remaining_by_pool(session: Session, drop_id: int) -> dict[int, int]:
    rows = session.execute(select(DropSlot.pool, func.sum(DropSlot.remaining))
                           .where(DropSlot.drop_id == drop_id).group_by(DropSlot.pool))
    return {pool: int(total or 0) for pool, total in rows}


def cap_of(drop: Drop, variants: Iterable[DropVariant]) -> int:
    return drop.shared_cap + sum(v.cap or 0 for v in variants)


def state_of(session: Session, *, clock: Clock, drop: Drop) -> rules.DropState:
    return rules.drop_state(now=clock.now(), starts_at=drop.starts_at, ends_at=drop.ends_at,
                            early_access_minutes=drop.early_access_minutes,
                            remaining=sum(remaining_by_pool(session, drop.id).values()))


def restock_drop(session: Session, *, clock: Clock, drop: Drop, units: int,
                 variant_id: int | None = None, actor: str = "system") -> int:
    """Raises a cap by ``units`` (the shared cap, or a capped variant's). The new units are
    added to the slot rows by arithmetic, and offered to the waitlist first. Returns how many
    waitlist offers were made."""
    if not 1 <= units <= 10_000_000:
        raise InvalidInput("restock 1 to 10,000,000 units", field="units")
    pool = SHARED_POOL
    if variant_id is not None:
        row = session.get(DropVariant, (drop.id, variant_id))
        if row is None:
            raise NotFound(f"variant {variant_id} is not in this drop")
        if row.cap is not None:
            pool = variant_id
            session.execute(update(DropVariant).where(
                DropVariant.drop_id == drop.id, DropVariant.variant_id == variant_id)
                .values(cap=DropVariant.cap + units))
    if pool == SHARED_POOL:
        if not session.scalar(select(func.count()).select_from(DropSlot).where(
                DropSlot.drop_id == drop.id, DropSlot.pool == SHARED_POOL)):
            raise InvalidInput("this drop has no shared cap; restock a variant", field="variant_id")
        session.execute(update(Drop).where(Drop.id == drop.id)
                        .values(shared_cap=Drop.shared_cap + units))
    _give_back(session, drop_id=drop.id, takes=[
        rules.Take(pool, slot_no, part)
        for slot_no, part in enumerate(rules.spread_units(units, drop.slot_count)) if part])
    session.refresh(drop)
    record_event(session, clock=clock, type="drop.restocked", subject_type="drop",
                 subject_id=drop.id, payload={"units": units, "variant_id": variant_id,
                                              "actor": actor})
    return offer_to_waitlist(session, clock=clock, drop=drop)


# --- units --------------------------------------------------------------------------------------


def _take_from_slot(session: Session, *, drop_id: int, pool: int, slot_no: int,
                    quantity: int) -> bool:
    return session.execute(
        update(DropSlot)
        .where(DropSlot.drop_id == drop_id, DropSlot.pool == pool, DropSlot.slot_no == slot_no,
               DropSlot.remaining >= quantity)
        .values(remaining=DropSlot.remaining - quantity)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def _take_from_any_slot(session: Session, *, drop: Drop, pool: int, quantity: int,
                        start: int) -> int | None:
    """One statement: the first slot from ``start`` on (wrapping round) that has ``quantity``
    units and that no other transaction holds, decremented; its number, or None. On
    PostgreSQL ``SKIP LOCKED`` sends concurrent takes to different rows instead of queueing
    them on one; SQLite serialises writers, so there it is simply the first slot with enough."""
    n = drop.slot_count
    pick = (select(DropSlot.slot_no)
            .where(DropSlot.drop_id == drop.id, DropSlot.pool == pool,
                   DropSlot.remaining >= quantity)
            .order_by((DropSlot.slot_no + (n - start)) % n).limit(1)
            .with_for_update(skip_locked=True).scalar_subquery())
    return session.execute(
        update(DropSlot)
        .where(DropSlot.drop_id == drop.id, DropSlot.pool == pool, DropSlot.slot_no == pick,
               DropSlot.remaining >= quantity)
        .values(remaining=DropSlot.remaining - quantity)
        .returning(DropSlot.slot_no)
        .execution_options(synchronize_session=False)
    ).scalar()


def take_units(session: Session, *, drop: Drop, pool: int, quantity: int,
               rng: random.Random | None = None) -> list[rules.Take]:
    """Takes ``quantity`` units of a pool; [] only when the pool has fewer than that left.

    First one statement on a free slot that has enough (``_take_from_any_slot``). If that
    misses (every such slot held by another transaction, or no single slot has enough), a
    pass reads the committed slots and, unless their sum is short, takes from them, waiting
    for locks: a whole slot if one has enough, else a split in slot order (one lock order
    for every split take). A pass that misses (a slot was emptied meanwhile) is rolled back
    to its savepoint, which also releases its row locks, and the slots are read again; each
    miss follows another transaction's committed take, so the passes end. "Sold out" is
    therefore never said while the committed slots hold enough."""
    rng = rng or _rng
    slot_no = _take_from_any_slot(session, drop=drop, pool=pool, quantity=quantity,
                                  start=rng.randrange(drop.slot_count))
    if slot_no is not None:
        return [rules.Take(pool, slot_no, quantity)]
    for _ in range(MAX_TAKE_PASSES):
        seen = [(slot_no, remaining) for slot_no, remaining in session.execute(
            select(DropSlot.slot_no, DropSlot.remaining).where(
                DropSlot.drop_id == drop.id, DropSlot.pool == pool, DropSlot.remaining > 0))]
        if sum(remaining for _, remaining in seen) < quantity:
            return []
        savepoint = session.begin_nested()
        taken = _take_seen(session, drop=drop, pool=pool, quantity=quantity, seen=seen, rng=rng)
        if taken:
            savepoint.commit()
            return taken
        savepoint.rollback()
    raise ServiceUnavailable("the drop is too busy to take units right now; retry",
                             retry_after=1)


def _take_seen(session: Session, *, drop: Drop, pool: int, quantity: int,
               seen: list[tuple[int, int]], rng: random.Random) -> list[rules.Take]:
    """One pass over the slots as read: all the units, or [] (the caller rolls back)."""
    whole = [slot_no for slot_no, remaining in seen if remaining >= quantity]
    if whole:
        slot_no = rng.choice(whole)
        if _take_from_slot(session, drop_id=drop.id, pool=pool, slot_no=slot_no,
                           quantity=quantity):
            return [rules.Take(pool, slot_no, quantity)]
        return []
    taken: list[rules.Take] = []
    for slot_no, part in rules.split_over_slots(quantity, seen):
        if not _take_from_slot(session, drop_id=drop.id, pool=pool, slot_no=slot_no,
                               quantity=part):
            return []
        taken.append(rules.Take(pool, slot_no, part))
    return taken


def _give_back(session: Session, *, drop_id: int, takes: Iterable[rules.Take]) -> None:
    merged: dict[tuple[int, int], int] = defaultdict(int)
    for take in takes:
        merged[(take.pool, take.slot_no)] += take.quantity
    for (pool, slot_no), quantity in sorted(merged.items()):  # one lock order
        session.execute(
            update(DropSlot)
            .where(DropSlot.drop_id == drop_id, DropSlot.pool == pool,
                   DropSlot.slot_no == slot_no)
            .values(remaining=DropSlot.remaining + quantity))


def _takes_of(hold_takes: Sequence[Sequence[int]]) -> list[rules.Take]:
    return [rules.Take(int(pool), int(slot), int(qty)) for pool, slot, qty in hold_takes]


def insert_for(session: Session) -> Callable[..., Any]:
    assert session.bind is not None
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


def _count_in(session: Session, *, drop: Drop, customer_id: int, quantity: int,
              holding: bool) -> bool:
    """Raises the person's counter by ``quantity`` if the limit allows and they hold nothing
    else: one conditional upsert whose row count decides. ``holding`` is what their holding
    flag becomes: True for a hold, False for units sold at once (the express purchase)."""
    if quantity > drop.per_person_limit:
        return False
    statement = insert_for(session)(DropBuyer).values(
        drop_id=drop.id, customer_id=customer_id, units=quantity, holding=holding)
    # RETURNING says whether the row was written: INSERT reports no row count on psycopg.
    return session.execute(statement.on_conflict_do_update(
        index_elements=["drop_id", "customer_id"],
        set_={"units": DropBuyer.units + statement.excluded.units, "holding": holding},
        where=(DropBuyer.units + quantity <= drop.per_person_limit)
        & DropBuyer.holding.is_(False),
    ).returning(DropBuyer.units)).first() is not None


def _count_person(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
                  quantity: int, holding: bool) -> None:
    """Counts ``quantity`` against the person, or raises LimitReached / HoldAlreadyActive. Their
    own lapsed hold (which still marks them as holding) is reclaimed only when the count is
    refused, so the common case is one statement."""
    if _count_in(session, drop=drop, customer_id=customer_id, quantity=quantity,
                 holding=holding):
        return
    if _reclaim_own_expired(session, clock=clock, drop=drop, customer_id=customer_id) \
            and _count_in(session, drop=drop, customer_id=customer_id, quantity=quantity,
                          holding=holding):
        return
    buyer = session.get(DropBuyer, (drop.id, customer_id), populate_existing=True)
    if buyer is not None and buyer.holding:
        raise HoldAlreadyActive("you already hold units in this drop: pay for them or "
                                "release them first")
    already = buyer.units if buyer else 0
    raise LimitReached(f"the limit is {drop.per_person_limit} per person; you have "
                       f"{already} held or bought", limit=drop.per_person_limit,
                       already=already)


def _take_pools(session: Session, *, drop: Drop, wanted: dict[int, int],
                rng: random.Random | None) -> list[rules.Take]:
    takes: list[rules.Take] = []
    for pool, pool_quantity in sorted(wanted.items()):
        got = take_units(session, drop=drop, pool=pool, quantity=pool_quantity, rng=rng)
        if not got:
            raise SoldOut(f"{drop.name} has not {pool_quantity} left; join the waitlist",
                          drop_id=drop.id)
        takes.extend(got)
    return takes


def _count_out(session: Session, *, drop_id: int, customer_id: int, quantity: int) -> None:
    session.execute(update(DropBuyer)
                    .where(DropBuyer.drop_id == drop_id, DropBuyer.customer_id == customer_id)
                    .values(units=DropBuyer.units - quantity, holding=False))


# --- holds --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldLine:
    variant_id: int
    quantity: int


def pools_for(session: Session, *, drop: Drop, lines: Sequence[HoldLine]) -> dict[int, int]:
    """Quantity wanted per pool; refuses variants not in the drop."""
    caps = {v.variant_id: v.cap for v in drop_variants(session, drop.id)}
    wanted: dict[int, int] = defaultdict(int)
    for line in lines:
        if line.variant_id not in caps:
            raise NotFound(f"variant {line.variant_id} is not in this drop")
        if line.quantity < 1:
            raise InvalidInput("quantities are at least 1", field="quantity")
        wanted[SHARED_POOL if caps[line.variant_id] is None else line.variant_id] += line.quantity
    return dict(wanted)


def opens_to(session: Session, *, drop: Drop, customer_id: int, at: datetime,
             early_access: EarlyAccess) -> datetime:
    """When the drop opens to this shopper: the public start, less their early access."""
    if at >= drop.starts_at:
        return drop.starts_at
    lead = early_access(session, customer_id=customer_id, at=at) \
        if drop.early_access_minutes else 0
    return rules.opening_time(starts_at=drop.starts_at, lead_minutes=lead,
                              drop_early_access_minutes=drop.early_access_minutes)


def ensure_open(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
                early_access: EarlyAccess) -> None:
    """Early access is enforced here, on the server, whatever the page showed."""
    now = clock.now()
    if now >= drop.ends_at:
        raise DropEnded(f"{drop.name} ended at {drop.ends_at.isoformat()}")
    if now >= drop.starts_at:
        return
    opens = opens_to(session, drop=drop, customer_id=customer_id, at=now,
                     early_access=early_access)
    if now < opens:
        raise NotOpenYet(f"{drop.name} opens to you at {opens.isoformat()}",
                         opens_at=opens.isoformat(),
                         retry_after=max(1, int((opens - now).total_seconds())))


def create_hold(
    session: Session, *, clock: Clock, drop: Drop, customer_id: int, lines: Sequence[HoldLine],
    source: HoldSource, ttl_seconds: int | None = None, rng: random.Random | None = None,
) -> DropHold:
    """Takes units and counts them against the person, in the caller's transaction. The
    caller has checked admission (token, early access). Raises SoldOut without reclaiming:
    the flow reclaims in its own transaction, so the reclaim survives this one's rollback."""
    now = clock.now()
    if now >= drop.ends_at:
        raise DropEnded(f"{drop.name} has ended")
    wanted = pools_for(session, drop=drop, lines=lines)
    _count_person(session, clock=clock, drop=drop, customer_id=customer_id,
                  quantity=sum(wanted.values()), holding=True)
    takes = _take_pools(session, drop=drop, wanted=wanted, rng=rng)
    return _write_hold(session, clock=clock, drop=drop, customer_id=customer_id, lines=lines,
                       takes=takes, source=source, status=HoldStatus.active,
                       expires_at=now + timedelta(seconds=ttl_seconds or drop.hold_ttl_seconds))


def count_purchase(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
                   lines: Sequence[HoldLine]) -> dict[int, int]:
    """The first half of units sold at once (the express purchase, no hold of the shopper's
    own in between): the drop still open, the variants in it, the units counted against the
    person (refused while they hold units, as a new hold would be). Returns units per pool
    for ``take_purchase_units``, which the caller runs once the order is written."""
    if clock.now() >= drop.ends_at:
        raise DropEnded(f"{drop.name} has ended")
    wanted = pools_for(session, drop=drop, lines=lines)
    _count_person(session, clock=clock, drop=drop, customer_id=customer_id,
                  quantity=sum(wanted.values()), holding=False)
    return wanted


def take_purchase_units(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
                        lines: Sequence[HoldLine], pools: dict[int, int], source: HoldSource,
                        order_id: int, rng: random.Random | None = None) -> DropHold:
    """The second half: the units taken (SoldOut if the drop has too few) and recorded as a
    hold already converted to ``order_id``, where they came from. The caller wrote the order
    first, so a slot row a take locks stays locked only for the take, this INSERT and the
    commit, not for the order's writes."""
    now = clock.now()
    takes = _take_pools(session, drop=drop, wanted=pools, rng=rng)
    return _write_hold(session, clock=clock, drop=drop, customer_id=customer_id, lines=lines,
                       takes=takes, source=source, status=HoldStatus.converted,
                       expires_at=now + timedelta(seconds=drop.hold_ttl_seconds),
                       closed_at=now, order_id=order_id)


def _write_hold(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
                lines: Sequence[HoldLine], takes: list[rules.Take], source: HoldSource,
                status: HoldStatus, expires_at: datetime, closed_at: datetime | None = None,
                order_id: int | None = None) -> DropHold:
    now = clock.now()
    quantity = sum(take.quantity for take in takes)
    hold = DropHold(
        drop_id=drop.id, customer_id=customer_id, status=status, source=source,
        quantity=quantity,
        lines=[{"variant_id": line.variant_id, "quantity": line.quantity}
               for line in sorted(lines, key=lambda item: item.variant_id)],
        takes=[[t.pool, t.slot_no, t.quantity] for t in takes], created_at=now,
        expires_at=expires_at, closed_at=closed_at, order_id=order_id,
    )
    session.add(hold)
    session.flush()
    if now < drop.starts_at:
        # Only a member's early-access window lets a hold exist before the public start; the
        # onboarding flow and telemetry follow this event.
        record_event(session, clock=clock, type="drop.early_access_used", subject_type="drop",
                     subject_id=drop.id, customer_id=customer_id,
                     payload={"drop_id": drop.id, "hold_id": hold.id, "quantity": quantity})
    return hold


def get_hold(session: Session, hold_id: int, *, customer_id: int | None = None) -> DropHold:
    hold = session.get(DropHold, hold_id)
    if hold is None or (customer_id is not None and hold.customer_id != customer_id):
        raise NotFound(f"hold {hold_id} not found")
    return hold


def convert_hold(session: Session, *, clock: Clock, hold_id: int, customer_id: int) -> DropHold:
    """The hold becomes an order's units: only while active and unexpired (conditional UPDATE,
    so an expired hold can never be sold, even before it is reclaimed)."""
    now = clock.now()
    converted = session.execute(
        update(DropHold)
        .where(DropHold.id == hold_id, DropHold.customer_id == customer_id,
               DropHold.status == HoldStatus.active, DropHold.expires_at > now)
        .values(status=HoldStatus.converted, closed_at=now)
    ).rowcount
    hold = get_hold(session, hold_id, customer_id=customer_id)
    if converted != 1:
        if hold.status in (HoldStatus.active, HoldStatus.expired):
            raise HoldExpired(f"hold {hold_id} expired at {hold.expires_at.isoformat()}; its "
                              "units went back to the drop")
        raise InvalidState(f"hold {hold_id} is {hold.status.value}")
    session.refresh(hold)
    # The units stay counted (bought now); the person may hold again, up to the limit.
    session.execute(update(DropBuyer).where(DropBuyer.drop_id == hold.drop_id,
                                            DropBuyer.customer_id == customer_id)
                    .values(holding=False))
    if hold.source is HoldSource.offer:
        session.execute(update(DropWaitlistEntry).where(DropWaitlistEntry.hold_id == hold.id)
                        .values(status=WaitlistStatus.claimed))
    return hold


def attach_order(session: Session, *, hold: DropHold, order_id: int) -> None:
    session.execute(update(DropHold).where(DropHold.id == hold.id).values(order_id=order_id))


def release_hold(session: Session, *, clock: Clock, hold_id: int, customer_id: int,
                 early_access: EarlyAccess = membership_early_access) -> int:
    """The shopper gives the units back; returns waitlist offers made with them."""
    hold = get_hold(session, hold_id, customer_id=customer_id)
    released = session.execute(
        update(DropHold).where(DropHold.id == hold_id, DropHold.status == HoldStatus.active)
        .values(status=HoldStatus.released, closed_at=clock.now())).rowcount
    if released != 1:
        raise InvalidState(f"hold {hold_id} is {hold.status.value}; nothing to release")
    _give_back(session, drop_id=hold.drop_id, takes=_takes_of(hold.takes))
    _count_out(session, drop_id=hold.drop_id, customer_id=customer_id, quantity=hold.quantity)
    _lapse_offers(session, hold_ids=[hold.id])
    return offer_to_waitlist(session, clock=clock, drop=get_drop(session, hold.drop_id),
                             early_access=early_access)


def drop_of_order(session: Session, order_id: int) -> int | None:
    """The drop an order was bought from, or None (not a drop order)."""
    return session.scalar(select(DropHold.drop_id).where(DropHold.order_id == order_id))


def orders_of_drop(session: Session, drop_id: int) -> list[int]:
    """The ids of the orders bought from a drop."""
    return list(session.scalars(select(DropHold.order_id).where(
        DropHold.drop_id == drop_id, DropHold.order_id.is_not(None))))


def return_units_of_order(session: Session, *, clock: Clock, order: Order) -> None:
    """The payment of a drop order failed: its units go back to the drop (the waitlist first)
    and the person's count comes down. Wrapped as the ``PaymentFailedHook`` of drop orders."""
    hold = session.scalar(select(DropHold).where(DropHold.order_id == order.id))
    if hold is None:
        return
    moved = session.execute(
        update(DropHold).where(DropHold.id == hold.id, DropHold.status == HoldStatus.converted)
        .values(status=HoldStatus.payment_failed)).rowcount
    if moved != 1:
        return
    _give_back(session, drop_id=hold.drop_id, takes=_takes_of(hold.takes))
    session.execute(update(DropBuyer).where(DropBuyer.drop_id == hold.drop_id,
                                            DropBuyer.customer_id == hold.customer_id)
                    .values(units=DropBuyer.units - hold.quantity))
    offer_to_waitlist(session, clock=clock, drop=get_drop(session, hold.drop_id))


# --- reclaiming expired holds (no sweeper needed for correctness) ------------------------------


def reclaim_expired_holds(session: Session, *, clock: Clock, drop_id: int,
                          limit: int = MAX_RECLAIM) -> int:
    """Expired active holds of a drop go back: status active -> expired, units to their slots,
    counters down. Returns the units freed. The rows are locked in id order and *waited for*
    (not ``SKIP LOCKED``): a second reclaimer then finds them already expired, but by then the
    first has committed, so its caller sees the units back instead of a premature "sold out"."""
    now = clock.now()
    ids = list(session.scalars(
        select(DropHold.id)
        .where(DropHold.drop_id == drop_id, DropHold.status == HoldStatus.active,
               DropHold.expires_at <= now)
        .order_by(DropHold.id).limit(limit)
        .with_for_update()))
    return _expire(session, clock=clock, drop_id=drop_id, hold_ids=ids)


def _reclaim_own_expired(session: Session, *, clock: Clock, drop: Drop, customer_id: int
                         ) -> bool:
    """A person's own lapsed hold must not block their next one. True if one was reclaimed."""
    ids = list(session.scalars(
        select(DropHold.id).where(DropHold.customer_id == customer_id,
                                  DropHold.drop_id == drop.id,
                                  DropHold.status == HoldStatus.active,
                                  DropHold.expires_at <= clock.now())))
    return bool(ids) and _expire(session, clock=clock, drop_id=drop.id, hold_ids=ids) > 0


def _expire(session: Session, *, clock: Clock, drop_id: int, hold_ids: list[int]) -> int:
    if not hold_ids:
        return 0
    now = clock.now()
    # The status condition decides who expires a hold; a concurrent conversion (which needs
    # expires_at > now) or another reclaimer can never both win it.
    expired = session.execute(
        update(DropHold)
        .where(DropHold.id.in_(hold_ids), DropHold.status == HoldStatus.active,
               DropHold.expires_at <= now)
        .values(status=HoldStatus.expired, closed_at=now)
        .returning(DropHold.id, DropHold.customer_id, DropHold.quantity, DropHold.takes)
    ).all()
    if not expired:
        return 0
    _give_back(session, drop_id=drop_id,
               takes=[take for row in expired for take in _takes_of(row.takes)])
    per_customer: dict[int, int] = defaultdict(int)
    for row in expired:
        per_customer[row.customer_id] += row.quantity
    for customer_id, quantity in sorted(per_customer.items()):
        _count_out(session, drop_id=drop_id, customer_id=customer_id, quantity=quantity)
    _lapse_offers(session, hold_ids=[row.id for row in expired])
    return sum(row.quantity for row in expired)


def _lapse_offers(session: Session, *, hold_ids: list[int]) -> None:
    session.execute(update(DropWaitlistEntry)
                    .where(DropWaitlistEntry.hold_id.in_(hold_ids),
                           DropWaitlistEntry.status == WaitlistStatus.offered)
                    .values(status=WaitlistStatus.lapsed))


def reclaim_and_offer(session: Session, *, clock: Clock, drop: Drop,
                      early_access: EarlyAccess = membership_early_access) -> int:
    """What a missed take, the periodic job and the CLI run: expired holds come back, and go
    to the waitlist first. Returns the units now left to hold (whoever reclaimed them)."""
    if reclaim_expired_holds(session, clock=clock, drop_id=drop.id):
        offer_to_waitlist(session, clock=clock, drop=drop, early_access=early_access)
    return sum(remaining_by_pool(session, drop.id).values())


# --- waitlist -------------------------------------------------------------------------------


def join_waitlist(session: Session, *, clock: Clock, drop: Drop, customer_id: int,
                  variant_id: int, quantity: int) -> DropWaitlistEntry:
    """Only a sold-out drop has a waitlist; joining twice returns the first entry."""
    if clock.now() >= drop.ends_at:
        raise DropEnded(f"{drop.name} has ended")
    pools_for(session, drop=drop, lines=[HoldLine(variant_id, quantity)])
    if quantity > drop.per_person_limit:
        raise LimitReached(f"the limit is {drop.per_person_limit} per person",
                           limit=drop.per_person_limit)
    existing = session.scalar(select(DropWaitlistEntry).where(
        DropWaitlistEntry.drop_id == drop.id, DropWaitlistEntry.customer_id == customer_id))
    if existing is not None:
        return existing
    if sum(remaining_by_pool(session, drop.id).values()) > 0:
        raise InvalidState(f"{drop.name} is not sold out: buy instead", drop_id=drop.id)
    entry = DropWaitlistEntry(drop_id=drop.id, customer_id=customer_id, variant_id=variant_id,
                              quantity=quantity, status=WaitlistStatus.waiting,
                              joined_at=clock.now())
    session.add(entry)
    session.flush()
    return entry


def waitlist_entry(session: Session, *, drop_id: int, customer_id: int) -> DropWaitlistEntry:
    entry = session.scalar(select(DropWaitlistEntry).where(
        DropWaitlistEntry.drop_id == drop_id, DropWaitlistEntry.customer_id == customer_id))
    if entry is None:
        raise NotFound("you are not on this drop's waitlist")
    return entry


def offer_to_waitlist(session: Session, *, clock: Clock, drop: Drop, limit: int = 100,
                      early_access: EarlyAccess = membership_early_access) -> int:
    """Offers freed units to waiting shoppers in the order they joined: each offer is a hold
    created for that person with the drop's offer TTL. Stops at the first shopper the units
    cannot serve (first come, first served: nobody behind them jumps ahead with a smaller
    quantity). Before the public start only those the drop is open to (members in their
    early-access window) get an offer: the others keep their place for units freed later, as
    a purchase of theirs would be refused now. Returns offers made."""
    now = clock.now()
    if now >= drop.ends_at:
        return 0
    offers = 0
    waiting = session.scalars(
        select(DropWaitlistEntry)
        .where(DropWaitlistEntry.drop_id == drop.id,
               DropWaitlistEntry.status == WaitlistStatus.waiting)
        .order_by(DropWaitlistEntry.id).limit(limit)).all()
    for entry in waiting:
        if now < drop.starts_at and now < opens_to(
                session, drop=drop, customer_id=entry.customer_id, at=now,
                early_access=early_access):
            continue
        try:
            with session.begin_nested():  # an entry that cannot be served leaves no trace
                hold = create_hold(session, clock=clock, drop=drop, customer_id=entry.customer_id,
                                   lines=[HoldLine(entry.variant_id, entry.quantity)],
                                   source=HoldSource.offer, ttl_seconds=drop.offer_ttl_seconds)
        except SoldOut:
            break
        except (LimitReached, HoldAlreadyActive):
            # They bought meanwhile, or hold units already: this offer goes to the next person.
            entry.status = WaitlistStatus.lapsed
            continue
        entry.status = WaitlistStatus.offered
        entry.hold_id = hold.id
        offers += 1
        record_event(session, clock=clock, type="drop.waitlist_offered", subject_type="drop",
                     subject_id=drop.id, customer_id=entry.customer_id,
                     payload={"hold_id": hold.id, "quantity": entry.quantity,
                              "expires_at": hold.expires_at.isoformat()})
    session.flush()
    return offers
