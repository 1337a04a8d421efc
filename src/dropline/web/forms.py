"""Console form handling shared by every area: fields arrive as text and are parsed here, so
a bad value becomes a message beside its field (``FormError``), never the framework's bare
422; a domain refusal becomes one too (``from_domain``); an accepted form redirects with a
one-line message (``done``).

A page that shows several forms names each (``FormError.form``); the templates' field macros
(``admin/_form.html``) put the message beside the field of the form that was sent and keep
what was typed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi.responses import RedirectResponse

from dropline.errors import DomainError
from dropline.money import parse_major

__all__ = ["FormError", "done", "from_domain", "parse_amount", "parse_choice", "parse_int",
           "parse_local_time"]

E = TypeVar("E")


class FormError(Exception):
    """A form's refusal: which form on the page, which field, what to say, the status."""

    def __init__(self, message: str, *, field: str = "", form: str = "", status: int = 422
                 ) -> None:
        super().__init__(message)
        self.message, self.field, self.form, self.status = message, field, form, status

    def context(self) -> dict[str, Any]:
        """What the page template reads: ``error``, ``field``, ``form``."""
        return {"error": self.message, "field": self.field, "form": self.form}


def parse_int(text: str, field: str, *, low: int, high: int, form: str = "") -> int:
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise FormError(f"enter a whole number from {low:,} to {high:,}", field=field,
                        form=form)
    return value


def parse_amount(text: str, field: str, *, form: str = "") -> int:
    """A price typed in major units ("42.50") as integer minor units."""
    try:
        return parse_major(text)
    except ValueError:
        raise FormError("enter a price such as 42 or 42.50", field=field, form=form) from None


def parse_choice(text: str, kind: type[E], field: str, *, form: str = "") -> E:
    try:
        return kind(text)  # type: ignore[call-arg]
    except ValueError:
        raise FormError("choose one of the options", field=field, form=form) from None


def parse_local_time(text: str, field: str, *, timezone: ZoneInfo, form: str = "") -> datetime:
    """A ``datetime-local`` input ("2026-03-15T18:00", the shop's wall clock) as aware UTC."""
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FormError("enter a date and time", field=field, form=form) from None
    if naive.tzinfo is not None:
        return naive.astimezone(ZoneInfo("UTC"))
    return naive.replace(tzinfo=timezone).astimezone(ZoneInfo("UTC"))


def from_domain(exc: DomainError, form: str = "", *, fields: dict[str, str] | None = None,
                default_field: str = "") -> FormError:
    """A service's refusal as a form's: its ``field`` renamed to the form's (``fields``)."""
    field = str(exc.extensions.get("field", "")) or default_field
    return FormError(exc.detail, field=(fields or {}).get(field, field), form=form,
                     status=exc.status)


def done(path: str, message: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"{path}?done={quote(message)}{anchor}", status_code=303)
