"""Card-testing review signals: when checkout cools down for a customer, a client IP or a card
(``web.throttle`` counts declines per each and refuses checkout once one reaches its limit),
an alert opens in the console's risk page for a person to look at (block the account, report
the card, or dismiss it). One open alert per subject; a later burst adds to it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.errors import InvalidState, NotFound
from dropline.risk.models import DeclineAlert, DeclineAlertKind

__all__ = ["mark_reviewed", "open_alerts", "raise_alert"]


def raise_alert(session: Session, *, clock: Clock, kind: DeclineAlertKind, subject: str,
                customer_id: int | None, declines: int, window_seconds: int) -> DeclineAlert:
    """Opens the subject's alert, or counts one more burst on the one still open."""
    now = clock.now()
    alert = session.scalar(select(DeclineAlert).where(
        DeclineAlert.kind == kind, DeclineAlert.subject == subject[:128],
        DeclineAlert.reviewed_at.is_(None)))
    if alert is None:
        alert = DeclineAlert(kind=kind, subject=subject[:128], customer_id=customer_id,
                             declines=declines, window_seconds=window_seconds, bursts=1,
                             created_at=now, last_seen_at=now, reviewed_by="", note="")
        session.add(alert)
    else:
        alert.bursts += 1
        alert.last_seen_at = now
        alert.customer_id = customer_id or alert.customer_id
    session.flush()
    return alert


def open_alerts(session: Session, *, limit: int = 100) -> list[DeclineAlert]:
    """Unreviewed alerts, most recent burst first."""
    return list(session.scalars(select(DeclineAlert).where(DeclineAlert.reviewed_at.is_(None))
                                .order_by(DeclineAlert.last_seen_at.desc(), DeclineAlert.id.desc())
                                .limit(limit)))


def mark_reviewed(session: Session, *, clock: Clock, alert_id: int, actor: str,
                  note: str = "") -> DeclineAlert:
    alert = session.get(DeclineAlert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    if alert.reviewed_at is not None:
        raise InvalidState(f"alert {alert_id} was already reviewed")
    alert.reviewed_at, alert.reviewed_by, alert.note = clock.now(), actor[:120], note[:500]
    session.flush()
    return alert
