"""The reported value: the bound on the held-out test split, its interval, range and warnings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import stats

from dro_theory.divergences import Divergence
from estimators.phi_mi._config import FitConfig
from estimators.phi_mi._scoring import bound_value, score_matrix
from estimators.phi_mi._train import FitHistory

__all__ = ["HeldOut", "allowed_range", "bias_warnings", "combine_folds", "held_out"]

#: batch means: at most this many disjoint blocks, each of at least this many rows
_CI_MAX_BLOCKS = 10
_CI_MIN_BLOCK_ROWS = 50
#: InfoNCE on an n×n matrix is ≤ log n; within one nat of that cap it is biased down by a
#: large fraction of the truth (Poole et al., ICML 2019, Fig. 2)
_INFONCE_MARGIN = 1.0
#: train − validation bound at the kept step above which the critic is flagged as overfitted:
#: larger than the Monte-Carlo error of a DV bound of I ≈ 1 on a few hundred rows (≈ 0.05)
#: and than 10 % of the value
_GAP_ABS, _GAP_REL = 0.05, 0.10
#: slack on the range check: float64 rounding of a mean over ≤ 1e8 terms of size ≤ 1e2
_RANGE_SLACK = 1e-9


@dataclass(frozen=True)
class HeldOut:
    """Held-out estimate, its interval, its standard error and the blocks behind it.

    ``df`` is the degrees of freedom of the t quantile the interval used.
    """

    estimate: float
    ci: tuple[float, float]
    blocks: int
    se: float
    df: int


def held_out(
    critic: torch.nn.Module, x: NDArray[np.float64], y: NDArray[np.float64], cfg: FitConfig
) -> HeldOut:
    """The bound on the test rows (averaged over blocks of ``eval_block``) and its interval.

    Batch means: the rows are cut into m ≤ 10 disjoint blocks of equal size b, the bound is
    computed on each b×b block, CI = Î ± t_{m−1,(1+level)/2} · sd(block values)/√m.
    """
    n = x.shape[0]
    n_eval = max(1, math.ceil(n / cfg.eval_block))
    estimates = []
    s = torch.empty(0)
    for rows in np.array_split(np.arange(n), n_eval):
        s = score_matrix(critic, x[rows], y[rows])
        estimates.append(float(bound_value(s, cfg.bound, cfg.div, cfg.exp_link)))
    m = min(_CI_MAX_BLOCKS, max(2, n // _CI_MIN_BLOCK_ROWS))
    b = n // m
    block_values = []
    for k in range(m):
        rows = np.arange(k * b, (k + 1) * b)
        sub = score_matrix(critic, x[rows], y[rows]) if n_eval > 1 else s[np.ix_(rows, rows)]
        block_values.append(float(bound_value(sub, cfg.bound, cfg.div, cfg.exp_link)))
    estimate = float(np.mean(estimates))
    se = float(np.std(block_values, ddof=1)) / math.sqrt(m)
    return _interval(estimate, se, m - 1, cfg.ci_level, m)


def _interval(estimate: float, se: float, df: int, level: float, blocks: int) -> HeldOut:
    half = float(stats.t.ppf(0.5 + level / 2.0, df=df)) * se
    return HeldOut(estimate, (estimate - half, estimate + half), blocks, se, df)


def combine_folds(folds: list[HeldOut], level: float) -> HeldOut:
    r"""Cross-fitting: the mean of K fold values and an interval for both error sources.

    Fold k's critic was trained without fold k and evaluated on it, so Î_k varies with the
    test rows (within-fold variance w_k = ``se_k``², batch means) and with the critic
    (optimisation and estimation error). Var(Î_k) is estimated by
    v = max(s_b², w̄), s_b² the sample variance of the K fold values and w̄ the mean w_k
    (s_b² estimates w + critic variance; w̄ is the sharper estimate when the critic adds
    nothing). Î = mean Î_k, CI = Î ± t_df·√(v/K), df = K − 1 when s_b² is used, else the pooled
    batch-means df Σ(m_k − 1).

    Raises
    ------
    ValueError
        Fewer than two folds.
    """
    k = len(folds)
    if k < 2:
        raise ValueError(f"folds: expected at least 2 fold results, found {k}")
    values = np.array([f.estimate for f in folds])
    between = float(np.var(values, ddof=1))
    within = float(np.mean([f.se**2 for f in folds]))
    if between > within:
        var, df = between, k - 1
    else:
        var, df = within, sum(f.df for f in folds)
    blocks = sum(f.blocks for f in folds)
    return _interval(float(values.mean()), math.sqrt(var / k), df, level, blocks)


def allowed_range(div: Divergence) -> tuple[float, float]:
    """[0, φ(0) + φ'(∞)]: the values I_φ can take (the upper end is reached for P ⊥ Q).

    φ'(∞) is the upper end of dom φ* (TV: ½ + ½ = 1; JS: log 2; squared Hellinger: 2;
    Cressie–Read α < 1: 1/α + 1/(1 − α)); unbounded for KL, χ², reverse KL (φ(0) = ∞).
    """
    _, hi, _ = div.conjugate_domain
    if not math.isfinite(hi):
        return 0.0, math.inf
    with np.errstate(all="ignore"):
        phi0 = float(div.phi(np.asarray(0.0)))
    return 0.0, hi + phi0 if math.isfinite(phi0) else math.inf


def range_problem(estimate: float, div: Divergence) -> str | None:
    """Why ``estimate`` cannot be reported as I_φ, or None when it lies in the allowed range."""
    low, high = allowed_range(div)
    if not math.isfinite(estimate):
        return f"the estimate is not finite ({estimate}): the critic failed"
    if estimate > high + _RANGE_SLACK:
        return f"the estimate {estimate:.6g} exceeds the largest possible {div}-MI {high:.6g}"
    if estimate < low:
        return (
            f"the estimate {estimate:.4g} is below 0, the smallest possible value: "
            "no evidence of dependence at this sample size"
        )
    return None


def bias_warnings(
    estimate: float, history: FitHistory, cfg: FitConfig, n_block: int
) -> tuple[str, ...]:
    """One-line warnings where the estimate is likely biased (empty when none applies)."""
    out = []
    if cfg.bound == "infonce" and estimate > math.log(n_block) - _INFONCE_MARGIN:
        out.append(
            f"InfoNCE estimate {estimate:.3g} is near its cap log n = {math.log(n_block):.3g}: "
            "likely biased low; use bound='tight'"
        )
    k = int(np.searchsorted(history.step, history.best_step))
    gap = float(history.train[k] - history.val[k]) if k < len(history.step) else 0.0
    if history.best_step > 0 and gap > max(_GAP_ABS, _GAP_REL * abs(float(history.val[k]))):
        out.append(
            f"training bound exceeds validation bound by {gap:.3g} at the kept step: "
            "the critic overfits; more data or a smaller critic may help"
        )
    if history.budget_stopped:
        out.append("max_seconds ended training: the best critic so far was used")
    elif not history.stopped_early and history.best_step == int(history.step[-1]):
        out.append(
            "the validation bound was still rising when the step budget ended: "
            "likely biased low; raise steps"
        )
    return tuple(out)
