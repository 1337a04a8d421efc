"""``dropline mail``: the mail outbox (list, send now) and previews of every template."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dropline.cli_support import readable_errors, services
from dropline.notifications.jobs import send_mail_outbox
from dropline.notifications.models import MailStatus
from dropline.notifications.render import TEMPLATES, render_mail
from dropline.notifications.service import list_outbox, sample_context

console = Console()
mail_app = typer.Typer(help="Mail: the outbox, sending it now, and template previews.",
                       no_args_is_help=True)


@mail_app.command("preview", epilog="Example: dropline mail preview shipped --html "
                  "shipped.html")
def preview(template: Annotated[str, typer.Argument(help=f"one of {', '.join(TEMPLATES)}")],
            html: Annotated[Path | None, typer.Option(
                help="also write the HTML version to this file, to open in a browser")]
            = None) -> None:
    """Show a template's subject and text filled with a made-up order, drop or customer (no
    database)."""
    if template not in TEMPLATES:
        raise typer.BadParameter(f"one of {', '.join(TEMPLATES)}", param_hint="TEMPLATE")
    settings = services().settings
    mail = render_mail(template, sample_context(template, shop_name=settings.shop.name,
                                                public_url=settings.web.mail_base_url()))
    console.print(f"[bold]Subject:[/] {mail.subject}\n", markup=True, highlight=False)
    console.print(mail.text, markup=False, highlight=False)
    if html is not None:
        html.write_text(mail.html, encoding="utf-8")
        console.print(f"wrote {html}")


@mail_app.command("outbox", epilog="Example: dropline mail outbox --status failed")
def outbox(status: Annotated[MailStatus | None, typer.Option(help="only this status")] = None,
           limit: Annotated[int, typer.Option(min=1, max=1000)] = 50) -> None:
    """The newest mails and whether they went out."""
    with readable_errors(), services().db.transaction() as session:
        table = Table()
        for column in ("id", "order", "customer", "template", "status", "attempts", "sent",
                       "last error"):
            table.add_column(column)
        for item in list_outbox(session, status=status, limit=limit):
            table.add_row(str(item.id), str(item.order_id or ""), str(item.customer_id or ""),
                          item.template, item.status.value,
                          str(item.attempts),
                          f"{item.sent_at:%Y-%m-%d %H:%M}" if item.sent_at else "",
                          item.last_error)
    console.print(table)


@mail_app.command("send", epilog="Example: dropline mail send")
def send() -> None:
    """Send the mails that are due now (the worker does this on its timer)."""
    s = services()
    with readable_errors():
        report = send_mail_outbox(s.db, clock=s.clock, sender=s.mailer,
                                  shop_name=s.settings.shop.name,
                                  public_url=s.settings.web.mail_base_url(),
                                  secret_key=s.settings.web.secret_key,
                                  max_attempts=s.settings.mail.max_attempts)
    console.print(f"sent {report.sent}, failed {report.failed}")
