r"""Claim ``sampling-bias``: Theorem 3.3 and Table 1 of Wu et al. (NeurIPS 2023).

**The population inequality (exact).** Let Q0 be the negative sampling distribution (with false
negatives), Q_ideal the ideal one (true negatives only) with KL(Q_ideal‖Q0) ≤ η, and

.. math:: L_{unbiased} = -f^+ + E_{Q_{ideal}} f,\qquad
          L_{InfoNCE}(τ) = -f^+/τ + \log E_{Q_0} e^{f/τ}\;\text{(population form)}.

Then for **every** τ > 0

.. math:: L_{unbiased} \le τ\,L_{InfoNCE}(τ) + τη .

Derivation (Gibbs variational principle / Donsker–Varadhan): for any Q ≪ Q0,
log E_{Q0} e^{g} = max_Q {E_Q g − KL(Q‖Q0)} ≥ E_Q g − KL(Q‖Q0). With g = f/τ and Q = Q_ideal,
multiplying by τ > 0: E_{Q_ideal} f ≤ τ log E_{Q0} e^{f/τ} + τ KL(Q_ideal‖Q0)
≤ τ log E_{Q0} e^{f/τ} + τη. Subtracting f⁺ on both sides gives the bound. Minimising the right
side over τ gives the KL-DRO dual, min_τ {τ log E e^{f/τ} + τη} = max_{KL(Q‖Q0) ≤ η} E_Q f, so
the bound is tightest at τ = α*(η) (the multiplier of the worst case), where it equals
−f⁺ + V_KL(η); it is attained (slack 0) when Q_ideal is itself the tilt Q0·e^{f/τ}/E e^{f/τ}.
(The paper's finite-sample version adds a McDiarmid term; the population statement is the one
checked exactly here.)

Checks (exact, float64): the slack τL_InfoNCE(τ) + τη − L_unbiased ≥ 0 on many random instances
over a τ grid from 1e-3 to 1e2, with L_InfoNCE from :func:`estimators.losses.infonce_population`
and η = KL(Q_ideal‖Q0) = log(N/|true negatives|) (Q0 uniform over the N in-batch negatives,
Q_ideal uniform over the true ones); the right side at τ = α*(η) (from
:func:`dro_theory.duals.worst_case_dual`) equals −f⁺ + V_KL(η) and is the minimum over the grid;
the slack is 0 when Q_ideal is the tilt at τ0 (η from
:func:`dro_theory.lagrange.radius_for_temperature`).
Tolerance 1e-10: rounding of log-sum-exps of scores in [−1, 1] times τ ≤ 100.

**The training experiment (a finding, no pass/fail on the gap).** K latent classes (Gaussian
mixture), a tiny MLP encoder, Gaussian-noise views. Each anchor gets N negatives drawn uniformly
from the data ("biased": a fraction ≈ 1/K are false negatives) or from the other classes only
("unbiased"). NT-Xent (positive in the denominator, the training form) at τ0 = 0.5 and at the τ*
that maximises the biased model's validation kNN accuracy over a grid; DCL (τ⁺ = 1/K) and HCL
(τ⁺ = 1/K, β = 1) on the biased negatives beside them. The held-out kNN accuracies and the gaps
are recorded as metrics (mean and standard error over seeds in the full run; each seed is a
replicate of the whole procedure with its own mixture and its own τ*, and the gaps' standard
errors are those of the paired per-seed differences). The
only check of the training part is that the τ0 biased model beats chance by 3 binomial standard
errors, so that the comparison is about a model that learned something.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.special import softmax

from dro_theory.duals import worst_case_dual
from dro_theory.lagrange import radius_for_temperature
from estimators.losses import AnchorIndex, LossParams, contrastive_loss, infonce_population
from validation.claims._recorder import Recorder, merge_config
from validation.records import Record, max_or_nan, min_or_nan
from validation.training.evaluate import knn_top1

__all__ = ["NAME", "REFERENCE", "run"]

NAME = "sampling-bias"
REFERENCE = "Theorem 3.3, Table 1"
BOUND_TOL = 1e-10


def _config(quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "instances": 200 if quick else 2000,
        "negatives": [8, 31, 127],
        "temperatures": np.geomspace(1e-3, 1e2, 41).tolist(),
        "train": {
            "classes": 4,
            "dim": 10,
            "class_scale": 0.8,
            "within_class": 1.0,
            "view_noise": 0.5,
            "n_train": 2000,
            "n_val": 1000,
            "n_test": 1000,
            "batch": 64,
            "negatives": 32,
            "pool": 128,
            "steps": 150 if quick else 500,
            "lr": 3e-3,
            "hidden": 64,
            "embed": 16,
            "tau0": 0.5,
            "tau_grid": [0.1, 0.2, 0.5, 1.0] if quick else [0.05, 0.1, 0.2, 0.5, 1.0, 2.0],
            "seeds": 1 if quick else 5,
            "knn_k": 20,
        },
    }


# ------------------------------------------------------------------------------------------
# the exact population inequality
# ------------------------------------------------------------------------------------------
def _at_alpha_star(
    f: np.ndarray, f_pos: float, eta: float, rhs: np.ndarray, sim: torch.Tensor
) -> tuple[float, float]:
    """(|bound at α*(η) − (−f⁺ + V_KL(η))|, bound at α* − min over the τ grid) for one instance.

    A NaN or negative α* gives NaN (the checks fail); α* = 0 (η = log n, the point mass on
    max f) compares the value with max f and has no grid minimum to compare.
    """
    wc = worst_case_dual(f, "kl", eta)
    a_star = float(wc.multiplier)
    if not math.isfinite(a_star) or a_star < 0:
        return math.nan, math.nan
    if a_star == 0:
        return abs(float(wc.value) - float(f.max())), 0.0
    pos = torch.zeros(1, dtype=torch.long)
    at_star = a_star * float(infonce_population(sim, a_star, pos_index=pos)) + a_star * eta
    return abs(at_star - (-f_pos + float(wc.value))), float(at_star - rhs.min())


def _bound_part(rec: Recorder, cfg: dict[str, Any], rng: np.random.Generator) -> None:
    taus = np.asarray(cfg["temperatures"])
    per_group = max(1, cfg["instances"] // len(cfg["negatives"]))
    min_slack, worst_star, worst_min = np.inf, 0.0, 0.0
    for n in cfg["negatives"]:
        centre = rng.uniform(-0.3, 0.5, size=(per_group, 1))
        spread = rng.uniform(0.1, 0.6, size=(per_group, 1))
        f = np.tanh(centre + spread * rng.standard_normal((per_group, n)))
        f_pos = rng.uniform(-1, 1, size=per_group)
        # false negatives: the m highest-scoring negatives (1 ≤ m < n)
        m = rng.integers(1, n, size=per_group)
        ranks = np.argsort(np.argsort(-f, axis=1), axis=1)
        true = ranks >= m[:, None]
        eta = np.log(n / true.sum(axis=1))
        l_unb = -f_pos + (f * true).sum(axis=1) / true.sum(axis=1)
        sim = torch.from_numpy(np.column_stack([f_pos, f]))
        pos = torch.zeros(per_group, dtype=torch.long)
        rhs = np.stack(
            [
                t * infonce_population(sim, t, pos_index=pos, reduction="none").numpy() + t * eta
                for t in taus
            ],
            axis=1,
        )
        slack = rhs - l_unb[:, None]
        min_slack = min_or_nan(min_slack, float(slack.min()))
        # the optimum over τ is the KL-DRO dual at α*(η)
        for i in range(per_group):
            e_star, e_min = _at_alpha_star(f[i], f_pos[i], float(eta[i]), rhs[i], sim[i : i + 1])
            worst_star, worst_min = max_or_nan(worst_star, e_star), max_or_nan(worst_min, e_min)
        if n == cfg["negatives"][1]:
            i = 0
            wc = worst_case_dual(f[i], "kl", float(eta[i]))
            rec.add_series("bound_slack", temperature=taus, slack=slack[i])
            rec.metric("alpha_star", float(wc.multiplier))
            rec.metric("example_radius", float(eta[i]))
            rec.metric("example_slack_at_tau0.5", float(np.interp(0.5, taus, slack[i])))
            rec.metric("example_slack_at_alpha_star", float(-f_pos[i] + float(wc.value) - l_unb[i]))
    rec.at_least(
        "τ·L_InfoNCE(τ) + τη − L_unbiased over instances and τ ∈ [1e-3, 1e2] (min slack)",
        min_slack,
        0.0,
        BOUND_TOL,
        note="Gibbs variational principle; float64 rounding",
    )
    rec.close(
        "bound at τ = α*(η) vs −f⁺ + max_{KL ≤ η} E_Q f (max |error|)",
        worst_star,
        0.0,
        BOUND_TOL,
        note="KL-DRO duality at the optimal multiplier; rounding",
    )
    rec.at_most(
        "bound at α*(η) − min over the τ grid (max; α* minimises the bound)",
        worst_min,
        0.0,
        BOUND_TOL,
        note="the dual is minimised at α*",
    )
    # attained: Q_ideal = tilt at τ0
    g = np.tanh(rng.normal(0.1, 0.4, size=50))
    g_pos = 0.8
    worst_tight = 0.0
    for tau0 in (0.1, 0.5, 2.0):
        q_ideal = softmax(g / tau0)
        eta0 = float(radius_for_temperature(g, tau0))
        l_ideal = -g_pos + float(q_ideal @ g)
        sim = torch.from_numpy(np.r_[g_pos, g][None, :])
        rhs0 = tau0 * float(
            infonce_population(sim, tau0, pos_index=torch.zeros(1, dtype=torch.long))
        )
        worst_tight = max_or_nan(worst_tight, float(abs(rhs0 + tau0 * eta0 - l_ideal)))
    rec.close(
        "slack when Q_ideal is the tilt at τ0 and η = η(τ0) (max |slack|)",
        worst_tight,
        0.0,
        BOUND_TOL,
        note="equality case of the Gibbs principle",
    )


# ------------------------------------------------------------------------------------------
# the latent-class training experiment
# ------------------------------------------------------------------------------------------
class _Mixture:
    """K Gaussian classes in ``dim`` dimensions; instances and noisy views of them."""

    def __init__(self, tc: dict[str, Any], rng: np.random.Generator) -> None:
        self.k, self.dim = tc["classes"], tc["dim"]
        self.means = tc["class_scale"] * rng.standard_normal((self.k, self.dim))
        self.tc = tc

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, self.k, size=n)
        x = self.means[y] + self.tc["within_class"] * rng.standard_normal((n, self.dim))
        return x.astype(np.float32), y


def _encoder(tc: dict[str, Any], seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(tc["dim"], tc["hidden"]),
        torch.nn.ReLU(),
        torch.nn.Linear(tc["hidden"], tc["embed"]),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / np.sqrt(max(p.shape[-1], 1))))
    return net


#: training method of Table 1 → loss of :data:`estimators.losses.LOSS_REGISTRY` (the biased and
#: unbiased rows differ in how negatives are drawn, not in the loss)
_LOSS_OF_METHOD = {"biased": "infonce", "unbiased": "infonce", "dcl": "dcl", "hcl": "hcl"}


def _train(
    method: str, tau: float, data: dict[str, Any], tc: dict[str, Any], seed: int
) -> tuple[float, float]:
    """Train one encoder; return the validation and test kNN accuracy (%)."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    net = _encoder(tc, seed)
    opt = torch.optim.Adam(net.parameters(), lr=tc["lr"])
    x, y = data["x_train"], data["y_train"]
    xt = torch.from_numpy(x)
    n, b, m, k = len(x), tc["batch"], tc["negatives"], tc["classes"]
    pool_size = tc["pool"]
    yt = np.asarray(y)
    # the positive in column 0, the m negatives after it; one layout for every step
    layout = AnchorIndex.explicit(torch.zeros(b, dtype=torch.long), None, cols=1 + m)
    params = LossParams(tau_plus=1.0 / k, beta=1.0)
    noise = tc["view_noise"]
    rows = np.arange(b)[:, None]
    for _ in range(tc["steps"]):
        idx = rng.integers(0, n, size=b)
        pool = rng.integers(0, n, size=pool_size)
        # each anchor draws m negatives from the pool without replacement: uniformly
        # ("biased", false negatives included) or among the other classes only ("unbiased")
        keys = rng.random((b, pool_size))
        if method == "unbiased":
            keys[yt[pool][None, :] == yt[idx][:, None]] = 2.0
        neg = np.argpartition(keys, m - 1, axis=1)[:, :m]
        if method == "unbiased" and bool((keys[rows, neg] > 1.0).any()):
            raise RuntimeError("pool too small for the unbiased negatives")
        anchors = xt[idx]
        v1 = anchors + noise * torch.randn(anchors.shape, generator=gen)
        v2 = anchors + noise * torch.randn(anchors.shape, generator=gen)
        xp = xt[torch.from_numpy(pool)]
        vp = xp + noise * torch.randn(xp.shape, generator=gen)
        z1 = torch.nn.functional.normalize(net(v1), dim=1)
        z2 = torch.nn.functional.normalize(net(v2), dim=1)
        zp = torch.nn.functional.normalize(net(vp), dim=1)
        zn = zp[torch.from_numpy(neg)]
        s_pos = (z1 * z2).sum(dim=1, keepdim=True)
        s_neg = torch.einsum("bd,bmd->bm", z1, zn)
        sim = torch.cat([s_pos, s_neg], dim=1)
        loss = contrastive_loss(_LOSS_OF_METHOD[method], sim, tau, layout=layout, params=params)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        feats = {s: net(torch.from_numpy(data[f"x_{s}"])) for s in ("train", "val", "test")}
    labels = {s: torch.from_numpy(data[f"y_{s}"]) for s in ("train", "val", "test")}

    def acc(split: str) -> float:
        return knn_top1(
            feats["train"],
            labels["train"],
            feats[split],
            labels[split],
            k=tc["knn_k"],
            temperature=0.1,
            num_classes=k,
        )

    return acc("val"), acc("test")


def _mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), se


def _training_part(rec: Recorder, cfg: dict[str, Any], seed: int) -> None:
    """Each seed is one replicate of the whole procedure: new mixture, tune τ*, report test.

    τ* is chosen per seed on the validation split (biased InfoNCE); DCL and HCL run at τ0 and
    at that seed's τ*. Accuracies and differences are averaged over seeds, the differences
    paired within a seed (same data, same τ).
    """
    tc = cfg["train"]
    grid = list(tc["tau_grid"])
    tau0 = tc["tau0"]
    per_seed: list[dict[tuple[str, float], float]] = []
    stars: list[float] = []
    for s in range(tc["seeds"]):
        rng = np.random.default_rng([seed, s])
        mix = _Mixture(tc, rng)
        data: dict[str, Any] = {}
        for split in ("train", "val", "test"):
            data[f"x_{split}"], data[f"y_{split}"] = mix.sample(tc[f"n_{split}"], rng)
        val: dict[float, float] = {}
        test: dict[tuple[str, float], float] = {}
        for tau in grid:
            for method in ("biased", "unbiased"):
                v, t = _train(method, tau, data, tc, seed=1000 * s + 17)
                test[(method, tau)] = t
                if method == "biased":
                    val[tau] = v
        tau_star = max(grid, key=lambda t: val[t])
        for tau in sorted({tau0, tau_star}):
            for method in ("dcl", "hcl"):
                test[(method, tau)] = _train(method, tau, data, tc, seed=1000 * s + 17)[1]
        rec.metric(f"tau_star_seed{s}", tau_star)
        per_seed.append(test)
        stars.append(tau_star)

    rec.metric("tau0", tau0)
    for label in ("tau0", "tau_star"):
        taus = [tau0] * len(per_seed) if label == "tau0" else stars
        for method in ("biased", "unbiased", "dcl", "hcl"):
            mean, se = _mean_se([t[(method, tau)] for t, tau in zip(per_seed, taus, strict=True)])
            rec.metric(f"acc_{method}_{label}", mean)
            if np.isfinite(se):
                rec.metric(f"acc_{method}_{label}_se", se)
        for key, (a, b) in {
            "gap_unbiased_minus_biased": ("unbiased", "biased"),
            "gain_dcl_over_infonce": ("dcl", "biased"),
            "gain_hcl_over_infonce": ("hcl", "biased"),
        }.items():
            diffs = [t[(a, tau)] - t[(b, tau)] for t, tau in zip(per_seed, taus, strict=True)]
            mean, se = _mean_se(diffs)
            rec.metric(f"{key}_{label}", mean)
            if np.isfinite(se):
                rec.metric(f"{key}_{label}_se", se)

    def grid_mean(method: str, tau: float) -> float:
        vals = [t[(method, tau)] for t in per_seed if (method, tau) in t]
        return float(np.mean(vals)) if len(vals) == len(per_seed) else float("nan")

    rec.add_series(
        "training",
        temperature=grid,
        acc_biased=[grid_mean("biased", t) for t in grid],
        acc_unbiased=[grid_mean("unbiased", t) for t in grid],
        acc_dcl=[grid_mean("dcl", t) for t in grid],
        acc_hcl=[grid_mean("hcl", t) for t in grid],
    )
    chance = 100.0 / tc["classes"]
    p = 1.0 / tc["classes"]
    se_chance = 100.0 * np.sqrt(p * (1 - p) / tc["n_test"])
    rec.at_least(
        f"held-out kNN accuracy of biased InfoNCE at τ0 = {tau0} beats chance (%)",
        rec.metrics["acc_biased_tau0"],
        chance + 3.0 * se_chance,
        0.0,
        note="margin: 3 binomial standard errors of a chance classifier on the test set",
    )


def run(*, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None) -> Record:
    """Run the checks and the experiment of Theorem 3.3 / Table 1; see the module docstring."""
    cfg = merge_config(_config(quick), overrides)
    rec = Recorder(NAME, REFERENCE, cfg, seed)
    rng = np.random.default_rng(seed)
    _bound_part(rec, cfg, rng)
    _training_part(rec, cfg, seed)
    return rec.finish()
