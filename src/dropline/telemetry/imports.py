"""Import a transaction history from another platform (a brand migrating to Dropline) into
the shop's own tables, so cohorts and LTV start from the brand's real past.

The CSV has a header and one row per order: ``customer_email`` or ``customer_id``, ``date``
(ISO date or datetime; UTC unless it carries an offset), ``amount`` (major units, e.g.
``42.50``), ``currency`` (the shop's), and optionally ``source``, ``campaign``, ``family``.

``parse_history`` checks every row and returns all the errors, each with its line, never
stopping at the first; ``import_history`` writes customers (new ones only; an existing
customer keeps their acquisition source) and one paid order per row, marked imported:
``checkout_reference`` ``import:<batch>:<line>``, fulfilment path ``imported`` (how it was
delivered is not known) and an ``order.imported`` event carrying the family, source and
campaign. The orders have no lines (the old platform's products are not in the catalog) and
no payment (they were paid elsewhere, so they cannot be refunded here).

History rows are written in bulk and their events do not go to webhooks: importing the past
is not news to subscribers. One ``telemetry.history_imported`` event records the import.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.customers.models import Customer
from dropline.events.models import DomainEvent
from dropline.events.service import record_event
from dropline.orders.models import Order, OrderStatus
from dropline.schemas import MAX_AMOUNT

REQUIRED = ("date", "amount", "currency")
OPTIONAL = ("source", "campaign", "family")
IMPORTED_PATH = "imported"
UNUSABLE_PASSWORD = "!imported"  # not an argon2 hash: verification always fails
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class HistoryRow:
    line: int
    email: str
    at: dt.datetime
    amount: int  # minor units
    currency: str
    source: str
    campaign: str
    family: str


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class ParsedHistory:
    rows: list[HistoryRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _email_for_id(customer_id: str) -> str:
    """A customer known only by the old platform's id gets a placeholder address on the
    reserved .invalid domain (RFC 2606): stable per id, and it can never reach an inbox."""
    local = customer_id if SAFE_ID.match(customer_id) else (
        "id-" + hashlib.sha256(customer_id.encode()).hexdigest()[:16])
    return f"{local.lower()}@imported.invalid"


def _parse_time(value: str) -> dt.datetime:
    if len(value) == 10:
        day = dt.date.fromisoformat(value)
        return dt.datetime.combine(day, dt.time(12), dt.UTC)  # a day: count it at noon UTC
    moment = dt.datetime.fromisoformat(value)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def parse_history(text: str, *, currency: str, now: dt.datetime | None = None
                  ) -> ParsedHistory:
    """Every row checked; all errors collected with their line numbers."""
    now = now or dt.datetime.now(dt.UTC)
    out = ParsedHistory()
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        out.errors.append(RowError(1, "empty file: expected a header line"))
        return out
    missing = [c for c in REQUIRED if c not in header]
    if "customer_email" not in header and "customer_id" not in header:
        missing.insert(0, "customer_email or customer_id")
    if missing:
        out.errors.append(RowError(1, f"header lacks {', '.join(missing)}"))
        return out
    col = {name: header.index(name) for name in header}
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(out.rows) + len(out.errors) >= MAX_ROWS:
            out.errors.append(RowError(line, f"more than {MAX_ROWS:,} rows: split the file"))
            break
        problems: list[str] = []
        if len(row) != len(header):
            out.errors.append(RowError(line, f"expected {len(header)} columns, found "
                                             f"{len(row)}"))
            continue

        def cell(name: str) -> str:
            return row[col[name]].strip() if name in col else ""

        if "\x00" in "".join(row):
            out.errors.append(RowError(line, "contains a NUL character"))
            continue
        email = cell("customer_email").lower()
        if email:
            if len(email) > 254 or not EMAIL.match(email):
                problems.append(f"bad customer_email {email[:60]!r}")
        elif cell("customer_id"):
            if len(cell("customer_id")) > 120:
                problems.append("customer_id longer than 120 characters")
            else:
                email = _email_for_id(cell("customer_id"))
        else:
            problems.append("no customer_email or customer_id")
        at = None
        try:
            at = _parse_time(cell("date"))
            if at > now:
                problems.append(f"date {cell('date')!r} is in the future")
        except ValueError:
            problems.append(f"bad date {cell('date')[:40]!r} (expected YYYY-MM-DD or an ISO "
                            "datetime)")
        amount = None
        try:
            value = Decimal(cell("amount"))
            minor = value * 100
            if not value.is_finite() or minor != minor.to_integral_value():
                raise InvalidOperation
            if value <= 0:
                problems.append(f"amount {cell('amount')!r} must be positive (refunds are not "
                                "imported)")
            elif minor > MAX_AMOUNT:
                problems.append(f"amount {cell('amount')!r} is too large")
            else:
                amount = int(minor)
        except InvalidOperation:
            problems.append(f"bad amount {cell('amount')[:40]!r} (expected a number with at "
                            "most 2 decimals, e.g. 42.50)")
        row_currency = cell("currency").upper()
        if row_currency != currency:
            problems.append(f"currency {cell('currency')[:10]!r} is not the shop's {currency}")
        source, campaign, family = cell("source"), cell("campaign"), cell("family").lower()
        if len(source) > 64 or len(campaign) > 120:
            problems.append("source (64) or campaign (120 characters) too long")
        if family and not SLUG.match(family):
            problems.append(f"bad family {family[:40]!r} (lowercase letters, digits, hyphens)")
        if problems:
            out.errors.append(RowError(line, "; ".join(problems)))
            continue
        assert at is not None and amount is not None
        out.rows.append(HistoryRow(line, email, at, amount, currency, source or "imported",
                                   campaign, family))
    if not out.rows and not out.errors:
        out.errors.append(RowError(1, "no rows after the header"))
    return out


@dataclass(frozen=True)
class ImportResult:
    batch: str
    orders: int
    customers_created: int
    customers_total: int
    first: dt.datetime | None
    last: dt.datetime | None


def import_history(session: Session, *, clock: Clock, rows: list[HistoryRow],
                   source_name: str = "") -> ImportResult:
    """Write the parsed rows (flush only: the caller's transaction commits all or nothing)."""
    batch = uuid.uuid4().hex[:12]
    if not rows:
        return ImportResult(batch, 0, 0, 0, None, None)
    first_row: dict[str, HistoryRow] = {}
    for row in sorted(rows, key=lambda r: (r.at, r.line)):
        first_row.setdefault(row.email, row)
    emails = list(first_row)
    existing: dict[str, tuple[int, str, str]] = {}
    for chunk in range(0, len(emails), 500):
        for cid, email, source, campaign in session.execute(
                select(Customer.id, Customer.email, Customer.acquisition_source,
                       Customer.acquisition_campaign)
                .where(Customer.email.in_(emails[chunk:chunk + 500]))):
            existing[email] = (cid, source, campaign)
    new = [e for e in emails if e not in existing]
    if new:
        ids = session.scalars(insert(Customer).returning(Customer.id,
                                                         sort_by_parameter_order=True), [
            {"email": e, "name": "", "password_hash": UNUSABLE_PASSWORD,
             "acquisition_source": first_row[e].source[:64],
             "acquisition_campaign": first_row[e].campaign[:120],
             "created_at": first_row[e].at} for e in new]).all()
        for email, cid in zip(new, ids, strict=True):
            existing[email] = (cid, first_row[email].source, first_row[email].campaign)
    ordered = sorted(rows, key=lambda r: (r.at, r.line))
    order_ids = session.scalars(insert(Order).returning(Order.id, sort_by_parameter_order=True), [
        {"customer_id": existing[r.email][0], "email": r.email, "status": OrderStatus.paid,
         "currency": r.currency, "subtotal_amount": r.amount, "discount_amount": 0,
         "shipping_amount": 0, "total_amount": r.amount, "refunded_amount": 0,
         "checkout_reference": f"import:{batch}:{r.line}", "cart_id": None,
         "location_id": None, "fulfilment_path": IMPORTED_PATH,
         "acquisition_source": existing[r.email][1], "acquisition_campaign": existing[r.email][2],
         "shipping_address": {}, "created_at": r.at, "paid_at": r.at} for r in ordered]).all()
    session.execute(insert(DomainEvent), [
        {"event_id": str(uuid.uuid4()), "type": "order.imported", "subject_type": "order",
         "subject_id": str(oid), "customer_id": existing[r.email][0], "occurred_at": r.at,
         "payload": {"order_id": oid, "total_amount": r.amount, "currency": r.currency,
                     "acquisition_source": existing[r.email][1],
                     "acquisition_campaign": existing[r.email][2],
                     "product_families": [r.family] if r.family else [],
                     "fulfilment_path": IMPORTED_PATH, "imported": True,
                     "import_batch": batch, "source_line": r.line}}
        for oid, r in zip(order_ids, ordered, strict=True)])
    record_event(session, clock=clock, type="telemetry.history_imported", subject_type="import",
                 subject_id=batch, payload={"batch": batch, "file": source_name[:200],
                                            "orders": len(rows), "customers": len(emails),
                                            "customers_created": len(new)})
    return ImportResult(batch, len(rows), len(new), len(emails), ordered[0].at, ordered[-1].at)
