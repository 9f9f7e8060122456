"""Figures of the claims, drawn from run records only (no recomputation).

The only module of the project that imports matplotlib. It uses the Agg canvas directly
(:class:`matplotlib.backends.backend_agg.FigureCanvasAgg` with a bare
:class:`matplotlib.figure.Figure`), so no global pyplot state or interactive backend is touched.
Every PNG is written atomically through :func:`validation.atomic.atomic_path`.

One plot function per claim, each taking a :class:`~validation.records.Record` and a target
path; :func:`plot_record` dispatches on ``record.claim`` and falls back to :func:`plot_checks`
(a summary of the checks) when a record has no series the claim's plot knows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from validation.atomic import atomic_path
from validation.records import Record

__all__ = [
    "PLOTTERS",
    "plot_adnce",
    "plot_checks",
    "plot_infonce_is_kl_dro",
    "plot_mean_variance",
    "plot_phi_mi",
    "plot_record",
    "plot_sampling_bias",
    "plot_temperature_advice",
    "plot_temperature_is_lagrange",
    "plot_training_runs",
]


def _figure(ncols: int, record: Record) -> tuple[Figure, list[Any]]:
    """A figure with ``ncols`` claim panels on top and the record's checks below them."""
    n = len(record.checks)
    fig = Figure(figsize=(5.0 * max(ncols, 2), 4.0 + 0.16 * n + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, ncols, height_ratios=[4.0, 0.16 * n + 0.6])
    axes = [fig.add_subplot(grid[0, k]) for k in range(ncols)]
    _draw_checks(fig.add_subplot(grid[1, :]), record)
    fig.suptitle(_title(record), fontsize=10)
    return fig, axes


def _draw_checks(ax: Any, record: Record) -> None:
    """Each check as |observed − expected| / tolerance (one-sided: the violation), log scale.

    Green at or below 1 (passed), red above or non-finite; a check with no finite ratio is
    drawn at the right edge.
    """
    names = [c.name[:90] for c in record.checks]
    ratios = []
    for c in record.checks:
        gap = c.observed - c.expected
        dev = {"le": max(gap, 0.0), "ge": max(-gap, 0.0)}.get(c.relation, abs(gap))
        scale = c.tolerance * (abs(c.expected) if c.relation == "rel" else 1.0)
        ratios.append(dev / scale if scale > 0 else (0.0 if dev == 0 else np.inf))
    r = np.asarray(ratios, dtype=float)
    shown = np.where(np.isfinite(r), np.clip(r, 1e-6, None), 1e3)
    y = np.arange(len(names))
    colors = ["tab:green" if c.passed else "tab:red" for c in record.checks]
    ax.barh(y, shown, color=colors, left=0)
    ax.axvline(1.0, c="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y, names, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("|observed − expected| / tolerance (≤ 1 passes)", fontsize=7)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    for ax in fig.axes:  # minor log ticks unlabelled (they crowd the axis)
        ax.tick_params(which="minor", labelbottom=False, labelleft=False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def _title(record: Record) -> str:
    ok = sum(c.passed for c in record.checks)
    return f"{record.claim} ({record.paper_reference}): {ok}/{len(record.checks)} checks pass"


def _series(record: Record, name: str) -> dict[str, np.ndarray]:
    if name not in record.series:
        raise KeyError(name)
    return dict(record.series[name])


def _positive(x: np.ndarray) -> np.ndarray:
    """|x| with zeros replaced by NaN (for log axes)."""
    a = np.abs(np.asarray(x, dtype=float))
    return np.where(a > 0, a, np.nan)


# ------------------------------------------------------------------------------------------
def plot_checks(record: Record, path: str | Path) -> Path:
    """Summary of any record: each check's deviation relative to its tolerance."""
    fig = Figure(figsize=(10.0, 1.0 + 0.2 * max(len(record.checks), 1)), layout="constrained")
    FigureCanvasAgg(fig)
    _draw_checks(fig.add_subplot(1, 1, 1), record)
    fig.suptitle(_title(record), fontsize=10)
    return _save(fig, path)


def plot_infonce_is_kl_dro(record: Record, path: str | Path) -> Path:
    """Worst case q* from cvxpy vs softmax(f/τ)·q0; identity errors across τ and score scale."""
    wc = _series(record, "worst_case_vs_softmax")
    fig, (ax1, ax2) = _figure(2, record)
    ax1.plot(wc["score"], wc["q_softmax"], "-", label="softmax(f/τ)·q0 (InfoNCE weights)")
    ax1.plot(wc["score"], wc["q_cvxpy"], ".", ms=4, label="cvxpy worst case at η(τ)")
    ax1.plot(wc["score"], wc["q0"], ":", label="q0")
    tau = record.metrics.get("example_temperature", float("nan"))
    ax1.set(xlabel="negative score f", ylabel="probability", title=f"τ = {tau:g}")
    ax1.legend(fontsize=7)
    if "identity_errors" in record.series:
        ie = _series(record, "identity_errors")
        for scale in np.unique(ie["scale"]):
            m = ie["scale"] == scale
            ax2.plot(
                ie["temperature"][m], _positive(ie["error"][m]), "o-", label=f"|f| ≤ {scale:g}"
            )
        ax2.set(xscale="log", yscale="log", xlabel="τ", ylabel="max |penalised DRO − τ·InfoNCE|")
        ax2.legend(fontsize=7)
    return _save(fig, path)


def plot_temperature_is_lagrange(record: Record, path: str | Path) -> Path:
    """τ(η) exact vs √(Var/2η), and the relative error of the law against √η."""
    te = _series(record, "tau_eta")
    fig, (ax1, ax2) = _figure(2, record)
    ax1.plot(te["radius"], te["tau_exact"], "o", ms=4, label="exact α*(η)")
    ax1.plot(te["radius"], te["tau_law"], "-", label="√(Var/2η)")
    ax1.set(xscale="log", yscale="log", xlabel="radius η", ylabel="temperature τ")
    ax1.legend(fontsize=7)
    ax2.plot(te["radius"], _positive(te["rel_error"]), "o", ms=4, label="observed")
    if "rel_error_predicted" in te:
        ax2.plot(
            te["radius"],
            _positive(te["rel_error_predicted"]),
            "-",
            label="(γ/3)ε − b₃ε², ε = √(2η)",
        )
    ax2.set(xscale="log", yscale="log", xlabel="radius η", ylabel="|τ_exact − τ_law| / τ_exact")
    ax2.legend(fontsize=7)
    return _save(fig, path)


def plot_mean_variance(record: Record, path: str | Path) -> Path:
    """Error of the mean–variance form: penalised vs τ (per φ), constrained vs η (per φ)."""
    pen = _series(record, "penalized")
    con = _series(record, "constrained")
    fig, (ax1, ax2) = _figure(2, record)
    for key in [k for k in pen if k.startswith("error_")]:
        name = key.removeprefix("error_")
        line = ax1.plot(pen["temperature"], _positive(pen[key]), "o", ms=3, label=name)
        pred = pen.get(f"predicted_{name}")
        if pred is not None:
            ax1.plot(pen["temperature"], _positive(pred), "-", color=line[0].get_color(), lw=0.8)
    ax1.set(xscale="log", yscale="log", xlabel="τ (= α)", ylabel="|exact − (E f + Var/(2τφ''))|")
    ax1.legend(fontsize=6, title="dots: exact, lines: −φ'''κ₃/(6φ''³τ²)", title_fontsize=6)
    for key in [k for k in con if k.startswith("error_")]:
        name = key.removeprefix("error_")
        line = ax2.plot(con["radius"], _positive(con[key]), "o", ms=3, label=name)
        pred = con.get(f"predicted_{name}")
        if pred is not None:
            ax2.plot(con["radius"], _positive(pred), "-", color=line[0].get_color(), lw=0.8)
    ax2.set(xscale="log", yscale="log", xlabel="η", ylabel="|exact − (E f + √(2ηVar/φ''))|")
    ax2.legend(fontsize=6, title="lines: −φ'''σγη/(3φ''²)", title_fontsize=6)
    return _save(fig, path)


def plot_phi_mi(record: Record, path: str | Path) -> Path:
    """φ-MI: closed form vs the tight form (quadrature, Monte Carlo) and trained estimates."""
    est = _series(record, "estimates")
    names = [str(n) for n in record.config.get("divergences", [])]
    fig, (ax1, ax2) = _figure(2, record)
    x = np.arange(len(est["truth"]))
    ax1.scatter(x, est["truth"], marker="_", s=400, c="k", label="closed form", zorder=3)
    ax1.scatter(x - 0.15, est["quadrature"], marker="x", label="tight form at T*, quadrature")
    if "monte_carlo" in est:
        ok = np.isfinite(est["monte_carlo"])
        ax1.errorbar(
            x[ok] + 0.15,
            est["monte_carlo"][ok],
            yerr=4 * est["se"][ok],
            fmt="o",
            ms=4,
            label="tight form at T*, Monte Carlo (±4 SE)",
        )
    ax1.set_xticks(x, names if len(names) == len(x) else [str(i) for i in x], fontsize=7)
    ax1.set(ylabel="I_φ (nats)")
    ax1.legend(fontsize=7)
    if "trained" in record.series:
        tr = _series(record, "trained")
        tnames = [str(n) for n in record.config.get("trained", {}).get("divergences", [])]
        xt = np.arange(len(tr["truth"]))
        ax2.scatter(xt, tr["truth"], marker="_", s=400, c="k", label="closed form", zorder=3)
        ax2.errorbar(
            xt + 0.1,
            tr["estimate"],
            yerr=tr["ci_half"],
            fmt="s",
            ms=4,
            label="trained PhiMI, held out (CI)",
        )
        ax2.set_xticks(xt, tnames if len(tnames) == len(xt) else [str(i) for i in xt])
        ax2.set_xlim(-0.5, len(xt) - 0.5)
        ax2.set(ylabel="I_φ (nats)", title="trained critic (tight bound)")
        ax2.legend(fontsize=7)
    return _save(fig, path)


def plot_sampling_bias(record: Record, path: str | Path) -> Path:
    """Slack of the Theorem 3.3 bound over τ, and the biased–unbiased accuracy gap."""
    fig, (ax1, ax2) = _figure(2, record)
    sl = _series(record, "bound_slack")
    ax1.plot(sl["temperature"], _positive(sl["slack"]), "-", label="τ·L_InfoNCE + τη − L_unbiased")
    if "alpha_star" in record.metrics:
        ax1.axvline(record.metrics["alpha_star"], ls=":", label="α*(η)")
    ax1.set(xscale="log", yscale="log", xlabel="τ", ylabel="slack (≥ 0)")
    ax1.legend(fontsize=7)
    if "training" in record.series:
        tr = _series(record, "training")
        for key, label in (
            ("acc_unbiased", "InfoNCE, unbiased negatives"),
            ("acc_biased", "InfoNCE, biased negatives"),
            ("acc_dcl", "DCL (biased)"),
            ("acc_hcl", "HCL (biased)"),
        ):
            if key in tr:
                ax2.plot(tr["temperature"], tr[key], "o-", ms=4, label=label)
        ax2.set(xscale="log", xlabel="τ", ylabel="kNN accuracy (held out)")
        ax2.legend(fontsize=7)
    return _save(fig, path)


def plot_adnce(record: Record, path: str | Path) -> Path:
    """Worst-case weights of InfoNCE vs ADNCE over the negatives' similarity."""
    w = _series(record, "weights")
    fig, (ax1, ax2) = _figure(2, record)
    ax1.plot(w["score"], w["q_infonce"], "-", label="InfoNCE: softmax(s/τ)")
    ax1.plot(w["score"], w["q_adnce"], "-", label="ADNCE: ∝ w(s)e^{s/τ}")
    fn = w.get("false_negative")
    if fn is not None and np.any(fn > 0):
        m = fn > 0
        ax1.plot(w["score"][m], w["q_infonce"][m], "v", c="tab:blue", label="false negatives")
        ax1.plot(w["score"][m], w["q_adnce"][m], "v", c="tab:orange")
    ax1.set(xlabel="similarity s", ylabel="worst-case probability", yscale="log")
    ax1.legend(fontsize=7)
    if "tilt" in record.series:
        t = _series(record, "tilt")
        ax2.plot(t["score"], t["effective_weight"], "-", label="w(s)·e^{s/τ} (normalised)")
        ax2.plot(t["score"], t["gaussian"], "--", label="Gaussian at μ + σ²/τ")
        ax2.set(xlabel="similarity s", ylabel="relative weight")
        ax2.legend(fontsize=7)
    return _save(fig, path)


#: claim name → plot function
PLOTTERS: dict[str, Callable[[Record, str | Path], Path]] = {
    "infonce-is-kl-dro": plot_infonce_is_kl_dro,
    "temperature-is-lagrange": plot_temperature_is_lagrange,
    "mean-variance": plot_mean_variance,
    "dro-and-phi-mi": plot_phi_mi,
    "sampling-bias": plot_sampling_bias,
    "adnce-reshapes-worst-case": plot_adnce,
}


def plot_record(record: Record, path: str | Path) -> Path:
    """Draw ``record``'s figure into ``path`` (PNG); the check summary when no plot applies."""
    plotter = PLOTTERS.get(record.claim)
    if plotter is not None:
        try:
            return plotter(record, path)
        except KeyError:
            pass  # a record without the series this plot needs: summarise its checks instead
    return plot_checks(record, path)


def plot_temperature_advice(advice: Any, path: str | Path) -> Path:
    """Distribution over anchors of the advisor's exact answer beside Corollary 3.4's law.

    ``advice`` is a :class:`dro_theory.advisor.TemperatureAdvice`: τ per anchor in radius
    mode (with the matched τ marked), η per anchor in temperature mode.
    """
    radius_mode = advice.mode == "radius"
    exact = np.asarray(advice.temperature if radius_mode else advice.radius, dtype=float)
    law = np.asarray(advice.law, dtype=float)
    label = "temperature τ" if radius_mode else "radius η"
    given = f"η = {advice.mean_radius:g}" if radius_mode else f"τ = {advice.matched_temperature:g}"
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fig.suptitle(f"cldro tau: {advice.anchors} anchors, {given}", fontsize=10)
    bins = np.histogram_bin_edges(np.concatenate([exact, law]), bins="auto").tolist()
    ax.hist(exact, bins=bins, alpha=0.6, label="exact")
    ax.hist(
        law, bins=bins, histtype="step", lw=1.5, label="√(Var/2η)" if radius_mode else "Var/(2τ²)"
    )
    mark = advice.matched_temperature if radius_mode else advice.mean_radius
    ax.axvline(
        mark,
        color="k",
        ls="--",
        lw=1,
        label=("matched τ " if radius_mode else "mean η ") + f"{mark:.4g}",
    )
    ax.set(xlabel=label, ylabel="anchors")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_training_runs(runs: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """kNN top-1 per epoch of several ``cldro train`` records, with the implied radius below.

    ``runs`` maps a label to a training record (the JSON of ``cldro train --json``: keys
    ``knn_top1`` — entry 0 the untrained encoder — and ``implied_radius``, the per-epoch means
    of the exact η(τ) and of Var/(2τ²)). Written atomically.
    """
    fig = Figure(figsize=(7.0, 6.0), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for label, rec in runs.items():
        knn = np.asarray(rec.get("knn_top1", []), dtype=float)
        line = top.plot(np.arange(len(knn)), knn, marker=".", label=label)[0]
        radius = rec.get("implied_radius", [])
        epochs = [r["epoch"] for r in radius]
        bottom.plot(epochs, [r["eta_exact_mean"] for r in radius], color=line.get_color())
        bottom.plot(
            epochs, [r["eta_approx_mean"] for r in radius], color=line.get_color(), ls=":"
        )
    top.set(ylabel="kNN top-1 (%)")
    top.legend(fontsize=7)
    bottom.set(xlabel="epoch", ylabel="implied radius η(τ)")
    bottom.plot([], [], color="k", label="exact KL(q_τ‖q0)")
    bottom.plot([], [], color="k", ls=":", label="Var/(2τ²)")
    bottom.legend(fontsize=7)
    return _save(fig, path)
