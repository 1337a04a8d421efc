"""Founders' polls: a question for founding members (or one tier's), one vote per member."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import AlreadyExists, InvalidInput, InvalidState, NotFound, PermissionDenied
from dropline.memberships import service
from dropline.memberships.models import Membership, Poll, PollVote
from dropline.memberships.rules import PERK_STATUSES, Segment


def create_poll(session: Session, *, clock: Clock, question: str, options: list[str],
                closes_at: datetime, segment: str | None = Segment.founding.value,
                tier_id: int | None = None, opens_at: datetime | None = None) -> Poll:
    now = clock.now()
    options = [o.strip() for o in options if o.strip()]
    if not 2 <= len(options) <= 20 or len(set(options)) != len(options):
        raise InvalidInput("a poll needs 2 to 20 distinct options", field="options")
    if (segment is None) == (tier_id is None):
        raise InvalidInput("a poll is for one segment or one tier", field="segment")
    if segment is not None and segment not in {s.value for s in Segment}:
        raise InvalidInput(f"unknown segment {segment!r}", field="segment")
    if tier_id is not None:
        service.get_tier(session, tier_id)
    opens_at = opens_at or now
    if closes_at <= opens_at:
        raise InvalidInput("the poll must close after it opens", field="closes_at")
    poll = Poll(question=question.strip(), options=options, segment=segment, tier_id=tier_id,
                opens_at=opens_at, closes_at=closes_at, created_at=now)
    session.add(poll)
    session.flush()
    return poll


def get_poll(session: Session, poll_id: int) -> Poll:
    poll = session.get(Poll, poll_id)
    if poll is None:
        raise NotFound(f"poll {poll_id} not found")
    return poll


def eligible(poll: Poll, membership: Membership | None) -> bool:
    if membership is None or membership.status not in PERK_STATUSES:
        return False
    if poll.tier_id is not None:
        return membership.tier_id == poll.tier_id
    return membership.segment == poll.segment


def vote(session: Session, *, clock: Clock, poll_id: int, customer_id: int,
         option_index: int) -> PollVote:
    poll = get_poll(session, poll_id)
    now = clock.now()
    membership = service.live_membership(session, customer_id=customer_id)
    if not eligible(poll, membership):
        # Not found rather than forbidden would hide the poll; members may know it exists.
        raise PermissionDenied("this poll is for "
                               + (f"{poll.segment} members" if poll.segment else "another tier"))
    if not poll.opens_at <= now < poll.closes_at:
        raise InvalidState("this poll is not open")
    if not 0 <= option_index < len(poll.options):
        raise InvalidInput(f"option must be 0..{len(poll.options) - 1}", field="option")
    assert membership is not None
    row = PollVote(poll_id=poll.id, customer_id=customer_id, option_index=option_index,
                   created_at=now)
    try:
        with session.begin_nested():  # the unique constraint decides, whatever the interleaving
            session.add(row)
            session.flush()
    except IntegrityError:
        raise AlreadyExists("you have already voted in this poll") from None
    return row


@dataclass(frozen=True)
class PollResult:
    poll: Poll
    counts: list[int]
    votes: int


def results(session: Session, *, poll_id: int) -> PollResult:
    poll = get_poll(session, poll_id)
    by_option = dict(session.execute(
        select(PollVote.option_index, func.count()).where(PollVote.poll_id == poll.id)
        .group_by(PollVote.option_index)).all())
    counts = [int(by_option.get(i, 0)) for i in range(len(poll.options))]
    return PollResult(poll, counts, sum(counts))


def list_polls(session: Session) -> list[Poll]:
    return list(session.scalars(select(Poll).order_by(Poll.id.desc())))


def open_polls_for(session: Session, *, clock: Clock, customer_id: int
                   ) -> list[tuple[Poll, int | None]]:
    """Open polls this member may vote in, each with the option they chose (or None)."""
    now = clock.now()
    membership = service.live_membership(session, customer_id=customer_id)
    polls = session.scalars(select(Poll).where(Poll.opens_at <= now, Poll.closes_at > now)
                            .order_by(Poll.id)).all()
    chosen = dict(session.execute(select(PollVote.poll_id, PollVote.option_index).where(
        PollVote.customer_id == customer_id)).all())
    return [(p, chosen.get(p.id)) for p in polls if eligible(p, membership)]
