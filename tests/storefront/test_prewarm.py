"""``dropline drops prewarm``: the drop's pages rendered before launch, and warmed at the edge."""

from __future__ import annotations

from typer.testing import CliRunner

from dropline.cli import app
from dropline.web.prewarm import prewarm_drop
from tests.drops.builders import make_drop

runner = CliRunner()


def test_prewarm_renders_the_drop_its_products_and_home_and_fills_the_edge(
        client, db, clock, settings):
    world = make_drop(db, clock, starts_in=60)

    rows = prewarm_drop(db, clock=clock, settings=settings, drop_ref=str(world.drop_id),
                        base_url="http://testserver", http=client)

    paths = [row.path for row in rows]
    assert paths[0] == f"/drops/{world.drop_id}" and paths[-1] == "/"
    assert len(paths) == 3 and paths[1].startswith("/products/")
    assert all(row.status == 200 and row.bytes > 500 for row in rows)
    assert all(row.edge_status == 200 and row.edge_cache == "miss" for row in rows)
    assert all(row.edge_same for row in rows)  # the edge serves exactly the bytes rendered here
    hit = client.get(paths[0])
    assert hit.headers["X-Cache"] == "hit" and hit.headers["ETag"] == rows[0].etag


def test_the_prewarm_command_prints_what_it_warmed_and_refuses_an_unknown_drop(
        db, clock, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", db.url)
    world = make_drop(db, clock, starts_in=60)

    warmed = runner.invoke(app, ["drops", "prewarm", str(world.drop_id)], terminal_width=200)
    missing = runner.invoke(app, ["drops", "prewarm", "no-such-drop"])
    helped = runner.invoke(app, ["drops", "prewarm", "--help"])

    assert warmed.exit_code == 0, warmed.output
    assert f"/drops/{world.drop_id}" in warmed.output and "ETag" in warmed.output
    assert missing.exit_code == 2 and "not found" in missing.output
    assert "Example: dropline drops prewarm" in helped.output
