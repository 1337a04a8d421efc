"""What the domain CLIs share, kept apart from ``dropline.cli`` (which imports every domain's
CLI, so they cannot import it): readable errors, one transaction per command, and the
process's ``Services``.

The root command (``dropline.cli``) says how the services are built (``provide_services``,
from ``dropline.bootstrap.build_services``) on every invocation; a command asks for them with
``services()``, which builds them on first use, so ``--help`` and commands that need no
database build nothing. No domain CLI reads settings or constructs a database or an adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from dropline.errors import DomainError
from dropline.services import Services

__all__ = ["close_services", "command_transaction", "provide_services", "readable_errors",
           "services"]

err = Console(stderr=True)

_build: Callable[[], Services] | None = None
_built: Services | None = None


def provide_services(build: Callable[[], Services]) -> None:
    """The root's part: how this invocation's services are built (lazily, once)."""
    global _build
    close_services()
    _build = build


def services() -> Services:
    """The process's services: settings, database, clock and the adapters."""
    global _built
    if _built is None:
        if _build is None:
            raise RuntimeError("no services: run commands through the root app, dropline.cli")
        _built = _build()
    return _built


def close_services() -> None:
    """Releases the database connections of the services built for this invocation."""
    global _built
    if _built is not None:
        _built.db.dispose()
        _built = None


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
    with readable_errors(), services().db.transaction() as session:
        yield session
