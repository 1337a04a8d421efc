"""The console's Products area: a searchable, paginated list; a form to create a product with
its first variant; and each product's page, where its details, tax class, variants (price,
grade and disclosure), stock per location (hand adjustments with a reason, kept in the stock
ledger), graded serials and images (upload, reorder, remove) are edited.

Every form is a plain POST carrying the CSRF token (``csrf_field()``), guarded by the scope
it needs (``staff_with``), and calls the same services as the JSON API and the CLI. A refused
form is the page again with the message beside its field and the typed values kept (status
422/409/404); an accepted one redirects (303) with a one-line message."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from dropline.catalog import service
from dropline.catalog.models import ConditionGrade, Product, ProductStatus
from dropline.catalog.rules import DEFAULT_DISCLOSURES, GRADE_LABELS, STOCK_REASONS
from dropline.errors import DomainError, InvalidInput
from dropline.media.models import MediaOwner
from dropline.media.pages import add_image_forms, image_rows
from dropline.media.views import image_views
from dropline.risk.models import SerialUnit
from dropline.risk.returns import register_serials
from dropline.schemas import IdPath
from dropline.services import Services
from dropline.tax.rules import TaxClass
from dropline.tax.service import set_tax_class, tax_classes_of
from dropline.web.admin import AdminViewer, render, staff_with
from dropline.web.deps import ServicesDep
from dropline.web.forms import (
    FormError,
    done,
    from_domain,
    parse_amount,
    parse_choice,
    parse_int,
)
from dropline.web.navigation import NavItem

router = APIRouter(include_in_schema=False)
PATH = "/admin/products"
NAV_ITEMS = (NavItem("Products", PATH, scope="catalog:read"),)
PAGE_SIZE = 25

Reader = Annotated[AdminViewer, staff_with("catalog:read")]
Writer = Annotated[AdminViewer, staff_with("catalog:write")]
# Every field arrives as text and is parsed here, so a bad value is a message beside its
# field (never the framework's bare 422).
Text = Annotated[str, Form(max_length=200)]
LongText = Annotated[str, Form(max_length=20_000)]
Done = Annotated[str, Query(max_length=200)]


# The choices of the forms' selects, as (value, label) pairs.
OPTIONS = {
    "status_options": [(s.value, s.value) for s in ProductStatus],
    "tax_options": [(t.value, t.value) for t in TaxClass],
    "grade_options": [(g.value, label) for g, label in GRADE_LABELS.items()],
    "reason_options": list(STOCK_REASONS.items()),
}


# --- the list -----------------------------------------------------------------------------


@router.get(PATH, response_class=HTMLResponse)
def products_page(request: Request, viewer: Reader, services: ServicesDep,
                  q: Annotated[str, Query(max_length=100)] = "",
                  status: Annotated[str, Query(max_length=16)] = "",
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                  done: Done = "") -> HTMLResponse:
    wanted = ProductStatus(status) if status in ProductStatus._value2member_map_ else None
    with services.db.transaction() as session:
        products, total = service.search_products(session, text=q, status=wanted,
                                                  limit=PAGE_SIZE,
                                                  offset=(page - 1) * PAGE_SIZE)
        variants = service.variants_of(session, [p.id for p in products])
        stock = service.available_stock(session, [v.id for vs in variants.values() for v in vs])
        images = image_views(session, MediaOwner.product, [p.id for p in products],
                             base_url=services.settings.media.public_url)
        rows = [{"product": p, "variants": variants[p.id],
                 "stock": sum(stock[v.id] for v in variants[p.id]),
                 "image": (images[p.id] or [None])[0]} for p in products]
    pages = max(1, -(-total // PAGE_SIZE))

    def link(to: int) -> str:
        return f"{PATH}?" + urlencode({k: v for k, v in (("q", q), ("status", status),
                                                         ("page", str(to))) if v})

    return render(request, "catalog/products.html", viewer, rows=rows, q=q, status=status,
                  statuses=list(ProductStatus), total=total, page=page, pages=pages,
                  prev_link=link(page - 1) if page > 1 else None,
                  next_link=link(page + 1) if page < pages else None, message=done)


# --- create -------------------------------------------------------------------------------


def _new_form(request: Request, viewer: AdminViewer, services: Services, *,
              values: dict[str, str], error: FormError | None = None) -> HTMLResponse:
    with services.db.transaction() as session:
        families = service.list_families(session)
    return render(request, "catalog/product_new.html", viewer,
                  status_code=error.status if error else 200, values=values,
                  error=error.message if error else "", field=error.field if error else "",
                  families=families, currency=services.settings.shop.currency, **OPTIONS)


@router.get(PATH + "/new", response_class=HTMLResponse)
def new_product_form(request: Request, viewer: Writer, services: ServicesDep) -> HTMLResponse:
    return _new_form(request, viewer, services, values={"status": "draft", "grade": "new",
                                                        "tax_class": "standard"})


@router.post(PATH + "/new", response_class=HTMLResponse)
def create_product(request: Request, viewer: Writer, services: ServicesDep,
                   name: Text = "", slug: Text = "", family: Text = "",
                   description: LongText = "", status: Text = "draft",
                   tax_class: Text = "standard", sku: Text = "", variant_name: Text = "",
                   price: Text = "", grade: Text = "new", disclosure: LongText = "",
                   weight_grams: Text = "0") -> Response:
    values = {"name": name, "slug": slug, "family": family, "description": description,
              "status": status, "tax_class": tax_class, "sku": sku,
              "variant_name": variant_name, "price": price, "grade": grade,
              "disclosure": disclosure, "weight_grams": weight_grams}
    try:
        if not name.strip():
            raise FormError("a product needs a name", field="name")
        family_slug = service.slugify(family) if family.strip() else ""
        if not family_slug:
            raise FormError("choose or type a family (e.g. candles)", field="family")
        if not sku.strip():
            raise FormError("the first variant needs a SKU", field="sku")
        spec = service.VariantSpec(
            sku=sku.strip(), name=variant_name.strip() or "Standard",
            price_amount=parse_amount(price, "price"),
            currency=services.settings.shop.currency,
            condition_grade=parse_choice(grade, ConditionGrade, "grade"),
            condition_disclosure=disclosure.strip(),
            weight_grams=parse_int(weight_grams or "0", "weight_grams", low=0, high=1_000_000))
        with services.db.transaction() as session:
            try:
                product = service.create_product(
                    session, clock=services.clock, name=name.strip(),
                    slug=service.slugify(slug) if slug.strip() else None,
                    family_slug=family_slug, description=description,
                    status=parse_choice(status, ProductStatus, "status"), variants=[spec])
                set_tax_class(session, product_id=product.id,
                              tax_class=parse_choice(tax_class, TaxClass, "tax_class"))
            except DomainError as exc:
                field = {"condition_disclosure": "disclosure"}.get(
                    str(exc.extensions.get("field", "")), str(exc.extensions.get("field", "")))
                raise FormError(exc.detail, field=field, status=exc.status) from None
            product_id = product.id
    except FormError as error:
        return _new_form(request, viewer, services, values=values, error=error)
    return done(f"{PATH}/{product_id}", "Product created. Add images and stock below.")


# --- one product ---------------------------------------------------------------------------


def _product_context(session: Session, services: Services, product: Product
                     ) -> dict[str, Any]:
    variants = service.variants_of(session, [product.id])[product.id]
    ids = [v.id for v in variants]
    families = service.family_names(session, [product.family_id])
    serials = list(session.scalars(select(SerialUnit).where(SerialUnit.variant_id.in_(ids))
                                   .order_by(SerialUnit.id.desc()).limit(50))) if ids else []
    locations = service.list_locations(session)
    return {
        "variant_options": [(v.id, f"{v.sku} · {v.name}") for v in variants],
        "location_options": [(loc.code, f"{loc.name} ({loc.code})") for loc in locations],
        "sku_of": {v.id: v.sku for v in variants}, "reason_labels": STOCK_REASONS,
        "product": product, "variants": variants, "family": families[product.family_id][0],
        "families": service.list_families(session),
        "tax_class": tax_classes_of(session, [product.id])[product.id],
        "levels": service.stock_levels(session, ids),
        "ledger": service.stock_ledger(session, ids, limit=20),
        "serials": serials,
        "images": image_rows(session, services, MediaOwner.product, product.id),
    }


def _product_page(request: Request, viewer: AdminViewer, services: Services, product_id: int,
                  *, error: FormError | None = None, values: dict[str, str] | None = None,
                  message: str = "") -> HTMLResponse:
    with services.db.transaction() as session:
        context = _product_context(session, services,
                                   service.get_product(session, product_id))
    return render(request, "catalog/product.html", viewer,
                  status_code=error.status if error else 200, message=message,
                  **(error.context() if error else {}), values=values or {},
                  disclosures=DEFAULT_DISCLOSURES, currency=services.settings.shop.currency,
                  **OPTIONS, **context)


@router.get(PATH + "/{product_id}", response_class=HTMLResponse)
def product_page(request: Request, product_id: IdPath, viewer: Reader,
                 services: ServicesDep, done: Done = "") -> HTMLResponse:
    return _product_page(request, viewer, services, product_id, message=done)


@router.post(PATH + "/{product_id}", response_class=HTMLResponse)
def update_product(request: Request, product_id: IdPath, viewer: Writer,
                   services: ServicesDep, name: Text = "", family: Text = "",
                   description: LongText = "", status: Text = "",
                   tax_class: Text = "") -> Response:
    values = {"name": name, "family": family, "description": description, "status": status,
              "tax_class": tax_class}
    try:
        family_slug = service.slugify(family) if family.strip() else ""
        if not family_slug:
            raise FormError("choose or type a family", field="family", form="details")
        chosen = parse_choice(status, ProductStatus, "status", form="details")
        taxed = parse_choice(tax_class, TaxClass, "tax_class", form="details")
        with services.db.transaction() as session:
            try:
                service.update_product(session, clock=services.clock, product_id=product_id,
                                       name=name, description=description,
                                       family_slug=family_slug, status=chosen)
                set_tax_class(session, product_id=product_id, tax_class=taxed)
            except DomainError as exc:
                raise from_domain(exc, "details") from None
    except FormError as error:
        return _product_page(request, viewer, services, product_id, error=error, values=values)
    return done(f"{PATH}/{product_id}", "Details saved.")


def _variant_values(prefix: str, **fields: str) -> dict[str, str]:
    return {f"{prefix}{k}": v for k, v in fields.items()}


@router.post(PATH + "/{product_id}/variants", response_class=HTMLResponse)
def add_variant(request: Request, product_id: IdPath, viewer: Writer, services: ServicesDep,
                sku: Text = "", variant_name: Text = "", price: Text = "",
                grade: Text = "new", disclosure: LongText = "",
                weight_grams: Text = "0") -> Response:
    values = _variant_values("new_", sku=sku, variant_name=variant_name, price=price,
                             grade=grade, disclosure=disclosure, weight_grams=weight_grams)
    form = "new-variant"
    try:
        if not sku.strip():
            raise FormError("a variant needs a SKU", field="sku", form=form)
        spec = service.VariantSpec(
            sku=sku.strip()[:64], name=variant_name.strip() or "Standard",
            price_amount=parse_amount(price, "price", form=form),
            currency=services.settings.shop.currency,
            condition_grade=parse_choice(grade, ConditionGrade, "grade", form=form),
            condition_disclosure=disclosure.strip(),
            weight_grams=parse_int(weight_grams or "0", "weight_grams", low=0, high=1_000_000,
                              form=form))
        with services.db.transaction() as session:
            try:
                service.add_variant(session, clock=services.clock, product_id=product_id,
                                    spec=spec)
            except DomainError as exc:
                error = from_domain(exc, form)
                error.field = {"condition_disclosure": "disclosure"}.get(error.field,
                                                                         error.field)
                raise error from None
    except FormError as error:
        return _product_page(request, viewer, services, product_id, error=error, values=values)
    return done(f"{PATH}/{product_id}", f"Variant {sku.strip()} added.", "#variants")


def _variant_of(session: Session, product_id: int, variant_id: int) -> Any:
    variant = service.get_variant(session, variant_id)
    if variant.product_id != product_id:
        raise InvalidInput(f"variant {variant_id} is not a variant of this product")
    return variant


@router.post(PATH + "/{product_id}/variants/{variant_id}", response_class=HTMLResponse)
def update_variant(request: Request, product_id: IdPath, variant_id: IdPath, viewer: Writer,
                   services: ServicesDep, variant_name: Text = "", price: Text = "",
                   grade: Text = "new", disclosure: LongText = "", weight_grams: Text = "0",
                   final_sale: Text = "", active: Text = "") -> Response:
    form = f"variant-{variant_id}"
    values = _variant_values(f"v{variant_id}_", variant_name=variant_name, price=price,
                             grade=grade, disclosure=disclosure, weight_grams=weight_grams,
                             final_sale=final_sale, active=active)
    try:
        amount = parse_amount(price, "price", form=form)
        chosen = parse_choice(grade, ConditionGrade, "grade", form=form)
        weight = parse_int(weight_grams or "0", "weight_grams", low=0, high=1_000_000, form=form)
        with services.db.transaction() as session:
            try:
                _variant_of(session, product_id, variant_id)
                service.update_variant(
                    session, clock=services.clock, variant_id=variant_id, name=variant_name,
                    price_amount=amount, condition_grade=chosen, condition_disclosure=disclosure,
                    weight_grams=weight, final_sale=bool(final_sale), active=bool(active),
                    actor=f"admin:{viewer.id}")
            except DomainError as exc:
                error = from_domain(exc, form)
                error.field = {"condition_disclosure": "disclosure",
                               "price_amount": "price"}.get(error.field, error.field)
                raise error from None
    except FormError as error:
        return _product_page(request, viewer, services, product_id, error=error, values=values)
    return done(f"{PATH}/{product_id}", "Variant saved.", f"#variant-{variant_id}")


@router.post(PATH + "/{product_id}/stock", response_class=HTMLResponse)
def adjust_stock(request: Request, product_id: IdPath, viewer: Writer, services: ServicesDep,
                 variant_id: Text = "", location: Text = "", delta: Text = "",
                 reason: Text = "", note: Text = "") -> Response:
    form = "stock"
    values = {"stock_variant_id": variant_id, "stock_location": location,
              "stock_delta": delta, "stock_reason": reason, "stock_note": note}
    try:
        vid = parse_int(variant_id, "variant_id", low=1, high=2**53, form=form)
        change = parse_int(delta, "delta", low=-10_000_000, high=10_000_000, form=form)
        if reason not in STOCK_REASONS:
            raise FormError("choose a reason", field="reason", form=form)
        with services.db.transaction() as session:
            try:
                _variant_of(session, product_id, vid)
                adjustment = service.adjust_stock(
                    session, clock=services.clock, location_code=location, variant_id=vid,
                    delta=change, reason=reason, note=note, actor=f"admin:{viewer.id}")
                after = adjustment.on_hand_after
            except DomainError as exc:
                error = from_domain(exc, form)
                error.field = error.field or "location"
                raise error from None
    except FormError as error:
        return _product_page(request, viewer, services, product_id, error=error, values=values)
    return done(f"{PATH}/{product_id}", f"Stock at {location}: {after} on hand.", "#stock")


@router.post(PATH + "/{product_id}/serials", response_class=HTMLResponse)
def add_serials(request: Request, product_id: IdPath, viewer: Writer, services: ServicesDep,
                variant_id: Text = "", location: Text = "",
                serials: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    form = "serials"
    values = {"serial_variant_id": variant_id, "serial_location": location,
              "serials": serials}
    listed = [s.strip() for s in serials.replace(",", "\n").splitlines() if s.strip()]
    try:
        vid = parse_int(variant_id, "variant_id", low=1, high=2**53, form=form)
        if not listed or len(listed) > 500 or any(len(s) > 64 for s in listed):
            raise FormError("list 1 to 500 serials (each up to 64 characters), one a line",
                            field="serials", form=form)
        with services.db.transaction() as session:
            try:
                _variant_of(session, product_id, vid)
                register_serials(session, clock=services.clock, variant_id=vid,
                                 serials=listed, location_code=location)
            except DomainError as exc:
                error = from_domain(exc, form)
                error.field = error.field or ("location" if exc.status == 404 else "serials")
                raise error from None
    except FormError as error:
        return _product_page(request, viewer, services, product_id, error=error, values=values)
    return done(f"{PATH}/{product_id}", f"{len(listed)} serial(s) registered.", "#serials")


# --- images: the shared console image forms ---------------------------------------------


def _page_with_error(request: Request, viewer: AdminViewer, services: Services, owner_id: int,
                     error: FormError, values: dict[str, str]) -> Response:
    return _product_page(request, viewer, services, owner_id, error=error, values=values)


def _product_name(session: Session, product_id: int) -> str:
    return service.get_product(session, product_id).name


add_image_forms(router, path=PATH + "/{owner_id}", back=PATH + "/{owner_id}",
                kind=MediaOwner.product, page=_page_with_error, title=_product_name)
