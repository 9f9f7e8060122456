"""CIFAR-10 (10k subset) experiments with the small CNN on the CPU.

(a) InfoNCE vs ADNCE vs DCL vs HCL at τ = 0.5, kNN top-1 per epoch, 3 seeds;
(b) sampling bias: InfoNCE with all negatives vs "unbiased" (same-class negatives removed) at
    τ = 0.5 and τ = 0.2, 3 seeds (the τ = 0.5 "all" runs are the InfoNCE runs of (a));
(c) τ – variance – radius: the per-batch logs of every run, plus InfoNCE at τ = 0.1 and 1.0
    (seed 0), compare the exact implied radius η(τ) = KL(q_τ‖q0) with Var/(2τ²).

Every run is one ``validation.training.loop.train`` call whose record (the ``cldro train
--json`` record) is written atomically to ``OUT/<name>.json``; finished runs are skipped, so the
script can be restarted. ``--summarize`` only rebuilds ``OUT/README.md`` from the records.

usage: OMP_WAIT_POLICY=PASSIVE .venv/bin/python experiments/run_cifar.py [--epochs 5]
       [--seeds 0 1 2] [--out experiments/results] [--summarize]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from validation.atomic import write_json, write_text
from validation.training.loop import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
#: heading of the hand-written section of README.md, kept when the tables are rebuilt
NOTES = "## Reading (hand-written)"


@dataclass(frozen=True)
class Run:
    name: str
    loss: str
    temperature: float
    negatives: str
    seed: int


def plan(seeds: list[int]) -> list[Run]:
    """All runs, seed-major so that partial results cover every setting."""
    runs: list[Run] = []
    for s in seeds:
        for loss in ("infonce", "adnce", "dcl", "hcl"):
            runs.append(Run(f"a-{loss}-t0.5-s{s}", loss, 0.5, "all", s))
        runs.append(Run(f"b-infonce-unbiased-t0.5-s{s}", "infonce", 0.5, "unbiased", s))
        runs.append(Run(f"b-infonce-all-t0.2-s{s}", "infonce", 0.2, "all", s))
        runs.append(Run(f"b-infonce-unbiased-t0.2-s{s}", "infonce", 0.2, "unbiased", s))
        if s == seeds[0]:
            for tau in (0.1, 1.0):
                runs.append(Run(f"c-infonce-t{tau}-s{s}", "infonce", tau, "all", s))
    return runs


def config(run: Run, epochs: int, cache: str) -> TrainConfig:
    return TrainConfig(
        dataset="cifar10",
        encoder="cnn-small",
        loss=run.loss,
        temperature=run.temperature,
        mu=0.7,
        sigma=0.5,
        tau_plus=0.1,
        beta=1.0,
        negatives=run.negatives,
        subset=10_000,
        test_subset=2_000,
        epochs=epochs,
        batch_size=256,
        lr=2e-3,
        seed=run.seed,
        device="cpu",
        radius_every=2,
        radius_anchors=64,
        cache_dir=cache,
    )


# ------------------------------------------------------------------------------------------
def _ms(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f} (n=1)"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f} (n={len(values)})"


def _probe(group: list[dict]) -> list[float]:
    return [r["linear_probe_top1"] for r in group if r["linear_probe_top1"] is not None]


def _load(out: Path) -> dict[str, dict]:
    recs = {}
    for p in sorted(out.glob("*.json")):
        recs[p.stem] = json.loads(p.read_text())
    return recs


def summarize(out: Path, epochs: int) -> str:
    recs = _load(out)

    def group(prefix: str) -> list[dict]:
        return [r for k, r in recs.items() if k.startswith(prefix + "-s")]

    lines = [
        "# CIFAR-10 experiments (10k subset, small CNN, CPU)",
        "",
        "Produced by `experiments/run_cifar.py` (records: one JSON per run in this folder, the "
        "`cldro train --json` format). Setup: 10,000 training / 2,000 test images "
        "(stratified, seeded), `cnn-small` (131k parameters), batch 256 (2B − 2 = 510 "
        f"negatives), AdamW lr 2e-3 with cosine schedule, {epochs} epochs, SimCLR "
        "augmentations; kNN monitor: k = 200, vote temperature 0.1, cosine on backbone "
        "features; linear probe: L-BFGS logistic regression on frozen features. Mean ± "
        "sample std over seeds (n = number of seeds finished). Short CPU runs: the absolute "
        "accuracies are far below the paper's 400-epoch ResNet-50 numbers, and differences "
        "smaller than about two standard deviations are not a ranking.",
        "",
        "## (a) Loss comparison at τ = 0.5 (ADNCE μ = 0.7, σ = 0.5; DCL/HCL τ⁺ = 0.1, HCL β = 1)",
        "",
        "| loss | kNN top-1 before | kNN top-1 after | kNN gain | linear probe | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for loss in ("infonce", "adnce", "dcl", "hcl"):
        g = group(f"a-{loss}-t0.5")
        lines.append(
            f"| {loss} | {_ms([r['knn_top1'][0] for r in g])} | "
            f"{_ms([r['knn_top1'][-1] for r in g])} | "
            f"{_ms([r['knn_top1'][-1] - r['knn_top1'][0] for r in g])} | "
            f"{_ms(_probe(g))} | {_ms([r['seconds'] for r in g])} |"
        )
    lines += [
        "",
        "Paired gap to InfoNCE (same seed: same subset, split and init), final kNN / probe:",
        "",
    ]
    base = {r["seed"]: r for r in group("a-infonce-t0.5")}
    for loss in ("adnce", "dcl", "hcl"):
        other = {r["seed"]: r for r in group(f"a-{loss}-t0.5")}
        seeds = sorted(set(base) & set(other))
        dk = [other[s]["knn_top1"][-1] - base[s]["knn_top1"][-1] for s in seeds]
        dp = [other[s]["linear_probe_top1"] - base[s]["linear_probe_top1"] for s in seeds]
        lines.append(f"- {loss} − infonce: kNN {_ms(dk)}, probe {_ms(dp)}")
    lines += ["", "kNN top-1 per epoch (mean over seeds; entry 0 = untrained):", ""]
    for loss in ("infonce", "adnce", "dcl", "hcl"):
        g = group(f"a-{loss}-t0.5")
        if g:
            curve = np.mean([r["knn_top1"] for r in g], axis=0)
            lines.append(f"- {loss}: " + ", ".join(f"{v:.1f}" for v in curve))
    lines += [
        "",
        "## (b) Sampling bias: all negatives vs unbiased (same-class negatives removed)",
        "",
        "| τ | negatives | kNN top-1 after | linear probe |",
        "|---|---|---|---|",
    ]
    gaps = {}
    for tau in (0.5, 0.2):
        for neg in ("all", "unbiased"):
            prefix = (
                "a-infonce-t0.5" if (tau == 0.5 and neg == "all") else (f"b-infonce-{neg}-t{tau}")
            )
            g = group(prefix)
            gaps[(tau, neg)] = {r["seed"]: r["knn_top1"][-1] for r in g}
            lines.append(
                f"| {tau} | {neg} | {_ms([r['knn_top1'][-1] for r in g])} | {_ms(_probe(g))} |"
            )
    lines += ["", "Paired gap unbiased − all in kNN top-1 (same seed):", ""]
    for tau in (0.5, 0.2):
        a, u = gaps[(tau, "all")], gaps[(tau, "unbiased")]
        d = [u[s] - a[s] for s in sorted(set(a) & set(u))]
        lines.append(f"- τ = {tau}: {_ms(d)}")
    lines += [
        "",
        "## (c) Temperature, variance of negative similarities and the implied radius",
        "",
        "Per batch, on 64 anchors (every 2nd step): exact η(τ) = KL(q_τ‖q0) over each "
        "anchor's 510 negatives (`dro_theory.lagrange.radius_for_temperature`) and the "
        "small-radius law Var/(2τ²) (paper Cor. 3.4). Means over all logged batches of the "
        "run (first and last epoch), then over seeds. Reading guide (derived): with K the "
        "cumulant generating function of s under q0 and β = 1/τ, η = βK'(β) − K(β) = "
        "κ₂β²/2 + κ₃β³/3 + O(β⁴), so the law Var/(2τ²) is the leading term; the ratio "
        "exceeds 1 for right-skewed negatives (κ₃ > 0) at moderate τ; at small τ the higher "
        "cumulants take over and the law overshoots (η ≤ log N = log 510 ≈ 6.2 for every τ, "
        "the law is unbounded).",
        "",
        "| run | τ | Var(neg sim) epoch 1 | η exact epoch 1 | Var/(2τ²) epoch 1 | "
        "Var(neg sim) last | η exact last | Var/(2τ²) last | ratio exact/law (last) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    prefixes = sorted({k.rsplit("-s", 1)[0] for k in recs})
    for prefix in prefixes:
        g = group(prefix)
        if not g:
            continue
        tau = g[0]["config"]["temperature"]
        first = [r["implied_radius"][0] for r in g]
        last = [r["implied_radius"][-1] for r in g]

        def m(rows: list[dict], key: str) -> str:
            vals = [x[key] for x in rows if isinstance(x[key], float) and math.isfinite(x[key])]
            return f"{np.mean(vals):.4g}" if vals else "–"

        ratio = [x["eta_exact_mean"] / x["eta_approx_mean"] for x in last]
        lines.append(
            f"| {prefix} | {tau} | {m(first, 'neg_variance_mean')} | "
            f"{m(first, 'eta_exact_mean')} | {m(first, 'eta_approx_mean')} | "
            f"{m(last, 'neg_variance_mean')} | {m(last, 'eta_exact_mean')} | "
            f"{m(last, 'eta_approx_mean')} | {np.mean(ratio):.3f} |"
        )
    text = "\n".join(lines) + "\n"
    readme = out / "README.md"
    if readme.is_file() and NOTES in readme.read_text():  # keep the hand-written reading
        text += "\n" + NOTES + readme.read_text().split(NOTES, 1)[1]
    write_text(readme, text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results")
    ap.add_argument("--cache", default="/tmp/cldro-cache")
    ap.add_argument("--summarize", action="store_true", help="only rebuild README.md")
    args = ap.parse_args(argv)
    if not args.summarize:
        for run in plan(args.seeds):
            target = args.out / f"{run.name}.json"
            if target.is_file():
                continue
            t0 = time.perf_counter()
            result = train(config(run, args.epochs, args.cache))
            write_json(target, result.to_dict())
            sys.stderr.write(
                f"{run.name}: kNN {result.knn_top1[0]:.1f} → {result.knn_top1[-1]:.1f}, "
                f"probe {result.linear_probe_top1}, {time.perf_counter() - t0:.0f} s\n"
            )
            summarize(args.out, args.epochs)
    summarize(args.out, args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
