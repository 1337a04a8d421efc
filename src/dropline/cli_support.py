"""What the domain CLIs share. Kept apart from ``dropline.cli``, which imports every domain's
CLI and so cannot be imported by them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from dropline.config import get_settings
from dropline.errors import DomainError

err = Console(stderr=True)


@contextmanager
def readable_errors() -> Iterator[None]:
    """A domain error inside becomes one readable line on stderr and exit code 2, not a
    traceback."""
    try:
        yield
    except DomainError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}")
        raise typer.Exit(2) from None


@contextmanager
def command_transaction() -> Iterator[Session]:
    """One transaction per command, with ``readable_errors``."""
    from dropline.db import Database

    db = Database(get_settings().database.url)
    try:
        with readable_errors(), db.transaction() as session:
            yield session
    finally:
        db.dispose()
