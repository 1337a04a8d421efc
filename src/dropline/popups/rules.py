"""Pure rules of the pop-up domain: no session, no I/O.

* **Experiment assignment** is a hash of (experiment, stable visitor id) into ``BUCKETS``
  buckets, buckets mapped onto variants in order. The page HTML depends only on the variant
  key (``?v=`` or the ``X-Dropline-Variant`` header), never on the visitor, so an edge cache
  keeps one copy per variant rather than one per visitor.
* **Confidence intervals**: Wilson score interval for one conversion rate, Newcombe's hybrid
  score interval (method 10) for the difference of two, which stay sensible at small counts
  and at rates near 0 or 1 where the normal ("Wald") interval does not.
* **Conversion to membership**: buyers at a pop-up who started a membership within N days
  of their first purchase there.
* **Close-out reconciliation**: expected vs counted per variant.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

BUCKETS = 100  # assignment granularity: a variant owns a contiguous run of buckets
Z_95 = 1.959963984540054


def bucket_of(experiment_slug: str, visitor_id: str) -> int:
    """Stable: the same visitor always lands in the same bucket of the same experiment, and
    buckets of different experiments are independent (the slug salts the hash)."""
    digest = hashlib.sha256(f"{experiment_slug}\x00{visitor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def variant_for_bucket(bucket: int, variant_keys: Sequence[str]) -> str:
    """Equal split: bucket b of BUCKETS belongs to variant floor(b * n / BUCKETS)."""
    if not variant_keys:
        raise ValueError("an experiment needs at least one variant")
    return variant_keys[bucket * len(variant_keys) // BUCKETS]


def assign_variant(experiment_slug: str, visitor_id: str, variant_keys: Sequence[str]) -> str:
    return variant_for_bucket(bucket_of(experiment_slug, visitor_id), variant_keys)


VISITOR_ID_PART = 32  # hex characters of the random id, then as many of its signature


def sign_visitor(secret: str, raw_id: str) -> str:
    """A visitor id the shop issued: the random part and an HMAC of it under the app's secret,
    so observations come only from ids the shop handed out (``visitor_is_signed``)."""
    mac = hmac.new(secret.encode(), f"experiment-visitor:{raw_id}".encode(), hashlib.sha256)
    return raw_id + mac.hexdigest()[:VISITOR_ID_PART]


def visitor_is_signed(secret: str, visitor_id: str) -> bool:
    if len(visitor_id) != 2 * VISITOR_ID_PART:
        return False
    return hmac.compare_digest(sign_visitor(secret, visitor_id[:VISITOR_ID_PART]), visitor_id)


def visitor_hash(visitor_id: str) -> str:
    """What is stored of a visitor: a hash, so the observation table holds no cookie value."""
    return hashlib.sha256(f"visitor:{visitor_id}".encode()).hexdigest()[:32]


def cache_key(path: str, variant: str | None) -> str:
    """The edge cache key of a page: its path plus the variant, nothing about the visitor."""
    return f"{path}|v={variant}" if variant else path


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval:
    if trials <= 0:
        return Interval(0.0, 1.0)
    if not 0 <= successes <= trials:
        raise ValueError("successes must lie between 0 and trials")
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # At 0 or all successes the bound is exact (0 or 1); computed, it is off by a rounding.
    return Interval(0.0 if successes == 0 else max(0.0, centre - half),
                    1.0 if successes == trials else min(1.0, centre + half))


def newcombe_difference(s1: int, n1: int, s2: int, n2: int, z: float = Z_95) -> Interval:
    """Interval for p2 - p1 (variant minus control) from the two Wilson intervals."""
    p1 = s1 / n1 if n1 else 0.0
    p2 = s2 / n2 if n2 else 0.0
    w1, w2 = wilson(s1, n1, z), wilson(s2, n2, z)
    d = p2 - p1
    low = d - math.sqrt((p2 - w2.low) ** 2 + (w1.high - p1) ** 2)
    high = d + math.sqrt((w2.high - p2) ** 2 + (p1 - w1.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


@dataclass(frozen=True)
class ArmResult:
    variant: str
    exposures: int
    conversions: int
    rate: float
    interval: Interval
    lift: Interval | None  # vs the first variant (control); None for the control itself


def experiment_result(variant_keys: Sequence[str], exposures: Mapping[str, int],
                      conversions: Mapping[str, int]) -> list[ArmResult]:
    """Per variant: rate with its Wilson interval, and the Newcombe interval of its difference
    from the control (the first variant). A conversion only counts for an exposed visitor, so
    conversions are capped at exposures."""
    arms = []
    control = variant_keys[0]
    n0 = exposures.get(control, 0)
    s0 = min(conversions.get(control, 0), n0)
    for key in variant_keys:
        n = exposures.get(key, 0)
        s = min(conversions.get(key, 0), n)
        arms.append(ArmResult(
            key, n, s, s / n if n else 0.0, wilson(s, n),
            None if key == control else newcombe_difference(s0, n0, s, n)))
    return arms


# ------------------------------------------------------------------ conversion to membership


@dataclass(frozen=True)
class PopupPurchase:
    popup: str
    customer_id: int
    at: datetime


@dataclass(frozen=True)
class Conversion:
    popup: str
    buyers: int
    members: int

    @property
    def rate(self) -> float:
        return self.members / self.buyers if self.buyers else 0.0


def conversion_by_popup(purchases: Iterable[PopupPurchase],
                        membership_starts: Mapping[int, Sequence[datetime]], *,
                        within_days: int) -> dict[str, Conversion]:
    """A buyer converts for a pop-up when one of their memberships started at or after their
    first purchase at that pop-up and no later than ``within_days`` after it. Someone already a
    member before buying there does not count as converted by it (their start precedes it)."""
    first: dict[tuple[str, int], datetime] = {}
    for purchase in purchases:
        key = (purchase.popup, purchase.customer_id)
        if key not in first or purchase.at < first[key]:
            first[key] = purchase.at
    window = timedelta(days=within_days)
    buyers: dict[str, int] = {}
    members: dict[str, int] = {}
    for (popup, customer_id), at in first.items():
        buyers[popup] = buyers.get(popup, 0) + 1
        if any(at <= start <= at + window for start in membership_starts.get(customer_id, ())):
            members[popup] = members.get(popup, 0) + 1
    return {popup: Conversion(popup, count, members.get(popup, 0))
            for popup, count in sorted(buyers.items())}


# ------------------------------------------------------------------ close-out reconciliation


@dataclass(frozen=True)
class CountLine:
    variant_id: int
    sku: str
    expected: int
    counted: int

    @property
    def variance(self) -> int:
        return self.counted - self.expected


def reconcile(expected: Mapping[int, int], counted: Mapping[int, int],
              skus: Mapping[int, str]) -> list[CountLine]:
    """One line per variant that was expected or counted; a variant not counted is taken as
    counted zero (missing), a counted variant not expected is a surplus."""
    variant_ids = sorted(set(expected) | set(counted))
    return [CountLine(vid, skus.get(vid, str(vid)), expected.get(vid, 0), counted.get(vid, 0))
            for vid in variant_ids]
