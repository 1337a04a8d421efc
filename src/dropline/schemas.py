"""Shared Pydantic field types. Every number a client sends is bounded, so no value can
overflow a column and every string has a length limit."""

from __future__ import annotations

import re
import types
from datetime import date, datetime, time
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from fastapi import Form, Path
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_ID = 2**53  # safe in JSON numbers and in BIGINT
MAX_AMOUNT = 10**11  # minor units: a billion in major units
# Printable ASCII with something besides spaces, as the idempotency service accepts it.
IDEMPOTENCY_KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="numeric id")]
IdForm = Annotated[int, Form(ge=1, le=MAX_ID, description="numeric id")]  # as on the API
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT, description="integer minor units (pence)")]
PositiveAmount = Annotated[int, Field(ge=1, le=MAX_AMOUNT, description="integer minor units")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"),
                     Field(description="ISO 4217 code", examples=["GBP"])]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(max_length=300)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,119}$")]
# A local time of day (a van's shift), with no offset: JSON Schema's "time" format is RFC 3339's
# full-time, which requires one, so the document states the form actually sent and read.
TimeOfDay = Annotated[time, WithJsonSchema({
    "type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
    "description": "local time of day, HH:MM or HH:MM:SS", "examples": ["08:00:00"]})]
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def refuse_numeric_time(value: Any) -> Any:
    """Pydantic reads a number (or a numeric string, as every query parameter is) as a Unix
    time: ``?until=0.5`` would mean 1970. The document says RFC 3339 text, so that alone is
    accepted."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise PydanticCustomError(
            "time_from_number", "give a date or date-time as RFC 3339 text (e.g. "
            "2026-03-01 or 2026-03-01T10:00:00Z), not a number")
    return value


# A moment with its UTC offset, and a calendar day, each written as text (never a number).
Instant = Annotated[AwareDatetime, BeforeValidator(refuse_numeric_time)]
Day = Annotated[date, BeforeValidator(refuse_numeric_time)]
# A date-time as text, with or without an offset (where the endpoint reads it as local).
DateTimeText = Annotated[datetime, BeforeValidator(refuse_numeric_time)]
# No "@", space or control character in any part. Written out rather than as ``\s``, which
# Python reads more widely than the ECMA regex of the OpenAPI document (U+0085, U+001C-1F):
# the server and a client reading the document must accept the same addresses.
_EMAIL_PART = r"[^@\x00-\x20\x7f-\x9f]+"
Email = Annotated[str, StringConstraints(
    strip_whitespace=True, to_lower=True, max_length=254,
    pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$")]


def refuse_unstorable_text(value: Any) -> Any:
    """NUL cannot be stored in a PostgreSQL text column (SQLite would keep it, so the engines
    would disagree) and a lone surrogate cannot be encoded at all: both are refused up front,
    in strings at any depth. (Runs for every field of every request body: the common cases,
    a plain ASCII string or a number, take one type check and a scan in C.)"""
    kind = type(value)
    if kind is str or isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL (\\u0000) characters")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif kind in _SCALARS:
        pass
    elif isinstance(value, _SEQUENCES):
        for item in value:
            refuse_unstorable_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_unstorable_text(key)
            refuse_unstorable_text(item)
    return value


_SCALARS = frozenset({int, float, bool, type(None)})
_SEQUENCES = (list, tuple, set, frozenset)


def accepts_booleans(annotation: Any) -> bool:
    """Whether a field's type admits ``true``/``false`` itself (``bool``, a boolean literal,
    ``Any``, or a union or container holding one)."""
    if annotation is bool or annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Literal:
        return any(isinstance(arg, bool) for arg in get_args(annotation))
    if origin is Annotated:
        return accepts_booleans(get_args(annotation)[0])
    if origin in (Union, types.UnionType) or origin in (list, tuple, set, frozenset, dict):
        return any(accepts_booleans(arg) for arg in get_args(annotation) if arg is not ...)
    return False


def _holds_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, _SEQUENCES):
        return any(isinstance(item, bool) for item in value)
    return isinstance(value, dict) and any(isinstance(item, bool) for item in value.values())


def only_booleans(annotation: Any) -> bool:
    """Whether a field's type is a boolean and nothing else (``bool``, ``bool | None``)."""
    if annotation is bool:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return only_booleans(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kinds = [arg for arg in get_args(annotation) if arg is not type(None)]
        return len(kinds) == 1 and only_booleans(kinds[0])
    return False


_BOOLEAN_KINDS: dict[tuple[type, str], tuple[bool, bool]] = {}


def _boolean_kind(model: type[BaseModel], field: str) -> tuple[bool, bool]:
    """(only a boolean, admits a boolean) for a model's field, worked out once per field."""
    known = _BOOLEAN_KINDS.get((model, field))
    if known is None:
        annotation = model.model_fields[field].annotation
        known = _BOOLEAN_KINDS[(model, field)] = (only_booleans(annotation),
                                                  accepts_booleans(annotation))
    return known


class Input(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than silently ignored,
    text that no engine can store, ``true``/``false`` where a number is asked for (Pydantic
    would read them as 1 and 0), and a number where a boolean is (it would read 0 and 1 as
    false and true; the document says boolean)."""

    model_config = ConfigDict(extra="forbid")

    # Both run for every field of every body: a plain string or number, the common case,
    # is decided by its type alone, without a further call.

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        kind = type(value)
        if kind is str or value is None or info.field_name is None:
            return value  # the common case first: holds no boolean and is no number
        boolean_only, takes_booleans = _boolean_kind(cls, info.field_name)
        if kind is int or kind is float:
            if boolean_only:
                raise ValueError("must be true or false, not a number")
            return value
        if not takes_booleans and _holds_boolean(value):
            raise ValueError("must not be true or false here")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_unstorable_text(cls, value: Any) -> Any:
        kind = type(value)
        if kind is str and value.isascii() and "\x00" not in value or kind is int:
            return value
        return refuse_unstorable_text(value)


# A payment method reference from the provider (``pm_...``): never a card number.
PaymentMethodRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{3,100}$"), Field(
    description="the provider's payment method reference (pm_...), from tokenising the card "
                "in the browser: Stripe.js with Stripe, POST /pay/local/tokens with the local "
                "provider", examples=["pm_1a2b3c4d5e6f7a8b9c0d1e2f"])]

# Keys that mean a client is sending a card itself rather than its reference.
CARD_DATA_KEYS = frozenset({"card", "number", "card_number", "cvc", "cvv", "cvc2", "pan"})
TOKENISE_HINT = (
    "card details are never accepted here: tokenise the card in the browser with the payment "
    "provider (Stripe.js or the Payment Element with Stripe; POST /pay/local/tokens, which "
    "/static/pay/local.js does, with the local provider) and send its reference as "
    "payment_method")
CARD_DATA_ERROR = "card_data_refused"


def holds_card_data(value: Any, depth: int = 0) -> bool:
    """Whether a request body, at any depth, carries a card-number or CVC field. (Runs on
    every paying body: only objects and arrays are descended into, so a body costs a call per
    object, not per value.)"""
    if depth > 8:
        return False
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in CARD_DATA_KEYS:
                return True
            if isinstance(item, (dict, list)) and holds_card_data(item, depth + 1):
                return True
    elif isinstance(value, list):
        for item in value[:100]:
            if isinstance(item, (dict, list)) and holds_card_data(item, depth + 1):
                return True
    return False


class PaymentInput(Input):
    """A body that pays: it names the card by ``payment_method`` only. One still sending a card
    number or CVC is refused (422 ``card-data-refused``) before any field is read, so the
    value reaches no service, table or log line (validation problems never echo input)."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_card_data(cls, data: Any) -> Any:
        if holds_card_data(data):
            raise PydanticCustomError(CARD_DATA_ERROR, TOKENISE_HINT)
        return data


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10_000_000)
