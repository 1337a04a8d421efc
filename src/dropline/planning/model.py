"""The attention-cycle model: how a community's attention rises before a drop, decays after
it, and how much of it a drop can call on depending on how long the brand has been quiet.

Two layers, both fitted from past drops and both pure (arrays in, dataclasses out):

1. **The daily series** ``y(t)`` (touches a day) is a baseline plus one bump per drop::

       m(t) = b + sum_k A_k * g(t - t_k)
       g(tau) = 2 ** (-tau / h_decay)  for tau >= 0   (after the drop: half-life h_decay)
       g(tau) = 2 ** ( tau / h_rise)   for tau <  0   (the run-up: attention doubles every h_rise)

   fitted by least squares on square roots (counts are Poisson-like: the square root makes the
   variance roughly constant, so a busy drop day does not drown the quiet days that carry the
   decay). Uncertainty: a parametric bootstrap (redraw Poisson counts from the fit, refit).

2. **The recovery curve**: the bump a drop can raise, ``A_k``, against the gap since the
   previous drop, ``d_k``::

       A(d) = A_max * (1 - exp(-d / tau_recover)) * exp(-d / tau_fade)

   Too soon and the community has not recovered (it just spent, it is tired of being asked);
   too late and it has faded (forgotten, moved on). The best gap maximises ``A(d)``:
   ``d* = tau_recover * ln(1 + tau_fade / tau_recover)``. ``recovery_days`` (90 % recovered) is
   ``tau_recover * ln 10``.

   A shop has a dozen drops, not hundreds, so one odd drop must not swing the curve. The fit
   is made robust in three ways: each drop's point is weighted by its size (a 6-unit test drop
   says little about a community's attention: ``drop_weights``), the loss is soft-L1 (a bump
   near zero counts linearly, not quadratically, in log terms), and when the drops cannot tell
   the two time constants apart (the fit runs to the edge of their range) they are refitted
   with a weak prior towards the shop's own gap scale (``PRIOR_WEIGHT``). On top, the plan
   moves the recommended gap by at most ``STEP_DAYS`` per new drop (``bounded_best_gap``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

LN2 = math.log(2)
MIN_DROPS_FOR_RECOVERY = 4  # three parameters need at least four (gap, bump) pairs
TAU_RECOVER_MAX, TAU_FADE_MAX = 365.0, 3650.0  # days: beyond these a drop cycle means nothing
# The weak prior on log(tau_recover) and log(tau_fade) for ill-posed fits, against a
# full-weight drop's log residual of 1.
PRIOR_WEIGHT = 0.5
ROBUST_SCALE = 0.5  # soft-L1 beyond a log residual of 0.5 (a bump off by ~65 %)
SMALL_DROP_SHARE = 0.5  # a drop offering under half the typical drop's units is down-weighted
STEP_DAYS = 3  # the recommended gap moves at most this far per new drop (``bounded_best_gap``)
RUN_UP_DAYS = 7  # a prefix of the series stops this long before the next drop's run-up


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float  # 90 % bootstrap interval
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": round(self.estimate, 3), "low": round(self.low, 3),
                "high": round(self.high, 3)}


@dataclass(frozen=True)
class SeriesFit:
    baseline: float
    half_life_rise: float  # days
    half_life_decay: float  # days
    amplitudes: tuple[float, ...]  # one per drop, touches a day above baseline on drop day


@dataclass(frozen=True)
class RecoveryCurve:
    peak: float  # A_max
    tau_recover: float  # days
    tau_fade: float  # days

    def bump(self, gap_days: float | np.ndarray) -> float | np.ndarray:
        gap = np.asarray(gap_days, dtype=float)
        value = self.peak * (1 - np.exp(-gap / self.tau_recover)) * np.exp(-gap / self.tau_fade)
        return float(value) if value.ndim == 0 else value

    @property
    def best_gap_days(self) -> float:
        return self.tau_recover * math.log(1 + self.tau_fade / self.tau_recover)

    @property
    def recovery_days(self) -> float:
        return self.tau_recover * math.log(10)


@dataclass(frozen=True)
class CycleModel:
    """The fitted cycle of one series (the brand, or one member segment)."""

    label: str
    days: int  # length of the series the fit saw
    drops: int
    fit: SeriesFit
    recovery: RecoveryCurve | None  # None: too few drops to fit it
    baseline: Interval
    half_life_rise: Interval
    half_life_decay: Interval
    recovery_days: Interval | None
    best_gap_days: Interval | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def expected_attention(self, gap_days: float) -> float:
        """Touches on the day of a drop held ``gap_days`` after the previous one."""
        bump = self.recovery.bump(gap_days) if self.recovery else float(
            np.mean(self.fit.amplitudes) if self.fit.amplitudes else 0.0)
        return self.fit.baseline + float(bump)

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label, "days": self.days, "drops": self.drops,
            "baseline_per_day": self.baseline.as_dict(),
            "half_life_rise_days": self.half_life_rise.as_dict(),
            "half_life_decay_days": self.half_life_decay.as_dict(),
            "recovery_days": self.recovery_days.as_dict() if self.recovery_days else None,
            "best_gap_days": self.best_gap_days.as_dict() if self.best_gap_days else None,
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------- the series


def kernel(tau: np.ndarray, half_life_rise: float, half_life_decay: float) -> np.ndarray:
    return np.where(tau >= 0, np.exp2(-np.maximum(tau, 0) / half_life_decay),
                    np.exp2(np.minimum(tau, 0) / half_life_rise))


def series_curve(fit: SeriesFit, drop_days: Sequence[float], n_days: int) -> np.ndarray:
    """The fitted mean touches a day for days 0..n_days-1."""
    t = np.arange(n_days, dtype=float)
    out = np.full(n_days, float(fit.baseline))
    for day, amplitude in zip(drop_days, fit.amplitudes, strict=True):
        out += amplitude * kernel(t - day, fit.half_life_rise, fit.half_life_decay)
    return out


def fit_series(counts: Sequence[float], drop_days: Sequence[float]) -> SeriesFit:
    """Least squares on square roots; parameters on a log scale so they stay positive."""
    y = np.asarray(counts, dtype=float)
    days = np.asarray(drop_days, dtype=float)
    if len(days) == 0:
        return SeriesFit(float(y.mean()) if len(y) else 0.0, 1.0, 1.0, ())
    t = np.arange(len(y), dtype=float)
    base0 = max(float(np.percentile(y, 25)), 0.1)
    amp0 = [max(float(y[min(int(d), len(y) - 1)]) - base0, 1.0) if 0 <= d < len(y) else 1.0
            for d in days]
    x0 = np.log([base0, 2.0, 5.0, *amp0])
    sqrt_y = np.sqrt(y)

    def residuals(theta: np.ndarray) -> np.ndarray:
        b, hr, hd = np.exp(theta[:3])
        amps = np.exp(theta[3:])
        m = b + (amps[:, None] * kernel(t[None, :] - days[:, None], hr, hd)).sum(axis=0)
        return np.sqrt(m) - sqrt_y

    lower = np.log([1e-3, 0.1, 0.2] + [1e-3] * len(days))
    upper = np.log([1e5, 60.0, 120.0] + [1e6] * len(days))
    result = least_squares(residuals, np.clip(x0, lower + 1e-9, upper - 1e-9),
                           bounds=(lower, upper), method="trf", x_scale="jac")
    b, hr, hd = np.exp(result.x[:3])
    return SeriesFit(float(b), float(hr), float(hd), tuple(float(a) for a in np.exp(result.x[3:])))


# ----------------------------------------------------------------------- the recovery curve


def drop_weights(units: Sequence[float]) -> list[float]:
    """How much each drop's (gap, bump) point counts in the recovery fit: 1 for a drop of at
    least ``SMALL_DROP_SHARE`` of the median drop's units, the square of that share below it
    (a 6-unit test drop beside 20-unit drops counts 0.36: a drop that small is rarely
    announced like the others, so its bump says little). Pure: units in, weights out."""
    sizes = np.asarray(units, dtype=float)
    if len(sizes) == 0:
        return []
    typical = float(np.median(sizes))
    if typical <= 0:
        return [1.0] * len(sizes)
    return [float(min(1.0, size / (SMALL_DROP_SHARE * typical)) ** 2) for size in sizes]


def fit_recovery(gaps: Sequence[float], bumps: Sequence[float],
                 weights: Sequence[float] | None = None) -> RecoveryCurve | None:
    """Robust weighted least squares on log bumps (a bump is a rate: errors are relative).
    Where the drops cannot tell the time constants apart (the fit runs to the edge of their
    range, or puts the best gap far outside the gaps ever tried), it is refitted with a weak
    prior (see the module docstring); well-posed data are fitted as they are."""
    g = np.asarray(gaps, dtype=float)
    a = np.asarray(bumps, dtype=float)
    w = np.ones_like(g) if weights is None else np.asarray(weights, dtype=float)
    keep = (g > 0) & (a > 0) & (w > 0)
    g, a, w = g[keep], a[keep], w[keep]
    if len(g) < MIN_DROPS_FOR_RECOVERY:
        return None
    curve = _fit_recovery(g, a, w, prior=0.0)
    if _ill_posed(curve, g):
        curve = _fit_recovery(g, a, w, prior=PRIOR_WEIGHT)
    return curve


def _ill_posed(curve: RecoveryCurve, gaps: np.ndarray) -> bool:
    at_edge = curve.tau_recover >= 0.99 * TAU_RECOVER_MAX or curve.tau_fade >= 0.99 * TAU_FADE_MAX
    best = curve.best_gap_days
    return at_edge or not 0.5 * float(gaps.min()) <= best <= 1.5 * float(gaps.max())


def _fit_recovery(g: np.ndarray, a: np.ndarray, w: np.ndarray, *, prior: float
                  ) -> RecoveryCurve:
    root_w = np.sqrt(w)
    typical_gap = max(float(np.median(g)), 1.0)
    # The prior is centred where the best gap is the shop's own typical gap (recovery at an
    # eighth of fade's pace: d* = tau_recover * ln 9): "what you do is roughly right".
    recover0 = typical_gap / math.log(9)
    centre = np.log([recover0, 8 * recover0])

    def residuals(theta: np.ndarray) -> np.ndarray:
        peak, rec, fade = np.exp(theta)
        model = peak * (1 - np.exp(-g / rec)) * np.exp(-g / fade)
        misfit = (np.log(np.maximum(model, 1e-12)) - np.log(a)) * root_w
        return np.concatenate([misfit, prior * (theta[1:] - centre)]) if prior else misfit

    x0 = np.log([float(a.max()) * 2, recover0, 8 * recover0])
    lower = np.log([1e-3, 0.5, 2.0])
    upper = np.log([1e7, TAU_RECOVER_MAX, TAU_FADE_MAX])
    result = least_squares(residuals, np.clip(x0, lower + 1e-9, upper - 1e-9),
                           bounds=(lower, upper), method="trf", loss="soft_l1",
                           f_scale=ROBUST_SCALE)
    peak, rec, fade = np.exp(result.x)
    return RecoveryCurve(float(peak), float(rec), float(fade))


def drop_gaps(drop_days: Sequence[float]) -> list[float]:
    """Days since the previous drop, for every drop but the first."""
    ordered = sorted(drop_days)
    return [b - a for a, b in itertools.pairwise(ordered)]


# ---------------------------------------------------------------------------- whole model


def _interval(estimate: float, samples: Sequence[float]) -> Interval:
    if len(samples) < 2:
        return Interval(estimate, estimate, estimate)
    low, high = np.percentile(np.asarray(samples), [5, 95])
    return Interval(estimate, float(min(low, estimate)), float(max(high, estimate)))


def fit_cycle(counts: Sequence[float], drop_days: Sequence[float], *, label: str = "all",
              bootstrap: int = 40, seed: int = 0,
              weights: Sequence[float] | None = None) -> CycleModel:
    """Fit both layers and bootstrap them together: each redrawn series is refitted, and its
    bumps refit the recovery curve, so the recovery interval carries the series' noise too.
    ``weights``: one per drop, in ``drop_days``' order (``drop_weights``); 1 each if None."""
    order = np.argsort(np.asarray(drop_days, dtype=float))
    days = [float(drop_days[i]) for i in order]
    weight = [1.0] * len(days) if weights is None else [float(weights[i]) for i in order]
    y = np.asarray(counts, dtype=float)
    fit = fit_series(y, days)
    gaps = drop_gaps(days)
    recovery = fit_recovery(gaps, fit.amplitudes[1:], weight[1:])
    notes: list[str] = []
    if len(days) < 2:
        notes.append("fewer than two drops: no decay can be measured yet")
    if recovery is None:
        notes.append(f"recovery curve needs at least {MIN_DROPS_FOR_RECOVERY + 1} drops; "
                     "using the mean bump")
    if recovery is not None and (recovery.tau_recover >= 0.99 * TAU_RECOVER_MAX
                                 or recovery.tau_fade >= 0.99 * TAU_FADE_MAX):
        notes.append("the recovery curve sits at the edge of its range: these drops do not "
                     "show how long attention takes to recover; treat the best gap as weak")
    rng = np.random.default_rng(seed)
    mean = series_curve(fit, days, len(y)) if days else np.full(len(y), fit.baseline)
    samples: dict[str, list[float]] = {"b": [], "hr": [], "hd": [], "rec": [], "best": []}
    for _ in range(bootstrap if days else 0):
        again = fit_series(rng.poisson(mean), days)
        samples["b"].append(again.baseline)
        samples["hr"].append(again.half_life_rise)
        samples["hd"].append(again.half_life_decay)
        if recovery is not None:
            curve = fit_recovery(gaps, again.amplitudes[1:], weight[1:])
            if curve is not None:
                samples["rec"].append(curve.recovery_days)
                samples["best"].append(curve.best_gap_days)
    return CycleModel(
        label=label, days=len(y), drops=len(days), fit=fit, recovery=recovery,
        baseline=_interval(fit.baseline, samples["b"]),
        half_life_rise=_interval(fit.half_life_rise, samples["hr"]),
        half_life_decay=_interval(fit.half_life_decay, samples["hd"]),
        recovery_days=_interval(recovery.recovery_days, samples["rec"]) if recovery else None,
        best_gap_days=_interval(recovery.best_gap_days, samples["best"]) if recovery else None,
        notes=tuple(notes))


def bounded_best_gap(counts: Sequence[float], drop_days: Sequence[float],
                     weights: Sequence[float] | None = None, *, step: float = STEP_DAYS
                     ) -> tuple[float, float] | None:
    """The best gap the plan may recommend now, and the one it could recommend before the
    newest drop: ``(bounded, previous)``. Replays the drops in order: the shop's history up to
    each drop (the series cut before the next drop's run-up) is fitted, and each new drop may
    move the recommendation by at most ``step`` days from the one before it. So one odd drop
    (a test, a flop) nudges the cadence instead of swinging it; a real change in the
    community's rhythm still arrives, ``step`` days per drop. None until the recovery curve
    can be fitted at all. Point fits only (no bootstrap): a few least-squares runs."""
    order = np.argsort(np.asarray(drop_days, dtype=float))
    days = [float(drop_days[i]) for i in order]
    weight = [1.0] * len(days) if weights is None else [float(weights[i]) for i in order]
    y = np.asarray(counts, dtype=float)
    bounded: float | None = None
    previous: float | None = None
    for k in range(MIN_DROPS_FOR_RECOVERY + 1, len(days) + 1):
        end = len(y) if k == len(days) else max(int(days[k]) - RUN_UP_DAYS, int(days[k - 1]) + 1)
        fit = fit_series(y[:end], days[:k])
        curve = fit_recovery(drop_gaps(days[:k]), fit.amplitudes[1:], weight[1:k])
        if curve is None:
            continue
        estimate = curve.best_gap_days
        previous = bounded
        bounded = estimate if bounded is None else \
            min(max(estimate, bounded - step), bounded + step)
    if bounded is None:
        return None
    return bounded, previous if previous is not None else bounded
