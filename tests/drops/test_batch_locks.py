"""The batch writer's slot locking on PostgreSQL (``drops.crowd.writer._lock_slots``): a batch that
finds too few unlocked slot rows lets go of the rows it grabbed before it waits for all of
them, so two batches short at the same time cannot deadlock (PostgreSQL would break such a
deadlock only after ``deadlock_timeout``, 1 s, by aborting one of them)."""

from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy import text

from dropline.drops.crowd import writer as batch
from dropline.drops.models import SHARED_POOL
from dropline.drops.service import get_drop
from tests.drops.builders import make_drop

pytestmark = pytest.mark.skipif(
    not (os.environ.get("DROPLINE_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="row locks with SKIP LOCKED: PostgreSQL only (set DROPLINE_TEST_DATABASE_URL)")

SLOTS_OF = "SELECT slot_no FROM drop_slots WHERE drop_id = :d AND slot_no {} ORDER BY slot_no "


def _waiting_on_a_lock(db) -> int:
    with db.transaction() as session:
        return session.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"))


def test_a_batch_short_of_unlocked_slots_lets_go_of_its_rows_before_it_waits(
        db, clock, monkeypatch):
    world = make_drop(db, clock, cap=80, slots=8)  # 8 rows of 10 units
    monkeypatch.setattr(batch._rng, "randrange", lambda n: 0)  # SKIP LOCKED scans from row 0
    result: dict[str, object] = {}

    def short_batch() -> None:
        try:
            with db.transaction() as session:
                drop = get_drop(session, world.drop_id)
                result["got"] = batch._lock_slots(session, drop, {SHARED_POOL: 45})
        except Exception as exc:  # noqa: BLE001 - asserted below
            result["error"] = exc

    with db.transaction() as holder:  # another batch in flight, holding rows 0-3
        held = holder.execute(text(SLOTS_OF.format("< 4") + "FOR UPDATE"),
                              {"d": world.drop_id}).scalars().all()
        assert held == [0, 1, 2, 3]
        thread = threading.Thread(target=short_batch)
        thread.start()
        deadline = time.monotonic() + 20
        while _waiting_on_a_lock(db) == 0:  # the short batch (40 unlocked units) now waits
            assert thread.is_alive() and time.monotonic() < deadline, result
            time.sleep(0.02)
        # While it waits it holds none of rows 4-7, which it grabbed first: the other batch
        # can take them without waiting (before, NOWAIT failed here: the classic deadlock).
        taken = holder.execute(text(SLOTS_OF.format(">= 4") + "FOR UPDATE NOWAIT"),
                               {"d": world.drop_id}).scalars().all()
        assert taken == [4, 5, 6, 7]
    thread.join(timeout=20)
    assert "error" not in result, result
    got = result["got"]
    assert sorted(slot for slot, _ in got[SHARED_POOL]) == list(range(8))  # type: ignore[index]
    assert sum(left for _, left in got[SHARED_POOL]) == 80  # type: ignore[index]
