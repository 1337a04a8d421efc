"""``dropline telemetry ...``: cohorts, the shop's LTV, decisions and history import, on
DROPLINE_DATABASE_URL, through the same services as the admin API."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from dropline.cli_support import services
from dropline.errors import DomainError
from dropline.money import format_money
from dropline.telemetry import service
from dropline.telemetry.cohorts import CUTS
from dropline.telemetry.decisions import DEFAULT_GROSS_MARGIN, DEFAULT_TARGET_RATIO
from dropline.telemetry.imports import import_history as run_import
from dropline.telemetry.imports import parse_history
from dropline.telemetry.report import plain
from dropline.telemetry.shop_ltv import estimate_shop_ltv

telemetry_app = typer.Typer(
    help="Cohorts, the shop's own LTV and the decisions built on them (CAC ceilings, delivery "
         "subsidy, production-run cash), and import of a transaction history.",
    no_args_is_help=True)
console = Console()
BAR_WIDTH = 24


def _fail(message: str) -> NoReturn:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def _as_of(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"--as-of {value!r} is not a date (expected YYYY-MM-DD)")
    # The whole day counts: look from its last second.
    return dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC)


def _cuts(by: list[str]) -> list[str]:
    unknown = [b for b in by if b not in CUTS]
    if unknown:
        _fail(f"unknown cut {', '.join(unknown)}: choose from {', '.join(CUTS)}")
    return by


def _money(amount: float | None, currency: str) -> str:
    if amount is None:
        return "—"
    return format_money(int(round(amount)), currency)


def _bar(value: float | None, top: float) -> str:
    """A horizontal bar in eighths of a character, so numbers compare at a glance."""
    if value is None or top <= 0:
        return ""
    eighths = int(round(max(value, 0) / top * BAR_WIDTH * 8))
    return "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(plain(value), indent=2))


def _run(func: Any) -> Any:
    try:
        with services().db.transaction() as session:
            return func(session)
    except DomainError as exc:
        _fail(exc.detail)


By = Annotated[list[str], typer.Option(help=f"Cut by (repeat): {', '.join(CUTS)}.")]
AsOf = Annotated[str | None, typer.Option(help="Look from the end of this day (YYYY-MM-DD); "
                                          "default now.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@telemetry_app.command(epilog="Example: dropline telemetry cohorts --by source --period month")
def cohorts(by: By = [],  # noqa: B006 - Typer needs a literal default
            period: Annotated[str, typer.Option(help="month or week")] = "month",
            as_of: AsOf = None, as_json: AsJson = False) -> None:
    """Cohorts by first-purchase period: customers, 30/60/90-day net revenue per customer and
    repeat rate. Windows not yet observed for every member are shown as '—' and noted."""
    if period not in ("month", "week"):
        _fail("--period must be month or week")
    settings = services().settings
    table = _run(lambda s: service.cohort_report(s, as_of=_as_of(as_of), period=period,
                                                 by=_cuts(by), currency=settings.shop.currency))
    if as_json:
        _print_json(table)
        return
    out = Table(title=f"Cohorts by first purchase ({period}), as of {table.as_of:%Y-%m-%d}")
    out.add_column("cohort")
    for b in table.by:
        out.add_column(b)
    out.add_column("customers", justify="right")
    for w in table.windows:
        out.add_column(f"{w}-day / customer", justify="right")
    out.add_column(f"repeat {max(table.windows)}d", justify="right")
    last = max(table.windows)
    top = max((c.revenue_per_customer[last] or 0 for c in table.cohorts), default=0)
    out.add_column(f"{last}-day value", no_wrap=True)
    for c in table.cohorts:
        rate = c.repeat_rate[last]
        out.add_row(c.period + ("" if c.fully_observed else " *"), *c.cut.values(),
                    f"{c.customers:,}",
                    *(_money(c.revenue_per_customer[w], table.currency) for w in table.windows),
                    "—" if rate is None else f"{rate:.0%}",
                    _bar(c.revenue_per_customer[last], top))
    console.print(out)
    for c in table.not_fully_observed:
        console.print(f"* {c.period}{' ' + '/'.join(c.cut.values()) if c.cut else ''}: {c.note}",
                      highlight=False)
    for note in table.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if not table.cohorts:
        console.print("no paid orders yet: no cohorts")


@telemetry_app.command(epilog="Example: dropline telemetry ltv --by fulfilment "
                               "--horizon-weeks 52 --calibration-end 2026-09-30")
def ltv(by: By = [],  # noqa: B006
        calibration_end: Annotated[str | None, typer.Option(
            help="Fit on purchases up to this day; later ones check the forecast.")] = None,
        horizon_weeks: Annotated[float, typer.Option(min=4, max=520)] = 52,
        discount_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.10,
        as_of: AsOf = None, as_json: AsJson = False) -> None:
    """BG/NBD + Gamma-Gamma fitted on the shop's own orders: each customer's expected value
    over the horizon, averaged by cut of their first purchase."""
    now = _as_of(as_of)
    cal = now.date() if calibration_end is None else _as_of(calibration_end).date()
    if cal > now.date():
        _fail("--calibration-end must not be after --as-of")
    settings = services().settings

    def compute(session: Any) -> Any:
        log, customers = service.load_customers(session, as_of=now, currency=settings.shop.currency)
        return estimate_shop_ltv(log, customers, calibration_end=cal, by=_cuts(by),
                                 horizon_weeks=horizon_weeks,
                                 annual_discount_rate=discount_rate)

    result = _run(compute)
    if as_json:
        _print_json(result)
        return
    cur = result.currency
    if result.bgnbd is not None:
        b, g = result.bgnbd, result.gamma_gamma
        console.print(f"BG/NBD r={b.r:.3g} alpha={b.alpha:.3g} a={b.a:.3g} b={b.b:.3g}; "
                      f"Gamma-Gamma p={g.p:.3g} q={g.q:.3g} gamma={g.gamma:.3g}; "
                      f"{result.customers:,} customers, {result.repeaters:,} repeaters, fitted "
                      f"to {result.calibration_end}", highlight=False)
    out = Table(title=f"Expected value per customer over {result.horizon_weeks:g} weeks "
                      f"(discounted {result.annual_discount_rate:.0%}/year)")
    for b in result.by:
        out.add_column(b)
    for name in ("customers", "realised so far", "P(alive)", "expected orders",
                 "expected value"):
        out.add_column(name, justify="right")
    out.add_column("", no_wrap=True)
    top = max((c.expected_value_per_customer for c in result.cuts), default=0)
    for c in result.cuts:
        out.add_row(*c.cut.values(), f"{c.customers:,}", _money(c.realised_per_customer, cur),
                    f"{c.probability_alive:.0%}", f"{c.expected_purchases:.2f}",
                    _money(c.expected_value_per_customer, cur),
                    _bar(c.expected_value_per_customer, top))
    console.print(out)
    if (h := result.holdout) is not None:
        console.print(f"holdout {h.weeks:.1f} weeks: {h.actual_transactions:,.0f} repeat orders "
                      f"happened, {h.predicted_transactions:,.1f} forecast", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


@telemetry_app.command(epilog="Example: dropline telemetry decisions --gross-margin 0.62 "
                                    "--target-ratio 3 --subsidy-cost 395")
def decisions(gross_margin: Annotated[float, typer.Option(min=0, max=1)] = DEFAULT_GROSS_MARGIN,
              target_ratio: Annotated[float, typer.Option(min=0.01, max=100)]
              = DEFAULT_TARGET_RATIO,
              subsidy_cost: Annotated[int, typer.Option(
                  min=0, help="Cost of one subsidised first delivery, minor units.")] = 395,
              as_of: AsOf = None, as_json: AsJson = False) -> None:
    """CAC ceiling per drop type (90-day LTV x gross margin / target ratio, inputs shown) and
    whether to subsidise first deliveries."""
    settings = services().settings
    now = _as_of(as_of)

    def compute(session: Any) -> Any:
        return (service.cac_report(session, as_of=now, gross_margin=gross_margin,
                                   target_ratio=target_ratio, currency=settings.shop.currency),
                service.subsidy_report(session, as_of=now, cost_per_subsidy=subsidy_cost,
                                       gross_margin=gross_margin, currency=settings.shop.currency))

    ceilings, subsidy = _run(compute)
    if as_json:
        _print_json({"cac_ceilings": ceilings, "delivery_subsidy": subsidy})
        return
    cur = settings.shop.currency
    out = Table(title="CAC ceiling per drop type = 90-day LTV x gross margin / target ratio")
    for name in ("drop type", "basis", "customers", "pending", "90-day LTV", "margin", "ratio",
                 "ceiling"):
        out.add_column(name, justify="left" if name in ("drop type", "basis") else "right")
    out.add_column("", no_wrap=True)
    top = max((c.ceiling or 0 for c in ceilings), default=0)
    for c in ceilings:
        out.add_row(c.drop_type, c.basis, f"{c.customers:,}", f"{c.pending:,}",
                    _money(c.ltv_90, cur), f"{c.gross_margin:g}", f"{c.target_ratio:g}",
                    _money(c.ceiling, cur), _bar(c.ceiling, top))
    console.print(out)
    for c in ceilings:
        if c.note:
            console.print(f"[yellow]note:[/] {c.drop_type}: {c.note}", highlight=False)
    console.print(f"\n[bold]Delivery subsidy:[/] {subsidy.reason}", highlight=False)
    if subsidy.value_effect is not None:
        v, r, n = subsidy.value_effect, subsidy.retention_effect, subsidy.net_gain
        console.print(
            f"  compared {subsidy.subsidised} subsidised with {subsidy.not_subsidised} "
            f"comparable customers in {subsidy.strata} strata (same first month and path)\n"
            f"  90-day repeat rate {subsidy.retention_subsidised:.0%} vs "
            f"{subsidy.retention_not_subsidised:.0%}; effect {r.estimate:+.1%} "
            f"[{r.low:+.1%}, {r.high:+.1%}]\n"
            f"  90-day value effect {_money(v.estimate, cur)} "
            f"[{_money(v.low, cur)}, {_money(v.high, cur)}]; net of a {_money(subsidy_cost, cur)}"
            f" subsidy at {gross_margin:g} margin: {_money(n.estimate, cur)} "
            f"[{_money(n.low, cur)}, {_money(n.high, cur)}] ({subsidy.confidence:.0%} interval)",
            highlight=False)


@telemetry_app.command("cash-forecast",
                       epilog="Example: dropline telemetry cash-forecast --family candles "
                              "--unit-cost 1400 --lead-time-weeks 3")
def cash(unit_cost: Annotated[int, typer.Option(min=0, help="Minor units per unit made.")],
         family: Annotated[str | None, typer.Option(
             help="Product family the run makes (past sell-through is taken from it).")] = None,
         unit_price: Annotated[int | None, typer.Option(
             min=0, help="Minor units; default the recent average selling price.")] = None,
         lead_time_weeks: Annotated[int, typer.Option(min=0, max=52)] = 3,
         member_uptake: Annotated[float, typer.Option(min=0, help="Units per member.")] = 0.3,
         waitlist_conversion: Annotated[float, typer.Option(
             min=0, help="Units per waitlisted person.")] = 0.5,
         deposit_share: Annotated[float, typer.Option(min=0, max=1)] = 0.5,
         safety_share: Annotated[float, typer.Option(min=0, max=5)] = 0.0,
         refund_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
         as_of: AsOf = None, as_json: AsJson = False) -> None:
    """Cash out (deposit at order, balance on delivery) and cash in (members and waitlist on
    arrival, open sale after) for the next production run, week by week."""
    settings = services().settings
    forecast = _run(lambda s: service.production_forecast(
        s, as_of=_as_of(as_of), family=family, unit_cost=unit_cost, unit_price=unit_price,
        lead_time_weeks=lead_time_weeks, member_uptake=member_uptake,
        waitlist_conversion=waitlist_conversion, deposit_share=deposit_share,
        safety_share=safety_share, refund_rate=refund_rate, currency=settings.shop.currency))
    if as_json:
        _print_json(forecast)
        return
    cur, p = settings.shop.currency, forecast.inputs
    console.print(
        f"demand: {p.members} members x {p.member_uptake:g} + {p.waitlist} waitlisted x "
        f"{p.waitlist_conversion:g} + open sale {forecast.demand_open_sale:g} (mean of "
        f"{list(p.past_sell_through)}) -> make {forecast.units} units at "
        f"{_money(p.unit_cost, cur)}, sell at {_money(p.unit_price, cur)}", highlight=False)
    out = Table(title=f"Cash for the next production run ({p.lead_time_weeks}-week lead time)")
    for name in ("week", "starts", "cash out", "cash in", "net", "cumulative"):
        out.add_column(name, justify="right")
    out.add_column("position", no_wrap=True)
    out.add_column("what")
    top = max((abs(w.cumulative) for w in forecast.weeks), default=0)
    for w in forecast.weeks:
        bar = _bar(abs(w.cumulative), top)
        out.add_row(str(w.week), f"{w.starts:%Y-%m-%d}", _money(w.cash_out, cur),
                    _money(w.cash_in, cur), _money(w.net, cur), _money(w.cumulative, cur),
                    f"[red]{bar}[/]" if w.cumulative < 0 else f"[green]{bar}[/]", w.what)
    console.print(out)
    back = ("never" if forecast.break_even_week is None
            else f"week {forecast.break_even_week}")
    console.print(f"peak cash need {_money(forecast.peak_cash_need, cur)} in week "
                  f"{forecast.peak_week}; back to break-even: {back}", highlight=False)
    for note in forecast.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


@telemetry_app.command("import", epilog="Example: dropline telemetry import history.csv "
                                        "--skip-bad")
def import_history(
    file: Annotated[Path, typer.Argument(help=(
        "CSV with customer_email or customer_id, date, amount, currency and optional "
        "source, campaign, family columns."))],
    skip_bad: Annotated[bool, typer.Option(help=(
        "Import the good rows and report the bad ones (default: nothing is written when any "
        "row is bad)."))] = False,
    as_json: AsJson = False,
) -> None:
    """Import a transaction history from another platform as customers and paid historical
    orders (marked imported), so cohorts and LTV start from the brand's real past."""
    settings = services().settings
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}")
    parsed = parse_history(text, currency=settings.shop.currency)
    if parsed.errors and not skip_bad:
        if as_json:
            _print_json({"imported": False, "errors": parsed.errors})
        err = Console(stderr=True, soft_wrap=True)
        for e in parsed.errors[:50]:
            err.print(f"{file}: line {e.line}: {e.message}", highlight=False)
        if len(parsed.errors) > 50:
            err.print(f"... and {len(parsed.errors) - 50} more", highlight=False)
        _fail(f"{len(parsed.errors)} bad row(s): nothing imported (fix them, or pass "
              "--skip-bad to import the rest)")
    result = _run(lambda s: run_import(s, clock=services().clock, rows=parsed.rows,
                                       source_name=file.name))
    if as_json:
        _print_json({"imported": True, "result": result, "errors": parsed.errors})
        return
    console.print(f"imported {result.orders:,} orders of {result.customers_total:,} customers "
                  f"({result.customers_created:,} new) from {file.name}, batch {result.batch}",
                  highlight=False)
    for e in parsed.errors:
        console.print(f"[yellow]skipped[/] line {e.line}: {e.message}", highlight=False)
