"""The storefront's theme (settings.theme): logo, colours and type from one place, on every
page and in the app manifest; colours that would make text unreadable are refused when the
settings are read."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from dropline.config import Settings, ThemeSettings, contrast_ratio
from dropline.web.app import create_app
from tests.builders import make_location, make_product

THEME = {"accent": "#1f4e5f", "ink": "#111111", "muted": "#595959", "paper": "#ffffff",
         "body_font": "humanist", "heading_font": "serif",
         "logo_url": "/media/logo-0123abcd.png", "logo_width": 120, "logo_height": 32}


@pytest.fixture
def themed(db, clock, settings):
    themed_settings = settings.model_copy(update={
        "theme": ThemeSettings(**THEME),
        "shop": settings.shop.model_copy(update={"name": "Ember & Fig"})})
    with TestClient(create_app(themed_settings, clock=clock, db=db, run_worker=False)) as client:
        yield client


def test_every_storefront_page_carries_the_theme_colours_type_and_logo(themed, db, clock):
    make_location(db)
    make_product(db, clock, name="Neroli Tide")

    pages = [themed.get(path) for path in ("/", "/products/neroli-tide", "/cart", "/sign-in",
                                           "/offline", "/membership")]

    for page in pages:
        assert page.status_code == 200, page.url
        assert "--accent:#1f4e5f;" in page.text and "--paper:#ffffff;" in page.text
        assert "--body-font:Seravek" in page.text and "--heading-font:Charter" in page.text
        assert ('<img src="/media/logo-0123abcd.png" alt="Ember &amp; Fig" width="120" '
                'height="32">') in page.text
        assert '<meta name="theme-color" content="#1f4e5f">' in page.text


def test_the_manifest_takes_the_theme_colours(themed):
    manifest = themed.get("/manifest.webmanifest").json()

    assert (manifest["name"], manifest["theme_color"], manifest["background_color"]) == (
        "Ember & Fig", "#1f4e5f", "#ffffff")


def test_without_a_logo_the_header_shows_the_shop_name(client):
    page = client.get("/sign-in")

    assert '<a class="brand" href="/">Dropline shop</a>' in page.text
    assert f"--accent:{ThemeSettings().accent};" in page.text


@pytest.mark.parametrize(("field", "value", "message"), [
    ("accent", "#ffcc00", "theme colour accent #ffcc00 on #fbf8f4 has contrast 1.43:1"),
    ("muted", "#bbbbbb", "theme colour muted #bbbbbb on #fbf8f4 has contrast 1.81:1"),
    ("ink", "#777777", "theme colour ink #777777 on #fbf8f4 has contrast 4.23:1"),
    ("accent", "orange", "String should match pattern"),
    ("body_font", "comic", "Input should be 'system', 'serif', 'humanist' or 'mono'"),
])
def test_an_unreadable_or_malformed_theme_is_refused_with_the_reason(field, value, message):
    with pytest.raises(ValidationError) as refused:
        Settings(theme={field: value})

    assert message in str(refused.value)


def test_the_theme_is_read_from_its_environment_variables(monkeypatch):
    monkeypatch.setenv("DROPLINE_THEME_ACCENT", "#1f4e5f")
    monkeypatch.setenv("DROPLINE_THEME_HEADING_FONT", "mono")

    theme = Settings().theme

    assert (theme.accent, theme.heading_font) == ("#1f4e5f", "mono")


def test_contrast_ratio_matches_the_wcag_formula_at_its_ends():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#777777") == pytest.approx(1.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
