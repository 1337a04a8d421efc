"""``dropline playbook ...``: the three playbooks as Markdown or printable HTML, from the same
builders as the console's /admin/playbooks pages."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dropline.cli_support import services
from dropline.clock import Clock, FrozenClock
from dropline.console import playbooks
from dropline.console.document import Document, to_html, to_markdown
from dropline.console.versions import changes_since_last_week, iso_week, snapshot_playbooks
from dropline.errors import DomainError

playbook_app = typer.Typer(
    help="Playbooks generated from the shop's own data: the membership cohort map, the runbook "
         "for the next drop and the fulfilment decision tree (Markdown or HTML).",
    no_args_is_help=True)
console = Console()
err = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    md = "md"
    html = "html"


FormatOption = Annotated[Format, typer.Option("--format", "-f", help="md or html.")]
AsOfOption = Annotated[datetime | None, typer.Option(
    "--as-of", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
    help="Build it as of this moment (UTC), e.g. 2026-03-02T10:00; default now.")]
PlaybookChoice = StrEnum("PlaybookChoice", {k: k for k in playbooks.PLAYBOOKS})  # type: ignore[misc]
OutOption = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Write to this file instead of printing.", dir_okay=False)]


def _emit(name: str, fmt: Format, out: Path | None, as_of: datetime | None) -> None:
    settings = services().settings
    clock: Clock = services().clock if as_of is None else FrozenClock(
        as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC))
    try:
        with services().db.transaction() as session:
            doc: Document = playbooks.build(name, session, clock=clock,
                                            currency=settings.shop.currency)
    except DomainError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}")
        raise typer.Exit(2) from None
    text = to_markdown(doc) if fmt is Format.md else to_html(doc, shop_name=settings.shop.name)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot write {out}: {exc.strerror}; pick another --out")
        raise typer.Exit(2) from None
    console.print(f"[green]✓[/] {doc.title} → {out}")


@playbook_app.command("cohort-map",
                      epilog="Example: dropline playbook cohort-map --format html -o cohorts.html")
def cohort_map(
    fmt: FormatOption = Format.md, out: OutOption = None, as_of: AsOfOption = None,
) -> None:
    """Members by segment (founding, utility, seasonal), 30-day retention actions, cohort
    cells and onboarding progress."""
    _emit("cohort-map", fmt, out, as_of)


@playbook_app.command("drop-runbook",
                      epilog="Example: dropline playbook drop-runbook -o next-drop.md")
def drop_runbook(
    fmt: FormatOption = Format.md, out: OutOption = None, as_of: AsOfOption = None,
) -> None:
    """The next scheduled drop: timeline (staging, pre-warm, early access per tier), cap
    against demand, waitlist, fulfilment plan and the post-drop review."""
    _emit("drop-runbook", fmt, out, as_of)


@playbook_app.command("decision-tree",
                      epilog="Example: dropline playbook decision-tree --format html -o tree.html")
def decision_tree(
    fmt: FormatOption = Format.md, out: OutOption = None, as_of: AsOfOption = None,
) -> None:
    """The fulfilment decision tree from the rules actually configured, with how many orders
    each rule has decided."""
    _emit("decision-tree", fmt, out, as_of)


@playbook_app.command("snapshot", epilog="Example: dropline playbook snapshot")
def snapshot() -> None:
    """Take this week's snapshot of every playbook now (the background job does it once a
    week; a second run in the same week takes none)."""
    taken = snapshot_playbooks(services().db, clock=services().clock,
                               currency=services().settings.shop.currency)
    console.print(f"{taken} playbook snapshot(s) taken for {iso_week(services().clock.now())}")


@playbook_app.command("changes", epilog="Example: dropline playbook changes drop-runbook")
def changes(name: Annotated[PlaybookChoice, typer.Argument(help="The playbook.")],
            as_of: AsOfOption = None) -> None:
    """What changed in a playbook since the latest earlier week's snapshot: lines new (+) and
    gone (-)."""
    settings = services().settings
    clock: Clock = services().clock if as_of is None else FrozenClock(
        as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC))
    try:
        with services().db.transaction() as session:
            doc = playbooks.build(name.value, session, clock=clock,
                                  currency=settings.shop.currency)
            found = changes_since_last_week(session, name=name.value,
                                            current=to_markdown(doc), clock=clock)
    except DomainError as exc:
        err.print(f"[bold red]error:[/] {exc.detail}")
        raise typer.Exit(2) from None
    if found is None:
        console.print("No earlier week's snapshot yet: `dropline playbook snapshot` takes "
                      "this week's; next week this shows what changed.")
        return
    console.print(f"Since the week of {found.since:%d %b %Y} ({found.since_week}): "
                  f"{len(found.added)} lines new, {len(found.removed)} gone")
    for line in found.added:
        console.print(f"[green]+ {escape(line)}[/]")
    for line in found.removed:
        console.print(f"[red]- {escape(line)}[/]")
