"""Predicted customer value: BG/NBD (Fader, Hardie & Lee 2005) for purchase counts and the
chance a customer is still active, and Gamma-Gamma (Fader, Hardie & Lee 2005; Fader & Hardie
2013 note) for spend per purchase. Both fitted by maximum likelihood with scipy.

Pure functions over numpy arrays (no database). Inputs per customer, in one time unit
(weeks for the platform, as in the paper):

- ``x``: repeat purchases (purchases after the first),
- ``t_x``: time from the first purchase to the last one,
- ``T``: time from the first purchase to the end of the calibration period,
- for Gamma-Gamma, ``n`` repeat purchases and their mean value ``m`` (the first purchase left out).

Optional ``weights`` let identical customers be fitted as one row (a compressed table).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special


class _Fit:
    """What both fits report besides their parameters (fields ``log_likelihood``, ``members``,
    ``converged``, ``at_bound`` on each dataclass)."""

    at_bound: tuple[str, ...]
    converged: bool

    @property
    def degenerate(self) -> bool:
        """A parameter at its bound or a fit that did not converge: the numbers cannot be trusted."""
        return bool(self.at_bound) or not self.converged

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "at_bound": list(self.at_bound)}


@dataclass(frozen=True)
class BgNbd(_Fit):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = 0.0
    members: int = 0
    converged: bool = True
    at_bound: tuple[str, ...] = ()


@dataclass(frozen=True)
class GammaGamma(_Fit):
    p: float
    q: float
    gamma: float
    log_likelihood: float = 0.0
    members: int = 0
    converged: bool = True
    at_bound: tuple[str, ...] = ()


class FitError(ValueError):
    """The data cannot support a fit (too few customers, no repeat purchases, no convergence)."""


def _arrays(*values) -> list[np.ndarray]:
    return [np.asarray(v, dtype="float64") for v in values]


# BG/NBD --------------------------------------------------------------------------------------------


LOG_BOUNDS = (-10.0, 10.0)  # parameters are fitted on their logarithms, within e^-10 .. e^10
AT_BOUND = 1e-3  # a log-parameter this close to a bound is "at the bound"


def _weights(weights, like: np.ndarray) -> np.ndarray:
    return np.ones_like(like) if weights is None else np.asarray(weights, dtype="float64")


def _bgnbd_terms(params, x, t_x, T):
    r, alpha, a, b = params
    no_repeat = -(r + x) * np.log(alpha + T)
    repeat = np.where(
        x > 0,
        np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return no_repeat, repeat


def bgnbd_log_likelihood(params, x, t_x, T, weights=None) -> float:
    """Sum of the individual log-likelihoods (FHL 2005, equation 6)."""
    r, alpha, a, b = params
    x, t_x, T = _arrays(x, t_x, T)
    weights = _weights(weights, x)
    common = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    no_repeat, repeat = _bgnbd_terms(params, x, t_x, T)
    return float(np.sum(weights * (common + np.logaddexp(no_repeat, repeat))))


def bgnbd_gradient(params, x, t_x, T, weights=None) -> np.ndarray:
    """Gradient of ``bgnbd_log_likelihood`` with respect to (r, alpha, a, b)."""
    r, alpha, a, b = params
    x, t_x, T = _arrays(x, t_x, T)
    weights = _weights(weights, x)
    no_repeat, repeat = _bgnbd_terms(params, x, t_x, T)
    total = np.logaddexp(no_repeat, repeat)
    w_no, w_rep = np.exp(no_repeat - total), np.exp(repeat - total)
    psi = special.digamma
    log_tx = np.log(alpha + t_x)
    d_r = psi(r + x) - psi(r) + np.log(alpha) - w_no * np.log(alpha + T) - w_rep * log_tx
    d_alpha = r / alpha - w_no * (r + x) / (alpha + T) - w_rep * (r + x) / (alpha + t_x)
    d_a = psi(a + b) - psi(a + b + x) + w_rep / a
    d_b = psi(a + b) + psi(b + x) - psi(b) - psi(a + b + x) - w_rep / np.maximum(b + x - 1, 1e-300)
    return np.array([np.sum(weights * d) for d in (d_r, d_alpha, d_a, d_b)])


@dataclass(frozen=True)
class _Optimum:
    params: np.ndarray
    converged: bool
    at_bound: tuple[int, ...]


def _maximize(log_likelihood, gradient, start, scale: float) -> _Optimum:
    """Maximize over log-parameters with L-BFGS-B and the analytic gradient. A parameter that
    runs to a bound means the data sits at the model's limit (e.g. no heterogeneity): the bound
    keeps it finite and the optimum says which parameters sit there."""

    def objective(log_params):
        params = np.exp(log_params)
        value = log_likelihood(params)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(log_params)
        return -value / scale, -gradient(params) * params / scale

    result = optimize.minimize(
        objective,
        np.log(np.asarray(start, dtype="float64")),
        jac=True,
        method="L-BFGS-B",
        bounds=[LOG_BOUNDS] * len(start),
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
    )
    if not np.all(np.isfinite(result.x)):
        raise FitError("the fit did not converge")
    low, high = LOG_BOUNDS
    at_bound = tuple(int(i) for i in np.flatnonzero((result.x <= low + AT_BOUND) | (result.x >= high - AT_BOUND)))
    # L-BFGS-B may stop on a line search at the optimum; a small scaled gradient is converged too
    converged = bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-5
    return _Optimum(params=np.exp(result.x), converged=converged, at_bound=at_bound)


def bgnbd_fit(x, t_x, T, weights=None, *, start=(1.0, 1.0, 1.0, 1.0)) -> BgNbd:
    """Maximum-likelihood r, alpha, a, b."""
    x, t_x, T = _arrays(x, t_x, T)
    if len(x) < 2 or not np.any(x > 0):
        raise FitError("BG/NBD needs customers with repeat purchases")
    if np.any(t_x > T) or np.any(t_x < 0) or np.any(x < 0):
        raise FitError("BG/NBD needs 0 <= t_x <= T and x >= 0")
    scale = float(np.sum(weights) if weights is not None else len(x))
    optimum = _maximize(
        lambda p: bgnbd_log_likelihood(p, x, t_x, T, weights),
        lambda p: bgnbd_gradient(p, x, t_x, T, weights),
        start,
        scale,
    )
    r, alpha, a, b = (float(v) for v in optimum.params)
    return BgNbd(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=bgnbd_log_likelihood(optimum.params, x, t_x, T, weights),
        members=int(round(scale)),
        converged=optimum.converged,
        at_bound=tuple(("r", "alpha", "a", "b")[i] for i in optimum.at_bound),
    )


def _repeat_odds_log(model: BgNbd, x, t_x, T) -> np.ndarray:
    """log of (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x))^(r + x); -inf when x == 0."""
    return np.where(
        x > 0,
        np.log(model.a)
        - np.log(np.maximum(model.b + x - 1, 1e-300))
        + (model.r + x) * (np.log(model.alpha + T) - np.log(model.alpha + t_x)),
        -np.inf,
    )


def probability_alive(model: BgNbd, x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T) (FHL 2005, equation 13)."""
    x, t_x, T = _arrays(x, t_x, T)
    return special.expit(-_repeat_odds_log(model, x, t_x, T))


def log_hyp2f1_series(A, B, C, z, *, tolerance: float = 1e-16, max_terms: int = 1_000_000) -> np.ndarray:
    """log 2F1(A, B; C; z) for A, B, C > 0 and 0 <= z < 1, by its power series summed in log
    space (every term is positive, so nothing overflows). For the parameters where scipy's
    ``hyp2f1`` overflows (large a and b fitted on a homogeneous base, z near 1)."""
    shape = np.broadcast(A, B, C, z).shape
    A, B, C, z = (np.array(v, dtype=float).ravel() for v in np.broadcast_arrays(A, B, C, z))
    log_term = np.zeros(z.shape)
    log_sum = np.zeros(z.shape)
    active = np.ones(z.shape, dtype=bool)
    with np.errstate(divide="ignore"):
        log_z = np.log(z)
    k = 0
    while active.any() and k < max_terms:
        rows = np.flatnonzero(active)
        a, b, c = A[rows] + k, B[rows] + k, C[rows] + k
        log_term[rows] += np.log(a) + np.log(b) - np.log(c) - np.log(k + 1) + log_z[rows]
        log_sum[rows] = np.logaddexp(log_sum[rows], log_term[rows])
        shrinking = a * b * z[rows] < c * (k + 1)  # the next terms only get smaller
        done = shrinking & (log_term[rows] - log_sum[rows] < np.log(tolerance))
        active[rows[done]] = False
        k += 1
    return log_sum.reshape(shape)


def expected_purchases(model: BgNbd, t: float, x, t_x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` periods (FHL 2005, equation 10)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    z = t / (alpha + T + t)
    # ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z), written with Euler's transformation
    # 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) so that no term overflows for large x or b.
    hyp = special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    head = (a + b + x - 1) / (a - 1)
    with np.errstate(invalid="ignore", over="ignore"):
        body = 1 - np.exp((a - 1) * np.log1p(-z)) * hyp
    overflowed = ~np.isfinite(body)
    if overflowed.any() and a > 1 and a + b - 1 - r > 0:
        z_over = np.broadcast_to(z, body.shape)[overflowed]
        c_over = np.broadcast_to(a + b + x - 1, body.shape)[overflowed]
        # members share (x, T) pairs: sum each distinct series once
        pairs, back = np.unique(np.stack([c_over, z_over], axis=1), axis=0, return_inverse=True)
        log_hyp = log_hyp2f1_series(a + b - 1 - r, a - 1, pairs[:, 0], pairs[:, 1])[back.ravel()]
        body[overflowed] = -np.expm1((a - 1) * np.log1p(-z_over) + log_hyp)
    value = head * body * special.expit(-_repeat_odds_log(model, x, t_x, T))
    return np.clip(np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


# Gamma-Gamma ----------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params, n, m, weights=None) -> float:
    """Sum of log densities of each customer's mean purchase value ``m`` over ``n`` purchases."""
    p, q, gamma = params
    n, m = _arrays(n, m)
    weights = _weights(weights, n)
    values = (
        special.gammaln(p * n + q)
        - special.gammaln(p * n)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (p * n - 1) * np.log(m)
        + p * n * np.log(n)
        - (p * n + q) * np.log(gamma + n * m)
    )
    return float(np.sum(weights * values))


def gamma_gamma_gradient(params, n, m, weights=None) -> np.ndarray:
    """Gradient of ``gamma_gamma_log_likelihood`` with respect to (p, q, gamma)."""
    p, q, gamma = params
    n, m = _arrays(n, m)
    weights = _weights(weights, n)
    psi = special.digamma
    log_total = np.log(gamma + n * m)
    d_p = n * (psi(p * n + q) - psi(p * n) + np.log(m) + np.log(n) - log_total)
    d_q = psi(p * n + q) - psi(q) + np.log(gamma) - log_total
    d_gamma = q / gamma - (p * n + q) / (gamma + n * m)
    return np.array([np.sum(weights * d) for d in (d_p, d_q, d_gamma)])


def gamma_gamma_fit(n, m, weights=None, *, start=(1.0, 1.0, 1.0)) -> GammaGamma:
    """Maximum-likelihood p, q, gamma from customers with n >= 1 purchases of mean value m > 0."""
    n, m = _arrays(n, m)
    keep = (n > 0) & (m > 0)
    if weights is not None:
        weights = np.asarray(weights, dtype="float64")[keep]
    n, m = n[keep], m[keep]
    if len(n) < 2:
        raise FitError("Gamma-Gamma needs customers with positive spend")
    scale = float(np.sum(weights) if weights is not None else len(n))
    optimum = _maximize(
        lambda p: gamma_gamma_log_likelihood(p, n, m, weights),
        lambda p: gamma_gamma_gradient(p, n, m, weights),
        start,
        scale,
    )
    p, q, gamma = (float(v) for v in optimum.params)
    return GammaGamma(
        p=p,
        q=q,
        gamma=gamma,
        log_likelihood=gamma_gamma_log_likelihood(optimum.params, n, m, weights),
        members=int(round(scale)),
        converged=optimum.converged,
        at_bound=tuple(("p", "q", "gamma")[i] for i in optimum.at_bound),
    )


def expected_spend(model: GammaGamma, n, m) -> np.ndarray:
    """E[M | p, q, gamma, n, m]: expected value of a future purchase (a weighted mean of the
    population mean p*gamma/(q-1) and the customer's own mean). Needs q > 1."""
    n, m = _arrays(n, m)
    if model.q <= 1:
        raise FitError("Gamma-Gamma with q <= 1 has no finite mean spend")
    m = np.clip(m, 0.0, None)
    return model.p * (model.gamma + n * m) / (model.p * n + model.q - 1)


def compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Unique rows of the given columns, their counts (weights) and the inverse index."""
    stacked = np.column_stack([np.asarray(c, dtype="float64") for c in columns])
    unique, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype("float64"), inverse.ravel()
