r"""Variational lower bounds on (φ-)mutual information from a critic's score matrix.

Every bound takes a square score matrix ``S`` of shape (K, K) with ``S[i, j] = T(x_i, y_j)``:
the diagonal holds the K joint pairs (samples of P = P_XY) and the K(K − 1) off-diagonal entries
stand for the product of marginals Q = P_X ⊗ P_Y (the in-batch "negatives", as in Poole et al.
2019 and SMILE). All bounds return a 0-d tensor in the dtype and on the device of ``S`` and are
differentiable in ``S``; use float64 for the final evaluation and float32 for training.

With :math:`\bar S_P = \frac1K\sum_i S_{ii}` and :math:`\mathbb E_Q` the off-diagonal mean:

* :func:`infonce` — :math:`\frac1K\sum_i [S_{ii} - \log\sum_j e^{S_{ij}}] + \log K \le \log K`
  (the NT-Xent/CPC form: the positive sits in its own denominator).
* :func:`nwj` — :math:`\bar S_P - e^{-1}\mathbb E_Q e^{S}` (the KL Fenchel bound, φ*(s) = e^{s−1}).
* :func:`dv` — :math:`\bar S_P - \log \mathbb E_Q e^{S}` (Donsker–Varadhan).
* :func:`phi_plain` — :math:`\bar S_P - \mathbb E_Q φ^*(S)` (Nguyen–Wainwright–Jordan / f-GAN);
  −∞ as soon as one off-diagonal score is outside dom φ*.
* :func:`phi_tight` — :math:`\bar S_P - \min_λ\{λ + \mathbb E_Q φ^*(S - λ)\}`, the shift-optimised
  ("normalised") form. This is −L^φ_CL-DRO of Wu et al. (2023), Theorem 3.6: the CL-DRO objective is
  the tight variational estimate of D_φ(P‖Q). For KL it equals :func:`dv`.

Both φ bounds equal I_φ = D_φ(P_XY ‖ P_X ⊗ P_Y) in expectation at the optimal critic
T* = φ'(dP/dQ) (plus any constant for the tight form, which is shift-invariant in S).
φ* is always taken from :mod:`dro_theory.divergences` (one copy of every formula).

:func:`optimal_shift` solves the inner 1-D problem, globally or per row; the φ-CL-DRO loss uses it
per anchor.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dro_theory.divergences import Divergence, resolve_divergence
from dro_theory.errors import InputError

__all__ = [
    "as_divergence",
    "constrain_to_domain",
    "dv",
    "infonce",
    "nwj",
    "optimal_shift",
    "phi_plain",
    "phi_tight",
]

_MAX_ITER = 200


#: deprecated alias of :func:`dro_theory.divergences.resolve_divergence` (the same function)
as_divergence = resolve_divergence


# ------------------------------------------------------------------------------------------
# input checks and masks
def _check_scores(scores: Any) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor):
        raise InputError(f"scores: expected a torch.Tensor, found {type(scores).__name__}")
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise InputError(
            f"scores: expected a square (K, K) matrix, found shape {tuple(scores.shape)}"
        )
    if scores.shape[0] < 2:
        raise InputError(
            f"scores: expected K >= 2 (off-diagonal pairs), found K = {scores.shape[0]}"
        )
    if not scores.is_floating_point():
        raise InputError(f"scores: expected a floating-point tensor, found {scores.dtype}")
    if not bool(torch.isfinite(scores).all()):
        bad = int((~torch.isfinite(scores)).sum())
        raise InputError(f"scores: expected finite values, found {bad} NaN/inf entries")
    return scores


def _split(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(diagonal (K,), off-diagonal entries (K(K−1),)) of a checked score matrix."""
    k = scores.shape[0]
    off_mask = ~torch.eye(k, dtype=torch.bool, device=scores.device)
    return torch.diagonal(scores), scores[off_mask]


def _log_mean_exp(values: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(values, dim=0) - math.log(values.numel())


# ------------------------------------------------------------------------------------------
# KL-type bounds
def infonce(scores: torch.Tensor) -> torch.Tensor:
    r"""InfoNCE (CPC / NT-Xent form): mean_i [S_ii − log Σ_j S_ij-softmax] + log K ≤ log K.

    .. math:: I_{NCE} = \frac1K \sum_i \Big[S_{ii} - \log \sum_{j} e^{S_{ij}}\Big] + \log K

    The positive is part of its own denominator, so the value never exceeds log K
    (van den Oord et al. 2018; Poole et al. 2019). Wu et al. (2023), Eq. 1 writes the loss
    ``−(I_NCE − log K)`` with S = f/τ.

    Parameters
    ----------
    scores : torch.Tensor, shape (K, K)
        Critic scores, positives on the diagonal.

    Returns
    -------
    torch.Tensor
        0-d, in nats.
    """
    s = _check_scores(scores)
    k = s.shape[0]
    return (torch.diagonal(s) - torch.logsumexp(s, dim=1)).mean() + math.log(k)


def nwj(scores: torch.Tensor) -> torch.Tensor:
    r"""NWJ / f-GAN KL bound: mean diag − e^{−1} mean_{i≠j} e^{S_ij}.

    The Fenchel bound KL(P‖Q) ≥ E_P T − E_Q e^{T−1} (φ(t) = t log t, φ*(s) = e^{s−1}); tight at
    T* = 1 + log r. The exp-average is formed as exp(log-mean-exp − 1).
    """
    diag, off = _split(_check_scores(scores))
    return diag.mean() - torch.exp(_log_mean_exp(off) - 1.0)


def dv(scores: torch.Tensor) -> torch.Tensor:
    r"""Donsker–Varadhan bound: mean diag − log mean_{i≠j} e^{S_ij} (log-sum-exp).

    DV = sup over shifts of :func:`nwj`, hence DV ≥ NWJ for every S (equality when
    log mean e^{S_off} = 1). Equal to :func:`phi_tight` with KL.
    """
    diag, off = _split(_check_scores(scores))
    return diag.mean() - _log_mean_exp(off)


# ------------------------------------------------------------------------------------------
# φ bounds
def phi_plain(scores: torch.Tensor, divergence: str | Divergence) -> torch.Tensor:
    r"""Plain Fenchel (NWJ / f-GAN) φ bound: mean diag − mean_{i≠j} φ*(S_ij).

    .. math:: D_\phi(P\|Q) \ge \mathbb E_P T - \mathbb E_Q \phi^*(T)

    with equality at T* = φ'(r). Only the off-diagonal (Q) entries must lie in dom φ*: if one
    of them is outside (e.g. S_ij ≥ 0 for reverse KL, S_ij ≥ 1 for Hellinger), φ* = +∞ there and
    the bound is **−inf** (a valid, uninformative lower bound). Keep the critic inside the domain
    with :func:`constrain_to_domain` when training this form.

    Parameters
    ----------
    scores : torch.Tensor, shape (K, K)
    divergence : str or Divergence
        e.g. ``"kl"``, ``"chi2"``, ``"cr:1.5"``.
    """
    div = resolve_divergence(divergence)
    diag, off = _split(_check_scores(scores))
    return diag.mean() - div.conjugate(off).mean()


def phi_tight(scores: torch.Tensor, divergence: str | Divergence) -> torch.Tensor:
    r"""Tight (shift-optimised) φ bound, the CL-DRO form (Wu et al. 2023, Theorem 3.6).

    .. math::
        \hat I_\phi = \frac1K\sum_i S_{ii}
        - \min_{\lambda\in\mathbb R}\Big[\lambda + \frac{1}{K(K-1)}\sum_{i\ne j}
          \phi^*(S_{ij}-\lambda)\Big]

    λ* comes from :func:`optimal_shift` under stop-gradient; by the envelope theorem the
    gradient with respect to S is the gradient of the objective at fixed λ*, so the value and
    its gradient are both exact. The bound is invariant to S → S + c, is ≥ :func:`phi_plain`
    for every S, is always finite (λ* moves every entry into dom φ*) and equals :func:`dv`
    for KL.
    """
    div = resolve_divergence(divergence)
    diag, off = _split(_check_scores(scores))
    lam = optimal_shift(off, div)
    return diag.mean() - (lam + div.conjugate(off - lam).mean())


# ------------------------------------------------------------------------------------------
# the inner problem
def _prepare_weights(weights: Any, values: torch.Tensor, dim: int | None) -> torch.Tensor:
    """Non-negative float64 weights, broadcast to ``values`` and normalised along ``dim``."""
    if not isinstance(weights, torch.Tensor):
        raise InputError(f"weights: expected a torch.Tensor, found {type(weights).__name__}")
    w = weights.detach().to(dtype=torch.float64, device=values.device)
    try:
        w = torch.broadcast_to(w, values.shape).clone()
    except RuntimeError as exc:
        raise InputError(
            f"weights: expected a shape broadcastable to {tuple(values.shape)}, "
            f"found {tuple(weights.shape)}"
        ) from exc
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise InputError("weights: expected finite non-negative values, found negatives or NaN/inf")
    total = w.sum() if dim is None else w.sum(dim=dim, keepdim=True)
    if bool((total <= 0).any()):
        raise InputError("weights: expected a positive total along the reduction, found zero")
    return w / total


def optimal_shift(
    values: torch.Tensor,
    divergence: str | Divergence,
    dim: int | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""λ* = argmin_λ { λ + E_w φ*(v − λ) }, over all entries or per slice along ``dim``.

    The objective is convex in λ with derivative 1 − E_w[(φ*)'(v − λ)], so λ* solves

    .. math:: \mathbb E_w\big[(\phi^*)'(v-\lambda^*)\big] = 1,

    i.e. the implied likelihood ratio (φ*)'(v − λ*) is normalised (the "normalising λ" of the
    tight bound; the per-anchor λ of CL-DRO, Wu et al. 2023, Thm 3.6). KL has the closed form
    λ* = log E_w e^{v} − 1; χ² and TV are solved exactly on their active sets; the other
    divergences by a safeguarded Newton iteration on the decreasing F(λ) = E_w (φ*)'(v − λ) − 1
    inside a bracket where F changes sign (how each case works: docs/estimators.md). Computed
    under ``torch.no_grad`` in float64 and returned in the dtype of ``values``.

    Parameters
    ----------
    values : torch.Tensor
        Any shape; finite.
    divergence : str or Divergence
    dim : int, optional
        Reduce along this dimension (λ has that dimension removed); all entries when None.
    weights : torch.Tensor, optional
        Non-negative weights broadcastable to ``values`` (normalised internally to sum to 1
        along the reduction). Entries with weight 0 are ignored entirely (e.g. the positive
        of a row). Uniform when None.

    Returns
    -------
    torch.Tensor
        λ*, 0-d when ``dim`` is None, else ``values.shape`` without ``dim``. No gradient.

    Raises
    ------
    InputError
        Non-tensor or non-finite values, an empty reduction, bad weights or dim.
    """
    div = resolve_divergence(divergence)
    _check_shift_input(values, dim)
    out_dtype = values.dtype
    with torch.inference_mode(False), torch.no_grad():
        v = values.detach().to(torch.float64).clone()
        if not bool(torch.isfinite(v).all()):
            bad = int((~torch.isfinite(v)).sum())
            raise InputError(f"values: expected finite values, found {bad} NaN/inf entries")
        if weights is None:
            w = torch.full_like(v, 1.0)
        else:
            w = _prepare_weights(weights, v, dim)
        if dim is None:
            v, w = v.reshape(1, -1), w.reshape(1, -1)
        else:
            v, w = torch.movedim(v, dim, -1), torch.movedim(w, dim, -1)
        w = w / w.sum(dim=-1, keepdim=True)
        lam = _solve_shift(v, w, div)
        if dim is None:
            lam = lam.reshape(())
    return lam.to(out_dtype)


def _check_shift_input(values: torch.Tensor, dim: int | None) -> None:
    """InputError unless ``values`` is a non-empty floating tensor and ``dim`` one of its axes."""
    if not isinstance(values, torch.Tensor):
        raise InputError(f"values: expected a torch.Tensor, found {type(values).__name__}")
    if not values.is_floating_point():
        raise InputError(f"values: expected a floating-point tensor, found {values.dtype}")
    if values.numel() == 0:
        raise InputError(f"values: expected at least one entry, found shape {tuple(values.shape)}")
    if dim is not None:
        if not isinstance(dim, int) or not -values.ndim <= dim < values.ndim:
            raise InputError(f"dim: expected an axis of a {values.ndim}-D tensor, found {dim!r}")
        if values.shape[dim] == 0:
            raise InputError(f"values: expected a non-empty axis {dim}, found size 0")


def _solve_shift(v: torch.Tensor, w: torch.Tensor, div: Divergence) -> torch.Tensor:
    """λ* per slice along the last axis of ``v`` (float64), weights ``w`` summing to 1."""
    pos = w > 0
    neg_inf = torch.tensor(-math.inf, dtype=v.dtype, device=v.device)
    pos_inf = torch.tensor(math.inf, dtype=v.dtype, device=v.device)
    v_max = torch.where(pos, v, neg_inf).amax(dim=-1)
    v_min = torch.where(pos, v, pos_inf).amin(dim=-1)
    if div.name == "kl":
        logw = torch.where(pos, torch.log(torch.where(pos, w, 1.0)), neg_inf)
        return torch.logsumexp(v + logw, dim=-1) - 1.0
    if div.name == "tv":
        return v_max - 0.5
    s_one = float(div.phi_prime(1.0))  # (φ*)'(φ'(1)) = 1
    upper = v_max - s_one
    # F(λ) ≥ w_m (φ*)'(v_max − λ) − 1 for the weight w_m of the largest entry, and
    # (φ*)'(φ'(t)) = t, so F ≥ 0 at v_max − φ'(1/w_m): a lower end inside dom φ*.
    w_m = torch.gather(w, -1, torch.where(pos, v, neg_inf).argmax(dim=-1, keepdim=True))
    top = div.phi_prime((1.0 / w_m.squeeze(-1)).cpu().numpy())
    lower = torch.maximum(
        v_max - torch.as_tensor(top, dtype=v.dtype, device=v.device), v_min - s_one
    )
    # Linearising (φ*)' at φ'(1), where (φ*)'' = 1/φ''(1), gives λ ≈ E_w v − φ'(1): exact for
    # χ² while no ratio is clipped, and a close start for every smooth φ at small spread.
    start = (w * v).sum(dim=-1) - s_one

    def first_order(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            lam_ = lam.detach().clone().requires_grad_(True)
            s = v - lam_.unsqueeze(-1)
            ratio = div.conjugate_derivative(s)
            inside = div.in_conjugate_domain(s)
            ratio = torch.where(inside, ratio, pos_inf)
            f = torch.where(pos, w * ratio, 0.0).sum(dim=-1) - 1.0
            (grad,) = torch.autograd.grad(f.sum(), lam_, allow_unused=True)
        if grad is None:  # pragma: no cover - every catalogue (φ*)' depends on s
            grad = torch.zeros_like(lam)
        return f.detach(), grad.detach()

    return _safeguarded_newton(first_order, lower, upper, start)


def _safeguarded_newton(
    fn: Any, lower: torch.Tensor, upper: torch.Tensor, start: torch.Tensor
) -> torch.Tensor:
    """Root of a decreasing F in [lower, upper] (F(lower) ≥ 0 ≥ F(upper)), vectorised.

    A Newton step is taken when it lands strictly inside the current bracket and the previous
    step at least halved |F|; otherwise the bracket is bisected. So every two iterations halve
    |F| or the bracket, and Newton's quadratic convergence takes over near the root.
    """
    a, b = lower.clone(), upper.clone()
    lam = torch.clamp(start, min=a, max=b)
    f_old = torch.full_like(lam, math.inf)
    done = torch.zeros_like(lam, dtype=torch.bool)
    ulp = 4 * torch.finfo(lam.dtype).eps
    for _ in range(_MAX_ITER):
        f, df = fn(lam)
        scale = torch.clamp(lam.abs(), min=1.0)
        # |F| below what a few-ulp change of λ can resolve, or a bracket a few ulps wide
        root = f.abs() <= 1e-13 + ulp * scale * df.abs().nan_to_num()
        a = torch.where(f >= 0, lam, a)
        b = torch.where(f <= 0, lam, b)
        done = done | root | (b - a <= ulp * scale)
        if bool(done.all()):
            break
        newton = lam - f / df
        ok = (
            torch.isfinite(newton)
            & (df < 0)
            & (newton > a)
            & (newton < b)
            & (f.abs() <= 0.5 * f_old.abs())
        )
        f_old = torch.where(ok, f, torch.full_like(f, math.inf))
        lam = torch.where(done, lam, torch.where(ok, newton, 0.5 * (a + b)))
    return lam


# ------------------------------------------------------------------------------------------
def constrain_to_domain(raw: torch.Tensor, divergence: str | Divergence) -> torch.Tensor:
    r"""f-GAN output activation mapping a raw critic output v ∈ ℝ into dom φ*.

    * unbounded dom φ* (KL, χ², Cressie–Read α > 1): identity.
    * reverse KL, dom = (−∞, 0): T = −e^{−v}.
    * squared Hellinger, dom = (−∞, 1): T = 1 − e^{−v}.
    * JS, dom = (−∞, ½ log 2): T = ½ log 2 − ½ softplus(−v) = ½ log 2 + ½ log σ(v); the optimal
      critic T* = φ'(r) = ½ log(2r/(1 + r)) corresponds to v* = log r.
    * TV, dom = (−∞, ½]: T = ½ tanh(v) ∈ (−½, ½) (values below −½ carry no information,
      φ*(s) = −½ there).
    * Cressie–Read α < 1, dom = (−∞, 1/(1 − α)): T = 1/(1 − α) − e^{−v}.

    For the open domains v is clamped to [−60, −log(8 ε max(|hi|, 1))] (ε the dtype's machine
    epsilon; ≈ 33 in float64, ≈ 14 in float32) so that rounding never lands on the boundary,
    where φ* = +∞.

    Needed for :func:`phi_plain` only: :func:`phi_tight` is invariant to shifts of S and its λ*
    brings every entry into the domain, so the tight bound can be applied to raw scores
    (the recommended use; the activation restricts the critic family and slows training).
    """
    div = resolve_divergence(divergence)
    if not isinstance(raw, torch.Tensor):
        raise InputError(f"raw: expected a torch.Tensor, found {type(raw).__name__}")
    _, hi, _ = div.conjugate_domain
    if not math.isfinite(hi):
        return raw
    if div.name == "tv":
        return 0.5 * torch.tanh(raw)
    # Keep the output strictly inside the open domain in floating point: hi − e^{−v} rounds
    # to hi once e^{−v} < ulp(hi), so v is clamped to [−60, −log(8 eps max(|hi|, 1))]
    # (gradient zero beyond, where the activation is saturated anyway).
    eps = torch.finfo(raw.dtype).eps if raw.is_floating_point() else torch.finfo().eps
    v = torch.clamp(raw, min=-60.0, max=-math.log(8.0 * eps * max(abs(hi), 1.0)))
    if div.name == "js":
        return 0.5 * math.log(2.0) - 0.5 * torch.nn.functional.softplus(-v)
    return hi - torch.exp(-v)
