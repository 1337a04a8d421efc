"""The console's side navigation: a registry the composition root fills.

Domains export their console entries as data (``NAV_ITEMS`` in their ``pages`` module);
``dropline.web.app.console_navigation`` collects them once per app, and the layout
(``admin/base.html``) lists them by ``rank``. Nothing adds itself at import time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["NAV_RANKS", "NavItem", "Navigation", "OVERVIEW"]

# Where the areas sit in the side navigation (an ops lead's day: overview, selling, customers,
# delivery, numbers, safeguards, then the how-to). Paths not listed go after, in the order
# they were added.
NAV_RANKS = {"/admin": 0, "/admin/orders": 4, "/admin/pick-list": 5,
             "/admin/customers": 6, "/admin/products": 8, "/admin/drops": 10,
             "/admin/discounts": 12, "/admin/popups": 15,
             "/admin/memberships/cohort-map": 20, "/admin/memberships/tiers": 21,
             "/admin/fulfilment": 30,
             "/admin/telemetry": 40,
             "/admin/planning": 45, "/admin/risk": 50, "/admin/audit": 51, "/admin/mail": 55,
             "/admin/playbooks": 80, "/admin/checklist": 90, "/admin/staff": 95,
             "/admin/tokens": 96}


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    # The permission a staff member needs to see the entry and open its page (None: any staff).
    scope: str | None = None

    @property
    def rank(self) -> int:
        return NAV_RANKS.get(self.path, 60)


OVERVIEW = NavItem("Overview", "/admin")


class Navigation:
    """The console's entries, one per path (the first added wins), iterable in added order."""

    def __init__(self, items: Iterable[NavItem] = ()) -> None:
        self._items: list[NavItem] = []
        self.add(*items)

    def add(self, *items: NavItem) -> None:
        for item in items:
            if not any(known.path == item.path for known in self._items):
                self._items.append(item)

    def __iter__(self) -> Iterator[NavItem]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
