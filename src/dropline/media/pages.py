"""The console's image forms, one implementation for every owner (a product, a drop): upload
(multipart, through the media flow the API uses), move up or down (the first image is the
main one; no JavaScript needed), and removal after a confirmation page.

``add_image_forms`` registers the routes under an owner's console page (``/admin/products/
{owner_id}/media...``); a refused upload renders the owner's page again through the
``page`` callback, with the message beside the file field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from dropline.errors import DomainError, InvalidInput
from dropline.media import flows, service
from dropline.media.models import MediaAsset, MediaOwner
from dropline.media.rules import Limits
from dropline.media.views import image_views
from dropline.schemas import IdPath
from dropline.services import Services
from dropline.web.admin import AdminViewer, render, staff_with
from dropline.web.deps import ServicesDep
from dropline.web.forms import FormError, done, from_domain

MediaWriter = Annotated[AdminViewer, staff_with("media:write")]
FORM = "media"  # the image forms' name on the owner's page

# (request, viewer, services, owner_id, error, values) -> the owner's page, refusal shown
OwnerPage = Callable[[Request, AdminViewer, Services, int, FormError, dict[str, str]],
                     Response]


def limits_of(services: Services) -> Limits:
    media = services.settings.media
    return Limits(max_bytes=media.max_bytes, max_side=media.max_side, min_side=media.min_side)


def image_rows(session: Session, services: Services, kind: MediaOwner, owner_id: int
               ) -> list[tuple[MediaAsset, Any]]:
    """An owner's images in order, each with its view (what ``picture()`` draws)."""
    assets = service.images_of(session, kind, [owner_id])[owner_id]
    views = image_views(session, kind, [owner_id],
                        base_url=services.settings.media.public_url)[owner_id]
    return list(zip(assets, views, strict=True))


def _own_image(session: Session, kind: MediaOwner, owner_id: int, media_id: int
               ) -> MediaAsset:
    asset = service.get_image(session, media_id)
    if asset.owner_kind is not kind or asset.owner_id != owner_id:
        raise InvalidInput(f"image {media_id} is not one of this {kind.value}'s images")
    return asset


def add_image_forms(router: APIRouter, *, path: str, back: str, kind: MediaOwner,
                    page: OwnerPage, title: Callable[[Session, int], str]) -> None:
    """Image routes under ``path`` (with ``{owner_id}``); ``back`` is the owner's page
    (formatted with ``owner_id``) that accepted forms return to."""

    def back_to(owner_id: int) -> str:
        return back.format(owner_id=owner_id)

    @router.post(path + "/media", response_class=HTMLResponse)
    def upload_image(request: Request, owner_id: IdPath, viewer: MediaWriter,
                     services: ServicesDep, file: Annotated[UploadFile | None, File()] = None,
                     alt: Annotated[str, Form(max_length=300)] = "") -> Response:
        try:
            limit = services.settings.media.max_bytes
            data = file.file.read(limit + 1) if file is not None else b""
            if not data:
                raise FormError("choose an image file", field="file", form=FORM)
            if len(data) > limit:
                raise FormError(f"the file is larger than {limit:,} bytes", field="file",
                                form=FORM)
            if not alt.strip():
                raise FormError("describe the image for people who cannot see it",
                                field="alt", form=FORM)
            try:
                flows.add_image(services.db, services.media, clock=services.clock,
                                limits=limits_of(services), owner_kind=kind,
                                owner_ref=owner_id, data=data, alt=alt.strip())
            except DomainError as exc:
                raise from_domain(exc, FORM, fields={}, default_field="file") from None
        except FormError as error:
            if error.field not in ("file", "alt"):
                error.field = "file"
            return page(request, viewer, services, owner_id, error, {"alt": alt})
        return done(back_to(owner_id), "Image added.", "#images")

    @router.post(path + "/media/{media_id}/move", response_class=HTMLResponse)
    def move_image(request: Request, owner_id: IdPath, media_id: IdPath, viewer: MediaWriter,
                   services: ServicesDep,
                   direction: Annotated[str, Form(max_length=8)] = "") -> Response:
        steps = {"up": -1, "down": 1}.get(direction)
        try:
            if steps is None:
                raise FormError("move an image up or down", form=FORM)
            with services.db.transaction() as session:
                try:
                    _own_image(session, kind, owner_id, media_id)
                    service.move_image(session, clock=services.clock, media_id=media_id,
                                       steps=steps)
                except DomainError as exc:
                    raise from_domain(exc, FORM) from None
        except FormError as error:
            error.field = ""
            return page(request, viewer, services, owner_id, error, {})
        return done(back_to(owner_id), "Images reordered.", "#images")

    @router.get(path + "/media/{media_id}/remove", response_class=HTMLResponse)
    def confirm_remove_image(request: Request, owner_id: IdPath, media_id: IdPath,
                             viewer: MediaWriter, services: ServicesDep) -> HTMLResponse:
        """The confirmation a removal needs (a page, so it works without JavaScript)."""
        with services.db.transaction() as session:
            _own_image(session, kind, owner_id, media_id)
            view = next(v for a, v in image_rows(session, services, kind, owner_id)
                        if a.id == media_id)
            name = title(session, owner_id)
        return render(request, "admin/confirm_remove_image.html", viewer, view=view,
                      owner_name=name, back=back_to(owner_id), action=request.url.path)

    @router.post(path + "/media/{media_id}/remove", response_class=HTMLResponse)
    def remove_image(request: Request, owner_id: IdPath, media_id: IdPath,
                     viewer: MediaWriter, services: ServicesDep,
                     confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
        if confirm != "yes":  # only the confirmation page's button removes
            return RedirectResponse(request.url.path, status_code=303)
        try:
            with services.db.transaction() as session:
                _own_image(session, kind, owner_id, media_id)
        except DomainError as exc:
            return page(request, viewer, services, owner_id, from_domain(exc, FORM), {})
        flows.remove_image(services.db, services.media, clock=services.clock,
                           media_id=media_id)
        return done(back_to(owner_id), "Image removed.", "#images")
