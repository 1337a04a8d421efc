"""The ``dropline`` command: the root Typer app. It mounts each domain's sub-app, and its
callback hands every command the process's services from the composition root
(``cli_support.services()``, built by ``dropline.bootstrap.build_services``); all commands call
the same services as the web API."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from dropline import cli_support
from dropline.admin.flows import invite_staff
from dropline.admin.roles import parse_role
from dropline.admin.service import SCOPES, create_admin_user, issue_token, reset_second_factor
from dropline.admin.staff import change_role, deactivate_staff, staff_by_email
from dropline.backup import BackupReport, backup_sqlite, restore_sqlite
from dropline.bootstrap import build_services
from dropline.cli_support import readable_errors, services
from dropline.console.cli import playbook_app
from dropline.customers.cli import customers_app
from dropline.customers.flows import MailContext
from dropline.demo import seed_demo
from dropline.logs import configure_logging, logging_config
from dropline.discounts.cli import discounts_app
from dropline.drops.cli import drops_app
from dropline.fulfilment.cli import fulfilment_app, routes_app
from dropline.media.cli import media_app
from dropline.memberships.cli import members_app
from dropline.migrate import current_revisions, downgrade, upgrade
from dropline.notifications.cli import mail_app
from dropline.orders.cli import orders_app
from dropline.payments.cli import payments_app
from dropline.planning.cli import mount as mount_planning
from dropline.popups.cli import popups_app
from dropline.risk.cli import audit_app, returns_app, risk_app
from dropline.tax.cli import tax_app
from dropline.telemetry.cli import app as ltv_app
from dropline.telemetry.shop_cli import telemetry_app
from dropline.web import serving
from dropline.web.scheduler import BackgroundWorker
from dropline.webhooks.service import create_endpoint
from dropline.webhooks.targets import TargetPolicy

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
err = Console(stderr=True, soft_wrap=True)  # errors stay one greppable line

app = typer.Typer(
    name="dropline",
    help="Dropline: a commerce engine for creator brands (memberships, micro-drops, edge "
         "fulfilment, LTV telemetry).\n\nSettings come from DROPLINE_* environment variables; "
         "DROPLINE_DATABASE_URL defaults to a SQLite file in ./var.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
admin_app = typer.Typer(help="Admin users and scoped API tokens.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook endpoints and deliveries.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(customers_app, name="customers")
app.add_typer(webhooks_app, name="webhooks")


app.add_typer(routes_app, name="routes")
app.add_typer(ltv_app, name="ltv")
app.add_typer(telemetry_app, name="telemetry")
app.add_typer(fulfilment_app, name="fulfilment")
app.add_typer(members_app, name="members")
app.add_typer(drops_app, name="drops")
app.add_typer(payments_app, name="payments")
app.add_typer(returns_app, name="returns")
app.add_typer(risk_app, name="risk")
app.add_typer(audit_app, name="audit")
app.add_typer(playbook_app, name="playbook")
app.add_typer(popups_app, name="popups")
app.add_typer(orders_app, name="orders")
app.add_typer(discounts_app, name="discounts")
app.add_typer(tax_app, name="tax")
app.add_typer(mail_app, name="mail")
app.add_typer(media_app, name="media")
mount_planning(app, drops_app)


@app.callback()
def build_process(ctx: typer.Context) -> None:
    """Every command's services come from the composition root, built on first use."""
    cli_support.provide_services(build_services)
    ctx.call_on_close(cli_support.close_services)


def friendly_errors(func: F) -> F:
    """Domain errors become one readable line and exit code 2, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with readable_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@app.command(epilog="Example: dropline serve --port 8000")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    migrate_first: Annotated[bool, typer.Option(
        "--migrate/--no-migrate", help="Apply pending migrations before serving.")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the storefront, the JSON API (/api/v1, docs at /docs) and background jobs.

    With --workers N on Linux each worker process listens on a socket of its own
    (SO_REUSEPORT) and the kernel spreads connections evenly over them."""
    settings = services().settings
    if migrate_first:
        upgrade(settings.database.url)
    console.print(f"[bold]Dropline[/] serving {settings.shop.name} on http://{host}:{port} "
                  f"(API docs: http://{host}:{port}/docs)")
    serving.run("dropline.web.app:create_app", host=host, port=port, workers=workers,
                log_level=log_level,
                log_config=logging_config(settings.web.log_format, level=log_level))


@app.command(epilog="Example: dropline migrate   |   dropline migrate --revision base")
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision ('heads' for all, or 'base' "
                                          "to downgrade everything).")] = "heads",
) -> None:
    """Apply (or roll back) database migrations on DROPLINE_DATABASE_URL."""
    settings = services().settings
    if revision == "base":
        downgrade(settings.database.url, "base")
    else:
        upgrade(settings.database.url, revision)
    revisions = ", ".join(current_revisions(settings.database.url)) or "base (empty)"
    console.print(f"database at revision [bold]{revisions}[/]")


def _copy_with_progress(label: str, copy: Callable[..., BackupReport]) -> BackupReport:
    from rich.progress import BarColumn, Progress, TaskProgressColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  TaskProgressColumn(), console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)
        return copy(progress=lambda done, total: bar.update(task, completed=done, total=total))


@app.command(epilog="Example: dropline backup var/backups/dropline-2026-12-07.db")
@friendly_errors
def backup(
    out: Annotated[Path, typer.Argument(help="The backup file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Back up the SQLite database while the shop runs (SQLite's online backup API; the copy
    is integrity-checked). PostgreSQL: use pg_dump (docs/operations.md, Backups)."""
    url = services().settings.database.url
    report = _copy_with_progress("backing up", lambda progress: backup_sqlite(
        url, out, overwrite=force, progress=progress))
    console.print(f"backed up {report.pages} pages ({report.bytes:,} bytes, schema "
                  f"{', '.join(report.revisions)}) to [bold]{report.path}[/]")


@app.command(epilog="Example: dropline restore var/backups/dropline-2026-12-07.db --yes")
@friendly_errors
def restore(
    backup_file: Annotated[Path, typer.Argument(metavar="BACKUP", help="A file made by "
                                                "dropline backup.")],
    yes: Annotated[bool, typer.Option("--yes", help="Replace the database without asking.")]
    = False,
) -> None:
    """Replace the SQLite database with a checked backup. Stop the shop first; run
    `dropline migrate` afterwards if the backup is from an older version."""
    url = services().settings.database.url
    if not yes and not typer.confirm(f"Replace {url} with {backup_file}?"):
        raise typer.Exit(1)
    services().db.dispose()  # this process's own connections let go of the file
    report = _copy_with_progress("restoring", lambda progress: restore_sqlite(
        url, backup_file, progress=progress))
    console.print(f"restored {report.pages} pages (schema {', '.join(report.revisions)}) "
                  f"from [bold]{backup_file}[/]")


@app.command(epilog="Example: dropline demo --customers 300 --reset")
@friendly_errors
def demo(
    customers: Annotated[int, typer.Option(min=1, max=100_000,
                                           help="How many customers to invent.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same shop.")] = 7,
    reset: Annotated[bool, typer.Option(help="Drop everything first.")] = False,
) -> None:
    """Seed a believable demo brand (a London perfumer) with stock, customers and orders."""
    settings = services().settings
    if reset:
        downgrade(settings.database.url, "base")
    upgrade(settings.database.url)
    summary = seed_demo(services().db, settings=settings, customers=customers, seed=seed,
                        console=console, media=services().media)
    table = Table(title="Demo shop", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # secrets must print whole, never cut with an ellipsis
    for key, value in summary.items():
        table.add_row(key, str(value))
    console.print(table)


@app.command(epilog="Example: dropline worker --interval 2")
def worker(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between passes.")] = 2.0,
    once: Annotated[bool, typer.Option(help="Run one pass and exit.")] = False,
) -> None:
    """Run background jobs (webhook delivery, clean-up) outside the web process."""
    services = cli_support.services()
    configure_logging(services.settings.web.log_format)
    jobs = BackgroundWorker(services)
    with httpx.Client(timeout=services.settings.webhooks.timeout_seconds) as client:
        while True:
            attempted = jobs.run_once(client)
            if attempted:
                console.print(f"webhooks: {attempted} deliveries attempted")
            if once:
                return
            time.sleep(interval)


@admin_app.command("create-user", epilog="Example: dropline admin create-user ops@brand.example")
@friendly_errors
def create_user(
    email: Annotated[str, typer.Argument(help="Admin's email.")],
    password: Annotated[str, typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True,
        help="At least 10 characters, not a common password nor built from the email.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    role: Annotated[str, typer.Option(help="owner, manager, packer, counter or analyst.")]
    = "owner",
) -> None:
    """Create an admin user (the password policy of dropline.passwords applies)."""
    with services().db.transaction() as session:
        user = create_admin_user(session, clock=services().clock, email=email, password=password,
                                 name=name)
        user.role = parse_role(role).value
        console.print(f"admin user {user.email} created (id {user.id}, {user.role})")


@admin_app.command("invite", epilog="Example: dropline admin invite sam@brand.example "
                                    "--role packer --name Sam")
@friendly_errors
def invite(
    email: Annotated[str, typer.Argument(help="The new staff member's email.")],
    role: Annotated[str, typer.Option(help="owner, manager, packer, counter or analyst.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Invite a staff member with a role: they are emailed a single-use link (7 days) to
    choose their password."""
    svc = services()
    mail = MailContext(sender=svc.mailer, shop_name=svc.settings.shop.name,
                       base_url=svc.settings.web.mail_base_url())
    user_id = invite_staff(svc.db, clock=svc.clock, mail=mail, email=email, role=role,
                           name=name)
    console.print(f"invited {email.strip().lower()} as {parse_role(role).value} "
                  f"(id {user_id}); the link is in their mail")


@admin_app.command("role", epilog="Example: dropline admin role sam@brand.example manager")
@friendly_errors
def role(
    email: Annotated[str, typer.Argument(help="The staff member's email.")],
    new_role: Annotated[str, typer.Argument(
        metavar="ROLE", help="owner, manager, packer, counter or analyst.")],
) -> None:
    """Change a staff member's role (the shop keeps at least one active owner)."""
    with services().db.transaction() as session:
        user = change_role(session, user_id=staff_by_email(session, email).id, role=new_role)
        console.print(f"{user.email} is now {user.role}")


@admin_app.command("deactivate", epilog="Example: dropline admin deactivate sam@brand.example")
@friendly_errors
def deactivate(email: Annotated[str, typer.Argument(help="The staff member's email.")]) -> None:
    """Deactivate a staff member: signed out everywhere, API tokens revoked, the row kept."""
    with services().db.transaction() as session:
        user = deactivate_staff(session, clock=services().clock,
                                user_id=staff_by_email(session, email).id)
        console.print(f"{user.email} is deactivated")


@admin_app.command("reset-2fa", epilog="Example: dropline admin reset-2fa ops@brand.example")
@friendly_errors
def reset_2fa(email: Annotated[str, typer.Argument(help="The staff member's email.")]) -> None:
    """Remove a staff member's two-factor sign-in (a lost device): their authenticator secret
    and recovery codes are deleted and their console sessions end; they sign in with the
    password alone and may enrol again under /admin/security."""
    with services().db.transaction() as session:
        user = reset_second_factor(session, clock=services().clock, email=email)
        console.print(f"two-factor sign-in removed for {user.email}; their sessions ended")


@admin_app.command("token", epilog="Example: dropline admin token ci-bot --scope orders:read "
                                   "--scope catalog:write")
@friendly_errors
def token(
    name: Annotated[str, typer.Argument(help="What the token is for.")],
    scope: Annotated[list[str], typer.Option(help="A scope (repeat), or '*' for all. "
                                             "See `dropline admin scopes`.")],
) -> None:
    """Issue a scoped API token. It is printed once; only its hash is stored."""
    with services().db.transaction() as session:
        issued = issue_token(session, clock=services().clock, name=name, scopes=scope)
        console.print(f"token {issued.token.id} ({', '.join(issued.token.scopes)}):")
        print(issued.secret)


@admin_app.command("scopes", epilog="Example: dropline admin scopes")
def scopes() -> None:
    """List the scopes an API token can hold."""
    table = Table("scope", "allows")
    for key, text in SCOPES.items():
        table.add_row(key, text)
    table.add_row("*", "everything")
    console.print(table)


@webhooks_app.command("add", epilog="Example: dropline webhooks add https://example.com/hook "
                                    "--event order.paid")
@friendly_errors
def webhooks_add(
    url: Annotated[str, typer.Argument(help="Receiver URL (http or https).")],
    event: Annotated[list[str], typer.Option(help="Event type to send (repeat); '*' for all.")]
    = ["*"],  # noqa: B006 - Typer needs a literal default
) -> None:
    """Register a webhook endpoint; prints its signing secret once."""
    with services().db.transaction() as session:
        endpoint = create_endpoint(session, clock=services().clock, url=url, event_types=event,
                                   targets=TargetPolicy.from_settings(
                                       services().settings.webhooks))
        console.print(f"endpoint {endpoint.id} → {endpoint.url} ({', '.join(endpoint.event_types)})")
        console.print(f"signing secret: {endpoint.secret}")


@webhooks_app.command("deliver", epilog="Example: dropline webhooks deliver")
def webhooks_deliver() -> None:
    """Deliver due webhooks once (what the worker does on each pass)."""
    worker(interval=0, once=True)


def main() -> None:  # pragma: no cover
    app()
