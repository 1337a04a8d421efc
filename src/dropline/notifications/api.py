"""The signed-in customer's mail preferences (JSON): marketing mail (drop announcements, early
access) on or off; the same services as the account page's form."""

from __future__ import annotations

from fastapi import APIRouter

from dropline.notifications import service
from dropline.notifications.schemas import MailPreferencesRead, MailPreferencesUpdate
from dropline.web.deps import ClockDep, CustomerDep, SessionDep

router = APIRouter(tags=["customers"])


@router.get("/me/mail-preferences", response_model=MailPreferencesRead,
            summary="The signed-in customer's mail preferences")
def mail_preferences(principal: CustomerDep, session: SessionDep) -> MailPreferencesRead:
    return MailPreferencesRead(marketing=service.is_subscribed(session, customer_id=principal.id))


@router.put("/me/mail-preferences", response_model=MailPreferencesRead,
            summary="Turn marketing mail on or off",
            description="Marketing mail is the news of drops and early access; mail about the "
                        "customer's orders, waitlist offers and membership is always sent.")
def set_mail_preferences(body: MailPreferencesUpdate, principal: CustomerDep,
                         session: SessionDep, clock: ClockDep) -> MailPreferencesRead:
    if body.marketing:
        service.opt_in_to_marketing(session, customer_id=principal.id)
    else:
        service.opt_out_of_marketing(session, clock=clock, customer_id=principal.id)
    return MailPreferencesRead(marketing=body.marketing)
