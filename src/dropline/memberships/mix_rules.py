"""Rotating mixes for consumable tiers, as a pure choice: which variants of a tier's pool a
member gets this period.

Rules, in order: never a variant shipped to this member in the last ``no_repeat`` periods (a
hard rule: the pool is refused at setup if it is too small to honour it); never one the member
asked to avoid, unless nothing else is left; in-stock items before out-of-stock ones (an
out-of-stock item is still *chosen* when nothing in stock is eligible, and the tier's stock-out
policy, skip or credit, then applies to that item alone); the member's preferred items first;
the rest at random (the caller's seeded source, so a period's choice is repeatable)."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from dropline.errors import InvalidInput

__all__ = ["MixChoice", "choose_mix", "validate_pool"]


def validate_pool(pool: Sequence[int], *, size: int, no_repeat: int) -> None:
    """A pool must hold enough distinct variants to ship ``size`` a period without repeating
    any within ``no_repeat`` periods: ``size * (no_repeat + 1)``."""
    if size < 1:
        raise InvalidInput("a mix ships at least one item a period", field="size")
    if no_repeat < 0:
        raise InvalidInput("no_repeat is a number of periods, 0 or more", field="no_repeat")
    if len(set(pool)) != len(pool):
        raise InvalidInput("the pool lists a variant twice", field="pool")
    need = size * (no_repeat + 1)
    if len(pool) < need:
        raise InvalidInput(f"a mix of {size} that never repeats within {no_repeat} periods "
                           f"needs a pool of at least {need} variants; this one has "
                           f"{len(pool)}", field="pool")


@dataclass(frozen=True)
class MixChoice:
    in_stock: tuple[int, ...]  # ship these
    out_of_stock: tuple[int, ...]  # chosen, but none in stock: the stock-out policy applies


def choose_mix(pool: Sequence[int], *, size: int, no_repeat: int,
               recent: Sequence[Collection[int]], available: Mapping[int, int],
               prefer: Collection[int] = (), avoid: Collection[int] = (),
               rng: random.Random) -> MixChoice:
    """``recent``: the variants shipped in each earlier period, most recent first;
    ``available``: units in stock per variant (missing: none)."""
    blocked = {v for period in list(recent)[:no_repeat] for v in period}
    eligible = [v for v in pool if v not in blocked]
    wanted = [v for v in eligible if v not in set(avoid)]
    if len(wanted) < size:  # preferences are soft: an avoided item before a short mix
        wanted += [v for v in eligible if v in set(avoid)][:size - len(wanted)]
    order = sorted(wanted, key=lambda v: (available.get(v, 0) < 1, v not in set(prefer),
                                          rng.random()))
    chosen = order[:size]
    return MixChoice(tuple(v for v in chosen if available.get(v, 0) >= 1),
                     tuple(v for v in chosen if available.get(v, 0) < 1))
