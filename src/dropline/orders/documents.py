"""Printed documents of a shipment: the packing slip (A4) and the 4x6 inch parcel label with
a Code 128 barcode of its tracking number, as PDF bytes (ReportLab).

ReportLab is a rendering library with no outside calls, so it is used here, by the domain,
rather than behind an adapter. ``shipment_document`` reads what a document shows; the
renderers take only that plain data. Pages are written uncompressed: the files stay small
(a page of text) and their text is searchable with ``grep`` or ``pdftotext``."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import A4, inch
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.orm import Session

from dropline.errors import NotFound
from dropline.orders.models import Order, Shipment
from dropline.orders.shipments import order_shipments

__all__ = ["ShipmentDocument", "label_pdf", "packing_slip_pdf", "shipment_document"]

LABEL_SIZE = (4 * inch, 6 * inch)


@dataclass(frozen=True)
class ShipmentDocument:
    shop_name: str
    order_id: int
    shipment_id: int
    parcel: int  # this parcel's number among the order's, from 1
    parcels: int
    ship_from: str
    ship_to: dict[str, Any]
    lines: list[tuple[str, str, int]]  # (sku, description, units)
    carrier: str
    tracking_number: str | None


def shipment_document(session: Session, *, shipment_id: int, shop_name: str
                      ) -> ShipmentDocument:
    shipment = session.get(Shipment, shipment_id)
    if shipment is None:
        raise NotFound(f"shipment {shipment_id} not found")
    order = session.get(Order, shipment.order_id)
    assert order is not None
    views = order_shipments(session, order.id)
    index = next(i for i, view in enumerate(views) if view.shipment.id == shipment_id)
    view = views[index]
    return ShipmentDocument(
        shop_name=shop_name, order_id=order.id, shipment_id=shipment.id, parcel=index + 1,
        parcels=len(views), ship_from=view.location_code, ship_to=dict(order.shipping_address),
        lines=[(line.sku, f"{line.product_name} · {line.variant_name}", units)
               for line, units in view.lines if units],
        carrier=shipment.carrier, tracking_number=shipment.tracking_number)


def _address_lines(address: dict[str, Any]) -> list[str]:
    keys = ("name", "line1", "line2", "city", "postcode", "country")
    return [str(address[k]) for k in keys if address.get(k)]


def _canvas(buffer: io.BytesIO, size: tuple[float, float], title: str) -> Canvas:
    canvas = Canvas(buffer, pagesize=size, pageCompression=0, invariant=1)
    canvas.setTitle(title)
    return canvas


def packing_slip_pdf(doc: ShipmentDocument) -> bytes:
    """One A4 page: who it is for, what is in the parcel, and which parcel of how many."""
    buffer = io.BytesIO()
    canvas = _canvas(buffer, A4, f"Packing slip, order {doc.order_id}")
    width, height = A4
    y = height - 60
    canvas.setFont("Helvetica-Bold", 18)
    canvas.drawString(50, y, doc.shop_name)
    canvas.setFont("Helvetica", 11)
    canvas.drawRightString(width - 50, y, f"Packing slip · Order {doc.order_id}")
    y -= 18
    canvas.drawRightString(width - 50, y, f"Parcel {doc.parcel} of {doc.parcels} "
                                          f"(shipment {doc.shipment_id}) from {doc.ship_from}")
    y -= 40
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(50, y, "Ship to")
    canvas.setFont("Helvetica", 11)
    for text in _address_lines(doc.ship_to):
        y -= 15
        canvas.drawString(50, y, text)
    y -= 40
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(50, y, "SKU")
    canvas.drawString(190, y, "Item")
    canvas.drawRightString(width - 50, y, "Units")
    canvas.setFont("Helvetica", 11)
    for sku, description, units in doc.lines:
        y -= 18
        canvas.drawString(50, y, sku)
        canvas.drawString(190, y, description[:60])
        canvas.drawRightString(width - 50, y, str(units))
    y -= 30
    canvas.drawString(50, y, f"Units in this parcel: {sum(u for _, _, u in doc.lines)}")
    if doc.tracking_number:
        y -= 18
        canvas.drawString(50, y, f"Carrier: {doc.carrier} · tracking {doc.tracking_number}")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def label_pdf(doc: ShipmentDocument) -> bytes:
    """A 4x6 inch label: sender, recipient, order and parcel number, and the tracking number
    as a Code 128 barcode (the order's reference when it has no tracking number yet)."""
    buffer = io.BytesIO()
    canvas = _canvas(buffer, LABEL_SIZE, f"Label, order {doc.order_id}")
    width, height = LABEL_SIZE
    y = height - 24
    canvas.setFont("Helvetica", 8)
    canvas.drawString(14, y, f"From: {doc.shop_name} ({doc.ship_from})")
    y -= 28
    canvas.setFont("Helvetica-Bold", 9)
    canvas.drawString(14, y, "TO")
    canvas.setFont("Helvetica-Bold", 14)
    for text in _address_lines(doc.ship_to):
        y -= 18
        canvas.drawString(14, y, text[:34])
    y -= 30
    canvas.setFont("Helvetica", 10)
    canvas.drawString(14, y, f"Order {doc.order_id} · parcel {doc.parcel}/{doc.parcels}")
    code = doc.tracking_number or f"DL-ORDER-{doc.order_id}-{doc.shipment_id}"
    barcode = Code128(code, barHeight=0.9 * inch, barWidth=1.1)
    barcode.drawOn(canvas, max(4.0, (width - barcode.width) / 2), 60)
    canvas.setFont("Helvetica", 10)
    canvas.drawCentredString(width / 2, 44, f"{doc.carrier or 'carrier'} {code}")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
