"""The console's drop forms: create a drop (variants, cap, per-person limit, times, story),
and on each drop's edit page reschedule it, rewrite its story (Markdown) and the notes beside
its variants, restock it, and manage its images. The live drop page and the console's
sell-through page stay as they are; these forms call the same services as the JSON API and
the CLI (``drops.service``, ``drops.stories``), under ``drops:manage``.

Times are typed as the shop's wall clock (London) and stored as aware UTC. After a
reschedule or a restock has committed, the drop's hot state is forgotten (``forget_drop``),
as the API does, so the next purchase sees the new facts."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.catalog.models import Product, Variant
from dropline.catalog.service import list_locations, slugify
from dropline.drops import service as drops
from dropline.drops import stories
from dropline.drops.crowd.wiring import forget_drop
from dropline.drops.models import SHARED_POOL, Drop
from dropline.drops.story import MAX_NOTE_CHARS, MAX_STORY_CHARS, render_story
from dropline.errors import DomainError
from dropline.media.models import MediaOwner
from dropline.media.pages import add_image_forms, image_rows
from dropline.schemas import IdPath
from dropline.services import Services
from dropline.web.admin import AdminViewer, render, staff_with
from dropline.web.deps import ServicesDep
from dropline.web.forms import FormError, done, from_domain, parse_int, parse_local_time
from dropline.web.templating import SHOP_TIMEZONE

router = APIRouter(include_in_schema=False)
PATH = "/admin/drops"
Manager = Annotated[AdminViewer, staff_with("drops:manage")]
Text = Annotated[str, Form(max_length=200)]
Story = Annotated[str, Form(max_length=MAX_STORY_CHARS)]
Done = Annotated[str, Query(max_length=200)]
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what a datetime-local input shows and sends
MAX_VARIANT_CHOICES = 300


def _variant_choices(session: Session) -> list[tuple[int, str]]:
    """Active variants, newest products first, as (id, "Product · variant (SKU)")."""
    rows = session.execute(
        select(Variant.id, Variant.sku, Variant.name, Product.name)
        .join(Product, Product.id == Variant.product_id).where(Variant.active.is_(True))
        .order_by(Product.id.desc(), Variant.id).limit(MAX_VARIANT_CHOICES))
    return [(vid, f"{product} · {name} ({sku})") for vid, sku, name, product in rows]


def _local(value: Any) -> str:
    return value.astimezone(SHOP_TIMEZONE).strftime(LOCAL_INPUT)


# --- create -------------------------------------------------------------------------------


def _new_page(request: Request, viewer: AdminViewer, services: Services, *,
              values: dict[str, Any], error: FormError | None = None) -> HTMLResponse:
    with services.db.transaction() as session:
        choices = _variant_choices(session)
        locations = [("", "no stock location")] + [
            (loc.code, f"{loc.name} ({loc.code})") for loc in list_locations(session)]
    return render(request, "console/drop_new.html", viewer,
                  status_code=error.status if error else 200, values=values,
                  choices=choices, location_options=locations, story_limit=MAX_STORY_CHARS,
                  **(error.context() if error else {}))


@router.get(PATH + "/new", response_class=HTMLResponse)
def new_drop_form(request: Request, viewer: Manager, services: ServicesDep) -> HTMLResponse:
    start = services.clock.now().replace(minute=0, second=0, microsecond=0)
    return _new_page(request, viewer, services, values={
        "starts_at": _local(start + timedelta(days=7)),
        "ends_at": _local(start + timedelta(days=9)), "cap": "100",
        "per_person_limit": "2", "early_access_minutes": "0", "queue_enabled": "yes",
        "variant_ids": []})


@router.post(PATH + "/new", response_class=HTMLResponse)
def create_drop(request: Request, viewer: Manager, services: ServicesDep,
                name: Text = "", slug: Text = "",
                variant_ids: Annotated[list[str] | None, Form()] = None,
                cap: Text = "", per_person_limit: Text = "", starts_at: Text = "",
                ends_at: Text = "", early_access_minutes: Text = "0",
                queue_enabled: Text = "", location: Text = "", story: Story = "") -> Response:
    chosen = [v[:20] for v in (variant_ids or [])[:100]]
    values = {"name": name, "slug": slug, "variant_ids": chosen, "cap": cap,
              "per_person_limit": per_person_limit, "starts_at": starts_at,
              "ends_at": ends_at, "early_access_minutes": early_access_minutes,
              "queue_enabled": queue_enabled, "location": location, "story": story}
    try:
        if not name.strip():
            raise FormError("a drop needs a name", field="name")
        ids = sorted({parse_int(v, "variant_ids", low=1, high=2**53) for v in chosen})
        if not ids:
            raise FormError("choose at least one variant to sell", field="variant_ids")
        schedule = drops.DropSchedule(
            starts_at=parse_local_time(starts_at, "starts_at", timezone=SHOP_TIMEZONE),
            ends_at=parse_local_time(ends_at, "ends_at", timezone=SHOP_TIMEZONE),
            early_access_minutes=parse_int(early_access_minutes or "0",
                                           "early_access_minutes", low=0, high=10_080),
            queue_enabled=bool(queue_enabled))
        units = parse_int(cap, "cap", low=1, high=10_000_000)
        limit = parse_int(per_person_limit, "per_person_limit", low=1, high=1000)
        with services.db.transaction() as session:
            try:
                drop = drops.create_drop(
                    session, clock=services.clock, slug=slugify(slug or name), name=name.strip(),
                    variants=[drops.VariantCap(v) for v in ids], shared_cap=units,
                    per_person_limit=limit, schedule=schedule,
                    location_code=location or None, actor=f"admin:{viewer.id}")
                if story.strip():
                    stories.set_story(session, clock=services.clock, drop_id=drop.id,
                                      story=story)
            except DomainError as exc:
                raise from_domain(exc, fields={"variants": "variant_ids"},
                                  default_field="variant_ids" if exc.status == 404 else ""
                                  ) from None
            drop_id = drop.id
    except FormError as error:
        return _new_page(request, viewer, services, values=values, error=error)
    return done(f"{PATH}/{drop_id}/edit", "Drop scheduled. Add its images below.")


# --- edit: schedule, story, restock, images -------------------------------------------------


def _edit_page(request: Request, viewer: AdminViewer, services: Services, drop_id: int, *,
               error: FormError | None = None, values: dict[str, Any] | None = None,
               message: str = "") -> HTMLResponse:
    with services.db.transaction() as session:
        drop = drops.get_drop(session, drop_id)
        members = drops.drop_variants(session, drop_id)
        names = dict(session.execute(
            select(Variant.id, Variant.sku).where(
                Variant.id.in_([m.variant_id for m in members]))).all())
        remaining = drops.remaining_by_pool(session, drop_id)
        state = drops.state_of(session, clock=services.clock, drop=drop)
        images = image_rows(session, services, MediaOwner.drop, drop_id)
        restock_options = ([("", "the shared cap")] if SHARED_POOL in remaining else []) + [
            (m.variant_id, f"{names[m.variant_id]} (its own cap)") for m in members
            if m.cap is not None]
    return render(request, "console/drop_edit.html", viewer,
                  status_code=error.status if error else 200, message=message, drop=drop,
                  state=state.value, members=members, sku_of=names,
                  cap=drops.cap_of(drop, members), remaining=sum(remaining.values()),
                  restock_options=restock_options, images=images, values=values or {},
                  starts_local=_local(drop.starts_at), ends_local=_local(drop.ends_at),
                  story_html=render_story(drop.story), note_limit=MAX_NOTE_CHARS,
                  **(error.context() if error else {}))


@router.get(PATH + "/{drop_id}/edit", response_class=HTMLResponse)
def edit_drop(request: Request, drop_id: IdPath, viewer: Manager, services: ServicesDep,
              done_: Annotated[str, Query(alias="done", max_length=200)] = "") -> HTMLResponse:
    return _edit_page(request, viewer, services, drop_id, message=done_)


@router.post(PATH + "/{drop_id}/schedule", response_class=HTMLResponse)
def reschedule(request: Request, drop_id: IdPath, viewer: Manager, services: ServicesDep,
               starts_at: Text = "", ends_at: Text = "", early_access_minutes: Text = "0",
               admission_per_minute: Text = "600", queue_enabled: Text = "") -> Response:
    form = "schedule"
    values = {"starts_at": starts_at, "ends_at": ends_at,
              "early_access_minutes": early_access_minutes,
              "admission_per_minute": admission_per_minute, "queue_enabled": queue_enabled}
    try:
        with services.db.transaction() as session:
            drop = drops.get_drop(session, drop_id)
            schedule = drops.DropSchedule(
                starts_at=parse_local_time(starts_at, "starts_at", timezone=SHOP_TIMEZONE,
                                           form=form),
                ends_at=parse_local_time(ends_at, "ends_at", timezone=SHOP_TIMEZONE,
                                         form=form),
                early_access_minutes=parse_int(early_access_minutes or "0",
                                               "early_access_minutes", low=0, high=10_080,
                                               form=form),
                admission_per_minute=parse_int(admission_per_minute, "admission_per_minute",
                                               low=1, high=1_000_000, form=form),
                queue_enabled=bool(queue_enabled), hold_ttl_seconds=drop.hold_ttl_seconds,
                offer_ttl_seconds=drop.offer_ttl_seconds)
            try:
                drops.reschedule_drop(session, clock=services.clock, drop=drop,
                                      schedule=schedule, actor=f"admin:{viewer.id}")
            except DomainError as exc:
                raise from_domain(exc, form) from None
    except FormError as error:
        return _edit_page(request, viewer, services, drop_id, error=error, values=values)
    forget_drop(request.app.state, drop_id)  # committed: the hot state rebuilds from here
    return done(f"{PATH}/{drop_id}/edit", "Schedule saved.", "#schedule")


@router.post(PATH + "/{drop_id}/story", response_class=HTMLResponse)
async def set_story(request: Request, drop_id: IdPath, viewer: Manager,
                    services: ServicesDep) -> Response:
    """The story and one ``note-<variant id>`` field per variant in the drop."""
    form_data = await request.form()
    story = str(form_data.get("story", ""))
    notes = {int(key.removeprefix("note-")): str(value) for key, value in form_data.items()
             if key.startswith("note-") and key[5:].isdigit() and len(key) < 25}
    values = {"story": story, **{f"note-{k}": v for k, v in notes.items()}}
    try:
        with services.db.transaction() as session:
            try:
                stories.set_story(session, clock=services.clock, drop_id=drop_id, story=story,
                                  notes=notes)
            except DomainError as exc:
                raise from_domain(exc, "story", fields={"notes": ""}) from None
    except FormError as error:
        return _edit_page(request, viewer, services, drop_id, error=error, values=values)
    return done(f"{PATH}/{drop_id}/edit", "Story saved.", "#story")


@router.post(PATH + "/{drop_id}/restock", response_class=HTMLResponse)
def restock(request: Request, drop_id: IdPath, viewer: Manager, services: ServicesDep,
            units: Text = "", variant_id: Text = "") -> Response:
    form = "restock"
    values = {"units": units, "variant_id": variant_id}
    try:
        count = parse_int(units, "units", low=1, high=10_000_000, form=form)
        variant = parse_int(variant_id, "variant_id", low=1, high=2**53, form=form) \
            if variant_id.strip() else None
        with services.db.transaction() as session:
            try:
                offers = drops.restock_drop(session, clock=services.clock,
                                            drop=drops.get_drop(session, drop_id), units=count,
                                            variant_id=variant, actor=f"admin:{viewer.id}")
            except DomainError as exc:
                raise from_domain(exc, form, default_field="units") from None
    except FormError as error:
        return _edit_page(request, viewer, services, drop_id, error=error, values=values)
    forget_drop(request.app.state, drop_id)
    return done(f"{PATH}/{drop_id}/edit",
                f"Restocked {count} unit(s); {offers} waitlist offer(s) made.", "#restock")


def _page_with_error(request: Request, viewer: AdminViewer, services: Services, owner_id: int,
                     error: FormError, values: dict[str, str]) -> Response:
    return _edit_page(request, viewer, services, owner_id, error=error, values=values)


def _drop_name(session: Session, drop_id: int) -> str:
    drop = session.get(Drop, drop_id)
    return drop.name if drop is not None else f"Drop {drop_id}"


add_image_forms(router, path=PATH + "/{owner_id}", back=PATH + "/{owner_id}/edit",
                kind=MediaOwner.drop, page=_page_with_error, title=_drop_name)
