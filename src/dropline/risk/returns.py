"""Return (RMA) use cases: request, receive (grade, serial, restock, score), approve or deny,
serials and chargebacks. Session first, keyword-only arguments; flush, never commit. Paying
an approved refund talks to the card provider, so it lives in ``risk.flows``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dropline.catalog.models import ConditionGrade, Variant
from dropline.catalog.service import get_location_by_code, take_stock
from dropline.clock import Clock
from dropline.errors import InvalidInput, InvalidState, NotFound, OutOfStock
from dropline.events.service import record_event
from dropline.locations.models import StockLevel
from dropline.orders.models import Order, OrderLine, OrderStatus
from dropline.risk import facts
from dropline.risk.config import REASONS, RiskConfig, load_config
from dropline.risk.models import (
    CaseStatus,
    Chargeback,
    ReturnOutcome,
    ReturnPolicy,
    ReturnRequest,
    ReturnStatus,
    RiskCase,
    RiskDecision,
    SerialStatus,
    SerialUnit,
)
from dropline.risk.rules import (
    RefundQuote,
    Score,
    paid_for_units,
    refund_quote,
    return_eligibility,
    score_return,
)

RETURNABLE_ORDERS = (OrderStatus.paid, OrderStatus.partially_refunded)
OPEN = (ReturnStatus.requested, ReturnStatus.received, ReturnStatus.in_review,
        ReturnStatus.approved, ReturnStatus.refunding)


@dataclass(frozen=True)
class Policy:
    window_days: int
    final_sale: bool
    restocking_fee_bps: int


def policy_for(session: Session, *, variant: Variant, config: RiskConfig) -> Policy:
    """Variant row, then product row, then the shop default; ``Variant.final_sale`` also
    makes an item final sale."""
    rows = {row.variant_id: row for row in session.scalars(
        select(ReturnPolicy).where(ReturnPolicy.product_id == variant.product_id))}
    specific, general = rows.get(variant.id), rows.get(None)
    window, fee, final = config.return_window_days, config.restocking_fee_bps, variant.final_sale
    for row in (general, specific):
        if row is not None:
            window = row.window_days if row.window_days is not None else window
            fee = row.restocking_fee_bps if row.restocking_fee_bps is not None else fee
            final = final or row.final_sale
    return Policy(window, final, fee)


def set_return_policy(session: Session, *, clock: Clock, product_id: int,
                      variant_id: int | None = None, window_days: int | None = None,
                      final_sale: bool = False,
                      restocking_fee_bps: int | None = None) -> ReturnPolicy:
    if variant_id is not None:
        variant = session.get(Variant, variant_id)
        if variant is None or variant.product_id != product_id:
            raise NotFound(f"variant {variant_id} of product {product_id} not found")
    query = select(ReturnPolicy).where(ReturnPolicy.product_id == product_id)
    query = query.where(ReturnPolicy.variant_id.is_(None) if variant_id is None
                        else ReturnPolicy.variant_id == variant_id)
    row = session.scalar(query)
    if row is None:
        row = ReturnPolicy(product_id=product_id, variant_id=variant_id, updated_at=clock.now())
        session.add(row)
    row.window_days, row.final_sale = window_days, final_sale
    row.restocking_fee_bps, row.updated_at = restocking_fee_bps, clock.now()
    session.flush()
    return row


def _event(session: Session, clock: Clock, ret: ReturnRequest, type_: str, **extra: object
           ) -> None:
    record_event(session, clock=clock, type=type_, subject_type="return", subject_id=ret.id,
                 customer_id=ret.customer_id,
                 payload={"return_id": ret.id, "order_id": ret.order_id,
                          "order_line_id": ret.order_line_id, "quantity": ret.quantity,
                          "status": ret.status.value, **extra})


def request_return(
    session: Session, *, clock: Clock, customer_id: int, order_id: int, order_line_id: int,
    quantity: int, reason: str, note: str = "",
    preferred_outcome: ReturnOutcome = ReturnOutcome.refund,
    exchange_variant_id: int | None = None, device_id: str = "",
) -> ReturnRequest:
    order = session.get(Order, order_id)
    if order is None or order.customer_id != customer_id:
        raise NotFound(f"order {order_id} not found")
    line = session.get(OrderLine, order_line_id)
    if line is None or line.order_id != order.id:
        raise NotFound(f"order {order_id} has no line {order_line_id}")
    if reason not in REASONS:
        raise InvalidInput(f"unknown reason {reason!r}; choose one of {', '.join(REASONS)}",
                           field="reason")
    if order.status not in RETURNABLE_ORDERS:
        raise InvalidState(f"order {order_id} is {order.status.value}; only paid orders can be "
                           "returned")
    variant = session.get(Variant, line.variant_id)
    assert variant is not None
    config = load_config(session)
    policy = policy_for(session, variant=variant, config=config)
    verdict = return_eligibility(purchased_at=order.paid_at or order.created_at,
                                 now=clock.now(), window_days=policy.window_days,
                                 final_sale=policy.final_sale)
    if not verdict.allowed:
        raise InvalidState(f"{line.product_name} cannot be returned: {verdict.reason}")
    # Lock the line's returns (PostgreSQL) so two requests cannot both take the last unit.
    session.execute(select(OrderLine.id).where(OrderLine.id == line.id).with_for_update())
    already = session.scalar(select(func.coalesce(func.sum(ReturnRequest.quantity), 0)).where(
        ReturnRequest.order_line_id == line.id,
        ReturnRequest.status != ReturnStatus.denied)) or 0
    if quantity < 1 or already + quantity > line.quantity:
        raise InvalidInput(f"only {line.quantity - already} of this line can still be returned",
                           field="quantity", returnable=line.quantity - already)
    if preferred_outcome is ReturnOutcome.exchange:
        _check_exchange(session, line=line, exchange_variant_id=exchange_variant_id)
    ret = ReturnRequest(
        order_id=order.id, order_line_id=line.id, customer_id=customer_id, quantity=quantity,
        reason=reason, note=note, preferred_outcome=preferred_outcome,
        exchange_variant_id=exchange_variant_id if preferred_outcome is ReturnOutcome.exchange
        else None, device_id=device_id[:64], status=ReturnStatus.requested,
        requested_at=clock.now())
    session.add(ret)
    session.flush()
    _event(session, clock, ret, "return.requested", reason=reason,
           preferred_outcome=preferred_outcome.value)
    return ret


def line_of(session: Session, *, order_id: int, order_line_id: int | None,
            variant_id: int | None) -> int:
    """The order line meant by its id or by the variant bought on it."""
    if (order_line_id is None) == (variant_id is None):
        raise InvalidInput("name the item by order_line_id or by variant_id (one of them)",
                           field="order_line_id")
    if order_line_id is not None:
        return order_line_id
    line_id = session.scalar(select(OrderLine.id).where(OrderLine.order_id == order_id,
                                                        OrderLine.variant_id == variant_id))
    if line_id is None:
        raise NotFound(f"order {order_id} has no line of variant {variant_id}")
    return line_id


def _check_exchange(session: Session, *, line: OrderLine, exchange_variant_id: int | None
                    ) -> Variant:
    """An exchange is for another variant of the same product at the same price (a size or
    scent swap); anything else is a return and a new order."""
    target = session.get(Variant, exchange_variant_id or 0)
    sold = session.get(Variant, line.variant_id)
    assert sold is not None
    if target is None or target.product_id != sold.product_id or not target.active:
        raise InvalidInput("an exchange needs an active variant of the same product",
                           field="exchange_variant_id")
    if target.price_amount != line.unit_price_amount:
        raise InvalidInput("an exchange must be for a variant at the same price; return this "
                           "one and order the other", field="exchange_variant_id")
    return target


def get_return(session: Session, return_id: int, *, customer_id: int | None = None,
               lock: bool = False) -> ReturnRequest:
    query = select(ReturnRequest).where(ReturnRequest.id == return_id)
    if lock:
        query = query.with_for_update()
    ret = session.scalar(query)
    if ret is None or (customer_id is not None and ret.customer_id != customer_id):
        raise NotFound(f"return {return_id} not found")
    return ret


def list_returns(session: Session, *, customer_id: int | None = None,
                 status: ReturnStatus | None = None, limit: int = 50,
                 offset: int = 0) -> list[ReturnRequest]:
    query = select(ReturnRequest).order_by(ReturnRequest.id.desc())
    if customer_id is not None:
        query = query.where(ReturnRequest.customer_id == customer_id)
    if status is not None:
        query = query.where(ReturnRequest.status == status)
    return list(session.scalars(query.limit(limit).offset(offset)))


def _add_stock(session: Session, *, location_id: int, variant_id: int, quantity: int) -> None:
    """Adds units (inserting the stock row if the variant was never kept there)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    statement = insert(StockLevel).values(location_id=location_id, variant_id=variant_id,
                                          on_hand=quantity)
    session.execute(statement.on_conflict_do_update(
        index_elements=["location_id", "variant_id"],
        set_={"on_hand": StockLevel.on_hand + quantity}))


def graded_variant(session: Session, *, product_id: int, grade: ConditionGrade
                   ) -> Variant | None:
    return session.scalar(select(Variant).where(
        Variant.product_id == product_id, Variant.condition_grade == grade)
        .order_by(Variant.active.desc(), Variant.id).limit(1))


def receive_return(session: Session, *, clock: Clock, return_id: int, grade: ConditionGrade,
                   location_code: str, serial: str | None = None) -> ReturnRequest:
    """The brand has the goods: record their grade and serial, put them back into stock at
    ``location_code`` as the same product's variant of that grade (if the product has one),
    then score the return. Below the threshold it is approved automatically; at or above it
    waits in the review queue."""
    ret = get_return(session, return_id, lock=True)
    if ret.status is not ReturnStatus.requested:
        raise InvalidState(f"return {return_id} is {ret.status.value}; only a requested return "
                           "can be received")
    location = get_location_by_code(session, location_code)
    line = session.get(OrderLine, ret.order_line_id)
    order = session.get(Order, ret.order_id)
    assert line is not None and order is not None
    sold = session.get(Variant, line.variant_id)
    assert sold is not None
    now = clock.now()
    ret.status, ret.received_at, ret.received_grade = ReturnStatus.received, now, grade.value
    ret.serial_received = serial or None
    ret.location_id = location.id
    target = graded_variant(session, product_id=sold.product_id, grade=grade)
    if target is not None:
        _add_stock(session, location_id=location.id, variant_id=target.id,
                   quantity=ret.quantity)
        ret.restock_variant_id = target.id
    if serial:
        unit = session.scalar(select(SerialUnit).where(SerialUnit.serial == serial))
        if unit is not None and unit.order_line_id == line.id:
            unit.status, unit.returned_at = SerialStatus.returned, now
            unit.location_id, unit.grade = location.id, grade.value
            if target is not None:
                unit.variant_id = target.id
    session.flush()
    _event(session, clock, ret, "return.received", grade=grade.value, serial=serial,
           location=location.code, restocked_as_variant_id=ret.restock_variant_id,
           restocked=target is not None)
    score = score_of(session, clock=clock, ret=ret, line=line, order=order)
    case = RiskCase(return_id=ret.id, customer_id=ret.customer_id, score=score.score,
                    threshold=score.threshold, signals=[s.as_dict() for s in score.signals],
                    status=CaseStatus.open, created_at=now)
    session.add(case)
    session.flush()
    if score.needs_review:
        ret.status = ReturnStatus.in_review
        session.add(RiskDecision(case_id=case.id, decision="review", actor="system",
                                 reasons=score.reasons, note="score at or above the threshold",
                                 decided_at=now))
        session.flush()
        _event(session, clock, ret, "return.review_required", score=score.score,
               signals=[s.name for s in score.signals])
    else:
        _approve(session, clock=clock, ret=ret, case=case, actor="system", reasons=score.reasons,
                 note="score below the threshold: approved automatically")
    return ret


def score_of(session: Session, *, clock: Clock, ret: ReturnRequest, line: OrderLine,
             order: Order) -> Score:
    t = load_config(session).thresholds
    now = clock.now()
    return score_return(
        facts.return_facts(session, ret=ret, line=line, order=order),
        facts.customer_history(session, customer_id=ret.customer_id, now=now, t=t,
                               exclude_return_id=ret.id),
        facts.brand_norm(session), facts.linked_accounts(session, customer_id=ret.customer_id),
        t)


def quote_for(session: Session, *, ret: ReturnRequest, requested_amount: int | None = None,
              waive_fee: bool = False) -> RefundQuote:
    line = session.get(OrderLine, ret.order_line_id)
    order = session.get(Order, ret.order_id)
    variant = session.get(Variant, line.variant_id) if line else None
    assert line is not None and order is not None and variant is not None
    config = load_config(session)
    fee_bps = 0 if waive_fee or ret.reason in config.fee_exempt_reasons else policy_for(
        session, variant=variant, config=config).restocking_fee_bps
    gross = paid_for_units(unit_price_amount=line.unit_price_amount, quantity=ret.quantity,
                           order_subtotal=order.subtotal_amount,
                           order_discount=order.discount_amount)
    return refund_quote(gross_amount=gross, fee_bps=fee_bps,
                        left_to_refund=order.total_amount - order.refunded_amount,
                        requested_amount=requested_amount)


def _approve(session: Session, *, clock: Clock, ret: ReturnRequest, case: RiskCase, actor: str,
             reasons: list[str], note: str, outcome: ReturnOutcome | None = None,
             refund_amount: int | None = None, waive_fee: bool = False) -> None:
    now = clock.now()
    outcome = outcome or ret.preferred_outcome
    ret.outcome, ret.decided_at = outcome, now
    case.status = CaseStatus.auto_approved if actor == "system" else CaseStatus.approved
    case.decided_at = now
    session.add(RiskDecision(case_id=case.id, decision="approve", actor=actor, reasons=reasons,
                             note=note, decided_at=now))
    if outcome is ReturnOutcome.exchange:
        line = session.get(OrderLine, ret.order_line_id)
        assert line is not None
        target = _check_exchange(session, line=line, exchange_variant_id=ret.exchange_variant_id)
        if not take_stock(session, location_id=ret.location_id or 0, variant_id=target.id,
                          quantity=ret.quantity):
            raise OutOfStock(f"{target.sku} is not in stock where the return was received; "
                             "approve a refund instead", sku=target.sku)
        ret.status = ReturnStatus.exchanged
        ret.gross_amount, ret.fee_amount, ret.refund_amount = 0, 0, 0
        session.flush()
        _event(session, clock, ret, "return.exchanged", actor=actor,
               exchange_variant_id=target.id)
        return
    quote = quote_for(session, ret=ret, requested_amount=refund_amount, waive_fee=waive_fee)
    ret.gross_amount, ret.fee_amount, ret.refund_amount = (quote.gross_amount, quote.fee_amount,
                                                           quote.amount)
    ret.status = ReturnStatus.approved
    session.flush()
    _event(session, clock, ret, "return.approved", actor=actor, refund_amount=quote.amount,
           fee_amount=quote.fee_amount, gross_amount=quote.gross_amount)


def case_of(session: Session, ret: ReturnRequest) -> RiskCase:
    case = session.scalar(select(RiskCase).where(RiskCase.return_id == ret.id))
    if case is None:
        raise InvalidState(f"return {ret.id} has not been received yet")
    return case


def approve_return(session: Session, *, clock: Clock, return_id: int, actor: str,
                   note: str = "", outcome: ReturnOutcome | None = None,
                   refund_amount: int | None = None, waive_fee: bool = False) -> ReturnRequest:
    """A person approves a return in review (or one received and not yet decided)."""
    ret = get_return(session, return_id, lock=True)
    if ret.status not in (ReturnStatus.in_review, ReturnStatus.received):
        raise InvalidState(f"return {return_id} is {ret.status.value}; only a return in review "
                           "can be approved")
    case = case_of(session, ret)
    _approve(session, clock=clock, ret=ret, case=case, actor=actor,
             reasons=[f"reviewed: {reason}" for reason in
                      [f"{s['name']} (+{s['points']}): {s['reason']}" for s in case.signals]]
             or ["reviewed: no risk signal fired"], note=note, outcome=outcome,
             refund_amount=refund_amount, waive_fee=waive_fee)
    return ret


def deny_return(session: Session, *, clock: Clock, return_id: int, actor: str,
                note: str) -> ReturnRequest:
    ret = get_return(session, return_id, lock=True)
    if ret.status not in (ReturnStatus.in_review, ReturnStatus.received,
                          ReturnStatus.requested):
        raise InvalidState(f"return {return_id} is {ret.status.value}; it can no longer be "
                           "denied")
    if not note.strip():
        raise InvalidInput("say why the return is denied (the customer is told)", field="note")
    now = clock.now()
    ret.status, ret.decided_at = ReturnStatus.denied, now
    case = session.scalar(select(RiskCase).where(RiskCase.return_id == ret.id))
    if case is not None:
        case.status, case.decided_at = CaseStatus.denied, now
        session.add(RiskDecision(case_id=case.id, decision="deny", actor=actor,
                                 reasons=[f"{s['name']}: {s['reason']}" for s in case.signals],
                                 note=note, decided_at=now))
    session.flush()
    _event(session, clock, ret, "return.denied", actor=actor, note=note)
    return ret


# --- serials and chargebacks --------------------------------------------------------------

def register_serials(session: Session, *, clock: Clock, variant_id: int, serials: list[str],
                     location_code: str) -> list[SerialUnit]:
    """Graded, serialised units arriving in stock (e.g. restored diffusers)."""
    variant = session.get(Variant, variant_id)
    if variant is None:
        raise NotFound(f"variant {variant_id} not found")
    location = get_location_by_code(session, location_code)
    _refuse_known(session, serials)
    units = [SerialUnit(serial=s, variant_id=variant.id, status=SerialStatus.in_stock,
                        location_id=location.id, grade=variant.condition_grade.value)
             for s in serials]
    session.add_all(units)
    session.flush()
    return units


def _refuse_known(session: Session, serials: list[str]) -> None:
    if len(set(serials)) != len(serials):
        raise InvalidInput("the same serial is listed twice", field="serials")
    known = list(session.scalars(select(SerialUnit.serial).where(SerialUnit.serial.in_(serials))))
    if known:
        raise InvalidState(f"serial(s) already registered: {', '.join(sorted(known))}",
                           serials=sorted(known))


def assign_serials(session: Session, *, clock: Clock, order_id: int, order_line_id: int,
                   serials: list[str]) -> list[SerialUnit]:
    """Records which serialised units were sold on an order line (at fulfilment). A serial in
    stock for the line's variant is moved to the order; an unknown serial is registered as
    sold; one already sold elsewhere is refused."""
    line = session.get(OrderLine, order_line_id)
    if line is None or line.order_id != order_id:
        raise NotFound(f"order {order_id} has no line {order_line_id}")
    already = session.scalar(select(func.count()).select_from(SerialUnit).where(
        SerialUnit.order_line_id == line.id)) or 0
    if already + len(serials) > line.quantity:
        raise InvalidInput(f"line {line.id} sold {line.quantity} unit(s) and has {already} "
                           "serial(s) already", field="serials")
    if len(set(serials)) != len(serials):
        raise InvalidInput("the same serial is listed twice", field="serials")
    now = clock.now()
    existing = {u.serial: u for u in session.scalars(
        select(SerialUnit).where(SerialUnit.serial.in_(serials)).with_for_update())}
    units = []
    for serial in serials:
        unit = existing.get(serial)
        if unit is None:
            unit = SerialUnit(serial=serial, variant_id=line.variant_id,
                              grade=line.condition_grade.value, status=SerialStatus.sold)
            session.add(unit)
        elif unit.status is not SerialStatus.in_stock or unit.variant_id != line.variant_id:
            raise InvalidState(f"serial {serial} is {unit.status.value} (variant "
                               f"{unit.variant_id}); it cannot be sold on this line")
        unit.status, unit.order_id, unit.order_line_id, unit.sold_at = (
            SerialStatus.sold, order_id, line.id, now)
        unit.location_id = None
        units.append(unit)
    session.flush()
    record_event(session, clock=clock, type="order.serials_assigned", subject_type="order",
                 subject_id=order_id, payload={"order_line_id": line.id, "serials": serials})
    return units


def record_chargeback(session: Session, *, clock: Clock, order_id: int, amount: int,
                      reason: str, actor: str) -> Chargeback:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if not 0 < amount <= order.total_amount:
        raise InvalidInput(f"a chargeback is between 1 and the order total ({order.total_amount})",
                           field="amount")
    row = Chargeback(order_id=order.id, customer_id=order.customer_id, amount=amount,
                     currency=order.currency, reason=reason, reported_at=clock.now(),
                     actor=actor)
    session.add(row)
    session.flush()
    record_event(session, clock=clock, type="order.chargeback", subject_type="order",
                 subject_id=order.id, customer_id=order.customer_id,
                 payload={"chargeback_id": row.id, "amount": amount, "reason": reason})
    return row


def mark_refunding(session: Session, *, return_id: int) -> bool:
    """The one conditional UPDATE that lets a single caller start paying a refund."""
    return session.execute(
        update(ReturnRequest).where(ReturnRequest.id == return_id,
                                    ReturnRequest.status == ReturnStatus.approved)
        .values(status=ReturnStatus.refunding)).rowcount == 1
