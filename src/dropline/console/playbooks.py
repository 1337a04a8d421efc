"""The three playbooks, built from the shop's own data and settings (reads only):

* ``cohort-map``: members by segment (founding, utility, seasonal) with counts, a 30-day
  retention action per segment sized by its own numbers, the cohort cells and onboarding;
* ``drop-runbook``: the next scheduled drop's timeline (staging, pre-warm, early access per
  tier, public start, close, review), its cap against the demand last seen, the waitlist, the
  fulfilment plan for its days and the post-drop review checklist;
* ``decision-tree``: the fulfilment rules actually configured, as the checkout runs them, and
  how often each has decided an order.

Each returns a ``document.Document``; Markdown and HTML come from that one value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dropline.clock import Clock
from dropline.console import figures
from dropline.console.document import Document, Item, Section, Table
from dropline.drops import service as drops
from dropline.drops.models import Drop, DropWaitlistEntry, WaitlistStatus
from dropline.errors import NotFound
from dropline.fulfilment.decision_tree import (
    FALLBACK_TEXT,
    FILTER_TEXT,
    NOTHING_TEXT,
    tree_steps,
    tree_svg,
)
from dropline.fulfilment.models import FulfilmentDecisionRow
from dropline.fulfilment.rules import describe_rule
from dropline.fulfilment.service import load_rules
from dropline.memberships import onboarding
from dropline.memberships.models import Membership, MembershipTier, OnboardingProgress
from dropline.memberships.reports import membership_cohort_map
from dropline.memberships.rules import LIVE_STATUSES
from dropline.money import format_money
from dropline.planning.service import plan_drops

PLAYBOOKS = {"cohort-map": "Membership cohort map", "drop-runbook": "Micro-drop runbook",
             "decision-tree": "Fulfilment decision tree"}
SEGMENT_ACTIONS = {
    "founding": ("Keep them close", [
        ("Invite every founding member to the next founders' poll and name the winning scent "
        "after their vote."),
        ("Give the longest early-access lead on the next drop; write to each one personally "
        "within 30 days of joining."),
    ]),
    "utility": ("Make re-ordering effortless", [
        ("Time refill reminders to each member's own order gap; offer the consumable as a "
        "monthly perk."),
        "Book their deliveries into the cheapest hub window (the subsidy pays for itself).",
    ]),
    "seasonal": ("Bring them back for the moments", [
        ("Announce the next drop seven days ahead with its early-access time; put lapsed "
        "buyers on its waitlist."),
        "Send a win-back note to those with no order in 30 days, pointing at the next drop.",
    ]),
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _when(at: datetime) -> str:
    return at.astimezone(figures.LONDON).strftime("%a %d %b %Y %H:%M")


# --------------------------------------------------------------------------- cohort map


def cohort_map(session: Session, *, clock: Clock, currency: str) -> Document:
    now = clock.now()
    live = Counter(seg or "unclassified" for seg in session.scalars(
        select(Membership.segment).where(Membership.status.in_(LIVE_STATUSES))))
    cells = membership_cohort_map(session, now=now)
    total = sum(live.values())
    doc = Document("cohort-map", PLAYBOOKS["cohort-map"],
                   f"{total} live members in {len(live)} segments, as of {_when(now)}. "
                   "Iterate weekly: re-run after the segment job and compare.",
                   facts={"members": total, "segments": dict(live)})
    rows = []
    for segment in ("founding", "utility", "seasonal", "unclassified"):
        if segment not in live and segment == "unclassified":
            continue
        mine = [c for c in cells if c.segment == segment]
        m1 = [(c.retention.get("m1"), c.members) for c in mine if c.retention.get("m1") is not None]
        weighted = (sum(r * n for r, n in m1) / sum(n for _, n in m1)) if m1 else None
        revenue = sum(c.revenue for c in mine)
        rows.append([segment, str(live.get(segment, 0)), str(sum(c.members for c in mine)),
                     _pct(weighted), format_money(revenue, currency)])
    doc.sections.append(Section(
        "Segments", [("Live members now; everyone who ever joined; share still a member one "
                     "month after joining (weighted over join months); their revenue.")],
        table=Table(["segment", "live members", "ever joined", "kept at 1 month", "revenue"],
                    rows)))
    actions = []
    for segment, (goal, steps) in SEGMENT_ACTIONS.items():
        actions.append(Item(f"{segment} ({live.get(segment, 0)} members): {goal}",
                            [Item(s) for s in steps]))
    doc.sections.append(Section("30-day retention actions", items=actions, ordered=True))
    doc.sections.append(Section("Cohort cells", table=Table(
        ["segment", "joined", "members", "active", "kept 1 m", "kept 3 m", "kept 6 m",
         "revenue"],
        [[c.segment, c.join_month, str(c.members), str(c.active), _pct(c.retention.get("m1")),
          _pct(c.retention.get("m3")), _pct(c.retention.get("m6")),
          format_money(c.revenue, currency)] for c in cells])))
    steps = onboarding.get_steps(session)
    done = dict(session.execute(select(OnboardingProgress.step_key, func.count())
                                .group_by(OnboardingProgress.step_key)).all())
    started = session.scalar(select(func.count()).select_from(Membership)) or 0
    doc.facts["onboarding"] = {s.key: int(done.get(s.key, 0)) for s in steps}
    doc.sections.append(Section(
        "Onboarding progress", [f"Of {started} memberships ever started:"],
        items=[Item(f"{s.subject} ({'day ' + str(s.day) if s.day is not None else 'on ' + str(s.event)}): "
                    f"{done.get(s.key, 0)} reached") for s in steps]))
    retention = onboarding.retention_by_completion(session, clock=clock)
    doc.sections[-1].items.append(Item(
        "Kept at 90 days: " + ", ".join(
            f"{name.replace('_', ' ')} onboarding {_pct(g.get('retained_90d'))} "
            f"({g['members']} members)" for name, g in retention.items())))
    tiers = session.scalars(select(MembershipTier).order_by(MembershipTier.price_amount)).all()
    doc.facts["tiers"] = {t.slug: t.live_count for t in tiers}
    return doc


# --------------------------------------------------------------------------- drop runbook


def _demand_signal(session: Session, *, clock: Clock, drop: Drop) -> tuple[str, int | None]:
    """The suggested cap and where it comes from: the planning module's demand model when it
    is installed, else the last ended drop's units sold plus its unserved
    waitlist, plus ten per cent."""
    if figures.module_built("planning"):
        plan = plan_drops(session, clock=clock, bootstrap=0)  # the cap needs no intervals
        for upcoming, _cap_now, cap_plan in plan.upcoming:
            if upcoming.id == drop.id:
                return (f"the planning module's demand model ({cap_plan.reason}; demand p10 "
                        f"{cap_plan.demand_p10:g}, mean {cap_plan.demand_mean:.0f}, p90 "
                        f"{cap_plan.demand_p90:g})"), cap_plan.recommended.cap
    last = session.scalar(select(Drop).where(Drop.ends_at <= clock.now())
                          .order_by(Drop.starts_at.desc()).limit(1))
    if last is None:
        return "no past drop to learn from yet", None
    row = figures.drop_row(session, clock=clock, drop=last)
    unserved = session.scalar(select(func.count()).select_from(DropWaitlistEntry).where(
        DropWaitlistEntry.drop_id == last.id,
        DropWaitlistEntry.status.in_((WaitlistStatus.waiting, WaitlistStatus.lapsed)))) or 0
    demand = row.sold + unserved
    return (f"{last.name}: {row.sold} sold of {row.cap} plus {unserved} on the waitlist "
            f"unserved = demand {demand}, plus 10%"), math.ceil(demand * 1.1)


def drop_runbook(session: Session, *, clock: Clock, currency: str,
                 drop_ref: str | None = None) -> Document:
    drop = drops.find_drop(session, drop_ref) if drop_ref else figures.next_drop(
        session, clock=clock)
    if drop is None:
        raise NotFound("no drop is scheduled: create one with `dropline drops create`")
    row = figures.drop_row(session, clock=clock, drop=drop)
    start = drop.starts_at
    source, suggested = _demand_signal(session, clock=clock, drop=drop)
    waitlist = session.scalar(select(func.count()).select_from(DropWaitlistEntry).where(
        DropWaitlistEntry.drop_id == drop.id)) or 0
    doc = Document("drop-runbook", f"{PLAYBOOKS['drop-runbook']}: {drop.name}",
                   f"Public start {_when(start)} (London), cap {row.cap} units, "
                   f"{drop.per_person_limit} per person. State now: {row.state}.",
                   facts={"drop": drop.slug, "cap": row.cap, "suggested_cap": suggested,
                          "waitlist": waitlist, "per_person_limit": drop.per_person_limit})

    tiers: list[tuple[str, int]] = []
    if figures.module_built("memberships"):
        tiers = [(t.name, min(t.early_access_minutes, drop.early_access_minutes))
                 for t in session.scalars(select(MembershipTier).where(MembershipTier.active)
                                          .order_by(MembershipTier.early_access_minutes.desc()))]
    doc.facts["early_access"] = dict(tiers)
    timeline = [
        Item(f"T-7d ({_when(start - timedelta(days=7))}): stage the drop page and its "
             f"waiting room (/drops/{drop.slug}); check copy, images, prices, the cap."),
        Item("T-3d: announce to members with their early-access times; open the waitlist "
             "message for the sold-out case."),
        Item(f"T-1d ({_when(start - timedelta(days=1))}): pre-warm the pages and caches: "
             f"`dropline drops prewarm {drop.slug}`; confirm hub windows below."),
    ]
    for name, minutes in tiers:
        if minutes:
            timeline.append(Item(f"T-{minutes} min ({_when(start - timedelta(minutes=minutes))}): "
                                 f"early access opens for {name}"))
    timeline += [
        Item(f"T0 ({_when(start)}): public start; watch /admin/drops (sell-through, "
             f"waiting-room size) and admit {drop.admission_per_minute} shoppers a minute."),
        Item(f"Close ({_when(drop.ends_at)}): the drop ends; unserved waitlist lapses."),
        Item(f"T+1d: run the post-drop review below: `dropline drops report {drop.slug}`."),
    ]
    doc.sections.append(Section("Timeline", items=timeline, ordered=True))
    doc.sections.append(Section("Early access per tier", table=Table(
        ["tier", "lead (minutes)", "opens"],
        [[n, str(m), _when(start - timedelta(minutes=m))] for n, m in tiers])
        if tiers else None, paragraphs=[] if tiers else [("No membership tiers: everyone "
                                                         "opens at the public start.")]))
    cap_lines = [Item(f"Current cap: {row.cap} units ({row.remaining} not yet held or sold), "
                      f"{drop.per_person_limit} per person.")]
    if suggested is not None:
        verdict = ("matches" if abs(suggested - row.cap) <= max(1, row.cap // 10) else
                   "is below" if row.cap < suggested else "is above")
        cap_lines.append(Item(f"Demand signal: {source}: suggests {suggested} units; the "
                              f"current cap {verdict} it."))
        if verdict == "is below":
            cap_lines.append(Item(f"To change it: `dropline drops restock {drop.slug} --units "
                                  f"{max(suggested - row.cap, 1)}` (raises only)."))
    else:
        cap_lines.append(Item(f"Demand signal: {source}."))
    cap_lines.append(Item(f"Waitlist for this drop now: {waitlist} (opens only once it sells "
                          "out; returned holds go to it first)."))
    doc.sections.append(Section("Cap and waitlist", items=cap_lines))

    days = sorted({figures.local_day(start), figures.local_day(start + timedelta(days=1))})
    plan_rows, capacity = [], 0
    for day in days:
        by_hub: dict[str, list[int]] = {}
        for w in figures.delivery_day(session, day=day).windows:
            by_hub.setdefault(w.hub_name, [0, 0, 0])
            by_hub[w.hub_name][0] += 1
            by_hub[w.hub_name][1] += w.capacity
            by_hub[w.hub_name][2] += w.booked
        for hub, (count, cap, booked) in sorted(by_hub.items()):
            plan_rows.append([f"{day:%a %d %b}", hub, str(count), str(cap), str(booked)])
            capacity += cap - booked
    doc.facts["window_capacity"] = capacity
    fulfil = Section("Fulfilment plan", table=Table(
        ["day", "hub", "windows", "capacity", "booked"], plan_rows) if plan_rows else None)
    if plan_rows:
        fulfil.paragraphs.append(
            f"{capacity} free window places over the drop's first two days against a cap of "
            f"{row.cap}: " + ("enough for every unit to go by hub." if capacity >= row.cap
                              else "the rest ships centrally from the warehouse."))
    else:
        fulfil.paragraphs.append(
            f"No delivery windows yet on {days[0]:%d %b}: create them, e.g. `dropline "
            f"fulfilment windows create --hub <code> --day {days[0]:%Y-%m-%d}`; otherwise "
            "every order ships centrally.")
    doc.sections.append(fulfil)
    doc.sections.append(Section("Post-drop review", items=[
        Item("Sell-through and time to sell out (report: sell_through, time_to_sell_out)",
             done=False),
        Item("Waiting-room conversion: buyers / joined; admitted who did not buy", done=False),
        Item("Expired holds and payment failures: were holds too short?", done=False),
        Item("Bot flags (shared IPs, shared cards) and orders that bypassed the queue",
             done=False),
        Item("Waitlist unserved: feed it into the next drop's cap", done=False),
        Item("Deliveries: windows full? orders shipped centrally that a hub could take?",
             done=False),
    ]))
    return doc


# --------------------------------------------------------------------------- decision tree


def decision_tree(session: Session, *, clock: Clock, currency: str) -> Document:
    rules = load_rules(session)
    used = Counter(dict(session.execute(select(FulfilmentDecisionRow.rule, func.count())
                                        .group_by(FulfilmentDecisionRow.rule)).all()))
    enabled = [r for r in rules if r.enabled]
    doc = Document("decision-tree", PLAYBOOKS["decision-tree"],
                   f"{len(enabled)} rules configured (of {len(rules)}); "
                   f"{sum(used.values())} orders decided so far. Generated from the rules the "
                   "checkout runs, in its order.",
                   facts={"rules": [r.name for r in enabled],
                          "max_premium": {r.name: r.max_premium_amount for r in enabled},
                          "decisions": dict(used)})
    steps = tree_steps(rules, currency)
    tree = [Item(FILTER_TEXT)]
    for rule, step in zip(enabled, steps, strict=True):
        tree.append(Item(step.question, [
            Item(f"yes → {step.outcome} (decided {used.get(rule.name, 0)} orders so far)",
                 [Item(f"if {step.fallthrough}: go on to the next step")]),
            Item("no → next step")]))
    tree.append(Item(f"{FALLBACK_TEXT} (decided {_fallbacks(used, enabled)} orders so far)"))
    doc.sections.append(Section("The tree", items=tree, ordered=True, notes=[NOTHING_TEXT]))
    doc.sections.append(Section("Picture", svg=tree_svg(rules, title=doc.title,
                                                        currency=currency)))
    doc.sections.append(Section("Rules as configured", table=Table(
        ["#", "rule", "reads", "enabled"],
        [[str(i), r.name, describe_rule(r, currency), "yes" if r.enabled else "no"]
         for i, r in enumerate(rules, 1)])))
    return doc


def _fallbacks(used: Counter[str], enabled: list) -> int:  # type: ignore[type-arg]
    names = {r.name for r in enabled}
    return sum(n for rule, n in used.items() if rule not in names)


BUILDERS: dict[str, Callable[..., Document]] = {
    "cohort-map": cohort_map, "drop-runbook": drop_runbook, "decision-tree": decision_tree}


def build(name: str, session: Session, *, clock: Clock, currency: str) -> Document:
    if name not in BUILDERS:
        raise NotFound(f"no playbook {name!r}; one of {', '.join(BUILDERS)}")
    return BUILDERS[name](session, clock=clock, currency=currency)
