"""A demo shop seeded once per test module into its own SQLite file (the embedded default the
demo is for), at a fixed moment so its "today" and "next drop" are the tests' too."""

from __future__ import annotations

import datetime as dt

import pytest

from dropline.clock import FrozenClock
from dropline.config import Settings
from dropline.db import Database
from dropline.demo import seed_demo
from dropline.migrate import upgrade

# A Tuesday morning in London: today's windows are partly past their cutoff (routed), partly
# still open; the demo's next drop lies twelve days ahead.
NOW = dt.datetime(2026, 3, 3, 10, 30, tzinfo=dt.UTC)
CUSTOMERS = 120  # enough for every segment and a year of drops, quick to seed
ADMIN = ("admin@dropline.example", "ember-and-fig-demo")


def demo_settings(url: str) -> Settings:
    return Settings(database={"url": url},
                    web={"run_scheduler": False, "secret_key": "console-test-secret"},
                    shop={"currency": "GBP",
                          "flat_shipping_amount": 395,
                          "free_shipping_threshold": 5000})


def seed_demo_database(tmp_path_factory: pytest.TempPathFactory, name: str) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'demo.db'}"
    upgrade(url)
    db = Database(url)
    try:
        seed_demo(db, settings=demo_settings(url), customers=CUSTOMERS, seed=7,
                  clock=FrozenClock(NOW))
    finally:
        db.dispose()
    return url
