r"""The primal worst case in a φ-divergence ball, solved by cvxpy and verified against the dual.

For scores f ∈ ℝⁿ, reference weights q0 (a probability vector) and a radius η ≥ 0 the worst case is

.. math:: V(η) = \max_q \; \sum_i q_i f_i \quad \text{s.t.} \quad q ∈ Δ_n,\;
          D_φ(q \,\|\, q_0) = \sum_i q_{0,i}\, φ(q_i / q_{0,i}) ≤ η,

the inner maximisation of the CL-DRO objective (Wu et al., NeurIPS 2023, Definition 3.1, Eq. 3;
for KL its value is the InfoNCE term of Theorem 3.2 at the implied radius η(τ)).

Formulation (the reasons for it are in ``docs/dro_theory.md``).
Atoms with q0 = 0 are dropped (every φ-ball keeps q ≪ q0). The scores are centred and scaled,
g = (f − μ)/s with μ = E_{q0} f and s² = Var_{q0} f, so that every coefficient is O(1). The
variable is the likelihood ratio L = q/q0 with weights w = n·q0:

.. math:: \max_{L ≥ 0} \tfrac1n (w ⊙ g)^\top L \quad\text{s.t.}\quad w^\top L = n \;[ν'],\qquad
          G(L) ≤ u(η) \;[λ'],

where G(L) ≤ u(η) is :meth:`Divergence.cvxpy_constraint` (equivalent to Σ w φ(L) ≤ nη on
w·L = n). Then V = μ + s·E_q g. The dual of the primal is

.. math:: V = \min_{α ≥ 0,\, c} \; c + αη + α\, E_{q_0} φ^*\!\big((f − c)/α\big),

with the catalogue's φ*. Stationarity of the Lagrangian in L_i > 0 reads
g_i = c_g + α_g φ'(L_i). Each constraint form has ∂_i G / w_i = κ φ'(L_i) + b on the support
(κ > 0 and b constants of the form), so comparing with (1/n) w_i g_i = ν' w_i + λ' ∂_i G gives

.. math:: α_g = n κ λ', \qquad c_g = n(ν' + b λ'), \qquad α^* = s\,α_g, \qquad c^* = μ + s\,c_g

(the dual value of the divergence constraint is α*/(n s κ): for the direct forms κ = 1, i.e.
α*/n times the inverse score scale). The radius is a scalar ``cvxpy.Parameter`` so that
:func:`worst_case_sweep` builds the problem once.

Every answer is verified: solver status, feasibility (q ≥ 0, Σ q = 1, D_φ(q‖q0) ≤ η(1 + tol)),
agreement of V − μ with :func:`dro_theory.duals.worst_case_dual` (relative 1e-6) and, for every
strictly convex φ (all but TV, whose LP optimum may be a face), ‖q − q_dual‖₁ ≤ 1e-6 (q* is
unique there; V is flat to first order in q, so the value alone does not pin q down). On failure
the next solver of the chain (:data:`_CHAIN`: Clarabel with tight tolerances, Clarabel,
Clarabel without equilibration, SCS at ε = 1e-8 and 1e-10, each SCS attempt capped at 60 s)
runs. If none verifies but some attempt failed only the q check with ‖q − q_dual‖₁ ≤ 1e-5, the
closest such answer is returned with ``diagnostics["q_check"]`` saying so. Otherwise
:class:`~dro_theory.errors.DROSolveError` names everything tried. The multiplier and normalizer
are read from the solver's dual values and are not part of the check. The primal costs
O(n)–O(n^1.5) per interior-point iteration (:data:`PRIMAL_MAX_N` says where it stays in
seconds); the dual is O(n) per root-finder step.

cvxpy is imported inside the functions only: importing this module does not import cvxpy.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory._result import WorstCase
from dro_theory.checks import as_finite_array, check_radius, check_weights
from dro_theory.divergences import (
    Divergence,
    TotalVariation,
    resolve_divergence,
)
from dro_theory.errors import DROSolveError, InputError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import cvxpy as cp

__all__ = [
    "PRIMAL_MAX_N",
    "PRIMAL_MIN_RADIUS",
    "SOLVERS",
    "WorstCase",
    "primal_affordable",
    "worst_case",
    "worst_case_sweep",
]

FloatArray = NDArray[np.float64]

#: largest n for which the cvxpy primal should finish in seconds (KL, one core, Clarabel: 0.4 s
#: CPU at n = 1e4, 8.6 s at n = 1e5; reverse KL at n = 2e4 and small radii took 60 s through the
#: fallbacks; benchmarks/bench_worst_case.py, docs/cli.md)
PRIMAL_MAX_N = 10_000
#: smallest radius at which the primal can be verified: below it the solvers' feasibility
#: tolerance is not small against η, and V − μ ∝ √η misses the 1e-6 agreement with the dual
PRIMAL_MIN_RADIUS = 1e-5


def primal_affordable(n: int) -> bool:
    """Whether the cvxpy primal for ``n`` scores should finish in seconds (n ≤ PRIMAL_MAX_N)."""
    return n <= PRIMAL_MAX_N


#: cvxpy solvers that accept the cones these problems need (exponential, power, SOC).
SOLVERS: tuple[str, ...] = ("CLARABEL", "SCS", "ECOS", "MOSEK")

_CLARABEL_TIGHT = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "max_iter": 500}
_CLARABEL_NO_EQ = {"equilibrate_enable": False, "max_iter": 500}
# SCS can crawl on power cones, so each SCS attempt is capped in time as well as in iterations
# (docs/dro_theory.md has the measured case).
_SCS_TIGHT = {"eps_abs": 1e-8, "eps_rel": 1e-8, "max_iters": 100_000, "time_limit_secs": 60.0}
_SCS_TIGHTER = {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iters": 200_000, "time_limit_secs": 60.0}

#: the fallback chain: (label, cvxpy solver, options), tried in order until one verifies (why
#: each entry is there: docs/dro_theory.md).
_CHAIN: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("clarabel(tight)", "CLARABEL", _CLARABEL_TIGHT),
    ("clarabel", "CLARABEL", {}),
    ("clarabel(no-equilibration)", "CLARABEL", _CLARABEL_NO_EQ),
    ("scs(eps=1e-8)", "SCS", _SCS_TIGHT),
    ("scs(eps=1e-10)", "SCS", _SCS_TIGHTER),
)
#: options used when the user forces one solver
_FORCED: dict[str, dict[str, Any]] = {"SCS": _SCS_TIGHT}

#: verification tolerances (see :func:`_verify`)
_VALUE_RTOL = 1e-6  # on V − μ, relative to |V_dual − μ|
_VALUE_ATOL = 1e-9  # on (V − μ)/s
_FEAS_RTOL = 1e-6  # D_φ(q‖q0) ≤ η(1 + rtol) + atol
_FEAS_ATOL = 1e-9
_NEG_TOL = 1e-7  # raw L_i ≥ −tol (L has O(1) entries)
_SUM_TOL = 1e-7  # |Σ_i q0_i L_i − 1| ≤ tol
_PM_RTOL = 1e-12  # radius ≥ point-mass radius·(1 − rtol) counts as reaching it
_Q_L1_TOL = 1e-6  # ‖q − q_dual‖₁ (q* is unique for strictly convex φ; TV is exempt)
_Q_L1_RELAXED = 1e-5  # accepted only when no solver of the chain reaches _Q_L1_TOL


@dataclass(frozen=True)
class _Instance:
    """Validated data on the support of q0, with centred and scaled scores."""

    div: Divergence
    f: FloatArray  # full scores
    q0: FloatArray  # full weights
    support: NDArray[np.intp]  # indices with q0 > 0
    fs: FloatArray  # scores on the support
    ps: FloatArray  # weights on the support (sum 1)
    mu: float  # E_{q0} f
    scale: float  # sd_{q0} f (1 when constant)
    g: FloatArray  # (fs − μ)/scale
    f_max: float
    argmax_mass: float  # q0 of the argmax set
    point_mass_radius: float


def _check_solver(solver: str | None) -> str | None:
    if solver is None:
        return None
    if not isinstance(solver, str):
        raise InputError(f"solver: expected a solver name, found {type(solver).__name__}")
    import cvxpy as cp

    name = solver.strip().upper()
    usable = [s for s in SOLVERS if s in cp.installed_solvers()]
    if name not in usable:
        raise InputError(f"solver: expected one of {', '.join(usable)}, found {solver!r}")
    return name


def _prepare(
    scores: ArrayLike, divergence: str | Divergence, weights: ArrayLike | None
) -> _Instance:
    div = resolve_divergence(divergence)
    f = as_finite_array(scores, "scores")
    if f.ndim != 1:
        raise InputError(
            f"scores: expected a 1-D array (the primal solves one anchor; use "
            f"dro_theory.duals.worst_case_dual for a batch), found shape {f.shape}"
        )
    q0 = check_weights(weights, f.shape[0], "weights")
    support = np.flatnonzero(q0 > 0)
    fs, ps = f[support], q0[support]
    ps = ps / ps.sum()
    mu = float(ps @ fs)
    sd = float(np.sqrt(ps @ (fs - mu) ** 2))
    scale = sd if sd > 0 else 1.0
    f_max = float(fs.max())
    top = fs == f_max
    p_max = float(min(ps[top].sum(), 1.0))
    return _Instance(
        div=div,
        f=f,
        q0=q0,
        support=support,
        fs=fs,
        ps=ps,
        mu=mu,
        scale=scale,
        g=(fs - mu) / scale,
        f_max=f_max,
        argmax_mass=p_max,
        point_mass_radius=float(div.point_mass_radius(p_max)),
    )


def _embed(inst: _Instance, qs: FloatArray) -> FloatArray:
    q = np.zeros_like(inst.f)
    q[inst.support] = qs
    return q


def _shortcut(inst: _Instance, radius: float, start: float) -> WorstCase | None:
    """Radius 0 (q* = q0) and radii reaching the point mass on argmax f: no solver needed."""
    from dro_theory.duals import point_mass_limit

    # D_φ(point mass ‖ q0) ≤ η up to rounding in evaluating φ (relative 1e-12), or the radius
    # from which the worst case is the point mass to float64 (finite also for reverse KL)
    spread = (inst.f_max - float(inst.fs.min())) / inst.scale
    limit = float(point_mass_limit(inst.div, inst.argmax_mass, spread))
    if radius >= inst.point_mass_radius * (1.0 - _PM_RTOL) or radius >= limit:
        top = inst.fs == inst.f_max
        qs = np.where(top, inst.ps, 0.0)
        qs = qs / qs.sum()
        return WorstCase(
            value=inst.f_max,
            q=_embed(inst, qs),
            multiplier=0.0,
            normalizer=inst.f_max,
            status="point_mass",
            solver="none",
            divergence=str(inst.div),
            radius=radius,
            seconds=time.perf_counter() - start,
            diagnostics={"point_mass_radius": inst.point_mass_radius},
        )
    if radius == 0.0:
        from dro_theory.duals import worst_case_dual

        dual = worst_case_dual(inst.fs, inst.div, 0.0, weights=inst.ps)
        return WorstCase(
            value=inst.mu,
            q=inst.q0.copy(),
            multiplier=float(dual.multiplier),
            normalizer=float(dual.normalizer),
            status="optimal",
            solver="none",
            divergence=str(inst.div),
            radius=radius,
            seconds=time.perf_counter() - start,
            diagnostics={"note": "radius 0: q* = q0; multiplier, normalizer from the dual"},
        )
    return None


class _Primal:
    """The scaled cvxpy problem for one instance, with the radius as a scalar Parameter."""

    def __init__(self, inst: _Instance) -> None:
        import cvxpy as cp

        n = inst.g.shape[0]
        self.n = n
        self.w = n * inst.ps
        self.radius = cp.Parameter(nonneg=True, name="radius")
        self.ratio = cp.Variable(n, name="L")
        self.sum_con = self.w @ self.ratio == n
        # the catalogue's forms accept a scalar Parameter in place of the float radius (DPP)
        radius_arg: Any = self.radius
        self.div_cons = inst.div.cvxpy_constraint(self.ratio, self.w, radius_arg)
        constraints = [self.sum_con, *self.div_cons, self.ratio >= 0]
        objective = cp.Maximize((self.w * inst.g) @ self.ratio / n)
        self.problem: cp.Problem = cp.Problem(objective, constraints)

    def solve(self, radius: float, solver: str, options: dict[str, Any]) -> str:
        import cvxpy as cp

        self.radius.value = radius
        try:
            with warnings.catch_warnings():
                # "Solution may be inaccurate": every answer is verified anyway.
                warnings.simplefilter("ignore", UserWarning)
                self.problem.solve(solver=solver, **options)
        except cp.SolverError:
            return "solver_error"
        return str(self.problem.status)


def _verify(
    inst: _Instance, primal: _Primal, radius: float, dual: WorstCase, status: str
) -> tuple[bool, str, dict[str, Any], FloatArray | None]:
    """Check status, feasibility and V − μ against the dual; returns (ok, reason, numbers, q)."""
    if status not in ("optimal", "optimal_inaccurate"):
        return False, f"status {status}", {}, None
    raw = primal.ratio.value
    if raw is None or not np.all(np.isfinite(raw)):
        return False, "no finite solution", {}, None
    ratio = np.asarray(raw, dtype=np.float64)
    neg = float(-min(ratio.min(), 0.0))
    sum_err = float(abs(inst.ps @ ratio - 1.0))
    qs = inst.ps * np.clip(ratio, 0.0, None)
    qs = qs / qs.sum()
    div_value = float(inst.div.divergence(qs, inst.ps))
    value_g = float(qs @ inst.g)
    dual_g = (float(dual.value) - inst.mu) / inst.scale
    gap = value_g - dual_g
    q_l1 = float(np.abs(qs - np.asarray(dual.q, dtype=np.float64)).sum())
    numbers: dict[str, Any] = {
        "min_ratio": float(ratio.min()),
        "sum_error": sum_err,
        "divergence_value": div_value,
        "slack": radius - div_value,
        "gap": gap * inst.scale,
        "relative_gap": abs(gap) / max(abs(dual_g), 1e-300),
        "dual_q_l1": q_l1,
    }
    if neg > _NEG_TOL:
        return False, f"q < 0 (min L = {-neg:.3g})", numbers, None
    if sum_err > _SUM_TOL:
        return False, f"sum(q) − 1 = {sum_err:.3g}", numbers, None
    if not div_value <= radius * (1.0 + _FEAS_RTOL) + _FEAS_ATOL:
        return False, f"D(q‖q0) = {div_value:.10g} > radius {radius:.10g}", numbers, None
    if not abs(gap) <= _VALUE_RTOL * abs(dual_g) + _VALUE_ATOL:
        return False, f"value differs from the dual by {gap * inst.scale:.3g}", numbers, None
    if not isinstance(inst.div, TotalVariation) and not q_l1 <= _Q_L1_TOL:
        # q is returned so that the caller may keep it as a near miss (see _solve_one)
        return False, f"L1(q − q_dual) = {q_l1:.3g}", numbers, qs
    return True, "verified", numbers, qs


def _result(
    inst: _Instance,
    primal: _Primal,
    radius: float,
    dual: WorstCase,
    attempts: list[dict[str, Any]],
    label: str,
    status: str,
    numbers: dict[str, Any],
    qs: FloatArray,
    lam: float,
    nu: float,
    start: float,
) -> WorstCase:
    """Map a verified scaled solution back to f-units (α*, c* from the dual values λ', ν')."""
    kappa, offset = inst.div.cvxpy_multiplier_form(primal.n, radius)
    alpha_g = primal.n * kappa * lam
    c_g = primal.n * (nu + offset * lam)
    diagnostics: dict[str, Any] = {
        "attempts": attempts,
        "solvers_tried": [a["solver"] for a in attempts],
        **numbers,
        "dual_value": float(dual.value),
        "dual_multiplier": float(dual.multiplier),
        "dual_normalizer": float(dual.normalizer),
        "n_support": int(inst.support.shape[0]),
    }
    return WorstCase(
        value=inst.mu + inst.scale * float(qs @ inst.g),
        q=_embed(inst, qs),
        multiplier=inst.scale * alpha_g,
        normalizer=inst.mu + inst.scale * c_g,
        status=status,
        solver=label,
        divergence=str(inst.div),
        radius=radius,
        seconds=time.perf_counter() - start,
        diagnostics=diagnostics,
    )


def _solve_one(
    inst: _Instance, primal: _Primal, radius: float, forced: str | None, start: float
) -> WorstCase:
    from dro_theory.duals import worst_case_dual

    dual = worst_case_dual(inst.fs, inst.div, radius, weights=inst.ps)
    chain = [(forced.lower(), forced, _FORCED.get(forced, {}))] if forced is not None else _CHAIN
    attempts: list[dict[str, Any]] = []
    near_miss: tuple[float, str, str, dict[str, Any], FloatArray, float, float] | None = None
    for label, solver, options in chain:
        t0 = time.perf_counter()
        status = primal.solve(radius, solver, options)
        ok, reason, numbers, qs = _verify(inst, primal, radius, dual, status)
        attempts.append(
            {
                "solver": label,
                "status": status,
                "verified": ok,
                "reason": reason,
                "seconds": time.perf_counter() - t0,
            }
        )
        if qs is None:
            continue
        lam = float(np.asarray(primal.div_cons[0].dual_value))
        nu = float(np.asarray(primal.sum_con.dual_value))
        if ok:
            return _result(
                inst, primal, radius, dual, attempts, label, status, numbers, qs, lam, nu, start
            )
        # failed only ‖q − q_dual‖₁ ≤ 1e-6 (every other check passed, else qs is None): keep the
        # closest as a near miss, accepted below if no solver verifies and its L1 is ≤ 1e-5
        if numbers["dual_q_l1"] <= _Q_L1_RELAXED and (
            near_miss is None or numbers["dual_q_l1"] < near_miss[0]
        ):
            near_miss = (numbers["dual_q_l1"], label, status, numbers, qs, lam, nu)
    if near_miss is not None:
        _, label, status, numbers, qs, lam, nu = near_miss
        numbers = {**numbers, "q_check": f"relaxed to L1 <= {_Q_L1_RELAXED:g}"}
        return _result(
            inst, primal, radius, dual, attempts, label, status, numbers, qs, lam, nu, start
        )
    tried = "; ".join(
        f"{a['solver']} [status {a['status']}]"
        + ("" if a["reason"] == f"status {a['status']}" else f": {a['reason']}")
        for a in attempts
    )
    raise DROSolveError(
        f"worst case not verified for divergence {inst.div} at radius {radius:g} "
        f"(n = {inst.support.shape[0]}); solvers tried: {tried}"
    )


# ------------------------------------------------------------------------------------------
def worst_case(
    scores: ArrayLike,
    divergence: str | Divergence,
    radius: float,
    weights: ArrayLike | None = None,
    solver: str | None = None,
) -> WorstCase:
    r"""Solve max_q E_q f s.t. q ∈ Δ, D_φ(q‖q0) ≤ η by cvxpy, verified against the dual.

    This is the worst-case (adversarial negative) distribution of the CL-DRO objective
    (Wu et al., NeurIPS 2023, Definition 3.1, Eq. 3). For KL (Theorem 3.2, Eq. 4) at the radius
    η(τ) = KL(q_τ‖q0) the multiplier is τ and q* = q_τ = q0 e^{f/τ}/E_{q0} e^{f/τ}.

    Parameters
    ----------
    scores : array_like, shape (n,)
        f, finite; one anchor (for a batch use :func:`dro_theory.duals.worst_case_dual`).
    divergence : str or Divergence
        ``kl, reverse_kl, chi2, hellinger, tv, js`` or ``cressie_read:ALPHA``.
    radius : float
        η ≥ 0.
    weights : array_like, shape (n,), optional
        q0 (non-negative, summing to 1); uniform by default. Atoms with q0 = 0 get q* = 0.
    solver : str, optional
        Force one cvxpy solver (``"CLARABEL"``, ``"SCS"``, …); still verified. By default the
        fallback chain (module docstring) runs until one solver verifies.

    Returns
    -------
    WorstCase
        value V(η), q*, multiplier α*, normalizer c* (the dual's variables, see the module
        docstring), status, solver, and diagnostics (attempts, slack, gap to the dual).

    Raises
    ------
    InputError
        Bad scores, weights, radius, divergence or solver name.
    DROSolveError
        No solver returned a verified answer.
    """
    return worst_case_sweep(scores, divergence, [radius], weights=weights, solver=solver)[0]


def worst_case_sweep(
    scores: ArrayLike,
    divergence: str | Divergence,
    radii: Sequence[float] | ArrayLike,
    weights: ArrayLike | None = None,
    solver: str | None = None,
) -> list[WorstCase]:
    """:func:`worst_case` at each radius, building the cvxpy problem once (radius a Parameter).

    Parameters are those of :func:`worst_case`; ``radii`` is a 1-D sequence of radii ≥ 0.
    Radius 0 and radii at or beyond the point-mass radius are answered without a solver.
    """
    import cvxpy  # noqa: F401  (imported here so that ``seconds`` excludes the first import)

    inst = _prepare(scores, divergence, weights)
    forced = _check_solver(solver)
    r = np.asarray(radii, dtype=object if not isinstance(radii, np.ndarray) else None)
    if r.ndim != 1 or r.shape[0] == 0:
        raise InputError(f"radii: expected a non-empty 1-D sequence, found shape {r.shape}")
    checked = [check_radius(x, "radius") for x in r]
    primal: _Primal | None = None
    results: list[WorstCase] = []
    for eta in checked:
        start = time.perf_counter()
        quick = _shortcut(inst, eta, start)
        if quick is not None:
            results.append(quick)
            continue
        if primal is None:
            primal = _Primal(inst)
        results.append(_solve_one(inst, primal, eta, forced, start))
    return results
