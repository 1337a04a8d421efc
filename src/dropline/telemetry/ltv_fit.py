"""Maximum-likelihood fits of the BTYD models behind the LTV estimate.

BG/NBD (Fader, Hardie & Lee 2005), Pareto/NBD (Schmittlein et al. 1987, in the
hypergeometric form of Fader & Hardie's 2005 note) and Gamma-Gamma spend (Fader &
Hardie 2013). Every function is pure: arrays in, frozen dataclasses of Python floats out.

Inputs are the calibration sufficient statistics of each customer: ``x`` repeat
transactions, ``t_x`` time of the last one and ``T`` time since the first purchase,
measured from the first purchase in one time unit (weeks in Dropline). The rate
parameters (``alpha``, ``beta``) are in the inverse of that unit.

Optimisation runs in log-parameter space with L-BFGS-B, so every parameter stays
positive, over the distinct (x, t_x, T) rows weighted by their counts: customers
summarised on a daily grid repeat these rows heavily, which makes a million-customer
fit (2.75 million purchases) cost about a hundred thousand likelihood terms per step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

FloatArray = NDArray[np.float64]

# log-parameter box: exp(+-LOG_BOUND) = 2.3e-7 .. 4.4e6. A parameter that ends at either
# edge means the likelihood is still rising towards 0 or infinity (a degenerate data set).
LOG_BOUND = 15.3
# Without a single repeat purchase the likelihood rises as r -> 0 and says nothing about
# the other parameters, so the fits skip the search and report r at the edge.
NO_REPEATS_NOTE = ("no repeat purchases: purchase rates cannot be estimated (rate -> 0); "
                   "only r is determined, at the edge of the search box")
_EDGE = 0.5  # within this distance of a bound, in log units, the estimate is "at the edge"


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    r: float
    alpha: float
    a: float
    b: float
    loglik: float
    converged: bool
    at_boundary: bool
    boundary_note: str | None
    customers: int


@dataclass(frozen=True, slots=True)
class ParetoNbdFit:
    r: float
    alpha: float
    s: float
    beta: float
    loglik: float
    converged: bool
    at_boundary: bool
    boundary_note: str | None
    customers: int


@dataclass(frozen=True, slots=True)
class GammaGammaFit:
    p: float
    q: float
    gamma: float
    loglik: float
    converged: bool
    at_boundary: bool
    boundary_note: str | None
    customers: int  # repeaters used (x > 0 and zbar > 0)
    excluded: int  # repeaters left out because their mean spend was not positive

    @property
    def population_mean_spend(self) -> float:
        """E[Z] = p*gamma/(q-1); infinite when q <= 1 (the spend distribution has no mean)."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else float("inf")


# --------------------------------------------------------------------------- inputs


def validate_rfm(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[FloatArray, ...]:
    """Return (x, t_x, T) as float arrays or raise ValueError naming the broken rule."""
    xa, ta, Ta = (np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T))
    if not (xa.shape == ta.shape == Ta.shape):
        raise ValueError("x, t_x and T must have the same length")
    if xa.size == 0:
        raise ValueError("no customers to fit")
    if not (np.isfinite(xa).all() and np.isfinite(ta).all() and np.isfinite(Ta).all()):
        raise ValueError("x, t_x and T must be finite")
    if (xa < 0).any() or (xa != np.round(xa)).any():
        raise ValueError("x must be non-negative whole numbers")
    if (ta < 0).any() or (ta > Ta + 1e-9).any():
        raise ValueError("t_x must lie in [0, T]")
    if (Ta <= 0).all():
        raise ValueError("every customer has T = 0: the calibration period is empty")
    return xa, ta, Ta


def _aggregate(*cols: FloatArray) -> tuple[tuple[FloatArray, ...], FloatArray]:
    """Distinct rows of the given columns and how many customers share each one."""
    order = np.lexsort(cols[::-1])
    sorted_cols = [c[order] for c in cols]
    new = np.ones(order.size, dtype=bool)
    new[1:] = np.logical_or.reduce([c[1:] != c[:-1] for c in sorted_cols])
    starts = np.flatnonzero(new)
    weights = np.diff(np.append(starts, order.size)).astype(np.float64)
    return tuple(c[starts] for c in sorted_cols), weights


def _maximise(
    neg_ll_and_grad: Callable[[FloatArray], tuple[float, FloatArray | None]],
    log_start: FloatArray,
    *,
    analytic_grad: bool,
    n: float,
) -> tuple[FloatArray, float, bool]:
    """Minimise the negative log-likelihood; return (log-params, log-likelihood, converged).

    The search sees the mean per customer rather than the sum: gradients of order one
    keep L-BFGS-B's first step inside the region where the likelihood is finite.
    """

    def per_customer(v: FloatArray):
        f, g = neg_ll_and_grad(v)
        return (f / n, g / n) if analytic_grad else f / n

    bounds = [(-LOG_BOUND, LOG_BOUND)] * log_start.size
    if analytic_grad:
        res = minimize(per_customer, log_start, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7})
    else:
        res = minimize(per_customer, log_start, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    # L-BFGS-B reports ABNORMAL when a line search stalls on the float-precision floor; the
    # point is still an optimum if the projected gradient is negligible, so judge by that.
    x, g = np.asarray(res.x), np.asarray(res.jac, dtype=np.float64)
    g = np.where((x <= -LOG_BOUND + 1e-9) & (g > 0) | (x >= LOG_BOUND - 1e-9) & (g < 0), 0.0, g)
    converged = bool(res.success) or float(np.max(np.abs(g))) <= 1e-6
    return np.asarray(res.x, dtype=np.float64), -float(res.fun) * n, converged


def _edges(log_params: FloatArray, names: tuple[str, ...]) -> dict[str, str]:
    """Map each parameter sitting at the log box edge to 'low' or 'high'."""
    out: dict[str, str] = {}
    for name, v in zip(names, log_params):
        if v <= -LOG_BOUND + _EDGE:
            out[name] = "low"
        elif v >= LOG_BOUND - _EDGE:
            out[name] = "high"
    return out


def _purchase_notes(logp: FloatArray, names: tuple[str, ...], x: FloatArray, T: FloatArray, *,
                    r: float, alpha: float, dropout: float, dropout_text: str) -> list[str]:
    """Why a BG/NBD or Pareto/NBD fit is degenerate; empty when it is an interior optimum.

    The likelihood of data without visible drop-out, heterogeneity or repeat purchases
    keeps rising along a ray to the edge of the parameter space, so these are judged by
    what the parameters imply rather than by where the optimiser stopped.
    """
    notes = []
    if x.sum() == 0 or r / alpha * float(T.max()) < 1e-4:
        notes.append("no repeat purchases: purchase rates cannot be estimated (rate -> 0)")
    elif dropout < 1e-4:
        notes.append(f"no drop-out detected: {dropout_text} = {dropout:.2e}; the fit reduces "
                     "to an NBD with everyone alive")
    if r > 1e4:
        notes.append("no heterogeneity in purchase rates: r and alpha diverge together "
                     f"(Poisson rate r/alpha = {r / alpha:.4g} for everyone)")
    edges = _edges(logp, names)
    if edges and not notes:
        notes.append(", ".join(f"{k} ran to the {v} edge of the search box"
                               for k, v in edges.items()))
    return notes


# --------------------------------------------------------------------------- BG/NBD


def bgnbd_loglik_terms(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """Per-customer log-likelihood of BG/NBD, FHL (2005) eq. 6, evaluated in logs."""
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + T)
    # B(a+1, b+x-1)/B(a, b+x) = a/(b+x-1); only customers with a repeat purchase can have
    # dropped out after it, hence the mask.
    with np.errstate(divide="ignore", invalid="ignore"):
        dead = np.where(x > 0, np.log(a) - np.log(b + x - 1.0) - (r + x) * np.log(alpha + t_x),
                        -np.inf)
    return base + np.logaddexp(alive, dead)


def _bgnbd_objective(
    x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """Weighted negative log-likelihood of BG/NBD and its analytic gradient in log-parameters."""
    repeat = x > 0
    bx1 = np.where(repeat, x - 1.0, 0.0)  # b + x - 1 with a safe value where unused

    def f(logp: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(logp)
        la_T, la_tx = np.log(alpha + T), np.log(alpha + t_x)
        alive = -(r + x) * la_T
        dead = np.where(repeat, np.log(a) - np.log(b + bx1) - (r + x) * la_tx, -np.inf)
        top = np.maximum(alive, dead)
        e_alive, e_dead = np.exp(alive - top), np.exp(dead - top)
        tot = e_alive + e_dead
        w_alive, w_dead = e_alive / tot, e_dead / tot  # posterior weights of the two branches
        ll = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
              + top + np.log(tot))
        ab = digamma(a + b)
        abx = digamma(a + b + x)
        d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w_alive * la_T - w_dead * la_tx
        d_alpha = r / alpha - (r + x) * (w_alive / (alpha + T) + w_dead / (alpha + t_x))
        d_a = ab - abx + w_dead / a
        d_b = digamma(b + x) - abx - digamma(b) + ab - w_dead / (b + bx1)
        grad = np.array([np.dot(w, d) for d in (d_r, d_alpha, d_a, d_b)]) * np.array(
            [r, alpha, a, b])
        return -float(np.dot(w, ll)), -grad

    return f


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> BgNbdFit:
    """Maximum-likelihood BG/NBD parameters (r, alpha, a, b) for the given customers."""
    xa, ta, Ta = validate_rfm(x, t_x, T)
    if not xa.any():
        r = float(np.exp(-LOG_BOUND))
        ll = float(bgnbd_loglik_terms(r, 1.0, 1.0, 1.0, xa, ta, Ta).sum())
        return BgNbdFit(r, 1.0, 1.0, 1.0, ll, True, True, NO_REPEATS_NOTE, int(xa.size))
    (xu, tu, Tu), w = _aggregate(xa, ta, Ta)
    objective = _bgnbd_objective(xu, tu, Tu, w)
    # Start at a unit-shape population whose mean rate matches the observed repeat rate.
    rate = max(float(np.dot(w, xu) / np.dot(w, Tu)), 1e-6)
    start = np.log([1.0, 1.0 / rate, 1.0, 1.0])
    logp, ll, converged = _maximise(objective, start, analytic_grad=True, n=float(w.sum()))
    r, alpha, a, b = (float(v) for v in np.exp(logp))
    notes = _purchase_notes(logp, ("r", "alpha", "a", "b"), xa, Ta, r=r, alpha=alpha,
                            dropout=a / (a + b), dropout_text="drop-out probability a/(a+b)")
    return BgNbdFit(r, alpha, a, b, ll, converged, bool(notes), "; ".join(notes) or None,
                    int(xa.size))


# --------------------------------------------------------------------------- Pareto/NBD


def _log_sub(u: FloatArray, v: FloatArray) -> FloatArray:
    """log(exp(u) - exp(v)), -inf where the difference is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = u + np.log(-np.expm1(v - u))
    return np.where(u > v, out, -np.inf)


def _pareto_log_h(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t: FloatArray
) -> FloatArray:
    """log of 2F1(r+s+x, b2; r+s+x+1; |alpha-beta|/(hi+t)) / (hi+t)^(r+s+x).

    The 2F1 argument must lie in [0, 1), so the branch follows the larger of alpha, beta.
    """
    rsx = r + s + x
    if alpha >= beta:
        hi, b2 = alpha, s + 1.0
    else:
        hi, b2 = beta, r + x
    q = hi + t
    with np.errstate(divide="ignore"):
        return np.log(hyp2f1(rsx, b2, rsx + 1.0, abs(alpha - beta) / q)) - rsx * np.log(q)


def pareto_log_a0(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """log A0 of Fader & Hardie's Pareto/NBD note: the drop-out integral over (t_x, T]."""
    return _log_sub(_pareto_log_h(r, alpha, s, beta, x, t_x),
                    _pareto_log_h(r, alpha, s, beta, x, T))


def pareto_loglik_terms(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t_x: FloatArray, T: FloatArray,
    *, log_a0: FloatArray | None = None,
) -> FloatArray:
    """Per-customer log-likelihood of Pareto/NBD (`log_a0` if already computed)."""
    if log_a0 is None:
        log_a0 = pareto_log_a0(r, alpha, s, beta, x, t_x, T)
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    dead = np.log(s) - np.log(r + s + x) + log_a0
    return base + np.logaddexp(alive, dead)


def fit_pareto_nbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> ParetoNbdFit:
    """Maximum-likelihood Pareto/NBD parameters (r, alpha, s, beta).

    The gradient is taken by finite differences: the 2F1 terms have no cheap derivative
    in their parameters, and four parameters keep that affordable.
    """
    xa, ta, Ta = validate_rfm(x, t_x, T)
    if not xa.any():
        r = float(np.exp(-LOG_BOUND))
        ll = float(pareto_loglik_terms(r, 1.0, 1.0, 1.0, xa, ta, Ta).sum())
        return ParetoNbdFit(r, 1.0, 1.0, 1.0, ll, True, True, NO_REPEATS_NOTE, int(xa.size))
    (xu, tu, Tu), w = _aggregate(xa, ta, Ta)
    # The 2F1 terms depend on (x, t_x) or on (x, T) alone, pairs far fewer than the rows:
    # evaluating them once per distinct pair is what makes large fits affordable.
    rec, rec_of = np.unique(np.column_stack([xu, tu]), axis=0, return_inverse=True)
    age, age_of = np.unique(np.column_stack([xu, Tu]), axis=0, return_inverse=True)

    def objective(logp: FloatArray) -> tuple[float, None]:
        r, alpha, s, beta = np.exp(logp)
        log_a0 = _log_sub(_pareto_log_h(r, alpha, s, beta, rec[:, 0], rec[:, 1])[rec_of.ravel()],
                          _pareto_log_h(r, alpha, s, beta, age[:, 0], age[:, 1])[age_of.ravel()])
        ll = np.dot(w, pareto_loglik_terms(r, alpha, s, beta, xu, tu, Tu, log_a0=log_a0))
        return (-float(ll) if np.isfinite(ll) else 1e300), None

    rate = max(float(np.dot(w, xu) / np.dot(w, Tu)), 1e-6)
    mean_T = float(np.dot(w, Tu) / w.sum())
    start = np.log([1.0, 1.0 / rate, 1.0, mean_T])
    logp, ll, converged = _maximise(objective, start, analytic_grad=False, n=float(w.sum()))
    r, alpha, s, beta = (float(v) for v in np.exp(logp))
    # Share of customers gone by the longest observed T: near zero means no drop-out seen.
    gone = -np.expm1(s * (np.log(beta) - np.log(beta + float(Ta.max()))))
    notes = _purchase_notes(logp, ("r", "alpha", "s", "beta"), xa, Ta, r=r, alpha=alpha,
                            dropout=gone, dropout_text="share dropped out by the longest T")
    return ParetoNbdFit(r, alpha, s, beta, ll, converged, bool(notes), "; ".join(notes) or None,
                        int(xa.size))


# --------------------------------------------------------------------------- Gamma-Gamma


def gamma_gamma_loglik_terms(
    p: float, q: float, gamma: float, x: FloatArray, zbar: FloatArray
) -> FloatArray:
    """Per-repeater log density of the mean spend zbar over x transactions (FH 2013, eq. 3)."""
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
            + px * np.log(x) + (px - 1.0) * np.log(zbar) - (px + q) * np.log(gamma + x * zbar))


def fit_gamma_gamma(x: ArrayLike, zbar: ArrayLike) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma spend parameters (p, q, gamma).

    Customers with x = 0 carry no spend information and are skipped; repeaters whose mean
    spend is not positive (free orders) fall outside the model and are counted in `excluded`.
    """
    xa = np.asarray(x, dtype=np.float64).ravel()
    za = np.asarray(zbar, dtype=np.float64).ravel()
    if xa.shape != za.shape:
        raise ValueError("x and zbar must have the same length")
    repeat = xa > 0
    keep = repeat & (za > 0) & np.isfinite(za)
    if not keep.any():
        raise ValueError("no repeat customers with positive mean spend to fit")
    (xu, zu), w = _aggregate(xa[keep], za[keep])
    log_x, log_z = np.log(xu), np.log(zu)

    def objective(logp: FloatArray) -> tuple[float, FloatArray]:
        p, q, g = np.exp(logp)
        px = p * xu
        gxz = g + xu * zu
        ll = gamma_gamma_loglik_terms(p, q, g, xu, zu)
        psi = digamma(px + q)
        d_p = xu * (psi - digamma(px) + log_x + log_z - np.log(gxz))
        d_q = psi - digamma(q) + np.log(g) - np.log(gxz)
        d_g = q / g - (px + q) / gxz
        grad = np.array([np.dot(w, d) for d in (d_p, d_q, d_g)]) * np.array([p, q, g])
        return -float(np.dot(w, ll)), -grad

    mean_z = float(np.dot(w, zu) / w.sum())
    # Start with q = 2 so the population mean p*gamma/(q-1) equals the observed mean.
    start = np.log([1.0, 2.0, mean_z])
    logp, ll, converged = _maximise(objective, start, analytic_grad=True, n=float(w.sum()))
    p, q, g = (float(v) for v in np.exp(logp))
    edges = _edges(logp, ("p", "q", "gamma"))
    notes = []
    # A per-transaction spend CV of 1/sqrt(p) under 3 %, or a spread of customer means that
    # vanishes (q huge), is not a spend distribution the model can describe.
    if p > 1e3 or q > 1e4 or edges.get("p") == "high" or edges.get("q") == "high":
        notes.append(f"spend shows (almost) no dispersion: p = {p:.3g}, q = {q:.3g} diverge")
    if q <= 1.0:
        notes.append(f"q = {q:.3g} <= 1: the fitted spend distribution has an infinite mean, "
                     "so expected spend is not defined")
    if edges and not notes:
        notes.append(", ".join(f"{k} ran to the {v} edge of the search box"
                               for k, v in edges.items()))
    return GammaGammaFit(p, q, g, ll, converged, bool(notes),
                         "; ".join(notes) or None, int(keep.sum()), int((repeat & ~keep).sum()))
