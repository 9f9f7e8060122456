r"""Correlated Gaussians with known φ-mutual information.

Sampling. Pair k of :func:`correlated_gaussians` is x_k ~ N(0, 1), y_k = ρ_k x_k + √(1 − ρ_k²) ε_k;
extra coordinates (``dim_x``, ``dim_y``) are independent N(0, 1); ``rotate=True`` mixes x and y by
random orthogonal matrices. Every f-divergence is invariant under bijections of x and of y, so
I_φ(X; Y) depends only on the canonical correlations ρ_1 … ρ_k, and :func:`transform` (per-variable
invertible maps) leaves every I_φ unchanged.

Closed forms (:func:`gaussian_phi_mi`; I_φ = D_φ(P_XY ‖ P_X ⊗ P_Y), nats). They all follow from the
Hellinger integral of one canonical pair (phi-mi notes §3.2),

.. math:: H_\alpha(\rho) = \int p^\alpha q^{1-\alpha}
          = (1-\rho^2)^{(1-\alpha)/2}\,\big(1-(1-\alpha)^2\rho^2\big)^{-1/2},
          \quad \text{finite iff } |1-\alpha|\rho < 1,

and H_α = ∏_k H_α(ρ_k):

* KL: I = −½ Σ log(1 − ρ_k²);
* reverse KL: Σ [ρ_k²/(1 − ρ_k²) + ½ log(1 − ρ_k²)];
* Pearson χ²: H_2 − 1 = ∏ (1 − ρ_k²)^{−1} − 1 = e^{2I} − 1;
* squared Hellinger (√t − 1)²: 2(1 − H_{1/2});
* Cressie–Read(α): (H_α − 1)/(α(α − 1)); +∞ when α > 2 and (α − 1) max ρ ≥ 1;
* Rényi-α (:func:`renyi_mi`): log H_α/(α − 1).

TV and JS have no closed form. With U, V i.i.d. N(0, I_k) and C = I_KL, the log-ratio L = log r is
L_P = C + Σ (ρ_k/2)(U_k² − V_k²) under P and L_Q = C + Σ [a_k U_k² − b_k V_k²] under Q, where
a_k = ρ_k/(2(1 + ρ_k)), b_k = ρ_k/(2(1 − ρ_k)) (rotated coordinates u = (x+y)/√2, v = (x−y)/√2).
Then TV = P(L > 0) − Q(L > 0) and, in the bounded form,
JS = ½ E[log 2 − softplus(−L_P)] + ½ E[log 2 − softplus(L_Q)].
For one pair these are integrated by adaptive quadrature; for several pairs by randomised
quasi-Monte Carlo (scrambled Sobol, independent replicates give the standard error).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, special, stats

from dro_theory.checks import as_finite_array
from dro_theory.divergences import Divergence, resolve_divergence
from dro_theory.errors import InputError

__all__ = [
    "TRANSFORMS",
    "PairedSample",
    "PhiMIValue",
    "correlated_gaussians",
    "gaussian_phi_mi",
    "renyi_mi",
    "transform",
]

FloatArray = NDArray[np.float64]

#: names accepted by :func:`transform`
TRANSFORMS: tuple[str, ...] = ("identity", "cubic", "half_cube", "asinh", "normal_cdf")


@dataclass(frozen=True)
class PairedSample:
    """n paired samples (x, y) and the canonical correlations they were drawn with.

    Iterating gives ``x`` then ``y``, so ``x, y = correlated_gaussians(...)`` works.
    """

    x: FloatArray
    y: FloatArray
    canonical_correlations: FloatArray
    transform: str = "identity"

    def __iter__(self) -> Iterator[FloatArray]:
        yield self.x
        yield self.y


@dataclass(frozen=True)
class PhiMIValue:
    """A φ-MI value with how it was obtained.

    Attributes
    ----------
    value : float
        I_φ in nats (``inf`` when the divergence is infinite).
    abs_error : float
        Error bound: ~1e-15·value for closed forms, the quadrature's error estimate for
        ``quadrature``, one standard error for ``rqmc``.
    method : str
        ``closed_form``, ``quadrature`` or ``rqmc``.
    divergence : str
    note : str
        Why a value is infinite, or how many points were used.
    """

    value: float
    abs_error: float
    method: str
    divergence: str
    note: str = field(default="")


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, int | np.integer) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise InputError(f"seed: expected an int, a numpy Generator or None, found {seed!r}")


def _check_rhos(canonical_correlations: ArrayLike) -> FloatArray:
    rho = as_finite_array(np.atleast_1d(canonical_correlations), "canonical_correlations", ndim=1)
    if np.any(np.abs(rho) >= 1):
        raise InputError(
            f"canonical_correlations: expected values in (-1, 1), found max |rho| = "
            f"{np.abs(rho).max():g}"
        )
    return rho


def _orthogonal(n: int, rng: np.random.Generator) -> FloatArray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def correlated_gaussians(
    n: int,
    canonical_correlations: ArrayLike,
    seed: int | np.random.Generator | None = None,
    dim_x: int | None = None,
    dim_y: int | None = None,
    *,
    rotate: bool = False,
) -> PairedSample:
    r"""Draw n pairs with canonical correlations ρ_1 … ρ_k.

    x_k ~ N(0, 1), y_k = ρ_k x_k + √(1 − ρ_k²) ε_k for k ≤ len(ρ); coordinates beyond k (up to
    ``dim_x`` / ``dim_y``) are independent N(0, 1). With ``rotate`` x ← x Aᵀ, y ← y Bᵀ for
    Haar-random orthogonal A, B (same canonical correlations, dense covariance).

    Parameters
    ----------
    n : int
        Number of samples (≥ 1).
    canonical_correlations : array_like, shape (k,)
        Per-pair correlations in (−1, 1) (the sign does not change any I_φ).
    seed : int or numpy.random.Generator, optional
    dim_x, dim_y : int, optional
        Total dimensions (≥ k; default k).

    Returns
    -------
    PairedSample
        float64 arrays x (n, dim_x), y (n, dim_y).
    """
    rho = _check_rhos(canonical_correlations)
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise InputError(f"n: expected a positive int, found {n!r}")
    k = rho.size
    dx = k if dim_x is None else dim_x
    dy = k if dim_y is None else dim_y
    for name, d in (("dim_x", dx), ("dim_y", dy)):
        if not isinstance(d, int | np.integer) or isinstance(d, bool) or d < k:
            raise InputError(f"{name}: expected an int >= {k} (the number of pairs), found {d!r}")
    rng = _rng(seed)
    x = rng.standard_normal((int(n), int(dx)))
    noise = rng.standard_normal((int(n), int(dy)))
    y = noise.copy()
    y[:, :k] = rho * x[:, :k] + np.sqrt(1.0 - rho**2) * noise[:, :k]
    if rotate:
        x = x @ _orthogonal(int(dx), rng).T
        y = y @ _orthogonal(int(dy), rng).T
    return PairedSample(x=x, y=y, canonical_correlations=rho)


def _apply(kind: str, a: FloatArray) -> FloatArray:
    if kind == "identity":
        return a.copy()
    if kind == "cubic":
        return a**3
    if kind == "half_cube":
        return a * np.sqrt(np.abs(a))
    if kind == "asinh":
        return np.arcsinh(a)
    return np.asarray(special.ndtr(a))


def transform(
    x: ArrayLike,
    y: ArrayLike,
    kind: str,
    *,
    which: Literal["both", "x", "y"] = "both",
) -> PairedSample:
    r"""Apply a strictly increasing map to every coordinate of x and/or y.

    ``cubic`` t³, ``half_cube`` t|t|^{1/2}, ``asinh`` arcsinh t, ``normal_cdf`` Φ(t) (uniform
    marginals for standard normal inputs; in float64 Φ rounds to 1 above t ≈ 8.3, so the map is
    numerically injective only for |t| ≲ 8), ``identity``. Bijections of each variable leave
    D_φ(P_XY ‖ P_X ⊗ P_Y) unchanged for every φ, so the closed forms still apply.

    Returns
    -------
    PairedSample
        With ``canonical_correlations`` empty (unknown to this function) and ``transform`` set.
    """
    if kind not in TRANSFORMS:
        raise InputError(f"kind: expected one of {', '.join(TRANSFORMS)}, found {kind!r}")
    if which not in ("both", "x", "y"):
        raise InputError(f"which: expected 'both', 'x' or 'y', found {which!r}")
    xa = as_finite_array(x, "x", ndim=2)
    ya = as_finite_array(y, "y", ndim=2)
    if xa.shape[0] != ya.shape[0]:
        raise InputError(f"y: expected {xa.shape[0]} rows like x, found {ya.shape[0]}")
    xt = _apply(kind, xa) if which in ("both", "x") else xa.copy()
    yt = _apply(kind, ya) if which in ("both", "y") else ya.copy()
    return PairedSample(x=xt, y=yt, canonical_correlations=np.empty(0), transform=kind)


# ------------------------------------------------------------------------------------------
# closed forms
def _log_hellinger_integral(rho: FloatArray, alpha: float) -> float:
    """log H_α = Σ_k [(1−α)/2 · log(1−ρ_k²) − ½ log(1 − (1−α)²ρ_k²)]; +inf when divergent."""
    r2 = rho**2
    inner = (1.0 - alpha) ** 2 * r2
    if np.any(inner >= 1.0):
        return math.inf
    return float(np.sum(0.5 * (1.0 - alpha) * np.log1p(-r2) - 0.5 * np.log1p(-inner)))


def renyi_mi(canonical_correlations: ArrayLike, alpha: float) -> float:
    r"""Rényi-α mutual information D_α(P_XY ‖ P_X ⊗ P_Y) = log H_α/(α − 1), in nats.

    Additive over canonical pairs; D_1 = I_KL (the limit), D_2 = 2 I_KL; +inf when
    |α − 1| max ρ ≥ 1.
    """
    rho = _check_rhos(canonical_correlations)
    if not isinstance(alpha, int | float) or not math.isfinite(alpha) or alpha <= 0:
        raise InputError(f"alpha: expected a finite number > 0, found {alpha!r}")
    if alpha == 1:
        return float(-0.5 * np.sum(np.log1p(-(rho**2))))
    return _log_hellinger_integral(rho, float(alpha)) / (alpha - 1.0)


def _closed(value: float, div: Divergence, note: str = "") -> PhiMIValue:
    err = 0.0 if not math.isfinite(value) else 1e-15 * max(abs(value), 1.0) * 8
    return PhiMIValue(value, err, "closed_form", str(div), note)


def gaussian_phi_mi(
    canonical_correlations: ArrayLike,
    divergence: str | Divergence,
    *,
    seed: int = 0,
    n_points: int = 2**15,
    n_replicates: int = 16,
) -> PhiMIValue:
    r"""I_φ(X; Y) for jointly Gaussian (X, Y) with the given canonical correlations.

    Closed forms for ``kl``, ``reverse_kl``, ``chi2``, ``hellinger`` and ``cressie_read``
    (see the module docstring). ``tv`` and ``js``: one pair by adaptive quadrature
    (``abs_error`` is scipy's error estimate, ≲ 1e-10), several pairs by randomised QMC with
    ``n_replicates`` independent scrambles of ``n_points`` Sobol points each (``abs_error`` is
    the standard error of the replicate mean; the TV estimator integrates V_k of the pair with
    the largest ρ analytically, which makes it smooth and the QMC error small).

    Parameters
    ----------
    canonical_correlations : array_like, shape (k,)
        Values in (−1, 1); only |ρ| matters.
    divergence : str or Divergence
        A catalogue name/spec (``"hellinger"``, ``"cr:1.5"``) or instance.
    seed : int
        Scrambling seed of the QMC (TV/JS with k > 1).
    n_points : int
        Sobol points per replicate (a power of 2).
    n_replicates : int
        Independent scrambles (≥ 2).
    """
    rho = np.abs(_check_rhos(canonical_correlations))
    div = resolve_divergence(divergence)
    rho = rho[rho > 0]
    if rho.size == 0:
        return _closed(0.0, div, "independent: every I_phi is 0")
    name = div.name
    kl = float(-0.5 * np.sum(np.log1p(-(rho**2))))
    if name == "kl":
        return _closed(kl, div)
    if name == "reverse_kl":
        r2 = rho**2
        return _closed(float(np.sum(r2 / (1.0 - r2) + 0.5 * np.log1p(-r2))), div)
    if name == "chi2":
        return _closed(math.expm1(2.0 * kl), div)
    if name == "hellinger":
        return _closed(-2.0 * math.expm1(_log_hellinger_integral(rho, 0.5)), div)
    if name == "cressie_read":
        alpha = float(getattr(div, "alpha"))  # noqa: B009 - CressieRead only
        log_h = _log_hellinger_integral(rho, alpha)
        if not math.isfinite(log_h):
            return _closed(
                math.inf,
                div,
                f"infinite: the Hellinger integral H_{alpha:g} diverges because "
                f"(alpha - 1) * max rho = {(alpha - 1) * rho.max():.4g} >= 1",
            )
        return _closed(math.expm1(log_h) / (alpha * (alpha - 1.0)), div)
    if name in ("tv", "js"):
        if rho.size == 1:
            return _quadrature(float(rho[0]), name, div)
        if not isinstance(n_points, int) or n_points < 2 or n_points & (n_points - 1):
            raise InputError(f"n_points: expected a power of 2 >= 2, found {n_points!r}")
        if not isinstance(n_replicates, int) or n_replicates < 2:
            raise InputError(f"n_replicates: expected an int >= 2, found {n_replicates!r}")
        return _rqmc(rho, name, div, seed, n_points, n_replicates)
    raise InputError(f"divergence: no Gaussian φ-MI known for {div}")  # pragma: no cover


# ------------------------------------------------------------------------------------------
# TV and JS
def _coefficients(rho: FloatArray) -> tuple[float, FloatArray, FloatArray, FloatArray]:
    """C = I_KL, P-coefficient ρ/2, Q-coefficients a = ρ/(2(1+ρ)), b = ρ/(2(1−ρ))."""
    c = float(-0.5 * np.sum(np.log1p(-(rho**2))))
    return c, 0.5 * rho, rho / (2.0 * (1.0 + rho)), rho / (2.0 * (1.0 - rho))


def _quadrature(rho: float, name: str, div: Divergence) -> PhiMIValue:
    r"""One canonical pair, adaptive quadrature.

    TV: L > 0 ⟺ |v| < s(u) = √((C + a u²)/b) in the rotated coordinates, so with u standardised
    under each law the v-integral is a normal CDF and
    TV = ∫ φ(z) [2Φ(s(√(1+ρ) z)/√(1−ρ)) − 1 − (2Φ(s(z)) − 1)] dz (1-D, ``quad`` on ℝ).
    JS: 2-D ``dblquad`` of the bounded softplus integrand against the N(0, I₂) density on
    [0, 12]² (×4 by symmetry; the mass outside is < 1e-32).
    """
    c, p_coef, a_arr, b_arr = _coefficients(np.array([rho]))
    a, b, pc = float(a_arr[0]), float(b_arr[0]), float(p_coef[0])
    if name == "tv":

        def s(u: float) -> float:
            return math.sqrt((c + a * u * u) / b)

        def integrand(z: float) -> float:
            p_in = special.erf(s(math.sqrt(1.0 + rho) * z) / math.sqrt(1.0 - rho) / math.sqrt(2))
            q_in = special.erf(s(z) / math.sqrt(2))
            return float(np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * (p_in - q_in))

        value, err = integrate.quad(integrand, 0.0, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)
        return PhiMIValue(2 * value, 2 * err, "quadrature", str(div), "1-D integral over u")

    log2 = math.log(2.0)

    def js_integrand(vv: float, uu: float) -> float:
        lp = c + pc * (uu * uu - vv * vv)
        lq = c + a * uu * uu - b * vv * vv
        g = 0.5 * (log2 - np.logaddexp(0.0, -lp)) + 0.5 * (log2 - np.logaddexp(0.0, lq))
        return float(g * math.exp(-0.5 * (uu * uu + vv * vv)) / (2 * math.pi))

    value, err = integrate.dblquad(js_integrand, 0.0, 12.0, 0.0, 12.0, epsabs=1e-12, epsrel=1e-10)
    return PhiMIValue(4 * value, 4 * err, "quadrature", str(div), "2-D integral over (u, v)")


def _rqmc(
    rho: FloatArray, name: str, div: Divergence, seed: int, n_points: int, reps: int
) -> PhiMIValue:
    k = rho.size
    c, pc, a, b = _coefficients(rho)
    top = int(np.argmax(rho))
    others = np.arange(k) != top
    dim = 2 * k - 1 if name == "tv" else 2 * k
    rng = np.random.default_rng(seed)
    estimates = np.empty(reps)
    log2 = math.log(2.0)
    for r in range(reps):
        sob = stats.qmc.Sobol(dim, scramble=True, seed=rng)
        pts = np.clip(sob.random(n_points), 1e-16, 1.0 - 1e-16)
        z = special.ndtri(pts)
        u = z[:, :k]
        if name == "tv":
            v_rest = z[:, k:]
            # P: L_P > 0 ⟺ V_top² < m_P = (C + Σ pc U² − Σ_{others} pc V²)/pc_top; same for Q.
            m_p = (c + u**2 @ pc - v_rest**2 @ pc[others]) / pc[top]
            m_q = (c + u**2 @ a - v_rest**2 @ b[others]) / b[top]
            prob_p = special.erf(np.sqrt(np.clip(m_p, 0.0, None) / 2.0))
            prob_q = special.erf(np.sqrt(np.clip(m_q, 0.0, None) / 2.0))
            estimates[r] = float(np.mean(prob_p - prob_q))
        else:
            v = z[:, k:]
            lp = c + (u**2 - v**2) @ pc
            lq = c + u**2 @ a - v**2 @ b
            g = 0.5 * (log2 - np.logaddexp(0.0, -lp)) + 0.5 * (log2 - np.logaddexp(0.0, lq))
            estimates[r] = float(np.mean(g))
    se = float(estimates.std(ddof=1) / math.sqrt(reps))
    note = f"randomised QMC: {reps} scrambled Sobol replicates x {n_points} points, seed {seed}"
    return PhiMIValue(float(estimates.mean()), se, "rqmc", str(div), note)
