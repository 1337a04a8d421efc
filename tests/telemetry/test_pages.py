"""The console's telemetry page and the SVG charts it draws."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from dropline.admin.service import create_admin_user
from dropline.telemetry.charts import Series, bar_chart_svg, heatmap_svg, line_chart_svg
from dropline.telemetry.pages import render_telemetry_html, telemetry_context
from tests.builders import make_location, make_product
from tests.telemetry.support import Shop

PASSWORD = "console password 1"


def test_heatmap_hatches_unobserved_cells_and_escapes_labels():
    svg = heatmap_svg(["<b>2026-01</b>", "2026-02"], ["30 d", "60 d"],
                      [[100.0, 250.0], [80.0, None]], title="Revenue & more")

    ET.fromstring(svg)  # well-formed XML
    assert svg.count('fill="url(#unobserved)"') == 2  # one cell plus the legend swatch
    assert "&lt;b&gt;2026-01&lt;/b&gt;" in svg and "<b>" not in svg
    assert "2026-02, 60 d: not observed yet" in svg
    assert "Revenue &amp; more" in svg


def test_line_and_bar_charts_are_well_formed_and_break_lines_at_missing_values():
    lines = line_chart_svg([1, 2, 3], [Series("a", [1.0, None, 3.0]), Series("b", [2, 2, 2])],
                           title="t", x_label="x", y_label="y")
    bars = bar_chart_svg([("candles", 2_000.0), ("new", None)], title="ceilings")

    ET.fromstring(lines)
    ET.fromstring(bars)
    assert lines.count("<polyline") == 1  # 'a' is two single points, 'b' one line
    assert "not enough history" in bars


@pytest.fixture
def shop(db, clock) -> Shop:
    make_location(db)
    _, variant_id = make_product(db, clock)
    shop = Shop(db, variant_id)
    first = shop.customer("c1@example.com", source="instagram")
    second = shop.customer("c2@example.com", source="google")
    shop.order(first, "2025-11-05", 10_000)
    shop.order(first, "2025-12-20", 5_000)
    shop.order(second, "2026-02-10", 8_000, path="hub-window",
               tags={"delivery_subsidised": True})
    return shop


def test_the_page_body_shows_every_section_with_its_charts(db, shop):
    with db.transaction() as session:
        context = telemetry_context(session, as_of=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
                                    by="fulfilment", currency="GBP", unit_cost=1_000)
    html = render_telemetry_html(context)

    for heading in ("Cohort heatmap", "Repeat purchases", "Cohorts by first fulfilment path",
                    "LTV by first fulfilment path", "CAC ceilings", "Delivery subsidy",
                    "Cash for the next production run"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count("<svg") == 5
    assert "not yet 90 days old" in html


def test_signed_in_admins_see_the_page_and_others_are_sent_to_login(client, db, clock, shop):
    with db.transaction() as session:
        create_admin_user(session, clock=clock, email="ops@brand.example", password=PASSWORD)

    anonymous = client.get("/admin/telemetry", follow_redirects=False)
    client.post("/admin/login", data={"email": "ops@brand.example", "password": PASSWORD,
                                      "next": "/admin/telemetry"})
    page = client.get("/admin/telemetry", params={"by": "source"})
    bad = client.get("/admin/telemetry", params={"by": "colour"})

    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/admin/login?next=")
    assert page.status_code == 200 and "<svg" in page.text
    assert 'href="/admin/telemetry"' in page.text
    assert page.headers["cache-control"] == "private, no-store"
    assert bad.status_code == 422
