"""``dropline members``: tiers, members, renewals, segments, the cohort map, onboarding and
polls, through the same services as the API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from dropline.cli_support import command_transaction, readable_errors, services
from dropline.drops.service import started_drop_days
from dropline.errors import InvalidInput
from dropline.memberships import jobs, mixes, onboarding, polls, reports, segments, service
from dropline.memberships.models import Membership
from dropline.memberships.onboarding_rules import Effect, flows_as_config
from dropline.memberships.rules import (
    Interval,
    MemberPriceKind,
    MembershipStatus,
    OutOfStockPolicy,
    Segment,
    SubsidyKind,
)
from dropline.money import format_money

console = Console()
err = Console(stderr=True)
members_app = typer.Typer(help="Membership tiers, renewals, segments, cohort map, onboarding "
                               "and founders' polls.", no_args_is_help=True)




def _money(amount: int, currency: str = "GBP") -> str:
    return format_money(amount, currency)


@members_app.command("tiers", epilog="Example: dropline members tiers")
def tiers() -> None:
    """List the tiers with price, perks and spots left."""
    with command_transaction() as session:
        table = Table(box=box.SIMPLE_HEAD)
        for name in ("id", "slug", "price", "spots left", "trial", "perks"):
            table.add_column(name, no_wrap=name != "perks")
        for t in service.list_tiers(session, include_inactive=True):
            left = service.spots_left(t)
            perk_list = [f"{t.member_price_value}{'%' if t.member_price_kind == 'percent' else 'p'}"
                         " off" if t.member_price_kind != MemberPriceKind.none else "",
                         f"early {t.early_access_minutes} min" if t.early_access_minutes else "",
                         f"delivery {t.delivery_subsidy_kind}"
                         if t.delivery_subsidy_kind != SubsidyKind.none else "",
                         f"{t.consumable_quantity} consumable" if t.consumable_variant_id else ""]
            table.add_row(str(t.id), t.slug,
                          f"{_money(t.price_amount, t.currency)}/{t.interval}",
                          "no cap" if left is None else f"{left} of {t.cap}",
                          f"{t.trial_days} d" if t.trial_days else "",
                          ", ".join(p for p in perk_list if p))
        console.print(table)


@members_app.command("create-tier", epilog="Example: dropline members create-tier inner-circle "
                     "--name 'Inner circle' --price 1500 --cap 200 --member-percent 10 "
                     "--early-access 60 --free-delivery")
def create_tier(
    slug: Annotated[str, typer.Argument(help="URL name, e.g. inner-circle.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    price: Annotated[int, typer.Option(min=1, help="Price in minor units (pence).")],
    interval: Annotated[Interval, typer.Option(help="Billing interval.")] = Interval.monthly,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency.")] = "GBP",
    cap: Annotated[int | None, typer.Option(min=0, help="Spots (omit for no cap).")] = None,
    trial_days: Annotated[int, typer.Option(min=0, max=365, help="Free trial days.")] = 0,
    member_percent: Annotated[int, typer.Option(min=0, max=100, help="% off for members.")] = 0,
    early_access: Annotated[int, typer.Option(min=0, help="Minutes of early access.")] = 0,
    free_delivery: Annotated[bool, typer.Option(help="Free local delivery.")] = False,
) -> None:
    """Create a membership tier."""
    with command_transaction() as session:
        tier = service.create_tier(session, clock=services().clock, spec=service.TierSpec(
            slug=slug, name=name, interval=interval, price_amount=price,
            currency=currency.upper(), cap=cap, trial_days=trial_days,
            member_price_kind=MemberPriceKind.percent if member_percent else
            MemberPriceKind.none, member_price_value=member_percent,
            early_access_minutes=early_access,
            delivery_subsidy_kind=SubsidyKind.free if free_delivery else SubsidyKind.none,
            out_of_stock_policy=OutOfStockPolicy.skip))
        console.print(f"tier {tier.id} {tier.slug}: {_money(tier.price_amount, tier.currency)}"
                      f"/{tier.interval}")


@members_app.command("mix", epilog="Example: dropline members mix refill-club --sku EF-FIG-R100 "
                     "--sku EF-NER-R100 --sku EF-OUD-R100 --sku EF-TEA-R100 --size 2 "
                     "--no-repeat 1")
def tier_mix(
    tier: Annotated[str, typer.Argument(help="The tier's slug.")],
    sku: Annotated[list[str] | None, typer.Option(help="A SKU of the pool (repeat).")] = None,
    size: Annotated[int, typer.Option(min=0, max=20, help="Items a period; 0 turns the mix "
                                                          "off.")] = 1,
    no_repeat: Annotated[int, typer.Option(min=0, max=24, help="No item again to a member "
                                                               "within this many periods.")] = 0,
) -> None:
    """Make a consumable tier ship a rotating mix: SIZE items a period chosen from the pool,
    never repeating one to a member within NO_REPEAT periods, in-stock items first, the
    member's preferences honoured, the stock-out policy applied per item."""
    with command_transaction() as session:
        changed = mixes.set_tier_mix(session, tier=service.get_tier_by_slug(session, tier),
                                     skus=sku or [], size=size, no_repeat=no_repeat)
        mix = mixes.mix_of(session, changed)
    if mix["size"] == 0:
        console.print(f"{tier}: no mix (its one consumable variant, if any)")
        return
    console.print(f"{tier}: {mix['size']} a period from {', '.join(mix['pool'])}; none again "
                  f"within {mix['no_repeat']} periods")


@members_app.command("list", epilog="Example: dropline members list --status past-due")
def list_members(
    status: Annotated[MembershipStatus | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """List memberships (newest first)."""
    with command_transaction() as session:
        query = select(Membership).order_by(Membership.id.desc()).limit(limit)
        if status is not None:
            query = query.where(Membership.status == status)
        rows = list(session.scalars(query))
        emails = service.customers_emails(session, [m.customer_id for m in rows])
        tier_names = {t.id: t.slug for t in service.list_tiers(session, include_inactive=True)}
        table = Table("id", "customer", "tier", "status", "period ends", "segment")
        for m in rows:
            table.add_row(str(m.id), emails.get(m.customer_id, "?"), tier_names[m.tier_id],
                          m.status.value, f"{m.current_period_end:%Y-%m-%d}", m.segment or "")
        console.print(table)


@members_app.command("metrics", epilog="Example: dropline members metrics --days 30")
def metrics(days: Annotated[int, typer.Option(min=1, max=3650, help="Churn window.")] = 30
            ) -> None:
    """MRR, members per tier, churn (voluntary / failed payment) and trial conversion."""
    with command_transaction() as session:
        now = services().clock.now()
        m = reports.metrics(session, since=now - timedelta(days=days), until=now)
        table = Table("tier", "live", "paying", "trialing", "paused", "MRR")
        for t in m.tiers:
            table.add_row(t.name, str(t.live), str(t.paying), str(t.trialing), str(t.paused),
                          _money(t.mrr, m.currency))
        console.print(table)
        churn = "n/a" if m.churn_rate is None else f"{m.churn_rate:.1%}"
        trials = "n/a" if m.trial_conversion is None else f"{m.trial_conversion:.0%}"
        console.print(f"MRR {_money(m.mrr, m.currency)}; last {days} days: churn {churn} "
                      f"({m.churned_voluntary} voluntary, {m.churned_failed_payment} failed "
                      f"payment, of {m.members_at_start}); trial conversion {trials} "
                      f"({m.trials_converted} of {m.trials_ended})")


@members_app.command("cohort-map", epilog="Example: dropline members cohort-map --json")
def cohort_map(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
               ) -> None:
    """The cohort map: members, active, revenue and retention per segment and join month."""
    with command_transaction() as session:
        cells = reports.membership_cohort_map(session, now=services().clock.now())
    if as_json:
        print(json.dumps([c.__dict__ for c in cells], indent=2))
        return
    table = Table(title="Membership cohort map", box=box.SIMPLE_HEAD,
                  caption="1m/3m/6m: share of the cohort still members after 1, 3, 6 months")
    for name in ("segment", "joined", "members", "active", "revenue", "1m", "3m", "6m"):
        table.add_column(name, no_wrap=True,
                         justify="left" if name in ("segment", "joined") else "right")

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    for c in cells:
        table.add_row(c.segment, c.join_month, str(c.members), str(c.active), _money(c.revenue),
                      pct(c.retention["m1"]), pct(c.retention["m3"]), pct(c.retention["m6"]))
    console.print(table)


def _parse_setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidInput(f"--set takes key=value, not {text!r}")
    if key.strip() == "consumable_families":
        return key.strip(), [v.strip() for v in value.split(",") if v.strip()]
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        raise InvalidInput(f"{key}: {value!r} is not a number") from None


@members_app.command("segment-rules", epilog="Example: dropline members segment-rules --set "
                     "utility_min_orders=5 --set founding_window_days=60")
def segment_rules(
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value (repeat).")] = None,
) -> None:
    """Show the segment rule and its thresholds, or change them."""
    with command_transaction() as session:
        if set_:
            changes = dict(_parse_setting(item) for item in set_)
            rules = segments.set_rules(session, clock=services().clock, changes=changes)
        else:
            rules = segments.get_rules(session)
    console.print(segments.SegmentRules.__doc__ or "")
    table = Table("threshold", "value")
    for key, value in rules.as_dict().items():
        table.add_row(key, str(value))
    console.print(table)


@members_app.command("segments", epilog="Example: dropline members segments")
def recompute_segments() -> None:
    """Reclassify every member now and print how many fall in each segment."""
    with command_transaction() as session:
        clock = services().clock
        segments.claim_segment_run(session, clock=clock, every=timedelta(0), force=True)
        count = segments.classify_all(session, clock=clock, drop_days=started_drop_days)
        by = {s.value: 0 for s in Segment}
        for seg in session.scalars(select(Membership.segment).where(
                Membership.segment.is_not(None))):
            by[seg] = by.get(seg, 0) + 1
    console.print(f"{count} members classified: "
                  + ", ".join(f"{n} {name}" for name, n in by.items()))


@members_app.command("renew", epilog="Example: dropline members renew")
def renew() -> None:
    """Run the membership jobs once (renewals, dunning, lapses, onboarding); their notices
    are sent with the other mail (`dropline mail send`)."""
    report = jobs.run_membership_jobs(
        services().db, clock=services().clock, settings=services().settings,
        provider=services().payments,  # type: ignore[arg-type]
        drop_days=started_drop_days)
    console.print(f"renewals opened {report.opened}, ended {report.ended}, attempts "
                  f"{report.outcomes or 'none'}")


@members_app.command("onboarding", epilog="Example: dropline members onboarding --json")
def onboarding_report(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")]
                      = False) -> None:
    """The onboarding flows, and each flow's effect on retention at 30/60/90 days against
    the members held out of it at random (with 90% intervals)."""
    with command_transaction() as session:
        flows = onboarding.get_flows(session)
        effects = onboarding.onboarding_effect(session, clock=services().clock)
    if as_json:
        print(json.dumps({"flows": flows_as_config(flows),
                          "effect": [e.as_dict() for e in effects]}, indent=2))
        return
    for flow in flows:
        who = " / ".join(x for x in (flow.tier, flow.segment) if x) or "every member"
        table = Table("step", "when", "channel", "subject",
                      title=f"{flow.name}: {who}, {flow.holdout_share:.0%} held out")
        for s in flow.steps:
            table.add_row(s.key, onboarding._when(s), s.channel, s.subject)
        console.print(table)
    out = Table("flow", "in flow", "held out", *[f"kept {d} d: flow vs holdout (90% CI)"
                                                 for d in onboarding.RETENTION_DAYS],
                title="Effect on retention")
    for effect in effects:
        out.add_row(effect.flow, str(effect.in_flow), str(effect.held_out),
                    *[_effect_cell(effect.retention[d]) for d in onboarding.RETENTION_DAYS])
    console.print(out)
    if not any(e.held_out for e in effects):
        console.print("No member has been held out yet, so no effect can be measured: give a "
                      "flow a holdout_share (dropline members onboarding-flows FILE).")


def _effect_cell(effect: Effect) -> str:
    if effect.difference is None or effect.low is None or effect.high is None:
        return "–"
    return (f"{effect.flow_rate:.0%} vs {effect.holdout_rate:.0%}: "
            f"{effect.difference * 100:+.0f} pts ({effect.low * 100:+.0f} to "
            f"{effect.high * 100:+.0f})")


@members_app.command("onboarding-flows",
                     epilog="Example: dropline members onboarding-flows flows.json  (a JSON "
                            "list of flows, as `dropline members onboarding --json` prints "
                            "them under \"flows\")")
def set_onboarding_flows(
    path: Annotated[str, typer.Argument(help="A JSON file of flows, or - for standard input.")],
) -> None:
    """Replace the onboarding flows: per flow a name, an optional tier (slug) and segment, a
    holdout_share (0 to 0.5) and its steps (key, subject, text, day or event, optional
    completes_on, channel email|account). An empty list restores the default flow."""
    with readable_errors():
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
            data = json.loads(text)
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict) and "flows" in data:
        data = data["flows"]
    with command_transaction() as session:
        flows = onboarding.set_flows(session, clock=services().clock, flows=data)
    console.print(f"{len(flows)} onboarding flow(s) saved: "
                  + ", ".join(f"{f.name} ({len(f.steps)} steps, {f.holdout_share:.0%} held out)"
                              for f in flows))


@members_app.command("poll", epilog="Example: dropline members poll 'Our next scent?' "
                     "--option Vetiver --option Yuzu --days 7")
def create_poll(
    question: Annotated[str, typer.Argument(help="The question.")],
    option: Annotated[list[str], typer.Option(help="An answer (repeat, 2 to 20).")],
    days: Annotated[int, typer.Option(min=1, max=365, help="Open for this many days.")] = 7,
    tier: Annotated[str | None, typer.Option(help="Ask this tier (slug) instead of "
                                                  "founding members.")] = None,
) -> None:
    """Ask founding members (or one tier) a question; one vote each."""
    with command_transaction() as session:
        clock = services().clock
        tier_id = service.get_tier_by_slug(session, tier).id if tier else None
        poll = polls.create_poll(session, clock=clock, question=question, options=option,
                                 closes_at=clock.now() + timedelta(days=days),
                                 segment=None if tier_id else Segment.founding.value,
                                 tier_id=tier_id)
        console.print(f"poll {poll.id} open until {poll.closes_at:%Y-%m-%d %H:%M} UTC")


@members_app.command("poll-results", epilog="Example: dropline members poll-results 1")
def poll_results(poll_id: Annotated[int, typer.Argument(min=1, help="Poll id.")]) -> None:
    """Votes per option."""
    with command_transaction() as session:
        result = polls.results(session, poll_id=poll_id)
    table = Table("option", "votes", title=result.poll.question)
    for text, count in zip(result.poll.options, result.counts, strict=True):
        table.add_row(text, str(count))
    console.print(table)
    console.print(f"{result.votes} votes")
