"""The demo brand gets pictures drawn at seed time for every product, drop and tier, and a
story for every drop (a gallery for the one to come); its headline experiment retitles only the hero scent's page."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from dropline.adapters.storage import LocalFolderStore
from dropline.catalog.models import Product
from dropline.demo import seed_demo
from dropline.drops.models import Drop
from dropline.media.models import MediaAsset, MediaOwner


def test_the_demo_shop_has_pictures_drop_stories_and_a_scoped_experiment(
        client, db, settings, clock, tmp_path):
    store = LocalFolderStore(Path(settings.media.dir))

    seed_demo(db, settings=settings, clock=clock, customers=40, seed=7, media=store)

    with db.transaction() as session:
        products = session.scalar(select(func.count()).select_from(Product))
        pictured = set(session.execute(select(MediaAsset.owner_kind, MediaAsset.owner_id)))
        drops = list(session.scalars(select(Drop)))
    assert {oid for kind, oid in pictured if kind is MediaOwner.product} and len(
        [1 for kind, _ in pictured if kind is MediaOwner.product]) == products
    assert {d.id for d in drops} == {oid for kind, oid in pictured if kind is MediaOwner.drop}
    assert any(kind is MediaOwner.tier for kind, _ in pictured)
    assert all(d.story.startswith("## ") for d in drops)
    files = list(Path(settings.media.dir).iterdir())
    assert files and max(f.stat().st_size for f in files) < 60_000

    home = client.get("/").text
    drop_page = client.get("/drops/ember-oud").text
    assert home.count("<picture") >= products
    assert "Smoke, resin, a winter night" in drop_page and "<picture" in drop_page
    assert "Numbered by hand." in drop_page
    # The drop still to come has a gallery after its hero; tiers show their card.
    assert 'aria-label="More pictures of the drop"' in drop_page
    assert drop_page.count('alt="Ember Oud: the') == 2
    membership = client.get("/membership").text
    assert "Friends of the Fig membership card" in membership
    hero = client.get("/products/fig-eau-de-parfum?v=b").text
    other = client.get("/products/tea-eau-de-parfum?v=b").text
    assert "Green fig, cedar smoke, a London night" in hero
    assert "<h1>Bermondsey Tea eau de parfum</h1>" in other
