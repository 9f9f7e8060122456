"""Standardised batches of score rows, the unit every dual solver works on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory._roots import Index
from dro_theory.checks import as_finite_array, check_weights
from dro_theory.divergences import Divergence
from dro_theory.errors import InputError

__all__ = [
    "WARM_MIN",
    "WARM_SIZE",
    "Batch",
    "FloatArray",
    "Rows",
    "SolveFn",
    "Solved",
    "prepare_batch",
    "subsample",
]

FloatArray = NDArray[np.float64]

#: rows of q0 must sum to 1 within this (float32-written weights carry ~1e-7 relative error)
WEIGHT_SUM_TOL = 1e-6


@dataclass(frozen=True)
class Batch:
    """Standardised scores of B anchors (rows).

    g = (f − μ)/σ on the support of q0 (0 off it and on constant rows); d = max g − g ≥ 0 is
    what the solvers use (g is recovered as max g − d).
    """

    q0: FloatArray  # (B, n)
    uniform: bool  # q0 = 1/n everywhere (enables cheaper sums)
    mu: FloatArray  # (B,)
    sigma: FloatArray  # (B,)
    d: FloatArray  # (B, n)
    top: NDArray[np.bool_]  # (B, n) maximisers (on the support)
    p_max: FloatArray  # (B,) q0-mass of the maximisers
    f_max: FloatArray  # (B,)
    g_max: FloatArray  # (B,)
    constant: NDArray[np.bool_]  # (B,)
    single: bool
    f: FloatArray  # (B, n) the raw scores (g = (f − μ)·scale exactly, without going through d)
    scale: FloatArray  # (B,) 1/σ (1 on constant rows)

    def rows(self, idx: NDArray[np.intp] | slice) -> Rows:
        """The solver rows ``idx`` (the indexing itself lives in :meth:`Rows.sub`)."""
        if isinstance(idx, np.ndarray) and _is_all(idx, self.d.shape[0]):
            idx = slice(None)
        whole = Rows(
            self.d, self.q0, self.g_max, self.top, self.uniform, self.f, self.mu, self.scale
        )
        return whole.sub(idx)

    def take(self, idx: NDArray[np.intp], *, single: bool = False) -> Batch:
        """The batch of rows ``idx`` (repeats allowed), e.g. one row per (anchor, radius)."""
        if _is_all(idx, self.d.shape[0]) and single == self.single:
            return self
        return Batch(
            np.broadcast_to(self.q0[0], (idx.size, self.q0.shape[1]))
            if self.uniform
            else self.q0[idx],
            self.uniform,
            self.mu[idx],
            self.sigma[idx],
            self.d[idx],
            self.top[idx],
            self.p_max[idx],
            self.f_max[idx],
            self.g_max[idx],
            self.constant[idx],
            single,
            self.f[idx],
            self.scale[idx],
        )


def _is_all(idx: NDArray[np.intp], size: int) -> bool:
    return idx.size == size and bool(np.all(idx == np.arange(size)))


@dataclass(frozen=True)
class Rows:
    """The standardised rows handed to a solver.

    ``d`` = max g − g resolves the scores near the maximum; ``g`` = (f − μ)/σ is recomputed from
    the raw scores, so it keeps full relative precision on the bulk even when max g is huge
    (there max g − d would lose |max g|·ε absolutely).
    """

    d: FloatArray
    q0: FloatArray
    g_max: FloatArray
    top: NDArray[np.bool_]
    uniform: bool
    f: FloatArray
    mu: FloatArray
    scale: FloatArray

    @cached_property
    def g(self) -> FloatArray:
        """g = (f − μ)/σ on the support (0 off it), computed from f (once; read-only)."""
        g = self.f - self.mu[:, None]
        g *= self.scale[:, None]
        if not self.uniform:
            g[self.q0 <= 0] = 0.0
        return g

    def sub(self, idx: Index) -> Rows:
        """Rows ``idx``: an index array, or a slice (a contiguous block, indexed as views)."""
        if isinstance(idx, slice) and idx == slice(None):
            return self
        return Rows(
            self.d[idx],
            self.q0[idx],
            self.g_max[idx],
            self.top[idx],
            self.uniform,
            self.f[idx],
            self.mu[idx],
            self.scale[idx],
        )


@dataclass(frozen=True)
class Solved:
    """A solver's answer on standardised rows: likelihood ratio L = q/q0, α_g, c_g.

    ``value`` is the penalised value P_g(α) where the solver has it in closed form (KL:
    α log E e^{g/α}); None: computed from L by the caller.
    """

    ratio: FloatArray
    alpha: FloatArray
    normalizer: FloatArray
    residual: FloatArray
    iterations: int
    #: rows whose root is pinned to float resolution (bracket collapsed); None: all
    settled: NDArray[np.bool_] | None = None
    #: relative first-order residual per row (``verify.stationarity``); None: not checked (TV)
    stationarity: FloatArray | None = None
    value: FloatArray | None = None

    def take(self, rows: NDArray[np.bool_] | NDArray[np.intp]) -> Solved:
        """The answer restricted to ``rows`` (a mask or indices)."""

        def pick(x: FloatArray | None) -> FloatArray | None:
            return None if x is None else x[rows]

        return Solved(
            self.ratio[rows],
            self.alpha[rows],
            self.normalizer[rows],
            self.residual[rows],
            self.iterations,
            None if self.settled is None else self.settled[rows],
            pick(self.stationarity),
            pick(self.value),
        )


#: a family's solver: (divergence, rows, per-row radius η or temperature α) → answer
SolveFn = Callable[[Divergence, Rows, FloatArray], Solved]


def prepare_batch(scores: ArrayLike, weights: ArrayLike | None) -> Batch:
    r"""Standardise the rows of ``scores``: g = (f − μ)/σ with μ, σ² the q0-mean and variance.

    Parameters
    ----------
    scores : array_like, shape (n,) or (B, n)
        Finite scores f; 1-D is one anchor (``Batch.single``).
    weights : array_like, shape (n,) or (B, n), optional
        Reference q0 (uniform when None); non-negative, rows summing to 1 within
        :data:`WEIGHT_SUM_TOL` (then renormalised).

    Returns
    -------
    Batch
        d = max g − g (exactly 0 on the maximisers; off the support of q0 set to max(max g, 0)),
        μ, σ, max f, the maximisers and their q0-mass, constant-row flags.

    Raises
    ------
    InputError
        NaN/inf, wrong dimensions, no rows, or bad weights (naming ``scores`` or ``weights``).
    """
    f = as_finite_array(scores, "scores", ndim=(1, 2))
    single = f.ndim == 1
    f2 = f[None, :] if single else f
    b, n = f2.shape
    if b == 0:
        raise InputError("scores: expected at least one row, found shape (0, n)")
    uniform = weights is None
    q0 = _weights(weights, b, n, single)
    if uniform:
        f_max = f2.max(axis=1)
        f_min = f2.min(axis=1)
        mu = f2.mean(axis=1)
        centred = f2 - mu[:, None]
        var = np.einsum("ij,ij->i", centred, centred) / n
        top = f2 == f_max[:, None]
        p_max = np.count_nonzero(top, axis=1) / n
    else:
        support = q0 > 0
        f_max = np.where(support, f2, -np.inf).max(axis=1)
        f_min = np.where(support, f2, np.inf).min(axis=1)
        mu = np.einsum("ij,ij->i", q0, f2)
        centred = np.where(support, f2 - mu[:, None], 0.0)
        var = np.einsum("ij,ij->i", q0 * centred, centred)
        top = support & (f2 == f_max[:, None])
        p_max = np.einsum("ij,ij->i", q0, top.astype(np.float64))
    constant = f_max == f_min
    sigma = np.where(constant, 0.0, np.sqrt(var))
    scale = 1.0 / np.where(sigma > 0, sigma, 1.0)
    g_max = np.where(constant, 0.0, (f_max - mu) * scale)
    # d = max g − g ≥ 0, exactly 0 on the maximisers; off the support g is taken as 0
    d = centred
    d *= -scale[:, None]
    d += g_max[:, None]
    np.maximum(d, 0.0, out=d)  # exactly 0 on the maximisers: same operations as g_max
    if not uniform:
        d[~support] = np.broadcast_to(np.maximum(g_max, 0.0)[:, None], d.shape)[~support]
    d[constant] = 0.0
    return Batch(q0, uniform, mu, sigma, d, top, p_max, f_max, g_max, constant, single, f2, scale)


def _weights(weights: ArrayLike | None, b: int, n: int, single: bool) -> FloatArray:
    if weights is None:
        return np.broadcast_to(1.0 / n, (b, n))
    w = as_finite_array(weights, "weights", ndim=(1, 2))
    if w.ndim == 1:
        return np.broadcast_to(check_weights(w, n), (b, n))
    if single or w.shape != (b, n):
        want = f"({n},)" if single else f"({n},) or ({b}, {n})"
        raise InputError(f"weights: expected shape {want} to match the scores, found {w.shape}")
    if np.any(w < 0):
        raise InputError(f"weights: expected non-negative weights, found min {w.min():.3g}")
    total = w.sum(axis=1)
    worst = int(np.argmax(np.abs(total - 1.0)))
    if abs(total[worst] - 1.0) > WEIGHT_SUM_TOL:
        raise InputError(
            f"weights: expected every row to sum to 1, found row {worst} summing to "
            f"{total[worst]:.12g}"
        )
    return w / total[:, None]


#: rows with at least this many columns get their root finder's start from a subsample (its
#: root is within the subsample's sampling error of the full one, so the full solve needs only
#: the few quadratically convergent Newton steps from there)
WARM_MIN = 1 << 20
#: the subsample keeps this many top scores of each row and about as many strided others (its
#: solve costs a few percent of one full pass at N = 10⁷)
WARM_SIZE = 1 << 16


def subsample(rows: Rows) -> Rows | None:
    """A stratified subsample of each row: its top scores, and a stride of the rest reweighted.

    The :data:`WARM_SIZE` smallest d (the largest scores, which carry the worst case of the
    heavy-tailed shapes) keep their q0; every ``n // WARM_SIZE``-th other atom stands for its
    stride (q0 times the stride); q0 is then renormalised. None when the rows are shorter than
    :data:`WARM_MIN` or a row's subsample has no q0 mass. Only a starting point is taken from
    it, so any deterministic subsample is correct.
    """
    n = rows.d.shape[1]
    if n < WARM_MIN:
        return None
    step = n // WARM_SIZE
    top = np.argpartition(rows.d, WARM_SIZE, axis=1)[:, :WARM_SIZE]
    bulk = np.arange(0, n, step)
    cut = np.take_along_axis(rows.d, top, axis=1).max(axis=1, keepdims=True)
    q0 = np.broadcast_to(rows.q0, rows.d.shape)
    weight = np.where(rows.d[:, bulk] > cut, q0[:, bulk] * step, 0.0)
    q0_sub = np.concatenate([np.take_along_axis(q0, top, axis=1), weight], axis=1)
    mass = q0_sub.sum(axis=1, keepdims=True)
    if not np.all(mass > 0):
        return None
    return Rows(
        _pick(rows.d, top, bulk),
        q0_sub / mass,
        rows.g_max,
        _pick(rows.top, top, bulk),
        False,
        _pick(rows.f, top, bulk),
        rows.mu,
        rows.scale,
    )


_Item = TypeVar("_Item", bound=np.generic)


def _pick(x: NDArray[_Item], top: NDArray[np.intp], bulk: NDArray[np.intp]) -> NDArray[_Item]:
    """Columns ``top`` (per row) then ``bulk`` (shared) of every row of ``x``."""
    return np.concatenate([np.take_along_axis(x, top, axis=1), x[:, bulk]], axis=1)
