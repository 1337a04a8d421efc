"""On-device search in real Chromium: the index is downloaded once; with the network cut,
search and "similar items" still answer, and no request ever carries the query."""

from __future__ import annotations

from tests.popups.support import open_popup


def test_search_runs_on_the_device_offline_and_sends_no_query(page, live_server, db, clock):
    open_popup(db, clock)
    from tests.builders import make_product

    make_product(db, clock, name="Cedar Smoke candle", family="candles", location="central")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    page.goto(live_server.url + "/search")
    page.wait_for_function("document.getElementById('index-state').dataset.ready === 'true'")
    loaded = len(requests)
    page.context.set_offline(True)

    page.get_by_label("Search products").fill("cand")
    hits = page.get_by_test_id("hits").locator("li")
    hits.first.wait_for()
    names = hits.locator("a").all_inner_texts()
    assert len(names) == 2 and all("andle" in n for n in names)

    page.get_by_label("Search products").fill("fig le")
    hits.first.wait_for()
    assert hits.locator("a").all_inner_texts()[0].startswith("Fig Leaf")
    hits.first.get_by_role("button", name="Similar").click()
    assert page.get_by_test_id("similar").locator("li").count() >= 1

    assert len(requests) == loaded  # not one request after the index, online or not
    assert not any("cand" in url or "fig" in url.lower().split("/static/")[0]
                   for url in requests)
    assert any(url.endswith("/api/v1/catalog/index.json") for url in requests)
