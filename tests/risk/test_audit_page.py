"""The console's audit page reads as a compact diff (old struck through, new beside it),
50 changes a page with the filters kept on the next page."""

from __future__ import annotations

import re

from dropline.catalog.service import set_price
from tests.builders import make_location, make_product, sign_in_console


def test_the_audit_trail_is_paged_filtered_and_shown_as_a_diff(client, db, clock):
    make_location(db, code="central")
    _, variant_id = make_product(db, clock, price=1000)
    with db.transaction() as session:
        for step in range(1, 61):
            set_price(session, clock=clock, variant_id=variant_id, price_amount=1000 + step,
                      actor="test")
    sign_in_console(client, db, clock)

    first = client.get("/admin/audit", params={"entity": "variants", "action": "update"})
    assert first.status_code == 200
    assert len(re.findall(r"<tr><td>\d+</td>", first.text)) == 50
    assert "<del>1059</del> → <ins>1060</ins>" in first.text
    older = re.search(r'href="(/admin/audit\?before_id=\d+&amp;[^"]+)" rel="next"', first.text)
    assert older and "entity=variants" in older[1] and "action=update" in older[1]

    second = client.get(older[1].replace("&amp;", "&"))
    assert len(re.findall(r"<tr><td>\d+</td>", second.text)) == 10
    assert "<del>1000</del> → <ins>1001</ins>" in second.text and 'rel="next"' not in second.text
