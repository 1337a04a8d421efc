"""Pure drop logic: states, the admission schedule, the fair pre-queue, slot splitting, tokens.

No session, no I/O: every function here is a rule over plain values, tested without a database.

The waiting room is *computable* rather than driven by a shuffle job or a ticking admitter:

* an entry that joins before the public start gets a uniformly random sort key in [0, 1);
  one that joins later gets ``1 + seconds since the start``. Ordering by key therefore gives a
  pre-queue in uniformly random order (Queue-it's "randomised at the start") followed by later
  arrivals in arrival order, and nobody has to run anything at the start.
* position = (entries with a smaller key) + 1.
* admission is rate-based: the entry at position p may buy from
  ``own opening time + (p - 1) * 60 / rate`` on, where the own opening time is the public start,
  or earlier for an early-access member. So "N shoppers per minute" holds by construction, and
  the ETA a shopper sees is exactly the rule the server applies.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# A drop's units are pre-split over this many slot rows (see drops.service): enough that
# concurrent takes on PostgreSQL rarely meet on one row, few enough that "is anything left?"
# stays one cheap indexed read.
DEFAULT_SLOTS = 32
MAX_SLOTS = 256


class DropState(enum.StrEnum):
    scheduled = "scheduled"
    early_access = "early-access"
    live = "live"
    sold_out = "sold-out"
    ended = "ended"


def drop_state(*, now: datetime, starts_at: datetime, ends_at: datetime,
               early_access_minutes: int, remaining: int) -> DropState:
    """``remaining`` counts units neither held nor sold. A drop whose units are all held is
    sold out for now: units come back when holds lapse, and go to the waitlist first."""
    if now >= ends_at:
        return DropState.ended
    opens = starts_at - timedelta(minutes=early_access_minutes)
    if now < opens:
        return DropState.scheduled
    if remaining <= 0:
        return DropState.sold_out
    return DropState.live if now >= starts_at else DropState.early_access


def opening_time(*, starts_at: datetime, lead_minutes: int, drop_early_access_minutes: int
                 ) -> datetime:
    """When this shopper may start buying: the public start, less the member's lead time, which
    the drop caps (a drop with 0 early-access minutes opens to everyone at once)."""
    lead = max(0, min(lead_minutes, drop_early_access_minutes))
    return starts_at - timedelta(minutes=lead)


def queue_sort_key(*, joined_at: datetime, starts_at: datetime, rng: random.Random | None = None
                   ) -> float:
    if joined_at < starts_at:
        return (rng or _system_random).random()  # [0, 1): uniformly shuffled pre-queue
    return 1.0 + (joined_at - starts_at).total_seconds()


_system_random = random.SystemRandom()


def admission_time(*, opens_at: datetime, position: int, per_minute: int) -> datetime:
    if position < 1:
        raise ValueError("positions start at 1")
    if per_minute < 1:
        raise ValueError("admission rate must be at least 1 per minute")
    return opens_at + timedelta(seconds=(position - 1) * 60 / per_minute)


@dataclass(frozen=True)
class Take:
    """Units taken from one slot row of one pool (pool 0 = the drop's shared cap, otherwise a
    variant id with its own cap)."""

    pool: int
    slot_no: int
    quantity: int


def split_over_slots(quantity: int, remaining: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Plans a take of ``quantity`` over slots when no single slot holds enough: ``remaining``
    is (slot_no, units) as last read; returns (slot_no, units) in slot order (so concurrent
    split takes lock rows in one order on PostgreSQL), or [] when the total is short."""
    plan: list[tuple[int, int]] = []
    need = quantity
    for slot_no, units in sorted(remaining):
        if need == 0:
            break
        if units > 0:
            part = min(units, need)
            plan.append((slot_no, part))
            need -= part
    return plan if need == 0 else []


def spread_units(total: int, slots: int) -> list[int]:
    """Splits a cap over slot rows as evenly as possible: 10 over 4 -> [3, 3, 2, 2]."""
    if slots < 1:
        raise ValueError("at least one slot")
    base, extra = divmod(total, slots)
    return [base + (1 if i < extra else 0) for i in range(slots)]


def slots_for(cap: int, requested: int = DEFAULT_SLOTS) -> int:
    """No more slots than units (a 5-unit drop needs no 32 rows), at least one."""
    return max(1, min(requested, MAX_SLOTS, cap))


# --- admission tokens -----------------------------------------------------------------------
# A token says: this customer, in this session, was admitted to this drop, and this is the n-th
# token they were issued. The signature makes it unforgeable; the session digest makes it
# useless in another browser (or another account); n, checked against the highest n already
# used (one conditional UPDATE), makes it single-use.


@dataclass(frozen=True)
class AdmissionClaims:
    drop_id: int
    customer_id: int
    session: str  # a digest of the session-token digest: the token never carries the cookie
    n: int
    expires: int  # unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def session_binding(session_token_digest: str) -> str:
    return hashlib.sha256(f"admission:{session_token_digest}".encode()).hexdigest()[:32]


def sign_admission(claims: AdmissionClaims, *, secret: str) -> str:
    payload = _b64(json.dumps([claims.drop_id, claims.customer_id, claims.session, claims.n,
                               claims.expires], separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    return f"v1.{payload}.{signature}"


def _key(secret: str) -> bytes:
    return hashlib.sha256(f"dropline-admission:{secret}".encode()).digest()


class BadToken(ValueError):
    """The token is malformed, forged, expired or not for this caller; the message says which."""


def verify_admission(token: str, *, secret: str, drop_id: int, customer_id: int,
                     session: str, now: datetime) -> AdmissionClaims:
    try:
        version, payload, signature = token.split(".")
        if version != "v1":
            raise BadToken("unknown token version")
        expected = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            raise BadToken("the admission token's signature is invalid")
        values = json.loads(_unb64(payload))
        claims = AdmissionClaims(int(values[0]), int(values[1]), str(values[2]), int(values[3]),
                                 int(values[4]))
    except BadToken:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise BadToken("the admission token is malformed") from exc
    if claims.drop_id != drop_id:
        raise BadToken("the admission token is for another drop")
    if claims.customer_id != customer_id or not hmac.compare_digest(claims.session, session):
        raise BadToken("the admission token belongs to another session; it cannot be shared")
    if claims.expires <= int(now.timestamp()):
        raise BadToken("the admission token has expired; ask for a new one")
    return claims
