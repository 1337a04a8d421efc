"""The membership notices moved onto the one mail outbox (``mail_0014_membership_notices``):
a notice pending when the shop upgrades is still sent, once; one sent before stays sent; the
downgrade gives them back. On a database file of its own, from the revision before."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, text

from dropline.migrate import downgrade, upgrade

BEFORE = "mail_0013_marketing"
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_pending_notices_survive_the_move_and_the_way_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    upgrade(url, BEFORE)
    upgrade(url, "heads")
    downgrade(url, BEFORE)  # a database at the revision before, with every other branch's head
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO customers (id, email, name, password_hash, "
                          "acquisition_source, acquisition_campaign, created_at) VALUES "
                          "(1, 'ada@example.com', 'Ada', 'x', 'direct', '', :at)"), {"at": AT})
        conn.execute(text(
            "INSERT INTO membership_notices (customer_id, membership_id, kind, dedupe_key, "
            "subject, body, created_at, claimed_until, sent_at) VALUES "
            "(1, NULL, 'receipt', 'receipt:1', 'Receipt: Founding, £10.00', 'Thank you.', :at, "
            "NULL, :at), (1, NULL, 'final-notice', 'final:2', 'Last chance', 'We tried.', "
            ":at, NULL, NULL)"), {"at": AT})
    engine.dispose()

    upgrade(url, "heads")

    moved = _rows(url, "SELECT event_id, template, customer_id, order_id, status, payload "
                       "FROM mail_outbox ORDER BY id")
    assert [row[:5] for row in moved] == [
        ("receipt:1", "membership_notice", 1, None, "sent"),
        ("final:2", "membership_notice", 1, None, "pending")]
    assert '"subject": "Last chance"' in moved[1][5] and '"kind": "final-notice"' in moved[1][5]
    assert _rows(url, "SELECT name FROM sqlite_master WHERE name = 'membership_notices'") == []

    downgrade(url, BEFORE)

    assert _rows(url, "SELECT dedupe_key, kind, subject, sent_at IS NULL FROM "
                      "membership_notices ORDER BY id") == [
        ("receipt:1", "receipt", "Receipt: Founding, £10.00", 0),
        ("final:2", "final-notice", "Last chance", 1)]
    assert _rows(url, "SELECT count(*) FROM mail_outbox") == [(0,)]
