"""Shared Pydantic field types. Every number a client sends is bounded, so no value can
overflow a column and every string has a length limit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_ID = 2**53  # safe in JSON numbers and in BIGINT
MAX_AMOUNT = 10**11  # minor units: a billion in major units

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
Email = Annotated[str, StringConstraints(
    strip_whitespace=True, to_lower=True, max_length=254,
    pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


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


class Input(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error rather than silently ignored,
    and text that no engine can store."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_unstorable_text(cls, value: Any) -> Any:
        return refuse_unstorable_text(value)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10_000_000)
