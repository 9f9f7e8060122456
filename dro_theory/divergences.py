r"""The φ-divergence catalogue: one class per divergence, one convention table.

A φ-divergence between probability vectors ``q`` and ``p`` (Wu et al. 2023, Eq. 2) is

.. math:: D_\phi(q \,\|\, p) = \sum_i p_i\, \phi(q_i / p_i),

with φ convex on [0, ∞) and φ(1) = 0. Its convex conjugate, taken over the likelihood ratio
t ≥ 0, is φ*(s) = sup_{t ≥ 0} { s t − φ(t) }; the maximiser t*(s) = (φ*)'(s) is the worst-case
likelihood ratio q/p of every dual in this package.

Convention table (all in nats; ``curvature`` = φ''(1), ``third_derivative`` = φ'''(1)):

* ``kl``: φ(t) = t log t; φ*(s) = exp(s − 1) on ℝ; φ''(1) = 1, φ'''(1) = −1.
* ``reverse_kl``: φ(t) = −log t; φ*(s) = −1 − log(−s) on s < 0; 1, −2.
* ``chi2`` (Pearson): φ(t) = (t − 1)²; φ*(s) = s + s²/4 for s ≥ −2, −1 below, on ℝ; 2, 0.
* ``hellinger`` (squared): φ(t) = (√t − 1)²; φ*(s) = s/(1 − s) on s < 1; 1/2, −3/4.
* ``tv``: φ(t) = |t − 1|/2; φ*(s) = max(s, −1/2) on s ≤ 1/2; not twice differentiable (nan).
* ``js``: φ(t) = ½[t log t − (1+t) log((1+t)/2)]; φ*(s) = −½ log(2 − e^{2s}) on
  s < ½ log 2; 1/4, −3/8.
* ``cressie_read`` (α > 0, α ≠ 1): φ(t) = (t^α − 1 − α(t − 1))/(α(α − 1));
  φ*(s) = ((1 + (α − 1)s)_+^{α/(α−1)} − 1)/α on ℝ for α > 1 and on s < 1/(1 − α) for α < 1;
  1, α − 2.

Affine terms (KL as t log t, reverse KL as −log t), the ½ conventions and the Cressie–Read
limits are discussed in ``docs/dro_theory.md``; ``alpha`` must be > 0 and ≠ 1.
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory._backend import is_torch, namespace
from dro_theory.checks import as_finite_array
from dro_theory.errors import InputError

if TYPE_CHECKING:  # pragma: no cover - typing only; cvxpy is imported lazily
    import cvxpy as cp

__all__ = [
    "DIVERGENCE_NAMES",
    "KL",
    "ChiSquare",
    "CressieRead",
    "Divergence",
    "Hellinger",
    "JensenShannon",
    "ReverseKL",
    "TotalVariation",
    "divergence_from_spec",
    "get_divergence",
    "resolve_divergence",
]

FloatArray = NDArray[np.float64]


def _arr(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class Divergence(ABC):
    r"""A φ-divergence: φ, its conjugate φ*, the worst-case ratio (φ*)' and D_φ(q‖p).

    Subclasses state φ and φ* in closed form. Every array method is elementwise and vectorised.
    """

    #: registry name, e.g. ``"kl"``
    name: str = ""

    # --- what each divergence states -------------------------------------------------------
    @property
    @abstractmethod
    def curvature(self) -> float:
        """φ''(1); ``nan`` where φ is not twice differentiable at 1 (TV)."""

    @property
    @abstractmethod
    def third_derivative(self) -> float:
        """φ'''(1); ``nan`` where it does not exist."""

    @property
    @abstractmethod
    def conjugate_domain(self) -> tuple[float, float, bool]:
        """(lo, hi, hi_closed): dom φ* is the interval from lo to hi (lo is always −∞)."""

    @property
    @abstractmethod
    def phi_at_zero(self) -> float:
        """φ(0) (may be +inf), the cost per unit of reference mass that q removes entirely."""

    @property
    @abstractmethod
    def slope_at_infinity(self) -> float:
        """lim_{t→∞} φ(t)/t (may be +inf): cost per unit of q-mass where p = 0."""

    @abstractmethod
    def _phi(self, t: Any, xp: Any) -> Any:
        """φ on t ≥ 0 (t already validated); ``xp`` is the array namespace (numpy or torch)."""

    @abstractmethod
    def _conjugate(self, s: Any, xp: Any) -> Any:
        """φ* on dom φ*."""

    @abstractmethod
    def _ratio(self, s: Any, xp: Any) -> Any:
        """(φ*)'(s) = argmax_{t≥0} {s t − φ(t)} on dom φ* (a subgradient where not unique)."""

    @abstractmethod
    def phi_prime(self, t: ArrayLike) -> FloatArray:
        """φ'(t) for t > 0: the optimal critic at likelihood ratio t."""

    @abstractmethod
    def cvxpy_constraint(
        self, ratio: cp.Variable, w: FloatArray, radius: float
    ) -> list[cp.Constraint]:
        r"""Constraints Σ_i w_i φ(L_i) ≤ n·η for the scaled likelihood-ratio variable L.

        ``w = n q0`` (entries O(1)) and ``L = q/q0``; the caller also imposes w·L = n and L ≥ 0.
        Importing cvxpy happens inside the method (cvxpy is optional outside the primal).
        """

    def cvxpy_multiplier_form(self, n: int, radius: float) -> tuple[float, float]:
        """(κ, b) with ∂G(L)/∂L_i = w_i (κ φ'(L_i) + b) for :meth:`cvxpy_constraint`'s G ≤ u.

        Direct forms Σ w φ(L) ≤ nη (the default): κ = 1, b = 0. The primal reads α*, c*
        from its multipliers through this (:mod:`dro_theory.worst_case`).
        """
        return 1.0, 0.0

    # --- shared, derived -------------------------------------------------------------------
    @property
    def smooth(self) -> bool:
        """Whether φ is C² at 1 (the mean–variance expansions need it)."""
        return math.isfinite(self.curvature)

    def _evaluate(self, x: Any, fn: Any, inside: Any, safe: float, fill: float) -> Any:
        """Apply ``fn`` where ``inside(x)`` holds and ``fill`` elsewhere, gradient-safely.

        Outside the domain ``fn`` is evaluated at ``safe`` (a point inside it), so neither the
        value nor a torch gradient picks up NaN from the branch that is not taken.
        """
        xp = namespace(x)
        if not is_torch(x):
            x = np.asarray(x, dtype=np.float64)
        ok = inside(x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = fn(xp.where(ok, x, safe), xp)
        return xp.where(ok, value, fill)

    def _conjugate_safe_point(self) -> float:
        _, hi, _ = self.conjugate_domain
        return hi - 1.0 if math.isfinite(hi) else 0.0

    def phi(self, t: Any) -> Any:
        """φ(t); +inf for t < 0 (outside dom φ). Accepts numpy arrays or torch tensors."""
        return self._evaluate(t, self._phi, lambda v: v >= 0, 1.0, math.inf)

    def in_conjugate_domain(self, s: Any) -> Any:
        """Boolean mask of the entries of ``s`` inside dom φ* (numpy or torch)."""
        _, hi, closed = self.conjugate_domain
        return (s <= hi) if closed else (s < hi)

    def conjugate(self, s: Any) -> Any:
        """φ*(s) = sup_{t≥0} {s t − φ(t)}; +inf outside dom φ*. numpy or torch (differentiable)."""
        return self._evaluate(
            s, self._conjugate, self.in_conjugate_domain, self._conjugate_safe_point(), math.inf
        )

    def conjugate_derivative(self, s: Any) -> Any:
        """(φ*)'(s): the maximising likelihood ratio t*(s) ≥ 0; nan outside dom φ*."""
        return self._evaluate(
            s, self._ratio, self.in_conjugate_domain, self._conjugate_safe_point(), math.nan
        )

    def divergence(self, q: ArrayLike, p: ArrayLike) -> FloatArray:
        r"""D_φ(q‖p) = Σ_i p_i φ(q_i/p_i) along the last axis.

        Atoms with p_i = 0 < q_i contribute q_i · lim_{t→∞} φ(t)/t; atoms with both zero
        contribute nothing. Leading axes broadcast, so (B, n) inputs give B values.

        Raises
        ------
        InputError
            On NaN/inf, negative entries or mismatched shapes.
        """
        q = as_finite_array(q, "q")
        p = as_finite_array(p, "p")
        if q.shape[-1] != p.shape[-1]:
            raise InputError(
                f"p: expected the same length as q ({q.shape[-1]}), found {p.shape[-1]}"
            )
        if np.any(q < 0) or np.any(p < 0):
            raise InputError("q, p: expected non-negative probability vectors, found negatives")
        q, p = np.broadcast_arrays(q, p)
        pos = p > 0
        ratio = np.divide(q, p, out=np.zeros_like(q), where=pos)
        with np.errstate(invalid="ignore"):
            inner = np.where(pos, p * self.phi(ratio), 0.0)
            slope = self.slope_at_infinity
            extra = np.where(~pos & (q > 0), q * slope, 0.0)
        return np.asarray((inner + extra).sum(axis=-1))

    def point_mass_radius(self, p_max: ArrayLike) -> FloatArray:
        r"""Smallest radius whose ball contains a point mass on an atom of reference mass p.

        D_φ(δ_k‖p) = p φ(1/p) + (1 − p) φ(0). For KL this is −log p, for χ² 1/p − 1, for squared
        Hellinger 2 − 2√p; for reverse KL it is +inf (the ball never contains a point mass).
        """
        p = _arr(p_max)
        with np.errstate(divide="ignore", invalid="ignore"):
            phi0 = self.phi_at_zero
            rest = (
                np.where(p < 1, (1 - p) * phi0, 0.0)
                if math.isfinite(phi0)
                else np.where(p < 1, np.inf, 0.0)
            )
            return np.asarray(p * self.phi(1.0 / p) + rest)

    def __str__(self) -> str:
        return self.name


# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KL(Divergence):
    """Kullback–Leibler, φ(t) = t log t, φ*(s) = e^{s−1}."""

    name: str = "kl"
    curvature = 1.0
    third_derivative = -1.0
    conjugate_domain = (-math.inf, math.inf, False)
    phi_at_zero = 0.0
    slope_at_infinity = math.inf

    def _phi(self, t: Any, xp: Any) -> Any:
        return xp.xlogy(t, t)

    def _conjugate(self, s: Any, xp: Any) -> Any:
        return xp.exp(s - 1.0)

    def _ratio(self, s: Any, xp: Any) -> Any:
        return xp.exp(s - 1.0)

    def phi_prime(self, t: ArrayLike) -> FloatArray:
        with np.errstate(divide="ignore"):
            return 1.0 + np.log(_arr(t))

    def cvxpy_constraint(self, ratio: Any, w: FloatArray, radius: float) -> list[Any]:
        import cvxpy as cp

        n = w.shape[0]
        return [w @ cp.rel_entr(ratio, 1.0) <= n * radius]


@dataclass(frozen=True)
class ReverseKL(Divergence):
    """Reverse KL (Burg, KL(p‖q)), φ(t) = −log t, φ*(s) = −1 − log(−s) on s < 0."""

    name: str = "reverse_kl"
    curvature = 1.0
    third_derivative = -2.0
    conjugate_domain = (-math.inf, 0.0, False)
    phi_at_zero = math.inf
    slope_at_infinity = 0.0

    def _phi(self, t: Any, xp: Any) -> Any:
        return -xp.log(t)

    def _conjugate(self, s: Any, xp: Any) -> Any:
        return -1.0 - xp.log(-s)

    def _ratio(self, s: Any, xp: Any) -> Any:
        return -1.0 / s

    def phi_prime(self, t: ArrayLike) -> FloatArray:
        with np.errstate(divide="ignore"):
            return -1.0 / _arr(t)

    def cvxpy_constraint(self, ratio: Any, w: FloatArray, radius: float) -> list[Any]:
        import cvxpy as cp

        n = w.shape[0]
        return [-(w @ cp.log(ratio)) <= n * radius]


@dataclass(frozen=True)
class ChiSquare(Divergence):
    """Pearson χ², φ(t) = (t − 1)², φ*(s) = s + s²/4 for s ≥ −2 and −1 below (t ≥ 0 binds)."""

    name: str = "chi2"
    curvature = 2.0
    third_derivative = 0.0
    conjugate_domain = (-math.inf, math.inf, False)
    phi_at_zero = 1.0
    slope_at_infinity = math.inf

    def _phi(self, t: Any, xp: Any) -> Any:
        return (t - 1.0) ** 2

    def _conjugate(self, s: Any, xp: Any) -> Any:
        return xp.where(s >= -2.0, s + 0.25 * s * s, -1.0)

    def _ratio(self, s: Any, xp: Any) -> Any:
        return xp.clip(1.0 + 0.5 * s, min=0.0)

    def phi_prime(self, t: ArrayLike) -> FloatArray:
        return 2.0 * (_arr(t) - 1.0)

    def cvxpy_constraint(self, ratio: Any, w: FloatArray, radius: float) -> list[Any]:
        import cvxpy as cp

        n = w.shape[0]
        # cp.sqrt (not math.sqrt) so that ``radius`` may be a cvxpy Parameter (DPP-compliant).
        return [cp.norm(cp.multiply(np.sqrt(w), ratio - 1.0), 2) <= cp.sqrt(n * radius)]

    def cvxpy_multiplier_form(self, n: int, radius: float) -> tuple[float, float]:
        # ∂G = w (L − 1)/√(nη) at the active constraint and φ'(L) = 2(L − 1)
        return 1.0 / (2.0 * math.sqrt(n * radius)), 0.0


@dataclass(frozen=True)
class Hellinger(Divergence):
    """Squared Hellinger, φ(t) = (√t − 1)², φ*(s) = s/(1 − s) on s < 1; H² ∈ [0, 2]."""

    name: str = "hellinger"
    curvature = 0.5
    third_derivative = -0.75
    conjugate_domain = (-math.inf, 1.0, False)
    phi_at_zero = 1.0
    slope_at_infinity = 1.0

    def _phi(self, t: Any, xp: Any) -> Any:
        return (xp.sqrt(t) - 1.0) ** 2

    def _conjugate(self, s: Any, xp: Any) -> Any:
        return s / (1.0 - s)

    def _ratio(self, s: Any, xp: Any) -> Any:
        return 1.0 / (1.0 - s) ** 2

    def phi_prime(self, t: ArrayLike) -> FloatArray:
        with np.errstate(divide="ignore"):
            return 1.0 - 1.0 / np.sqrt(_arr(t))

    def cvxpy_constraint(self, ratio: Any, w: FloatArray, radius: float) -> list[Any]:
        import cvxpy as cp

        # Σ w (√L − 1)² = 2n − 2 Σ w √L when w·L = n.
        n = w.shape[0]
        return [w @ cp.sqrt(ratio) >= n * (1.0 - 0.5 * radius)]

    def cvxpy_multiplier_form(self, n: int, radius: float) -> tuple[float, float]:
        # G = −Σ w √L: ∂G/w = −1/(2√L) = ½φ'(L) − ½
        return 0.5, -0.5


@dataclass(frozen=True)
class TotalVariation(Divergence):
    """Total variation, φ(t) = |t − 1|/2, φ*(s) = max(s, −1/2) on s ≤ 1/2; TV ∈ [0, 1]."""

    name: str = "tv"
    curvature = math.nan
    third_derivative = math.nan
    conjugate_domain = (-math.inf, 0.5, True)
    phi_at_zero = 0.5
    slope_at_infinity = 0.5

    def _phi(self, t: Any, xp: Any) -> Any:
        return 0.5 * xp.abs(t - 1.0)

    def _conjugate(self, s: Any, xp: Any) -> Any:
        return xp.clip(s, min=-0.5)

    def _ratio(self, s: Any, xp: Any) -> Any:
        return xp.where(s > -0.5, s * 0.0 + 1.0, s * 0.0)

    def phi_prime(self, t: ArrayLike) -> FloatArray:
        return 0.5 * np.sign(_arr(t) - 1.0)

    def cvxpy_constraint(self, ratio: Any, w: FloatArray, radius: float) -> list[Any]:
        import cvxpy as cp

        n = w.shape[0]
        return [0.5 * (w @ cp.abs(ratio - 1.0)) <= n * radius]


@dataclass(frozen=True)
class JensenShannon(Divergence):
    """Jensen–Shannon, φ(t) = ½[t log t − (1+t) log((1+t)/2)]; JS ∈ [0, log 2]."""

    name: str = "js"
    curvature = 0.25
    third_derivative = -0.375
    conjugate_domain = (-math.inf, 0.5 * math.log(2.0), False)
    phi_at_zero = 0.5 * math.log(2.0)
    slope_at_infinity = 0.5 * math.log(2.0)

    def _phi(self, t: Any, xp: Any) -> Any:
        return 0.5 * (xp.xlogy(t, t) - xp.xlogy(1.0 + t, 0.5 * (1.0 + t)))

    def _conjugate(self, s: Any, xp: Any) -> Any:
        return -0.5 * xp.log(2.0 - xp.exp(2.0 * s))

    def _ratio(self, s: Any, xp: Any) -> Any:
        e = xp.exp(2.0 * s)
        return e / (2.0 - e)

    def phi_prime(self, t: ArrayLike) -> FloatArray:
        t = _arr(t)
        with np.errstate(divide="ignore"):
            return 0.5 * (math.log(2.0) + np.log(t) - np.log1p(t))

    def cvxpy_constraint(self, ratio: Any, w: FloatArray, radius: float) -> list[Any]:
        import cvxpy as cp

        # 2φ(L) = kl_div(L, m) + kl_div(1, m) with m = (1 + L)/2 (both jointly convex).
        n = w.shape[0]
        mid = 0.5 * (1.0 + ratio)
        expr = cp.kl_div(ratio, mid) + cp.kl_div(np.ones(n), mid)
        return [0.5 * (w @ expr) <= n * radius]


@dataclass(frozen=True)
class CressieRead(Divergence):
    """Cressie–Read power family, φ(t) = (t^α − 1 − α(t − 1))/(α(α − 1)), α > 0, α ≠ 1."""

    name: str = "cressie_read"
    alpha: float = 2.0

    def __post_init__(self) -> None:
        a = self.alpha
        if not isinstance(a, int | float) or not math.isfinite(a) or a <= 0 or a == 1:
            raise InputError(
                "alpha: expected a finite number > 0 and != 1 for cressie_read "
                f"(alpha -> 1 is 'kl', alpha -> 0 is 'reverse_kl'), found {a!r}"
            )

    @property
    def curvature(self) -> float:
        return 1.0

    @property
    def third_derivative(self) -> float:
        return self.alpha - 2.0

    @property
    def conjugate_domain(self) -> tuple[float, float, bool]:
        if self.alpha > 1:
            return (-math.inf, math.inf, False)
        return (-math.inf, 1.0 / (1.0 - self.alpha), False)

    @property
    def phi_at_zero(self) -> float:
        return 1.0 / self.alpha

    @property
    def slope_at_infinity(self) -> float:
        return math.inf if self.alpha > 1 else 1.0 / (1.0 - self.alpha)

    def _phi(self, t: Any, xp: Any) -> Any:
        a = self.alpha
        return (t**a - 1.0 - a * (t - 1.0)) / (a * (a - 1.0))

    def _base(self, s: Any, xp: Any) -> Any:
        return xp.clip(1.0 + (self.alpha - 1.0) * s, min=0.0)

    def _conjugate(self, s: Any, xp: Any) -> Any:
        a = self.alpha
        return (self._base(s, xp) ** (a / (a - 1.0)) - 1.0) / a

    def _ratio(self, s: Any, xp: Any) -> Any:
        return self._base(s, xp) ** (1.0 / (self.alpha - 1.0))

    def phi_prime(self, t: ArrayLike) -> FloatArray:
        a = self.alpha
        with np.errstate(divide="ignore"):
            return (_arr(t) ** (a - 1.0) - 1.0) / (a - 1.0)

    def cvxpy_constraint(self, ratio: Any, w: FloatArray, radius: float) -> list[Any]:
        import cvxpy as cp

        # Σ w φ(L) = (Σ w L^α − n)/(α(α − 1)) when w·L = n.
        a = self.alpha
        n = w.shape[0]
        level = n * (1.0 + a * (a - 1.0) * radius)
        power = w @ cp.power(ratio, a, approx=False)
        return [power <= level] if a > 1 else [power >= level]

    def cvxpy_multiplier_form(self, n: int, radius: float) -> tuple[float, float]:
        # G = ±Σ w L^α: ∂G/w = ±αL^{α−1} = |α(α − 1)| φ'(L) ± α
        a = self.alpha
        return (a * (a - 1.0), a) if a > 1 else (a * (1.0 - a), -a)

    def __str__(self) -> str:
        return f"cressie_read:{self.alpha:g}"


# ------------------------------------------------------------------------------------------
_REGISTRY: dict[str, type[Divergence]] = {
    "kl": KL,
    "reverse_kl": ReverseKL,
    "chi2": ChiSquare,
    "hellinger": Hellinger,
    "tv": TotalVariation,
    "js": JensenShannon,
    "cressie_read": CressieRead,
}
_ALIASES = {"rkl": "reverse_kl", "burg": "reverse_kl", "pearson": "chi2", "chi_square": "chi2"}
_ALIASES |= {"squared_hellinger": "hellinger", "h2": "hellinger", "cr": "cressie_read"}

#: the canonical names, in catalogue order
DIVERGENCE_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def _canonical(name: str) -> str:
    """The catalogue key of ``name`` (case, ``-`` and aliases normalised) or InputError."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, [*_REGISTRY, *_ALIASES], n=1, cutoff=0.5)
        hint = f"; did you mean {_ALIASES.get(close[0], close[0])!r}?" if close else ""
        raise InputError(
            f"divergence: expected one of {', '.join(DIVERGENCE_NAMES)}, found {name!r}{hint}"
        )
    return key


def _build(key: str, params: dict[str, Any]) -> Divergence:
    """The divergence of catalogue key ``key`` with parameters ``params`` (checked)."""
    if key == "cressie_read":
        unknown = set(params) - {"alpha"}
        if unknown:
            raise InputError(f"params: cressie_read takes only 'alpha', found {sorted(unknown)}")
        if "alpha" not in params:
            raise InputError("alpha: cressie_read needs alpha (e.g. cressie_read:1.5), found none")
        return CressieRead(alpha=params["alpha"])
    if params:
        raise InputError(f"params: {key} takes no parameters, found {sorted(params)}")
    return _REGISTRY[key]()


def resolve_divergence(spec: str | Divergence) -> Divergence:
    """The one resolver: a :class:`Divergence` from an instance, a name or a ``NAME:ALPHA`` spec.

    ``spec``: an instance (returned as is); a name of :data:`DIVERGENCE_NAMES` or an alias
    (``rkl``, ``burg``, ``pearson``, ``chi_square``, ``h2``, ``squared_hellinger``, ``cr``; case
    and ``-`` ignored); or ``"cressie_read:ALPHA"`` / ``"cr:ALPHA"``.

    Raises
    ------
    InputError
        Not a string or instance; unknown name (lists the valid names, suggests the closest);
        ALPHA not a number or out of range (``alpha: expected a finite number > 0 and != 1``).
    """
    if isinstance(spec, Divergence):
        return spec
    if not isinstance(spec, str):
        raise InputError(
            f"divergence: expected a name such as 'kl' or 'cressie_read:1.5' "
            f"(one of {', '.join(DIVERGENCE_NAMES)}) or a Divergence, found {type(spec).__name__}"
        )
    head, sep, tail = spec.partition(":")
    if not sep:
        return _build(_canonical(head), {})
    try:
        alpha = float(tail)
    except ValueError as exc:
        raise InputError(
            f"divergence: expected NAME:ALPHA with a number ALPHA, found {spec!r}"
        ) from exc
    return _build(_canonical(head), {"alpha": alpha})


def get_divergence(name: str | Divergence, **params: Any) -> Divergence:
    """The divergence ``name`` with keyword parameters (``alpha`` for Cressie–Read).

    Without ``params`` this is :func:`resolve_divergence`; InputError as there, and for
    unexpected or missing parameters.
    """
    if not params:
        return resolve_divergence(name)
    if isinstance(name, Divergence):
        raise InputError(f"params: a Divergence instance takes no parameters, found {params}")
    if not isinstance(name, str):
        return resolve_divergence(name)  # raises the InputError naming the type
    return _build(_canonical(name), params)


#: deprecated alias of :func:`resolve_divergence` (the same function)
divergence_from_spec = resolve_divergence
